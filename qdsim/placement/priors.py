"""Priors of the placement and calibration (read from the system file's `[priors.*]` tables).

Each prior is one of three kinds (materials/README.md): `normal` (center, width, optional `low`/
`high` truncation), `lognormal` (center = median > 0, width = sd of the natural log) and
`uniform` (low, high). A prior's `center` defaults to the system's value of the parameter, so a
calibrated materials file moves the priors with it.

NumPy side: `ppf` (quantile function, for the quasi-Monte-Carlo nuisance draws of the grid
engine) and `logpdf`. JAX side: `numpyro()`, the numpyro distribution of the same prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from qdsim.materials.schema import PRIOR_UNITS

__all__ = ["NUISANCES", "Prior", "system_priors"]

#: The uncalibrated constants that placement marginalises (order of the nuisance axes):
#: exchange constants (eV, taken equal at both end members, as the default file does), the
#: valence-band share, the band-gap bowing (eV) and the hole-to-electron mass ratio.
NUISANCES = ("dSR", "hwLT", "f_v", "bowing_Eg", "mass_ratio")

#: Where a prior's default center comes from in `System.values` (mass_ratio: 1, m_e = m_h).
_CENTER_KEYS = {"dSR": "dSR_x0", "hwLT": "hwLT_x0", "f_v": "f_v", "bowing_Eg": "bowing.Eg"}

#: The natural unit of each prior (for messages and the Dataset): the schema's.
UNITS = PRIOR_UNITS


@dataclass(frozen=True)
class Prior:
    """One prior: `kind` in {"normal", "lognormal", "uniform"}; `center`, `width`, `low`,
    `high` as in materials/README.md (NaN where unused); `source` says where the width comes
    from."""

    name: str
    kind: str
    center: float = math.nan
    width: float = math.nan
    low: float = -math.inf
    high: float = math.inf
    source: str = ""

    def __post_init__(self):
        if self.kind not in ("normal", "lognormal", "uniform"):
            raise ValueError(f"prior {self.name}: unknown kind {self.kind!r}")
        if self.kind == "uniform" and not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"prior {self.name}: a uniform prior needs finite low and high")
        if self.kind != "uniform" and not (self.width > 0 and math.isfinite(self.center)):
            raise ValueError(f"prior {self.name}: needs a finite center and a width > 0")
        if self.kind == "lognormal" and not self.center > 0:
            raise ValueError(f"prior {self.name}: a lognormal median must be > 0")
        if not self.low < self.high:
            raise ValueError(f"prior {self.name}: low {self.low} must be below high {self.high}")

    # --- NumPy side ------------------------------------------------------------------------
    def _scipy(self):
        if self.kind == "uniform":
            return stats.uniform(self.low, self.high - self.low)
        if self.kind == "lognormal":
            return stats.lognorm(self.width, scale=self.center)
        a = (self.low - self.center) / self.width
        b = (self.high - self.center) / self.width
        if math.isinf(a) and math.isinf(b):
            return stats.norm(self.center, self.width)
        return stats.truncnorm(a, b, loc=self.center, scale=self.width)

    def ppf(self, q) -> np.ndarray:
        """Quantile function (q in (0, 1))."""
        return self._scipy().ppf(q)

    def logpdf(self, v) -> np.ndarray:
        return self._scipy().logpdf(v)

    def interval(self, level: float = 0.68) -> tuple[float, float]:
        """Central interval holding `level` of the prior mass."""
        lo, hi = self._scipy().interval(level)
        return float(lo), float(hi)

    @property
    def support(self) -> tuple[float, float]:
        """(lowest, highest) value the prior allows."""
        lo, hi = self._scipy().support()
        return float(lo), float(hi)

    # --- JAX side --------------------------------------------------------------------------
    def numpyro(self):
        """The same prior as a numpyro distribution."""
        import numpyro.distributions as dist

        if self.kind == "uniform":
            return dist.Uniform(self.low, self.high)
        if self.kind == "lognormal":
            return dist.LogNormal(math.log(self.center), self.width)
        if math.isinf(self.low) and math.isinf(self.high):
            return dist.Normal(self.center, self.width)
        low = None if math.isinf(self.low) else self.low
        high = None if math.isinf(self.high) else self.high
        return dist.TruncatedNormal(self.center, self.width, low=low, high=high)

    def describe(self) -> str:
        if self.kind == "uniform":
            body = f"uniform on [{self.low:g}, {self.high:g}]"
        elif self.kind == "lognormal":
            body = f"lognormal, median {self.center:g}, sd(ln) {self.width:g}"
        else:
            body = f"normal({self.center:g}, {self.width:g})"
            if math.isfinite(self.low) or math.isfinite(self.high):
                body += f" truncated to [{self.low:g}, {self.high:g}]"
        return f"{self.name}: {body} {UNITS.get(self.name, '')}".rstrip()


def _from_table(name: str, t: dict, center_default: float) -> Prior:
    return Prior(
        name=name,
        kind=t["kind"],
        center=float(t.get("center", center_default)),
        width=float(t.get("width", math.nan)),
        low=float(t.get("low", -math.inf)),
        high=float(t.get("high", math.inf)),
        source=t.get("source", ""),
    )


def system_priors(system) -> dict[str, Prior]:
    """The priors of `system` (a `qdsim.System`) for the dot (diameter, x) and every nuisance.

    Raises ValueError naming the system when one is missing: a system file used for placement
    must state its priors (the default one does)."""
    missing = [n for n in ("diameter", "x", *NUISANCES) if n not in system.priors]
    if missing:
        raise ValueError(
            f"system {system.name!r} has no prior for {', '.join(missing)}: add "
            "[priors.<name>] tables to its TOML file (see materials/systems/default.toml)"
        )
    out = {}
    for name in ("diameter", "x", *NUISANCES):
        center = system.values[_CENTER_KEYS[name]] if name in _CENTER_KEYS else 1.0
        if name in ("diameter", "x"):
            center = math.nan
        out[name] = _from_table(name, system.priors[name], center)
    return out
