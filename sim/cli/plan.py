"""``cxsim plan``: the staffing plan of a scenario (required agents per interval, shifts, cost)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class Objective(StrEnum):
    service = "service"
    margin = "margin"


def _parse_grid(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"--targets must be comma-separated shares like 0.6,0.8,0.95, got {text!r}") from None
    if not values or any(not (0.0 < v < 1.0) for v in values):
        raise typer.BadParameter(f"--targets must be shares strictly between 0 and 1, got {text!r}")
    return values


@contextlib.contextmanager
def plan_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar whose label follows the planner's phase."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("planning", total=1)

        def progress(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total)

        yield progress


def plan_if_asked(scenarios: list[Any], seed: int, workers: int | None, scheduler: str | None
                  ) -> tuple[list[Any], dict[str, Any]]:
    """For ``cxsim run``: plan the scenarios with ``planner.mode: planned`` (once per distinct plan)
    and return the scenarios to simulate and the plan tables to store with the run."""
    if not any(s.planner.mode == "planned" for s in scenarios):
        return scenarios, {}
    from sim.cli.common import CliError, note
    from sim.planner.auto import plan_scenarios, plan_seed, plan_tables

    planned = [s.name for s in scenarios if s.planner.mode == "planned"]
    note(f"Planning staffing for {len(planned)} scenario(s) (planner.mode: planned): {', '.join(planned)} ...")
    started = time.perf_counter()
    try:
        with plan_progress() as progress:
            out, plans = plan_scenarios(scenarios, plan_seed(seed), workers, scheduler, progress)
    except ValueError as exc:
        raise CliError(f"the staffing plan cannot be made: {exc}") from None
    distinct = len({id(p) for p in plans.values()})
    note(f"Planned {distinct} distinct plan(s) in {time.perf_counter() - started:.1f} s.")
    return out, plan_tables(plans)


def plan_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file to plan.", dir_okay=False, show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Planned scenario file to write (YAML, extends the input).", dir_okay=False)] = Path("planned.yaml"),
    report: Annotated[Path | None, typer.Option("--report", help="Report folder: plan.parquet, shifts.csv, report.html, summary.json [default: OUT's name + _report].", file_okay=False)] = None,
    date_from: Annotated[dt.datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="First day to plan [default: the planner's window_start, else the scenario start].")] = None,
    date_to: Annotated[dt.datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day to plan, inclusive [default: window_end, else the horizon's last day].")] = None,
    objective: Annotated[Objective, typer.Option("--objective", help="service: meet each pool's service target at least cost; margin: choose the realtime pools' target (from --targets) that maximises contribution margin.")] = Objective.service,
    targets: Annotated[str, typer.Option("--targets", help="Service-target grid for --objective margin (comma-separated shares).")] = "0.6,0.7,0.8,0.9,0.95",
    eval_reps: Annotated[int, typer.Option("--eval-reps", min=2, help="Replications per target when comparing margins (--objective margin).")] = 5,
    reps: Annotated[int | None, typer.Option("--reps", min=1, help="Replications per refinement round [default: planner.replications].")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the planner's replications.")] = 20261122,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Local worker processes [default: number of CPUs].")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Dask distributed scheduler address instead of local processes.")] = None,
    horizon_days: Annotated[int | None, typer.Option("--horizon-days", min=1, max=3650, help="Override the scenario's horizon_days.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT and the report folder if they exist.")] = False,
) -> None:
    """Plan a scenario's staffing: agents required per channel and interval, shifts that cover them at
    least cost, and the simulated service the plan gives.

    Demand comes from simulating the scenario's own journey; the per-interval Erlang requirement is
    refined by simulation until every open interval (realtime channels) or day (email, social, tier 2)
    meets its target; a MILP (HiGHS) turns the requirement into shifts. Writes OUT (a valid scenario
    that extends the input, with the plan and its provenance) and a report folder. Nothing is written
    when the plan cannot be made (exit 2, with the reason).
    """
    from sim.cli.common import CliError, note
    from sim.experiment import with_horizon
    from sim.loader import ScenarioError, dump_scenario_yaml, load_scenario, scenario_from_dict

    started = time.perf_counter()
    report = report if report is not None else out.with_name(out.stem + "_report")
    for path, what in ((out, "--out"), (report, "--report")):
        if path.exists() and not force:
            raise CliError(f"{what} {path} already exists: pass --force to replace it (nothing was written)")
    if out.exists() and out.is_dir():
        raise CliError(f"--out {out} is a folder, not a file")
    if not out.resolve().parent.is_dir():
        raise CliError(f"--out {out}: the folder {out.resolve().parent} does not exist")
    s = load_scenario(scenario)
    if horizon_days is not None:
        s = with_horizon(s, horizon_days)
    updates: dict[str, Any] = {}
    if date_from is not None:
        updates["window_start"] = date_from.date()
    if date_to is not None:
        updates["window_end"] = date_to.date()
    if reps is not None:
        updates["replications"] = reps
    if updates:
        data = s.model_dump()
        data["planner"] = {**data["planner"], **updates}
        s = scenario_from_dict(data, f"{scenario} with the command-line planner options")

    from sim.planner.objective import choose_target
    from sim.planner.output import planned_file_doc, shifts_csv_frame
    from sim.planner.plan import PlanError, plan_staffing

    curve = None
    try:
        with plan_progress() as progress:
            if objective is Objective.margin:
                choice = choose_target(s, seed, seed + 1, eval_reps, _parse_grid(targets), workers=workers,
                                       scheduler=scheduler, progress=progress)
                result, curve = choice.best, choice.curve
            else:
                result = plan_staffing(s, seed, workers, scheduler, progress)
    except (PlanError, ValueError) as exc:
        if isinstance(exc, ScenarioError):
            raise
        raise CliError(f"{scenario}: the staffing plan cannot be made: {exc}") from None

    from dashboard.plan_report import plan_report_html

    rel = os.path.relpath(scenario.resolve(), out.resolve().parent)
    name = f"{s.name}_planned"
    result.provenance.update({
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "input": rel,
        "objective": objective.value,
        "command": "cxsim " + " ".join(sys.argv[1:]) if len(sys.argv) > 1 else "cxsim plan",
    })
    doc = planned_file_doc(result, rel, name)
    doc["provenance"]["planner"] = result.provenance
    header = (f"# Staffing planned by cxsim plan from {rel} on {result.provenance['created']}.\n"
              f"# Only the planned pools' staffing is listed; everything else comes from {rel}.\n")
    text = header + dump_scenario_yaml(doc)
    html = plan_report_html(result.plan, result.shifts, result.summary, curve, title=f"Staffing plan: {s.name}")
    _write_outputs(out, text, report, result, shifts_csv_frame(result.shifts), html, curve)
    _print_summary(result, curve)
    note(f"Wrote {out} and {report}/ (plan.parquet, shifts.csv, report.html) in {time.perf_counter() - started:.1f} s.")


def _write_outputs(out: Path, text: str, report: Path, result: Any, shifts_csv: Any, html: str, curve: Any) -> None:
    """Everything is written to temporary files beside the destinations and renamed at the end, so a
    failure leaves nothing half-written and an existing output is replaced only when --force was given."""
    import json

    from sim.loader import ScenarioError, load_scenario
    from sim.store import _write_parquet

    tmp_yaml = Path(tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp.yaml", dir=out.resolve().parent)[1])
    report.resolve().parent.mkdir(parents=True, exist_ok=True)
    tmp_report = Path(tempfile.mkdtemp(prefix=f".{report.name}.", suffix=".tmp", dir=report.resolve().parent))
    try:
        tmp_yaml.write_text(text, encoding="utf-8")
        final = out.resolve()
        # validate where it will live (extends is relative to the file)
        probe = final.parent / f".{final.name}.probe.yaml"
        shutil.copyfile(tmp_yaml, probe)
        try:
            load_scenario(probe)
        except ScenarioError as exc:
            raise RuntimeError(f"the planned scenario does not validate: {exc}") from None
        finally:
            probe.unlink(missing_ok=True)
        _write_parquet(result.plan, tmp_report / "plan.parquet")
        shifts_csv.to_csv(tmp_report / "shifts.csv", index=False)
        (tmp_report / "report.html").write_text(html, encoding="utf-8")
        if curve is not None:
            curve.to_csv(tmp_report / "margin_curve.csv", index=False)
        summary = {"summary": result.summary, "provenance": result.provenance, "timings_s": result.timings}
        (tmp_report / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        os.chmod(tmp_yaml, 0o644)
        os.chmod(tmp_report, 0o755)
        os.replace(tmp_yaml, out)
        if report.exists():
            shutil.rmtree(report)
        os.replace(tmp_report, report)
    except BaseException:
        tmp_yaml.unlink(missing_ok=True)
        shutil.rmtree(tmp_report, ignore_errors=True)
        raise


def _print_summary(result: Any, curve: Any) -> None:
    table = Table(title="Staffing plan: per channel", title_justify="left",
                  caption="meets target: share of open intervals (realtime) or days (backlog) at or above target, "
                  "simulated; Erlang = per-interval formula on the interval's mean rate", caption_justify="left")
    for col in ("channel", "target", "judged", "meets target\n(plan)", "meets target\n(Erlang)", "labour cost\n(plan)",
                "labour cost\n(input plan)", "agent-hours", "shifts"):
        table.add_column(col, justify="left" if col == "channel" else "right")
    for name, row in result.summary.items():
        unit = "intervals" if row["realtime"] else "days"
        table.add_row(
            name, f"{row['target']:.0%}", f"{row['judged']} {unit}", f"{row['meet_share_refined']:.1%}",
            f"{row['meet_share_erlang']:.1%}", f"${row['labor_cost_usd']:,.0f}", f"${row['labor_cost_input_usd']:,.0f}",
            f"{row['agent_hours']:,.0f}", f"{row['shifts']:,}",
        )
    console = Console()
    console.print(table)
    console.print(f"Refinement rounds: {result.iterations} ({'converged' if result.converged else 'stopped at planner.max_iterations'}).")
    if curve is not None:
        t = Table(title="Service target -> business (mean [95% CI]; paired difference from the scenario's target)",
                  title_justify="left")
        for col in ("target", "metric", "mean [95% CI]", "difference [95% CI]"):
            t.add_column(col, justify="right")
        for _, r in curve.iterrows():
            t.add_row(f"{r['target']:.0%}", r["metric"], f"{r['mean']:,.4g} [{r['ci_low']:,.4g}, {r['ci_high']:,.4g}]",
                      f"{r['diff_mean']:+,.4g} [{r['diff_low']:+,.4g}, {r['diff_high']:+,.4g}]")
        console.print(t)
