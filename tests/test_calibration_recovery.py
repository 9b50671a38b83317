"""Calibration recovers known parameters: synthetic history from tests/data/calibration_truth.yaml
(the baseline for 200 days, experience effects and referrals off), with the exports' mess, is
calibrated against the baseline (which differs from the truth only in those) and the fitted 95%
intervals are compared with the truth.

Coverage: over three seeds, every interval with a known true value is checked (about 600). The
intervals are correlated within a seed, so the binomial tolerance uses half that count as the
effective number: coverage must lie within 0.95 +/- 3 sqrt(0.95 x 0.05 / (n / 2)) (about +/- 0.026).

Left out of the coverage count, and given their own assertions: parameters whose realised
behaviour in the engine differs from the scenario value by an engine mechanism (reported to the
project lead; see ENGINE_ARTEFACTS). Calibration fits what the history shows, so for those the
fitted value is the realised one, not the parameter. Measured over 8 seeds (200 days): 93% of the
other intervals cover the truth (1,602 intervals), 90% with them.

Backtest: the calibrated scenario, simulated over the history's calendar (2 replications), must
reproduce weekly contact volume with a MAPE below 6% in the fit window (after the two warm-up weeks)
and in the 8-week holdout. Why 6%: a week has about 1,900 contacts, so Poisson noise alone is about
2.3% per week on the history and 2.3%/sqrt(2) on the replication mean; MAPE = 0.8 x combined sd
≈ 2.3%, and the synthetic runs measured 2.3-3.4%. Twice that noise plus a margin for the fitted
parameters' own error gives 6%; a wrong contact rate by reason (e.g. repeats counted as first
contacts, about +20% volume) fails it clearly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from calibration.backtest import run_backtest
from calibration.fit import calibrate
from calibration.recovery import Check, checks
from calibration.schemas import read_history
from calibration.synth import synth_history
from sim.experiment import with_horizon
from sim.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
TRUTH = ROOT / "tests" / "data" / "calibration_truth.yaml"
BASELINE = ROOT / "scenarios" / "baseline.yaml"
SEEDS = (11, 12, 13)
DAYS = 200
MAPE_BOUND = 0.06

ENGINE_ARTEFACTS = {
    # A retry after abandoning is drawn 2 h (exponential) after the abandonment; the engine then
    # keeps its day, draws its hour from the contact profile, and a retry whose time has already
    # passed when the (lazily detected) abandonment is seen joins the queue at that moment. The
    # realised gap has a median of about 12 h, which the day-level fit reads as a longer delay (or,
    # on chat, cannot tell from the day resolution and keeps the base value).
    "retry_delay_hours": "retries are placed by the hour profile and joined late",
}


def _artefact(c: Check) -> bool:
    return any(key == c.path or c.path.endswith(key) for key in ENGINE_ARTEFACTS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[object, dict[str, object], Path]]:
    truth_scenario = with_horizon(load_scenario(TRUTH), DAYS)
    base = load_scenario(BASELINE)
    out = []
    for seed in SEEDS:
        d = tmp_path_factory.mktemp(f"seed{seed}") / "history"
        synth_history(truth_scenario, seed, d, mess=True)
        h = read_history(*(d / f"{k}.csv" for k in ("orders", "contacts", "returns", "staffing")))
        cal = calibrate(h, base, holdout_weeks=8, seed=seed)
        truth = json.loads((d / "truth.json").read_text(encoding="utf-8"))["scenario"]
        out.append((cal, truth, d))
    return out


@pytest.mark.slow
def test_fits_converge_and_use_every_file(runs: list[tuple[object, dict[str, object], Path]]) -> None:
    for cal, _, _ in runs:
        assert not cal.warnings, cal.warnings  # type: ignore[attr-defined]
        assert set(cal.fitted_sections) == {"orders", "contacts", "returns", "staffing"}  # type: ignore[attr-defined]


@pytest.mark.slow
def test_intervals_cover_the_truth_at_about_their_nominal_rate(runs: list[tuple[object, dict[str, object], Path]]) -> None:
    all_checks = [c for cal, truth, _ in runs for c in checks(cal, truth)]  # type: ignore[arg-type]
    counted = [c for c in all_checks if not _artefact(c)]
    n = len(counted)
    assert n > 400
    coverage = sum(c.covered for c in counted) / n
    tol = 3 * math.sqrt(0.95 * 0.05 / (n / 2))
    misses = [(c.path, c.key, round(c.truth, 4), round(c.low, 4), round(c.high, 4)) for c in counted if not c.covered]
    assert 0.95 - tol <= coverage <= 0.95 + tol, (coverage, n, misses)


@pytest.mark.slow
def test_engine_artefacts_are_where_expected(runs: list[tuple[object, dict[str, object], Path]]) -> None:
    """The parameters left out above: the mean purchase rate r/alpha is still recovered; a retry
    delay is either kept from the base as not identified at day resolution, or fitted longer than
    its 2 h parameter (the engine's realised delay)."""
    for cal, truth, _ in runs:
        th = truth["repurchase"]  # type: ignore[index]
        r = cal.param("repurchase.rate_shape_r").value  # type: ignore[attr-defined,union-attr]
        a = cal.param("repurchase.rate_scale_alpha_days").value  # type: ignore[attr-defined,union-attr]
        assert r / a == pytest.approx(th["rate_shape_r"] / th["rate_scale_alpha_days"], rel=0.12)  # type: ignore[index]
        for ch in ("chat", "phone"):
            rd = cal.param(f"contacts.channels.{ch}.retry_delay_hours")  # type: ignore[attr-defined]
            kept = {k["path"]: k["reason"] for k in cal.kept}  # type: ignore[attr-defined]
            assert (rd is None and "not identified" in kept[f"contacts.channels.{ch}.retry_delay_hours"]) or rd.value["mean"] > 2.0


@pytest.mark.slow
def test_backtest_reproduces_weekly_contact_volume(runs: list[tuple[object, dict[str, object], Path]]) -> None:
    cal, _, _ = runs[0]
    bt = run_backtest(cal.scenario, cal.prepared, "UTC", reps=2, seed=7, workers=2)  # type: ignore[attr-defined]
    err = bt.errors["contacts"]
    assert err["fit"] is not None and err["holdout"] is not None
    assert err["fit"] < MAPE_BOUND and err["holdout"] < MAPE_BOUND, err
    assert bt.errors["orders"]["fit"] < MAPE_BOUND and bt.errors["orders"]["holdout"] < MAPE_BOUND, bt.errors["orders"]
