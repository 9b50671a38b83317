"""Pure figure builders for a staffing plan: planner frames in, Plotly figures out.

No Dash, no files: each function takes the frames the staffing planner writes (see
:func:`check_plan`, :func:`check_shifts`, :func:`check_margin_curve` for the columns) and returns a
figure, so tests call them with small synthetic frames. Time series have one subplot per pool,
drawn as steps (a value holds for its whole interval); intervals where the pool is closed are gaps,
not zeros.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import PALETTE, POOL_COLOURS, TEMPLATE

__all__ = [
    "MARGIN_METRICS",
    "PLAN_COLUMNS",
    "SHIFT_COLUMNS",
    "agents_figure",
    "check_margin_curve",
    "check_plan",
    "check_shifts",
    "coverage_gap_figure",
    "margin_curve_figure",
    "service_level_figure",
    "shift_starts_figure",
]

PLAN_COLUMNS: tuple[str, ...] = (
    "channel", "interval_start", "open", "arrivals_expected", "required_agents",
    "required_agents_erlang", "scheduled_agents", "service_level_target", "service_level_sim",
    "service_level_erlang_plan", "abandonment_sim", "occupancy_sim", "backlog_end", "labor_cost_usd",
)
SHIFT_COLUMNS: tuple[str, ...] = (
    "channel", "shift_type", "start", "end", "break_start", "break_end", "agents", "paid_hours", "cost_usd",
)
MARGIN_COLUMNS: tuple[str, ...] = ("target", "metric", "mean", "ci_low", "ci_high")
MARGIN_METRICS: dict[str, str] = {
    "labor_cost_usd": "Labour cost (USD)",
    "monthly_churn": "Monthly churn",
    "ltv_usd": "Customer LTV (USD)",
    "margin_usd": "Margin (USD)",
}
SERIES_COLOURS = {"required": "#1f77b4", "erlang": "#ff7f0e", "scheduled": "#2ca02c", "target": "#4c566a"}


def _check(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks column(s) {', '.join(missing)}")


def check_plan(plan: pd.DataFrame) -> None:
    """Raise a ValueError naming what is wrong with a plan frame (columns, duplicate rows)."""
    _check(plan, PLAN_COLUMNS, "plan")
    dup = plan.duplicated(["channel", "interval_start"])
    if dup.any():
        row = plan.loc[dup].iloc[0]
        raise ValueError(f"plan frame has two rows for channel {row['channel']} at {row['interval_start']}")


def check_shifts(shifts: pd.DataFrame) -> None:
    """Raise a ValueError naming the missing columns of a shifts frame."""
    _check(shifts, SHIFT_COLUMNS, "shifts")


def check_margin_curve(curve: pd.DataFrame) -> None:
    """Raise a ValueError naming the missing columns or unknown metrics of a margin curve."""
    _check(curve, MARGIN_COLUMNS, "margin curve")
    unknown = sorted(set(curve["metric"]) - set(MARGIN_METRICS))
    if unknown:
        raise ValueError(f"margin curve has unknown metric(s) {', '.join(map(str, unknown))}")


def channels(plan: pd.DataFrame) -> list[str]:
    """Pools in the plan, in the order they first appear."""
    return list(dict.fromkeys(plan["channel"].astype(str)))


def _grid(names: list[str], title: str, y_title: str) -> go.Figure:
    fig = make_subplots(rows=max(len(names), 1), cols=1, shared_xaxes=True, subplot_titles=names, vertical_spacing=0.06)
    fig.update_layout(template=TEMPLATE, title=title, height=max(260 * len(names), 320), hovermode="x unified",
                      legend={"orientation": "h", "y": -0.08})
    for r in range(1, len(names) + 1):
        fig.update_yaxes(title_text=y_title, row=r, col=1)
    return fig


def _open_only(values: pd.Series, is_open: pd.Series) -> np.ndarray:
    """Values as float, NaN where the pool is closed (a gap in the line)."""
    return np.where(is_open.to_numpy(bool), values.to_numpy(float), np.nan)


def _by_channel(plan: pd.DataFrame) -> Iterable[tuple[int, str, pd.DataFrame]]:
    for row, name in enumerate(channels(plan), start=1):
        yield row, name, plan[plan["channel"].astype(str) == name].sort_values("interval_start")


def agents_figure(plan: pd.DataFrame) -> go.Figure:
    """Paid agents per interval: simulation-refined requirement, the Erlang (SIPP) plan, scheduled."""
    check_plan(plan)
    fig = _grid(channels(plan), "Agents required and scheduled", "agents")
    series = (("required_agents", "required (refined)", "required"),
              ("required_agents_erlang", "Erlang per interval", "erlang"),
              ("scheduled_agents", "scheduled (shifts)", "scheduled"))
    for row, _name, df in _by_channel(plan):
        for col, label, key in series:
            fig.add_trace(go.Scatter(
                x=df["interval_start"], y=_open_only(df[col], df["open"]), name=label, legendgroup=key,
                showlegend=row == 1, mode="lines", line={"shape": "hv", "color": SERIES_COLOURS[key],
                                                         "dash": "dot" if key == "erlang" else "solid"},
                connectgaps=False), row=row, col=1)
    return fig


def coverage_gap_figure(plan: pd.DataFrame) -> go.Figure:
    """Scheduled minus required (refined) agents per open interval: above 0 over-, below under-staffed."""
    check_plan(plan)
    fig = _grid(channels(plan), "Coverage gap: scheduled - required agents", "agents")
    for row, name, df in _by_channel(plan):
        gap = _open_only(df["scheduled_agents"] - df["required_agents"], df["open"])
        colour = np.where(gap < 0, "#d62728", POOL_COLOURS.get(name, PALETTE[1]))
        fig.add_trace(go.Bar(x=df["interval_start"], y=gap, name=name, marker_color=colour, showlegend=False,
                             hovertemplate="%{x}<br>gap %{y:+.0f}<extra>" + name + "</extra>"), row=row, col=1)
    fig.update_layout(bargap=0)
    return fig


def service_level_figure(plan: pd.DataFrame) -> go.Figure:
    """Simulated service level per interval of the scheduled (refined) plan and of the Erlang plan, with the target."""
    check_plan(plan)
    fig = _grid(channels(plan), "Simulated service level vs target", "service level")
    series = (("service_level_sim", "scheduled (refined) plan", "scheduled", "lines"),
              ("service_level_erlang_plan", "Erlang plan", "erlang", "lines"),
              ("service_level_target", "target", "target", "lines"))
    for row, _name, df in _by_channel(plan):
        for col, label, key, mode in series:
            fig.add_trace(go.Scatter(
                x=df["interval_start"], y=_open_only(df[col], df["open"]), name=label, legendgroup=key,
                showlegend=row == 1, mode=mode, connectgaps=False,
                line={"shape": "hv", "color": SERIES_COLOURS[key], "dash": "dash" if key == "target" else "solid",
                      "width": 1 if key == "target" else 1.5}), row=row, col=1)
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=row, col=1)
    return fig


def shift_starts_figure(shifts: pd.DataFrame) -> go.Figure:
    """Agents starting a shift per hour of day, stacked by shift type, one subplot per pool."""
    check_shifts(shifts)
    names = list(dict.fromkeys(shifts["channel"].astype(str)))
    fig = _grid(names, "Shift starts by hour of day", "agents starting")
    fig.update_layout(barmode="stack", hovermode="closest")
    types = list(dict.fromkeys(shifts["shift_type"].astype(str)))
    hours = np.arange(24)
    for row, name in enumerate(names, start=1):
        df = shifts[shifts["channel"].astype(str) == name]
        hour = pd.to_datetime(df["start"]).dt.hour
        for i, kind in enumerate(types):
            sel = df["shift_type"].astype(str) == kind
            counts = df.loc[sel, "agents"].groupby(hour[sel]).sum().reindex(hours, fill_value=0)
            fig.add_trace(go.Bar(x=hours, y=counts.to_numpy(), name=kind, legendgroup=kind, showlegend=row == 1,
                                 marker_color=PALETTE[(i + 1) % len(PALETTE)]), row=row, col=1)
        fig.update_xaxes(tickmode="linear", dtick=2, range=[-0.5, 23.5], row=row, col=1)
    fig.update_xaxes(title_text="hour of day", row=len(names), col=1)
    return fig


def margin_curve_figure(curve: pd.DataFrame) -> go.Figure:
    """Cost, churn, LTV and margin against the service-level target, with their 95% intervals as bands."""
    check_margin_curve(curve)
    metrics = [m for m in MARGIN_METRICS if m in set(curve["metric"])]
    fig = make_subplots(rows=len(metrics), cols=1, shared_xaxes=True,
                        subplot_titles=[MARGIN_METRICS[m] for m in metrics], vertical_spacing=0.07)
    for row, metric in enumerate(metrics, start=1):
        df = curve[curve["metric"] == metric].sort_values("target")
        x = df["target"].to_numpy(float)
        colour = PALETTE[row % len(PALETTE)]
        fig.add_trace(go.Scatter(
            x=np.r_[x, x[::-1]], y=np.r_[df["ci_high"].to_numpy(float), df["ci_low"].to_numpy(float)[::-1]],
            fill="toself", fillcolor=colour, opacity=0.2, line={"width": 0}, hoverinfo="skip",
            name="95% interval", showlegend=row == 1, legendgroup="band"), row=row, col=1)
        fig.add_trace(go.Scatter(x=x, y=df["mean"].to_numpy(float), mode="lines+markers", name=MARGIN_METRICS[metric],
                                 line={"color": colour}, showlegend=False), row=row, col=1)
    fig.update_xaxes(title_text="service-level target", tickformat=".0%", row=len(metrics), col=1)
    fig.update_layout(template=TEMPLATE, title="Margin vs service-level target", height=230 * len(metrics) + 120)
    return fig
