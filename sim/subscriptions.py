"""Subscriptions (contractual churn): who subscribes, what each renewal does, and the subscriber
tables and KPIs. Vectorised, no I/O; the engine places the orders (see sim.scenario.Subscription).

Each subscriber draws a cancellation probability theta ~ Beta(alpha, beta) when subscribing. At
the k-th renewal (the first ``cadence_days`` after the subscribing order) the subscriber

1. cancels with probability sigmoid(logit(theta) - sentiment_weight x sentiment), else
2. pauses with ``pause_probability`` (no order; the next renewal comes ``pause_cycles`` cadences
   later), else
3. skips this delivery with ``skip_probability``, else
4. receives a subscription order.

Every draw is a counter-based uniform keyed by (customer key, renewal number), so a subscriber
makes the same draws in every scenario (common random numbers): a scenario that hurts sentiment
can only raise the cancellation probability a given draw is compared with.

With sentiment_weight = 0 (or neutral sentiment) the number of renewals survived is
shifted-beta-geometric: P(still subscribed after t renewals) = B(alpha, beta + t) / B(alpha, beta).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from sim.calendar import DAYS_PER_MONTH, MIN_PER_DAY, Calendar
from sim.rng import Streams
from sim.scenario import Subscription
from sim.tables import Columns, DayBuckets

ORDER_KIND = 3
"""``orders.kind`` of a subscription order (after the engine's new, repeat and win-back kinds)."""
ORDER, SKIP, PAUSE, CANCEL = range(4)
OUTCOMES: tuple[str, ...] = ("order", "skip", "pause", "cancel")
"""What a renewal decision did, in the order of the codes in the renewal log's ``outcome``."""
MONTH_MIN = DAYS_PER_MONTH * MIN_PER_DAY
SURVIVAL_KPI_MONTHS = 3
"""Months since subscribing of the ``subscriber_survival_3m`` KPI."""

SUBSCRIBER_COLUMNS = {
    "customer": "int64",
    "start_min": "float64",  # the order at which the customer subscribed
    "theta": "float64",  # cancellation probability per renewal before the experience shift
    "renewals": "int32",  # renewal decisions made so far (a cancelling one included)
    "cancelled": "bool",
    "cancel_min": "float64",  # nan while subscribed
    "next_min": "float64",  # next renewal decision; inf once cancelled
    "paused": "bool",  # the last decision was a pause (no order until the next renewal)
}
RENEWAL_COLUMNS = {
    "subscriber": "int64",
    "t_min": "float64",
    "number": "int32",  # 1 for the first renewal
    "outcome": "int8",  # one of OUTCOMES
    "after_pause": "bool",  # this renewal ends a pause
}


def monthly_price_usd(cfg: Subscription) -> float:
    """Monthly-equivalent recurring revenue of one billing subscriber, dollars: the discounted
    price times renewals per average month (365.25 / 12 days)."""
    return cfg.price_usd * (1.0 - cfg.discount_share) * DAYS_PER_MONTH / cfg.cadence_days


def sbg_survival(alpha: float, beta: float, t: np.ndarray | int) -> np.ndarray:
    """Shifted-beta-geometric survival: the share still subscribed after ``t`` renewals,
    B(alpha, beta + t) / B(alpha, beta) (Fader & Hardie 2007)."""
    t = np.asarray(t, dtype=np.float64)
    return np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))


@dataclass(frozen=True)
class RenewalDay:
    """What one day's renewals did: subscription orders to place (customer, minute) and counts."""

    customer: np.ndarray
    t_min: np.ndarray
    cancelled: int
    paused: int
    skipped: int


class SubscriptionBook:
    """Subscribers, their pending renewals and the log of renewal decisions of one replication."""

    def __init__(self, cfg: Subscription, streams: Streams, n_days: int) -> None:
        self.cfg = cfg
        self.streams = streams
        self.table = Columns(SUBSCRIBER_COLUMNS, 1 << 12)
        self.log = Columns(RENEWAL_COLUMNS, 1 << 14)
        self.due = DayBuckets(n_days)
        self._sub_of = np.full(1 << 16, -1, np.int64)  # subscriber id per customer id, -1: never

    def subscriber_of(self, customers: np.ndarray) -> np.ndarray:
        """Subscriber id of each customer id (-1: never subscribed, or a negative customer id)."""
        customers = np.asarray(customers, dtype=np.int64)
        out = np.full(len(customers), -1, np.int64)
        ok = (customers >= 0) & (customers < len(self._sub_of))
        out[ok] = self._sub_of[customers[ok]]
        return out

    def enroll(
        self, customers: np.ndarray, keys: np.ndarray, t: np.ndarray, n_orders: np.ndarray
    ) -> np.ndarray:
        """Customers who subscribe at these one-off orders (minutes ``t``; ``n_orders`` counts the
        customer's orders including this one, 1 being a new customer's first). Returns the new
        subscriber ids; their first renewal is filed ``cadence_days`` later."""
        cfg = self.cfg
        if not cfg.enabled or len(customers) == 0:
            return np.empty(0, np.int64)
        never = self.subscriber_of(customers) < 0
        p = np.where(n_orders == 1, cfg.uptake_first_order, cfg.uptake_repeat_order)
        join = never & (self.streams.uniform("subscription_uptake", keys, n_orders) < p)
        # a customer with two orders in one batch subscribes once, at the first
        cust, first = np.unique(customers[join], return_index=True)
        t0, key = t[join][first], keys[join][first]
        theta = special.betaincinv(
            cfg.cancel_alpha, cfg.cancel_beta, self.streams.uniform("subscription_theta", key, 0)
        )
        nxt = t0 + cfg.cadence_days * MIN_PER_DAY
        ids = self.table.append(
            customer=cust,
            start_min=t0,
            theta=theta,
            renewals=0,
            cancelled=False,
            cancel_min=np.nan,
            next_min=nxt,
            paused=False,
        )
        if len(cust) and cust.max() >= len(self._sub_of):
            grown = np.full(max(2 * len(self._sub_of), int(cust.max()) + 1), -1, np.int64)
            grown[: len(self._sub_of)] = self._sub_of
            self._sub_of = grown
        self._sub_of[cust] = ids
        self.due.add(np.floor(nxt / MIN_PER_DAY), subscriber=ids)
        return ids

    def renew(self, day: int, keys: np.ndarray, sentiment: np.ndarray) -> RenewalDay:
        """Decide the renewals falling due on ``day``. ``keys`` and ``sentiment`` are per customer
        id (the customers table's columns), read as they stand at the decision."""
        ids = np.unique(self.due.pop(day, ("subscriber",))["subscriber"].astype(np.int64))
        tab, cfg = self.table, self.cfg
        ids = ids[~tab["cancelled"][ids]]
        if len(ids) == 0:
            return RenewalDay(np.empty(0, np.int64), np.empty(0), 0, 0, 0)
        t, cust = tab["next_min"][ids], tab["customer"][ids]
        k = tab["renewals"][ids] + 1
        key = keys[cust]
        log_odds = special.logit(np.clip(tab["theta"][ids], 1e-12, 1 - 1e-12))
        p_cancel = special.expit(log_odds - cfg.sentiment_weight * sentiment[cust])
        uniform = self.streams.uniform
        cancel = uniform("subscription_cancel", key, k) < p_cancel
        pause = ~cancel & (uniform("subscription_pause", key, k) < cfg.pause_probability)
        skip = ~cancel & ~pause & (uniform("subscription_skip", key, k) < cfg.skip_probability)
        outcome = np.select([cancel, pause, skip], [CANCEL, PAUSE, SKIP], ORDER).astype(np.int8)
        self.log.append(
            subscriber=ids, t_min=t, number=k, outcome=outcome, after_pause=tab["paused"][ids]
        )

        tab.buffer("renewals")[ids] = k
        tab.buffer("paused")[ids] = pause
        tab.buffer("cancelled")[ids[cancel]] = True
        tab.buffer("cancel_min")[ids[cancel]] = t[cancel]
        cycles = np.where(pause, cfg.pause_cycles, 1)
        nxt = np.where(cancel, np.inf, t + cycles * cfg.cadence_days * MIN_PER_DAY)
        tab.buffer("next_min")[ids] = nxt
        self.due.add(np.floor(nxt[~cancel] / MIN_PER_DAY), subscriber=ids[~cancel])
        order = outcome == ORDER
        return RenewalDay(
            cust[order], t[order], int(cancel.sum()), int(pause.sum()), int(skip.sum())
        )


# ----------------------------------------------------------------------------- tables and KPIs


def _per_day(minutes: np.ndarray, n_days: int) -> np.ndarray:
    day = np.floor(minutes / MIN_PER_DAY).astype(np.int64)
    return np.bincount(day[(day >= 0) & (day < n_days)], minlength=n_days)


def daily_series(book: SubscriptionBook, n_days: int) -> dict[str, np.ndarray]:
    """Per-day subscription series (zeros without subscriptions): starts, renewal outcomes,
    subscribers at the day's end (``subscribers_active`` includes ``subscribers_paused``) and
    ``mrr_usd``, the billing (active, unpaused) subscribers times :func:`monthly_price_usd`."""
    tab, log = book.table, book.log
    started = _per_day(tab["start_min"], n_days)
    by = {
        name: _per_day(log["t_min"][log["outcome"] == code], n_days)
        for code, name in enumerate(OUTCOMES)
    }
    resumed = _per_day(log["t_min"][log["after_pause"]], n_days)
    active = np.cumsum(started - by["cancel"])
    paused = np.cumsum(by["pause"] - resumed)
    return {
        "subscriptions_started": started,
        "subscription_orders": by["order"],
        "subscription_skips": by["skip"],
        "subscription_pauses": by["pause"],
        "subscription_cancellations": by["cancel"],
        "subscribers_active": active,
        "subscribers_paused": paused,
        "mrr_usd": np.round((active - paused) * monthly_price_usd(book.cfg), 2),
    }


def _cancel_min(book: SubscriptionBook) -> np.ndarray:
    tab = book.table
    return np.where(tab["cancelled"], tab["cancel_min"], np.inf)


COHORT_COLUMNS: tuple[str, ...] = (
    "cohort",
    "months_since",
    "subscribers",
    "observed",
    "active",
    "survival",
)


def cohort_table(book: SubscriptionBook, cal: Calendar, end_min: float) -> pd.DataFrame:
    """Survival by subscription month, per subscription cohort (calendar month of subscribing).

    One row per cohort and ``months_since`` k = 0, 1, ...: ``subscribers`` in the cohort,
    ``observed`` (those who subscribed at least k average months (365.25/12 days) before the
    horizon end), ``active`` (of those, still subscribed k months after subscribing) and
    ``survival`` = active / observed. Monthly churn of a cohort at k is
    1 - survival_k / survival_(k-1).
    """
    tab = book.table
    if tab.n == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in COHORT_COLUMNS})
    start, cancel = tab["start_min"], _cancel_min(book)
    cohort = cal.month_index(start).astype(np.int64)
    months = cal.month_starts()
    frames = []
    for k in range(cal.n_months + 1):
        age = start + k * MONTH_MIN
        observed = age <= end_min
        if not observed.any():
            break
        active = observed & (cancel > age)
        frames.append(
            pd.DataFrame(
                {
                    "cohort": months[cohort],
                    "months_since": k,
                    "subscribers": 1,
                    "observed": observed.astype(np.int64),
                    "active": active.astype(np.int64),
                }
            )
        )
    df = pd.concat(frames).groupby(["cohort", "months_since"], as_index=False).sum()
    df = df[df["observed"] > 0].reset_index(drop=True)
    df["survival"] = df["active"] / df["observed"]
    return df[list(COHORT_COLUMNS)]


def monthly_churn(book: SubscriptionBook, cal: Calendar, end_min: float) -> float:
    """Mean, over the calendar months wholly inside the horizon that start with subscribers, of
    the share of the subscribers active at the month's start who cancel during it. NaN if none."""
    tab = book.table
    start, cancel = tab["start_min"], _cancel_min(book)
    starts = cal.month_starts()
    after = (starts[-1] + pd.offsets.MonthBegin(1)).date()
    edges = np.array([cal.minute_of(m.date()) for m in starts] + [cal.minute_of(after)])
    rates = []
    for lo, hi in itertools.pairwise(edges):
        if lo < 0 or hi > end_min:
            continue
        at_start = (start < lo) & (cancel >= lo)
        n = int(at_start.sum())
        if n:
            rates.append(float((at_start & (cancel < hi)).sum()) / n)
    return float(np.mean(rates)) if rates else float("nan")


def kpis(book: SubscriptionBook, cal: Calendar, end_min: float) -> dict[str, float]:
    """Subscription KPIs of a replication (all NaN when the scenario has no subscription); see
    sim.results.METRICS for the definitions. Subscriber LTV and revenue are computed with the
    ledger and orders in sim.metrics."""
    names = (
        "subscriptions_started",
        "subscribers_active_end",
        "subscription_orders",
        "mrr",
        "subscriber_churn_monthly",
        f"subscriber_survival_{SURVIVAL_KPI_MONTHS}m",
    )
    if not book.cfg.enabled:
        return dict.fromkeys(names, float("nan"))
    tab, log = book.table, book.log
    active = ~tab["cancelled"]
    age = tab["start_min"] + SURVIVAL_KPI_MONTHS * MONTH_MIN
    observed = age <= end_min
    n_obs = int(observed.sum())
    survived = int((observed & (_cancel_min(book) > age)).sum())
    return {
        "subscriptions_started": float(tab.n),
        "subscribers_active_end": float(active.sum()),
        "subscription_orders": float((log["outcome"] == ORDER).sum()),
        "mrr": float((active & ~tab["paused"]).sum()) * monthly_price_usd(book.cfg),
        "subscriber_churn_monthly": monthly_churn(book, cal, end_min),
        f"subscriber_survival_{SURVIVAL_KPI_MONTHS}m": survived / n_obs if n_obs else float("nan"),
    }


def event_tables(book: SubscriptionBook) -> dict[str, pd.DataFrame]:
    """Event-level tables: ``subscribers`` (one row per subscriber) and ``renewals`` (the log)."""
    return {
        "subscribers": pd.DataFrame(book.table.to_dict()),
        "renewals": pd.DataFrame(book.log.to_dict()),
    }
