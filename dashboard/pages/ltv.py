"""LTV & ROI: cumulative margin per acquired customer against CAC, and a program's ROI."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, dcc, html

import sim.formatting as fmt
from dashboard import components as cx
from dashboard import data
from dashboard import figures as fg
from dashboard.pages.common import comparison_or_message, page_header
from dashboard.registry import callback
from dashboard.shell import BASELINE, SELECTION
from sim.results import COST_TO_SERVE

PATH = "/ltv"
NAME = "LTV & ROI"


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            *page_header(
                "LTV payback and program ROI",
                "Cumulative contribution margin (after cost-to-serve, before acquisition cost) per "
                "acquired customer, by months since acquisition, against what it cost to acquire them. "
                "The star marks the first month the mean curve covers CAC.",
            ),
            dcc.Loading(html.Div(id="ltv-body"), type="dot", delay_show=300),
            html.H3("Program ROI against the baseline"),
            html.P(
                "Incremental margin is the change in contribution margin over the horizon after every "
                "cost, including the program's own; program cost is the extra spend on the categories "
                "ticked below. ROI = incremental margin ÷ program cost (0 is break-even). Intervals are "
                "95%, paired on the replications' seeds when possible.",
                className="cx-intro",
            ),
            html.Div(
                [
                    html.Label("Variant", htmlFor="ltv-variant"),
                    dcc.Dropdown(
                        id="ltv-variant",
                        options=[],
                        value=None,
                        clearable=False,
                        className="cx-narrow",
                    ),
                    html.Label("Program cost categories", htmlFor="ltv-categories"),
                    dcc.Checklist(
                        id="ltv-categories",
                        options=[{"label": c.replace("_", " "), "value": c} for c in COST_TO_SERVE],
                        value=list(fg.PROGRAM_CATEGORIES),
                        inline=True,
                        className="cx-checklist",
                    ),
                ],
                className="cx-toolbar cx-toolbar-stack",
            ),
            dcc.Loading(html.Div(id="ltv-roi"), type="dot", delay_show=300),
        ]
    )


def payback_summary(comp: data.Comparison, curves: Any) -> html.Table:
    """Per scenario: CAC, payback month of the mean curve (with the months its 95% band reaches
    CAC), the payback KPI and LTV KPI with intervals."""
    table = fg.payback_table(curves, comp.labels).set_index("scenario")
    s = comp.summary.set_index(["scenario", "metric"])
    rows = []
    for scen in comp.labels:
        if scen not in table.index:
            continue
        t = table.loc[scen]

        def kpi(metric: str, unit: str, scen: str = scen) -> str:
            if (scen, metric) not in s.index:
                return "—"
            r = s.loc[(scen, metric)]
            n = int(r["n"])
            if n == 0:
                return "not within follow-up"
            txt = f"{fmt.format_value(r['mean'], unit)} ({fmt.format_interval(r['ci_low'], r['ci_high'], unit)})"
            total = comp.reps.get(scen, n)
            return txt + (
                f", reached in {n}/{total}" if metric == "ltv_payback_months" and n < total else ""
            )

        band = cx.fmt_month_band(t["payback_early"], t["payback_late"])
        rows.append(
            html.Tr(
                [
                    html.Td(scen),
                    html.Td(fmt.format_value(t["cac"], "USD/order").replace("/order", "")),
                    html.Td(
                        cx.fmt_month(t["payback_month"]),
                        **cx.data_attrs(scenario=scen, kind="payback"),
                    ),
                    html.Td(band),
                    html.Td(kpi("ltv_payback_months", "months")),
                    html.Td(kpi("ltv_12m", "USD")),
                    html.Td(str(int(t["months_observed"]))),
                ]
            )
        )
    head = [
        "Scenario",
        "CAC per customer",
        "Payback (mean curve)",
        "Band reaches CAC",
        "Payback KPI (months)",
        "LTV 12m",
        "Months observed",
    ]
    return html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)],
        className="cx-plain-table",
        id="ltv-table",
    )


@callback(
    Output("ltv-body", "children"),
    Output("ltv-variant", "options"),
    Output("ltv-variant", "value"),
    Input(SELECTION, "value"),
    Input(BASELINE, "value"),
    State("ltv-variant", "value"),
)
def update_ltv(
    selection: list[str] | None, baseline: str | None, variant: str | None
) -> tuple[Any, Any, Any]:
    comp, msg = comparison_or_message(selection, baseline)
    if comp is None:
        return msg, [], None
    options = [{"label": v, "value": v} for v in comp.variants]
    if variant not in comp.variants:
        variant = comp.variants[0] if comp.variants else None
    curves = comp.memo("ltv", lambda: fg.ltv_curves(comp.cohorts))
    if curves.empty:
        body: Any = cx.message(
            "info",
            "No complete cohort months",
            "No acquisition cohort was observed for a full month in these runs.",
        )
    else:
        body = [
            cx.warnings_block(comp.warnings),
            cx.graph(fg.ltv_figure(curves, comp.labels), "ltv-graph", "cxsim_ltv_payback"),
            payback_summary(comp, curves),
        ]
    return body, options, variant


def roi_stats(res: fg.RoiResult) -> html.Table:
    def est(e: fg.Estimate, unit: str) -> str:
        return f"{fmt.format_diff(e.mean, unit)} ({fmt.format_interval(e.ci_low, e.ci_high, unit, diff=True)})"

    roi = (
        "not defined"
        if res.roi is None
        else f"{fmt.format_ratio(res.roi.mean)} ({fmt.format_ratio(res.roi.ci_low)} to {fmt.format_ratio(res.roi.ci_high)})"
    )
    payback = cx.fmt_month(res.payback_month)
    if res.payback_early is not None:
        payback += f" (95% band: {cx.fmt_month_band(res.payback_early, res.payback_late)})"
    rows = [
        ("Incremental contribution margin", est(res.incremental_margin, "USD"), "ltv-roi-margin"),
        (
            "Program cost (extra spend on the ticked categories)",
            est(res.program_cost, "USD"),
            "ltv-roi-cost",
        ),
        ("ROI", roi, "ltv-roi-ratio"),
        (f"Payback (month of the {res.months}-month horizon)", payback, "ltv-roi-payback"),
    ]
    how = f"{'paired' if res.paired else 'unpaired (Welch)'} over {res.n} replication(s)"
    return html.Table(
        [
            html.Tbody(
                [html.Tr([html.Th(k), html.Td(v, id=i)]) for k, v, i in rows]
                + [html.Tr([html.Th("Intervals"), html.Td(how)])]
            )
        ],
        className="cx-plain-table cx-roi-table",
    )


@callback(
    Output("ltv-roi", "children"),
    Input(SELECTION, "value"),
    Input(BASELINE, "value"),
    Input("ltv-variant", "value"),
    Input("ltv-categories", "value"),
)
def update_roi(
    selection: list[str] | None,
    baseline: str | None,
    variant: str | None,
    categories: list[str] | None,
) -> Any:
    comp, msg = comparison_or_message(selection, baseline)
    if comp is None:
        return msg
    if not comp.variants:
        return cx.message(
            "info",
            "Add a variant",
            "Select a second scenario to compare a program against the baseline.",
        )
    if variant not in comp.variants:
        variant = comp.variants[0]
    cats = [c for c in (categories or []) if c in COST_TO_SERVE]
    if comp.daily.empty or "contribution_margin_usd" not in comp.daily.columns:
        return cx.message("info", "No daily results", "These runs have no daily margin series.")
    key = f"roi:{variant}:{','.join(cats)}"
    res = comp.memo(key, lambda: fg.program_roi(comp.daily, variant, comp.baseline, cats))
    colour = fg.scenario_colours(comp.labels)[variant]
    return [
        cx.message("info", "About this ROI", res.note) if res.note else None,
        roi_stats(res),
        cx.graph(fg.roi_figure(res, colour), "ltv-roi-graph", "cxsim_program_roi"),
    ]
