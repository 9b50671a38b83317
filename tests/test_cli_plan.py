"""``cxsim plan`` and ``cxsim run`` with a planned scenario, as a user runs them: files written,
a valid planned scenario, and one clear message (exit 2, nothing written) for each bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.loader import load_scenario
from sim.planner.plan import PLAN_COLUMNS
from sim.store import list_runs, load_run

ROOT = Path(__file__).resolve().parents[1]
MMC = ROOT / "scenarios" / "validation" / "mmc.yaml"
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
runner = CliRunner()


def cli(*args: str | Path) -> object:
    return runner.invoke(app, [str(a) for a in args], env=ENV)


def _scenario(folder: Path, planner: str, name: str = "small") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"extends: {MMC}\nname: {name}\nhorizon_days: 2\n"
        "demand: {new_customers_per_day: 720}\n"  # 0.5 calls a minute: a small, fast plan
        f"planner:\n{planner}",
        encoding="utf-8",
    )
    return path


GOOD = "  mode: planned\n  replications: 1\n  check_replications: 1\n  shifts: {types: [{name: eight, length_h: 8}]}\n"


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("plan")
    src = _scenario(folder, GOOD)
    result = cli("plan", src, "--out", folder / "planned.yaml", "--report", folder / "report", "--workers", "1")
    assert result.exit_code == 0, result.output
    return folder, result


def test_plan_writes_a_valid_scenario_and_the_report(planned) -> None:
    folder, result = planned
    s = load_scenario(folder / "planned.yaml")
    assert s.name == "small_planned" and s.planner.mode == "fixed"
    assert all(p.agents_by_interval is not None for p in s.contacts.channels["phone"].staffing)
    plan = pd.read_parquet(folder / "report" / "plan.parquet")
    assert list(plan.columns) == list(PLAN_COLUMNS)
    assert len(plan) == 2 * 48 and (plan["channel"] == "phone").all()
    shifts = pd.read_csv(folder / "report" / "shifts.csv")
    assert list(shifts.columns) == ["channel", "shift_type", "start", "end", "break_start", "break_end", "agents", "paid_hours", "cost_usd"]
    assert round(shifts["cost_usd"].sum(), 2) == round(plan["labor_cost_usd"].sum(), 2)
    html = (folder / "report" / "report.html").read_text(encoding="utf-8")
    assert "<script" in html and "phone" in html
    assert "meets target" in result.stdout and "phone" in result.stdout


def test_existing_output_is_not_replaced_without_force(planned) -> None:
    folder, _ = planned
    before = (folder / "planned.yaml").read_bytes()
    result = cli("plan", folder / "small.yaml", "--out", folder / "planned.yaml", "--report", folder / "report")
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert (folder / "planned.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("planner", "words"),
    [
        ("  mode: planned\n  targets: {phone: {sla_target: 1.5}}\n", ["planner.targets.phone.sla_target", "less than or equal to 1"]),
        ("  mode: planned\n  shifts: {types: [{name: long, length_h: 30}]}\n", ["planner.shifts.types[0].length_h", "16"]),
        ("  mode: planned\n  targets: {email: {min_agents: 1}}\n", ["pool 'email'", "does not have"]),
        (GOOD.replace("length_h: 8}", "length_h: 8, max_agents_per_day: 1}"), ["cannot be made", "max_agents_per_day"]),
        (GOOD.replace("length_h: 8}", "length_h: 8, earliest_start_h: 8, latest_start_h: 9}"), ["cannot be made", "no shift"]),
    ],
    ids=["target_above_1", "shift_longer_than_a_day", "unknown_pool", "max_agents_infeasible", "uncoverable_interval"],
)
def test_bad_plans_get_one_clear_message_and_nothing_is_written(tmp_path: Path, planner: str, words: list[str]) -> None:
    src = _scenario(tmp_path, planner)
    out = tmp_path / "planned.yaml"
    result = cli("plan", src, "--out", out, "--report", tmp_path / "report", "--workers", "1")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for w in words:
        assert w in result.output, result.output
    assert not out.exists() and not (tmp_path / "report").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.yaml"]


def test_run_plans_a_planned_scenario_first_and_stores_the_plan(tmp_path: Path) -> None:
    src = _scenario(tmp_path, GOOD)
    fixed = _scenario(tmp_path, "  mode: fixed\n", name="roster")
    runs = tmp_path / "runs"
    result = cli("run", fixed, src, "--reps", "2", "--workers", "1", "--out", runs)
    assert result.exit_code == 0, result.output
    assert "Planning staffing for 1 scenario(s)" in result.output
    (info,) = list_runs(runs)
    data = load_run(runs, info.run_id)
    plan = pd.read_parquet(runs / info.run_id / "plan.parquet")
    assert set(plan["scenario"]) == {"small"}
    stored = load_scenario(runs / info.run_id / "scenarios" / "small.yaml")
    assert stored.planner.mode == "fixed" and stored.provenance is not None and "planner" in stored.provenance
    assert set(data.kpis["scenario"]) == {"roster", "small"}
