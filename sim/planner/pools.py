"""What the planner knows about each agent pool, and how a plan goes back into a scenario.

Arrays here are per staffing interval over the whole horizon (``n_intervals`` = days x intervals per
day, interval ``k`` covering minutes ``[k * interval_min, (k + 1) * interval_min)``). "Agents" are
paid agents on duty before shrinkage, as in a scenario's staffing plans; "servers" are what the
engine simulates: ``rint(agents x (1 - shrinkage) x concurrency)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.calendar import Calendar
from sim.loader import scenario_from_dict
from sim.results import POOLS
from sim.scenario import ChannelConfig, PoolTargets, Scenario, Tier2
from sim.staffing import pool_schedule


@dataclass(frozen=True)
class PoolPlanSpec:
    """A pool to plan: its targets and the parts of its schedule the planner keeps.

    Attributes:
        name: pool name (``chat``, ``email``, ``phone``, ``social``, ``tier2``).
        realtime: customers wait live and may abandon (else a first-response backlog).
        threshold_min: SLA threshold, minutes (answer for realtime, first response for backlogs).
        target: share to answer within the threshold (realtime: of each open interval's arrivals;
            backlog: of each day's arrivals).
        max_abandonment, max_occupancy: optional caps (shares).
        patience_mean_min: mean patience, minutes (realtime; None for backlogs).
        shrinkage, concurrency: as in the scenario (servers = rint(agents x (1-shrinkage) x concurrency)).
        hourly_cost_usd: loaded cost per paid agent hour.
        min_agents: paid agents at least while open.
        open: bool per interval: the pool may be staffed (opening hours, within the planning window).
        window: bool per interval: inside the planning window.
        input_agents: the scenario's own paid agents per interval (its plans, hires excluded).
        hire_servers: servers that seasonal hires already in the scenario bring, per interval.
    """

    name: str
    realtime: bool
    threshold_min: float
    target: float
    max_abandonment: float | None
    max_occupancy: float | None
    patience_mean_min: float | None
    shrinkage: float
    concurrency: int
    hourly_cost_usd: float
    min_agents: int
    open: np.ndarray
    window: np.ndarray
    input_agents: np.ndarray
    hire_servers: np.ndarray


def pool_config(scenario: Scenario, name: str) -> ChannelConfig | Tier2:
    """The scenario's configuration of pool ``name``."""
    if name == "tier2":
        if scenario.contacts.tier2 is None:
            raise KeyError(name)
        return scenario.contacts.tier2
    return scenario.contacts.channels[name]  # type: ignore[index]


def planned_pools(scenario: Scenario) -> list[str]:
    """Pools the planner staffs: ``planner.pools`` or every pool the scenario has, in POOLS order."""
    present = [p for p in POOLS if p in scenario.contacts.channels or (p == "tier2" and scenario.contacts.tier2)]
    chosen = scenario.planner.pools
    return [p for p in present if chosen is None or p in chosen]


def window_mask(scenario: Scenario, cal: Calendar) -> np.ndarray:
    """Intervals inside the planner's window (whole days, inclusive of ``window_end``)."""
    pl = scenario.planner
    first = cal.day_of(pl.window_start) if pl.window_start else 0
    last = cal.day_of(pl.window_end) if pl.window_end else cal.days - 1
    day = np.arange(cal.n_intervals) // cal.intervals_per_day
    return (day >= first) & (day <= last)


def _open_hours_mask(hours: tuple[float, float], cal: Calendar) -> np.ndarray:
    lo, hi = hours
    start_h = (np.arange(cal.n_intervals) % cal.intervals_per_day) * cal.interval_min / 60.0
    # an interval is open when it starts inside [lo, hi) (hi may pass midnight)
    return ((start_h >= lo) & (start_h < hi)) | (start_h + 24.0 < hi)


def pool_spec(scenario: Scenario, name: str, cal: Calendar) -> PoolPlanSpec:
    """Targets, opening hours and kept capacity of one pool (see :class:`PoolPlanSpec`)."""
    cfg = pool_config(scenario, name)
    targets = scenario.planner.targets.get(name, PoolTargets())  # type: ignore[call-overload]
    without_hires = cfg
    if isinstance(cfg, ChannelConfig):
        without_hires = cfg.model_copy(update={"seasonal_hires": [], "overtime": []})
    scen_no_incidents = scenario.model_copy(update={"incidents": []})
    own = pool_schedule(name, without_hires, scen_no_incidents, cal)
    full = pool_schedule(name, cfg, scen_no_incidents, cal)
    input_agents = own.agents_paid
    hire_servers = np.maximum(full.servers - own.servers, 0) if isinstance(cfg, ChannelConfig) else np.zeros_like(own.servers)
    window = window_mask(scenario, cal)
    if targets.open_hours is not None:
        is_open = _open_hours_mask(targets.open_hours, cal)
    else:
        is_open = full.agents_paid > 0
    realtime = isinstance(cfg, ChannelConfig) and cfg.realtime
    patience = cfg.patience_min.mean if isinstance(cfg, ChannelConfig) and cfg.patience_min is not None else None
    return PoolPlanSpec(
        name=name,
        realtime=realtime,
        threshold_min=cfg.sla_threshold_min,
        target=targets.sla_target if targets.sla_target is not None else cfg.sla_target,
        max_abandonment=targets.max_abandonment,
        max_occupancy=targets.max_occupancy,
        patience_mean_min=patience if realtime else None,
        shrinkage=cfg.shrinkage,
        concurrency=cfg.concurrency if isinstance(cfg, ChannelConfig) else 1,
        hourly_cost_usd=cfg.hourly_cost_usd,
        min_agents=targets.min_agents,
        open=is_open & window,
        window=window,
        input_agents=np.asarray(input_agents, dtype=float),
        hire_servers=np.asarray(hire_servers, dtype=np.int64),
    )


def planning_scenario(scenario: Scenario) -> Scenario:
    """The scenario the planner simulates: without incidents unless ``planner.include_incidents``
    (an outage or a meltdown is usually not foreseen when the roster is made)."""
    if scenario.planner.include_incidents or not scenario.incidents:
        return scenario
    return scenario.model_copy(update={"incidents": []})


def _plan_entry(start: dt.date, agents: np.ndarray, premium_usd: float) -> dict[str, object]:
    entry: dict[str, object] = {"start": start, "agents_by_interval": [round(float(a), 4) for a in agents]}
    if premium_usd:
        entry["premium_cost_usd_per_day"] = round(premium_usd, 2)
    return entry


def staffing_entries(
    scenario: Scenario,
    name: str,
    agents: np.ndarray,
    planned_days: np.ndarray,
    premium_by_day: np.ndarray | None = None,
) -> list[dict[str, object]]:
    """The pool's ``staffing`` list with ``agents`` (paid, per interval over the horizon) on the
    days where ``planned_days`` is true and the scenario's own plans elsewhere.

    Consecutive planned days with identical profiles (and no premium) share one entry.
    """
    cal = Calendar(scenario)
    cfg = pool_config(scenario, name)
    own = [p.model_dump() for p in cfg.staffing]
    starts = [cal.day_of(p.start) for p in cfg.staffing]
    per_day = agents.reshape(cal.days, cal.intervals_per_day)
    premium = np.zeros(cal.days) if premium_by_day is None else premium_by_day
    out: list[dict[str, object]] = []
    prev: object = None
    for d in range(cal.days):
        date = cal.start + dt.timedelta(days=d)
        if planned_days[d]:
            source: object = ("planned", tuple(per_day[d]), float(premium[d]))
            if source != prev or premium[d]:
                out.append(_plan_entry(date, per_day[d], float(premium[d])))
        else:
            i = int(np.searchsorted(starts, d, side="right") - 1)
            source = ("own", i)
            if source != prev:
                out.append({**own[i], "start": date})
        prev = source
    return out


def with_staffing(
    scenario: Scenario,
    staffing: dict[str, list[dict[str, object]]],
    drop_overtime: bool = True,
    name: str | None = None,
    updates: dict[str, object] | None = None,
) -> Scenario:
    """The scenario with each named pool's ``staffing`` list replaced (re-validated).

    ``drop_overtime`` removes a planned channel's ``overtime`` entries: the planner decides the hours,
    and an overtime share on top of its plan would pay for hours nobody planned.
    """
    data = scenario.model_dump()
    for pool, plans in staffing.items():
        target = data["contacts"]["tier2"] if pool == "tier2" else data["contacts"]["channels"][pool]
        target["staffing"] = plans
        if drop_overtime and pool != "tier2":
            target["overtime"] = []
    if name is not None:
        data["name"] = name
    data.update(updates or {})
    return scenario_from_dict(data, f"scenario {data['name']} with planned staffing")


def coverage_from_shifts(shifts: pd.DataFrame, n_intervals: int, interval_min: float) -> np.ndarray:
    """Agents on duty (on shift, not on break) per interval from a shifts table whose times are
    minutes since the horizon start (``start_min``, ``end_min``, ``break_start_min``, ``break_end_min``).
    Coverage past ``n_intervals`` is dropped."""
    diff = np.zeros(n_intervals + 1, dtype=np.int64)

    def add(lo: np.ndarray, hi: np.ndarray, n: np.ndarray) -> None:
        a = np.clip(np.rint(lo / interval_min).astype(np.int64), 0, n_intervals)
        b = np.clip(np.rint(hi / interval_min).astype(np.int64), 0, n_intervals)
        np.add.at(diff, a, n)
        np.add.at(diff, b, -n)

    n = shifts["agents"].to_numpy(dtype=np.int64)
    add(shifts["start_min"].to_numpy(float), shifts["end_min"].to_numpy(float), n)
    has_break = shifts["break_start_min"].notna().to_numpy()
    if has_break.any():
        add(shifts["break_start_min"].to_numpy(float)[has_break], shifts["break_end_min"].to_numpy(float)[has_break], -n[has_break])
    return np.cumsum(diff)[:n_intervals]
