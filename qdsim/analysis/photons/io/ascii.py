"""TCSPC histograms: PHU files (through ptufile), PicoQuant ASCII exports, two-column CSV.

`read_histogram` returns a list of `xarray.DataArray`, one per curve, because the curves of one
file may differ in bin width and length (the HydraHarp export in shared/data has 4 ps and
128 ps curves): a single ("curve", "time") array would need one common time axis.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["read_histogram"]

_UNIT_PS = {"ps": 1.0, "ns": 1e3, "us": 1e6, "µs": 1e6, "μs": 1e6, "ms": 1e9, "s": 1e12}


def _attr_value(value: Any) -> str | int | float | None:
    """A value netCDF can store as an attribute, or None to drop it."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return None


def _make(
    counts: np.ndarray,
    resolution_ps: float,
    curve: int,
    path: str,
    fmt: str,
    header: Mapping[str, Any],
) -> xr.DataArray:
    import xarray as xr

    counts = np.asarray(counts)
    if counts.size and (np.any(counts < 0) or np.any(counts != np.round(counts))):
        raise ValueError(f"{path}: curve {curve} holds negative or non-integer counts")
    attrs: dict[str, Any] = {}
    for key, value in header.items():
        v = _attr_value(value)
        if v is not None:
            attrs[str(key)] = v
    attrs.update(
        resolution_ps=float(resolution_ps),
        curve=int(curve),
        source=str(path),
        format=fmt,
        units="counts",
        long_name="photon counts per bin",
    )
    time = np.arange(counts.size, dtype=np.float64) * float(resolution_ps)
    return xr.DataArray(
        counts.astype(np.int64),
        dims=("time",),
        coords={"time": ("time", time, {"units": "ps", "long_name": "bin start time"})},
        name="counts",
        attrs=attrs,
    )


def read_histogram(
    path: str | os.PathLike[str], *, time_unit: str | None = None
) -> list[xr.DataArray]:
    """Read TCSPC histograms (decay curves) from a file, one `xarray.DataArray` per curve.

    **Arguments:**

    - `path`: a PicoQuant PHU file (recognised by content), a PicoQuant ASCII histogram export
      (".dat"/".txt" starting with "#<device> Histogram Data", e.g. HydraHarp 400, PicoHarp
      300: `#ns/bin` per curve, then one column per curve), or a two-column text/CSV file
      (bin start time, counts; comma, semicolon, tab or space separated, optional header).
    - `time_unit`: CSV only: unit of the first column ("ps", "ns", "us", "ms", "s") when the
      header line does not say it (e.g. "time_ns,counts" or "Time (ps);Counts").

    **Returns:** `list[xarray.DataArray]`, curve `i` at index `i`, each with dim "time", coord
    "time" = bin start (ps, float64, from 0), int64 counts, attrs `resolution_ps` (bin width,
    ps), `curve`, `source`, `format` ("PHU", "PicoQuant ASCII", "CSV") and the file's scalar
    header fields (netCDF-safe types).

    **Raises:** `FileNotFoundError`; `ValueError` naming the file for truncated or malformed
    files, missing bin widths, non-uniform CSV time steps, an unknown CSV time unit.
    """
    p = os.fspath(path)
    with open(p, "rb") as fh:
        head = fh.read(64)
    if head[:8] == b"PQHISTO\0":
        from qdsim.analysis.photons.io.ptu import read_phu

        return [
            _make(counts, res, i, p, "PHU", attrs)
            for i, (counts, res, attrs) in enumerate(read_phu(p))
        ]
    if head[:8] == b"PQTTTR\0\0":
        raise ValueError(
            f"{p}: a PTU photon file: read it with read_photons (and histogram the micro times)"
        )
    text = Path(p).read_text(encoding="latin-1")
    first = text.lstrip().split("\n", 1)[0]
    if first.startswith("#") and "Histogram Data" in first:
        return _read_pq_ascii(p, text)
    return _read_csv(p, text, time_unit)


def _read_pq_ascii(path: str, text: str) -> list[xr.DataArray]:
    """PicoQuant ASCII histogram export: '#key' lines each followed by a line of values, then
    '#counts' and one row per bin (tab separated, one column per curve)."""
    lines = text.splitlines()
    title = lines[0].lstrip("#").strip()
    parts = re.split(r"\t+|\s{2,}", title)
    header: dict[str, Any] = {"device": parts[0].replace("Histogram Data", "").strip()}
    if len(parts) > 2:
        header["date"] = parts[-1].strip()
    fields: dict[str, list[str]] = {}
    i = 1
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("#"):
            key = line[1:].strip().lower()
            if key == "counts":
                i += 1
                break
            fields[key] = lines[i + 1].split() if i + 1 < len(lines) else []
            i += 2
        elif not line:
            i += 1
        else:
            raise ValueError(
                f"{path}: line {i + 1}: expected '#counts' or another '#' header line, "
                f"got {line[:40]!r}"
            )
    else:
        raise ValueError(f"{path}: no '#counts' line: not a complete PicoQuant histogram export")
    if "ns/bin" not in fields:
        raise ValueError(f"{path}: no '#ns/bin' line: bin widths unknown")
    try:
        res_ps = [float(Decimal(v) * 1000) for v in fields["ns/bin"]]
    except InvalidOperation:
        raise ValueError(f"{path}: unreadable '#ns/bin' values {fields['ns/bin']}") from None
    ncurves = len(res_ps)
    rows = [ln.split() for ln in lines[i:] if ln.strip()]
    widths = sorted({len(r) for r in rows})
    if widths != [ncurves]:
        raise ValueError(
            f"{path}: {ncurves} curves in '#ns/bin' but count rows have {widths} columns"
        )
    try:
        data = np.array([[int(v) for v in r] for r in rows], dtype=np.int64).reshape(-1, ncurves)
    except ValueError:
        raise ValueError(f"{path}: non-integer counts after '#counts'") from None
    nbins = fields.get("channels per curve")
    if nbins:
        expected = int(nbins[0])
        if data.shape[0] != expected:
            raise ValueError(
                f"{path}: truncated export: header says {expected} bins per curve, "
                f"found {data.shape[0]} rows"
            )
    if any(not r > 0 for r in res_ps):
        raise ValueError(f"{path}: bin widths must be positive, got {fields['ns/bin']} ns")
    out = []
    for c in range(ncurves):
        h = dict(header)
        for key, name in (
            ("display curve no.", "display_curve"),
            ("memory block no.", "memory_block"),
        ):
            vals = fields.get(key)
            if vals and c < len(vals):
                h[name] = int(vals[c])
        out.append(_make(data[:, c], res_ps[c], c, path, "PicoQuant ASCII", h))
    return out


_UNIT_RE = re.compile(r"(?:^|[\s_(\[/])(ps|ns|us|µs|μs|ms|s)(?:$|[\s)\]])")


def _read_csv(path: str, text: str, time_unit: str | None) -> list[xr.DataArray]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{path}: no data")
    sep = next(
        (s for s in (",", ";", "\t") if s in lines[0] or (len(lines) > 1 and s in lines[1])), None
    )

    def split(ln: str) -> list[str]:
        return [v.strip() for v in (ln.split(sep) if sep else ln.split())]

    header_cols = None
    try:
        [float(v) for v in split(lines[0])]
    except ValueError:
        header_cols = split(lines[0])
        lines = lines[1:]
    unit = time_unit
    if unit is None and header_cols:
        m = _UNIT_RE.search(header_cols[0].lower())
        unit = m.group(1) if m else None
    if unit is None:
        raise ValueError(
            f"{path}: time unit of the first column unknown: name it in the header "
            "(e.g. 'time_ns,counts') or pass time_unit='ns'"
        )
    if unit not in _UNIT_PS:
        raise ValueError(f"{path}: unknown time unit {unit!r}; use one of {sorted(_UNIT_PS)}")
    try:
        rows = [split(ln) for ln in lines]
        if any(len(r) != 2 for r in rows):
            bad = next(k for k, r in enumerate(rows) if len(r) != 2)
            raise ValueError(
                f"{path}: data row {bad + 1} has {len(rows[bad])} columns, expected 2 "
                "(time, counts)"
            )
        t = np.array([float(r[0]) for r in rows])
        counts = np.array([float(r[1]) for r in rows])
    except ValueError as exc:
        if str(exc).startswith(path):
            raise
        raise ValueError(f"{path}: unreadable number: {exc}") from None
    if t.size < 2:
        raise ValueError(f"{path}: need at least two bins to know the bin width")
    t_ps = t * _UNIT_PS[unit]
    steps = np.diff(t_ps)
    res = float(np.median(steps))
    if not res > 0 or np.any(np.abs(steps - res) > 1e-6 * res + 1e-9):
        raise ValueError(f"{path}: time column is not uniformly spaced increasing bins")
    da = _make(counts, res, 0, path, "CSV", {"time_unit": unit})
    return [da.assign_coords(time=("time", t_ps, da.time.attrs))]
