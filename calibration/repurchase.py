"""Repurchase stage: the MBG/NBD parameters of the joint arrival/repurchase fit mapped into
``repurchase.*``, and the buy-till-you-die comparison fits (BG/NBD, Pareto/NBD, MBG/NBD,
Gamma-Gamma) reported beside them."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from calibration import btyd
from calibration.acquisition import AcquisitionFit, fit_mbgnbd
from calibration.collector import Z95, Collector, rounded
from calibration.summaries import Window, rfm_table

__all__ = ["btyd_comparison", "map_repurchase"]


COMPARISON_TIME_UNIT_DAYS = 7.0
"""The comparison fits run in weeks, the unit of the buy-till-you-die literature (Fader, Hardie & Lee
2005 on CDNOW), so their parameters compare with published ones; ``alpha`` (and Pareto/NBD
``beta``) are per week, the scenario's ``rate_scale_alpha_days`` is per day (x 7)."""
PARETO_MAX_CUSTOMERS = 1_000
"""The Pareto/NBD comparison fit alone runs on a seeded random subset of at most this many customers:
its likelihood (Gauss hypergeometric functions, numerical gradient) costs seconds per 1,000
customers, so all of a large history would take minutes. Its AIC is then not comparable and it is
left out of ``best_by_aic``."""
FREQUENCY_GROUPS = 7
"""Holdout table rows: customers with 0, 1, ..., 6 and 7+ calibration-period repeat purchases."""


def map_repurchase(fit: AcquisitionFit, out: Collector) -> None:
    """Record the joint fit's MBG/NBD parameters (and the peak sensitivity of repeat buying when a
    dated uplift identifies it) as ``repurchase.*`` values with their Wald intervals."""
    n_cust = fit.n_customers
    rp_paths = {"r": "repurchase.rate_shape_r", "alpha": "repurchase.rate_scale_alpha_days", "a": "repurchase.dropout_a", "b": "repurchase.dropout_b"}
    for i, (key, path) in enumerate(rp_paths.items()):
        lo_t, hi_t = fit.ci_log(i)
        out.fit(path, rounded(fit.theta[key], 6), {"value": (fit.theta[key], lo_t, hi_t)}, "days" if key == "alpha" else "",
                "MBG/NBD by joint maximum likelihood (Wald on the log scale)", n_cust, "orders")
    if fit.sensitivity_fitted:
        s = math.sqrt(max(fit.cov[5, 5], 0.0))
        out.fit("repurchase.peak_sensitivity", rounded(fit.sensitivity, 5),
                {"value": (fit.sensitivity, max(fit.sensitivity - Z95 * s, 0.0), min(fit.sensitivity + Z95 * s, 1.0))},
                "share of each uplift", "joint maximum likelihood (time-changed purchase clock)", n_cust, "orders")
    else:
        out.why("repurchase.peak_sensitivity", "no dated uplift in the fit window: not identified")


def btyd_comparison(o: pd.DataFrame, w: Window, fit: AcquisitionFit, rng: np.random.Generator) -> dict[str, Any]:
    """BG/NBD, MBG/NBD and Gamma-Gamma on the day-level RFM (one purchase per customer and calendar
    day, in weeks) of every customer first seen in the fit window (Pareto/NBD on at most
    :data:`PARETO_MAX_CUSTOMERS` of them), for the report;
    with a holdout, BG/NBD's prediction of the holdout against what happened (:func:`holdout_prediction`).

    The joint model's pre-history customers are included (a BTYD model has none): their share is
    reported, and it is what separates these fits from the scenario's MBG/NBD when it is large."""
    D = w.fit_days
    try:
        rfm = rfm_table(o, w, D, time_unit_days=COMPARISON_TIME_UNIT_DAYS)
    except ValueError as exc:
        return {"error": str(exc)}
    rfm = rfm[rfm["T"].to_numpy() > 0]  # first seen on the window's last day: nothing to fit yet
    x, tx, T = rfm["frequency"].to_numpy(), rfm["recency"].to_numpy(), rfm["T"].to_numpy()
    res: dict[str, Any] = {
        "customers": len(rfm),
        "time_unit": "weeks",
        "share_taken_as_pre_history_customers": float(1.0 - fit.responsibilities.mean()) if len(fit.responsibilities) else None,
        "note": "day-level RFM (btyd.rfm_summary) of every customer first seen in the fit window before its last day, in weeks; not time-changed",
    }
    # day-level data in weeks repeat few (x, tx, T) triples: the MBG/NBD fit runs on the unique ones
    uniq, counts = np.unique(np.column_stack([x, tx, T]), axis=0, return_counts=True)

    def mbgnbd(_x: np.ndarray, _tx: np.ndarray, _T: np.ndarray) -> Any:
        return dataclasses.replace(fit_mbgnbd(uniq[:, 0], uniq[:, 1], uniq[:, 2], weights=counts.astype(float)), n=len(x))

    for name, fn in (("bgnbd", btyd.fit_bgnbd), ("pareto_nbd", btyd.fit_pareto_nbd), ("mbgnbd", mbgnbd)):
        sub = slice(None)
        if name == "pareto_nbd" and len(x) > PARETO_MAX_CUSTOMERS:
            sub = np.sort(rng.choice(len(x), PARETO_MAX_CUSTOMERS, replace=False))  # type: ignore[assignment]
        try:
            res[name] = fn(x[sub], tx[sub], T[sub]).to_dict()
        except (ValueError, FloatingPointError) as exc:
            res[name] = {"error": str(exc)}
        if isinstance(sub, np.ndarray):
            res[name]["note"] = f"a random subset of {PARETO_MAX_CUSTOMERS:,} of the {len(x):,} customers (its likelihood is slow); AIC not comparable"
            res[name]["subset"] = True
    rep = rfm[rfm["frequency"] > 0]
    try:
        res["gamma_gamma"] = btyd.fit_gamma_gamma(rep["frequency"].to_numpy(), rep["monetary_value"].to_numpy()).to_dict()
        res["gamma_gamma"]["note"] = "spend heterogeneity across customers; the scenario draws every order value from one distribution, so it is reported, not mapped"
    except (ValueError, FloatingPointError) as exc:
        res["gamma_gamma"] = {"error": str(exc)}
    aics: dict[str, float] = {k: float(v["aic"]) for k, v in res.items()
                              if isinstance(v, dict) and v.get("aic") is not None and k != "gamma_gamma" and not v.get("subset")}
    if aics:
        res["best_by_aic"] = min(aics, key=aics.__getitem__)
    bg = res.get("bgnbd", {})
    if isinstance(bg, dict) and bg.get("converged"):
        res["bgnbd_holdout"] = holdout_prediction(o, w, rfm, bg["params"])
    return res


def holdout_prediction(o: pd.DataFrame, w: Window, rfm: pd.DataFrame, params: dict[str, float]) -> dict[str, Any]:
    """BG/NBD predictions against the history, as in lifetimes / PyMC-Marketing diagnostics.

    ``by_frequency``: customers grouped by calibration-period repeat purchases (0..6, 7+); per group
    the mean predicted (E[Y(t) | x, tx, T], FHL 2005 eq. 10) and actual repeat purchase days in the
    holdout. ``weekly``: per week of the history, the expected repeat purchase days of the
    calibration customers (unconditional, E[X(t)] from each one's first purchase, FHL eq. 9) and the
    actual ones, with the holdout weeks marked."""
    unit = COMPARISON_TIME_UNIT_DAYS
    D, H = w.fit_days, w.holdout_days
    # purchase days per customer on integer codes (object ids would make this the slow part)
    codes, ids = pd.factorize(o["customer_id"].to_numpy())
    day = np.floor(o["t"].to_numpy()).astype(np.int64)
    span = int(day.max()) + 1 if len(day) else 1
    key = np.unique(codes.astype(np.int64) * span + day)  # sorted by customer, then day
    c, d = key // span, key % span
    row = pd.Index(ids).get_indexer(rfm.index)  # every rfm customer is in the orders
    member = np.zeros(len(ids), dtype=bool)
    member[row] = True
    keep = member[c]
    c, d = c[keep], d[keep]
    first = np.full(len(ids), -1, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if len(c) else np.empty(0, dtype=np.int64)
    first[c[starts]] = d[starts]
    repeat = d > first[c]
    c, d = c[repeat], d[repeat]  # repeat purchase days
    out: dict[str, Any] = {"time_unit": "weeks", "customers": len(rfm)}
    if H > 0:
        hold = (d >= D) & (d < D + H)
        actual = np.bincount(c[hold], minlength=len(ids))[row].astype(float)
        uniq, inv = np.unique(rfm[["frequency", "recency", "T"]].to_numpy(dtype=float), axis=0, return_inverse=True)
        pred = btyd.bgnbd_conditional_expected_purchases(params, H / unit, uniq[:, 0], uniq[:, 1], uniq[:, 2])[inv.ravel()]
        grp = np.minimum(rfm["frequency"].to_numpy(), FREQUENCY_GROUPS)
        rows = []
        for g in range(FREQUENCY_GROUPS + 1):
            sel = grp == g
            if sel.any():
                rows.append({"calibration_repeat_purchases": f"{g}+" if g == FREQUENCY_GROUPS else str(g), "customers": int(sel.sum()),
                             "predicted_mean": float(pred[sel].mean()), "actual_mean": float(actual[sel].mean())})
        out["holdout_weeks"] = H / unit
        out["by_frequency"] = rows
        out["holdout_total"] = {"predicted": float(pred.sum()), "actual": float(actual.sum()),
                                "error": float(pred.sum() / actual.sum() - 1.0) if actual.sum() > 0 else None}
    weeks = math.ceil((D + H) / unit)
    edges = np.arange(weeks + 1) * unit
    t0_days, n_by_day = np.unique(first[row].astype(float), return_counts=True)
    # expected cumulative repeat purchase days by each week edge, summed over customers (grouped by
    # first purchase day): that day counts whole, so a repeat can come from the next day on
    # (age = edge - t0 - 1)
    age = np.clip(edges[None, :] - t0_days[:, None] - 1.0, 0.0, None) / unit
    cum = n_by_day @ btyd.bgnbd_expected_purchases(params, age)
    actual_w = np.bincount(np.floor(d / unit).astype(np.int64), minlength=weeks)[:weeks]
    out["weekly"] = {
        "week_start": [(w.start + pd.Timedelta(days=float(e))).date().isoformat() for e in edges[:-1]],
        "predicted": np.diff(cum).tolist(),
        "actual": actual_w.astype(float).tolist(),
        "holdout_from_week": D / unit,
    }
    return out
