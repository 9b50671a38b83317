"""The calibration commands through a small Typer app (as sim/cli.py registers them): outputs,
provenance, validation by the scenario loader, exit 2 with one message and nothing written on bad
input, no overwriting without --force, synth-history and import-anonbank."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from calibration.commands import calibrate_command, import_anonbank_command, synth_history_command
from calibration.schemas import read_history
from sim.loader import load_scenario, resolve_raw

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
ANONBANK = Path("/work/shared/data/anonbank_calls_one_day.csv")
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}

app = typer.Typer(add_completion=False)
app.command("calibrate")(calibrate_command)
app.command("synth-history")(synth_history_command)
app.command("import-anonbank")(import_anonbank_command)
runner = CliRunner()


def cli(*args: str | Path) -> typer.testing.Result:  # type: ignore[name-defined]
    return runner.invoke(app, [str(a) for a in args], env=ENV)


@pytest.fixture(scope="module")
def small_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The baseline, small and short: 70 days, about 150 orders a day."""
    d = tmp_path_factory.mktemp("scen")
    p = d / "small.yaml"
    p.write_text(yaml.safe_dump({
        "extends": str(ROOT / "tests" / "data" / "calibration_truth.yaml"),
        "name": "small", "horizon_days": 70,
        "demand": {"new_customers_per_day": 100.0, "initial_customers": 6000},
    }), encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def history(small_scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hist") / "h"
    res = cli("synth-history", small_scenario, "--out", out, "--seed", "3")
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def calibrated(history: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, typer.testing.Result]:  # type: ignore[name-defined]
    work = tmp_path_factory.mktemp("cal")
    out, rep = work / "calibrated.yaml", work / "report"
    res = cli("calibrate", "--orders", history / "orders.csv", "--contacts", history / "contacts.csv", "--returns", history / "returns.csv",
              "--staffing", history / "staffing.csv", "--base", BASELINE, "--out", out, "--report", rep,
              "--holdout-weeks", "2", "--reps", "1", "--workers", "1", "--seed", "5")
    return out, rep, res


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_synth_history_writes_the_documented_schemas(history: Path) -> None:
    for name in ("orders.csv", "contacts.csv", "returns.csv", "staffing.csv", "truth.json"):
        assert (history / name).is_file()
    h = read_history(*(history / f"{k}.csv" for k in ("orders", "contacts", "returns", "staffing")))
    assert h.files["orders"].duplicates_dropped > 0  # the mess: duplicate rows ...
    assert any("source_system" in n for n in h.notes)  # ... and an extra column
    text = (history / "orders.csv").read_text(encoding="utf-8")
    assert "Z," in text and "+01:00," in text  # mixed time zone forms
    truth = json.loads((history / "truth.json").read_text(encoding="utf-8"))
    assert truth["scenario"]["name"] == "small" and truth["seed"] == 3 and truth["rows"]["orders"] > 1000


def test_synth_history_without_mess(small_scenario: Path, tmp_path: Path) -> None:
    res = cli("synth-history", small_scenario, "--out", tmp_path / "clean", "--days", "20", "--no-mess", "--seed", "1")
    assert res.exit_code == 0, res.output
    h = read_history(tmp_path / "clean" / "orders.csv")
    assert h.files["orders"].duplicates_dropped == 0 and not h.files["orders"].columns_ignored
    assert "+01:00" not in (tmp_path / "clean" / "orders.csv").read_text(encoding="utf-8")


def test_synth_history_refuses_a_non_empty_folder(small_scenario: Path, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x", encoding="utf-8")
    res = cli("synth-history", small_scenario, "--out", tmp_path, "--days", "5")
    assert res.exit_code == 2 and "not empty" in res.output
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_calibrate_writes_a_valid_scenario_that_extends_the_base(calibrated: tuple[Path, Path, object], history: Path) -> None:
    out, _, res = calibrated
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    doc = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert (out.parent / doc["extends"]).resolve() == BASELINE.resolve()
    scenario = load_scenario(out)  # what `cxsim validate` does
    raw = resolve_raw(out)
    assert raw["demand"]["cac_usd"] == load_scenario(BASELINE).demand.cac_usd  # kept from the base
    truth = json.loads((history / "truth.json").read_text(encoding="utf-8"))["scenario"]
    assert str(scenario.start_date) == truth["start_date"] and scenario.horizon_days == 70
    prov = scenario.provenance
    assert prov is not None
    for kind in ("orders", "contacts", "returns", "staffing"):
        entry = prov["inputs"][kind]  # type: ignore[index]
        assert entry["sha256"] == sha(history / f"{kind}.csv")
        assert entry["rows"] == len(read_history(**{kind: history / f"{kind}.csv"}).frames()[kind])
    assert prov["date_range"]["start"] == truth["start_date"] and prov["date_range"]["days"] == 70  # type: ignore[index]
    assert prov["cxsim_version"] and prov["created"]
    # only fitted values (and the calendar) are listed, not the whole base
    assert "finance" not in doc and "experience" not in doc and "warranty" not in doc


def test_report_has_every_fitted_value_with_an_interval(calibrated: tuple[Path, Path, object]) -> None:
    _, rep, _ = calibrated
    report = json.loads((rep / "report.json").read_text(encoding="utf-8"))
    fitted = {p["path"]: p for p in report["fitted"]}
    for path in ("demand.new_customers_per_day", "repurchase.dropout_b", "contacts.reasons.wismo.probability",
                 "contacts.reasons.wismo.handle_time_min.chat", "contacts.channels.phone.patience_min", "returns.request_lag_days"):
        assert path in fitted, path
        for iv in fitted[path]["intervals"].values():
            assert iv["low"] <= iv["estimate"] <= iv["high"]
    kept = {k["path"]: k["reason"] for k in report["kept_from_base"]}
    assert "warranty.claim_probability" in kept and kept["demand.cac_usd"]
    assert report["backtest"]["weekly_mape"]["orders"]["fit"] is not None
    assert report["models"]["repurchase_comparison"]["bgnbd"]["model"] == "bgnbd"
    page = (rep / "report.html").read_text(encoding="utf-8")
    assert page.count("plotly.js v") == 1  # plotly.js inlined once
    assert "<script src=" not in page and "holdout" in page and "MAPE" in page


def test_calibrate_refuses_to_overwrite_without_force(calibrated: tuple[Path, Path, object], history: Path) -> None:
    out, rep, _ = calibrated
    before = sha(out)
    res = cli("calibrate", "--orders", history / "orders.csv", "--base", BASELINE, "--out", out, "--report", rep / "other", "--reps", "0")
    assert res.exit_code == 2 and "--force" in res.output
    assert sha(out) == before and not (rep / "other").exists()


def test_orders_only_says_what_was_not_fitted(history: Path, tmp_path: Path) -> None:
    out, rep = tmp_path / "c.yaml", tmp_path / "r"
    res = cli("calibrate", "--orders", history / "orders.csv", "--base", BASELINE, "--out", out, "--report", rep,
              "--holdout-weeks", "2", "--reps", "0")
    assert res.exit_code == 0, res.output
    report = json.loads((rep / "report.json").read_text(encoding="utf-8"))
    kept = {k["path"]: k["reason"] for k in report["kept_from_base"]}
    assert kept["contacts.reasons.wismo.probability"] == "no contacts file"
    assert kept["returns.exchange_share"] == "no returns file"
    assert report["backtest"] is None and set(report["fitted_by_file"]) == {"orders"}
    load_scenario(out)


BAD = {
    "missing column": ("order_id,customer_id,order_value\nO1,C1,5\n", "order_ts"),
    "bad timestamps": ("order_id,customer_id,order_ts,order_value\nO1,C1,2026-01-01T10:00:00Z,5\nO2,C2,not a date,5\n", "order_ts"),
    "negative values": ("order_id,customer_id,order_ts,order_value\nO1,C1,2026-01-01T10:00:00Z,-5\n", "order_value"),
    "duplicate ids": ("order_id,customer_id,order_ts,order_value\nO1,C1,2026-01-01T10:00:00Z,5\nO1,C2,2026-01-02T10:00:00Z,7\n", "order_id"),
    "unknown status": ("order_id,customer_id,order_ts,order_value,delivery_status\nO1,C1,2026-01-01T10:00:00Z,5,gone\n", "delivery_status"),
    "empty file": ("", None),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_message_and_writes_nothing(case: str, tmp_path: Path) -> None:
    text, column = BAD[case]
    bad = tmp_path / "orders.csv"
    bad.write_text(text, encoding="utf-8")
    out, rep = tmp_path / "out" / "calibrated.yaml", tmp_path / "out" / "report"
    out.parent.mkdir()
    res = cli("calibrate", "--orders", bad, "--base", BASELINE, "--out", out, "--report", rep, "--reps", "0")
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "orders.csv" in lines[0]
    if column:
        assert f"'{column}'" in lines[0]
    if case in ("bad timestamps", "negative values", "duplicate ids", "unknown status"):
        assert "line 2" in lines[0] or "line 3" in lines[0]
    assert list(out.parent.iterdir()) == []  # nothing written, no temporary leftovers


def test_a_2_gib_file_exits_2_at_once(tmp_path: Path) -> None:
    big = tmp_path / "orders.csv"
    with big.open("wb") as fh:
        fh.truncate(2 * 2**30)  # sparse
    res = cli("calibrate", "--orders", big, "--base", BASELINE, "--out", tmp_path / "c.yaml", "--report", tmp_path / "r", "--reps", "0")
    assert res.exit_code == 2 and "GiB limit" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv"]


def test_other_user_errors_exit_2(tmp_path: Path) -> None:
    res = cli("calibrate", "--base", BASELINE, "--out", tmp_path / "c.yaml", "--report", tmp_path / "r")
    assert res.exit_code == 2 and "at least one" in res.output
    res = cli("calibrate", "--orders", tmp_path / "nope.csv", "--base", BASELINE, "--out", tmp_path / "c.yaml", "--report", tmp_path / "r")
    assert res.exit_code == 2 and "nope.csv" in res.output and "not found" in res.output
    res = cli("calibrate", "--contacts", tmp_path / "x.csv", "--base", tmp_path / "missing.yaml", "--out", tmp_path / "c.yaml", "--report", tmp_path / "r")
    assert res.exit_code == 2 and "missing.yaml" in res.output
    assert list(tmp_path.iterdir()) == []


def test_help_texts() -> None:
    res = cli("calibrate", "--help")
    assert res.exit_code == 0
    for opt in ("--orders", "--contacts", "--returns", "--staffing", "--base", "--out", "--report", "--timezone", "--holdout-weeks", "--reps", "--seed", "--force"):
        assert opt in res.output
    assert "--no-mess" in cli("synth-history", "--help").output


@pytest.mark.skipif(not ANONBANK.exists(), reason="shared data not available")
def test_import_anonbank(tmp_path: Path) -> None:
    out = tmp_path / "contacts.csv"
    res = cli("import-anonbank", ANONBANK, "--out", out)
    assert res.exit_code == 0, res.output
    h = read_history(contacts=out, timezone="Asia/Jerusalem")
    c = h.contacts
    assert c is not None and len(c) == 2375 - 18 - 118  # real calls that reached an agent or the queue
    assert (c["channel"] == "phone").all() and int(c["abandoned"].sum()) == 728
    res = cli("import-anonbank", ANONBANK, "--out", out)
    assert res.exit_code == 2 and "--force" in res.output
    res = cli("import-anonbank", tmp_path / "nope.csv", "--out", tmp_path / "x.csv")
    assert res.exit_code == 2 and not (tmp_path / "x.csv").exists()


def test_containment_is_fitted_where_a_bot_channel_is_present(small_scenario: Path, tmp_path: Path) -> None:
    """With automation on, bot-contained contacts are exported with channel ``bot``; calibration
    switches automation on and fits containment per reason and the come-back share."""
    from calibration.fit import calibrate
    from calibration.synth import synth_history
    from sim.loader import deep_merge, scenario_from_dict

    raw = deep_merge(resolve_raw(small_scenario), {"automation": {"enabled": True}, "horizon_days": 84})
    truth = scenario_from_dict(raw)
    synth_history(truth, 5, tmp_path / "h", mess=True)
    h = read_history(tmp_path / "h" / "orders.csv", tmp_path / "h" / "contacts.csv")
    assert (h.contacts["channel"] == "bot").any()
    cal = calibrate(h, load_scenario(BASELINE), holdout_weeks=2)
    assert cal.overrides["automation"]["enabled"] is True
    for reason in ("wismo", "product_question"):
        p = cal.param(f"contacts.reasons.{reason}.containment")
        assert p is not None
        est, lo, hi = p.intervals["value"]
        assert lo <= truth.contacts.reasons[reason].containment <= hi, (reason, est, lo, hi)  # type: ignore[index]
    cb = cal.param("automation.contained_come_back")
    assert cb is not None and cb.intervals["value"][1] <= truth.automation.contained_come_back <= cb.intervals["value"][2]
