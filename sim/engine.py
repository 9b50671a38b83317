"""One replication of a scenario: the day loop that ties the journey together.

Each simulated day: sentiment effects falling due are applied; new customers arrive (Poisson,
seasonal) and referred ones join; customers whose next purchase falls due decide (BG/NBD dropout
shifted by experience and loyalty) to order or drop out; win-back responders order. Every order's
journey (delivery, returns, warranty, contacts, surveys) is sampled in one vectorised batch and its
future events are filed by day. The day's human contacts join the agent pools, which SimPy runs to
the day's end; finished contacts feed back into sentiment (and so into later decisions).

Contention (agents, queues, backlogs) is simulated event by event; everything else is sampled.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import simpy
from scipy import special

from sim import metrics
from sim.calendar import MIN_PER_DAY, MIN_PER_HOUR, Calendar, demand_factors, sample_times_in_days
from sim.contacts import (
    BOT,
    CONTACT_COLUMNS,
    ContactModel,
    human_contact_draws,
    stream_contacts,
    triggered_contacts,
)
from sim.delivery import (
    DAMAGED,
    FAILED,
    LOST,
    defective_share_by_day,
    deliver,
    outcome_shares_by_day,
)
from sim.followups import FollowUps
from sim.ledger import Ledger
from sim.loyalty import ProgramEffects
from sim.queueing import ContactCentre
from sim.results import POOLS, ReplicationResult
from sim.returns import (
    EXCHANGE,
    category_return_probability,
    request_returns,
    warranty_claims,
)
from sim.rng import Streams
from sim.scenario import REASONS, Membership, Scenario
from sim.staffing import centre_pools
from sim.subscriptions import ORDER_KIND as SUBSCRIPTION_ORDER
from sim.subscriptions import SubscriptionBook
from sim.tables import Columns, DayBuckets

INITIAL, PAID, REFERRAL = range(3)
NEW, REPEAT_ORDER, WINBACK_ORDER = range(3)  # orders.kind; SUBSCRIPTION_ORDER (3) from sim.subscriptions
SUBSCRIPTION_BATCH = 1 << 20  # order-batch stream index of subscription orders, apart from 0, 1, ...
R = {name: i for i, name in enumerate(REASONS)}
DAYS_PER_YEAR = 365.0

CUSTOMER_COLUMNS = {
    "key": "int64",  # stable identity for common random numbers: (day, source, index in day)
    "source": "int8",
    "lam": "float64",  # purchase rate, per day
    "p": "float64",  # BG/NBD dropout probability
    "sentiment": "float64",
    "n_orders": "int32",
    "acquired_min": "float64",
    "cohort": "int16",  # calendar month index of acquisition, -1 for existing customers
    "dropped": "bool",
    "dropped_min": "float64",
    "last_order_min": "float64",
    "second_order_min": "float64",
    "next_min": "float64",
    "member": "bool",
}
ORDER_COLUMNS = {
    "customer": "int64",
    "order_min": "float64",
    "value_usd": "float64",
    "revenue_usd": "float64",
    "kind": "int8",
    "category": "int8",
    "outcome": "int8",
    "ship_min": "float64",
    "promised_min": "float64",
    "delivered_min": "float64",
    "late": "bool",
}
RETURN_COLUMNS = {
    "order": "int64",
    "request_min": "float64",
    "accepted": "bool",
    "outcome": "int8",
    "receive_min": "float64",
    "refund_min": "float64",
}
DAILY_COUNTERS = (
    "orders", "new_customers", "referred_customers", "repeat_orders", "winback_orders", "dropouts",
    "reactivations", "deliveries", "late_deliveries", "returns", "exchanges", "contacts_automated",
    "csat_surveyed", "csat_satisfied", "nps_surveyed", "nps_promoters", "nps_detractors",
    "winback_messages", "active_customers",
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return special.expit(x)


def _logit(p: np.ndarray) -> np.ndarray:
    return special.logit(np.clip(p, 1e-12, 1 - 1e-12))


class Replication:
    """State and day loop of one replication. Use :func:`simulate`."""

    def __init__(self, scenario: Scenario, seed: int, replication: int, events: bool = False) -> None:
        self.s = scenario
        self.seed, self.rep, self.events = seed, replication, events
        self.streams = Streams(seed, replication)
        self.cal = Calendar(scenario)
        self.end_min = self.cal.end_min
        self.factors = demand_factors(scenario, self.cal)
        end = scenario.demand.acquisition_end
        self.acquisition_stop_day = self.cal.day_of(end) if end is not None else None
        # purchase clock: cumulative repurchase-rate multiplier at each day boundary (peaks lift it)
        lift = 1.0 + scenario.repurchase.peak_sensitivity * (self.cal.multiplier(scenario.demand.peaks) - 1.0)
        self.clock = np.concatenate(([0.0], np.cumsum(lift)))
        self.outcome_shares = outcome_shares_by_day(scenario, self.cal)
        self.defective = defective_share_by_day(scenario, self.cal)
        self.cat_shares, _, _ = category_return_probability(scenario)
        self.cat_cdf = np.cumsum(self.cat_shares)
        self.model = ContactModel.from_scenario(scenario)
        arr = scenario.contacts.arrivals
        self.stream_mean = (
            arr.per_day * np.asarray(arr.weekday_factors)[self.cal.weekday] * self.cal.multiplier(arr.peaks)
            if arr is not None else None
        )
        self.program = ProgramEffects(scenario)
        self.ledger = Ledger()
        self.subscriptions = SubscriptionBook(scenario.subscription, self.streams, self.cal.days)

        days = self.cal.days
        self.customers = Columns(CUSTOMER_COLUMNS, 1 << 16)
        self.orders = Columns(ORDER_COLUMNS, 1 << 16)
        self.returns = Columns(RETURN_COLUMNS, 1 << 14)
        self.contacts = Columns(CONTACT_COLUMNS, 1 << 16)
        self.decisions = DayBuckets(days)
        self.effects = DayBuckets(days)
        self.contact_due = DayBuckets(days)
        self.referrals = DayBuckets(days)
        self.lapse = DayBuckets(days)
        self.winback_due = DayBuckets(days)
        self.nps_due = DayBuckets(days)
        self.renewals = DayBuckets(days)
        self.daily = {k: np.zeros(days, dtype=np.int64) for k in DAILY_COUNTERS}
        self.daily_contacts = np.zeros((days, len(POOLS)), dtype=np.int64)
        self.daily_reasons = np.zeros((days, len(REASONS)), dtype=np.int64)
        self.active = 0
        self.today = 0  # the day being simulated
        self.batch = 0  # order batch within the day (a purchase can fall due later the same day)

        self.schedules, specs = centre_pools(scenario, self.cal)
        self.env = simpy.Environment()
        self.followups = FollowUps(self.model, self.contacts, self.streams.get("followups"), self.end_min)
        self.centre = ContactCentre(self.env, specs, on_done=self.followups.on_done)
        self.followups.submit = self.centre.submit

    # ------------------------------------------------------------------ customers & demand

    def _new_customers(self, day: int, times: np.ndarray, source: int) -> np.ndarray:
        n = len(times)
        if n == 0:
            return np.empty(0, np.int64)
        rp = self.s.repurchase
        keys = (day * 4 + source) * (1 << 24) + np.arange(n)
        # a stream per (day, source): the k-th customer of a day gets the same traits in every scenario
        rng = self.streams.get("customers", day, source)
        lam = rng.gamma(rp.rate_shape_r, 1.0 / rp.rate_scale_alpha_days, n)
        b = rp.dropout_b + (rp.initial_repeat_purchases if source == INITIAL else 0)
        p = rng.beta(rp.dropout_a, b, n)
        cohort = -1 if source == INITIAL else int(self.cal.month_index(np.array([times[0]]))[0])
        acquired = np.full(n, -1.0) if source == INITIAL else times
        ids = self.customers.append(
            key=keys, source=source, lam=lam, p=p, sentiment=0.0, n_orders=0, acquired_min=acquired,
            cohort=cohort, dropped=False, dropped_min=np.nan, last_order_min=-np.inf,
            second_order_min=np.inf, next_min=np.inf, member=False,
        )
        self.active += n
        return ids

    def _seed_initial(self) -> None:
        n = self.s.demand.initial_customers
        if n == 0:
            return
        ids = self._new_customers(0, np.zeros(n), INITIAL)
        c = self.customers
        c.buffer("n_orders")[ids] = 1 + self.s.repurchase.initial_repeat_purchases
        keys = c["key"][ids]
        # memoryless purchase clock: the time to the next purchase is exponential from the start
        gap = -np.log(self.streams.uniform("ipt", keys, 0)) / c["lam"][ids]
        c.buffer("last_order_min")[ids] = -gap * MIN_PER_DAY
        self._schedule_next(ids, np.zeros(n))

    def _schedule_next(self, ids: np.ndarray, t: np.ndarray) -> None:
        if not self.s.repurchase.enabled:
            return
        c = self.customers
        n_orders = c["n_orders"][ids]
        _, rate_mult = self.program.shift_and_rate(n_orders, c["member"][ids])
        u = self.streams.uniform("ipt", c["key"][ids], n_orders)
        nxt = self._after_purchase_clock(t, -np.log(u) / (c["lam"][ids] * rate_mult))
        c.buffer("next_min")[ids] = nxt
        self.decisions.add(np.floor(nxt / MIN_PER_DAY), customer=ids)

    def _after_purchase_clock(self, t: np.ndarray, clock_days: np.ndarray) -> np.ndarray:
        """The minute at which ``clock_days`` of purchase clock have run from ``t``. The clock runs
        at the repurchase-rate multiplier of each day (1 off-peak): a time change that makes the
        next purchase a Poisson event with a rate that varies by day."""
        grid = np.arange(len(self.clock), dtype=np.float64)
        start = np.interp(t / MIN_PER_DAY, grid, self.clock)
        target = start + clock_days
        end = self.clock[-1]
        inside = target <= end
        days = np.where(inside, np.interp(np.minimum(target, end), self.clock, grid), grid[-1] + (target - end))
        return days * MIN_PER_DAY

    def _acquire(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        d = self.s.demand
        rng = self.streams.get("acquisition", day)
        closed = self.acquisition_stop_day is not None and day >= self.acquisition_stop_day
        n = 0 if closed else rng.poisson(d.new_customers_per_day * self.factors[day])
        t = np.sort(sample_times_in_days(rng, np.full(n, day), d.hour_weights))
        paid = self._new_customers(day, t, PAID)
        ref_t = np.sort(self.referrals.pop(day, ("t",))["t"])
        if closed:  # a closed cohort takes no referred customers either
            ref_t = ref_t[:0]
        ref = self._new_customers(day, ref_t, REFERRAL)
        self.daily["new_customers"][day] = n + len(ref)
        self.daily["referred_customers"][day] = len(ref)
        if len(paid):
            self.ledger.book("cac", t, -d.cac_usd, paid)
        return np.concatenate([paid, ref]), np.concatenate([t, ref_t])

    def _decide(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Repurchase decisions falling due today: drop out, or order at the decision time."""
        due = self.decisions.pop(day, ("customer",))["customer"].astype(np.int64)
        if len(due) == 0:
            return due, np.empty(0)
        ids = np.unique(due)
        c = self.customers
        t = c["next_min"][ids]
        t0 = day * MIN_PER_DAY
        ok = ~c["dropped"][ids] & (t >= t0) & (t < t0 + MIN_PER_DAY)
        ids, t = ids[ok], t[ok]
        shift, _ = self.program.shift_and_rate(c["n_orders"][ids], c["member"][ids])
        p_drop = _sigmoid(_logit(c["p"][ids]) - c["sentiment"][ids] + shift)
        drop = self.streams.uniform("drop", c["key"][ids], c["n_orders"][ids]) < p_drop
        gone = ids[drop]
        c.buffer("dropped")[gone] = True
        c.buffer("dropped_min")[gone] = t[drop]
        c.buffer("next_min")[gone] = np.inf
        self.daily["dropouts"][day] += len(gone)
        self.active -= len(gone)
        return ids[~drop], t[~drop]

    def _winback_orders(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        got = self.winback_due.pop(day, ("customer", "t"))
        ids = got["customer"].astype(np.int64)
        if len(ids) == 0:
            return ids, np.empty(0)
        ids, first = np.unique(ids, return_index=True)
        t = got["t"][first]
        c = self.customers
        back = c["dropped"][ids]
        c.buffer("dropped")[ids] = False
        c.buffer("dropped_min")[ids[back]] = np.nan
        self.daily["reactivations"][day] = int(back.sum())
        self.active += int(back.sum())
        return ids, t

    # ------------------------------------------------------------------ orders & journeys

    def _place_orders(self, day: int, cust: np.ndarray, t: np.ndarray, kind: np.ndarray) -> None:
        n = len(cust)
        if n == 0:
            return
        s, c, led = self.s, self.customers, self.ledger
        keys, k = c["key"][cust], c["n_orders"][cust]
        value = np.round(s.demand.order_value_usd.quantile(self.streams.uniform("value", keys, k)), 2)
        discount = np.where(kind == WINBACK_ORDER, s.loyalty.winback.discount_share if s.loyalty.winback else 0.0, 0.0)
        sub = kind == SUBSCRIPTION_ORDER
        value = np.where(sub, s.subscription.price_usd, value)
        discount = np.where(sub, s.subscription.discount_share, discount)
        revenue = np.round(value * (1.0 - discount), 2)
        rng = self.streams.get("orders", day, self.batch)
        category = np.searchsorted(self.cat_cdf, rng.random(n) * self.cat_cdf[-1], side="right").astype(np.int8)
        f = s.fulfilment
        led.book("order_revenue", t, revenue, cust)
        led.book("cogs", t, -value * f.cogs_share, cust)
        led.book("shipping", t, -f.shipping_cost_usd, cust)
        led.book("fulfilment", t, -f.fulfilment_cost_usd, cust)

        # customer state: order count, sentiment memory, loyalty
        n_orders = k + 1
        c.buffer("n_orders")[cust] = n_orders
        second = (n_orders == 2) & (c["source"][cust] != INITIAL)
        c.buffer("second_order_min")[cust[second]] = t[second]
        c.buffer("last_order_min")[cust] = t
        c.buffer("sentiment")[cust] *= s.experience.memory
        self._loyalty_at_order(day, cust, t, value, n_orders, rng)
        self.subscriptions.enroll(cust[~sub], keys[~sub], t[~sub], n_orders[~sub])
        self._schedule_next(cust, t)
        if s.loyalty.winback is not None:
            self.lapse.add(np.floor((t + s.loyalty.winback.lapse_days * MIN_PER_DAY) / MIN_PER_DAY), customer=cust)
        learning = np.zeros(n, dtype=bool)
        if s.onboarding.enabled:
            learning = rng.random(n) < s.onboarding.learning_curve_share
            led.book("onboarding", t, -s.onboarding.cost_per_order_usd, cust)

        first_id = self.orders.n
        order_ids = np.arange(first_id, first_id + n)
        damaged_return = rng.random(n) < s.returns.damaged_return_probability
        dl = deliver(t, self.outcome_shares[day], float(self.defective[day]), s, self.streams.get("delivery", day, self.batch), ~damaged_return)
        self.orders.append(
            customer=cust, order_min=t, value_usd=value, revenue_usd=revenue, kind=kind, category=category,
            outcome=dl.outcome, ship_min=dl.ship_min, promised_min=dl.promised_min,
            delivered_min=dl.delivered_min, late=dl.late,
        )
        self._delivery_effects(day, cust, value, dl)
        rt = self._returns(day, cust, value, revenue, category, learning, damaged_return & (dl.outcome == DAMAGED), dl, order_ids)
        self._contacts_for_orders(day, cust, order_ids, t, dl, learning, rt)
        exp = s.experience
        survey_t = dl.due_min + exp.nps_survey_delay_days * MIN_PER_DAY
        self.nps_due.add(np.floor(survey_t / MIN_PER_DAY), customer=cust, t=survey_t)

    def _loyalty_at_order(
        self, day: int, cust: np.ndarray, t: np.ndarray, value: np.ndarray, n_orders: np.ndarray, rng: np.random.Generator
    ) -> None:
        prog = self.s.loyalty.program
        c = self.customers
        if isinstance(prog, Membership):
            member = c["member"][cust]
            join = ~member & (rng.random(len(cust)) < prog.uptake_probability)
            joined = cust[join]
            c.buffer("member")[joined] = True
            self.ledger.book("membership_fees", t[join], prog.fee_per_year_usd, joined)
            renew = t[join] + DAYS_PER_YEAR * MIN_PER_DAY
            self.renewals.add(np.floor(renew / MIN_PER_DAY), customer=joined, t=renew)
        cost = self.program.order_cost(value, n_orders, c["member"][cust])
        self.ledger.book("loyalty_rewards", t, -cost, cust)

    def _effect(self, t: np.ndarray, cust: np.ndarray, delta: np.ndarray | float) -> None:
        """File a sentiment change for customers at minutes ``t`` (applied at the start of that day)."""
        delta = np.broadcast_to(np.asarray(delta, dtype=np.float64), np.shape(t))
        keep = np.isfinite(t) & (delta != 0)
        if keep.any():
            # today's effects were applied at the start of the day: a later one counts from tomorrow
            day = np.maximum(np.floor(t[keep] / MIN_PER_DAY), self.today + 1)
            self.effects.add(day, customer=cust[keep], delta=delta[keep])

    def _delivery_effects(self, day: int, cust: np.ndarray, value: np.ndarray, dl: Any) -> None:
        s, led = self.s, self.ledger
        fx, f = s.experience.effects, s.fulfilment
        lost = dl.outcome == LOST
        arrive = np.where(lost, dl.reship_min, dl.delivered_min)
        late_hit = np.where(dl.alerted, fx.delivery_late * (1 - s.notifications.delay_alert_sentiment_mitigation), fx.delivery_late)
        delta = np.where(dl.late & ~lost, late_hit, fx.delivery_on_time)
        delta = delta + np.where(dl.outcome == FAILED, fx.failed_attempt, 0.0)
        delta = delta + np.where(lost, fx.lost, 0.0) + np.where(dl.outcome == DAMAGED, fx.damaged, 0.0)
        when = np.where(np.isnan(arrive), dl.promised_min, arrive)
        self._effect(when, cust, delta)
        if dl.alerted.any():
            led.book("notifications", dl.due_min[dl.alerted], -s.notifications.cost_per_alert_usd, cust[dl.alerted])
        reship = ~np.isnan(dl.reship_min)
        if reship.any():
            cost = value[reship] * f.cogs_share + f.shipping_cost_usd + f.fulfilment_cost_usd
            led.book("reships", dl.reship_min[reship], -cost, cust[reship])
        ap = s.loyalty.appeasement
        rng = self.streams.get("appeasement", day, self.batch)
        p = np.where(dl.late & ~lost, ap.on_late, 0.0) + np.where(lost | (dl.outcome == DAMAGED), ap.on_lost_or_damaged, 0.0)
        give = rng.random(len(cust)) < p
        if give.any():
            led.book("appeasements", when[give], -ap.credit_usd, cust[give])
            self._effect(when[give], cust[give], fx.appeasement)
        done = ~np.isnan(dl.delivered_min)
        d = np.floor(dl.delivered_min[done] / MIN_PER_DAY).astype(np.int64)
        ok = d < self.cal.days
        np.add.at(self.daily["deliveries"], d[ok], 1)
        np.add.at(self.daily["late_deliveries"], d[ok & dl.late[done]], 1)

    def _returns(
        self, day: int, cust: np.ndarray, value: np.ndarray, revenue: np.ndarray, category: np.ndarray,
        learning: np.ndarray, damaged_return: np.ndarray, dl: Any, order_ids: np.ndarray,
    ) -> Any:
        s, led = self.s, self.ledger
        r, fx, f = s.returns, s.experience.effects, s.fulfilment
        rt = request_returns(dl.delivered_min, category, learning, damaged_return, s, self.streams.get("returns", day, self.batch))
        o = rt.order
        cu = cust[o]
        acc = rt.accepted
        self._effect(rt.request_min[~acc], cu[~acc], fx.return_refused)
        a = np.flatnonzero(acc)
        ca, va, ra = cu[a], value[o[a]], revenue[o[a]]
        req, rec = rt.request_min[a], rt.receive_min[a]
        if r.free_returns:
            led.book("returns_shipping", req, -r.return_shipping_cost_usd, ca)
            self._effect(req, ca, fx.return_free)
        else:
            led.book("return_fees", req, r.return_fee_usd, ca)
            self._effect(req, ca, fx.return_paid)
        led.book("returns_processing", rec, -r.processing_cost_usd, ca)
        writeoff = np.where(rt.damaged[a], 1.0, r.writeoff_share)
        led.book("cogs_returned", rec, va * f.cogs_share, ca)
        led.book("returns_writeoff", rec, -va * f.cogs_share * writeoff, ca)
        exch = rt.outcome[a] == EXCHANGE
        led.book("refunds", rt.refund_min[a][~exch], -ra[~exch], ca[~exch])
        led.book("cogs", rec[exch], -va[exch] * f.cogs_share, ca[exch])
        led.book("exchanges", rec[exch], -(f.shipping_cost_usd + f.fulfilment_cost_usd + r.exchange_bonus_usd), ca[exch])
        self._effect(rec[exch], ca[exch], fx.exchange)
        late = rt.refund_late[a]
        self._effect(rt.refund_min[a][late], ca[late], fx.refund_late)
        req_day = np.floor(req / MIN_PER_DAY).astype(np.int64)
        ok = req_day < self.cal.days
        np.add.at(self.daily["returns"], req_day[ok], 1)
        np.add.at(self.daily["exchanges"], req_day[ok & exch], 1)
        self.returns.append(
            order=order_ids[o], request_min=rt.request_min, accepted=acc, outcome=rt.outcome,
            receive_min=rt.receive_min, refund_min=rt.refund_min,
        )
        return rt

    def _contacts_for_orders(
        self, day: int, cust: np.ndarray, order_ids: np.ndarray, t: np.ndarray, dl: Any, learning: np.ndarray, rt: Any
    ) -> None:
        s, m = self.s, self.model
        rng = self.streams.get("contacts", day, self.batch)
        notes = s.notifications
        issue = dl.late | (dl.outcome == FAILED) | (dl.outcome == LOST)
        p_wismo = np.where(
            issue,
            m.probability_if_issue[R["wismo"]] * np.where(dl.alerted, 1 - notes.wismo_reduction_delay_alert, 1.0),
            m.probability[R["wismo"]] * (1 - notes.wismo_reduction_shipping if notes.shipping_notifications else 1.0),
        )
        howto = 1 - s.onboarding.howto_contact_reduction * learning if s.onboarding.enabled else 1.0
        delivered = ~np.isnan(dl.delivered_min)
        parts = [
            (R["wismo"], dl.ship_min, p_wismo, cust, order_ids),
            (R["delivery_problem"], dl.due_min, m.probability[R["delivery_problem"]] * ((dl.outcome == FAILED) | (dl.outcome == LOST)), cust, order_ids),
            (R["damaged_item"], np.nan_to_num(dl.delivered_min, nan=np.inf), m.probability[R["damaged_item"]] * (dl.outcome == DAMAGED), cust, order_ids),
            (R["product_question"], np.nan_to_num(dl.delivered_min, nan=np.inf), m.probability[R["product_question"]] * delivered * howto, cust, order_ids),
            (R["billing"], t, m.probability[R["billing"]], cust, order_ids),
        ]
        o = rt.order
        if len(o):
            parts.append((R["return_refund"], rt.request_min, m.probability[R["return_refund"]], cust[o], order_ids[o]))
            late = np.flatnonzero(rt.refund_late)
            trig = rt.receive_min[late] + s.returns.refund_contact_threshold_days * MIN_PER_DAY
            parts.append((R["return_refund"], trig, m.probability_if_issue[R["return_refund"]], cust[o[late]], order_ids[o[late]]))
        w_idx, w_t = warranty_claims(dl.resolved_min, s, self.streams.get("warranty", day, self.batch))
        if len(w_idx):
            self.ledger.book("warranty", w_t, -s.warranty.cost_usd, cust[w_idx])
            self._effect(w_t, cust[w_idx], s.experience.effects.warranty_claim)
            parts.append((R["warranty"], w_t, m.probability[R["warranty"]], cust[w_idx], order_ids[w_idx]))
        chunks = [triggered_contacts(m, r, trig, p, cu, oi, rng) for r, trig, p, cu, oi in parts if len(trig)]
        rows = {k: np.concatenate([ch[k] for ch in chunks]) for k in chunks[0]}
        keep = rows["arrival_min"] < self.end_min
        rows = {k: v[keep] for k, v in rows.items()}
        self._add_contacts(rows, rng)

    def _add_contacts(self, rows: dict[str, np.ndarray], rng: np.random.Generator, follow_ups: bool = True) -> None:
        n = len(rows["arrival_min"])
        if n == 0:
            return
        bot = rows["pool"] == BOT
        draws = human_contact_draws(self.model, rows["reason"], np.where(bot, 0, rows["pool"]).astype(np.int64), rng)
        if not follow_ups:  # an as-logged stream: its repeats and retries are in the stream already
            draws["resolved"][:], draws["escalate"][:], draws["retry"][:] = True, False, False
        ids = self.contacts.append(
            **rows, **draws, start_min=np.nan, end_min=np.where(bot, rows["arrival_min"], np.nan),
            answered=False, done=bot,
        )
        if bot.any():
            self.ledger.book(
                "automation", rows["arrival_min"][bot], -self.s.automation.cost_per_automated_contact_usd, rows["customer"][bot]
            )
        self.contact_due.add(np.floor(rows["arrival_min"] / MIN_PER_DAY), cid=ids)

    def _stream_contacts(self, day: int) -> None:
        """Today's contacts of ``contacts.arrivals`` (not triggered by orders)."""
        arr = self.s.contacts.arrivals
        if arr is None or self.stream_mean is None:
            return
        rng = self.streams.get("contact_arrivals", day)
        rows = stream_contacts(self.model, arr, day, float(self.stream_mean[day]), rng, arr.follow_ups)
        keep = rows["arrival_min"] < self.end_min
        self._add_contacts({k: v[keep] for k, v in rows.items()}, rng, arr.follow_ups)

    # ------------------------------------------------------------------ contacts in the agent pools

    def _submit_contacts(self, day: int) -> None:
        ids = self.contact_due.pop(day, ("cid",))["cid"].astype(np.int64)
        if len(ids) == 0:
            return
        c = self.contacts
        pool = c["pool"][ids]
        bot = pool == BOT
        day_contacts = self.daily_contacts[day]
        np.add.at(self.daily_reasons[day], c["reason"][ids], 1)
        self.daily["contacts_automated"][day] += int(bot.sum())
        h = ids[~bot]
        np.add.at(day_contacts, pool[~bot], 1)
        self.centre.submit_batch(pool[~bot], h, c["arrival_min"][h], c["handle_min"][h], c["patience_min"][h])

    def _contact_outcomes(self, day: int) -> None:
        rec = self.centre.drain()
        if len(rec) == 0:
            return
        s, c = self.s, self.contacts
        ids = rec.contact_id
        c.buffer("arrival_min")[ids] = rec.arrival_min  # a follow-up may join the queue late (see queueing)
        c.buffer("start_min")[ids] = rec.start_min
        c.buffer("end_min")[ids] = rec.end_min
        c.buffer("answered")[ids] = rec.answered
        c.buffer("done")[ids] = True
        cust = c["customer"][ids]
        pool = rec.pool.astype(np.int64)
        resolved, escalate = c["resolved"][ids], c["escalate"][ids]
        wait_sla = np.nan_to_num((rec.start_min - rec.arrival_min) / self.model.sla_threshold_min[pool])
        fx, ex = s.experience.effects, s.experience
        ans = rec.answered
        unresolved = ans & ~resolved & ~escalate
        delta = np.where(
            ans,
            fx.wait_per_sla_multiple * wait_sla + np.where(unresolved, fx.contact_unresolved, np.where(escalate, 0.0, fx.contact_resolved)),
            fx.contact_abandoned,
        )
        # follow-ups (repeats, escalations, retries) are created for some of these by the queue callback
        rng = self.streams.get("csat", day)
        ap = s.loyalty.appeasement
        give = unresolved & (rng.random(len(ids)) < ap.on_unresolved_contact)
        delta = delta + np.where(give, fx.appeasement, 0.0)
        known = cust >= 0  # contacts.arrivals have no customer
        np.add.at(self.customers.buffer("sentiment"), cust[known], delta[known])
        if give.any():
            self.ledger.book("appeasements", rec.end_min[give], -ap.credit_usd, cust[give])
        surveyed = ans & (pool != POOLS.index("tier2")) & (rng.random(len(ids)) < ex.survey_response_rate)
        p_sat = _sigmoid(ex.csat_intercept + ex.csat_wait_coef * wait_sla + ex.csat_unresolved_coef * unresolved)
        satisfied = surveyed & (rng.random(len(ids)) < p_sat)
        self.daily["csat_surveyed"][day] += int(surveyed.sum())
        self.daily["csat_satisfied"][day] += int(satisfied.sum())

    # ------------------------------------------------------------------ surveys, win-back, renewals

    def _apply_effects(self, day: int) -> None:
        got = self.effects.pop(day, ("customer", "delta"))
        if len(got["customer"]):
            np.add.at(self.customers.buffer("sentiment"), got["customer"].astype(np.int64), got["delta"])

    def _nps(self, day: int) -> None:
        got = self.nps_due.pop(day, ("customer", "t"))
        cust = got["customer"].astype(np.int64)
        if len(cust) == 0:
            return
        ex, d = self.s.experience, self.s.demand
        rng = self.streams.get("nps", day)
        score = ex.nps_intercept + self.customers["sentiment"][cust] + rng.normal(0.0, ex.nps_noise_sd, len(cust))
        promoter, detractor = score > ex.nps_promoter_threshold, score < ex.nps_detractor_threshold
        surveyed = rng.random(len(cust)) < ex.nps_survey_rate
        self.daily["nps_surveyed"][day] += int(surveyed.sum())
        self.daily["nps_promoters"][day] += int((surveyed & promoter).sum())
        self.daily["nps_detractors"][day] += int((surveyed & detractor).sum())
        refer = promoter & (rng.random(len(cust)) < d.referral_probability_per_promoter)
        if refer.any():
            t = got["t"][refer] + d.referral_delay_days.sample(rng, int(refer.sum())) * MIN_PER_DAY
            t = np.maximum(t, (day + 1) * MIN_PER_DAY)  # today's arrivals are drawn already
            self.referrals.add(np.floor(t / MIN_PER_DAY), t=t)

    def _lapse_checks(self, day: int) -> None:
        wb = self.s.loyalty.winback
        if wb is None:
            return
        cust = np.unique(self.lapse.pop(day, ("customer",))["customer"].astype(np.int64))
        if len(cust) == 0:
            return
        c = self.customers
        t = c["last_order_min"][cust] + wb.lapse_days * MIN_PER_DAY
        t0 = day * MIN_PER_DAY
        lapsed = (t >= t0) & (t < t0 + MIN_PER_DAY)  # no order since the one that filed this check
        cust, t = cust[lapsed], t[lapsed]
        self.ledger.book("winback", t, -wb.cost_per_message_usd, cust)
        self.daily["winback_messages"][day] = len(cust)
        rng = self.streams.get("winback", day)
        respond = rng.random(len(cust)) < wb.response_probability
        when = t[respond] + wb.response_delay_days.sample(rng, int(respond.sum())) * MIN_PER_DAY
        when = np.maximum(when, (day + 1) * MIN_PER_DAY)  # today's win-back orders are placed already
        self.winback_due.add(np.floor(when / MIN_PER_DAY), customer=cust[respond], t=when)

    def _renew(self, day: int) -> None:
        prog = self.s.loyalty.program
        if not isinstance(prog, Membership):
            return
        got = self.renewals.pop(day, ("customer", "t"))
        cust = got["customer"].astype(np.int64)
        if len(cust) == 0:
            return
        c = self.customers
        stay = ~c["dropped"][cust]
        c.buffer("member")[cust[~stay]] = False
        self.ledger.book("membership_fees", got["t"][stay], prog.fee_per_year_usd, cust[stay])
        nxt = got["t"][stay] + DAYS_PER_YEAR * MIN_PER_DAY
        self.renewals.add(np.floor(nxt / MIN_PER_DAY), customer=cust[stay], t=nxt)

    def _subscription_renewals(self, day: int) -> None:
        """Today's subscription renewals (cancel, pause, skip or order, sim.subscriptions) and their
        orders, placed in their own order batch so the other batches' random streams are unchanged."""
        c = self.customers
        due = self.subscriptions.renew(day, c["key"], c["sentiment"])
        n = len(due.customer)
        if n:
            self.batch = SUBSCRIPTION_BATCH
            self.daily["orders"][day] += n
            self._place_orders(day, due.customer, due.t_min, np.full(n, SUBSCRIPTION_ORDER, np.int8))
            self.batch = 0

    def _fixed_costs(self) -> None:
        """Agent salaries by day and pool; monthly platform and program fees."""
        cal = self.cal
        day_start = np.arange(cal.days) * MIN_PER_DAY
        for name, sched in self.schedules.items():
            per_day = sched.cost_usd.reshape(cal.days, cal.intervals_per_day).sum(axis=1)
            self.ledger.book(f"support_labor_{name}", day_start, -np.round(per_day, 2))
        month_days = np.flatnonzero(cal.dates.day == 1)
        if cal.dates[0].day != 1:
            month_days = np.concatenate(([0], month_days))
        t = month_days * MIN_PER_DAY
        if self.s.automation.enabled:
            self.ledger.book("automation", t, -self.s.automation.platform_cost_per_month_usd)
        if self.s.loyalty.program is not None:
            self.ledger.book("loyalty_program", t, -self.s.loyalty.program_cost_per_month_usd)

    # ------------------------------------------------------------------ the loop

    def run(self) -> ReplicationResult:
        t_start = time.perf_counter()
        self._seed_initial()
        for day in range(self.cal.days):
            self.today, self.batch = day, 0
            self._apply_effects(day)
            self._subscription_renewals(day)
            new_ids, new_t = self._acquire(day)
            rep_ids, rep_t = self._decide(day)
            wb_ids, wb_t = self._winback_orders(day)
            cust = np.concatenate([new_ids, rep_ids, wb_ids])
            t = np.concatenate([new_t, rep_t, wb_t])
            kind = np.concatenate([
                np.full(len(new_ids), NEW, np.int8), np.full(len(rep_ids), REPEAT_ORDER, np.int8),
                np.full(len(wb_ids), WINBACK_ORDER, np.int8),
            ])
            self.daily["winback_orders"][day] = len(wb_ids)
            while len(cust):
                self.daily["orders"][day] += len(cust)
                self.daily["repeat_orders"][day] += int((kind == REPEAT_ORDER).sum())
                self._place_orders(day, cust, t, kind)
                # a customer's next purchase may fall due later today: decide it now
                self.batch += 1
                cust, t = self._decide(day)
                kind = np.full(len(cust), REPEAT_ORDER, np.int8)
            self._stream_contacts(day)
            self._submit_contacts(day)
            # hourly steps bound how late a lazily detected abandonment (and so a retry) can be seen
            for hour in range(1, 25):
                self.centre.run_until(day * MIN_PER_DAY + hour * MIN_PER_HOUR)
            self.followups.flush()
            self._contact_outcomes(day)
            self._lapse_checks(day)
            self._nps(day)
            self._renew(day)
            self.daily["active_customers"][day] = self.active
        self.followups.flush()
        self._fixed_costs()
        t_sim = time.perf_counter()
        result = metrics.assemble(self)
        result.timings = {"simulate_s": t_sim - t_start, "assemble_s": time.perf_counter() - t_sim}
        return result


def simulate(scenario: Scenario, seed: int, replication: int, events: bool = False) -> ReplicationResult:
    """Run one replication. The same (seed, replication) in two scenarios gives common random numbers.

    ``events=True`` also returns event-level tables (orders, contacts, returns, customers, ledger).
    """
    return Replication(scenario, seed, replication, events).run()


__all__ = ["Replication", "simulate"]
