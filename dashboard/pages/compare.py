"""Compare: the KPI table (mean, 95% interval, paired difference from the baseline) and the
headline cards, with a CSV export of the table."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import Input, Output, State, dcc, html, no_update

from dashboard import components as cx
from dashboard import data
from dashboard import figures as fg
from dashboard.pages.common import comparison_or_message, page_header
from dashboard.registry import callback
from dashboard.shell import ADDED, BASELINE, REFRESH, SELECTION

PATH = "/"
NAME = "Compare"
CSV_NAME = "cxsim_comparison.csv"


def layout(**_query: Any) -> html.Div:
    src = data.source()
    try:
        infos = src.runs()
    except data.SelectionError:
        infos = []
    files = src.scenario_files()
    return html.Div(
        [
            *page_header(
                "Compare scenarios",
                "Each number is the mean over replications with its 95% interval. Next to it, the "
                "difference from the baseline (paired on the same random numbers when the runs share "
                "seeds) is coloured when its interval excludes zero: green when the change is good for "
                "the business, red when it is bad.",
            ),
            html.Div(
                [
                    dcc.RadioItems(
                        id="compare-group",
                        options=[
                            {"label": v, "value": k} for k, v in fg.METRIC_GROUP_LABELS.items()
                        ],
                        value="headline",
                        inline=True,
                        className="cx-radio",
                    ),
                    html.Button(
                        "Download table (CSV)",
                        id="compare-export",
                        className="cx-button",
                        n_clicks=0,
                    ),
                    dcc.Download(id="compare-download"),
                ],
                className="cx-toolbar",
            ),
            dcc.Loading(html.Div(id="compare-body"), type="dot", delay_show=300),
            html.Details(
                [html.Summary("Stored runs"), html.Div(cx.runs_table(infos), id="compare-runs")],
                open=any(not i.ok for i in infos),
                className="cx-details",
            ),
            html.Details(
                [
                    html.Summary("Scenario files"),
                    html.Div(cx.scenario_files_list(files), id="compare-files"),
                ],
                open=any(not f.ok for f in files),
                className="cx-details",
            ),
        ]
    )


def table_frame(comp: data.Comparison, group: str | None) -> pd.DataFrame:
    """The comparison table (also the CSV) for a metric group, with each scenario's run id."""
    metrics = fg.metrics_in_group(group or "headline", comp.summary["metric"])
    frame = fg.kpi_table_frame(
        comp.summary, comp.differences(metrics), comp.labels, comp.baseline, metrics
    )
    frame.insert(5, "run_id", frame["scenario"].map(comp.run_of))
    return frame


@callback(
    Output("compare-body", "children"),
    Input(SELECTION, "value"),
    Input(BASELINE, "value"),
    Input("compare-group", "value"),
)
def update_compare(selection: list[str] | None, baseline: str | None, group: str | None) -> Any:
    comp, msg = comparison_or_message(selection, baseline)
    if comp is None:
        return msg
    frame = table_frame(comp, group)
    cards_frame = fg.kpi_table_frame(
        comp.summary,
        comp.differences(fg.HEADLINE_METRICS),
        comp.labels,
        comp.baseline,
        list(fg.HEADLINE_METRICS),
    )
    return [
        cx.warnings_block(comp.warnings),
        cx.headline_cards(cards_frame, comp.labels, comp.reps),
        cx.verdict_legend(),
        html.Div(cx.kpi_table(frame, comp.labels, comp.baseline), className="cx-table-wrap"),
    ]


@callback(
    Output("compare-download", "data"),
    Input("compare-export", "n_clicks"),
    State(SELECTION, "value"),
    State(BASELINE, "value"),
    State("compare-group", "value"),
    prevent_initial_call=True,
)
def export_csv(
    _clicks: int | None, selection: list[str] | None, baseline: str | None, group: str | None
) -> Any:
    comp, _msg = comparison_or_message(selection, baseline)
    if comp is None:
        return no_update
    frame = table_frame(comp, group)
    return {"content": frame.to_csv(index=False), "filename": CSV_NAME, "type": "text/csv"}


@callback(
    Output("compare-runs", "children"),
    Output("compare-files", "children"),
    Input(REFRESH, "n_clicks"),
    Input(ADDED, "data"),
    prevent_initial_call=True,
)
def refresh_lists(_clicks: int | None, _added: Any) -> tuple[Any, Any]:
    src = data.source()
    try:
        infos = src.runs(refresh=True)
    except data.SelectionError as exc:
        return cx.message("error", "The runs folder cannot be listed", str(exc)), no_update
    return cx.runs_table(infos), cx.scenario_files_list(src.scenario_files())
