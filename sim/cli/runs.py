"""``cxsim runs``: list the stored runs of a runs folder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from sim.cli.common import RunsOpt, stdout


def runs_cmd(runs: RunsOpt = Path("runs")) -> None:
    """List stored runs, newest first: id, creation time (UTC), scenarios, replications, status."""
    from sim.store import list_runs

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
    stdout().print(table)
