"""Order arrivals from an order log: new customers, the existing base, and repurchase, fitted jointly.

The simulator's repurchase process (``sim.scenario.Repurchase``) is the *modified* BG/NBD
(MBG/NBD, Batislam, Denizel & Filiztekin 2007): a customer's would-be purchases arrive at Poisson
rate ``lambda ~ Gamma(r, rate alpha)`` per day and at each of them (the first included) the customer
drops out with probability ``p ~ Beta(a, b)``, so P(second order) = b / (a + b). (In the BG/NBD of
Fader, Hardie & Lee 2005 nobody can drop out before a repeat purchase.) With ``x`` repeat orders,
the last ``tx`` days and ``T`` days after the first order, the likelihood of one customer is

    B(a, b+x+1)/B(a,b) * G(r+x) a^r / (G(r) (alpha+T)^(r+x))
  + B(a+1, b+x)/B(a,b) * G(r+x) a^r / (G(r) (alpha+tx)^(r+x)).

An order log starts in the middle of a business: customers who bought *before* it look new at
their first order in the file. The engine seeds ``demand.initial_customers`` = N0 such customers with
``initial_repeat_purchases`` = k earlier repeats (so ``p ~ Beta(a, b + k)``) and a memoryless
purchase clock from day 0. For them, first appearing at day ``t0`` has density
``N0 * c * r alpha^r / (alpha + t0)^(r+1)`` with ``c = (b+k)/(a+b+k)``, and what follows is an
MBG/NBD with ``(r+1, alpha+t0, a, b+k+1)`` (the posterior after surviving one would-be purchase and
none before ``t0``). New customers arrive at ``n_d * 24 pi_h`` per day on day ``d`` in hour ``h``,
``log n_d = X_d beta`` (intercept, weekday, trend, dated uplifts). Customers first seen in the fit
window form a marked Poisson process whose log-likelihood is

    sum_i log( n_{d_i} 24 pi_{h_i} L_new(i) + N0 c g(t0_i) L_existing(i) ) - sum_d n_d - N0 c G(D)

maximised over ``log r, log alpha, log a, log b, log N0, beta`` with an analytic gradient (hour
shares ``pi`` are updated between optimisations as responsibility-weighted shares, the EM step).
Standard errors come from the observed information (Hessian by central differences of the
gradient); intervals of derived quantities (weekday factors, growth, uplifts) by the delta method.
``k`` is not identified from one log and is taken from the base scenario.

Dated uplifts are found from the residuals of a first fit without them: days whose first-seen
count departs from the fit by more than 4 standard deviations and 10% form runs (gaps up to two
days merged), which are cut into constant-multiplier segments by binary segmentation of the
Poisson likelihood (a split must gain more than :data:`SEGMENT_PENALTY` log-likelihood units).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from calibration.btyd import FitResult
from calibration.numerics import hessian_from_grad

__all__ = [
    "AcquisitionFit",
    "detect_runs",
    "fit_acquisition",
    "fit_mbgnbd",
    "mbgnbd_loglik",
    "relative_gradient",
]

Z95 = 1.959963984540054
SEGMENT_PENALTY = 15.0
FLAG_Z = 4.0
FLAG_RATIO = 0.10
_THETA = ("r", "alpha", "a", "b")
_LOG_THETA_BOUNDS = [(math.log(1e-3), math.log(1e3)), (math.log(1e-2), math.log(1e6)), (math.log(1e-3), math.log(1e3)), (math.log(1e-3), math.log(1e3))]
_LOG_N0_BOUNDS = (math.log(1e-2), math.log(1e9))


# ----------------------------------------------------------------------------- MBG/NBD


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Dot product without BLAS: OpenBLAS threads make small products slow on a busy machine."""
    return float(np.einsum("i,i->", a, b))


def _mv(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("ij,j->i", m, v)


def _mbg_terms(
    r: float, alpha: np.ndarray | float, a: float, b: float, ux: np.ndarray, inv: np.ndarray,
    tx: np.ndarray, T: np.ndarray, want_grad: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-customer MBG/NBD log-likelihood (and its gradient in r, alpha, a, b). ``ux[inv]`` is x;
    ``alpha`` may be a per-customer array."""
    lg = special.gammaln(r + ux) - special.gammaln(r)
    b1 = special.betaln(a, b + ux + 1.0)
    b2 = special.betaln(a + 1.0, b + ux)
    lb = special.betaln(a, b)
    la = np.log(alpha)
    la_t = np.log(alpha + T)
    la_tx = np.log(alpha + tx)
    rx = (r + ux)[inv]
    a1 = b1[inv] - rx * la_t
    a2 = b2[inv] - rx * la_tx
    lse = np.logaddexp(a1, a2)
    ll = lg[inv] + r * la - lb + lse
    if not want_grad:
        return ll, None
    s1 = np.exp(a1 - lse)
    s2 = 1.0 - s1
    psi = special.digamma
    d_r = (psi(r + ux) - psi(r))[inv] + la - s1 * la_t - s2 * la_tx
    d_alpha = r / alpha - rx * (s1 / (alpha + T) + s2 / (alpha + tx))
    p_abx1 = psi(a + b + ux + 1.0)
    d_a = -(psi(a) - psi(a + b)) + s1 * (psi(a) - p_abx1)[inv] + s2 * (psi(a + 1.0) - p_abx1)[inv]
    d_b = -(psi(b) - psi(a + b)) + s1 * (psi(b + ux + 1.0) - p_abx1)[inv] + s2 * (psi(b + ux) - p_abx1)[inv]
    d_tx = -s2 * rx / (alpha + tx)
    d_T = -s1 * rx / (alpha + T)
    return ll, np.stack([d_r, np.broadcast_to(d_alpha, ll.shape), d_a, d_b, d_tx, d_T])


def mbgnbd_loglik(params: dict[str, float], frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-customer MBG/NBD log-likelihood (``recency`` and ``T`` in the unit of ``alpha``)."""
    x = np.asarray(frequency, dtype=float)
    ux, inv = np.unique(x, return_inverse=True)
    ll, _ = _mbg_terms(params["r"], params["alpha"], params["a"], params["b"], ux, inv,
                       np.asarray(recency, dtype=float), np.asarray(T, dtype=float), False)
    return ll


def _covariance(hess: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Inverse of the observed information (hess of the negative log-likelihood)."""
    if not np.all(np.isfinite(hess)):
        return np.full_like(hess, np.nan), "Hessian not finite"
    try:
        eig = np.linalg.eigvalsh(hess)
    except np.linalg.LinAlgError:
        return np.full_like(hess, np.nan), "Hessian eigen-decomposition failed"
    if eig.min() <= 0:
        return np.full_like(hess, np.nan), "Hessian not positive definite (a parameter is not identified)"
    return np.linalg.inv(hess), None


def fit_mbgnbd(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None) -> FitResult:
    """Fit the MBG/NBD by maximum likelihood (parameters r, alpha, a, b; alpha in the unit of T)."""
    x = np.asarray(frequency, dtype=float)
    tx = np.asarray(recency, dtype=float)
    t = np.asarray(T, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    n = len(x)
    nan = {k: math.nan for k in _THETA}
    if n == 0 or not np.any(x > 0):
        return FitResult(nan, dict(nan), {k: (math.nan, math.nan) for k in _THETA}, math.nan, n, False,
                         "no repeat purchases: repurchase parameters are not identified", math.nan, "mbgnbd")
    ux, inv = np.unique(x, return_inverse=True)

    def negll(eta: np.ndarray) -> tuple[float, np.ndarray]:
        r, al, a, b = np.exp(eta)
        ll, g = _mbg_terms(r, al, a, b, ux, inv, tx, t, True)
        assert g is not None
        val = -_dot(w, ll)
        grad = -_mv(g[:4], w) * np.exp(eta)
        if not math.isfinite(val):
            return 1e300, np.zeros(4)
        return val, grad

    rate = float((w * x).sum() / max((w * t).sum(), 1e-9))
    best: Any = None
    for start in (np.log([1.0, 1.0 / max(rate, 1e-6), 1.0, 1.0]), np.log([0.5, 0.5 / max(rate, 1e-6), 2.0, 0.5])):
        res = optimize.minimize(negll, start, jac=True, method="L-BFGS-B", bounds=_LOG_THETA_BOUNDS,
                                options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-8})
        if best is None or res.fun < best.fun:
            best = res
    eta = best.x
    hess = hessian_from_grad(lambda e: negll(e)[1], eta, relative=True)
    cov, problem = _covariance(hess)
    notes = []
    lo_b = np.array([b[0] for b in _LOG_THETA_BOUNDS])
    hi_b = np.array([b[1] for b in _LOG_THETA_BOUNDS])
    rel_g = relative_gradient(-negll(eta)[1], eta, -float(best.fun), lo_b, hi_b)
    if not best.success and not rel_g < REL_GRADIENT_TOL:
        notes.append(f"optimiser: {best.message}; relative gradient {rel_g:.2g} (tolerance {REL_GRADIENT_TOL:g})")
    if problem:
        notes.append(problem)
    at_bound = [k for k, v, (lo, hi) in zip(_THETA, eta, _LOG_THETA_BOUNDS, strict=True) if v < lo + 1e-3 or v > hi - 1e-3]
    if at_bound:
        notes.append(f"at the search bound: {', '.join(at_bound)}")
    se_log = np.sqrt(np.clip(np.diag(cov), 0, None))
    theta = np.exp(eta)
    params = dict(zip(_THETA, theta.tolist(), strict=True))
    se = {k: float(th * s) for k, th, s in zip(_THETA, theta, se_log, strict=True)}
    ci = {k: (float(math.exp(e - Z95 * s)), float(math.exp(e + Z95 * s))) for k, e, s in zip(_THETA, eta, se_log, strict=True)}
    ll = -float(best.fun)
    converged = not notes and bool(np.all(np.isfinite(se_log)))
    return FitResult(params, se, ci, ll, n, converged, "; ".join(notes) or "ok", 8 - 2 * ll, "mbgnbd")


# ----------------------------------------------------------------------------- segments


def detect_runs(
    counts: np.ndarray, base: np.ndarray, extra: np.ndarray, eligible: np.ndarray,
    z: float = FLAG_Z, min_ratio: float = FLAG_RATIO, penalty: float = SEGMENT_PENALTY,
    positive_only: bool = False,
) -> list[tuple[list[tuple[int, int, float]], float]]:
    """Runs of outlying days in a daily count series, each cut into constant-multiplier segments.

    ``counts[d] ~ Poisson(m * base[d] + extra[d])`` with ``m = 1`` except in the periods to find.
    Returns, per run, its segments ``(first_day, last_day, multiplier)`` (inclusive days, among
    ``eligible`` days) and the log-likelihood gained by giving them their own multipliers.
    """
    mu = base + extra
    kernel = np.ones(7)
    el = eligible.astype(float)
    c7 = np.convolve(counts * el, kernel, mode="same")
    mu7 = np.convolve(mu * el, kernel, mode="same")
    b7 = np.convolve(base * el, kernel, mode="same")
    e7 = np.convolve(extra * el, kernel, mode="same")
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = (counts - mu) / np.sqrt(np.maximum(mu, 1e-9))
        ratio = (counts - extra) / np.maximum(base, 1e-9)
        z7 = (c7 - mu7) / np.sqrt(np.maximum(mu7, 1e-9))
        ratio7 = (c7 - e7) / np.maximum(b7, 1e-9)
    # a day is outlying on its own, or as part of a week that is (same direction)
    daily = (np.abs(zs) > z) & (np.abs(ratio - 1.0) > min_ratio)
    weekly = (np.abs(z7) > z) & (np.abs(ratio7 - 1.0) > min_ratio) & (np.sign(ratio - 1.0) == np.sign(ratio7 - 1.0))
    flag = eligible & (daily | weekly)
    if positive_only:
        flag &= ratio > 1.0
    days = np.flatnonzero(flag)
    if len(days) == 0:
        return []
    runs: list[list[int]] = [[int(days[0]), int(days[0])]]
    for d in days[1:]:
        if d - runs[-1][1] <= 3 and eligible[runs[-1][1] : d + 1].all():
            runs[-1][1] = int(d)
        else:
            runs.append([int(d), int(d)])

    def seg_ll(lo: int, hi: int, free: bool = True) -> tuple[float, float]:
        sl = slice(lo, hi + 1)
        c, b, e = counts[sl], base[sl], extra[sl]
        m = max((c - e).sum() / b.sum(), 1e-3) if free and b.sum() > 0 else 1.0
        lam = np.maximum(m * b + e, 1e-12)
        return float(np.sum(c * np.log(lam) - lam)), m

    def split(lo: int, hi: int, out: list[tuple[int, int, float]]) -> None:
        whole, m = seg_ll(lo, hi)
        best_gain, best_k = 0.0, -1
        for k in range(lo, hi):
            gain = seg_ll(lo, k)[0] + seg_ll(k + 1, hi)[0] - whole
            if gain > best_gain:
                best_gain, best_k = gain, k
        if best_k >= 0 and best_gain > penalty:
            split(lo, best_k, out)
            split(best_k + 1, hi, out)
        else:
            out.append((lo, hi, m))

    def trim(lo: int, hi: int) -> tuple[int, int]:
        """Drop end days that look ordinary (the weekly window flags the neighbours of a period)."""
        while hi > lo:
            m = seg_ll(lo, hi)[1]
            if abs(ratio[lo] - 1.0) < abs(ratio[lo] - m):
                lo += 1
            elif abs(ratio[hi] - 1.0) < abs(ratio[hi] - m):
                hi -= 1
            else:
                break
        return lo, hi

    found = []
    for lo, hi in runs:
        lo, hi = trim(lo, hi)
        segs: list[tuple[int, int, float]] = []
        split(lo, hi, segs)
        segs = [(a, b, m) for a, b, m in segs if abs(m - 1.0) > min_ratio / 2]
        if not segs:
            continue
        gain = sum(seg_ll(a, b)[0] - seg_ll(a, b, free=False)[0] for a, b, _ in segs)
        if gain > penalty:
            found.append((segs, gain))
    return found


# ----------------------------------------------------------------------------- joint model


@dataclass
class DayDesign:
    """Covariates of log new-customer arrivals per day of the fit window."""

    X: np.ndarray  # (days, p)
    names: list[str]
    dow: np.ndarray  # weekday 0..6 per day
    trend: bool
    segments: list[tuple[int, int]]

    @classmethod
    def build(cls, dow: np.ndarray, trend: bool, segments: list[tuple[int, int]]) -> DayDesign:
        days = len(dow)
        cols = [np.ones(days)]
        names = ["intercept"]
        for w in range(1, 7):
            cols.append((dow == w).astype(float))
            names.append(f"weekday_{w}")
        if trend:
            cols.append(np.arange(days) / 365.25)
            names.append("trend_per_year")
        for lo, hi in segments:
            ind = np.zeros(days)
            ind[lo : hi + 1] = 1.0
            cols.append(ind)
            names.append(f"segment_{lo}_{hi}")
        return cls(np.column_stack(cols), names, dow, trend, list(segments))


@dataclass
class AcquisitionFit:
    """Result of :func:`fit_acquisition` (see the module docstring for the model)."""

    theta: dict[str, float]
    n0: float
    sensitivity: float
    sensitivity_fitted: bool
    beta: np.ndarray
    design: DayDesign
    hour_shares: np.ndarray
    hour_weight_n: float
    eta: np.ndarray
    cov: np.ndarray
    loglik: float
    n_customers: int
    existing_modelled: bool
    converged: bool
    message: str
    responsibilities: np.ndarray  # P(new) per customer
    daily_first_seen: np.ndarray
    daily_new_expected: np.ndarray
    daily_existing_expected: np.ndarray
    k: int
    notes: list[str] = field(default_factory=list)

    def ci_log(self, i: int) -> tuple[float, float]:
        s = math.sqrt(self.cov[i, i]) if np.isfinite(self.cov[i, i]) and self.cov[i, i] >= 0 else math.nan
        return (math.exp(self.eta[i] - Z95 * s), math.exp(self.eta[i] + Z95 * s))

    def delta(self, fn: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Value and standard error of a vector function of the parameter vector (delta method)."""
        v0 = np.atleast_1d(fn(self.eta))
        jac = np.zeros((len(v0), len(self.eta)))
        for j in range(len(self.eta)):
            e = np.zeros(len(self.eta))
            e[j] = 1e-6
            jac[:, j] = (np.atleast_1d(fn(self.eta + e)) - np.atleast_1d(fn(self.eta - e))) / 2e-6
        var = np.einsum("ij,jk,ik->i", jac, self.cov, jac)
        return v0, np.sqrt(np.where(var >= 0, var, np.nan))


class Clock:
    """The repurchase clock of the engine: on day ``d`` it runs at ``1 + s (m_d - 1)`` where ``m_d``
    is the product of the demand uplifts on that day, so ``Lambda(t) = t + s M(t)`` with
    ``M(t) = integral of (m - 1)`` (days)."""

    def __init__(self, m: np.ndarray) -> None:
        self.dm = np.asarray(m, dtype=float) - 1.0
        self.cum = np.concatenate(([0.0], np.cumsum(self.dm)))
        self.days = len(self.dm)

    def M(self, t: np.ndarray | float) -> np.ndarray:
        t = np.clip(np.asarray(t, dtype=float), 0.0, float(self.days))
        d = np.minimum(np.floor(t).astype(np.int64), self.days - 1)
        return self.cum[d] + (t - d) * self.dm[d]

    def dm_at(self, t: np.ndarray) -> np.ndarray:
        d = np.clip(np.floor(np.asarray(t, dtype=float)).astype(np.int64), 0, self.days - 1)
        return self.dm[d]

    @property
    def flat(self) -> bool:
        return bool(np.all(self.dm == 0.0))


N_FIXED = 6  # eta = [log r, log alpha, log a, log b, log N0, s, beta...]


class _Joint:
    """Log-likelihood and gradient of the joint model (module docstring) for fixed hour shares and
    a fixed uplift calendar of the repurchase clock."""

    def __init__(
        self, cust: pd.DataFrame, repeat_t: np.ndarray, fit_days: int, design: DayDesign, k: int,
        existing: bool, clock: Clock, sensitivity_free: bool,
    ) -> None:
        self.D = float(fit_days)
        self.design = design
        self.k = float(k)
        self.existing = existing
        self.sensitivity_free = sensitivity_free
        x = cust["x"].to_numpy(dtype=float)
        hour = cust["hour"].to_numpy(dtype=np.int64)
        t0 = cust["t0"].to_numpy(dtype=float)
        day = np.floor(t0).astype(np.int64)
        # customers without repeat orders only depend on (day, hour): collapse them onto hour midpoints
        zero = x == 0
        key = day[zero] * 24 + hour[zero]
        uk, cnt = np.unique(key, return_counts=True)
        zt0 = uk // 24 + (uk % 24 + 0.5) / 24.0
        self.x = np.concatenate([np.zeros(len(uk)), x[~zero]])
        self.t0 = np.concatenate([zt0, t0[~zero]])
        self.tx = np.concatenate([np.zeros(len(uk)), cust["tx"].to_numpy(dtype=float)[~zero]])
        self.T = self.D - self.t0
        self.hour = np.concatenate([uk % 24, hour[~zero]])
        self.day = np.concatenate([uk // 24, day[~zero]])
        self.w = np.concatenate([cnt.astype(float), np.ones(int((~zero).sum()))])
        self.ux, self.inv = np.unique(self.x, return_inverse=True)
        self.row_of = np.empty(len(x), dtype=np.int64)
        self.row_of[np.flatnonzero(zero)] = np.searchsorted(uk, key)
        self.row_of[np.flatnonzero(~zero)] = len(uk) + np.arange(int((~zero).sum()))
        self.log_pi = np.zeros(len(self.x))
        # repurchase clock
        self.M0 = clock.M(self.t0)
        self.dM_tx = clock.M(self.t0 + self.tx) - self.M0
        self.MD = float(clock.M(self.D))
        self.dM_T = self.MD - self.M0
        self.dm0 = clock.dm_at(self.t0)
        rep_dm = clock.dm_at(repeat_t)
        self.rep_dm = rep_dm[rep_dm != 0.0]

    def set_hours(self, shares: np.ndarray) -> None:
        self.log_pi = np.log(np.maximum(24.0 * shares, 1e-300))[self.hour]

    def parts(self, eta: np.ndarray, want_grad: bool) -> dict[str, Any]:
        r, al, a, b = np.exp(eta[:4])
        s = float(eta[5])
        X = self.design.X
        log_n = _mv(X, eta[N_FIXED:])
        n_d = np.exp(log_n)
        tx_c = self.tx + s * self.dM_tx
        T_c = self.T + s * self.dM_T
        lam_d = self.D + s * self.MD
        ll_n, g_n = _mbg_terms(r, al, a, b, self.ux, self.inv, tx_c, T_c, want_grad)
        u = log_n[self.day] + self.log_pi + ll_n
        out: dict[str, Any] = {"n_d": n_d}
        k = self.k
        lift_rep = np.log1p(s * self.rep_dm)
        if self.existing:
            n0 = math.exp(eta[4])
            alt = al + self.t0 + s * self.M0
            ll_e, g_e = _mbg_terms(r + 1.0, alt, a, b + k + 1.0, self.ux, self.inv, tx_c, T_c, want_grad)
            log_c = math.log(b + k) - math.log(a + b + k)
            c = math.exp(log_c)
            lift0 = 1.0 + s * self.dm0
            log_g = math.log(r) + r * math.log(al) - (r + 1.0) * np.log(alt) + np.log(lift0)
            v = math.log(n0) + log_c + log_g + ll_e
            lse = np.logaddexp(u, v)
            resp = np.exp(u - lse)
            q = al / (al + lam_d)
            G = 1.0 - q**r
            comp = n_d.sum() + n0 * c * G
        else:
            lse, resp = u, np.ones_like(u)
            comp = n_d.sum()
        out["ll"] = _dot(self.w, lse) - comp + float(lift_rep.sum())
        out["resp"] = resp
        if not want_grad:
            return out
        assert g_n is not None
        wr = self.w * resp
        g_theta = _mv(g_n[:4], wr)
        g_s = _dot(wr, g_n[4] * self.dM_tx + g_n[5] * self.dM_T) + float(np.sum(self.rep_dm / (1.0 + s * self.rep_dm)))
        grad = np.zeros(len(eta))
        if self.existing:
            assert g_e is not None
            we = self.w * (1.0 - resp)
            g_theta = g_theta + _mv(g_e[:4], we)
            g_theta[0] += _dot(we, 1.0 / r + math.log(al) - np.log(alt))
            g_theta[1] += _dot(we, r / al - (r + 1.0) / alt)
            dlc_a = -1.0 / (a + b + k)
            dlc_b = 1.0 / (b + k) - 1.0 / (a + b + k)
            g_theta[2] += we.sum() * dlc_a
            g_theta[3] += we.sum() * dlc_b
            dG_r = -(q**r) * math.log(q)
            dG_al = -r * q ** (r - 1.0) * lam_d / (al + lam_d) ** 2
            dG_lam = r * q**r / (al + lam_d)
            g_theta[0] -= n0 * c * dG_r
            g_theta[1] -= n0 * c * dG_al
            g_theta[2] -= n0 * G * c * dlc_a
            g_theta[3] -= n0 * G * c * dlc_b
            grad[4] = float(we.sum() - n0 * c * G)
            g_s += _dot(we, g_e[4] * self.dM_tx + g_e[5] * self.dM_T + g_e[1] * self.M0
                        - (r + 1.0) * self.M0 / alt + self.dm0 / lift0)
            g_s -= n0 * c * dG_lam * self.MD
        grad[:4] = g_theta * np.exp(eta[:4])
        grad[5] = g_s if self.sensitivity_free else 0.0
        W_d = np.bincount(self.day, weights=wr, minlength=len(n_d))[: len(n_d)]
        grad[N_FIXED:] = _mv(X.T, W_d - n_d)
        out["grad"] = grad
        return out

    def negll(self, eta: np.ndarray) -> tuple[float, np.ndarray]:
        p = self.parts(eta, True)
        if not math.isfinite(p["ll"]) or not np.all(np.isfinite(p["grad"])):
            return 1e300, np.zeros(len(eta))
        return -p["ll"], -p["grad"]

    def free(self, n: int) -> np.ndarray:
        return np.array([True] * 4 + [self.existing, self.sensitivity_free] + [True] * (n - N_FIXED))


def _optimise(model: _Joint, eta0: np.ndarray) -> tuple[np.ndarray, Any]:
    eta0 = eta0.copy()
    if not model.existing:
        eta0[4] = 0.0
    bounds_s = (0.0, 1.0) if model.sensitivity_free else (eta0[5], eta0[5])
    bounds = [*_LOG_THETA_BOUNDS, _LOG_N0_BOUNDS if model.existing else (0.0, 0.0), bounds_s]
    bounds += [(None, None)] * (len(eta0) - N_FIXED)
    res = optimize.minimize(model.negll, eta0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-7, "maxcor": 30})
    return res.x, res


NEWTON_DECREMENT_TOL = 1e-3
"""The Newton polish stops once the remaining expected log-likelihood gain g' H^-1 g / 2 is below a
hundredth of this (a stopping rule for the steps, not the convergence test)."""
REL_GRADIENT_TOL = 1e-6
"""Convergence test: the relative gradient ``max_i |g_i| max(|eta_i|, 1) / max(|loglik|, 1)`` of the
free parameters (projected on the bounds) must be below this at the returned point (the scaled
gradient test of Dennis & Schnabel 1983, sec. 7.2; R's ``nlm`` gradtol is the same test). It is
invariant to the size of the data set, which an absolute expected-gain rule is not."""


def relative_gradient(grad: np.ndarray, eta: np.ndarray, loglik: float, lo: np.ndarray, hi: np.ndarray) -> float:
    """The scaled gradient of :data:`REL_GRADIENT_TOL`, with components that push a parameter
    sitting on its bound further out set to 0 (the projected gradient L-BFGS-B tests)."""
    g = np.asarray(grad, dtype=float).copy()  # gradient of the log-likelihood
    at_lo = eta <= lo + 1e-9
    at_hi = eta >= hi - 1e-9
    g[at_lo & (g < 0)] = 0.0
    g[at_hi & (g > 0)] = 0.0
    if len(g) == 0:
        return 0.0
    return float(np.max(np.abs(g) * np.maximum(np.abs(eta), 1.0)) / max(abs(loglik), 1.0))


def _newton_polish(model: _Joint, eta: np.ndarray, free: np.ndarray, max_steps: int = 12) -> tuple[np.ndarray, np.ndarray, float]:
    """Newton steps (numerical Hessian of the analytic gradient, backtracking) from the quasi-Newton
    optimum on the free parameters: L-BFGS can stop early ("ABNORMAL" line search) on a flat, large
    log-likelihood. Returns the parameters, the Hessian of the negative log-likelihood there, and
    the remaining Newton decrement."""
    eta = eta.copy()

    def grad_free(e_free: np.ndarray) -> np.ndarray:
        e = eta.copy()
        e[free] = e_free
        return -model.parts(e, True)["grad"][free]

    lo = np.array([b[0] for b in [*_LOG_THETA_BOUNDS, _LOG_N0_BOUNDS, (0.0, 1.0)]] + [-np.inf] * (len(eta) - N_FIXED))[free]
    hi = np.array([b[1] for b in [*_LOG_THETA_BOUNDS, _LOG_N0_BOUNDS, (0.0, 1.0)]] + [np.inf] * (len(eta) - N_FIXED))[free]
    decrement = math.inf
    hess = np.eye(int(free.sum()))
    for _ in range(max_steps):
        g = grad_free(eta[free])
        hess = hessian_from_grad(grad_free, eta[free], relative=True)
        try:
            step = -np.linalg.solve(hess, g)
        except np.linalg.LinAlgError:
            break
        decrement = float(-g @ step) / 2
        if not math.isfinite(decrement) or decrement < 0:
            decrement = math.inf
            break
        if decrement < NEWTON_DECREMENT_TOL / 100:
            break
        f0 = model.negll(eta)[0]
        t = 1.0
        while t > 1e-4:
            cand = eta.copy()
            cand[free] = np.clip(eta[free] + t * step, lo, hi)
            if model.negll(cand)[0] <= f0 + 1e-12:
                eta = cand
                break
            t /= 2
        else:
            break
    return eta, hess, decrement


def _day_only_fit(counts: np.ndarray, X: np.ndarray, extra_shape: np.ndarray, existing: bool, beta0: np.ndarray, n0: float) -> tuple[np.ndarray, float]:
    """Poisson fit of daily first-seen counts: ``counts ~ exp(X beta) + N0 * extra_shape``."""
    p = X.shape[1]

    def negll(par: np.ndarray) -> tuple[float, np.ndarray]:
        beta = par[:p]
        n_d = np.exp(_mv(X, beta))
        m0 = math.exp(par[p]) if existing else 0.0
        lam = np.maximum(n_d + m0 * extra_shape, 1e-12)
        ll = float(np.sum(counts * np.log(lam) - lam))
        resid = counts / lam - 1.0
        g = np.concatenate([_mv(X.T, resid * n_d), [float(np.sum(resid * m0 * extra_shape))]])
        return -ll, -g

    par0 = np.concatenate([beta0, [math.log(max(n0, 1.0))]])
    bounds = [(None, None)] * p + [(_LOG_N0_BOUNDS if existing else (0.0, 0.0))]
    res = optimize.minimize(negll, par0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 3000})
    return res.x[:p], (math.exp(res.x[p]) if existing else 0.0)


def _segment_multipliers(design: DayDesign, beta: np.ndarray, days: int) -> np.ndarray:
    m = np.ones(days)
    for j, name in enumerate(design.names):
        if name.startswith("segment_"):
            lo, hi = (int(v) for v in name.split("_")[1:])
            m[lo : hi + 1] *= math.exp(beta[j])
    return m


def fit_acquisition(
    cust: pd.DataFrame,
    repeat_t: np.ndarray,
    fit_days: int,
    dow_of_day: np.ndarray,
    k: int,
    sensitivity0: float = 0.0,
    trend: bool = True,
    existing: bool = True,
    detect_uplifts: bool = True,
    max_uplifts: int = 12,
    arrival_days: int | None = None,
) -> AcquisitionFit:
    """Fit the joint model to customers first seen in days ``[0, fit_days)``.

    Args:
        cust: one row per customer first seen in the window: ``t0``, ``x``, ``tx``, ``T`` (days),
            ``hour`` of the first order (see :func:`calibration.summaries.customer_marks`).
        repeat_t: times (days) of every repeat order of those customers in the window.
        fit_days: length of the fit window (days).
        dow_of_day: weekday (0 = Monday) of each day of the window.
        k: repeat purchases the existing customers already made (the base scenario's value).
        sensitivity0: starting value of the repurchase clock's peak sensitivity (the base's).
        trend, existing, detect_uplifts: model switches.
        arrival_days: a closed cohort: new customers arrive only in days ``[0, arrival_days)``
            (none after; needs ``existing=False``: every customer of a cohort log is new at its
            first order). None: arrivals over the whole window.
    """
    notes: list[str] = []
    D = int(fit_days)
    A = D if arrival_days is None else int(arrival_days)
    if not 0 < A <= D:
        raise ValueError(f"arrival_days must be in 1..{D}, got {A}")
    if A < D and existing:
        raise ValueError("a closed cohort (arrival_days < fit_days) has no customers from before the history: pass existing=False")
    day = np.floor(cust["t0"].to_numpy()).astype(np.int64)
    if np.any(day >= A):
        raise ValueError("customers first seen after arrival_days")
    counts = np.bincount(day, minlength=A)[:A].astype(float)
    dow_of_day = np.asarray(dow_of_day)[:A]
    # 1) repurchase parameters from customers first seen late in the window (mostly new customers;
    #    in a cohort log every customer is new)
    late = cust["t0"].to_numpy() >= 0.4 * D if existing else np.ones(len(cust), dtype=bool)
    start_fit = fit_mbgnbd(cust["x"].to_numpy()[late], cust["tx"].to_numpy()[late], cust["T"].to_numpy()[late])
    th = start_fit.params
    if not all(math.isfinite(v) for v in th.values()):
        th = {"r": 1.0, "alpha": 50.0, "a": 1.0, "b": 1.0}
    theta0 = np.log([th["r"], th["alpha"], th["a"], th["b"]])
    theta0 = np.clip(theta0, [lo + 0.01 for lo, _ in _LOG_THETA_BOUNDS], [hi - 0.01 for _, hi in _LOG_THETA_BOUNDS])
    s0 = float(min(max(sensitivity0, 0.01), 0.99))

    def existing_shape(theta: np.ndarray, clock: Clock, s: float) -> np.ndarray:
        r, al, a, b = np.exp(theta)
        edges = np.arange(A + 1, dtype=float)
        lam = edges + s * clock.M(edges)
        cdf = 1.0 - (al / (al + lam)) ** r
        return (b + k) / (a + b + k) * np.diff(cdf)

    # 2) day-level fit (fast) with uplift detection on its residuals: greedily, the strongest run
    #    of outlying days first (an unmodelled peak inflates the baseline and makes ordinary days
    #    look low), refitting after each addition
    segments: list[tuple[int, int]] = []
    design = DayDesign.build(dow_of_day, trend, segments)
    beta = np.zeros(design.X.shape[1])
    beta[0] = math.log(max(float(np.median(counts[int(0.4 * A):])), 1.0))
    clock = Clock(np.ones(D))
    shape = existing_shape(theta0, clock, s0)
    head = max(A // 10, 7)
    n0 = max(float(counts[:head].sum() - np.median(counts[int(0.4 * A):]) * head), 1.0) / max(float(shape[:head].sum()), 1e-9)
    for _ in range(max_uplifts + 1 if detect_uplifts else 1):
        beta, n0 = _day_only_fit(counts, design.X, shape, existing, beta, n0)
        if not detect_uplifts:
            break
        base = np.exp(_mv(design.X, beta))
        covered = np.zeros(A, dtype=bool)
        for lo, hi in segments:
            covered[lo : hi + 1] = True
        # uplifts first: an unmodelled uplift drags the baseline up and makes ordinary days look low
        found = detect_runs(counts, base, n0 * shape, ~covered, positive_only=True)
        if not found:
            found = detect_runs(counts, base, n0 * shape, ~covered)
        if not found:
            break
        strongest = max(found, key=lambda run: run[1])[0]
        segments = sorted(segments + [(lo, hi) for lo, hi, _ in strongest])
        old_names = design.names
        design = DayDesign.build(dow_of_day, trend, segments)
        nb = np.zeros(design.X.shape[1])
        for j, name in enumerate(design.names):
            if name in old_names:
                nb[j] = beta[old_names.index(name)]
            elif name.startswith("segment_"):
                lo, hi = (int(v) for v in name.split("_")[1:])
                m = next((m for a_, b_, m in strongest if a_ == lo and b_ == hi), 1.0)
                nb[j] = math.log(max(m, 1e-3))
        beta = nb
        clock = Clock(_segment_multipliers(design, beta, D))
        shape = existing_shape(theta0, clock, s0)
    # tidy: merge touching segments whose multipliers differ by less than 10%, drop those within
    # 5% of no uplift, then refit
    def mult(seg: tuple[int, int]) -> float:
        return math.exp(beta[design.names.index(f"segment_{seg[0]}_{seg[1]}")])

    if segments:
        merged: list[list[Any]] = []  # [lo, hi, multiplier]
        for seg in segments:
            m = mult(seg)
            if merged and merged[-1][1] + 1 == seg[0] and abs(merged[-1][2] / m - 1.0) < FLAG_RATIO:
                merged[-1][1] = seg[1]
            else:
                merged.append([seg[0], seg[1], m])
        keep_m = [(lo, hi, m) for lo, hi, m in merged if abs(m - 1.0) >= FLAG_RATIO / 2]
        keep = [(lo, hi) for lo, hi, _ in keep_m]
        if keep != segments:
            old_names, old_beta = design.names, beta
            design = DayDesign.build(dow_of_day, trend, keep)
            start_m = {f"segment_{lo}_{hi}": math.log(m) for lo, hi, m in keep_m}
            beta = np.array([old_beta[old_names.index(nm)] if nm in old_names else start_m.get(nm, 0.0) for nm in design.names])
            segments = keep
            clock = Clock(_segment_multipliers(design, beta, D))
            shape = existing_shape(theta0, clock, s0)
            beta, n0 = _day_only_fit(counts, design.X, shape, existing, beta, n0)
            clock = Clock(_segment_multipliers(design, beta, D))
    if segments:
        notes.append(f"{len(segments)} dated uplift period(s) found in the residuals")

    # 3) the joint model, alternating with the hour-share (EM) update and the uplift calendar of
    #    the repurchase clock (taken from the previous round's uplift multipliers)
    sens_free = bool(segments)
    hours = cust["hour"].to_numpy(dtype=np.int64)
    shares = np.bincount(hours[late], minlength=24)[:24].astype(float) + 0.5
    shares /= shares.sum()
    eta = np.concatenate([theta0, [math.log(max(n0, 1.0)), s0 if sens_free else float(sensitivity0)], beta])
    res: Any = None
    model = _Joint(cust, repeat_t, D, design, k, existing, clock, sens_free)
    for _ in range(6):
        model.set_hours(shares)
        eta, res = _optimise(model, eta)
        resp = model.parts(eta, False)["resp"][model.row_of]
        new_shares = np.asarray(np.bincount(hours, weights=resp, minlength=24)[:24] + 1e-9, dtype=np.float64)
        new_shares = new_shares / new_shares.sum()
        new_m = _segment_multipliers(design, eta[N_FIXED:], D)
        hours_moved = float(np.abs(new_shares - shares).max())
        shares = new_shares
        clock_moved = not np.allclose(new_m, clock.dm + 1.0, rtol=1e-4)
        if clock_moved:
            clock = Clock(new_m)
            model = _Joint(cust, repeat_t, D, design, k, existing, clock, sens_free)
        if hours_moved < 2e-4 and not clock_moved:
            break
    model.set_hours(shares)
    eta, res = _optimise(model, eta)
    weak = [seg for seg in segments if abs(_segment_multipliers(design, eta[N_FIXED:], D)[seg[0]] - 1.0) < FLAG_RATIO / 2]
    if weak:
        old_names = design.names
        segments = [seg for seg in segments if seg not in weak]
        design = DayDesign.build(dow_of_day, trend, segments)
        eta = np.concatenate([eta[:N_FIXED], [eta[N_FIXED + old_names.index(nm)] for nm in design.names]])
        sens_free = bool(segments)
        clock = Clock(_segment_multipliers(design, eta[N_FIXED:], D))
        model = _Joint(cust, repeat_t, D, design, k, existing, clock, sens_free)
        model.set_hours(shares)
        eta, res = _optimise(model, eta)
    at_floor = existing and eta[4] <= _LOG_N0_BOUNDS[0] + 1e-3
    if at_floor:
        notes.append("no evidence of customers from before the history (initial customers fitted at 0)")
        existing = False
        model = _Joint(cust, repeat_t, D, design, k, False, clock, sens_free)
        model.set_hours(shares)
        eta, res = _optimise(model, eta)
    parts = model.parts(eta, True)
    free = model.free(len(eta))
    s_hat = float(eta[5])
    if sens_free and (s_hat <= 1e-6 or s_hat >= 1 - 1e-6):
        notes.append(f"peak sensitivity at its bound ({s_hat:.0f}): interval from the other side only")
        free[5] = False

    eta, hess, _ = _newton_polish(model, eta, free)
    parts = model.parts(eta, True)
    cov_free, problem = _covariance(hess)
    cov = np.zeros((len(eta), len(eta)))
    cov[np.ix_(free, free)] = cov_free
    msgs = []
    lo_b = np.array([b[0] for b in [*_LOG_THETA_BOUNDS, _LOG_N0_BOUNDS, (0.0, 1.0)]] + [-np.inf] * (len(eta) - N_FIXED))
    hi_b = np.array([b[1] for b in [*_LOG_THETA_BOUNDS, _LOG_N0_BOUNDS, (0.0, 1.0)]] + [np.inf] * (len(eta) - N_FIXED))
    rel_grad = relative_gradient(parts["grad"][free], eta[free], float(parts["ll"]), lo_b[free], hi_b[free])
    if not rel_grad < REL_GRADIENT_TOL:
        msgs.append(f"not at a maximum: relative gradient {rel_grad:.2g} (tolerance {REL_GRADIENT_TOL:g}) after the optimiser "
                    f"({res.message}) and Newton steps")
    if problem:
        msgs.append(problem)
    bound_hit = [nm for nm, v, (lo, hi) in zip(_THETA, eta[:4], _LOG_THETA_BOUNDS, strict=True) if v < lo + 1e-3 or v > hi - 1e-3]
    if bound_hit:
        msgs.append(f"at the search bound: {', '.join(bound_hit)}")
    gmax = float(np.max(np.abs(parts["grad"][free]))) if free.any() else 0.0
    converged = not msgs and bool(np.all(np.isfinite(np.diag(cov_free))))
    resp = parts["resp"][model.row_of]
    r, al, a, b = np.exp(eta[:4])
    n0 = math.exp(eta[4]) if existing else 0.0
    return AcquisitionFit(
        theta={"r": float(r), "alpha": float(al), "a": float(a), "b": float(b)},
        n0=n0, sensitivity=s_hat, sensitivity_fitted=sens_free, beta=eta[N_FIXED:], design=design,
        hour_shares=shares, hour_weight_n=float(resp.sum()),
        eta=eta, cov=cov, loglik=float(parts["ll"]), n_customers=len(cust), existing_modelled=existing,
        converged=converged,
        message="; ".join(msgs) or f"ok (relative gradient {rel_grad:.2g}, largest gradient component {gmax:.2g}; optimiser: {res.message})",
        responsibilities=resp, daily_first_seen=np.pad(counts, (0, D - A)), daily_new_expected=np.pad(parts["n_d"], (0, D - A)),
        daily_existing_expected=n0 * existing_shape(eta[:4], clock, s_hat) if existing else np.zeros(D),
        k=k, notes=notes,
    )
