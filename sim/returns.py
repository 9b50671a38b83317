"""Returns, exchanges, refunds and warranty claims for a batch of delivered orders. Vectorised."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.calendar import MIN_PER_DAY
from sim.scenario import Scenario

REFUND, EXCHANGE, STORE_CREDIT = range(3)
RETURN_OUTCOMES: tuple[str, ...] = ("refund", "exchange", "store_credit")


@dataclass(frozen=True)
class Returns:
    """One row per return request of the batch (``order`` indexes the batch)."""

    order: np.ndarray
    request_min: np.ndarray
    accepted: np.ndarray  # bool; refused requests came after the window
    outcome: np.ndarray  # int8, RETURN_OUTCOMES (meaningful when accepted)
    damaged: np.ndarray  # bool: the return of a damaged/defective item
    receive_min: np.ndarray
    refund_min: np.ndarray  # nan for exchanges
    refund_late: np.ndarray  # bool: refund took longer than the policy threshold


def category_return_probability(scenario: Scenario) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shares, return probability, user-error share) per category, in file order."""
    cats = list(scenario.returns.categories.values())
    return (
        np.array([c.share for c in cats]),
        np.array([c.return_probability for c in cats]),
        np.array([c.user_error_share for c in cats]),
    )


def request_returns(
    delivered_min: np.ndarray,
    category: np.ndarray,
    learning_curve: np.ndarray,
    damaged_return: np.ndarray,
    scenario: Scenario,
    rng: np.random.Generator,
) -> Returns:
    """Return requests of one batch. ``damaged_return`` marks damaged orders sent back for refund."""
    r, ob = scenario.returns, scenario.onboarding
    n = len(delivered_min)
    _, p_cat, user_err = category_return_probability(scenario)
    p = p_cat[category] * (r.free_returns_uplift if r.free_returns else 1.0)
    if ob.enabled:
        p = p * (1.0 - ob.user_error_return_reduction * user_err[category] * learning_curve)
    u = rng.random(n)
    wants = (~np.isnan(delivered_min)) & ((u < np.clip(p, 0.0, 1.0)) | damaged_return)
    idx = np.flatnonzero(wants)
    m = len(idx)
    damaged = damaged_return[idx]
    lag_days = r.request_lag_days.sample(rng, m)
    request = delivered_min[idx] + lag_days * MIN_PER_DAY
    accepted = damaged | (lag_days <= r.window_days)
    v = rng.random(m)
    outcome = np.full(m, REFUND, dtype=np.int8)
    outcome[v < r.exchange_share + r.store_credit_share] = STORE_CREDIT
    outcome[v < r.exchange_share] = EXCHANGE
    if r.exchange_first:
        convert = (outcome == REFUND) & (rng.random(m) < r.exchange_first_conversion)
        outcome[convert] = EXCHANGE
    outcome[damaged] = REFUND
    receive = request + r.transit_back_days.sample(rng, m) * MIN_PER_DAY
    delay_days = r.refund_delay_days.sample(rng, m)
    refund = np.where(outcome == EXCHANGE, np.nan, receive + delay_days * MIN_PER_DAY)
    late = (outcome != EXCHANGE) & (delay_days > r.refund_contact_threshold_days)
    return Returns(idx, request, accepted, outcome, damaged, receive, refund, late & accepted)


def warranty_claims(resolved_min: np.ndarray, scenario: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(order index, claim minute) of warranty claims among orders with a good item."""
    w = scenario.warranty
    n = len(resolved_min)
    if w.claim_probability <= 0:
        return np.empty(0, np.int64), np.empty(0)
    claim = (~np.isnan(resolved_min)) & (rng.random(n) < w.claim_probability)
    idx = np.flatnonzero(claim)
    return idx, resolved_min[idx] + w.lag_days.sample(rng, len(idx)) * MIN_PER_DAY
