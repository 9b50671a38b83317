"""Parametric distributions used for durations and money amounts.

Every distribution is specified by its mean (and, where it has one, its coefficient of
variation ``cv`` = standard deviation / mean), because that is how practitioners state
handle times, transit times and order values. Each knows its moments so tests can check
sampled moments against them. Units are those of the field holding the distribution
(``handle_time_min`` is in minutes, ``transit_days`` in days, ``order_value_usd`` in dollars).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field
from scipy import special

from sim.input_checks import InputModel


class _Dist(InputModel):
    """Base of the distributions: the scenario's field checks (sim.input_checks) apply."""

    @property
    def variance(self) -> float:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError

    def quantile(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF at probabilities ``u`` in (0, 1): draws from given uniforms (common random numbers)."""
        raise NotImplementedError


class Deterministic(_Dist):
    """Always ``mean``."""

    dist: Literal["deterministic"] = "deterministic"
    mean: float = Field(ge=0)

    @property
    def variance(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.mean)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        return np.full(np.shape(u), self.mean)


class Exponential(_Dist):
    """Exponential with the given mean (cv is 1)."""

    dist: Literal["exponential"] = "exponential"
    mean: float = Field(gt=0)

    @property
    def variance(self) -> float:
        return self.mean**2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean, size)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        return -self.mean * np.log1p(-np.asarray(u))


class _MeanCV(_Dist):
    """A two-parameter family stated by its mean and coefficient of variation."""

    mean: float = Field(gt=0)
    cv: float = Field(gt=0, le=20)

    @property
    def variance(self) -> float:
        return (self.cv * self.mean) ** 2


class Lognormal(_MeanCV):
    """Lognormal with the given mean and coefficient of variation."""

    dist: Literal["lognormal"] = "lognormal"

    @property
    def log_params(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal."""
        sigma2 = math.log1p(self.cv**2)
        return math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        mu, sigma = self.log_params
        return rng.lognormal(mu, sigma, size)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        mu, sigma = self.log_params
        return np.exp(mu + sigma * special.ndtri(u))


class Gamma(_MeanCV):
    """Gamma with the given mean and coefficient of variation (shape = 1/cv^2)."""

    dist: Literal["gamma"] = "gamma"

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, self.mean / shape, size)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        shape = 1.0 / self.cv**2
        return special.gammaincinv(shape, u) * (self.mean / shape)


class Weibull(_MeanCV):
    """Weibull with the given mean and coefficient of variation."""

    dist: Literal["weibull"] = "weibull"
    cv: float = Field(gt=0.05, le=20)

    @property
    def shape(self) -> float:
        """Weibull shape k solving cv(k) = self.cv (Newton on log-gamma terms)."""
        return weibull_shape_for_cv(self.cv)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        k = self.shape
        scale = self.mean / math.gamma(1 + 1 / k)
        return scale * rng.weibull(k, size)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        k = self.shape
        scale = self.mean / math.gamma(1 + 1 / k)
        return scale * (-np.log1p(-np.asarray(u))) ** (1 / k)


def weibull_shape_for_cv(cv: float) -> float:
    """The Weibull shape parameter whose coefficient of variation is ``cv``."""

    def cv_of(k: float) -> float:
        g1 = special.gammaln(1 + 1 / k)
        g2 = special.gammaln(1 + 2 / k)
        return math.sqrt(max(math.exp(g2 - 2 * g1) - 1, 0.0))

    lo, hi = 0.05, 200.0
    for _ in range(200):  # bisection: cv is decreasing in k
        mid = math.sqrt(lo * hi)
        if cv_of(mid) > cv:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


Dist = Annotated[
    Deterministic | Exponential | Lognormal | Gamma | Weibull,
    Field(discriminator="dist"),
]
