"""Command functions for ``cxsim calibrate``, ``cxsim synth-history`` and ``cxsim import-anonbank``.

Plain functions with Typer annotations, registered on the ``cxsim`` app by ``sim/cli.py``. User
errors (bad or missing input files, a history the fit cannot use, an output that exists without
``--force``) end with one message on stderr and exit status 2, and nothing is written: outputs are
built in temporary files next to their destination and renamed into place only when complete.
Heavy modules are imported inside the functions so that ``cxsim --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["calibrate_command", "import_anonbank_command", "synth_history_command"]

EXIT_USER_ERROR = 2


class _UserError(Exception):
    pass


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(EXIT_USER_ERROR)


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_output_file(path: Path, force: bool, what: str) -> None:
    if path.exists() and path.is_dir():
        raise _UserError(f"{what} {path} is a folder, not a file")
    if path.exists() and not force:
        raise _UserError(f"{what} {path} already exists: pass --force to replace it (nothing was written)")
    if not path.parent.exists():
        raise _UserError(f"the folder of {what} {path} does not exist (nothing was written)")


def _check_output_dir(path: Path, force: bool, what: str) -> None:
    if path.exists() and not path.is_dir():
        raise _UserError(f"{what} {path} exists and is not a folder (nothing was written)")
    if path.exists() and any(path.iterdir()) and not force:
        raise _UserError(f"{what} {path} exists and is not empty: pass --force to replace it (nothing was written)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise _UserError(f"the folder of {what} {path} does not exist (nothing was written)")


def _umask_mode(mode: int) -> int:
    current = os.umask(0)
    os.umask(current)
    return mode & ~current


def _replace_dir(tmp: Path, dest: Path) -> None:
    """Move the finished folder ``tmp`` to ``dest``, replacing an existing ``dest`` (already allowed)."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def calibrate_command(
    orders: Annotated[Path | None, typer.Option("--orders", help="orders.csv: order_id, customer_id, order_ts, order_value (+ optional promised_delivery_date, shipped_ts, delivered_ts, delivery_status).", dir_okay=False, show_default=False)] = None,
    contacts: Annotated[Path | None, typer.Option("--contacts", help="contacts.csv: contact_id, created_ts, channel, reason (+ optional customer_id, order_id, answered_ts, abandoned, handle_time_sec, resolved, csat, wait_sec).", dir_okay=False, show_default=False)] = None,
    returns: Annotated[Path | None, typer.Option("--returns", help="returns.csv: order_id, requested_ts, outcome (+ optional reason, refunded_ts).", dir_okay=False, show_default=False)] = None,
    staffing: Annotated[Path | None, typer.Option("--staffing", help="staffing.csv: interval_start, channel, agents.", dir_okay=False, show_default=False)] = None,
    base: Annotated[Path, typer.Option("--base", help="Base scenario: everything the history does not identify keeps its value; the output extends it.", dir_okay=False)] = Path("scenarios/baseline.yaml"),
    out: Annotated[Path, typer.Option("--out", help="Calibrated scenario file to write (YAML, extends the base).", dir_okay=False)] = Path("calibrated.yaml"),
    report: Annotated[Path, typer.Option("--report", help="Folder for report.json and report.html.", file_okay=False)] = Path("calibration_report"),
    timezone: Annotated[str, typer.Option("--timezone", help="IANA time zone of timestamps without a UTC offset, and the clock (days, weekdays, hours) of the calibrated scenario. Timestamps with an offset are converted.")] = "UTC",
    holdout_weeks: Annotated[int, typer.Option("--holdout-weeks", min=0, help="Whole weeks at the end of the history left out of every fit and used to check the backtest.")] = 8,
    reps: Annotated[int, typer.Option("--reps", min=0, help="Backtest replications (0 skips the backtest; the report then has no simulated series).")] = 3,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the backtest simulations and of the bootstrap intervals.")] = 20261122,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Processes for the backtest (default: one per CPU, at most --reps).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file and report folder.")] = False,
    acquisition: Annotated[str, typer.Option("--acquisition", help="New customers: 'auto' (a closed cohort when they stop arriving in the history), 'none' (a closed cohort: none after the last first order of the fit window), 'fitted' (they keep arriving).")] = "auto",
) -> None:
    """Fit a scenario to history CSVs: orders, contacts, returns, staffing (any subset).

    What the files identify is fitted on the history before the holdout, each value with a 95%
    interval; everything else keeps the base scenario's value, and the report lists which is which
    and why. The output file *extends* the base with only the fitted values (on the history's
    calendar: start_date is its first day, horizon_days its length) and a *provenance* record (input
    SHA-256 hashes, row counts, date range, cxsim version); it passes `cxsim validate`. The report
    folder gets report.json (every fitted value, its interval and fit diagnostics) and report.html
    (simulated vs actual weekly orders, contacts by reason, handle times, returns and repeat
    purchase, with weekly MAPE on the fit window and on the holdout).

    Input problems (missing file or column, unparseable timestamps, negative values, conflicting
    duplicate ids, unknown channel/status/outcome values, files over 1 GiB) stop with one message
    naming the file, the column and example rows, exit status 2, and nothing written.
    """
    from calibration.backtest import run_backtest
    from calibration.checks import cross_file_checks
    from calibration.fit import CalibrationInputError, calibrate
    from calibration.report import write_report
    from calibration.schemas import HistoryError, read_history
    from sim import __version__
    from sim.loader import ScenarioError, dump_scenario_yaml, load_scenario

    started = time.perf_counter()
    try:
        if not any((orders, contacts, returns, staffing)):
            raise _UserError("give at least one of --orders, --contacts, --returns, --staffing")
        _check_output_file(out, force, "output file")
        _check_output_dir(report, force, "report folder")
        base_scenario = load_scenario(base)
        history = read_history(orders=orders, contacts=contacts, returns=returns, staffing=staffing, timezone=timezone)
        _note(f"Read {', '.join(f'{k} ({v.rows:,} rows)' for k, v in history.files.items())}.")
        if acquisition not in ("auto", "none", "fitted"):
            raise _UserError(f"--acquisition must be auto, none or fitted, got {acquisition!r}")
        findings = cross_file_checks(history)
        for finding in findings:
            _note(f"Warning: data check: {finding.text()}")
        cal = calibrate(history, base_scenario, holdout_weeks=holdout_weeks, seed=seed, acquisition=acquisition, findings=findings)
    except (_UserError, HistoryError, CalibrationInputError, ScenarioError) as exc:
        _fail(str(exc))
        return
    t_fit = time.perf_counter() - started
    for w in cal.warnings:
        if not w.startswith("data check: "):
            _note(f"Warning: {w}")
    _note(f"Fitted {len(cal.params)} parameter(s) in {t_fit:.1f} s; {len(cal.kept)} kept from the base.")
    bt = None
    if reps > 0:
        _note(f"Backtest: simulating {reps} replication(s) of {cal.window.days} days ...")
        bt = run_backtest(cal.scenario, cal.prepared, timezone, reps=reps, seed=seed, workers=workers)
    provenance: dict[str, Any] = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cxsim_version": __version__,
        "command": "cxsim calibrate " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 and sys.argv[1] == "calibrate" else "cxsim calibrate",
        "base": os.path.relpath(base.resolve(), out.resolve().parent),
        "base_sha256": _sha256(base),
        "inputs": {k: {"file": v["path"], "sha256": v["sha256"], "rows": v["rows"], "rows_read": v["rows_read"],
                       "exact_duplicates_dropped": v["exact_duplicates_dropped"], "first": v["first"], "last": v["last"]}
                   for k, v in cal.inputs.items()},
        "date_range": cal.window.to_dict(),
        "timezone": timezone,
        "holdout_weeks": holdout_weeks,
        "seed": seed,
        "backtest_reps": reps,
    }
    doc: dict[str, Any] = {"extends": provenance["base"]}
    doc.update({k: v for k, v in cal.overrides.items()})
    doc["provenance"] = provenance
    header = (
        f"# Calibrated by cxsim {__version__} on {provenance['created']} from {', '.join(cal.inputs)}.\n"
        f"# Only fitted values are listed; everything else comes from {provenance['base']} (see {report}/report.html).\n"
    )
    text = header + dump_scenario_yaml(doc)
    out_dir = out.resolve().parent
    tmp_yaml = Path(tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp.yaml", dir=out_dir)[1])
    report_parent = report.resolve().parent
    tmp_report = Path(tempfile.mkdtemp(prefix=f".{report.name}.", suffix=".tmp", dir=report_parent))
    try:
        tmp_yaml.write_text(text, encoding="utf-8")
        try:
            load_scenario(tmp_yaml)
        except ScenarioError as exc:  # a bug, not a user error: never leave an invalid file
            raise RuntimeError(f"the calibrated scenario does not validate: {exc}") from None
        write_report(cal, bt, tmp_report, provenance)
        os.chmod(tmp_yaml, _umask_mode(0o666))
        os.chmod(tmp_report, _umask_mode(0o777))
        for f in tmp_report.iterdir():
            os.chmod(f, _umask_mode(0o666))
        os.replace(tmp_yaml, out)
        _replace_dir(tmp_report, report)
    except BaseException:
        tmp_yaml.unlink(missing_ok=True)
        shutil.rmtree(tmp_report, ignore_errors=True)
        raise
    if bt is not None:
        e = bt.errors.get("contacts") or bt.errors.get("orders") or {}
        which = "contacts" if "contacts" in bt.errors else "orders"
        if e:
            _note(f"Backtest weekly MAPE ({which}): fit {_pct(e.get('fit'))}, holdout {_pct(e.get('holdout'))}.")
        if bt.hour_profile:
            _note(f"Backtest contact hour profile (total variation distance): fit {_pct(bt.hour_profile.get('fit'))}, "
                  f"holdout {_pct(bt.hour_profile.get('holdout'))}.")
    _note(f"Wrote {out} and {report}/report.json, {report}/report.html in {time.perf_counter() - started:.1f} s.")


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def synth_history_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file to simulate.", dir_okay=False, show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Folder to create (must not exist or be empty).", file_okay=False, show_default=False)],
    seed: Annotated[int, typer.Option("--seed", min=0, help="Simulation seed.")] = 20261122,
    days: Annotated[int | None, typer.Option("--days", min=1, help="Simulate this many days instead of the scenario's horizon.", show_default=False)] = None,
    mess: Annotated[bool, typer.Option("--mess/--no-mess", help="Make the files look like real exports (missing optional values, duplicate rows, mixed time zone forms, letter-case changes, an extra column).")] = True,
    timezone: Annotated[str, typer.Option("--timezone", help="Time zone of the scenario clock, used for naive timestamps and offsets.")] = "UTC",
) -> None:
    """Write realistic history generated by the model from known parameters.

    Simulates the scenario once with event tables and writes orders.csv, contacts.csv, returns.csv
    and staffing.csv in the schemas `cxsim calibrate` reads, plus truth.json (the resolved scenario,
    the seed and realised totals) for recovery tests. The export is taken at the end of the horizon
    (parcels in transit have no delivery time yet). The folder is written completely or not at all.
    """
    from calibration.schemas import check_timezone
    from calibration.synth import SynthError, synth_history
    from sim.loader import ScenarioError, load_scenario

    try:
        check_timezone(timezone)
        _check_output_dir(out, False, "output folder")
        s = load_scenario(scenario)
        _note(f"Simulating {days or s.horizon_days} days of {s.name} (seed {seed}) ...")
        res = synth_history(s, seed, out, mess=mess, days=days, timezone=timezone)
    except (_UserError, SynthError, ScenarioError, ValueError) as exc:
        _fail(str(exc))
        return
    rows = ", ".join(f"{k}.csv {v:,} rows" for k, v in res["rows"].items())
    _note(f"Wrote {out}: {rows}, truth.json.")


def import_anonbank_command(
    csv: Annotated[Path, typer.Argument(help="The Anonymous Bank call log (one day, call level).", dir_okay=False, show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="contacts.csv to write.", dir_okay=False, show_default=False)],
    timezone: Annotated[str, typer.Option("--timezone", help="Time zone of the log's clock times.")] = "Asia/Jerusalem",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
) -> None:
    """Convert the Anonymous Bank call-centre log into contacts.csv for `cxsim calibrate --contacts`.

    One contact per call that reached an agent or the queue (phantom calls and hang-ups in the voice
    menu are dropped): channel phone, reason bank_<service type>, created at queue entry, answered
    after the queue wait, abandoned for hang-ups from the queue, handle_time_sec the service time, and
    wait_sec the time in queue (so patience can be fitted with answered calls as censored). The bank's
    service types are not scenario reasons: calibration uses them for phone-level fits (handle time,
    patience, hour profile). Mapping details: calibration/anonbank.py.
    """
    from calibration.anonbank import anonbank_to_contacts, read_anonbank_csv
    from calibration.schemas import check_timezone

    try:
        check_timezone(timezone)
        _check_output_file(out, force, "output file")
        if not csv.is_file():
            raise _UserError(f"{csv}: file not found")
        try:
            raw = read_anonbank_csv(csv)
            contacts = anonbank_to_contacts(raw, tz=timezone)
        except (ValueError, KeyError) as exc:
            raise _UserError(f"{csv}: {exc}") from None
    except _UserError as exc:
        _fail(str(exc))
        return
    tmp = Path(tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.resolve().parent)[1])
    try:
        contacts.to_csv(tmp, index=False)
        os.chmod(tmp, _umask_mode(0o666))
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    counts = contacts.attrs.get("counts", {})
    _note(f"Wrote {out}: {len(contacts):,} contacts ({counts.get('served', '?')} served, {counts.get('abandoned_from_queue', '?')} abandoned; "
          f"{counts.get('dropped', '?')} rows dropped: phantom calls and voice-menu hang-ups).")
