"""``cxsim validate`` and ``cxsim schema``: check scenario files, print their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sim.cli.common import EXIT_USER_ERROR, CliError, note


def extends_chain(path: Path) -> list[str]:
    """File names of the ``extends`` chain of a (valid) scenario file, nearest parent first."""
    from sim.loader import parse_yaml

    chain: list[str] = []
    seen = {path.resolve()}
    current = path
    while True:
        data = parse_yaml(current.read_text(encoding="utf-8"))
        parent = data.get("extends") if isinstance(data, dict) else None
        if not isinstance(parent, str):
            return chain
        current = current.parent / parent
        if current.resolve() in seen:
            return chain
        seen.add(current.resolve())
        chain.append(parent)


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
    from sim.loader import ScenarioError, load_scenario

    bad = 0
    for f in files:
        try:
            s = load_scenario(f)
        except ScenarioError as exc:
            bad += 1
            typer.echo(f"INVALID {exc}", err=True)
            continue
        chain = extends_chain(f)
        extends = f", extends {' -> '.join(chain)}" if chain else ""
        typer.echo(
            f"OK {f}: {s.name}, {s.horizon_days} days from {s.start_date}, "
            f"channels {','.join(s.contacts.channels)}, {len(s.contacts.reasons)} reasons, "
            f"{len(s.incidents)} incident(s), staffing {s.planner.mode}{extends}"
        )
    if bad:
        raise typer.Exit(EXIT_USER_ERROR)


def schema(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the schema to this file instead of printing it.", dir_okay=False
        ),
    ] = None,
) -> None:
    """Print the JSON Schema of a scenario file (for editor validation and autocompletion)."""
    from sim.scenario import Scenario

    text = json.dumps(Scenario.model_json_schema(), indent=2)
    if out is None:
        typer.echo(text)
        return
    try:
        out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
    note(f"Wrote the scenario JSON Schema to {out}")
