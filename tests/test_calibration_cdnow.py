"""Calibration on real data: the CDNOW order log (Fader & Hardie; shipped in the ``lifetimes``
0.11.3 wheel on PyPI, MIT licence, fetched here with ``pip download`` and read from the wheel
zip; the tests skip when PyPI is not reachable).

CDNOW is a closed cohort (the 23,570 customers who first bought in Q1 1997, followed to June
1998) with date-only timestamps and several orders of a customer on one day: the three things
that made ``cxsim calibrate`` exit 2 on it. References: Fader, Hardie & Lee (2005) for BG/NBD on
the 2,357-customer sample in weeks (r 0.243, alpha 4.414, a 0.793, b 2.426, LL -9582.4), and an
independent maximum-likelihood fit (written here from the MBG/NBD likelihood) for the engine's
repurchase model on the same day-merged data.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from scipy import optimize, special
from typer.testing import CliRunner

from calibration import btyd
from calibration.collector import Collector
from calibration.commands import calibrate_command
from calibration.demand import fit_demand
from calibration.schemas import read_history
from calibration.summaries import customer_marks, history_window, merge_same_day_orders, prepare
from sim.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
WHEEL = "lifetimes==0.11.3"

app = typer.Typer(add_completion=False)
app.command("calibrate")(calibrate_command)
runner = CliRunner()


def _to_orders(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "order_id": [f"o{i + 1}" for i in range(len(raw))],
        "customer_id": raw["customer_id"].astype(str),
        "order_ts": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d").dt.strftime("%Y-%m-%d"),
        "order_value": raw["value"].astype(float),
    })


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """orders.csv files (cxsim schema, one row per line of the original) of the CDNOW sample and
    master file."""
    d = tmp_path_factory.mktemp("cdnow")
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q", "-d", str(d)],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        pytest.skip(f"cannot download {WHEEL} from PyPI: {exc}")
    wheel = next(d.glob("*.whl"))
    out = {}
    with zipfile.ZipFile(wheel) as z:
        with z.open("lifetimes/datasets/CDNOW_sample.txt") as fh:
            sample = pd.read_csv(fh, sep=r"\s+", header=None, names=["customer_id", "id2", "date", "cds", "value"], dtype={"customer_id": str})
        with z.open("lifetimes/datasets/CDNOW_master.txt") as fh:
            master = pd.read_csv(fh, sep=r"\s+", header=None, skiprows=1, names=["customer_id", "date", "cds", "value"], dtype={"customer_id": str})
    for name, raw in (("sample", sample), ("master", master)):
        p = d / f"{name}_orders.csv"
        _to_orders(raw).to_csv(p, index=False)
        out[name] = p
    assert len(sample) == 6919 and sample["customer_id"].nunique() == 2357
    assert len(master) == 69659 and master["customer_id"].nunique() == 23570
    return out


def _calibrate_cli(orders: Path, tmp: Path, *extra: str) -> tuple[typer.testing.Result, dict]:  # type: ignore[name-defined]
    out, rep = tmp / "cal.yaml", tmp / "report"
    res = runner.invoke(app, ["--orders", str(orders), "--base", str(BASELINE), "--out", str(out), "--report", str(rep),
                              "--holdout-weeks", "39", *extra], env={"COLUMNS": "200"})
    report = json.loads((rep / "report.json").read_text()) if (rep / "report.json").exists() else {}
    return res, report


@pytest.fixture(scope="module")
def sample_run(cdnow: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[typer.testing.Result, dict]:  # type: ignore[name-defined]
    return _calibrate_cli(cdnow["sample"], tmp_path_factory.mktemp("cal_sample"), "--reps", "0")


def test_cdnow_sample_calibrates_with_exit_0_and_says_why(sample_run: tuple[typer.testing.Result, dict]) -> None:  # type: ignore[name-defined]
    res, report = sample_run
    assert res.exit_code == 0, res.output
    out = res.output
    # the data's peculiarities are warnings before the summary line, and in the report
    assert out.index("date-only") < out.index("Fitted")
    assert out.index("closed cohort") < out.index("Fitted")
    assert any("date-only" in w for w in report["warnings"])
    fitted = {p["path"]: p["value"] for p in report["fitted"]}
    assert fitted["demand.acquisition_end"] == "1997-03-26"  # the day after the sample's last first order
    assert "demand.hour_weights" not in fitted and "demand.annual_growth" not in fitted
    assert report["models"]["same_day_orders_merged"] == 6919 - 6696  # distinct (customer, day) pairs: 6,696
    assert report["models"]["arrivals_and_repurchase"]["converged"]


def test_bgnbd_on_all_customers_matches_the_published_fit(sample_run: tuple[typer.testing.Result, dict]) -> None:  # type: ignore[name-defined]
    """Fader, Hardie & Lee (2005), CDNOW sample, 39-week calibration period, weeks."""
    comp = sample_run[1]["models"]["repurchase_comparison"]
    assert comp["customers"] == 2357 and comp["time_unit"] == "weeks"
    bg = comp["bgnbd"]
    assert bg["converged"]
    for k, v in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert bg["params"][k] == pytest.approx(v, abs=6e-4), k  # published to 3 decimals
    assert bg["loglik"] == pytest.approx(-9582.4, abs=0.06)


def test_holdout_prediction_table_adds_up_to_the_data(sample_run: tuple[typer.testing.Result, dict], cdnow: dict[str, Path]) -> None:  # type: ignore[name-defined]
    """The per-group actual holdout means reproduce the repeat purchase days counted directly from
    the raw file; predictions rise with calibration frequency, as BG/NBD's conditional expectation
    must (more past purchases, more expected ones)."""
    h = sample_run[1]["models"]["repurchase_comparison"]["bgnbd_holdout"]
    raw = pd.read_csv(cdnow["sample"], dtype={"customer_id": str})
    days = raw.drop_duplicates(["customer_id", "order_ts"])
    ts = pd.to_datetime(days["order_ts"])
    first = ts.groupby(days["customer_id"]).transform("min")
    hold = (ts >= "1997-10-01") & (ts > first)
    assert h["holdout_total"]["actual"] == hold.sum() == 1882
    rows = h["by_frequency"]
    assert sum(r["customers"] for r in rows) == 2357
    assert sum(r["customers"] * r["actual_mean"] for r in rows) == pytest.approx(1882)
    pred = [r["predicted_mean"] for r in rows]
    assert all(b > a for a, b in itertools.pairwise(pred))
    assert sum(h["weekly"]["actual"]) == (ts > first).sum()
    # the weekly expectation summed over the 39 calibration weeks is sum_i E[X(T_i)], T_i from the
    # raw file (weeks from the first purchase day to 1997-09-30)
    params = sample_run[1]["models"]["repurchase_comparison"]["bgnbd"]["params"]
    T = ((pd.Timestamp("1997-09-30") - first.groupby(days["customer_id"]).min()).dt.days / 7).to_numpy()
    assert sum(h["weekly"]["predicted"][:39]) == pytest.approx(btyd.bgnbd_expected_purchases(params, T).sum(), rel=1e-9)
    # measured: BG/NBD predicts 1,653 of the 1,882 holdout repeat days (-12%)
    assert -0.2 < h["holdout_total"]["error"] < 0.0


def _mbgnbd_reference(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """MBG/NBD maximum likelihood, written from Batislam et al. (2007) eq. (3) with scipy only
    (Nelder-Mead on log parameters, no gradient): independent of calibration.acquisition."""
    def negll(eta: np.ndarray) -> float:
        r, al, a, b = np.exp(eta)
        lg = special.gammaln(r + x) - special.gammaln(r) + r * np.log(al)
        t1 = special.betaln(a, b + x + 1) - special.betaln(a, b) - (r + x) * np.log(al + T)
        t2 = special.betaln(a + 1, b + x) - special.betaln(a, b) - (r + x) * np.log(al + tx)
        return -float(np.sum(lg + np.logaddexp(t1, t2)))

    res = optimize.minimize(negll, np.log([0.5, 40.0, 1.0, 1.5]), method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 20000, "maxfev": 40000})
    assert res.success, res.message
    return np.exp(res.x)


def test_engine_repurchase_fit_on_day_merged_data_matches_a_reference_fit(cdnow: dict[str, Path]) -> None:
    """The joint arrival/repurchase fit (the engine's MBG/NBD, day units, closed cohort) equals a
    plain reference MLE of the same model on the same day-merged customer marks to 3 significant
    figures: with no uplift on the repurchase clock and no pre-history customers, the joint
    likelihood factorises into arrivals x MBG/NBD."""
    h = read_history(orders=cdnow["sample"])
    base = load_scenario(BASELINE)
    w = history_window(h, 39)
    p = prepare(h, w)
    out = Collector(base.model_dump(mode="json"))
    info = fit_demand(p, base, out, np.random.default_rng(0))
    fit = info["acquisition"]
    assert fit.converged, fit.message
    assert not fit.sensitivity_fitted and not fit.existing_modelled
    merged, n = merge_same_day_orders(p.orders)
    assert n == 223
    cust = customer_marks(merged, w.fit_days)
    ref = _mbgnbd_reference(cust["x"].to_numpy(float), cust["tx"].to_numpy(float), cust["T"].to_numpy(float))
    got = np.array([fit.theta[k] for k in ("r", "alpha", "a", "b")])
    np.testing.assert_allclose(got, ref, rtol=5e-4)
    # and the same model in weeks on the lifetimes RFM convention reproduces lifetimes' published
    # ModifiedBetaGeoFitter values on CDNOW (r 0.525, alpha 6.183, a 0.891, b 1.614)
    mbg = out.models["repurchase_comparison"]["mbgnbd"]["params"]
    for k, v in {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}.items():
        assert mbg[k] == pytest.approx(v, abs=6e-4), k


@pytest.mark.slow
def test_cdnow_master_calibrates_with_exit_0_and_a_stable_repurchase_fit(cdnow: dict[str, Path], tmp_path: Path) -> None:
    """All 23,570 customers, 69,659 orders: exit 0, the joint fit converges, and its MBG/NBD
    parameters agree with the plain MBG/NBD of the comparison (weeks, lifetimes' T convention)
    to within the clock and convention differences (10%)."""
    res, report = _calibrate_cli(cdnow["master"], tmp_path, "--reps", "0")
    assert res.exit_code == 0, res.output
    m = report["models"]
    assert m["arrivals_and_repurchase"]["converged"], m["arrivals_and_repurchase"]["message"]
    assert m["repurchase_comparison"]["customers"] == 23570
    fitted = {p["path"]: p["value"] for p in report["fitted"]}
    mbg = m["repurchase_comparison"]["mbgnbd"]["params"]
    assert fitted["repurchase.rate_shape_r"] == pytest.approx(mbg["r"], rel=0.1)
    assert fitted["repurchase.rate_scale_alpha_days"] / 7 == pytest.approx(mbg["alpha"], rel=0.1)
    assert fitted["repurchase.dropout_a"] == pytest.approx(mbg["a"], rel=0.1)
    assert math.isfinite(m["repurchase_comparison"]["bgnbd"]["loglik"])
