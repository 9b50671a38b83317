"""Figure and table builders of the dashboard, on small frames whose numbers are known by hand."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

import sim.formatting as fmt
from dashboard import figures as fg
from sim.results import COST_TO_SERVE, METRICS
from sim.summary import mean_ci, paired_differences, summarize, welch_ci

# ----------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.1234, "share", "12.3%"),
        (9.876, "USD/order", "$9.88"),
        (-1234.5, "USD", "−$1,234"),
        (12.5, "USD", "$12.50"),
        (142974.2, "orders", "142,974"),
        (7.0, "months", "7.0"),
        (0.2561, "contacts/order", "0.256"),
        (math.nan, "share", "—"),
    ],
)
def test_format_value(value: float, unit: str, text: str) -> None:
    assert fmt.format_value(value, unit) == text


def test_format_diff_is_signed_and_shares_are_percentage_points() -> None:
    assert fmt.format_diff(0.0123, "share") == "+1.23 pp"
    assert fmt.format_diff(-0.17, "USD/order") == "−$0.17"
    assert fmt.format_interval(-0.3, 0.1, "USD/order", diff=True) == "−$0.30 to +$0.10"
    assert fmt.format_interval(math.nan, 1.0, "share") == "no interval"


# ----------------------------------------------------------------------------- verdicts and the KPI table


@pytest.mark.parametrize(
    ("diff", "lo", "hi", "better", "expected"),
    [
        (-0.02, -0.03, -0.01, "lower", fmt.BETTER),  # churn down, interval excludes 0
        (0.02, 0.01, 0.03, "lower", fmt.WORSE),  # churn up
        (0.02, 0.01, 0.03, "higher", fmt.BETTER),  # csat up
        (-0.02, -0.03, -0.01, "higher", fmt.WORSE),
        (0.02, 0.01, 0.03, "neutral", fmt.CHANGED),  # occupancy: a change, no direction
        (0.02, -0.01, 0.05, "higher", fmt.UNCLEAR),  # interval includes 0
        (0.0, 0.0, 0.0, "lower", fmt.UNCLEAR),  # identical in every replication
        (0.5, 0.5, 0.5, "lower", fmt.WORSE),  # deterministic, non-zero
        (0.02, math.nan, math.nan, "higher", fmt.NO_INTERVAL),  # one replication
        (math.nan, math.nan, math.nan, "higher", fmt.NO_INTERVAL),
    ],
)
def test_verdict_rules(diff: float, lo: float, hi: float, better: str, expected: str) -> None:
    assert fmt.verdict(diff, lo, hi, better) == expected


def kpis_frame() -> pd.DataFrame:
    """Three scenarios x 4 replications sharing seeds; values chosen so the verdicts differ."""
    rows = []
    base = {"churn_rate_monthly": [0.20, 0.22, 0.21, 0.19], "csat": [0.80, 0.82, 0.79, 0.81]}
    shift = {
        "alerts": {"churn_rate_monthly": -0.02, "csat": 0.0},
        "cheap": {"churn_rate_monthly": 0.015, "csat": -0.03},
    }
    noise = [0.001, -0.001, 0.002, -0.002]
    for r in range(4):
        for metric, values in base.items():
            rows.append(("baseline", r, 7, metric, values[r]))
            for scen, d in shift.items():
                rows.append((scen, r, 7, metric, values[r] + d[metric] + noise[r]))
    return pd.DataFrame(rows, columns=["scenario", "replication", "seed", "metric", "value"])


def test_kpi_table_difference_is_the_paired_mean_difference() -> None:
    kpis = kpis_frame()
    summary, diffs = summarize(kpis), paired_differences(kpis, "baseline")
    order = ["baseline", "alerts", "cheap"]
    frame = fg.kpi_table_frame(summary, diffs, order, "baseline", ["churn_rate_monthly", "csat"])
    assert list(frame.columns) == list(fg.TABLE_COLUMNS)
    assert list(frame["scenario"]) == order * 2  # metric-major, then selection order
    for scen in ("alerts", "cheap"):
        for metric in ("churn_rate_monthly", "csat"):
            k = kpis[kpis["metric"] == metric]
            x = k[k["scenario"] == scen].sort_values("replication")["value"].to_numpy()
            b = k[k["scenario"] == "baseline"].sort_values("replication")["value"].to_numpy()
            mean, lo, hi, _sd, n = mean_ci(x - b)
            row = frame[(frame["scenario"] == scen) & (frame["metric"] == metric)].iloc[0]
            assert row["diff_mean"] == pytest.approx(mean)
            assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx((lo, hi))
            assert row["diff_n"] == n == 4
            assert row["paired"]
            assert row["mean"] == pytest.approx(x.mean())
    verdicts = frame.set_index(["metric", "scenario"])["verdict"]
    assert verdicts[("churn_rate_monthly", "baseline")] == fmt.BASELINE
    assert verdicts[("churn_rate_monthly", "alerts")] == fmt.BETTER  # churn is "lower is better"
    assert verdicts[("churn_rate_monthly", "cheap")] == fmt.WORSE
    assert verdicts[("csat", "cheap")] == fmt.WORSE
    assert verdicts[("csat", "alerts")] == fmt.UNCLEAR  # the noise averages to 0: interval spans 0
    assert frame.loc[frame["metric"] == "csat", "unit"].iloc[0] == METRICS["csat"].unit


def test_metric_groups() -> None:
    have = ["csat", "churn_rate_monthly", "custom_metric", "cost_per_order_reships"]
    assert fg.metrics_in_group("headline", have) == ["churn_rate_monthly", "csat"]
    known = [m for m in METRICS if m in have]  # METRICS order
    assert fg.metrics_in_group("all", have) == [
        *known,
        "custom_metric",
    ]  # unknown: kept, at the end
    assert len(known) == 3
    assert fg.metrics_in_group("no-such-group", have) == fg.metrics_in_group("headline", have)


def test_band_stats_matches_summary_intervals() -> None:
    df = pd.DataFrame({"g": ["a"] * 5 + ["b"], "v": [1.0, 2.0, 4.0, 8.0, 16.0, 3.0]})
    out = fg.band_stats(df, ["g"], "v").set_index("g")
    mean, lo, hi, _sd, n = mean_ci(df.loc[df["g"] == "a", "v"])
    assert (out.loc["a", "mean"], out.loc["a", "ci_low"], out.loc["a", "ci_high"]) == pytest.approx(
        (mean, lo, hi)
    )
    assert out.loc["a", "n"] == n == 5
    assert math.isnan(out.loc["b", "ci_low"])  # one value: no interval


# ----------------------------------------------------------------------------- retention


def cohorts_frame() -> pd.DataFrame:
    """Two replications, two monthly cohorts; the second cohort's month 1 is not complete."""
    rows = []
    #            rep, cohort,      m, customers, active, repeaters, margin, cac,    complete
    spec = [
        (0, "2026-09-01", 0, 100, 80, 10, 2000.0, 4500.0, True),
        (0, "2026-09-01", 1, 100, 60, 20, 1000.0, 4500.0, True),
        (0, "2026-09-01", 2, 100, 50, 25, 1500.0, 4500.0, True),
        (0, "2026-10-01", 0, 200, 150, 30, 4000.0, 9000.0, True),
        (0, "2026-10-01", 1, 200, 130, 50, 3000.0, 9000.0, False),
        (1, "2026-09-01", 0, 100, 70, 12, 2500.0, 4500.0, True),
        (1, "2026-09-01", 1, 100, 50, 22, 1500.0, 4500.0, True),
        (1, "2026-09-01", 2, 100, 45, 24, 1000.0, 4500.0, True),
        (1, "2026-10-01", 0, 200, 160, 28, 5000.0, 9000.0, True),
        (1, "2026-10-01", 1, 200, 120, 40, 2000.0, 9000.0, False),
    ]
    for rep, cohort, m, cust, active, rpt, margin, cac, complete in spec:
        rows.append(
            {
                "scenario": "baseline",
                "replication": rep,
                "cohort": pd.Timestamp(cohort),
                "months_since": m,
                "customers": cust,
                "active": active,
                "repeaters": rpt,
                "orders": cust,
                "revenue_usd": margin * 3,
                "contribution_margin_usd": margin,
                "cac_usd": cac,
                "complete": complete,
            }
        )
    return pd.DataFrame(rows)


def test_retention_curves_pool_complete_cohorts_then_band_over_replications() -> None:
    curves = fg.retention_curves(cohorts_frame())
    active = curves[curves["measure"] == "active"].set_index("months_since")
    # month 0 pools both cohorts: rep 0 (80+150)/300, rep 1 (70+160)/300
    m0 = mean_ci(np.array([230 / 300, 230 / 300]))
    assert active.loc[0, "mean"] == pytest.approx(m0[0])
    # month 1: only the first cohort is complete: 60/100 and 50/100
    m1 = mean_ci(np.array([0.6, 0.5]))
    assert (
        active.loc[1, "mean"],
        active.loc[1, "ci_low"],
        active.loc[1, "ci_high"],
    ) == pytest.approx(m1[:3])
    repeat = curves[curves["measure"] == "repeat"].set_index("months_since")
    assert repeat.loc[2, "mean"] == pytest.approx((0.25 + 0.24) / 2)
    fig = fg.retention_figure(curves, ["baseline"])
    lines = [t for t in fig.data if t.name == "baseline" and t.mode == "lines+markers"]
    assert len(lines) == 2
    assert list(lines[0].y) == pytest.approx(list(active["mean"]))


def test_retention_of_empty_cohorts_is_empty() -> None:
    assert fg.retention_curves(cohorts_frame().iloc[0:0]).empty


# ----------------------------------------------------------------------------- LTV payback


def test_ltv_curve_and_payback_month_follow_the_kpi_definition() -> None:
    curves = fg.ltv_curves(cohorts_frame())
    c = curves.set_index("month")
    # rep 0: month 1 pools both cohorts (6000/300 = 20), month 2 only cohort 1 (1000/100 = 10),
    # month 3 cohort 1 (15): cumulative 20, 30, 45. rep 1: 7500/300 = 25, 15, 10 -> 25, 40, 50.
    assert c.loc[1, "mean"] == pytest.approx((20 + 25) / 2)
    assert c.loc[2, "mean"] == pytest.approx((30 + 40) / 2)
    assert c.loc[3, "mean"] == pytest.approx((45 + 50) / 2)
    assert c.loc[1, "cac"] == pytest.approx(45.0)  # 13500 / 300
    table = fg.payback_table(curves, ["baseline"]).iloc[0]
    # the first month whose mean cumulative margin (47.5 in month 3) reaches CAC (45)
    first = next(m for m in c.index if c.loc[m, "mean"] >= c.loc[m, "cac"])
    assert table["payback_month"] == first == 3
    fig = fg.ltv_figure(curves, ["baseline"])
    marker = [t for t in fig.data if t.name == "payback baseline"]
    assert len(marker) == 1 and list(marker[0].x) == [3]
    assert [t.name for t in fig.data if t.mode == "lines+markers"] == [
        "baseline (payback: month 3)"
    ]
    assert marker[0].y[0] == pytest.approx(c.loc[3, "mean"])


def test_no_payback_marker_when_never_reached() -> None:
    cohorts = cohorts_frame().assign(cac_usd=lambda d: d["cac_usd"] * 10)
    curves = fg.ltv_curves(cohorts)
    assert fg.payback_table(curves, ["baseline"]).iloc[0]["payback_month"] is None
    assert not [
        t for t in fg.ltv_figure(curves, ["baseline"]).data if (t.name or "").startswith("payback")
    ]


def test_payback_month_helper() -> None:
    assert fg.payback_month([1, 2, 3], [5.0, 9.9, 10.0], 10.0) == 3
    assert fg.payback_month([1, 2, 3], [5.0, 12.0, 13.0], [6.0, 11.0, 20.0]) == 2
    assert fg.payback_month([1, 2], [1.0, math.nan], 2.0) is None


# ----------------------------------------------------------------------------- cost-to-serve


def test_cost_groups_cover_every_cost_to_serve_category_once() -> None:
    cats = [c for _, group in fg.COST_GROUPS for c in group]
    assert sorted(cats) == sorted(COST_TO_SERVE)


def test_cost_breakdown_sums_the_per_order_components() -> None:
    rows = []
    for i, cat in enumerate(COST_TO_SERVE):
        rows.append(("a", f"cost_per_order_{cat}", 0.1 * (i + 1)))
        rows.append(("b", f"cost_per_order_{cat}", 0.2 * (i + 1)))
    summary = pd.DataFrame(rows, columns=["scenario", "metric", "mean"]).assign(
        ci_low=0.0, ci_high=0.0, sd=0.0, n=3
    )
    br = fg.cost_breakdown(summary, ["a", "b"])
    total_a = sum(0.1 * (i + 1) for i in range(len(COST_TO_SERVE)))
    assert br[br["scenario"] == "a"]["per_order"].sum() == pytest.approx(total_a)
    returns = br[(br["scenario"] == "b") & (br["group"] == "Returns logistics & write-offs")][
        "per_order"
    ].iloc[0]
    idx = {c: i for i, c in enumerate(COST_TO_SERVE)}
    expected = sum(
        0.2 * (idx[c] + 1) for c in ("returns_shipping", "returns_processing", "returns_writeoff")
    )
    assert returns == pytest.approx(expected)
    totals = pd.DataFrame(
        {
            "scenario": ["a", "b"],
            "mean": [total_a, 2 * total_a],
            "ci_low": [1.0, 2.0],
            "ci_high": [3.0, 4.0],
        }
    )
    fig = fg.cost_figure(br, totals, ["a", "b"])
    assert fig.layout.barmode == "stack"
    assert {t.name for t in fig.data if t.type == "bar"} == {g for g, _ in fg.COST_GROUPS}
    total_trace = next(t for t in fig.data if t.name == "Total (95% CI)")
    assert list(total_trace.y) == pytest.approx([total_a, 2 * total_a])


# ----------------------------------------------------------------------------- program ROI


def daily_frame(seeds: tuple[int, int] = (7, 7)) -> pd.DataFrame:
    """Two scenarios x 3 replications x 2 months (one row per month suffices for the maths)."""
    rows = []
    margins = {
        "base": [[100.0, 100.0], [110.0, 90.0], [95.0, 105.0]],
        "prog": [[80.0, 150.0], [95.0, 140.0], [70.0, 160.0]],
    }
    program = {"base": [0.0, 0.0], "prog": [-30.0, -30.0]}  # ledger: money out is negative
    for scen, seed in zip(("base", "prog"), seeds, strict=True):
        for r in range(3):
            for k, date in enumerate(("2026-09-15", "2026-10-15")):
                rows.append(
                    {
                        "scenario": scen,
                        "seed": seed,
                        "replication": r,
                        "date": pd.Timestamp(date),
                        "contribution_margin_usd": margins[scen][r][k],
                        "ledger_loyalty_program_usd": program[scen][k],
                        "ledger_automation_usd": -1.0,
                    }
                )
    return pd.DataFrame(rows)


def test_program_roi_paired() -> None:
    res = fg.program_roi(daily_frame(), "prog", "base", ["loyalty_program", "automation"])
    assert res.paired and res.n == 3
    dm = np.array([230 - 200, 235 - 200, 230 - 200], dtype=float)  # per replication
    assert (
        res.incremental_margin.mean,
        res.incremental_margin.ci_low,
        res.incremental_margin.ci_high,
    ) == pytest.approx(mean_ci(dm)[:3])
    assert res.program_cost.mean == pytest.approx(60.0)  # automation is the same in both: not extra
    assert res.program_cost.ci_low == pytest.approx(60.0)  # identical in every replication
    assert res.roi is not None
    assert res.roi.mean == pytest.approx(dm.mean() / 60.0)
    assert res.roi.ci_low < res.roi.mean < res.roi.ci_high
    # cumulative incremental margin: month 1 = -20, -15, -25 (mean -20); month 2 = +30, +35, +30
    m = res.monthly.set_index("month")
    assert m.loc[1, "mean"] == pytest.approx(-20.0)
    assert m.loc[2, "mean"] == pytest.approx(dm.mean())
    assert res.payback_month == 2
    assert res.payback_late == 2  # the lower bound is positive in month 2 too
    fig = fg.roi_figure(res)
    assert any(t.type == "bar" for t in fig.data)


def test_program_roi_unpaired_uses_welch() -> None:
    res = fg.program_roi(daily_frame(seeds=(7, 8)), "prog", "base", ["loyalty_program"])
    assert not res.paired
    v = np.array([230.0, 235.0, 230.0])
    b = np.array([200.0, 200.0, 200.0])
    assert (
        res.incremental_margin.mean,
        res.incremental_margin.ci_low,
        res.incremental_margin.ci_high,
    ) == pytest.approx(welch_ci(v, b)[:3])


def test_program_roi_without_extra_program_cost_has_no_ratio() -> None:
    res = fg.program_roi(daily_frame(), "prog", "base", ["automation"])
    assert res.roi is None
    assert "does not spend more" in res.note


# ----------------------------------------------------------------------------- peak service


def test_black_friday_dates() -> None:
    assert fg.black_friday(2026) == dt.date(2026, 11, 27)
    assert fg.black_friday(2027) == dt.date(2027, 11, 26)
    assert fg.black_friday(2024) == dt.date(2024, 11, 29)


def test_peak_windows() -> None:
    w = fg.peak_windows(dt.date(2026, 9, 1), 487)
    assert w["bf"] == (
        pd.Timestamp("2026-11-23"),
        pd.Timestamp("2026-12-01"),
    )  # Monday .. end of Cyber Monday
    assert w["all"] == (pd.Timestamp("2026-09-01"), pd.Timestamp("2028-01-01"))
    assert "bf" not in fg.peak_windows(dt.date(2026, 1, 1), 120)


def intervals_frame(days: int = 2) -> pd.DataFrame:
    times = pd.date_range("2026-11-27", periods=days * 48, freq="30min")
    rows = []
    for pool in ("chat", "email"):
        for i, t in enumerate(times):
            answered = 10.0 + (i % 3)
            rows.append(
                {
                    "scenario": "s",
                    "interval_start": t,
                    "pool": pool,
                    "arrivals": answered + 1,
                    "answered": answered,
                    "abandoned": 1.0 if pool == "chat" else 0.0,
                    "answered_within_sla": answered - (i % 2),
                    "service_level": (answered - (i % 2))
                    / (answered + (1.0 if pool == "chat" else 0.0)),
                    "asa_min": 1.0,
                    "busy_min": 20.0,
                    "staffed_min": 30.0 + (i % 2) * 30,
                    "occupancy": 20.0 / (30.0 + (i % 2) * 30),
                    "queue_end": float(i % 5) if pool == "email" else 0.0,
                    "agents_paid": 2.0,
                }
            )
    return pd.DataFrame(rows)


def test_service_series_interval_and_daily_resolution() -> None:
    iv = intervals_frame()
    s, res = fg.service_series(iv, pd.Timestamp("2026-11-27"), pd.Timestamp("2026-11-29"))
    assert res == "interval" and len(s) == len(iv)
    s, res = fg.service_series(iv, pd.Timestamp("2026-09-01"), pd.Timestamp("2027-01-01"))
    assert res == "day"
    day1 = iv[(iv["pool"] == "chat") & (iv["interval_start"] < pd.Timestamp("2026-11-28"))]
    row = s[(s["pool"] == "chat") & (s["time"] == pd.Timestamp("2026-11-27"))].iloc[0]
    offered = day1["answered"].sum() + day1["abandoned"].sum()
    assert row["service_level"] == pytest.approx(day1["answered_within_sla"].sum() / offered)
    assert row["abandonment"] == pytest.approx(day1["abandoned"].sum() / offered)
    assert row["occupancy"] == pytest.approx(day1["busy_min"].sum() / day1["staffed_min"].sum())


def test_sla_targets_from_the_scenario_mapping() -> None:
    mapping = {
        "contacts": {
            "channels": {"chat": {"sla_target": 0.8}, "email": {"sla_target": 0.9}},
            "tier2": {"sla_target": 0.7},
        }
    }
    assert fg.sla_targets(mapping) == {"chat": 0.8, "email": 0.9, "tier2": 0.7}
    assert fg.sla_targets({}) == {}


def test_peak_service_figure_has_targets_slider_and_black_friday_button() -> None:
    iv = intervals_frame(days=8)
    daily = pd.DataFrame(
        {
            "scenario": "s",
            "replication": 0,
            "date": pd.date_range("2026-11-27", periods=8),
            "contacts_wismo": 100.0,
            "contacts_billing": 10.0,
        }
    )
    window = (pd.Timestamp("2026-11-20"), pd.Timestamp("2026-12-10"))
    bf = (pd.Timestamp("2026-11-23"), pd.Timestamp("2026-12-01"))
    fig = fg.peak_service_figure(iv, daily, {"chat": 0.8, "email": 0.9}, window, bf, title="t")
    targets = {t.name: t.y[0] for t in fig.data if (t.name or "").endswith(" target")}
    assert targets == {"chat target": 0.8, "email target": 0.9}
    assert fig.layout.xaxis5.rangeslider.visible
    buttons = fig.layout.updatemenus[0].buttons
    assert buttons[0].label == "Black Friday week"
    assert list(buttons[0].args[0]["xaxis.range"]) == [bf[0], bf[1]]
    bars = [t for t in fig.data if t.type == "bar"]
    assert {t.name for t in bars} == {"wismo", "billing"}
    # no button when the window is the Black Friday week itself
    fig2 = fg.peak_service_figure(iv, daily, {}, bf, bf)
    assert not fig2.layout.updatemenus
