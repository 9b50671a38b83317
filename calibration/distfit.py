"""Duration distributions (handle times, patience, transit times) fitted by maximum likelihood.

Families and their parameters (``t`` in the caller's unit, e.g. seconds):

============  =====================  =========================================================
family        parameters             mean, coefficient of variation (cv = sd / mean)
============  =====================  =========================================================
exponential   ``mean``               mean, 1
lognormal     ``mu``, ``sigma``      exp(mu + sigma^2/2), sqrt(exp(sigma^2) - 1)
gamma         ``shape``, ``scale``   shape * scale, 1 / sqrt(shape)
weibull       ``shape``, ``scale``   scale * G(1 + 1/shape), sqrt(G(1+2/k) / G(1+1/k)^2 - 1)
============  =====================  =========================================================

All families have location 0. Uncomplete (uncensored) samples are fitted in closed form
(exponential, lognormal) or by solving the one-dimensional profile score equation (gamma: Minka's
``log k - digamma(k) = log(mean) - mean(log t)``; weibull: the shape equation), which gives the
same estimates as ``scipy.stats.<family>.fit(x, floc=0)``. Right-censored samples are fitted by
numerical maximisation of the censored likelihood on an unconstrained scale (log of positive
parameters). Parameter standard errors come from the observed information on that scale and
the delta method. Intervals for the mean and cv are percentile bootstrap intervals (the chosen
family refitted to resampled data, seeded generator) or, with ``B=0``, log-scale Wald intervals
from the delta method.

The chosen family has the lowest AIC. The Kolmogorov-Smirnov statistic is reported as a
descriptive distance only (its usual p-value is invalid when parameters are estimated; for
censored data it is the largest gap to the Kaplan-Meier curve at event times with at least 10
observations still at risk).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from calibration.numerics import hessian

__all__ = [
    "FAMILIES",
    "DurationFit",
    "FamilyFit",
    "bootstrap_ci",
    "family_mean_cv",
    "family_sf",
    "fit_duration",
    "fit_patience",
    "kaplan_meier",
    "poisson_rate",
    "proportion",
]

FAMILIES = ("exponential", "lognormal", "gamma", "weibull")
_N_PARAMS = {"exponential": 1, "lognormal": 2, "gamma": 2, "weibull": 2}
_Z95 = 1.959963984540054
_LOG_2PI = math.log(2 * math.pi)
_KS_MIN_AT_RISK = 10


def _jf(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FamilyFit:
    """One family's maximum-likelihood fit.

    Attributes:
        family: family name.
        params: natural parameters (see module table; times in the data's unit).
        se: standard errors of ``params`` (observed information, delta method; NaN if unavailable).
        loglik: maximised log-likelihood (log density in 1/unit for events).
        aic: ``2 k - 2 loglik``.
        mean: mean duration (data unit).
        cv: coefficient of variation (dimensionless).
        ks: Kolmogorov-Smirnov distance to the empirical (or Kaplan-Meier) distribution.
        converged: whether the fit succeeded.
        message: "ok" or the reason it did not.
    """

    family: str
    params: dict[str, float]
    se: dict[str, float]
    loglik: float
    aic: float
    mean: float
    cv: float
    ks: float
    converged: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (non-finite numbers become None)."""
        return {
            "family": self.family,
            "params": {k: _jf(v) for k, v in self.params.items()},
            "se": {k: _jf(v) for k, v in self.se.items()},
            "loglik": _jf(self.loglik),
            "aic": _jf(self.aic),
            "mean": _jf(self.mean),
            "cv": _jf(self.cv),
            "ks": _jf(self.ks),
            "converged": self.converged,
            "message": self.message,
        }


@dataclass(frozen=True)
class DurationFit:
    """Fits of several families to one sample and the family chosen by AIC.

    Attributes:
        family: chosen family (lowest AIC among converged fits).
        params, se: the chosen family's parameters and their standard errors.
        mean: mean duration of the chosen fit (data unit).
        cv: coefficient of variation of the chosen fit.
        mean_ci95, cv_ci95: 95% intervals for mean and cv (see ``ci_method``).
        ci_method: "bootstrap (B=..)" or "delta method".
        aic: AIC per family (NaN where the fit failed).
        ks: KS distance of the chosen fit.
        fits: every family's :class:`FamilyFit`.
        n: observations used; n_events / n_censored: events and right-censored among them.
        n_dropped: observations dropped (zero-time censored observations, which carry no
            information; zero-valued samples when ``nonpositive="drop"``).
        censored: whether the censored likelihood was used.
        converged: whether the chosen fit converged.
        message: "ok" or notes.
    """

    family: str
    params: dict[str, float]
    se: dict[str, float]
    mean: float
    cv: float
    mean_ci95: tuple[float, float]
    cv_ci95: tuple[float, float]
    ci_method: str
    aic: dict[str, float]
    ks: float
    fits: dict[str, FamilyFit]
    n: int
    n_events: int
    n_censored: int
    n_dropped: int
    censored: bool
    converged: bool
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_scenario_dist(self, unit_factor: float = 1.0) -> dict[str, Any]:
        """The chosen fit in the simulator's terms: ``{"dist", "mean", "cv"}``.

        Exponential gives only ``{"dist": "exponential", "mean": ...}``. ``unit_factor``
        multiplies the mean (e.g. ``1/60`` turns seconds into the minutes of ``handle_time_min``);
        cv is unit-free.
        """
        if not self.converged:
            raise ValueError(f"fit did not converge: {self.message}")
        mean = float(self.mean * unit_factor)
        if self.family == "exponential":
            return {"dist": "exponential", "mean": mean}
        return {"dist": self.family, "mean": mean, "cv": float(self.cv)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (non-finite numbers become None)."""
        return {
            "family": self.family,
            "params": {k: _jf(v) for k, v in self.params.items()},
            "se": {k: _jf(v) for k, v in self.se.items()},
            "mean": _jf(self.mean),
            "cv": _jf(self.cv),
            "mean_ci95": [_jf(v) for v in self.mean_ci95],
            "cv_ci95": [_jf(v) for v in self.cv_ci95],
            "ci_method": self.ci_method,
            "aic": {k: _jf(v) for k, v in self.aic.items()},
            "ks": _jf(self.ks),
            "fits": {k: f.to_dict() for k, f in self.fits.items()},
            "n": self.n,
            "n_events": self.n_events,
            "n_censored": self.n_censored,
            "n_dropped": self.n_dropped,
            "censored": self.censored,
            "converged": self.converged,
            "message": self.message,
        }


# --------------------------------------------------------------------------------------------
# Family algebra: unconstrained parameter vector eta <-> natural parameters, moments, densities
# --------------------------------------------------------------------------------------------


def _natural(family: str, eta: np.ndarray) -> dict[str, float]:
    if family == "exponential":
        return {"mean": float(np.exp(eta[0]))}
    if family == "lognormal":
        return {"mu": float(eta[0]), "sigma": float(np.exp(eta[1]))}
    if family in ("gamma", "weibull"):
        return {"shape": float(np.exp(eta[0])), "scale": float(np.exp(eta[1]))}
    raise ValueError(f"unknown family {family!r}")


def _eta(family: str, params: dict[str, float]) -> np.ndarray:
    if family == "exponential":
        return np.array([math.log(params["mean"])])
    if family == "lognormal":
        return np.array([params["mu"], math.log(params["sigma"])])
    return np.array([math.log(params["shape"]), math.log(params["scale"])])


def family_mean_cv(family: str, params: dict[str, float]) -> tuple[float, float]:
    """Mean (data unit) and coefficient of variation of a family with natural ``params``."""
    if family == "exponential":
        return float(params["mean"]), 1.0
    if family == "lognormal":
        mu, s = params["mu"], params["sigma"]
        return float(math.exp(mu + 0.5 * s * s)), float(math.sqrt(math.expm1(s * s)))
    if family == "gamma":
        k, th = params["shape"], params["scale"]
        return float(k * th), float(1.0 / math.sqrt(k))
    if family == "weibull":
        k, lam = params["shape"], params["scale"]
        g1 = special.gammaln(1 + 1 / k)
        g2 = special.gammaln(1 + 2 / k)
        return float(lam * math.exp(g1)), float(math.sqrt(max(math.expm1(g2 - 2 * g1), 0.0)))
    raise ValueError(f"unknown family {family!r}")


def _logpdf(family: str, p: dict[str, float], t: np.ndarray) -> np.ndarray:
    if family == "exponential":
        m = p["mean"]
        return -math.log(m) - t / m
    if family == "lognormal":
        mu, s = p["mu"], p["sigma"]
        lt = np.log(t)
        z = (lt - mu) / s
        return -lt - math.log(s) - 0.5 * _LOG_2PI - 0.5 * z * z
    if family == "gamma":
        k, th = p["shape"], p["scale"]
        return (k - 1) * np.log(t) - t / th - special.gammaln(k) - k * math.log(th)
    k, lam = p["shape"], p["scale"]
    lz = np.log(t) - math.log(lam)
    return math.log(k) - math.log(lam) + (k - 1) * lz - np.exp(k * lz)


def _logsf(family: str, p: dict[str, float], t: np.ndarray) -> np.ndarray:
    if family == "exponential":
        return -t / p["mean"]
    if family == "lognormal":
        return special.log_ndtr(-(np.log(t) - p["mu"]) / p["sigma"])
    if family == "gamma":
        return stats.gamma.logsf(t, p["shape"], scale=p["scale"])
    return -np.exp(p["shape"] * (np.log(t) - math.log(p["scale"])))


def _logcdf(family: str, p: dict[str, float], t: np.ndarray) -> np.ndarray:
    if family == "exponential":
        return np.log(-np.expm1(-t / p["mean"]))
    if family == "lognormal":
        return special.log_ndtr((np.log(t) - p["mu"]) / p["sigma"])
    if family == "gamma":
        return stats.gamma.logcdf(t, p["shape"], scale=p["scale"])
    return np.log(-np.expm1(-np.exp(p["shape"] * (np.log(t) - math.log(p["scale"])))))


def family_sf(family: str, params: dict[str, float], t: ArrayLike) -> np.ndarray:
    """Survival function P(duration > t) of a family with natural ``params`` (t >= 0)."""
    tt = np.asarray(t, dtype=float)
    out = np.ones_like(tt)
    pos = tt > 0
    with np.errstate(divide="ignore", under="ignore"):
        out[pos] = np.exp(_logsf(family, params, tt[pos]))
    return out


def _cdf(family: str, p: dict[str, float], t: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.exp(_logcdf(family, p, np.maximum(t, 1e-300)))


# --------------------------------------------------------------------------------------------
# Maximum likelihood
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sample:
    """Event times, right-censoring times and left-censoring (event in (0, res]) times."""

    events: np.ndarray
    right: np.ndarray
    left: np.ndarray

    @property
    def censored(self) -> bool:
        return bool(self.right.size or self.left.size)


def _loglik(family: str, eta: np.ndarray, s: _Sample) -> float:
    p = _natural(family, eta)
    with np.errstate(all="ignore"):
        ll = float(np.sum(_logpdf(family, p, s.events)))
        if s.right.size:
            ll += float(np.sum(_logsf(family, p, s.right)))
        if s.left.size:
            ll += float(np.sum(_logcdf(family, p, s.left)))
    return ll if math.isfinite(ll) else -math.inf


def _closed_form(family: str, x: np.ndarray) -> dict[str, float]:
    """Uncensored MLE with location 0."""
    lx = np.log(x)
    if family == "exponential":
        return {"mean": float(x.mean())}
    if family == "lognormal":
        mu = float(lx.mean())
        return {"mu": mu, "sigma": float(math.sqrt(np.mean((lx - mu) ** 2)))}
    if family == "gamma":
        s = math.log(float(x.mean())) - float(lx.mean())
        if not s > 0:
            raise FloatingPointError("gamma MLE undefined for a constant sample")
        k = (3 - s + math.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)  # Minka's start
        for _ in range(100):  # Newton on log k - digamma(k) = s
            f = math.log(k) - float(special.digamma(k)) - s
            fp = 1 / k - float(special.polygamma(1, k))
            k_new = k - f / fp
            if k_new <= 0:
                k_new = k / 2
            if abs(k_new - k) < 1e-13 * k:
                k = k_new
                break
            k = k_new
        return {"shape": k, "scale": float(x.mean()) / k}
    if family == "weibull":
        y = lx - lx.max()  # scale-free: x / max(x)
        mean_y = float(y.mean())

        def score(c: float) -> float:
            w = np.exp(c * y)
            return float(np.sum(w * y) / np.sum(w)) - 1.0 / c - mean_y

        lo, hi = 1e-3, 1.0
        while score(hi) < 0 and hi < 1e4:
            hi *= 2
        c = float(optimize.brentq(score, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500))
        scale = math.exp(float(lx.max()) + math.log(float(np.mean(np.exp(c * y)))) / c)
        return {"shape": c, "scale": scale}
    raise ValueError(f"unknown family {family!r}")


def _numeric_mle(
    family: str, s: _Sample, starts: Sequence[np.ndarray], thorough: bool = True
) -> tuple[np.ndarray, str | None]:
    """Maximise the (censored) likelihood from each start: BFGS, with a Nelder-Mead restart when
    ``thorough`` (the bootstrap uses one start and BFGS only)."""

    def neg(e: np.ndarray) -> float:
        v = -_loglik(family, e, s)
        return v if math.isfinite(v) else 1e300

    best: tuple[np.ndarray, float] | None = None
    last_msg = None
    for st in starts:
        if not np.all(np.isfinite(st)) or neg(st) >= 1e300:
            continue
        res = optimize.minimize(neg, st, method="BFGS", options={"gtol": 1e-7})
        if thorough:
            nm = optimize.minimize(
                neg,
                res.x,
                method="Nelder-Mead",
                options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 2000},
            )
            if nm.fun < res.fun - 1e-9:
                res = optimize.minimize(neg, nm.x, method="BFGS", options={"gtol": 1e-7})
                res = res if res.fun <= nm.fun else nm
        last_msg = str(res.message)
        if res.fun < 1e300 and (best is None or res.fun < best[1]):
            best = (res.x, float(res.fun))
    if best is None or not math.isfinite(best[1]):
        return np.full(_N_PARAMS[family], np.nan), f"optimiser failed: {last_msg}"
    return best[0], None


def _se_natural(family: str, eta: np.ndarray, cov: np.ndarray) -> dict[str, float]:
    names = list(_natural(family, eta).keys())
    out: dict[str, float] = {}
    for i, nm in enumerate(names):
        v = float(cov[i, i])
        sd = math.sqrt(v) if v >= 0 else math.nan
        if family == "lognormal" and nm == "mu":
            out[nm] = sd
        else:
            out[nm] = float(np.exp(eta[i])) * sd
    return out


def _ks(family: str, p: dict[str, float], s: _Sample) -> float:
    if not s.censored:
        x = np.sort(s.events)
        n = x.size
        F = _cdf(family, p, x)
        i = np.arange(1, n + 1)
        return float(max(np.max(i / n - F), np.max(F - (i - 1) / n)))
    times = np.concatenate([s.events, s.right, s.left])
    ev = np.concatenate(
        [np.ones(s.events.size, bool), np.zeros(s.right.size, bool), np.ones(s.left.size, bool)]
    )
    km = kaplan_meier(times, ev)
    # The Kaplan-Meier tail with a handful of contacts at risk is pure noise (it drops to 0 at a
    # last event), so the distance is taken where at least _KS_MIN_AT_RISK are at risk.
    ev_rows = km[(km["events"] > 0) & (km["at_risk"] >= _KS_MIN_AT_RISK)]
    if ev_rows.empty:
        return math.nan
    t = ev_rows["time"].to_numpy(dtype=float)
    F_after = 1.0 - ev_rows["survival"].to_numpy(dtype=float)
    F_before = np.concatenate([[0.0], F_after[:-1]])
    Fm = _cdf(family, p, t)
    return float(max(np.max(np.abs(F_after - Fm)), np.max(np.abs(F_before - Fm))))


def _fit_family(family: str, s: _Sample) -> FamilyFit:
    nan = math.nan
    k = _N_PARAMS[family]
    try:
        if not s.censored:
            p = _closed_form(family, s.events)
            eta = _eta(family, p)
        else:
            starts: list[np.ndarray] = []
            pool = np.concatenate([s.events, s.right, s.left])
            pool = pool[pool > 0]
            for sample in (pool, s.events[s.events > 0]):
                if sample.size >= 2 and np.ptp(sample) > 0:
                    with np.errstate(all="ignore"):
                        starts.append(_eta(family, _closed_form(family, sample)))
            if family == "exponential" and (s.events.size + s.left.size) > 0:
                total = float(np.sum(s.events) + np.sum(s.right) + np.sum(s.left))
                starts.insert(0, np.array([math.log(total / (s.events.size + s.left.size))]))
            eta, msg = _numeric_mle(family, s, starts)
            if msg:
                raise FloatingPointError(msg)
            p = _natural(family, eta)
        ll = _loglik(family, eta, s)
        if not math.isfinite(ll):
            raise FloatingPointError("log-likelihood not finite at the estimate")
        H = hessian(lambda e: -_loglik(family, e, s), eta)
        problems = []
        se = {nm: nan for nm in p}
        if np.all(np.isfinite(H)) and np.linalg.eigvalsh(H).min() > 0:
            se = _se_natural(family, eta, np.linalg.inv(H))
        else:
            problems.append("observed information not positive definite")
        mean, cv = family_mean_cv(family, p)
        return FamilyFit(
            family=family,
            params=p,
            se=se,
            loglik=ll,
            aic=2 * k - 2 * ll,
            mean=mean,
            cv=cv,
            ks=_ks(family, p, s),
            converged=not problems,
            message="ok" if not problems else "; ".join(problems),
        )
    except (
        FloatingPointError,
        ValueError,
        OverflowError,
        ZeroDivisionError,
        np.linalg.LinAlgError,
    ) as exc:
        return FamilyFit(family, {}, {}, nan, nan, nan, nan, nan, False, f"fit failed: {exc}")


def _delta_ci(
    family: str, eta: np.ndarray, s: _Sample
) -> tuple[tuple[float, float], tuple[float, float]]:
    H = hessian(lambda e: -_loglik(family, e, s), eta)
    try:
        cov = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        nan = math.nan
        return (nan, nan), (nan, nan)

    def logmom(e: np.ndarray) -> np.ndarray:
        m, c = family_mean_cv(family, _natural(family, e))
        return np.array([math.log(m), math.log(c) if c > 0 else -math.inf])

    base = logmom(eta)
    J = np.empty((2, eta.size))
    h = 1e-6
    for i in range(eta.size):
        e = np.zeros(eta.size)
        e[i] = h
        J[:, i] = (logmom(eta + e) - logmom(eta - e)) / (2 * h)
    var = np.einsum("ij,jk,ik->i", J, cov, J)
    sd = np.sqrt(np.clip(var, 0, None))
    mean_ci = (float(np.exp(base[0] - _Z95 * sd[0])), float(np.exp(base[0] + _Z95 * sd[0])))
    if family == "exponential":
        cv_ci = (1.0, 1.0)
    else:
        cv_ci = (float(np.exp(base[1] - _Z95 * sd[1])), float(np.exp(base[1] + _Z95 * sd[1])))
    return mean_ci, cv_ci


def _select(
    s: _Sample,
    families: Sequence[str],
    B: int,
    rng: np.random.Generator | None,
    n_dropped: int,
    notes: list[str],
) -> DurationFit:
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(
            f"families must be a non-empty subset of {FAMILIES}, got {tuple(families)}"
        )
    fits = {f: _fit_family(f, s) for f in families}
    aic = {f: fit.aic for f, fit in fits.items()}
    ok = {f: fit for f, fit in fits.items() if fit.converged and math.isfinite(fit.aic)}
    n = s.events.size + s.right.size + s.left.size
    nan = math.nan
    if not ok:
        return DurationFit(
            family="",
            params={},
            se={},
            mean=nan,
            cv=nan,
            mean_ci95=(nan, nan),
            cv_ci95=(nan, nan),
            ci_method="",
            aic=aic,
            ks=nan,
            fits=fits,
            n=n,
            n_events=s.events.size + s.left.size,
            n_censored=s.right.size,
            n_dropped=n_dropped,
            censored=s.censored,
            converged=False,
            message="; ".join([*notes, "no family could be fitted"]),
        )
    chosen = min(ok, key=lambda f: ok[f].aic)
    best = ok[chosen]
    if B > 0:
        if rng is None:
            rng = np.random.default_rng(0)
        mean_ci, cv_ci, n_fail = _bootstrap_moments(chosen, best.params, s, B, rng)
        method = f"bootstrap percentile (B={B})"
        if n_fail:
            notes.append(f"{n_fail} of {B} bootstrap refits failed and were skipped")
    else:
        mean_ci, cv_ci = _delta_ci(chosen, _eta(chosen, best.params), s)
        method = "delta method (log-scale Wald)"
    return DurationFit(
        family=chosen,
        params=dict(best.params),
        se=dict(best.se),
        mean=best.mean,
        cv=best.cv,
        mean_ci95=mean_ci,
        cv_ci95=cv_ci,
        ci_method=method,
        aic=aic,
        ks=best.ks,
        fits=fits,
        n=n,
        n_events=s.events.size + s.left.size,
        n_censored=s.right.size,
        n_dropped=n_dropped,
        censored=s.censored,
        converged=True,
        message="; ".join(notes) if notes else "ok",
    )


def _bootstrap_moments(
    family: str, params: dict[str, float], s: _Sample, B: int, rng: np.random.Generator
) -> tuple[tuple[float, float], tuple[float, float], int]:
    times = np.concatenate([s.events, s.right, s.left])
    kind = np.concatenate(
        [np.zeros(s.events.size, int), np.ones(s.right.size, int), np.full(s.left.size, 2)]
    )
    means: list[float] = []
    cvs: list[float] = []
    fails = 0
    for _ in range(B):
        idx = rng.integers(0, times.size, times.size)
        t, kd = times[idx], kind[idx]
        bs = _Sample(t[kd == 0], t[kd == 1], t[kd == 2])
        if bs.events.size + bs.left.size == 0 or (not bs.censored and np.ptp(bs.events) == 0):
            fails += 1
            continue
        try:
            if bs.censored:
                eta, msg = _numeric_mle(family, bs, [_eta(family, params)], thorough=False)
                if msg:
                    raise FloatingPointError(msg)
                p = _natural(family, eta)
            else:
                p = _closed_form(family, bs.events)
            m, c = family_mean_cv(family, p)
        except (FloatingPointError, ValueError, OverflowError, ZeroDivisionError):
            fails += 1
            continue
        if not (math.isfinite(m) and math.isfinite(c)):
            fails += 1
            continue
        means.append(m)
        cvs.append(c)
    if not means:
        nan = math.nan
        return (nan, nan), (nan, nan), fails
    ms = np.asarray(means)
    cs = np.asarray(cvs)
    return (
        (float(np.quantile(ms, 0.025)), float(np.quantile(ms, 0.975))),
        (float(np.quantile(cs, 0.025)), float(np.quantile(cs, 0.975))),
        fails,
    )


# --------------------------------------------------------------------------------------------
# Public fitting functions
# --------------------------------------------------------------------------------------------


def fit_duration(
    x: ArrayLike,
    families: Sequence[str] = FAMILIES,
    *,
    B: int = 200,
    rng: np.random.Generator | None = None,
    nonpositive: str = "raise",
) -> DurationFit:
    """Fit complete (uncensored) durations with each family; choose the lowest AIC.

    Args:
        x: durations (> 0), in any unit; results are in the same unit.
        families: subset of ``FAMILIES`` to try.
        B: bootstrap resamples for the mean / cv intervals (0: delta method instead).
        rng: generator for the bootstrap; default ``numpy.random.default_rng(0)`` (reproducible).
        nonpositive: "raise" (default) or "drop" for values <= 0 (counted in ``n_dropped``).

    Returns:
        DurationFit; ``.to_scenario_dist()`` gives ``{"dist", "mean", "cv"}``.
    """
    arr = np.asarray(x, dtype=float).ravel()
    if not np.all(np.isfinite(arr)):
        raise ValueError("x contains NaN or infinite values")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    bad = arr <= 0
    notes: list[str] = []
    if bad.any():
        if nonpositive == "drop":
            notes.append(f"dropped {int(bad.sum())} non-positive value(s)")
            arr = arr[~bad]
        elif nonpositive == "raise":
            raise ValueError(
                f"x has {int(bad.sum())} non-positive value(s); pass nonpositive='drop' to drop them"
            )
        else:
            raise ValueError("nonpositive must be 'raise' or 'drop'")
    if arr.size < 2 or np.ptp(arr) == 0:
        raise ValueError("need at least 2 distinct positive durations")
    s = _Sample(arr, np.empty(0), np.empty(0))
    return _select(s, families, B, rng, int(bad.sum()), notes)


def fit_patience(
    wait: ArrayLike,
    abandoned: ArrayLike,
    families: Sequence[str] = ("exponential", "lognormal", "weibull"),
    *,
    B: int = 200,
    rng: np.random.Generator | None = None,
    resolution: float | None = None,
) -> DurationFit:
    """Fit customer patience from waits with abandonment as the event (right-censored MLE).

    An abandoned contact is an event at its wait; an answered contact is right-censored at its
    wait (its patience was longer). Answered contacts with zero wait are censored at 0 and carry no
    information: they are dropped and counted in ``n_dropped``. Abandonments recorded at wait 0
    happened somewhere in ``(0, resolution]`` (the clock's tick) and enter the likelihood as
    ``log F(resolution)``; ``resolution`` defaults to the smallest positive wait in the data.

    Args:
        wait: waiting time per contact (>= 0), any unit; results are in the same unit.
        abandoned: True where the contact abandoned.
        families: subset of ``FAMILIES`` to try.
        B: bootstrap resamples for mean / cv intervals (0: delta method).
        rng: generator for the bootstrap (default ``numpy.random.default_rng(0)``).
        resolution: time resolution of the waits (see above).

    Returns:
        DurationFit with ``censored=True``; ``mean`` is the mean patience.
    """
    w = np.asarray(wait, dtype=float).ravel()
    ab = np.asarray(abandoned).ravel()
    if w.size != ab.size:
        raise ValueError("wait and abandoned must have the same length")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("wait must be finite and >= 0")
    if ab.dtype != bool:
        if not np.all(np.isin(ab, [0, 1])):
            raise ValueError("abandoned must be boolean")
        ab = ab.astype(bool)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    zero_cens = (~ab) & (w == 0)
    zero_ev = ab & (w == 0)
    notes: list[str] = []
    if zero_cens.any():
        notes.append(
            f"dropped {int(zero_cens.sum())} answered contact(s) with zero wait (no information)"
        )
    left = np.empty(0)
    if zero_ev.any():
        if resolution is None:
            positive = w[w > 0]
            if positive.size == 0:
                raise ValueError("all waits are zero: patience cannot be estimated")
            resolution = float(positive.min())
        if not resolution > 0:
            raise ValueError("resolution must be > 0")
        left = np.full(int(zero_ev.sum()), float(resolution))
        notes.append(
            f"{int(zero_ev.sum())} abandonment(s) at wait 0 treated as within (0, {resolution:g}]"
        )
    s = _Sample(w[ab & (w > 0)], w[(~ab) & (w > 0)], left)
    if s.events.size + s.left.size == 0:
        raise ValueError("no abandonments: patience cannot be estimated (only a lower bound)")
    return _select(s, families, B, rng, int(zero_cens.sum()), notes)


def kaplan_meier(wait: ArrayLike, abandoned: ArrayLike) -> pd.DataFrame:
    """Kaplan-Meier estimate of the patience survival function S(t) = P(patience > t).

    At tied times events are counted before censorings (the usual convention).

    Returns:
        DataFrame with one row per distinct time: ``time``, ``at_risk``, ``events``,
        ``censored``, ``survival`` (after the time), ``se`` (Greenwood) and a 95% log-log
        interval ``lower``, ``upper``.
    """
    w = np.asarray(wait, dtype=float).ravel()
    ab = np.asarray(abandoned).ravel().astype(bool)
    if w.size != ab.size:
        raise ValueError("wait and abandoned must have the same length")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("wait must be finite and >= 0")
    if w.size == 0:
        return pd.DataFrame(
            columns=["time", "at_risk", "events", "censored", "survival", "se", "lower", "upper"]
        )
    times, inv = np.unique(w, return_inverse=True)
    events = np.bincount(inv, weights=ab.astype(float), minlength=times.size)
    total = np.bincount(inv, minlength=times.size).astype(float)
    cens = total - events
    at_risk = w.size - np.concatenate([[0.0], np.cumsum(total)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = 1.0 - events / at_risk
        surv = np.cumprod(factor)
        gw = np.cumsum(np.where(at_risk > events, events / (at_risk * (at_risk - events)), np.inf))
        se = surv * np.sqrt(gw)
        # log-log interval: S^exp(+-z * sqrt(gw) / log S)
        ll = np.log(-np.log(surv))
        half = _Z95 * np.sqrt(gw) / np.abs(np.log(surv))
        lower = np.exp(-np.exp(ll + half))
        upper = np.exp(-np.exp(ll - half))
    valid = np.isfinite(lower) & (surv > 0) & (surv < 1)
    lower = np.where(valid, lower, np.where(surv >= 1, 1.0, 0.0))
    upper = np.where(valid, upper, np.where(surv >= 1, 1.0, 0.0))
    return pd.DataFrame(
        {
            "time": times,
            "at_risk": at_risk.astype(int),
            "events": events.astype(int),
            "censored": cens.astype(int),
            "survival": surv,
            "se": se,
            "lower": lower,
            "upper": upper,
        }
    )


# --------------------------------------------------------------------------------------------
# Counts and proportions
# --------------------------------------------------------------------------------------------


def poisson_rate(count: int, exposure: float) -> tuple[float, tuple[float, float]]:
    """Rate ``count / exposure`` with the exact (Garwood) 95% interval.

    ``exposure`` is in any unit (e.g. hours); the rate is per that unit.
    """
    if count < 0 or int(count) != count:
        raise ValueError("count must be a non-negative integer")
    if not exposure > 0:
        raise ValueError("exposure must be > 0")
    k = int(count)
    lo = 0.0 if k == 0 else float(stats.chi2.ppf(0.025, 2 * k) / 2)
    hi = float(stats.chi2.ppf(0.975, 2 * k + 2) / 2)
    return k / exposure, (lo / exposure, hi / exposure)


def proportion(k: int, n: int) -> tuple[float, tuple[float, float]]:
    """Proportion ``k / n`` with the Wilson score 95% interval."""
    if n <= 0 or int(n) != n:
        raise ValueError("n must be a positive integer")
    if k < 0 or k > n or int(k) != k:
        raise ValueError("k must be an integer in [0, n]")
    p = k / n
    z2 = _Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return p, (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_ci(
    stat_fn: Callable[..., float],
    data: ArrayLike | tuple[ArrayLike, ...],
    rng: np.random.Generator,
    B: int = 200,
    level: float = 0.95,
) -> tuple[float, tuple[float, float]]:
    """Percentile bootstrap interval of a statistic.

    Args:
        stat_fn: statistic of the data (called as ``stat_fn(arr)``, or ``stat_fn(*arrays)`` when
            ``data`` is a tuple of equal-length arrays, which are resampled jointly by row).
        data: the sample (rows along axis 0).
        rng: generator for resampling (a ``numpy.random.Generator``; no default, to keep the
            seed explicit).
        B: resamples.
        level: interval coverage.

    Returns:
        ``(stat_fn(data), (lo, hi))``.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    if B < 1:
        raise ValueError("B must be >= 1")
    if isinstance(data, tuple):
        arrays = [np.asarray(a) for a in data]
        n = len(arrays[0])
        if any(len(a) != n for a in arrays):
            raise ValueError("arrays in data must have the same length")
        estimate = float(stat_fn(*arrays))
        reps = []
        for _ in range(B):
            idx = rng.integers(0, n, n)
            reps.append(float(stat_fn(*[a[idx] for a in arrays])))
    else:
        arr = np.asarray(data)
        n = len(arr)
        estimate = float(stat_fn(arr))
        reps = [float(stat_fn(arr[rng.integers(0, n, n)])) for _ in range(B)]
    r = np.asarray(reps)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return estimate, (math.nan, math.nan)
    a = (1 - level) / 2
    return estimate, (float(np.quantile(r, a)), float(np.quantile(r, 1 - a)))
