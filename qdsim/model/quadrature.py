"""Static Gauss-Legendre nodes (NumPy, built at trace time from the static `SolverConfig`)."""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["gauss_legendre_01"]


@functools.lru_cache(maxsize=32)
def gauss_legendre_01(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights of order `n` on [0, 1] (float64 NumPy arrays)."""
    if n < 2:
        raise ValueError(f"quadrature order must be >= 2, got {n}")
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w
