"""Fulfilment and delivery of a batch of orders: ship time, carrier outcome, delivery time,
perceived lateness against the promise, delay alerts and reships. Vectorised, no state."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.calendar import MIN_PER_DAY, Calendar
from sim.scenario import CarrierMeltdown, DefectiveBatch, Scenario

ON_TIME, LATE, FAILED, LOST, DAMAGED = range(5)
OUTCOMES: tuple[str, ...] = ("on_time", "late", "failed_attempt", "lost", "damaged")


def outcome_shares_by_day(scenario: Scenario, cal: Calendar) -> np.ndarray:
    """(days, 5) carrier outcome probabilities per order day: base shares with peak degradation
    multiplying late/failed/lost (on-time absorbs the difference), then carrier meltdowns
    moving on-time shipments to late."""
    o = scenario.carrier.outcomes
    base = np.array([o.on_time, o.late, o.failed_attempt, o.lost, o.damaged])
    shares = np.tile(base, (cal.days, 1))
    degr = cal.multiplier(scenario.carrier.degradation)
    shares[:, [LATE, FAILED, LOST]] *= degr[:, None]
    shares[:, ON_TIME] = np.clip(1.0 - shares[:, 1:].sum(axis=1), 0.0, None)
    for inc in scenario.incidents:
        if isinstance(inc, CarrierMeltdown):
            on = cal.mask(inc.start, inc.end)
            moved = np.clip(shares[on, ON_TIME] - inc.on_time_share, 0.0, None)
            shares[on, ON_TIME] -= moved
            shares[on, LATE] += moved
    return shares / shares.sum(axis=1, keepdims=True)


def defective_share_by_day(scenario: Scenario, cal: Calendar) -> np.ndarray:
    out = np.zeros(cal.days)
    for inc in scenario.incidents:
        if isinstance(inc, DefectiveBatch):
            on = cal.mask(inc.start, inc.end)
            out[on] = 1.0 - (1.0 - out[on]) * (1.0 - inc.defective_share)
    return out


@dataclass(frozen=True)
class Deliveries:
    outcome: np.ndarray  # int8, one of OUTCOMES
    ship_min: np.ndarray
    due_min: np.ndarray  # when an on-time delivery would arrive (first attempt)
    delivered_min: np.ndarray  # nan when lost
    promised_min: np.ndarray
    late: np.ndarray  # bool: delivered after the promise, or lost
    alerted: np.ndarray  # bool: a proactive delay alert was sent
    reship_min: np.ndarray  # nan when no reship; a reship of a lost/damaged order leaves then
    resolved_min: np.ndarray  # when the customer finally has a good item (nan if never / refunded)


def deliver(
    order_min: np.ndarray,
    shares: np.ndarray,
    defective_share: float,
    scenario: Scenario,
    rng: np.random.Generator,
    reship_damaged: np.ndarray,
) -> Deliveries:
    """Deliveries of orders placed on one day. ``shares`` are that day's outcome probabilities;
    ``reship_damaged`` says, per order, whether a damaged delivery is replaced (else refunded)."""
    n = len(order_min)
    f, c = scenario.fulfilment, scenario.carrier
    cdf = np.cumsum(shares)
    outcome = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").astype(np.int8)
    if defective_share > 0:
        faulty = (rng.random(n) < defective_share) & (outcome != LOST)
        outcome[faulty] = DAMAGED
    ship = order_min + f.processing_days.sample(rng, n) * MIN_PER_DAY
    due = ship + c.transit_days.sample(rng, n) * MIN_PER_DAY
    extra = np.zeros(n)
    is_late, is_failed = outcome == LATE, outcome == FAILED
    extra[is_late] = c.late_extra_days.sample(rng, int(is_late.sum()))
    extra[is_failed] = c.failed_attempt_extra_days.sample(rng, int(is_failed.sum()))
    delivered = due + extra * MIN_PER_DAY
    promised = order_min + (f.promise_days + f.promise_padding_days) * MIN_PER_DAY
    lost = outcome == LOST
    delivered[lost] = np.nan
    late = lost | (delivered > promised)
    alerted = late & scenario.notifications.delay_alerts
    reship = np.full(n, np.nan)
    resolved = delivered.copy()
    if c.reship_lost_or_damaged:
        detect = promised + c.lost_detect_days.sample(rng, n) * MIN_PER_DAY
        damaged_reship = (outcome == DAMAGED) & reship_damaged
        reship[lost] = detect[lost]
        reship[damaged_reship] = delivered[damaged_reship]
        redo = lost | damaged_reship
        resolved[redo] = reship[redo] + c.transit_days.sample(rng, int(redo.sum())) * MIN_PER_DAY
    resolved[(outcome == DAMAGED) & ~reship_damaged] = np.nan
    return Deliveries(outcome, ship, due, delivered, promised, late, alerted, reship, resolved)
