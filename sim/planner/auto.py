"""Auto-staffing for runs: plan every scenario whose ``planner.mode`` is ``planned``, once per
distinct plan, and hand back the scenarios with their planned staffing written in.

So program variants (AI assistant, proactive alerts, exchange-first, onboarding) are compared at
equal service targets, and the contacts they remove show as labour saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sim.planner.plan import PlanProgress, PlanResult, plan_key, plan_staffing
from sim.planner.pools import pool_config, with_staffing
from sim.scenario import Scenario


def plan_seed(run_seed: int) -> int:
    """The planner's seed for a run seed: distinct from the run's own, so the run judges the plan
    on random paths the planner did not see."""
    # below 1e9, like every number a scenario (and so its provenance) may hold
    return int(np.random.SeedSequence([run_seed, 0x504C414E]).generate_state(1)[0]) % 1_000_000_000


def staffing_of(planned: Scenario, pools: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The ``staffing`` lists of ``pools`` in a planned scenario, as plain mappings."""
    return {p: [plan.model_dump() for plan in pool_config(planned, p).staffing] for p in pools}


def adopt_plan(scenario: Scenario, result: PlanResult) -> Scenario:
    """``scenario`` with the staffing of ``result`` (planned for a scenario with the same plan key):
    its own name, description and incidents are kept; ``planner.mode`` becomes ``fixed`` and the plan's
    provenance is recorded."""
    return with_staffing(
        scenario,
        staffing_of(result.scenario, result.provenance["pools"]),
        updates={
            "planner": scenario.planner.model_copy(update={"mode": "fixed"}).model_dump(),
            "provenance": {**(scenario.provenance or {}), "planner": result.provenance},
        },
    )


def plan_scenarios(
    scenarios: Sequence[Scenario],
    seed: int,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: PlanProgress | None = None,
    check: bool = False,
) -> tuple[list[Scenario], dict[str, PlanResult]]:
    """Plan the scenarios with ``planner.mode: planned`` (others pass through unchanged).

    Scenarios with the same plan key (:func:`sim.planner.plan.plan_key`: equal but for name,
    description and unforeseen incidents) share one plan. The first plan is made from scratch; the
    others start warm from its simulation correction (see :func:`plan_staffing`), so they need
    fewer refinement rounds. ``check``: run each plan's final
    check (a run's own replications usually are the check). Returns the scenarios to simulate, in
    the same order, and the plan behind each planned scenario, by scenario name.
    """
    by_key: dict[str, PlanResult] = {}
    out: list[Scenario] = []
    plans: dict[str, PlanResult] = {}
    for s in scenarios:
        if s.planner.mode != "planned":
            out.append(s)
            continue
        key = plan_key(s, seed)
        if key not in by_key:
            def step(phase: str, done: int, total: int, name: str = s.name) -> None:
                if progress is not None:
                    progress(f"planning {name}: {phase}", done, total)

            first = next(iter(by_key.values()), None)
            by_key[key] = plan_staffing(s, seed, workers, scheduler, step, warm=first, check=check)
        plans[s.name] = by_key[key]
        out.append(adopt_plan(s, by_key[key]))
    return out, plans


def plan_tables(plans: dict[str, PlanResult]) -> dict[str, pd.DataFrame]:
    """``plan`` and ``shifts`` tables of several scenarios' plans, with a ``scenario`` column first."""
    if not plans:
        return {}
    out = {}
    for attr in ("plan", "shifts"):
        frames = []
        for name, res in plans.items():
            df = getattr(res, attr).copy()
            df.insert(0, "scenario", name)
            frames.append(df)
        out[attr] = pd.concat(frames, ignore_index=True)
    return out
