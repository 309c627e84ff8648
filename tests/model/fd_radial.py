"""Flux-conserving finite-difference radial solver (l = 0) for a finite spherical well.

Independent check of the BenDaniel-Duke root (physics.md B.1). With u = r psi the radial problem
is NOT simply -(c u')' + V u = E u when the mass jumps: the 3-D operator -div(c grad psi),
c = hbar^2/(2 m(r)), gives -(c u')' + (c'/r) u + V u, i.e. an extra delta term
(c_out - c_in)/R delta(r - R) u, because BDD makes c psi' (not c u') continuous. The solver
therefore discretises the conservative 3-D form

    -(1/r^2) d/dr [r^2 c(r) dpsi/dr] + V(r) psi = E psi,   psi(r_max) = 0,

three-point, uniform grid, R on a node, the flux r^2 c psi' taken at cell midpoints (in-dot c for
r < R, matrix c for r > R): the discrete flux is continuous across R by construction (second
order in h). This is a finite-volume scheme (control volumes with r^2 weights, r = 0 an
unknown with zero flux); scaled by the square roots of the control volumes (variables ~ r psi = u)
the matrix is symmetric tridiagonal. Lowest eigenvalue by ``scipy.linalg.eigh_tridiagonal``;
Richardson extrapolation in h^2 removes the leading errors (three grids: ~1e-12 eV at R = 5 nm).

Reusable by the JAX tests (no qdsim import). Units: eV, nm, masses in m0.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.constants as sc
from scipy.linalg import eigh_tridiagonal

HBAR2_2M0_EV_NM2 = sc.hbar**2 / (2.0 * sc.m_e) / sc.e * 1e18

__all__ = ["fd_ground_level_eV", "fd_ground_level_richardson_eV"]


def fd_ground_level_eV(
    m_in: float,
    m_out: float,
    V0_eV: float,
    radius_nm: float,
    n_inside: int,
    r_max_nm: float | None = None,
) -> float:
    """Lowest l = 0 level [eV] on a grid of spacing h = R/n_inside (no extrapolation).

    r_max defaults to R + 30/kappa0 with kappa0 = sqrt(2 m_out V0)/hbar, rounded up to a whole
    number of cells (the truncation error ~ exp(-2 kappa (r_max - R)) is then negligible for
    levels not too close to threshold; pass a larger r_max_nm near threshold).
    """
    R = radius_nm
    h = R / n_inside
    if r_max_nm is None:
        kappa0 = math.sqrt(V0_eV * m_out / HBAR2_2M0_EV_NM2)
        r_max_nm = R + 30.0 / kappa0
    n_cells = max(n_inside + 1, math.ceil(r_max_nm / h))
    # unknowns psi_j at r_j = j h, j = 0 .. n_cells-1 (psi(r_max) = 0); r = 0 is an unknown
    # with a natural (zero-flux) condition. Control volumes [r_{j-1/2}, r_{j+1/2}] cut at 0.
    r_node = np.arange(n_cells) * h
    lo = np.maximum(r_node - 0.5 * h, 0.0)
    hi = r_node + 0.5 * h
    vol = (hi**3 - lo**3) / 3.0  # int r^2 dr over the control volume
    # potential integrated over the control volume (exact for the step at R, which is a node)
    V_int = V0_eV * (hi**3 - np.clip(lo, R, None) ** 3).clip(min=0.0) / 3.0
    r_mid = hi  # faces r_{j+1/2}, j = 0 .. n_cells-1 (the last face couples to psi = 0)
    c_mid = np.where(r_mid < R, HBAR2_2M0_EV_NM2 / m_in, HBAR2_2M0_EV_NM2 / m_out)
    flux = c_mid * r_mid**2 / h  # discrete flux coefficient r^2 c / h at the faces
    a_diag = flux + np.concatenate(([0.0], flux[:-1])) + V_int
    a_off = -flux[:-1]
    # symmetric standard form: B = M^{-1/2} A M^{-1/2}, M = diag(vol) (u-like variables)
    s_ = 1.0 / np.sqrt(vol)
    diag = a_diag * s_**2
    off = a_off * s_[:-1] * s_[1:]
    w = eigh_tridiagonal(diag, off, eigvals_only=True, select="i", select_range=(0, 0))
    return float(w[0])


def fd_ground_level_richardson_eV(
    m_in: float,
    m_out: float,
    V0_eV: float,
    radius_nm: float,
    n_inside: tuple[int, ...] = (200, 400, 800),
    r_max_nm: float | None = None,
):
    """Richardson-extrapolated FD level (errors in h^2, h^4 removed for three grids).

    n_inside must double from one grid to the next. Returns ``(E_extrapolated_eV, raw_levels)``.
    """
    E = [fd_ground_level_eV(m_in, m_out, V0_eV, radius_nm, n, r_max_nm) for n in n_inside]
    table = list(E)
    for order in (2, 4, 6)[: len(E) - 1]:
        f = 2.0**order
        table = [(f * table[i + 1] - table[i]) / (f - 1.0) for i in range(len(table) - 1)]
    return table[0], E
