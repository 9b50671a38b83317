"""The calibration models on data drawn directly from their own generative process (no engine):
the joint arrivals + MBG/NBD likelihood and its gradient, uplift detection, day-censored and
truncated duration fits, and the raw → summary transforms. Tolerances: the fitted 95% intervals
must contain the truth (fixed seeds), and point estimates sit within a few standard errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from calibration.acquisition import (
    N_FIXED,
    Clock,
    DayDesign,
    _Joint,
    detect_runs,
    fit_acquisition,
    fit_mbgnbd,
)
from calibration.censored import fit_interval_censored, fit_truncated
from calibration.summaries import daily_counts, mark_first_touches, repeat_curve, weekly_sums


def mbg_sample(rng: np.random.Generator, n: int, T: np.ndarray, r: float, alpha: float, a: float, b: float, k: int = 0) -> tuple[np.ndarray, ...]:
    """(x, tx) of the MBG/NBD process (drop-out possible at every would-be purchase), exact."""
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b + k, n)
    n_att = rng.poisson(lam * T)
    j = rng.geometric(p) - 1
    x = np.minimum(n_att, j)
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), n_att - x + 1), 0.0)
    return x, tx


def test_mbgnbd_recovers_its_parameters() -> None:
    rng = np.random.default_rng(1)
    n = 30_000
    T = rng.uniform(20, 200, n)
    truth = {"r": 1.5, "alpha": 110.0, "a": 1.4, "b": 0.45}
    x, tx = mbg_sample(rng, n, T, **truth)
    fit = fit_mbgnbd(x, tx, T)
    assert fit.converged, fit.message
    for k, v in truth.items():
        lo, hi = fit.ci95[k]
        assert lo <= v <= hi, (k, v, fit.ci95[k])


def test_joint_gradient_is_exact() -> None:
    rng = np.random.default_rng(2)
    D, n = 60, 500
    t0 = rng.uniform(0, D, n)
    x = rng.poisson(0.6, n)
    tx = np.where(x > 0, rng.uniform(0, 1, n) * (D - t0), 0.0)
    cust = pd.DataFrame({"t0": t0, "x": x, "tx": tx, "T": D - t0, "hour": rng.integers(0, 24, n)})
    design = DayDesign.build(np.arange(D) % 7, True, [(20, 25), (30, 40)])
    m = np.ones(D)
    m[20:26], m[30:41] = 2.0, 1.5
    for existing in (True, False):
        model = _Joint(cust, rng.uniform(0, D, 300), D, design, 2, existing, Clock(m), True)
        model.set_hours(rng.dirichlet(np.ones(24)))
        eta = np.concatenate([np.log([1.3, 40, 1.2, 0.6]), [math.log(500.0), 0.4], rng.normal(0, 0.1, design.X.shape[1])])
        _, grad = model.negll(eta)
        num = np.array([(model.negll(eta + e)[0] - model.negll(eta - e)[0]) / 2e-6 for e in np.eye(len(eta)) * 1e-6])
        if not existing:
            num[4] = 0.0
        assert np.allclose(grad, num, rtol=1e-5, atol=1e-5)


def simulate_log(seed: int, D: int = 180, n0: int = 20_000, rate: float = 250.0) -> tuple[pd.DataFrame, np.ndarray, dict[str, float]]:
    """An order log from the model of calibration.acquisition: new customers (weekday factors, one
    uplift), customers from before the log (k = 2 earlier repeats), MBG/NBD repurchase whose clock
    runs 1 + s (m - 1) faster in the uplift."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b, k, s = 1.5, 60.0, 1.4, 0.6, 2, 0.5
    wd = np.array([1.1, 1.0, 1.0, 1.0, 0.9, 0.9, 1.1])
    m = np.ones(D)
    m[100:110] = 2.5
    dow = np.arange(D) % 7
    clock = Clock(m)
    grid = np.arange(D + 1.0)
    lam_grid = grid + s * clock.M(grid)

    def to_time(c: np.ndarray) -> np.ndarray:
        return np.interp(c, lam_grid, grid, right=np.inf)

    def repurchases(lam: np.ndarray, p: np.ndarray, start_clock: np.ndarray, first_counts: bool) -> list[np.ndarray]:
        out = []
        for i in range(len(lam)):
            c, times = start_clock[i], []
            while True:
                c += rng.exponential(1 / lam[i])
                t = to_time(np.array([c]))[0]
                if t >= D or rng.random() < p[i]:
                    break
                times.append(t)
            out.append(np.array(times))
        return out

    rows = []
    n_new = rng.poisson(rate * wd[dow] * m)
    t_new = np.concatenate([d + rng.random(c) for d, c in enumerate(n_new)])
    lam = rng.gamma(r, 1 / alpha, len(t_new))
    p = rng.beta(a, b, len(t_new))
    for i, (t, reps) in enumerate(zip(t_new, repurchases(lam, p, np.interp(t_new, grid, lam_grid), True), strict=True)):
        rows += [(f"N{i}", t)] + [(f"N{i}", u) for u in reps]
    lam0 = rng.gamma(r, 1 / alpha, n0)
    p0 = rng.beta(a, b + k, n0)
    for i, reps in enumerate(repurchases(lam0, p0, np.zeros(n0), False)):
        rows += [(f"E{i}", u) for u in reps]
    o = pd.DataFrame(rows, columns=["customer_id", "t"]).sort_values("t", kind="stable").reset_index(drop=True)
    o["first"] = ~o["customer_id"].duplicated()
    o["hour"] = np.floor((o["t"] % 1) * 24).astype(int)
    truth = {"r": r, "alpha": alpha, "a": a, "b": b, "n0": n0, "s": s, "uplift": 2.5}
    return o, dow, truth


def test_joint_fit_recovers_arrivals_existing_base_and_repurchase() -> None:
    o, dow, truth = simulate_log(3)
    D = 180
    g = o.groupby("customer_id")["t"]
    cust = pd.DataFrame({"t0": g.min(), "x": g.size() - 1, "tx": g.max() - g.min()})
    cust["T"] = D - cust["t0"]
    cust["hour"] = np.floor((cust["t0"] % 1) * 24).astype(int)
    fit = fit_acquisition(cust, o.loc[~o["first"], "t"].to_numpy(), D, dow, k=2, sensitivity0=0.3)
    assert fit.converged, fit.message
    assert [n for n in fit.design.names if n.startswith("segment_")] == ["segment_100_109"]
    for i, key in enumerate(("r", "alpha", "a", "b")):
        lo, hi = fit.ci_log(i)
        assert lo <= truth[key] <= hi, (key, fit.theta[key], lo, hi)
    lo, hi = fit.ci_log(4)
    assert lo <= truth["n0"] <= hi, (fit.n0, lo, hi)
    se_s = math.sqrt(fit.cov[5, 5])
    assert abs(fit.sensitivity - truth["s"]) < 3 * se_s, (fit.sensitivity, se_s)
    j = N_FIXED + fit.design.names.index("segment_100_109")
    assert abs(fit.eta[j] - math.log(truth["uplift"])) < 3 * math.sqrt(fit.cov[j, j])


def test_detect_runs_finds_a_planted_uplift_and_nothing_else() -> None:
    rng = np.random.default_rng(4)
    base = np.full(200, 400.0)
    lam = base.copy()
    lam[50:60] *= 1.6
    lam[120:125] *= 0.7
    counts = rng.poisson(lam).astype(float)
    found = detect_runs(counts, base, np.zeros(200), np.ones(200, bool))
    segs = sorted((lo, hi) for run, _ in found for lo, hi, _ in run)
    assert segs == [(50, 59), (120, 124)]
    assert detect_runs(rng.poisson(base).astype(float), base, np.zeros(200), np.ones(200, bool)) == []


@pytest.mark.parametrize(("family", "draw", "mean", "cv"), [
    ("lognormal", lambda r, n: r.lognormal(math.log(10) - 0.5 * math.log(2), math.sqrt(math.log(2)), n), 10.0, 1.0),
    ("gamma", lambda r, n: r.gamma(2.0, 3.0, n), 6.0, 1 / math.sqrt(2)),
])
def test_censored_and_truncated_fits_cover_the_truth(family: str, draw: object, mean: float, cv: float) -> None:
    """Over 12 seeds the 95% intervals of the mean and cv cover the truth at least 10 times
    (P(fewer) = 2% at the nominal rate), and the family is chosen right."""
    hits = np.zeros(3, dtype=int)
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        x = draw(rng, 3000)  # type: ignore[operator]
        day = np.floor(x)
        f = fit_interval_censored(day, day + 1)
        assert f.family == family
        hits[0] += f.mean_ci95[0] <= mean <= f.mean_ci95[1]
        hits[1] += f.cv_ci95[0] <= cv <= f.cv_ci95[1]
        upper = float(np.quantile(x, 0.9))
        t = fit_truncated(x[x <= upper], upper, families=(family,))
        hits[2] += t.mean_ci95[0] <= mean <= t.mean_ci95[1]
    assert (hits >= 10).all(), hits


def test_series_and_first_touches() -> None:
    t = np.array([0.1, 0.9, 1.5, 6.99, 7.0, 13.2, -1.0, 30.0])
    d = daily_counts(t, 14)
    assert d.tolist()[:2] == [2.0, 1.0] and d.sum() == 6
    assert weekly_sums(d).tolist() == [4.0, 2.0]
    c = pd.DataFrame({"order_id": ["A", "A", None, "B", "A"], "reason": ["wismo", "wismo", "wismo", "wismo", "billing"]})
    ft = mark_first_touches(c)
    assert [bool(v) if v == v else None for v in ft] == [True, False, None, True, True]


def test_repeat_curve() -> None:
    o = pd.DataFrame({"customer_id": ["a", "a", "b", "c", "c", "c"], "t": [0.5, 3.0, 1.0, 2.0, 2.5, 40.0]})
    rc = repeat_curve(o, (0.0, 10.0), 5, end=50.0)
    assert rc["repeat_share"].iloc[0] == 0.0
    assert rc["repeat_share"].iloc[1] == pytest.approx(1 / 3)  # c repeats after 0.5 days
    assert rc["repeat_share"].iloc[3] == pytest.approx(2 / 3)  # a after 2.5 days
    assert rc["repeat_orders"].iloc[5] == pytest.approx(2 / 3)
