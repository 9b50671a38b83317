"""``cxsim``: the command line. A thin layer over the library (loader, experiment, summary, store).

User errors (invalid scenario files, unwritable or unknown run folders, bad option values) end in
one readable message on stderr and exit status 2; Ctrl-C ends with exit status 130. Tables and
results go to stdout, progress and notes to stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from calibration.commands import calibrate_command, import_anonbank_command, synth_history_command
from sim.experiment import ExperimentError, run_experiment, with_horizon
from sim.formatting import BETTER, CHANGED, WORSE, format_value, verdict
from sim.loader import ScenarioError, load_scenario
from sim.results import METRICS
from sim.scenario import Scenario
from sim.store import (
    RUN_ID_PATTERN,
    StoreError,
    check_writable,
    export_table,
    list_runs,
    load_run,
    write_run,
)
from sim.summary import paired_differences, summarize

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
DEFAULT_SEED = 20261122
DEFAULT_REPS = 5

HEADLINE_METRICS: tuple[str, ...] = (
    "orders",
    "revenue",
    "contacts_per_order",
    "containment_rate",
    "service_level_chat",
    "service_level_phone",
    "service_level_email",
    "abandonment_rate_phone",
    "csat",
    "nps",
    "late_delivery_rate",
    "return_rate",
    "repeat_rate_90d",
    "churn_rate_monthly",
    "cost_to_serve_per_order",
    "contribution_margin",
    "ltv_12m",
    "ltv_payback_months",
)
"""Metrics shown by ``cxsim run`` / ``compare`` unless ``--all-metrics`` is given."""


class CliError(Exception):
    """A user error detected by the CLI itself; ``str()`` is the message."""


USER_ERRORS: tuple[type[Exception], ...] = (ScenarioError, StoreError, ExperimentError, CliError)


class _Group(TyperGroup):
    """Turns user errors into a message and exit 2, and Ctrl-C into exit 130, for every command."""

    def invoke(self, ctx: Any) -> Any:  # click's Context (typer vendors its own click)
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(
    cls=_Group,
    name="cxsim",
    help=(
        "Simulate an ecommerce brand's post-purchase operation (delivery, support, returns, loyalty, "
        "repurchase) and compare scenarios. Scenario files are YAML; runs are stored as Parquet in a "
        "runs folder."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _stdout() -> Console:
    """Console for tables (created per call so the terminal width and redirections are current)."""
    return Console()


def _stderr() -> Console:
    return Console(stderr=True)


def _note(message: str) -> None:
    typer.echo(message, err=True)


class ExportFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


# ----------------------------------------------------------------------------- shared options

RunsOpt = Annotated[
    Path,
    typer.Option(
        "--runs", help="Folder holding stored runs (one sub-folder per run).", file_okay=False
    ),
]
RepsOpt = Annotated[
    int,
    typer.Option("--reps", min=1, help="Replications per scenario (independent random streams)."),
]
SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed",
        min=0,
        help="Experiment seed. The same seed gives the same numbers, and common random numbers across scenarios.",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Local worker processes [default: number of CPUs]; 1 runs in-process.",
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Run on a Dask distributed cluster at this scheduler address (e.g. tcp://10.0.0.5:8786) "
        "instead of local processes.",
    ),
]
HorizonOpt = Annotated[
    int | None,
    typer.Option(
        "--horizon-days",
        min=1,
        max=3650,
        help="Override every scenario's horizon_days (days simulated); incidents after the new end are dropped.",
    ),
]
AllMetricsOpt = Annotated[
    bool, typer.Option("--all-metrics", help="Show every KPI instead of the headline ones.")
]


# ----------------------------------------------------------------------------- helpers


def _extends_chain(path: Path) -> list[str]:
    """File names of the ``extends`` chain of a (valid) scenario file, nearest parent first."""
    chain: list[str] = []
    seen = {path.resolve()}
    current = path
    while True:
        data = yaml.safe_load(current.read_text(encoding="utf-8"))
        parent = data.get("extends") if isinstance(data, dict) else None
        if not isinstance(parent, str):
            return chain
        current = current.parent / parent
        if current.resolve() in seen:
            return chain
        seen.add(current.resolve())
        chain.append(parent)


def _load_all(files: list[Path], horizon_days: int | None) -> list[tuple[Path, Scenario]]:
    """Validate every file (all errors reported together), apply the horizon override."""
    loaded: list[tuple[Path, Scenario]] = []
    errors: list[str] = []
    for f in files:
        try:
            loaded.append((f, load_scenario(f)))
        except ScenarioError as exc:
            errors.append(str(exc))
    if errors:
        raise CliError("invalid scenario file(s), nothing was run:\n" + "\n".join(errors))
    if horizon_days is not None:
        out = []
        for f, s in loaded:
            shorter = with_horizon(s, horizon_days)
            dropped = len(s.incidents) - len(shorter.incidents)
            if dropped:
                _note(
                    f"note: {f}: {dropped} incident(s) start after day {horizon_days} and are left out"
                )
            out.append((f, shorter))
        loaded = out
    names = [s.name for _, s in loaded]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CliError(
            f"two files define the same scenario name {dupes}; scenario names must be unique"
        )
    return loaded


def _run_with_progress(
    scenarios: list[Scenario], reps: int, seed: int, workers: int | None, scheduler: str | None
) -> tuple[list[Any], dict[str, Any]]:
    where = (
        f"Dask scheduler {scheduler}"
        if scheduler
        else f"{workers or os.cpu_count() or 1} worker(s)"
    )
    _note(
        f"Running {len(scenarios)} scenario(s) x {reps} replication(s) (seed {seed}) on {where}..."
    )
    start = time.perf_counter()
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_stderr(),
        transient=True,
    ) as bar:
        task = bar.add_task("simulating", total=len(scenarios) * reps)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        results = run_experiment(
            scenarios, reps=reps, seed=seed, workers=workers, scheduler=scheduler, progress=progress
        )
    wall = time.perf_counter() - start
    per_rep: dict[str, float] = {}
    for r in results:
        for key, value in (r.timings or {}).items():
            if isinstance(value, int | float):
                per_rep[key] = per_rep.get(key, 0.0) + float(value)
    timings = {
        "wall_s": round(wall, 3),
        "workers": None if scheduler else (workers or os.cpu_count() or 1),
        "scheduler": scheduler,
        "replications": len(results),
        "replication_timings_sum_s": per_rep,
    }
    _note(f"Simulated {len(results)} replication(s) in {wall:.1f} s.")
    return results, timings


def _fmt(value: float, unit: str, signed: bool = False) -> str:
    return format_value(value, unit, signed)


def _cell(mean: float, lo: float, hi: float, unit: str, signed: bool = False) -> str:
    text = _fmt(mean, unit, signed)
    if not (math.isnan(lo) or math.isnan(hi)):
        text += f" [{_fmt(lo, unit, signed)}, {_fmt(hi, unit, signed)}]"
    return text


def _metrics_to_show(kpis: pd.DataFrame, all_metrics: bool) -> list[str]:
    present = kpis.dropna(subset=["value"])["metric"].unique().tolist()
    if all_metrics:
        order = [m for m in METRICS if m in present] + sorted(
            m for m in present if m not in METRICS
        )
        return order
    return [m for m in HEADLINE_METRICS if m in present]


def _unit(metric: str) -> str:
    m = METRICS.get(metric)
    return m.unit if m else ""


def _summary_table(
    summary: pd.DataFrame, metrics: list[str], scenarios: list[str], reps_note: str
) -> Table:
    """Long format (one row per scenario and metric) so it stays readable with many scenarios."""
    table = Table(title=f"KPIs: mean [95% CI] {reps_note}", title_justify="left")
    table.add_column("scenario", no_wrap=True, style="bold")
    table.add_column("metric", no_wrap=True)
    table.add_column("mean [95% CI]", justify="right")
    idx = summary.set_index(["scenario", "metric"])
    for s in scenarios:
        for i, metric in enumerate(metrics):
            unit = _unit(metric)
            if (s, metric) in idx.index:
                row = idx.loc[(s, metric)]
                cell = _cell(row["mean"], row["ci_low"], row["ci_high"], unit)
            else:
                cell = "n/a"
            table.add_row(s if i == 0 else "", metric, cell, end_section=i == len(metrics) - 1)
    return table


_VERDICT_COLOUR = {BETTER: "green", WORSE: "red", CHANGED: "bold"}


def _diff_style(metric: str, lo: float, hi: float) -> str:
    better = METRICS[metric].better if metric in METRICS else "neutral"
    mid = (lo + hi) / 2 if not (math.isnan(lo) or math.isnan(hi)) else math.nan
    return _VERDICT_COLOUR.get(verdict(mid, lo, hi, better), "")


def _diff_table(
    diffs: pd.DataFrame, summary: pd.DataFrame, metrics: list[str], baseline: str
) -> Table:
    """Long format: one row per scenario and metric with the baseline's mean beside the difference."""
    scenarios = list(dict.fromkeys(diffs["scenario"]))
    table = Table(
        title=f"Difference from {baseline}: scenario - baseline [95% CI]",
        title_justify="left",
        caption="green/red: significantly better/worse at 95%; paired = common random numbers, "
        "unpaired = Welch",
        caption_justify="left",
    )
    table.add_column("scenario", no_wrap=True, style="bold")
    table.add_column("metric", no_wrap=True)
    table.add_column(f"{baseline} mean", justify="right")
    table.add_column("difference [95% CI]", justify="right")
    base = summary[summary["scenario"] == baseline].set_index("metric")
    d = diffs.set_index(["scenario", "metric"])
    for s in scenarios:
        paired = bool(diffs.loc[diffs["scenario"] == s, "paired"].all())
        label = f"{s}\n({'paired' if paired else 'unpaired'})"
        for i, metric in enumerate(metrics):
            unit = _unit(metric)
            base_cell = _fmt(base.loc[metric, "mean"], unit) if metric in base.index else "n/a"
            if (s, metric) in d.index:
                row = d.loc[(s, metric)]
                cell = Text(
                    _cell(row["mean_diff"], row["ci_low"], row["ci_high"], unit, signed=True),
                    style=_diff_style(metric, row["ci_low"], row["ci_high"]),
                )
            else:
                cell = Text("n/a")
            table.add_row(label if i == 0 else "", metric, base_cell, cell, end_section=i == len(metrics) - 1)
    return table


# ----------------------------------------------------------------------------- commands


@app.command()
def validate(
    files: Annotated[
        list[Path],
        typer.Argument(help="Scenario YAML file(s) to check.", metavar="FILE", show_default=False),
    ],
) -> None:
    """Check scenario files: YAML syntax, extends chain, unknown keys, types and value ranges.

    Prints one summary line per valid file; for an invalid one, the file, the key path and the
    reason. Exit status 0 when all are valid, 2 otherwise.
    """
    bad = 0
    for f in files:
        try:
            s = load_scenario(f)
        except ScenarioError as exc:
            bad += 1
            typer.echo(f"INVALID {exc}", err=True)
            continue
        chain = _extends_chain(f)
        extends = f", extends {' -> '.join(chain)}" if chain else ""
        typer.echo(
            f"OK {f}: {s.name}, {s.horizon_days} days from {s.start_date}, "
            f"channels {','.join(s.contacts.channels)}, {len(s.contacts.reasons)} reasons, "
            f"{len(s.incidents)} incident(s){extends}"
        )
    if bad:
        raise typer.Exit(EXIT_USER_ERROR)


@app.command()
def schema(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the schema to this file instead of printing it.", dir_okay=False
        ),
    ] = None,
) -> None:
    """Print the JSON Schema of a scenario file (for editor validation and autocompletion)."""
    text = json.dumps(Scenario.model_json_schema(), indent=2)
    if out is None:
        typer.echo(text)
        return
    try:
        out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
    _note(f"Wrote the scenario JSON Schema to {out}")


@app.command()
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
) -> None:
    """Simulate scenario files (replications in parallel), store the run and print the KPI table.

    All files are validated first; if any is invalid nothing runs (exit 2). The run is written to
    OUT/RUN_ID/ (manifest.json, Parquet tables, resolved scenarios). Each KPI is shown as its
    mean [95% CI] per scenario, then each scenario's paired difference from the baseline.
    """
    loaded = _load_all(files, horizon_days)
    scenarios = [s for _, s in loaded]
    names = [s.name for s in scenarios]
    base = baseline or names[0]
    if base not in names:
        raise CliError(f"--baseline {base!r} is not one of the scenarios {names}")
    check_writable(out)
    try:
        results, timings = _run_with_progress(scenarios, reps, seed, workers, scheduler)
        path = write_run(
            out, results, {s.name: s for s in scenarios}, seed=seed, reps=reps, timings=timings
        )
    except KeyboardInterrupt:
        _note("Interrupted: no run was written.")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    typer.echo(f"Run {path.name} written to {path}")

    data = load_run(out, path.name)
    summary = data.summary
    metrics = _metrics_to_show(data.kpis, all_metrics)
    _stdout().print(_summary_table(summary, metrics, names, f"over {reps} replication(s)"))
    diffs = paired_differences(data.kpis, base) if len(names) > 1 else None
    if diffs is not None:
        _stdout().print(_diff_table(diffs, summary, metrics, base))
    if export is not None:
        written = [export_table(summary, path / f"kpi_summary.{export.value}")]
        if diffs is not None:
            written.append(export_table(diffs, path / f"kpi_differences.{export.value}"))
        typer.echo("Exported " + ", ".join(str(p) for p in written))


def _dedupe(parts: list[tuple[str, pd.DataFrame, dict[str, dict[str, Any]]]]) -> pd.DataFrame:
    """Combine KPI tables from several sources; a scenario name seen twice is kept once when both
    definitions agree, else the later one is renamed ``name@source``."""
    seen: dict[str, dict[str, Any]] = {}
    frames = []
    for source, kpis, defs in parts:
        for name, grp in kpis.groupby("scenario", sort=False):
            definition = defs.get(name, {})
            if name in seen:
                if seen[name] == definition:
                    _note(
                        f"note: scenario {name} from {source} is already included; using the first one"
                    )
                    continue
                new = f"{name}@{source}"
                _note(
                    f"note: scenario {name} from {source} differs from the one already loaded; shown as {new}"
                )
                grp = grp.assign(scenario=new)
                name = new
            seen[name] = definition
            frames.append(grp)
    return pd.concat(frames, ignore_index=True)


@app.command()
def compare(
    items: Annotated[
        list[str],
        typer.Argument(
            help="Run ids (stored in --runs) and/or scenario files (simulated now).",
            metavar="RUN_OR_SCENARIO",
            show_default=False,
        ),
    ],
    baseline: Annotated[
        str, typer.Option("--baseline", help="Scenario name to compare against (required).")
    ],
    runs: RunsOpt = Path("runs"),
    reps: Annotated[
        int | None,
        typer.Option(
            "--reps",
            min=1,
            help="Replications for scenario files [default: the first run's, else 5].",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            help=f"Seed for scenario files [default: the first run's, so results pair with it; else {DEFAULT_SEED}].",
        ),
    ] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    horizon_days: HorizonOpt = None,
    all_metrics: AllMetricsOpt = False,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            help="Write the difference table to this .csv or .parquet file.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Difference of each KPI from a baseline scenario, with its 95% confidence interval.

    Differences are paired (common random numbers) when both sides ran the same seed and
    replications, else unpaired (Welch). Scenario files are simulated on the fly and not stored.
    """
    if export is not None and export.suffix.lower() not in (".csv", ".parquet"):
        raise CliError(f"--export {export}: the file name must end in .csv or .parquet")
    run_items: list[str] = []
    files: list[Path] = []
    for item in items:
        if RUN_ID_PATTERN.fullmatch(item) and not Path(item).is_file():
            run_items.append(item)
        elif Path(item).suffix.lower() in (".yaml", ".yml") or Path(item).is_file():
            files.append(Path(item))
        else:
            raise CliError(f"{item}: neither a run id (YYYYmmdd-HHMMSS-xxxxxx) nor a scenario file")
    loaded_runs = [load_run(runs, r) for r in run_items]
    loaded_files = _load_all(files, horizon_days) if files else []
    parts: list[tuple[str, pd.DataFrame, dict[str, dict[str, Any]]]] = [
        (d.info.run_id, d.kpis, d.scenarios) for d in loaded_runs
    ]
    if loaded_files:
        first = loaded_runs[0].manifest if loaded_runs else {}
        use_seed = seed if seed is not None else int(first.get("seed", DEFAULT_SEED))
        use_reps = reps if reps is not None else int(first.get("reps", DEFAULT_REPS))
        scenarios = [s for _, s in loaded_files]
        results, _ = _run_with_progress(scenarios, use_reps, use_seed, workers, scheduler)
        from sim.store import kpi_table

        kpis = kpi_table(results)
        for (f, s), (name, grp) in zip(
            loaded_files, kpis.groupby("scenario", sort=False), strict=True
        ):
            parts.append((f.stem, grp, {name: s.model_dump(mode="json")}))
    horizons = {
        name: d.get("horizon_days")
        for _, _, defs in parts
        for name, d in defs.items()
        if isinstance(d, dict)
    }
    if len(set(horizons.values())) > 1:
        _note(
            f"warning: the scenarios have different horizons (days): {horizons}; totals are not comparable"
        )
    kpis_all = _dedupe(parts)
    names = list(dict.fromkeys(kpis_all["scenario"]))
    if baseline not in names:
        raise CliError(f"--baseline {baseline!r} is not one of the scenarios {names}")
    if len(names) < 2:
        raise CliError("nothing to compare: give at least one scenario besides the baseline")
    diffs = paired_differences(kpis_all, baseline)
    summary = summarize(kpis_all)
    metrics = _metrics_to_show(kpis_all, all_metrics)
    _stdout().print(_diff_table(diffs, summary, metrics, baseline))
    if export is not None:
        typer.echo(f"Exported {export_table(diffs, export)}")


app.command("calibrate")(calibrate_command)
app.command("synth-history")(synth_history_command)
app.command("import-anonbank")(import_anonbank_command)


@app.command("runs")
def runs_cmd(runs: RunsOpt = Path("runs")) -> None:
    """List stored runs, newest first: id, creation time (UTC), scenarios, replications, status."""
    infos = list_runs(runs)
    if not infos:
        typer.echo(f"No runs in {runs}.")
        return
    table = Table(title=f"Runs in {runs}", title_justify="left")
    for col in ("run id", "created (UTC)", "scenarios", "reps", "seed", "status"):
        table.add_column(col, overflow="fold")
    for info in infos:
        created = (
            info.created.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if info.created else ""
        )
        status = (
            Text("ok", style="green")
            if info.ok
            else Text(f"{info.status}: {info.message}", style="red")
        )
        table.add_row(
            info.run_id,
            created,
            Text(", ".join(info.scenarios)),
            "" if info.reps is None else str(info.reps),
            "" if info.seed is None else str(info.seed),
            status,
        )
    _stdout().print(table)


@app.command()
def dashboard(
    runs: RunsOpt = Path("runs"),
    scenarios: Annotated[
        Path,
        typer.Option(
            "--scenarios",
            help="Folder of scenario files offered in the dashboard.",
            file_okay=False,
        ),
    ] = Path("scenarios"),
    host: Annotated[
        str,
        typer.Option("--host", help="Interface to listen on; 0.0.0.0 exposes it to the network."),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")
    ] = 8050,
) -> None:
    """Serve the web dashboard that compares stored runs (Ctrl-C stops it)."""
    try:
        from dashboard.app import create_app
    except ImportError as exc:
        raise CliError(f"the dashboard is not available: {exc}") from None
    web = create_app(runs_dir=runs, scenarios_dir=scenarios)
    typer.echo(f"Dashboard on http://{host}:{port}/ (runs from {runs}; Ctrl-C to stop)")
    try:
        web.run(host=host, port=port, debug=False)
    except KeyboardInterrupt:
        typer.echo("Dashboard stopped.", err=True)


def main() -> None:
    """Entry point (same as calling ``app``)."""
    app()


if __name__ == "__main__":
    main()
