"""How big a run is before it runs: expected customers, orders, contacts and memory of a scenario.

Cheap arithmetic on the scenario (one pass over the horizon's days), so a run that would exhaust
the machine can be refused before it starts (``cxsim run`` does, naming the setting). A pure
library: the caller says how much memory there is.

Expected volumes (one replication):

- new customers on day d: ``new_customers_per_day`` x weekday factor x peaks x trend x demand
  spikes (what the engine draws its Poisson acquisitions from);
- each customer's repeat orders: the BG/NBD expected number of purchases (Fader, Hardie & Lee
  2005, eq. 9) over the purchase-clock time left in the horizon, the clock running faster on peak
  days (``repurchase.peak_sensitivity``) and by the largest loyalty rate multiplier; existing
  customers with Beta(a, b + initial_repeat_purchases) dropout;
- referrals: at most one per surveyed order (x ``referral_probability_per_promoter``);
- contacts: each reason's trigger probability times how often its trigger happens (every order,
  a delivery issue, a return, a warranty claim), divided by its first-contact resolution
  (unresolved contacts come back).

Memory: ``FIXED_BYTES + BYTES_PER_ORDER x orders + BYTES_PER_CUSTOMER x customers`` per
replication, the peak RSS growth measured by benchmarks/bench_footprint.py (least squares over five
variants of the baseline, 55k-470k orders and 83k-2M customers: 825 B/order, 137 B/customer,
7 MB; rounded up here), plus ``PROCESS_BYTES`` per worker process (Python, NumPy, pandas, SciPy,
SimPy and the engine imported: 128 MB measured). Contacts are inside the per-order figure at the
baseline's ~0.3 per order.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from sim.scenario import DemandSpike, Scenario

BYTES_PER_ORDER = 900
BYTES_PER_CUSTOMER = 150
FIXED_BYTES = 16 * 2**20
PROCESS_BYTES = 160 * 2**20
MAX_CUSTOMERS_PER_DAY = 1 << 24
"""The engine keys each customer's random stream by (day, source, index) with 24 bits for the
index: more acquisitions in one day (or more existing customers) would share streams."""


@dataclass(frozen=True)
class Footprint:
    """Expected size of one replication of a scenario (means, not bounds)."""

    scenario: str
    customers: float
    orders: float
    contacts: float
    peak_new_customers_per_day: float
    """Largest expected acquisitions on one day (the engine's per-day key space is 2^24)."""

    @property
    def bytes(self) -> float:
        """Memory of one replication in bytes (without the process itself)."""
        return FIXED_BYTES + BYTES_PER_ORDER * self.orders + BYTES_PER_CUSTOMER * self.customers


def _day_factors(s: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Per day of the horizon: the acquisition multiplier and the peak multiplier alone."""
    days = s.horizon_days
    ordinal = s.start_date.toordinal() + np.arange(days)
    weekday = np.asarray(s.demand.weekday_factors)[(ordinal + 6) % 7]  # date.weekday()

    def covered(start: dt.date, end: dt.date) -> np.ndarray:
        return (ordinal >= start.toordinal()) & (ordinal <= end.toordinal())

    peaks = np.ones(days)
    for p in s.demand.peaks:
        peaks[covered(p.start, p.end)] *= p.multiplier
    spikes = np.ones(days)
    for inc in s.incidents:
        if isinstance(inc, DemandSpike):
            spikes[covered(inc.start, inc.end)] *= inc.multiplier
    trend = (1.0 + s.demand.annual_growth) ** (np.arange(days) / 365.25)
    return weekday * peaks * trend * spikes, peaks


def _bgnbd_expected(t: np.ndarray, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """BG/NBD E[X(t)] (Fader, Hardie & Lee 2005, eq. 9); needs ``a > 1``."""
    z = t / (alpha + t)
    hyp = special.hyp2f1(r, b, a + b - 1.0, z)
    return np.asarray((a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)) ** r * hyp))


def expected_repeat_purchases(t: np.ndarray, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """Expected repeat purchases in (0, t] of a customer who bought at 0 (t in purchase-clock days).

    The engine draws would-be purchases at rate lambda ~ Gamma(r, alpha) and ends the customer at
    the first one that fails (probability p ~ Beta(a, b)), so a customer makes
    ``sum_k P(N(t) >= k) E[(1-p)^k]`` purchases; BG/NBD drops out *after* a purchase, which makes
    ``sum_k P(N(t) >= k) E[(1-p)^(k-1)]``. Since E_{a,b}[(1-p)^k] = b/(a+b) E_{a,b+1}[(1-p)^(k-1)],
    this is ``b/(a+b)`` times BG/NBD's E[X(t)] with ``b + 1``. For ``a <= 1`` (where that formula
    does not apply) the bound ``b/(a+b) r t / alpha`` (no dropout after the first repeat)."""
    t = np.asarray(t, dtype=float)
    first = b / (a + b)
    bound = first * r * t / alpha
    if a <= 1.0:
        return bound
    with np.errstate(all="ignore"):
        out = first * _bgnbd_expected(t, r, alpha, a, b + 1.0)
    out = np.where(np.isfinite(out), out, bound)
    return np.clip(out, 0.0, bound)


def _max_rate_multiplier(s: Scenario) -> float:
    program = s.loyalty.program
    if program is None:
        return 1.0
    rate = program.rate_multiplier
    return float(max(rate)) if isinstance(rate, list) else float(rate)


def _contacts_per_order(s: Scenario) -> float:
    out = s.carrier.outcomes
    issue = out.late + out.failed_attempt + out.lost
    cats = s.returns.categories.values()
    returns = sum(c.share * c.return_probability for c in cats) * max(1.0, s.returns.free_returns_uplift)
    triggers = {  # how often each reason's trigger happens, per order
        "wismo": (1.0 - issue, issue),
        "delivery_problem": (out.failed_attempt + out.lost, 0.0),
        "damaged_item": (out.damaged, 0.0),
        "product_question": (1.0, 0.0),
        "return_refund": (returns, returns),
        "billing": (1.0, 0.0),
        "warranty": (s.warranty.claim_probability, 0.0),
    }
    total = 0.0
    for reason, cfg in s.contacts.reasons.items():
        base, if_issue = triggers.get(reason, (1.0, 1.0))
        first = base * cfg.probability + if_issue * cfg.probability_if_issue
        total += min(first, 1.0) / max(cfg.first_contact_resolution, 0.05)
    return total


def estimate(s: Scenario) -> Footprint:
    """Expected customers, orders and contacts of one replication of ``s`` (see the module doc)."""
    factors, peaks = _day_factors(s)
    new = s.demand.new_customers_per_day * factors
    rp = s.repurchase
    orders_new = float(new.sum())
    repeat = 0.0
    if rp.enabled:
        lift = 1.0 + rp.peak_sensitivity * (peaks - 1.0)
        clock = np.concatenate(([0.0], np.cumsum(lift))) * _max_rate_multiplier(s)
        left = clock[-1] - clock[:-1]  # purchase-clock days from each day's start to the end
        repeat = float(np.dot(new, expected_repeat_purchases(left, rp.rate_shape_r, rp.rate_scale_alpha_days, rp.dropout_a, rp.dropout_b)))
        b0 = rp.dropout_b + rp.initial_repeat_purchases
        per_initial = expected_repeat_purchases(np.array([clock[-1]]), rp.rate_shape_r, rp.rate_scale_alpha_days, rp.dropout_a, b0)
        repeat += s.demand.initial_customers * float(per_initial[0])
    orders = orders_new + repeat
    referrals = orders * s.experience.nps_survey_rate * s.demand.referral_probability_per_promoter
    orders += referrals
    customers = s.demand.initial_customers + orders_new + referrals
    peak_day = float(new.max()) if len(new) else 0.0
    return Footprint(
        scenario=s.name,
        customers=customers,
        orders=orders,
        contacts=orders * _contacts_per_order(s),
        peak_new_customers_per_day=max(peak_day, float(s.demand.initial_customers)),
    )


def concurrent_bytes(footprints: list[Footprint], reps: int, workers: int) -> float:
    """Peak memory of an experiment: the ``workers`` largest replications at once, each in its own
    process (plus this one when ``workers`` > 1)."""
    sizes = sorted((f.bytes for f in footprints for _ in range(reps)), reverse=True)
    running = max(1, min(workers, len(sizes)))
    return float(sum(sizes[:running])) + PROCESS_BYTES * (running + (running > 1))


def engine_problems(scenarios: list[Scenario], footprints: list[Footprint]) -> list[str]:
    """Scenarios beyond what the engine represents (no override): more customers on one day than
    its per-day random-stream keys hold."""
    out = []
    for s, f in zip(scenarios, footprints, strict=True):
        if s.demand.initial_customers >= MAX_CUSTOMERS_PER_DAY:
            out.append(
                f"scenario {s.name}: demand.initial_customers {s.demand.initial_customers:,} is too many; "
                f"the engine supports fewer than {MAX_CUSTOMERS_PER_DAY:,} customers a day"
            )
        elif f.peak_new_customers_per_day >= MAX_CUSTOMERS_PER_DAY:
            out.append(
                f"scenario {s.name}: about {f.peak_new_customers_per_day:,.0f} new customers on its busiest "
                f"day (demand.new_customers_per_day {s.demand.new_customers_per_day:,g} x weekday factors, "
                f"demand.peaks and demand-spike incidents); the engine supports fewer than "
                f"{MAX_CUSTOMERS_PER_DAY:,} a day"
            )
    return out


def memory_problem(
    scenarios: list[Scenario], footprints: list[Footprint], reps: int, workers: int, available_bytes: float
) -> str | None:
    """Why the experiment does not fit in ``available_bytes`` (None when it does)."""
    need = concurrent_bytes(footprints, reps, workers)
    if need <= available_bytes:
        return None
    i = max(range(len(footprints)), key=lambda k: footprints[k].bytes)
    s, f = scenarios[i], footprints[i]
    running = max(1, min(workers, len(footprints) * reps))
    return (
        f"the run needs about {_gb(need)} of memory ({running} replication(s) at once) and "
        f"{_gb(available_bytes)} is available: scenario {s.name} implies about {_count(f.orders)} orders "
        f"and {_count(f.customers)} customers per replication ({_gb(f.bytes)}), from "
        f"demand.new_customers_per_day {s.demand.new_customers_per_day:,g} over horizon_days {s.horizon_days} "
        f"(with demand.peaks) and demand.initial_customers {s.demand.initial_customers:,}"
    )


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def _count(n: float) -> str:
    if not math.isfinite(n):
        return "infinitely many"
    return f"{n:,.0f}" if n < 1e6 else f"{n / 1e6:,.1f} million"
