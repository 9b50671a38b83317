"""``cxsim dashboard``: serve the web dashboard over a runs folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sim.cli.common import CliError, RunsOpt


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
