"""Analytic queueing references (steady state): Erlang B, Erlang C (M/M/n) and Erlang A (M/M/n+M).

Used to validate the simulator and for quick staffing estimates. Units: ``arrival_rate`` in
contacts per minute, ``mean_service``, ``mean_patience`` and thresholds in minutes; the formulas
only need the rates to share one time unit.

Notation: λ arrival rate, μ = 1/mean_service, θ = 1/mean_patience, n servers, a = λ/μ offered
load (Erlangs), ρ = a/n.

Erlang A follows Garnett, Mandelbaum & Reiman (2002) "Designing a call center with impatient
customers" and Mandelbaum & Zeltyn, "The M/M/n+G queue: summary of performance measures"
(exponential-patience case). With E = Erlang B(n, a) and

    A(x, y) = x e^y y^(-x) γ(x, y) = Σ_{k>=0} y^k / ((x+1)(x+2)...(x+k)),   x = nμ/θ, y = λ/θ,

    P(W > 0)          = A E / (1 + (A - 1) E)
    P(Ab | W > 0)     = 1/(ρA) + 1 - 1/ρ
    E[W] (all calls)  = P(Ab) / θ
    P(Sr, W <= t)     = P(W = 0) + π_n (x/(x+1)) [A(x+1, y) - e^{y(1-e^{-θt}) - (x+1)θt} A(x+1, y e^{-θt})]

where π_n = E / (1 + (A - 1) E) is the probability that all servers are busy with nobody
waiting. The last line is the closed form x e^y y^(-(x+1)) [γ(x+1, y) - γ(x+1, y e^{-θt})] written
with the series A, which stays finite where the incomplete gamma functions under- or overflow.
It follows from PASTA: an arrival finding m others waiting is served with probability
nμ/(nμ + (m+1)θ), and, given service, its wait is a sum of exponentials with rates
nμ + θ, ..., nμ + (m+1)θ. All series are summed in log space, so hundreds or thousands of servers
are fine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

__all__ = [
    "ErlangAResult",
    "ErlangCResult",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "erlang_c_agents_for_sla",
    "log_erlang_b",
]


def erlang_b(offered_load: float, servers: int) -> float:
    """Erlang B blocking probability for ``offered_load`` Erlangs on ``servers`` servers.

    Uses the stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)); values below the
    smallest double underflow to 0 (use :func:`log_erlang_b` when that matters).
    """
    _check_servers(servers)
    a = float(offered_load)
    if a < 0.0:
        raise ValueError(f"offered_load must be >= 0, got {a}")
    b = 1.0
    for k in range(1, servers + 1):
        b = a * b / (k + a * b)
    return b


def log_erlang_b(offered_load: float, servers: int) -> float:
    """Natural log of the Erlang B probability, exact in log space even when B underflows.

    Recursion on L(k) = log(1/B(k)) = log(1 + (k/a) e^{L(k-1)}), L(0) = 0.
    """
    _check_servers(servers)
    a = float(offered_load)
    if a < 0.0:
        raise ValueError(f"offered_load must be >= 0, got {a}")
    if servers == 0:
        return 0.0
    if a == 0.0:
        return -math.inf
    log_a = math.log(a)
    inv = 0.0
    for k in range(1, servers + 1):
        z = math.log(k) - log_a + inv
        inv = z + math.log1p(math.exp(-z)) if z > 0.0 else math.log1p(math.exp(z))
    return -inv


@dataclass(frozen=True)
class ErlangCResult:
    """Steady-state M/M/n (Erlang C) measures.

    Attributes:
        arrival_rate: λ, contacts per minute.
        mean_service: 1/μ, minutes.
        servers: n.
        offered_load: a = λ/μ, Erlangs.
        p_wait: probability an arrival waits (the Erlang C value); 1 if unstable.
        mean_wait: mean wait in queue over all arrivals, minutes; ``inf`` if unstable (a >= n).
        occupancy: a/n, capped at 1.
    """

    arrival_rate: float
    mean_service: float
    servers: int
    offered_load: float
    p_wait: float
    mean_wait: float
    occupancy: float

    @property
    def stable(self) -> bool:
        """Whether the queue has a steady state (a < n)."""
        return self.offered_load < self.servers

    @property
    def mean_queue(self) -> float:
        """Mean number waiting (Little's law: λ E[W])."""
        return self.arrival_rate * self.mean_wait

    def service_level(self, threshold: float) -> float:
        """P(wait <= threshold), threshold in minutes: 1 - C exp(-(n - a) t / mean_service)."""
        if threshold < 0:
            return 0.0
        if not self.stable:
            return 0.0
        rate = (self.servers - self.offered_load) / self.mean_service
        return 1.0 - self.p_wait * math.exp(-rate * threshold)


def erlang_c(arrival_rate: float, mean_service: float, servers: int) -> ErlangCResult:
    """Erlang C measures for an M/M/n queue.

    Args:
        arrival_rate: λ, contacts per minute (>= 0).
        mean_service: mean handle time, minutes (> 0).
        servers: n (>= 1).
    """
    lam, s = _check_rates(arrival_rate, mean_service)
    _check_servers(servers)
    if servers < 1:
        raise ValueError("servers must be >= 1")
    a = lam * s
    if a >= servers:
        return ErlangCResult(lam, s, servers, a, 1.0, math.inf, 1.0)
    b = erlang_b(a, servers)
    c = servers * b / (servers - a * (1.0 - b))
    mean_wait = c * s / (servers - a)
    return ErlangCResult(lam, s, servers, a, c, mean_wait, a / servers)


def erlang_c_agents_for_sla(
    arrival_rate: float, mean_service: float, threshold: float, target: float
) -> int:
    """Smallest number of servers n with Erlang C service level P(wait <= threshold) >= target.

    Args:
        arrival_rate: λ, contacts per minute.
        mean_service: minutes.
        threshold: answer-time threshold, minutes (>= 0).
        target: required service level in [0, 1).
    """
    lam, s = _check_rates(arrival_rate, mean_service)
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target must be in [0, 1), got {target}")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    a = lam * s
    if a == 0.0:
        return 1 if target > 0.0 else 0
    # Erlang B incrementally up to the first stable n, then test each n.
    n0 = math.floor(a) + 1
    b = 1.0
    for k in range(1, n0):
        b = a * b / (k + a * b)
    n = n0 - 1
    while True:
        n += 1
        b = a * b / (n + a * b)
        c = n * b / (n - a * (1.0 - b))
        sl = 1.0 - c * math.exp(-(n - a) * threshold / s)
        if sl >= target:
            return n


@dataclass(frozen=True)
class ErlangAResult:
    """Steady-state M/M/n+M (Erlang A) measures.

    Attributes:
        arrival_rate: λ, contacts per minute.
        mean_service: 1/μ, minutes.
        servers: n.
        mean_patience: 1/θ, minutes.
        p_wait: probability an arrival finds all servers busy.
        p_abandon: probability an arrival abandons.
        mean_wait: mean time in queue over all arrivals (served and abandoned), minutes.
        occupancy: λ (1 - P(Ab)) mean_service / n.
    """

    arrival_rate: float
    mean_service: float
    servers: int
    mean_patience: float
    p_wait: float
    p_abandon: float
    mean_wait: float
    occupancy: float
    _log_pi_n: float = field(default=math.nan, repr=False)
    _log_a1: float = field(default=math.nan, repr=False)

    @property
    def mean_queue(self) -> float:
        """Mean number waiting (Little's law: λ E[W])."""
        return self.arrival_rate * self.mean_wait

    def service_level(self, threshold: float) -> float:
        """P(answered and wait <= threshold) over all arrivals; threshold in minutes."""
        if threshold < 0:
            return 0.0
        p0 = 1.0 - self.p_wait
        if self.servers == 0:
            return 0.0
        if math.isinf(self.mean_patience):
            return erlang_c(self.arrival_rate, self.mean_service, self.servers).service_level(
                threshold
            )
        if math.isinf(threshold):
            return 1.0 - self.p_abandon
        theta = 1.0 / self.mean_patience
        x = self.servers / (self.mean_service * theta)
        y = self.arrival_rate / theta
        if y == 0.0:
            return 1.0
        q = math.exp(-theta * threshold)
        log_ratio = y * (-math.expm1(-theta * threshold)) - (x + 1.0) * theta * threshold
        log_ratio += _log_a(x + 1.0, y * q) - self._log_a1
        waited_served = math.exp(self._log_pi_n + self._log_a1) * x / (x + 1.0)
        waited_served *= -math.expm1(min(log_ratio, 0.0))
        return min(1.0, p0 + waited_served)


def _series_log_terms(x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices k and log terms of A(x, y) = Σ_{k>=0} Π_{j=1..k} y/(x+j).

    The log-ratios log(y/(x+j)) = log1p((y-x-j)/(x+j)) are accumulated with a cumulative sum,
    which keeps the terms accurate to ~1e-14 relative even when x and y are 1e8 (patience far
    longer than service), where differences of ``gammaln`` would lose ~7 digits.
    """
    # Terms grow while y > x + k and then decay; cover the peak plus a wide tail.
    k_peak = max(0.0, y - x)
    width = math.sqrt(max(x, y)) + 1.0
    # Near the peak the log-terms fall like a Gaussian of s.d. <= width; 15 s.d. leave < e^-112.
    k_max = int(k_peak + 15.0 * width + 60.0)
    j = np.arange(1, k_max + 1, dtype=np.float64)
    r = (y - x - j) / (x + j)  # y/(x+j) - 1
    steps = np.where(np.abs(r) < 0.5, np.log1p(np.maximum(r, -0.5)), math.log(y) - np.log(x + j))
    log_terms = np.empty(k_max + 1)
    log_terms[0] = 0.0
    np.cumsum(steps, out=log_terms[1:])
    return np.arange(k_max + 1, dtype=np.float64), log_terms


def _log_a(x: float, y: float) -> float:
    """log A(x, y), A(x, y) = x e^y y^(-x) γ(x, y) = Σ_{k>=0} y^k / ((x+1)...(x+k))."""
    if y <= 0.0:
        return 0.0
    return float(logsumexp(_series_log_terms(x, y)[1]))


def erlang_a(
    arrival_rate: float, mean_service: float, servers: int, mean_patience: float
) -> ErlangAResult:
    """Erlang A (M/M/n+M) measures.

    Args:
        arrival_rate: λ, contacts per minute (>= 0).
        mean_service: mean handle time, minutes (> 0).
        servers: n (>= 0).
        mean_patience: mean of the exponential patience, minutes (> 0; ``inf`` gives Erlang C).
    """
    lam, s = _check_rates(arrival_rate, mean_service)
    _check_servers(servers)
    if not mean_patience > 0.0:
        raise ValueError(f"mean_patience must be > 0, got {mean_patience}")
    n = servers
    if n == 0:
        p_ab = 1.0 if lam > 0 else 0.0
        return ErlangAResult(
            lam, s, 0, mean_patience, p_ab, p_ab, mean_patience * p_ab, 0.0, 0.0, 0.0
        )
    if math.isinf(mean_patience):
        c = erlang_c(lam, s, n)
        return ErlangAResult(
            lam, s, n, mean_patience, c.p_wait, 0.0, c.mean_wait, c.occupancy, math.nan, math.nan
        )
    if lam == 0.0:
        return ErlangAResult(lam, s, n, mean_patience, 0.0, 0.0, 0.0, 0.0, -math.inf, 0.0)
    theta = 1.0 / mean_patience
    a = lam * s
    rho = a / n
    x = n / (s * theta)  # nμ/θ
    y = lam / theta  # λ/θ
    log_inv_e = -log_erlang_b(a, n)  # log(1/E) > 0 for n >= 1
    k, log_terms = _series_log_terms(x, y)
    log_a = float(logsumexp(log_terms))
    # 1/π_n = (1/E - 1) + A  (π_n: all servers busy, nobody waiting)
    log_inv_pi_n = float(np.logaddexp(log_inv_e + math.log(-math.expm1(-log_inv_e)), log_a))
    log_pi_n = -log_inv_pi_n
    p_wait = math.exp(log_pi_n + log_a)
    # P(Ab | W>0) = 1/(ρA) + 1 - 1/ρ. That difference cancels badly when patience >> service
    # (it is ~1e-7 while its parts are ~1), so evaluate the identical series
    # P(Ab | W>0) = Σ_m w_m (m+1)/(x+m+1) / Σ_m w_m, w_m the terms of A(x, y): an arrival that
    # finds m others waiting abandons with probability (m+1)θ / (nμ + (m+1)θ).
    weights = np.exp(log_terms - log_a)
    p_ab_given_wait = float(np.dot(weights, (k + 1.0) / (x + k + 1.0)))
    if rho > 0.0 and not 0.0 < p_ab_given_wait <= 1.0:  # pragma: no cover - defensive
        p_ab_given_wait = max(0.0, 1.0 / (rho * math.exp(log_a)) + 1.0 - 1.0 / rho)
    p_ab = p_wait * p_ab_given_wait
    mean_wait = p_ab / theta
    occupancy = lam * (1.0 - p_ab) * s / n
    return ErlangAResult(
        lam, s, n, mean_patience, p_wait, p_ab, mean_wait, occupancy, log_pi_n, _log_a(x + 1.0, y)
    )


def _check_rates(arrival_rate: float, mean_service: float) -> tuple[float, float]:
    lam = float(arrival_rate)
    s = float(mean_service)
    if not (lam >= 0.0 and math.isfinite(lam)):
        raise ValueError(f"arrival_rate must be finite and >= 0, got {arrival_rate}")
    if not (s > 0.0 and math.isfinite(s)):
        raise ValueError(f"mean_service must be finite and > 0, got {mean_service}")
    return lam, s


def _check_servers(servers: int) -> None:
    if int(servers) != servers or servers < 0:
        raise ValueError(f"servers must be a non-negative integer, got {servers}")
