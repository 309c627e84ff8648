"""Per-point status flags of the forward model (physics.md §1(f); architecture.md §3.3).

Nothing raises inside jit: every grid point carries an integer `status`. A point is usable iff
`status & FAILURE_MASK == 0`; failed points hold NaN in every physical output *and* a flag.
`NEAR_THRESHOLD` is a warning (the result is valid but the level is barely bound).
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["FAILURE_MASK", "SolveError", "Status", "describe", "flag_attrs", "raise_for_status"]


class Status(enum.IntFlag):
    """Bit flags; combine with `|`. Values are stable (they are stored in files)."""

    OK = 0
    #: R <= 0, non-positive mass, eps or band gap, NaN input, composition outside [0, 1].
    INVALID_INPUT = 1
    #: The electron level does not fit in the conduction-band well (R below the A.2 threshold).
    NO_BOUND_ELECTRON = 2
    #: The hole level does not fit in the valence-band well.
    NO_BOUND_HOLE = 4
    #: A band offset is <= 0 (not a type-I dot; e.g. x = 1, where the dot is the matrix).
    NOT_TYPE_I = 8
    #: The BDD root did not converge to its tolerance.
    ROOT_NOT_CONVERGED = 16
    #: The variational lambda did not converge (|dE/dlog lambda| above tolerance).
    LAMBDA_NOT_CONVERGED = 32
    #: The optimal lambda sits on the search bound.
    LAMBDA_AT_BOUND = 64
    #: Warning only: a carrier is barely bound (kappa R < 0.1, or its level lies closer to the
    #: barrier top than the exciton binding energy): the product ansatz is then a loose upper
    #: bound (physics.md B.3), and results are sensitive to the offsets.
    NEAR_THRESHOLD = 128
    #: The exciton's own scales lie where the quadrature cannot be trusted (the variational
    #: lambda* far from the length the quadrature nodes were built for, in a dot much larger
    #: than lambda).
    QUADRATURE_UNRESOLVED = 256
    #: Outside the model's domain: the exciton (or bright) energy is <= 0 (binding larger than
    #: the gap), a non-positive binding energy, or (with hwLT_eV > 0) a dot not small against
    #: the wavelength of light (n omega R / c > pi: the long-wavelength radiative rate fails).
    OUT_OF_DOMAIN = 512


#: Bits that make a point unusable (all but the NEAR_THRESHOLD warning).
FAILURE_MASK: int = int(
    Status.INVALID_INPUT
    | Status.NO_BOUND_ELECTRON
    | Status.NO_BOUND_HOLE
    | Status.NOT_TYPE_I
    | Status.ROOT_NOT_CONVERGED
    | Status.LAMBDA_NOT_CONVERGED
    | Status.LAMBDA_AT_BOUND
    | Status.QUADRATURE_UNRESOLVED
    | Status.OUT_OF_DOMAIN
)

_MESSAGES = {
    Status.INVALID_INPUT: "invalid input (R <= 0, non-positive mass, eps or band gap, NaN, "
    "or x outside [0, 1])",
    Status.NO_BOUND_ELECTRON: "no bound electron state (the dot is below the critical radius "
    "for its conduction-band offset)",
    Status.NO_BOUND_HOLE: "no bound hole state (the dot is below the critical radius for its "
    "valence-band offset)",
    Status.NOT_TYPE_I: "band offsets not type I (a conduction- or valence-band offset <= 0)",
    Status.ROOT_NOT_CONVERGED: "single-particle root did not converge",
    Status.LAMBDA_NOT_CONVERGED: "variational lambda did not converge",
    Status.LAMBDA_AT_BOUND: "variational lambda hit its search bound",
    Status.NEAR_THRESHOLD: "a carrier is barely bound (kappa R < 0.1 or closer to its barrier "
    "top than the exciton binding energy)",
    Status.QUADRATURE_UNRESOLVED: "the quadrature does not resolve this point's scales "
    "(optimal lambda far from the length its nodes were built for)",
    Status.OUT_OF_DOMAIN: "outside the model's domain (exciton energy or binding <= 0, a "
    "dot not small against the light wavelength for the radiative rate, or a dark-bright "
    "splitting larger than the energy to the first excited orbital state: first-order "
    "exchange fails)",
}


def describe(status: int) -> str:
    """Human-readable text for a status value ("ok" for 0)."""
    status = int(status)
    if status == 0:
        return "ok"
    parts = [msg for flag, msg in _MESSAGES.items() if status & flag]
    return "; ".join(parts)


class SolveError(ValueError):
    """Raised by the scalar API when a point fails (the vectorised API returns a status instead)."""

    def __init__(self, status: int, where: str = "") -> None:
        self.status = int(status)
        super().__init__(f"{describe(status)}{' ' + where if where else ''} (status {self.status})")


def raise_for_status(status, where: str = "") -> None:
    """Raise `SolveError` if any failure bit is set in `status` (scalar or array)."""
    s = np.asarray(status)
    bad = s & FAILURE_MASK
    if np.any(bad):
        first = int(s.ravel()[np.flatnonzero(bad.ravel())[0]])
        raise SolveError(first, where)


def flag_attrs() -> dict:
    """CF-convention attributes (flag_masks, flag_meanings) for a stored `status` variable."""
    flags = [f for f in Status if f.value]
    return {
        "flag_masks": np.array([int(f) for f in flags], dtype=np.int16),
        "flag_meanings": " ".join(f.name.lower() for f in flags),
        "long_name": "solver status (0 = ok; bits as flag_meanings)",
        "failure_mask": np.int16(FAILURE_MASK),
    }
