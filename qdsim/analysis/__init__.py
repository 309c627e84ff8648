"""Single-dot measurement analysis: photon files, g2, lifetimes, spectra and Zeeman fans.

Names resolve lazily (PEP 562), so `import qdsim.analysis` stays cheap; numba, ptufile and the
fitting code load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # photon files and streams (io)
    "PhotonStream": "photons",
    "read_photons": "io",
    "iter_photons": "io",
    "read_histogram": "io",
    "FileFormatError": "io",
    "FileFormatWarning": "io",
    # correlation and photon-statistics fits
    "g2": "correlate",
    "fit_g2_pulsed": "g2fit",
    "fit_g2_cw": "g2fit",
    "FitWarning": "fitting",
    "decay_histogram": "decay",
    "fit_decay": "decay",
    "intensity_trace": "trace",
    # spectra and magneto-PL
    "read_spectrum": "spectra",
    "fit_peaks": "spectra",
    "fit_zeeman": "zeeman",
    "zeeman_energies": "zeeman",
    "zeeman_states": "zeeman",
    "fit_linewidth": "linewidth",
    "fit_replicas": "linewidth",
}


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'qdsim.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"qdsim.analysis.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
