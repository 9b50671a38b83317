"""The planner's contact replay (sim.planner.replay) against the whole journey it stands in for:
the contacts it serves are the ones the journey sent, each finishes once, and with the scenario's
own staffing it gives the service the full simulation gives, day by day."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.calendar import MIN_PER_DAY, Calendar
from sim.contacts import ContactModel
from sim.loader import deep_merge, resolve_raw, scenario_from_dict
from sim.planner.observe import observe
from sim.planner.replay import demand_run, replay, replay_days, serve
from sim.staffing import centre_pools

ROOT = Path(__file__).resolve().parents[1]
WINDOW = (12, 26)  # planned days [12, 26) of a 30-day baseline


@pytest.fixture(scope="module")
def recorded():
    s = scenario_from_dict(deep_merge(resolve_raw(ROOT / "scenarios" / "baseline.yaml"), {"horizon_days": 30}))
    cal = Calendar(s)
    window = np.zeros(cal.days, dtype=bool)
    window[WINDOW[0]:WINDOW[1]] = True
    days = replay_days(cal, window)
    return s, cal, days, [demand_run(s, 5, r, *days) for r in range(2)]


def test_replayed_days_surround_the_window(recorded) -> None:
    _, cal, days, _ = recorded
    assert days == (WINDOW[0] - 7, min(cal.days, WINDOW[1] + 3))


def test_every_contact_sent_to_agents_finishes_once(recorded) -> None:
    s, cal, days, runs = recorded
    _, stream = runs[0]
    arrival = stream.rows["arrival_min"]
    assert len(stream) > 1000
    assert (arrival >= days[0] * MIN_PER_DAY).all() and (arrival < days[1] * MIN_PER_DAY).all()
    _, specs = centre_pools(s, cal)
    rec, table = serve(stream, specs, ContactModel.from_scenario(s), cal)
    assert len(np.unique(rec.contact_id)) == len(rec)
    assert rec.contact_id.max() < table.n
    # every contact but those still queued or in service at the replay's end is recorded
    ended = set(rec.contact_id.tolist())
    early = np.flatnonzero(arrival < (days[1] - 1) * MIN_PER_DAY)
    assert set(early.tolist()) <= ended
    # the follow-ups (ids past the stream's) arrive after their parent finished
    fu = rec.contact_id >= len(stream)
    assert fu.any()
    end_of = dict(zip(rec.contact_id.tolist(), rec.end_min.tolist(), strict=True))
    for cid, arr in zip(rec.contact_id[fu].tolist(), rec.arrival_min[fu].tolist(), strict=True):
        parent = int(table["parent"][cid])
        assert end_of[parent] <= arr + 1e-9


def test_own_staffing_replay_serves_like_the_whole_journey(recorded) -> None:
    """Same contacts, same staffing: per day and pool, the replay's share answered within the SLA
    matches the full simulation's. The tolerance is 3 standard errors of the mean daily
    difference (days are nearly independent: queues empty overnight); follow-ups are drawn
    afresh in the replay, which is the noise this allows for."""
    s, cal, _, runs = recorded
    ipd = cal.intervals_per_day
    full = [r for r, _ in runs]
    replays = [replay(s, st) for _, st in runs]
    for pool in ("chat", "phone", "email"):
        a, b = observe(full, pool, ipd), observe(replays, pool, ipd)
        sl_full = a.daily_service_level(ipd)[WINDOW[0]:WINDOW[1]]
        sl_replay = b.daily_service_level(ipd)[WINDOW[0]:WINDOW[1]]
        arrivals = a.arrivals.reshape(-1, ipd).sum(axis=1)[WINDOW[0]:WINDOW[1]]
        replay_arrivals = b.arrivals.reshape(-1, ipd).sum(axis=1)[WINDOW[0]:WINDOW[1]]
        ok = np.isfinite(sl_full) & np.isfinite(sl_replay)
        d = (sl_replay - sl_full)[ok]
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
        assert abs(d.mean()) <= 3 * se + 1e-9, (pool, d.mean(), se)
        # first contacts are the same; only the follow-ups' count varies
        rel = np.abs(replay_arrivals - arrivals) / np.maximum(arrivals, 1)
        assert rel.mean() < 0.05, (pool, rel.mean())
