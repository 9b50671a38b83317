"""Recurring calendar: fitted demand uplifts anchored to named retail events, so that a calibrated
scenario has its holiday peaks in the holdout and in any later year, not only on the dates the fit
window saw.

An uplift found in the fit window (a dated segment of :mod:`calibration.acquisition`) is anchored
to the nearest named event (:data:`EVENTS`) within :data:`MAX_ANCHOR_GAP_DAYS` of it, keeping its
offset from the event and its length; it is then repeated on that event in every other year from
the history's first to :data:`YEARS_AHEAD` years after its end, except where the fit window already
observed that year's event (fitted or found to have no uplift) or where it would overlap another
peak (overlapping peaks multiply). Black Friday is the day after the fourth Thursday of November
(US Thanksgiving), Cyber Monday three days later, Christmas 25 December.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

__all__ = ["EVENTS", "anchor", "black_friday", "recurring_peaks"]

MAX_ANCHOR_GAP_DAYS = 7
"""An uplift further than this from every named event (days between the event and the uplift's
dates) stays a dated, one-off peak."""
YEARS_AHEAD = 10


def black_friday(year: int) -> dt.date:
    """The day after the fourth Thursday of November."""
    nov1 = dt.date(year, 11, 1)
    first_thu = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7)
    return first_thu + dt.timedelta(days=22)


EVENTS: dict[str, Callable[[int], dt.date]] = {
    "black_friday": black_friday,
    "cyber_monday": lambda y: black_friday(y) + dt.timedelta(days=3),
    "christmas": lambda y: dt.date(y, 12, 25),
}


def _gap(event: dt.date, start: dt.date, end: dt.date) -> int:
    if start <= event <= end:
        return 0
    return min(abs((event - start).days), abs((event - end).days))


def anchor(start: dt.date, end: dt.date) -> tuple[str, int] | None:
    """``(event, offset of start from the event in days)`` of the nearest named event to the
    period ``start..end``, or None when none is within :data:`MAX_ANCHOR_GAP_DAYS`."""
    best: tuple[int, str, dt.date] | None = None
    for name, day_of in EVENTS.items():
        for year in (start.year - 1, start.year, start.year + 1):
            ev = day_of(year)
            g = _gap(ev, start, end)
            if g <= MAX_ANCHOR_GAP_DAYS and (best is None or g < best[0]):
                best = (g, name, ev)
    if best is None:
        return None
    return best[1], (start - best[2]).days


def _overlaps(a0: dt.date, a1: dt.date, b0: dt.date, b1: dt.date) -> bool:
    return a0 <= b1 and b0 <= a1


def recurring_peaks(peaks: list[dict[str, Any]], fit_start: dt.date, fit_end: dt.date, history_end: dt.date) -> list[dict[str, Any]]:
    """The repeats of the anchored ``peaks`` (mappings with name, start, end, multiplier as in
    ``demand.peaks``; dates ISO strings) on their events in other years, named ``<event>_<year>``
    (``<event>-7d_<year>`` for one starting a week before the event, ...). ``fit_start`` ..
    ``fit_end`` (inclusive) is the fit window; repeats run to :data:`YEARS_AHEAD` years after
    ``history_end``. Each repeat carries ``source``: the fitted peak it copies."""
    anchored: dict[tuple[str, int], dict[str, Any]] = {}
    for p in peaks:
        s, e = dt.date.fromisoformat(p["start"]), dt.date.fromisoformat(p["end"])
        a = anchor(s, e)
        if a is None:
            continue
        key = (a[0], a[1])
        prev = anchored.get(key)
        if prev is None or s > prev["_start"]:  # the latest occurrence of the same uplift
            anchored[key] = {**p, "_start": s, "_len": (e - s).days, "_event": a[0], "_offset": a[1]}
    taken = [(dt.date.fromisoformat(p["start"]), dt.date.fromisoformat(p["end"])) for p in peaks]
    out: list[dict[str, Any]] = []
    for (event, offset), src in sorted(anchored.items(), key=lambda kv: kv[1]["_start"]):
        for year in range(fit_start.year, history_end.year + YEARS_AHEAD + 1):
            ev = EVENTS[event](year)
            s = ev + dt.timedelta(days=offset)
            e = s + dt.timedelta(days=src["_len"])
            if e < fit_start:
                continue
            if _overlaps(ev - dt.timedelta(days=MAX_ANCHOR_GAP_DAYS), ev + dt.timedelta(days=MAX_ANCHOR_GAP_DAYS), fit_start, fit_end):
                continue  # the fit window saw this year's event: what it found stands
            if any(_overlaps(s, e, a0, a1) for a0, a1 in taken):
                continue
            name = f"{event}_{year}" if offset == 0 else f"{event}{offset:+d}d_{year}"
            out.append({"name": name, "start": s.isoformat(), "end": e.isoformat(), "multiplier": src["multiplier"], "source": src["name"]})
            taken.append((s, e))
    out.sort(key=lambda p: p["start"])
    return out
