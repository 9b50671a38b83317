"""From a finished replication's state to its result tables and KPIs (definitions in sim.results).

The engine hands its state over as a :class:`Replication` (a protocol: what this module reads),
so this module does not import the engine and the engine imports it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from sim import subscriptions as subs
from sim.calendar import DAYS_PER_MONTH, MIN_PER_DAY, Calendar
from sim.contacts import COME_BACK, ContactModel
from sim.ledger import CATEGORY_INDEX, Ledger
from sim.queueing import ContactCentre, ContactRecords
from sim.results import COST_TO_SERVE, LEDGER_CATEGORIES, POOLS, ReplicationResult
from sim.scenario import CHANNELS, REASONS, Scenario
from sim.service_stats import interval_stats
from sim.staffing import PoolSchedule
from sim.subscriptions import ORDER_KIND as SUBSCRIPTION_ORDER
from sim.subscriptions import SubscriptionBook
from sim.tables import Columns


class Replication(Protocol):
    """The state of a finished replication that the result tables are computed from
    (implemented by :class:`sim.engine.Replication`). Times in minutes from the start."""

    @property
    def s(self) -> Scenario: ...
    @property
    def seed(self) -> int: ...
    @property
    def rep(self) -> int: ...
    @property
    def events(self) -> bool: ...  # also return the event-level tables
    @property
    def cal(self) -> Calendar: ...
    @property
    def end_min(self) -> float: ...  # end of the horizon
    @property
    def model(self) -> ContactModel: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def centre(self) -> ContactCentre: ...
    @property
    def schedules(self) -> dict[str, PoolSchedule]: ...
    @property
    def customers(self) -> Columns: ...
    @property
    def orders(self) -> Columns: ...
    @property
    def returns(self) -> Columns: ...
    @property
    def contacts(self) -> Columns: ...
    @property
    def daily(self) -> dict[str, np.ndarray]: ...  # per-day counters, one array per name
    @property
    def daily_contacts(self) -> np.ndarray: ...  # (days, pools) human contacts
    @property
    def daily_reasons(self) -> np.ndarray: ...  # (days, reasons) contacts
    @property
    def subscriptions(self) -> SubscriptionBook: ...

MONTH_MIN = DAYS_PER_MONTH * MIN_PER_DAY
GROUP_OF = np.array([LEDGER_CATEGORIES[c] for c in LEDGER_CATEGORIES])
IS_REVENUE = GROUP_OF == "revenue"
IS_CTS = GROUP_OF == "cost_to_serve"
IS_MARGIN = GROUP_OF != "acquisition"


def ledger_in_horizon(rep: Replication) -> dict[str, np.ndarray]:
    """Ledger entries dated inside the horizon (later refunds and costs are outside its books)."""
    led = rep.ledger.arrays()
    keep = (led["t_min"] >= 0) & (led["t_min"] < rep.end_min)
    return {k: v[keep] for k, v in led.items()}


def human_records(rep: Replication) -> ContactRecords:
    c = rep.contacts
    done = c["done"] & (c["pool"] >= 0)
    return ContactRecords(
        contact_id=np.flatnonzero(done).astype(np.int64),
        pool=c["pool"][done].astype(np.int16),
        arrival_min=c["arrival_min"][done],
        start_min=c["start_min"][done],
        end_min=c["end_min"][done],
        answered=c["answered"][done],
    )


def _intervals(rep: Replication, rec: ContactRecords) -> pd.DataFrame:
    starts = rep.cal.interval_starts()
    frames = []
    for i, spec in enumerate(rep.centre.specs):
        if not np.isfinite(rep.model.sla_threshold_min[i]):
            continue
        df = interval_stats(rec, i, spec, rep.cal.n_intervals, float(rep.model.sla_threshold_min[i]))
        df.insert(0, "pool", POOLS[i])
        df.insert(0, "interval_start", starts[df["interval"].to_numpy()])
        df["agents_paid"] = rep.schedules[POOLS[i]].agents_paid
        frames.append(df.drop(columns="interval"))
    return pd.concat(frames, ignore_index=True)


def _daily(rep: Replication, led: dict[str, np.ndarray]) -> pd.DataFrame:
    days = rep.cal.days
    out: dict[str, np.ndarray] = {"date": rep.cal.dates}
    for k, v in rep.daily.items():
        out[k] = v
    human = rep.daily_contacts[:, : len(CHANNELS)].sum(axis=1)
    out["contacts"] = human + rep.daily["contacts_automated"]
    for j, p in enumerate(POOLS):
        out[f"contacts_{p}"] = rep.daily_contacts[:, j]
    for j, r in enumerate(REASONS):
        out[f"contacts_{r}"] = rep.daily_reasons[:, j]
    day = np.minimum((led["t_min"] // MIN_PER_DAY).astype(np.int64), days - 1)
    by_cat = np.zeros((len(LEDGER_CATEGORIES), days))
    np.add.at(by_cat, (led["category"].astype(np.int64), day), led["cents"] / 100.0)
    out["revenue_usd"] = by_cat[IS_REVENUE].sum(axis=0)
    out["contribution_margin_usd"] = by_cat[IS_MARGIN].sum(axis=0)
    out["cost_to_serve_usd"] = -by_cat[IS_CTS].sum(axis=0)
    out["support_labor_usd"] = -sum(by_cat[CATEGORY_INDEX[f"support_labor_{p}"]] for p in POOLS)
    for name, i in CATEGORY_INDEX.items():
        out[f"ledger_{name}_usd"] = by_cat[i]
    out.update(subs.daily_series(rep.subscriptions, days))
    return pd.DataFrame(out)


def allocate_labor(rep: Replication, led: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share each pool's monthly labour cost among the contacts it answered that month, in
    proportion to handle time, exactly to the cent (largest remainder). Returns
    (customer, t_min, cents) of the allocations; cents are negative like the ledger's."""
    c = rep.contacts
    served = c["done"] & c["answered"] & (c["pool"] >= 0)
    ids = np.flatnonzero(served)
    start = c["start_min"][ids]
    handle = c["end_min"][ids] - start
    month = rep.cal.month_index(start)
    n_months = rep.cal.n_months
    group = c["pool"][ids].astype(np.int64) * n_months + month
    labor_cats = np.array([CATEGORY_INDEX[f"support_labor_{p}"] for p in POOLS])
    is_labor = np.isin(led["category"], labor_cats)
    pool_of_cat = {int(cat): j for j, cat in enumerate(labor_cats)}
    lp = np.array([pool_of_cat[int(x)] for x in led["category"][is_labor]], dtype=np.int64)
    lgroup = lp * n_months + rep.cal.month_index(led["t_min"][is_labor])
    total = np.bincount(lgroup, weights=-led["cents"][is_labor], minlength=len(POOLS) * n_months).astype(np.int64)
    minutes = np.bincount(group, weights=handle, minlength=len(POOLS) * n_months)
    has = minutes[group] > 0
    ids, start, handle, group = ids[has], start[has], handle[has], group[has]
    exact = total[group] * handle / minutes[group]
    cents = np.floor(exact).astype(np.int64)
    short = total - np.bincount(group, weights=cents, minlength=len(total)).astype(np.int64)
    # hand the remaining cents of each group to its contacts with the largest fractional parts
    order = np.lexsort((-(exact - cents), group))
    g_sorted = group[order]
    first = np.searchsorted(g_sorted, g_sorted, side="left")
    rank = np.arange(len(order)) - first
    cents[order[rank < short[g_sorted]]] += 1
    return c["customer"][ids], start, -cents


def _cohorts(rep: Replication, led: dict[str, np.ndarray]) -> pd.DataFrame:
    cal, cu = rep.cal, rep.customers
    n_months = cal.n_months
    cohort = cu["cohort"].astype(np.int64)
    acq = cu["acquired_min"]
    member = cohort >= 0
    months = cal.month_starts()
    K = n_months
    shape = (n_months, K)

    def age_month(t: np.ndarray, who: np.ndarray) -> np.ndarray:
        """Whole months since acquisition; K + 1 (beyond any column) for times that never came."""
        age = (t - acq[who]) / MONTH_MIN
        return np.where(np.isfinite(age), np.floor(np.nan_to_num(age, posinf=0.0, neginf=0.0)), K + 1).astype(np.int64)

    def grid(who: np.ndarray, k: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        ok = (k >= 0) & (k < K)
        flat = cohort[who[ok]] * K + k[ok]
        w = None if weights is None else weights[ok]
        return np.bincount(flat, weights=w, minlength=n_months * K).reshape(shape)

    who = np.flatnonzero(member)
    customers = np.bincount(cohort[who], minlength=n_months)
    dropped = cu["dropped"][who]
    drop_k = np.where(dropped, age_month(cu["dropped_min"][who], who), K + 1)
    gone = grid(who, drop_k)
    active = customers[:, None] - np.cumsum(gone, axis=1)
    rep_k = age_month(cu["second_order_min"][who], who)
    repeaters = np.cumsum(grid(who, rep_k), axis=1)

    oc = rep.orders["customer"]
    o_mem = member[oc]
    o_who = oc[o_mem]
    orders = grid(o_who, age_month(rep.orders["order_min"][o_mem], o_who))

    lc = led["customer"]
    att = lc >= 0
    att[att] = member[lc[att]]
    l_who = lc[att]
    l_k = age_month(led["t_min"][att], l_who)
    cat = led["category"][att].astype(np.int64)
    dollars = led["cents"][att] / 100.0
    revenue = grid(l_who, l_k, np.where(IS_REVENUE[cat], dollars, 0.0))
    margin = grid(l_who, l_k, np.where(IS_MARGIN[cat], dollars, 0.0))
    cac = grid(l_who, l_k, np.where(~IS_MARGIN[cat], -dollars, 0.0)).sum(axis=1)
    a_cust, a_t, a_cents = allocate_labor(rep, led)
    a_mem = a_cust >= 0  # labour of contacts.arrivals (no customer) belongs to no cohort
    a_mem[a_mem] = member[a_cust[a_mem]]
    labor = grid(a_cust[a_mem], age_month(a_t[a_mem], a_cust[a_mem]), a_cents[a_mem] / 100.0)
    margin = margin + labor

    cohort_end = np.array([cal.minute_of((m + pd.offsets.MonthBegin(1)).date()) for m in months])
    k_idx = np.arange(K)
    complete = cohort_end[:, None] + (k_idx[None, :] + 1) * MONTH_MIN <= rep.end_min
    rows = np.repeat(np.arange(n_months), K)
    cols = np.tile(k_idx, n_months)
    df = pd.DataFrame({
        "cohort": months[rows],
        "months_since": cols,
        "customers": customers[rows],
        "active": active.ravel(),
        "repeaters": repeaters.ravel(),
        "orders": orders.ravel(),
        "revenue_usd": np.round(revenue.ravel(), 2),
        "contribution_margin_usd": np.round(margin.ravel(), 2),
        "cac_usd": np.round(cac[rows], 2),
        "complete": complete.ravel(),
    })
    # months before acquisition cannot exist: keep k within the horizon from the cohort's start
    return df[(df["customers"] > 0) & (df["months_since"] < n_months - df["cohort"].map(dict(zip(months, range(n_months), strict=True))))].reset_index(drop=True)


def ltv_and_payback(cohorts: pd.DataFrame, horizon_months: int, monthly_rate: float) -> tuple[float, float]:
    """(LTV over ``horizon_months``, payback month) per acquired customer, pooling cohorts.

    LTV: discounted margin per customer, over cohorts observed for all ``horizon_months`` months.
    Payback: the first month m (1-based) whose cumulative margin per customer, pooling for each
    month the cohorts that completed it, covers CAC per customer of those cohorts; NaN if none."""
    done = cohorts[cohorts["complete"]]
    if done.empty:
        return float("nan"), float("nan")
    full = done.groupby("cohort")["months_since"].max() >= horizon_months - 1
    elig = done[done["cohort"].isin(full[full].index) & (done["months_since"] < horizon_months)]
    ltv = float("nan")
    if not elig.empty:
        customers = elig.groupby("cohort")["customers"].first().sum()
        disc = elig["contribution_margin_usd"] / (1 + monthly_rate) ** elig["months_since"]
        ltv = float(disc.sum() / customers)
    per_k = done.groupby("months_since").agg(margin=("contribution_margin_usd", "sum"), customers=("customers", "sum"), cac=("cac_usd", "sum"))
    per_cust = per_k["margin"] / per_k["customers"]
    cac = per_k["cac"] / per_k["customers"]
    cum = per_cust.cumsum()
    hit = np.flatnonzero((cum >= cac).to_numpy())
    payback = float(per_k.index[hit[0]] + 1) if len(hit) else float("nan")
    return ltv, payback


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def _kpis(rep: Replication, daily: pd.DataFrame, intervals: pd.DataFrame, cohorts: pd.DataFrame, rec: ContactRecords) -> dict[str, float]:
    s, cal = rep.s, rep.cal
    k: dict[str, float] = {}
    orders = float(daily["orders"].sum())
    k["orders"] = orders
    k["customers_acquired"] = float(daily["new_customers"].sum())
    k["referred_customers"] = float(daily["referred_customers"].sum())
    k["revenue"] = float(daily["revenue_usd"].sum())
    contacts = float(daily["contacts"].sum())
    k["contacts"] = contacts
    k["contacts_per_order"] = _ratio(contacts, orders)
    k["agent_contacts_per_order"] = _ratio(float(daily[[f"contacts_{ch}" for ch in CHANNELS]].to_numpy().sum()), orders)
    c = rep.contacts
    tier1 = (c["pool"] != POOLS.index("tier2")) & (c["order"] >= 0)  # contacts.arrivals have no order
    k["contacts_per_issue"] = _ratio(float(tier1.sum()), float(len(np.unique(c["order"][tier1]))))
    bot = c["pool"] < 0
    came_back = int((c["kind"] == COME_BACK).sum())
    k["containment_rate"] = _ratio(float(bot.sum()) - came_back, contacts)
    k["csat"] = _ratio(daily["csat_satisfied"].sum(), daily["csat_surveyed"].sum())
    k["nps"] = 100 * _ratio(daily["nps_promoters"].sum() - daily["nps_detractors"].sum(), daily["nps_surveyed"].sum())
    k["late_delivery_rate"] = _ratio(daily["late_deliveries"].sum(), daily["deliveries"].sum())
    k["return_rate"] = _ratio(daily["returns"].sum(), orders)
    k["exchange_share"] = _ratio(daily["exchanges"].sum(), daily["returns"].sum())
    cu = rep.customers
    elig = (cu["cohort"] >= 0) & (cu["acquired_min"] <= rep.end_min - 90 * MIN_PER_DAY)
    k["repeat_rate_90d"] = _ratio(float((elig & (cu["second_order_min"] - cu["acquired_min"] <= 90 * MIN_PER_DAY)).sum()), float(elig.sum()))
    month = cal.month_index(np.arange(cal.days) * MIN_PER_DAY)
    active_end = daily["active_customers"].to_numpy()
    active_before = np.concatenate(([s.demand.initial_customers], active_end[:-1]))
    first_day = np.searchsorted(month, np.arange(cal.n_months))
    drops = np.bincount(month, weights=daily["dropouts"].to_numpy(), minlength=cal.n_months)
    starts = active_before[first_day]
    with np.errstate(invalid="ignore", divide="ignore"):
        k["churn_rate_monthly"] = float(np.nanmean(np.where(starts > 0, drops / starts, np.nan))) if (starts > 0).any() else float("nan")
    cts = float(daily["cost_to_serve_usd"].sum())
    k["cost_to_serve"] = cts
    k["cost_to_serve_per_order"] = _ratio(cts, orders)
    cm = float(daily["contribution_margin_usd"].sum())
    k["contribution_margin"] = cm
    k["contribution_margin_per_order"] = _ratio(cm, orders)
    k["support_labor_cost"] = float(daily["support_labor_usd"].sum())
    k["cac_total"] = float(-daily["ledger_cac_usd"].sum())
    k["ltv_12m"], k["ltv_payback_months"] = ltv_and_payback(cohorts, s.finance.ltv_horizon_months, s.finance.monthly_discount_rate)
    email = intervals[intervals["pool"] == "email"]
    k["email_backlog_peak"] = float(email["queue_end"].max()) if len(email) else float("nan")
    wait = rec.start_min - rec.arrival_min
    for j, p in enumerate(POOLS):
        sel = rec.pool == j
        ans = rec.answered[sel]
        n = int(sel.sum())
        thr = rep.model.sla_threshold_min[j]
        k[f"service_level_{p}"] = _ratio(float((ans & (wait[sel] <= thr)).sum()), n) if n else float("nan")
        k[f"asa_min_{p}"] = float(wait[sel][ans].mean()) if ans.any() else float("nan")
        k[f"abandonment_rate_{p}"] = _ratio(float((~ans).sum()), n) if n else float("nan")
        iv = intervals[intervals["pool"] == p]
        k[f"occupancy_{p}"] = _ratio(float(iv["busy_min"].sum()), float(iv["staffed_min"].sum())) if len(iv) else float("nan")
    for cat in COST_TO_SERVE:
        k[f"cost_per_order_{cat}"] = _ratio(float(-daily[f"ledger_{cat}_usd"].sum()), orders)
    return k


def _subscription_kpis(rep: Replication, led: dict[str, np.ndarray]) -> dict[str, float]:
    """sim.subscriptions.kpis plus the two that need orders and the ledger: subscription order
    revenue and subscriber LTV (definitions in sim.results.METRICS)."""
    book = rep.subscriptions
    k = subs.kpis(book, rep.cal, rep.end_min)
    if not book.cfg.enabled:
        return {**k, "subscription_revenue": float("nan"), "subscriber_ltv": float("nan")}
    o = rep.orders
    k["subscription_revenue"] = float(o["revenue_usd"][o["kind"] == SUBSCRIPTION_ORDER].sum())
    n = book.table.n
    if n == 0:
        return {**k, "subscriber_ltv": float("nan")}
    rate = rep.s.finance.monthly_discount_rate
    start = book.table["start_min"]
    a_cust, a_t, a_cents = allocate_labor(rep, led)
    margin = IS_MARGIN[led["category"].astype(np.int64)]
    total = 0.0
    for cust, t, cents in ((led["customer"][margin], led["t_min"][margin], led["cents"][margin]), (a_cust, a_t, a_cents)):
        sid = book.subscriber_of(cust)
        since = np.where(sid >= 0, t - start[np.maximum(sid, 0)], -1.0)
        keep = since >= 0
        total += float((cents[keep] / 100.0 / (1.0 + rate) ** np.floor(since[keep] / MONTH_MIN)).sum())
    k["subscriber_ltv"] = total / n
    return k


def assemble(rep: Replication) -> ReplicationResult:
    led = ledger_in_horizon(rep)
    rec = human_records(rep)
    intervals = _intervals(rep, rec)
    daily = _daily(rep, led)
    cohorts = _cohorts(rep, led)
    kpis = _kpis(rep, daily, intervals, cohorts, rec)
    kpis.update(_subscription_kpis(rep, led))
    sub_cohorts = subs.cohort_table(rep.subscriptions, rep.cal, rep.end_min) if rep.s.subscription.enabled else None
    events = None
    if rep.events:
        events = {
            "customers": pd.DataFrame(rep.customers.to_dict()),
            "orders": pd.DataFrame(rep.orders.to_dict()),
            "returns": pd.DataFrame(rep.returns.to_dict()),
            "contacts": pd.DataFrame(rep.contacts.to_dict()),
            "ledger": pd.DataFrame(rep.ledger.arrays()),
        }
        if rep.s.subscription.enabled:
            events.update(subs.event_tables(rep.subscriptions))
    return ReplicationResult(
        rep.s.name, rep.rep, rep.seed, daily, intervals, cohorts, kpis, events, subscription_cohorts=sub_cohorts
    )
