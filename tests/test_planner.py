"""The staffing planner end to end: a flat M/M/c+M channel against Erlang A, a time-varying channel
where the per-interval formula misses and the refinement does not, money that adds up, and the
planned scenario as a valid file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.analytic import erlang_a
from sim.calendar import Calendar
from sim.engine import simulate
from sim.loader import dump_scenario_yaml, load_scenario, scenario_from_dict
from sim.planner.objective import CURVE_METRICS, choose_target
from sim.planner.observe import PoolObservation
from sim.planner.output import planned_file_doc
from sim.planner.plan import plan_staffing
from sim.planner.pools import pool_spec
from sim.planner.refine import erlang_agents
from sim.staffing import pool_schedule

ROOT = Path(__file__).resolve().parents[1]
MMC = ROOT / "scenarios" / "validation" / "mmc.yaml"


def _mmc(days: int = 3, **planner: object) -> object:
    data = load_scenario(MMC).model_dump()
    data["horizon_days"] = days
    data["planner"] = {
        "mode": "planned", "replications": 3, "check_replications": 3,
        "shifts": {"types": [{"name": "eight", "length_h": 8.0}]}, **planner,
    }
    return scenario_from_dict(data, "mmc planned")


def _smallest_c(lam_per_min: float, handle: float, patience: float, threshold: float, target: float) -> int:
    c = 1
    while erlang_a(lam_per_min, handle, c, patience).service_level(threshold) < target:
        c += 1
    return c


@pytest.fixture(scope="module")
def flat() -> object:
    return plan_staffing(_mmc(), seed=11, workers=1)


def test_flat_channel_needs_the_smallest_c_erlang_a_allows(flat) -> None:
    # lambda = 2/min, handle 4 min, patience 5 min, 80% within 20 s
    c = _smallest_c(2.0, 4.0, 5.0, 0.333, 0.8)
    s = _mmc()
    cal = Calendar(s)
    spec = pool_spec(s, "phone", cal)
    n = cal.n_intervals
    exact = PoolObservation(
        reps=1, arrivals=np.full(n, 60.0), answered=np.full(n, 60.0), abandoned=np.zeros(n),
        within=np.full(n, 60.0), busy_min=np.zeros(n), staffed_min=np.zeros(n), queue_end=np.zeros(n),
        handle_min=np.full(n, 4.0),
    )
    assert (erlang_agents(spec, exact, cal.interval_min) == c).all()
    # end to end the formula sees the simulated (noisy) arrivals: c at the median, never off by more
    # than one agent (the +-5% band of arrivals around lambda = 2/min in which c is right is about
    # one standard error of three replications' mean count of 60); the first and last hour, where the
    # horizon's edges cut the smoothing window and the first contacts, are left out
    erl = flat.plan.loc[flat.plan["open"], "required_agents_erlang"].to_numpy()[2:-2]
    assert np.median(erl) == c
    assert (np.abs(erl - c) <= 1).all()
    # the refinement adds agents only where the simulation shows a significant miss
    req = flat.plan.loc[flat.plan["open"], "required_agents"].to_numpy()[2:-2]
    assert (req >= erl).all()
    assert (req == erl).mean() >= 0.8


def test_flat_plan_meets_its_target_overall(flat) -> None:
    s = flat.summary["phone"]
    assert s["realtime"] and s["judged"] == 3 * 48
    assert s["not_below_share_refined"] >= 0.95
    # overall service level of the scheduled plan, simulated anew, is at least the target
    res = simulate(flat.scenario, seed=99, replication=0)
    iv = res.intervals[res.intervals["pool"] == "phone"]
    assert iv["answered_within_sla"].sum() / iv["arrivals"].sum() >= 0.8


def test_plan_money_adds_up_to_the_cent(flat) -> None:
    shifts_total = round(flat.shifts["cost_usd"].sum(), 2)
    assert round(flat.summary["phone"]["labor_cost_usd"], 2) == shifts_total
    assert round(flat.plan["labor_cost_usd"].sum(), 2) == shifts_total  # no shift runs past the horizon here
    cal = Calendar(flat.scenario)
    sched = pool_schedule("phone", flat.scenario.contacts.channels["phone"], flat.scenario, cal)
    assert round(sched.cost_usd.sum(), 2) == shifts_total
    # agent-hours of the shifts = paid agent-hours the engine staffs (no breaks in this shift type)
    assert flat.summary["phone"]["agent_hours"] == pytest.approx(sched.agents_paid.sum() * 0.5)


def test_planned_file_extends_the_input_and_validates(flat, tmp_path: Path) -> None:
    src = tmp_path / "input.yaml"
    src.write_text(dump_scenario_yaml(_mmc().model_dump(mode="json")), encoding="utf-8")
    out = tmp_path / "planned.yaml"
    out.write_text(dump_scenario_yaml(planned_file_doc(flat, "input.yaml", "mmc_planned")), encoding="utf-8")
    s = load_scenario(out)
    assert s.name == "mmc_planned" and s.planner.mode == "fixed"
    assert s.contacts.channels["phone"].staffing == flat.scenario.contacts.channels["phone"].staffing
    assert s.provenance is not None and s.provenance["planner"]["pools"] == ["phone"]


@pytest.mark.slow
def test_refinement_fixes_what_the_per_interval_formula_misses() -> None:
    """Arrivals ramp x4 within a morning and abandoners retry: per-interval Erlang on the interval's
    mean rate lags the ramp and ignores retries; the refined plan meets the target."""
    data = _mmc(days=4).model_dump()
    data["demand"]["hour_weights"] = [0.2] * 7 + [0.6, 1.2, 2.4, 2.4, 2.0, 1.6, 1.4, 1.2, 1.2, 1.0, 1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.2]
    data["contacts"]["channels"]["phone"]["retry_after_abandon"] = 0.6
    data["contacts"]["channels"]["phone"]["retry_delay_hours"] = {"dist": "exponential", "mean": 0.25}
    result = plan_staffing(scenario_from_dict(data, "ramp"), seed=5, workers=1)
    s = result.summary["phone"]
    assert s["not_below_share_refined"] >= 0.95
    assert s["not_below_share_refined"] > s["not_below_share_erlang"]
    assert result.iterations >= 1


def test_margin_objective_weighs_labour_against_the_business() -> None:
    s = _mmc(days=2, replications=1, check_replications=1)
    data = s.model_dump()
    data["demand"]["new_customers_per_day"] = 720  # 0.5 calls a minute: small plans, fast
    choice = choose_target(scenario_from_dict(data, "small"), plan_seed=3, eval_seed=4, eval_reps=2,
                           grid=(0.6, 0.95), workers=1)
    curve = choice.curve
    assert set(curve["target"]) == {0.6, 0.8, 0.95}  # the scenario's own 0.8 is added as reference
    assert set(curve["metric"]) == set(CURVE_METRICS)
    labour = curve[curve["metric"] == "support_labor_cost"].set_index("target")["mean"]
    # a pointwise larger requirement never costs less to cover (optimal shifts)
    assert labour[0.6] <= labour[0.8] <= labour[0.95]
    margin = curve[curve["metric"] == "contribution_margin"].set_index("target")["mean"]
    assert choice.best_target == margin.idxmax()
    ref = curve[curve["target"] == 0.8]
    assert (ref["diff_mean"] == 0).all()
    # paired differences are the differences of the means (same replications)
    hi = curve[(curve["target"] == 0.95) & (curve["metric"] == "support_labor_cost")].iloc[0]
    assert hi["diff_mean"] == pytest.approx(labour[0.95] - labour[0.8])


def test_a_sibling_plan_warm_starts_a_variant(flat) -> None:
    data = _mmc().model_dump()
    data["demand"]["new_customers_per_day"] = 2304  # a program that removes 20% of the calls
    variant = scenario_from_dict(data, "variant")
    cold = plan_staffing(variant, seed=11, workers=1)
    warm = plan_staffing(variant, seed=11, workers=1, warm=flat)
    assert warm.iterations <= cold.iterations
    assert warm.summary["phone"]["not_below_share_refined"] >= 0.95
    # fewer calls, fewer agents: the labour saving shows
    assert warm.summary["phone"]["labor_cost_usd"] < flat.summary["phone"]["labor_cost_usd"]
