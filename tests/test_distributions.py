"""Distributions know their moments: sampled and inverse-CDF moments match them (4 SE)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.distributions import Deterministic, Exponential, Gamma, Lognormal, Weibull

N = 200_000
CASES = [Exponential(mean=5.0), Lognormal(mean=5.0, cv=1.5), Gamma(mean=2.0, cv=0.5), Weibull(mean=3.0, cv=0.8), Deterministic(mean=4.0)]


@pytest.mark.parametrize("dist", CASES, ids=lambda d: d.dist)
def test_sampled_and_quantile_moments_match(dist: object) -> None:
    rng = np.random.default_rng(1)
    for x in (dist.sample(rng, N), dist.quantile(rng.random(N))):  # type: ignore[attr-defined]
        sd = np.sqrt(dist.variance)  # type: ignore[attr-defined]
        assert abs(x.mean() - dist.mean) <= 4 * sd / np.sqrt(N) + 1e-12  # type: ignore[attr-defined]
        if sd > 0:
            # the sample variance's SE needs the fourth moment; the lognormal's is heavy, so use a
            # bound from the sample itself
            se_var = np.std((x - x.mean()) ** 2) / np.sqrt(N)
            assert abs(x.var() - dist.variance) <= 4 * se_var  # type: ignore[attr-defined]


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ValueError):
        Lognormal(mean=-1.0, cv=1.0)
    with pytest.raises(ValueError):
        Gamma(mean=1.0, cv=0.0)
