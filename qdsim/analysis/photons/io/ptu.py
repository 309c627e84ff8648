"""PicoQuant unified tagged files: PTU (photon records) and PHU (histograms), through `ptufile`.

`ptufile` parses the tagged header (every tag type, out-of-order and duplicate tags) and the
histogram blocks. The TTTR records of a PTU file are decoded by this package's own decoder
(`fast`, compiled with numba; `records.decode_numpy` is its NumPy reference), chunk by chunk,
and not by `PtuFile.decode_records`, which (ptufile 2026.2) restarts its overflow count at
every call, so cannot decode a file in chunks; gives HydraHarp/MultiHarp/TimeHarp T2 sync
records channel 0, the same number as the first detector input; multiplies a v2 T2 overflow
count in 32 bits, losing 2**32 ticks (4.3 ms at 1 ps) when one record counts >= 128 periods;
and silently passes records no layout defines. The tests check both decoders agree on every
record type where ptufile is right.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from qdsim.analysis.photons.io.errors import FileFormatError
from qdsim.analysis.photons.io.records import layout_for
from qdsim.analysis.photons.io.source import RecordSource, check_record_count

__all__ = ["open_ptu", "read_phu"]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _ptufile_messages() -> Iterator[list[str]]:
    """Collect what ptufile logs (e.g. an out-of-order header tag) instead of printing it."""
    logger = logging.getLogger("ptufile")
    handler = _Capture()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _fatal(path: str, messages: list[str]) -> None:
    """ptufile stops at a tag of unknown type and only logs it: the records would then be read
    from the wrong offset. Such a header is corrupt."""
    for m in messages:
        if "invalid tag type" in m:
            raise FileFormatError(f"{path}: corrupt header: {m}")


def _scalar(path: str, tags: dict[str, Any], key: str, default: Any = None) -> Any:
    """A header tag that must hold one value: an indexed (list) tag there is a damaged header."""
    value = tags.get(key, default)
    if isinstance(value, list):
        raise FileFormatError(f"{path}: corrupt header: tag {key} is indexed ({len(value)} values)")
    return value


def _read_ptu_tags(path: str) -> tuple[dict[str, Any], int, list[str]]:
    """`(tags, byte offset of the records, what ptufile logged)` of a PTU file.

    ptufile reads from our own file handle (closed here whatever happens), and anything it
    raises on damaged bytes (UnicodeDecodeError, struct.error, even UnboundLocalError on a file
    cut inside its first tag) becomes a `FileFormatError` naming the file.
    """
    import ptufile

    with _ptufile_messages() as messages, open(path, "rb") as fh:
        try:
            with ptufile.PtuFile(fh) as ptu:
                return dict(ptu.tags), int(ptu.record_offset), list(messages)
        except ptufile.PqFileError as exc:
            raise FileFormatError(f"{path}: not a readable PTU file: {exc}") from None
        except (OSError, Warning):
            raise
        except Exception as exc:  # ptufile tripping over a damaged or cut-off header
            raise FileFormatError(f"{path}: {_header_problem(path, exc)}") from None


def _header_problem(path: str, exc: Exception) -> str:
    """What is wrong with a tagged header ptufile could not parse: cut off, or damaged."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(1 << 22)
    if b"Header_End" not in head:
        return f"truncated file: it ends at byte {size}, inside its header (no Header_End tag)"
    return f"corrupt header (ptufile: {type(exc).__name__}: {exc})"


def open_ptu(path: str) -> RecordSource:
    """Describe the records of a PTU file (header only; nothing is decoded).

    Raises `FileFormatError` (a `ValueError`) naming the file for a corrupt or cut-off header,
    an unsupported record type, a header inconsistent with its record type, a missing or
    non-positive resolution, or fewer records than the header announces.
    """
    tags, offset, messages = _read_ptu_tags(path)
    _fatal(path, messages)
    if "TTResultFormat_TTTRRecType" not in tags:
        raise FileFormatError(f"{path}: PTU header lacks TTResultFormat_TTTRRecType")
    code = _scalar(path, tags, "TTResultFormat_TTTRRecType")
    if not isinstance(code, int) or isinstance(code, bool):
        raise FileFormatError(f"{path}: corrupt header: TTResultFormat_TTTRRecType = {code!r}")
    try:
        layout = layout_for(code)
    except ValueError as exc:
        raise FileFormatError(f"{path}: {exc}") from None
    bits = _scalar(path, tags, "TTResultFormat_BitsPerRecord", 32)
    if bits not in (0, 32):
        raise FileFormatError(f"{path}: {bits}-bit records are not supported (32-bit only)")
    mode = _scalar(path, tags, "Measurement_Mode")
    if mode is not None and mode != (3 if layout.t3 else 2):
        raise FileFormatError(
            f"{path}: header says Measurement_Mode {mode} but record type {layout.name} is "
            f"{'T3' if layout.t3 else 'T2'}"
        )
    glob = _scalar(path, tags, "MeasDesc_GlobalResolution")
    if not isinstance(glob, float | int) or not glob > 0 or not np.isfinite(glob):
        raise FileFormatError(
            f"{path}: MeasDesc_GlobalResolution missing or not positive: {glob!r}"
        )
    micro_ps = None
    if layout.t3:
        res = _scalar(path, tags, "MeasDesc_Resolution")
        if not isinstance(res, float | int) or not res > 0 or not np.isfinite(res):
            raise FileFormatError(f"{path}: MeasDesc_Resolution missing or not positive: {res!r}")
        micro_ps = float(res) * 1e12
    n_header = _scalar(path, tags, "TTResult_NumberOfRecords", 0) or 0
    if not isinstance(n_header, int) or isinstance(n_header, bool):
        raise FileFormatError(f"{path}: corrupt header: TTResult_NumberOfRecords = {n_header!r}")
    n, notes = check_record_count(path, offset, n_header, "PTU")
    acq = _scalar(path, tags, "MeasDesc_AcquisitionTime")
    return RecordSource(
        path=path,
        format="PTU",
        layout=layout,
        offset=offset,
        n_records=n,
        tick_ps=float(glob) * 1e12,
        micro_ps=micro_ps,
        header=tags,
        header_duration_s=float(acq) * 1e-3 if isinstance(acq, int | float) else None,
        notes=tuple(messages) + tuple(notes),
    )


def read_phu(path: str) -> list[tuple[np.ndarray, float, dict[str, Any]]]:
    """Histograms of a PHU file: `(counts int64, bin width ps, per-curve attrs)` per curve.

    The bin width is `HistResDscr_MDescResolution` of the curve (what PicoQuant's Read_PHU
    uses), falling back to `MeasDesc_Resolution`. Raises `ValueError` naming the file when the
    header is corrupt, a curve lacks a resolution, or the file ends inside a curve.
    """
    import ptufile

    size = os.path.getsize(path)
    with _ptufile_messages() as messages, open(path, "rb") as fh:
        try:
            with ptufile.PhuFile(fh) as phu:
                tags = dict(phu.tags)
                ncurves = phu.number_histograms
                offsets = list(tags.get("HistResDscr_DataOffset", []))
                nbins = list(tags.get("HistResDscr_HistogramBins", []))
                if len(offsets) != ncurves or len(nbins) != ncurves:
                    raise FileFormatError(
                        f"{path}: corrupt PHU header: {ncurves} curves but "
                        f"{len(offsets)} data offsets and {len(nbins)} bin counts"
                    )
                for i, (off, nb) in enumerate(zip(offsets, nbins, strict=True)):
                    if off + 4 * nb > size:
                        raise FileFormatError(
                            f"{path}: truncated PHU file: curve {i} needs bytes "
                            f"{off}..{off + 4 * nb}, the file has {size}"
                        )
                hists = phu.histograms()
        except ptufile.PqFileError as exc:
            raise FileFormatError(f"{path}: not a readable PHU file: {exc}") from None
        except KeyError as exc:
            raise FileFormatError(f"{path}: PHU header lacks tag {exc}") from None
        except (FileFormatError, OSError, Warning):
            raise
        except Exception as exc:  # ptufile tripping over a damaged or cut-off header
            raise FileFormatError(f"{path}: {_header_problem(path, exc)}") from None
        _fatal(path, messages)
    res = tags.get("HistResDscr_MDescResolution")
    default = tags.get("MeasDesc_Resolution")
    out = []
    for i, h in enumerate(hists):
        r = res[i] if isinstance(res, list) and i < len(res) else default
        if not isinstance(r, float | int) or not r > 0:
            raise FileFormatError(f"{path}: curve {i} has no positive resolution in the header")
        attrs: dict[str, Any] = {}
        for key, value in tags.items():
            if key.startswith("HistResDscr_") and isinstance(value, list) and i < len(value):
                attrs[key] = value[i]
            elif not isinstance(value, list):
                attrs[key] = value
        out.append((np.asarray(h, dtype=np.int64), float(r) * 1e12, attrs))
    return out
