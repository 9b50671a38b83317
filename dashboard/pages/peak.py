"""Peak service: service level per channel per interval against its SLA target, backlog,
abandonment, occupancy and contacts by reason, zoomable to the Black Friday week."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from dash import Input, Output, State, dcc, html

from dashboard import components as cx
from dashboard import figures as fg
from dashboard.pages.common import comparison_or_message, page_header
from dashboard.registry import callback
from dashboard.shell import BASELINE, SELECTION

PATH = "/peak"
NAME = "Peak service"
WINDOWS = {
    "bf": "Black Friday week",
    "season": "Peak season (15 Nov – 8 Jan)",
    "all": "Whole horizon",
}


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            *page_header(
                "Service during the peak",
                "One scenario at a time, averaged over its replications. Windows up to five weeks "
                "show every staffing interval; longer ones show daily totals. Drag the slider under the "
                "charts to zoom; the camera icon saves a PNG.",
            ),
            html.Div(
                [
                    html.Label("Scenario", htmlFor="peak-scenario"),
                    dcc.Dropdown(
                        id="peak-scenario",
                        options=[],
                        value=None,
                        clearable=False,
                        className="cx-narrow",
                    ),
                    dcc.RadioItems(
                        id="peak-window",
                        options=[{"label": v, "value": k} for k, v in WINDOWS.items()],
                        value="bf",
                        inline=True,
                        className="cx-radio",
                    ),
                ],
                className="cx-toolbar",
            ),
            dcc.Loading(html.Div(id="peak-body"), type="dot", delay_show=300),
        ]
    )


@callback(
    Output("peak-scenario", "options"),
    Output("peak-scenario", "value"),
    Input(SELECTION, "value"),
    Input(BASELINE, "value"),
    State("peak-scenario", "value"),
)
def peak_scenarios(
    selection: list[str] | None, baseline: str | None, current: str | None
) -> tuple[Any, Any]:
    comp, _msg = comparison_or_message(selection, baseline)
    if comp is None:
        return [], None
    options = [{"label": s, "value": s} for s in comp.labels]
    return options, current if current in comp.labels else comp.baseline


def _date(value: Any) -> dt.date | None:
    try:
        return pd.Timestamp(value).date()
    except (TypeError, ValueError):
        return None


@callback(
    Output("peak-body", "children"),
    Input(SELECTION, "value"),
    Input(BASELINE, "value"),
    Input("peak-scenario", "value"),
    Input("peak-window", "value"),
)
def update_peak(
    selection: list[str] | None, baseline: str | None, scenario: str | None, window: str | None
) -> Any:
    comp, msg = comparison_or_message(selection, baseline)
    if comp is None:
        return msg
    if scenario not in comp.labels:
        scenario = comp.baseline
    mapping = comp.scenarios.get(scenario, {})
    start = _date(mapping.get("start_date"))
    horizon = mapping.get("horizon_days")
    intervals = comp.intervals[comp.intervals["scenario"] == scenario]
    if start is None or not isinstance(horizon, int) or intervals.empty:
        return cx.message(
            "info", "No interval results", f"The run of {scenario} has no interval series to show."
        )
    windows = fg.peak_windows(start, horizon)
    notes = []
    key = window if window in WINDOWS else "bf"
    if key not in windows:
        bf = fg.black_friday(start.year)
        notes.append(
            cx.message(
                "info",
                "Black Friday is outside this scenario's horizon",
                f"{scenario} runs {horizon} days from {start} (Black Friday {start.year}: {bf}); "
                "showing the whole horizon instead.",
            )
        )
        key = "all"
    daily = comp.daily[comp.daily["scenario"] == scenario]
    fig = fg.peak_service_figure(
        intervals,
        daily,
        fg.sla_targets(mapping),
        windows[key],
        windows.get("bf"),
        title=f"{scenario}: {WINDOWS[key].lower()}",
    )
    return [*notes, cx.graph(fig, "peak-graph", f"cxsim_peak_{scenario}")]
