"""Maximum-likelihood fits of durations observed incompletely, for the cases ``distfit`` does not
cover: interval-censored delays (a contact's delay after its trigger is known only to the day) and
right-truncated durations (return requests are only accepted within the return window).

Families are those of the simulator (``sim.distributions``): exponential, lognormal, gamma,
weibull, each with location 0. Parameters are estimated on the log scale; standard errors come
from the observed information (numerical Hessian); the 95% intervals of the mean and the
coefficient of variation use the delta method on the log scale (always positive). The family with
the lowest AIC is chosen.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special

__all__ = ["CensoredFit", "fit_interval_censored", "fit_truncated"]

FAMILIES = ("exponential", "lognormal", "gamma", "weibull")
Z95 = 1.959963984540054


class _Family:
    """CDF and log-density of a family at log-scale parameters ``eta`` (scipy.special, no
    frozen-distribution overhead)."""

    @staticmethod
    def cdf(family: str, eta: np.ndarray, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            if family == "exponential":
                return -np.expm1(-x / math.exp(eta[0]))
            if family == "lognormal":
                return special.ndtr((np.log(x) - eta[0]) / math.exp(eta[1]))
            if family == "gamma":
                return special.gammainc(math.exp(eta[0]), x / math.exp(eta[1]))
            if family == "weibull":
                return -np.expm1(-((x / math.exp(eta[1])) ** math.exp(eta[0])))
        raise ValueError(family)

    @staticmethod
    def logpdf(family: str, eta: np.ndarray, x: np.ndarray) -> np.ndarray:
        lx = np.log(x)
        if family == "exponential":
            return -eta[0] - x / math.exp(eta[0])
        if family == "lognormal":
            z = (lx - eta[0]) / math.exp(eta[1])
            return -lx - eta[1] - 0.5 * math.log(2 * math.pi) - 0.5 * z * z
        if family == "gamma":
            k = math.exp(eta[0])
            return (k - 1) * lx - x / math.exp(eta[1]) - special.gammaln(k) - k * eta[1]
        if family == "weibull":
            k = math.exp(eta[0])
            return eta[0] - eta[1] + (k - 1) * (lx - eta[1]) - np.exp(k * (lx - eta[1]))
        raise ValueError(family)


def _mean_cv(family: str, eta: np.ndarray) -> tuple[float, float]:
    if family == "exponential":
        return math.exp(eta[0]), 1.0
    if family == "lognormal":
        s2 = math.exp(2 * eta[1])
        return math.exp(eta[0] + s2 / 2), math.sqrt(math.expm1(s2))
    if family == "gamma":
        k = math.exp(eta[0])
        return k * math.exp(eta[1]), 1 / math.sqrt(k)
    k = math.exp(eta[0])
    g1 = math.lgamma(1 + 1 / k)
    g2 = math.lgamma(1 + 2 / k)
    return math.exp(eta[1] + g1), math.sqrt(max(math.exp(g2 - 2 * g1) - 1, 0.0))


def _start(family: str, mean: float, cv: float) -> np.ndarray:
    mean, cv = max(mean, 1e-9), min(max(cv, 0.05), 10.0)
    if family == "exponential":
        return np.array([math.log(mean)])
    if family == "lognormal":
        s2 = math.log1p(cv * cv)
        return np.array([math.log(mean) - s2 / 2, 0.5 * math.log(s2)])
    if family == "gamma":
        k = 1 / cv**2
        return np.array([math.log(k), math.log(mean / k)])
    k = max(1.2 / cv, 0.1)
    return np.array([math.log(k), math.log(mean / math.exp(math.lgamma(1 + 1 / k)))])


@dataclass
class CensoredFit:
    """The chosen family's fit (same fields as ``distfit.DurationFit`` where they apply)."""

    family: str
    mean: float
    cv: float
    mean_ci95: tuple[float, float]
    cv_ci95: tuple[float, float]
    loglik: float
    aic: dict[str, float]
    n: int
    converged: bool
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_scenario_dist(self, unit_factor: float = 1.0) -> dict[str, Any]:
        if not self.converged:
            raise ValueError(f"fit did not converge: {self.message}")
        if self.family == "exponential":
            return {"dist": "exponential", "mean": float(self.mean * unit_factor)}
        return {"dist": self.family, "mean": float(self.mean * unit_factor), "cv": float(self.cv)}

    def to_dict(self) -> dict[str, Any]:
        def jf(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "family": self.family, "mean": jf(self.mean), "cv": jf(self.cv),
            "mean_ci95": [jf(v) for v in self.mean_ci95], "cv_ci95": [jf(v) for v in self.cv_ci95],
            "ci_method": "delta method (log scale)", "loglik": jf(self.loglik),
            "aic": {k: jf(v) for k, v in self.aic.items()}, "n": self.n, "converged": self.converged,
            "message": self.message, **self.extra,
        }


def _fit(negll: Any, families: tuple[str, ...], mean0: float, cv0: float, n: int) -> CensoredFit:
    best: tuple[float, str, np.ndarray] | None = None
    aic: dict[str, float] = {}
    for fam in families:
        eta0 = _start(fam, mean0, cv0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = optimize.minimize(lambda e, f=fam: negll(f, e), eta0, method="L-BFGS-B",
                                        bounds=[(-30.0, 30.0)] * len(eta0), options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 500})
                if not res.success or not math.isfinite(res.fun):
                    res = optimize.minimize(lambda e, f=fam: negll(f, e), res.x if math.isfinite(res.fun) else eta0, method="Nelder-Mead",
                                            options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
        except (ValueError, FloatingPointError, OverflowError):
            aic[fam] = math.nan
            continue
        if not math.isfinite(res.fun):
            aic[fam] = math.nan
            continue
        aic[fam] = 2 * len(eta0) + 2 * res.fun
        if best is None or aic[fam] < best[0]:
            best = (aic[fam], fam, res.x)
    nan2 = (math.nan, math.nan)
    if best is None:
        return CensoredFit("", math.nan, math.nan, nan2, nan2, math.nan, aic, n, False, "no family could be fitted")
    _, fam, eta = best
    k = len(eta)
    hess = np.zeros((k, k))
    h = 1e-4
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = h, h
            v = (negll(fam, eta + ei + ej) - negll(fam, eta + ei - ej) - negll(fam, eta - ei + ej) + negll(fam, eta - ei - ej)) / (4 * h * h)
            hess[i, j] = hess[j, i] = v
    mean, cv = _mean_cv(fam, eta)
    msg = "ok"
    try:
        cov = np.linalg.inv(hess)
        if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) < 0):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        return CensoredFit(fam, mean, cv, nan2, nan2, -best[0] / 2 + k, aic, n, False, "information matrix not invertible")

    def log_mom(e: np.ndarray) -> np.ndarray:
        m, c = _mean_cv(fam, e)
        return np.array([math.log(m), math.log(max(c, 1e-12))])

    jac = np.zeros((2, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = 1e-6
        jac[:, j] = (log_mom(eta + e) - log_mom(eta - e)) / 2e-6
    var = np.einsum("ij,jk,ik->i", jac, cov, jac)
    se = np.sqrt(np.maximum(var, 0.0))
    mean_ci = (mean * math.exp(-Z95 * se[0]), mean * math.exp(Z95 * se[0]))
    cv_ci = (cv, cv) if fam == "exponential" else (cv * math.exp(-Z95 * se[1]), cv * math.exp(Z95 * se[1]))
    return CensoredFit(fam, mean, cv, mean_ci, cv_ci, float(-(best[0] - 2 * k) / 2), aic, n, True, msg)


def fit_interval_censored(
    lo: np.ndarray, hi: np.ndarray, extra_hi: np.ndarray | None = None, extra_w: np.ndarray | None = None,
    families: tuple[str, ...] = FAMILIES,
) -> CensoredFit:
    """Fit durations known only to lie in ``(lo, hi]``; an observation may instead (with weight
    ``extra_w``) come from ``(0, extra_hi]``: likelihood ``F(hi) - F(lo) + extra_w F(extra_hi)``.

    Used for contact delays observed to the day (see :mod:`calibration.fit`). Units are the data's.
    """
    lo = np.maximum(np.asarray(lo, dtype=float), 0.0)
    hi = np.asarray(hi, dtype=float)
    if extra_hi is None:
        extra_hi, extra_w = np.zeros_like(lo), np.zeros_like(lo)
    ew = np.asarray(extra_w, dtype=float)
    eh = np.asarray(extra_hi, dtype=float)
    has_extra = ew > 0
    mid = (lo + hi) / 2
    mean0 = float(np.mean(mid))
    cv0 = float(np.std(mid) / mean0) if mean0 > 0 else 1.0

    def negll(fam: str, eta: np.ndarray) -> float:
        p = _Family.cdf(fam, eta, hi) - _Family.cdf(fam, eta, lo)
        if has_extra.any():
            p = p + np.where(has_extra, ew * _Family.cdf(fam, eta, eh), 0.0)
        if np.any(~np.isfinite(p)):
            return math.inf
        return float(-np.sum(np.log(np.maximum(p, 1e-300))))

    return _fit(negll, families, mean0, cv0, len(lo))


def fit_truncated(x: np.ndarray, upper: float, families: tuple[str, ...] = FAMILIES) -> CensoredFit:
    """Fit durations observed only when ``<= upper`` (right truncation), e.g. return requests within
    the return window: likelihood ``f(x) / F(upper)``."""
    x = np.asarray(x, dtype=float)
    x = x[(x > 0) & (x <= upper)]
    mean0 = float(x.mean())
    cv0 = float(x.std() / mean0)

    ux = np.array([upper])

    def negll(fam: str, eta: np.ndarray) -> float:
        cdf_u = float(_Family.cdf(fam, eta, ux)[0])
        if not cdf_u > 0:
            return math.inf
        v = -float(np.sum(_Family.logpdf(fam, eta, x)) - len(x) * math.log(cdf_u))
        return v if math.isfinite(v) else math.inf

    fit = _fit(negll, families, mean0, cv0, len(x))
    fit.extra["truncated_at"] = upper
    return fit
