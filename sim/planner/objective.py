"""Staffing chosen by the business: the service target that maximises contribution margin.

For each target on a grid, the realtime pools are planned to that target (the same planner as
``cxsim plan``), then every planned scenario is simulated with common random numbers, so the curve
target -> labour cost, churn, LTV, margin is a set of paired comparisons: labour saved by a lower
target is weighed against repurchase and LTV lost through abandonment, waits and unresolved
contacts, exactly as the scenario's experience effects say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.experiment import run_experiment
from sim.planner.plan import PlanProgress, PlanResult, plan_staffing
from sim.planner.pools import planned_pools, pool_config
from sim.results import ReplicationResult
from sim.scenario import ChannelConfig, PoolTargets, Scenario
from sim.summary import mean_ci, paired_differences

#: KPIs the curve shows (names of :data:`sim.results.METRICS`).
CURVE_METRICS = ("support_labor_cost", "churn_rate_monthly", "ltv_12m", "contribution_margin")
DEFAULT_GRID = (0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass
class MarginChoice:
    """Result of the margin objective.

    - ``curve``: ``target, metric, mean, ci_low, ci_high, diff_mean, diff_low, diff_high`` — per target
      and metric, the mean over replications with its 95% interval and the paired difference from the
      scenario's own target (``reference_target``).
    - ``best_target``: the grid target with the highest mean contribution margin; ``best``: its plan.
    """

    curve: pd.DataFrame
    best_target: float
    reference_target: float
    best: PlanResult
    plans: dict[float, PlanResult]


def with_target(scenario: Scenario, target: float, pools: Sequence[str]) -> Scenario:
    """The scenario with the planner's service target of ``pools`` set to ``target``."""
    targets = dict(scenario.planner.targets)
    for p in pools:
        old = targets.get(p, PoolTargets())  # type: ignore[call-overload]
        targets[p] = old.model_copy(update={"sla_target": target})  # type: ignore[index]
    planner = scenario.planner.model_copy(update={"targets": targets})
    return scenario.model_copy(update={"planner": planner})


def realtime_pools(scenario: Scenario) -> list[str]:
    """The planned pools whose customers wait live (the margin objective moves their target)."""
    out = []
    for p in planned_pools(scenario):
        cfg = pool_config(scenario, p)
        if isinstance(cfg, ChannelConfig) and cfg.realtime:
            out.append(p)
    return out


def choose_target(
    scenario: Scenario,
    plan_seed: int,
    eval_seed: int,
    eval_reps: int,
    grid: Sequence[float] = DEFAULT_GRID,
    pools: Sequence[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: PlanProgress | None = None,
) -> MarginChoice:
    """Plan ``scenario`` at each service target in ``grid`` (on ``pools``, default every realtime
    pool) and pick the one with the highest contribution margin over the horizon.

    The reference is the scenario's own target (the first chosen pool's current target, added to the
    grid if absent), against which every point's paired difference is reported.
    """
    chosen = list(pools) if pools is not None else realtime_pools(scenario)
    if not chosen:
        raise ValueError("the margin objective needs at least one realtime pool to plan")
    if eval_reps < 2:
        raise ValueError("the margin objective needs at least 2 evaluation replications for its intervals")
    first = scenario.planner.targets.get(chosen[0])  # type: ignore[call-overload]
    cfg = pool_config(scenario, chosen[0])
    reference = float(first.sla_target if first is not None and first.sla_target is not None else cfg.sla_target)
    points = sorted({round(float(t), 4) for t in (*grid, reference)})
    plans: dict[float, PlanResult] = {}
    for t in points:
        def step(phase: str, done: int, total: int, t: float = t) -> None:
            if progress is not None:
                progress(f"target {t:.0%}: {phase}", done, total)

        plans[t] = plan_staffing(with_target(scenario, t, chosen), plan_seed, workers, scheduler, step)
    evaluated = [
        p.scenario.model_copy(update={"name": f"target_{t:.4f}"}) for t, p in plans.items()
    ]

    def step_eval(done: int, total: int) -> None:
        if progress is not None:
            progress("evaluate targets", done, total)

    results = run_experiment(evaluated, eval_reps, eval_seed, workers=workers, scheduler=scheduler, progress=step_eval)
    curve = margin_curve(results, reference)
    margin = curve[curve["metric"] == "contribution_margin"].set_index("target")["mean"]
    best = float(margin.idxmax())
    return MarginChoice(curve, best, reference, plans[best], plans)


def margin_curve(results: Sequence[ReplicationResult], reference: float) -> pd.DataFrame:
    """The curve table from replication results named ``target_<t>`` (see :class:`MarginChoice`)."""
    rows = []
    for res in results:
        for m in CURVE_METRICS:
            rows.append({
                "scenario": res.scenario, "replication": res.replication, "seed": res.seed,
                "metric": m, "value": float(res.kpis.get(m, np.nan)),
            })
    kpis = pd.DataFrame(rows)
    ref_name = f"target_{reference:.4f}"
    diffs = paired_differences(kpis, ref_name).set_index(["scenario", "metric"])
    out = []
    for (name, metric), grp in kpis.groupby(["scenario", "metric"], sort=False):
        mean, lo, hi, _, _ = mean_ci(grp["value"])
        if name == ref_name:
            d = (0.0, 0.0, 0.0)
        else:
            row = diffs.loc[(name, metric)]
            d = (float(row["mean_diff"]), float(row["ci_low"]), float(row["ci_high"]))
        out.append({
            "target": float(str(name).removeprefix("target_")), "metric": metric, "mean": mean, "ci_low": lo,
            "ci_high": hi, "diff_mean": d[0], "diff_low": d[1], "diff_high": d[2],
        })
    return pd.DataFrame(out).sort_values(["metric", "target"], ignore_index=True)


