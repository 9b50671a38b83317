"""Repurchase stage: the MBG/NBD parameters of the joint arrival/repurchase fit mapped into
``repurchase.*``, and the buy-till-you-die comparison fits (BG/NBD, Pareto/NBD, MBG/NBD,
Gamma-Gamma) reported beside them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from calibration import btyd
from calibration.acquisition import AcquisitionFit, fit_mbgnbd
from calibration.collector import Z95, Collector, rounded
from calibration.summaries import Window, customer_marks, rfm_table

__all__ = ["btyd_comparison", "map_repurchase"]


COMPARISON_MAX_CUSTOMERS = 1_000
"""The BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma comparison fits use one common random subset of at most
this many customers, so their AICs compare (the Pareto/NBD fit is slow: a few seconds per 1,000 customers)."""


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
