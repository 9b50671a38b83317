"""Small Dash component builders shared by the pages (pure: data in, components out)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html
from dash.development.base_component import Component

import sim.formatting as fmt
from dashboard import figures as fg
from dashboard.data import ScenarioFile
from sim.results import METRICS
from sim.store import RunInfo

MESSAGE_CLASS = "cx-message"
NOT_REACHED = "not within follow-up"


def data_attrs(**attrs: Any) -> dict[str, Any]:
    """``data-*`` attributes for an html component (``data_attrs(metric=m)`` -> ``data-metric``),
    read by the browser tests and handy when inspecting the page."""
    return {f"data-{k.replace('_', '-')}": v for k, v in attrs.items()}


def message(kind: str, title: str, *body: Any) -> html.Div:
    """A visible in-page message (``kind``: info, warning, error) instead of a chart or a table."""
    role = "alert" if kind == "error" else "status"
    return html.Div(
        [html.Strong(title, className="cx-message-title"), *[b for b in body if b is not None]],
        className=f"{MESSAGE_CLASS} cx-{kind}",
        role=role,
    )


def command(text: str) -> html.Pre:
    return html.Pre(html.Code(text), className="cx-command")


RUN_COMMAND_MAX_FILES = 6


def run_command(scenario_paths: Sequence[str], runs_dir: Path) -> str:
    """The shell command that fills ``runs_dir`` with a comparison of (up to six of) the given
    scenario files, which should be valid ones: ``cxsim run`` refuses to start if any is not."""
    paths = list(scenario_paths)[:RUN_COMMAND_MAX_FILES] or ["scenarios/baseline.yaml"]
    files = " ".join(paths)
    return f"cxsim run {files} --reps 20 --out {runs_dir}"


def no_runs_message(runs_dir: Path, scenario_paths: Sequence[str]) -> html.Div:
    return message(
        "info",
        "No runs yet",
        html.P(f"The runs folder {runs_dir} holds no simulation run. Create one with:"),
        command(run_command(scenario_paths, runs_dir)),
        html.P(
            [
                "…then press “Rescan runs”, or run a scenario from the ",
                dcc.Link("What-if", href="/what-if"),
                " page.",
            ]
        ),
    )


def graph(fig: go.Figure, graph_id: str, filename: str) -> dcc.Graph:
    """A chart with Plotly's mode bar (its camera button downloads a PNG named ``filename``)."""
    return dcc.Graph(
        id=graph_id,
        figure=fig,
        config={
            "displaylogo": False,
            "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
        },
    )


def warnings_block(warnings: Sequence[str]) -> html.Div | None:
    if not warnings:
        return None
    return message("warning", "Read with care", html.Ul([html.Li(w) for w in warnings]))


# ----------------------------------------------------------------------------- KPI table


def _value_cell(row: Any) -> html.Td:
    unit = row.unit
    interval = fmt.format_interval(row.ci_low, row.ci_high, unit)
    if row.n == 0:
        interval = NOT_REACHED if row.metric == "ltv_payback_months" else "not reported"
    return html.Td(
        [
            html.Span(fmt.format_value(row.mean, unit), className="cx-v"),
            html.Span(interval, className="cx-ci"),
        ],
        className="cx-value",
        title=f"mean over {int(row.n)} replication(s), 95% interval",
        **data_attrs(metric=row.metric, scenario=row.scenario, kind="value"),
    )


def _diff_cell(row: Any) -> html.Td:
    unit, v = row.unit, row.verdict
    style = fg.VERDICT_STYLE.get(v, {})
    paired = "paired" if row.paired is True or row.paired == 1 else "unpaired"
    return html.Td(
        [
            html.Span(fmt.format_diff(row.diff_mean, unit), className="cx-v"),
            html.Span(
                fmt.format_interval(row.diff_ci_low, row.diff_ci_high, unit, diff=True),
                className="cx-ci",
            ),
        ],
        className=f"cx-diff cx-verdict-{v.replace(' ', '-')}",
        style=style,
        title=f"{fg.VERDICT_HELP.get(v, v)} ({paired}, n={_int(row.diff_n)})",
        **data_attrs(metric=row.metric, scenario=row.scenario, kind="diff", verdict=v),
    )


def _int(x: Any) -> str:
    try:
        return str(int(x))
    except (TypeError, ValueError):
        return "?"


def kpi_table(frame: pd.DataFrame, scenarios: Sequence[str], baseline: str) -> html.Table:
    """The comparison table: a row per metric; per scenario the mean with its 95% interval and,
    except for the baseline, the difference from the baseline coloured by its verdict."""
    header_top = [html.Th("Metric", rowSpan=2), html.Th("Unit", rowSpan=2)]
    header_sub = []
    for scen in scenarios:
        if scen == baseline:
            header_top.append(
                html.Th([scen, html.Span(" (baseline)", className="cx-muted")], className="cx-scen")
            )
            header_sub.append(html.Th("mean (95% CI)"))
        else:
            header_top.append(html.Th(scen, colSpan=2, className="cx-scen"))
            header_sub += [html.Th("mean (95% CI)"), html.Th("Δ vs baseline (95% CI)")]
    body = []
    cells_by_metric: dict[str, dict[str, Any]] = {}
    for row in frame.itertuples(index=False):
        cells_by_metric.setdefault(row.metric, {})[row.scenario] = row
    for metric, by_scen in cells_by_metric.items():
        first = next(iter(by_scen.values()))
        desc = METRICS[metric].description if metric in METRICS else ""
        tds: list[Any] = [
            html.Td(
                [html.Span(first.label), html.Span(metric, className="cx-metric-id")],
                title=desc,
                className="cx-metric",
            ),
            html.Td(first.unit, className="cx-unit"),
        ]
        for scen in scenarios:
            row = by_scen.get(scen)
            if row is None:
                tds.append(html.Td("—", className="cx-value"))
                if scen != baseline:
                    tds.append(html.Td("—", className="cx-diff"))
                continue
            tds.append(_value_cell(row))
            if scen != baseline:
                tds.append(_diff_cell(row))
        body.append(html.Tr(tds, **data_attrs(metric=metric)))
    return html.Table(
        [html.Thead([html.Tr(header_top), html.Tr(header_sub)]), html.Tbody(body)],
        className="cx-kpi-table",
        id="compare-kpi-table",
    )


def verdict_legend() -> html.Div:
    items = [
        (fg.BETTER, "better than baseline"),
        (fg.WORSE, "worse than baseline"),
        (fg.CHANGED, "different, no preferred direction"),
        (fg.UNCLEAR, "no clear difference (interval includes 0)"),
    ]
    return html.Div(
        [html.Span("Differences: ", className="cx-muted")]
        + [html.Span(text, className="cx-chip", style=fg.VERDICT_STYLE[v]) for v, text in items]
        + [
            html.Span(
                " — a difference counts only when its 95% interval excludes zero.",
                className="cx-muted",
            )
        ],
        className="cx-legend",
    )


# ----------------------------------------------------------------------------- headline cards

CARD_TITLES = {
    "churn_rate_monthly": "Monthly churn",
    "cost_to_serve_per_order": "Cost-to-serve per order",
    "ltv_payback_months": "LTV payback month",
}


def headline_cards(frame: pd.DataFrame, scenarios: Sequence[str], reps: dict[str, int]) -> html.Div:
    """One card per headline metric, a line per scenario: value, interval and the coloured
    difference from the baseline."""
    cards = []
    for metric in fg.HEADLINE_METRICS:
        rows = frame[frame["metric"] == metric].set_index("scenario")
        lines = []
        for scen in scenarios:
            if scen not in rows.index:
                lines.append(
                    html.Div(
                        [html.Span(scen, className="cx-card-scen"), html.Span("not reported")],
                        className="cx-card-line",
                    )
                )
                continue
            r = rows.loc[scen]
            value = fmt.format_value(r["mean"], r["unit"])
            interval = fmt.format_interval(r["ci_low"], r["ci_high"], r["unit"])
            extra = []
            n = int(r["n"]) if not pd.isna(r["n"]) else 0
            if n == 0:
                value = NOT_REACHED if metric == "ltv_payback_months" else "not reported"
                interval = ""
            elif metric == "ltv_payback_months" and n < reps.get(scen, 0):
                extra.append(
                    html.Span(f"reached in {n}/{reps[scen]} replications", className="cx-muted")
                )
            diff = None
            if r["verdict"] != fg.BASELINE and n > 0 and not pd.isna(r["diff_mean"]):
                diff = html.Span(
                    fmt.format_diff(r["diff_mean"], r["unit"]),
                    className="cx-chip",
                    style=fg.VERDICT_STYLE.get(r["verdict"], {}),
                    title=fg.VERDICT_HELP.get(r["verdict"], ""),
                )
            lines.append(
                html.Div(
                    [
                        html.Span(scen, className="cx-card-scen"),
                        html.Span(value, className="cx-card-value"),
                        html.Span(interval, className="cx-ci"),
                        diff,
                        *extra,
                    ],
                    className="cx-card-line",
                    **data_attrs(metric=metric, scenario=scen),
                )
            )
        cards.append(html.Div([html.H4(CARD_TITLES[metric]), *lines], className="cx-card"))
    return html.Div(cards, className="cx-cards", id="compare-cards-inner")


# ----------------------------------------------------------------------------- runs and files


def runs_table(infos: Sequence[RunInfo]) -> Component:
    """Every run folder; corrupt and incompatible ones greyed out with their problem."""
    if not infos:
        return html.P("No run folders yet.", className="cx-muted")
    rows = []
    for i in infos:
        created = f"{i.created:%Y-%m-%d %H:%M}" if i.created else "—"
        status = "ok" if i.ok else f"{i.status}: {i.message}"
        rows.append(
            html.Tr(
                [
                    html.Td(i.run_id),
                    html.Td(created),
                    html.Td(", ".join(i.scenarios) or "—"),
                    html.Td("—" if i.reps is None else str(i.reps)),
                    html.Td("—" if i.seed is None else str(i.seed)),
                    html.Td(i.cxsim_version or "—"),
                    html.Td(status, className="cx-status"),
                ],
                className="cx-run-ok" if i.ok else "cx-run-bad",
                title="" if i.ok else i.message,
            )
        )
    head = html.Tr(
        [
            html.Th(h)
            for h in ("Run", "Created (UTC)", "Scenarios", "Reps", "Seed", "cxsim", "Status")
        ]
    )
    return html.Table([html.Thead(head), html.Tbody(rows)], className="cx-runs-table")


def scenario_files_list(files: Sequence[ScenarioFile]) -> Component:
    """Shipped scenario files; a file that fails validation shows its error text."""
    if not files:
        return html.P("No scenario files found.", className="cx-muted")
    items = []
    for f in files:
        if f.ok:
            items.append(
                html.Li(
                    [
                        html.Code(f.path.name),
                        f" — {f.scenario_name}: {f.description or 'no description'}",
                    ],
                    className="cx-file-ok",
                )
            )
        else:
            items.append(
                html.Li(
                    [
                        html.Code(f.path.name),
                        " — fails validation:",
                        html.Pre(f.message, className="cx-error-text"),
                    ],
                    className="cx-file-bad",
                )
            )
    return html.Div(
        [
            html.P(
                [
                    "Run any valid file, as it is or edited, from the ",
                    dcc.Link("What-if", href="/what-if"),
                    " page, or for a full study with ",
                    html.Code("cxsim run FILE... --reps 20"),
                    ".",
                ],
                className="cx-muted",
            ),
            html.Ul(items, className="cx-files"),
        ]
    )


def fmt_month(m: Any) -> str:
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return NOT_REACHED
    return f"month {int(m)}"


def fmt_month_band(early: Any, late: Any) -> str:
    """The months at which the upper and the lower 95% bound reach the target."""
    if early is None or (isinstance(early, float) and math.isnan(early)):
        return "—"
    if late is None or (isinstance(late, float) and math.isnan(late)):
        return f"from {fmt_month(early)} (lower bound: {NOT_REACHED})"
    return f"{fmt_month(early)} to {fmt_month(late)}"
