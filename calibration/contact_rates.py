"""Contact triggers: the probability of a first contact per trigger (shipment, failed delivery,
damaged delivery, return, ...) and the delay after it, per reason, fitted day-censored because the
engine keeps a contact's day and draws its hour from the contact profile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from calibration.censored import CensoredFit, fit_interval_censored
from calibration.collector import (
    MIN_N_DURATION,
    MIN_N_RATE,
    Collector,
    proportion_ci,
    record_distribution,
    rounded,
)
from calibration.summaries import DELIVERED_STATUSES, Prepared
from sim.scenario import REASONS, Scenario

__all__ = ["contact_hour_cdf", "day_censored_delay", "fit_contact_rates", "identified"]


SHAPE_CI_RATIO = 3.0
"""A day-censored delay fit whose cv interval spans more than this factor falls back to the
exponential (one parameter): the shape is not identified."""


def contact_hour_cdf(shares: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """P(a contact's drawn time of day < f) for day fractions f, hours uniform inside."""
    cum = np.concatenate(([0.0], np.cumsum(shares)))

    def cdf(f: np.ndarray) -> np.ndarray:
        h = np.clip(np.floor(f * 24).astype(np.int64), 0, 23)
        return cum[h] + (f * 24 - h) * shares[h]

    return cdf


def identified(fit: CensoredFit) -> bool:
    """A day-censored fit pins its mean down: an interval neither degenerate (a flat likelihood) nor
    spanning more than a factor 5."""
    lo, hi = fit.mean_ci95
    return bool(fit.converged and lo > 0 and 1.0005 < hi / lo < 5.0)


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


def fit_contact_rates(p: Prepared, base: Scenario, out: Collector, rng: np.random.Generator, delivery: dict[str, Any], hour_shares: np.ndarray | None) -> None:
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
    cdf_h = contact_hour_cdf(hour_shares) if hour_shares is not None else None
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
                est, lo, hi = proportion_ci(k, n)
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
                out.fit(f"contacts.reasons.wismo.{key}", rounded(est / div, 6), {"value": (est / div, lo / div, min(hi / div, 1.0))}, "per trigger",
                        how, n, "contacts", first_contacts=k, share_with_order_id=share_linked, cohort_end_day=cohort_end)
        else:
            n, k = int(cond.sum()), int((hit & cond).sum())
            if n < MIN_N_RATE:
                out.why(path_p, f"{n} trigger(s) in the cohort")
            else:
                est, lo, hi = proportion_ci(k, n)
                div = share_linked
                how = f"first {r} contacts per trigger / share of contact groups seen with an order_id ({share_linked:.4f}); Wilson"
                if r == "product_question" and base.onboarding.enabled:
                    div *= 1 - base.onboarding.howto_contact_reduction * base.onboarding.learning_curve_share
                    how += "; divided by the onboarding reduction"
                if est / div <= 1:
                    out.fit(path_p, rounded(est / div, 6), {"value": (est / div, lo / div, min(hi / div, 1.0))}, "per trigger", how, n, "contacts",
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
        fit = day_censored_delay(tau, cday, cdf_h)
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
                    alt = day_censored_delay(tau2[ok2], cday[ok2], cdf_h)
                    if alt.converged:
                        fit.mean_ci95 = (min(fit.mean_ci95[0], alt.mean_ci95[0]), max(fit.mean_ci95[1], alt.mean_ci95[1]))
                        fit.cv_ci95 = (min(fit.cv_ci95[0], alt.cv_ci95[0]), max(fit.cv_ci95[1], alt.cv_ci95[1]))
                method += "; interval widened over the failed-attempt delay's interval (trigger = delivered_ts - that delay)"
                extra["failed_attempt_extra_days_used"] = failed_extra
        if not identified(fit):
            out.why(path_d, "not identified at day resolution (the delay is short next to a day)")
            continue
        record_distribution(out, path_d, fit, 1.0, "hours", method, "contacts", extra)


def day_censored_delay(tau: np.ndarray, cday: np.ndarray, cdf_h: Callable[[np.ndarray], np.ndarray] | None) -> CensoredFit:
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
