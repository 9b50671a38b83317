"""``cxsim compare``: differences of stored runs and/or scenario files from a baseline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sim.cli.common import (
    DEFAULT_REPS,
    DEFAULT_SEED,
    AllMetricsOpt,
    CliError,
    HorizonOpt,
    MaxMemoryOpt,
    NoLimitsOpt,
    RunsOpt,
    SchedulerOpt,
    WorkersOpt,
    check_limits,
    diff_table,
    load_all,
    metrics_to_show,
    note,
    run_with_progress,
    stdout,
)

if TYPE_CHECKING:
    import pandas as pd


def dedupe(parts: list[tuple[str, pd.DataFrame, dict[str, dict[str, Any]]]]) -> pd.DataFrame:
    """Combine KPI tables from several sources; a scenario name seen twice is kept once when both
    definitions agree, else the later one is renamed ``name@source``."""
    import pandas as pd

    seen: dict[str, dict[str, Any]] = {}
    frames = []
    for source, kpis, defs in parts:
        for name, grp in kpis.groupby("scenario", sort=False):
            definition = defs.get(name, {})
            if name in seen:
                if seen[name] == definition:
                    note(
                        f"note: scenario {name} from {source} is already included; using the first one"
                    )
                    continue
                new = f"{name}@{source}"
                note(
                    f"note: scenario {name} from {source} differs from the one already loaded; shown as {new}"
                )
                grp = grp.assign(scenario=new)
                name = new
            seen[name] = definition
            frames.append(grp)
    return pd.concat(frames, ignore_index=True)


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
    max_memory_gb: MaxMemoryOpt = None,
    no_limits: NoLimitsOpt = False,
) -> None:
    """Difference of each KPI from a baseline scenario, with its 95% confidence interval.

    Differences are paired (common random numbers) when both sides ran the same seed and
    replications, else unpaired (Welch). Scenario files are simulated on the fly and not stored.
    """
    from sim.store import RUN_ID_PATTERN, export_table, kpi_table, load_run
    from sim.summary import paired_differences, summarize

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
    loaded_files = load_all(files, horizon_days) if files else []
    parts: list[tuple[str, pd.DataFrame, dict[str, dict[str, Any]]]] = [
        (d.info.run_id, d.kpis, d.scenarios) for d in loaded_runs
    ]
    if loaded_files:
        first = loaded_runs[0].manifest if loaded_runs else {}
        use_seed = seed if seed is not None else int(first.get("seed", DEFAULT_SEED))
        use_reps = reps if reps is not None else int(first.get("reps", DEFAULT_REPS))
        scenarios = [s for _, s in loaded_files]
        check_limits(scenarios, use_reps, workers, scheduler, max_memory_gb, no_limits)
        results, _ = run_with_progress(scenarios, use_reps, use_seed, workers, scheduler)
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
        note(
            f"warning: the scenarios have different horizons (days): {horizons}; totals are not comparable"
        )
    kpis_all = dedupe(parts)
    names = list(dict.fromkeys(kpis_all["scenario"]))
    if baseline not in names:
        raise CliError(f"--baseline {baseline!r} is not one of the scenarios {names}")
    if len(names) < 2:
        raise CliError("nothing to compare: give at least one scenario besides the baseline")
    diffs = paired_differences(kpis_all, baseline)
    summary = summarize(kpis_all)
    metrics = metrics_to_show(kpis_all, all_metrics)
    stdout().print(diff_table(diffs, summary, metrics, baseline))
    if export is not None:
        typer.echo(f"Exported {export_table(diffs, export)}")
