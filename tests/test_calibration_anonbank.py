"""End to end on real, messy data: the Anonymous Bank call log (one day, 2,375 calls) becomes
contacts.csv, and calibration fits phone handle time and patience from it.

Reference figures (the data README): 1,511 calls served with service time mean 193.8 s, median
117 s, coefficient of variation 1.55; 728 of the 1,989 calls that reached the queue abandoned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.anonbank import anonbank_to_contacts, read_anonbank_csv
from calibration.fit import calibrate
from calibration.schemas import read_history
from sim.loader import load_scenario

DATA = Path("/work/shared/data/anonbank_calls_one_day.csv")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not DATA.exists(), reason="shared data not available")


@pytest.fixture(scope="module")
def cal(tmp_path_factory: pytest.TempPathFactory) -> object:
    out = tmp_path_factory.mktemp("ab") / "contacts.csv"
    anonbank_to_contacts(read_anonbank_csv(DATA)).to_csv(out, index=False)
    h = read_history(contacts=out, timezone="Asia/Jerusalem")
    return calibrate(h, load_scenario(ROOT / "scenarios" / "baseline.yaml"), holdout_weeks=0)


def test_the_log_reads_as_one_day_of_phone_contacts(cal: object) -> None:
    w = cal.window  # type: ignore[attr-defined]
    assert str(w.start.date()) == "2010-08-01" and w.days == 1
    c = cal.prepared.contacts  # type: ignore[attr-defined]
    assert len(c) == 2239 and set(c["channel"]) == {"phone"}
    assert any("outside the scenario's" in n for n in cal.notes)  # type: ignore[attr-defined]


def test_handle_time(cal: object) -> None:
    """Pooled over the bank's service types (not scenario reasons), the phone handle-time family is
    chosen by AIC (lognormal: far from exponential), its cv matches the data's 1.55 and its mean
    the data's 3.23 min within the interval; it is applied to each reason by scaling the base means."""
    p = cal.param("contacts.reasons.wismo.handle_time_min.phone")  # type: ignore[attr-defined]
    assert p is not None and p.value["dist"] == "lognormal"
    d = p.diagnostics
    assert d["n"] == 1509  # served calls with a service time > 0
    lo, hi = d["mean_ci95"]
    assert lo <= 193.8 / 60 * 1.15 and hi >= 193.8 / 60  # the lognormal's mean sits a little above the sample mean
    assert 1.3 <= d["cv"] <= 1.8 and d["aic"]["lognormal"] < d["aic"]["exponential"]
    ratio = {r: cal.param(f"contacts.reasons.{r}.handle_time_min.phone").value["mean"] for r in ("wismo", "billing")}  # type: ignore[attr-defined]
    base = load_scenario(ROOT / "scenarios" / "baseline.yaml").contacts.reasons
    assert ratio["wismo"] / ratio["billing"] == pytest.approx(base["wismo"].handle_time_min["phone"].mean / base["billing"].handle_time_min["phone"].mean, rel=1e-4)


def test_patience_with_answered_calls_censored(cal: object) -> None:
    p = cal.param("contacts.channels.phone.patience_min")  # type: ignore[attr-defined]
    assert p is not None
    d = p.diagnostics
    assert d["abandoned"] == 728 and d["censored"] is True and d["n_events"] == 728
    assert d["converged"] and d["family"] in ("lognormal", "weibull", "exponential")
    lo, hi = p.intervals["mean"][1:]
    assert lo < p.value["mean"] < hi
    # the median patience lies where the abandonments are: between 1 and 10 minutes
    assert 1.0 < d["median_min"] < 10.0
    # censoring matters: the naive mean wait of the abandoned calls is far below the patience median
    c = cal.prepared.contacts  # type: ignore[attr-defined]
    ab = c["abandoned"].to_numpy(dtype=bool, na_value=False)
    assert np.mean(c["wait_min"].to_numpy()[ab]) < d["median_min"]


def test_one_day_gives_a_flat_contact_stream_with_warnings(cal: object) -> None:
    """Contacts-only: the day's 2,239 contacts become contacts.arrivals.per_day (Poisson interval,
    since one day says nothing about day-to-day spread), and the weekday profile cannot be fitted
    from one day: both are warnings."""
    arr = cal.scenario.contacts.arrivals  # type: ignore[attr-defined]
    assert arr is not None and arr.per_day == 2239 and arr.weekday_factors == [1.0] * 7
    assert arr.channel_mix.phone == 1.0 and not arr.follow_ups
    lo, hi = cal.param("contacts.arrivals.per_day").intervals["value"][1:]  # type: ignore[attr-defined]
    assert lo == pytest.approx(2239 - 1.959964 * 2239**0.5) and hi == pytest.approx(2239 + 1.959964 * 2239**0.5)
    warned = " ".join(cal.warnings)  # type: ignore[attr-defined]
    assert "weekday_factors: not fitted" in warned and "fitted from 1 day(s) only (Sun)" in warned


def test_the_calibrated_scenario_is_valid(cal: object) -> None:
    s = cal.scenario  # type: ignore[attr-defined]
    assert s.contacts.channels["phone"].patience_min.mean == pytest.approx(cal.param("contacts.channels.phone.patience_min").value["mean"])  # type: ignore[attr-defined,union-attr]
    assert s.start_date.isoformat() == "2010-08-01"
    kept = {k["path"]: k["reason"] for k in cal.kept}  # type: ignore[attr-defined]
    assert "demand.new_customers_per_day" not in kept  # contacts-only: no orders, a contact stream instead
    assert s.demand.new_customers_per_day == 0 and s.demand.initial_customers == 0
    assert kept["contacts.reasons.wismo.probability"] == "no orders file: contact triggers unknown"
