"""History → fitted scenario parameters, each with an interval and its diagnostics.

:func:`calibrate` fits, on the history before the holdout (the last ``holdout_weeks`` weeks),
everything the given files identify, and keeps the base scenario's value for everything else
(listed, with the reason, in :attr:`Calibration.kept`). :attr:`Calibration.overrides` is a nested
mapping that, deep-merged over the base scenario, validates as a :class:`sim.scenario.Scenario`
whose calendar is the history's (``start_date`` = its first day, ``horizon_days`` = its length).

What is fitted from what (details in each ``_fit_*`` function and in the README):

* orders → new-customer arrivals (rate, weekday and hour profiles, trend, dated uplifts), the
  customers who bought before the history (``demand.initial_customers``), repurchase and dropout
  (MBG/NBD, the engine's process: :mod:`calibration.acquisition`; BG/NBD, Pareto/NBD and
  Gamma-Gamma are fitted for comparison and reported), the order-value distribution; with the
  optional columns, processing and transit times, carrier outcome shares, peak degradation periods
  and the delivery promise.
* contacts (+ orders/returns to know the triggers) → contact probability per trigger and reason,
  delay after the trigger, channel mix per reason, handle time per reason and channel, patience per
  real-time channel (abandoned = event, answered = censored), first-contact resolution, retries,
  repeat delays, the contact hour-of-day profile, containment where a ``bot`` channel is present.
* returns (+ orders) → return rate, request lag (truncated at the return window), outcome mix,
  refund delay, damaged-item return share.
* staffing → agents by hour and weekday per channel, as dated plans.

A fit that does not converge is never used: the base value is kept and a warning says why.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from calibration import btyd, distfit
from calibration.acquisition import (
    N_FIXED,
    AcquisitionFit,
    detect_runs,
    fit_acquisition,
    fit_mbgnbd,
)
from calibration.censored import CensoredFit, fit_interval_censored, fit_truncated
from calibration.schemas import History
from calibration.summaries import (
    DELIVERED_STATUSES,
    CalibrationInputError,
    Prepared,
    Window,
    customer_marks,
    daily_counts,
    history_window,
    prepare,
    rfm_table,
)
from sim.loader import deep_merge, scenario_from_dict
from sim.scenario import CHANNELS, REASONS, Scenario

__all__ = ["Calibration", "CalibrationInputError", "Param", "calibrate"]

Z95 = 1.959963984540054
MIN_N_DURATION = 30
"""Fewest observations for fitting a distribution (handle time, delay, patience, ...)."""
MIN_N_RATE = 20
"""Fewest triggers for fitting a probability."""
BOOTSTRAP_MAX_N = 3000
"""Samples up to this size get bootstrap intervals (B = 200); larger ones the delta method."""
SHAPE_CI_RATIO = 3.0
"""A day-censored delay fit whose cv interval spans more than this factor falls back to the
exponential (one parameter): the shape is not identified."""
COMPARISON_MAX_CUSTOMERS = 1_000
"""The BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma comparison fits use one common random subset of at most
this many customers, so their AICs compare (the Pareto/NBD fit is slow: a few seconds per 1,000 customers)."""


# ----------------------------------------------------------------------------- results


@dataclass
class Param:
    """One fitted scenario value.

    ``path`` is the dotted key in the scenario file; ``value`` what is written there (a number,
    a list, or a distribution mapping). ``intervals`` maps each reported quantity (``value`` for a
    plain number, ``mean`` / ``cv`` for a distribution, an index for a list) to
    ``(estimate, low, high)``: a 95% interval.
    """

    path: str
    value: Any
    intervals: dict[str, tuple[float, float, float]]
    unit: str
    method: str
    n: int
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def jf(v: Any) -> Any:
            return float(v) if isinstance(v, float | int | np.floating | np.integer) and math.isfinite(float(v)) else None

        return {
            "path": self.path,
            "value": _jsonable(self.value),
            "intervals": {k: {"estimate": jf(e), "low": jf(lo), "high": jf(hi)} for k, (e, lo, hi) in self.intervals.items()},
            "unit": self.unit,
            "method": self.method,
            "n": int(self.n),
            "diagnostics": _jsonable(self.diagnostics),
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(float(v)) else None
    if isinstance(v, dt.date | pd.Timestamp):
        return v.isoformat()
    return v


@dataclass
class Calibration:
    """The outcome of :func:`calibrate`."""

    overrides: dict[str, Any]
    params: list[Param]
    kept: list[dict[str, str]]
    warnings: list[str]
    notes: list[str]
    models: dict[str, Any]
    window: Window
    scenario: Scenario
    prepared: Prepared
    inputs: dict[str, Any]
    fitted_sections: dict[str, list[str]]

    def param(self, path: str) -> Param | None:
        return next((p for p in self.params if p.path == path), None)


class _Out:
    """Collects overrides, fitted parameters, warnings and diagnostics while fitting."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.base = base
        self.overrides: dict[str, Any] = {}
        self.params: list[Param] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.models: dict[str, Any] = {}
        self.reasons: dict[str, str] = {}  # path prefix -> why it was not fitted
        self.sections: dict[str, list[str]] = {}

    def base_at(self, path: str) -> Any:
        node: Any = self.base
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def set(self, path: str, value: Any) -> None:
        node = self.overrides
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def fit(self, path: str, value: Any, intervals: dict[str, tuple[float, float, float]], unit: str,
            method: str, n: int, section: str, diag: dict[str, Any] | None = None, **diagnostics: Any) -> None:
        self.set(path, value)
        self.params.append(Param(path, value, intervals, unit, method, int(n), {**(diag or {}), **diagnostics}))
        self.sections.setdefault(section, []).append(path)

    def why(self, prefix: str, reason: str) -> None:
        self.reasons.setdefault(prefix, reason)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def _dist_param(out: _Out, path: str, fit: Any, unit_factor: float, unit: str, method: str, section: str, extra: dict[str, Any] | None = None) -> bool:
    """Record a duration fit (distfit.DurationFit or CensoredFit) as a scenario distribution."""
    if fit is None:
        return False
    if not fit.converged or not math.isfinite(fit.mean):
        out.warn(f"{path}: the fit did not converge ({fit.message}); the base value is kept")
        out.why(path, f"fit did not converge: {fit.message}")
        return False
    value = {k: (_sig(v) if isinstance(v, float) else v) for k, v in fit.to_scenario_dist(unit_factor).items()}
    if value["dist"] == "weibull" and value["cv"] <= 0.05:
        value = {"dist": "gamma", "mean": value["mean"], "cv": value["cv"]}
    if value.get("cv", 1.0) > 20:
        out.warn(f"{path}: fitted cv {value['cv']:.1f} exceeds the scenario limit 20; the base value is kept")
        return False
    lo_m, hi_m = fit.mean_ci95
    intervals = {"mean": (fit.mean * unit_factor, lo_m * unit_factor, hi_m * unit_factor)}
    if value["dist"] != "exponential":
        intervals["cv"] = (fit.cv, *fit.cv_ci95)
    diag = fit.to_dict()
    diag.pop("fits", None)
    diag.update(extra or {})
    out.fit(path, value, intervals, unit, method, int(getattr(fit, "n", 0)), section, diag=diag)
    return True


def _duration(x: np.ndarray, rng: np.random.Generator, families: tuple[str, ...] = distfit.FAMILIES) -> distfit.DurationFit | None:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    if len(x) < MIN_N_DURATION or np.ptp(x) == 0:
        return None
    B = 200 if len(x) <= BOOTSTRAP_MAX_N else 0
    try:
        return distfit.fit_duration(x, families, B=B, rng=rng)
    except ValueError:
        return None


def _proportion(k: int, n: int) -> tuple[float, float, float]:
    p, (lo, hi) = distfit.proportion(int(k), int(n))
    return p, lo, hi


def _sig(v: float, digits: int = 6) -> float:
    """``v`` rounded to ``digits`` significant digits (readable scenario files)."""
    if v == 0 or not math.isfinite(v):
        return float(v)
    return float(f"{v:.{digits}g}")


def _round(v: float, digits: int = 6) -> float:
    return float(round(float(v), digits))


def _shares_to_one(shares: dict[str, float], digits: int = 6) -> dict[str, float]:
    """Round shares so that they sum to exactly 1 (the largest absorbs the rounding)."""
    out = {k: round(float(v), digits) for k, v in shares.items()}
    top = max(out, key=lambda k: out[k])
    out[top] = round(out[top] + 1.0 - sum(out.values()), digits)
    return out


# ----------------------------------------------------------------------------- orders


def _fit_orders(p: Prepared, base: Scenario, out: _Out, rng: np.random.Generator) -> dict[str, Any]:
    """Arrivals, repurchase and order values (see the module docstrings of calibration.acquisition)."""
    o = p.orders
    assert o is not None
    w = p.window
    D = w.fit_days
    info: dict[str, Any] = {}
    cust = customer_marks(o, D)
    repeat_t = o.loc[(~o["first"].to_numpy()) & (o["t"].to_numpy() < D), "t"].to_numpy()
    dow = w.dates()[:D].day_of_week.to_numpy()
    rp = base.repurchase
    trend = D >= 90
    if not trend:
        out.why("demand.annual_growth", "the fit window is shorter than 90 days: growth not identified")
    fit = fit_acquisition(cust, repeat_t, D, dow, k=rp.initial_repeat_purchases, sensitivity0=rp.peak_sensitivity, trend=trend)
    info["acquisition"] = fit
    out.models["arrivals_and_repurchase"] = _acq_diagnostics(fit, w)
    out.models["arrivals_series"] = {
        "date": [d.date().isoformat() for d in w.dates()[:D]],
        "first_seen": fit.daily_first_seen.tolist(),
        "new_expected": fit.daily_new_expected.tolist(),
        "existing_expected": fit.daily_existing_expected.tolist(),
    }
    out.notes.extend(fit.notes)
    if not fit.converged:
        out.warn(f"order arrivals / repurchase: the joint fit did not converge ({fit.message}); demand and repurchase keep the base values")
        out.why("demand", f"joint arrival/repurchase fit did not converge: {fit.message}")
        out.why("repurchase", f"joint arrival/repurchase fit did not converge: {fit.message}")
    else:
        _map_acquisition(fit, w, base, out)
    # comparisons: BG/NBD, Pareto/NBD, Gamma-Gamma, plain MBG/NBD on day-level RFM of the customers
    # the joint model takes as new
    out.models["repurchase_comparison"] = _btyd_comparison(o, w, fit, rng)
    # order value
    vals = o.loc[o["t"].to_numpy() < D, "value"].to_numpy()
    zero = int((vals <= 0).sum())
    vfit = _duration(vals, rng)
    if vfit is None:
        out.why("demand.order_value_usd", "too few positive order values")
    else:
        _dist_param(out, "demand.order_value_usd", vfit, 1.0, "USD", "maximum likelihood, family by AIC", "orders",
                    {"zero_values_dropped": zero})
    return info


def _acq_diagnostics(fit: AcquisitionFit, w: Window) -> dict[str, Any]:
    return {
        "model": "new-customer arrivals + MBG/NBD repurchase with the pre-history customer base (calibration.acquisition)",
        "loglik": fit.loglik,
        "customers": fit.n_customers,
        "converged": fit.converged,
        "message": fit.message,
        "existing_customers_modelled": fit.existing_modelled,
        "initial_repeat_purchases_assumed": fit.k,
        "parameters": {n: v for n, v in zip(["log_r", "log_alpha", "log_a", "log_b", "log_N0", "peak_sensitivity", *fit.design.names], fit.eta.tolist(), strict=True)},
        "std_errors": {n: (math.sqrt(v) if v > 0 else None) for n, v in zip(["log_r", "log_alpha", "log_a", "log_b", "log_N0", "peak_sensitivity", *fit.design.names], np.diag(fit.cov).tolist(), strict=True)},
        "expected_share_of_first_seen_who_are_new": float(fit.responsibilities.mean()) if len(fit.responsibilities) else None,
        "notes": fit.notes,
    }


def _map_acquisition(fit: AcquisitionFit, w: Window, base: Scenario, out: _Out) -> None:
    names = fit.design.names
    nb = len(names)

    def wd_factors(eta: np.ndarray) -> np.ndarray:
        beta = eta[N_FIXED:]
        f = np.exp(np.concatenate([[0.0], beta[1:7]]))
        return f / f.mean()

    def rate(eta: np.ndarray) -> np.ndarray:
        beta = eta[N_FIXED:]
        f = np.exp(np.concatenate([[0.0], beta[1:7]]))
        return np.array([math.exp(beta[0]) * f.mean()])

    n_cust = fit.n_customers
    v, se = fit.delta(rate)
    out.fit("demand.new_customers_per_day", _round(v[0], 4), {"value": (v[0], v[0] * math.exp(-Z95 * se[0] / v[0]), v[0] * math.exp(Z95 * se[0] / v[0]))},
            "customers/day", "joint maximum likelihood (arrivals + MBG/NBD); delta method", n_cust, "orders",
            note="off-peak mean before weekday, trend and uplift factors; includes referred customers")
    v, se = fit.delta(wd_factors)
    out.fit("demand.weekday_factors", [_round(x, 5) for x in v], {str(i): (v[i], v[i] - Z95 * se[i], v[i] + Z95 * se[i]) for i in range(7)},
            "factor (Monday..Sunday, mean 1)", "joint maximum likelihood; delta method", n_cust, "orders")
    if fit.design.trend:
        j = N_FIXED + names.index("trend_per_year")
        g, s = fit.eta[j], math.sqrt(max(fit.cov[j, j], 0.0))
        out.fit("demand.annual_growth", _round(math.expm1(g), 5), {"value": (math.expm1(g), math.expm1(g - Z95 * s), math.expm1(g + Z95 * s))},
                "share per year", "joint maximum likelihood; Wald on log growth factor", n_cust, "orders")
    shares = fit.hour_shares
    n_eff = max(fit.hour_weight_n, 1.0)
    hw = shares * 24
    out.fit("demand.hour_weights", [_round(x, 5) for x in hw],
            {str(h): (hw[h], 24 * _proportion(round(shares[h] * n_eff), round(n_eff))[1], 24 * _proportion(round(shares[h] * n_eff), round(n_eff))[2]) for h in range(24)},
            "relative weight (mean 1)", "responsibility-weighted hour shares of new customers' first orders (EM step); Wilson on the effective count", int(n_eff), "orders")
    peaks = []
    intervals = {}
    for j, name in enumerate(names):
        if not name.startswith("segment_"):
            continue
        lo, hi = (int(x) for x in name.split("_")[1:])
        b, s = fit.eta[N_FIXED + j], math.sqrt(max(fit.cov[N_FIXED + j, N_FIXED + j], 0.0))
        start = (w.start + pd.Timedelta(days=lo)).date()
        end = (w.start + pd.Timedelta(days=hi)).date()
        label = f"fitted_{start:%Y%m%d}_{end:%Y%m%d}"
        peaks.append({"name": label, "start": start.isoformat(), "end": end.isoformat(), "multiplier": _round(math.exp(b), 4)})
        intervals[label] = (math.exp(b), math.exp(b - Z95 * s), math.exp(b + Z95 * s))
    out.fit("demand.peaks", peaks, intervals, "multiplier", "residual runs of first-seen customers, binary segmentation, then joint maximum likelihood", n_cust, "orders",
            note="dated periods found in the fit window only: uplifts in the holdout are not known to the fit")
    rp_paths = {"r": "repurchase.rate_shape_r", "alpha": "repurchase.rate_scale_alpha_days", "a": "repurchase.dropout_a", "b": "repurchase.dropout_b"}
    for i, (key, path) in enumerate(rp_paths.items()):
        lo_t, hi_t = fit.ci_log(i)
        out.fit(path, _round(fit.theta[key], 6), {"value": (fit.theta[key], lo_t, hi_t)}, "days" if key == "alpha" else "",
                "MBG/NBD by joint maximum likelihood (Wald on the log scale)", n_cust, "orders")
    if fit.sensitivity_fitted:
        s = math.sqrt(max(fit.cov[5, 5], 0.0))
        out.fit("repurchase.peak_sensitivity", _round(fit.sensitivity, 5),
                {"value": (fit.sensitivity, max(fit.sensitivity - Z95 * s, 0.0), min(fit.sensitivity + Z95 * s, 1.0))},
                "share of each uplift", "joint maximum likelihood (time-changed purchase clock)", n_cust, "orders")
    else:
        out.why("repurchase.peak_sensitivity", "no dated uplift in the fit window: not identified")
    if fit.existing_modelled:
        lo_n, hi_n = fit.ci_log(4)
        out.fit("demand.initial_customers", round(fit.n0), {"value": (fit.n0, lo_n, hi_n)}, "customers",
                "joint maximum likelihood: first appearances of customers who bought before the history", n_cust, "orders")
    else:
        out.fit("demand.initial_customers", 0, {"value": (0.0, 0.0, 0.0)}, "customers", "no evidence of earlier customers (at the bound)", n_cust, "orders")
    out.why("repurchase.initial_repeat_purchases", "not identified from one order log (repeat purchases made before it)")
    if base.demand.referral_probability_per_promoter > 0:
        out.set("demand.referral_probability_per_promoter", 0.0)
        out.notes.append(
            "referred customers cannot be told apart from paid new customers in an order log: they are in "
            "new_customers_per_day, so referrals are switched off in the calibrated scenario"
        )
    del nb


def _btyd_comparison(o: pd.DataFrame, w: Window, fit: AcquisitionFit, rng: np.random.Generator) -> dict[str, Any]:
    """BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma on the day-level RFM of customers the joint
    model classifies as new (responsibility > 0.5), for the report; at most
    COMPARISON_MAX_CUSTOMERS customers (a random subset)."""
    try:
        rfm = rfm_table(o, w, w.fit_days)
    except ValueError as exc:
        return {"error": str(exc)}
    marks = customer_marks(o, w.fit_days)
    new = pd.Series(fit.responsibilities > 0.5, index=marks.index)
    rfm = rfm[new.reindex(rfm.index).fillna(False).to_numpy() & (rfm["T"].to_numpy() > 0)]
    if len(rfm) > COMPARISON_MAX_CUSTOMERS:
        rfm = rfm.iloc[np.sort(rng.choice(len(rfm), COMPARISON_MAX_CUSTOMERS, replace=False))]
    x, tx, T = rfm["frequency"].to_numpy(), rfm["recency"].to_numpy(), rfm["T"].to_numpy()
    res: dict[str, Any] = {"customers": len(rfm), "time_unit": "days", "note": "day-level RFM (btyd.rfm_summary) of customers classified as new; not time-changed"}
    for name, fn in (("bgnbd", btyd.fit_bgnbd), ("pareto_nbd", btyd.fit_pareto_nbd), ("mbgnbd", fit_mbgnbd)):
        try:
            res[name] = fn(x, tx, T).to_dict()
        except (ValueError, FloatingPointError) as exc:
            res[name] = {"error": str(exc)}
    rep = rfm[rfm["frequency"] > 0]
    try:
        res["gamma_gamma"] = btyd.fit_gamma_gamma(rep["frequency"].to_numpy(), rep["monetary_value"].to_numpy()).to_dict()
        res["gamma_gamma"]["note"] = "spend heterogeneity across customers; the scenario draws every order value from one distribution, so it is reported, not mapped"
    except (ValueError, FloatingPointError) as exc:
        res["gamma_gamma"] = {"error": str(exc)}
    aics: dict[str, float] = {k: float(v["aic"]) for k, v in res.items() if isinstance(v, dict) and v.get("aic") is not None and k != "gamma_gamma"}
    if aics:
        res["best_by_aic"] = min(aics, key=aics.__getitem__)
    return res


# ----------------------------------------------------------------------------- delivery


def _fit_delivery(p: Prepared, base: Scenario, out: _Out, rng: np.random.Generator) -> dict[str, Any]:
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
        out.fit("fulfilment.promise_days", _round(promise, 3), {"value": (promise, lo, hi)}, "days",
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
    f = _duration(proc, rng)
    if f is None:
        out.why("fulfilment.processing_days", "no (or too few) shipped_ts values")
    else:
        _dist_param(out, "fulfilment.processing_days", f, 1.0, "days", "shipped_ts - order_ts; maximum likelihood, family by AIC", "orders")
    # transit on time, extra days for late and failed deliveries (moment deconvolution)
    transit = fo["delivered"].to_numpy() - fo["shipped"].to_numpy()
    on_time = has_status & (status == "on_time")
    base_transit = np.where(on_time, transit, np.nan) if has_status.any() else transit
    f = _duration(base_transit, rng)
    if f is None:
        out.why("carrier.transit_days", "no (or too few) shipped_ts and delivered_ts values")
    else:
        _dist_param(out, "carrier.transit_days", f, 1.0, "days",
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


def _value_mean(out: _Out, path: str, default: float) -> float:
    p = next((q for q in out.params if q.path == path), None)
    if p is None:
        return default
    return float(p.value["mean"]) if isinstance(p.value, dict) else float(p.value)


def _extra_by_deconvolution(out: _Out, path: str, xs: np.ndarray, ot: np.ndarray, base: Scenario, rng: np.random.Generator, outcome: str) -> None:
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
        value: dict[str, Any] = {"dist": family, "mean": _round(m, 4)}
        intervals = {"mean": (m, float(np.quantile(bm[:, 0], 0.025)), float(np.quantile(bm[:, 0], 0.975)))}
    else:
        cv = max(cv, 0.06)
        value = {"dist": family, "mean": _round(m, 4), "cv": _round(cv, 4)}
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


def _fit_outcomes(fo: pd.DataFrame, status: np.ndarray, has_status: np.ndarray, w: Window, out: _Out) -> None:
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
        periods.append({"name": label, "start": start.isoformat(), "end": end.isoformat(), "multiplier": _round(m, 4)})
        intervals[label] = (m, m * math.exp(-Z95 * se / m), m * math.exp(Z95 * se / m))
        degraded |= (day >= lo) & (day <= hi)
    sel = has_status & ~degraded & (day < D)
    counts = {s: int(np.sum(sel & (status == s))) for s in ("on_time", "late", "failed_attempt", "lost", "damaged")}
    n = sum(counts.values())
    shares = _shares_to_one({s: c / n for s, c in counts.items()})
    out.fit("carrier.outcomes", shares, {s: _proportion(c, n) for s, c in counts.items()}, "share",
            "delivery_status shares of orders outside degradation periods; Wilson intervals", n, "orders")
    out.fit("carrier.degradation", periods, intervals, "multiplier of late/failed/lost shares",
            "runs of days with a high issue share, binary segmentation; ratio of issue shares (delta method)", int(has_status.sum()), "orders")


# ----------------------------------------------------------------------------- contacts


def _contact_hour_cdf(shares: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """P(a contact's drawn time of day < f) for day fractions f, hours uniform inside."""
    cum = np.concatenate(([0.0], np.cumsum(shares)))

    def cdf(f: np.ndarray) -> np.ndarray:
        h = np.clip(np.floor(f * 24).astype(np.int64), 0, 23)
        return cum[h] + (f * 24 - h) * shares[h]

    return cdf


def _fit_contacts(p: Prepared, base: Scenario, out: _Out, rng: np.random.Generator, delivery: dict[str, Any]) -> None:
    c = p.contacts
    assert c is not None
    w = p.window
    D = w.fit_days
    fc = c[c["t"].to_numpy() < D]
    reasons = fc["reason"].to_numpy(dtype=object)
    known = np.isin(reasons, REASONS)
    unmapped = sorted({str(r) for r in reasons[~known]})
    if unmapped:
        out.notes.append(
            f"contacts: {int((~known).sum())} contact(s) have reasons outside the scenario's ({', '.join(unmapped[:8])}"
            f"{', ...' if len(unmapped) > 8 else ''}): they count for channel-level fits (handle time scaling, patience, hour profile) only"
        )
    out.models["contacts"] = {"rows_in_fit_window": len(fc), "unmapped_reasons": unmapped,
                              "with_order_id": int(fc["order_id"].notna().sum())}
    channels = fc["channel"].to_numpy(dtype=object)
    human = channels != "bot"
    base_channels = set(base.contacts.channels)
    foreign = sorted({str(ch) for ch in channels[human]} - base_channels)
    if foreign:
        out.warn(f"contacts: channel(s) {', '.join(foreign)} are in the data but not in the base scenario; their contacts are left out of the channel mix")
    # hour-of-day profile of contacts (the engine keeps the day of trigger + delay of every
    # customer contact, first or follow-up, and draws its hour from this profile)
    hours = np.floor((fc["t"].to_numpy() % 1.0) * 24).astype(np.int64)
    cnt = np.bincount(np.clip(hours, 0, 23), minlength=24)
    n = int(cnt.sum())
    shares = cnt / max(n, 1)
    if n >= 500:
        hw = shares * 24
        out.fit("contacts.hour_weights", [_round(x, 5) for x in hw],
                {str(h): (hw[h], 24 * _proportion(int(cnt[h]), n)[1], 24 * _proportion(int(cnt[h]), n)[2]) for h in range(24)},
                "relative weight (mean 1)", "hour-of-day shares of created_ts; Wilson intervals", n, "contacts")
        hour_shares = shares
    else:
        out.why("contacts.hour_weights", "fewer than 500 contacts")
        hw0 = base.contacts.hour_weights
        hour_shares = np.asarray(hw0, dtype=float) / sum(hw0) if hw0 else None  # type: ignore[assignment]
    cdf_h = _contact_hour_cdf(hour_shares) if hour_shares is not None else None
    _fit_handle_times(fc, base, out, rng, known)
    _fit_patience_retry(c, base, out, rng, D, cdf_h)
    out.models["distribution_curves"] = _distribution_curves(fc)
    _fit_resolution(fc, base, out, known, D, cdf_h)
    _fit_channel_mix(fc, base, out, known)
    if (channels == "bot").any():
        _fit_containment(fc, base, out, D, cdf_h)
    else:
        out.why("automation", "no bot contacts in the data")
        for r in REASONS:
            out.why(f"contacts.reasons.{r}.containment", "no bot contacts in the data")
    if p.orders is not None:
        _fit_contact_rates(p, base, out, rng, delivery, hour_shares)
    else:
        for r in REASONS:
            out.why(f"contacts.reasons.{r}.probability", "no orders file: contact triggers unknown")
            out.why(f"contacts.reasons.{r}.delay_hours", "no orders file: contact triggers unknown")


CURVE_POINTS = 120


def _distribution_curves(fc: pd.DataFrame) -> dict[str, Any]:
    """Empirical vs fitted curves per channel for the report (a few hundred numbers, not samples):
    handle time as cumulative share (all reasons pooled, family by AIC), and patience as survival,
    Kaplan-Meier against the censored fit (abandoned = event, answered = censored at its wait)."""
    curves: dict[str, Any] = {"handle_time": {}, "patience": {}}
    handle = fc["handle_min"].to_numpy(dtype=float)
    wait = fc["wait_min"].to_numpy(dtype=float)
    ab = fc["abandoned"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    answered = np.isfinite(fc["answered"].to_numpy(dtype=float))
    channels = fc["channel"].to_numpy(dtype=object)
    for ch in sorted({str(x) for x in channels} - {"bot"}):
        on = channels == ch
        x = handle[on & np.isfinite(handle) & (handle > 0)]
        if len(x) >= MIN_N_DURATION:
            f = distfit.fit_duration(x, B=0)
            q = np.quantile(x, np.linspace(0.005, 0.995, CURVE_POINTS))
            curves["handle_time"][ch] = {
                "minutes": q.tolist(), "empirical": np.linspace(0.005, 0.995, CURVE_POINTS).tolist(),
                "fitted": (1.0 - distfit.family_sf(f.family, f.params, q)).tolist(), "family": f.family, "n": len(x),
            }
        event = on & ab & np.isfinite(wait) & (wait > 0)
        cens = on & answered & ~ab & np.isfinite(wait) & (wait > 0)
        if event.sum() >= MIN_N_DURATION // 3:
            wv = np.concatenate([wait[event], wait[cens]])
            av = np.concatenate([np.ones(int(event.sum()), bool), np.zeros(int(cens.sum()), bool)])
            f = distfit.fit_patience(wv, av, B=0)
            km = distfit.kaplan_meier(wv, av)
            step = max(1, len(km) // CURVE_POINTS)
            t = km["time"].to_numpy()[::step]
            curves["patience"][ch] = {
                "minutes": t.tolist(), "kaplan_meier": km["survival"].to_numpy()[::step].tolist(),
                "fitted": distfit.family_sf(f.family, f.params, t).tolist(), "family": f.family,
                "events": int(event.sum()), "censored": int(cens.sum()),
            }
    return curves


def _fit_handle_times(fc: pd.DataFrame, base: Scenario, out: _Out, rng: np.random.Generator, known: np.ndarray) -> None:
    handle = fc["handle_min"].to_numpy()
    ok = np.isfinite(handle) & (handle > 0) & fc["human"].to_numpy()
    if ok.sum() == 0:
        out.why("contacts.reasons", "no handle_time_sec values")
        return
    factor = 1.0 - base.automation.agent_assist_handle_time_reduction if base.automation.enabled else 1.0
    reasons = fc["reason"].to_numpy(dtype=object)
    channels = fc["channel"].to_numpy(dtype=object)
    fitted_cells = set()
    for r in REASONS:
        cfg = base.contacts.reasons.get(r)  # type: ignore[call-overload]
        if cfg is None:
            continue
        for ch in CHANNELS:
            sel = ok & (reasons == r) & (channels == ch)
            if ch not in base.contacts.channels:
                continue
            f = _duration(handle[sel] / factor, rng)
            path = f"contacts.reasons.{r}.handle_time_min.{ch}"
            if f is None:
                if sel.sum():
                    out.why(path, f"only {int(sel.sum())} answered contact(s) with a handle time (need {MIN_N_DURATION})")
                continue
            if _dist_param(out, path, f, 1.0, "minutes", "handle_time_sec / 60; maximum likelihood, family by AIC" + (" (divided by the agent-assist factor)" if factor != 1 else ""), "contacts"):
                fitted_cells.add((r, ch))
    # channels whose data carry no scenario reason (e.g. a call-centre log): pooled fit, applied by
    # scaling the base means of every reason on that channel
    for ch in CHANNELS:
        if ch not in base.contacts.channels or any(cell[1] == ch for cell in fitted_cells):
            continue
        sel = ok & (channels == ch) & ~known
        f = _duration(handle[sel] / factor, rng)
        if f is None or not f.converged:
            continue
        base_means = [cfg.handle_time_min[ch].mean for cfg in base.contacts.reasons.values() if ch in cfg.handle_time_min]  # type: ignore[index]
        if not base_means:
            continue
        ref = float(np.mean(base_means))
        scale = f.mean / ref
        diag = f.to_dict()
        diag.pop("fits", None)
        for r, cfg in base.contacts.reasons.items():
            if ch not in cfg.handle_time_min:
                continue
            bm = cfg.handle_time_min[ch].mean  # type: ignore[index]
            value = f.to_scenario_dist(1.0)
            value["mean"] = _round(bm * scale, 4)
            out.fit(f"contacts.reasons.{r}.handle_time_min.{ch}", value,
                    {"mean": (bm * scale, bm * f.mean_ci95[0] / ref, bm * f.mean_ci95[1] / ref), **({"cv": (f.cv, *f.cv_ci95)} if value["dist"] != "exponential" else {})},
                    "minutes", f"pooled {ch} fit over contacts with non-scenario reasons (family and cv), applied by scaling the base mean of each reason ({scale:.3f}x)",
                    f.n, "contacts", diag={**diag, "pooled_mean_min": f.mean, "base_reference_mean_min": ref})


def _median_of(f: distfit.DurationFit) -> float:
    """Median of a fitted duration distribution (by its scenario form)."""
    d = f.to_scenario_dist(1.0)
    return float(_scenario_dist(d).quantile(np.array([0.5]))[0])


def _scenario_dist(d: dict[str, Any]) -> Any:
    from sim.distributions import Deterministic, Exponential, Gamma, Lognormal, Weibull

    cls = {"deterministic": Deterministic, "exponential": Exponential, "lognormal": Lognormal, "gamma": Gamma, "weibull": Weibull}[d["dist"]]
    return cls(**{k: v for k, v in d.items() if k != "dist"})


def _fit_patience_retry(c: pd.DataFrame, base: Scenario, out: _Out, rng: np.random.Generator, D: int,
                        cdf_h: Callable[[np.ndarray], np.ndarray] | None) -> None:
    fc = c[c["t"].to_numpy() < D]
    channels = fc["channel"].to_numpy(dtype=object)
    ab = fc["abandoned"].to_numpy()
    answered = np.isfinite(fc["answered"].to_numpy())
    wait = fc["wait_min"].to_numpy()
    for ch, cfg in base.contacts.channels.items():
        path = f"contacts.channels.{ch}.patience_min"
        if not cfg.realtime:
            continue
        on = channels == ch
        is_ab = np.array([bool(v) if v is not pd.NA and v == v else False for v in ab], dtype=bool) & on
        known_wait = np.isfinite(wait)
        event = is_ab & known_wait
        cens = on & answered & ~is_ab & known_wait
        if event.sum() < MIN_N_DURATION // 3:
            out.why(path, f"{int(event.sum())} abandoned {ch} contact(s) with a known wait (wait_sec) in the data")
            continue
        wv = np.concatenate([wait[event], wait[cens]])
        av = np.concatenate([np.ones(int(event.sum()), bool), np.zeros(int(cens.sum()), bool)])
        try:
            f = distfit.fit_patience(np.maximum(wv, 0.0), av, B=200 if len(wv) <= BOOTSTRAP_MAX_N else 0, rng=rng)
        except ValueError as exc:
            out.why(path, f"patience not estimable: {exc}")
            continue
        longest = float(wv.max())
        median = _median_of(f)
        km = distfit.kaplan_meier(wv[wv > 0], av[wv > 0])
        below = km.loc[km["survival"] <= 0.5, "time"]
        km_median = float(below.iloc[0]) if len(below) else None
        if _dist_param(out, path, f, 1.0, "minutes", "right-censored maximum likelihood (abandoned = event, answered = censored at its wait); family by AIC",
                       "contacts", {"abandoned": int(event.sum()), "answered": int(cens.sum()), "median_min": median,
                                    "kaplan_meier_median_min": km_median, "longest_wait_min": longest}) and f.mean > longest:
            out.notes.append(
                f"{path}: the fitted mean ({f.mean:.1f} min) lies beyond the longest observed wait ({longest:.1f} min): it rests on the "
                f"fitted family's tail; the median ({median:.1f} min) is what the data pin down"
            )
    # retries after abandoning: the next contact of the same order and reason
    linked = fc[fc["order_id"].notna().to_numpy()]
    if len(linked) == 0:
        return
    linked = linked.sort_values("t", kind="stable")
    nxt_t = linked.groupby(["order_id", "reason"], sort=False)["t"].shift(-1).to_numpy()
    ab_l = np.array([bool(v) if v is not pd.NA and v == v else False for v in linked["abandoned"].to_numpy()], dtype=bool)
    ch_l = linked["channel"].to_numpy(dtype=object)
    ab_time = linked["t"].to_numpy() + linked["wait_min"].to_numpy() / 1440.0
    for ch, cfg in base.contacts.channels.items():
        if not cfg.realtime:
            continue
        sel = ab_l & (ch_l == ch) & np.isfinite(ab_time) & (ab_time < D - 2)
        if sel.sum() < MIN_N_RATE:
            continue
        retried = sel & np.isfinite(nxt_t) & (nxt_t < D)
        k, n = int(retried.sum()), int(sel.sum())
        est = _proportion(k, n)
        out.fit(f"contacts.channels.{ch}.retry_after_abandon", _round(est[0], 5), {"value": est}, "share",
                "abandoned contacts followed by another contact on the same order and reason (Wilson)", n, "contacts")
        _followup_delay(out, f"contacts.channels.{ch}.retry_delay_hours", ab_time[retried], nxt_t[retried], cdf_h, rng,
                        "abandonment (created + wait) to the next contact on the same order and reason")


def _followup_delay(out: _Out, path: str, tau: np.ndarray, nxt: np.ndarray, cdf_h: Callable[[np.ndarray], np.ndarray] | None,
                    rng: np.random.Generator, what: str) -> bool:
    """Delay (hours) from a contact's end / abandonment ``tau`` to the follow-up at ``nxt`` (days).
    With a contact hour profile the engine keeps the follow-up's day and draws its hour, so the delay
    is fitted day-censored like first contacts' delays; without one, from the exact gaps."""
    if cdf_h is None:
        f = _duration((nxt - tau) * 24.0, rng)
        return f is not None and _dist_param(out, path, f, 1.0, "hours", what + "; maximum likelihood, family by AIC", "contacts")
    cday = np.floor(nxt)
    ok = cday >= np.floor(tau)
    if ok.sum() < MIN_N_DURATION:
        out.why(path, f"{int(ok.sum())} follow-up contact(s)")
        return False
    fit = _day_censored_delay(tau[ok], cday[ok], cdf_h)
    if not _identified(fit):
        out.why(path, "not identified: the delay is short next to the day resolution of the contact times (the hour is drawn from the profile)")
        out.notes.append(f"{path}: kept from the base; a delay much shorter than a day cannot be told apart at day resolution")
        return False
    return _dist_param(out, path, fit, 1.0, "hours", what + "; day-censored maximum likelihood (the day is kept, the hour drawn from the contact profile)",
                       "contacts", {"follow_ups_before_their_trigger_dropped": int((~ok).sum())})


def _identified(fit: CensoredFit) -> bool:
    """A day-censored fit pins its mean down: an interval neither degenerate (a flat likelihood) nor
    spanning more than a factor 5."""
    lo, hi = fit.mean_ci95
    return bool(fit.converged and lo > 0 and 1.0005 < hi / lo < 5.0)


def _fit_resolution(fc: pd.DataFrame, base: Scenario, out: _Out, known: np.ndarray, D: int,
                    cdf_h: Callable[[np.ndarray], np.ndarray] | None) -> None:
    res = fc["resolved"].to_numpy()
    has = np.array([v is not pd.NA and v == v for v in res], dtype=bool)
    answered = np.isfinite(fc["handle_min"].to_numpy()) | np.isfinite(fc["answered"].to_numpy())
    reasons = fc["reason"].to_numpy(dtype=object)
    if not has.any():
        for r in REASONS:
            out.why(f"contacts.reasons.{r}.first_contact_resolution", "no resolved values")
        return
    resolved = np.array([bool(v) if h else False for v, h in zip(res, has, strict=True)])
    for r, cfg in base.contacts.reasons.items():
        sel = has & answered & (reasons == r) & fc["human"].to_numpy()
        n = int(sel.sum())
        if n < MIN_N_RATE:
            continue
        k = int((resolved & sel).sum())
        est, lo, hi = _proportion(k, n)
        e = cfg.escalation
        fcr = min(est / (1 - e), 1.0)
        out.fit(f"contacts.reasons.{r}.first_contact_resolution", _round(fcr, 5), {"value": (fcr, min(lo / (1 - e), 1.0), min(hi / (1 - e), 1.0))}, "share",
                "resolved share of answered contacts / (1 - base escalation share); Wilson", n, "contacts",
                escalation_assumed=e)
    # repeat delay: unresolved answered contact to the next contact of the same order and reason
    linked = fc[fc["order_id"].notna().to_numpy()].sort_values("t", kind="stable")
    if len(linked):
        nxt = linked.groupby(["order_id", "reason"], sort=False)["t"].shift(-1).to_numpy()
        rv = linked["resolved"].to_numpy()
        unres = np.array([(v is not pd.NA and v == v and not bool(v)) for v in rv], dtype=bool)
        end = linked["answered"].to_numpy() + linked["handle_min"].to_numpy() / 1440.0
        # unresolved contacts ending at least a week before the window closes (long gaps not cut off)
        sel = unres & np.isfinite(nxt) & np.isfinite(end) & (end < D - 7)
        first_path = f"contacts.reasons.{next(iter(base.contacts.reasons))}.repeat_delay_hours"
        if _followup_delay(out, first_path, end[sel], nxt[sel], cdf_h, np.random.default_rng(1),
                           "end of an unresolved contact to the next contact on the same order and reason (all reasons pooled; the same value is set for every reason)"):
            value = next(q for q in out.params if q.path == first_path).value
            for r in list(base.contacts.reasons)[1:]:
                out.set(f"contacts.reasons.{r}.repeat_delay_hours", value)


def _fit_channel_mix(fc: pd.DataFrame, base: Scenario, out: _Out, known: np.ndarray) -> None:
    reasons = fc["reason"].to_numpy(dtype=object)
    channels = fc["channel"].to_numpy(dtype=object)
    first = fc["first_touch"].to_numpy(dtype=object)
    linked = np.array([v is True or v is np.True_ for v in first])
    any_link = fc["order_id"].notna().any()
    for r in REASONS:
        if r not in base.contacts.reasons:
            continue
        sel = (reasons == r) & (channels != "bot") & np.isin(channels, list(base.contacts.channels))
        if any_link:
            sel &= linked
        n = int(sel.sum())
        path = f"contacts.reasons.{r}.channel_mix"
        if n < MIN_N_RATE:
            out.why(path, f"{n} first contact(s) with this reason")
            continue
        counts = {ch: int(np.sum(sel & (channels == ch))) for ch in CHANNELS}
        shares = _shares_to_one({ch: counts[ch] / n for ch in CHANNELS})
        handle = base.contacts.reasons[r].handle_time_min  # type: ignore[index]
        missing = [ch for ch, v in shares.items() if v > 0 and ch not in handle and f"contacts.reasons.{r}.handle_time_min.{ch}" not in [q.path for q in out.params]]
        if missing:
            out.warn(f"{path}: channel(s) {missing} are used but have no handle time in the base; the base mix is kept")
            continue
        out.fit(path, shares, {ch: _proportion(counts[ch], n) for ch in CHANNELS}, "share",
                "channel shares of first contacts (first per order and reason)" if any_link else "channel shares of all contacts (no order_id to find first contacts)",
                n, "contacts")


def _fit_containment(fc: pd.DataFrame, base: Scenario, out: _Out, D: int, cdf_h: Callable[[np.ndarray], np.ndarray] | None) -> None:
    reasons = fc["reason"].to_numpy(dtype=object)
    channels = fc["channel"].to_numpy(dtype=object)
    first = np.array([v is True or v is np.True_ for v in fc["first_touch"].to_numpy(dtype=object)])
    any_link = fc["order_id"].notna().any()
    out.set("automation.enabled", True)
    for r in REASONS:
        if r not in base.contacts.reasons:
            continue
        sel = (reasons == r) & (first if any_link else np.ones(len(fc), bool))
        n = int(sel.sum())
        if n < MIN_N_RATE:
            continue
        k = int(np.sum(sel & (channels == "bot")))
        est = _proportion(k, n)
        out.fit(f"contacts.reasons.{r}.containment", _round(est[0], 5), {"value": est}, "share",
                "bot share of first contacts (Wilson)", n, "contacts")
    if any_link:
        linked = fc[fc["order_id"].notna().to_numpy()].sort_values("t", kind="stable")
        nxt_t = linked.groupby(["order_id", "reason"], sort=False)["t"].shift(-1).to_numpy()
        is_bot = linked["channel"].to_numpy(dtype=object) == "bot"
        sel = is_bot & (linked["t"].to_numpy() < D - 2)
        if sel.sum() >= MIN_N_RATE:
            k = int(np.sum(sel & np.isfinite(nxt_t)))
            est = _proportion(k, int(sel.sum()))
            out.fit("automation.contained_come_back", _round(est[0], 5), {"value": est}, "share",
                    "bot contacts followed by another contact on the same order and reason (Wilson)", int(sel.sum()), "contacts")
            back = sel & np.isfinite(nxt_t) & (nxt_t < D)
            _followup_delay(out, "automation.come_back_delay_hours", linked["t"].to_numpy()[back], nxt_t[back], cdf_h,
                            np.random.default_rng(2), "bot contact to the customer's next contact on the same order and reason")


def _issue_flags(o: pd.DataFrame, promise_total: float) -> np.ndarray:
    """Per order: True if its delivery had an issue that raises WISMO (delivered after the promise,
    failed attempt or lost), False if not, NaN if unknown."""
    status = o["status"].to_numpy(dtype=object)
    t, deliv = o["t"].to_numpy(), o["delivered"].to_numpy()
    out = np.full(len(o), np.nan)
    known_status = pd.notna(status)
    hard = known_status & np.isin(status, ["failed_attempt", "lost"])
    late_by_time = np.isfinite(deliv) & (deliv > t + promise_total)
    ontime_by_time = np.isfinite(deliv) & ~late_by_time
    # without a delivery time, an on-time or late carrier status does not say whether the parcel
    # came after the promise: unknown (left out, as if missing at random)
    out[ontime_by_time] = 0.0
    out[late_by_time] = 1.0
    out[hard] = 1.0
    return out


def _linked_correction(fc: pd.DataFrame, rows: np.ndarray, has_oid: np.ndarray) -> float:
    """Share of (order, reason) groups of contacts that are seen linked to their order: a group is
    missed only if all its contacts lack an order_id. With a share m of contacts unlinked (at random)
    and K contacts in a group, that is ``E[1 - m^K]``, K taken from the linked groups' sizes."""
    if not rows.any():
        return 1.0
    m = 1.0 - float(has_oid[rows].mean())
    if m <= 0:
        return 1.0
    linked = fc.loc[rows & has_oid, ["order_id", "reason"]]
    sizes = linked.groupby(["order_id", "reason"], sort=False).size().to_numpy()
    return float(np.mean(1.0 - m**sizes)) if len(sizes) else 1.0 - m


def _fit_contact_rates(p: Prepared, base: Scenario, out: _Out, rng: np.random.Generator, delivery: dict[str, Any], hour_shares: np.ndarray | None) -> None:
    """Probability of a first contact per trigger, and the delay after it, per reason."""
    c, o = p.contacts, p.orders
    assert c is not None and o is not None
    D = p.window.fit_days
    fc = c[c["t"].to_numpy() < D]
    reasons = fc["reason"].to_numpy(dtype=object)
    first = np.array([v is True or v is np.True_ for v in fc["first_touch"].to_numpy(dtype=object)])
    has_oid = fc["order_id"].notna().to_numpy()
    if not has_oid.any():
        for r in REASONS:
            out.why(f"contacts.reasons.{r}.probability", "no order_id on contacts: triggers unknown")
            out.why(f"contacts.reasons.{r}.delay_hours", "no order_id on contacts: triggers unknown")
        return
    orders = o.set_index("order_id", drop=False)
    orders = orders[~orders.index.duplicated()]
    promise_total = float(delivery.get("promise_total_days", base.fulfilment.promise_days))
    issue = pd.Series(_issue_flags(o, promise_total), index=o["order_id"].to_numpy())
    returns = p.returns
    fast_returns: pd.DataFrame | None = None
    if returns is not None:
        thr = base.returns.refund_contact_threshold_days
        fast = (returns["outcome"].to_numpy(dtype=object) == "exchange") | ((returns["refunded"].to_numpy() - returns["t"].to_numpy()) <= thr)
        fast_returns = returns[fast].drop_duplicates("order_id").set_index("order_id")
    notes = base.notifications
    cdf_h = _contact_hour_cdf(hour_shares) if hour_shares is not None else None
    failed_extra = float(delivery.get("failed_extra_mean", base.carrier.failed_attempt_extra_days.mean))
    status_all = o["status"].to_numpy(dtype=object)

    for r in REASONS:
        if r not in base.contacts.reasons:
            continue
        rows = reasons == r
        n_rows = int(rows.sum())
        if n_rows == 0:
            pass
        share_linked = _linked_correction(fc, rows, has_oid)
        ft = fc[rows & first]
        # trigger of each first contact
        if r == "warranty":
            out.why(f"contacts.reasons.{r}.probability", "warranty claims are not in the CSVs (trigger unknown)")
            out.why(f"contacts.reasons.{r}.delay_hours", "warranty claims are not in the CSVs (trigger unknown)")
            continue
        if r == "return_refund":
            if fast_returns is None:
                out.why(f"contacts.reasons.{r}.probability", "no returns file (trigger unknown)")
                out.why(f"contacts.reasons.{r}.delay_hours", "no returns file (trigger unknown)")
                continue
            trig_t = fast_returns["t"]
        else:
            if r == "wismo":
                trig_t = orders["shipped"]
            elif r == "delivery_problem":
                trig_t = pd.Series(np.where(orders["status"].to_numpy(dtype=object) == "failed_attempt", orders["delivered"].to_numpy() - failed_extra, np.nan), index=orders.index)
            elif r in ("damaged_item", "product_question"):
                trig_t = orders["delivered"]
            else:  # billing
                trig_t = orders["t"]
        # cohort: triggers early enough that (nearly) all their first contacts fall in the fit window
        t_of_ft = ft["t"].to_numpy()
        oid = ft["order_id"].to_numpy(dtype=object)
        trigger_base = fast_returns["t"] if (r == "return_refund" and fast_returns is not None) else orders["t"]
        base_time = trigger_base.reindex(oid).to_numpy()
        lag_from_base = t_of_ft - base_time
        good = np.isfinite(lag_from_base) & (lag_from_base >= 0)
        q = float(np.quantile(lag_from_base[good], 0.995)) if good.sum() >= MIN_N_RATE else 14.0
        cohort_end = max(D - q, 0.3 * D)
        if r == "return_refund" and fast_returns is not None:
            members = fast_returns[fast_returns["t"].to_numpy() < cohort_end]
            cond = np.ones(len(members), dtype=bool)
            member_ids = members.index
        else:
            members = orders[orders["t"].to_numpy() < cohort_end]
            st = members["status"].to_numpy(dtype=object)
            if r == "wismo":
                cond = np.ones(len(members), dtype=bool)
            elif r == "delivery_problem":
                cond = pd.notna(st) & np.isin(st, ["failed_attempt", "lost"])
            elif r == "damaged_item":
                cond = pd.notna(st) & (st == "damaged")
            elif r == "product_question":
                cond = (pd.notna(st) & np.isin(st, list(DELIVERED_STATUSES))) | (pd.isna(st) & np.isfinite(members["delivered"].to_numpy()))
            else:
                cond = np.ones(len(members), dtype=bool)
            member_ids = members.index
        contacted = pd.Index(oid[np.isfinite(base_time)]).unique()
        hit = member_ids.isin(contacted)
        path_p = f"contacts.reasons.{r}.probability"
        if r in ("delivery_problem", "damaged_item", "product_question") and not pd.notna(status_all).any() and r != "product_question":
            out.why(path_p, "no delivery_status values (trigger unknown)")
        elif r == "wismo":
            iss = issue.reindex(member_ids).to_numpy()
            for flag, key in ((0.0, "probability"), (1.0, "probability_if_issue")):
                sel = iss == flag
                n, k = int(sel.sum()), int((hit & sel).sum())
                if n < MIN_N_RATE:
                    out.why(f"contacts.reasons.wismo.{key}", f"{n} shipments with known delivery outcome")
                    continue
                est, lo, hi = _proportion(k, n)
                div = share_linked
                how = "first WISMO contacts per shipment"
                if key == "probability" and notes.shipping_notifications:
                    div *= 1 - notes.wismo_reduction_shipping
                    how += " / (1 - wismo_reduction_shipping)"
                if key == "probability_if_issue" and notes.delay_alerts:
                    div *= 1 - notes.wismo_reduction_delay_alert
                    how += " / (1 - wismo_reduction_delay_alert), assuming every issue is alerted"
                how += f" / share of contact groups seen with an order_id ({share_linked:.4f}); Wilson"
                if est / div > 1:
                    out.warn(f"contacts.reasons.wismo.{key}: estimate {est / div:.3f} exceeds 1; kept from base")
                    continue
                out.fit(f"contacts.reasons.wismo.{key}", _round(est / div, 6), {"value": (est / div, lo / div, min(hi / div, 1.0))}, "per trigger",
                        how, n, "contacts", first_contacts=k, share_with_order_id=share_linked, cohort_end_day=cohort_end)
        else:
            n, k = int(cond.sum()), int((hit & cond).sum())
            if n < MIN_N_RATE:
                out.why(path_p, f"{n} trigger(s) in the cohort")
            else:
                est, lo, hi = _proportion(k, n)
                div = share_linked
                how = f"first {r} contacts per trigger / share of contact groups seen with an order_id ({share_linked:.4f}); Wilson"
                if r == "product_question" and base.onboarding.enabled:
                    div *= 1 - base.onboarding.howto_contact_reduction * base.onboarding.learning_curve_share
                    how += "; divided by the onboarding reduction"
                if est / div <= 1:
                    out.fit(path_p, _round(est / div, 6), {"value": (est / div, lo / div, min(hi / div, 1.0))}, "per trigger", how, n, "contacts",
                            first_contacts=k, share_with_order_id=share_linked, cohort_end_day=cohort_end)
                else:
                    out.warn(f"{path_p}: estimate {est / div:.3f} exceeds 1; kept from base")
            if r == "return_refund":
                out.why("contacts.reasons.return_refund.probability_if_issue", "the late-refund trigger (return received + threshold) is not observable")
        # delay after the trigger, known to the day (the engine keeps the day of trigger + delay and
        # draws the hour from contacts.hour_weights)
        tt = trig_t.reindex(oid).to_numpy()
        in_cohort = np.isfinite(tt) & (base_time < cohort_end)
        tau = tt[in_cohort]
        cday = np.floor(t_of_ft[in_cohort])
        ftau = np.floor(tau)
        valid = cday >= ftau
        dropped = int((~valid).sum())
        tau, cday, ftau = tau[valid], cday[valid], ftau[valid]
        path_d = f"contacts.reasons.{r}.delay_hours"
        if len(tau) < MIN_N_DURATION:
            out.why(path_d, f"{len(tau)} first contact(s) linked to a known trigger time")
            continue
        fit = _day_censored_delay(tau, cday, cdf_h)
        method = ("day-censored maximum likelihood (the day of trigger + delay is kept, the hour drawn from the contact profile); family by AIC"
                  if cdf_h is not None else "day-censored maximum likelihood; family by AIC")
        extra: dict[str, Any] = {"contacts_before_trigger_dropped": dropped}
        if r == "delivery_problem" and fit.converged:
            # the trigger (first delivery attempt) is delivered_ts minus the fitted failed-attempt
            # delay: widen the interval to cover refits at that delay's interval ends
            fe_param = next((q for q in out.params if q.path == "carrier.failed_attempt_extra_days"), None)
            if fe_param is not None:
                _, fe_lo, fe_hi = fe_param.intervals["mean"]
                for fe in (fe_lo, fe_hi):
                    tau2 = tau + (failed_extra - fe)
                    ok2 = cday >= np.floor(tau2)
                    alt = _day_censored_delay(tau2[ok2], cday[ok2], cdf_h)
                    if alt.converged:
                        fit.mean_ci95 = (min(fit.mean_ci95[0], alt.mean_ci95[0]), max(fit.mean_ci95[1], alt.mean_ci95[1]))
                        fit.cv_ci95 = (min(fit.cv_ci95[0], alt.cv_ci95[0]), max(fit.cv_ci95[1], alt.cv_ci95[1]))
                method += "; interval widened over the failed-attempt delay's interval (trigger = delivered_ts - that delay)"
                extra["failed_attempt_extra_days_used"] = failed_extra
        if not _identified(fit):
            out.why(path_d, "not identified at day resolution (the delay is short next to a day)")
            continue
        _dist_param(out, path_d, fit, 1.0, "hours", method, "contacts", extra)


def _day_censored_delay(tau: np.ndarray, cday: np.ndarray, cdf_h: Callable[[np.ndarray], np.ndarray] | None) -> CensoredFit:
    """Delay (hours) from trigger times ``tau`` (days) and the days ``cday`` of the contacts.

    The engine keeps the day of trigger + delay and draws the hour from the contact profile, moving
    a time before the trigger to the next day, so a contact on day ``d`` had its delay in
    ``(d - tau, d + 1 - tau]`` or, when ``d`` is the day after the trigger's, possibly in
    ``(0, floor(tau) + 1 - tau]`` with its hour drawn before the trigger's time of day."""
    ftau = np.floor(tau)
    lo_int = np.where(cday == ftau, 0.0, cday - tau)
    hi_int = cday + 1 - tau
    extra_hi = extra_w = None
    if cdf_h is not None:
        extra_hi, extra_w = (ftau + 1 - tau) * 24, np.where(cday == ftau + 1, cdf_h(tau - ftau), 0.0)
    fit = fit_interval_censored(lo_int * 24, hi_int * 24, extra_hi, extra_w)
    lo_cv, hi_cv = fit.cv_ci95
    if fit.converged and fit.family != "exponential" and not (hi_cv / max(lo_cv, 1e-12) <= SHAPE_CI_RATIO):
        # day resolution says little about the shape of delays much shorter than a day
        expo = fit_interval_censored(lo_int * 24, hi_int * 24, extra_hi, extra_w, families=("exponential",))
        if expo.converged:
            expo.message = f"shape not identified at day resolution (cv interval {lo_cv:.2g}-{hi_cv:.2g} under {fit.family}): exponential"
            expo.aic = fit.aic
            return expo
    return fit


# ----------------------------------------------------------------------------- returns


def _fit_returns(p: Prepared, base: Scenario, out: _Out, rng: np.random.Generator) -> None:
    r, o = p.returns, p.orders
    assert r is not None
    D = p.window.fit_days
    rb = base.returns
    window = rb.window_days
    outcome = r["outcome"].to_numpy(dtype=object)
    damaged_reason = np.array([isinstance(v, str) and v.strip().lower() == "damaged" for v in r["reason"].to_numpy(dtype=object)])
    # outcome mix among returns of undamaged items requested in the fit window
    infit = r["t"].to_numpy() < D
    if o is not None:
        st = o.set_index("order_id")["status"]
        st = st[~st.index.duplicated()]
        ord_damaged = (st.reindex(r["order_id"].to_numpy()).to_numpy(dtype=object) == "damaged")
        damaged = ord_damaged | damaged_reason
    else:
        damaged = damaged_reason
    sel = infit & ~damaged
    n = int(sel.sum())
    if n >= MIN_N_RATE:
        k_ex = int(np.sum(sel & (outcome == "exchange")))
        k_sc = int(np.sum(sel & (outcome == "store_credit")))
        ex, sc = _proportion(k_ex, n), _proportion(k_sc, n)
        if rb.exchange_first:
            conv = rb.exchange_first_conversion
            # observed exchange = e + (1 - e - s) conv  =>  e = (obs - (1 - s) conv) / (1 - conv)
            e = max((ex[0] - (1 - sc[0]) * conv) / (1 - conv), 0.0)
            ex = (e, max((ex[1] - (1 - sc[0]) * conv) / (1 - conv), 0.0), max((ex[2] - (1 - sc[0]) * conv) / (1 - conv), 0.0))
        out.fit("returns.exchange_share", _round(ex[0], 6), {"value": ex}, "share", "share of returns of undamaged items (Wilson)", n, "returns")
        out.fit("returns.store_credit_share", _round(sc[0], 6), {"value": sc}, "share", "share of returns of undamaged items (Wilson)", n, "returns")
    # refund delay = (refunded - requested) - return transit (base), by moments
    rd = (r["refunded"].to_numpy() - r["t"].to_numpy())[infit & (outcome != "exchange")]
    rd = rd[np.isfinite(rd) & (rd > 0)]
    if len(rd) >= MIN_N_DURATION:
        tb = rb.transit_back_days
        def mom(a: np.ndarray) -> tuple[float, float]:
            m = a.mean() - tb.mean
            v = a.var() - tb.variance
            return m, (math.sqrt(v) / m if v > 0 and m > 0 else 0.05)
        m, cv = mom(rd)
        bm = np.array([mom(rd[rng.integers(0, len(rd), len(rd))]) for _ in range(200)])
        if m > 0:
            fam = rb.refund_delay_days.dist
            value: dict[str, Any] = {"dist": fam, "mean": _round(m, 4)} if fam in ("exponential", "deterministic") else {"dist": fam, "mean": _round(m, 4), "cv": _round(max(cv, 0.06), 4)}
            iv = {"mean": (m, float(np.quantile(bm[:, 0], 0.025)), float(np.quantile(bm[:, 0], 0.975)))}
            if "cv" in value:
                iv["cv"] = (cv, float(np.quantile(bm[:, 1], 0.025)), float(np.quantile(bm[:, 1], 0.975)))
            out.fit("returns.refund_delay_days", value, iv, "days", "moments of refunded_ts - requested_ts minus the base return-transit time (family kept from the base); bootstrap B=200", len(rd), "returns")
    else:
        out.why("returns.refund_delay_days", "too few refunded_ts values")
    out.why("returns.transit_back_days", "not observable (no received time in returns.csv)")
    if o is None:
        out.why("returns.categories", "no orders file: return rate per order unknown")
        out.why("returns.request_lag_days", "no orders file: delivery times unknown")
        return
    # rate and lag: orders delivered early enough that their whole return window is observed
    deliv = o["delivered"].to_numpy()
    st_o = o["status"].to_numpy(dtype=object)
    ok = np.isfinite(deliv) & (deliv < D - window)
    dmg_o = pd.notna(st_o) & (st_o == "damaged")
    req = r.drop_duplicates("order_id").set_index("order_id")["t"]
    lag = req.reindex(o["order_id"].to_numpy()).to_numpy() - deliv
    returned = np.isfinite(lag) & (lag >= 0) & (lag <= window)
    cohort = ok & ~dmg_o
    n, k = int(cohort.sum()), int((cohort & returned).sum())
    if n < MIN_N_RATE:
        out.why("returns.categories", "too few delivered orders with a fully observed return window")
        return
    lag_fit = fit_truncated(lag[cohort & returned & (lag > 0)], window)
    _dist_param(out, "returns.request_lag_days", lag_fit, 1.0, "days", f"requested_ts - delivered_ts, right-truncated at the {window:g}-day window; maximum likelihood, family by AIC", "returns")
    within = 1.0
    if lag_fit.converged:
        within = float(_truncation_share(lag_fit, window))
    est, lo, hi = _proportion(k, n)
    rate, rate_lo, rate_hi = est / within, lo / within, hi / within
    cats = rb.categories
    uplift = rb.free_returns_uplift if rb.free_returns else 1.0
    base_rate = sum(cfg.share * cfg.return_probability for cfg in cats.values()) * uplift
    if base_rate <= 0:
        out.why("returns.categories", "the base return probabilities are all 0: nothing to scale")
        return
    scale = rate / base_rate
    if any(cfg.return_probability * scale > 1 for cfg in cats.values()):
        out.warn("returns.categories: scaling the base category return probabilities to the fitted rate would exceed 1; kept from base")
        return
    for name, cfg in cats.items():
        pr = cfg.return_probability * scale
        out.fit(f"returns.categories.{name}.return_probability", _round(pr, 6),
                {"value": (pr, cfg.return_probability * rate_lo / base_rate, cfg.return_probability * rate_hi / base_rate)}, "probability",
                f"overall return rate {rate:.4f} of delivered undamaged orders (Wilson, / P(request within window) {within:.4f}), "
                "split over categories in the base's proportions (categories are not in the CSVs)", n, "returns",
                overall_rate=rate, overall_rate_ci=[rate_lo, rate_hi], free_returns_uplift_assumed=uplift)
    # damaged items returned instead of reshipped
    dmg = ok & dmg_o
    nd = int(dmg.sum())
    if nd >= MIN_N_RATE:
        kd = int((dmg & returned).sum())
        p_any, lo_any, hi_any = _proportion(kd, nd)
        # a damaged item comes back either as a damage refund (q) or as an ordinary return (the
        # undamaged return rate within the window, est): P = q + (1 - q) est
        def inv(v: float) -> float:
            return min(max((v - est) / (1 - est), 0.0), 1.0)

        out.fit("returns.damaged_return_probability", _round(inv(p_any), 6), {"value": (inv(p_any), inv(lo_any), inv(hi_any))}, "probability",
                "returned share of damaged deliveries P, less ordinary returns: (P - r) / (1 - r) with r the undamaged return rate (Wilson on P)", nd, "returns",
                returned_share=p_any)


def _truncation_share(fit: CensoredFit, upper: float) -> float:
    """P(lag <= upper) under a fitted family (by its mean and cv)."""
    dist = _scenario_dist(fit.to_scenario_dist(1.0))
    u = np.linspace(0.0005, 0.9995, 2000)
    q = dist.quantile(u)
    return float(np.interp(upper, q, u, left=0.0, right=1.0))


# ----------------------------------------------------------------------------- staffing


def _fit_staffing(p: Prepared, base: Scenario, out: _Out) -> None:
    s = p.staffing
    assert s is not None
    w = p.window
    for ch in sorted(set(s["channel"])):
        cfg = base.contacts.tier2 if ch == "tier2" else base.contacts.channels.get(ch)  # type: ignore[call-overload]
        prefix = "contacts.tier2" if ch == "tier2" else f"contacts.channels.{ch}"
        if cfg is None:
            out.warn(f"staffing: channel {ch} is not in the base scenario; its schedule is ignored")
            continue
        sub = s[s["channel"] == ch]
        t = sub["t"].to_numpy()
        inside = (t >= 0) & (t < w.days)
        day = np.floor(t[inside]).astype(np.int64)
        hour = np.floor((t[inside] % 1.0) * 24 + 1e-9).astype(np.int64)
        agents = sub["agents"].to_numpy()[inside]
        grid = np.full((w.days, 24), np.nan)
        sums = np.zeros((w.days, 24))
        cnts = np.zeros((w.days, 24))
        np.add.at(sums, (day, hour), agents)
        np.add.at(cnts, (day, hour), 1)
        have = cnts > 0
        grid[have] = sums[have] / cnts[have]
        days_with = np.flatnonzero(have.any(axis=1))
        if len(days_with) == 0:
            continue
        grid = np.nan_to_num(grid, nan=0.0)
        plans = _staffing_plans(grid[days_with[0] :], days_with[0], w)
        out.fit(f"{prefix}.staffing", plans, {}, "agents (paid, before shrinkage)",
                "mean agents per hour of day over each stretch of days with the same weekly pattern; weekday factors from daily totals",
                int(inside.sum()), "staffing")
        if ch != "tier2":
            out.set(f"{prefix}.seasonal_hires", [])
            out.set(f"{prefix}.overtime", [])
        if days_with[0] > 0:
            out.notes.append(f"staffing: {ch} schedule starts on day {days_with[0]}; its first plan is extended back to the history start")


def _staffing_plans(grid: np.ndarray, offset: int, w: Window) -> list[dict[str, Any]]:
    """Dated plans from a (days, 24) agent grid: a new plan starts where a day's pattern differs
    from the same weekday a week earlier (by more than half an agent in some hour) and the new
    pattern lasts at least a week."""
    days = grid.shape[0]
    change = np.zeros(days, dtype=bool)
    for d in range(7, days):
        change[d] = np.abs(grid[d] - grid[d - 7]).max() > 0.5
    starts = [0]
    d = 7
    while d < days:
        if change[d]:
            starts.append(d)
            d += 7
        else:
            d += 1
    plans = []
    for i, st in enumerate(starts):
        en = starts[i + 1] if i + 1 < len(starts) else days
        block = grid[st:en]
        by_hour = block.mean(axis=0)
        dates = w.start + pd.to_timedelta(np.arange(offset + st, offset + en), unit="D")
        totals = block.sum(axis=1)
        wd = np.ones(7)
        if by_hour.sum() > 0:
            per_wd = np.array([totals[dates.day_of_week == k].mean() if np.any(dates.day_of_week == k) else np.nan for k in range(7)])
            mean_total = np.nanmean(per_wd)
            wd = np.where(np.isfinite(per_wd) & (mean_total > 0), per_wd / mean_total, 1.0)
            # agents_by_hour at the weekday-average level
        start_date = (w.start + pd.Timedelta(days=offset + st)).date() if i > 0 else w.start.date()
        plans.append({
            "start": start_date.isoformat(),
            "agents_by_hour": [_round(x, 3) for x in by_hour],
            "weekday_factors": [_round(x, 4) for x in wd],
        })
    return plans


# ----------------------------------------------------------------------------- calendar


def _shift_years(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _redate(base: Scenario, w: Window, out: _Out) -> None:
    """Move the base's dated lists that were not fitted onto the history's calendar (whole years,
    so seasons line up) and make the first staffing plans cover the history start."""
    start = w.start.date()
    years = start.year - base.start_date.year
    if _shift_years(base.start_date, years) > start:
        years -= 1
    fitted = {q.path for q in out.params}

    def shift_list(items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
        res = []
        for it in items:
            it = dict(it)
            for k in keys:
                v = it[k]
                if isinstance(v, dt.datetime):
                    it[k] = (v.replace(year=v.year + years) if not (v.month == 2 and v.day == 29) else v.replace(year=v.year + years, day=28)).isoformat()
                else:
                    it[k] = _shift_years(dt.date.fromisoformat(str(v)[:10]), years).isoformat()
            res.append(it)
        return res

    moved = []
    dump = base.model_dump(mode="json")
    if "demand.peaks" not in fitted and dump["demand"]["peaks"]:
        out.set("demand.peaks", shift_list(dump["demand"]["peaks"], ("start", "end")))
        moved.append("demand.peaks")
    if "carrier.degradation" not in fitted and dump["carrier"]["degradation"]:
        out.set("carrier.degradation", shift_list(dump["carrier"]["degradation"], ("start", "end")))
        moved.append("carrier.degradation")
    pools: list[tuple[str, dict[str, Any]]] = [(f"contacts.channels.{ch}", cfg) for ch, cfg in dump["contacts"]["channels"].items()]
    if dump["contacts"].get("tier2"):
        pools.append(("contacts.tier2", dump["contacts"]["tier2"]))
    for prefix, cfg in pools:
        if f"{prefix}.staffing" not in fitted:
            plans = shift_list(cfg["staffing"], ("start",))
            if dt.date.fromisoformat(plans[0]["start"]) > start:
                plans[0]["start"] = start.isoformat()
            out.set(f"{prefix}.staffing", plans)
            moved.append(f"{prefix}.staffing")
            for key in ("seasonal_hires", "overtime"):
                if cfg.get(key):
                    out.set(f"{prefix}.{key}", shift_list(cfg[key], ("start", "end")))
                    moved.append(f"{prefix}.{key}")
    if dump["incidents"]:
        out.set("incidents", [])
        out.notes.append("the base's incidents were dropped: the calibrated scenario reproduces the history (add incidents in a scenario that extends it)")
    if moved:
        out.notes.append(f"kept from the base and moved {years:+d} year(s) onto the history's calendar: {', '.join(moved)}")
    out.models["calendar"] = {"years_shifted": years, "moved": moved}


# ----------------------------------------------------------------------------- kept from base


_KEPT_REASONS: tuple[tuple[str, str], ...] = (
    ("demand.cac_usd", "a cost: not in the CSVs"),
    ("demand.referral", "referrals are not identifiable in an order log"),
    ("repurchase.enabled", "model switch"),
    ("fulfilment.cogs_share", "a cost: not in the CSVs"),
    ("fulfilment.shipping_cost_usd", "a cost: not in the CSVs"),
    ("fulfilment.fulfilment_cost_usd", "a cost: not in the CSVs"),
    ("fulfilment.promise_padding_days", "a policy: not in the CSVs"),
    ("carrier.name", "a label"),
    ("carrier.reship_lost_or_damaged", "a policy: not in the CSVs"),
    ("notifications", "policy and effect parameters: not in the CSVs"),
    ("onboarding", "policy and effect parameters: not in the CSVs"),
    ("automation", "automation costs and effects: not in the CSVs"),
    ("contacts.tier2", "tier-2 work is not in contacts.csv"),
    ("warranty", "warranty claims are not in the CSVs"),
    ("experience", "effects of experience on loyalty and satisfaction: not fitted"),
    ("loyalty", "loyalty program economics: not in the CSVs"),
    ("finance", "financial assumptions"),
    ("returns.window_days", "a policy: not in the CSVs"),
    ("returns.free_returns", "a policy: not in the CSVs"),
    ("returns.return_fee_usd", "a policy: not in the CSVs"),
    ("returns.free_returns_uplift", "not identifiable from one policy regime"),
    ("returns.exchange_first", "a policy: not in the CSVs"),
    ("returns.exchange_bonus_usd", "a policy: not in the CSVs"),
    ("returns.refund_contact_threshold_days", "a policy: not in the CSVs"),
    ("returns.return_shipping_cost_usd", "a cost: not in the CSVs"),
    ("returns.processing_cost_usd", "a cost: not in the CSVs"),
    ("returns.writeoff_share", "a cost: not in the CSVs"),
    ("returns.categories", "categories are not in the CSVs"),
    ("contacts.channels", "channel settings (SLA, cost, shrinkage, concurrency): not in the CSVs"),
    ("contacts.reasons", "not identified from the given files"),
    ("description", "text"),
)


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and "dist" not in node and node:
        out: list[str] = []
        for k, v in node.items():
            out.extend(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return [prefix]


def _kept(base_dump: dict[str, Any], overrides: dict[str, Any], out: _Out, files: set[str]) -> list[dict[str, str]]:
    over = set(_leaves(overrides))
    kept = []
    file_of = {"demand": "orders", "repurchase": "orders", "fulfilment": "orders", "carrier": "orders", "returns": "returns"}
    for path in _leaves(base_dump):
        if path in ("name", "start_date", "horizon_days", "provenance") or any(path == o or path.startswith(o + ".") or o.startswith(path + ".") for o in over):
            continue
        reason = next((r for pre, r in sorted(out.reasons.items(), key=lambda kv: -len(kv[0])) if path == pre or path.startswith(pre + ".")), None)
        if reason is None:
            section = path.split(".")[0]
            if section in file_of and file_of[section] not in files:
                reason = f"no {file_of[section]} file"
            elif path.startswith("contacts.") and "contacts" not in files and ".staffing" not in path:
                reason = "no contacts file"
            elif ".staffing" in path and "staffing" not in files:
                reason = "no staffing file"
            else:
                reason = next((r for pre, r in _KEPT_REASONS if path == pre or path.startswith(pre)), "not identified from the given files")
        kept.append({"path": path, "reason": reason})
    return kept


# ----------------------------------------------------------------------------- entry point


def calibrate(history: History, base: Scenario, holdout_weeks: int = 8, seed: int = 0, name: str | None = None) -> Calibration:
    """Fit the scenario parameters the history identifies (see the module docstring).

    Raises :class:`CalibrationInputError` when the history cannot support the fit (too short for
    the holdout).
    """
    window = history_window(history, holdout_weeks, min_fit_days=28 if history.orders is not None else 1)
    prep = prepare(history, window)
    rng = np.random.default_rng(seed)
    base_dump = base.model_dump(mode="json")
    out = _Out(base_dump)
    files = set(history.frames())
    out.notes.extend(history.notes)
    delivery: dict[str, Any] = {}
    if prep.orders is not None:
        _fit_orders(prep, base, out, rng)
        delivery = _fit_delivery(prep, base, out, rng)
    if prep.contacts is not None:
        _fit_contacts(prep, base, out, rng, delivery)
    if prep.returns is not None:
        _fit_returns(prep, base, out, rng)
    if prep.staffing is not None:
        _fit_staffing(prep, base, out)
    out.set("name", name or f"{base.name}_calibrated")
    out.set("description", f"Calibrated from history {window.start.date()} to {(window.end - pd.Timedelta(days=1)).date()} "
                           f"(fit window {window.fit_days} days, holdout {window.holdout_days} days) over {base.name}.")
    out.set("start_date", window.start.date().isoformat())
    out.set("horizon_days", int(window.days))
    _redate(base, window, out)
    merged = deep_merge(base_dump, out.overrides)
    try:
        scenario = scenario_from_dict(merged, "calibrated scenario")
    except Exception as exc:  # a fitted value the schema rejects: report it, never write it
        raise CalibrationInputError(f"the fitted values do not form a valid scenario: {exc}") from None
    kept = _kept(base_dump, out.overrides, out, files)
    return Calibration(
        overrides=out.overrides, params=out.params, kept=kept, warnings=out.warnings, notes=out.notes,
        models=out.models, window=window, scenario=scenario, prepared=prep,
        inputs={k: v.to_dict() for k, v in history.files.items()}, fitted_sections=out.sections,
    )


def overrides_copy(cal: Calibration) -> dict[str, Any]:
    return copy.deepcopy(cal.overrides)
