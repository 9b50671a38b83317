"""Recurring calendar: fitted holiday uplifts anchored to Black Friday, Cyber Monday and Christmas
and repeated in later years, so that a calibrated scenario has its peaks in the holdout and next
season."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pytest

from calibration.fit import calibrate
from calibration.holidays import YEARS_AHEAD, anchor, black_friday, recurring_peaks
from calibration.schemas import read_history
from calibration.synth import synth_history
from sim.engine import simulate
from sim.loader import deep_merge, load_scenario, resolve_raw, scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]
TRUTH = ROOT / "tests" / "data" / "calibration_truth.yaml"
D = dt.date


def test_black_friday_is_the_day_after_us_thanksgiving() -> None:
    # Thanksgiving: 28 Nov 2024, 27 Nov 2025, 26 Nov 2026, 25 Nov 2027, 23 Nov 2028, 22 Nov 2029
    assert [black_friday(y) for y in range(2024, 2030)] == [D(2024, 11, 29), D(2025, 11, 28), D(2026, 11, 27), D(2027, 11, 26),
                                                           D(2028, 11, 24), D(2029, 11, 23)]
    assert all(black_friday(y).weekday() == 4 for y in range(1990, 2060))


def test_periods_anchor_to_the_nearest_event() -> None:
    assert anchor(D(2026, 11, 27), D(2026, 11, 30)) == ("black_friday", 0)
    assert anchor(D(2026, 12, 1), D(2026, 12, 20)) == ("cyber_monday", 1)  # Cyber Monday 2026: 30 Nov
    assert anchor(D(2026, 11, 1), D(2026, 11, 26)) == ("black_friday", -26)
    assert anchor(D(2026, 12, 21), D(2026, 12, 24)) == ("christmas", -4)
    assert anchor(D(2026, 3, 1), D(2026, 3, 10)) is None


def test_uplifts_repeat_on_their_event_in_the_other_years() -> None:
    peaks = [{"name": "fitted_bf", "start": "2026-11-27", "end": "2026-11-30", "multiplier": 4.1},
             {"name": "fitted_dec", "start": "2026-12-01", "end": "2026-12-20", "multiplier": 2.4},
             {"name": "fitted_march", "start": "2026-03-02", "end": "2026-03-05", "multiplier": 1.8}]
    rep = recurring_peaks(peaks, D(2026, 1, 1), D(2026, 12, 31), D(2027, 2, 28))
    by = {r["name"]: r for r in rep}
    assert by["black_friday_2027"] == {"name": "black_friday_2027", "start": "2027-11-26", "end": "2027-11-29", "multiplier": 4.1, "source": "fitted_bf"}
    assert (by["cyber_monday+1d_2028"]["start"], by["cyber_monday+1d_2028"]["end"]) == ("2028-11-28", "2028-12-17")  # CM 2028: 27 Nov; 20 days
    assert not any("2026" in n for n in by)  # the fit window saw 2026: what it found stands
    assert max(int(n.split("_")[-1]) for n in by) == 2027 + YEARS_AHEAD
    assert not any(r["source"] == "fitted_march" for r in rep)  # not near a named event: one-off
    spans = sorted((r["start"], r["end"]) for r in rep)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))  # no overlaps (they would multiply)
    # a year whose event the fit window covered but where no uplift was found gets no repeat
    rep2 = recurring_peaks(peaks[:1], D(2026, 1, 1), D(2027, 12, 31), D(2027, 12, 31))
    assert "black_friday_2027" not in {r["name"] for r in rep2}


@pytest.mark.slow
def test_a_calibrated_scenario_has_next_seasons_black_friday(tmp_path: Path) -> None:
    """History Sep 2026 - Jan 2027 from the baseline's peaks; the calibrated scenario, run over
    November 2027, has Black Friday 2027's uplift at the fitted 2026 multiplier: new customers on
    26-29 Nov 2027 against 6-18 Nov (no peak), within 4 Poisson standard errors of the fitted
    multiplier x the weekday-factor ratio."""
    truth = scenario_from_dict(deep_merge(resolve_raw(TRUTH), {"horizon_days": 150, "demand": {"new_customers_per_day": 100.0, "initial_customers": 3000}}))
    synth_history(truth, 4, tmp_path / "h", mess=False)
    cal = calibrate(read_history(orders=tmp_path / "h" / "orders.csv"), load_scenario(TRUTH), holdout_weeks=0, seed=4)
    peaks = {p["name"]: p for p in cal.overrides["demand"]["peaks"]}
    bf = peaks["black_friday_2027"]
    assert bf["start"] == "2027-11-26"
    fitted_bf = next(p for p in peaks.values() if p["start"] == "2026-11-27")
    assert bf["multiplier"] == fitted_bf["multiplier"]
    assert 3.5 < bf["multiplier"] < 5.5  # the truth's Black Friday-Cyber Monday uplift is 4.5
    later = scenario_from_dict(deep_merge(cal.scenario.model_dump(mode="json"), {"start_date": "2027-11-06", "horizon_days": 28}))
    new = simulate(later, seed=1, replication=0).daily.set_index("date")["new_customers"]
    days = new.index.astype(str)
    on = new[(days >= "2027-11-26") & (days <= "2027-11-29")].to_numpy(float)
    off = new[(days >= "2027-11-06") & (days <= "2027-11-18")].to_numpy(float)
    wd = np.array(later.demand.weekday_factors)
    dates = [dt.date.fromisoformat(x[:10]) for x in days]
    w_on = np.array([wd[d.weekday()] for d, x in zip(dates, days, strict=True) if "2027-11-26" <= x <= "2027-11-29"])
    w_off = np.array([wd[d.weekday()] for d, x in zip(dates, days, strict=True) if "2027-11-06" <= x <= "2027-11-18"])
    m_off = next((p["multiplier"] for p in peaks.values() if p["start"] <= "2027-11-06" <= p["end"]), 1.0)
    expected = bf["multiplier"] / m_off * (w_on.sum() / len(w_on)) / (w_off.sum() / len(w_off))
    ratio = on.mean() / off.mean()
    se = ratio * np.sqrt(1 / on.sum() + 1 / off.sum())
    assert abs(ratio - expected) < 4 * se, (ratio, expected, se)
