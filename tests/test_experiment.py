"""Running experiments: determinism across execution back-ends, ordering, progress, Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest

from sim import experiment
from sim.experiment import ExperimentError, estimated_work, run_experiment, with_horizon
from sim.loader import load_scenario, scenario_from_dict
from sim.results import ReplicationResult
from sim.scenario import Scenario
from sim.store import cohort_table, daily_table, interval_means, kpi_table

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
SEED = 4242
REPS = 2
HORIZON = 15


@pytest.fixture(scope="module")
def scenarios() -> list[Scenario]:
    base = with_horizon(load_scenario(BASELINE), HORIZON)
    data = base.model_dump()
    data["name"] = "busier"
    data["demand"]["new_customers_per_day"] = base.demand.new_customers_per_day * 1.3
    return [base, scenario_from_dict(data)]


@pytest.fixture(scope="module")
def reference(scenarios: list[Scenario]) -> list[ReplicationResult]:
    """The experiment run in-process, without a pool."""
    return run_experiment(scenarios, reps=REPS, seed=SEED, workers=1)


def _assert_same(a: list[ReplicationResult], b: list[ReplicationResult]) -> None:
    assert [(r.scenario, r.replication, r.seed) for r in a] == [
        (r.scenario, r.replication, r.seed) for r in b
    ]
    for table in (kpi_table, daily_table, cohort_table, interval_means):
        pd.testing.assert_frame_equal(table(a), table(b), check_exact=True)


def test_results_come_back_in_scenario_then_replication_order(
    reference: list[ReplicationResult], scenarios: list[Scenario]
) -> None:
    assert [(r.scenario, r.replication) for r in reference] == [
        (s.name, r) for s in scenarios for r in range(REPS)
    ]
    assert all(r.seed == SEED for r in reference)
    # replications differ from each other; scenarios share streams but not results
    k = kpi_table(reference).pivot_table(
        index=["scenario", "replication"], columns="metric", values="value"
    )
    assert k.loc[("baseline", 0), "orders"] != k.loc[("baseline", 1), "orders"]


def test_process_pool_gives_the_same_tables_as_in_process(
    reference: list[ReplicationResult], scenarios: list[Scenario]
) -> None:
    calls: list[tuple[int, int]] = []
    pooled = run_experiment(
        scenarios, reps=REPS, seed=SEED, workers=2, progress=lambda d, n: calls.append((d, n))
    )
    _assert_same(reference, pooled)
    total = len(scenarios) * REPS
    assert calls == [(i, total) for i in range(total + 1)]


def test_dask_cluster_gives_the_same_tables_as_the_local_pool(
    reference: list[ReplicationResult], scenarios: list[Scenario]
) -> None:
    from distributed import LocalCluster

    calls: list[tuple[int, int]] = []
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, silence_logs=40
    ) as cluster:
        results = run_experiment(
            scenarios,
            reps=REPS,
            seed=SEED,
            scheduler=cluster.scheduler_address,
            progress=lambda d, n: calls.append((d, n)),
        )
    _assert_same(reference, results)
    assert calls[0] == (0, 4) and calls[-1] == (4, 4) and len(calls) == 5


def test_in_process_progress_and_largest_work_first(
    scenarios: list[Scenario], monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[tuple[str, int]] = []

    def fake(data: dict, seed: int, replication: int, events: bool) -> ReplicationResult:
        order.append((data["name"], replication))
        empty = pd.DataFrame()
        return ReplicationResult(data["name"], replication, seed, empty, empty, empty, {"x": 1.0})

    monkeypatch.setattr(experiment, "_run_task", fake)
    calls: list[tuple[int, int]] = []
    results = run_experiment(
        scenarios, reps=3, seed=1, workers=1, progress=lambda d, n: calls.append((d, n))
    )
    assert estimated_work(scenarios[1]) > estimated_work(scenarios[0])
    assert order == [
        ("busier", 0),
        ("busier", 1),
        ("busier", 2),
        ("baseline", 0),
        ("baseline", 1),
        ("baseline", 2),
    ]
    assert [(r.scenario, r.replication) for r in results] == [
        (s.name, r) for s in scenarios for r in range(3)
    ]
    assert calls == [(i, 6) for i in range(7)]


def test_bad_experiments_are_refused(scenarios: list[Scenario]) -> None:
    with pytest.raises(ExperimentError, match="reps"):
        run_experiment(scenarios, reps=0, seed=1)
    with pytest.raises(ExperimentError, match="unique"):
        run_experiment([scenarios[0], scenarios[0]], reps=1, seed=1)
    with pytest.raises(ExperimentError, match="seed"):
        run_experiment(scenarios, reps=1, seed=-1)
    with pytest.raises(ExperimentError, match="workers"):
        run_experiment(scenarios, reps=1, seed=1, workers=0)
    with pytest.raises(ExperimentError, match=r"Dask scheduler at 'tcp://127\.0\.0\.1:1'"):
        run_experiment(scenarios, reps=1, seed=1, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ExperimentError, match="invalid address"):
        run_experiment(scenarios, reps=1, seed=1, scheduler="not:an:address")
    assert run_experiment([], reps=3, seed=1) == []


def test_with_horizon_drops_incidents_after_the_new_end() -> None:
    meltdown = load_scenario(ROOT / "scenarios" / "carrier_meltdown.yaml")
    assert meltdown.incidents
    short = with_horizon(meltdown, 10)
    assert short.horizon_days == 10 and short.incidents == []
    assert with_horizon(meltdown, meltdown.horizon_days) == meltdown


@pytest.fixture
def sigint_after() -> Iterator[callable]:
    """Arrange a SIGINT to this process after a delay, raised only while the test says it is armed."""
    armed = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if armed.is_set():
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, handler)
    timers: list[threading.Timer] = []

    def arm(delay: float) -> None:
        armed.set()
        timer = threading.Timer(delay, os.kill, args=(os.getpid(), signal.SIGINT))
        timers.append(timer)
        timer.start()

    try:
        yield arm
    finally:
        armed.clear()
        for t in timers:
            t.cancel()
        signal.signal(signal.SIGINT, old)


def test_ctrl_c_cancels_pending_work_and_stops_the_workers(sigint_after: callable) -> None:
    long = load_scenario(BASELINE)  # the full horizon: many seconds per replication
    me = psutil.Process()
    sigint_after(3.0)
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_experiment([long], reps=6, seed=1, workers=2)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"Ctrl-C took {elapsed:.1f}s to stop the experiment"
    # no pool worker is left running (the fork server itself may stay, idle). Only the fork
    # server's children count: other tests' processes (e.g. a browser) may be alive meanwhile.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        workers = _pool_workers(me)
        if not workers:
            break
        time.sleep(0.1)
    assert workers == []


def _pool_workers(me: psutil.Process) -> list[psutil.Process]:
    out = []
    for child in me.children():
        try:
            if "forkserver" in " ".join(child.cmdline()):
                out += child.children(recursive=True)
        except psutil.Error:
            continue
    return out


def test_pool_size_weighs_start_up_against_the_work() -> None:
    """A pool pays POOL_START_S before its first result: tasks worth less stay in this process;
    long ones use every worker; the choice minimises the estimated wall time."""
    from sim.experiment import ORDERS_PER_CPU_S, POOL_START_S, pool_size

    second = ORDERS_PER_CPU_S  # estimated work of one CPU-second
    assert pool_size([0.2 * second] * 4, 2) == 1  # 0.8 s in all: a pool would take longer
    assert pool_size([10 * second] * 4, 2) == 2
    assert pool_size([10 * second], 2) == 1  # one task cannot be shared
    # the break-even: two equal tasks of t seconds pay when t > POOL_START_S
    assert pool_size([1.2 * POOL_START_S * second] * 2, 2) == 2
    assert pool_size([0.8 * POOL_START_S * second] * 2, 2) == 1
    assert pool_size([], 2) == 1
