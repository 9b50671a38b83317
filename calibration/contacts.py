"""Contacts stage: the contact hour profile, handle time per reason and channel, patience and
retries per real-time channel, first-contact resolution and repeat delays, channel mix per reason,
bot containment, and (with orders) the contact rates of :mod:`calibration.contact_rates`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from calibration import distfit
from calibration.collector import (
    BOOTSTRAP_MAX_N,
    MIN_N_DURATION,
    MIN_N_RATE,
    Collector,
    duration_fit,
    proportion_ci,
    record_distribution,
    rounded,
    scenario_dist,
    shares_to_one,
)
from calibration.contact_rates import (
    contact_hour_cdf,
    day_censored_delay,
    fit_contact_rates,
    identified,
)
from calibration.summaries import Prepared
from sim.scenario import CHANNELS, REASONS, Scenario

__all__ = ["fit_contacts"]


CURVE_POINTS = 120


def fit_contacts(p: Prepared, base: Scenario, out: Collector, rng: np.random.Generator, delivery: dict[str, Any]) -> None:
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
        out.fit("contacts.hour_weights", [rounded(x, 5) for x in hw],
                {str(h): (hw[h], 24 * proportion_ci(int(cnt[h]), n)[1], 24 * proportion_ci(int(cnt[h]), n)[2]) for h in range(24)},
                "relative weight (mean 1)", "hour-of-day shares of created_ts; Wilson intervals", n, "contacts")
        hour_shares = shares
    else:
        out.why("contacts.hour_weights", "fewer than 500 contacts")
        hw0 = base.contacts.hour_weights
        hour_shares = np.asarray(hw0, dtype=float) / sum(hw0) if hw0 else None  # type: ignore[assignment]
    cdf_h = contact_hour_cdf(hour_shares) if hour_shares is not None else None
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
        fit_contact_rates(p, base, out, rng, delivery, hour_shares)
    else:
        for r in REASONS:
            out.why(f"contacts.reasons.{r}.probability", "no orders file: contact triggers unknown")
            out.why(f"contacts.reasons.{r}.delay_hours", "no orders file: contact triggers unknown")


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


def _fit_handle_times(fc: pd.DataFrame, base: Scenario, out: Collector, rng: np.random.Generator, known: np.ndarray) -> None:
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
            f = duration_fit(handle[sel] / factor, rng)
            path = f"contacts.reasons.{r}.handle_time_min.{ch}"
            if f is None:
                if sel.sum():
                    out.why(path, f"only {int(sel.sum())} answered contact(s) with a handle time (need {MIN_N_DURATION})")
                continue
            if record_distribution(out, path, f, 1.0, "minutes", "handle_time_sec / 60; maximum likelihood, family by AIC" + (" (divided by the agent-assist factor)" if factor != 1 else ""), "contacts"):
                fitted_cells.add((r, ch))
    # channels whose data carry no scenario reason (e.g. a call-centre log): pooled fit, applied by
    # scaling the base means of every reason on that channel
    for ch in CHANNELS:
        if ch not in base.contacts.channels or any(cell[1] == ch for cell in fitted_cells):
            continue
        sel = ok & (channels == ch) & ~known
        f = duration_fit(handle[sel] / factor, rng)
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
            value["mean"] = rounded(bm * scale, 4)
            out.fit(f"contacts.reasons.{r}.handle_time_min.{ch}", value,
                    {"mean": (bm * scale, bm * f.mean_ci95[0] / ref, bm * f.mean_ci95[1] / ref), **({"cv": (f.cv, *f.cv_ci95)} if value["dist"] != "exponential" else {})},
                    "minutes", f"pooled {ch} fit over contacts with non-scenario reasons (family and cv), applied by scaling the base mean of each reason ({scale:.3f}x)",
                    f.n, "contacts", diag={**diag, "pooled_mean_min": f.mean, "base_reference_mean_min": ref})


def _median_of(f: distfit.DurationFit) -> float:
    """Median of a fitted duration distribution (by its scenario form)."""
    d = f.to_scenario_dist(1.0)
    return float(scenario_dist(d).quantile(np.array([0.5]))[0])


def _fit_patience_retry(c: pd.DataFrame, base: Scenario, out: Collector, rng: np.random.Generator, D: int,
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
        if record_distribution(out, path, f, 1.0, "minutes", "right-censored maximum likelihood (abandoned = event, answered = censored at its wait); family by AIC",
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
        est = proportion_ci(k, n)
        out.fit(f"contacts.channels.{ch}.retry_after_abandon", rounded(est[0], 5), {"value": est}, "share",
                "abandoned contacts followed by another contact on the same order and reason (Wilson)", n, "contacts")
        _followup_delay(out, f"contacts.channels.{ch}.retry_delay_hours", ab_time[retried], nxt_t[retried], cdf_h, rng,
                        "abandonment (created + wait) to the next contact on the same order and reason")


def _followup_delay(out: Collector, path: str, tau: np.ndarray, nxt: np.ndarray, cdf_h: Callable[[np.ndarray], np.ndarray] | None,
                    rng: np.random.Generator, what: str) -> bool:
    """Delay (hours) from a contact's end / abandonment ``tau`` to the follow-up at ``nxt`` (days).
    With a contact hour profile the engine keeps the follow-up's day and draws its hour, so the delay
    is fitted day-censored like first contacts' delays; without one, from the exact gaps."""
    if cdf_h is None:
        f = duration_fit((nxt - tau) * 24.0, rng)
        return f is not None and record_distribution(out, path, f, 1.0, "hours", what + "; maximum likelihood, family by AIC", "contacts")
    cday = np.floor(nxt)
    ok = cday >= np.floor(tau)
    if ok.sum() < MIN_N_DURATION:
        out.why(path, f"{int(ok.sum())} follow-up contact(s)")
        return False
    fit = day_censored_delay(tau[ok], cday[ok], cdf_h)
    if not identified(fit):
        out.why(path, "not identified: the delay is short next to the day resolution of the contact times (the hour is drawn from the profile)")
        out.notes.append(f"{path}: kept from the base; a delay much shorter than a day cannot be told apart at day resolution")
        return False
    return record_distribution(out, path, fit, 1.0, "hours", what + "; day-censored maximum likelihood (the day is kept, the hour drawn from the contact profile)",
                       "contacts", {"follow_ups_before_their_trigger_dropped": int((~ok).sum())})


def _fit_resolution(fc: pd.DataFrame, base: Scenario, out: Collector, known: np.ndarray, D: int,
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
        est, lo, hi = proportion_ci(k, n)
        e = cfg.escalation
        fcr = min(est / (1 - e), 1.0)
        out.fit(f"contacts.reasons.{r}.first_contact_resolution", rounded(fcr, 5), {"value": (fcr, min(lo / (1 - e), 1.0), min(hi / (1 - e), 1.0))}, "share",
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


def _fit_channel_mix(fc: pd.DataFrame, base: Scenario, out: Collector, known: np.ndarray) -> None:
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
        shares = shares_to_one({ch: counts[ch] / n for ch in CHANNELS})
        handle = base.contacts.reasons[r].handle_time_min  # type: ignore[index]
        missing = [ch for ch, v in shares.items() if v > 0 and ch not in handle and f"contacts.reasons.{r}.handle_time_min.{ch}" not in [q.path for q in out.params]]
        if missing:
            out.warn(f"{path}: channel(s) {missing} are used but have no handle time in the base; the base mix is kept")
            continue
        out.fit(path, shares, {ch: proportion_ci(counts[ch], n) for ch in CHANNELS}, "share",
                "channel shares of first contacts (first per order and reason)" if any_link else "channel shares of all contacts (no order_id to find first contacts)",
                n, "contacts")


def _fit_containment(fc: pd.DataFrame, base: Scenario, out: Collector, D: int, cdf_h: Callable[[np.ndarray], np.ndarray] | None) -> None:
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
        est = proportion_ci(k, n)
        out.fit(f"contacts.reasons.{r}.containment", rounded(est[0], 5), {"value": est}, "share",
                "bot share of first contacts (Wilson)", n, "contacts")
    if any_link:
        linked = fc[fc["order_id"].notna().to_numpy()].sort_values("t", kind="stable")
        nxt_t = linked.groupby(["order_id", "reason"], sort=False)["t"].shift(-1).to_numpy()
        is_bot = linked["channel"].to_numpy(dtype=object) == "bot"
        sel = is_bot & (linked["t"].to_numpy() < D - 2)
        if sel.sum() >= MIN_N_RATE:
            k = int(np.sum(sel & np.isfinite(nxt_t)))
            est = proportion_ci(k, int(sel.sum()))
            out.fit("automation.contained_come_back", rounded(est[0], 5), {"value": est}, "share",
                    "bot contacts followed by another contact on the same order and reason (Wilson)", int(sel.sum()), "contacts")
            back = sel & np.isfinite(nxt_t) & (nxt_t < D)
            _followup_delay(out, "automation.come_back_delay_hours", linked["t"].to_numpy()[back], nxt_t[back], cdf_h,
                            np.random.default_rng(2), "bot contact to the customer's next contact on the same order and reason")
