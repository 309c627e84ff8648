"""qdsim: buried perovskite quantum dots, from materials to the (emission, dark-bright) phase
diagram, and the analysis of single-dot measurements.

`import qdsim` changes no JAX setting and prints nothing; the physics runs in float64 through a
scoped context (`qdsim.float64`). `phase_diagram`, `analysis` and `place` load lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

from qdsim._x64 import float64 as float64
from qdsim.constants import bohr_star_nm as bohr_star_nm
from qdsim.constants import rydberg_star_eV as rydberg_star_eV
from qdsim.model.solve import solve_sphere as solve_sphere
from qdsim.model.types import SolverConfig as SolverConfig
from qdsim.model.types import SphereParams as SphereParams
from qdsim.model.types import SphereSolution as SphereSolution
from qdsim.status import FAILURE_MASK as FAILURE_MASK
from qdsim.status import SolveError as SolveError
from qdsim.status import Status as Status

__version__ = "0.1.0"

_LAZY = {
    "analysis": ("qdsim.analysis", None),
    "phase_diagram": ("qdsim.sweep.phase_diagram", "phase_diagram"),
    "load_system": ("qdsim.materials.loader", "load_system"),
    "System": ("qdsim.materials.loader", "System"),
    "place": ("qdsim.placement", "place"),
    "calibrate": ("qdsim.placement", "calibrate"),
    "placement": ("qdsim.placement", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'qdsim' has no attribute {name!r}")
    mod, attr = _LAZY[name]
    module = importlib.import_module(mod)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
