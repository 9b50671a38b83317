"""Analytic staffing requirement per pool, and its refinement from simulated service.

The analytic start is what per-interval Erlang calculators compute ("SIPP": stationary formula on
each interval's mean rate). Where arrivals change fast (a Black Friday morning ramp), where retries
and repeat contacts feed back, or where a backlog is carried between intervals, that plan misses
its target; the planner then simulates the plan with the engine's own agent pools and raises the
staffing of the intervals (realtime) or days (backlogs) that missed, until every one meets its
target. Only increases are made, so the iteration is monotone and stops (in the spirit of the
iterative staffing algorithm of Feldman, Mandelbaum, Massey & Whitt, 2008, which also starts from
an offered-load estimate and corrects it from simulation).
"""

from __future__ import annotations

import math

import numpy as np

from sim.planner.observe import PoolObservation
from sim.planner.pools import PoolPlanSpec
from sim.planner.requirement import (
    agents_for_servers,
    backlog_servers,
    effective_arrivals,
    realtime_servers,
    servers_for_agents,
)


def erlang_agents(spec: PoolPlanSpec, obs: PoolObservation, interval_min: float) -> np.ndarray:
    """Paid agents per interval from the stationary formula on each interval's expected arrivals.

    Realtime pools: Erlang A (exponential patience of the pool's mean) or C. Backlogs: the fluid FCFS
    model with the backlog carried between intervals. Seasonal hires already in the scenario are
    counted as capacity; closed intervals get none; ``min_agents`` holds while open.
    """
    arrivals = obs.arrivals_smoothed
    handle = np.nan_to_num(obs.handle_min, nan=1.0)
    if spec.realtime:
        servers = realtime_servers(
            np.where(spec.open, arrivals, 0.0), interval_min, handle, spec.patience_mean_min,
            spec.threshold_min, spec.target, spec.max_abandonment, spec.max_occupancy,
        )
    else:
        servers = backlog_servers(arrivals, interval_min, handle, spec.threshold_min, spec.target, spec.open)
    return _to_agents(spec, np.asarray(servers, dtype=np.int64))


def _to_agents(spec: PoolPlanSpec, servers: np.ndarray) -> np.ndarray:
    own = np.maximum(servers - spec.hire_servers, 0)
    agents = agents_for_servers(own, spec.shrinkage, spec.concurrency).astype(np.int64)
    agents = np.where(spec.open, np.maximum(agents, spec.min_agents), 0)
    return np.where(spec.window, agents, np.rint(spec.input_agents).astype(np.int64))


def servers_of(spec: PoolPlanSpec, agents: np.ndarray) -> np.ndarray:
    """Servers the engine simulates for ``agents`` paid agents per interval (hires included)."""
    return servers_for_agents(agents, spec.shrinkage, spec.concurrency) + spec.hire_servers


def misses(spec: PoolPlanSpec, obs: PoolObservation, intervals_per_day: int, z: float = 0.0) -> np.ndarray:
    """Where the simulated service misses the pool's target.

    Realtime pools: per interval (open, inside the window, with arrivals): service level below target,
    or abandonment above its cap, by more than ``z`` binomial standard errors on the interval's
    simulated arrivals (``z = 0``: the point estimate decides), or occupancy above its cap.
    Backlogs: per day (inside the window, with arrivals): the day's share first-responded within the
    threshold below target by more than ``z`` standard errors.
    Returns a bool array per interval (realtime) or per day (backlog).
    """
    if spec.realtime:
        n = np.maximum(obs.arrivals, 1)
        t = spec.target
        bad = obs.service_level < t - z * np.sqrt(t * (1 - t) / n)
        if spec.max_abandonment is not None:
            cap = spec.max_abandonment
            bad |= obs.abandonment > cap + z * np.sqrt(cap * (1 - cap) / n)
        if spec.max_occupancy is not None:
            bad |= np.nan_to_num(obs.occupancy) > spec.max_occupancy
        return judged(spec, obs, intervals_per_day) & bad
    n_day = np.maximum(obs.arrivals.reshape(-1, intervals_per_day).sum(axis=1), 1)
    t = spec.target
    daily = obs.daily_service_level(intervals_per_day)
    return judged(spec, obs, intervals_per_day) & (np.nan_to_num(daily, nan=1.0) < t - z * np.sqrt(t * (1 - t) / n_day))


def judged(spec: PoolPlanSpec, obs: PoolObservation, intervals_per_day: int) -> np.ndarray:
    """The intervals (realtime) or days (backlog) that :func:`misses` judges."""
    if spec.realtime:
        return spec.open & (obs.arrivals > 0)
    day_window = spec.window.reshape(-1, intervals_per_day).any(axis=1)
    return day_window & ~np.isnan(obs.daily_service_level(intervals_per_day))


def raise_where_missed(
    spec: PoolPlanSpec, obs: PoolObservation, agents: np.ndarray, interval_min: float, intervals_per_day: int,
) -> np.ndarray:
    """Agents per interval after one refinement step (never fewer than ``agents``), raised where the
    simulated service level (point estimate) misses the target (:func:`misses` with ``z = 0``).

    Realtime: each missed interval gets the servers the Erlang formula requires at the *effective*
    arrivals, i.e. the load at which the formula reproduces the service level simulated at today's
    servers (at least one more server; at most +50% + 2 in one step). Backlogs: each missed day gets one
    more agent in every open interval that ended with a backlog (all its open intervals if none did).
    """
    new = agents.copy()
    miss = misses(spec, obs, intervals_per_day)
    if not miss.any():
        return new
    if spec.realtime:
        idx = np.flatnonzero(miss)
        servers = servers_of(spec, agents)[idx]
        handle = np.nan_to_num(obs.handle_min[idx], nan=1.0)
        sl = np.clip(obs.service_level[idx], 0.0, 1.0)
        eff = effective_arrivals(servers, sl, interval_min, handle, spec.patience_mean_min, spec.threshold_min)
        eff = np.where(np.isfinite(eff), np.maximum(eff, obs.arrivals_mean[idx]), np.nan)
        want = realtime_servers(
            np.nan_to_num(eff, nan=0.0), interval_min, handle, spec.patience_mean_min, spec.threshold_min,
            spec.target, spec.max_abandonment, spec.max_occupancy,
        )
        want = np.where(np.isnan(eff), servers + np.maximum(1, np.ceil(0.25 * servers)), want)
        step_cap = servers + np.ceil(0.5 * servers) + 2
        want = np.clip(want, servers + 1, step_cap).astype(np.int64)
        add = _to_agents_at(spec, want, idx)
        new[idx] = np.maximum(add, agents[idx] + 1)
        return new
    days = np.flatnonzero(miss)
    for d in days:
        sl = slice(d * intervals_per_day, (d + 1) * intervals_per_day)
        open_now = spec.open[sl]
        backlog = open_now & (obs.queue_end[sl] > 0.5)
        where = backlog if backlog.any() else open_now
        block = new[sl]
        block[where] += 1
        new[sl] = block
    return new


def _to_agents_at(spec: PoolPlanSpec, servers: np.ndarray, idx: np.ndarray) -> np.ndarray:
    own = np.maximum(servers - spec.hire_servers[idx], 0)
    agents = agents_for_servers(own, spec.shrinkage, spec.concurrency).astype(np.int64)
    return np.maximum(agents, spec.min_agents)


def meet_share(spec: PoolPlanSpec, obs: PoolObservation, intervals_per_day: int, z: float = 0.0) -> float:
    """Share of judged intervals (realtime) or days (backlog) that meet the target (``z`` as in
    :func:`misses`: 0 for the point estimate, > 0 for "not significantly below")."""
    j = judged(spec, obs, intervals_per_day)
    n = int(j.sum())
    if n == 0:
        return math.nan
    return 1.0 - float(misses(spec, obs, intervals_per_day, z).sum()) / n
