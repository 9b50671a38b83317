"""Experiment summaries: mean and 95% confidence interval per KPI, and differences from a baseline.

Pure functions on the tidy KPI table of an experiment, one row per (scenario, replication, metric)::

    scenario | replication | seed | metric | value

Missing values (NaN, e.g. a payback month never reached) are dropped per (scenario, metric) before
anything is computed; ``n`` always counts the values actually used.

Formulas (level ``1 - alpha`` = 95%, ``t_q(df)`` the Student t quantile):

* **Mean and interval** of values ``x_1..x_n``: ``mean = sum(x) / n``,
  ``sd = sqrt(sum((x - mean)^2) / (n - 1))``, interval ``mean -/+ t_{0.975}(n - 1) * sd / sqrt(n)``.
  With ``n = 1`` the sd and the interval are NaN; with ``n = 0`` everything is NaN.
* **Paired difference** (common random numbers: the scenario and the baseline ran the same
  ``(seed, replication)`` pairs): ``d_i = x_i - b_i`` over the shared pairs where both values are
  present, then the interval above applied to ``d`` (``n`` = number of pairs). Because both runs saw
  the same random numbers, ``var(d)`` is usually far below ``var(x) + var(b)`` and the interval tight.
* **Unpaired (Welch) difference**, used when the two share fewer than two ``(seed, replication)``
  pairs: ``mean_diff = mean(x) - mean(b)``, ``se = sqrt(s_x^2 / n_x + s_b^2 / n_b)``,
  ``df = se^4 / ((s_x^2/n_x)^2 / (n_x - 1) + (s_b^2/n_b)^2 / (n_b - 1))`` (Welch-Satterthwaite),
  interval ``mean_diff -/+ t_{0.975}(df) * se``; ``n`` is ``min(n_x, n_b)``.

When every value is identical (sd = 0) the interval collapses to the mean, which is correct for a
deterministic KPI.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
"""Level of every interval in this module."""

KPI_COLUMNS: tuple[str, ...] = ("scenario", "replication", "seed", "metric", "value")
SUMMARY_COLUMNS: tuple[str, ...] = ("scenario", "metric", "mean", "ci_low", "ci_high", "sd", "n")
DIFF_COLUMNS: tuple[str, ...] = (
    "scenario",
    "baseline",
    "metric",
    "mean_diff",
    "ci_low",
    "ci_high",
    "n",
    "paired",
)
MIN_SHARED_PAIRS = 2
"""Fewest shared (seed, replication) pairs for a scenario to be compared paired."""


def _check(kpis: pd.DataFrame) -> None:
    missing = [c for c in KPI_COLUMNS if c not in kpis.columns]
    if missing:
        raise ValueError(f"KPI table lacks column(s) {missing}; expected {list(KPI_COLUMNS)}")
    dup = kpis.duplicated(["scenario", "seed", "replication", "metric"])
    if dup.any():
        first = kpis.loc[dup, ["scenario", "seed", "replication", "metric"]].iloc[0].to_dict()
        raise ValueError(f"KPI table has duplicate rows, e.g. {first}")


def _t_quantile(df: float | np.ndarray) -> float | np.ndarray:
    return stats.t.ppf(0.5 + CONFIDENCE / 2, df)


def mean_ci(values: np.ndarray | pd.Series) -> tuple[float, float, float, float, int]:
    """``(mean, ci_low, ci_high, sd, n)`` of the non-NaN values (t-interval, see module doc)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return (np.nan, np.nan, np.nan, np.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return (mean, np.nan, np.nan, np.nan, 1)
    sd = float(x.std(ddof=1))
    half = float(_t_quantile(n - 1)) * sd / np.sqrt(n)
    return (mean, mean - half, mean + half, sd, n)


def welch_ci(
    x: np.ndarray | pd.Series, b: np.ndarray | pd.Series
) -> tuple[float, float, float, int]:
    """``(mean(x) - mean(b), ci_low, ci_high, min(n_x, n_b))`` by Welch's unequal-variance interval."""
    x = np.asarray(x, dtype=float)
    b = np.asarray(b, dtype=float)
    x = x[~np.isnan(x)]
    b = b[~np.isnan(b)]
    nx, nb = int(x.size), int(b.size)
    n = min(nx, nb)
    if nx == 0 or nb == 0:
        return (np.nan, np.nan, np.nan, n)
    diff = float(x.mean() - b.mean())
    if nx < 2 or nb < 2:
        return (diff, np.nan, np.nan, n)
    vx, vb = x.var(ddof=1) / nx, b.var(ddof=1) / nb
    se2 = vx + vb
    if se2 == 0:
        return (diff, diff, diff, n)
    dof = se2**2 / (vx**2 / (nx - 1) + vb**2 / (nb - 1))
    half = float(_t_quantile(dof)) * float(np.sqrt(se2))
    return (diff, diff - half, diff + half, n)


def summarize(kpis: pd.DataFrame) -> pd.DataFrame:
    """Mean, 95% t-interval, standard deviation and count per (scenario, metric).

    Columns: ``scenario, metric, mean, ci_low, ci_high, sd, n``. Rows keep the order in which
    scenarios and metrics first appear in ``kpis``. NaN values are dropped and not counted.
    """
    _check(kpis)
    rows = []
    for (scenario, metric), grp in kpis.groupby(["scenario", "metric"], sort=False):
        mean, lo, hi, sd, n = mean_ci(grp["value"])
        rows.append((scenario, metric, mean, lo, hi, sd, n))
    out = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    out["n"] = out["n"].astype("int64")
    return out


def paired_differences(kpis: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Each other scenario's difference (scenario - baseline) per metric, with a 95% interval.

    Paired on ``(seed, replication)`` when the scenario shares at least two such pairs with the
    baseline (common random numbers; only the shared pairs are used), else Welch's unpaired
    interval with ``paired=False``. Columns: ``scenario, baseline, metric, mean_diff, ci_low,
    ci_high, n, paired``. The baseline's own rows are excluded. Metrics missing from the baseline
    give NaN differences with ``n = 0``.
    """
    _check(kpis)
    scenarios = list(dict.fromkeys(kpis["scenario"]))
    if baseline not in scenarios:
        raise ValueError(f"baseline {baseline!r} is not among the scenarios {scenarios}")
    keys = ["seed", "replication"]
    base = kpis[kpis["scenario"] == baseline]
    base_keys = set(map(tuple, base[keys].drop_duplicates().to_numpy().tolist()))
    base_by_metric = {m: g for m, g in base.groupby("metric", sort=False)}
    rows = []
    for scenario in scenarios:
        if scenario == baseline:
            continue
        this = kpis[kpis["scenario"] == scenario]
        this_keys = set(map(tuple, this[keys].drop_duplicates().to_numpy().tolist()))
        paired = len(this_keys & base_keys) >= MIN_SHARED_PAIRS
        for metric, grp in this.groupby("metric", sort=False):
            b = base_by_metric.get(metric)
            if b is None:
                rows.append((scenario, baseline, metric, np.nan, np.nan, np.nan, 0, paired))
                continue
            if paired:
                merged = grp[[*keys, "value"]].merge(
                    b[[*keys, "value"]], on=keys, suffixes=("", "_base")
                )
                d = (merged["value"] - merged["value_base"]).to_numpy(dtype=float)
                mean, lo, hi, _sd, n = mean_ci(d)
            else:
                mean, lo, hi, n = welch_ci(grp["value"], b["value"])
            rows.append((scenario, baseline, metric, mean, lo, hi, n, paired))
    out = pd.DataFrame(rows, columns=list(DIFF_COLUMNS))
    out["n"] = out["n"].astype("int64")
    out["paired"] = out["paired"].astype(bool)
    return out
