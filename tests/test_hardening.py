"""Hardening (issue 12): every bad input of the issue ends in a specific exit-2 message, anything
unexpected in one exit-1 message, runs too big for the machine are refused before simulating,
workers die with their parent (kill -9 included) and stale temporary run folders are pruned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from typer.testing import CliRunner

from sim import limits
from sim.cli import app
from sim.engine import Replication
from sim.experiment import with_horizon
from sim.loader import MAX_DEPTH, load_scenario
from sim.store import OWNER_FILE, TMP_PREFIX, prune_temp_folders, temp_folders

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
runner = CliRunner()


def cli(*args: str | Path) -> object:
    return runner.invoke(app, [str(a) for a in args], env=ENV)


def scenario_file(tmp_path: Path, body: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(f"extends: {BASELINE}\n{body}", encoding="utf-8")
    return p


# ----------------------------------------------------------------------------- the issue's files

ISSUE_CASES: dict[str, tuple[str, str]] = {
    # name: (YAML after "extends", expected words of the message)
    "feb30": ("name: x\nstart_date: 2026-02-30\n", "invalid date '2026-02-30': day is out of range for month"),
    "duplicate key": ("name: x\nhorizon_days: 30\nhorizon_days: 40\n", "duplicate key 'horizon_days' (first on line 3)"),
    "bool as number": ("name: x\ndemand:\n  new_customers_per_day: true\n", "demand.new_customers_per_day: expected a number, got a boolean"),
    "inf": ("name: x\ndemand:\n  new_customers_per_day: .inf\n", "demand.new_customers_per_day: Input should be a finite number"),
    "nan": ("name: x\ndemand:\n  cac_usd: .nan\n", "demand.cac_usd: Input should be a finite number"),
    "1e308": ("name: x\ndemand:\n  new_customers_per_day: 1.0e+308\n", "demand.new_customers_per_day: must be within ±1e+09"),
    "2e9 initial": ("name: x\ndemand:\n  initial_customers: 2000000000\n", "demand.initial_customers: must be within ±1e+09"),
    "1e29 initial": ("name: x\ndemand:\n  initial_customers: 1e29\n", "demand.initial_customers: Input should be a valid integer"),
    "peak 1e12": (
        "name: x\ndemand:\n  peaks:\n    - {start: 2026-11-01, end: 2026-11-02, multiplier: 1.0e+12}\n",
        "demand.peaks[0].multiplier: must be within ±1e+09",
    ),
    "year 9999": ("name: x\nstart_date: 9999-12-30\n", "start_date: dates must lie within 1990-01-01..2100-12-31"),
    "horizon past 2100": ("name: x\nstart_date: 2100-06-01\n", "horizon_days: the horizon would end on 2101-09-30"),
    "long name": ("name: " + "n" * 100_000 + "\n", "name: String should have at most 200 characters"),
}


@pytest.mark.parametrize("case", list(ISSUE_CASES))
def test_issue_inputs_are_refused_by_validate_and_run(tmp_path: Path, case: str) -> None:
    body, words = ISSUE_CASES[case]
    f = scenario_file(tmp_path, body)
    result = cli("validate", f)
    assert result.exit_code == 2, result.output
    assert words in result.stderr and "Traceback" not in result.output
    assert len(result.stderr) < 2000  # the 100,000-character name is not echoed back
    out = tmp_path / "runs"
    result = cli("run", f, "--out", out, "--workers", "1")
    assert result.exit_code == 2 and words in result.stderr
    assert not out.exists()  # nothing written


def test_deeply_nested_list_is_refused_with_the_line(tmp_path: Path) -> None:
    f = scenario_file(tmp_path, "name: x\nincidents: " + "[" * 5000 + "]" * 5000 + "\n")
    result = cli("validate", f)
    assert result.exit_code == 2
    assert f"line 3, column {len('incidents: ') + MAX_DEPTH}" in result.stderr
    assert f"nested more than {MAX_DEPTH} levels deep" in result.stderr


def test_alias_bomb_is_refused_without_expanding_it(tmp_path: Path) -> None:
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10^9 values
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    t0 = time.perf_counter()
    result = cli("validate", f)
    assert result.exit_code == 2 and "expands to more than 1,000,000 values" in result.stderr
    assert time.perf_counter() - t0 < 10


def test_the_edges_of_the_date_range_are_valid(tmp_path: Path) -> None:
    ok = scenario_file(tmp_path, "name: x\nstart_date: 2100-12-31\nhorizon_days: 1\n")
    assert cli("validate", ok).exit_code == 0, cli("validate", ok).output
    late = scenario_file(tmp_path, "name: x\nstart_date: 2100-12-31\nhorizon_days: 2\n", "late.yaml")
    assert cli("validate", late).exit_code == 2


def test_booleans_stay_valid_where_booleans_are_meant(tmp_path: Path) -> None:
    f = scenario_file(tmp_path, "name: x\nrepurchase:\n  enabled: false\n")
    assert cli("validate", f).exit_code == 0
    lists = scenario_file(tmp_path, "name: x\ndemand:\n  weekday_factors: [1, 1, 1, true, 1, 1, 1]\n", "l.yaml")
    result = cli("validate", lists)
    assert result.exit_code == 2 and "demand.weekday_factors: expected a number" in result.stderr


# ----------------------------------------------------------------------------- limits from the machine


def test_order_estimate_matches_the_engine() -> None:
    """The arithmetic estimate of orders and customers against a real replication (30 days of the
    baseline): the BG/NBD expectation with the engine's dropout rule, not a fitted constant."""
    s = with_horizon(load_scenario(BASELINE), 30)
    f = limits.estimate(s)
    rep = Replication(s, 20261122, 0)
    rep.run()
    # Poisson acquisitions and gamma-mixed purchases: relative sd of the count is well under 2%
    assert f.orders == pytest.approx(rep.orders.n, rel=0.05)
    assert f.customers == pytest.approx(rep.customers.n, rel=0.05)
    assert rep.contacts.n <= f.contacts <= 2 * rep.contacts.n  # deliberately on the high side


def test_expected_repeat_purchases_against_simulation() -> None:
    """The closed form against a direct simulation of the engine's rule (stop at the first failed
    would-be purchase), including a < 1 where only the bound applies."""
    rng = np.random.default_rng(7)
    r, alpha, a, b, t = 1.5, 110.0, 1.4, 0.45, 400.0
    n = 400_000
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    would = rng.poisson(lam * t)
    successes = rng.geometric(p) - 1  # successes before the first failure
    sim = np.minimum(would, successes)
    se = sim.std() / np.sqrt(n)
    got = float(limits.expected_repeat_purchases(np.array([t]), r, alpha, a, b)[0])
    assert abs(got - sim.mean()) < 4 * se
    bound = float(limits.expected_repeat_purchases(np.array([t]), r, alpha, 0.8, b)[0])
    assert bound == pytest.approx(b / (0.8 + b) * r * t / alpha)


def test_run_too_big_for_the_memory_is_refused_naming_the_settings(tmp_path: Path) -> None:
    f = scenario_file(tmp_path, "name: big\ndemand:\n  new_customers_per_day: 100000\n")
    out = tmp_path / "runs"
    result = cli("run", f, "--out", out, "--workers", "1", "--max-memory-gb", "8")
    assert result.exit_code == 2, result.output
    err = result.stderr
    assert "refused before simulating" in err and "8.0 GB is available" in err
    assert "demand.new_customers_per_day 100,000 over horizon_days 487" in err
    assert "--no-limits" in err and not out.exists()


def test_customers_per_day_beyond_the_engine_are_refused_even_with_no_limits(tmp_path: Path) -> None:
    f = scenario_file(
        tmp_path, "name: peak\ndemand:\n  peaks:\n    - {start: 2026-11-01, end: 2026-11-03, multiplier: 1000000}\n"
    )
    result = cli("run", f, "--out", tmp_path / "runs", "--workers", "1", "--no-limits")
    assert result.exit_code == 2
    assert "new customers on its busiest day" in result.stderr and "16,777,216" in result.stderr
    many = scenario_file(tmp_path, "name: many\ndemand:\n  initial_customers: 500000000\n", "m.yaml")
    result = cli("run", many, "--out", tmp_path / "runs", "--workers", "1")
    assert result.exit_code == 2 and "demand.initial_customers 500,000,000 is too many" in result.stderr


def test_memory_of_parallel_replications_adds_up() -> None:
    s = load_scenario(BASELINE)
    f = limits.estimate(s)
    one = limits.concurrent_bytes([f], reps=4, workers=1)
    two = limits.concurrent_bytes([f], reps=4, workers=2)
    assert one == pytest.approx(f.bytes + limits.PROCESS_BYTES)
    assert two == pytest.approx(2 * f.bytes + 3 * limits.PROCESS_BYTES)


def test_no_limits_and_a_larger_budget_let_the_check_pass(tmp_path: Path) -> None:
    f = scenario_file(tmp_path, "name: small\nhorizon_days: 7\n")
    small_budget = cli("run", f, "--out", tmp_path / "a", "--workers", "1", "--max-memory-gb", "0.1")
    assert small_budget.exit_code == 2 and "refused before simulating" in small_budget.stderr
    result = cli("run", f, "--out", tmp_path / "b", "--workers", "1", "--max-memory-gb", "0.1", "--no-limits", "--reps", "1")
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------------------- the top-level guard


def test_an_unexpected_error_is_one_message_with_a_bug_report_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr("sim.loader.load_scenario", broken)
    result = cli("validate", BASELINE)
    assert result.exit_code == 1
    assert "unexpected ZeroDivisionError: float division by zero" in result.stderr
    assert "please report it" in result.stderr and "CXSIM_DEBUG=1" in result.stderr
    assert "Traceback" not in result.output
    debug = runner.invoke(app, ["validate", str(BASELINE)], env={**ENV, "CXSIM_DEBUG": "1"})
    assert isinstance(debug.exception, ZeroDivisionError)  # the traceback is there when asked for


def test_usage_errors_still_come_from_the_command_line_parser() -> None:
    result = cli("run", BASELINE, "--reps", "zero")
    assert result.exit_code == 2 and "Invalid value" in result.output


# ----------------------------------------------------------------------------- calibration input


def test_calibrate_refuses_placeholder_dates_in_seconds(tmp_path: Path) -> None:
    rows = [f"O{i},C{i % 300},2026-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z,50,on_time" for i in range(3000)]
    rows[1500:1500] = ["X1,C1,1900-01-01T00:00:00Z,10,on_time", "X2,C2,9999-12-31T00:00:00Z,10,on_time"]
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,customer_id,order_ts,order_value,delivery_status\n" + "\n".join(rows) + "\n")
    t0 = time.perf_counter()
    result = cli(
        "calibrate", "--orders", orders, "--base", BASELINE, "--out", tmp_path / "c.yaml",
        "--report", tmp_path / "report",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert time.perf_counter() - t0 < 20
    assert "column 'order_ts'" in result.stderr and "outside 1990-01-01..2100-12-31" in result.stderr
    assert "line 1502" in result.stderr
    assert not (tmp_path / "c.yaml").exists() and not (tmp_path / "report").exists()


# ----------------------------------------------------------------------------- stale temporary folders


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_lists_and_prunes_only_folders_whose_writer_is_gone(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    dead = runs / f"{TMP_PREFIX}20260101-000000-aaaaaa"
    alive = runs / f"{TMP_PREFIX}20260101-000000-bbbbbb"
    old_unowned = runs / f"{TMP_PREFIX}20250101-000000-cccccc"
    fresh_unowned = runs / f"{TMP_PREFIX}probe-xyz"
    for d in (dead, alive, old_unowned, fresh_unowned):
        d.mkdir(parents=True)
    import platform

    (dead / OWNER_FILE).write_text(json.dumps({"host": platform.node(), "pid": _dead_pid(), "start": None}))
    (dead / "kpis.parquet").write_bytes(b"partial")
    (alive / OWNER_FILE).write_text(json.dumps({"host": platform.node(), "pid": os.getpid(), "start": None}))
    week_ago = time.time() - 7 * 24 * 3600
    os.utime(old_unowned, (week_ago, week_ago))

    listed = cli("runs", "--runs", runs)
    assert listed.exit_code == 0
    assert f"{dead.name}: stale, its process" in listed.stderr and "is gone" in listed.stderr
    assert f"{alive.name}: being written by process {os.getpid()}" in listed.stderr
    assert f"{old_unowned.name}: stale, no owner record" in listed.stderr
    assert "cxsim runs --prune" in listed.stderr
    assert dead.exists()  # listing removes nothing

    pruned = cli("runs", "--runs", runs, "--prune")
    assert pruned.exit_code == 0
    assert not dead.exists() and not old_unowned.exists()
    assert alive.exists() and fresh_unowned.exists()
    assert [t.path for t in temp_folders(runs) if t.stale] == []
    assert prune_temp_folders(runs) == []


def test_a_written_run_keeps_no_owner_record(tmp_path: Path) -> None:
    f = scenario_file(tmp_path, "name: small\nhorizon_days: 3\n")
    out = tmp_path / "runs"
    assert cli("run", f, "--out", out, "--workers", "1", "--reps", "1").exit_code == 0
    (run,) = list(out.iterdir())
    assert not (run / OWNER_FILE).exists() and not run.name.startswith(".")


# ----------------------------------------------------------------------------- kill -9


def test_kill_9_of_a_run_takes_its_workers_along(tmp_path: Path) -> None:
    """`kill -9` runs no clean-up in the parent: the workers (and the fork server) must go by
    themselves, within a few seconds, even while the parent is an unreaped zombie."""
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "run", str(BASELINE), "--reps", "4", "--workers", "2", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, **ENV},
        start_new_session=True,
    )  # fmt: skip
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.time() + 60
        workers: list[psutil.Process] = []
        while time.time() < deadline:
            kids = parent.children(recursive=True)
            workers = [k for k in kids if "resource_tracker" not in " ".join(k.cmdline())]
            if len(workers) >= 3:  # the fork server and two workers
                break
            time.sleep(0.2)
        assert len(workers) >= 3, [k.cmdline() for k in workers]
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert alive == [], f"still running after kill -9 of the parent: {[p.pid for p in alive]}"
    finally:
        with_zombie = proc.poll()
        if with_zombie is None:
            proc.kill()
        proc.wait()
    assert not out.exists() or list(out.iterdir()) == []  # killed while simulating: nothing written


def test_date_times_are_range_checked_too(tmp_path: Path) -> None:
    f = scenario_file(
        tmp_path,
        "name: x\nincidents:\n  - {kind: helpdesk_outage, start: 2201-01-01T10:00:00, end: 2201-01-01T12:00:00}\n",
    )
    result = cli("validate", f)
    assert result.exit_code == 2 and "incidents[0]" in result.stderr and "2201-01-01" in result.stderr


# ----------------------------------------------------------------------------- make audit


def _audit_module() -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location("cxsim_audit", ROOT / ".ci" / "audit.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_audit_offline_says_so_and_passes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    audit = _audit_module()
    monkeypatch.setattr(audit, "database_reachable", lambda timeout_s=10.0: False)
    assert audit.main() == 0  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    assert "SKIPPED" in out and "not reachable" in out and "nothing was checked" in out


@pytest.mark.parametrize(
    ("deps", "code", "words"),
    [
        ([{"name": "a", "version": "1", "vulns": [{"id": "PYSEC-1", "fix_versions": ["2"]}]}], 1, "a 1: PYSEC-1 (fixed in: 2)"),
        ([{"name": "a", "version": "1", "vulns": []}, {"name": "b", "skip_reason": "x"}], 0, "0 vulnerable of 1 packages audited; not audited: b"),
        ([{"name": "b", "skip_reason": "not found"}], 0, "audited none of the packages"),
    ],
)
def test_audit_reports_from_pip_audit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], deps: list[dict[str, object]], code: int, words: str
) -> None:
    audit = _audit_module()
    monkeypatch.setattr(audit, "database_reachable", lambda timeout_s=10.0: True)
    fake = subprocess.CompletedProcess([], 0, stdout=json.dumps({"dependencies": deps}), stderr="")
    monkeypatch.setattr(audit.subprocess, "run", lambda *a, **k: fake)  # type: ignore[attr-defined]
    assert audit.main() == code  # type: ignore[attr-defined]
    assert words in capsys.readouterr().out
