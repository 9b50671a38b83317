"""Delivery stage: the delivery promise, processing and transit times, extra days of late and
failed deliveries, carrier outcome shares and peak degradation periods, from orders.csv's optional
columns."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from calibration.acquisition import detect_runs
from calibration.collector import (
    MIN_N_DURATION,
    MIN_N_RATE,
    Z95,
    Collector,
    duration_fit,
    proportion_ci,
    record_distribution,
    rounded,
    shares_to_one,
)
from calibration.summaries import Prepared, Window, daily_counts
from sim.scenario import Scenario

__all__ = ["fit_delivery"]


def fit_delivery(p: Prepared, base: Scenario, out: Collector, rng: np.random.Generator) -> dict[str, Any]:
    o = p.orders
    assert o is not None
    w = p.window
    D = w.fit_days
    fo = o[o["t"].to_numpy() < D]
    info: dict[str, Any] = {}
    status = fo["status"].to_numpy(dtype=object)
    has_status = pd.notna(status)
    # promise
    prom = fo["promised"].to_numpy()
    ok = np.isfinite(prom)
    if ok.sum() >= MIN_N_RATE:
        diff = prom[ok] - np.floor(fo["t"].to_numpy()[ok])
        med = float(np.median(diff))
        share_med = float(np.mean(diff == med))
        est = med if share_med >= 0.9 else float(np.mean(diff))
        total = est
        promise = max(total - base.fulfilment.promise_padding_days, 0.5)
        lo, hi = (float(np.quantile(diff, 0.025)), float(np.quantile(diff, 0.975))) if share_med < 0.9 else (est, est)
        out.fit("fulfilment.promise_days", rounded(promise, 3), {"value": (promise, lo, hi)}, "days",
                "promised date minus order date (mode when 90% agree, else mean; spread of dates as interval)", int(ok.sum()), "orders",
                share_at_mode=share_med)
        info["promise_total_days"] = promise + base.fulfilment.promise_padding_days
    else:
        out.why("fulfilment.promise_days", "no promised_delivery_date column/values")
        info["promise_total_days"] = base.fulfilment.promise_days + base.fulfilment.promise_padding_days
    # processing
    proc = fo["shipped"].to_numpy() - fo["t"].to_numpy()
    neg = int(np.sum(proc <= 0))
    if neg:
        out.notes.append(f"orders: {neg} shipment(s) at or before the order time were left out of the processing-time fit")
    f = duration_fit(proc, rng)
    if f is None:
        out.why("fulfilment.processing_days", "no (or too few) shipped_ts values")
    else:
        record_distribution(out, "fulfilment.processing_days", f, 1.0, "days", "shipped_ts - order_ts; maximum likelihood, family by AIC", "orders")
    # transit on time, extra days for late and failed deliveries (moment deconvolution)
    transit = fo["delivered"].to_numpy() - fo["shipped"].to_numpy()
    on_time = has_status & (status == "on_time")
    base_transit = np.where(on_time, transit, np.nan) if has_status.any() else transit
    f = duration_fit(base_transit, rng)
    if f is None:
        out.why("carrier.transit_days", "no (or too few) shipped_ts and delivered_ts values")
    else:
        record_distribution(out, "carrier.transit_days", f, 1.0, "days",
                    "delivered_ts - shipped_ts of on-time deliveries; maximum likelihood, family by AIC" if has_status.any() else
                    "delivered_ts - shipped_ts of all deliveries (no delivery_status); maximum likelihood", "orders")
    ot = transit[on_time & np.isfinite(transit) & (transit > 0)]
    for outcome, path in (("late", "carrier.late_extra_days"), ("failed_attempt", "carrier.failed_attempt_extra_days")):
        sel = has_status & (status == outcome)
        xs = transit[sel & np.isfinite(transit) & (transit > 0)]
        if len(xs) < MIN_N_DURATION or len(ot) < MIN_N_DURATION:
            out.why(path, f"too few {outcome} deliveries with shipped and delivered times")
            continue
        _extra_by_deconvolution(out, path, xs, ot, base, rng, outcome)
    info["failed_extra_mean"] = float(_value_mean(out, "carrier.failed_attempt_extra_days", base.carrier.failed_attempt_extra_days.mean))
    # outcome shares and peak degradation
    if has_status.sum() >= MIN_N_RATE:
        _fit_outcomes(fo, status, has_status, w, out)
    else:
        out.why("carrier.outcomes", "no delivery_status values")
        out.why("carrier.degradation", "no delivery_status values")
    out.why("carrier.lost_detect_days", "not observable in an order export")
    return info


def _value_mean(out: Collector, path: str, default: float) -> float:
    p = next((q for q in out.params if q.path == path), None)
    if p is None:
        return default
    return float(p.value["mean"]) if isinstance(p.value, dict) else float(p.value)


def _extra_by_deconvolution(out: Collector, path: str, xs: np.ndarray, ot: np.ndarray, base: Scenario, rng: np.random.Generator, outcome: str) -> None:
    """Extra days of late / failed deliveries: their transit = on-time transit + extra (independent),
    so mean and variance of the extra are differences of moments; bootstrap intervals."""

    def moments(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        m = a.mean() - b.mean()
        v = a.var() - b.var()
        return m, (math.sqrt(v) / m if v > 0 and m > 0 else 0.0)

    m, cv = moments(xs, ot)
    boots = []
    for _ in range(200):
        boots.append(moments(xs[rng.integers(0, len(xs), len(xs))], ot[rng.integers(0, len(ot), len(ot))]))
    bm = np.array(boots)
    if not m > 0:
        out.warn(f"{path}: {outcome} deliveries are not slower than on-time ones; the base value is kept")
        return
    base_dist = getattr(base.carrier, path.split(".")[1])
    family = base_dist.dist
    if family in ("deterministic",) and cv > 0.1:
        family = "lognormal"
    if family == "exponential" or family == "deterministic":
        value: dict[str, Any] = {"dist": family, "mean": rounded(m, 4)}
        intervals = {"mean": (m, float(np.quantile(bm[:, 0], 0.025)), float(np.quantile(bm[:, 0], 0.975)))}
    else:
        cv = max(cv, 0.06)
        value = {"dist": family, "mean": rounded(m, 4), "cv": rounded(cv, 4)}
        intervals = {"mean": (m, float(np.quantile(bm[:, 0], 0.025)), float(np.quantile(bm[:, 0], 0.975))),
                     "cv": (cv, float(np.quantile(bm[:, 1], 0.025)), float(np.quantile(bm[:, 1], 0.975)))}
    out.fit(path, value, intervals, "days", f"moments of {outcome} minus on-time transit (family kept from the base); bootstrap B=200",
            len(xs), "orders")


def _degradation_segments(issues: np.ndarray, shipped: np.ndarray, max_periods: int = 8) -> list[tuple[int, int]]:
    """Periods whose issue share (late + failed + lost) stands out, greedily (strongest first)."""
    segments: list[tuple[int, int]] = []
    for _ in range(max_periods):
        covered = np.zeros(len(issues), dtype=bool)
        for lo, hi in segments:
            covered[lo : hi + 1] = True
        p0 = issues[~covered].sum() / max(shipped[~covered].sum(), 1.0)
        found = detect_runs(issues, shipped * p0, np.zeros(len(issues)), ~covered & (shipped > 0), positive_only=True)
        if not found:
            break
        segments = sorted(segments + [(lo, hi) for lo, hi, _ in max(found, key=lambda run: run[1])[0]])
    return segments


def _fit_outcomes(fo: pd.DataFrame, status: np.ndarray, has_status: np.ndarray, w: Window, out: Collector) -> None:
    D = w.fit_days
    t = fo["t"].to_numpy()
    issue = np.isin(status, ["late", "failed_attempt", "lost"]) & has_status
    n_d = daily_counts(t[has_status], D)
    i_d = daily_counts(t[issue], D)
    segs = _degradation_segments(i_d, n_d)
    degraded = np.zeros(len(t), dtype=bool)
    day = np.floor(t).astype(np.int64)
    periods, intervals = [], {}
    clean = np.ones(D, dtype=bool)
    for lo, hi in segs:
        clean[lo : hi + 1] = False
    p_clean = i_d[clean].sum() / max(n_d[clean].sum(), 1)
    for lo, hi in segs:
        k, n = i_d[lo : hi + 1].sum(), n_d[lo : hi + 1].sum()
        m = (k / n) / p_clean
        se = m * math.sqrt(1 / max(k, 1) + 1 / max(i_d[clean].sum(), 1))
        start = (w.start + pd.Timedelta(days=lo)).date()
        end = (w.start + pd.Timedelta(days=hi)).date()
        label = f"fitted_{start:%Y%m%d}_{end:%Y%m%d}"
        periods.append({"name": label, "start": start.isoformat(), "end": end.isoformat(), "multiplier": rounded(m, 4)})
        intervals[label] = (m, m * math.exp(-Z95 * se / m), m * math.exp(Z95 * se / m))
        degraded |= (day >= lo) & (day <= hi)
    sel = has_status & ~degraded & (day < D)
    counts = {s: int(np.sum(sel & (status == s))) for s in ("on_time", "late", "failed_attempt", "lost", "damaged")}
    n = sum(counts.values())
    shares = shares_to_one({s: c / n for s, c in counts.items()})
    out.fit("carrier.outcomes", shares, {s: proportion_ci(c, n) for s, c in counts.items()}, "share",
            "delivery_status shares of orders outside degradation periods; Wilson intervals", n, "orders")
    out.fit("carrier.degradation", periods, intervals, "multiplier of late/failed/lost shares",
            "runs of days with a high issue share, binary segmentation; ratio of issue shares (delta method)", int(has_status.sum()), "orders")
