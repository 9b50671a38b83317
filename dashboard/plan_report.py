"""A self-contained HTML report of a staffing plan (plotly.js inlined once; no network needed)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboard.plan_figures import (
    agents_figure,
    check_margin_curve,
    check_plan,
    check_shifts,
    coverage_gap_figure,
    margin_curve_figure,
    service_level_figure,
    shift_starts_figure,
)

__all__ = ["plan_figures", "plan_report_html", "summary_table_html"]

# The calibration report's look (calibration/report.py), kept here so the dashboard does not
# import the calibration fitting stack for a style sheet.
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:.85em;width:100%}
td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f6f6f6}
.note{color:#555;font-size:.9em}
"""

DEFINITIONS = (
    "<p><b>Agents</b> are paid agents on duty; servers are agents after shrinkage times concurrency, "
    "rounded as the simulator rounds them. <b>Required (refined)</b> is the per-interval requirement after "
    "simulation corrected the analytic one; <b>Erlang per interval</b> is the analytic plan alone (Erlang A "
    "for realtime pools, a fluid backlog model for backlog pools), each interval staffed exactly to it as "
    "if shifts could start and stop anywhere; <b>scheduled</b> is what the shifts provide.</p>"
    "<p><b>Meets target.</b> Realtime pools (customers wait live: chat, phone): an open interval meets the target when its "
    "simulated service level -- contacts answered within the threshold over all arrivals, abandoners "
    "counting as misses -- is at least the target; the share is over open intervals with arrivals. Backlog "
    "pools (email, social, tier 2): a day meets the target when the share of that day's arrivals first "
    "responded within the threshold is at least the target; the share is over days with arrivals. "
    "Contacts arriving while a pool is closed may be impossible to answer in time; such days are planned "
    "to answer them as soon as the pool opens. <b>Not significantly below</b> counts an interval or day as "
    "meeting the target unless its simulated service level is below the target by more than "
    "<code>planner.miss_z</code> binomial standard errors (1.645: one-sided 5%): whether a miss is more "
    "than the noise of a finite simulation. The check simulates on random paths of its own, not those the "
    "plan was refined on.</p>"
    "<p><b>Coverage gap</b> is scheduled minus required agents: above zero the shifts over-staff that "
    "interval, below zero they under-staff it. Labour cost is paid hours times the hourly cost; the input "
    "plan is the scenario's own staffing over the same window.</p>"
)


def _pct(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * float(v):.1f}%"


def _usd(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"${float(v):,.0f}"


def summary_table_html(summary: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per pool: what is judged, share meeting target (plan vs Erlang, point estimate and
    not significantly below), labour cost vs the input plan, refinement rounds."""
    head = ("<table><thead><tr><th>pool</th><th>target</th><th>judged</th><th>meets target: plan</th>"
            "<th>meets target: Erlang</th><th>not significantly below: plan</th><th>not significantly below: Erlang</th>"
            "<th>labour cost</th><th>input plan cost</th><th>difference</th><th>rounds</th></tr></thead><tbody>")
    rows = []
    for name, s in summary.items():
        cost, base = s.get("labor_cost_usd"), s.get("labor_cost_input_usd")
        diff = "–"
        if cost is not None and base:
            diff = f"{100 * (float(cost) - float(base)) / float(base):+.1f}%"
        unit = "open intervals" if s.get("realtime") else "days"
        rows.append(
            f"<tr><td>{html.escape(str(name))}</td><td>{_pct(s.get('target'))}</td>"
            f"<td>{int(s.get('judged', 0)):,} {unit}</td>"
            f"<td>{_pct(s.get('meet_share_refined'))}</td><td>{_pct(s.get('meet_share_erlang'))}</td>"
            f"<td>{_pct(s.get('not_below_share_refined'))}</td><td>{_pct(s.get('not_below_share_erlang'))}</td>"
            f"<td>{_usd(cost)}</td><td>{_usd(base)}</td><td>{diff}</td><td>{html.escape(str(s.get('iterations', '–')))}</td></tr>"
        )
    return head + "".join(rows) + "</tbody></table>"


def plan_figures(plan: pd.DataFrame, shifts: pd.DataFrame, margin_curve: pd.DataFrame | None = None) -> list[tuple[str, str, go.Figure]]:
    """(id, heading, figure) for every chart of the report, in page order."""
    figs = [
        ("agents", "Agents required and scheduled", agents_figure(plan)),
        ("coverage", "Coverage gap", coverage_gap_figure(plan)),
        ("service-level", "Service level vs target", service_level_figure(plan)),
    ]
    if len(shifts):
        figs.append(("shift-starts", "Shift starts", shift_starts_figure(shifts)))
    if margin_curve is not None and len(margin_curve):
        figs.append(("margin-curve", "Margin vs service-level target", margin_curve_figure(margin_curve)))
    return figs


def plan_report_html(
    plan: pd.DataFrame,
    shifts: pd.DataFrame,
    summary: Mapping[str, Mapping[str, Any]],
    margin_curve: pd.DataFrame | None = None,
    title: str = "cxsim staffing plan",
) -> str:
    """The self-contained page: summary table, charts (plotly.js inlined with the first), definitions."""
    check_plan(plan)
    check_shifts(shifts)
    if margin_curve is not None:
        check_margin_curve(margin_curve)
    t = html.escape(title)
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{t}</title><style>{CSS}</style></head><body>",
             f"<h1>{t}</h1>"]
    if len(plan):
        start, end = pd.to_datetime(plan["interval_start"]).min(), pd.to_datetime(plan["interval_start"]).max()
        parts.append(f"<p>Intervals from {html.escape(str(start))} to {html.escape(str(end))}; "
                     f"{int(shifts['agents'].sum()) if len(shifts) else 0:,} agent shifts.</p>")
    parts.append("<h2>Summary</h2>" + summary_table_html(summary))
    parts.append("<h2>Definitions</h2>" + DEFINITIONS)
    first = True
    for fig_id, heading, fig in plan_figures(plan, shifts, margin_curve):
        parts.append(f"<h2>{html.escape(heading)}</h2><div id='{fig_id}'>"
                     + fig.to_html(full_html=False, include_plotlyjs="inline" if first else False) + "</div>")
        first = False
    parts.append("</body></html>")
    return "\n".join(parts)
