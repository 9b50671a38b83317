"""``cxsim run``: simulate scenario files, store the run, print the KPI tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sim.cli.common import (
    DEFAULT_REPS,
    DEFAULT_SEED,
    EXIT_INTERRUPTED,
    AllMetricsOpt,
    CliError,
    ExportFormat,
    HorizonOpt,
    MaxMemoryOpt,
    NoLimitsOpt,
    RepsOpt,
    SchedulerOpt,
    SeedOpt,
    WorkersOpt,
    check_limits,
    diff_table,
    load_all,
    metrics_to_show,
    note,
    run_with_progress,
    stdout,
    summary_table,
)


def run(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Scenario YAML file(s) to simulate.", metavar="FILE", show_default=False
        ),
    ],
    reps: RepsOpt = DEFAULT_REPS,
    seed: SeedOpt = DEFAULT_SEED,
    out: Annotated[
        Path, typer.Option("--out", help="Folder where the run folder is created.", file_okay=False)
    ] = Path("runs"),
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    horizon_days: HorizonOpt = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Scenario name the others are compared with [default: the first file's].",
        ),
    ] = None,
    all_metrics: AllMetricsOpt = False,
    export: Annotated[
        ExportFormat | None,
        typer.Option(
            "--export",
            help="Also write the KPI tables into the run folder in this format: kpi_summary "
            "(mean, CI, sd, n per scenario and KPI) and kpi_differences (differences from the baseline).",
        ),
    ] = None,
    max_memory_gb: MaxMemoryOpt = None,
    no_limits: NoLimitsOpt = False,
) -> None:
    """Simulate scenario files (replications in parallel), store the run and print the KPI table.

    All files are validated first; if any is invalid nothing runs (exit 2), nor when the run's
    estimated memory (customers, orders and contacts the scenarios imply) exceeds what is available
    (override with --max-memory-gb or --no-limits). The run is written to
    OUT/RUN_ID/ (manifest.json, Parquet tables, resolved scenarios). Each KPI is shown as its
    mean [95% CI] per scenario, then each scenario's paired difference from the baseline.

    A scenario with `planner: {mode: planned}` is staffed by the planner first (as `cxsim plan`
    does, on its own seeds), so scenarios are compared at equal service targets; the plans are
    stored in the run as plan.parquet and shifts.parquet.
    """
    from sim.cli.plan import plan_if_asked
    from sim.store import check_writable, export_table, load_run, write_run
    from sim.summary import paired_differences

    loaded = load_all(files, horizon_days)
    scenarios = [s for _, s in loaded]
    names = [s.name for s in scenarios]
    base = baseline or names[0]
    if base not in names:
        raise CliError(f"--baseline {base!r} is not one of the scenarios {names}")
    check_limits(scenarios, reps, workers, scheduler, max_memory_gb, no_limits)
    check_writable(out)
    try:
        scenarios, plan_tables = plan_if_asked(scenarios, seed, workers, scheduler)
        results, timings = run_with_progress(scenarios, reps, seed, workers, scheduler)
        path = write_run(
            out, results, {s.name: s for s in scenarios}, seed=seed, reps=reps, timings=timings,
            extra_tables=plan_tables,
        )
    except KeyboardInterrupt:
        note("Interrupted: no run was written.")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    typer.echo(f"Run {path.name} written to {path}")

    data = load_run(out, path.name)
    summary = data.summary
    metrics = metrics_to_show(data.kpis, all_metrics)
    stdout().print(summary_table(summary, metrics, names, f"over {reps} replication(s)"))
    diffs = paired_differences(data.kpis, base) if len(names) > 1 else None
    if diffs is not None:
        stdout().print(diff_table(diffs, summary, metrics, base))
    if export is not None:
        written = [export_table(summary, path / f"kpi_summary.{export.value}")]
        if diffs is not None:
            written.append(export_table(diffs, path / f"kpi_differences.{export.value}"))
        typer.echo("Exported " + ", ".join(str(p) for p in written))
