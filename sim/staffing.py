"""Staffing schedules -> servers and paid agent-hours per interval.

Paid agents come from the dated staffing plans (agents by hour or by interval x weekday factor, plus
any overtime premium the plan carries), seasonal hires and
overtime. Effective agents are paid agents less shrinkage, with seasonal hires at their ramp-up
productivity; a help-desk outage sets effective agents to zero (they are still paid). A pool's
servers are effective agents x concurrency (chat slots), rounded to whole servers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.calendar import MIN_PER_DAY, Calendar
from sim.queueing import PoolSpec
from sim.results import POOLS
from sim.scenario import ChannelConfig, HelpdeskOutage, Scenario, StaffingPlan, Tier2


@dataclass(frozen=True)
class PoolSchedule:
    """Per-interval staffing of one pool."""

    name: str
    servers: np.ndarray  # int64, effective servers (agents x concurrency after shrinkage)
    agents_paid: np.ndarray  # float, paid agents on duty
    cost_usd: np.ndarray  # float, labour cost of the interval


def _hour_and_day(cal: Calendar) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(cal.n_intervals)
    day = k // cal.intervals_per_day
    hour = ((k % cal.intervals_per_day) * cal.interval_min // 60).astype(np.int64)
    return day, hour


def _plans_agents(plans: list[StaffingPlan], cal: Calendar, day: np.ndarray) -> np.ndarray:
    starts = np.array([cal.day_of(p.start) for p in plans])
    which = np.searchsorted(starts, day, side="right") - 1  # validation guarantees plans[0] covers day 0
    by_interval = np.array([p.by_interval(cal.interval_min) for p in plans])
    weekday = np.array([p.weekday_factors for p in plans])
    slot = np.arange(cal.n_intervals) % cal.intervals_per_day
    return by_interval[which, slot] * weekday[which, cal.weekday[day]]


def _premium_per_interval(plans: list[StaffingPlan], cal: Calendar, day: np.ndarray) -> np.ndarray:
    """Each plan's daily overtime premium (USD), spread evenly over the intervals of its days."""
    starts = np.array([cal.day_of(p.start) for p in plans])
    which = np.searchsorted(starts, day, side="right") - 1
    per_day = np.array([p.premium_cost_usd_per_day for p in plans])
    return per_day[which] / cal.intervals_per_day


def pool_schedule(
    name: str, cfg: ChannelConfig | Tier2, scenario: Scenario, cal: Calendar
) -> PoolSchedule:
    """The per-interval schedule of a channel's (or tier 2's) agent pool."""
    day, hour = _hour_and_day(cal)
    hours = cal.interval_min / 60.0
    paid = _plans_agents(cfg.staffing, cal, day)
    cost = paid * cfg.hourly_cost_usd * hours + _premium_per_interval(cfg.staffing, cal, day)
    effective = paid.copy()
    if isinstance(cfg, ChannelConfig):
        for hire in cfg.seasonal_hires:
            on = cal.mask(hire.start, hire.end)[day]
            extra = np.asarray(hire.agents_by_hour)[hour] * on
            since = day - cal.day_of(hire.start)
            productivity = 1.0 if hire.ramp_days == 0 else np.clip(0.5 + 0.5 * since / hire.ramp_days, 0.5, 1.0)
            rate = hire.hourly_cost_usd if hire.hourly_cost_usd is not None else cfg.hourly_cost_usd
            paid = paid + extra
            effective = effective + extra * productivity
            cost = cost + extra * rate * hours
        base_paid, base_effective = paid.copy(), effective.copy()
        for ot in cfg.overtime:
            on = cal.mask(ot.start, ot.end)[day]
            paid = paid + base_paid * ot.extra_share * on
            effective = effective + base_effective * ot.extra_share * on
            cost = cost + base_paid * ot.extra_share * on * cfg.hourly_cost_usd * ot.cost_multiplier * hours
        concurrency = cfg.concurrency
    else:
        concurrency = 1
    effective = effective * (1.0 - cfg.shrinkage)
    start_min = np.arange(cal.n_intervals) * cal.interval_min
    for inc in scenario.incidents:
        if isinstance(inc, HelpdeskOutage) and name in inc.channels:
            lo, hi = cal.minute_of(inc.start), cal.minute_of(inc.end)
            effective[(start_min + cal.interval_min > lo) & (start_min < hi)] = 0.0
    servers = np.rint(effective * concurrency).astype(np.int64)
    return PoolSchedule(name, servers, paid, cost)


def centre_pools(scenario: Scenario, cal: Calendar) -> tuple[dict[str, PoolSchedule], list[PoolSpec]]:
    """Every agent pool of ``scenario`` in ``POOLS`` order: its schedule, and the queue's
    :class:`~sim.queueing.PoolSpec` (a channel the scenario does not offer gets no servers)."""
    schedules: dict[str, PoolSchedule] = {}
    specs = []
    for name in POOLS:
        cfg = scenario.contacts.tier2 if name == "tier2" else scenario.contacts.channels.get(name)  # type: ignore[call-overload]
        if cfg is None:
            zeros = np.zeros(cal.n_intervals)
            sched = PoolSchedule(name, np.zeros(cal.n_intervals, dtype=np.int64), zeros, zeros.copy())
        else:
            sched = pool_schedule(name, cfg, scenario, cal)
        schedules[name] = sched
        realtime = name != "tier2" and cfg is not None and getattr(cfg, "realtime", False)
        specs.append(PoolSpec(name, cal.interval_min, sched.servers, bool(realtime)))
    return schedules, specs


def interval_to_day(values: np.ndarray, cal: Calendar) -> np.ndarray:
    """Sum a per-interval series into days."""
    return values.reshape(cal.days, cal.intervals_per_day).sum(axis=1)


__all__ = ["MIN_PER_DAY", "PoolSchedule", "centre_pools", "interval_to_day", "pool_schedule"]
