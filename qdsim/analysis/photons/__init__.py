"""Photon counting: time-tagged photon files, g2(tau), lifetimes and intensity traces.

- `io`: PicoQuant PTU/PHU and legacy .pt2/.pt3/.ht2/.ht3 files, TCSPC histograms.
- `stream`: `PhotonStream`, the time tags every other module here works on.
- `correlate`: g2(tau) by a two-pointer sweep; `g2fit`: pulsed and CW g2 fits.
- `decay`: TCSPC histograms and lifetime fits (IRF reconvolution); `trace`: intensity traces.

This package never imports `qdsim.analysis.spectroscopy` (an import-linter contract); the shared
likelihood helpers sit one level up, in `qdsim.analysis.fitting`.
"""

from __future__ import annotations

from qdsim.analysis.photons.stream import PhotonStream

__all__ = ["PhotonStream"]
