"""Numerical derivatives shared by the maximum-likelihood fits (standard errors come from the
inverse Hessian of the negative log-likelihood in log-parameter space)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def hessian(f: Callable[[np.ndarray], float], eta: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Hessian of ``f`` at ``eta`` by the 4-point second-difference formula (symmetric)."""
    k = eta.size
    H = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            ei = np.zeros(k)
            ej = np.zeros(k)
            ei[i] = h
            ej[j] = h
            H[i, j] = H[j, i] = (
                f(eta + ei + ej) - f(eta + ei - ej) - f(eta - ei + ej) + f(eta - ei - ej)
            ) / (4 * h * h)
    return H


def hessian_from_grad(
    grad: Callable[[np.ndarray], np.ndarray], eta: np.ndarray, h: float = 1e-5, relative: bool = False
) -> np.ndarray:
    """Hessian from central differences of the gradient, symmetrised. ``relative`` scales the
    step of each coordinate by max(1, |eta_j|)."""
    k = len(eta)
    H = np.zeros((k, k))
    for j in range(k):
        e = np.zeros(k)
        step = h * max(1.0, abs(eta[j])) if relative else h
        e[j] = step
        H[:, j] = (grad(eta + e) - grad(eta - e)) / (2 * step)
    return 0.5 * (H + H.T)
