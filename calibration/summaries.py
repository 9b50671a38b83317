"""Raw history → summaries: the transforms the fits and the backtest read, kept apart from fitting.

Everything here is descriptive (counts, series, lags, per-customer marks); nothing is estimated.
The same functions run on the analyst's history and on simulated history (the backtest), so the
two are compared like for like.

Time unit: **days** (float) since local midnight of the history's first day, in the calibration
time zone; day ``d`` covers ``[d, d + 1)``. The fit window is days ``[0, fit_days)``; the holdout
is ``[fit_days, days)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from calibration import btyd
from calibration.schemas import History

__all__ = [
    "Prepared",
    "Window",
    "acquisition_stop",
    "coarse_timestamps",
    "customer_marks",
    "daily_counts",
    "history_window",
    "mark_first_touches",
    "merge_same_day_orders",
    "prepare",
    "repeat_curve",
    "rfm_table",
    "weekly_sums",
]

ISSUE_STATUSES = ("late", "failed_attempt", "lost")
"""Carrier outcomes that count as a delivery issue for WISMO (the engine's ``probability_if_issue``)."""
DELIVERED_STATUSES = ("on_time", "late", "failed_attempt", "damaged")


class CalibrationInputError(ValueError):
    """The history cannot be calibrated as asked (too short for the holdout, nothing usable, ...)."""


@dataclass(frozen=True)
class Window:
    """The history's calendar: ``days`` whole days from ``start`` (local midnight), the last
    ``holdout_days`` of them held out of every fit."""

    start: pd.Timestamp
    days: int
    holdout_days: int

    @property
    def fit_days(self) -> int:
        return self.days - self.holdout_days

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(days=self.days)

    @property
    def holdout_start(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(days=self.fit_days)

    def dates(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.days, freq="D")

    def to_dict(self) -> dict[str, object]:
        return {
            "start": self.start.date().isoformat(),
            "end_exclusive": self.end.date().isoformat(),
            "days": self.days,
            "fit_days": self.fit_days,
            "holdout_start": self.holdout_start.date().isoformat() if self.holdout_days else None,
            "holdout_days": self.holdout_days,
        }


def history_window(h: History, holdout_weeks: int, min_fit_days: int = 28) -> Window:
    """The calendar of a history: from the local date of its first event (order, contact or return
    request; staffing alone if nothing else) to the day after its last, with a holdout of whole weeks."""
    if holdout_weeks < 0:
        raise CalibrationInputError("holdout weeks must be >= 0")
    stamps: list[pd.Series] = []
    for frame, col in ((h.orders, "order_ts"), (h.contacts, "created_ts"), (h.returns, "requested_ts")):
        if frame is not None:
            stamps.append(frame[col])
    if not stamps and h.staffing is not None:
        stamps.append(h.staffing["interval_start"])
    lo = min(h.local(s).min() for s in stamps).normalize()
    hi = max(h.local(s).max() for s in stamps).normalize() + pd.Timedelta(days=1)
    days = int((hi - lo) / pd.Timedelta(days=1))
    holdout = 7 * holdout_weeks
    if days - holdout < min_fit_days:
        why = " (an order log needs that many to fit arrivals)" if min_fit_days > 1 else ""
        raise CalibrationInputError(
            f"the history covers {days} day(s) ({lo.date()} to {(hi - pd.Timedelta(days=1)).date()}); with a "
            f"{holdout_weeks}-week holdout fewer than {min_fit_days} day(s) are left to fit{why}: pass a smaller "
            "--holdout-weeks (0 for none) or a longer history"
        )
    return Window(lo, days, holdout)


@dataclass
class Prepared:
    """History frames on the calibration clock (float days since ``window.start``).

    ``orders``: order_id, customer_id, t, value, promised, shipped, delivered (days; NaN if
    unknown), status, first (the customer's first order in the file), hour, dow (0 = Monday).
    ``contacts``: contact_id, t, channel, reason, customer_id, order_id, answered (days), abandoned,
    handle_min, resolved, wait_min (from wait_sec, else answered - created), first_touch, human.
    ``returns``: order_id, t, outcome, reason, refunded. ``staffing``: t, channel, agents.
    """

    window: Window
    orders: pd.DataFrame | None
    contacts: pd.DataFrame | None
    returns: pd.DataFrame | None
    staffing: pd.DataFrame | None


def _days(h: History, ts: pd.Series, start: pd.Timestamp) -> np.ndarray:
    local = h.local(ts)
    return ((local - start) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)


def _opt(df: pd.DataFrame, col: str, default: object = np.nan) -> pd.Series:
    return df[col] if col in df.columns else pd.Series(default, index=df.index)


def prepare(h: History, window: Window) -> Prepared:
    """Put every frame on the calibration clock and derive the per-row fields the fits use."""
    start = window.start
    orders = contacts = returns = staffing = None
    if h.orders is not None:
        o = h.orders
        t = _days(h, o["order_ts"], start)
        local = h.local(o["order_ts"])
        orders = pd.DataFrame({
            "order_id": o["order_id"].to_numpy(),
            "customer_id": o["customer_id"].to_numpy(),
            "t": t,
            "value": o["order_value"].to_numpy(dtype=float),
            "promised": ((_opt(o, "promised_delivery_date", pd.NaT) - start) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
            if "promised_delivery_date" in o.columns else np.full(len(o), np.nan),
            "shipped": _days(h, o["shipped_ts"], start) if "shipped_ts" in o.columns else np.full(len(o), np.nan),
            "delivered": _days(h, o["delivered_ts"], start) if "delivered_ts" in o.columns else np.full(len(o), np.nan),
            "status": _opt(o, "delivery_status").to_numpy(dtype=object),
            "hour": local.dt.hour.to_numpy(),
            "dow": local.dt.day_of_week.to_numpy(),
        })
        orders = orders.sort_values(["t", "order_id"], kind="stable").reset_index(drop=True)
        orders["first"] = ~orders["customer_id"].duplicated(keep="first").to_numpy()
    if h.contacts is not None:
        c = h.contacts
        t = _days(h, c["created_ts"], start)
        answered = _days(h, c["answered_ts"], start) if "answered_ts" in c.columns else np.full(len(c), np.nan)
        wait = _opt(c, "wait_sec").to_numpy(dtype=float, na_value=np.nan) / 60.0
        wait = np.where(np.isnan(wait), (answered - t) * 1440.0, wait)
        abandoned = _opt(c, "abandoned", pd.NA).astype("boolean")
        contacts = pd.DataFrame({
            "contact_id": c["contact_id"].to_numpy(),
            "t": t,
            "channel": c["channel"].to_numpy(dtype=object),
            "reason": c["reason"].to_numpy(dtype=object),
            "customer_id": _opt(c, "customer_id").to_numpy(dtype=object),
            "order_id": _opt(c, "order_id").to_numpy(dtype=object),
            "answered": answered,
            "abandoned": abandoned.to_numpy(),
            "handle_min": _opt(c, "handle_time_sec").to_numpy(dtype=float, na_value=np.nan) / 60.0,
            "resolved": _opt(c, "resolved", pd.NA).astype("boolean").to_numpy(),
            "wait_min": wait,
        })
        contacts["human"] = contacts["channel"].to_numpy() != "bot"
        contacts = contacts.sort_values(["t", "contact_id"], kind="stable").reset_index(drop=True)
        contacts["first_touch"] = mark_first_touches(contacts)
    if h.returns is not None:
        r = h.returns
        returns = pd.DataFrame({
            "order_id": r["order_id"].to_numpy(),
            "t": _days(h, r["requested_ts"], start),
            "outcome": r["outcome"].to_numpy(dtype=object),
            "reason": _opt(r, "reason").to_numpy(dtype=object),
            "refunded": _days(h, r["refunded_ts"], start) if "refunded_ts" in r.columns else np.full(len(r), np.nan),
        }).sort_values("t", kind="stable").reset_index(drop=True)
    if h.staffing is not None:
        s = h.staffing
        staffing = pd.DataFrame({
            "t": _days(h, s["interval_start"], start),
            "channel": s["channel"].to_numpy(dtype=object),
            "agents": s["agents"].to_numpy(dtype=float),
        }).sort_values(["channel", "t"], kind="stable").reset_index(drop=True)
    return Prepared(window, orders, contacts, returns, staffing)


# ----------------------------------------------------------------------------- series


def daily_counts(t: np.ndarray, days: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Events (or weights) per day ``0..days-1`` from event times in days; others are ignored."""
    t = np.asarray(t, dtype=float)
    ok = np.isfinite(t) & (t >= 0) & (t < days)
    d = np.floor(t[ok]).astype(np.int64)
    w = None if weights is None else np.asarray(weights, dtype=float)[ok]
    return np.bincount(d, weights=w, minlength=days)[:days].astype(float)


def weekly_sums(daily: np.ndarray) -> np.ndarray:
    """Sums over whole 7-day blocks from day 0 (a trailing partial week is dropped)."""
    n = len(daily) // 7
    return np.asarray(daily[: n * 7], dtype=float).reshape(n, 7).sum(axis=1)


# ----------------------------------------------------------------------------- resolution


COARSE_MIN_EVENTS = 500
"""Fewest timestamps for calling a file's clock times coarse from the few hours they use."""
COARSE_MAX_HOURS = 4


def coarse_timestamps(t: np.ndarray) -> str | None:
    """Why the times of day in ``t`` (days on the calibration clock) carry no hour profile, or None.

    Date-only exports put every event at the same clock time (midnight, or the offset of the time
    zone); coarse ones (e.g. rounded to 6 hours) use at most :data:`COARSE_MAX_HOURS` distinct
    hours among at least :data:`COARSE_MIN_EVENTS` events, which no shop's order or contact
    arrivals do."""
    t = np.asarray(t, dtype=float)
    t = t[np.isfinite(t)]
    if len(t) < 2:
        return None
    minute = np.round((t % 1.0) * 1440.0).astype(np.int64) % 1440
    distinct = np.unique(minute)
    if len(distinct) == 1:
        m = int(distinct[0])
        return f"every timestamp is at {m // 60:02d}:{m % 60:02d} (date-only)"
    hours = np.unique(minute // 60)
    if len(t) >= COARSE_MIN_EVENTS and len(hours) <= COARSE_MAX_HOURS:
        return f"the {len(t):,} timestamps use only {len(hours)} distinct hour(s) of the day ({', '.join(f'{h:02d}h' for h in hours)})"
    return None


def merge_same_day_orders(orders: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per customer and calendar day (the first; ``value`` summed) and how many rows were
    merged away. With date-only timestamps, a customer's orders of one day share one timestamp, so
    a continuous-time purchase process sees them as one purchase (as the BTYD literature does)."""
    day = np.floor(orders["t"].to_numpy())
    key = pd.DataFrame({"c": orders["customer_id"].to_numpy(), "d": day})
    dup = key.duplicated(keep="first").to_numpy()
    if not dup.any():
        return orders, 0
    values = orders.groupby([key["c"].to_numpy(), day], sort=False)["value"].transform("sum").to_numpy()
    merged = orders.loc[~dup].copy()
    merged["value"] = values[~dup]
    return merged.reset_index(drop=True), int(dup.sum())


CLOSED_COHORT_MIN_GAP_DAYS = 7
CLOSED_COHORT_EXPECTED = 14.0
"""A gap without new customers closes the cohort when continued arrivals would have brought at
least this many (P(none) = exp(-14) < 1e-6 under a Poisson process)."""


def acquisition_stop(first_seen_daily: np.ndarray) -> int | None:
    """The day new customers stopped arriving, if they did: the day after the last day with a
    first-seen customer, when the rest of the window (at least a week) has none although the last
    four weeks of arrivals before it would have brought :data:`CLOSED_COHORT_EXPECTED` or more."""
    c = np.asarray(first_seen_daily, dtype=float)
    seen = np.flatnonzero(c > 0)
    if len(seen) == 0:
        return None
    stop = int(seen[-1]) + 1
    gap = len(c) - stop
    rate = float(c[max(0, stop - 28) : stop].mean())
    if gap >= CLOSED_COHORT_MIN_GAP_DAYS and rate * gap >= CLOSED_COHORT_EXPECTED:
        return stop
    return None


# ----------------------------------------------------------------------------- customers


def customer_marks(orders: pd.DataFrame, end: float) -> pd.DataFrame:
    """Per customer whose first order falls before ``end`` (days): when first seen and the repeat
    purchases until ``end`` in continuous time: ``t0`` (first order), ``x`` (repeat orders),
    ``tx`` (last minus first order), ``T`` (``end`` minus first order), ``hour`` of the first order."""
    o = orders[orders["t"] < end]
    g = o.groupby("customer_id", sort=False)
    first = g["t"].min()
    last = g["t"].max()
    n = g.size()
    hour = o.loc[o["first"].to_numpy(), ["customer_id", "hour"]].set_index("customer_id")["hour"]
    out = pd.DataFrame({
        "t0": first,
        "x": (n - 1).astype(np.int64),
        "tx": last - first,
        "T": end - first,
    })
    out["hour"] = hour.reindex(out.index).fillna(0).astype(np.int64).to_numpy()
    return out


def rfm_table(orders: pd.DataFrame, window: Window, end: float, value: bool = True, time_unit_days: float = 1.0) -> pd.DataFrame:
    """Day-level RFM (``btyd.rfm_summary``: one purchase per customer and calendar day, recency and
    T in units of ``time_unit_days``, T counted to the last day before ``end``) of the orders before
    ``end``, for the BG/NBD, Pareto/NBD and Gamma-Gamma comparisons."""
    o = orders[orders["t"] < end]
    frame = pd.DataFrame({
        "customer": o["customer_id"].to_numpy(),
        "ts": window.start + pd.to_timedelta(o["t"].to_numpy(), unit="D"),
        "value": o["value"].to_numpy(),
    })
    obs_end = window.start + pd.Timedelta(days=end) - pd.Timedelta(microseconds=1)
    return btyd.rfm_summary(frame, "customer", "ts", "value" if value else None, obs_end, time_unit_days=time_unit_days)


def repeat_curve(orders: pd.DataFrame, cohort: tuple[float, float], horizon: int, end: float) -> pd.DataFrame:
    """Repeat-purchase curve of the customers first seen in ``cohort`` (days ``[lo, hi)``).

    For each ``t_days`` in 0..horizon, among the customers observed for at least ``t`` days before
    ``end``: ``repeat_share`` who ordered again within ``t`` days of their first order, and
    ``repeat_orders``, their mean number of repeat orders within ``t`` days."""
    lo, hi = cohort
    o = orders[orders["t"] < end]
    first = o.groupby("customer_id", sort=False)["t"].min()
    members = first[(first >= lo) & (first < hi)]
    sub = o[o["customer_id"].isin(members.index)]
    gap = sub["t"].to_numpy() - members.reindex(sub["customer_id"]).to_numpy()
    rep = gap > 0
    rep_cust = sub["customer_id"].to_numpy()[rep]
    rep_gap = gap[rep]
    second = pd.Series(rep_gap).groupby(rep_cust).min().reindex(members.index).to_numpy()
    second = np.where(np.isnan(second), np.inf, second)
    span = end - members.to_numpy()
    rep_span = end - members.reindex(rep_cust).to_numpy()
    grid = np.arange(horizon + 1, dtype=float)
    n_obs = np.array([(span >= t).sum() for t in grid])
    share = np.array([((span >= t) & (second <= t)).sum() for t in grid]) / np.maximum(n_obs, 1)
    orders_by = np.array([((rep_span >= t) & (rep_gap <= t)).sum() for t in grid]) / np.maximum(n_obs, 1)
    share = np.where(n_obs > 0, share, np.nan)
    orders_by = np.where(n_obs > 0, orders_by, np.nan)
    return pd.DataFrame({"t_days": grid, "repeat_share": share, "repeat_orders": orders_by, "customers": n_obs})


# ----------------------------------------------------------------------------- contacts


def mark_first_touches(contacts: pd.DataFrame) -> np.ndarray:
    """True for the first contact (in time) of each (order_id, reason); False for the later ones
    (repeat contacts, retries after abandoning, coming back after the bot); NaN (object) where the
    contact has no order_id. ``contacts`` must be sorted by time."""
    out = np.full(len(contacts), np.nan, dtype=object)
    linked = contacts["order_id"].notna().to_numpy()
    if linked.any():
        sub = contacts.loc[linked, ["order_id", "reason"]]
        out[linked] = ~sub.duplicated(keep="first").to_numpy()
    return out
