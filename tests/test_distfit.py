"""Duration fits (complete and right-censored), Kaplan-Meier, rate and proportion intervals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from calibration import distfit


def _min_coverage(n_seeds: int, level: float = 0.95, alpha: float = 0.001) -> int:
    """Smallest count k with P(Binomial(n_seeds, level) < k) <= alpha."""
    return int(stats.binom.ppf(alpha, n_seeds, level))


def _lognormal(rng: np.random.Generator, mean: float, cv: float, n: int) -> np.ndarray:
    s2 = math.log1p(cv * cv)
    return rng.lognormal(math.log(mean) - s2 / 2, math.sqrt(s2), n)


def _gamma(rng: np.random.Generator, mean: float, cv: float, n: int) -> np.ndarray:
    k = 1 / cv**2
    return rng.gamma(k, mean / k, n)


# ------------------------------------------------------------------------------------------
# Complete samples
# ------------------------------------------------------------------------------------------


def test_closed_forms_match_scipy_fit_with_floc_zero() -> None:
    x = _gamma(np.random.default_rng(3), 200.0, 0.8, 3_000)
    fit = distfit.fit_duration(x, B=0)
    g_shape, _, g_scale = stats.gamma.fit(x, floc=0)
    w_shape, _, w_scale = stats.weibull_min.fit(x, floc=0)
    l_sigma, _, l_scale = stats.lognorm.fit(x, floc=0)
    assert fit.fits["gamma"].params["shape"] == pytest.approx(g_shape, rel=1e-6)
    assert fit.fits["gamma"].params["scale"] == pytest.approx(g_scale, rel=1e-6)
    assert fit.fits["weibull"].params["shape"] == pytest.approx(w_shape, rel=1e-5)
    assert fit.fits["weibull"].params["scale"] == pytest.approx(w_scale, rel=1e-5)
    assert fit.fits["lognormal"].params["sigma"] == pytest.approx(l_sigma, rel=1e-9)
    assert math.exp(fit.fits["lognormal"].params["mu"]) == pytest.approx(l_scale, rel=1e-9)
    assert fit.fits["exponential"].params["mean"] == pytest.approx(x.mean())
    # log-likelihoods agree with scipy's densities
    assert fit.fits["gamma"].loglik == pytest.approx(
        stats.gamma.logpdf(x, g_shape, scale=g_scale).sum(), rel=1e-9
    )


@pytest.mark.parametrize(
    ("family", "sampler", "mean", "cv"),
    [("lognormal", _lognormal, 180.0, 1.5), ("gamma", _gamma, 300.0, 0.7)],
)
def test_fit_duration_recovers_family_mean_cv(family: str, sampler, mean: float, cv: float) -> None:  # type: ignore[no-untyped-def]
    x = sampler(np.random.default_rng(11), mean, cv, 5_000)
    fit = distfit.fit_duration(x, B=100, rng=np.random.default_rng(0))
    assert fit.converged, fit.message
    assert fit.family == family
    assert fit.mean_ci95[0] < fit.mean < fit.mean_ci95[1]
    assert abs(fit.mean - mean) < 0.05 * mean
    assert abs(fit.cv - cv) < 0.1 * cv
    assert fit.ks < 0.03
    d = fit.to_scenario_dist()
    assert d == {"dist": family, "mean": fit.mean, "cv": fit.cv}
    assert fit.to_scenario_dist(unit_factor=1 / 60)["mean"] == pytest.approx(fit.mean / 60)


@pytest.mark.parametrize(("family", "sampler"), [("lognormal", _lognormal), ("gamma", _gamma)])
def test_fit_duration_interval_coverage_over_seeds(family: str, sampler) -> None:  # type: ignore[no-untyped-def]
    mean, cv, n_seeds = 120.0, 1.2, 20
    hits_mean = hits_cv = chosen = 0
    for seed in range(n_seeds):
        x = sampler(np.random.default_rng(100 + seed), mean, cv, 2_000)
        fit = distfit.fit_duration(x, families=(family,), B=100, rng=np.random.default_rng(seed))
        hits_mean += fit.mean_ci95[0] <= mean <= fit.mean_ci95[1]
        hits_cv += fit.cv_ci95[0] <= cv <= fit.cv_ci95[1]
        chosen += distfit.fit_duration(x, B=0).family == family
    assert hits_mean >= _min_coverage(n_seeds)
    assert hits_cv >= _min_coverage(n_seeds)
    assert chosen >= n_seeds - 2  # AIC picks the generating family nearly always at n=2000


def test_exponential_scenario_dist_has_only_mean() -> None:
    x = np.random.default_rng(5).exponential(50.0, 4_000)
    fit = distfit.fit_duration(x, families=("exponential",), B=0)
    assert fit.to_scenario_dist() == {"dist": "exponential", "mean": pytest.approx(x.mean())}
    assert fit.cv == 1.0


def test_delta_and_bootstrap_intervals_agree_roughly() -> None:
    x = _lognormal(np.random.default_rng(8), 100.0, 1.0, 3_000)
    a = distfit.fit_duration(x, families=("lognormal",), B=0)
    b = distfit.fit_duration(x, families=("lognormal",), B=200, rng=np.random.default_rng(1))
    width_a = a.mean_ci95[1] - a.mean_ci95[0]
    width_b = b.mean_ci95[1] - b.mean_ci95[0]
    assert 0.7 < width_a / width_b < 1.4
    assert "delta" in a.ci_method and "bootstrap" in b.ci_method


def test_bootstrap_is_reproducible_with_the_same_seed() -> None:
    x = _gamma(np.random.default_rng(2), 60.0, 0.9, 500)
    a = distfit.fit_duration(x, B=50, rng=np.random.default_rng(7))
    b = distfit.fit_duration(x, B=50, rng=np.random.default_rng(7))
    assert a.mean_ci95 == b.mean_ci95 and a.cv_ci95 == b.cv_ci95


def test_fit_duration_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="non-positive"):
        distfit.fit_duration([1.0, 0.0, 3.0])
    fit = distfit.fit_duration([1.0, 0.0, 3.0, 2.0, 5.0], nonpositive="drop", B=0)
    assert fit.n_dropped == 1 and fit.n == 4
    with pytest.raises(ValueError, match="distinct"):
        distfit.fit_duration([2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="families"):
        distfit.fit_duration([1.0, 2.0, 3.0], families=("pareto",))
    with pytest.raises(ValueError, match="NaN"):
        distfit.fit_duration([1.0, float("nan")])


def test_duration_fit_to_dict_is_json() -> None:
    fit = distfit.fit_duration(_gamma(np.random.default_rng(1), 10.0, 1.0, 300), B=20)
    json.dumps(fit.to_dict(), allow_nan=False)


# ------------------------------------------------------------------------------------------
# Censored samples: patience
# ------------------------------------------------------------------------------------------


def _abandonment_sample(
    seed: int, n: int, mean_patience: float, mean_wait: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exponential patience against exponential offered waits: the contact abandons when its
    patience runs out before the offered wait; otherwise it is answered (censored)."""
    rng = np.random.default_rng(seed)
    patience = rng.exponential(mean_patience, n)
    offered = rng.exponential(mean_wait, n)
    return np.minimum(patience, offered), patience < offered


def test_censored_mle_recovers_patience_while_naive_mean_is_biased() -> None:
    mean_patience, mean_wait = 120.0, 60.0
    wait, abandoned = _abandonment_sample(42, 8_000, mean_patience, mean_wait)
    fit = distfit.fit_patience(wait, abandoned, families=("exponential",), B=0)
    assert fit.converged and fit.censored
    assert fit.mean_ci95[0] < mean_patience < fit.mean_ci95[1]
    # closed form: events / total time at risk
    assert fit.mean == pytest.approx(wait.sum() / abandoned.sum(), rel=1e-6)
    naive = wait[abandoned].mean()
    # E[wait | abandoned] = 1 / (1/120 + 1/60) = 40 s: a third of the true mean patience
    assert naive == pytest.approx(1 / (1 / mean_patience + 1 / mean_wait), rel=0.05)
    assert naive < 0.5 * mean_patience


def test_patience_interval_coverage_over_seeds() -> None:
    n_seeds, hits = 20, 0
    for seed in range(n_seeds):
        wait, abandoned = _abandonment_sample(300 + seed, 2_000, 120.0, 60.0)
        fit = distfit.fit_patience(wait, abandoned, families=("exponential", "weibull"), B=0)
        hits += (
            fit.fits["exponential"].mean - 1.96 * fit.fits["exponential"].se["mean"]
            <= 120.0
            <= (fit.fits["exponential"].mean + 1.96 * fit.fits["exponential"].se["mean"])
        )
    assert hits >= _min_coverage(n_seeds)


def test_censored_lognormal_patience_recovered() -> None:
    rng = np.random.default_rng(9)
    n = 6_000
    patience = _lognormal(rng, 200.0, 1.3, n)
    offered = rng.exponential(150.0, n)
    wait, abandoned = np.minimum(patience, offered), patience < offered
    fit = distfit.fit_patience(wait, abandoned, B=40, rng=np.random.default_rng(0))
    assert fit.family == "lognormal"
    assert fit.mean_ci95[0] < 200.0 < fit.mean_ci95[1]
    assert abs(fit.cv - 1.3) < 0.3


def test_zero_waits_are_handled() -> None:
    wait, abandoned = _abandonment_sample(4, 3_000, 100.0, 40.0)
    wait = np.round(wait)  # a log in whole seconds: some zeros, both answered and abandoned
    n_zero_answered = int(((wait == 0) & ~abandoned).sum())
    n_zero_abandoned = int(((wait == 0) & abandoned).sum())
    assert n_zero_answered > 0 and n_zero_abandoned > 0
    fit = distfit.fit_patience(wait, abandoned, families=("exponential", "weibull"), B=0)
    assert fit.converged
    assert fit.n_dropped == n_zero_answered
    assert fit.n_events == int(abandoned.sum())
    assert "wait 0" in fit.message
    assert abs(fit.fits["exponential"].mean - 100.0) < 4 * fit.fits["exponential"].se["mean"]


def test_fit_patience_input_errors() -> None:
    with pytest.raises(ValueError, match="no abandonments"):
        distfit.fit_patience([1.0, 2.0], [False, False])
    with pytest.raises(ValueError, match="same length"):
        distfit.fit_patience([1.0, 2.0], [True])
    with pytest.raises(ValueError, match=">= 0"):
        distfit.fit_patience([-1.0, 2.0], [True, False])


def test_kaplan_meier_hand_example() -> None:
    km = distfit.kaplan_meier([1, 2, 2, 3, 4], [True, True, False, True, False])
    s = dict(zip(km["time"], km["survival"], strict=True))
    assert s[1] == pytest.approx(0.8)
    assert s[2] == pytest.approx(0.6)
    assert s[3] == pytest.approx(0.3)
    assert s[4] == pytest.approx(0.3)
    assert list(km["at_risk"]) == [5, 4, 2, 1]
    assert (km["lower"] <= km["survival"]).all() and (km["survival"] <= km["upper"]).all()


def test_kaplan_meier_without_censoring_is_empirical_survival() -> None:
    x = np.random.default_rng(0).exponential(10.0, 200)
    km = distfit.kaplan_meier(x, np.ones(200, bool))
    emp = 1 - np.arange(1, 201) / 200
    np.testing.assert_allclose(km["survival"].to_numpy(), emp, atol=1e-12)


# ------------------------------------------------------------------------------------------
# Rates, proportions, bootstrap
# ------------------------------------------------------------------------------------------


def test_poisson_rate_garwood() -> None:
    rate, (lo, hi) = distfit.poisson_rate(0, 2.0)
    assert rate == 0 and lo == 0 and hi == pytest.approx(3.6889 / 2, abs=1e-4)
    rate, (lo, hi) = distfit.poisson_rate(10, 1.0)
    assert (
        rate == 10
        and lo == pytest.approx(4.7954, abs=1e-3)
        and hi == pytest.approx(18.3904, abs=1e-3)
    )
    with pytest.raises(ValueError):
        distfit.poisson_rate(-1, 1.0)


def test_wilson_interval() -> None:
    p, (lo, hi) = distfit.proportion(0, 10)
    assert p == 0 and lo == 0 and hi == pytest.approx(0.2775, abs=1e-4)
    p, (lo, hi) = distfit.proportion(728, 1971)
    assert lo < p < hi
    assert (hi - lo) == pytest.approx(2 * 1.96 * math.sqrt(p * (1 - p) / 1971), rel=0.02)
    with pytest.raises(ValueError):
        distfit.proportion(11, 10)


def test_bootstrap_ci_of_a_mean() -> None:
    x = np.random.default_rng(1).normal(5.0, 2.0, 1_000)
    est, (lo, hi) = distfit.bootstrap_ci(np.mean, x, np.random.default_rng(2), B=400)
    assert est == pytest.approx(x.mean())
    assert (hi - lo) == pytest.approx(2 * 1.96 * x.std() / math.sqrt(x.size), rel=0.2)
    # several arrays are resampled jointly
    y = 2 * x
    est2, _ = distfit.bootstrap_ci(
        lambda a, b: float(np.mean(b - 2 * a)), (x, y), np.random.default_rng(2), B=50
    )
    assert est2 == pytest.approx(0.0)
    with pytest.raises(TypeError):
        distfit.bootstrap_ci(np.mean, x, 3, B=10)  # type: ignore[arg-type]
