"""What every ``cxsim`` command shares: exit codes, consoles, options, error handling, tables.

Kept light on purpose: importing this module (which ``cxsim --help`` does) pulls in neither the
engine, pandas, Dask, the dashboard nor calibration; the table helpers import the KPI definitions
when they are called.
"""

from __future__ import annotations

import math
import os
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer._click import exceptions as typer_exceptions
from typer.core import TyperGroup

from sim.formatting import BETTER, CHANGED, WORSE, format_value, verdict

if TYPE_CHECKING:
    import pandas as pd

    from sim.results import ReplicationResult
    from sim.scenario import Scenario

EXIT_BUG = 1
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
    # shown only when a scenario has subscriptions (NaN, so absent, otherwise)
    "subscribers_active_end",
    "subscriber_churn_monthly",
    "subscriber_survival_3m",
    "mrr",
    "subscriber_ltv",
)
"""Metrics shown by ``cxsim run`` / ``compare`` unless ``--all-metrics`` is given."""


class CliError(Exception):
    """A user error detected by the CLI itself; ``str()`` is the message."""


def user_errors() -> tuple[type[Exception], ...]:
    """The exception types that mean "bad input" (message and exit 2), not a bug.

    Imported here, not at module level, so that ``cxsim --help`` does not load the store (pandas,
    pyarrow); when one of them was raised its module is already imported, so this is cheap.
    """
    from sim.experiment import ExperimentError
    from sim.loader import ScenarioError
    from sim.store import StoreError

    return (ScenarioError, StoreError, ExperimentError, CliError)


_CLICK_FLOW: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    typer_exceptions.ClickException,  # usage errors: click prints them (exit 2)
)
"""Exceptions the command-line framework itself handles (exits, usage errors)."""

DEBUG_ENV = "CXSIM_DEBUG"
"""Set to 1 to get the Python traceback of an unexpected error instead of the one-line message."""


def unexpected_error_message(exc: BaseException) -> str:
    """The one message for an error that is not the user's: what happened and how to report it."""
    if isinstance(exc, MemoryError):
        return (
            "Error: out of memory. Try fewer --workers, a shorter --horizon-days or a smaller "
            "scenario (nothing was written)."
        )
    if type(exc).__name__ == "BrokenProcessPool":
        return (
            "Error: a worker process died (killed by the system, often for lack of memory); "
            "nothing was written. Try fewer --workers or a smaller scenario."
        )
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    return (
        f"Error: unexpected {type(exc).__name__}{': ' + detail if detail else ''}\n"
        "This is a bug in cxsim, not in your input: please report it with the command you ran "
        f"and its input files (run again with {DEBUG_ENV}=1 for the traceback)."
    )


class Group(TyperGroup):
    """For every command: user errors become a message and exit 2, Ctrl-C exit 130, and anything
    unexpected one message with a bug-report hint and exit 1 (never a traceback, unless
    ``CXSIM_DEBUG=1``)."""

    def invoke(self, ctx: Any) -> Any:  # click's Context (typer vendors its own click)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except _CLICK_FLOW:
            raise
        except Exception as exc:
            if isinstance(exc, user_errors()):
                typer.echo(f"Error: {exc}", err=True)
                raise typer.Exit(EXIT_USER_ERROR) from None
            if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            typer.echo(unexpected_error_message(exc), err=True)
            raise typer.Exit(EXIT_BUG) from None


def stdout() -> Console:
    """Console for tables (created per call so the terminal width and redirections are current)."""
    return Console()


def stderr() -> Console:
    return Console(stderr=True)


def note(message: str) -> None:
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
        help="Local worker processes [default: as many CPUs as the work pays for: short runs stay in-process]; 1 runs in-process.",
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
MaxMemoryOpt = Annotated[
    float | None,
    typer.Option(
        "--max-memory-gb",
        min=0.1,
        help="Memory the simulation may use, GB [default: what the machine has available]. "
        "Runs estimated to need more are refused before they start.",
        show_default=False,
    ),
]
NoLimitsOpt = Annotated[
    bool,
    typer.Option(
        "--no-limits",
        help="Skip the memory estimate check (the run may exhaust the machine's memory).",
    ),
]


# ----------------------------------------------------------------------------- tables


def fmt(value: float, unit: str, signed: bool = False) -> str:
    return format_value(value, unit, signed)


def cell(mean: float, lo: float, hi: float, unit: str, signed: bool = False) -> str:
    """``mean [lo, hi]`` in the metric's unit (the interval left out when it is undefined)."""
    text = fmt(mean, unit, signed)
    if not (math.isnan(lo) or math.isnan(hi)):
        text += f" [{fmt(lo, unit, signed)}, {fmt(hi, unit, signed)}]"
    return text


def metrics_to_show(kpis: pd.DataFrame, all_metrics: bool) -> list[str]:
    """The KPI names to print: the headline ones, or every one present (definitions first)."""
    from sim.results import METRICS

    present = kpis.dropna(subset=["value"])["metric"].unique().tolist()
    if all_metrics:
        order = [m for m in METRICS if m in present] + sorted(
            m for m in present if m not in METRICS
        )
        return order
    return [m for m in HEADLINE_METRICS if m in present]


def unit_of(metric: str) -> str:
    from sim.results import METRICS

    m = METRICS.get(metric)
    return m.unit if m else ""


def summary_table(
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
            unit = unit_of(metric)
            if (s, metric) in idx.index:
                row = idx.loc[(s, metric)]
                text = cell(row["mean"], row["ci_low"], row["ci_high"], unit)
            else:
                text = "n/a"
            table.add_row(s if i == 0 else "", metric, text, end_section=i == len(metrics) - 1)
    return table


_VERDICT_COLOUR = {BETTER: "green", WORSE: "red", CHANGED: "bold"}


def diff_style(metric: str, lo: float, hi: float) -> str:
    from sim.results import METRICS

    better = METRICS[metric].better if metric in METRICS else "neutral"
    mid = (lo + hi) / 2 if not (math.isnan(lo) or math.isnan(hi)) else math.nan
    return _VERDICT_COLOUR.get(verdict(mid, lo, hi, better), "")


def diff_table(
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
            unit = unit_of(metric)
            base_cell = fmt(base.loc[metric, "mean"], unit) if metric in base.index else "n/a"
            if (s, metric) in d.index:
                row = d.loc[(s, metric)]
                text = Text(
                    cell(row["mean_diff"], row["ci_low"], row["ci_high"], unit, signed=True),
                    style=diff_style(metric, row["ci_low"], row["ci_high"]),
                )
            else:
                text = Text("n/a")
            table.add_row(label if i == 0 else "", metric, base_cell, text, end_section=i == len(metrics) - 1)
    return table


# ----------------------------------------------------------------------------- scenarios and runs


def load_all(files: list[Path], horizon_days: int | None) -> list[tuple[Path, Scenario]]:
    """Validate every file (all errors reported together), apply the horizon override."""
    from sim.experiment import with_horizon
    from sim.loader import ScenarioError, load_scenario

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
                note(
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


def run_with_progress(
    scenarios: list[Scenario], reps: int, seed: int, workers: int | None, scheduler: str | None
) -> tuple[list[ReplicationResult], dict[str, Any]]:
    """Run the experiment with a progress bar on stderr; the results and the run's timings."""
    from sim.experiment import run_experiment

    where = (
        f"Dask scheduler {scheduler}"
        if scheduler
        else f"{workers or os.cpu_count() or 1} worker(s)"
    )
    note(
        f"Running {len(scenarios)} scenario(s) x {reps} replication(s) (seed {seed}) on {where}..."
    )
    start = time.perf_counter()
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr(),
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
    note(f"Simulated {len(results)} replication(s) in {wall:.1f} s.")
    return results, timings


# ----------------------------------------------------------------------------- limits


def available_memory_bytes() -> float | None:
    """Memory this process could still use: MemAvailable from /proc/meminfo, lowered to the
    control group's limit when there is one (containers); None when unknown (not Linux)."""
    found: list[float] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(float(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            limit = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as fh:
            current = float(fh.read().strip())
        if limit != "max":
            found.append(max(float(limit) - current, 0.0))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_limits(
    scenarios: list[Scenario],
    reps: int,
    workers: int | None,
    scheduler: str | None,
    max_memory_gb: float | None,
    no_limits: bool,
) -> None:
    """Refuse (:class:`CliError`, exit 2) an experiment too big for the engine or the memory.

    The memory check uses ``--max-memory-gb`` or the machine's available memory; it is skipped with
    ``--no-limits`` and on a Dask cluster (whose memory is not this machine's). The engine's own
    bound (customers per day) always applies."""
    from sim.limits import engine_problems, estimate, memory_problem

    footprints = [estimate(s) for s in scenarios]
    found = engine_problems(scenarios, footprints)
    if found:
        raise CliError("the run was refused before simulating:\n  " + "\n  ".join(found))
    if no_limits or scheduler is not None:
        return
    available = max_memory_gb * 2**30 if max_memory_gb is not None else available_memory_bytes()
    if available is None:
        return
    tasks = len(scenarios) * reps
    running = 1 if workers == 1 else min(workers or os.cpu_count() or 1, tasks)
    problem = memory_problem(scenarios, footprints, reps, running, available)
    if problem is not None:
        raise CliError(
            f"the run was refused before simulating:\n  {problem}\n"
            "Make the scenario smaller, use fewer --workers, or pass --max-memory-gb N or --no-limits "
            "if you know it fits (the estimate is explained in sim/limits.py)."
        )
