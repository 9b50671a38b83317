"""Checks of sim.analytic against independent computations.

References: textbook closed forms with factorials (small n), the M/M/1 formulas, a brute-force
birth-death chain solved numerically (truncated at a large queue length) for Erlang C and Erlang
A, a matrix exponential of the tagged customer's absorbing chain for the Erlang A service level,
and the incomplete-gamma form of Mandelbaum & Zeltyn's P(Ab) where it is well conditioned.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm
from scipy.special import gammainc, gammaln

from sim.analytic import erlang_a, erlang_b, erlang_c, erlang_c_agents_for_sla, log_erlang_b


# --------------------------------------------------------------------------------------------
# brute-force references
# --------------------------------------------------------------------------------------------
def birth_death(lam: float, mean_service: float, n: int, mean_patience: float, m_max: int):
    """Stationary distribution of the M/M/n+M chain truncated at n + m_max customers.

    Death rate in state j: min(j, n) mu + max(j - n, 0) theta (theta = 0 without abandonment).
    Returns (pi, queue_index) where pi[n + m] is the probability of m waiting.
    """
    mu = 1.0 / mean_service
    theta = 0.0 if math.isinf(mean_patience) else 1.0 / mean_patience
    log_p = np.zeros(n + m_max + 1)
    for j in range(1, n + m_max + 1):
        death = min(j, n) * mu + max(j - n, 0) * theta
        log_p[j] = log_p[j - 1] + math.log(lam / death)
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def brute_erlang_a(lam, mean_service, n, mean_patience, thresholds, m_max=600):
    """P(wait), P(abandon), E[W], and P(answered within t) from the truncated chain.

    The service level uses PASTA and the tagged customer's absorbing chain: with k customers
    ahead it moves up at rate n mu + k theta and abandons at rate theta; solved with expm.
    """
    mu, theta = 1.0 / mean_service, 1.0 / mean_patience
    p = birth_death(lam, mean_service, n, mean_patience, m_max)
    pq = p[n:]
    m = np.arange(m_max + 1)
    p_wait = pq.sum()
    p_ab = float(np.sum(pq * (m + 1) * theta / (n * mu + (m + 1) * theta)))
    mean_wait = float(np.sum(pq * m)) / lam  # Little: E[Lq] = lambda E[W]
    size = m_max + 3  # states 0..m_max (customers ahead), served, abandoned
    q = np.zeros((size, size))
    served, gone = m_max + 1, m_max + 2
    for k in range(m_max + 1):
        q[k, gone] = theta
        if k > 0:
            q[k, k - 1] = n * mu + k * theta
        else:
            q[k, served] = n * mu
        q[k, k] = -q[k].sum()
    start = np.zeros(size)
    start[: m_max + 1] = pq
    sls = [float(p[:n].sum() + (start @ expm(q * t))[served]) for t in thresholds]
    return p_wait, p_ab, mean_wait, sls


def erlang_c_factorial(a: float, n: int) -> float:
    """Textbook Erlang C with factorials (fine for small n)."""
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


# --------------------------------------------------------------------------------------------
# Erlang B / C
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "n"), [(0.5, 1), (3.0, 5), (8.7, 12), (20.0, 20), (2.0, 1)])
def test_erlang_b_matches_factorial_formula(a: float, n: int) -> None:
    direct = (a**n / math.factorial(n)) / sum(a**k / math.factorial(k) for k in range(n + 1))
    assert erlang_b(a, n) == pytest.approx(direct, rel=1e-12)


def test_log_erlang_b_matches_and_survives_underflow() -> None:
    for a, n in [(0.5, 1), (8.7, 12), (300.0, 320)]:
        assert log_erlang_b(a, n) == pytest.approx(math.log(erlang_b(a, n)), rel=1e-12)
    # B(0.01, 200) ~ 0.01^200 / 200! underflows as a double; the log does not.
    # log B = n log a - log n! - log(sum_{k<=n} a^k/k!), and that sum is e^a to double precision.
    expected = 200 * math.log(0.01) - math.lgamma(201) - 0.01
    assert erlang_b(0.01, 200) == 0.0
    assert log_erlang_b(0.01, 200) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("lam", "s", "n"), [(0.5, 1.0, 1), (3.0, 1.5, 5), (2.5, 4.0, 12)])
def test_erlang_c_matches_factorial_formula(lam: float, s: float, n: int) -> None:
    r = erlang_c(lam, s, n)
    c = erlang_c_factorial(lam * s, n)
    assert r.p_wait == pytest.approx(c, rel=1e-12)
    assert r.mean_wait == pytest.approx(c * s / (n - lam * s), rel=1e-12)
    assert r.occupancy == pytest.approx(lam * s / n)


def test_mm1_closed_forms() -> None:
    lam, s = 0.9, 1.0
    r = erlang_c(lam, s, 1)
    assert r.p_wait == pytest.approx(0.9, rel=1e-12)
    assert r.mean_wait == pytest.approx(0.9 * 1.0 / (1 - 0.9), rel=1e-12)
    # P(W <= t) = 1 - rho exp(-(mu - lambda) t)
    assert r.service_level(2.0) == pytest.approx(1 - 0.9 * math.exp(-0.1 * 2.0), rel=1e-12)


@pytest.mark.parametrize(("n", "rho"), [(50, 0.95), (300, 0.98), (800, 0.9)])
def test_erlang_c_large_n_matches_birth_death(n: int, rho: float) -> None:
    s = 5.0
    lam = rho * n / s
    r = erlang_c(lam, s, n)
    p = birth_death(lam, s, n, math.inf, m_max=int(60 / (1 - rho)))
    assert math.isfinite(r.p_wait) and 0 < r.p_wait < 1
    assert r.p_wait == pytest.approx(p[n:].sum(), rel=1e-9)
    lq = float(np.sum(p[n:] * np.arange(len(p) - n)))
    assert r.mean_wait == pytest.approx(lq / lam, rel=1e-9)


def test_erlang_c_unstable() -> None:
    r = erlang_c(2.0, 1.0, 2)
    assert r.p_wait == 1.0 and math.isinf(r.mean_wait) and r.service_level(10.0) == 0.0


def test_agents_for_sla_is_minimal() -> None:
    for lam, s, thr, target in [
        (10 / 3, 3.0, 1 / 3, 0.8),
        (9.5, 5.0, 0.5, 0.9),
        (200.0, 4.0, 0.25, 0.95),
        (0.1, 6.0, 1.0, 0.5),
    ]:
        n = erlang_c_agents_for_sla(lam, s, thr, target)
        assert n > lam * s
        assert erlang_c(lam, s, n).service_level(thr) >= target
        if n - 1 > lam * s:
            assert erlang_c(lam, s, n - 1).service_level(thr) < target
    # Monotone in the target and in the load.
    base = erlang_c_agents_for_sla(9.5, 5.0, 0.5, 0.8)
    assert erlang_c_agents_for_sla(9.5, 5.0, 0.5, 0.9) >= base
    assert erlang_c_agents_for_sla(12.0, 5.0, 0.5, 0.8) >= base


# --------------------------------------------------------------------------------------------
# Erlang A
# --------------------------------------------------------------------------------------------
ERLANG_A_POINTS = [
    # lam, mean_service, n, mean_patience
    (0.9, 1.0, 1, 2.0),
    (4.5, 1.0, 5, 0.5),
    (9.5, 5.0, 50, 3.0),
    (12.0, 5.0, 50, 3.0),  # overloaded, rho = 1.2
    (27.0, 1.0, 30, 10.0),
    (3.0, 2.0, 4, 100.0),  # overloaded with long patience
]


@pytest.mark.parametrize(("lam", "s", "n", "patience"), ERLANG_A_POINTS)
def test_erlang_a_matches_birth_death_chain(lam, s, n, patience) -> None:
    thresholds = [0.0, 0.1, 0.5, 2.0]
    r = erlang_a(lam, s, n, patience)
    # Truncation: around its peak the queue-length distribution falls like a Gaussian with
    # s.d. <= sqrt(peak + lambda/theta) (and geometrically beyond); 15 s.d. leave < e^-100.
    peak = max(0.0, (lam - n / s) * patience)
    m_max = int(peak + 15 * math.sqrt(peak + lam * patience) + 100)
    p_wait, p_ab, mean_wait, sls = brute_erlang_a(lam, s, n, patience, thresholds, m_max)
    assert r.p_wait == pytest.approx(p_wait, rel=1e-9)
    assert r.p_abandon == pytest.approx(p_ab, rel=1e-9)
    assert r.mean_wait == pytest.approx(mean_wait, rel=1e-9)
    for t, sl in zip(thresholds, sls, strict=True):
        assert r.service_level(t) == pytest.approx(sl, rel=1e-7, abs=1e-10)


@pytest.mark.parametrize(("lam", "s", "n", "patience"), ERLANG_A_POINTS[:5])
def test_erlang_a_matches_incomplete_gamma_closed_form(lam, s, n, patience) -> None:
    """P(Ab) = P(W>0) (1/(rho A) + 1 - 1/rho), A(x,y) = x e^y y^-x gamma(x,y), x = n mu/theta,
    y = lambda/theta (Mandelbaum & Zeltyn), evaluated with scipy's regularized gamma."""
    theta, mu = 1 / patience, 1 / s
    x, y, rho = n * mu / theta, lam / theta, lam * s / n
    big_a = math.exp(math.log(x) + y - x * math.log(y) + gammaln(x) + math.log(gammainc(x, y)))
    e = erlang_b(lam * s, n)
    p_wait = big_a * e / (1 + (big_a - 1) * e)
    p_ab = p_wait * (1 / (rho * big_a) + 1 - 1 / rho)
    r = erlang_a(lam, s, n, patience)
    assert r.p_wait == pytest.approx(p_wait, rel=1e-9)
    assert r.p_abandon == pytest.approx(p_ab, rel=1e-7)
    assert r.mean_wait == pytest.approx(p_ab * patience, rel=1e-7)


@pytest.mark.parametrize(("lam", "s", "n"), [(0.9, 1.0, 1), (9.5, 5.0, 50), (270.0, 1.0, 300)])
def test_erlang_a_tends_to_erlang_c_with_huge_patience(lam, s, n) -> None:
    c = erlang_c(lam, s, n)
    for patience in (1e6, 1e8):
        a = erlang_a(lam, s, n, patience)
        # Deviations are O(E[W] / patience) (abandonment share ~ E[W] / patience).
        tol = 50 * max(c.mean_wait, s) / patience
        assert a.p_wait == pytest.approx(c.p_wait, rel=tol)
        assert a.mean_wait == pytest.approx(c.mean_wait, rel=tol)
        assert a.p_abandon == pytest.approx(c.mean_wait / patience, rel=0.05)
        for t in (0.0, 0.3, 3.0):
            assert a.service_level(t) == pytest.approx(c.service_level(t), rel=tol, abs=1e-12)
    inf = erlang_a(lam, s, n, math.inf)
    assert inf.p_abandon == 0.0 and inf.mean_wait == pytest.approx(c.mean_wait)


def test_erlang_a_many_servers_is_finite() -> None:
    for n, rho in [(500, 0.97), (1000, 1.05), (2000, 0.99)]:
        r = erlang_a(rho * n / 4.0, 4.0, n, 2.0)
        assert all(math.isfinite(v) for v in (r.p_wait, r.p_abandon, r.mean_wait))
        assert 0 <= r.p_abandon <= r.p_wait <= 1
        assert 0 <= r.service_level(0.2) <= 1 - r.p_abandon + 1e-12


def test_erlang_a_no_servers() -> None:
    r = erlang_a(1.0, 5.0, 0, 3.0)
    assert r.p_abandon == 1.0 and r.mean_wait == 3.0 and r.service_level(10.0) == 0.0


@settings(max_examples=150, deadline=None)
@given(
    st.floats(0.01, 50.0),
    st.floats(0.1, 20.0),
    st.integers(1, 120),
    st.floats(0.05, 60.0),
)
def test_erlang_a_invariants(lam, s, n, patience) -> None:
    r = erlang_a(lam, s, n, patience)
    assert 0.0 <= r.p_abandon <= r.p_wait <= 1.0
    assert r.mean_wait == pytest.approx(r.p_abandon * patience, rel=1e-9, abs=1e-300)
    assert 0.0 <= r.occupancy <= 1.0 + 1e-9
    sls = [r.service_level(t) for t in (0.0, 0.1, 1.0, 10.0, 1e4)]
    assert sls[0] == pytest.approx(1.0 - r.p_wait, abs=1e-12)
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(sls))
    assert sls[-1] <= 1.0 - r.p_abandon + 1e-9
    assert r.service_level(math.inf) == pytest.approx(1.0 - r.p_abandon, abs=1e-12)
    # More patience never raises abandonment; more servers never raise it either.
    assert erlang_a(lam, s, n, patience * 2).p_abandon <= r.p_abandon + 1e-12
    assert erlang_a(lam, s, n + 1, patience).p_abandon <= r.p_abandon + 1e-12
