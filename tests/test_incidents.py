"""Dated incidents do what they say, compared with the same replication without them (common
random numbers make the comparison exact where nothing else changes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.engine import simulate
from sim.loader import deep_merge, resolve_raw, scenario_from_dict
from sim.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
SEED = 3


def _scenario(incidents: list[dict[str, object]]) -> Scenario:
    raw = deep_merge(resolve_raw(ROOT / "scenarios" / "baseline.yaml"), {"horizon_days": 30, "start_date": "2026-10-01"})
    raw["incidents"] = incidents
    return scenario_from_dict(raw)


def test_helpdesk_outage_answers_nobody_and_backs_up_email() -> None:
    outage = {"kind": "helpdesk_outage", "start": "2026-10-08T09:00:00", "end": "2026-10-08T15:00:00", "channels": ["chat", "phone", "email"]}
    res = simulate(_scenario([outage]), SEED, 0, events=True)
    c = res.events["contacts"]
    lo, hi = 7 * 1440 + 9 * 60, 7 * 1440 + 15 * 60
    started = c["answered"] & c["pool"].isin([0, 1, 2]) & (c["start_min"] >= lo) & (c["start_min"] < hi)
    assert started.sum() == 0
    iv = res.intervals.set_index(["pool", "interval_start"])
    email = iv.loc["email"]["queue_end"]
    during = email[pd.Timestamp("2026-10-08 09:00"):pd.Timestamp("2026-10-08 14:30")]
    base = simulate(_scenario([]), SEED, 0).intervals.set_index(["pool", "interval_start"]).loc["email"]["queue_end"]
    assert during.max() > base[pd.Timestamp("2026-10-08 09:00"):pd.Timestamp("2026-10-08 14:30")].max()


def test_carrier_meltdown_makes_that_week_late_and_nothing_else() -> None:
    melt = {"kind": "carrier_meltdown", "start": "2026-10-10", "end": "2026-10-16", "on_time_share": 0.3}
    a = simulate(_scenario([melt]), SEED, 0, events=True).events["orders"]
    b = simulate(_scenario([]), SEED, 0, events=True).events["orders"]
    day = (a["order_min"] // 1440).astype(int)
    inside = (day >= 9) & (day <= 15)
    assert (a["outcome"].to_numpy()[inside.to_numpy()] == 0).mean() < 0.4  # on-time share collapses to about 0.3
    a_before = a[(a["order_min"] // 1440) < 9]
    b_before = b[(b["order_min"] // 1440) < 9]
    assert np.array_equal(a_before["outcome"].to_numpy(), b_before["outcome"].to_numpy())


def test_defective_batch_and_demand_spike() -> None:
    spike = {"kind": "demand_spike", "start": "2026-10-12", "end": "2026-10-13", "multiplier": 3.0}
    faulty = {"kind": "defective_batch", "start": "2026-10-05", "end": "2026-10-05", "defective_share": 0.5}
    res = simulate(_scenario([spike, faulty]), SEED, 0, events=True)
    base = simulate(_scenario([]), SEED, 0)
    new = res.daily.set_index("date")["new_customers"]
    new0 = base.daily.set_index("date")["new_customers"]
    ratio = new["2026-10-12":"2026-10-13"].sum() / new0["2026-10-12":"2026-10-13"].sum()
    assert 2.6 < ratio < 3.4  # Poisson counts of ~1,100 on each side: 3 within about ±0.3 (4 SE)
    o = res.events["orders"]
    day = (o["order_min"] // 1440).astype(int)
    damaged = (o.loc[day == 4, "outcome"] == 4).mean()
    expected = 0.5 + 0.5 * 0.02  # defective share, plus the carrier's own damage on the rest
    n = int((day == 4).sum())
    assert abs(damaged - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
