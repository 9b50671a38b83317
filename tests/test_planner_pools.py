"""The planner's bridge to scenarios: a plan written into a scenario is exactly what the engine staffs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.calendar import Calendar
from sim.experiment import with_horizon
from sim.loader import ScenarioError, load_scenario, scenario_from_dict
from sim.planner.pools import (
    coverage_from_shifts,
    planned_pools,
    pool_spec,
    staffing_entries,
    with_staffing,
)
from sim.staffing import pool_schedule

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base():
    return with_horizon(load_scenario(ROOT / "scenarios" / "baseline.yaml"), 21)


def test_planned_staffing_round_trips_through_the_scenario(base) -> None:
    cal = Calendar(base)
    rng = np.random.default_rng(1)
    agents = rng.integers(0, 9, cal.n_intervals).astype(float)
    planned_days = np.zeros(cal.days, bool)
    planned_days[5:12] = True
    before = {p: pool_schedule(p, base.contacts.channels[p], base, cal) for p in ("chat", "phone")}
    s = with_staffing(base, {p: staffing_entries(base, p, agents, planned_days) for p in ("chat", "phone")})
    in_plan = np.repeat(planned_days, cal.intervals_per_day)
    for p in ("chat", "phone"):
        after = pool_schedule(p, s.contacts.channels[p], s, cal)
        assert np.array_equal(after.agents_paid[in_plan], agents[in_plan])
        # outside the planned days the scenario's own plans (weekday factors included) hold
        assert np.array_equal(after.agents_paid[~in_plan], before[p].agents_paid[~in_plan])
    # untouched pools keep their staffing list exactly
    assert s.contacts.channels["email"].staffing == base.contacts.channels["email"].staffing


def test_identical_planned_days_share_one_entry(base) -> None:
    cal = Calendar(base)
    profile = np.tile(np.arange(cal.intervals_per_day) % 5, cal.days).astype(float)
    planned = np.ones(cal.days, bool)
    entries = staffing_entries(base, "chat", profile, planned)
    assert len(entries) == 1
    assert entries[0]["start"] == base.start_date


def test_overtime_premium_is_booked_as_labour_to_the_cent(base) -> None:
    cal = Calendar(base)
    agents = np.full(cal.n_intervals, 3.0)
    planned = np.ones(cal.days, bool)
    premium = np.zeros(cal.days)
    premium[4] = 123.45
    plain = with_staffing(base, {"chat": staffing_entries(base, "chat", agents, planned)})
    paid = with_staffing(base, {"chat": staffing_entries(base, "chat", agents, planned, premium)})
    c0 = pool_schedule("chat", plain.contacts.channels["chat"], plain, cal).cost_usd
    c1 = pool_schedule("chat", paid.contacts.channels["chat"], paid, cal).cost_usd
    per_day = (c1 - c0).reshape(cal.days, cal.intervals_per_day).sum(axis=1)
    assert round(per_day[4], 2) == 123.45
    assert np.allclose(np.delete(per_day, 4), 0.0)


def test_agents_by_interval_length_is_checked(base) -> None:
    data = base.model_dump()
    data["contacts"]["channels"]["chat"]["staffing"] = [{"start": base.start_date, "agents_by_interval": [1.0] * 24}]
    with pytest.raises(ScenarioError, match=r"agents_by_interval has 24 values; interval_min 30 needs 48"):
        scenario_from_dict(data, "test")
    data["contacts"]["channels"]["chat"]["staffing"] = [
        {"start": base.start_date, "agents_by_hour": [1.0] * 24, "agents_by_interval": [1.0] * 48}
    ]
    with pytest.raises(ScenarioError, match="exactly one of agents_by_hour and agents_by_interval"):
        scenario_from_dict(data, "test")


def test_open_hours_and_hires_in_the_pool_spec(base) -> None:
    cal = Calendar(base)
    spec = pool_spec(base, "phone", cal)
    sched = pool_schedule("phone", base.contacts.channels["phone"], base, cal)
    assert np.array_equal(spec.open, sched.agents_paid > 0)  # default: where the scenario staffs
    assert spec.realtime and spec.patience_mean_min is not None
    assert planned_pools(base) == ["chat", "email", "phone", "social", "tier2"]
    data = base.model_dump()
    data["planner"]["targets"] = {"phone": {"open_hours": [8, 20]}}
    s = scenario_from_dict(data, "test")
    spec = pool_spec(s, "phone", cal)
    hours = (np.arange(cal.n_intervals) % cal.intervals_per_day) * cal.interval_min / 60
    assert np.array_equal(spec.open, (hours >= 8) & (hours < 20))


def test_coverage_from_shifts_counts_breaks_and_midnight() -> None:
    shifts = pd.DataFrame({
        "start_min": [1320.0, 480.0],  # 22:00 day 0 (crosses midnight), 08:00 day 0
        "end_min": [1320.0 + 480, 480.0 + 510],
        "break_start_min": [np.nan, 480.0 + 240],
        "break_end_min": [np.nan, 480.0 + 270],
        "agents": [2, 3],
    })
    cover = coverage_from_shifts(shifts, 96, 30.0)
    assert cover[44:48].tolist() == [2, 2, 2, 2]  # 22:00-24:00
    assert cover[48:60].tolist() == [2] * 12 and cover[60] == 0  # to 06:00 next day
    assert cover[16:24].tolist() == [3] * 8 and cover[24] == 0 and cover[25] == 3  # break 12:00-12:30
    assert cover[33] == 0  # 08:00 + 8.5 h = 16:30
