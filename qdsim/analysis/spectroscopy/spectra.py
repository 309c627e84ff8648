"""Spectra: reading (wavelength or energy axes, air or vacuum), and multi-peak line fits.

- `read_spectrum` returns an `xarray.DataArray` on an ascending photon-energy axis ``energy``
  (eV), from a two-column text/CSV file, NumPy arrays or a DataArray (optionally with further
  dims, e.g. ``field`` in T or ``temperature`` in K for a series).
- Wavelengths in air are converted to vacuum with the refractive index of standard air of
  Ciddor (1996), Appl. Opt. 35, 1566, Eq. (1) with the constants of its Appendix A (15 C,
  101 325 Pa, dry, 450 ppm CO2), valid 230 nm - 1690 nm (`air_refractive_index`); then
  E = h c / lambda_vac (h, c, e from scipy.constants).
- `fit_peaks` fits Lorentzian, Gaussian or Voigt lines plus a background to one spectrum or a
  series, optionally sharing widths (e.g. resolution-limited lines over a field series), and
  returns centres, widths and areas with standard errors and the full covariance.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.constants as _sc
from scipy.optimize import least_squares
from scipy.signal import find_peaks, peak_widths
from scipy.special import voigt_profile

from qdsim.analysis.fitting import warn_not_converged

__all__ = [
    "HC_eV_nm",
    "GoodnessOfFit",
    "PeakFitResult",
    "air_refractive_index",
    "air_to_vacuum_nm",
    "vacuum_to_air_nm",
    "wavelength_to_energy",
    "read_spectrum",
    "fit_peaks",
]

HC_eV_nm: float = _sc.h * _sc.c / _sc.e * 1e9
"""h c in eV nm (scipy.constants): E[eV] = HC_eV_nm / lambda_vacuum[nm]."""

# Ciddor (1996), Appl. Opt. 35, 1566: standard phase index of dry air (15 C, 101325 Pa,
# 450 ppm CO2), n - 1 = k1/(k0 - s^2) + k3/(k2 - s^2), s = vacuum wavenumber in 1/um.
_K0, _K1, _K2, _K3 = 238.0185, 5792105e-8, 57.362, 167917e-8
_AIR_RANGE_NM = (230.0, 1690.0)


@dataclass(frozen=True)
class GoodnessOfFit:
    """chi^2 of a weighted least-squares fit, its degrees of freedom and chi^2 / dof.

    Supports attribute and key access (``gof.chi2_red`` or ``gof["chi2_red"]``). With unknown
    data errors (unit weights) chi2 is in the data's units squared.
    """

    chi2: float
    dof: int
    chi2_red: float = field(init=False)

    def __post_init__(self) -> None:
        red = self.chi2 / self.dof if self.dof > 0 else math.nan
        object.__setattr__(self, "chi2", float(self.chi2))
        object.__setattr__(self, "dof", int(self.dof))
        object.__setattr__(self, "chi2_red", float(red))

    def __getitem__(self, key: str) -> float:
        if key not in ("chi2", "dof", "chi2_red"):
            raise KeyError(key)
        return getattr(self, key)

    def as_dict(self) -> dict[str, float]:
        """{"chi2": ..., "dof": ..., "chi2_red": ...}."""
        return {"chi2": self.chi2, "dof": self.dof, "chi2_red": self.chi2_red}


# ------------------------------------------------------------------------------------------
# axis conversion
# ------------------------------------------------------------------------------------------


def _check_air_range(lam_nm: np.ndarray) -> None:
    lo, hi = _AIR_RANGE_NM
    if np.any((lam_nm < lo) | (lam_nm > hi)):
        raise ValueError(
            f"air wavelengths must lie in {lo:g}-{hi:g} nm (validity of Ciddor 1996); got "
            f"{float(np.min(lam_nm)):g}-{float(np.max(lam_nm)):g} nm"
        )


def air_refractive_index(vacuum_wavelength_nm: Any) -> np.ndarray:
    """Refractive index of standard dry air at a vacuum wavelength (nm), Ciddor (1996).

    Ciddor, Appl. Opt. 35, 1566 (1996): n - 1 = k1/(k0 - s^2) + k3/(k2 - s^2) with s the
    vacuum wavenumber in 1/um, k0 = 238.0185, k1 = 0.05792105, k2 = 57.362, k3 = 0.00167917
    (15 C, 101 325 Pa, 0 % humidity, 450 ppm CO2). E.g. n = 1.00027653 at 632.8 nm.
    Raises `ValueError` outside 230-1690 nm.
    """
    lam = np.asarray(vacuum_wavelength_nm, dtype=float)
    _check_air_range(lam)
    s2 = (1e3 / lam) ** 2
    return 1.0 + _K1 / (_K0 - s2) + _K3 / (_K2 - s2)


def _dn_ds(lam_vac_nm: np.ndarray) -> np.ndarray:
    s = 1e3 / lam_vac_nm
    s2 = s * s
    return 2 * s * (_K1 / (_K0 - s2) ** 2 + _K3 / (_K2 - s2) ** 2)


def vacuum_to_air_nm(vacuum_wavelength_nm: Any) -> np.ndarray:
    """Air wavelength (nm) of a vacuum wavelength (nm): lambda_air = lambda_vac / n (Ciddor)."""
    lam = np.asarray(vacuum_wavelength_nm, dtype=float)
    return lam / air_refractive_index(lam)


def air_to_vacuum_nm(air_wavelength_nm: Any) -> np.ndarray:
    """Vacuum wavelength (nm) of an air wavelength (nm): solves lambda_air = lambda_vac / n.

    Fixed-point iteration (n - 1 ~ 3e-4: each step gains ~3.5 digits), to machine precision.
    """
    lam_air = np.asarray(air_wavelength_nm, dtype=float)
    _check_air_range(lam_air)
    lam = lam_air.copy()
    for _ in range(8):
        lam = lam_air * air_refractive_index(lam)
    return lam


def wavelength_to_energy(wavelength_nm: Any, medium: Literal["air", "vacuum"]) -> np.ndarray:
    """Photon energy (eV) of a wavelength (nm) measured in ``medium`` ('air' or 'vacuum')."""
    lam = np.asarray(wavelength_nm, dtype=float)
    med = _check_medium(medium)
    lam_vac = air_to_vacuum_nm(lam) if med == "air" else lam
    return HC_eV_nm / lam_vac


def _check_medium(medium: str | None) -> str:
    if medium is None:
        raise ValueError(
            "wavelength axis: state the medium, medium='air' or medium='vacuum' (spectrometers "
            "are usually calibrated in air wavelengths)"
        )
    m = str(medium).strip().lower()
    if m not in ("air", "vacuum"):
        raise ValueError(f"medium must be 'air' or 'vacuum', got {medium!r}")
    return m


_UNITS = {
    "ev": "eV",
    "mev": "meV",
    "nm": "nm",
    "um": "um",
    "µm": "um",
    "micron": "um",
    "a": "angstrom",
    "å": "angstrom",
    "angstrom": "angstrom",
    "cm-1": "cm-1",
    "cm^-1": "cm-1",
    "1/cm": "cm-1",
}
_LENGTH_TO_NM = {"nm": 1.0, "um": 1e3, "angstrom": 0.1}


def _norm_unit(unit: str) -> str:
    u = str(unit).strip().lower()
    if u not in _UNITS:
        raise ValueError(f"axis unit {unit!r} not understood; use eV, meV, nm, um, angstrom, cm-1")
    return _UNITS[u]


def _axis_to_energy(
    x: np.ndarray, unit: str, medium: str | None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Axis values -> (energy eV, |dx/dE| Jacobian, attrs)."""
    u = _norm_unit(unit)
    attrs: dict[str, Any] = {"source_axis_unit": u}
    if u == "eV":
        return x.copy(), np.ones_like(x), attrs
    if u == "meV":
        return x / 1e3, np.full_like(x, 1e3), attrs
    if u == "cm-1":
        if np.any(x <= 0):
            raise ValueError("wavenumbers must be > 0")
        hc_eV_cm = HC_eV_nm * 1e-7
        attrs["source_medium"] = "vacuum"
        return x * hc_eV_cm, np.full_like(x, 1.0 / hc_eV_cm), attrs
    lam = x * _LENGTH_TO_NM[u]
    if np.any(lam <= 0):
        raise ValueError("wavelengths must be > 0")
    med = _check_medium(medium)
    attrs["source_medium"] = med
    if med == "vacuum":
        E = HC_eV_nm / lam
        dlam_dE = lam**2 / HC_eV_nm  # |d lambda_vac / dE|, nm/eV
    else:
        lam_vac = air_to_vacuum_nm(lam)
        n = air_refractive_index(lam_vac)
        s = 1e3 / lam_vac
        dair_dvac = 1.0 / n + s * _dn_ds(lam_vac) / n**2
        E = HC_eV_nm / lam_vac
        dlam_dE = lam_vac**2 / HC_eV_nm * dair_dvac
        attrs["air_index_formula"] = "Ciddor 1996, Appl. Opt. 35, 1566 (standard dry air)"
    return E, dlam_dE / _LENGTH_TO_NM[u], attrs


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------

_HEADER_UNIT_HINTS = [
    (re.compile(r"mev", re.I), "meV"),
    (re.compile(r"(^|[^a-z])ev|energy", re.I), "eV"),
    (re.compile(r"nm|wavelength|lambda", re.I), "nm"),
    (re.compile(r"cm-1|cm\^-1|wavenumber", re.I), "cm-1"),
]


def _read_text(path: Path, columns: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, str | None]:
    rows: list[list[str]] = []
    header: list[str] | None = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = [ln.strip() for ln in fh]
    content = [ln for ln in lines if ln and not ln.startswith(("#", "%", "//"))]
    if not content:
        raise ValueError(f"{path}: no data lines")
    sample = content[min(1, len(content) - 1)]
    delim: str | None
    if "," in sample:
        delim = ","
    elif ";" in sample:
        delim = ";"
    elif "\t" in sample:
        delim = "\t"
    else:
        delim = None

    def split(ln: str) -> list[str]:
        return [c.strip() for c in (ln.split(delim) if delim else ln.split())]

    for k, ln in enumerate(content):
        parts = split(ln)
        try:
            [float(p) for p in parts if p != ""]
        except ValueError:
            if k == 0 and header is None:
                header = parts
                continue
            raise ValueError(f"{path}: line {k + 1} is not numeric: {ln[:60]!r}") from None
        rows.append(parts)
    if not rows:
        raise ValueError(f"{path}: no numeric data")
    ncol = {len(r) for r in rows}
    if len(ncol) != 1:
        raise ValueError(f"{path}: rows have different numbers of columns {sorted(ncol)}")
    data = np.array([[float(v) for v in r] for r in rows])
    if data.shape[1] < 2:
        raise ValueError(f"{path}: need two columns (axis, intensity)")
    i, j = columns
    if max(i, j) >= data.shape[1]:
        raise ValueError(f"{path}: has {data.shape[1]} columns, asked for {columns}")
    hint = None
    if header is not None and len(header) > i:
        for rx, u in _HEADER_UNIT_HINTS:
            if rx.search(header[i]):
                hint = u
                break
    return data[:, i], data[:, j], hint


def read_spectrum(
    source: str | os.PathLike[str] | np.ndarray | Sequence[float] | Any,
    intensity: np.ndarray | Sequence[float] | None = None,
    *,
    unit: str | None = None,
    medium: Literal["air", "vacuum"] | None = None,
    jacobian: bool = True,
    series: tuple[str, Sequence[float] | np.ndarray] | None = None,
    columns: tuple[int, int] = (0, 1),
    name: str = "intensity",
    sum_over: str | Sequence[str] | None = None,
    saturation: float | None = None,
) -> Any:
    """Read a spectrum (or a series) onto an ascending photon-energy axis in eV.

    **Arguments:**
    - `source`: a two-column text/CSV file (axis, intensity; comma, semicolon, tab or blank
      separated; lines starting with #, % or // skipped; an optional header row, whose first
      column name may give the unit: 'energy_eV', 'wavelength_nm', 'meV', 'cm-1'), or the axis
      values as an array (then `intensity` is required), or an `xarray.DataArray` whose spectral
      dim is 'energy', 'wavelength' or 'wavenumber' (unit from `unit` or the coordinate's
      ``units`` attr; other dims such as 'field' or 'temperature' are kept).
    - `intensity`: intensities for array input, shape (n,) or (m, n) for m spectra.
    - `unit`: axis unit: 'eV', 'meV', 'nm', 'um', 'angstrom', 'cm-1' (vacuum wavenumber).
      Required unless a header or coordinate attribute gives it.
    - `medium`: 'air' or 'vacuum' for wavelength axes (required: it is never guessed). Air
      wavelengths are converted with the Ciddor (1996) index of standard air.
    - `jacobian`: True (default) treats the intensity as a spectral density per unit of the
      input axis and converts it to per eV: I_E = I_lambda |d lambda/dE| (= lambda_vac^2/hc
      for vacuum wavelengths, times d lambda_air/d lambda_vac for air), so integrals are
      conserved. False leaves the values as they are (right for counts per detector pixel,
      i.e. per bin: the bins are relabelled, not resized).
    - `series`: for 2-D array input, ``(dim_name, values)`` of the series, e.g.
      ``("field", [0, 1, 2])`` (T) or ``("temperature", [...])`` (K).
    - `columns`: (axis column, intensity column) of a text file.
    - `name`: name of the returned DataArray.
    - `sum_over`, `saturation`: for spectrometer camera files only, see below.

    **Camera files.** Andor `.sif` and Princeton Instruments `.spe` (2.x and 3.0) files are
    recognised (SIF by content, SPE by extension or header) and read through `sif-parser` and
    `spexread` (`spectroscopy.camera`): the axis is the wavelength calibration stored in the
    file (`medium` still required; a file without calibration is a `FileFormatError`), frames
    and rows become dims ``frame`` and ``row`` when there is more than one (``sum_over="frame"``,
    ``"row"`` or both sums them), the metadata (exposure, gate delay and width, detector,
    accumulations, temperature, calibration) go to attrs, and NaN or saturated pixels raise a
    `FileFormatWarning` (integer data saturate at their type's maximum; `saturation` sets the
    level, e.g. for float SIF data). The counts are per pixel: `jacobian=True` divides them by
    the pixel width in wavelength before the Jacobian (counts per eV), False keeps counts per
    pixel.

    **Returns:** `xarray.DataArray` with dim ``energy`` (eV, ascending; coordinate attrs
    ``units = "eV"``) last, plus any series dim; attrs record the source unit, medium and
    whether the Jacobian was applied.

    **Raises:** `ValueError` for unknown units, a wavelength without medium, non-finite axis
    values, mismatched shapes, air wavelengths outside 230-1690 nm; `FileNotFoundError`.
    """
    import xarray as xr

    camera_only = sum_over is not None or saturation is not None
    if camera_only and not isinstance(source, str | os.PathLike):
        raise ValueError("sum_over= and saturation= apply to camera files (.sif, .spe)")
    extra_dims: list[str] = []
    extra_coords: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    if isinstance(source, xr.DataArray):
        da = source
        spec_dims = [d for d in da.dims if d in ("energy", "wavelength", "wavenumber")]
        if len(spec_dims) != 1:
            raise ValueError(
                f"DataArray needs one spectral dim named energy, wavelength or wavenumber; "
                f"dims are {da.dims}"
            )
        sd = spec_dims[0]
        da = da.transpose(..., sd)
        if sd in da.coords:
            x = np.asarray(da[sd].values, dtype=float)
            if unit is None:
                unit = da[sd].attrs.get("units")
        else:
            raise ValueError(f"DataArray has no coordinate for its spectral dim {sd!r}")
        if unit is None:
            unit = {"energy": None, "wavelength": None, "wavenumber": "cm-1"}[sd]
        if unit is None:
            raise ValueError(f"state the unit of the {sd!r} axis (unit=... or its 'units' attr)")
        y = np.asarray(da.values, dtype=float)
        extra_dims = [str(d) for d in da.dims[:-1]]
        extra_coords = {d: da.coords[d] for d in da.coords if d != sd and sd not in da[d].dims}
        attrs.update({k: v for k, v in da.attrs.items() if isinstance(v, str | int | float)})
        name = str(da.name) if da.name is not None else name
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"no such spectrum file: {path}")
        if intensity is not None:
            raise ValueError("intensity= is for array input, not files")
        from qdsim.analysis.spectroscopy.camera import is_camera_file, spectrum_from_camera_file

        if is_camera_file(path):
            return spectrum_from_camera_file(
                path,
                medium=medium,
                jacobian=jacobian,
                sum_over=sum_over,
                saturation=saturation,
                unit=unit,
                name=name,
            )
        if camera_only:
            raise ValueError(f"{path}: sum_over= and saturation= apply to camera files only")
        x, y, hint = _read_text(path, columns)
        if unit is None:
            unit = hint
        if unit is None:
            raise ValueError(
                f"{path}: state the axis unit (unit='nm', 'eV', ...); the file has no header "
                "naming it"
            )
        attrs["source_file"] = str(path)
    else:
        if intensity is None:
            raise ValueError("array input needs intensity=")
        x = np.asarray(source, dtype=float)
        y = np.asarray(intensity, dtype=float)
        if unit is None:
            raise ValueError("state the axis unit (unit='nm', 'eV', 'meV', 'um', 'cm-1')")
        if x.ndim != 1:
            raise ValueError(f"axis must be 1-D, got shape {x.shape}")
        if y.ndim == 2:
            if series is None:
                raise ValueError("2-D intensity needs series=(dim_name, values)")
            sname, svals = series
            svals = np.asarray(svals)
            if svals.shape != (y.shape[0],):
                raise ValueError(f"series has {svals.size} values, intensity {y.shape[0]} rows")
            extra_dims = [sname]
            extra_coords = {sname: svals}
        elif y.ndim != 1:
            raise ValueError(f"intensity must be 1-D or 2-D, got shape {y.shape}")
    if x.ndim != 1 or y.shape[-1] != x.size:
        raise ValueError(f"axis has {x.size} points but intensity has shape {y.shape}")
    if x.size < 2:
        raise ValueError("a spectrum needs at least two points")
    if not np.all(np.isfinite(x)):
        raise ValueError("axis values must be finite")
    E, jac, conv_attrs = _axis_to_energy(x, unit, medium)
    attrs.update(conv_attrs)
    if jacobian:
        y = y * jac
    attrs["jacobian_applied"] = int(bool(jacobian))
    attrs["intensity_per"] = "eV" if jacobian else "bin"
    order = np.argsort(E)
    E = E[order]
    y = y[..., order]
    coords = dict(extra_coords)
    coords["energy"] = xr.Variable("energy", E, {"units": "eV", "long_name": "photon energy"})
    for d in extra_dims:
        if d == "field" and d in coords and not isinstance(coords[d], xr.DataArray):
            coords[d] = xr.Variable(d, np.asarray(coords[d]), {"units": "T"})
        if d == "temperature" and d in coords and not isinstance(coords[d], xr.DataArray):
            coords[d] = xr.Variable(d, np.asarray(coords[d]), {"units": "K"})
    return xr.DataArray(y, dims=[*extra_dims, "energy"], coords=coords, name=name, attrs=attrs)


# ------------------------------------------------------------------------------------------
# line shapes
# ------------------------------------------------------------------------------------------

_FWHM_G = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _profile(shape: str, x: np.ndarray, w: float, wg: float) -> np.ndarray:
    """Unit-area line shape; w = FWHM (Lorentzian / Gaussian), Voigt: w Lorentz, wg Gauss."""
    if shape == "lorentzian":
        h = 0.5 * w
        return (h / math.pi) / (x * x + h * h)
    if shape == "gaussian":
        s = w / _FWHM_G
        return np.exp(-0.5 * (x / s) ** 2) / (s * math.sqrt(2 * math.pi))
    return voigt_profile(x, wg / _FWHM_G, 0.5 * w)


def voigt_fwhm(fwhm_lorentz: Any, fwhm_gauss: Any) -> np.ndarray:
    """FWHM of a Voigt profile, Olivero & Longbothum (1977), accurate to 2e-4 relative."""
    fl = np.asarray(fwhm_lorentz, dtype=float)
    fg = np.asarray(fwhm_gauss, dtype=float)
    return 0.5346 * fl + np.sqrt(0.2166 * fl**2 + fg**2)


# ------------------------------------------------------------------------------------------
# peak fitting
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeakFitResult:
    """Result of `fit_peaks`. Arrays are (n_spectra, n_peaks), NaN-padded, peaks ascending.

    ``center_eV``/``center_err_eV`` (eV), ``fwhm_eV``/``fwhm_err_eV`` (eV; Voigt: total FWHM
    from Olivero-Longbothum, with the Lorentzian and Gaussian parts in ``fwhm_lorentz_eV`` /
    ``fwhm_gauss_eV``), ``area`` / ``area_err`` (intensity x eV), ``height`` (peak value of
    the line alone). ``background`` (n_spectra, 2): offset and slope (per eV, about the centre
    of the energy window). ``params``/``stderr``: dicts over ``param_names``; ``covariance`` /
    ``correlation`` over the same order; ``center_param`` / ``area_param`` (n_spectra,
    n_peaks; -1 padding) give each line's row in them. ``series_dim`` / ``series_values``:
    the series (None for one spectrum).
    """

    center_eV: np.ndarray
    center_err_eV: np.ndarray
    fwhm_eV: np.ndarray
    fwhm_err_eV: np.ndarray
    area: np.ndarray
    area_err: np.ndarray
    height: np.ndarray
    fwhm_lorentz_eV: np.ndarray
    fwhm_gauss_eV: np.ndarray
    background: np.ndarray
    params: dict[str, float]
    stderr: dict[str, float]
    param_names: tuple[str, ...]
    covariance: np.ndarray
    correlation: np.ndarray
    gof: GoodnessOfFit
    converged: bool
    shape: str
    shared_width: str
    series_dim: str | None
    series_values: np.ndarray | None
    energy_eV: np.ndarray
    data: np.ndarray
    best_fit: np.ndarray
    absolute_sigma: bool
    center_param: np.ndarray
    area_param: np.ndarray
    bg_center_eV: float = 0.0
    notes: tuple[str, ...] = ()

    @property
    def n_peaks(self) -> np.ndarray:
        """Number of fitted peaks per spectrum."""
        return np.sum(np.isfinite(self.center_eV), axis=1)

    def lines(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat (series value, centre eV, centre error eV) over all peaks: `fit_zeeman` input."""
        s = (
            np.zeros(self.center_eV.shape[0])
            if self.series_values is None
            else np.asarray(self.series_values, dtype=float)
        )
        m = np.isfinite(self.center_eV)
        ss = np.broadcast_to(s[:, None], self.center_eV.shape)
        return ss[m], self.center_eV[m], self.center_err_eV[m]

    def peak_table(self) -> list[dict[str, float]]:
        """One dict per peak: series value, index, centre, FWHM, area and their errors."""
        rows = []
        for i in range(self.center_eV.shape[0]):
            for j in range(self.center_eV.shape[1]):
                if not np.isfinite(self.center_eV[i, j]):
                    continue
                rows.append(
                    {
                        "series": (
                            float(self.series_values[i]) if self.series_values is not None else 0.0
                        ),
                        "peak": j,
                        "center_eV": float(self.center_eV[i, j]),
                        "center_err_eV": float(self.center_err_eV[i, j]),
                        "fwhm_eV": float(self.fwhm_eV[i, j]),
                        "fwhm_err_eV": float(self.fwhm_err_eV[i, j]),
                        "area": float(self.area[i, j]),
                        "area_err": float(self.area_err[i, j]),
                    }
                )
        return rows

    def to_dataset(self) -> Any:
        """xarray Dataset: peak parameters on (series, peak), data and best fit on energy."""
        import xarray as xr

        sdim = self.series_dim or "spectrum"
        svals = (
            np.asarray(self.series_values)
            if self.series_values is not None
            else np.arange(self.center_eV.shape[0])
        )
        pk = ("spectrum_index", "peak")
        ds = xr.Dataset(
            {
                "center": (pk, self.center_eV, {"units": "eV"}),
                "center_err": (pk, self.center_err_eV, {"units": "eV"}),
                "fwhm": (pk, self.fwhm_eV, {"units": "eV"}),
                "fwhm_err": (pk, self.fwhm_err_eV, {"units": "eV"}),
                "fwhm_lorentz": (pk, self.fwhm_lorentz_eV, {"units": "eV"}),
                "fwhm_gauss": (pk, self.fwhm_gauss_eV, {"units": "eV"}),
                "area": (pk, self.area, {"units": "intensity eV"}),
                "area_err": (pk, self.area_err, {"units": "intensity eV"}),
                "height": (pk, self.height),
                "background": (("spectrum_index", "bg_term"), self.background),
                "data": (("spectrum_index", "energy"), self.data),
                "best_fit": (("spectrum_index", "energy"), self.best_fit),
            },
            coords={
                "energy": ("energy", self.energy_eV, {"units": "eV"}),
                sdim: ("spectrum_index", svals),
                "peak": np.arange(self.center_eV.shape[1]),
                "bg_term": ["offset", "slope_per_eV"],
            },
            attrs={
                "shape": self.shape,
                "shared_width": self.shared_width,
                "chi2": self.gof.chi2,
                "dof": self.gof.dof,
                "chi2_red": self.gof.chi2_red,
                "converged": int(self.converged),
                "absolute_sigma": int(self.absolute_sigma),
                "bg_center_eV": self.bg_center_eV,
                "notes": json.dumps(list(self.notes)),
            },
        )
        return ds


def _noise_mad(y: np.ndarray) -> float:
    d = np.diff(y)
    mad = float(np.median(np.abs(d - np.median(d)))) * 1.4826 / math.sqrt(2.0)
    return mad if mad > 0 else float(np.std(y)) * 1e-3 + 1e-300


def _detect(
    E: np.ndarray, y: np.ndarray, n: int | None, min_snr: float
) -> tuple[np.ndarray, np.ndarray]:
    """Initial centres and FWHMs (eV) from the most prominent local maxima."""
    noise = _noise_mad(y)
    pk, props = find_peaks(y, prominence=min_snr * noise)
    if n is not None and pk.size < n:
        pk, props = find_peaks(y, prominence=0.0)
    if pk.size == 0:
        raise ValueError("no peak found in the spectrum; give centers_eV")
    order = np.argsort(props["prominences"])[::-1]
    if n is not None:
        if pk.size < n:
            raise ValueError(f"asked for {n} peaks but the spectrum shows only {pk.size} maxima")
        order = order[:n]
    pk = np.sort(pk[order])
    w_idx = peak_widths(y, pk, rel_height=0.5)[0]
    dE = np.gradient(E)[pk]
    return E[pk], np.maximum(w_idx * dE, 2 * np.abs(dE))


@dataclass(frozen=True, eq=False)
class _SpectraData:
    """The validated input of `fit_peaks`: energies ascending, (m, n) intensities and errors."""

    E: np.ndarray
    Y: np.ndarray
    S: np.ndarray
    absolute: bool  # errors given (True) or scaled by chi^2_red afterwards (False)
    series_dim: str | None
    series_values: np.ndarray | None


@dataclass(eq=False)
class _PeakLayout:
    """Where every line's centre, width and area, and every background term, sit in the
    parameter vector; with start values and bounds. `model(x)` gives the (m, n) spectra."""

    E: np.ndarray
    shape_out: tuple[int, int]
    shape: str
    gaussian_fwhm_eV: float | None
    counts: list[int]
    Ec: float
    names: list[str] = field(default_factory=list)
    x0: list[float] = field(default_factory=list)
    lb: list[float] = field(default_factory=list)
    ub: list[float] = field(default_factory=list)
    width_idx: dict[tuple[int, int], int] = field(default_factory=dict)
    center_idx: dict[tuple[int, int], int] = field(default_factory=dict)
    area_idx: dict[tuple[int, int], int] = field(default_factory=dict)
    bg_idx: dict[int, list[int]] = field(default_factory=dict)
    gw_idx: int | None = None

    def add(self, nm: str, v: float, lo: float = -np.inf, hi: float = np.inf) -> int:
        self.names.append(nm)
        self.x0.append(float(np.clip(v, lo, hi)))
        self.lb.append(lo)
        self.ub.append(hi)
        return len(self.names) - 1

    def gauss_fwhm(self, x: np.ndarray) -> float:
        if self.gw_idx is not None:
            return x[self.gw_idx]
        return self.gaussian_fwhm_eV if self.gaussian_fwhm_eV is not None else 0.0

    def model(self, x: np.ndarray) -> np.ndarray:
        E = self.E
        out = np.zeros(self.shape_out)
        gw = self.gauss_fwhm(x)
        for i in range(self.shape_out[0]):
            for j in range(self.counts[i]):
                out[i] += x[self.area_idx[(i, j)]] * _profile(
                    self.shape, E - x[self.center_idx[(i, j)]], x[self.width_idx[(i, j)]], gw
                )
            b = self.bg_idx[i]
            if b:
                out[i] += x[b[0]]
            if len(b) == 2:
                out[i] += x[b[1]] * (E - self.Ec)
        return out


def _validate_spectra(
    spectrum: Any,
    *,
    shape: str,
    background: str,
    shared_width: str,
    sigma: float | np.ndarray | str | None,
    window_eV: tuple[float, float] | None,
) -> _SpectraData:
    """Check the options and the data; sort by energy, cut the window, build the errors."""
    import xarray as xr

    if shape not in ("lorentzian", "gaussian", "voigt"):
        raise ValueError(f"shape must be lorentzian, gaussian or voigt, got {shape!r}")
    if background not in ("none", "constant", "linear"):
        raise ValueError(f"background must be none, constant or linear, got {background!r}")
    if shared_width not in ("none", "peaks", "series", "all"):
        raise ValueError(f"shared_width must be none, peaks, series or all, got {shared_width!r}")
    series_dim: str | None = None
    series_values: np.ndarray | None = None
    if isinstance(spectrum, xr.DataArray):
        if "energy" not in spectrum.dims:
            raise ValueError("the DataArray needs an 'energy' dim (eV); use read_spectrum")
        other = [d for d in spectrum.dims if d != "energy"]
        if len(other) > 1:
            raise ValueError(f"at most one series dim, got {other}")
        da = spectrum.transpose(*other, "energy")
        E = np.asarray(da["energy"].values, dtype=float)
        Y = np.asarray(da.values, dtype=float)
        if other:
            series_dim = str(other[0])
            series_values = (
                np.asarray(da[series_dim].values)
                if series_dim in da.coords
                else np.arange(Y.shape[0])
            )
    else:
        try:
            E, Y = spectrum
        except (TypeError, ValueError):
            raise ValueError("spectrum must be a DataArray or (energy_eV, intensity)") from None
        E = np.asarray(E, dtype=float)
        Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y[None, :]
    if E.ndim != 1 or Y.ndim != 2 or Y.shape[1] != E.size:
        raise ValueError(f"energy has shape {E.shape}, intensity {Y.shape}: mismatch")
    if not (np.all(np.isfinite(E)) and np.all(np.isfinite(Y))):
        raise ValueError("spectrum contains NaN or inf")
    # errors, in the input order (an array sigma is sorted and cut with the data)
    absolute = sigma is not None
    if sigma is None:
        S = np.ones_like(Y)
    elif isinstance(sigma, str):
        if sigma != "poisson":
            raise ValueError(f"sigma must be None, 'poisson', a number or an array; got {sigma!r}")
        S = np.sqrt(np.maximum(Y, 1.0))
    else:
        try:
            S = np.broadcast_to(np.asarray(sigma, dtype=float), Y.shape).copy()
        except ValueError:
            raise ValueError(
                f"sigma of shape {np.shape(sigma)} does not match the data {Y.shape}"
            ) from None
        if np.any(~np.isfinite(S)) or np.any(S <= 0):
            raise ValueError("sigma must be finite and > 0")
    order = np.argsort(E)
    E, Y, S = E[order], Y[:, order], S[:, order]
    if window_eV is not None:
        lo, hi = window_eV
        m = (E >= lo) & (E <= hi)
        if m.sum() < 3:
            raise ValueError(f"window {window_eV} eV holds {m.sum()} points")
        E, Y, S = E[m], Y[:, m], S[:, m]
    if np.any(np.diff(E) <= 0):
        raise ValueError("energy axis has repeated values")
    return _SpectraData(E, Y, S, absolute, series_dim, series_values)


def _seed_lines(
    d: _SpectraData,
    n_peaks: int | Sequence[int] | None,
    centers_eV: Sequence[float] | Sequence[Sequence[float]] | None,
    min_snr: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(centres, FWHMs) in eV to start every spectrum's lines from: the given centres, or the
    most prominent maxima."""
    E, Y = d.E, d.Y
    M = Y.shape[0]
    if centers_eV is not None:
        c_arr = list(centers_eV)
        per = (
            [list(map(float, c)) for c in c_arr]
            if c_arr and isinstance(c_arr[0], Sequence | np.ndarray)
            else [list(map(float, c_arr))] * M
        )
        if len(per) != M:
            raise ValueError(f"centers_eV has {len(per)} lists for {M} spectra")
        seeds = []
        for i in range(M):
            c = np.sort(np.asarray(per[i]))
            dE = float(np.median(np.diff(E)))
            seeds.append((c, np.full(c.size, 4 * dE)))
        return seeds
    nn = [n_peaks] * M if n_peaks is None or isinstance(n_peaks, int) else list(n_peaks)
    if len(nn) != M:
        raise ValueError(f"n_peaks has {len(nn)} entries for {M} spectra")
    return [_detect(E, Y[i], nn[i], min_snr) for i in range(M)]


def _layout_peaks(
    d: _SpectraData,
    seeds: list[tuple[np.ndarray, np.ndarray]],
    *,
    shape: str,
    background: str,
    shared_width: str,
    gaussian_fwhm_eV: float | None,
) -> _PeakLayout:
    """The parameter vector (shared widths first, then per spectrum: centres, widths, areas,
    background), start values from the seeds and bounds (centres inside the axis, widths
    between 1e-3 of the finest step and the span)."""
    E, Y = d.E, d.Y
    M = Y.shape[0]
    counts = [s[0].size for s in seeds]
    if shared_width == "series" and len(set(counts)) != 1:
        raise ValueError("shared_width='series' needs the same number of peaks in every spectrum")
    K = max(counts)
    span = float(E[-1] - E[0])
    dEmin = float(np.min(np.diff(E)))
    Ec = float(0.5 * (E[0] + E[-1]))
    lay = _PeakLayout(E, Y.shape, shape, gaussian_fwhm_eV, counts, Ec)
    add = lay.add
    wmin = dEmin * 1e-3
    if shared_width == "all":
        w_all = float(np.median(np.concatenate([s[1] for s in seeds])))
        iw = add("width_eV", w_all, wmin, span)
        lay.width_idx = {(i, j): iw for i in range(M) for j in range(counts[i])}
    elif shared_width == "series":
        for j in range(K):
            iw = add(f"width_{j}_eV", float(np.median([s[1][j] for s in seeds])), wmin, span)
            for i in range(M):
                lay.width_idx[(i, j)] = iw
    if shape == "voigt" and gaussian_fwhm_eV is None:
        lay.gw_idx = add(
            "gauss_fwhm_eV", float(np.median(np.concatenate([s[1] for s in seeds]))) / 2, wmin, span
        )
    for i in range(M):
        c, w = seeds[i]
        if shared_width == "peaks":
            iw = add(f"width_s{i}_eV", float(np.median(w)), wmin, span)
            for j in range(counts[i]):
                lay.width_idx[(i, j)] = iw
        base = float(np.percentile(Y[i], 10)) if background != "none" else 0.0
        for j in range(counts[i]):
            lay.center_idx[(i, j)] = add(f"center_s{i}_p{j}_eV", c[j], E[0], E[-1])
            if shared_width == "none":
                lay.width_idx[(i, j)] = add(f"width_s{i}_p{j}_eV", w[j], wmin, span)
            k = int(np.argmin(np.abs(E - c[j])))
            # area ~ height x width x (pi/2 for a Lorentzian)
            lay.area_idx[(i, j)] = add(f"area_s{i}_p{j}", max(Y[i, k] - base, 0.0) * w[j] * 1.5)
        lay.bg_idx[i] = []
        if background in ("constant", "linear"):
            lay.bg_idx[i].append(add(f"bg_offset_s{i}", base))
        if background == "linear":
            lay.bg_idx[i].append(add(f"bg_slope_s{i}_per_eV", 0.0))
    P = len(lay.names)
    if Y.size <= P:
        raise ValueError(f"{Y.size} data points for {P} parameters: too few")
    return lay


def _least_squares_peaks(d: _SpectraData, lay: _PeakLayout) -> Any:
    """Weighted least squares (trust region reflective, bounds); warns when not converged."""
    Y, S = d.Y, d.S
    P = len(lay.names)

    def resid(x: np.ndarray) -> np.ndarray:
        return ((lay.model(x) - Y) / S).ravel()

    res = least_squares(
        resid,
        np.array(lay.x0),
        bounds=(np.array(lay.lb), np.array(lay.ub)),
        method="trf",
        x_scale="jac",
        xtol=1e-12,
        ftol=1e-12,
        gtol=1e-12,
        max_nfev=200 * (P + 1),
    )
    if not res.success:
        warn_not_converged("fit_peaks", str(res.message), stacklevel=4)
    return res


def _peak_covariance(
    res: Any, d: _SpectraData, lay: _PeakLayout
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int, list[str]]:
    """(covariance, stderr, correlation, chi2, dof, notes) from the Jacobian at the optimum
    (pseudo-inverse over its non-zero singular values; scaled by chi^2_red without sigma)."""
    x = res.x
    r = res.fun
    P = len(lay.names)
    chi2 = float(r @ r)
    dof = d.Y.size - P
    J = res.jac
    notes: list[str] = []
    try:
        _, s, Vt = np.linalg.svd(J, full_matrices=False)
        good = s > 1e-12 * s[0]
        cov = (Vt[good].T / s[good] ** 2) @ Vt[good]
        if not good.all():
            notes.append("rank-deficient Jacobian: some errors are unreliable")
    except np.linalg.LinAlgError:
        cov = np.full((P, P), np.nan)
    if not d.absolute:
        cov = cov * chi2 / dof
    sd = np.sqrt(np.abs(np.diag(cov)))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    lb, ub, names = lay.lb, lay.ub, lay.names
    at_bound = [names[k] for k in range(P) if x[k] <= lb[k] * (1 + 1e-9) or x[k] >= ub[k]]
    if at_bound:
        notes.append("at a bound: " + ", ".join(at_bound))
    return cov, sd, corr, chi2, dof, notes


def _assemble_peaks(
    d: _SpectraData,
    lay: _PeakLayout,
    res: Any,
    cov: np.ndarray,
    sd: np.ndarray,
    corr: np.ndarray,
    chi2: float,
    dof: int,
    notes: list[str],
    *,
    shared_width: str,
) -> PeakFitResult:
    """Per-line tables (M, K), NaN-padded and sorted by centre; Voigt FWHM errors propagated
    from the Lorentzian (and fitted Gaussian) widths."""
    x = res.x
    E, Y = d.E, d.Y
    M = Y.shape[0]
    counts = lay.counts
    K = max(counts)
    shape, names, gw_idx = lay.shape, lay.names, lay.gw_idx
    gaussian_fwhm_eV = lay.gaussian_fwhm_eV
    shp = (M, K)
    cen, cerr, fw, fwerr, ar, arerr, ht, fl, fg = (np.full(shp, np.nan) for _ in range(9))
    cpar = np.full(shp, -1, dtype=int)
    apar = np.full(shp, -1, dtype=int)
    gw = float(x[gw_idx] if gw_idx is not None else (gaussian_fwhm_eV if gaussian_fwhm_eV else 0.0))
    for i in range(M):
        for j in range(counts[i]):
            ic, iw, ia = lay.center_idx[(i, j)], lay.width_idx[(i, j)], lay.area_idx[(i, j)]
            cen[i, j], cerr[i, j] = x[ic], sd[ic]
            cpar[i, j], apar[i, j] = ic, ia
            ar[i, j], arerr[i, j] = x[ia], sd[ia]
            w = x[iw]
            if shape == "voigt":
                fl[i, j] = w
                fg[i, j] = gw
                fw[i, j] = float(voigt_fwhm(w, gw))
                # propagate: d fwhm / d w_L (Gaussian part's error, if fitted, added)
                dfl = 0.5346 + 0.2166 * w / math.sqrt(0.2166 * w * w + gw * gw)
                var = dfl**2 * cov[iw, iw]
                if gw_idx is not None:
                    dfg = gw / math.sqrt(0.2166 * w * w + gw * gw)
                    var += dfg**2 * cov[gw_idx, gw_idx] + 2 * dfl * dfg * cov[iw, gw_idx]
                fwerr[i, j] = math.sqrt(abs(var))
            else:
                fw[i, j], fwerr[i, j] = w, sd[iw]
                if shape == "lorentzian":
                    fl[i, j] = w
                else:
                    fg[i, j] = w
            ht[i, j] = x[ia] * float(_profile(shape, np.zeros(1), w, gw)[0])
        # sort peaks by centre
        o = np.argsort(cen[i, : counts[i]])
        for arr in (cen, cerr, fw, fwerr, ar, arerr, ht, fl, fg, cpar, apar):
            arr[i, : counts[i]] = arr[i, : counts[i]][o]
    bgarr = np.zeros((M, 2))
    for i in range(M):
        for k, ib in enumerate(lay.bg_idx[i]):
            bgarr[i, k] = x[ib]
    ro = _readonly
    return PeakFitResult(
        center_eV=ro(cen),
        center_err_eV=ro(cerr),
        fwhm_eV=ro(fw),
        fwhm_err_eV=ro(fwerr),
        area=ro(ar),
        area_err=ro(arerr),
        height=ro(ht),
        fwhm_lorentz_eV=ro(fl),
        fwhm_gauss_eV=ro(fg),
        background=ro(bgarr),
        params={k: float(v) for k, v in zip(names, x, strict=True)},
        stderr={k: float(v) for k, v in zip(names, sd, strict=True)},
        param_names=tuple(names),
        covariance=ro(cov),
        correlation=ro(corr),
        gof=GoodnessOfFit(chi2, dof),
        converged=bool(res.success),
        shape=shape,
        shared_width=shared_width,
        series_dim=d.series_dim,
        series_values=None if d.series_values is None else ro(d.series_values),
        energy_eV=ro(E),
        data=ro(Y),
        best_fit=ro(lay.model(x)),
        absolute_sigma=d.absolute,
        center_param=ro(cpar),
        area_param=ro(apar),
        bg_center_eV=lay.Ec,
        notes=tuple(notes),
    )


def fit_peaks(
    spectrum: Any,
    n_peaks: int | Sequence[int] | None = None,
    *,
    centers_eV: Sequence[float] | Sequence[Sequence[float]] | None = None,
    shape: Literal["lorentzian", "gaussian", "voigt"] = "lorentzian",
    background: Literal["none", "constant", "linear"] = "constant",
    shared_width: Literal["none", "peaks", "series", "all"] = "none",
    gaussian_fwhm_eV: float | None = None,
    sigma: float | np.ndarray | Literal["poisson"] | None = None,
    window_eV: tuple[float, float] | None = None,
    min_snr: float = 5.0,
) -> PeakFitResult:
    """Fit lines plus a background to a spectrum or a series of spectra (energy axis in eV).

    Model per spectrum: sum_j A_j P(E - E_j; w_j) + b0 + b1 (E - E_c), P a unit-area Lorentzian
    (w = FWHM), Gaussian (w = FWHM) or Voigt (Lorentzian FWHM w, Gaussian FWHM shared over all
    lines and spectra, or fixed by `gaussian_fwhm_eV`, e.g. the spectrometer resolution).
    Weighted least squares (trust region, widths > 0); errors from the Jacobian at the optimum.

    **Arguments:**
    - `spectrum`: `xarray.DataArray` from `read_spectrum` (dim 'energy' in eV, optionally one
      series dim), or a tuple ``(energy_eV, intensity)`` with intensity 1-D or (m, n).
    - `n_peaks`: number of lines per spectrum (int, or one per spectrum); the most prominent
      maxima seed them. None: every maximum with prominence > `min_snr` x noise.
    - `centers_eV`: starting centres instead (one list, or one list per spectrum).
    - `shape`: 'lorentzian', 'gaussian' or 'voigt'.
    - `background`: 'none', 'constant' or 'linear'.
    - `shared_width`: 'none' (a width per line), 'peaks' (one width per spectrum), 'series'
      (a width per line index, shared over the series; needs equal line counts), 'all' (one
      width for everything: resolution-limited lines).
    - `gaussian_fwhm_eV`: Voigt only: fix the Gaussian FWHM (eV); None fits one shared value.
    - `sigma`: intensity errors: None (equal weights; covariance scaled by chi^2_red),
      'poisson' (sqrt(max(y, 1)), counts), a number or an array like the data (absolute).
    - `window_eV`: (low, high) energy range to fit, eV.
    - `min_snr`: detection threshold for automatic seeding.

    **Returns:** `PeakFitResult`. **Raises:** `ValueError` on NaN data, too few points for the
    parameters, unknown options, or no peak found.
    """
    data = _validate_spectra(
        spectrum,
        shape=shape,
        background=background,
        shared_width=shared_width,
        sigma=sigma,
        window_eV=window_eV,
    )
    seeds = _seed_lines(data, n_peaks, centers_eV, min_snr)
    layout = _layout_peaks(
        data,
        seeds,
        shape=shape,
        background=background,
        shared_width=shared_width,
        gaussian_fwhm_eV=gaussian_fwhm_eV,
    )
    res = _least_squares_peaks(data, layout)
    cov, sd, corr, chi2, dof, notes = _peak_covariance(res, data, layout)
    return _assemble_peaks(
        data, layout, res, cov, sd, corr, chi2, dof, notes, shared_width=shared_width
    )


def _readonly(a: Any) -> np.ndarray:
    arr = np.array(a)
    arr.setflags(write=False)
    return arr
