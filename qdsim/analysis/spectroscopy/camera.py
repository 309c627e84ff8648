"""Spectrometer camera files: Andor SIF and Princeton Instruments SPE (2.x and 3.0).

The files are parsed by the kept libraries `sif-parser` (SIF) and `spexread` (SPE); this module
checks what they return and turns it into one array, its wavelength axis and its metadata:

- `read_camera_file(path)` -> `CameraData`: counts as `(frame, row, pixel)` float64, the
  wavelength of each pixel (nm, from the calibration stored in the file: SIF: the
  polynomial of its header, evaluated at pixel numbers 1..n as sif-parser does; SPE 3.0: the
  per-pixel wavelength array of the XML footer; SPE 2.x: the x-calibration polynomial of the
  binary header, evaluated at pixel positions 0..n-1 as spexread does), and the metadata
  (exposure, gate delay and width, detector, accumulations, temperature ...) as plain values.
- `is_camera_file(path)`: SIF by its first bytes; SPE by the extension or the WinView id and
  header version at their fixed offsets.

A file without a wavelength calibration (none stored, or the identity "0 1 0 0" a SIF file
holds when no spectrograph was set) raises `qdsim.analysis.errors.FileFormatError` (a
`ValueError`) naming the file; so do damaged or cut-off files, in one line. Pixels that are
NaN or at the saturation level are counted (`n_nan`, `n_saturated`) and reported as a
`FileFormatWarning`: integer SPE data saturate at their type's maximum (65535 for 16 bits),
float data only at a level the caller gives (SIF stores float32 sums of accumulations, whose
full scale the file does not state).

The two libraries are core dependencies, imported on first use: without one, reading that
format raises an `ImportError` that says what to install.
"""

from __future__ import annotations

import datetime as _dt
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qdsim.analysis.errors import FileFormatError, FileFormatWarning

__all__ = ["CameraData", "is_camera_file", "read_camera_file", "spectrum_from_camera_file"]

SIF_MAGIC = b"Andor Technology Multi-Channel File"
_SPE_HEADER = 4100
_SPE_WINVIEW_ID = 0x01234567


@dataclass
class CameraData:
    """Counts, wavelength axis and metadata of a camera file.

    `counts`: float64 `(frame, row, pixel)`; `wavelength_nm`: `(pixel,)`; `attrs`: metadata
    (str, int or float values); `frame_coords`: per-frame values (e.g. tracked gate delays,
    frame time stamps) as `{name: array}`; `saturation`: the level at or above which a pixel
    counts as saturated (None when unknown); `n_nan`, `n_saturated`: pixels found.
    """

    counts: np.ndarray
    wavelength_nm: np.ndarray
    attrs: dict[str, Any]
    frame_coords: dict[str, np.ndarray] = field(default_factory=dict)
    saturation: float | None = None
    n_nan: int = 0
    n_saturated: int = 0


def is_camera_file(path: str | os.PathLike[str]) -> bool:
    """True for a SIF file (by content) or an SPE file (extension, or WinView id at byte 2996)."""
    p = Path(path)
    if p.suffix.lower() in (".sif", ".spe"):
        return True
    try:
        with open(p, "rb") as fh:
            head = fh.read(_SPE_HEADER)
    except OSError:
        return False
    if head.startswith(SIF_MAGIC):
        return True
    return len(head) == _SPE_HEADER and int.from_bytes(head[2996:3000], "little") == _SPE_WINVIEW_ID


def _need(module: str, package: str, what: str) -> Any:
    import importlib
    import warnings

    try:
        with warnings.catch_warnings():  # spexread 0.2 trips numpydantic's deprecation warning
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"reading {what} files needs the package {package!r} (a core dependency of qdsim): "
            f"pip install {package}"
        ) from exc


def read_camera_file(
    path: str | os.PathLike[str], *, saturation: float | None = None
) -> CameraData:
    """Read a SIF or SPE file (see the module docstring). `saturation`: counts at or above
    which a pixel is saturated (default: the integer type's maximum; None for float data).

    Raises `FileNotFoundError`, `FileFormatError` (a `ValueError`, one line naming the file)
    for a file without wavelength calibration, a damaged or cut-off file, or a layout this
    reader does not take (several SPE regions of interest, frames calibrated differently)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such spectrum file: {p}")
    with open(p, "rb") as fh:
        head = fh.read(len(SIF_MAGIC))
    if head == SIF_MAGIC:
        data = _guard(p, "SIF", _read_sif, p)
    elif p.suffix.lower() == ".sif":
        raise FileFormatError(f"{p}: not an Andor SIF file (starts with {head[:16]!r})")
    else:
        data = _guard(p, "SPE", _read_spe, p)
    _check_axis(p, data.wavelength_nm, data.counts.shape[-1])
    _census(data, saturation)
    return data


def _guard(p: Path, fmt: str, fn: Any, *args: Any) -> CameraData:
    """Run a parser; whatever a damaged file makes the library raise becomes one line."""
    try:
        return fn(*args)
    except (FileFormatError, ImportError, OSError):
        raise
    except Exception as exc:  # the libraries' errors on damaged bytes are of every kind
        msg = " ".join(str(exc).split())[:200]
        raise FileFormatError(
            f"{p}: not a readable {fmt} file ({_size_note(p)}{type(exc).__name__}: {msg})"
        ) from None


def _size_note(p: Path) -> str:
    return f"{p.stat().st_size} bytes; " if p.exists() else ""


def _check_axis(p: Path, lam: np.ndarray, n: int) -> None:
    if lam.shape != (n,):
        raise FileFormatError(
            f"{p}: the wavelength calibration has {lam.size} values for {n} pixels"
        )
    if not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise FileFormatError(
            f"{p}: the wavelength calibration gives non-positive or non-finite values"
        )
    d = np.diff(lam)
    if n > 1 and not (np.all(d > 0) or np.all(d < 0)):
        raise FileFormatError(f"{p}: the wavelength calibration is not monotonic over the pixels")


def _census(data: CameraData, saturation: float | None) -> None:
    c = data.counts
    data.n_nan = int(np.count_nonzero(~np.isfinite(c)))
    level = saturation if saturation is not None else data.saturation
    data.saturation = None if level is None else float(level)
    data.n_saturated = 0 if level is None else int(np.count_nonzero(c >= level))
    data.attrs["n_nan_pixels"] = data.n_nan
    data.attrs["n_saturated_pixels"] = data.n_saturated
    if data.saturation is not None:
        data.attrs["saturation_level"] = data.saturation


def spectrum_from_camera_file(
    path: str | os.PathLike[str],
    *,
    medium: str | None,
    jacobian: bool = True,
    sum_over: str | Sequence[str] | None = None,
    saturation: float | None = None,
    unit: str | None = None,
    name: str = "intensity",
) -> Any:
    """`read_spectrum` of a SIF or SPE file (it calls this): an `xarray.DataArray` on the
    photon-energy axis, dims `frame` and `row` kept when longer than one (or summed, `sum_over`),
    the file's metadata in attrs, with a `FileFormatWarning` for NaN or saturated pixels.

    Camera counts are per pixel. `jacobian=True` divides them by each pixel's width in
    wavelength (|d lambda / d pixel| of the calibration) before the usual |d lambda / dE|, so the
    result is counts per eV and its integral over energy is the number of counts; False keeps
    counts per pixel on the relabelled axis."""
    import warnings

    import xarray as xr

    from qdsim.analysis.spectroscopy.spectra import read_spectrum

    p = Path(path)
    if unit is not None and str(unit).strip().lower() != "nm":
        raise ValueError(
            f"{p}: a camera file's axis is its wavelength calibration (nm), not {unit}"
        )
    sums = [sum_over] if isinstance(sum_over, str) else list(sum_over or [])
    bad = [d for d in sums if d not in ("frame", "row")]
    if bad:
        raise ValueError(f"sum_over takes 'frame' and/or 'row', got {bad}")
    data = read_camera_file(p, saturation=saturation)
    if data.n_nan:
        warnings.warn(
            f"{p}: {data.n_nan} NaN or infinite pixel value(s) out of {data.counts.size}",
            FileFormatWarning,
            stacklevel=3,
        )
    if data.n_saturated:
        f, r, k = np.argwhere(data.counts >= data.saturation)[0]
        warnings.warn(
            f"{p}: {data.n_saturated} pixel value(s) at or above the saturation level "
            f"{data.saturation:g} (the first: frame {f}, row {r}, "
            f"{data.wavelength_nm[k]:.4f} nm): those lines are clipped",
            FileFormatWarning,
            stacklevel=3,
        )
    lam = data.wavelength_nm
    counts = data.counts
    if jacobian:  # counts per pixel -> per nm, then read_spectrum takes nm -> eV
        counts = counts / np.abs(np.gradient(lam))
    coords: dict[str, Any] = {"wavelength": ("wavelength", lam, {"units": "nm"})}
    for key, values in data.frame_coords.items():
        coords[key] = ("frame", values)
    da = xr.DataArray(
        counts, dims=("frame", "row", "wavelength"), coords=coords, attrs=data.attrs, name=name
    )
    for dim in ("frame", "row"):
        if dim in sums:
            da = da.sum(dim, keep_attrs=True)
        elif da.sizes[dim] == 1:
            da = da.isel({dim: 0}, drop=True)
    da = da.drop_vars([c for c in da.coords if c not in da.dims and c != "wavelength"])
    for key, values in data.frame_coords.items():
        if "frame" in da.dims:
            da = da.assign_coords({key: ("frame", values)})
    out = read_spectrum(da, medium=medium, jacobian=jacobian, name=name)
    out.attrs["source_intensity_per"] = "pixel"
    out.attrs["pixel_width_divided"] = int(bool(jacobian))
    if sums:
        out.attrs["summed_over"] = ",".join(sums)
    return out


# --- SIF ---------------------------------------------------------------------------------------


class _EndGuard(io.FileIO):
    """A file that raises at its end instead of returning nothing: sif-parser's word reader
    (0.3.6) reads one byte at a time until a blank and never checks for the end of the file,
    so a header cut short would hang it."""

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        out = super().read(size)
        if size and size > 0 and not out:
            raise FileFormatError(f"{self.name}: truncated SIF file: it ends inside its header")
        return out


def _read_sif(p: Path) -> CameraData:
    sif = _need("sif_parser", "sif-parser", "Andor SIF")
    from sif_parser.utils import extract_calibration

    size = p.stat().st_size
    with _EndGuard(p) as fh:  # sif-parser loops forever on a header cut short: stop it
        try:
            data, info = sif.np_open(fh)
        except ValueError as exc:
            if "might be corrupt" not in str(exc):
                raise
            msg = " ".join(str(exc).split()).split(" Use ")[0]
            raise FileFormatError(f"{p}: truncated SIF file ({size} bytes): {msg}") from None
    n_frames = int(info["NumberOfFrames"])
    width, height = (int(v) for v in info["size"])
    need = int(info["offset"]) + 4 * width * height * n_frames
    if size < need:
        raise FileFormatError(
            f"{p}: truncated SIF file: {n_frames} frame(s) of {height} x {width} float32 need "
            f"{need} bytes, the file has {size}"
        )
    counts = np.asarray(data, dtype=np.float64)
    if counts.ndim == 2:
        counts = counts[None]
    axis = info.get("FrameAxis", b"")
    axis = axis.decode("latin-1") if isinstance(axis, bytes) else str(axis)
    coefs = info.get("Calibration_data")
    per_frame = [k for k in info if str(k).startswith("Calibration_data_for_frame_")]
    uncal = coefs is None and not per_frame
    if coefs is not None and len(coefs) >= 2:
        uncal = uncal or (coefs[0] == 0 and coefs[1] == 1 and not any(coefs[2:]))
    if uncal or "pixel" in axis.lower():
        raise FileFormatError(
            f"{p}: no wavelength calibration in the file (x axis {axis or 'unnamed'!s}, "
            f"coefficients {coefs}): set the spectrograph in Andor Solis before saving, or "
            "calibrate the pixels yourself and pass the wavelengths as an array"
        )
    if "wavelength" not in axis.lower():
        raise FileFormatError(
            f"{p}: the x axis is calibrated in {axis!r}, not in wavelength: not supported"
        )
    # sif-parser evaluates the polynomial at pixel numbers 1..ImageLength, which for an image
    # (several rows) is rows x width long: the first `width` values are the pixels of a row
    lam = np.asarray(extract_calibration(info), dtype=np.float64)[..., :width]
    if lam.ndim == 2:
        if not np.all(lam == lam[:1]):
            raise FileFormatError(
                f"{p}: the {lam.shape[0]} frames carry different wavelength calibrations: read "
                "them one by one with sif_parser"
            )
        lam = lam[0]
    stamps = [info.get(f"timestamp_of_{k}") for k in range(n_frames)]
    frame_coords = {}
    if all(s is not None for s in stamps) and n_frames > 1:
        frame_coords["frame_time_s"] = np.asarray(stamps, dtype=np.float64) * 1e-6
    attrs: dict[str, Any] = {
        "source_file": str(p),
        "source_format": "Andor SIF",
        "sif_version": int(info.get("SifVersion", 0)),
        "detector": str(info.get("DetectorType", "")),
        "exposure_s": float(info.get("ExposureTime", np.nan)),
        "accumulations": int(info.get("AccumulatedCycles", 1)),
        "cycle_time_s": float(info.get("CycleTime", np.nan)),
        "gate_delay_s": float(info.get("GateDelay", 0.0)),
        "gate_width_s": float(info.get("GateWidth", 0.0)),
        "detector_temperature_C": float(info.get("DetectorTemperature", np.nan)),
        "n_frames": n_frames,
        "n_rows": height,
        "calibration": "polynomial "
        + " ".join(f"{c:.12g}" for c in (coefs or []))
        + " in pixel number 1..n (sif-parser)",
    }
    t = info.get("ExperimentTime")
    if isinstance(t, int | float) and t > 0:
        attrs["experiment_time"] = _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat()
    raman = info.get("RamanExWavelength")
    if isinstance(raman, float) and np.isfinite(raman) and raman > 0:
        attrs["raman_excitation_nm"] = raman
    return CameraData(counts=counts, wavelength_nm=lam, attrs=attrs, frame_coords=frame_coords)


# --- SPE ---------------------------------------------------------------------------------------


def _read_spe(p: Path) -> CameraData:
    _need("spexread", "spexread", "Princeton Instruments SPE")
    from spexread.parsing import parse_spe_data, parse_spe_metadata
    from spexread.structdef import SPEInfoHeader

    size = p.stat().st_size
    if size < _SPE_HEADER:
        raise FileFormatError(
            f"{p}: truncated SPE file: {size} bytes, shorter than the {_SPE_HEADER}-byte header"
        )
    header = SPEInfoHeader()
    with open(p, "rb") as fh:
        fh.readinto(header)
    version = float(header.file_header_ver)
    if not (1.0 <= version < 4.0) or not np.isfinite(version):
        raise FileFormatError(f"{p}: not an SPE file (header version {version!r} at byte 1992)")
    if version >= 3 and not _SPE_HEADER <= header.XMLOffset < size:
        raise FileFormatError(
            f"{p}: truncated SPE {version:.1f} file: its XML footer should start at byte "
            f"{header.XMLOffset}, the file has {size} bytes"
        )
    try:
        info = parse_spe_metadata(p)
    except SyntaxError as exc:  # lxml's XMLSyntaxError
        raise FileFormatError(
            f"{p}: truncated or damaged XML footer (from byte {header.XMLOffset} of {size}): "
            + " ".join(str(exc).split())[:120]
        ) from None
    fi = info.FrameInfo
    data_end = _SPE_HEADER + fi.count * fi.stride
    if size < data_end:
        raise FileFormatError(
            f"{p}: truncated SPE file: {fi.count} frame(s) of {fi.stride} bytes need "
            f"{data_end} bytes, the file has {size}"
        )
    if version >= 3 and header.XMLOffset < data_end:
        raise FileFormatError(
            f"{p}: corrupt SPE 3.0 file: the XML footer offset {header.XMLOffset} lies inside "
            f"the data (which ends at byte {data_end})"
        )
    if len(fi.ROIs) != 1:
        raise FileFormatError(
            f"{p}: {len(fi.ROIs)} regions of interest: only files with one are read (split "
            "them with spexread.read_spe_file(path, as_dataset=False))"
        )
    calibrated = info.Calibrations is not None and info.Calibrations.WavelengthCalib is not None
    if calibrated and version < 3:
        xc = header.xcalibration
        coeffs = np.asarray(list(xc.polynom_coeff), dtype=float)
        calibrated = (
            xc.calib_valid == 1
            and bool(np.any(coeffs[1:] != 0))
            and not (coeffs[0] == 0 and coeffs[1] == 1 and not np.any(coeffs[2:]))
        )
    if not calibrated:
        raise FileFormatError(
            f"{p}: no wavelength calibration in the file (SPE {version:.1f}): calibrate the "
            "spectrometer in LightField/WinSpec before saving, or calibrate the pixels yourself "
            "and pass the wavelengths as an array"
        )
    (roi,) = parse_spe_data(p, info, with_calibration=True)
    if "wavelength" not in roi.coords:
        raise FileFormatError(f"{p}: spexread found no wavelength calibration for the data")
    wl_dim = roi.coords["wavelength"].dims[0]
    other = "y" if wl_dim == "x" else "x"
    roi = roi.transpose("frame", other, wl_dim)
    lam = np.asarray(roi.coords["wavelength"].values, dtype=np.float64)
    raw = roi.values
    counts = np.asarray(raw, dtype=np.float64)
    saturation = float(np.iinfo(raw.dtype).max) if np.issubdtype(raw.dtype, np.integer) else None
    frame_coords = {
        str(k): np.asarray(v.values, dtype=np.float64)
        for k, v in roi.coords.items()
        if v.dims == ("frame",) and k != "frame"
    }
    attrs: dict[str, Any] = {
        "source_file": str(p),
        "source_format": f"Princeton Instruments SPE {version:.1f}",
        "pixel_format": str(raw.dtype),
        "n_frames": int(fi.count),
        "n_rows": int(counts.shape[1]),
    }
    if version >= 3:
        attrs["calibration"] = "per-pixel wavelength array of the XML footer"
        attrs.update(_spe3_experiment(p, int(header.XMLOffset)))
    else:
        xc = header.xcalibration
        coeffs = [float(c) for c in list(xc.polynom_coeff)[: int(xc.polynom_order) + 1]]
        attrs["calibration"] = (
            "polynomial " + " ".join(f"{c:.12g}" for c in coeffs) + " in pixel 0..n-1 (spexread)"
        )
        attrs["exposure_s"] = float(header.exp_sec)
        attrs["detector_temperature_C"] = float(header.DetTemperature)
        attrs["accumulations"] = int(max(header.lavgexp, header.NumExpAccums, 1))
        attrs["software"] = header.sw_version.decode("latin-1", "replace").strip("\0 ")
    created = getattr(info.GeneralInfo, "created", None)
    if created is not None:
        attrs["experiment_time"] = created.isoformat()
    return CameraData(
        counts=counts,
        wavelength_nm=lam,
        attrs=attrs,
        frame_coords=frame_coords,
        saturation=saturation,
    )


def _spe3_experiment(p: Path, offset: int) -> dict[str, Any]:
    """Detector, exposure, gate and accumulations from LightField's Experiment XML (absent
    values are left out). LightField states exposure times in ms and gate pulses in ns."""
    from lxml import etree

    with open(p, "rb") as fh:
        fh.seek(offset)
        root = etree.fromstring(fh.read())
    out: dict[str, Any] = {}

    def first(xpath: str) -> Any:
        hits = root.xpath(xpath)
        return hits[0] if hits else None

    cam = first("//*[local-name()='Cameras']/*[local-name()='Camera'][@model]")
    if cam is not None:
        out["detector"] = " ".join(v for v in (cam.get("model"), cam.get("serialNumber")) if v)
    spec = first("//*[local-name()='Spectrometers']/*[local-name()='Spectrometer'][@model]")
    if spec is not None:
        out["spectrometer"] = spec.get("model")
    exp = first("//*[local-name()='ShutterTiming']/*[local-name()='ExposureTime']")
    if exp is not None and _is_number(exp.text):
        out["exposure_s"] = float(exp.text) * 1e-3
    mode = first("//*[local-name()='Gating']/*[local-name()='Mode']")
    pulse = first(
        "//*[local-name()='Gating']/*[local-name()='RepetitiveGate']/*[local-name()='Pulse']"
    )
    if mode is not None and (mode.text or "").strip() == "Repetitive" and pulse is not None:
        if _is_number(pulse.get("delay")):
            out["gate_delay_s"] = float(pulse.get("delay")) * 1e-9
        if _is_number(pulse.get("width")):
            out["gate_width_s"] = float(pulse.get("width")) * 1e-9
    acc = first("//*[local-name()='ReadoutControl']/*[local-name()='Accumulations']")
    if acc is not None and _is_number(acc.text):
        out["accumulations"] = int(float(acc.text))
    temp = first("//*[local-name()='Temperature']/*[local-name()='Reading']")
    if temp is not None and _is_number(temp.text):
        out["detector_temperature_C"] = float(temp.text)
    grating = first("//*[local-name()='Grating']/*[local-name()='Selected']")
    if grating is not None and grating.text:
        out["grating"] = grating.text.strip()
    centre = first("//*[local-name()='Grating']/*[local-name()='CenterWavelength']")
    if centre is not None and _is_number(centre.text):
        out["center_wavelength_nm"] = float(centre.text)
    return out


def _is_number(text: Any) -> bool:
    return (
        isinstance(text, str)
        and re.fullmatch(r"\s*[-+]?[\d.]+(e[-+]?\d+)?\s*", text, re.I) is not None
    )
