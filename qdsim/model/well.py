"""l = 0 ground state of the finite spherical well with BenDaniel-Duke matching (physics.md B.1).

Inside (r < R): u(r) = r psi(r) = A sin(k r); outside: u(r) = A sin(k R) exp(-kappa (r - R)).
The level solves the pole-free matching condition in xi = k R in (0, pi),

    g(xi) = sin(xi) [1 - (m_in/m_out)(1 + kappa R)] - xi cos(xi) = 0,

scaled by 1/(1 + kappa R) so that an infinite offset becomes sin(xi) = 0 without a branch.
The root is found by fixed-count bisection on the bracket of physics.md §D (fixed shape under jit)
and differentiated implicitly (custom JVP: dxi = -(dg/dp . dp)/(dg/dxi)), never through the
iterations. Lengths in nm, energies in eV, masses in m0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qdsim.constants import HBAR2_2M0_eV_nm2
from qdsim.status import Status

__all__ = ["WellState", "bound_state_exists", "critical_radius_nm", "ground_state"]

_PI = np.pi
#: kappa R below which a level is flagged NEAR_THRESHOLD (wavefunction reaches > 10 R).
NEAR_THRESHOLD_KAPPA_R = 0.1


class WellState(NamedTuple):
    """Ground state of one carrier. Lengths nm, energies eV.

    `u_in(r) = amp_in sin(k r)` for r <= R and `u_out(r) = amp_out exp(-kappa (r - R))` for r > R,
    with u = r psi and 4 pi int u^2 dr = 1. For an infinite offset `amp_out` is 0 and `kappa` a
    finite placeholder.
    """

    energy_eV: jax.Array
    k_nm: jax.Array
    kappa_nm: jax.Array
    amp_in: jax.Array
    amp_out: jax.Array
    c_in: jax.Array  # hbar^2 / (2 m_in), eV nm^2
    c_out: jax.Array  # hbar^2 / (2 m_out), eV nm^2
    status: jax.Array


# Odd Taylor coefficients of sin: (-1)^k / (2k + 1)!, k = 0..12 (truncation < 1e-20 on |t| <= pi/2).
_SIN_COEFFS = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(13))


def _sin_poly(t):
    """sin(t) for |t| <= pi/2 by its Taylor polynomial (vectorised FMAs; XLA's float64 sin on
    CPU is scalar and ~17x slower than exp)."""
    t2 = t * t
    acc = jnp.full_like(t, _SIN_COEFFS[-1])
    for c in _SIN_COEFFS[-2::-1]:
        acc = acc * t2 + c
    return t * acc


def sin_0_pi(theta):
    """sin(theta) for theta in [0, pi] (reflection about pi/2, then the polynomial)."""
    return _sin_poly(jnp.where(theta > 0.5 * _PI, _PI - theta, theta))


def cos_0_pi(theta):
    """cos(theta) for theta in [0, pi] = sin(pi/2 - theta)."""
    return _sin_poly(0.5 * _PI - theta)


def _safe_sqrt(a):
    pos = a > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, a, 1.0)), 0.0)


def _kappa_R(xi, sr, xi0):
    """kappa R = sqrt(m_out/m_in) sqrt(xi0^2 - xi^2); xi0 = inf handled by the caller."""
    return sr * _safe_sqrt(xi0 * xi0 - xi * xi)


def _match(xi, mr, sr, xi0):
    """Matching function g(xi) / (1 + kappa R); xi0 = +inf means an impenetrable wall."""
    inf = jnp.isinf(xi0)
    xi0_s = jnp.where(inf, 2.0 * _PI, xi0)
    t = jnp.where(inf, 0.0, 1.0 / (1.0 + _kappa_R(xi, sr, xi0_s)))
    return sin_0_pi(xi) * (t - mr) - xi * cos_0_pi(xi) * t


def _bisect(mr, sr, xi0, iters):
    hi0 = jnp.minimum(xi0, _PI)
    lo0 = jnp.zeros_like(hi0)

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        neg = _match(mid, mr, sr, xi0) < 0
        return jnp.where(neg, mid, lo), jnp.where(neg, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, body, (lo0, hi0))
    return 0.5 * (lo + hi)


def _make_root(iters: int):
    @jax.custom_jvp
    def root(mr, sr, xi0):
        return _bisect(mr, sr, xi0, iters)

    @root.defjvp
    def root_jvp(primals, tangents):
        xi = root(*primals)
        g_xi = jax.jvp(lambda x: _match(x, *primals), (xi,), (jnp.ones_like(xi),))[1]
        _, g_p = jax.jvp(lambda *a: _match(xi, *a), primals, tangents)
        return xi, -g_p / g_xi

    return root


_ROOTS: dict[int, object] = {}


def _root(mr, sr, xi0, iters):
    if iters not in _ROOTS:
        _ROOTS[iters] = _make_root(iters)
    return _ROOTS[iters](mr, sr, xi0)


def _xi0(m_in, V0_eV, R_nm):
    """k0 R = R sqrt(2 m_in V0)/hbar; +inf for an infinite offset (with zero derivative)."""
    inf = jnp.isinf(V0_eV)
    V0_s = jnp.where(inf, 1.0, V0_eV)
    return jnp.where(
        inf, jnp.inf, R_nm * jnp.sqrt(jnp.maximum(V0_s, 0.0) * m_in / HBAR2_2M0_eV_nm2)
    )


def bound_state_exists(m_in, m_out, V0_eV, R_nm):
    """True where an l = 0 level lies below the barrier (physics.md A.2 / §D test)."""
    xi0 = _xi0(m_in, V0_eV, R_nm)
    mr, sr = m_in / m_out, jnp.sqrt(m_out / m_in)
    top = jnp.minimum(xi0, _PI)
    return jnp.isinf(V0_eV) | (_match(top, mr, sr, xi0) > 0)


def critical_radius_nm(m_in, m_out, V0_eV):
    """Smallest radius (nm) that binds an l = 0 level: k0 R = xi_c, xi_c cot xi_c = 1 - m_in/m_out.

    NumPy/SciPy (not jittable); for documentation, tests and error messages.
    """
    from scipy.optimize import brentq

    m_in, m_out, V0 = float(m_in), float(m_out), float(V0_eV)
    if not np.isfinite(V0):
        return 0.0
    a = 1.0 - m_in / m_out
    f = lambda xi: xi * np.cos(xi) - a * np.sin(xi)  # noqa: E731  (xi cot xi = a, times sin)
    xi_c = brentq(f, 1e-12, np.pi - 1e-15, xtol=1e-15, rtol=1e-15)
    return xi_c / np.sqrt(V0 * m_in / HBAR2_2M0_eV_nm2)


def ground_state(m_in, m_out, V0_eV, R_nm, root_iters: int = 64, no_bound_flag=None) -> WellState:
    """Ground state of the finite spherical well (jittable, differentiable by implicit JVP).

    **Arguments:** masses in m0, offset `V0_eV` (eV, > 0; inf allowed), radius `R_nm` (nm),
    `root_iters` (static), `no_bound_flag` (Status bit to set when no level is bound).

    **Returns:** `WellState`. Where no level is bound, the state is computed for an infinite
    wall (finite numbers, no NaN in gradients) and `status` carries `no_bound_flag`; the caller
    masks the outputs.
    """
    no_bound_flag = Status.NO_BOUND_ELECTRON if no_bound_flag is None else no_bound_flag
    c_in = HBAR2_2M0_eV_nm2 / m_in
    c_out = HBAR2_2M0_eV_nm2 / m_out
    mr, sr = m_in / m_out, jnp.sqrt(m_out / m_in)
    xi0 = _xi0(m_in, V0_eV, R_nm)
    bound = jnp.isinf(V0_eV) | (_match(jnp.minimum(xi0, _PI), mr, sr, xi0) > 0)
    xi0 = jnp.where(bound, xi0, jnp.inf)  # safe stand-in: infinite wall
    inf = jnp.isinf(xi0)

    xi = _root(mr, sr, xi0, root_iters)
    k = xi / R_nm
    kR = _kappa_R(xi, sr, jnp.where(inf, 2.0 * _PI, xi0))
    kappa = jnp.where(inf, 1.0 / R_nm, kR / R_nm)  # finite placeholder when the wall is infinite
    s = sin_0_pi(xi)
    norm_in = 0.5 * R_nm - 2.0 * s * cos_0_pi(xi) / (4.0 * k)  # sin(2 xi) = 2 sin cos
    norm_out = jnp.where(inf, 0.0, s * s / (2.0 * kappa))
    amp = 1.0 / jnp.sqrt(4.0 * _PI * (norm_in + norm_out))
    amp_out = jnp.where(inf, 0.0, amp * s)

    status = jnp.where(bound, 0, int(no_bound_flag))
    status = status | jnp.where(jnp.isfinite(xi) & (xi > 0), 0, int(Status.ROOT_NOT_CONVERGED))
    near = bound & ~inf & (kR < NEAR_THRESHOLD_KAPPA_R)
    status = status | jnp.where(near, int(Status.NEAR_THRESHOLD), 0)
    return WellState(
        energy_eV=c_in * k * k,
        k_nm=k,
        kappa_nm=kappa,
        amp_in=amp,
        amp_out=amp_out,
        c_in=c_in,
        c_out=c_out,
        status=status.astype(jnp.int32),
    )
