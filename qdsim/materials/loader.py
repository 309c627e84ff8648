"""Load a materials system (dot alloy + matrix + exchange/optical constants) from TOML.

Lookup of the materials directory: the `materials_dir` argument, then `$QDSIM_MATERIALS`, then the
copy shipped in the wheel (`qdsim/_materials`), then the checkout's `materials/`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qdsim.materials.schema import MaterialsError, validate_document
from qdsim.materials.vegard import vegard

__all__ = ["MaterialsError", "System", "load_system", "materials_dir"]

_HERE = Path(__file__).resolve().parent


def materials_dir(materials_dir: str | os.PathLike | None = None) -> Path:
    """The directory holding `systems/`, `alloys/` and the material files."""
    candidates = []
    if materials_dir is not None:
        candidates.append(Path(materials_dir))
    elif os.environ.get("QDSIM_MATERIALS"):
        candidates.append(Path(os.environ["QDSIM_MATERIALS"]))
    else:
        candidates += [_HERE.parent / "_materials", _HERE.parents[1] / "materials"]
    for c in candidates:
        if (c / "systems").is_dir():
            return c
    raise MaterialsError(
        f"no materials directory found (looked in {', '.join(str(c) for c in candidates)}); "
        "pass materials_dir= or set QDSIM_MATERIALS"
    )


def _read(path: Path, kind: str) -> tuple[dict, str]:
    if not path.is_file():
        raise MaterialsError(f"{path}: no such {kind} file")
    raw = path.read_bytes()
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MaterialsError(f"{path}: not valid TOML: {exc}") from None
    return validate_document(doc, str(path), kind), hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class System:
    """A dot alloy in a matrix, with every number's provenance. Build with `load_system()`.

    Numbers are in `values` (plain floats; eV, m0, dimensionless); `entries` keeps each number's
    file, unit, source, status and `uncalibrated` flag. `sphere_params(x)` is jittable.
    """

    name: str
    dot: str
    matrix: str
    x0: str
    x1: str
    values: dict[str, float]
    entries: tuple[dict[str, Any], ...] = field(repr=False)
    sha256: dict[str, str] = field(repr=False)
    priors: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def uncalibrated(self) -> tuple[str, ...]:
        """Keys (file:key) of the numbers flagged uncalibrated: outputs depend on them."""
        return tuple(f"{e['file']}:{e['key']}" for e in self.entries if e.get("uncalibrated"))

    def sphere_params(self, x, *, f_v=None, bowing_Eg=None, mass_ratio=None):
        """`SphereParams` of a FAPb(I1-xBrx)3 dot in the matrix at Br fraction `x` (jittable).

        Concrete input gives NumPy float64 leaves; traced input (inside jit/vmap/grad) JAX ones.

        Vegard with bowing between the end members for Eg, me, mh, eps_eff; offsets from the gap
        difference to the matrix split by the valence share f_v (physics.md A.2-A.3); exchange
        constants interpolated linearly. Overrides: `f_v` (0..1), `bowing_Eg` (eV), `mass_ratio`
        (m_h/m_e at fixed reduced mass, applied to dot and matrix). For concrete x outside [0, 1]
        raises ValueError; traced, such x gives NaN parameters (status INVALID_INPUT).
        """
        v = self.values
        traced = _traced(x, f_v, bowing_Eg, mass_ratio)
        if not traced:
            xa = np.asarray(x, dtype=float)
            if np.any(~((xa >= 0) & (xa <= 1))):
                raise ValueError(f"x (Br fraction) must lie in [0, 1], got {x!r}")
            if f_v is not None and not 0 <= float(f_v) <= 1:
                raise ValueError(f"f_v must lie in [0, 1], got {f_v!r}")
            if mass_ratio is not None and not float(mass_ratio) > 0:
                raise ValueError(f"mass_ratio must be > 0, got {mass_ratio!r}")
        if traced:
            import jax.numpy as xp
        else:  # concrete: NumPy float64, whatever the JAX default precision
            xp = np
        return alloy_params(v, x, f_v, bowing_Eg, mass_ratio, xp=xp)

    def solve(self, x, radius_nm, **kwargs):
        """`solve_sphere(self.sphere_params(x), radius_nm)` for concrete x (raises on failure).

        Keyword arguments other than f_v, bowing_Eg, mass_ratio go to `solve_sphere`.
        """
        from qdsim.model.solve import solve_sphere

        over = {k: kwargs.pop(k) for k in ("f_v", "bowing_Eg", "mass_ratio") if k in kwargs}
        return solve_sphere(self.sphere_params(x, **over), radius_nm, **kwargs)

    def provenance(self) -> dict[str, str]:
        """netCDF-safe attributes: system name, file hashes (JSON), uncalibrated keys."""
        return {
            "system": self.name,
            "material_files": json.dumps(self.sha256, sort_keys=True),
            "uncalibrated": ", ".join(self.uncalibrated),
        }

    def describe(self) -> str:
        """A table of every number with its unit, status, flag and source."""
        lines = [
            f"system {self.name!r}: dot {self.dot} (x = 0: {self.x0}, x = 1: {self.x1}) "
            f"in {self.matrix}"
        ]
        for e in self.entries:
            flag = " UNCALIBRATED" if e.get("uncalibrated") else ""
            lines.append(
                f"  {e['file']:<22} {e['key']:<24} {e['value']:>10.6g} {e['unit']:<3} "
                f"[{e['status']}]{flag}\n      {e['source']}"
            )
        for name, pr in self.priors.items():
            body = ", ".join(
                f"{k} {pr[k]:g}" for k in ("center", "width", "low", "high") if k in pr
            )
            lines.append(
                f"  prior {name:<16} {pr['kind']}: {body} {pr['unit']} [{pr['status']}]\n"
                f"      {pr['source']}"
            )
        return "\n".join(lines)


def alloy_params(values, x, f_v=None, bowing_Eg=None, mass_ratio=None, *, xp=None):
    """`SphereParams` from a `System.values` mapping at Br fraction x (pure; jittable with
    `values` as a traced pytree, so new material numbers do not recompile). x outside [0, 1]
    gives NaN parameters. See `System.sphere_params` for the physics."""
    from qdsim.model.types import SphereParams  # model is a lower layer for this function

    if xp is None:
        import jax.numpy as xp
    v = values
    x = xp.asarray(x)
    x = xp.where((x >= 0) & (x <= 1), x, xp.nan)
    fv = v["f_v"] if f_v is None else f_v
    bEg = v["bowing.Eg"] if bowing_Eg is None else bowing_Eg
    Eg = vegard(v["x0.Eg"], v["x1.Eg"], x, bEg)
    me = vegard(v["x0.me"], v["x1.me"], x, v["bowing.me"])
    mh = vegard(v["x0.mh"], v["x1.mh"], x, v["bowing.mh"])
    me_out, mh_out = v["matrix.me"], v["matrix.mh"]
    if mass_ratio is not None:
        me, mh = _split_mass(me, mh, mass_ratio)
        me_out, mh_out = _split_mass(me_out, mh_out, mass_ratio)
    gap_diff = v["matrix.Eg"] - Eg
    zero = 0.0 * x
    return SphereParams(
        Eg_eV=Eg,
        me_in=me,
        mh_in=mh,
        me_out=me_out + zero,
        mh_out=mh_out + zero,
        eps=vegard(v["x0.eps_eff"], v["x1.eps_eff"], x, v["bowing.eps_eff"]),
        dEc_eV=(1.0 - fv) * gap_diff,
        dEv_eV=fv * gap_diff,
        dSR_eV=vegard(v["dSR_x0"], v["dSR_x1"], x),
        hwLT_eV=vegard(v["hwLT_x0"], v["hwLT_x1"], x),
        eps_bg_in=v["eps_bg_in"] + zero,
        eps_bg_out=v["eps_bg_out"] + zero,
    )


def _split_mass(me, mh, ratio):
    mu = me * mh / (me + mh)
    return mu * (1.0 + ratio) / ratio, mu * (1.0 + ratio)


def _traced(*values) -> bool:
    import jax

    return any(isinstance(v, jax.core.Tracer) for v in values if v is not None)


def load_system(
    name: str | os.PathLike = "default", *, materials_dir: str | os.PathLike | None = None
) -> System:
    """Load a system: a name under `systems/` (default "default") or a path to a system TOML.

    Validates every file (schema, units, sources, status words, ranges) and raises
    `MaterialsError` (a ValueError) naming the file, key and problem.
    """
    name_s = os.fspath(name)
    if name_s.endswith(".toml") or os.sep in name_s:
        sys_path = Path(name_s)
        root = Path(materials_dir) if materials_dir is not None else sys_path.resolve().parents[1]
    else:
        root = globals()["materials_dir"](materials_dir)
        sys_path = root / "systems" / f"{name_s}.toml"
        if not sys_path.is_file():
            known = sorted(p.stem for p in (root / "systems").glob("*.toml"))
            raise MaterialsError(f"unknown system {name_s!r} in {root / 'systems'}; known: {known}")
    system, h_sys = _read(sys_path, "system")
    alloy, h_alloy = _read(root / "alloys" / f"{system['dot']}.toml", "alloy")
    m0, h0 = _read(root / f"{alloy['x0']}.toml", "material")
    m1, h1 = _read(root / f"{alloy['x1']}.toml", "material")
    mm, hm = _read(root / f"{system['matrix']}.toml", "material")

    values: dict[str, float] = {}
    entries: list[dict[str, Any]] = []

    def add(prefix: str, fname: str, table: dict) -> None:
        for key, e in table.items():
            values[f"{prefix}{key}"] = e["value"]
            entries.append(dict(e, key=f"{prefix}{key}", file=fname))

    add("x0.", Path(m0["path"]).name, m0["params"])
    add("x1.", Path(m1["path"]).name, m1["params"])
    add("matrix.", Path(mm["path"]).name, mm["params"])
    add("", f"alloys/{Path(alloy['path']).name}", alloy["params"])
    bow = {k: alloy["bowing"].get(k) for k in ("Eg", "me", "mh", "eps_eff")}
    for k, e in bow.items():
        if e is None:
            values[f"bowing.{k}"] = 0.0
        else:
            add("bowing.", f"alloys/{Path(alloy['path']).name}", {k: e})
    add("", f"systems/{sys_path.name}", system["params"])
    if not math.isfinite(values["matrix.Eg"]):  # pragma: no cover - schema guards it
        raise MaterialsError(f"{mm['path']}: params.Eg: not finite")
    hashes = {
        f"systems/{sys_path.name}": h_sys,
        f"alloys/{Path(alloy['path']).name}": h_alloy,
        Path(m0["path"]).name: h0,
        Path(m1["path"]).name: h1,
        Path(mm["path"]).name: hm,
    }
    return System(
        name=system["name"],
        dot=system["dot"],
        matrix=system["matrix"],
        x0=alloy["x0"],
        x1=alloy["x1"],
        values=values,
        entries=tuple(entries),
        sha256=hashes,
        priors=system["priors"],
    )
