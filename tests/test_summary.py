"""Experiment summaries: t-intervals, paired (common random numbers) and Welch differences, NaN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.summary import DIFF_COLUMNS, SUMMARY_COLUMNS, paired_differences, summarize


def _kpis(rows: list[tuple[str, int, int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["scenario", "replication", "seed", "metric", "value"])


def _table(values: dict[str, list[float]], metric: str = "m", seed: int = 7) -> pd.DataFrame:
    return _kpis(
        [(s, r, seed, metric, v) for s, vals in values.items() for r, v in enumerate(vals)]
    )


def test_summarize_matches_scipy_t_interval() -> None:
    x = [10.0, 12.0, 9.5, 11.0, 13.5]
    out = summarize(_table({"a": x}))
    assert list(out.columns) == list(SUMMARY_COLUMNS)
    row = out.iloc[0]
    lo, hi = stats.t.interval(0.95, df=len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert row["mean"] == pytest.approx(np.mean(x))
    assert row["sd"] == pytest.approx(np.std(x, ddof=1))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    assert row["n"] == 5


def test_summarize_hand_computed() -> None:
    # x = 1, 2, 3: mean 2, sd 1, t_{0.975}(2) = 4.302653, half width 4.302653 / sqrt(3)
    out = summarize(_table({"a": [1.0, 2.0, 3.0]})).iloc[0]
    half = 4.302652729911275 / math.sqrt(3)
    assert (out["mean"], out["sd"]) == pytest.approx((2.0, 1.0))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((2 - half, 2 + half))


def test_summarize_drops_nan_and_counts_the_rest() -> None:
    out = summarize(_table({"a": [1.0, np.nan, 3.0, np.nan, 2.0]})).iloc[0]
    ref = summarize(_table({"a": [1.0, 3.0, 2.0]})).iloc[0]
    assert out["n"] == 3
    assert out[["mean", "ci_low", "ci_high", "sd"]].tolist() == pytest.approx(
        ref[["mean", "ci_low", "ci_high", "sd"]].tolist()
    )


def test_summarize_degenerate_counts() -> None:
    out = summarize(_table({"one": [4.0], "none": [np.nan, np.nan], "const": [2.0, 2.0, 2.0]}))
    one, none, const = (out.set_index("scenario").loc[s] for s in ("one", "none", "const"))
    assert (
        one["mean"] == 4.0 and one["n"] == 1 and math.isnan(one["ci_low"]) and math.isnan(one["sd"])
    )
    assert none["n"] == 0 and math.isnan(none["mean"])
    assert (const["ci_low"], const["ci_high"], const["sd"]) == (2.0, 2.0, 0.0)


def test_summarize_keeps_order_of_appearance_and_groups_by_metric() -> None:
    kpis = pd.concat(
        [_table({"z": [1, 2]}, "b"), _table({"a": [3, 4]}, "b"), _table({"z": [5, 6]}, "a")]
    )
    out = summarize(kpis)
    assert list(zip(out["scenario"], out["metric"], strict=True)) == [
        ("z", "b"),
        ("a", "b"),
        ("z", "a"),
    ]
    assert out["mean"].tolist() == [1.5, 3.5, 5.5]


def test_summarize_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        summarize(pd.DataFrame({"scenario": ["a"], "value": [1.0]}))
    dup = _kpis([("a", 0, 1, "m", 1.0), ("a", 0, 1, "m", 2.0)])
    with pytest.raises(ValueError, match="duplicate"):
        summarize(dup)


def test_paired_difference_is_t_interval_of_the_differences() -> None:
    base = [100.0, 120.0, 90.0, 110.0, 105.0]
    alt = [103.0, 121.0, 94.0, 112.0, 109.0]  # strongly correlated with base
    out = paired_differences(_table({"base": base, "alt": alt}), "base")
    assert list(out.columns) == list(DIFF_COLUMNS)
    assert len(out) == 1  # the baseline's own rows are excluded
    row = out.iloc[0]
    d = np.subtract(alt, base)
    lo, hi = stats.t.interval(0.95, df=len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert bool(row["paired"]) and row["baseline"] == "base" and row["n"] == 5
    assert row["mean_diff"] == pytest.approx(d.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    # pairing is the point: the paired interval is far narrower than Welch's on the same data
    welch = stats.ttest_ind(alt, base, equal_var=False).confidence_interval(0.95)
    assert hi - lo < 0.2 * (welch.high - welch.low)


def test_pairing_uses_seed_and_replication_not_row_order() -> None:
    base = _kpis([("base", r, 1, "m", v) for r, v in enumerate([1.0, 5.0, 9.0])])
    alt = _kpis(
        [("alt", r, 1, "m", v + 1.0) for r, v in reversed(list(enumerate([1.0, 5.0, 9.0])))]
    )
    row = paired_differences(pd.concat([alt, base]), "base").iloc[0]
    assert bool(row["paired"])
    assert (row["mean_diff"], row["ci_low"], row["ci_high"]) == pytest.approx((1.0, 1.0, 1.0))


def test_unpaired_when_seeds_differ_matches_welch() -> None:
    base = [100.0, 120.0, 90.0, 110.0]
    alt = [103.0, 121.0, 94.0, 112.0, 130.0, 95.0]
    kpis = pd.concat([_table({"base": base}, seed=1), _table({"alt": alt}, seed=2)])
    row = paired_differences(kpis, "base").iloc[0]
    ci = stats.ttest_ind(alt, base, equal_var=False).confidence_interval(0.95)
    assert not bool(row["paired"])
    assert row["mean_diff"] == pytest.approx(np.mean(alt) - np.mean(base))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert row["n"] == 4  # min(n_scenario, n_baseline)


def test_welch_hand_computed() -> None:
    # x: mean 2, var 1, n 3; b: mean 0, var 4, n 3 -> se^2 = 1/3 + 4/3 = 5/3,
    # df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = (25/9) / (17/18) = 50/17
    kpis = pd.concat(
        [_table({"x": [1.0, 2.0, 3.0]}, seed=1), _table({"b": [-2.0, 0.0, 2.0]}, seed=2)]
    )
    row = paired_differences(kpis, "b").iloc[0]
    half = stats.t.ppf(0.975, 50 / 17) * math.sqrt(5 / 3)
    assert (row["mean_diff"], row["ci_low"], row["ci_high"]) == pytest.approx(
        (2.0, 2 - half, 2 + half)
    )


def test_paired_differences_nan_drops_the_pair() -> None:
    kpis = _table({"base": [1.0, 2.0, np.nan, 4.0], "alt": [2.0, np.nan, 5.0, 6.0]})
    row = paired_differences(kpis, "base").iloc[0]
    # only replications 0 and 3 have both values: differences 1 and 2
    assert row["n"] == 2 and bool(row["paired"])
    assert row["mean_diff"] == pytest.approx(1.5)
    half = stats.t.ppf(0.975, 1) * np.std([1.0, 2.0], ddof=1) / math.sqrt(2)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((1.5 - half, 1.5 + half))


def test_paired_differences_several_scenarios_and_metrics() -> None:
    kpis = pd.concat(
        [
            _table({"base": [1, 2, 3], "a": [2, 3, 4], "b": [0, 1, 2]}, "m1"),
            _table({"base": [10, 20, 30], "a": [10, 20, 30], "b": [11, 21, 31]}, "m2"),
        ]
    )
    out = paired_differences(kpis, "base").set_index(["scenario", "metric"])
    assert sorted(out.index) == [("a", "m1"), ("a", "m2"), ("b", "m1"), ("b", "m2")]
    assert out.loc[("a", "m1"), "mean_diff"] == 1.0
    assert out.loc[("b", "m1"), "mean_diff"] == -1.0
    assert out.loc[("a", "m2"), "mean_diff"] == 0.0
    assert out.loc[("b", "m2"), "mean_diff"] == 1.0
    assert out["paired"].all()


def test_paired_differences_unknown_baseline_and_missing_metric() -> None:
    kpis = pd.concat(
        [_table({"base": [1, 2]}, "m"), _table({"alt": [1, 2]}, "m"), _table({"alt": [5, 6]}, "x")]
    )
    with pytest.raises(ValueError, match="baseline 'nope'"):
        paired_differences(kpis, "nope")
    out = paired_differences(kpis, "base").set_index("metric")
    assert out.loc["x", "n"] == 0 and math.isnan(out.loc["x", "mean_diff"])
