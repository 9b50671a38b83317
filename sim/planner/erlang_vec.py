"""Vectorised Erlang C (M/M/n) and Erlang A (M/M/n+M) measures over arrays of intervals.

The same closed forms as :mod:`sim.analytic` (Garnett, Mandelbaum & Reiman 2002; Mandelbaum &
Zeltyn), written with the regularised incomplete gamma functions P = ``gammainc`` and
Q = ``gammaincc`` so that thousands of intervals are evaluated in one numpy call:

    Erlang B:   1/B(n, a) = e^a a^(-n) Γ(n+1) Q(n+1, a)
    A(x, y)   = x e^y y^(-x) Γ(x) P(x, y),            x = nμ/θ, y = λ/θ
    P(W > 0)  = π_n A(x, y),   π_n = 1 / (1/B - 1 + A(x, y))
    P(Ab)     = P(W > 0) (1/(ρA) + 1 - 1/ρ)
    SL(t)     = 1 - P(W > 0) + π_n x/(x+1) A(x+1, y) [1 - P(x+1, y e^{-θt}) / P(x+1, y)]

SL(t) is P(answered and wait <= t) over ALL arrivals (abandoners count as misses), which is the
simulator's per-interval service level (answered within threshold / arrivals) and what
:meth:`sim.analytic.ErlangAResult.service_level` returns. The last bracket is evaluated as a ratio
of P's when y <= x+1 and as a difference of Q's otherwise, so neither side cancels. Where P(x, y)
underflows (y far below x: a lightly loaded pool with patience much longer than service), A is
computed by :func:`sim.analytic.erlang_a` (exact series) instead. Tests compare every measure with
:mod:`sim.analytic` element by element.

Units: ``lam`` contacts per minute, ``handle`` (mean service), ``patience`` (mean exponential
patience, ``inf`` for Erlang C) and ``threshold`` in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc, gammaincc, gammaln

from sim.analytic import erlang_a

__all__ = ["QueueMeasures", "erlang_measures"]

_TINY = 1e-280  # below this, P(x, y) is too close to the subnormal range to divide by


@dataclass(frozen=True)
class QueueMeasures:
    """Per-interval stationary measures (arrays of one shape).

    Attributes:
        service_level: P(answered with wait <= threshold), over all arrivals.
        p_abandon: share of arrivals abandoning (0 for Erlang C).
        occupancy: offered load x (1 - P(Ab)) / servers, i.e. busy share of server time; 1 when
            the pool is unstable (Erlang C with load >= servers) or has no servers but arrivals.
    """

    service_level: np.ndarray
    p_abandon: np.ndarray
    occupancy: np.ndarray


def _log_erlang_b(n: np.ndarray, a: np.ndarray) -> np.ndarray:
    """log B(n, a) for n >= 0, a > 0 (elementwise)."""
    q = gammaincc(n + 1.0, a)
    with np.errstate(divide="ignore"):
        log_b = n * np.log(a) - gammaln(n + 1.0) - a - np.log(q)
    # Q underflows only far beyond overload (a >> n), where B -> 1 - n/a.
    bad = ~np.isfinite(log_b)
    if bad.any():
        log_b[bad] = np.log1p(-np.minimum(n[bad] / a[bad], 1.0 - 1e-16))
    return np.minimum(log_b, 0.0)


def _log_a_vec(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log A(x, y) and P(x, y) elementwise (x > 0, y > 0); NaN where P(x, y) underflows."""
    p = gammainc(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a = np.log(x) + y - x * np.log(y) + gammaln(x) + np.log(p)
    log_a[~(p > _TINY)] = np.nan
    return log_a, p


def erlang_measures(
    lam: np.ndarray,
    handle: np.ndarray,
    servers: np.ndarray,
    patience: np.ndarray,
    threshold: np.ndarray,
) -> QueueMeasures:
    """Service level, abandonment and occupancy for 1-d arrays of equal length.

    ``patience`` may hold ``inf`` (Erlang C) per element; ``lam`` may be 0 (then service level 1,
    nothing abandons, occupancy 0); ``servers`` may be 0 (service level 0, all abandon).
    """
    lam, handle, patience, threshold = (np.asarray(v, dtype=np.float64) for v in (lam, handle, patience, threshold))
    n = np.asarray(servers, dtype=np.float64)
    size = lam.shape[0]
    sl = np.ones(size)
    pab = np.zeros(size)
    occ = np.zeros(size)
    a = lam * handle
    empty = (n == 0) & (lam > 0)
    sl[empty], pab[empty], occ[empty] = 0.0, 1.0, 1.0
    work = (n > 0) & (lam > 0)
    erl_c = work & np.isinf(patience)
    erl_a = work & ~np.isinf(patience)

    if erl_c.any():
        nc, ac, hc, tc = n[erl_c], a[erl_c], handle[erl_c], threshold[erl_c]
        stable = nc > ac
        b = np.exp(_log_erlang_b(nc, ac))
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(stable, nc * b / (nc - ac * (1.0 - b)), 1.0)
            s = np.where(stable, 1.0 - c * np.exp(-(nc - ac) * tc / hc), 0.0)
        sl[erl_c] = np.clip(s, 0.0, 1.0)
        occ[erl_c] = np.minimum(ac / nc, 1.0)

    if erl_a.any():
        na, aa, ha, pa, ta, la = (v[erl_a] for v in (n, a, handle, patience, threshold, lam))
        theta = 1.0 / pa
        x = na / (ha * theta)
        y = la / theta
        rho = aa / na
        log_inv_e = -_log_erlang_b(na, aa)
        with np.errstate(divide="ignore"):
            log_inv_e_minus_1 = log_inv_e + np.log(-np.expm1(-log_inv_e))
        log_ax, _ = _log_a_vec(x, y)
        with np.errstate(invalid="ignore"):
            log_pi = -np.logaddexp(log_inv_e_minus_1, log_ax)
        p_wait = np.exp(log_pi + log_ax)
        ab_given_wait = np.clip(np.exp(-log_ax) / rho + 1.0 - 1.0 / rho, 0.0, 1.0)
        p_ab = p_wait * ab_given_wait
        log_ax1, p1 = _log_a_vec(x + 1.0, y)
        yq = y * np.exp(-theta * ta)
        low = y <= x + 1.0
        ratio = np.empty_like(y)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio[low] = -np.expm1(np.log(gammainc(x[low] + 1.0, yq[low])) - np.log(p1[low]))
            hi = ~low
            ratio[hi] = (gammaincc(x[hi] + 1.0, yq[hi]) - gammaincc(x[hi] + 1.0, y[hi])) / p1[hi]
        ratio = np.where(ta > 0, ratio, 0.0)
        waited_served = np.exp(log_pi + log_ax1) * x / (x + 1.0) * np.clip(ratio, 0.0, 1.0)
        sl_a = np.clip(1.0 - p_wait + waited_served, 0.0, 1.0)
        occ_a = aa * (1.0 - p_ab) / na
        for i in np.flatnonzero(~(np.isfinite(log_ax) & np.isfinite(log_ax1) & np.isfinite(sl_a))):
            r = erlang_a(float(la[i]), float(ha[i]), int(na[i]), float(pa[i]))
            sl_a[i], p_ab[i], occ_a[i] = r.service_level(float(ta[i])), r.p_abandon, r.occupancy
        sl[erl_a], pab[erl_a], occ[erl_a] = sl_a, p_ab, occ_a
    return QueueMeasures(sl, pab, occ)
