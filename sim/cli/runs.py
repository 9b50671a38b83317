"""``cxsim runs``: list the stored runs of a runs folder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from sim.cli.common import RunsOpt, note, stdout


def runs_cmd(
    runs: RunsOpt = Path("runs"),
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Remove temporary folders (.tmp-*) left by runs whose process is gone "
            "(killed or crashed); folders of runs still being written are kept.",
        ),
    ] = False,
) -> None:
    """List stored runs, newest first: id, creation time (UTC), scenarios, replications, status.

    Also lists unfinished temporary folders (.tmp-*): runs being written, or left by a run that
    was killed; `--prune` removes the latter.
    """
    from sim.store import list_runs, prune_temp_folders, temp_folders

    if prune:
        for t in prune_temp_folders(runs):
            note(f"Removed {t.path} ({t.reason}).")
    infos = list_runs(runs)
    temps = temp_folders(runs)
    if temps:
        lines = [f"  {t.path.name}: {'stale, ' if t.stale else ''}{t.reason}" for t in temps]
        hint = "; remove stale ones with `cxsim runs --prune`" if any(t.stale for t in temps) else ""
        note(f"Temporary folders in {runs}{hint}:\n" + "\n".join(lines))
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
