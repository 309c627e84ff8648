"""`qdsim.calibrate`: the shared material constants from many measured dots.

Hierarchical model: shared constants theta = (dSR, hwLT, f_v, bowing_Eg, mass_ratio) with their
priors from the system file; each dot i has its own (R_i, x_i) with the size and composition
priors, and its measurements (energy, splitting, lifetime: the lifetime and the long-range
exchange share hwLT, one transition dipole, so they are fitted consistently by construction).
The posterior of theta is

    p(theta | all dots) ∝ p(theta) prod_i Z_i(theta),   Z_i(theta) = ∫ p(d_i | R, x, theta) p(R, x),

each Z_i computed by the grid engine (same table, same cell-averaged likelihood as `place`).
theta is represented by the grid's quasi-Monte-Carlo draws from its prior (n_slices x
n_exchange, equal prior weight), so the posterior is those draws reweighted by prod_i Z_i: exact
for the draws, coarse when the dots pin theta more tightly than the draws resolve it. The
effective number of draws (Kish) is reported and a warning is raised below 20; raise
`GridSpec.n_exchange` (cheap: no solve) or `n_slices`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qdsim.model.types import SolverConfig
from qdsim.placement import grid as _grid
from qdsim.placement.api import MODEL_ERROR, _check_reach, _data, resolve_priors
from qdsim.placement.measurements import PlacementError, PlacementWarning, collect
from qdsim.placement.priors import NUISANCES

__all__ = ["Calibration", "calibrate"]

#: Calibration grid: the default table, with many more (cheap) exchange draws.
CALIBRATION_GRID = _grid.GridSpec(n_exchange=256)


@dataclass
class Calibration:
    """Posterior of the shared constants over a set of dots.

    - `samples`: dict name -> draws (equal weight, resampled) of dSR, hwLT (eV), f_v,
      bowing_Eg (eV), mass_ratio.
    - `median`, `interval`: per constant, posterior median and central 68 % interval.
    - `effective_draws`: Kish effective number of prior draws carrying the posterior.
    - `dots`: the names of the dots used; `system`: the system calibrated.
    """

    samples: dict[str, np.ndarray]
    median: dict[str, float]
    interval: dict[str, tuple[float, float]]
    effective_draws: float
    dots: list[str]
    system: object = field(repr=False)
    log_evidence: float = math.nan

    def summary(self) -> str:
        lines = [
            f"calibration over {len(self.dots)} dots ({self.effective_draws:.0f} effective draws)"
        ]
        for n in NUISANCES:
            lo, hi = self.interval[n]
            lines.append(f"  {n:<11} {self.median[n]:.4g}  [{lo:.4g}, {hi:.4g}]")
        return "\n".join(lines)

    def to_materials(self, path, name: str | None = None) -> Path:
        """Write a system TOML (a copy of the calibrated system's file) whose exchange constants
        are the posterior medians (status `derived`, source = this dot set) and whose priors
        for dSR and hwLT are the posterior's widths, so later placements use the calibration.
        f_v, bowing and the mass ratio stay in the alloy/system priors: their posteriors are
        reported in the file's comment. Returns the path. Load it with
        `qdsim.load_system(path, materials_dir=...)` beside the same material files."""
        import tomllib

        sys_file = _system_file(self.system)
        doc = tomllib.loads(sys_file.read_text())
        source = (
            f"derived by qdsim.calibrate from {len(self.dots)} dots ({', '.join(self.dots)}); "
            f"posterior median, 68 % interval {{lo:.4g}}-{{hi:.4g}} eV; "
            f"{self.effective_draws:.0f} effective prior draws"
        )
        for key, n in (("dSR", "dSR"), ("hwLT", "hwLT")):
            lo, hi = self.interval[n]
            for end in ("x0", "x1"):
                doc["params"][f"{key}_{end}"] = {
                    "value": float(self.median[n]),
                    "unit": "eV",
                    "source": source.format(lo=lo, hi=hi),
                    "status": "derived",
                    "uncalibrated": True,
                }
        lo, hi = self.interval["dSR"]
        doc["priors"]["dSR"] = dict(
            doc["priors"]["dSR"],
            width=max(0.5 * (hi - lo), 1e-6),
            source="posterior width of qdsim.calibrate (sd ~ half the 68 % interval)",
            status="derived",
        )
        doc["priors"]["dSR"].pop("center", None)
        lo, hi = self.interval["hwLT"]
        doc["priors"]["hwLT"] = dict(
            doc["priors"]["hwLT"],
            width=max(0.5 * math.log(hi / lo), 1e-3),
            source="posterior width of qdsim.calibrate (sd of ln ~ half the 68 % interval in ln)",
            status="derived",
        )
        doc["priors"]["hwLT"].pop("center", None)
        doc["name"] = name or f"{doc['name']}-calibrated"
        notes = [
            f"# Calibrated by qdsim.calibrate over {len(self.dots)} dots: {', '.join(self.dots)}.",
            *(
                f"# {n}: median {self.median[n]:.4g}, 68 % [{self.interval[n][0]:.4g}, "
                f"{self.interval[n][1]:.4g}]"
                for n in NUISANCES
            ),
        ]
        out = Path(path)
        out.write_text("\n".join(notes) + "\n" + _dump_toml(doc))
        return out


def _system_file(system) -> Path:
    from qdsim.materials.loader import materials_dir

    for e in system.entries:
        if e["file"].startswith("systems/"):
            p = Path(e["file"])
            root = materials_dir()
            if (root / p).is_file():
                return root / p
    raise PlacementError(f"cannot find the TOML file of system {system.name!r} to copy")


def _dump_toml(doc: dict) -> str:
    """Minimal TOML writer for the materials layout (top-level scalars, two-level tables)."""

    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(float(v)) if isinstance(v, float) else str(v)
        s = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{s}"'

    lines = [f"{k} = {val(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for sect, tables in doc.items():
        if not isinstance(tables, dict):
            continue
        for name, t in tables.items():
            lines.append(f"\n[{sect}.{name}]")
            lines += [f"{k} = {val(v)}" for k, v in t.items()]
    return "\n".join(lines) + "\n"


def calibrate(
    dots,
    *,
    system=None,
    grid: _grid.GridSpec | None = None,
    config: SolverConfig = SolverConfig(),
    diameter_prior_nm=None,
    x_prior=None,
    quantum_yield: float = 1.0,
    model_error: dict | None = None,
    cache=None,
    num_samples: int = 4000,
    seed: int = 0,
) -> Calibration:
    """Posterior of the shared constants (dSR, hwLT, f_v, bowing_Eg, mass_ratio) from `dots`.

    **Arguments:** `dots`: a list of mappings, each with the keywords of `qdsim.place`
    (`energy_eV`, `dark_bright_eV`, `lifetime_s` as (value, 1-sigma), or `zeeman`, `decay`,
    `g2` results) and optionally `name`. Priors, model errors, quantum yield and the table as
    in `place`; `grid` defaults to `CALIBRATION_GRID` (256 exchange draws).

    **Returns:** `Calibration` (`median`, `interval`, `samples`, `to_materials(path)`).
    """
    from qdsim.materials.loader import load_system

    if not dots:
        raise PlacementError("calibrate needs at least one dot")
    if system is None or isinstance(system, str):
        system = load_system(system or "default")
    err = dict(MODEL_ERROR, **(model_error or {}))
    priors = resolve_priors(system, diameter_prior_nm, x_prior)
    spec = grid or CALIBRATION_GRID
    table = _grid.load_table(system, priors, spec, config, cache=cache)
    reach = _grid.reach(table, priors, spec)
    names, total = [], None
    for i, dot in enumerate(dots):
        dot = dict(dot)
        name = str(dot.pop("name", f"dot {i + 1}"))
        unknown = set(dot) - {"energy_eV", "dark_bright_eV", "lifetime_s", "zeeman", "decay", "g2"}
        if unknown:
            raise PlacementError(f"{name}: unknown key(s) {sorted(unknown)}")
        meas, _ = collect(**dot)
        data = _data(meas, quantum_yield)
        _check_reach(meas, data, err, reach)
        post = _grid.posterior(table, priors, spec, data, err)
        if post.n_cells_used == 0:
            raise PlacementError(f"{name}: no point of the prior range reproduces its data")
        with np.errstate(divide="ignore"):
            logz = np.log(post.draw_weights()) + post.evidence_log
        total = logz if total is None else total + logz
        names.append(name)
    top = np.max(total)
    if not np.isfinite(top):
        raise PlacementError(
            "no draw of the shared constants reproduces every dot: the dots are inconsistent "
            "under the model and its priors"
        )
    w = np.exp(total - top)
    log_evidence = float(top + math.log(w.sum()) - math.log(w.size))
    w /= w.sum()
    ess = float(1.0 / np.sum(w**2))
    if ess < 20:
        warnings.warn(
            f"calibration rests on {ess:.1f} effective prior draws: the dots pin the constants "
            "more tightly than the draws resolve; use a larger GridSpec(n_exchange=...)",
            PlacementWarning,
            stacklevel=2,
        )
    k, m = np.meshgrid(np.arange(w.shape[0]), np.arange(w.shape[1]), indexing="ij")
    ex = _grid.exchange_draws(priors, spec)
    values = {
        **{n: table[n].values[k.ravel()] for n in ("f_v", "bowing_Eg", "mass_ratio")},
        **{n: ex[n][m.ravel()] for n in ("dSR", "hwLT")},
    }
    rng = np.random.default_rng(seed)
    pick = rng.choice(w.size, size=num_samples, p=w.ravel())
    samples = {n: v[pick] for n, v in values.items()}
    median = {n: float(_wq(values[n], w.ravel(), 0.5)) for n in NUISANCES}
    interval = {
        n: (float(_wq(values[n], w.ravel(), 0.15865)), float(_wq(values[n], w.ravel(), 0.84135)))
        for n in NUISANCES
    }
    return Calibration(samples, median, interval, ess, names, system, log_evidence)


def _wq(v, w, q):
    o = np.argsort(v)
    c = np.cumsum(w[o])
    return v[o][min(np.searchsorted(c, q * c[-1]), v.size - 1)]
