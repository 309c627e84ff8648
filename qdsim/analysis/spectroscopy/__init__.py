"""Spectra and magneto-PL: PL spectra and peak fits, Zeeman fans, linewidth against temperature.

- `spectra`: spectrum files and `fit_peaks` (Lorentzian / Gaussian / Voigt lines).
- `zeeman`: the exciton fine-structure Hamiltonian in a field and `fit_zeeman`.
- `linewidth`: `fit_linewidth` (acoustic + LO-phonon broadening) and `fit_replicas`.

This package never imports `qdsim.analysis.photons` (an import-linter contract); the shared fit
helpers sit one level up, in `qdsim.analysis.fitting`.
"""
