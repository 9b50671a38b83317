"""Buy-till-you-die fits: CDNOW benchmark, likelihood checks, recovery, degenerate input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from calibration import btyd

CDNOW = Path(__file__).parent / "data" / "cdnow_summary.csv"

# Published maximum-likelihood estimates on the CDNOW sample (time unit: weeks).
# BG/NBD: Fader, Hardie & Lee (2005) "Counting your customers the easy way", Marketing Science.
BGNBD_PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
BGNBD_LL = -9582.4
# Pareto/NBD: Fader & Hardie's Pareto/NBD notes / FHL (2005) "RFM and CLV".
PNBD_PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
PNBD_LL = -9595.0
# Gamma-Gamma on the 946 customers with repeat purchases: FHL (2005) "RFM and CLV";
# Fader & Hardie (2013) "The Gamma-Gamma model of monetary value".
GG_PUBLISHED = {"p": 6.25, "q": 3.74, "v": 15.44}


def agrees_to_3_sig(estimate: float, published: float) -> bool:
    """Within half a unit of the third significant figure of the published value."""
    unit = 10 ** (math.floor(math.log10(abs(published))) - 2)
    return abs(estimate - published) <= 0.5 * unit + 1e-12


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW, comment="#")


# ------------------------------------------------------------------------------------------
# CDNOW benchmark
# ------------------------------------------------------------------------------------------


def test_cdnow_file_is_the_standard_sample(cdnow: pd.DataFrame) -> None:
    assert len(cdnow) == 2357
    assert (cdnow["frequency"] > 0).sum() == 946
    assert cdnow["T"].max() <= 39


def test_bgnbd_cdnow_matches_published_mle(cdnow: pd.DataFrame) -> None:
    fit = btyd.fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert fit.converged, fit.message
    for name, published in BGNBD_PUBLISHED.items():
        assert agrees_to_3_sig(fit.params[name], published), (name, fit.params[name], published)
    assert fit.loglik == pytest.approx(BGNBD_LL, abs=0.05)
    assert fit.aic == pytest.approx(2 * 4 - 2 * fit.loglik)
    assert fit.n == 2357
    for name in BGNBD_PUBLISHED:
        lo, hi = fit.ci95[name]
        assert lo < fit.params[name] < hi
        assert fit.se[name] > 0


def test_bgnbd_loglik_at_published_params(cdnow: pd.DataFrame) -> None:
    ll = btyd.bgnbd_loglik(BGNBD_PUBLISHED, cdnow["frequency"], cdnow["recency"], cdnow["T"]).sum()
    assert ll == pytest.approx(BGNBD_LL, abs=0.5)


def test_pareto_nbd_cdnow_matches_published_mle(cdnow: pd.DataFrame) -> None:
    fit = btyd.fit_pareto_nbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert fit.converged, fit.message
    for name, published in PNBD_PUBLISHED.items():
        assert agrees_to_3_sig(fit.params[name], published), (name, fit.params[name], published)
    assert fit.loglik == pytest.approx(PNBD_LL, abs=0.05)


def test_gamma_gamma_cdnow_matches_published_mle(cdnow: pd.DataFrame) -> None:
    fit = btyd.fit_gamma_gamma(cdnow["frequency"], cdnow["monetary_value"])
    assert fit.converged, fit.message
    assert fit.n == 946  # only customers with repeat purchases
    for name, published in GG_PUBLISHED.items():
        assert agrees_to_3_sig(fit.params[name], published), (name, fit.params[name], published)


def test_fit_result_to_dict_is_json(cdnow: pd.DataFrame) -> None:
    fit = btyd.fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    d = fit.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["params"]["r"] == pytest.approx(fit.params["r"])
    assert set(d) >= {"params", "se", "ci95", "loglik", "n", "converged", "message", "aic"}
    bad = btyd.fit_bgnbd([0, 0, 0], [0, 0, 0], [5, 5, 5])
    json.dumps(bad.to_dict(), allow_nan=False)  # NaN become None


# ------------------------------------------------------------------------------------------
# Likelihoods against direct numerical integration of the individual-level model
# ------------------------------------------------------------------------------------------


def _log_gamma_pdf(v: float, shape: float, rate: float) -> float:
    return shape * math.log(rate) + (shape - 1) * math.log(v) - rate * v - math.lgamma(shape)


def _bgnbd_integrated(params: dict[str, float], x: int, tx: float, T: float) -> float:
    """log of the individual BG/NBD likelihood integrated over lambda ~ Gamma and p ~ Beta."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    log_beta_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)

    def individual(p: float, lam: float) -> float:
        v = (1 - p) ** x * lam**x * math.exp(-lam * T)
        if x > 0:
            v += p * (1 - p) ** (x - 1) * lam**x * math.exp(-lam * tx)
        log_w = (
            _log_gamma_pdf(lam, r, alpha)
            + log_beta_norm
            + (a - 1) * math.log(p)
            + (b - 1) * math.log1p(-p)
        )
        return v * math.exp(log_w)

    val, _ = integrate.dblquad(individual, 0, 30, 0, 1, epsabs=1e-12, epsrel=1e-9)
    return math.log(val)


def _pnbd_integrated(params: dict[str, float], x: int, tx: float, T: float) -> float:
    """log of the individual Pareto/NBD likelihood integrated over lambda, mu ~ Gamma."""
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]

    def individual(mu: float, lam: float) -> float:
        v = lam**x * mu / (lam + mu) * math.exp(-(lam + mu) * tx)
        v += lam ** (x + 1) / (lam + mu) * math.exp(-(lam + mu) * T)
        return v * math.exp(_log_gamma_pdf(lam, r, alpha) + _log_gamma_pdf(mu, s, beta))

    val, _ = integrate.dblquad(individual, 0, 30, 0, 30, epsabs=1e-12, epsrel=1e-9)
    return math.log(val)


@pytest.mark.parametrize(("x", "tx", "T"), [(0, 0.0, 10.0), (2, 5.0, 10.0), (5, 9.5, 12.0)])
def test_bgnbd_likelihood_equals_mixture_integral(x: int, tx: float, T: float) -> None:
    params = {"r": 1.3, "alpha": 3.0, "a": 1.5, "b": 4.0}
    ll = btyd.bgnbd_loglik(params, [x], [tx], [T])[0]
    assert ll == pytest.approx(_bgnbd_integrated(params, x, tx, T), abs=1e-6)


@pytest.mark.parametrize(
    "params",
    [
        {"r": 1.2, "alpha": 4.0, "s": 1.5, "beta": 6.0},  # alpha < beta branch
        {"r": 1.2, "alpha": 8.0, "s": 1.5, "beta": 3.0},  # alpha >= beta branch
    ],
)
@pytest.mark.parametrize(("x", "tx", "T"), [(0, 0.0, 10.0), (3, 4.0, 10.0)])
def test_pareto_nbd_likelihood_equals_mixture_integral(
    params: dict[str, float], x: int, tx: float, T: float
) -> None:
    ll = btyd.pareto_nbd_loglik(params, [x], [tx], [T])[0]
    assert ll == pytest.approx(_pnbd_integrated(params, x, tx, T), abs=1e-6)


def test_pareto_nbd_likelihood_continuous_across_branches() -> None:
    x, tx, T = np.array([0, 1, 4]), np.array([0.0, 2.0, 7.5]), np.array([10.0, 10.0, 10.0])
    below = btyd.pareto_nbd_loglik({"r": 0.7, "alpha": 5.0 - 1e-7, "s": 0.9, "beta": 5.0}, x, tx, T)
    above = btyd.pareto_nbd_loglik({"r": 0.7, "alpha": 5.0 + 1e-7, "s": 0.9, "beta": 5.0}, x, tx, T)
    np.testing.assert_allclose(below, above, atol=1e-6)


def test_gamma_gamma_density_integrates_to_one() -> None:
    params = {"p": 6.25, "q": 3.74, "v": 15.44}
    for x in (1, 3):
        total, _ = integrate.quad(
            lambda m, x=x: math.exp(btyd.gamma_gamma_loglik(params, [x], [m])[0]),
            0,
            np.inf,
            limit=200,
        )
        assert total == pytest.approx(1.0, abs=1e-6)


# ------------------------------------------------------------------------------------------
# Model functions used by the simulator mapping
# ------------------------------------------------------------------------------------------


def test_simulated_mean_frequency_matches_expected_purchases() -> None:
    params = {"r": 0.8, "alpha": 5.0, "a": 1.2, "b": 3.0}
    rng = np.random.default_rng(12)
    T = 30.0
    sim = btyd.bgnbd_simulate(params, 200_000, T, rng)
    expected = float(btyd.bgnbd_expected_purchases(params, T))
    se = sim["frequency"].std() / math.sqrt(len(sim))
    assert abs(sim["frequency"].mean() - expected) < 4 * se
    assert (sim["recency"] <= sim["T"]).all()
    assert ((sim["frequency"] == 0) == (sim["recency"] == 0)).all()


def test_expected_purchases_for_a_below_one_is_finite_and_increasing() -> None:
    t = np.array([1.0, 10.0, 39.0, 78.0])
    e = btyd.bgnbd_expected_purchases(BGNBD_PUBLISHED, t)
    assert np.all(np.isfinite(e)) and np.all(np.diff(e) > 0) and e[0] > 0


def test_p_alive_properties() -> None:
    p = btyd.bgnbd_p_alive(
        BGNBD_PUBLISHED, [0, 3, 3, 3], [0.0, 35.0, 20.0, 5.0], [39.0, 39.0, 39.0, 39.0]
    )
    assert p[0] == 1.0
    assert np.all((p > 0) & (p <= 1))
    assert p[1] > p[2] > p[3]  # the longer since the last purchase, the less likely alive


def test_gamma_gamma_expected_value_shrinks_towards_population_mean() -> None:
    params = {"p": 6.25, "q": 3.74, "v": 15.44}
    population = params["p"] * params["v"] / (params["q"] - 1)
    ev = btyd.gamma_gamma_expected_value(params, [0, 1, 10, 10], [0.0, 100.0, 100.0, 10.0])
    assert ev[0] == pytest.approx(population)
    assert population < ev[1] < ev[2] < 100.0
    assert 10.0 < ev[3] < population
    with pytest.raises(ValueError):
        btyd.gamma_gamma_expected_value({"p": 1.0, "q": 0.9, "v": 1.0}, [1], [5.0])


# ------------------------------------------------------------------------------------------
# RFM summary
# ------------------------------------------------------------------------------------------


def test_rfm_summary_counts_distinct_days_and_uses_time_unit() -> None:
    orders = pd.DataFrame(
        {
            "cust": ["A", "A", "A", "A", "B", "A"],
            "ts": pd.to_datetime(
                [
                    "2024-01-01 09:00",
                    "2024-01-01 17:00",  # same day: merged with the first purchase
                    "2024-01-08 12:00",
                    "2024-01-15 08:00",
                    "2024-01-15 10:00",
                    "2024-03-01 10:00",  # after observation end: ignored
                ]
            ),
            "value": [10.0, 5.0, 20.0, 30.0, 7.0, 99.0],
        }
    )
    out = btyd.rfm_summary(
        orders, "cust", "ts", "value", pd.Timestamp("2024-01-29"), time_unit_days=7
    )
    assert out.loc["A", "frequency"] == 2
    assert out.loc["A", "recency"] == pytest.approx(2.0)
    assert out.loc["A", "T"] == pytest.approx(4.0)
    assert out.loc["A", "monetary_value"] == pytest.approx(25.0)
    assert out.loc["B", "frequency"] == 0
    assert out.loc["B", "recency"] == 0
    assert out.loc["B", "T"] == pytest.approx(2.0)
    assert out.loc["B", "monetary_value"] == 0
    with pytest.raises(ValueError, match="missing column"):
        btyd.rfm_summary(orders, "cust", "when", "value", pd.Timestamp("2024-01-29"))


# ------------------------------------------------------------------------------------------
# Recovery from data generated by the model
# ------------------------------------------------------------------------------------------

TRUE_BGNBD = {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}


def _simulate_bgnbd(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    T = rng.uniform(26.0, 52.0, n)  # staggered acquisition, weeks
    return btyd.bgnbd_simulate(TRUE_BGNBD, n, T, rng)


def test_bgnbd_recovers_parameters_one_seed() -> None:
    d = _simulate_bgnbd(2024, 20_000)
    fit = btyd.fit_bgnbd(d["frequency"], d["recency"], d["T"])
    assert fit.converged, fit.message
    for name, truth in TRUE_BGNBD.items():
        assert abs(fit.params[name] - truth) < 4 * fit.se[name], (
            name,
            fit.params[name],
            truth,
            fit.se[name],
        )


def _min_coverage(n_seeds: int, level: float = 0.95, alpha: float = 0.001) -> int:
    """Smallest count k with P(Binomial(n_seeds, level) < k) <= alpha."""
    return int(stats.binom.ppf(alpha, n_seeds, level))


def test_bgnbd_interval_coverage_over_seeds() -> None:
    n_seeds = 20
    hits = dict.fromkeys(TRUE_BGNBD, 0)
    for seed in range(n_seeds):
        d = _simulate_bgnbd(1000 + seed, 5_000)
        fit = btyd.fit_bgnbd(d["frequency"], d["recency"], d["T"])
        assert fit.converged, (seed, fit.message)
        for name, truth in TRUE_BGNBD.items():
            lo, hi = fit.ci95[name]
            hits[name] += lo <= truth <= hi
    for name, k in hits.items():
        assert k >= _min_coverage(n_seeds), (name, k)


def _simulate_gamma_gamma(
    rng: np.random.Generator, n: int, p: float, q: float, v: float
) -> tuple[np.ndarray, np.ndarray]:
    x = 1 + rng.poisson(2.0, n)
    nu = rng.gamma(q, 1 / v, n)
    z_sum = rng.gamma(p * x, 1 / nu)  # sum of x Gamma(p, rate nu) values
    return x, z_sum / x


def test_gamma_gamma_interval_coverage_over_seeds() -> None:
    truth = {"p": 6.0, "q": 4.0, "v": 15.0}
    n_seeds = 20
    hits = dict.fromkeys(truth, 0)
    for seed in range(n_seeds):
        x, m = _simulate_gamma_gamma(np.random.default_rng(500 + seed), 3_000, **truth)
        fit = btyd.fit_gamma_gamma(x, m)
        assert fit.converged, (seed, fit.message)
        for name, val in truth.items():
            lo, hi = fit.ci95[name]
            hits[name] += lo <= val <= hi
    for name, k in hits.items():
        assert k >= _min_coverage(n_seeds), (name, k)


def test_pareto_nbd_recovers_parameters() -> None:
    r, alpha, s, beta = 0.8, 8.0, 0.7, 12.0
    rng = np.random.default_rng(77)
    n = 5_000
    T = rng.uniform(26.0, 52.0, n)
    lam = rng.gamma(r, 1 / alpha, n)
    mu = rng.gamma(s, 1 / beta, n)
    life = rng.exponential(1 / mu)
    horizon = np.minimum(life, T)
    x = rng.poisson(lam * horizon)
    # given x arrivals in (0, horizon], the last is horizon * Beta(x, 1)
    tx = np.where(x > 0, horizon * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    fit = btyd.fit_pareto_nbd(x, tx, T)
    assert fit.converged, fit.message
    for name, val in {"r": r, "alpha": alpha, "s": s, "beta": beta}.items():
        assert abs(fit.params[name] - val) < 4 * fit.se[name], (name, fit.params[name], val)


# ------------------------------------------------------------------------------------------
# Degenerate input: converged=False with a reason, never an exception or silent garbage
# ------------------------------------------------------------------------------------------


def test_all_zero_frequency_is_reported_not_raised() -> None:
    for fit in (
        btyd.fit_bgnbd(np.zeros(100), np.zeros(100), np.full(100, 20.0)),
        btyd.fit_pareto_nbd(np.zeros(100), np.zeros(100), np.full(100, 20.0)),
    ):
        assert not fit.converged
        assert "no repeat purchases" in fit.message
        assert all(math.isnan(v) for v in fit.params.values())


def test_three_customers_is_not_converged() -> None:
    fit = btyd.fit_bgnbd([1, 2, 0], [3.0, 5.0, 0.0], [10.0, 10.0, 10.0])
    assert not fit.converged
    assert "too few observations" in fit.message
    fit = btyd.fit_pareto_nbd([1, 2, 0], [3.0, 5.0, 0.0], [10.0, 10.0, 10.0])
    assert not fit.converged and fit.message != "ok"


def test_gamma_gamma_degenerate() -> None:
    assert not btyd.fit_gamma_gamma([0, 0, 1], [0.0, 0.0, 5.0]).converged
    fit = btyd.fit_gamma_gamma([1] * 50, [10.0] * 50)
    assert not fit.converged and "equal" in fit.message


def test_no_dropout_signal_is_flagged() -> None:
    # Every customer buys until the end: the dropout process is not identified (a, b -> infinity).
    fit = btyd.fit_bgnbd([3] * 60, [10.0] * 60, [10.0] * 60)
    assert not fit.converged
    assert fit.message != "ok"


def test_invalid_input_raises() -> None:
    with pytest.raises(ValueError, match="recency must be <= T"):
        btyd.fit_bgnbd([1], [12.0], [10.0])
    with pytest.raises(ValueError, match="non-negative integers"):
        btyd.fit_bgnbd([-1], [0.0], [10.0])
    with pytest.raises(ValueError, match="same length"):
        btyd.fit_bgnbd([1, 2], [1.0], [10.0])
    with pytest.raises(ValueError, match="NaN"):
        btyd.fit_bgnbd([1], [float("nan")], [10.0])
    with pytest.raises(TypeError):
        btyd.bgnbd_simulate(TRUE_BGNBD, 10, 5.0, 42)  # type: ignore[arg-type]
