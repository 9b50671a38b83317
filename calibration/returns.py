"""Returns stage: return rate (scaled over the base's categories), request lag, exchange and
store-credit shares, refund delay and the share of damaged items returned, from returns.csv (+ orders)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from calibration.censored import CensoredFit, fit_truncated
from calibration.collector import (
    MIN_N_DURATION,
    MIN_N_RATE,
    Collector,
    proportion_ci,
    record_distribution,
    rounded,
    scenario_dist,
)
from calibration.summaries import Prepared
from sim.scenario import Scenario

__all__ = ["fit_returns"]


def fit_returns(p: Prepared, base: Scenario, out: Collector, rng: np.random.Generator) -> None:
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
        ex, sc = proportion_ci(k_ex, n), proportion_ci(k_sc, n)
        if rb.exchange_first:
            conv = rb.exchange_first_conversion
            # observed exchange = e + (1 - e - s) conv  =>  e = (obs - (1 - s) conv) / (1 - conv)
            e = max((ex[0] - (1 - sc[0]) * conv) / (1 - conv), 0.0)
            ex = (e, max((ex[1] - (1 - sc[0]) * conv) / (1 - conv), 0.0), max((ex[2] - (1 - sc[0]) * conv) / (1 - conv), 0.0))
        out.fit("returns.exchange_share", rounded(ex[0], 6), {"value": ex}, "share", "share of returns of undamaged items (Wilson)", n, "returns")
        out.fit("returns.store_credit_share", rounded(sc[0], 6), {"value": sc}, "share", "share of returns of undamaged items (Wilson)", n, "returns")
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
            value: dict[str, Any] = {"dist": fam, "mean": rounded(m, 4)} if fam in ("exponential", "deterministic") else {"dist": fam, "mean": rounded(m, 4), "cv": rounded(max(cv, 0.06), 4)}
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
    record_distribution(out, "returns.request_lag_days", lag_fit, 1.0, "days", f"requested_ts - delivered_ts, right-truncated at the {window:g}-day window; maximum likelihood, family by AIC", "returns")
    within = 1.0
    if lag_fit.converged:
        within = float(_truncation_share(lag_fit, window))
    est, lo, hi = proportion_ci(k, n)
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
        out.fit(f"returns.categories.{name}.return_probability", rounded(pr, 6),
                {"value": (pr, cfg.return_probability * rate_lo / base_rate, cfg.return_probability * rate_hi / base_rate)}, "probability",
                f"overall return rate {rate:.4f} of delivered undamaged orders (Wilson, / P(request within window) {within:.4f}), "
                "split over categories in the base's proportions (categories are not in the CSVs)", n, "returns",
                overall_rate=rate, overall_rate_ci=[rate_lo, rate_hi], free_returns_uplift_assumed=uplift)
    # damaged items returned instead of reshipped
    dmg = ok & dmg_o
    nd = int(dmg.sum())
    if nd >= MIN_N_RATE:
        kd = int((dmg & returned).sum())
        p_any, lo_any, hi_any = proportion_ci(kd, nd)
        # a damaged item comes back either as a damage refund (q) or as an ordinary return (the
        # undamaged return rate within the window, est): P = q + (1 - q) est
        def inv(v: float) -> float:
            return min(max((v - est) / (1 - est), 0.0), 1.0)

        out.fit("returns.damaged_return_probability", rounded(inv(p_any), 6), {"value": (inv(p_any), inv(lo_any), inv(hi_any))}, "probability",
                "returned share of damaged deliveries P, less ordinary returns: (P - r) / (1 - r) with r the undamaged return rate (Wilson on P)", nd, "returns",
                returned_share=p_any)


def _truncation_share(fit: CensoredFit, upper: float) -> float:
    """P(lag <= upper) under a fitted family (by its mean and cv)."""
    dist = scenario_dist(fit.to_scenario_dist(1.0))
    u = np.linspace(0.0005, 0.9995, 2000)
    q = dist.quantile(u)
    return float(np.interp(upper, q, u, left=0.0, right=1.0))
