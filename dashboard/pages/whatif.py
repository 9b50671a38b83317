"""What-if: edit levers of a shipped scenario, run it in the background, add it to the comparison,
or save it as YAML."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, dcc, html, no_update

from dashboard import components as cx
from dashboard import data
from dashboard import whatif as wi
from dashboard.pages.common import page_header
from dashboard.registry import callback
from dashboard.shell import ADDED
from sim.loader import ScenarioError, load_scenario

PATH = "/what-if"
NAME = "What-if"

_POOL_LABELS = {
    "chat": "Chat",
    "email": "Email",
    "phone": "Phone",
    "social": "Social",
    "tier2": "Tier 2",
}
FORM_STATES = [
    ("scenario", State("whatif-scenario", "value")),
    ("name", State("whatif-name", "value")),
    *[(f"staff_{p}", State(f"whatif-staff-{p}", "value")) for p in wi.STAFFED_POOLS],
    ("containment", State("whatif-containment", "value")),
    ("switches", State("whatif-switches", "value")),
    ("loyalty", State("whatif-loyalty", "value")),
    ("reps", State("whatif-reps", "value")),
    ("horizon", State("whatif-horizon", "value")),
    ("seed", State("whatif-seed", "value")),
    ("include_base", State("whatif-include-base", "value")),
]
FORM_FIELDS = [name for name, _ in FORM_STATES]


def _number(id_: str, value: float, lo: float, hi: float, step: float) -> dcc.Input:
    return dcc.Input(
        id=id_,
        type="number",
        value=value,
        min=lo,
        max=hi,
        step=step,
        className="cx-number",
        debounce=True,
    )


def layout(**_query: Any) -> html.Div:
    files = data.source().scenario_files()
    options = [
        {"label": f"{f.path.name} — {f.scenario_name}", "value": f.name}
        if f.ok
        else {"label": f"⚠ {f.path.name} — fails validation", "value": f.name, "disabled": True}
        for f in files
    ]
    first = next((f.name for f in files if f.ok), None)
    bad = [f for f in files if not f.ok]
    problems = [
        cx.message(
            "error",
            f"{f.path.name} fails validation",
            html.Pre(f.message, className="cx-error-text"),
        )
        for f in bad
    ]
    if not files:
        problems.append(
            cx.message(
                "info",
                "No scenario files",
                f"No *.yaml scenario files in {data.source().scenarios_dir}.",
            )
        )
    staff = [
        html.Div(
            [
                html.Label(_POOL_LABELS[p], htmlFor=f"whatif-staff-{p}"),
                _number(f"whatif-staff-{p}", 1.0, *wi.MULTIPLIER_RANGE, 0.05),
            ],
            className="cx-field",
        )
        for p in wi.STAFFED_POOLS
    ]
    return html.Div(
        [
            *page_header(
                "What-if",
                "Start from a shipped scenario, change a few levers and run it. The run is stored like "
                "any other and joins the comparison, next to the unedited scenario simulated with the "
                "same random numbers so the difference is paired. Small replications and horizon keep "
                "it quick; use the CLI for a full study.",
            ),
            html.Div(problems, id="whatif-file-problems"),
            html.Div(
                [
                    html.Label("Start from", htmlFor="whatif-scenario"),
                    dcc.Dropdown(
                        id="whatif-scenario",
                        options=options,
                        value=first,
                        clearable=False,
                        className="cx-wide",
                    ),
                    html.Div(id="whatif-base-info", className="cx-muted"),
                ],
                className="cx-field-row",
            ),
            html.Fieldset(
                [
                    html.Legend("Staffing multiplier per channel (agents scheduled × factor)"),
                    *staff,
                ],
                className="cx-fieldset",
            ),
            html.Fieldset(
                [
                    html.Legend("Programs and policies"),
                    dcc.Checklist(
                        id="whatif-switches",
                        options=[{"label": v, "value": k} for k, v in wi.SWITCHES.items()],
                        value=[],
                        className="cx-checklist",
                    ),
                    html.Div(
                        [
                            html.Label(
                                "Containment multiplier (self-service share per reason × factor)",
                                htmlFor="whatif-containment",
                            ),
                            _number("whatif-containment", 1.0, *wi.CONTAINMENT_RANGE, 0.05),
                        ],
                        className="cx-field",
                    ),
                    html.Div(
                        [
                            html.Label("Loyalty program", htmlFor="whatif-loyalty"),
                            dcc.RadioItems(
                                id="whatif-loyalty",
                                options=[
                                    {"label": v, "value": k} for k, v in wi.LOYALTY_TYPES.items()
                                ],
                                value="none",
                                inline=True,
                                className="cx-radio",
                            ),
                        ],
                        className="cx-field",
                    ),
                ],
                className="cx-fieldset",
            ),
            html.Fieldset(
                [
                    html.Legend("Run"),
                    html.Div(
                        [
                            html.Label("New scenario name", htmlFor="whatif-name"),
                            dcc.Input(id="whatif-name", type="text", value="", debounce=True),
                        ],
                        className="cx-field",
                    ),
                    html.Div(
                        [
                            html.Label("Replications", htmlFor="whatif-reps"),
                            _number("whatif-reps", wi.DEFAULT_REPS, *wi.REPS_RANGE, 1),
                        ],
                        className="cx-field",
                    ),
                    html.Div(
                        [
                            html.Label("Horizon (days)", htmlFor="whatif-horizon"),
                            _number(
                                "whatif-horizon", wi.DEFAULT_HORIZON_DAYS, *wi.HORIZON_RANGE, 1
                            ),
                        ],
                        className="cx-field",
                    ),
                    html.Div(
                        [
                            html.Label("Seed", htmlFor="whatif-seed"),
                            _number("whatif-seed", wi.DEFAULT_SEED, 0, 2**32 - 1, 1),
                        ],
                        className="cx-field",
                    ),
                    dcc.Checklist(
                        id="whatif-include-base",
                        options=[
                            {
                                "label": "Also run the unedited scenario with the same seeds (paired baseline)",
                                "value": "yes",
                            }
                        ],
                        value=["yes"],
                        className="cx-checklist",
                    ),
                ],
                className="cx-fieldset",
            ),
            html.Div(
                [
                    html.Button("Run what-if", id="whatif-run", className="cx-button", n_clicks=0),
                    html.Button(
                        "Cancel",
                        id="whatif-cancel",
                        className="cx-button cx-secondary",
                        disabled=True,
                        n_clicks=0,
                    ),
                    html.Button(
                        "Download scenario YAML",
                        id="whatif-yaml",
                        className="cx-button cx-secondary",
                        n_clicks=0,
                    ),
                    dcc.Download(id="whatif-yaml-download"),
                ],
                className="cx-toolbar",
            ),
            html.Div(
                [
                    html.Progress(id="whatif-progress", value="0", max="1"),
                    html.Span("", id="whatif-progress-text", className="cx-muted"),
                ],
                id="whatif-progress-box",
                style={"display": "none"},
                className="cx-progress",
            ),
            html.Div(id="whatif-result"),
            html.Div(id="whatif-yaml-msg"),
            dcc.Store(id="whatif-done"),
        ]
    )


@callback(
    Output("whatif-name", "value"),
    Output("whatif-switches", "value"),
    Output("whatif-loyalty", "value"),
    Output("whatif-containment", "value"),
    *[Output(f"whatif-staff-{p}", "value") for p in wi.STAFFED_POOLS],
    *[Output(f"whatif-staff-{p}", "disabled") for p in wi.STAFFED_POOLS],
    Output("whatif-horizon", "value"),
    Output("whatif-seed", "value"),
    Output("whatif-base-info", "children"),
    Input("whatif-scenario", "value"),
)
def whatif_defaults(file: str | None) -> tuple[Any, ...]:
    """Reset the levers to the chosen scenario's own values."""
    n = len(wi.STAFFED_POOLS)
    try:
        scenario = load_scenario(data.source().scenario_file(file).path)
    except (data.SelectionError, ScenarioError) as exc:
        msg = str(exc)
        return (
            "",
            [],
            "none",
            1.0,
            *[1.0] * n,
            *[True] * n,
            wi.DEFAULT_HORIZON_DAYS,
            wi.DEFAULT_SEED,
            msg,
        )
    lv = wi.current_levers(scenario)
    switches = [k for k in wi.SWITCHES if getattr(lv, k)]
    pools = wi.staffed_pools(scenario)
    info = (
        f"{scenario.description or scenario.name} — {scenario.horizon_days} days from {scenario.start_date}; "
        f"channels: {', '.join(pools)}."
    )
    return (
        lv.name,
        switches,
        lv.loyalty,
        1.0,
        *[1.0] * n,
        *[p not in pools for p in wi.STAFFED_POOLS],
        wi.default_horizon_days(scenario),
        _latest_seed(),
        info,
    )


def _latest_seed() -> int:
    """The newest readable run's seed, so a what-if shares random numbers with it."""
    try:
        runs = data.source().runs()
    except data.SelectionError:
        return wi.DEFAULT_SEED
    return next((i.seed for i in runs if i.ok and i.seed is not None), wi.DEFAULT_SEED)


def _form(values: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(FORM_FIELDS, values, strict=True))


@callback(
    Output("whatif-result", "children"),
    Output("whatif-done", "data"),
    Input("whatif-run", "n_clicks"),
    *[s for _, s in FORM_STATES],
    background=True,
    progress=[
        Output("whatif-progress", "value"),
        Output("whatif-progress", "max"),
        Output("whatif-progress-text", "children"),
    ],
    running=[
        (Output("whatif-run", "disabled"), True, False),
        (Output("whatif-cancel", "disabled"), False, True),
        (Output("whatif-progress-box", "style"), {"display": "flex"}, {"display": "none"}),
    ],
    cancel=[Input("whatif-cancel", "n_clicks")],
    interval=500,
    prevent_initial_call=True,
)
def run_whatif(set_progress: Any, _clicks: int | None, *values: Any) -> tuple[Any, Any]:
    """Run the what-if (in a background process); its keys go to ``whatif-done``.

    Its outputs stay inside the page on purpose: Dash fires a callback whose input arrives with a
    new page while one of its outputs lies outside the page, even with ``prevent_initial_call``,
    which here would start a job on every visit. :func:`forward_added` passes the keys on."""
    form = _form(values)
    # This runs in a process forked from the server: use a fresh source, not the server's one
    # (whose lock another server thread may have held at the moment of the fork).
    shared = data.source()
    src = data.DataSource(shared.runs_dir, shared.scenarios_dir)

    def progress(done: int, total: int) -> None:
        set_progress((str(done), str(max(total, 1)), f"{done} of {total} replications done"))

    try:
        req = wi.parse_request(form)
        out = wi.run_whatif(src, req, progress)
    except wi.WhatifError as exc:
        return cx.message(
            "error", "The what-if did not run", html.Pre(str(exc), className="cx-error-text")
        ), no_update
    added = {"keys": out.keys, "baseline": out.baseline_key, "run_id": out.run_id}
    return (
        cx.message(
            "info",
            f"Run {out.run_id} finished in {out.seconds:.0f} s",
            html.P(
                [
                    f"{' and '.join(out.scenarios)} ({req.reps} replications, {req.horizon_days} days, seed {req.seed}) "
                    "joined the comparison"
                    + (
                        f" with {out.scenarios[0]} from this run as the baseline. "
                        if out.baseline_key
                        else ". "
                    ),
                    dcc.Link("Open Compare", href="/"),
                ]
            ),
        ),
        added,
    )


@callback(Output(ADDED, "data"), Input("whatif-done", "data"), prevent_initial_call=True)
def forward_added(done: dict[str, Any] | None) -> Any:
    """Hand a finished what-if's keys to the shared selection (nothing on page load)."""
    return done if done else no_update


@callback(
    Output("whatif-yaml-download", "data"),
    Output("whatif-yaml-msg", "children"),
    Input("whatif-yaml", "n_clicks"),
    *[s for _, s in FORM_STATES],
    prevent_initial_call=True,
)
def download_yaml(_clicks: int | None, *values: Any) -> tuple[Any, Any]:
    """The edited scenario as a YAML file (validated before it is sent)."""
    try:
        req = wi.parse_request(_form(values))
        _raw, edited = wi.edited_mapping(data.source(), req)
        text = wi.scenario_yaml(edited)
    except wi.WhatifError as exc:
        return no_update, cx.message(
            "error", "The scenario cannot be saved", html.Pre(str(exc), className="cx-error-text")
        )
    return {
        "content": text,
        "filename": f"{req.levers.name}.yaml",
        "type": "application/x-yaml",
    }, cx.message(
        "info",
        f"Saved {req.levers.name}.yaml",
        f"Check it with: cxsim validate {req.levers.name}.yaml",
    )
