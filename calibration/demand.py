"""Demand stage: new-customer arrivals (rate, weekday and hour profiles, trend, dated uplifts),
the customers who bought before the history, and the order-value distribution, from orders.csv.

The arrivals are fitted jointly with repurchase (:mod:`calibration.acquisition`); the repurchase
parameters of that joint fit are mapped by :mod:`calibration.repurchase`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from calibration import repurchase
from calibration.acquisition import N_FIXED, AcquisitionFit, fit_acquisition
from calibration.collector import (
    Z95,
    Collector,
    duration_fit,
    proportion_ci,
    record_distribution,
    rounded,
)
from calibration.holidays import YEARS_AHEAD, recurring_peaks
from calibration.summaries import (
    Prepared,
    Window,
    acquisition_stop,
    coarse_timestamps,
    customer_marks,
    daily_counts,
    merge_same_day_orders,
)
from sim.scenario import Scenario

__all__ = ["fit_demand"]


ACQUISITION_MODES = ("auto", "none", "fitted")
"""``fitted``: new customers arrive throughout (an open business); ``none``: a closed cohort, no new
customers after the last first order of the fit window; ``auto``: closed when arrivals stop
(:func:`calibration.summaries.acquisition_stop`), else fitted."""


def fit_demand(p: Prepared, base: Scenario, out: Collector, rng: np.random.Generator, acquisition: str = "auto") -> dict[str, Any]:
    """Arrivals, repurchase and order values (see the module docstrings of calibration.acquisition)."""
    if acquisition not in ACQUISITION_MODES:
        raise ValueError(f"acquisition must be one of {ACQUISITION_MODES}, got {acquisition!r}")
    o = p.orders
    assert o is not None
    w = p.window
    D = w.fit_days
    info: dict[str, Any] = {}
    coarse = coarse_timestamps(o.loc[o["t"].to_numpy() < D, "t"].to_numpy())
    if coarse is not None:
        out.warn(f"orders: {coarse}: the order hour profile cannot be fitted, demand.hour_weights keeps the base value")
        out.why("demand.hour_weights", f"order timestamps carry no time of day: {coarse}")
        if coarse.endswith("(date-only)"):
            o, merged = merge_same_day_orders(o)
            if merged:
                out.notes.append(
                    f"orders: {merged:,} same-day order(s) of the same customer merged into one purchase ({len(o):,} purchases left) for the "
                    "arrival/repurchase fit and the order values: with date-only timestamps they share one time, and the "
                    "engine's repurchase process runs in continuous time (one order per purchase)"
                )
                out.models["same_day_orders_merged"] = merged
    cust = customer_marks(o, D)
    repeat_t = o.loc[(~o["first"].to_numpy()) & (o["t"].to_numpy() < D), "t"].to_numpy()
    dow = w.dates()[:D].day_of_week.to_numpy()
    rp = base.repurchase
    first_daily = daily_counts(cust["t0"].to_numpy(), D)
    stop = acquisition_stop(first_daily) if acquisition == "auto" else None
    if acquisition == "none":
        seen = np.flatnonzero(first_daily > 0)
        stop = int(seen[-1]) + 1 if len(seen) else D
    arrival_days = stop if stop is not None else D
    closed = acquisition == "none" or stop is not None
    info["closed_cohort"] = closed
    if closed:
        end = (w.start + pd.Timedelta(days=arrival_days)).date()
        how = "as asked (--acquisition none)" if acquisition == "none" else (
            f"detected: no first order in the last {D - arrival_days} day(s) of the fit window, where the arrival rate before would have "
            f"brought {first_daily[max(0, arrival_days - 28):arrival_days].mean() * (D - arrival_days):.0f}")
        out.warn(f"orders: a closed cohort, new customers stop arriving on {end} ({how}); the calibrated scenario adds no new "
                 "customers from then on (demand.acquisition_end) and has no customers from before the history")
        out.fit("demand.acquisition_end", end.isoformat(), {}, "date", f"closed cohort: {how}", len(cust), "orders")
        out.models["closed_cohort"] = {"acquisition_end": end.isoformat(), "arrival_days": arrival_days, "mode": acquisition}
    else:
        out.why("demand.acquisition_end", "new customers keep arriving to the end of the fit window (an open business)")
    trend = arrival_days >= 90
    if not trend:
        out.why("demand.annual_growth", "new customers arrive over fewer than 90 days: growth not identified")
    fit = fit_acquisition(cust, repeat_t, D, dow, k=rp.initial_repeat_purchases, sensitivity0=rp.peak_sensitivity, trend=trend,
                          existing=not closed, arrival_days=arrival_days)
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
        _map_acquisition(fit, w, base, out, hours=coarse is None)
    # comparisons: BG/NBD, Pareto/NBD, Gamma-Gamma, plain MBG/NBD on day-level RFM of the customers
    # the joint model takes as new
    out.models["repurchase_comparison"] = repurchase.btyd_comparison(o, w, fit, rng)
    # order value
    vals = o.loc[o["t"].to_numpy() < D, "value"].to_numpy()
    zero = int((vals <= 0).sum())
    vfit = duration_fit(vals, rng)
    if vfit is None:
        out.why("demand.order_value_usd", "too few positive order values")
    else:
        record_distribution(out, "demand.order_value_usd", vfit, 1.0, "USD", "maximum likelihood, family by AIC", "orders",
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


def _map_acquisition(fit: AcquisitionFit, w: Window, base: Scenario, out: Collector, hours: bool = True) -> None:
    names = fit.design.names

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
    out.fit("demand.new_customers_per_day", rounded(v[0], 4), {"value": (v[0], v[0] * math.exp(-Z95 * se[0] / v[0]), v[0] * math.exp(Z95 * se[0] / v[0]))},
            "customers/day", "joint maximum likelihood (arrivals + MBG/NBD); delta method", n_cust, "orders",
            note="off-peak mean before weekday, trend and uplift factors; includes referred customers")
    v, se = fit.delta(wd_factors)
    out.fit("demand.weekday_factors", [rounded(x, 5) for x in v], {str(i): (v[i], v[i] - Z95 * se[i], v[i] + Z95 * se[i]) for i in range(7)},
            "factor (Monday..Sunday, mean 1)", "joint maximum likelihood; delta method", n_cust, "orders")
    if fit.design.trend:
        j = N_FIXED + names.index("trend_per_year")
        g, s = fit.eta[j], math.sqrt(max(fit.cov[j, j], 0.0))
        out.fit("demand.annual_growth", rounded(math.expm1(g), 5), {"value": (math.expm1(g), math.expm1(g - Z95 * s), math.expm1(g + Z95 * s))},
                "share per year", "joint maximum likelihood; Wald on log growth factor", n_cust, "orders")
    shares = fit.hour_shares
    n_eff = max(fit.hour_weight_n, 1.0)
    hw = shares * 24
    if hours:
        out.fit("demand.hour_weights", [rounded(x, 5) for x in hw],
                {str(h): (hw[h], 24 * proportion_ci(round(shares[h] * n_eff), round(n_eff))[1], 24 * proportion_ci(round(shares[h] * n_eff), round(n_eff))[2]) for h in range(24)},
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
        peaks.append({"name": label, "start": start.isoformat(), "end": end.isoformat(), "multiplier": rounded(math.exp(b), 4)})
        intervals[label] = (math.exp(b), math.exp(b - Z95 * s), math.exp(b + Z95 * s))
    fit_end = (w.start + pd.Timedelta(days=w.fit_days - 1)).date()
    repeats = recurring_peaks([q for q in peaks if q["multiplier"] > 1], w.start.date(), fit_end, (w.end - pd.Timedelta(days=1)).date())
    for q in repeats:
        intervals[q["name"]] = intervals[q["source"]]
    all_peaks = sorted(peaks + [{k: v for k, v in q.items() if k != "source"} for q in repeats], key=lambda q: q["start"])
    out.fit("demand.peaks", all_peaks, intervals, "multiplier",
            "residual runs of first-seen customers, binary segmentation, then joint maximum likelihood; uplifts near Black Friday, "
            "Cyber Monday or Christmas repeated on that event in the other years (calibration.holidays)", n_cust, "orders",
            note="fitted_* periods are the dated uplifts of the fit window; <event>_<year> ones repeat them on the same named event "
                 f"(through {YEARS_AHEAD} years after the history) where the fit window did not see that year's event",
            repeated_from={q["name"]: q["source"] for q in repeats})
    if repeats:
        out.notes.append(f"demand.peaks: {len({q['source'] for q in repeats})} fitted uplift(s) anchored to named events and repeated in "
                         f"{len(repeats)} other-year period(s), e.g. {repeats[0]['name']} {repeats[0]['start']}..{repeats[0]['end']}")
    repurchase.map_repurchase(fit, out)
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
