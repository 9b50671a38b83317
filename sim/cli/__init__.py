"""``cxsim``: the command line. A thin layer over the library (loader, experiment, summary, store).

User errors (invalid scenario files, unwritable or unknown run folders, bad option values) end in
one readable message on stderr and exit status 2; Ctrl-C ends with exit status 130. Tables and
results go to stdout, progress and notes to stderr.

One module per command group (validate, run, compare, runs, dashboard, history); each imports the
engine, the store, calibration or the dashboard inside the command, so ``cxsim --help`` and
``cxsim validate`` stay fast. Shared consoles, options, error handling and tables: ``common``.
To add a command: write its function in a module here and add one ``app.command(...)`` line below.
"""

from __future__ import annotations

import typer

from sim.cli import compare as compare_cmds
from sim.cli import dashboard as dashboard_cmds
from sim.cli import history as history_cmds
from sim.cli import plan as plan_cmds
from sim.cli import run as run_cmds
from sim.cli import runs as runs_cmds
from sim.cli import validate as validate_cmds
from sim.cli.common import Group

__all__ = ["app", "main"]

app = typer.Typer(
    cls=Group,
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

# The commands, in the order `cxsim --help` lists them: one line each.
app.command("validate")(validate_cmds.validate)
app.command("schema")(validate_cmds.schema)
app.command("run")(run_cmds.run)
app.command("plan")(plan_cmds.plan_command)
app.command("compare")(compare_cmds.compare)
app.command("calibrate")(history_cmds.calibrate)
app.command("synth-history")(history_cmds.synth_history)
app.command("import-anonbank")(history_cmds.import_anonbank)
app.command("runs")(runs_cmds.runs_cmd)
app.command("dashboard")(dashboard_cmds.dashboard)


def main() -> None:
    """Entry point (same as calling ``app``)."""
    app()
