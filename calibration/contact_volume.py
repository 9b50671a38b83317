"""Contacts-only history: contact volume and weekday profile as their own arrival process.

Without an orders file the triggers of contacts are unknown, so the calibrated scenario gets a
direct contact stream, ``contacts.arrivals`` (:class:`sim.scenario.ContactArrivals`), instead of
orders: no new or existing customers (``demand.new_customers_per_day`` 0, ``initial_customers``
0), and every simulated contact comes from the stream. The stream is the log's whole volume (a log
without order links cannot tell first contacts from repeats and retries), so its contacts make no
follow-ups (``follow_ups: false``). The hour of day comes from ``contacts.hour_weights``, which the
contacts stage fits (:mod:`calibration.contacts`).

Daily counts on the fit window are modelled as independent over days with a mean
``per_day x weekday_factor[weekday]`` (factors averaging 1 over the week). The estimate is the mean
count per weekday (the Poisson maximum-likelihood estimate, also the least-squares one); its
interval uses the day-to-day spread of each weekday's counts (so over-dispersion widens it).
Days with (almost) no contacts on a weekday that normally has them (under a tenth of that
weekday's median) are taken as closures (holidays, gaps in the log): left out of the fit and
listed. Weekday factors need at least two of each weekday (14 days); with fewer the stream is
flat over the week and a warning says so, as it does when the volume rests on fewer than 7 days.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from calibration.collector import Z95, Collector, rounded, shares_to_one, sig
from calibration.summaries import Prepared, daily_counts
from sim.scenario import CHANNELS, Scenario

__all__ = ["CLOSED_SHARE", "MIN_DAYS_WEEKDAY", "fit_contact_arrivals"]

CLOSED_SHARE = 0.1
"""A day with fewer contacts than this share of its weekday's median is a closure."""
MIN_DAYS_WEEKDAY = 14
"""Fit-window days needed to fit weekday factors (two of each weekday)."""
MIN_DAYS_VOLUME = 7
"""Below this many days the volume is not a weekly average: a warning says so."""
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _eligible_reasons(base: Scenario, out: Collector, channels: list[str]) -> list[str]:
    """Scenario reasons that have a handle time (fitted or the base's) on every stream channel."""
    fitted = {q.path for q in out.params}
    ok = []
    for r, cfg in base.contacts.reasons.items():
        if all(ch in cfg.handle_time_min or f"contacts.reasons.{r}.handle_time_min.{ch}" in fitted for ch in channels):
            ok.append(str(r))
    return ok


def _mixes(fc: pd.DataFrame, base: Scenario, out: Collector) -> tuple[dict[str, float], dict[str, float], dict[str, Any]] | None:
    channels = fc["channel"].to_numpy(dtype=object)
    human = np.isin(channels, list(base.contacts.channels))
    n_h = int(human.sum())
    if n_h == 0:
        return None
    counts = {ch: int(np.sum(channels == ch)) for ch in CHANNELS}
    channel_mix = shares_to_one({ch: counts[ch] / n_h for ch in CHANNELS})
    used = [ch for ch, v in channel_mix.items() if v > 0]
    eligible = _eligible_reasons(base, out, used)
    if not eligible:
        return None
    reasons = fc["reason"].to_numpy(dtype=object)
    known = np.isin(reasons, eligible)
    diag: dict[str, Any] = {"channel_counts": {k: v for k, v in counts.items() if v}}
    if known.any():
        rc = {r: int(np.sum(reasons == r)) for r in eligible}
        reason_mix = shares_to_one({r: rc[r] / int(known.sum()) for r in eligible})
        diag["reason_counts"] = rc
        diag["reason_mix_from"] = "contacts with scenario reasons"
    else:
        reason_mix = shares_to_one({r: 1.0 / len(eligible) for r in eligible})
        diag["reason_mix_from"] = "no scenario reasons in the log: equal shares over the reasons with a handle time on the stream's channels"
        out.notes.append(
            "contacts.arrivals.reason_mix: the log has no scenario reasons, so the stream spreads its contacts evenly over "
            f"{', '.join(eligible)} (the pooled handle-time fit, applied by scaling every reason's base mean, keeps its mean over them)"
        )
    return {k: v for k, v in reason_mix.items() if v > 0}, channel_mix, diag


def fit_contact_arrivals(p: Prepared, base: Scenario, out: Collector) -> None:
    """Fit ``contacts.arrivals`` from a contacts log without orders (see the module docstring)."""
    c = p.contacts
    assert c is not None
    w = p.window
    D = w.fit_days
    fc = c[c["t"].to_numpy() < D]
    channels = fc["channel"].to_numpy(dtype=object)
    fc = fc[np.isin(channels, [*base.contacts.channels, "bot"])]
    mixes = _mixes(fc, base, out)
    if mixes is None:
        out.warn("contacts.arrivals: not fitted: no contacts on a channel of the base scenario with a handle time; "
                 "the calibrated scenario keeps the base's demand and simulates contacts from it")
        out.why("contacts.arrivals", "no contacts on the base's channels")
        return
    reason_mix, channel_mix, mix_diag = mixes
    y = daily_counts(fc["t"].to_numpy(), D).astype(float)
    dow = (w.start.day_of_week + np.arange(D)) % 7
    diag: dict[str, Any] = {"fit_days": D, "contacts": int(y.sum()), **mix_diag}
    intervals: dict[str, tuple[float, float, float]] = {}
    if D >= MIN_DAYS_WEEKDAY:
        med = np.array([np.median(y[dow == d]) for d in range(7)])
        closed = (med[dow] >= 10) & (y < CLOSED_SHARE * med[dow])
        mu, se = np.zeros(7), np.zeros(7)
        for d in range(7):
            v = y[(dow == d) & ~closed]
            mu[d] = v.mean() if len(v) else 0.0
            # day-to-day spread (over-dispersion included); Poisson when all days agree or only one
            sd = v.std(ddof=1) if len(v) > 1 else 0.0
            se[d] = max(sd, math.sqrt(max(mu[d], 0.0))) / math.sqrt(max(len(v), 1))
        per_day = float(mu.mean())
        se_p = float(math.sqrt(np.sum(se**2)) / 7)
        factors = mu / per_day if per_day > 0 else np.ones(7)
        for d in range(7):
            # delta method on mu_d / mean(mu), ignoring their (positive) covariance: a wider interval
            rel = math.sqrt((se[d] / mu[d]) ** 2 + (se_p / per_day) ** 2) if mu[d] > 0 and per_day > 0 else 0.0
            intervals[WEEKDAYS[d]] = (factors[d], max(factors[d] * (1 - Z95 * rel), 0.0), factors[d] * (1 + Z95 * rel))
        closed_days = [(w.start + pd.Timedelta(days=int(i))).date().isoformat() for i in np.flatnonzero(closed)]
        diag["closed_days"] = closed_days
        diag["weekday_means"] = mu.tolist()
        if closed_days:
            out.notes.append(
                f"contacts.arrivals: {len(closed_days)} day(s) with under {CLOSED_SHARE:.0%} of their weekday's median volume "
                f"(closures or gaps in the log) are left out of the volume fit: {', '.join(closed_days[:6])}{', ...' if len(closed_days) > 6 else ''}"
            )
        diag["trend_per_year"] = _trend(y, factors[dow], ~closed & (factors[dow] > 0), out)
        weekday_values = [rounded(float(f), 5) for f in factors]
        out.fit("contacts.arrivals.weekday_factors", weekday_values, intervals, "multiplier (mean 1 over the week)",
                "mean contacts per weekday / mean over the week (closures left out); delta-method intervals from the "
                "day-to-day spread", int((~closed).sum()), "contacts")
    else:
        per_day = float(y.mean())
        se_p = math.sqrt(max(y.sum(), 0.0)) / D if D < 2 else max(float(y.std(ddof=1)) / math.sqrt(D), math.sqrt(y.sum()) / D)
        weekday_values = [1.0] * 7
        out.warn(f"contacts.arrivals.weekday_factors: not fitted: the fit window has {D} day(s) and each weekday needs at "
                 f"least two ({MIN_DAYS_WEEKDAY} days); the contact stream is flat over the week")
        out.why("contacts.arrivals.weekday_factors", f"fit window of {D} day(s): fewer than {MIN_DAYS_WEEKDAY}")
        out.set("contacts.arrivals.weekday_factors", weekday_values)
        if D < MIN_DAYS_VOLUME:
            out.warn(f"contacts.arrivals.per_day: fitted from {D} day(s) only ({', '.join(WEEKDAYS[d] for d in sorted(set(dow.tolist())))}): "
                     "it is that day's volume, not a weekly average, and its interval assumes Poisson variation")
    out.fit("contacts.arrivals.per_day", sig(per_day), {"value": (per_day, max(per_day - Z95 * se_p, 0.0), per_day + Z95 * se_p)},
            "contacts per day", "mean daily contacts over the fit window, weekday-balanced (mean of the weekday means)"
            if D >= MIN_DAYS_WEEKDAY else "mean daily contacts over the fit window", D, "contacts", diag=diag)
    out.fit("contacts.arrivals.reason_mix", reason_mix, {}, "share", str(mix_diag["reason_mix_from"]), len(fc), "contacts")
    out.fit("contacts.arrivals.channel_mix", channel_mix, {}, "share", "channel shares of the human contacts", len(fc), "contacts")
    out.set("contacts.arrivals.follow_ups", False)
    # the stream is every contact: no customers, so no order-triggered contacts on top of it
    out.set("demand.new_customers_per_day", 0.0)
    out.set("demand.initial_customers", 0)
    out.notes.append(
        "contacts-only history: the calibrated scenario has no orders (demand.new_customers_per_day 0, no initial "
        "customers); its contacts come from contacts.arrivals, fitted to the log's daily volume and weekday profile, at "
        "the fitted hour profile. The stream is the log's whole volume, so it makes no repeat or retry contacts. To model "
        "how orders drive contacts, calibrate with an orders file too."
    )
    out.models["contact_arrivals"] = {"per_day": per_day, "weekday_factors": weekday_values, **diag}


def _trend(y: np.ndarray, f: np.ndarray, ok: np.ndarray, out: Collector) -> float | None:
    """Log-linear trend of weekday-adjusted daily volume (per year), warned about when it is
    significant (|t| > 3) and above 10% a year: the fitted stream is flat."""
    if ok.sum() < 28:
        return None
    t = np.flatnonzero(ok).astype(float)
    v = np.log(np.maximum(y[ok], 0.5) / f[ok])
    A = np.column_stack([np.ones_like(t), t])
    coef, *_ = np.linalg.lstsq(A, v, rcond=None)
    resid = v - A @ coef
    s2 = float(resid @ resid) / max(len(v) - 2, 1)
    se = math.sqrt(s2 / float(np.sum((t - t.mean()) ** 2)))
    per_year = math.expm1(coef[1] * 365.25)
    if abs(coef[1]) > 3 * se and abs(per_year) > 0.10:
        out.warn(f"contacts.arrivals: the weekday-adjusted volume trends by {per_year:+.0%} a year over the fit window "
                 "(t = {:.1f}); the fitted stream is flat at the window's mean, so later weeks will be off".format(coef[1] / se))
    return float(per_year)
