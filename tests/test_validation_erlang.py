"""The validation form of a scenario (scenarios/validation/) run through the WHOLE engine —
demand, orders, contact triggering, agent pools — against the Erlang C and Erlang A formulas,
with Little's law on the same runs. Tolerances are 4 standard errors of the mean across
independent replications (no tuning: the seed is fixed and the bound follows from the data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.analytic import erlang_a, erlang_c
from sim.engine import simulate
from sim.loader import load_scenario
from sim.metrics import human_records
from sim.service_stats import littles_law

ROOT = Path(__file__).resolve().parents[1]
SEED = 7
REPS = 10
WARMUP_MIN = 60.0  # the queue starts empty; it relaxes within minutes
Z = 4.0


def _estimates(path: Path) -> tuple[dict[str, np.ndarray], object]:
    scenario = load_scenario(path)
    end = scenario.horizon_days * 1440.0
    est: dict[str, list[float]] = {k: [] for k in ("p_wait", "p_abandon", "mean_wait", "sl", "lq", "lw", "rate")}
    phone = scenario.contacts.channels["phone"]
    for rep in range(REPS):
        res = simulate(scenario, SEED, rep, events=True)
        c = res.events["contacts"]
        window = c["done"] & (c["arrival_min"] >= WARMUP_MIN) & (c["arrival_min"] < end - 1440.0)
        c = c[window]
        left = np.where(c["answered"], c["start_min"], c["end_min"])
        wait = left - c["arrival_min"]
        est["p_wait"].append(float(((wait > 0) | ~c["answered"]).mean()))
        est["p_abandon"].append(float((~c["answered"]).mean()))
        est["mean_wait"].append(float(wait.mean()))
        est["sl"].append(float((c["answered"] & (wait <= phone.sla_threshold_min)).mean()))
        est["rate"].append(len(c) / (end - 1440.0 - WARMUP_MIN))
        ll = littles_law(_records(res), WARMUP_MIN, end - 1440.0)
        est["lq"].append(ll.mean_queue)
        est["lw"].append(ll.lambda_w)
    return {k: np.asarray(v) for k, v in est.items()}, scenario


def _records(res: object) -> object:
    from sim.queueing import ContactRecords

    c = res.events["contacts"]  # type: ignore[attr-defined]
    c = c[c["done"] & (c["pool"] >= 0)]
    return ContactRecords(
        contact_id=c.index.to_numpy(np.int64), pool=c["pool"].to_numpy(np.int16),
        arrival_min=c["arrival_min"].to_numpy(), start_min=c["start_min"].to_numpy(),
        end_min=c["end_min"].to_numpy(), answered=c["answered"].to_numpy(),
    )


def _close(samples: np.ndarray, theory: float, what: str) -> None:
    mean = samples.mean()
    se = samples.std(ddof=1) / np.sqrt(len(samples))
    assert abs(mean - theory) < Z * se, f"{what}: simulated {mean:.5f} ± {se:.5f} (SE) vs theory {theory:.5f}"


@pytest.fixture(scope="module")
def erlang_a_runs() -> tuple[dict[str, np.ndarray], object]:
    return _estimates(ROOT / "scenarios" / "validation" / "mmc.yaml")


@pytest.fixture(scope="module")
def erlang_c_runs() -> tuple[dict[str, np.ndarray], object]:
    return _estimates(ROOT / "scenarios" / "validation" / "mmc_no_abandon.yaml")


def _theory_inputs(scenario: object) -> tuple[float, float, int]:
    s = scenario  # type: ignore[assignment]
    lam = s.demand.new_customers_per_day / 1440.0  # type: ignore[attr-defined]
    phone = s.contacts.channels["phone"]  # type: ignore[attr-defined]
    mean_service = s.contacts.reasons["billing"].handle_time_min["phone"].mean  # type: ignore[attr-defined]
    servers = round(phone.staffing[0].agents_by_hour[0] * (1 - phone.shrinkage))
    return lam, mean_service, servers


@pytest.mark.slow
def test_whole_engine_reproduces_erlang_c(erlang_c_runs: tuple[dict[str, np.ndarray], object]) -> None:
    est, scenario = erlang_c_runs
    lam, mean_service, c = _theory_inputs(scenario)
    th = erlang_c(lam, mean_service, c)
    _close(est["rate"], lam, "arrival rate")
    _close(est["p_wait"], th.p_wait, "P(wait)")
    _close(est["mean_wait"], th.mean_wait, "mean wait")
    _close(est["sl"], th.service_level(scenario.contacts.channels["phone"].sla_threshold_min), "service level")  # type: ignore[attr-defined]
    assert est["p_abandon"].max() == 0.0


@pytest.mark.slow
def test_whole_engine_reproduces_erlang_a(erlang_a_runs: tuple[dict[str, np.ndarray], object]) -> None:
    est, scenario = erlang_a_runs
    lam, mean_service, c = _theory_inputs(scenario)
    patience = scenario.contacts.channels["phone"].patience_min.mean  # type: ignore[attr-defined]
    th = erlang_a(lam, mean_service, c, patience)
    _close(est["p_wait"], th.p_wait, "P(wait)")
    _close(est["p_abandon"], th.p_abandon, "P(abandon)")
    _close(est["mean_wait"], th.mean_wait, "mean wait")
    _close(est["sl"], th.service_level(scenario.contacts.channels["phone"].sla_threshold_min), "service level")  # type: ignore[attr-defined]


@pytest.mark.slow
def test_littles_law_on_the_simulated_queue(
    erlang_a_runs: tuple[dict[str, np.ndarray], object], erlang_c_runs: tuple[dict[str, np.ndarray], object]
) -> None:
    for est, _ in (erlang_a_runs, erlang_c_runs):
        diff = est["lq"] - est["lw"]
        # L and λW differ only by contacts straddling the window's edges: O(Lq·W/T), far below 1e-3 here
        assert abs(diff.mean()) < max(Z * diff.std(ddof=1) / np.sqrt(len(diff)), 1e-3)
        assert np.allclose(est["lq"], est["lw"], rtol=0.01)


def test_human_records_cover_every_finished_contact() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "validation" / "mmc.yaml")
    from sim.engine import Replication

    rep = Replication(scenario, SEED, 0)
    rep.run()
    rec = human_records(rep)
    assert len(rec) == int(rep.contacts["done"].sum())
