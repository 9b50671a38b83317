"""Staffing stage: agents by hour and weekday per channel, as dated plans, from staffing.csv."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from calibration.collector import Collector, rounded
from calibration.summaries import Prepared, Window
from sim.scenario import Scenario

__all__ = ["fit_staffing"]


def fit_staffing(p: Prepared, base: Scenario, out: Collector) -> None:
    s = p.staffing
    assert s is not None
    w = p.window
    for ch in sorted(set(s["channel"])):
        cfg = base.contacts.tier2 if ch == "tier2" else base.contacts.channels.get(ch)  # type: ignore[call-overload]
        prefix = "contacts.tier2" if ch == "tier2" else f"contacts.channels.{ch}"
        if cfg is None:
            out.warn(f"staffing: channel {ch} is not in the base scenario; its schedule is ignored")
            continue
        sub = s[s["channel"] == ch]
        t = sub["t"].to_numpy()
        inside = (t >= 0) & (t < w.days)
        day = np.floor(t[inside]).astype(np.int64)
        hour = np.floor((t[inside] % 1.0) * 24 + 1e-9).astype(np.int64)
        agents = sub["agents"].to_numpy()[inside]
        grid = np.full((w.days, 24), np.nan)
        sums = np.zeros((w.days, 24))
        cnts = np.zeros((w.days, 24))
        np.add.at(sums, (day, hour), agents)
        np.add.at(cnts, (day, hour), 1)
        have = cnts > 0
        grid[have] = sums[have] / cnts[have]
        days_with = np.flatnonzero(have.any(axis=1))
        if len(days_with) == 0:
            continue
        grid = np.nan_to_num(grid, nan=0.0)
        plans = _staffing_plans(grid[days_with[0] :], days_with[0], w)
        out.fit(f"{prefix}.staffing", plans, {}, "agents (paid, before shrinkage)",
                "mean agents per hour of day over each stretch of days with the same weekly pattern; weekday factors from daily totals",
                int(inside.sum()), "staffing")
        if ch != "tier2":
            out.set(f"{prefix}.seasonal_hires", [])
            out.set(f"{prefix}.overtime", [])
        if days_with[0] > 0:
            out.notes.append(f"staffing: {ch} schedule starts on day {days_with[0]}; its first plan is extended back to the history start")


def _staffing_plans(grid: np.ndarray, offset: int, w: Window) -> list[dict[str, Any]]:
    """Dated plans from a (days, 24) agent grid: a new plan starts where a day's pattern differs
    from the same weekday a week earlier (by more than half an agent in some hour) and the new
    pattern lasts at least a week."""
    days = grid.shape[0]
    change = np.zeros(days, dtype=bool)
    for d in range(7, days):
        change[d] = np.abs(grid[d] - grid[d - 7]).max() > 0.5
    starts = [0]
    d = 7
    while d < days:
        if change[d]:
            starts.append(d)
            d += 7
        else:
            d += 1
    plans = []
    for i, st in enumerate(starts):
        en = starts[i + 1] if i + 1 < len(starts) else days
        block = grid[st:en]
        by_hour = block.mean(axis=0)
        dates = w.start + pd.to_timedelta(np.arange(offset + st, offset + en), unit="D")
        totals = block.sum(axis=1)
        wd = np.ones(7)
        if by_hour.sum() > 0:
            per_wd = np.array([totals[dates.day_of_week == k].mean() if np.any(dates.day_of_week == k) else np.nan for k in range(7)])
            mean_total = np.nanmean(per_wd)
            wd = np.where(np.isfinite(per_wd) & (mean_total > 0), per_wd / mean_total, 1.0)
            # agents_by_hour at the weekday-average level
        start_date = (w.start + pd.Timedelta(days=offset + st)).date() if i > 0 else w.start.date()
        plans.append({
            "start": start_date.isoformat(),
            "agents_by_hour": [rounded(x, 3) for x in by_hour],
            "weekday_factors": [rounded(x, 4) for x in wd],
        })
    return plans
