"""Legacy PicoQuant photon files: PicoHarp 300 .pt2/.pt3 and HydraHarp 400 .ht2/.ht3.

No kept library reads them correctly (phconvert, for one, counts .pt3 markers as overflows),
so this module parses the published header layouts (PicoQuant's legacy file demos; packed,
little-endian) and hands the records, which use the PTU record layouts, to the same decoder
as PTU files (`fast`, with `records.decode_numpy` as reference).

- PicoHarp 300, format version 2.0: text header (328 B), binary header (208 B), one board
  header per board (156 B), TTTR header (36 B: ..., CntRate0 = sync rate, ..., Records,
  ImgHdrSize), image header (4 B words), records. T2 ticks are 4 ps (hardware); T3 micro-time
  bins are the board's `Resolution` (ns, float32).
- HydraHarp 400, format version 1.0 (v1 records) or 2.0 (v2 records): text header (328 B),
  binary header (208 B, `Resolution` in ps), hardware header (160 B), 16 B per input channel,
  4 B input rate per input channel, TTTR header (24 B: SyncRate, StopAfter, StopReason,
  ImgHdrSize, NumRecords int64), image header, records. T2 ticks are 1 ps (hardware base
  resolution); T3 micro-time bins are `Resolution`.

In T3 the files give the sync period only as the sync *rate* the rate meter showed at the start
(integer Hz): absolute times are `sync_index * 1e12 / rate` ps, as in PicoQuant's demos. Pass
`sync_period_ps` to `read_photons` when the laser period is known better.
"""

from __future__ import annotations

import struct
from typing import Any

from qdsim.analysis.photons.io.errors import FileFormatError
from qdsim.analysis.photons.io.records import LAYOUTS, Layout
from qdsim.analysis.photons.io.source import RecordSource, check_record_count

__all__ = ["LEGACY_IDENTS", "open_legacy"]

#: Identifier strings (the file's first 16 bytes) of the legacy formats read here.
LEGACY_IDENTS = ("PicoHarp 300", "HydraHarp")

_TXT = struct.Struct("<16s6s18s12s18s2s256s")  # 328 B
_PH_BIN = struct.Struct("<18i16i9f4i20s")  # 208 B
_PH_BOARD = struct.Struct("<16s8s6if2i24i")  # 156 B
_PH_TTTR = struct.Struct("<9i")  # 36 B
_HH_BIN = struct.Struct("<6id10i16i9f4i20s")  # 208 B
_HH_HW = struct.Struct("<16s8s2i20idq8i")  # 160 B
_HH_TTTR = struct.Struct("<4iq")  # 24 B


def _str(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("latin-1").strip()


class _Reader:
    def __init__(self, path: str, data: bytes) -> None:
        self.path, self.data, self.pos = path, data, 0

    def take(self, st: struct.Struct, what: str) -> tuple[Any, ...]:
        end = self.pos + st.size
        if end > len(self.data):
            raise FileFormatError(
                f"{self.path}: truncated file: the {what} ends at byte {end}, the file has "
                f"{len(self.data)}"
            )
        out = st.unpack_from(self.data, self.pos)
        self.pos = end
        return out


def _read_head(path: str, nbytes: int = 1 << 16) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(nbytes)


def _mode_error(path: str, mode: int) -> FileFormatError:
    kind = {0: "an interactive (histogram)", 1: "a continuous-mode"}.get(mode, f"a mode-{mode}")
    return FileFormatError(f"{path}: {kind} file, not T2/T3 photon records")


def open_legacy(path: str) -> RecordSource:
    """Describe the records of a .pt2/.pt3/.ht2/.ht3 file (header only).

    Raises `ValueError` naming the file for unknown identifiers or format versions, a mode other
    than T2/T3, a non-32-bit record size, implausible header fields, or a truncated file.
    """
    data = _read_head(path)
    r = _Reader(path, data)
    txt = r.take(_TXT, "text header")
    ident, version = _str(txt[0]), _str(txt[1])
    header: dict[str, Any] = {
        "Ident": ident,
        "FormatVersion": version,
        "CreatorName": _str(txt[2]),
        "CreatorVersion": _str(txt[3]),
        "FileTime": _str(txt[4]),
        "Comment": _str(txt[6]),
    }
    if ident == "PicoHarp 300":
        return _open_picoharp(path, r, header)
    if ident == "HydraHarp":
        return _open_hydraharp(path, r, header)
    raise FileFormatError(
        f"{path}: unsupported legacy PicoQuant file {ident!r} (known: PicoHarp 300, HydraHarp)"
    )


def _open_picoharp(path: str, r: _Reader, header: dict[str, Any]) -> RecordSource:
    version = header["FormatVersion"]
    if version != "2.0":
        raise FileFormatError(
            f"{path}: PicoHarp file format version {version!r} is not supported (2.0 only)"
        )
    b = r.take(_PH_BIN, "binary header")
    names = (
        "Curves BitsPerRecord RoutingChannels NumberOfBoards ActiveCurve MeasMode SubMode "
        "RangeNo Offset AcquisitionTime StopAt StopOnOvfl Restart"
    ).split()
    header.update(zip(names, b[: len(names)], strict=True))
    mode, nboards = header["MeasMode"], header["NumberOfBoards"]
    if mode not in (2, 3):
        raise _mode_error(path, mode)
    if header["BitsPerRecord"] != 32:
        raise FileFormatError(f"{path}: {header['BitsPerRecord']}-bit records are not supported")
    if nboards != 1:
        raise FileFormatError(f"{path}: NumberOfBoards = {nboards}; PicoHarp files have one board")
    board = r.take(_PH_BOARD, "board header")
    header.update(
        HardwareIdent=_str(board[0]),
        HardwareVersion=_str(board[1]),
        HardwareSerial=board[2],
        SyncDivider=board[3],
        Resolution_ns=float(f"{board[8]:.7g}"),  # float32 in the file
        RouterModelCode=board[9],
        RouterEnabled=board[10],
    )
    t = r.take(_PH_TTTR, "TTTR header")
    header.update(
        zip(
            "ExtDevices Reserved1 Reserved2 CntRate0 CntRate1 StopAfter StopReason Records "
            "ImgHdrSize".split(),
            t,
            strict=True,
        )
    )
    layout = LAYOUTS[0x00010303 if mode == 3 else 0x00010203]
    tick_ps, micro_ps = 4.0, None
    if mode == 3:
        tick_ps = _sync_period(header, header["CntRate0"], "CntRate0")
        micro_ps = header["Resolution_ns"] * 1e3
        if not micro_ps > 0:
            raise FileFormatError(
                f"{path}: board Resolution {header['Resolution_ns']} ns is not positive"
            )
    return _finish(
        path,
        r,
        header,
        layout,
        "PT3" if mode == 3 else "PT2",
        tick_ps,
        micro_ps,
        header["Records"],
        header["ImgHdrSize"],
    )


def _open_hydraharp(path: str, r: _Reader, header: dict[str, Any]) -> RecordSource:
    version = header["FormatVersion"]
    if version not in ("1.0", "2.0"):
        raise FileFormatError(
            f"{path}: HydraHarp file format version {version!r} is not supported (1.0, 2.0)"
        )
    b = r.take(_HH_BIN, "binary header")
    header.update(
        zip(
            "Curves BitsPerRecord ActiveCurve MeasMode SubMode Binning Resolution_ps Offset "
            "AcquisitionTime StopAt StopOnOvfl Restart".split(),
            b[:12],
            strict=True,
        )
    )
    mode = header["MeasMode"]
    if mode not in (2, 3):
        raise _mode_error(path, mode)
    if header["BitsPerRecord"] != 32:
        raise FileFormatError(f"{path}: {header['BitsPerRecord']}-bit records are not supported")
    hw = r.take(_HH_HW, "hardware header")
    # hw: 0 ident, 1 part no, 2 serial, 3 modules, 4..23 module info, 24 BaseResolution (ps),
    # 25 InputsEnabled, 26 InputChannelsPresent, 27 RefClockSource, 28 ExtDevices,
    # 29 MarkerSettings, 30 SyncDivider, 31 SyncCFDLevel, 32 SyncCFDZeroCross, 33 SyncOffset
    header.update(
        HardwareIdent=_str(hw[0]),
        HardwarePartNo=_str(hw[1]),
        HardwareSerial=hw[2],
        NumberOfModules=hw[3],
        BaseResolution_ps=hw[24],
        InputsEnabled=hw[25],
        InputChannelsPresent=hw[26],
        SyncDivider=hw[30],
        SyncOffset=hw[33],
    )
    nchan = hw[26]
    if not 0 <= nchan <= 64:
        raise FileFormatError(f"{path}: corrupt header: InputChannelsPresent = {nchan}")
    r.take(struct.Struct(f"<{4 * nchan}i"), "input channel settings")
    header["InputRate"] = list(r.take(struct.Struct(f"<{nchan}i"), "input rates"))
    t = r.take(_HH_TTTR, "TTTR header")
    header.update(
        zip("SyncRate StopAfter StopReason ImgHdrSize NumRecords".split(), t, strict=True)
    )
    v2 = version == "2.0"
    code = {
        (2, False): 0x00010204,
        (3, False): 0x00010304,
        (2, True): 0x01010204,
        (3, True): 0x01010304,
    }
    layout = LAYOUTS[code[(mode, v2)]]
    tick_ps, micro_ps = 1.0, None
    if mode == 3:
        tick_ps = _sync_period(header, header["SyncRate"], "SyncRate")
        micro_ps = float(header["Resolution_ps"])
        if not micro_ps > 0:
            raise FileFormatError(f"{path}: Resolution {micro_ps} ps is not positive")
    return _finish(
        path,
        r,
        header,
        layout,
        "HT3" if mode == 3 else "HT2",
        tick_ps,
        micro_ps,
        header["NumRecords"],
        header["ImgHdrSize"],
    )


def _sync_period(header: dict[str, Any], rate: int, name: str) -> float:
    """Sync period (ps) from the sync rate (Hz); NaN, with a note, when the header has none."""
    if rate <= 0:
        header["SyncPeriodUnknown"] = f"header sync rate {name} = {rate} Hz"
        return float("nan")
    return 1e12 / rate


def _finish(
    path: str,
    r: _Reader,
    header: dict[str, Any],
    layout: Layout,
    fmt: str,
    tick_ps: float,
    micro_ps: float | None,
    n_header: int,
    img_words: int,
) -> RecordSource:
    if not 0 <= img_words <= 1 << 20:
        raise FileFormatError(f"{path}: corrupt header: ImgHdrSize = {img_words}")
    if n_header < 0:
        raise FileFormatError(f"{path}: corrupt header: record count {n_header}")
    offset = r.pos + 4 * img_words
    n, notes = check_record_count(path, offset, n_header, fmt)
    acq = header.get("AcquisitionTime")
    return RecordSource(
        path=path,
        format=fmt,
        layout=layout,
        offset=offset,
        n_records=n,
        tick_ps=tick_ps,
        micro_ps=micro_ps,
        header=header,
        header_duration_s=acq * 1e-3 if isinstance(acq, int) and acq > 0 else None,
        notes=tuple(notes),
    )
