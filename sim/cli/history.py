"""``cxsim calibrate``, ``synth-history`` and ``import-anonbank``: wrappers over calibration.commands.

The options are declared here (Typer needs them to build ``--help``) and the calibration package
is imported only when one of these commands runs, so the rest of the CLI never loads it. The
declarations must match :mod:`calibration.commands` exactly; tests/test_cli.py checks that the
wrapped and the original commands have the same parameters and help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def calibrate(
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
    from calibration.commands import calibrate_command

    calibrate_command(
        orders=orders, contacts=contacts, returns=returns, staffing=staffing, base=base, out=out,
        report=report, timezone=timezone, holdout_weeks=holdout_weeks, reps=reps, seed=seed,
        workers=workers, force=force, acquisition=acquisition,
    )  # fmt: skip


def synth_history(
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
    from calibration.commands import synth_history_command

    synth_history_command(
        scenario=scenario, out=out, seed=seed, days=days, mess=mess, timezone=timezone
    )


def import_anonbank(
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
    from calibration.commands import import_anonbank_command

    import_anonbank_command(csv=csv, out=out, timezone=timezone, force=force)
