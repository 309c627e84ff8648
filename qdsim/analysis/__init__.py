"""Single-dot measurement analysis: photon files, g2, lifetimes, spectra and Zeeman fans.

Two workflows, each in its own subpackage, which never import each other (an import-linter
contract in pyproject.toml):

- `photons/`: photon files (`io/`), the `PhotonStream`, g2 correlation and fits, decays, traces.
- `spectroscopy/`: spectra and peak fits, Zeeman fans, linewidth against temperature.

Both use the shared fit helpers in `fitting.py` (Poisson likelihood on iminuit, `FitWarning`) and
the file errors in `errors.py`; `units.py` parses durations. Names resolve lazily (PEP 562), so
`import qdsim.analysis` stays cheap; numba, ptufile, iminuit and the fitting code load on first
use.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule (relative to qdsim.analysis) that defines it
_EXPORTS: dict[str, str] = {
    # photon files and streams (photons.io)
    "PhotonStream": "photons.stream",
    "read_photons": "photons.io",
    "iter_photons": "photons.io",
    "read_histogram": "photons.io",
    "FileFormatError": "photons.io",
    "FileFormatWarning": "photons.io",
    # correlation and photon-statistics fits
    "g2": "photons.correlate",
    "fit_g2_pulsed": "photons.g2fit",
    "fit_g2_cw": "photons.g2fit",
    "FitWarning": "fitting",
    "decay_histogram": "photons.decay",
    "fit_decay": "photons.decay",
    "intensity_trace": "photons.trace",
    # spectra and magneto-PL
    "read_spectrum": "spectroscopy.spectra",
    "fit_peaks": "spectroscopy.spectra",
    "fit_zeeman": "spectroscopy.zeeman",
    "zeeman_energies": "spectroscopy.zeeman",
    "zeeman_states": "spectroscopy.zeeman",
    "fit_linewidth": "spectroscopy.linewidth",
    "fit_replicas": "spectroscopy.linewidth",
}


# subpackages and modules reachable as attributes (`analysis.photons.io` after its import)
_SUBMODULES = frozenset({"photons", "spectroscopy", "fitting", "units", "errors"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"qdsim.analysis.{name}")
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'qdsim.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"qdsim.analysis.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)


__all__ = sorted(_EXPORTS)
