"""What one replication produces, and the vocabulary of metrics.

Tables are tidy pandas frames. Money is in dollars (float, rounded to cents), durations state
their unit in the column name. The KPI names in :data:`METRICS` are stable: the CLI, the store,
the dashboard and the README all use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sim.scenario import CHANNELS

POOLS: tuple[str, ...] = (*CHANNELS, "tier2")
"""Agent pools in array order: the customer channels, then tier 2."""

LEDGER_CATEGORIES: dict[str, str] = {
    # name: group. Sign convention in the ledger: money in is positive, money out negative.
    "order_revenue": "revenue",
    "refunds": "revenue",
    "return_fees": "revenue",
    "membership_fees": "revenue",
    "cogs": "product",
    "cogs_returned": "product",
    "shipping": "fulfilment",
    "fulfilment": "fulfilment",
    "support_labor_chat": "cost_to_serve",
    "support_labor_email": "cost_to_serve",
    "support_labor_phone": "cost_to_serve",
    "support_labor_social": "cost_to_serve",
    "support_labor_tier2": "cost_to_serve",
    "automation": "cost_to_serve",
    "notifications": "cost_to_serve",
    "onboarding": "cost_to_serve",
    "returns_shipping": "cost_to_serve",
    "returns_processing": "cost_to_serve",
    "returns_writeoff": "cost_to_serve",
    "reships": "cost_to_serve",
    "exchanges": "cost_to_serve",
    "appeasements": "cost_to_serve",
    "loyalty_rewards": "cost_to_serve",
    "loyalty_program": "cost_to_serve",
    "winback": "cost_to_serve",
    "warranty": "cost_to_serve",
    "cac": "acquisition",
}
"""Every ledger category and the group it belongs to. Contribution margin after service is the sum
of all groups except ``acquisition``; cost-to-serve is minus the sum of the ``cost_to_serve`` group."""

COST_TO_SERVE: tuple[str, ...] = tuple(k for k, g in LEDGER_CATEGORIES.items() if g == "cost_to_serve")


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    better: str  # "higher", "lower" or "neutral"
    description: str


def _m(name: str, unit: str, better: str, description: str) -> Metric:
    return Metric(name, unit, better, description)


_BASE_METRICS = [
    _m("orders", "orders", "higher", "Orders placed in the horizon (new, repeat, win-back)."),
    _m("customers_acquired", "customers", "higher", "New customers in the horizon (paid and referred)."),
    _m("referred_customers", "customers", "higher", "New customers brought by promoters (no CAC)."),
    _m("revenue", "USD", "higher", "Order revenue net of refunds, plus return and membership fees."),
    _m("contacts", "contacts", "lower", "Customer contacts created, including automated and repeat ones."),
    _m("contacts_per_order", "contacts/order", "lower", "contacts / orders (every attempt: automated, repeat and come-back contacts count)."),
    _m("agent_contacts_per_order", "contacts/order", "lower", "Contacts that reached an agent pool (tier 1, incl. repeats) / orders."),
    _m("contacts_per_issue", "contacts", "lower", "Customer effort: contacts (all kinds) per order that needed at least one contact."),
    _m("containment_rate", "share", "higher", "Contacts resolved by self-service and not coming back / contacts."),
    _m("csat", "share", "higher", "Share of surveyed answered contacts rated satisfied."),
    _m("nps", "points", "higher", "% promoters - % detractors among NPS-surveyed orders (-100..100)."),
    _m("late_delivery_rate", "share", "lower", "Delivered orders that arrived after the promised date / delivered."),
    _m("return_rate", "share", "lower", "Accepted return requests / orders."),
    _m("exchange_share", "share", "higher", "Exchanges / accepted returns."),
    _m("repeat_rate_90d", "share", "higher", "New customers (with 90 days of follow-up) ordering again within 90 days."),
    _m("churn_rate_monthly", "share", "lower", "Mean over months of dropouts in the month / active customers at its start."),
    _m("cost_to_serve", "USD", "lower", "All post-purchase cost (the cost_to_serve ledger group)."),
    _m("cost_to_serve_per_order", "USD/order", "lower", "cost_to_serve / orders."),
    _m("contribution_margin", "USD", "higher", "Revenue - COGS - shipping and fulfilment - cost-to-serve."),
    _m("contribution_margin_per_order", "USD/order", "higher", "contribution_margin / orders."),
    _m("support_labor_cost", "USD", "lower", "Paid agent hours x hourly cost, all pools."),
    _m("cac_total", "USD", "lower", "Acquisition spend."),
    _m("ltv_12m", "USD", "higher", "Discounted contribution margin per acquired customer over ltv_horizon_months, cohorts with full follow-up."),
    _m("ltv_payback_months", "months", "lower", "First month since acquisition in which cumulative margin per acquired customer covers CAC (NaN: not within follow-up)."),
    _m("email_backlog_peak", "contacts", "lower", "Largest email backlog at an interval end."),
]
_SUBSCRIPTION_METRICS = [  # NaN for a scenario without subscription.enabled
    _m("subscriptions_started", "subscribers", "higher", "Customers who subscribed in the horizon."),
    _m("subscribers_active_end", "subscribers", "higher", "Subscribers not cancelled at the horizon end (paused ones included)."),
    _m("subscription_orders", "orders", "higher", "Subscription orders placed (renewals not cancelled, paused or skipped); also counted in orders."),
    _m("subscription_revenue", "USD", "higher", "Order revenue of subscription orders (after the subscription discount, before refunds)."),
    _m("mrr", "USD", "higher", "Monthly recurring revenue at the horizon end: active unpaused subscribers x price x (1 - discount) x (365.25/12) / cadence_days."),
    _m("subscriber_churn_monthly", "share", "lower", "Mean over calendar months wholly in the horizon of cancellations among the subscribers active at the month's start / those subscribers."),
    _m("subscriber_survival_3m", "share", "higher", "Subscribers still subscribed 3 months (3 x 365.25/12 days) after subscribing / subscribers who subscribed at least 3 months before the horizon end."),
    _m("subscriber_ltv", "USD", "higher", "Contribution margin after service (incl. allocated labour) of subscribers from their subscribing order to the horizon end, discounted monthly from the subscription start, per subscriber."),
]
_CHANNEL_METRICS = [
    m
    for ch in POOLS
    for m in (
        _m(f"service_level_{ch}", "share", "higher", f"{ch}: contacts answered within the SLA threshold / answered + abandoned."),
        _m(f"asa_min_{ch}", "minutes", "lower", f"{ch}: average speed of answer (wait of answered contacts)."),
        _m(f"abandonment_rate_{ch}", "share", "lower", f"{ch}: abandoned / (answered + abandoned)."),
        _m(f"occupancy_{ch}", "share", "neutral", f"{ch}: busy server time / available server time."),
    )
]
_COST_METRICS = [
    _m(f"cost_per_order_{c}", "USD/order", "lower", f"Cost-to-serve component {c} per order.") for c in COST_TO_SERVE
]

METRICS: dict[str, Metric] = {
    m.name: m for m in (*_BASE_METRICS, *_SUBSCRIPTION_METRICS, *_CHANNEL_METRICS, *_COST_METRICS)
}
"""Every KPI a replication reports, by name."""


@dataclass
class ReplicationResult:
    """Tables of one replication of one scenario.

    - ``daily``: one row per simulated day; columns ``date`` and the daily series (see README).
    - ``intervals``: one row per staffing interval and pool: ``interval_start`` (timestamp), ``pool``,
      ``arrivals``, ``answered``, ``abandoned``, ``answered_within_sla``, ``service_level``, ``asa_min``,
      ``busy_min``, ``staffed_min``, ``occupancy``, ``queue_end``, ``agents_paid``.
    - ``cohorts``: one row per acquisition month and month since acquisition: ``cohort`` (first day of
      the month), ``months_since``, ``customers``, ``active``, ``repeaters``, ``orders``, ``revenue_usd``,
      ``contribution_margin_usd``, ``cac_usd``, ``complete`` (the month is fully observed).
    - ``kpis``: metric name -> value (see :data:`METRICS`).
    - ``events``: event-level tables (orders, contacts, returns, staffing; with subscriptions also
      subscribers and renewals) when requested.
    - ``subscription_cohorts``: with subscriptions, survival by subscription month per subscription
      cohort (see :func:`sim.subscriptions.cohort_table`); None otherwise.
    """

    scenario: str
    replication: int
    seed: int
    daily: pd.DataFrame
    intervals: pd.DataFrame
    cohorts: pd.DataFrame
    kpis: dict[str, float]
    events: dict[str, pd.DataFrame] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    subscription_cohorts: pd.DataFrame | None = None
