"""`Placement`: the answer of `qdsim.place` for one dot, from either engine."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from qdsim.placement.priors import UNITS

__all__ = ["Placement", "ridge_diagnosis"]

_LONG = {
    "radius": ("nm", "dot radius"),
    "diameter": ("nm", "dot diameter"),
    "x": ("1", "Br fraction x in FAPb(I1-xBrx)3"),
    "dSR": ("eV", "bulk short-range exchange Delta_SR (nuisance)"),
    "hwLT": ("eV", "bulk longitudinal-transverse splitting hbar omega_LT (nuisance)"),
    "f_v": ("1", "valence-band share of the gap difference (nuisance)"),
    "bowing_Eg": ("eV", "band-gap bowing (nuisance)"),
    "mass_ratio": ("1", "hole-to-electron mass ratio at fixed reduced mass (nuisance)"),
}


def _q(v: np.ndarray) -> tuple[float, tuple[float, float]]:
    lo, med, hi = np.quantile(v, [0.15865, 0.5, 0.84135])
    return float(med), (float(lo), float(hi))


def ridge_diagnosis(samples, priors, measured=()) -> tuple[bool, str, float]:
    """(degenerate, one-line explanation, correlation of ln d and x).

    Degenerate when the data cannot separate size from composition:
    - a ridge: |corr(ln d, x)| > 0.8 and one of the two keeps more than 40 % of its prior
      spread (the data fix a combination of them, not each); or
    - no information: both keep more than 60 % of their prior spread.
    The explanation suggests the measurements not yet given.
    """
    lnd = np.log(2.0 * samples["radius"])
    x = samples["x"]
    if np.std(lnd) == 0 or np.std(x) == 0:
        return False, "", 0.0
    rho = float(np.corrcoef(lnd, x)[0, 1])
    lo, hi = priors["diameter"].interval(0.68)
    s_lnd_prior = 0.5 * (math.log(hi) - math.log(lo))
    xlo, xhi = priors["x"].support
    s_x_prior = (min(xhi, 1.0) - max(xlo, 0.0)) / math.sqrt(12.0)
    f_d, f_x = np.std(lnd) / s_lnd_prior, np.std(x) / s_x_prior
    missing = [
        label
        for key, label in (
            ("energy_eV", "the emission energy"),
            ("dark_bright_eV", "the dark-bright splitting"),
            ("lifetime_s", "the lifetime"),
        )
        if key not in measured
    ]
    advice = f"add {' or '.join(missing)}, or a tighter prior" if missing else "tighten a prior"
    if abs(rho) > 0.8 and max(f_d, f_x) > 0.4:
        return (
            True,
            f"size and composition trade off along a ridge (corr(ln d, x) = {rho:+.2f}, "
            f"{100 * max(f_d, f_x):.0f} % of the prior spread left): the data fix a combination "
            f"of the two, not each; {advice}",
            rho,
        )
    if min(f_d, f_x) > 0.6:
        return (
            True,
            f"the data say little about either (ln d keeps {100 * f_d:.0f} %, x "
            f"{100 * f_x:.0f} % of the prior spread): {advice}",
            rho,
        )
    return False, "", rho


@dataclass
class Placement:
    """Posterior placement of one dot on the (diameter, x) plane.

    - `diameter_nm`, `diameter_interval_nm`: posterior median and central 68 % interval (nm).
    - `x`, `x_interval`: the same for the Br fraction.
    - `degenerate`: True when the data cannot separate size from composition; `explanation` says
      why in one line.
    - `samples`: xarray Dataset of posterior draws (dim `draw`): radius, diameter (nm), x and the
      nuisances dSR, hwLT (eV), f_v, bowing_Eg (eV), mass_ratio, plus the model's predictions
      (emission_energy, dark_bright_splitting in eV, radiative_lifetime in s) at each draw.
    - `measurements`: the (value, sigma) placed, in eV / s; `method`: "grid" or "nuts";
      `diagnostics`: engine figures (NUTS: R-hat, effective sample sizes, divergences; grid:
      effective number of nuisance draws, cells used); `notes`: remarks (g2, decay components).
    """

    diameter_nm: float
    diameter_interval_nm: tuple[float, float]
    x: float
    x_interval: tuple[float, float]
    degenerate: bool
    explanation: str
    samples: xr.Dataset
    measurements: dict[str, tuple[float, float]]
    method: str
    diagnostics: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    priors: dict = field(default_factory=dict, repr=False)
    name: str = "dot"

    @classmethod
    def from_samples(cls, draws, *, measurements, method, diagnostics, notes, priors, name):
        draws = {k: np.asarray(v, dtype=float) for k, v in draws.items()}
        draws["diameter"] = 2.0 * draws["radius"]
        d_med, d_int = _q(draws["diameter"])
        x_med, x_int = _q(draws["x"])
        degenerate, note, rho = ridge_diagnosis(draws, priors, tuple(measurements))
        diagnostics = dict(diagnostics, corr_lnd_x=rho)
        data_vars = {}
        for k, v in draws.items():
            unit, long = _LONG.get(k, (UNITS.get(k, ""), k))
            data_vars[k] = ("draw", v, {"units": unit, "long_name": long})
        samples = xr.Dataset(data_vars, coords={"draw": np.arange(len(draws["radius"]))})
        return cls(
            d_med,
            d_int,
            x_med,
            x_int,
            degenerate,
            note,
            samples,
            {k: (m.value, m.sigma) for k, m in measurements.items()},
            method,
            diagnostics,
            notes,
            priors,
            name,
        )

    def to_dataset(self) -> xr.Dataset:
        """Summaries (attrs) + draws; netCDF-safe (no None, no bool, no nested dicts)."""
        ds = self.samples.copy()
        attrs = {
            "title": f"qdsim placement of {self.name}",
            "dot": self.name,
            "method": self.method,
            "diameter_nm": self.diameter_nm,
            "diameter_interval_nm": np.asarray(self.diameter_interval_nm),
            "x": self.x,
            "x_interval": np.asarray(self.x_interval),
            "degenerate": int(self.degenerate),
            "explanation": self.explanation,
            "measurements": json.dumps(self.measurements),
            "diagnostics": json.dumps(_jsonable(self.diagnostics)),
            "notes": json.dumps(self.notes),
            "priors": json.dumps({k: p.describe() for k, p in self.priors.items()}),
        }
        ds.attrs.update(attrs)
        return ds

    def summary(self) -> str:
        lo, hi = self.diameter_interval_nm
        xl, xh = self.x_interval
        s = (
            f"{self.name}: d = {self.diameter_nm:.2f} nm [{lo:.2f}, {hi:.2f}], "
            f"x = {self.x:.3f} [{xl:.3f}, {xh:.3f}] (68 %, {self.method})"
        )
        if self.degenerate:
            s += f"\n  degenerate: {self.explanation}"
        return s

    def __str__(self) -> str:
        return self.summary()


def _jsonable(d):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _jsonable(v)
        elif isinstance(v, np.ndarray):
            out[k] = v.tolist()
        elif isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out
