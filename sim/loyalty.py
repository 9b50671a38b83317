"""Loyalty programs: how membership shifts dropout and purchase rate, and what it costs per order."""

from __future__ import annotations

import numpy as np

from sim.scenario import Membership, Points, Scenario, Tiers


class ProgramEffects:
    """Per-customer dropout log-odds shift and purchase-rate multiplier, and per-order costs."""

    def __init__(self, scenario: Scenario) -> None:
        self.program = scenario.loyalty.program

    def tier(self, n_orders: np.ndarray) -> np.ndarray:
        """Tier index per customer (-1: below the first tier); only for a tiers program."""
        assert isinstance(self.program, Tiers)
        return np.searchsorted(np.asarray(self.program.min_orders), n_orders, side="right") - 1

    def shift_and_rate(self, n_orders: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(n_orders)
        p = self.program
        if isinstance(p, Points):
            return np.full(n, p.dropout_logit_shift), np.full(n, p.rate_multiplier)
        if isinstance(p, Tiers):
            t = self.tier(n_orders)
            shift = np.where(t >= 0, np.asarray(p.dropout_logit_shift)[np.maximum(t, 0)], 0.0)
            rate = np.where(t >= 0, np.asarray(p.rate_multiplier)[np.maximum(t, 0)], 1.0)
            return shift, rate
        if isinstance(p, Membership):
            return np.where(member, p.dropout_logit_shift, 0.0), np.where(member, p.rate_multiplier, 1.0)
        return np.zeros(n), np.ones(n)

    def order_cost(self, value: np.ndarray, n_orders: np.ndarray, member: np.ndarray) -> np.ndarray:
        """Reward or perk cost (dollars, positive) of each order, given orders so far including it."""
        p = self.program
        if isinstance(p, Points):
            return value * p.earn_share * p.redemption_rate
        if isinstance(p, Tiers):
            t = self.tier(n_orders)
            return np.where(t >= 0, np.asarray(p.perk_cost_per_order_usd)[np.maximum(t, 0)], 0.0)
        if isinstance(p, Membership):
            return np.where(member, p.perk_cost_per_order_usd, 0.0)
        return np.zeros(len(value))
