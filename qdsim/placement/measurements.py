"""Measured quantities of one dot: parsing, unit sanity and the analysis results as input."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

__all__ = ["Measurement", "PlacementError", "PlacementWarning", "collect"]


class PlacementError(ValueError):
    """A measurement that cannot be placed: malformed, in the wrong units, or out of reach of
    the model over the prior range. The message names the quantity."""


class PlacementWarning(UserWarning):
    """Something to check before trusting a placement (e.g. g2(0) > 0.5: not a single dot)."""


#: name -> (unit, plausible range of the value in that unit, hint when far outside)
_PLAUSIBLE = {
    "energy_eV": ("eV", (0.5, 5.0), "an emission energy in eV, e.g. (1.8167, 0.0005)"),
    "dark_bright_eV": ("eV", (-0.01, 0.05), "a splitting in eV, e.g. (1.5e-3, 0.3e-3)"),
    "lifetime_s": ("s", (1e-13, 1e-6), "a lifetime in seconds, e.g. (300e-12, 50e-12)"),
}


@dataclass(frozen=True)
class Measurement:
    """One measured quantity: value and 1-sigma error, in the unit of its name."""

    name: str
    value: float
    sigma: float
    origin: str = "given"

    @property
    def unit(self) -> str:
        return _PLAUSIBLE[self.name][0]


def _parse(name: str, given) -> Measurement:
    unit, (lo, hi), hint = _PLAUSIBLE[name]
    try:
        value, sigma = given
        value, sigma = float(value), float(sigma)
    except (TypeError, ValueError):
        raise PlacementError(
            f"{name}: expected (value, 1-sigma error) in {unit}, got {given!r}; {hint}"
        ) from None
    if not (math.isfinite(value) and math.isfinite(sigma)):
        raise PlacementError(f"{name}: value and error must be finite numbers, got {given!r}")
    if not sigma > 0:
        raise PlacementError(f"{name}: the 1-sigma error must be > 0, got {sigma!r}")
    if not lo <= value <= hi:
        guess = ""
        if name == "energy_eV" and 500 <= value <= 5000:
            guess = f" ({value:g} looks like meV: pass {value / 1e3:g} eV)"
        elif name == "dark_bright_eV" and 0.05 < value <= 50:
            guess = f" ({value:g} looks like meV: pass {value / 1e3:g} eV)"
        elif name == "lifetime_s" and 1e-6 < value <= 1e6:
            guess = f" ({value:g} looks like ps or ns: pass {value * 1e-12:g} s for ps)"
        raise PlacementError(
            f"{name} = {value:g} {unit} is outside the plausible range [{lo:g}, {hi:g}] "
            f"{unit}{guess}; expected {hint}"
        )
    if sigma > abs(value) and name != "dark_bright_eV":
        raise PlacementError(f"{name}: error {sigma:g} {unit} is larger than the value {value:g}")
    return Measurement(name, value, sigma)


def collect(
    energy_eV=None, dark_bright_eV=None, lifetime_s=None, *, zeeman=None, decay=None, g2=None
) -> tuple[dict[str, Measurement], dict[str, str]]:
    """Measurements from numbers and/or analysis results; returns (measurements, notes).

    - `zeeman` (`ZeemanResult`): dark_bright_eV from its fit, and energy_eV (the zero-field
      bright energy) when no energy is given.
    - `decay` (`DecayResult`): lifetime_s from the dominant component (largest fraction).
    - `g2` (a g2 fit result): not a model quantity; g2(0) > 0.5 warns (`PlacementWarning`):
      probably not a single emitter.
    Numbers given explicitly win over those taken from results.
    """
    out: dict[str, Measurement] = {}
    notes: dict[str, str] = {}
    if zeeman is not None:
        _require_converged(zeeman, "zeeman")
        out["dark_bright_eV"] = _from_result(
            "dark_bright_eV", zeeman.dark_bright_eV, zeeman.dark_bright_err_eV, "zeeman fit"
        )
        if energy_eV is None and math.isfinite(getattr(zeeman, "bright_eV", math.nan)):
            out["energy_eV"] = _from_result(
                "energy_eV", zeeman.bright_eV, zeeman.bright_err_eV, "zeeman fit (0 T bright)"
            )
    if decay is not None:
        _require_converged(decay, "decay")
        import numpy as np

        i = int(np.argmax(np.asarray(decay.fractions)))
        if len(decay.fractions) > 1:
            notes["lifetime"] = (
                f"decay has {len(decay.fractions)} components: the dominant one "
                f"(fraction {float(decay.fractions[i]):.2f}) is taken as the exciton lifetime"
            )
        out["lifetime_s"] = _from_result(
            "lifetime_s",
            float(decay.lifetimes_ps[i]) * 1e-12,
            float(decay.lifetimes_err_ps[i]) * 1e-12,
            "decay fit",
        )
    if g2 is not None:
        g0 = float(getattr(g2, "g2_0", math.nan))
        err = float(getattr(g2, "g2_0_err", math.nan))
        notes["g2"] = f"g2(0) = {g0:.3g} +- {err:.2g}"
        if g0 > 0.5:
            warnings.warn(
                f"g2(0) = {g0:.3g} > 0.5: probably not a single dot (several emitters); the "
                "placement assumes one",
                PlacementWarning,
                stacklevel=3,
            )
            notes["g2"] += " > 0.5: probably not a single dot"
    for name, given in (
        ("energy_eV", energy_eV),
        ("dark_bright_eV", dark_bright_eV),
        ("lifetime_s", lifetime_s),
    ):
        if given is not None:
            out[name] = _parse(name, given)
    if not out:
        raise PlacementError(
            "nothing to place: give at least one of energy_eV, dark_bright_eV, lifetime_s "
            "(value, 1-sigma), or a zeeman / decay result"
        )
    return out, notes


def _from_result(name, value, err, origin) -> Measurement:
    m = _parse(name, (value, err))
    return Measurement(m.name, m.value, m.sigma, origin)


def _require_converged(result, what):
    if not getattr(result, "converged", True):
        raise PlacementError(f"the {what} fit did not converge: its numbers cannot be placed")
