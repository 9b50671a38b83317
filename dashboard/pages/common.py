"""What every results page does first: turn the shared selection into a comparison or a message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import html

from dashboard import components as cx
from dashboard import data


def comparison_or_message(
    selection: Sequence[str] | None, baseline: str | None
) -> tuple[data.Comparison | None, html.Div | None]:
    """``(comparison, None)``, or ``(None, message)`` when there is nothing to show and why."""
    src = data.source()
    try:
        return src.comparison(selection, baseline), None
    except data.SelectionError as exc:
        if exc.kind == "no-runs":
            files = [str(f.path) for f in src.scenario_files() if f.ok]
            return None, cx.no_runs_message(src.runs_dir, files)
        if exc.kind == "nothing-selected":
            return None, cx.message("info", "Nothing selected", str(exc))
        return None, cx.message("error", "This selection cannot be shown", str(exc))


def page_header(title: str, *intro: Any) -> list[Any]:
    return [html.H2(title), html.P(list(intro), className="cx-intro")]
