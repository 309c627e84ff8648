"""Registry of output quantities: the single place that defines names, units and long names.

`phase_diagram` variables, the CLI and the plots all read from here (architecture.md §5).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["QUANTITIES", "Quantity"]


class Quantity(NamedTuple):
    field: str  # SphereSolution field it comes from
    units: str
    long_name: str
    description: str


QUANTITIES: dict[str, Quantity] = {
    "emission_energy": Quantity(
        "bright_energy_eV",
        "eV",
        "bright exciton emission energy",
        "Energy of the bright triplet: exchange-free exciton energy + dark-bright splitting.",
    ),
    "dark_bright_splitting": Quantity(
        "dark_bright_eV",
        "eV",
        "dark-bright splitting",
        "First-order e-h exchange: (Delta_SR + hbar omega_LT/3) pi a_B^3 int|Psi(r,r)|^2 d^3r "
        "+ dielectric-contrast term (physics.md B.4).",
    ),
    "exchange_free_energy": Quantity(
        "energy_eV",
        "eV",
        "exchange-free exciton energy",
        "Eg + E_e + E_h + correlation; the dark-state energy at first order.",
    ),
    "binding_energy": Quantity(
        "binding_energy_eV",
        "eV",
        "exciton binding energy",
        "Eg + E_e + E_h minus the exchange-free exciton energy.",
    ),
    "electron_level": Quantity(
        "electron_level_eV",
        "eV",
        "electron confinement energy",
        "Ground level of the finite spherical well above the dot's conduction-band edge.",
    ),
    "hole_level": Quantity(
        "hole_level_eV",
        "eV",
        "hole confinement energy",
        "Ground level of the finite spherical well below the dot's valence-band edge.",
    ),
    "radiative_lifetime": Quantity(
        "radiative_lifetime_s",
        "s",
        "bright-exciton radiative lifetime",
        "Inverse radiative rate of one bright component (giant oscillator strength, B.5).",
    ),
    "lam": Quantity(
        "lam_nm",
        "nm",
        "e-h correlation length lambda",
        "Optimised lambda of the trial factor exp(-r_eh/lambda).",
    ),
    "contact_density": Quantity(
        "contact_density_nm3",
        "nm-3",
        "e-h contact density",
        "Integral of |Psi(r, r)|^2 d^3r with Psi normalised.",
    ),
    "overlap2": Quantity(
        "overlap2",
        "1",
        "squared e-h overlap",
        "|Integral of Psi(r, r) d^3r|^2 (oscillator-strength factor).",
    ),
}
