"""The run store: atomic writes, never overwriting, listing damaged runs, safe ids, export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim import store
from sim.loader import load_scenario, scenario_from_dict
from sim.results import ReplicationResult
from sim.scenario import Scenario
from sim.store import (
    FORMAT_VERSION,
    RUN_ID_PATTERN,
    StoreError,
    export_table,
    list_runs,
    load_run,
    write_run,
)

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_FILE = ROOT / "scenarios" / "baseline.yaml"


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Scenario]:
    base = load_scenario(SCENARIO_FILE)
    other = scenario_from_dict({**base.model_dump(), "name": "other"})
    return {base.name: base, other.name: other}


def _result(name: str, rep: int, seed: int = 11) -> ReplicationResult:
    """A small hand-made result of the documented shape (the store must not care who made it)."""
    rng = np.random.default_rng(rep)
    days = pd.date_range("2026-01-01", periods=3, freq="D")
    starts = pd.date_range("2026-01-01", periods=4, freq="30min")
    intervals = pd.DataFrame(
        {
            "interval_start": np.repeat(starts, 2),
            "pool": ["chat", "phone"] * 4,
            "arrivals": rng.integers(0, 10, 8).astype(float),
            "service_level": rng.random(8),
        }
    )
    cohorts = pd.DataFrame(
        {
            "cohort": [days[0]] * 2,
            "months_since": [0, 1],
            "customers": [5, 5],
            "revenue_usd": rng.random(2),
        }
    )
    return ReplicationResult(
        scenario=name,
        replication=rep,
        seed=seed,
        daily=pd.DataFrame({"date": days, "orders": rng.integers(0, 50, 3)}),
        intervals=intervals,
        cohorts=cohorts,
        kpis={
            "orders": float(rng.integers(100, 200)),
            "csat": float(rng.random()),
            "ltv_payback_months": np.nan,
        },
    )


def _results(scenarios: dict[str, Scenario], reps: int = 3) -> list[ReplicationResult]:
    return [_result(name, r) for name in scenarios for r in range(reps)]


def _write(runs_dir: Path, scenarios: dict[str, Scenario], reps: int = 3) -> Path:
    return write_run(
        runs_dir, _results(scenarios, reps), scenarios, seed=11, reps=reps, timings={"wall_s": 1.5}
    )


def test_write_run_layout_and_round_trip(tmp_path: Path, scenarios: dict[str, Scenario]) -> None:
    path = _write(tmp_path, scenarios)
    assert RUN_ID_PATTERN.match(path.name) and path.parent == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp folder left
    names = {p.name for p in path.iterdir()}
    assert {
        "manifest.json",
        "kpis.parquet",
        "daily.parquet",
        "intervals.parquet",
        "cohorts.parquet",
    } <= names
    assert {"summary.parquet", "scenarios"} <= names

    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["run_id"] == path.name
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["cxsim_version"] == sim.__version__
    assert (manifest["seed"], manifest["reps"]) == (11, 3)
    assert manifest["scenarios"] == list(scenarios)
    assert len(manifest["replication_seeds"]) == 6
    assert manifest["timings"] == {"wall_s": 1.5}
    assert manifest["python"] and manifest["platform"]
    for name, scenario in scenarios.items():
        assert Scenario.model_validate(manifest["resolved_scenarios"][name]) == scenario
        # the stored YAML is a valid scenario file that resolves to the same scenario
        assert load_scenario(path / "scenarios" / f"{name}.yaml") == scenario

    data = load_run(tmp_path, path.name)
    assert data.info.ok and data.manifest == manifest
    assert list(data.kpis.columns) == ["scenario", "replication", "seed", "metric", "value"]
    assert len(data.kpis) == 2 * 3 * 3
    assert data.kpis["value"].isna().sum() == 6  # NaN KPIs are stored, not dropped
    assert (
        list(data.daily.columns[:3]) == ["scenario", "replication", "date"]
        and len(data.daily) == 18
    )
    assert len(data.cohorts) == 12 and "months_since" in data.cohorts
    # intervals: the mean over replications, one row per scenario x interval x pool, float32
    assert len(data.intervals) == 2 * 8
    assert data.intervals["arrivals"].dtype == np.float32
    name = next(iter(scenarios))
    first = [r.intervals["arrivals"].iloc[0] for r in _results(scenarios) if r.scenario == name]
    got = data.intervals[data.intervals["scenario"] == name]["arrivals"].iloc[0]
    assert got == pytest.approx(np.mean(first))
    assert set(data.summary["n"]) == {3, 0}  # ltv_payback_months is all NaN
    assert set(data.scenarios) == set(scenarios)


def test_crash_mid_write_leaves_nothing_that_looks_complete(
    tmp_path: Path, scenarios: dict[str, Scenario], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store._write_parquet
    written: list[str] = []

    def flaky(df: pd.DataFrame, path: Path) -> None:
        if path.name == "cohorts.parquet":
            raise RuntimeError("disk on fire")
        real(df, path)
        written.append(path.name)

    monkeypatch.setattr(store, "_write_parquet", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _write(tmp_path, scenarios)
    assert written  # it did get part of the way
    assert list(tmp_path.iterdir()) == []  # temp folder removed, no run folder
    assert list_runs(tmp_path) == []


def test_ctrl_c_mid_write_removes_the_temp_folder(
    tmp_path: Path, scenarios: dict[str, Scenario], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "dump_scenario_yaml", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path, scenarios)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writer_leaves_only_an_ignored_temp_folder(
    tmp_path: Path, scenarios: dict[str, Scenario]
) -> None:
    # a process killed with SIGKILL cannot clean up: what remains is a dot-folder nobody lists
    done = _write(tmp_path, scenarios)
    half = tmp_path / f".tmp-{store.new_run_id()}"
    half.mkdir()
    (half / "kpis.parquet").write_bytes(b"partial")
    assert [r.run_id for r in list_runs(tmp_path)] == [done.name]
    with pytest.raises(StoreError):
        load_run(tmp_path, half.name)


def test_never_overwrites_an_existing_run(
    tmp_path: Path, scenarios: dict[str, Scenario], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _write(tmp_path, scenarios)
    before = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    ids = iter([first.name, "20260101-000000-abcdef"])
    monkeypatch.setattr(store, "new_run_id", lambda: next(ids))
    second = _write(tmp_path, scenarios)
    assert second.name == "20260101-000000-abcdef"
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == before


def test_run_folder_appearing_during_the_write_is_not_replaced(
    tmp_path: Path, scenarios: dict[str, Scenario], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "new_run_id", lambda: "20260101-000000-abcdef")
    real = store._write_contents

    def racing(folder: Path, run_id: str, *args: object) -> None:
        real(folder, run_id, *args)
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "theirs.txt").write_text("someone else's run")

    monkeypatch.setattr(store, "_write_contents", racing)
    with pytest.raises(StoreError, match="already exists"):
        _write(tmp_path, scenarios)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20260101-000000-abcdef"]
    assert (tmp_path / "20260101-000000-abcdef" / "theirs.txt").read_text() == "someone else's run"


def test_unwritable_runs_dir_raises_store_error(
    tmp_path: Path, scenarios: dict[str, Scenario]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot write runs to"):
        _write(blocker / "runs", scenarios)


def test_results_without_a_scenario_definition_are_refused(
    tmp_path: Path, scenarios: dict[str, Scenario]
) -> None:
    name = next(iter(scenarios))
    with pytest.raises(StoreError, match="no scenario definition"):
        write_run(
            tmp_path, _results(scenarios), {name: scenarios[name]}, seed=1, reps=3, timings={}
        )
    assert list(tmp_path.iterdir()) == []


def _damage(runs: Path, scenarios: dict[str, Scenario]) -> dict[str, str]:
    """Write several runs and damage all but one; returns run id -> expected status."""
    expected = {}
    ids = iter(f"2026010{i}-000000-abcde{i}" for i in range(1, 8))
    for how in ("ok", "no-manifest", "bad-json", "no-kpis", "truncated", "future", "wrong-id"):
        path = write_run(runs, _results(scenarios, 2), scenarios, seed=1, reps=2, timings={})
        run_id = next(ids)
        path = path.rename(runs / run_id)
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["run_id"] = run_id
        (path / "manifest.json").write_text(json.dumps(manifest))
        status = "corrupt"
        if how == "ok":
            status = "ok"
        elif how == "no-manifest":
            (path / "manifest.json").unlink()
        elif how == "bad-json":
            (path / "manifest.json").write_text("{ not json")
        elif how == "no-kpis":
            (path / "kpis.parquet").unlink()
        elif how == "truncated":
            data = (path / "daily.parquet").read_bytes()
            (path / "daily.parquet").write_bytes(data[: len(data) // 2])
        elif how == "future":
            manifest["format_version"] = FORMAT_VERSION + 98
            (path / "manifest.json").write_text(json.dumps(manifest))
            status = "incompatible"
        elif how == "wrong-id":
            manifest["run_id"] = "20990101-000000-ffffff"
            (path / "manifest.json").write_text(json.dumps(manifest))
        expected[run_id] = status
    return expected


def test_list_runs_reports_damaged_runs_with_messages(
    tmp_path: Path, scenarios: dict[str, Scenario]
) -> None:
    expected = _damage(tmp_path, scenarios)
    (tmp_path / ".tmp-20260109-000000-abcdef").mkdir()  # an interrupted write
    (tmp_path / "notes").mkdir()  # not a run
    infos = list_runs(tmp_path)
    assert [i.run_id for i in infos] == sorted(expected, reverse=True)  # newest first
    assert {i.run_id: i.status for i in infos} == expected
    messages = {i.run_id: i.message for i in infos}
    assert "manifest.json is missing" in messages["20260102-000000-abcde2"]
    assert "unreadable" in messages["20260103-000000-abcde3"]
    assert "kpis.parquet is missing" in messages["20260104-000000-abcde4"]
    assert "daily.parquet is unreadable" in messages["20260105-000000-abcde5"]
    assert f"format {FORMAT_VERSION + 98}" in messages["20260106-000000-abcde6"]
    assert "names run" in messages["20260107-000000-abcde7"]
    ok = next(i for i in infos if i.ok)
    assert ok.message == "" and ok.reps == 2 and ok.seed == 1 and ok.scenarios == tuple(scenarios)
    for run_id, status in expected.items():
        if status == "ok":
            assert load_run(tmp_path, run_id).info.run_id == run_id
        else:
            with pytest.raises(StoreError, match=status):
                load_run(tmp_path, run_id)


def test_list_runs_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "nothing-here") == []


@pytest.mark.parametrize(
    "bad_id",
    [
        "..",
        "../x",
        "/etc/passwd",
        "20260101-000000-abcdef/../../etc",
        "20260101-000000-abcdef/manifest.json",
        "20260101-000000-ABCDEF",
        " 20260101-000000-abcdef",
        "20260101-000000-abcdef\n",
        "",
    ],
)
def test_load_run_rejects_ids_that_are_not_run_ids(tmp_path: Path, bad_id: str) -> None:
    with pytest.raises(StoreError, match="not a run id"):
        load_run(tmp_path, bad_id)


def test_load_run_rejects_unlisted_ids_and_non_strings(
    tmp_path: Path, scenarios: dict[str, Scenario]
) -> None:
    _write(tmp_path, scenarios)
    with pytest.raises(StoreError, match="no run 20260101-000000-abcdef"):
        load_run(tmp_path, "20260101-000000-abcdef")
    with pytest.raises(StoreError):
        load_run(tmp_path, None)  # type: ignore[arg-type]
    # a run-shaped folder elsewhere is unreachable: the id is resolved inside runs_dir only
    other = tmp_path / "elsewhere"
    elsewhere = _write(other, scenarios)
    with pytest.raises(StoreError, match="no run"):
        load_run(tmp_path, elsewhere.name)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_table_round_trip(tmp_path: Path, suffix: str) -> None:
    df = pd.DataFrame(
        {"scenario": ["a", "b"], "metric": ["m", "m"], "mean": [1.5, np.nan], "n": [3, 0]}
    )
    path = export_table(df, tmp_path / "sub" / f"out{suffix}")
    back = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_export_table_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.csv"
    target.write_text("previous,complete\n1,2\n")

    def broken(self: pd.DataFrame, path: str | os.PathLike[str], **kwargs: object) -> None:
        Path(path).write_text("half a fi")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(StoreError, match="No space left"):
        export_table(pd.DataFrame({"a": [1]}), target)
    assert target.read_text() == "previous,complete\n1,2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_export_table_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"\.csv or \.parquet"):
        export_table(pd.DataFrame({"a": [1]}), tmp_path / "out.xlsx")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot write"):
        export_table(pd.DataFrame({"a": [1]}), blocker / "out.csv")
