"""The ``cxsim`` command line: exit codes, messages, stored runs, Ctrl-C, the real console script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.store import RUN_ID_PATTERN, list_runs

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
BASELINE = SCENARIOS / "baseline.yaml"
VARIANT = SCENARIOS / "ai_assistant.yaml"
CXSIM = Path(sys.executable).with_name("cxsim")
HORIZON = "15"
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}

runner = CliRunner()


def cli(*args: str | Path) -> object:
    return runner.invoke(app, [str(a) for a in args], env=ENV)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """One real run of two scenarios (short horizon), shared by the tests that read runs."""
    runs = tmp_path_factory.mktemp("runs")
    result = cli(
        "run", BASELINE, VARIANT, "--reps", "3", "--horizon-days", HORIZON, "--workers", "1",
        "--out", runs, "--export", "csv", "--seed", "7",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return runs, result


# ----------------------------------------------------------------------------- help


def test_help_lists_every_command() -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("validate", "schema", "run", "compare", "runs", "dashboard"):
        assert command in result.stdout
    for command, words in {
        "run": [
            "--reps",
            "--seed",
            "--out",
            "--workers",
            "--scheduler",
            "--horizon-days",
            "--export",
            "20261122",
        ],
        "compare": ["--baseline", "--runs", "--reps", "--seed", "--export"],
        "dashboard": ["--host", "--port", "127.0.0.1", "8050"],
        "validate": ["key path"],
    }.items():
        help_text = cli(command, "--help").stdout
        for word in words:
            assert word in help_text, f"{command} --help lacks {word}"


def test_help_and_validate_do_not_load_the_heavy_layers() -> None:
    """`cxsim --help` and `cxsim validate` stay fast: no engine, pandas, Dask, dashboard or
    calibration (the commands that need them import them when they run)."""
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from sim.cli import app\n"
        "r = CliRunner()\n"
        "assert r.invoke(app, ['--help']).exit_code == 0\n"
        f"assert r.invoke(app, ['validate', {str(BASELINE)!r}]).exit_code == 0\n"
        "heavy = ('dask', 'distributed', 'dash', 'dashboard', 'calibration', 'pandas', 'sim.engine')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m == 'sim.engine'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_calibration_wrappers_match_the_calibration_commands() -> None:
    """sim/cli/history.py re-declares the calibration commands' options (so the CLI need not import
    calibration to show them): they must stay identical to calibration/commands.py."""
    import typer

    from calibration.commands import (
        calibrate_command,
        import_anonbank_command,
        synth_history_command,
    )

    def described(name: str, fn: object) -> list[tuple[object, ...]]:
        one = typer.Typer(add_completion=False)
        one.command(name)(fn)  # type: ignore[arg-type]
        cmd = typer.main.get_command(one)
        head = (cmd.name, cmd.help, cmd.short_help)
        params = [
            (p.name, tuple(p.opts), tuple(p.secondary_opts), p.default, p.required, p.nargs,
             repr(getattr(getattr(p, "type_descriptor", None), "annotation", None)), getattr(p, "min", None),
             getattr(p, "max", None), getattr(p, "is_flag", None), getattr(p, "help", None),
             getattr(p, "show_default", None))
            for p in cmd.params
        ]  # fmt: skip
        return [head, *params]

    real = {
        "calibrate": calibrate_command,
        "synth-history": synth_history_command,
        "import-anonbank": import_anonbank_command,
    }
    group = typer.main.get_command(app)
    for name, fn in real.items():
        wrapper = group.commands[name].callback  # type: ignore[attr-defined]
        assert wrapper is not fn
        assert described(name, wrapper) == described(name, fn), name
        assert wrapper.__doc__ == fn.__doc__, name


# ----------------------------------------------------------------------------- validate


def test_validate_good_files() -> None:
    result = cli("validate", BASELINE, VARIANT)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("OK") and "baseline" in lines[0] and "487 days" in lines[0]
    assert "channels chat,email,phone,social" in lines[0] and "7 reasons" in lines[0]
    assert "ai_assistant" in lines[1] and "extends baseline.yaml" in lines[1]


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


BAD_FILES = {
    # case: (file text, expected fragments of the message)
    "malformed": ("name: [unclosed\nhorizon_days: 3\n", ["malformed YAML", "line"]),
    "unknown_key": ("extends: {base}\ndemand:\n  new_customers_per_dya: 3\n", ["demand.new_customers_per_dya", "unknown key"]),
    "wrong_type": ("extends: {base}\nhorizon_days: lots\n", ["horizon_days", "integer", "'lots'"]),
    "negative_rate": ("extends: {base}\ndemand:\n  new_customers_per_day: -5\n", ["demand.new_customers_per_day", "greater than or equal to 0"]),
    "empty_staffing": ("extends: {base}\ncontacts:\n  channels:\n    phone:\n      staffing: []\n", ["contacts.channels.phone.staffing", "at least 1"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_validate_bad_file(tmp_path: Path, case: str) -> None:
    text, fragments = BAD_FILES[case]
    path = _write(tmp_path, f"{case}.yaml", text.format(base=BASELINE))
    result = cli("validate", path)
    assert result.exit_code == 2
    assert str(path) in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_validate_missing_file_and_extends_cycle(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.yaml", "extends: b.yaml\nname: a\n")
    _write(tmp_path, "b.yaml", "extends: a.yaml\nname: b\n")
    result = cli("validate", tmp_path / "nope.yaml", a)
    assert result.exit_code == 2
    assert "nope.yaml" in result.stderr and "file not found" in result.stderr
    assert "cycle in extends" in result.stderr and "a.yaml -> " in result.stderr
    assert "Traceback" not in result.output


def test_validate_reports_every_file_and_fails_if_any_is_bad(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.yaml", f"extends: {BASELINE}\nhorizon_days: -1\n")
    result = cli("validate", BASELINE, bad)
    assert result.exit_code == 2
    assert result.stdout.startswith("OK") and "horizon_days" in result.stderr


# ----------------------------------------------------------------------------- schema


def test_schema_is_json_schema(tmp_path: Path) -> None:
    result = cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "Scenario" and "demand" in schema["properties"]
    out = tmp_path / "scenario.schema.json"
    assert cli("schema", "--out", out).exit_code == 0
    assert json.loads(out.read_text()) == schema


# ----------------------------------------------------------------------------- run


def test_run_writes_a_complete_run_and_prints_the_kpi_tables(stored: tuple[Path, object]) -> None:
    runs, result = stored
    infos = list_runs(runs)
    assert len(infos) == 1 and infos[0].ok
    folder = infos[0].path
    assert RUN_ID_PATTERN.match(folder.name)
    assert f"Run {folder.name} written to {folder}" in result.stdout
    expected = {
        "manifest.json",
        "kpis.parquet",
        "daily.parquet",
        "intervals.parquet",
        "cohorts.parquet",
        "summary.parquet",
    }
    assert expected <= {p.name for p in folder.iterdir()}
    assert {p.name for p in (folder / "scenarios").iterdir()} == {
        "baseline.yaml",
        "ai_assistant.yaml",
    }
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["seed"], manifest["reps"], manifest["scenarios"]) == (
        7,
        3,
        ["baseline", "ai_assistant"],
    )
    assert manifest["resolved_scenarios"]["baseline"]["horizon_days"] == int(HORIZON)
    assert manifest["timings"]["wall_s"] > 0
    # the KPI table and the paired differences from the first scenario
    assert "KPIs: mean [95% CI] over 3 replication(s)" in result.stdout
    assert "Difference from baseline" in result.stdout and "(paired)" in result.stdout
    assert "contacts_per_order" in result.stdout
    # --export csv: the summary and the differences in the run folder
    summary = pd.read_csv(folder / "kpi_summary.csv")
    assert list(summary.columns) == ["scenario", "metric", "mean", "ci_low", "ci_high", "sd", "n"]
    diffs = pd.read_csv(folder / "kpi_differences.csv")
    assert set(diffs["scenario"]) == {"ai_assistant"} and diffs["paired"].all()
    # the stored scenario files are valid input again
    assert cli("validate", *sorted((folder / "scenarios").iterdir())).exit_code == 0


def test_run_all_metrics_and_baseline_option(tmp_path: Path) -> None:
    result = cli(
        "run", BASELINE, VARIANT, "--reps", "2", "--horizon-days", "5", "--workers", "1", "--out", tmp_path,
        "--baseline", "ai_assistant", "--all-metrics",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Difference from ai_assistant" in result.stdout
    assert "cost_per_order_reships" in result.stdout  # not a headline metric


def test_run_refuses_invalid_files_before_running(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.yaml", f"extends: {BASELINE}\ndemand:\n  cac_usd: free\n")
    out = tmp_path / "runs"
    result = cli("run", BASELINE, bad, "--out", out, "--horizon-days", HORIZON)
    assert result.exit_code == 2
    assert "demand.cac_usd" in result.stderr and "nothing was run" in result.stderr
    assert "Running" not in result.output
    assert not out.exists()


def test_run_unwritable_out_exits_2_before_running(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = cli("run", BASELINE, "--out", blocker / "runs", "--horizon-days", HORIZON)
    assert result.exit_code == 2
    assert "cannot write runs to" in result.stderr
    assert "Running" not in result.output and "Traceback" not in result.output


def test_run_bad_option_values_exit_2(tmp_path: Path) -> None:
    for args in (
        ["--reps", "0"],
        ["--horizon-days", "0"],
        ["--export", "xlsx"],
        ["--baseline", "nope"],
        ["--scheduler", "tcp://127.0.0.1:1"],
    ):
        result = cli("run", BASELINE, "--out", tmp_path, "--horizon-days", "3", *args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output
    assert list_runs(tmp_path) == []


# ----------------------------------------------------------------------------- compare and runs


def test_compare_runs_and_scenario_files(stored: tuple[Path, object], tmp_path: Path) -> None:
    runs, _ = stored
    run_id = list_runs(runs)[0].run_id
    export = tmp_path / "diff.csv"
    result = cli(
        "compare", run_id, SCENARIOS / "seasonal_hires.yaml", "--baseline", "baseline", "--runs", runs,
        "--horizon-days", HORIZON, "--workers", "1", "--export", export,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Difference from baseline" in result.stdout
    assert "ai_assistant" in result.stdout and "seasonal_hires" in result.stdout
    diffs = pd.read_csv(export)
    assert list(diffs.columns) == [
        "scenario",
        "baseline",
        "metric",
        "mean_diff",
        "ci_low",
        "ci_high",
        "n",
        "paired",
    ]
    assert set(diffs["scenario"]) == {"ai_assistant", "seasonal_hires"}
    # the scenario file ran with the stored run's seed and reps: common random numbers, paired
    assert (
        diffs["paired"].all() and set(diffs["n"]) <= {0, 3} and diffs["n"].max() == 3
    )  # 0: all-NaN KPI


def test_compare_errors(stored: tuple[Path, object]) -> None:
    runs, _ = stored
    run_id = list_runs(runs)[0].run_id
    cases = {
        ("compare", run_id, "--baseline", "nope", "--runs", runs): "not one of the scenarios",
        ("compare", "20200101-000000-abcdef", "--baseline", "baseline", "--runs", runs): "no run 20200101-000000-abcdef",
        ("compare", "../../etc", "--baseline", "baseline", "--runs", runs): "neither a run id",
        ("compare", run_id, "--runs", runs): "--baseline",
    }  # fmt: skip
    for args, message in cases.items():
        result = cli(*args)
        assert result.exit_code == 2, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output


def test_runs_lists_ok_and_damaged_runs(stored: tuple[Path, object], tmp_path: Path) -> None:
    runs, _ = stored
    run_id = list_runs(runs)[0].run_id
    result = cli("runs", "--runs", runs)
    assert result.exit_code == 0
    assert (
        run_id in result.stdout
        and "baseline, ai_assistant" in result.stdout
        and "ok" in result.stdout
    )
    (tmp_path / "20200101-000000-abcdef").mkdir()
    result = cli("runs", "--runs", tmp_path)
    assert "corrupt: manifest.json is missing" in result.stdout
    assert "No runs in" in cli("runs", "--runs", tmp_path / "none").stdout


def test_dashboard_unavailable_is_a_clean_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dashboard.app", None)  # makes the import fail
    result = cli("dashboard", "--port", "8999")
    assert result.exit_code == 2
    assert "dashboard is not available" in result.stderr
    assert cli("dashboard", "--port", "70000").exit_code == 2


# ----------------------------------------------------------------------------- the installed script


def test_console_script_validate(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.yaml", f"extends: {BASELINE}\nreturns:\n  window_days: -3\n")
    proc = subprocess.run(
        [str(CXSIM), "validate", str(BASELINE), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stdout.startswith("OK ") and "baseline" in proc.stdout
    assert "returns.window_days" in proc.stderr and "greater than 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_console_script_ctrl_c_exits_130_and_leaves_no_run(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [
            str(CXSIM),
            "run",
            # two roster (planner.mode: fixed) scenarios, so the run starts simulating at once
            str(SCENARIOS / "holiday_understaffed.yaml"),
            str(SCENARIOS / "seasonal_hires.yaml"),
            "--reps",
            "4",
            "--workers",
            "2",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **ENV},
    )
    try:
        assert proc.stderr is not None
        seen = []  # "Running ..." is printed once the files are valid and the run starts
        while not (seen and seen[-1].startswith("Running 2 scenario(s) x 4 replication(s)")):
            line = proc.stderr.readline()
            assert line, f"cxsim ended before running: {''.join(seen)}"
            seen.append(line)
        time.sleep(2.0)  # let the workers get going on the (full-horizon, slow) replications
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Interrupted: no run was written." in stderr
    assert "Traceback" not in stderr
    assert "written to" not in stdout
    assert list(out.iterdir()) == []  # no run folder and no temp folder
