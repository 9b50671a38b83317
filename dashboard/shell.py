"""The frame around every page: navigation, and the scenario selection all pages share.

The selection (``shell-selection``: keys of (run, scenario) pairs; ``shell-baseline``) lives
outside the page container, so it survives navigation; page callbacks take it as input.
``shell-added`` receives the keys of a finished what-if run, which join the selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash
from dash import Input, Output, State, dcc, html, no_update

from dashboard import data
from dashboard.registry import callback, triggered_id

SELECTION = "shell-selection"
BASELINE = "shell-baseline"
ADDED = "shell-added"
REFRESH = "shell-refresh"


def layout() -> html.Div:
    """The app layout (rebuilt on each full page load, so the run list is fresh)."""
    src = data.source()
    keys, base = src.default_selection()
    state = selection_state(src, keys, base)
    nav = [
        dcc.Link(
            page["name"],
            href=page["relative_path"],
            className="cx-nav-link",
            id=f"shell-nav-{page['module'].rsplit('.', 1)[-1]}",
        )
        for page in dash.page_registry.values()
    ]
    return html.Div(
        [
            dcc.Store(id=ADDED),
            html.Header(
                [
                    html.Div(
                        [
                            html.Span("cxsim", className="cx-brand"),
                            html.Span(" post-purchase scenarios", className="cx-muted"),
                        ]
                    ),
                    html.Nav(nav, className="cx-nav"),
                ],
                className="cx-header",
            ),
            html.Section(
                [
                    html.Div(
                        [
                            html.Label(
                                "Scenarios to compare (from stored runs)", htmlFor=SELECTION
                            ),
                            dcc.Dropdown(
                                id=SELECTION,
                                options=state["options"],
                                value=state["value"],
                                multi=True,
                                placeholder="No runs yet"
                                if not state["options"]
                                else "Pick scenarios…",
                                className="cx-selection",
                            ),
                        ],
                        className="cx-pick",
                    ),
                    html.Div(
                        [
                            html.Label("Baseline", htmlFor=BASELINE),
                            dcc.Dropdown(
                                id=BASELINE,
                                options=state["baseline_options"],
                                value=state["baseline"],
                                clearable=False,
                            ),
                        ],
                        className="cx-pick cx-pick-base",
                    ),
                    html.Button(
                        "Rescan runs", id=REFRESH, className="cx-button cx-secondary", n_clicks=0
                    ),
                    html.Div(state["note"], id="shell-note", className="cx-note"),
                ],
                className="cx-selection-bar",
            ),
            html.Main(dash.page_container, className="cx-main"),
        ],
        className="cx-app",
    )


def selection_state(
    src: data.DataSource,
    selection: Sequence[str] | None,
    baseline: str | None,
    added: dict[str, Any] | None = None,
    refresh: bool = False,
) -> dict[str, Any]:
    """Picker options and a valid selection: unknown keys are dropped, ``added`` keys (a finished
    what-if) are appended and its baseline chosen; the baseline falls back to a scenario named
    ``baseline``, else the first selected."""
    try:
        choices = src.choices(refresh=refresh)
    except data.SelectionError as exc:
        return {
            "options": [],
            "value": [],
            "baseline_options": [],
            "baseline": None,
            "note": str(exc),
        }
    valid = {c.key: c for c in choices if not c.disabled}
    sel = [k for k in dict.fromkeys(selection or []) if k in valid]
    if added:
        for k in added.get("keys", []):
            if k in valid and k not in sel:
                sel.append(k)
        if added.get("baseline") in sel:
            baseline = added["baseline"]
    labels = data.display_labels([valid[k] for k in sel])
    if baseline not in sel:
        named = [k for k in sel if valid[k].scenario == data.BASELINE_NAME]
        baseline = named[0] if named else (sel[0] if sel else None)
    bad = [c for c in choices if c.disabled]
    note = ""
    if not valid:
        note = "No runs yet: see the message below."
    if bad:
        note = (
            f"{len(bad)} run folder(s) cannot be read and are greyed out in the list "
            "(details under “Stored runs” on the Compare page)."
        )
    return {
        "options": [c.option() for c in choices],
        "value": sel,
        "baseline_options": [
            {"label": lab, "value": k} for k, lab in zip(sel, labels, strict=True)
        ],
        "baseline": baseline,
        "note": note,
    }


@callback(
    Output(SELECTION, "options"),
    Output(SELECTION, "value"),
    Output(BASELINE, "options"),
    Output(BASELINE, "value"),
    Output("shell-note", "children"),
    Input(REFRESH, "n_clicks"),
    Input(ADDED, "data"),
    Input(SELECTION, "value"),
    State(BASELINE, "value"),
    prevent_initial_call=True,
)
def sync_selection(
    _refresh: int | None,
    added: dict[str, Any] | None,
    selection: list[str] | None,
    baseline: str | None,
) -> tuple[Any, ...]:
    """Keep options, selection and baseline consistent (rescan, a new what-if run, a pick)."""
    trigger = triggered_id()
    st = selection_state(
        data.source(),
        selection,
        baseline,
        added=added if trigger == ADDED else None,
        refresh=trigger in (REFRESH, ADDED),
    )
    value = no_update if st["value"] == (selection or []) else st["value"]
    base = no_update if st["baseline"] == baseline else st["baseline"]
    return st["options"], value, st["baseline_options"], base, st["note"]
