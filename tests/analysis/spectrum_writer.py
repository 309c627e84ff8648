"""Writers of spectrometer camera files with known content, for tests.

- `write_spe3`: Princeton Instruments SPE 3.0 (LightField): the 4100-byte binary header (only the
  fields the 3.0 specification keeps: data type, dimensions, frame count, file version, the
  WinView id and the 64-bit offset of the XML footer), the frames, then the XML footer with the
  data layout, the per-pixel wavelength array and a small LightField `Experiment` block
  (camera, exposure, gate, accumulations).
- `write_spe2`: SPE 2.x (WinSpec, and Andor's SPE export): the same header with the 2.x fields
  filled in (exposure, temperature, one region of interest, the x-calibration polynomial).
- `write_sif`: Andor SIF, version 65567, laid out line by line as Andor Solis writes it (the
  structure of a real file, `raman1.sif` of sif_parser's test set): the text header with
  exposure, accumulations, gate, detector, the calibration polynomial (coefficients of pixel
  number 1..n), frame axis name, image geometry and time stamps, then float32 frames.

The SPE header is built with the `ctypes` structure of `spexread` (the field offsets of the
published SPE 2.x/3.0 header); the SIF writer is plain text formatting. Each writer takes the
counts as `(frame, row, pixel)` and returns the path.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SPE_HEADER = 4100
_SPE_TYPES = {"float32": 0, "int32": 1, "int16": 2, "uint16": 3, "uint32": 8}
_SPE3_FORMATS = {
    "float32": "MonochromeFloating32",
    "uint16": "MonochromeUnsigned16",
    "uint32": "MonochromeUnsigned32",
}


def _as_frames(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim == 1:
        c = c[None, None]
    elif c.ndim == 2:
        c = c[None]
    if c.ndim != 3:
        raise ValueError("counts must be (pixel,), (row, pixel) or (frame, row, pixel)")
    return c


def _spe_header(c: np.ndarray, version: float):
    with warnings.catch_warnings():  # spexread 0.2 trips numpydantic's deprecation warning
        warnings.simplefilter("ignore", DeprecationWarning)
        from spexread.structdef import LASTVALUE, WINVIEW_ID, SPEInfoHeader

    h = SPEInfoHeader()
    h.datatype = _SPE_TYPES[c.dtype.name]
    h.xdim = c.shape[2]
    h.ydim = c.shape[1]
    h.NumFrames = c.shape[0]
    h.file_header_ver = version
    h.WinView_id = WINVIEW_ID
    h.lastvalue = LASTVALUE
    h.lnoscan = -1
    h.noscan = -1
    return h


def write_spe3(
    path: str | Path,
    counts: np.ndarray,
    wavelength_nm: Sequence[float] | None,
    *,
    exposure_ms: float | None = 1000.0,
    gate_ns: tuple[float, float] | None = None,
    accumulations: int = 1,
    camera: str = "PIXIS: 100BR",
    sensor: tuple[int, int] = (1340, 100),
    xml_offset: int | None = None,
) -> Path:
    """SPE 3.0 with `counts` (dtype float32, uint16 or uint32) and the per-pixel wavelengths
    (None: no `WavelengthMapping`, an uncalibrated file). `gate_ns`: (delay, width) of a
    repetitive gate; `xml_offset` overrides the footer offset (to damage the file)."""
    c = _as_frames(counts)
    n_frames, rows, px = c.shape
    frame_bytes = rows * px * c.dtype.itemsize
    data = np.ascontiguousarray(c).astype(c.dtype.newbyteorder("<")).tobytes()
    offset = SPE_HEADER + len(data)
    h = _spe_header(c, 3.0)
    h.XMLOffset = offset if xml_offset is None else xml_offset
    calib = ""
    frame_calib = ""
    if wavelength_nm is not None:
        lam = ",".join(repr(float(v)) for v in wavelength_nm)
        calib = (
            '<WavelengthMapping id="1" date="2026-12-03T12:00:00+01:00" orientation="Normal">'
            f"<Wavelength>{lam}</Wavelength></WavelengthMapping>"
        )
        frame_calib = ' calibrations="1"'
    gate = ""
    if gate_ns is not None:
        gate = (
            '<Intensifier><Gating><Mode type="GatingMode">Repetitive</Mode>'
            f'<RepetitiveGate type="Pulse"><Pulse delay="{gate_ns[0]}" width="{gate_ns[1]}" />'
            "</RepetitiveGate></Gating></Intensifier>"
        )
    exposure = (
        ""
        if exposure_ms is None
        else '<ShutterTiming><ExposureTime type="Double">'
        f"{exposure_ms}</ExposureTime></ShutterTiming>"
    )
    experiment = (
        '<Experiment xmlns="http://www.princetoninstruments.com/experiment/2009" version="11">'
        '<System><Cameras count="1"><Camera deviceID="2" model="'
        f'{camera}" serialNumber="TEST0001" /></Cameras></System><Devices><Cameras>'
        f"<Camera><ShutterTiming></ShutterTiming>{exposure}{gate}"
        '<ReadoutControl><Accumulations type="Int64">'
        f"{accumulations}</Accumulations></ReadoutControl>"
        '<Sensor><Temperature><Reading type="Double">-70</Reading></Temperature></Sensor>'
        "</Camera></Cameras></Devices></Experiment>"
    )
    xml = (
        '<SpeFormat version="3.0" xmlns="http://www.princetoninstruments.com/spe/2009">'
        "<DataFormat>"
        f'<DataBlock type="Frame" count="{n_frames}" pixelFormat="{_SPE3_FORMATS[c.dtype.name]}" '
        f'size="{frame_bytes}" stride="{frame_bytes}"{frame_calib}>'
        f'<DataBlock type="Region" calibrations="2" count="1" width="{px}" height="{rows}" '
        f'size="{frame_bytes}" stride="{frame_bytes}" /></DataBlock></DataFormat>'
        f"<Calibrations>{calib}"
        f'<SensorInformation id="2" orientation="Normal" width="{sensor[0]}" '
        f'height="{sensor[1]}" /></Calibrations>'
        '<DataHistories><DataHistory id="1"><Origin creator="qdsim tests" '
        'created="2026-12-03T12:00:00+01:00" software="LightField">'
        f"{experiment}</Origin></DataHistory></DataHistories>"
        '<GeneralInformation><FileInformation creator="qdsim tests" '
        'created="2026-12-03T12:00:00+01:00" lastModified="2026-12-03T12:00:00+01:00" />'
        "</GeneralInformation></SpeFormat>"
    )
    path = Path(path)
    path.write_bytes(bytes(h) + data + xml.encode())
    return path


def write_spe2(
    path: str | Path,
    counts: np.ndarray,
    coefficients: Sequence[float] | None,
    *,
    exposure_s: float = 1.0,
    temperature_C: float = -70.0,
    accumulations: int = 1,
) -> Path:
    """SPE 2.5 (WinSpec layout) with `counts` (float32, int16, int32, uint16 or uint32) and the
    x-calibration polynomial `coefficients` (lowest order first, in pixel 0..n-1; None: the
    calibration is marked invalid)."""
    c = _as_frames(counts)
    n_frames, rows, px = c.shape
    h = _spe_header(c, 2.5)
    h.xDimDet = px
    h.yDimDet = rows
    h.exp_sec = exposure_s
    h.DetTemperature = temperature_C
    h.lavgexp = accumulations
    h.NumExpAccums = accumulations
    h.date = b"03Dec2026"
    h.ExperimentTimeLocal = b"120000"
    h.ExperimentTimeUTC = b"110000"
    h.sw_version = b"qdsim tests"
    h.NumROI = 1
    roi = h.ROIinfblk[0]
    roi.startx, roi.endx, roi.groupx = 1, px, 1
    roi.starty, roi.endy, roi.groupy = 1, rows, 1
    if coefficients is not None:
        xc = h.xcalibration
        xc.calib_valid = 1
        xc.polynom_order = len(coefficients) - 1
        for i, v in enumerate(coefficients):
            xc.polynom_coeff[i] = float(v)
    data = np.ascontiguousarray(c).astype(c.dtype.newbyteorder("<")).tobytes()
    path = Path(path)
    path.write_bytes(bytes(h) + data)
    return path


def write_sif(
    path: str | Path,
    counts: np.ndarray,
    coefficients: Sequence[float] | None = (400.0, 0.05, 0.0, 0.0),
    *,
    frame_axis: str = "Wavelength",
    exposure_s: float = 0.5,
    accumulations: int = 1,
    gate_delay_ps: float = 0.0,
    gate_width_ps: float = 0.0,
    detector: str = "DU401A_BVF",
    temperature_C: float = -60.0,
    experiment_time: int = 1764763200,
) -> Path:
    """Andor SIF (version 65567) with float32 `counts` `(frame, row, pixel)` and calibration
    polynomial `coefficients` (4 numbers, lowest order first, in pixel number 1..n; None writes
    the identity "0 1 0 0" that Solis stores without a spectrograph calibration)."""
    c = _as_frames(counts).astype("<f4")
    n_frames, rows, px = c.shape
    coefs = (0.0, 1.0, 0.0, 0.0) if coefficients is None else tuple(coefficients)
    cal = " ".join(repr(float(v)) for v in coefs)
    total = rows * px
    cycle = exposure_s + 0.01
    lines = [
        b"Andor Technology Multi-Channel File\n",
        b"65538 1\n",
        (
            f"65567 0 0 1 {experiment_time} {temperature_C:g} ".encode()
            + b"\x00 \x00 \x00 \x02 \x00 "
            + f"0 {exposure_s:g} {cycle:g} {cycle:g} {accumulations} ".encode()
            + b"\x00 "
            + f"{cycle * accumulations:g} 1e-06 0 1 0 0 0 {gate_width_ps:g} ".encode()
            + b"0 0 \x02 \x00 256 0 4 1 0 0 0 0 0 0 0 0 "
            + b"8.25e-06 0 1 10386 0 1 -999 1 0 1 0 0 -1 4 30 30013 0 0 1 1 1 0 17.7 550 0 0\n"
        ),
        f"{detector} \n".encode(),
        f" {px} {rows} 9\n".encode(),
        b"qdsim.sif \n",
        b"65538 0\n",
        b"\n",
        b"65538 \x01 \x02 \x03 \x00 0 0\n",
        b"65540 1 1 430 1 0 1200.75 500NM\n",
        b"1 200\n",
        b"1 0 1 0 9 405 notch 0 0 0 0 0 0 10\n",
        b"0 SR193i\n",
        b"0 10\n",
        b"0 10\n",
        b"0 0 \n",
        b"65537 0 500 1200\n",
        b"0 Shamrock 999\n",
        b"\n",
        f"65539 0 0 0 0 0 {gate_delay_ps:g} {gate_width_ps:g} 0 0 0 0 0 0 0 0 0\n".encode(),
        b"0 0 0 0\n",
        b"0 0 0 0\n",
        b"0 0 0 0\n",
        b"0 0 0\n",
        b"\n",
        b"-1\n",
        f"65538 0 {px} {px} 0 0 1 1 1 1\n".encode(),
        b"65540 \x02 \x00 \x01 \x00 \x01 \x00\n",
        f"{cal}\n".encode(),
        b"0 1 0 0\n",
        b"0 1 0 0\n",
        b"0\n",
        b"13\n",
        b"13\n",
        b"1\n",
        f"{len(frame_axis)}\n{frame_axis}".encode(),
        b"6\nCounts",
        b"12\nPixel number",
        f"65541 1 {px} {rows} 1 {n_frames} 1 {total * n_frames} {total}\n".encode(),
        f"65538 1 {rows} {px} 1 1 1 0\n".encode(),
    ]
    lines += [f"{k * 1000}\n".encode() for k in range(n_frames)]
    lines.append(b"1\n")
    lines += [b"0\n" for _ in range(n_frames)]
    path = Path(path)
    path.write_bytes(b"".join(lines) + c.tobytes())
    return path
