"""First-order electron-hole exchange (physics.md B.4) and the bright-exciton radiative rate (B.5).

Dark-bright splitting, first order, spherical Psi:

    Delta_DB = [Delta_SR^bulk + hbar omega_LT / 3] pi a_B^3 int |Psi(r, r)|^2 d^3r
             + (eps1 - eps2) / (2 (eps1 + 2 eps2)) hbar omega_LT (a_B / R)^3 |int Psi(r, r) d^3r|^2,

the second line the l = 1 dielectric-contrast (reaction-field) term with |d|^2 expressed through
hbar omega_LT = 4 |d|^2 / (eps1 a_B^3) (Gaussian units). The triplet is pushed up: bright = E +
Delta_DB, dark = E (H_exch = Delta_DB P_{J=1}).

Radiative rate of one bright component (giant oscillator strength, local field
F = 3 eps2/(eps1 + 2 eps2), matrix index n2 = sqrt(eps2)):

    Gamma = n2 eps1 F^2 omega^3 omega_LT a_B^3 |int Psi(r, r) d^3r|^2 / (3 c^3).

eps1, eps2 are the background dielectric constants of dot and matrix (`eps_bg_in`, `eps_bg_out`;
0 means "use eps"). Energies eV, lengths nm, rates 1/s.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qdsim.constants import BOHR_nm, C_nm_s, HBAR_eV_s

__all__ = ["FineStructure", "fine_structure", "radiative_rate"]


class FineStructure(NamedTuple):
    dark_bright_eV: jax.Array
    short_range_eV: jax.Array
    long_range_eV: jax.Array
    contrast_eV: jax.Array


def _background(eps_bg, eps):
    return jnp.where(eps_bg > 0, eps_bg, eps)


def fine_structure(contact_nm3, overlap2, R_nm, eps, mu, dSR_eV, hwLT_eV, eps_bg_in, eps_bg_out):
    """Dark-bright splitting and its parts (eV). `mu` is the in-dot reduced mass (m0)."""
    aB = BOHR_nm * eps / mu
    contact_red = np.pi * aB**3 * contact_nm3  # -> 1 in the bulk limit
    eps1 = _background(eps_bg_in, eps)
    eps2 = _background(eps_bg_out, eps)
    sr = dSR_eV * contact_red
    lr = hwLT_eV / 3.0 * contact_red
    contrast = (eps1 - eps2) / (2.0 * (eps1 + 2.0 * eps2)) * hwLT_eV * (aB / R_nm) ** 3 * overlap2
    return FineStructure(sr + lr + contrast, sr, lr, contrast)


def radiative_rate(bright_eV, overlap2, eps, mu, hwLT_eV, eps_bg_in, eps_bg_out):
    """Radiative rate (1/s) of one bright component, physics.md B.5 (second form)."""
    aB = BOHR_nm * eps / mu
    eps1 = _background(eps_bg_in, eps)
    eps2 = _background(eps_bg_out, eps)
    F = 3.0 * eps2 / (eps1 + 2.0 * eps2)
    omega = bright_eV / HBAR_eV_s
    omega_LT = hwLT_eV / HBAR_eV_s
    return jnp.sqrt(eps2) * eps1 * F**2 * omega**3 * omega_LT * aB**3 * overlap2 / (3.0 * C_nm_s**3)
