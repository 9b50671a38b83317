"""Contacts-only calibration: a contacts log without orders becomes a direct contact stream
(``contacts.arrivals``) whose volume, weekday and hour profiles are fitted, and the backtest's
holdout shows them. Known parameters are recovered from history the engine wrote itself.

Tolerances come from the Poisson standard error of the stream (the engine draws Poisson counts
per day): see each test."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from calibration.backtest import hour_profile_distance, run_backtest
from calibration.fit import calibrate
from calibration.schemas import read_history
from calibration.synth import synth_history
from sim.contacts import FIRST
from sim.engine import simulate
from sim.loader import load_scenario
from sim.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
PER_DAY = 300.0
WEEKDAY = np.array([1.3, 1.25, 1.15, 1.1, 1.2, 0.6, 0.4])  # mean 1
HOURS = [0.0] * 7 + [2, 4, 5, 5, 4, 3, 3, 3, 2, 2, 1, 1, 0.5, 0.5] + [0.0] * 3
DAYS = 84


def stream_scenario(follow_ups: bool = False, days: int = DAYS) -> Scenario:
    d = load_scenario(ROOT / "scenarios" / "baseline.yaml").model_dump(mode="json")
    d["demand"]["new_customers_per_day"] = 0.0
    d["demand"]["initial_customers"] = 0
    d["horizon_days"] = days
    d["contacts"]["hour_weights"] = HOURS
    d["contacts"]["arrivals"] = {
        "per_day": PER_DAY, "weekday_factors": WEEKDAY.tolist(), "reason_mix": {"wismo": 0.6, "billing": 0.4},
        "channel_mix": {"phone": 0.7, "chat": 0.3}, "follow_ups": follow_ups,
    }
    return Scenario.model_validate(d)


def test_the_stream_is_poisson_with_its_weekday_factors() -> None:
    """Daily counts of an as-logged stream: mean per weekday within 3 Poisson SE of per_day x factor,
    every contact a first contact (no follow-ups), none tied to a customer or order."""
    s = stream_scenario()
    res = simulate(s, seed=3, replication=0, events=True)
    daily = res.daily["contacts"].to_numpy(dtype=float)
    dow = res.daily["date"].dt.day_of_week.to_numpy()
    for d in range(7):
        v = daily[dow == d]
        mu = PER_DAY * WEEKDAY[d]
        assert abs(v.mean() - mu) < 3 * math.sqrt(mu / len(v)), (d, v.mean(), mu)
    c = res.events["contacts"]
    assert (c["kind"] == FIRST).all() and (c["customer"] == -1).all() and (c["order"] == -1).all()
    assert res.kpis["orders"] == 0


def test_follow_ups_add_repeats_when_asked() -> None:
    res = simulate(stream_scenario(follow_ups=True, days=21), seed=3, replication=0, events=True)
    kinds = set(res.events["contacts"]["kind"].tolist())
    assert FIRST in kinds and len(kinds) > 1  # repeats / retries of the stream's first contacts


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stream") / "h"
    synth_history(stream_scenario(), seed=11, out_dir=out, mess=True)
    return out / "contacts.csv"


def test_contacts_only_recovers_volume_weekday_and_hours(history: Path) -> None:
    """per_day and each weekday factor within 3 standard errors of the truth. With Poisson counts,
    the weekday mean of n_d days has variance per_day*f_d/n_d; per_day = mean of the 7 weekday means
    has variance sum_d(per_day*f_d/n_d)/49 and f_d = mean_d/per_day about (per_day*f_d/n_d)/per_day^2.
    The hour profile: total variation distance to the truth below 3x its multinomial scale,
    sum_h sqrt(p_h(1-p_h)/N)/2."""
    h = read_history(contacts=history)
    cal = calibrate(h, load_scenario(ROOT / "scenarios" / "baseline.yaml"), holdout_weeks=0)
    arr = cal.scenario.contacts.arrivals
    assert arr is not None and arr.follow_ups is False
    n_d = np.array([sum(1 for i in range(DAYS) if (cal.window.start.day_of_week + i) % 7 == d) for d in range(7)])
    var_d = PER_DAY * WEEKDAY / n_d
    assert abs(arr.per_day - PER_DAY) < 3 * math.sqrt(var_d.sum() / 49), arr.per_day
    for d in range(7):
        assert abs(arr.weekday_factors[d] - WEEKDAY[d]) < 3 * math.sqrt(var_d[d]) / PER_DAY, (d, arr.weekday_factors)
    p = cal.param("contacts.arrivals.per_day")
    assert p is not None and p.intervals["value"][1] < p.value < p.intervals["value"][2]
    assert set(arr.reason_mix) == {"wismo", "billing"} and abs(arr.reason_mix["wismo"] - 0.6) < 3 * math.sqrt(0.24 / (PER_DAY * DAYS))
    assert cal.scenario.demand.new_customers_per_day == 0 and cal.scenario.demand.initial_customers == 0
    truth = np.asarray(HOURS) / sum(HOURS)
    fitted = np.asarray(cal.scenario.contacts.hour_weights)
    n = PER_DAY * DAYS
    scale = float(np.sum(np.sqrt(truth * (1 - truth) / n)) / 2)
    assert hour_profile_distance(fitted, truth) < 3 * scale
    assert not [w for w in cal.warnings if "contacts.arrivals" in w]


def test_backtest_holdout_reproduces_weekly_volume_and_hours(history: Path) -> None:
    """Fit on 8 weeks, hold out 4: weekly volume error within Poisson noise. A week has about
    7*PER_DAY = 2,100 contacts, so actual and simulated weekly counts differ by a relative SD of
    sqrt(1/2100 * (1 + 1/reps)) = 2.5% (plus the per_day estimate's 1.5%); the MAPE must stay below
    three times that. Hour profile: total variation below 3 %."""
    h = read_history(contacts=history)
    cal = calibrate(h, load_scenario(ROOT / "scenarios" / "baseline.yaml"), holdout_weeks=4)
    bt = run_backtest(cal.scenario, cal.prepared, "UTC", reps=2, seed=5, workers=1)
    e = bt.errors["contacts"]
    sd = math.sqrt(1 / (7 * PER_DAY) * 1.5 + 1 / (PER_DAY * cal.window.fit_days))
    assert e["holdout"] is not None and e["holdout"] < 3 * sd, e
    assert e["fit"] is not None and e["fit"] < 3 * sd, e
    assert bt.hour_profile["holdout"] is not None and bt.hour_profile["holdout"] < 0.03


def test_short_history_warns_that_weekday_and_volume_cannot_be_fitted(tmp_path: Path) -> None:
    out = tmp_path / "h"
    synth_history(stream_scenario(days=5), seed=2, out_dir=out, mess=False)
    cal = calibrate(read_history(contacts=out / "contacts.csv"), load_scenario(ROOT / "scenarios" / "baseline.yaml"), holdout_weeks=0)
    warned = " ".join(cal.warnings)
    assert "weekday_factors: not fitted" in warned and "per_day: fitted from 5 day(s) only" in warned
    assert cal.scenario.contacts.arrivals is not None and cal.scenario.contacts.arrivals.weekday_factors == [1.0] * 7
    assert {k["path"]: k["reason"] for k in cal.kept}.get("contacts.arrivals.weekday_factors") is None  # set flat, and warned
