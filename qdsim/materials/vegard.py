"""Vegard interpolation with bowing (jittable): q(x) = (1 - x) q0 + x q1 - b x (1 - x)."""

from __future__ import annotations

__all__ = ["vegard"]


def vegard(q0, q1, x, bowing=0.0):
    """Interpolate between q0 (x = 0) and q1 (x = 1); exact at both ends. Works on JAX and NumPy."""
    return (1.0 - x) * q0 + x * q1 - bowing * x * (1.0 - x)
