"""Cost-to-serve: per-order cost broken down by component, stacked per scenario."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, dcc, html

import sim.formatting as fmt
from dashboard import components as cx
from dashboard import figures as fg
from dashboard.pages.common import comparison_or_message, page_header
from dashboard.registry import callback
from dashboard.shell import BASELINE, SELECTION

PATH = "/cost-to-serve"
NAME = "Cost-to-serve"


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            *page_header(
                "Cost-to-serve per order",
                "All post-purchase cost divided by orders: support labour by channel, automation, "
                "returns logistics and write-offs, reships and exchanges, appeasement credits, loyalty "
                "rewards and program fees, and the rest. Refunds reduce revenue and are not a cost "
                "here. The black mark is the total with its 95% interval.",
            ),
            dcc.Loading(html.Div(id="cost-body"), type="dot", delay_show=300),
        ]
    )


def breakdown_table(breakdown: Any, order: list[str], baseline: str) -> html.Table:
    """Per-order cost of each component per scenario, with the difference from the baseline."""
    pivot = breakdown.pivot(index="group", columns="scenario", values="per_order")
    groups = [g for g, _ in fg.COST_GROUPS if g in pivot.index and (pivot.loc[g] != 0).any()]
    head = [html.Th("Component")] + [html.Th(s) for s in order]
    rows = []
    for g in [*groups, "Total"]:
        vals = pivot.loc[groups].sum() if g == "Total" else pivot.loc[g]
        cells = [html.Td(g)]
        for s in order:
            txt = fmt.format_value(vals[s], "USD/order")
            if s != baseline:
                txt += f" ({fmt.format_diff(vals[s] - vals[baseline], 'USD/order')})"
            cells.append(html.Td(txt))
        rows.append(html.Tr(cells, className="cx-total" if g == "Total" else None))
    return html.Table(
        [html.Thead(html.Tr(head)), html.Tbody(rows)], className="cx-plain-table", id="cost-table"
    )


@callback(Output("cost-body", "children"), Input(SELECTION, "value"), Input(BASELINE, "value"))
def update_cost(selection: list[str] | None, baseline: str | None) -> Any:
    comp, msg = comparison_or_message(selection, baseline)
    if comp is None:
        return msg
    order = list(comp.labels)
    breakdown = fg.cost_breakdown(comp.summary, order)
    if not (breakdown["per_order"] != 0).any():
        return cx.message(
            "info", "No cost-per-order figures", "These runs report no cost_per_order_* KPIs."
        )
    totals = comp.summary[comp.summary["metric"] == "cost_to_serve_per_order"]
    fig = fg.cost_figure(breakdown, totals, order)
    return [
        cx.warnings_block(comp.warnings),
        cx.graph(fig, "cost-graph", "cxsim_cost_to_serve"),
        html.H4("Per order, and difference from the baseline in brackets"),
        breakdown_table(breakdown, order, comp.baseline),
    ]
