"""Plan a scenario's staffing: demand from simulation -> Erlang requirement -> refinement by
replaying the simulated contacts through each candidate plan (:mod:`sim.planner.replay`) -> shifts
(MILP) -> the planned scenario, checked by simulating the whole journey on fresh paths.

:func:`plan_staffing` is what ``cxsim plan`` and ``cxsim run`` (for ``planner.mode: planned``) call.
It only builds scenarios and runs experiments through :mod:`sim.experiment`; no file I/O.

Seeds: the planner's replications use their own seeds (``seed`` here; the CLI derives it from the run
seed), so a run that later simulates the planned scenario judges the plan on fresh random paths.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.calendar import Calendar
from sim.experiment import map_local, run_experiment
from sim.planner.observe import HasIntervals, PoolObservation, observe
from sim.planner.pools import (
    PoolPlanSpec,
    coverage_from_shifts,
    planned_pools,
    planning_scenario,
    pool_spec,
    staffing_entries,
    with_staffing,
)
from sim.planner.refine import erlang_agents, judged, meet_share, misses, raise_where_missed
from sim.planner.replay import ContactStream, ReplayResult, demand_run, replay, replay_days
from sim.planner.shifts import schedule_shifts
from sim.results import ReplicationResult
from sim.scenario import Scenario

#: ``progress(phase, done, total)``: phase is a short label ("demand", "erlang plan", "refine 2", ...).
PlanProgress = Callable[[str, int, int], None]


@dataclass
class PlanResult:
    """A staffing plan and the evidence for it.

    - ``scenario``: the input scenario with the planned staffing written into its pools' ``staffing``
      lists (``planner.mode: fixed``, so simulating it does not plan again), name unchanged.
    - ``plan``: one row per (channel, interval_start) inside the planning window; see
      :data:`PLAN_COLUMNS`.
    - ``shifts``: one row per (channel, shift start, shift type): see :data:`SHIFT_COLUMNS`.
    - ``summary``: per channel: ``realtime``, ``judged`` (open intervals with arrivals for realtime pools,
      days for backlogs), ``meet_share_refined`` (share of those meeting the target with the scheduled
      plan), ``meet_share_erlang`` (with the per-interval Erlang plan), ``labor_cost_usd`` (the
      scheduled plan, shifts' paid hours incl. overtime premium), ``labor_cost_erlang_usd``,
      ``labor_cost_input_usd`` (the scenario's own plan over the window), ``agent_hours``, ``shifts``.
    - ``iterations``: refinement rounds run; ``converged``: every judged interval/day met its target
      with the refined requirement before shifts were made.
    - ``required``, ``erlang``: paid agents per interval over the whole horizon (refined, and the
      per-interval Erlang plan), per pool; ``checked``: the service figures come from the final check.
    """

    scenario: Scenario
    plan: pd.DataFrame
    shifts: pd.DataFrame
    summary: dict[str, dict[str, Any]]
    iterations: int
    converged: bool
    provenance: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    required: dict[str, np.ndarray] = field(default_factory=dict)
    erlang: dict[str, np.ndarray] = field(default_factory=dict)
    checked: bool = True


PLAN_COLUMNS = (
    "channel", "interval_start", "open", "arrivals_expected", "required_agents", "required_agents_erlang",
    "scheduled_agents", "service_level_target", "service_level_sim", "service_level_erlang_plan",
    "abandonment_sim", "occupancy_sim", "backlog_end", "labor_cost_usd",
)
SHIFT_COLUMNS = ("channel", "shift_type", "start", "end", "break_start", "break_end", "agents", "paid_hours", "cost_usd")


class PlanError(ValueError):
    """The plan cannot be made as asked (no pool to plan, infeasible shifts, ...)."""


def _step(progress: PlanProgress | None, phase: str) -> Callable[[int, int], None]:
    def step(done: int, total: int) -> None:
        if progress is not None:
            progress(phase, done, total)

    return step


def _demand(scenario: Scenario, reps: int, seed: int, days: tuple[int, int], workers: int | None,
            progress: PlanProgress | None) -> tuple[list[ReplicationResult], list[ContactStream]]:
    """Whole replications of the scenario, and the contacts each sent to agents in ``days``."""
    calls = [(scenario, seed, r, *days) for r in range(reps)]
    out = map_local(demand_run, calls, workers, _step(progress, "demand"))
    return [o[0] for o in out], [o[1] for o in out]


def _replay(scenario: Scenario, streams: list[ContactStream], workers: int | None,
            progress: PlanProgress | None, phase: str) -> list[ReplayResult]:
    """The recorded contacts served with ``scenario``'s staffing, one replay per replication."""
    return map_local(replay, [(scenario, st) for st in streams], workers, _step(progress, phase))


def _apply(base: Scenario, specs: dict[str, PoolPlanSpec], agents: dict[str, np.ndarray], cal: Calendar,
           planned_days: np.ndarray, premium: dict[str, np.ndarray] | None = None) -> Scenario:
    staffing = {
        name: staffing_entries(base, name, agents[name].astype(float), planned_days, (premium or {}).get(name))
        for name in specs
    }
    return with_staffing(base, staffing)


def _observe_all(results: Sequence[HasIntervals], specs: dict[str, PoolPlanSpec], ipd: int) -> dict[str, PoolObservation]:
    return {name: observe(results, name, ipd) for name in specs}


def check_seed(seed: int) -> int:
    """The final check's seed: its replications are fresh paths, not the refinement's."""
    return (seed * 7919 + 104_729) % 1_000_000_007


def plan_key(scenario: Scenario, seed: int) -> str:
    """A hash of everything that decides the plan: scenarios that differ only in name, description,
    unforeseen incidents or provenance get the same plan (``cxsim run`` plans such a group once)."""
    data = planning_scenario(scenario).model_dump(mode="json")
    for k in ("name", "description", "provenance"):
        data.pop(k, None)
    text = json.dumps({"scenario": data, "seed": seed}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_staffing(
    scenario: Scenario,
    seed: int,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: PlanProgress | None = None,
    warm: PlanResult | None = None,
    check: bool = True,
) -> PlanResult:
    """Plan the staffing of ``scenario``'s pools (see the module docstring and :class:`PlanResult`).

    ``scenario.planner`` sets the pools, window, targets, refinement replications and rounds, and the
    shift rules.

    ``warm``: the plan of a sibling scenario on the same calendar (e.g. the baseline a program variant
    extends). Refinement then starts from this scenario's own Erlang requirement scaled by the
    correction the simulation made to the sibling's (required / Erlang, per interval), so it usually
    needs one or two rounds instead of several. ``check``: simulate the scheduled plan and the Erlang
    plan side by side at the end (``planner.check_replications``); without it (``cxsim run``, whose
    own replications are the check) the service figures are those of the last refinement round.

    Raises :class:`PlanError` (or ``sim.planner.shifts.InfeasibleSchedule``, a
    ``ValueError``) with a readable message when the plan cannot be made.
    """
    t0 = time.perf_counter()
    cfg = scenario.planner
    base = planning_scenario(scenario).model_copy(update={"planner": cfg.model_copy(update={"mode": "fixed"})})
    cal = Calendar(base)
    ipd = cal.intervals_per_day
    names = planned_pools(base)
    if not names:
        raise PlanError("planner: the scenario has no pool to plan")
    specs = {name: pool_spec(base, name, cal) for name in names}
    window_days = np.asarray(specs[names[0]].window.reshape(cal.days, ipd).any(axis=1))
    reps = cfg.replications
    timings: dict[str, float] = {}

    # 1. demand, as the journey generates it under the scenario's own staffing; the contacts it sends
    #    to agents around the window are kept and replayed through each candidate plan (sim.planner.replay)
    days = replay_days(cal, window_days)
    results, streams = _demand(base, reps, seed, days, workers, progress)
    demand = _observe_all(results, specs, ipd)
    erlang = {n: erlang_agents(specs[n], demand[n], cal.interval_min) for n in names}
    timings["demand_s"] = time.perf_counter() - t0

    # 2. the per-interval Erlang plan (or, warm, the sibling's correction applied to it), simulated
    erlang_scen = _apply(base, specs, erlang, cal, window_days)
    required = {n: erlang[n].copy() for n in names}
    if warm is not None and set(names) <= set(warm.required) and len(warm.required[names[0]]) == cal.n_intervals:
        required = {n: _warm_start(erlang[n], warm.erlang[n], warm.required[n]) for n in names}
    start_scen = _apply(base, specs, required, cal, window_days)
    obs = _observe_all(_replay(start_scen, streams, workers, progress,
                               "erlang plan" if warm is None else "warm start"), specs, ipd)
    round0 = obs

    # 3. refinement by simulation until every judged interval / day meets its target
    iterations, converged = 0, False
    # an interval (day) misses when its replayed service level is below target: the point estimate
    # decides, as rounds are replays of the same contacts (cheap) and a plan should meet its target
    history = [{"round": 0, **{n: int(misses(specs[n], obs[n], ipd).sum()) for n in names}}]
    for it in range(1, cfg.max_iterations + 1):
        raised = {n: raise_where_missed(specs[n], obs[n], required[n], cal.interval_min, ipd) for n in names}
        if all(np.array_equal(raised[n], required[n]) for n in names):
            converged = True
            break
        required = raised
        iterations = it
        obs = _observe_all(
            _replay(_apply(base, specs, required, cal, window_days), streams, workers, progress, f"refine {it}"),
            specs, ipd,
        )
        history.append({"round": it, **{n: int(misses(specs[n], obs[n], ipd).sum()) for n in names}})
    else:
        converged = not any(misses(specs[n], obs[n], ipd).any() for n in names)
    timings["refine_s"] = time.perf_counter() - t0 - timings["demand_s"]

    # 4. shifts covering the requirement at least cost
    t_shift = time.perf_counter()
    first_day = int(np.flatnonzero(window_days)[0])
    last_day = int(np.flatnonzero(window_days)[-1])
    win_start = cal.start + dt.timedelta(days=first_day)
    scheduled: dict[str, np.ndarray] = {}
    premium: dict[str, np.ndarray] = {}
    shift_frames = []
    offset = first_day * 1440.0
    calls = [
        (required[n].reshape(cal.days, ipd)[first_day:last_day + 1].astype(np.int64), int(cal.interval_min),
         cfg.shifts, specs[n].hourly_cost_usd, win_start)
        for n in names
    ]
    solved = map_local(schedule_shifts, calls, None if scheduler else workers)
    for n, sched in zip(names, solved, strict=True):
        sp = specs[n]
        sh = sched.shifts.copy()
        for c in ("start_min", "end_min", "break_start_min", "break_end_min"):
            sh[c] = sh[c] + offset
        cover = coverage_from_shifts(sh, cal.n_intervals, cal.interval_min)
        # days after the window keep the scenario's own plan, plus what shifts from the window still cover
        agents = np.where(sp.window, cover, np.rint(sp.input_agents).astype(np.int64) + cover)
        scheduled[n] = agents
        base_cost = sh["agents"] * sp.hourly_cost_usd * sh["paid_hours"]
        prem = (sh["cost_usd"] - base_cost).clip(lower=0.0)
        premium_day = np.zeros(cal.days)
        np.add.at(premium_day, (sh["start_min"] // 1440).astype(int).to_numpy(), prem.to_numpy())
        premium[n] = premium_day
        sh.insert(0, "channel", n)
        shift_frames.append(sh)
    spill_days = np.zeros(cal.days, dtype=bool)
    for n in names:
        spill = (scheduled[n] != np.where(specs[n].window, scheduled[n], np.rint(specs[n].input_agents))).reshape(cal.days, ipd).any(axis=1)
        spill_days |= spill & ~window_days
    planned_days = window_days | spill_days
    timings["shifts_s"] = time.perf_counter() - t_shift

    # 5. the scheduled plan, simulated
    planned = _apply(base, specs, scheduled, cal, planned_days, premium)
    if check:
        # the scheduled plan and the Erlang plan side by side, on the same (more) replications
        # on fresh random paths (a seed of its own), not the ones the plan was refined on
        erlang_named = erlang_scen.model_copy(update={"name": f"{base.name}__erlang"})
        checked = run_experiment([planned, erlang_named], cfg.check_replications, check_seed(seed), workers=workers,
                                 scheduler=scheduler, progress=_step(progress, "check"))
        k = cfg.check_replications
        final = _observe_all(checked[:k], specs, ipd)
        erlang_obs = _observe_all(checked[k:], specs, ipd)
    else:
        final = obs
        erlang_obs = round0 if warm is None else _unobserved(round0)

    shifts = _shift_table(pd.concat(shift_frames, ignore_index=True), cal)
    plan = _plan_table(specs, erlang, required, scheduled, final, erlang_obs, cal, premium)
    summary = {
        n: {"iterations": iterations} | _summary(specs[n], final[n], erlang_obs[n], erlang[n], shifts[shifts["channel"] == n], cal, cfg.miss_z)
        for n in names
    }
    timings["total_s"] = time.perf_counter() - t0
    provenance = {
        "planned_with": "cxsim plan",
        "seed": seed,
        "replications": reps,
        "iterations": iterations,
        "converged": converged,
        "misses_by_round": history,
        "window": [str(win_start), str(cal.start + dt.timedelta(days=last_day))],
        "pools": names,
        "meet_share": {n: _finite_or_none(summary[n]["meet_share_refined"]) for n in names},
        "labor_cost_usd": {n: round(summary[n]["labor_cost_usd"], 2) for n in names},
    }
    out_scenario = with_staffing(
        scenario,
        {n: staffing_entries(scenario, n, scheduled[n].astype(float), planned_days, premium[n]) for n in names},
        updates={
            "planner": scenario.planner.model_copy(update={"mode": "fixed"}).model_dump(),
            "provenance": {**(scenario.provenance or {}), "planner": provenance},
        },
    )
    return PlanResult(out_scenario, plan, shifts, summary, iterations, converged, provenance, timings,
                      required=required, erlang=erlang, checked=check)


def _finite_or_none(x: float, digits: int = 4) -> float | None:
    """A share for the provenance (a scenario holds no NaN): rounded, or None where nothing was judged."""
    return None if not np.isfinite(x) else round(float(x), digits)


def _warm_start(erlang: np.ndarray, sibling_erlang: np.ndarray, sibling_required: np.ndarray) -> np.ndarray:
    """This scenario's Erlang requirement scaled by the sibling's simulation correction, per interval
    (never below the Erlang requirement; where the sibling's Erlang plan had nobody, its extra agents)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(sibling_erlang > 0, sibling_required / np.maximum(sibling_erlang, 1), 1.0)
    scaled = np.ceil(erlang * ratio - 1e-9).astype(np.int64)
    extra = np.where(sibling_erlang > 0, 0, sibling_required - sibling_erlang)
    return np.maximum(erlang, scaled + np.where(erlang > 0, extra, 0))


def _unobserved(like: dict[str, PoolObservation]) -> dict[str, PoolObservation]:
    """Observations with no arrivals (NaN service figures): the Erlang plan was not simulated."""
    out = {}
    for n, o in like.items():
        z = np.zeros_like(o.arrivals)
        out[n] = PoolObservation(o.reps, z, z, z, z, z, z, z, o.handle_min)
    return out


def _shift_table(sh: pd.DataFrame, cal: Calendar) -> pd.DataFrame:
    origin = pd.Timestamp(cal.start)

    def ts(col: str) -> pd.Series:
        return origin + pd.to_timedelta(sh[col], unit="min")

    out = pd.DataFrame({
        "channel": sh["channel"].astype(str),
        "shift_type": sh["shift_type"].astype(str),
        "start": ts("start_min"),
        "end": ts("end_min"),
        "break_start": ts("break_start_min"),
        "break_end": ts("break_end_min"),
        "agents": sh["agents"].astype("int64"),
        "paid_hours": sh["paid_hours"].astype(float),
        "cost_usd": sh["cost_usd"].astype(float).round(2),
    })
    return out.sort_values(["channel", "start", "shift_type"], ignore_index=True)


def _plan_table(
    specs: dict[str, PoolPlanSpec],
    erlang: dict[str, np.ndarray],
    required: dict[str, np.ndarray],
    scheduled: dict[str, np.ndarray],
    final: dict[str, PoolObservation],
    erlang_obs: dict[str, PoolObservation],
    cal: Calendar,
    premium: dict[str, np.ndarray],
) -> pd.DataFrame:
    starts = cal.interval_starts()
    hours = cal.interval_min / 60.0
    frames = []
    for n, sp in specs.items():
        w = sp.window
        cost = scheduled[n] * sp.hourly_cost_usd * hours + np.repeat(premium[n], cal.intervals_per_day) / cal.intervals_per_day
        frames.append(pd.DataFrame({
            "channel": n,
            "interval_start": starts[w],
            "open": sp.open[w],
            "arrivals_expected": final[n].arrivals_mean[w],
            "required_agents": required[n][w].astype("int64"),
            "required_agents_erlang": erlang[n][w].astype("int64"),
            "scheduled_agents": scheduled[n][w].astype("int64"),
            "service_level_target": sp.target,
            "service_level_sim": final[n].service_level[w],
            "service_level_erlang_plan": erlang_obs[n].service_level[w],
            "abandonment_sim": final[n].abandonment[w],
            "occupancy_sim": final[n].occupancy[w],
            "backlog_end": final[n].queue_end[w],
            "labor_cost_usd": cost[w],
        }))
    return pd.concat(frames, ignore_index=True)[list(PLAN_COLUMNS)]


def _summary(sp: PoolPlanSpec, final: PoolObservation, erl: PoolObservation, erlang: np.ndarray,
             shifts: pd.DataFrame, cal: Calendar, z: float) -> dict[str, Any]:
    hours = cal.interval_min / 60.0
    w = sp.window
    return {
        "realtime": sp.realtime,
        "judged": int(judged(sp, final, cal.intervals_per_day).sum()),
        "meet_share_refined": meet_share(sp, final, cal.intervals_per_day),
        "meet_share_erlang": meet_share(sp, erl, cal.intervals_per_day),
        "not_below_share_refined": meet_share(sp, final, cal.intervals_per_day, z),
        "not_below_share_erlang": meet_share(sp, erl, cal.intervals_per_day, z),
        "labor_cost_usd": float(shifts["cost_usd"].sum()),
        "labor_cost_erlang_usd": float((erlang[w] * sp.hourly_cost_usd * hours).sum()),
        "labor_cost_input_usd": float((sp.input_agents[w] * sp.hourly_cost_usd * hours).sum()),
        "agent_hours": float((shifts["agents"] * shifts["paid_hours"]).sum()),
        "open_intervals": int(sp.open.sum()),
        "shifts": int(shifts["agents"].sum()),
        "target": sp.target,
    }

