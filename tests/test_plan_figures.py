"""Plan figures and report, on synthetic planner frames whose values are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.plan_figures import (
    agents_figure,
    check_plan,
    coverage_gap_figure,
    margin_curve_figure,
    service_level_figure,
    shift_starts_figure,
)
from dashboard.plan_report import plan_report_html, summary_table_html


def _plan() -> pd.DataFrame:
    times = pd.date_range("2025-03-03", periods=48, freq="30min")
    rows = []
    for ch, offset in (("chat", 0), ("email", 1)):
        slot = np.arange(48)
        is_open = (slot >= 16) & (slot < 40)
        req = np.where(is_open, 3 + offset + (slot % 3), 0)
        rows.append(pd.DataFrame({
            "channel": ch, "interval_start": times, "open": is_open,
            "arrivals_expected": np.where(is_open, 20.0, 0.0),
            "required_agents": req, "required_agents_erlang": np.where(is_open, req - 1, 0),
            "scheduled_agents": np.where(is_open, 5, 0),
            "service_level_target": 0.8,
            "service_level_sim": np.where(is_open, 0.85, np.nan),
            "service_level_erlang_plan": np.where(is_open, 0.7, np.nan),
            "abandonment_sim": 0.02, "occupancy_sim": 0.8,
            "backlog_end": 0.0, "labor_cost_usd": np.where(is_open, 5 * 12.5, 0.0),
        }))
    return pd.concat(rows, ignore_index=True)


def _shifts() -> pd.DataFrame:
    t = pd.Timestamp("2025-03-03")
    return pd.DataFrame({
        "channel": ["chat", "chat", "chat", "email"],
        "shift_type": ["8h", "8h", "4h", "8h"],
        "start": [t + pd.Timedelta(hours=8), t + pd.Timedelta(hours=8, minutes=30), t + pd.Timedelta(hours=12), t + pd.Timedelta(hours=9)],
        "end": [t + pd.Timedelta(hours=16), t + pd.Timedelta(hours=16, minutes=30), t + pd.Timedelta(hours=16), t + pd.Timedelta(hours=17)],
        "break_start": [t + pd.Timedelta(hours=12), pd.NaT, pd.NaT, t + pd.Timedelta(hours=13)],
        "break_end": [t + pd.Timedelta(hours=12, minutes=30), pd.NaT, pd.NaT, t + pd.Timedelta(hours=13, minutes=30)],
        "agents": [3, 2, 4, 6], "paid_hours": [24.0, 16.0, 16.0, 48.0], "cost_usd": [300.0, 200.0, 200.0, 600.0],
    })


def _traces(fig: go.Figure, name: str) -> list[go.BaseTraceType]:
    return [t for t in fig.data if t.name == name]


def test_agents_figure_steps_with_gaps_when_closed() -> None:
    plan = _plan()
    fig = agents_figure(plan)
    req = _traces(fig, "required (refined)")
    assert len(req) == 2 and all(t.line.shape == "hv" for t in fig.data)
    chat = plan[plan["channel"] == "chat"]
    y = np.asarray(req[0].y, dtype=float)
    assert np.all(np.isnan(y[~chat["open"].to_numpy()]))  # closed: gap, not zero
    np.testing.assert_array_equal(y[chat["open"].to_numpy()], chat.loc[chat["open"], "required_agents"].to_numpy(float))
    assert {t.name for t in fig.data} == {"required (refined)", "Erlang per interval", "scheduled (shifts)"}


def test_coverage_gap_is_scheduled_minus_required() -> None:
    plan = _plan()
    fig = coverage_gap_figure(plan)
    email = plan[plan["channel"] == "email"]
    y = np.asarray(fig.data[1].y, dtype=float)
    o = email["open"].to_numpy()
    np.testing.assert_array_equal(y[o], (email["scheduled_agents"] - email["required_agents"]).to_numpy(float)[o])
    assert np.all(np.isnan(y[~o]))
    colours = np.asarray(fig.data[1].marker.color)[o]
    np.testing.assert_array_equal(colours == "#d62728", y[o] < 0)  # under-staffing in red
    assert (y[o] < 0).any() and (y[o] > 0).any()


def test_service_level_figure_has_both_plans_and_target() -> None:
    fig = service_level_figure(_plan())
    assert len(_traces(fig, "scheduled (refined) plan")) == 2
    erl = np.asarray(_traces(fig, "Erlang plan")[0].y, dtype=float)
    assert np.nanmax(erl) == pytest.approx(0.7) and np.isnan(erl[0])
    tgt = np.asarray(_traces(fig, "target")[0].y, dtype=float)
    assert np.nanmin(tgt) == pytest.approx(0.8)


def test_shift_starts_stacked_by_type() -> None:
    fig = shift_starts_figure(_shifts())
    assert fig.layout.barmode == "stack"
    chat_8h = next(t for t in fig.data if t.name == "8h" and t.xaxis in ("x", "x1"))
    y = np.asarray(chat_8h.y)
    assert y[8] == 5 and y.sum() == 5  # 3 at 08:00 and 2 at 08:30 both start in hour 8
    chat_4h = next(t for t in fig.data if t.name == "4h" and t.xaxis in ("x", "x1"))
    assert np.asarray(chat_4h.y)[12] == 4
    email_8h = next(t for t in fig.data if t.name == "8h" and t.xaxis == "x2")
    assert np.asarray(email_8h.y)[9] == 6


def _curve() -> pd.DataFrame:
    rows = []
    for tgt in (0.7, 0.8, 0.9):
        for m, base in (("labor_cost_usd", 1e5), ("monthly_churn", 0.05), ("ltv_usd", 120.0), ("margin_usd", 4e5)):
            v = base * (1 + tgt)
            rows.append({"target": tgt, "metric": m, "mean": v, "ci_low": 0.95 * v, "ci_high": 1.05 * v})
    return pd.DataFrame(rows)


def test_margin_curve_bands_enclose_mean() -> None:
    curve = _curve()
    fig = margin_curve_figure(curve)
    bands = [t for t in fig.data if t.fill == "toself"]
    means = [t for t in fig.data if t.fill != "toself"]
    assert len(bands) == 4 and len(means) == 4
    for band, mean in zip(bands, means, strict=True):
        yb = np.asarray(band.y, dtype=float)
        ym = np.asarray(mean.y, dtype=float)
        n = ym.size
        assert np.all(yb[:n] >= ym) and np.all(yb[n:][::-1] <= ym)
    assert list(np.asarray(means[0].x)) == [0.7, 0.8, 0.9]


def test_report_is_self_contained_with_plotly_once() -> None:
    summary = {
        "chat": {"judged": 24, "target": 0.8, "meet_share_refined": 0.96, "meet_share_erlang": 0.71, "iterations": 3,
                 "labor_cost_usd": 1100.0, "labor_cost_input_usd": 1000.0, "realtime": True},
        "email": {"judged": 2, "target": 0.8, "meet_share_refined": 1.0, "meet_share_erlang": math.nan, "iterations": 0,
                  "labor_cost_usd": 600.0, "labor_cost_input_usd": 800.0, "realtime": False},
    }
    page = plan_report_html(_plan(), _shifts(), summary, margin_curve=_curve(), title="Plan <test>")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("Plotly.newPlot") == 5  # five charts
    # plotly.js itself is inlined exactly once and nothing is fetched from the network
    assert page.count("* plotly.js v") == 1
    assert "<script src=" not in page
    assert "Plan &lt;test&gt;" in page
    assert "+10.0%" in page and "-25.0%" in page  # cost vs input plan
    assert "96.0%" in page and "71.0%" in page
    assert "24 open intervals" in page and "2 days" in page


def test_summary_table_and_bad_frames() -> None:
    table = summary_table_html({"phone": {"open_intervals": 10, "meet_share_refined": 0.5, "realtime": True}})
    assert "phone" in table and "50.0%" in table and "–" in table
    with pytest.raises(ValueError, match="required_agents_erlang"):
        check_plan(_plan().drop(columns="required_agents_erlang"))
    dup = pd.concat([_plan().iloc[:1], _plan().iloc[:1]])
    with pytest.raises(ValueError, match="two rows for channel chat"):
        check_plan(dup)
