"""Backtest: simulate the calibrated scenario over the history's calendar and compare it with the
history, series by series, with the same summaries (:mod:`calibration.summaries`) on both sides.

Each replication runs :func:`sim.engine.simulate` with event tables, exports them as history frames
(:func:`calibration.synth.events_to_frames`, no mess) and summarises them in the worker process, so
only small arrays travel back. Weekly series are sums over 7-day blocks from the history's first
day; the error figure is the mean absolute percentage error (MAPE) of the replication mean against
the history, over the whole weeks of the fit window (after a warm-up, see :data:`WARMUP_WEEKS`) and
over the whole weeks of the holdout, which the fit did not see.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing as mp
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from calibration.schemas import History
from calibration.summaries import Prepared, Window, daily_counts, prepare, repeat_curve, weekly_sums
from sim.scenario import REASONS, Scenario

__all__ = ["WARMUP_WEEKS", "Backtest", "hour_profile_distance", "mape", "run_backtest", "summarise"]

WARMUP_WEEKS = 2
"""Whole weeks at the start left out of the fit-window MAPE of contacts and returns: the simulation
starts with no orders in flight, a real history does not."""
HANDLE_SAMPLE = 4000
REPEAT_HORIZON_MAX = 120


def summarise(p: Prepared) -> dict[str, Any]:
    """The series the backtest compares, from prepared history (real or simulated)."""
    w = p.window
    out: dict[str, Any] = {}
    if p.orders is not None:
        o = p.orders
        out["orders"] = daily_counts(o["t"].to_numpy(), w.days)
        out["new_customers"] = daily_counts(o.loc[o["first"].to_numpy(), "t"].to_numpy(), w.days)
        cohort_hi = min(60.0, w.fit_days / 2)
        horizon = int(min(REPEAT_HORIZON_MAX, max(w.fit_days - cohort_hi, 7)))
        rc = repeat_curve(o, (0.0, cohort_hi), horizon, float(w.fit_days))
        out["repeat_curve"] = rc[["t_days", "repeat_share", "repeat_orders"]].to_dict("list")
        out["order_value_quantiles"] = np.quantile(o["value"].to_numpy(), np.linspace(0.01, 0.99, 99)).tolist() if len(o) else []
    if p.contacts is not None:
        c = p.contacts
        t = c["t"].to_numpy()
        out["contacts"] = daily_counts(t, w.days)
        hour = np.clip(np.floor((t % 1.0) * 24).astype(np.int64), 0, 23)
        fit = t < w.fit_days
        out["contacts_by_hour"] = {"fit": np.bincount(hour[fit], minlength=24), "holdout": np.bincount(hour[~fit], minlength=24)}
        reasons = c["reason"].to_numpy(dtype=object)
        out["contacts_by_reason"] = {r: daily_counts(t[reasons == r], w.days) for r in REASONS if (reasons == r).any()}
        ch = c["channel"].to_numpy(dtype=object)
        out["contacts_by_channel"] = {k: daily_counts(t[ch == k], w.days) for k in sorted({str(x) for x in ch})}
        handle = c["handle_min"].to_numpy()
        rng = np.random.default_rng(0)
        samples = {}
        for k in sorted({str(x) for x in ch}):
            hv = handle[(ch == k) & np.isfinite(handle) & (handle > 0)]
            if len(hv):
                samples[k] = np.sort(rng.choice(hv, min(len(hv), HANDLE_SAMPLE), replace=False)).tolist()
        out["handle_min_samples"] = samples
    if p.returns is not None:
        out["returns"] = daily_counts(p.returns["t"].to_numpy(), w.days)
    return out


def _task(scenario_data: dict[str, Any], seed: int, rep: int, window: tuple[str, int, int], tz: str, kinds: tuple[str, ...]) -> dict[str, Any]:
    from calibration.synth import events_to_frames
    from sim.engine import simulate

    scenario = Scenario.model_validate(scenario_data)
    res = simulate(scenario, seed=seed, replication=rep, events=True)
    frames = events_to_frames(res, scenario, tz)
    got = {k: (frames[k] if k in kinds else None) for k in ("orders", "contacts", "returns", "staffing")}
    h = History(got["orders"], got["contacts"], got["returns"], got["staffing"], tz, {})
    w = Window(pd.Timestamp(window[0]), window[1], window[2])
    summary = summarise(prepare(h, w))
    summary["replication"] = rep
    return summary


def _pool_context() -> mp.context.BaseContext:
    if "forkserver" in mp.get_all_start_methods():
        return mp.get_context("forkserver")
    return mp.get_context("spawn")


def hour_profile_distance(sim: np.ndarray, actual: np.ndarray) -> float:
    """Total variation distance between two hour-of-day profiles given as counts per hour:
    half the sum of absolute differences of the hourly shares (0 = the same profile, 1 = disjoint;
    the largest share of contacts that would have to move to another hour). NaN if either is empty."""
    sim, actual = np.asarray(sim, dtype=float), np.asarray(actual, dtype=float)
    if sim.sum() <= 0 or actual.sum() <= 0:
        return math.nan
    return float(0.5 * np.abs(sim / sim.sum() - actual / actual.sum()).sum())


def mape(sim: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute percentage error over the weeks with a non-zero actual value (NaN if none)."""
    sim, actual = np.asarray(sim, dtype=float), np.asarray(actual, dtype=float)
    ok = actual > 0
    if not ok.any():
        return math.nan
    return float(np.mean(np.abs(sim[ok] - actual[ok]) / actual[ok]))


@dataclass
class Backtest:
    """History and simulated series (replication mean, min and max) with their error figures."""

    window: Window
    reps: int
    seed: int
    actual: dict[str, Any]
    simulated: list[dict[str, Any]]
    weekly: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    errors: dict[str, dict[str, float | None]] = field(default_factory=dict)
    hour_profile: dict[str, float | None] = field(default_factory=dict)
    """Contacts' hour-of-day profile, simulated (all replications) vs actual: total variation
    distance (:func:`hour_profile_distance`) on the fit window and on the holdout."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "reps": self.reps,
            "seed": self.seed,
            "weeks_fit": self.n_fit_weeks,
            "weeks_holdout": self.n_holdout_weeks,
            "warmup_weeks_excluded_for_contacts_and_returns": WARMUP_WEEKS,
            "weekly_mape": self.errors,
            "contacts_hour_profile_total_variation": self.hour_profile,
            "weekly": self.weekly,
        }

    @property
    def n_fit_weeks(self) -> int:
        return self.window.fit_days // 7

    @property
    def n_holdout_weeks(self) -> int:
        return max(self.window.days // 7 - math.ceil(self.window.fit_days / 7), 0)


def _weekly_compare(bt: Backtest) -> None:
    w = bt.window
    fit_weeks = w.fit_days // 7
    first_holdout = math.ceil(w.fit_days / 7)
    total_weeks = w.days // 7
    series: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
    for key in ("orders", "new_customers", "contacts", "returns"):
        if key in bt.actual and all(key in s for s in bt.simulated):
            series[key] = (bt.actual[key], [s[key] for s in bt.simulated])
    for r in REASONS:
        if r in bt.actual.get("contacts_by_reason", {}):
            series[f"contacts_{r}"] = (bt.actual["contacts_by_reason"][r], [s.get("contacts_by_reason", {}).get(r, np.zeros(w.days)) for s in bt.simulated])
    if "contacts_by_hour" in bt.actual and all("contacts_by_hour" in s for s in bt.simulated):
        for part in ("fit", "holdout"):
            d = hour_profile_distance(np.sum([s["contacts_by_hour"][part] for s in bt.simulated], axis=0), bt.actual["contacts_by_hour"][part])
            bt.hour_profile[part] = None if math.isnan(d) else d
    for key, (act, sims) in series.items():
        a = weekly_sums(act)
        sw = np.array([weekly_sums(s) for s in sims])
        mean = sw.mean(axis=0)
        bt.weekly[key] = {
            "week_start": [(w.start + pd.Timedelta(days=7 * i)).date().isoformat() for i in range(len(a))],
            "actual": a.tolist(),
            "simulated_mean": mean.tolist(),
            "simulated_min": sw.min(axis=0).tolist(),
            "simulated_max": sw.max(axis=0).tolist(),
        }
        warm = 0 if key in ("orders", "new_customers") else WARMUP_WEEKS
        lo = min(warm, max(fit_weeks - 1, 0))
        fit_err = mape(mean[lo:fit_weeks], a[lo:fit_weeks])
        hold_err = mape(mean[first_holdout:total_weeks], a[first_holdout:total_weeks]) if total_weeks > first_holdout else math.nan
        bt.errors[key] = {
            "fit": None if math.isnan(fit_err) else fit_err,
            "holdout": None if math.isnan(hold_err) else hold_err,
        }


def run_backtest(
    scenario: Scenario, actual: Prepared, timezone: str, reps: int = 3, seed: int = 0, workers: int | None = None,
) -> Backtest:
    """Simulate ``scenario`` (on the history's calendar) ``reps`` times and compare with ``actual``."""
    w = actual.window
    kinds = tuple(k for k, v in (("orders", actual.orders), ("contacts", actual.contacts), ("returns", actual.returns), ("staffing", actual.staffing)) if v is not None)
    data = scenario.model_dump(mode="json")
    win = (w.start.isoformat(), w.days, w.holdout_days)
    n_workers = max(1, min(reps, workers or os.cpu_count() or 1))
    results: list[dict[str, Any]] = []
    if n_workers == 1:
        results = [_task(data, seed, r, win, timezone, kinds) for r in range(reps)]
    else:
        with cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=_pool_context()) as pool:
            futures = [pool.submit(_task, data, seed, r, win, timezone, kinds) for r in range(reps)]
            results = [f.result() for f in futures]
    results.sort(key=lambda s: s["replication"])
    bt = Backtest(w, reps, seed, summarise(actual), results)
    _weekly_compare(bt)
    return bt
