"""Pure builders: tidy result frames in, tables and Plotly figures out.

No Dash, no files, no global state: every function here can be called from a test with small
frames of the shapes :mod:`sim.store` returns. Intervals are 95% Student-t intervals across
replications (the same formulas as :mod:`sim.summary`, whose helpers are reused); differences between
two scenarios are paired on ``(seed, replication)`` when they share at least two such pairs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from sim.formatting import (
    BASELINE,
    BETTER,
    CHANGED,
    NO_INTERVAL,
    UNCLEAR,
    WORSE,
    format_diff,
    format_value,
    verdict,
)
from sim.results import COST_TO_SERVE, METRICS, POOLS
from sim.scenario import REASONS
from sim.summary import CONFIDENCE, MIN_SHARED_PAIRS, mean_ci, welch_ci

TEMPLATE = "plotly_white"
PALETTE: tuple[str, ...] = (
    "#4c566a",  # the first selected scenario (usually the baseline) in slate
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
)
POOL_COLOURS: dict[str, str] = {
    "chat": "#1f77b4",
    "email": "#ff7f0e",
    "phone": "#2ca02c",
    "social": "#9467bd",
    "tier2": "#8c564b",
}

# ----------------------------------------------------------------------------- KPI table

VERDICT_STYLE: dict[str, dict[str, str]] = {
    BETTER: {"color": "#116329", "backgroundColor": "#dafbe1"},
    WORSE: {"color": "#a40e26", "backgroundColor": "#ffebe9"},
    CHANGED: {"color": "#0a3069", "backgroundColor": "#ddf4ff"},
    UNCLEAR: {"color": "#57606a"},
    NO_INTERVAL: {"color": "#57606a"},
    BASELINE: {"color": "#57606a"},
}
"""Text and background colour of a difference cell by verdict."""
VERDICT_HELP: dict[str, str] = {
    BETTER: "better than the baseline: the 95% interval of the difference excludes zero",
    WORSE: "worse than the baseline: the 95% interval of the difference excludes zero",
    CHANGED: "different from the baseline (interval excludes zero); neither direction is better",
    UNCLEAR: "no clear difference: the 95% interval includes zero",
    NO_INTERVAL: "too few replications for an interval",
    BASELINE: "the baseline",
}


METRIC_LABELS: dict[str, str] = {
    "churn_rate_monthly": "Monthly churn rate",
    "repeat_rate_90d": "Repeat within 90 days",
    "cost_to_serve_per_order": "Cost-to-serve per order",
    "contribution_margin_per_order": "Contribution margin per order",
    "ltv_12m": "LTV (12 months, discounted)",
    "ltv_payback_months": "LTV payback (months)",
    "csat": "CSAT",
    "nps": "NPS",
    "contacts_per_order": "Contacts per order",
    "containment_rate": "Self-service containment",
    "late_delivery_rate": "Late deliveries",
    "return_rate": "Return rate",
    "exchange_share": "Exchanges among returns",
    "email_backlog_peak": "Peak email backlog",
    "orders": "Orders",
    "customers_acquired": "Customers acquired",
    "referred_customers": "Referred customers",
    "revenue": "Revenue",
    "contacts": "Contacts",
    "cost_to_serve": "Cost-to-serve",
    "contribution_margin": "Contribution margin",
    "support_labor_cost": "Support labour cost",
    "cac_total": "Acquisition spend",
}


def metric_label(metric: str) -> str:
    """A readable name for a KPI (the KPI name itself stays visible in the CSV)."""
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    for prefix, text in (
        ("service_level_", "Service level"),
        ("asa_min_", "Average speed of answer"),
        ("abandonment_rate_", "Abandonment"),
        ("occupancy_", "Occupancy"),
        ("cost_per_order_", "Cost per order:"),
    ):
        if metric.startswith(prefix):
            rest = metric[len(prefix) :].replace("_", " ")
            return f"{text} {rest}" if text.endswith(":") else f"{text} – {rest}"
    return metric.replace("_", " ").capitalize()


HEADLINE_METRICS: tuple[str, ...] = (
    "churn_rate_monthly",
    "cost_to_serve_per_order",
    "ltv_payback_months",
)
_CUSTOMER = (
    "churn_rate_monthly",
    "repeat_rate_90d",
    "ltv_12m",
    "ltv_payback_months",
    "csat",
    "nps",
    "orders",
    "customers_acquired",
    "referred_customers",
    "late_delivery_rate",
    "return_rate",
    "exchange_share",
)
_MONEY = (
    "cost_to_serve_per_order",
    "contribution_margin_per_order",
    "revenue",
    "cost_to_serve",
    "contribution_margin",
    "support_labor_cost",
    "cac_total",
    *(f"cost_per_order_{c}" for c in COST_TO_SERVE),
)
_SERVICE = (
    "contacts",
    "contacts_per_order",
    "containment_rate",
    "email_backlog_peak",
    *(
        f"{m}_{p}"
        for m in ("service_level", "asa_min", "abandonment_rate", "occupancy")
        for p in POOLS
    ),
)
METRIC_GROUPS: dict[str, tuple[str, ...] | None] = {
    "headline": (
        "churn_rate_monthly",
        "repeat_rate_90d",
        "cost_to_serve_per_order",
        "contribution_margin_per_order",
        "ltv_12m",
        "ltv_payback_months",
        "csat",
        "nps",
        "contacts_per_order",
        "containment_rate",
        *(f"service_level_{p}" for p in POOLS),
        "email_backlog_peak",
        "late_delivery_rate",
        "return_rate",
        "orders",
        "revenue",
        "contribution_margin",
    ),
    "customers": _CUSTOMER,
    "money": _MONEY,
    "service": _SERVICE,
    "all": None,
}
"""Metric sets the table can show (``None``: every metric, in :data:`METRICS` order)."""
METRIC_GROUP_LABELS: dict[str, str] = {
    "headline": "Headline",
    "customers": "Customers & loyalty",
    "money": "Cost & margin",
    "service": "Service",
    "all": "All metrics",
}


def metrics_in_group(group: str, available: Iterable[str]) -> list[str]:
    """The group's metrics that are present, in display order (unknown group: headline)."""
    have = list(dict.fromkeys(available))
    chosen = METRIC_GROUPS.get(group, METRIC_GROUPS["headline"])
    if chosen is None:
        known = [m for m in METRICS if m in have]
        return known + [m for m in have if m not in METRICS]
    present = set(have)
    return [m for m in chosen if m in present]


TABLE_COLUMNS: tuple[str, ...] = (
    "metric",
    "label",
    "unit",
    "better",
    "scenario",
    "n",
    "mean",
    "ci_low",
    "ci_high",
    "sd",
    "baseline",
    "diff_mean",
    "diff_ci_low",
    "diff_ci_high",
    "diff_n",
    "paired",
    "verdict",
)


def kpi_table_frame(
    summary: pd.DataFrame,
    diffs: pd.DataFrame,
    scenarios: Sequence[str],
    baseline: str,
    metrics: Sequence[str],
) -> pd.DataFrame:
    """One row per (metric, scenario): mean and 95% interval, the paired difference from the
    baseline with its interval, and the verdict (see :func:`verdict`). Columns
    :data:`TABLE_COLUMNS`; rows in ``metrics`` then ``scenarios`` order. This is also the CSV export.
    """
    s = summary[summary["metric"].isin(metrics) & summary["scenario"].isin(scenarios)]
    s = s[["scenario", "metric", "mean", "ci_low", "ci_high", "sd", "n"]]
    if len(diffs):
        d = diffs[diffs["metric"].isin(metrics) & (diffs["baseline"] == baseline)]
        d = d[["scenario", "metric", "mean_diff", "ci_low", "ci_high", "n", "paired"]].rename(
            columns={
                "mean_diff": "diff_mean",
                "ci_low": "diff_ci_low",
                "ci_high": "diff_ci_high",
                "n": "diff_n",
            }
        )
        df = s.merge(d, on=["scenario", "metric"], how="left")
    else:
        df = s.assign(
            diff_mean=np.nan, diff_ci_low=np.nan, diff_ci_high=np.nan, diff_n=np.nan, paired=np.nan
        )
    df = df.assign(
        baseline=baseline,
        label=[metric_label(m) for m in df["metric"]],
        unit=[METRICS[m].unit if m in METRICS else "" for m in df["metric"]],
        better=[METRICS[m].better if m in METRICS else "neutral" for m in df["metric"]],
    )
    df["verdict"] = [
        BASELINE if scen == baseline else verdict(dm, lo, hi, b)
        for scen, dm, lo, hi, b in zip(
            df["scenario"],
            df["diff_mean"],
            df["diff_ci_low"],
            df["diff_ci_high"],
            df["better"],
            strict=True,
        )
    ]
    m_order = {m: i for i, m in enumerate(metrics)}
    s_order = {s_: i for i, s_ in enumerate(scenarios)}
    df = df.assign(_m=df["metric"].map(m_order), _s=df["scenario"].map(s_order))
    df = (
        df.sort_values(["_m", "_s"], kind="stable")
        .drop(columns=["_m", "_s"])
        .reset_index(drop=True)
    )
    return df[list(TABLE_COLUMNS)]


# ----------------------------------------------------------------------------- helpers


def scenario_colours(order: Sequence[str]) -> dict[str, str]:
    """A fixed colour per scenario by its position in the selection (same on every page)."""
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(order)}


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def band_stats(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean and 95% t-interval of ``value`` across the rows of each group (columns ``by`` +
    ``mean, ci_low, ci_high, n``); the same formula as :func:`sim.summary.mean_ci`."""
    g = df.dropna(subset=[value]).groupby(by, sort=True)[value]
    out = g.agg(mean="mean", sd="std", n="count").reset_index()
    n = out["n"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stats.t.ppf(0.5 + CONFIDENCE / 2, np.where(n > 1, n - 1, np.nan))
        half = t * out["sd"].to_numpy(dtype=float) / np.sqrt(n)
    sd0 = out["sd"].to_numpy(dtype=float) == 0
    half = np.where(sd0 & (n > 1), 0.0, half)
    out["ci_low"] = out["mean"] - half
    out["ci_high"] = out["mean"] + half
    return out.drop(columns="sd")


def _band_trace(
    x: Sequence[object], lo: Sequence[float], hi: Sequence[float], colour: str, group: str
) -> go.Scatter:
    lo_a, hi_a = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    ok = np.isfinite(lo_a) & np.isfinite(hi_a)
    xs = [v for v, k in zip(x, ok, strict=True) if k]
    return go.Scatter(
        x=xs + xs[::-1],
        y=list(hi_a[ok]) + list(lo_a[ok][::-1]),
        mode="lines",
        fill="toself",
        fillcolor=_rgba(colour, 0.18),
        line={"width": 0},
        hoverinfo="skip",
        showlegend=False,
        legendgroup=group,
        name=f"{group} 95% interval",
    )


def _style(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "x": 0.01},
        margin={"t": 60, "l": 60, "r": 20, "b": 40},
    )
    return fig


# ----------------------------------------------------------------------------- retention


def retention_curves(cohorts: pd.DataFrame) -> pd.DataFrame:
    """Share of an acquisition cohort still active, and share that has ordered again, by months
    since acquisition, with 95% intervals across replications.

    Per replication the share at month ``m`` pools the cohorts whose month ``m`` is fully observed
    (``complete``): ``sum(active) / sum(customers)`` and ``sum(repeaters) / sum(customers)``.
    Columns: ``scenario, measure ("active"|"repeat"), months_since, mean, ci_low, ci_high, n``.
    """
    cols = ["scenario", "measure", "months_since", "mean", "ci_low", "ci_high", "n"]
    if cohorts.empty:
        return pd.DataFrame(columns=cols)
    c = cohorts[cohorts["complete"].astype(bool)]
    have = [k for k in ("active", "repeaters") if k in c.columns]
    g = (
        c.groupby(["scenario", "replication", "months_since"], sort=True)[["customers", *have]]
        .sum()
        .reset_index()
    )
    g = g[g["customers"] > 0]
    parts = []
    for col, measure in (("active", "active"), ("repeaters", "repeat")):
        if col not in have:
            continue
        g["share"] = g[col] / g["customers"]
        b = band_stats(g, ["scenario", "months_since"], "share")
        b.insert(1, "measure", measure)
        parts.append(b)
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def retention_figure(curves: pd.DataFrame, order: Sequence[str]) -> go.Figure:
    """Two panels (still active, ordered again) with one line per scenario and its 95% band."""
    colours = scenario_colours(order)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Share of the cohort still active", "Share that has ordered again"),
        horizontal_spacing=0.08,
    )
    for col, measure in ((1, "active"), (2, "repeat")):
        for scen in order:
            d = curves[(curves["scenario"] == scen) & (curves["measure"] == measure)].sort_values(
                "months_since"
            )
            if d.empty:
                continue
            fig.add_trace(
                _band_trace(
                    list(d["months_since"]), d["ci_low"], d["ci_high"], colours[scen], scen
                ),
                1,
                col,
            )
            fig.add_trace(
                go.Scatter(
                    x=d["months_since"],
                    y=d["mean"],
                    mode="lines+markers",
                    name=scen,
                    legendgroup=scen,
                    showlegend=col == 1,
                    line={"color": colours[scen], "width": 2},
                    customdata=np.stack([d["ci_low"], d["ci_high"], d["n"]], axis=-1),
                    hovertemplate=(
                        f"<b>{scen}</b><br>month %{{x}}: %{{y:.1%}}"
                        "<br>95% CI %{customdata[0]:.1%} – %{customdata[1]:.1%}"
                        "<br>replications: %{customdata[2]}<extra></extra>"
                    ),
                ),
                1,
                col,
            )
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    fig.update_xaxes(title_text="months since acquisition", dtick=1)
    _style(fig, "Retention and repeat purchase by months since acquisition (95% bands)")
    fig.update_layout(legend={"orientation": "h", "y": -0.18}, hovermode="closest", height=460)
    return fig


# ----------------------------------------------------------------------------- cost-to-serve

_NAMED_COST_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Support labour – chat", ("support_labor_chat",)),
    ("Support labour – email", ("support_labor_email",)),
    ("Support labour – phone", ("support_labor_phone",)),
    ("Support labour – social", ("support_labor_social",)),
    ("Support labour – tier 2", ("support_labor_tier2",)),
    ("Automation", ("automation",)),
    (
        "Returns logistics & write-offs",
        ("returns_shipping", "returns_processing", "returns_writeoff"),
    ),
    ("Reships & exchanges", ("reships", "exchanges")),
    ("Appeasements", ("appeasements",)),
    ("Loyalty rewards & program", ("loyalty_rewards", "loyalty_program")),
)
_NAMED = {c for _, cats in _NAMED_COST_GROUPS for c in cats}
_OTHER = tuple(c for c in COST_TO_SERVE if c not in _NAMED)
COST_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    *_NAMED_COST_GROUPS,
    (f"Other ({', '.join(c.replace('_', ' ') for c in _OTHER)})", _OTHER),
)
"""Stack segments of the cost-to-serve chart and the ledger categories in each; together they
cover every category of the ``cost_to_serve`` group exactly once."""


def cost_breakdown(summary: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Mean cost per order of each :data:`COST_GROUPS` segment per scenario, from the
    ``cost_per_order_<category>`` KPIs. Columns ``scenario, group, per_order``."""
    s = summary[summary["metric"].str.startswith("cost_per_order_")]
    means = {(r.scenario, r.metric[len("cost_per_order_") :]): r.mean for r in s.itertuples()}
    rows = []
    for scen in order:
        for group, cats in COST_GROUPS:
            vals = [
                means[(scen, c)]
                for c in cats
                if (scen, c) in means and math.isfinite(means[(scen, c)])
            ]
            rows.append((scen, group, float(sum(vals)) if vals else 0.0))
    return pd.DataFrame(rows, columns=["scenario", "group", "per_order"])


_SEGMENT_COLOURS = (
    "#08519c",
    "#3182bd",
    "#6baed6",
    "#9ecae1",
    "#c6dbef",
    "#31a354",
    "#e6550d",
    "#fd8d3c",
    "#756bb1",
    "#e7ba52",
    "#969696",
)


def cost_figure(breakdown: pd.DataFrame, totals: pd.DataFrame, order: Sequence[str]) -> go.Figure:
    """Stacked bars of cost per order by segment, one bar per scenario; the total KPI
    (``cost_to_serve_per_order``, mean and 95% interval) is marked on top of each bar."""
    fig = go.Figure()
    for (group, _), colour in zip(COST_GROUPS, _SEGMENT_COLOURS, strict=True):
        d = breakdown[breakdown["group"] == group].set_index("scenario").reindex(order)
        if not (d["per_order"].fillna(0) > 0).any():
            continue
        fig.add_trace(
            go.Bar(
                x=list(order),
                y=d["per_order"],
                name=group,
                marker_color=colour,
                hovertemplate=f"{group}<br>%{{x}}: $%{{y:.2f}} per order<extra></extra>",
            )
        )
    t = totals.set_index("scenario").reindex(order)
    if len(t) and t["mean"].notna().any():
        err_hi = (t["ci_high"] - t["mean"]).to_numpy(dtype=float)
        err_lo = (t["mean"] - t["ci_low"]).to_numpy(dtype=float)
        fig.add_trace(
            go.Scatter(
                x=list(order),
                y=t["mean"],
                mode="markers+text",
                name="Total (95% CI)",
                marker={"color": "#111", "symbol": "line-ew-open", "size": 22},
                error_y={
                    "type": "data",
                    "array": err_hi,
                    "arrayminus": err_lo,
                    "visible": True,
                    "color": "#111",
                },
                text=[format_value(v, "USD/order") for v in t["mean"]],
                textposition="top center",
                hovertemplate="%{x}: total $%{y:.2f} per order<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    _style(fig, "Cost-to-serve per order, by component")
    fig.update_yaxes(title_text="USD per order", tickformat="$,.2f", rangemode="tozero")
    fig.update_layout(legend={"traceorder": "normal"}, height=520)
    return fig


# ----------------------------------------------------------------------------- LTV payback


def ltv_curves(cohorts: pd.DataFrame) -> pd.DataFrame:
    """Cumulative contribution margin per acquired customer by month since acquisition, against
    CAC per acquired customer, with 95% intervals across replications.

    The same pooling as the engine's ``ltv_payback_months`` KPI: per replication and month ``k``
    (``months_since``), over the cohorts that completed month ``k``: margin per customer
    ``sum(margin) / sum(customers)``, accumulated over ``k``, and CAC per customer
    ``sum(cac_usd) / sum(customers)``. ``month = months_since + 1`` (1 = the month of acquisition:
    the cumulative figure is at the end of that month), so the payback month reads like the KPI.
    Columns: ``scenario, month, mean, ci_low, ci_high, n, cac, cac_low, cac_high``.
    """
    cols = ["scenario", "month", "mean", "ci_low", "ci_high", "n", "cac", "cac_low", "cac_high"]
    if cohorts.empty:
        return pd.DataFrame(columns=cols)
    c = cohorts[cohorts["complete"].astype(bool)]
    g = (
        c.groupby(["scenario", "replication", "months_since"], sort=True)[
            ["contribution_margin_usd", "customers", "cac_usd"]
        ]
        .sum()
        .reset_index()
    )
    g = g[g["customers"] > 0]
    g["per_customer"] = g["contribution_margin_usd"] / g["customers"]
    g["cac"] = g["cac_usd"] / g["customers"]
    g["cum"] = g.groupby(["scenario", "replication"], sort=False)["per_customer"].cumsum()
    curve = band_stats(g, ["scenario", "months_since"], "cum")
    cac = band_stats(g, ["scenario", "months_since"], "cac").rename(
        columns={"mean": "cac", "ci_low": "cac_low", "ci_high": "cac_high", "n": "cac_n"}
    )
    out = curve.merge(cac.drop(columns="cac_n"), on=["scenario", "months_since"], how="left")
    out["month"] = out["months_since"] + 1
    return out[cols]


def payback_month(
    months: Sequence[int], values: Sequence[float], targets: float | Sequence[float]
) -> int | None:
    """The first month whose value reaches its target (a number, or one per month); ``None`` if none."""
    tgt = (
        [float(targets)] * len(months)
        if isinstance(targets, int | float)
        else [float(t) for t in targets]
    )
    for m, v, t in zip(months, values, tgt, strict=True):
        if math.isfinite(float(v)) and math.isfinite(t) and float(v) >= t:
            return int(m)
    return None


def payback_table(curves: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Per scenario: CAC per customer (month 1), the payback month of the mean curve, and the months
    at which the curve's upper and lower 95% bounds reach CAC (``None``: not within follow-up).
    Columns ``scenario, cac, payback_month, payback_early, payback_late, months_observed``."""
    rows = []
    for scen in order:
        d = curves[curves["scenario"] == scen].sort_values("month")
        if d.empty:
            continue
        m = list(d["month"])
        rows.append(
            (
                scen,
                float(d["cac"].iloc[0]),
                payback_month(m, d["mean"], d["cac"]),
                payback_month(m, d["ci_high"], d["cac"]),
                payback_month(m, d["ci_low"], d["cac"]),
                int(max(m)),
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "scenario",
            "cac",
            "payback_month",
            "payback_early",
            "payback_late",
            "months_observed",
        ],
    )


def ltv_figure(curves: pd.DataFrame, order: Sequence[str]) -> go.Figure:
    """Cumulative margin per acquired customer vs CAC: a line and band per scenario, CAC as a
    dashed line in the scenario's colour, and the payback month marked with a star."""
    colours = scenario_colours(order)
    fig = go.Figure()
    paybacks = payback_table(curves, order).set_index("scenario")
    for scen in order:
        d = curves[curves["scenario"] == scen].sort_values("month")
        if d.empty:
            continue
        colour = colours[scen]
        found = paybacks.loc[scen, "payback_month"] if scen in paybacks.index else None
        pb = None if found is None or pd.isna(found) else int(found)
        fig.add_trace(_band_trace(list(d["month"]), d["ci_low"], d["ci_high"], colour, scen))
        fig.add_trace(
            go.Scatter(
                x=d["month"],
                y=d["mean"],
                mode="lines+markers",
                name=f"{scen} (payback: month {pb})"
                if pb is not None
                else f"{scen} (no payback yet)",
                legendgroup=scen,
                line={"color": colour, "width": 2},
                customdata=np.stack([d["ci_low"], d["ci_high"], d["cac"]], axis=-1),
                hovertemplate=(
                    f"<b>{scen}</b><br>month %{{x}}: $%{{y:,.2f}} per customer"
                    "<br>95% CI $%{customdata[0]:,.2f} – $%{customdata[1]:,.2f}"
                    "<br>CAC $%{customdata[2]:,.2f}<extra></extra>"
                ),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=d["month"],
                y=d["cac"],
                mode="lines",
                name=f"CAC {scen}",
                legendgroup=scen,
                showlegend=False,
                line={"color": colour, "dash": "dash", "width": 1},
                hovertemplate=f"CAC {scen}: $%{{y:,.2f}} per acquired customer<extra></extra>",
            )
        )
        if pb is not None:
            y = float(d.loc[d["month"] == pb, "mean"].iloc[0])
            fig.add_trace(
                go.Scatter(
                    x=[pb],
                    y=[y],
                    mode="markers",
                    name=f"payback {scen}",
                    legendgroup=scen,
                    showlegend=False,
                    marker={
                        "symbol": "star",
                        "size": 16,
                        "color": colour,
                        "line": {"color": "#111", "width": 1},
                    },
                    hovertemplate=f"{scen} pays back CAC in month %{{x}}<extra></extra>",
                )
            )
    _style(fig, "Cumulative contribution margin per acquired customer vs CAC (dashed), 95% bands")
    fig.update_xaxes(
        title_text="month since acquisition (1 = the month of the first order; cumulative to its end)",
        dtick=1,
    )
    fig.update_yaxes(title_text="USD per acquired customer", tickformat="$,.0f")
    fig.update_layout(legend={"orientation": "h", "y": -0.2}, height=480)
    return fig


# ----------------------------------------------------------------------------- program ROI

PROGRAM_CATEGORIES: tuple[str, ...] = (
    "automation",
    "notifications",
    "onboarding",
    "loyalty_rewards",
    "loyalty_program",
    "winback",
    "appeasements",
)
"""Ledger categories counted as program cost by default (the user can change the set)."""
MIN_PROGRAM_COST_USD = 1.0
"""Below this extra program spend an ROI is not shown (it would divide by ~0)."""


@dataclass(frozen=True)
class Estimate:
    mean: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class RoiResult:
    """Program ROI of ``variant`` against ``baseline`` (see :func:`program_roi`)."""

    variant: str
    baseline: str
    categories: tuple[str, ...]
    paired: bool
    n: int
    incremental_margin: Estimate
    program_cost: Estimate
    roi: Estimate | None
    payback_month: int | None
    payback_early: int | None
    payback_late: int | None
    months: int
    monthly: pd.DataFrame
    note: str = ""


def _ledger_cols(daily: pd.DataFrame, categories: Iterable[str]) -> list[str]:
    return [f"ledger_{c}_usd" for c in categories if f"ledger_{c}_usd" in daily.columns]


def _month_index(dates: pd.Series) -> pd.Series:
    d = pd.to_datetime(dates)
    first = d.min()
    return (d.dt.year - first.year) * 12 + (d.dt.month - first.month) + 1


def _ratio_ci(
    m: np.ndarray, c: np.ndarray, paired: bool, mb: np.ndarray, cb: np.ndarray
) -> Estimate:
    """ROI = mean(Δmargin) / mean(Δcost) with a delta-method 95% interval."""
    if paired:
        n = len(m)
        mm, mc = float(np.mean(m)), float(np.mean(c))
        r = mm / mc
        if n < 2:
            return Estimate(r, math.nan, math.nan)
        cov = np.cov(m, c, ddof=1)
        var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * mc * mc)
        dof = n - 1
    else:
        nv, nb = len(m), len(mb)
        mm = float(np.mean(m) - np.mean(mb))
        mc = float(np.mean(c) - np.mean(cb))
        r = mm / mc
        if nv < 2 or nb < 2:
            return Estimate(r, math.nan, math.nan)
        cv, cbv = np.cov(m, c, ddof=1), np.cov(mb, cb, ddof=1)
        var_m = cv[0, 0] / nv + cbv[0, 0] / nb
        var_c = cv[1, 1] / nv + cbv[1, 1] / nb
        cov_mc = cv[0, 1] / nv + cbv[0, 1] / nb
        var = (var_m - 2 * r * cov_mc + r * r * var_c) / (mc * mc)
        dof = min(nv, nb) - 1
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) * math.sqrt(max(float(var), 0.0))
    return Estimate(r, r - half, r + half)


def program_roi(
    daily: pd.DataFrame,
    variant: str,
    baseline: str,
    categories: Sequence[str] = PROGRAM_CATEGORIES,
) -> RoiResult:
    """Program ROI of ``variant`` against ``baseline`` over the simulated horizon.

    ``daily`` holds both scenarios' daily series with ``scenario, seed, replication, date,
    contribution_margin_usd`` and the signed ``ledger_<category>_usd`` columns. Per replication:

    - incremental margin ``ΔM = margin(variant) - margin(baseline)``; contribution margin already
      includes the program's own costs, so this is the gain net of the program;
    - program cost ``ΔC`` = extra spend on ``categories`` (``-(ledger_variant - ledger_baseline)``);
    - ROI ``= mean(ΔM) / mean(ΔC)`` (0 = break-even; 1 = each program dollar returned two), with a
      delta-method interval;
    - payback: the first calendar month (1 = the first month of the horizon) in which the mean
      cumulative ΔM is ≥ 0; ``payback_early``/``payback_late`` are the months at which the upper /
      lower 95% bound of the cumulative ΔM reaches 0.

    Differences are paired on ``(seed, replication)`` when the two share at least two pairs
    (common random numbers), otherwise Welch intervals are used.
    """
    cats = tuple(categories)
    cost_cols = _ledger_cols(daily, cats)
    keys = ["seed", "replication"]
    sub = daily[daily["scenario"].isin([variant, baseline])].copy()
    sub["month"] = 0
    for scen in (variant, baseline):
        sel = sub["scenario"] == scen
        sub.loc[sel, "month"] = _month_index(sub.loc[sel, "date"]).to_numpy()
    sub["cost"] = -sub[cost_cols].sum(axis=1) if cost_cols else 0.0
    tot = (
        sub.groupby(["scenario", *keys], sort=True)[["contribution_margin_usd", "cost"]]
        .sum()
        .reset_index()
    )
    v, b = tot[tot["scenario"] == variant], tot[tot["scenario"] == baseline]
    shared = v[keys].merge(b[keys], on=keys)
    paired = len(shared) >= MIN_SHARED_PAIRS

    monthly = (
        sub.groupby(["scenario", *keys, "month"], sort=True)["contribution_margin_usd"]
        .sum()
        .reset_index()
    )
    monthly["cum"] = monthly.groupby(["scenario", *keys], sort=False)[
        "contribution_margin_usd"
    ].cumsum()
    months = int(monthly["month"].max()) if len(monthly) else 0

    if paired:
        mm = v.merge(b, on=keys, suffixes=("", "_b"))
        dm = (mm["contribution_margin_usd"] - mm["contribution_margin_usd_b"]).to_numpy(dtype=float)
        dc = (mm["cost"] - mm["cost_b"]).to_numpy(dtype=float)
        inc = Estimate(*mean_ci(dm)[:3])
        cost = Estimate(*mean_ci(dc)[:3])
        n = len(dm)
        mon = monthly[monthly["scenario"] == variant].merge(
            monthly[monthly["scenario"] == baseline], on=[*keys, "month"], suffixes=("", "_b")
        )
        mon["d"] = mon["cum"] - mon["cum_b"]
        rows = [(k, *mean_ci(g["d"])[:3]) for k, g in mon.groupby("month", sort=True)]
        roi_m, roi_c, roi_mb, roi_cb = dm, dc, np.empty(0), np.empty(0)
    else:
        inc = Estimate(*welch_ci(v["contribution_margin_usd"], b["contribution_margin_usd"])[:3])
        cost = Estimate(*welch_ci(v["cost"], b["cost"])[:3])
        n = min(len(v), len(b))
        rows = []
        for k in range(1, months + 1):
            cv = monthly[(monthly["scenario"] == variant) & (monthly["month"] == k)]["cum"]
            cb = monthly[(monthly["scenario"] == baseline) & (monthly["month"] == k)]["cum"]
            if len(cv) and len(cb):
                rows.append((k, *welch_ci(cv, cb)[:3]))
        roi_m, roi_c = v["contribution_margin_usd"].to_numpy(float), v["cost"].to_numpy(float)
        roi_mb, roi_cb = b["contribution_margin_usd"].to_numpy(float), b["cost"].to_numpy(float)
    mon_df = pd.DataFrame(rows, columns=["month", "mean", "ci_low", "ci_high"])

    note = ""
    roi: Estimate | None = None
    if n == 0:
        note = "The two scenarios have no replications in common to compare."
    elif not cost_cols:
        note = "None of the chosen categories is in the daily results, so there is no program cost to divide by."
    elif not (math.isfinite(cost.mean) and cost.mean >= MIN_PROGRAM_COST_USD):
        note = (
            f"{variant} does not spend more than {baseline} on the chosen program categories "
            f"(difference {format_diff(cost.mean, 'USD')}), so an ROI is not defined; "
            "read the incremental margin instead."
        )
    else:
        roi = _ratio_ci(roi_m, roi_c, paired, roi_mb, roi_cb)
    ms = list(mon_df["month"])
    return RoiResult(
        variant=variant,
        baseline=baseline,
        categories=cats,
        paired=paired,
        n=int(n),
        incremental_margin=inc,
        program_cost=cost,
        roi=roi,
        payback_month=payback_month(ms, mon_df["mean"], 0.0) if ms else None,
        payback_early=payback_month(ms, mon_df["ci_high"], 0.0) if ms else None,
        payback_late=payback_month(ms, mon_df["ci_low"], 0.0) if ms else None,
        months=months,
        monthly=mon_df,
        note=note,
    )


def roi_figure(res: RoiResult, colour: str = PALETTE[1]) -> go.Figure:
    """Left: incremental margin and program cost with 95% error bars. Right: cumulative
    incremental margin by month of the horizon with its band, zero line and payback marker."""
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.35, 0.65],
        subplot_titles=("Over the horizon", "Cumulative incremental margin by month"),
        horizontal_spacing=0.1,
    )
    ests = [("Incremental margin", res.incremental_margin), ("Program cost", res.program_cost)]
    fig.add_trace(
        go.Bar(
            x=[name for name, _ in ests],
            y=[e.mean for _, e in ests],
            marker_color=[colour, "#969696"],
            error_y={
                "type": "data",
                "array": [e.ci_high - e.mean for _, e in ests],
                "arrayminus": [e.mean - e.ci_low for _, e in ests],
                "visible": True,
            },
            text=[format_value(e.mean, "USD") for _, e in ests],
            textposition="outside",
            showlegend=False,
            hovertemplate="%{x}: $%{y:,.0f}<extra></extra>",
        ),
        1,
        1,
    )
    m = res.monthly
    if len(m):
        fig.add_trace(
            _band_trace(list(m["month"]), m["ci_low"], m["ci_high"], colour, res.variant), 1, 2
        )
        fig.add_trace(
            go.Scatter(
                x=m["month"],
                y=m["mean"],
                mode="lines+markers",
                name=f"{res.variant} − {res.baseline}",
                line={"color": colour, "width": 2},
                hovertemplate="month %{x}: $%{y:,.0f}<extra></extra>",
                showlegend=False,
            ),
            1,
            2,
        )
        fig.add_hline(y=0, line={"color": "#111", "width": 1, "dash": "dot"}, row=1, col=2)
        if res.payback_month is not None:
            y = float(m.loc[m["month"] == res.payback_month, "mean"].iloc[0])
            fig.add_trace(
                go.Scatter(
                    x=[res.payback_month],
                    y=[y],
                    mode="markers+text",
                    marker={
                        "symbol": "star",
                        "size": 16,
                        "color": colour,
                        "line": {"color": "#111", "width": 1},
                    },
                    text=[f"pays back: month {res.payback_month}"],
                    textposition="top left",
                    showlegend=False,
                    hovertemplate="payback in month %{x}<extra></extra>",
                ),
                1,
                2,
            )
    fig.update_yaxes(tickformat="$~s", row=1, col=1)
    fig.update_yaxes(tickformat="$~s", row=1, col=2)
    fig.update_xaxes(title_text="month of the horizon", dtick=1, row=1, col=2)
    _style(fig, f"Program ROI: {res.variant} vs {res.baseline}")
    fig.update_layout(height=420)
    return fig


# ----------------------------------------------------------------------------- peak service


def black_friday(year: int) -> dt.date:
    """The day after the fourth Thursday of November."""
    first = dt.date(year, 11, 1)
    thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7)
    return thursday + dt.timedelta(days=21 + 1)


def peak_windows(
    start_date: dt.date, horizon_days: int
) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """Zoom windows ``[start, end)`` within the horizon: ``"bf"`` the Black Friday week (Monday of
    Thanksgiving week to the end of Cyber Monday), ``"season"`` mid-November to early January, and
    ``"all"`` the whole horizon. ``"bf"`` and ``"season"`` are absent when outside the horizon."""
    lo = pd.Timestamp(start_date)
    hi = lo + pd.Timedelta(days=horizon_days)
    out: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
    for year in range(lo.year, hi.year + 1):
        bf = pd.Timestamp(black_friday(year))
        week = (bf - pd.Timedelta(days=4), bf + pd.Timedelta(days=4))
        if "bf" not in out and week[0] < hi and week[1] > lo:
            out["bf"] = (max(week[0], lo), min(week[1], hi))
            season = (pd.Timestamp(year, 11, 15), pd.Timestamp(year + 1, 1, 8))
            out["season"] = (max(season[0], lo), min(season[1], hi))
    out["all"] = (lo, hi)
    return out


def sla_targets(scenario: dict[str, object]) -> dict[str, float]:
    """SLA target share per pool from a resolved scenario mapping."""
    out: dict[str, float] = {}
    contacts = scenario.get("contacts") if isinstance(scenario, dict) else None
    if not isinstance(contacts, dict):
        return out
    for ch, cfg in (contacts.get("channels") or {}).items():
        if isinstance(cfg, dict) and "sla_target" in cfg:
            out[ch] = float(cfg["sla_target"])
    tier2 = contacts.get("tier2")
    if isinstance(tier2, dict):
        out["tier2"] = float(tier2.get("sla_target", 0.8))
    return out


DAILY_RESOLUTION_DAYS = 35
"""Windows longer than this are shown per day (sums of the interval counts) instead of per interval."""


def service_series(
    intervals: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[pd.DataFrame, str]:
    """Interval series of one scenario within ``[start, end)``: ``time, pool, service_level,
    abandonment, occupancy, backlog``, per interval or (long windows) per day. Returns the frame
    and its resolution (``"interval"`` or ``"day"``)."""
    t = pd.to_datetime(intervals["interval_start"])
    d = intervals[(t >= start) & (t < end)].copy()
    d["time"] = pd.to_datetime(d["interval_start"])
    offered = d["answered"] + d["abandoned"]
    if (end - start).days <= DAILY_RESOLUTION_DAYS:
        with np.errstate(invalid="ignore", divide="ignore"):
            d["abandonment"] = np.where(offered > 0, d["abandoned"] / offered, np.nan)
        d["backlog"] = d["queue_end"]
        return d[
            ["time", "pool", "service_level", "abandonment", "occupancy", "backlog"]
        ], "interval"
    d["day"] = d["time"].dt.floor("D")
    g = d.groupby(["pool", "day"], sort=True)
    s = g[["answered_within_sla", "answered", "abandoned", "busy_min", "staffed_min"]].sum()
    s["backlog"] = g["queue_end"].max()
    off = s["answered"] + s["abandoned"]
    with np.errstate(invalid="ignore", divide="ignore"):
        s["service_level"] = np.where(off > 0, s["answered_within_sla"] / off, np.nan)
        s["abandonment"] = np.where(off > 0, s["abandoned"] / off, np.nan)
        s["occupancy"] = np.where(s["staffed_min"] > 0, s["busy_min"] / s["staffed_min"], np.nan)
    s = s.reset_index().rename(columns={"day": "time"})
    return s[["time", "pool", "service_level", "abandonment", "occupancy", "backlog"]], "day"


def daily_reasons(daily: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Mean over replications of each ``contacts_<reason>`` per date within ``[start, end)``."""
    cols = [f"contacts_{r}" for r in REASONS if f"contacts_{r}" in daily.columns]
    dates = pd.to_datetime(daily["date"])
    d = daily[(dates >= start) & (dates < end)]
    out = d.groupby(pd.to_datetime(d["date"]), sort=True)[cols].mean()
    out.index.name = "date"
    return out.reset_index()



def _share_line(
    fig: go.Figure, d: pd.DataFrame, pool: str, colour: str, column: str, label: str, row: int, first: bool = False
) -> None:
    """One pool's share series (service level, abandonment, occupancy) in its panel of the peak figure."""
    fig.add_trace(
        go.Scatter(
            x=d["time"],
            y=d[column],
            name=pool,
            legendgroup=pool,
            showlegend=first,
            line={"color": colour, "width": 1.4 if first else 1.2},
            hovertemplate=f"{pool} %{{x}}<br>{label} %{{y:.1%}}<extra></extra>",
        ),
        row,
        1,
    )


def peak_service_figure(
    intervals: pd.DataFrame,
    daily: pd.DataFrame,
    targets: dict[str, float],
    window: tuple[pd.Timestamp, pd.Timestamp],
    bf_week: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    title: str = "",
) -> go.Figure:
    """Service during a window for one scenario: service level per pool against its SLA target
    (dashed), abandonment, occupancy, the email (and tier-2) backlog, and contacts by reason per
    day; shared time axis with a range slider and, when the Black Friday week is inside the
    window, a button zooming to it."""
    series, resolution = service_series(intervals, *window)
    reasons = daily_reasons(daily, *window)
    fig = make_subplots(
        rows=5,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.035,
        row_heights=[0.26, 0.16, 0.16, 0.18, 0.24],
        subplot_titles=(
            "Service level vs SLA target (dashed)",
            "Abandonment (live channels)",
            "Occupancy",
            "Backlog at interval end (email, tier 2)"
            if resolution == "interval"
            else "Peak backlog of the day",
            "Contacts by reason per day (mean over replications)",
        ),
    )
    pools = [p for p in POOLS if p in set(series["pool"])] + sorted(
        set(series["pool"]) - set(POOLS)
    )
    x0, x1 = window
    for pool in pools:
        d = series[series["pool"] == pool]
        colour = POOL_COLOURS.get(pool, "#444")

        _share_line(fig, d, pool, colour, "service_level", "service level", 1, first=True)
        if pool in targets:
            fig.add_trace(
                go.Scatter(
                    x=[x0, x1],
                    y=[targets[pool]] * 2,
                    mode="lines",
                    name=f"{pool} target",
                    legendgroup=pool,
                    showlegend=False,
                    line={"color": colour, "dash": "dash", "width": 1},
                    hovertemplate=f"{pool} SLA target {targets[pool]:.0%}<extra></extra>",
                ),
                1,
                1,
            )
        if d["abandonment"].fillna(0).gt(0).any():
            _share_line(fig, d, pool, colour, "abandonment", "abandoned", 2)
        _share_line(fig, d, pool, colour, "occupancy", "occupancy", 3)
        if pool in ("email", "tier2"):
            fig.add_trace(
                go.Scatter(
                    x=d["time"],
                    y=d["backlog"],
                    name=pool,
                    legendgroup=pool,
                    showlegend=False,
                    line={"color": colour, "width": 1.4},
                    fill="tozeroy",
                    fillcolor=_rgba(colour, 0.12),
                    hovertemplate=f"{pool} backlog %{{y:,.0f}} at %{{x}}<extra></extra>",
                ),
                4,
                1,
            )
    reason_colours = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")
    for reason, colour in zip(REASONS, reason_colours, strict=True):
        col = f"contacts_{reason}"
        if col not in reasons.columns:
            continue
        fig.add_trace(
            go.Bar(
                x=reasons["date"],
                y=reasons[col],
                name=reason.replace("_", " "),
                marker_color=colour,
                legendgroup=f"reason-{reason}",
                xperiod=86_400_000,
                xperiodalignment="middle",
                hovertemplate=f"{reason.replace('_', ' ')} %{{x|%a %d %b}}: %{{y:,.0f}}<extra></extra>",
            ),
            5,
            1,
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=2, col=1)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=3, col=1)
    fig.update_yaxes(rangemode="tozero", row=4, col=1)
    fig.update_xaxes(range=[x0, x1])
    fig.update_xaxes(rangeslider={"visible": True, "thickness": 0.05}, row=5, col=1)
    if resolution == "interval":  # a label per day, centred on it
        fig.update_xaxes(
            dtick=86_400_000, tickformat="%a %d %b", ticklabelmode="period", row=5, col=1
        )
    if (
        bf_week is not None
        and bf_week[0] >= x0
        and bf_week[1] <= x1
        and tuple(bf_week) != tuple(window)
    ):
        rng_bf = [bf_week[0], bf_week[1]]
        axes = [f"xaxis{'' if i == 1 else i}.range" for i in range(1, 6)]
        fig.update_layout(
            updatemenus=[
                {
                    "type": "buttons",
                    "direction": "right",
                    "x": 1.0,
                    "xanchor": "right",
                    "y": 1.06,
                    "yanchor": "bottom",
                    "buttons": [
                        {
                            "label": "Black Friday week",
                            "method": "relayout",
                            "args": [{a: list(rng_bf) for a in axes}],
                        },
                        {
                            "label": "Whole window",
                            "method": "relayout",
                            "args": [{a: [x0, x1] for a in axes}],
                        },
                    ],
                }
            ]
        )
    _style(fig, title or "Service during the peak")
    fig.update_layout(
        height=980,
        legend={"orientation": "h", "y": 1.035, "x": 0, "yanchor": "bottom"},
        hovermode="x unified",
    )
    fig.update_layout(margin={"t": 110})
    return fig
