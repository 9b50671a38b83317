"""Buy-till-you-die models fitted by maximum likelihood.

Models
------
* **BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive a
  customer buys at Poisson rate ``lambda ~ Gamma(r, rate=alpha)``; after each *repeat* purchase
  they drop out with probability ``p ~ Beta(a, b)``.
* **Pareto/NBD** (Schmittlein, Morrison & Colombo 1987): same purchase process; an exponential
  lifetime with rate ``mu ~ Gamma(s, rate=beta)``. The likelihood is the hypergeometric form of
  Fader & Hardie's note "A note on deriving the Pareto/NBD model and related expressions" (2005),
  evaluated in log space (log-sum-exp, and the difference of the two 2F1 terms taken as
  ``l1 + log1p(-exp(l2 - l1))``) and choosing the branch (alpha >= beta or alpha < beta) whose
  hypergeometric argument lies in [0, 1).
* **Gamma-Gamma** spend model (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie 2013 note
  "The Gamma-Gamma model of monetary value"): transaction values ``z ~ Gamma(p, rate=nu)``,
  ``nu ~ Gamma(q, rate=v)``; fitted on the mean repeat-transaction value of customers with at
  least one repeat purchase.

Units
-----
``frequency`` is a count of repeat purchases; ``recency`` and ``T`` are in one time unit of the
caller's choice (CDNOW uses weeks), and ``alpha`` / ``beta`` are in that same unit (``r/alpha`` is
the mean purchase rate per unit). ``monetary_value`` and ``v`` are in a currency; ``p`` and ``q`` are
dimensionless.

Estimation
----------
All parameters are strictly positive and are estimated on the log scale (``theta = exp(eta)``) with
L-BFGS-B, followed by a Newton polish that uses a numerical Hessian (central differences of the
gradient; the gradient is analytic for BG/NBD and Gamma-Gamma, central differences for
Pareto/NBD). Standard errors come from the inverse of the observed information **in log space**;
the natural-scale SE is the delta-method value ``se(theta) = theta * se(eta)`` and the reported 95%
interval is the log-scale Wald interval ``exp(eta +/- 1.96 se(eta))`` (asymmetric, always positive).

A fit is reported ``converged=False`` (never raised) when the optimiser fails, a parameter sits at
its search bound (``1e-8`` or ``1e8``), the Hessian is not finite or not positive definite, a
parameter is practically unidentified (``se(log theta) > 5``), the remaining Newton decrement is
not negligible, or there are fewer than 5 observations per parameter. Malformed input (negative
counts, recency > T, mismatched lengths, NaN) raises ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, special

from calibration.numerics import hessian, hessian_from_grad

__all__ = [
    "FitResult",
    "bgnbd_conditional_expected_purchases",
    "bgnbd_expected_purchases",
    "bgnbd_loglik",
    "bgnbd_p_alive",
    "bgnbd_simulate",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_pareto_nbd",
    "gamma_gamma_expected_value",
    "gamma_gamma_loglik",
    "pareto_nbd_loglik",
    "rfm_summary",
]

_Z95 = 1.959963984540054
_LOG_LO = math.log(1e-8)
_LOG_HI = math.log(1e8)
_BOUND_TOL = 1e-3  # |eta - bound| below this counts as "at the bound"
_MAX_SE_LOG = 5.0  # se(log theta) above this: parameter practically unidentified
_MIN_N_PER_PARAM = 5
_NEWTON_DECREMENT_TOL = 1e-6  # expected remaining log-likelihood gain at a converged optimum


# --------------------------------------------------------------------------------------------
# Result type
# --------------------------------------------------------------------------------------------


def _json_float(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


@dataclass(frozen=True)
class FitResult:
    """Outcome of one maximum-likelihood fit.

    Attributes:
        params: point estimates on the natural scale, by name (units: see module docstring).
        se: delta-method standard errors on the natural scale (``theta * se(log theta)``).
        ci95: log-scale Wald 95% intervals ``(lo, hi)`` on the natural scale.
        loglik: maximised log-likelihood (natural log, summed over observations).
        n: number of observations (customers) used.
        converged: True only if every check in the module docstring passed.
        message: "ok" or the reasons the fit is not trustworthy, separated by "; ".
        aic: ``2 k - 2 loglik``.
        model: model name ("bgnbd", "pareto_nbd", "gamma_gamma").
    """

    params: dict[str, float]
    se: dict[str, float]
    ci95: dict[str, tuple[float, float]]
    loglik: float
    n: int
    converged: bool
    message: str
    aic: float
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (non-finite numbers become ``None``)."""
        return {
            "model": self.model,
            "params": {k: _json_float(v) for k, v in self.params.items()},
            "se": {k: _json_float(v) for k, v in self.se.items()},
            "ci95": {k: [_json_float(lo), _json_float(hi)] for k, (lo, hi) in self.ci95.items()},
            "loglik": _json_float(self.loglik),
            "n": int(self.n),
            "converged": bool(self.converged),
            "message": self.message,
            "aic": _json_float(self.aic),
            "extra": {
                k: (_json_float(v) if isinstance(v, float) else v) for k, v in self.extra.items()
            },
        }


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def _as_float_array(name: str, values: ArrayLike) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_rft(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[np.ndarray, ...]:
    x = _as_float_array("frequency", frequency)
    tx = _as_float_array("recency", recency)
    t = _as_float_array("T", T)
    if not (x.size == tx.size == t.size):
        raise ValueError(
            f"frequency, recency and T must have the same length, got {x.size}, {tx.size}, {t.size}"
        )
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be non-negative integers (repeat purchase counts)")
    if np.any(tx < 0):
        raise ValueError("recency must be >= 0")
    if np.any(t <= 0):
        raise ValueError("T must be > 0")
    if np.any(tx > t * (1 + 1e-12)):
        raise ValueError("recency must be <= T for every customer")
    if np.any((x == 0) & (tx != 0)):
        raise ValueError("customers with frequency 0 must have recency 0")
    return x, tx, t


# --------------------------------------------------------------------------------------------
# Generic log-space MLE machinery
# --------------------------------------------------------------------------------------------


def _num_grad(f: Callable[[np.ndarray], float], eta: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.empty_like(eta)
    for i in range(eta.size):
        e = np.zeros_like(eta)
        e[i] = h
        g[i] = (f(eta + e) - f(eta - e)) / (2 * h)
    return g


def _hessian(
    f: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray] | None,
    eta: np.ndarray,
) -> np.ndarray:
    """Numerical Hessian of ``f`` at ``eta``: central differences of the gradient if given,
    else the 4-point second-difference formula on ``f``."""
    return hessian_from_grad(grad, eta) if grad is not None else hessian(f, eta)


@dataclass
class _Problem:
    model: str
    names: tuple[str, ...]
    n: int
    negll: Callable[[np.ndarray], float]  # total negative log-likelihood of log-parameters
    grad: Callable[[np.ndarray], np.ndarray] | None  # its gradient (None: numerical)
    starts: list[np.ndarray]


def _nan_result(model: str, names: Sequence[str], n: int, message: str) -> FitResult:
    nan = float("nan")
    return FitResult(
        params={k: nan for k in names},
        se={k: nan for k in names},
        ci95={k: (nan, nan) for k in names},
        loglik=nan,
        n=n,
        converged=False,
        message=message,
        aic=nan,
        model=model,
    )


def _optimise_from(prob: _Problem, start: np.ndarray) -> tuple[np.ndarray, float, str | None]:
    """L-BFGS-B then Newton polish from one start. Returns (eta, negll, optimiser note)."""
    k = start.size
    scale = 1.0 / max(prob.n, 1)

    def fun(eta: np.ndarray) -> tuple[float, np.ndarray]:
        v = prob.negll(eta)
        if not math.isfinite(v):
            return 1e300, np.zeros(k)
        g = prob.grad(eta) if prob.grad is not None else _num_grad(prob.negll, eta)
        return v * scale, g * scale

    bounds = [(_LOG_LO, _LOG_HI)] * k
    res = optimize.minimize(
        fun,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 5000, "ftol": 1e-13, "gtol": 1e-9},
    )
    eta = np.clip(res.x, _LOG_LO, _LOG_HI)
    f = prob.negll(eta)
    if not math.isfinite(f):
        return eta, f, f"optimiser ended at a non-finite log-likelihood ({res.message})"
    # L-BFGS-B often reports an abnormal line-search termination at the precision limit, so its
    # status is not trusted either way: the optimum is judged after the Newton polish (Newton
    # decrement, bounds, Hessian). The optimiser's own message is kept for the report.
    problem = None if res.success else f"L-BFGS-B: {res.message}"

    # Newton polish in log space (only for interior points with a positive-definite Hessian).
    for _ in range(20):
        if np.any(eta - _LOG_LO < _BOUND_TOL) or np.any(_LOG_HI - eta < _BOUND_TOL):
            break
        g = prob.grad(eta) if prob.grad is not None else _num_grad(prob.negll, eta)
        H = _hessian(prob.negll, prob.grad, eta)
        if not np.all(np.isfinite(H)) or not np.all(np.isfinite(g)):
            break
        try:
            L = np.linalg.cholesky(H)
        except np.linalg.LinAlgError:
            break
        step = -np.linalg.solve(L.T, np.linalg.solve(L, g))
        decrement = float(-g @ step)
        if decrement < 1e-12:
            break
        t = 1.0
        improved = False
        while t > 1e-6:
            cand = np.clip(eta + t * step, _LOG_LO, _LOG_HI)
            fc = prob.negll(cand)
            if math.isfinite(fc) and fc <= f + 1e-12:
                eta, f, improved = cand, fc, True
                break
            t *= 0.5
        if not improved:
            break
    return eta, f, problem


def _run_mle(prob: _Problem) -> FitResult:
    k = len(prob.names)
    best: tuple[np.ndarray, float, str | None] | None = None
    for start in prob.starts:
        eta, f, problem = _optimise_from(prob, np.asarray(start, dtype=float))
        if best is None or (math.isfinite(f) and (not math.isfinite(best[1]) or f < best[1])):
            best = (eta, f, problem)
        if math.isfinite(f) and _interior(eta) and _is_stationary(prob, eta):
            # A clean interior optimum from the first good start: no need for more starts.
            break
    assert best is not None
    eta, f, opt_note = best
    problems: list[str] = []
    if prob.n < _MIN_N_PER_PARAM * k:
        problems.append(
            f"too few observations (n={prob.n}) for {k} parameters (need >= {_MIN_N_PER_PARAM * k})"
        )

    params = {nm: float(np.exp(e)) for nm, e in zip(prob.names, eta, strict=True)}
    loglik = -f if math.isfinite(f) else float("nan")
    nan = float("nan")
    se = {nm: nan for nm in prob.names}
    ci = {nm: (nan, nan) for nm in prob.names}

    at_bound = [
        nm
        for nm, e in zip(prob.names, eta, strict=True)
        if e - _LOG_LO < _BOUND_TOL or _LOG_HI - e < _BOUND_TOL
    ]
    if at_bound:
        problems.append("parameter(s) at the search bound [1e-8, 1e8]: " + ", ".join(at_bound))

    if math.isfinite(f):
        H = _hessian(prob.negll, prob.grad, eta)
        if not np.all(np.isfinite(H)):
            problems.append("Hessian of the log-likelihood is not finite")
        else:
            eig = np.linalg.eigvalsh(H)
            if eig.min() <= 1e-10 * max(abs(eig.max()), 1.0):
                problems.append(
                    "Hessian is not positive definite (flat or non-identified likelihood)"
                )
            else:
                cov = np.linalg.inv(H)
                se_log = np.sqrt(np.clip(np.diag(cov), 0, None))
                g = prob.grad(eta) if prob.grad is not None else _num_grad(prob.negll, eta)
                decrement = float(g @ cov @ g)
                if not math.isfinite(decrement) or decrement > _NEWTON_DECREMENT_TOL:
                    why = f"; {opt_note}" if opt_note else ""
                    problems.append(
                        f"optimiser did not reach a stationary point (Newton decrement {decrement:.2g}{why})"
                    )
                for i, nm in enumerate(prob.names):
                    if not math.isfinite(se_log[i]):
                        problems.append(f"standard error of {nm} is not finite")
                        continue
                    se[nm] = params[nm] * float(se_log[i])
                    ci[nm] = (
                        float(np.exp(eta[i] - _Z95 * se_log[i])),
                        float(np.exp(eta[i] + _Z95 * se_log[i])),
                    )
                    if se_log[i] > _MAX_SE_LOG:
                        problems.append(
                            f"{nm} practically unidentified (se of log {nm} = {se_log[i]:.3g})"
                        )
    else:
        problems.append("log-likelihood is not finite at the estimate")

    return FitResult(
        params=params,
        se=se,
        ci95=ci,
        loglik=float(loglik),
        n=prob.n,
        converged=not problems,
        message="ok" if not problems else "; ".join(problems),
        aic=float(2 * k - 2 * loglik) if math.isfinite(loglik) else nan,
        model=prob.model,
        extra={"optimizer_note": opt_note or "ok"},
    )


def _is_stationary(prob: _Problem, eta: np.ndarray) -> bool:
    """Positive-definite Hessian and a negligible Newton decrement at ``eta``."""
    H = _hessian(prob.negll, prob.grad, eta)
    if not np.all(np.isfinite(H)):
        return False
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return False
    g = prob.grad(eta) if prob.grad is not None else _num_grad(prob.negll, eta)
    step = np.linalg.solve(L.T, np.linalg.solve(L, g))
    return bool(np.isfinite(g @ step) and g @ step <= _NEWTON_DECREMENT_TOL)


def _interior(eta: np.ndarray) -> bool:
    return bool(np.all(eta - _LOG_LO > _BOUND_TOL) and np.all(_LOG_HI - eta > _BOUND_TOL))


# --------------------------------------------------------------------------------------------
# RFM summary
# --------------------------------------------------------------------------------------------


def rfm_summary(
    orders: pd.DataFrame,
    customer_col: str,
    time_col: str,
    value_col: str | None,
    observation_end: pd.Timestamp,
    time_unit_days: float = 1.0,
) -> pd.DataFrame:
    """Customer-level frequency / recency / T / monetary value from an order log.

    Orders are first collapsed to one purchase per customer and calendar day (values summed),
    as in the CLV literature (Fader & Hardie's CDNOW note), and orders after ``observation_end``
    are ignored.

    Args:
        orders: one row per order.
        customer_col: customer id column.
        time_col: order timestamp column (datetime-like; tz-aware timestamps use their local day).
        value_col: order value column (currency), or None to skip monetary value (reported 0).
        observation_end: end of the observation window (same tz-awareness as ``time_col``).
        time_unit_days: length of one time unit in days (1 = days, 7 = weeks).

    Returns:
        DataFrame indexed by customer with ``frequency`` (repeat purchase days, int),
        ``recency`` (first to last purchase day, in time units), ``T`` (first purchase day to
        ``observation_end``'s day, in time units) and ``monetary_value`` (mean value per repeat
        purchase day; 0 when frequency is 0).
    """
    missing = [
        c for c in (customer_col, time_col, value_col) if c is not None and c not in orders.columns
    ]
    if missing:
        raise ValueError(f"orders is missing column(s): {missing}")
    if not time_unit_days > 0:
        raise ValueError("time_unit_days must be > 0")
    ts = pd.to_datetime(orders[time_col])
    if ts.isna().any():
        raise ValueError(f"{time_col} has missing or unparseable timestamps")
    if orders[customer_col].isna().any():
        raise ValueError(f"{customer_col} has missing values")
    end = pd.Timestamp(observation_end)
    frame = pd.DataFrame(
        {
            "customer": orders[customer_col].to_numpy(),
            "day": ts.dt.normalize().to_numpy(),
            "value": (pd.to_numeric(orders[value_col]).to_numpy(dtype=float) if value_col else 0.0),
        }
    )
    if value_col and frame["value"].isna().any():
        raise ValueError(f"{value_col} has missing values")
    frame = frame[(ts <= end).to_numpy()]
    daily = frame.groupby(["customer", "day"], sort=True, as_index=False)["value"].sum()
    g = daily.groupby("customer", sort=True)
    first = g["day"].min()
    last = g["day"].max()
    n_days = g["day"].size()
    total = g["value"].sum()
    first_value = daily.loc[g["day"].idxmin(), ["customer", "value"]].set_index("customer")["value"]
    end_day = end.normalize()
    unit = pd.Timedelta(days=time_unit_days)
    frequency = (n_days - 1).astype(int)
    repeat_value = total - first_value.reindex(total.index)
    monetary = np.where(frequency > 0, repeat_value / frequency.where(frequency > 0, 1), 0.0)
    out = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last - first) / unit,
            "T": (end_day - first) / unit,
            "monetary_value": monetary,
        }
    )
    out.index.name = customer_col
    return out


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------

_BGNBD_NAMES = ("r", "alpha", "a", "b")


def _bgnbd_terms(
    theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, with_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-customer log-likelihood (and its gradient in theta, shape (4, n)).

    Terms that depend on the customer only through the integer ``x`` (log-gamma, log-beta and
    digamma values) are evaluated once per distinct ``x`` and gathered, which is what makes fits
    on hundreds of thousands of customers fast.
    """
    r, alpha, a, b = theta
    ux, inv = np.unique(x, return_inverse=True)
    upos = ux > 0
    pos = x > 0
    lbab = special.betaln(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        u_A = special.gammaln(r + ux) - special.gammaln(r)
        u_b1 = special.betaln(a, b + ux) - lbab
        u_b2 = np.where(upos, special.betaln(a + 1, b + ux - 1) - lbab, 0.0)
    rx = r + x
    log_aT = np.log(alpha + T)
    log_atx = np.log(alpha + tx)
    t1 = u_b1[inv] - rx * log_aT
    t2 = np.where(pos, u_b2[inv] - rx * log_atx, -np.inf)
    ll = u_A[inv] + r * np.log(alpha) + np.logaddexp(t1, t2)
    if not with_grad:
        return ll, None
    w2 = np.where(pos, special.expit(t2 - t1), 0.0)
    w1 = 1.0 - w2
    psi = special.digamma
    with np.errstate(invalid="ignore"):
        u_dA_dr = psi(r + ux) - psi(r)
        u_dt1_da = psi(a + b) - psi(a + b + ux)
        u_dt1_db = psi(b + ux) - psi(a + b + ux) - psi(b) + psi(a + b)
        u_dt2_da = np.where(upos, psi(a + 1) - psi(a + b + ux) - psi(a) + psi(a + b), 0.0)
        u_dt2_db = np.where(upos, psi(b + ux - 1) - psi(a + b + ux) - psi(b) + psi(a + b), 0.0)
    grad = np.stack(
        [
            u_dA_dr[inv] + np.log(alpha) - w1 * log_aT - w2 * log_atx,
            r / alpha - rx * (w1 / (alpha + T) + w2 / (alpha + tx)),
            w1 * u_dt1_da[inv] + w2 * u_dt2_da[inv],
            w1 * u_dt1_db[inv] + w2 * u_dt2_db[inv],
        ]
    )
    return ll, grad


def bgnbd_loglik(
    params: dict[str, float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (FHL 2005 eq. 6), without the constant terms."""
    x, tx, t = _check_rft(frequency, recency, T)
    theta = np.array([params[k] for k in _BGNBD_NAMES], dtype=float)
    return _bgnbd_terms(theta, x, tx, t, with_grad=False)[0]


def _rft_for_fit(
    model: str, label: str, names: Sequence[str], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FitResult | tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], np.ndarray]:
    """Checked (frequency, recency, T) for a fit and their compressed form:
    ``((x, tx, t), compressed columns, weights)``, or the not-converged result when the data
    cannot identify the model."""
    x, tx, t = _check_rft(frequency, recency, T)
    n = int(x.size)
    if n == 0:
        return _nan_result(model, names, 0, "no customers")
    if not np.any(x > 0):
        return _nan_result(model, names, n, f"no repeat purchases in the data: {label} parameters are not identified")
    cols, w = _compress(x, tx, t)
    return (x, tx, t), cols, w


def _compress(*cols: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Unique rows and their counts (speeds up fits on discretised data such as CDNOW)."""
    stacked = np.column_stack(cols)
    uniq, counts = np.unique(stacked, axis=0, return_counts=True)
    if uniq.shape[0] > 0.8 * stacked.shape[0]:
        return cols, np.ones(stacked.shape[0])
    return tuple(uniq[:, i] for i in range(uniq.shape[1])), counts.astype(float)


def fit_bgnbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FitResult:
    """Fit the BG/NBD model by maximum likelihood.

    Args:
        frequency: repeat purchases per customer (non-negative integers).
        recency: time of the last repeat purchase since the first purchase (0 if none), in the
            caller's time unit.
        T: time from the first purchase to the end of observation, same unit.

    Returns:
        FitResult with params ``r`` (shape, dimensionless), ``alpha`` (time unit), ``a``, ``b``
        (dimensionless). See the module docstring for SEs, intervals and convergence checks.
    """
    data = _rft_for_fit("bgnbd", "BG/NBD", _BGNBD_NAMES, frequency, recency, T)
    if isinstance(data, FitResult):
        return data
    (x, _, t), (xc, txc, tc), w = data
    n = int(x.size)

    def negll(eta: np.ndarray) -> float:
        ll, _ = _bgnbd_terms(np.exp(eta), xc, txc, tc, with_grad=False)
        return float(-(w @ ll))

    def grad(eta: np.ndarray) -> np.ndarray:
        theta = np.exp(eta)
        _, g = _bgnbd_terms(theta, xc, txc, tc, with_grad=True)
        assert g is not None
        return -(g @ w) * theta

    rate = x.sum() / t.sum()
    starts = [
        np.log([1.0, 1.0 / max(rate, 1e-6), 1.0, 3.0]),
        np.log([0.5, 0.5 / max(rate, 1e-6), 0.5, 1.0]),
        np.log([1.0, 1.0, 1.0, 1.0]),
    ]
    return _run_mle(_Problem("bgnbd", _BGNBD_NAMES, n, negll, grad, starts))


def bgnbd_expected_purchases(params: dict[str, float], t: ArrayLike) -> np.ndarray:
    """Expected repeat purchases in (0, t] for a new customer, E[X(t)] (FHL 2005 eq. 9).

    ``t`` is in the time unit of ``alpha``. The formula's factor (a+b-1)/(a-1) has a removable
    singularity at a = 1; a is nudged by 1e-9 there.
    """
    r, alpha, a, b = (float(params[k]) for k in _BGNBD_NAMES)
    if abs(a - 1.0) < 1e-9:
        a = 1.0 + 1e-9
    tt = np.asarray(t, dtype=float)
    z = tt / (alpha + tt)
    hyp = special.hyp2f1(r, b, a + b - 1.0, z)
    return (a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + tt)) ** r * hyp)


def bgnbd_conditional_expected_purchases(
    params: dict[str, float], t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """Expected repeat purchases in (T, T + t] of a customer with ``frequency`` x, ``recency`` tx
    and age ``T`` at the end of calibration, E[Y(t) | x, tx, T] (FHL 2005 eq. 10; lifetimes'
    ``conditional_expected_number_of_purchases_up_to_time``). Times in the unit of ``alpha``."""
    r, alpha, a, b = (float(params[k]) for k in _BGNBD_NAMES)
    if abs(a - 1.0) < 1e-9:
        a = 1.0 + 1e-9
    x = np.asarray(frequency, dtype=float)
    tx = np.asarray(recency, dtype=float)
    TT = np.asarray(T, dtype=float)
    tt = np.asarray(t, dtype=float)
    z = tt / (alpha + TT + tt)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1.0, z)
    num = (a + b + x - 1.0) / (a - 1.0) * (1.0 - ((alpha + TT) / (alpha + TT + tt)) ** (r + x) * hyp)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where(x > 0, a / np.maximum(b + x - 1.0, 1e-300) * ((alpha + TT) / (alpha + tx)) ** (r + x), 0.0)
    return np.asarray(num / (1.0 + odds), dtype=float)


def bgnbd_p_alive(
    params: dict[str, float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """P(customer still alive at T | frequency, recency, T) under BG/NBD (FHL 2005 eq. 12).

    Customers without repeat purchases are alive with probability 1 (the model lets them drop
    out only after a repeat purchase).
    """
    x, tx, t = _check_rft(frequency, recency, T)
    r, alpha, a, b = (float(params[k]) for k in _BGNBD_NAMES)
    out = np.ones_like(x)
    pos = x > 0
    xp = x[pos]
    log_odds = (
        np.log(a)
        - np.log(b + xp - 1.0)
        + (r + xp) * (np.log(alpha + t[pos]) - np.log(alpha + tx[pos]))
    )
    out[pos] = special.expit(-log_odds)
    return out


def bgnbd_simulate(
    params: dict[str, float], n_customers: int, T: float | ArrayLike, rng: np.random.Generator
) -> pd.DataFrame:
    """Draw (frequency, recency, T) from the generative BG/NBD model.

    Each customer makes a first purchase at time 0, then buys at Poisson rate
    ``lambda ~ Gamma(r, rate=alpha)`` and after each repeat purchase drops out with probability
    ``p ~ Beta(a, b)``. Exact and vectorised: the number of repeat purchases before dropout is
    Geometric(p); the purchases seen by T are ``min(Poisson(lambda T), J)``; given N(T)=n arrivals,
    the x-th arrival time is ``T * Beta(x, n - x + 1)``.

    Args:
        params: r, alpha, a, b (alpha in the unit of T).
        n_customers: number of customers.
        T: observation length per customer (scalar or array of length n_customers).
        rng: the generator to draw from (a ``numpy.random.Generator``).

    Returns:
        DataFrame with columns frequency (int), recency, T.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    r, alpha, a, b = (float(params[k]) for k in _BGNBD_NAMES)
    if min(r, alpha, a, b) <= 0:
        raise ValueError("BG/NBD parameters must be > 0")
    n = int(n_customers)
    t = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    if np.any(t <= 0):
        raise ValueError("T must be > 0")
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    p = np.clip(p, 1e-300, 1.0)
    n_arrivals = rng.poisson(lam * t)
    j = rng.geometric(p)
    x = np.minimum(n_arrivals, j)
    rec = np.zeros(n)
    pos = x > 0
    rec[pos] = t[pos] * rng.beta(x[pos], n_arrivals[pos] - x[pos] + 1)
    return pd.DataFrame({"frequency": x.astype(int), "recency": rec, "T": t})


# --------------------------------------------------------------------------------------------
# Pareto/NBD
# --------------------------------------------------------------------------------------------

_PNBD_NAMES = ("r", "alpha", "s", "beta")


def _log_hyp2f1(
    a: float | np.ndarray, b: float | np.ndarray, c: float | np.ndarray, z: np.ndarray
) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(special.hyp2f1(a, b, c, z))


def _pnbd_ll(theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        ll = _pnbd_ll_raw(theta, x, tx, T)
    return np.where(np.isnan(ll), -np.inf, ll)


def _pnbd_ll_raw(theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, s, beta = theta
    rsx = r + s + x
    if alpha >= beta:
        big, hb = alpha, s + 1.0
        diff = alpha - beta
    else:
        big, hb = beta, r + x
        diff = beta - alpha
    l1 = _log_hyp2f1(rsx, hb, rsx + 1.0, diff / (big + tx)) - rsx * np.log(big + tx)
    l2 = _log_hyp2f1(rsx, hb, rsx + 1.0, diff / (big + T)) - rsx * np.log(big + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A0 = exp(l1) - exp(l2) >= 0 (it is an integral over (t_x, T)); 0 when t_x == T.
        log_a0 = l1 + np.log1p(-np.exp(np.minimum(l2 - l1, 0.0)))
    log_a0 = np.where(tx >= T, -np.inf, log_a0)
    first = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    second = np.log(s) - np.log(rsx) + log_a0
    return (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        + np.logaddexp(first, second)
    )


def pareto_nbd_loglik(
    params: dict[str, float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """Per-customer Pareto/NBD log-likelihood (Fader & Hardie 2005 note, eq. 22 form)."""
    x, tx, t = _check_rft(frequency, recency, T)
    theta = np.array([params[k] for k in _PNBD_NAMES], dtype=float)
    return _pnbd_ll(theta, x, tx, t)


def fit_pareto_nbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FitResult:
    """Fit the Pareto/NBD model by maximum likelihood.

    Args: as :func:`fit_bgnbd`.

    Returns:
        FitResult with params ``r``, ``alpha`` (purchase rate heterogeneity; alpha in the time
        unit) and ``s``, ``beta`` (dropout rate heterogeneity; beta in the time unit).
    """
    data = _rft_for_fit("pareto_nbd", "Pareto/NBD", _PNBD_NAMES, frequency, recency, T)
    if isinstance(data, FitResult):
        return data
    (x, _, t), (xc, txc, tc), w = data
    n = int(x.size)

    def negll(eta: np.ndarray) -> float:
        ll = _pnbd_ll(np.exp(eta), xc, txc, tc)
        v = float(-(w @ ll))
        return v if math.isfinite(v) else float("inf")

    rate = x.sum() / t.sum()
    mean_t = float(t.mean())
    starts = [
        np.log([1.0, 1.0 / max(rate, 1e-6), 1.0, mean_t]),
        np.log([0.5, 0.5 / max(rate, 1e-6), 0.5, mean_t]),
        np.log([1.0, 1.0, 1.0, 1.0]),
    ]
    return _run_mle(_Problem("pareto_nbd", _PNBD_NAMES, n, negll, None, starts))


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------

_GG_NAMES = ("p", "q", "v")


def _gg_terms(
    theta: np.ndarray, x: np.ndarray, m: np.ndarray, with_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    p, q, v = theta
    px = p * x
    lvxm = np.log(v + x * m)
    ll = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * lvxm
    )
    if not with_grad:
        return ll, None
    psi = special.digamma
    d_p = x * (psi(px + q) - psi(px) + np.log(m) + np.log(x) - lvxm)
    d_q = psi(px + q) - psi(q) + np.log(v) - lvxm
    d_v = q / v - (px + q) / (v + x * m)
    return ll, np.stack([d_p, d_q, d_v])


def gamma_gamma_loglik(
    params: dict[str, float], frequency: ArrayLike, monetary_value: ArrayLike
) -> np.ndarray:
    """Per-customer log density of the mean spend ``monetary_value`` given ``frequency`` > 0
    transactions (Fader & Hardie 2013 note, eq. 3; includes the Jacobian, so it is a proper
    log density in 1/currency)."""
    x, m = _check_gg(frequency, monetary_value)
    theta = np.array([params[k] for k in _GG_NAMES], dtype=float)
    return _gg_terms(theta, x, m, with_grad=False)[0]


def _check_gg(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = _as_float_array("frequency", frequency)
    m = _as_float_array("monetary_value", monetary_value)
    if x.size != m.size:
        raise ValueError("frequency and monetary_value must have the same length")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be non-negative integers")
    if np.any(m < 0):
        raise ValueError("monetary_value must be >= 0")
    keep = x > 0
    x, m = x[keep], m[keep]
    if np.any(m <= 0):
        raise ValueError("monetary_value must be > 0 for customers with frequency > 0")
    return x, m


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike) -> FitResult:
    """Fit the Gamma-Gamma spend model by maximum likelihood.

    Only customers with ``frequency > 0`` are used (``monetary_value`` is their mean repeat
    transaction value, in a currency). Returns params ``p``, ``q`` (dimensionless) and ``v``
    (currency); the mean transaction value in the population is ``p v / (q - 1)`` for q > 1.
    """
    x, m = _check_gg(frequency, monetary_value)
    n = int(x.size)
    if n < 2:
        return _nan_result(
            "gamma_gamma", _GG_NAMES, n, f"need at least 2 customers with repeat purchases, got {n}"
        )
    if np.all(m == m[0]):
        return _nan_result(
            "gamma_gamma",
            _GG_NAMES,
            n,
            "all monetary values are equal: spread parameters not identified",
        )
    (xc, mc), w = _compress(x, m)

    def negll(eta: np.ndarray) -> float:
        ll, _ = _gg_terms(np.exp(eta), xc, mc, with_grad=False)
        v = float(-(w @ ll))
        return v if math.isfinite(v) else float("inf")

    def grad(eta: np.ndarray) -> np.ndarray:
        theta = np.exp(eta)
        _, g = _gg_terms(theta, xc, mc, with_grad=True)
        assert g is not None
        return -(g @ w) * theta

    mean_m = float(np.average(m))
    cv2 = float(np.var(m) / mean_m**2) if mean_m > 0 else 1.0
    q0 = 1.0 + 2.0 / max(cv2, 1e-3)
    starts = [
        np.log([2.0, q0, mean_m * (q0 - 1.0) / 2.0]),
        np.log([1.0, 1.0, mean_m]),
        np.log([5.0, 3.0, 10.0]),
    ]
    return _run_mle(_Problem("gamma_gamma", _GG_NAMES, n, negll, grad, starts))


def gamma_gamma_expected_value(
    params: dict[str, float], frequency: ArrayLike, monetary_value: ArrayLike
) -> np.ndarray:
    """Conditional expected value of a customer's future transactions,
    ``E[Z | p, q, v, x, mbar] = p (v + x mbar) / (p x + q - 1)`` (FHL 2005 "RFM and CLV" eq. 5).

    Customers with frequency 0 get the population mean ``p v / (q - 1)``. Requires q > 1
    (otherwise the population mean is infinite and ValueError is raised). Currency units.
    """
    p, q, v = (float(params[k]) for k in _GG_NAMES)
    if q <= 1:
        raise ValueError(f"q must be > 1 for a finite expected value, got {q}")
    x = _as_float_array("frequency", frequency)
    m = _as_float_array("monetary_value", monetary_value)
    if x.size != m.size:
        raise ValueError("frequency and monetary_value must have the same length")
    m = np.where(x > 0, m, 0.0)
    return p * (v + x * m) / (p * x + q - 1.0)
