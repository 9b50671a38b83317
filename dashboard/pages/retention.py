"""Retention: share of each acquisition cohort still active, and share that ordered again."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, dcc, html

from dashboard import components as cx
from dashboard import figures as fg
from dashboard.pages.common import comparison_or_message, page_header
from dashboard.registry import callback
from dashboard.shell import BASELINE, SELECTION

PATH = "/retention"
NAME = "Retention"


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            *page_header(
                "Churn and retention",
                "For customers acquired in the horizon: the share still active and the share that "
                "has ordered again, by months since their first order. A month counts only for cohorts "
                "observed for the whole month; bands are 95% intervals across replications.",
            ),
            dcc.Loading(html.Div(id="retention-body"), type="dot", delay_show=300),
        ]
    )


@callback(Output("retention-body", "children"), Input(SELECTION, "value"), Input(BASELINE, "value"))
def update_retention(selection: list[str] | None, baseline: str | None) -> Any:
    comp, msg = comparison_or_message(selection, baseline)
    if comp is None:
        return msg
    curves = comp.memo("retention", lambda: fg.retention_curves(comp.cohorts))
    if curves.empty:
        return cx.message(
            "info",
            "No complete cohort months",
            "These runs have no acquisition cohort observed for a full month; run a longer horizon.",
        )
    fig = fg.retention_figure(curves, comp.labels)
    return [cx.warnings_block(comp.warnings), cx.graph(fig, "retention-graph", "cxsim_retention")]
