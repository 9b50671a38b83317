"""Simulation time and the calendar.

Simulation time is minutes (float) since 00:00 of the scenario's ``start_date``. Day ``d`` covers
minutes ``[1440 d, 1440 (d + 1))``. Staffing and reporting intervals are ``interval_min`` long.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from sim.scenario import DatedMultiplier, DemandSpike, Scenario

MIN_PER_DAY = 1440.0
MIN_PER_HOUR = 60.0
DAYS_PER_MONTH = 365.25 / 12


class Calendar:
    """Dates, day-level factors and interval bookkeeping of one scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self.start = scenario.start_date
        self.days = scenario.horizon_days
        self.interval_min = float(scenario.interval_min)
        self.dates = pd.date_range(self.start, periods=self.days, freq="D")
        self.weekday = self.dates.day_of_week.to_numpy()
        self.intervals_per_day = int(MIN_PER_DAY // self.interval_min)
        self.n_intervals = self.days * self.intervals_per_day
        self.end_min = self.days * MIN_PER_DAY

    def day_of(self, date: dt.date) -> int:
        """Day index of a calendar date (may be outside the horizon)."""
        return (date - self.start).days

    def minute_of(self, when: dt.datetime | dt.date) -> float:
        """Simulation minute of a date (its midnight) or datetime (naive, scenario-local)."""
        if isinstance(when, dt.datetime):
            delta = when - dt.datetime.combine(self.start, dt.time())
            return delta.total_seconds() / 60.0
        return self.day_of(when) * MIN_PER_DAY

    def mask(self, start: dt.date, end: dt.date) -> np.ndarray:
        """Boolean per day: the date lies in start..end inclusive."""
        idx = np.arange(self.days)
        return (idx >= self.day_of(start)) & (idx <= self.day_of(end))

    def multiplier(self, periods: list[DatedMultiplier] | list[DemandSpike]) -> np.ndarray:
        """Product of the multipliers of the dated periods covering each day (1 elsewhere)."""
        out = np.ones(self.days)
        for p in periods:
            out[self.mask(p.start, p.end)] *= p.multiplier
        return out

    def interval_starts(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.n_intervals, freq=f"{int(self.interval_min)}min")

    def month_index(self, minutes: np.ndarray) -> np.ndarray:
        """Calendar-month index (0 = the start date's month) of each simulation minute."""
        days = np.floor(np.asarray(minutes) / MIN_PER_DAY).astype(np.int64)
        days = np.clip(days, 0, self.days - 1)
        months = self.dates.year.to_numpy() * 12 + self.dates.month.to_numpy()
        return months[days] - months[0]

    @property
    def n_months(self) -> int:
        last = self.dates[-1]
        return (last.year - self.start.year) * 12 + last.month - self.start.month + 1

    def month_starts(self) -> pd.DatetimeIndex:
        first = pd.Timestamp(self.start).to_period("M").to_timestamp()
        return pd.date_range(first, periods=self.n_months, freq="MS")


def demand_factors(scenario: Scenario, cal: Calendar) -> np.ndarray:
    """Acquisition-rate multiplier per day: weekday x peaks x trend x demand-spike incidents."""
    d = scenario.demand
    weekday = np.asarray(d.weekday_factors)[cal.weekday]
    trend = (1.0 + d.annual_growth) ** (np.arange(cal.days) / 365.25)
    spikes = [i for i in scenario.incidents if isinstance(i, DemandSpike)]
    return weekday * cal.multiplier(d.peaks) * trend * cal.multiplier(spikes)


def sample_times_in_days(
    rng: np.random.Generator, days: np.ndarray, hour_weights: list[float]
) -> np.ndarray:
    """Minutes since start for events on the given day indices, hour drawn from ``hour_weights``,
    uniform within the hour. With equal weights this is uniform over the day (Poisson-consistent)."""
    w = np.asarray(hour_weights, dtype=float)
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    u = rng.random(len(days))
    hour = np.searchsorted(cdf, u, side="right")
    lower = np.concatenate(([0.0], cdf[:-1]))[hour]
    frac = (u - lower) / np.maximum(cdf[hour] - lower, 1e-300)  # reuse u: position inside its hour
    return days * MIN_PER_DAY + (hour + np.clip(frac, 0.0, 1.0 - 1e-12)) * MIN_PER_HOUR
