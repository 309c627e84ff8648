"""Writers of PicoQuant photon files with known content, for tests.

`ptufile` writes only T3 image files, so the decoder tests build their own files from the
published record layouts (PicoQuant, "TTTR Record Format", and the legacy PicoHarp/HydraHarp
file demos):

- PicoHarp T2: channel 4 bit | timetag 28 bit; channel 15 = special: low 4 timetag bits 0 =
  overflow (period 210 698 240), else marker bits.
- PicoHarp T3: channel 4 bit (1..4) | dtime 12 bit | nsync 16 bit; channel 15 = special: dtime 0
  = overflow (period 65 536), else marker bits.
- HydraHarp/MultiHarp/TimeHarp 260 T2: special 1 | channel 6 | timetag 25. Special channel 63 =
  overflow (v1: one period of 33 552 000; v2: timetag = number of periods of 2**25, 0 meaning
  1), channel 0 = sync, 1..15 = marker bits.
- HydraHarp/MultiHarp/TimeHarp 260 T3: special 1 | channel 6 | dtime 15 | nsync 10. Special
  channel 63 = overflow (period 1024; v2: nsync = count, 0 meaning 1), 1..15 = markers.

The encoders take the *truth* (absolute event times in ticks or sync periods) and return the
records with the overflow records they need, so a test can compare what a reader decodes with
what was written. Everything here is deliberately plain Python: it is the oracle.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# --- record types (TTResultFormat_TTTRRecType) -------------------------------------------------

RECTYPES: dict[str, int] = {
    "PicoHarpT2": 0x00010203,
    "PicoHarpT3": 0x00010303,
    "HydraHarpT2": 0x00010204,
    "HydraHarpT3": 0x00010304,
    "HydraHarp2T2": 0x01010204,
    "HydraHarp2T3": 0x01010304,
    "TimeHarp260NT2": 0x00010205,
    "TimeHarp260NT3": 0x00010305,
    "TimeHarp260PT2": 0x00010206,
    "TimeHarp260PT3": 0x00010306,
    "MultiHarpT2": 0x00010207,
    "MultiHarpT3": 0x00010307,
}
T2_NAMES = tuple(n for n in RECTYPES if n.endswith("T2"))
T3_NAMES = tuple(n for n in RECTYPES if n.endswith("T3"))

PH_T2_WRAP = 210_698_240
PH_T3_WRAP = 65_536
HH1_T2_WRAP = 33_552_000
HH2_T2_WRAP = 1 << 25
HH_T3_WRAP = 1024

PHOTON, SYNC, MARKER = 0, 1, 2


def family(name: str) -> str:
    """'picoharp', 'hh1' (HydraHarp v1 records) or 'hh2' (v2 layout: HydraHarp 2, MultiHarp,
    TimeHarp 260)."""
    if name.startswith("PicoHarp"):
        return "picoharp"
    if name in ("HydraHarpT2", "HydraHarpT3"):
        return "hh1"
    return "hh2"


def t2_wrap(name: str) -> int:
    return {"picoharp": PH_T2_WRAP, "hh1": HH1_T2_WRAP, "hh2": HH2_T2_WRAP}[family(name)]


def t3_wrap(name: str) -> int:
    return PH_T3_WRAP if family(name) == "picoharp" else HH_T3_WRAP


def max_channel(name: str) -> int:
    """Largest photon channel number (ptufile numbering, from 0) the layout can carry."""
    if name == "PicoHarpT2":
        return 4
    if name == "PicoHarpT3":
        return 3
    return 63


# --- truth -------------------------------------------------------------------------------------


@dataclass
class Truth:
    """What a file holds, in the units of the records (ticks for T2, sync periods for T3)."""

    records: np.ndarray  # uint32
    kind: list[int] = field(default_factory=list)  # per event: PHOTON, SYNC or MARKER
    time: list[int] = field(default_factory=list)  # T2: ticks; T3: sync index
    value: list[int] = field(default_factory=list)  # channel or marker bits
    dtime: list[int] = field(default_factory=list)  # T3 micro time bins (0 for T2, markers)
    n_overflow_records: int = 0
    end: int = 0  # overflow-corrected time (ticks / sync periods) of the last record

    def photons(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = np.asarray(self.kind, dtype=np.int64)
        m = k == PHOTON
        return (
            np.asarray(self.time, np.int64)[m],
            np.asarray(self.value, np.int64)[m],
            np.asarray(self.dtime, np.int64)[m],
        )

    def syncs(self) -> np.ndarray:
        k = np.asarray(self.kind, dtype=np.int64)
        return np.asarray(self.time, np.int64)[k == SYNC]

    def markers(self) -> tuple[np.ndarray, np.ndarray]:
        k = np.asarray(self.kind, dtype=np.int64)
        m = k == MARKER
        return np.asarray(self.time, np.int64)[m], np.asarray(self.value, np.int64)[m]


def _overflow_records(name: str, n: int, style: str) -> list[int]:
    """Records that advance the overflow accumulator by `n` periods."""
    fam = family(name)
    t2 = name.endswith("T2")
    out: list[int] = []
    if n <= 0:
        return out
    if fam == "picoharp":
        return [0xF000_0000] * n
    base = 0x8000_0000 | (63 << 25)
    if fam == "hh1":
        return [base] * n
    # v2 layout: count in the time field (timetag 25 bit in T2, nsync 10 bit in T3); 0 means 1
    limit = (1 << 25) - 1 if t2 else 1023
    if style == "single":
        return [base | 1] * n
    if style == "zero":
        return [base] * n
    while n > 0:
        k = min(n, limit)
        out.append(base | k)
        n -= k
    return out


def encode_t2(
    name: str,
    events: Sequence[tuple[int, int, int]],
    *,
    end: int | None = None,
    overflow_style: str = "combined",
) -> Truth:
    """Encode time-sorted T2 events `(tick, kind, value)` as records of type `name`.

    `kind` is PHOTON (value = channel, ptufile numbering), SYNC (HydraHarp-type only) or MARKER
    (value = marker bits 1..15). PicoHarp T2 markers carry their bits in the low 4 timetag bits,
    so their true time is the tick with those bits replaced (the truth records that time).
    Overflow records are added as needed, and up to `end` (ticks) at the end. `overflow_style`
    (v2 layout only): 'combined' (count in the record), 'single' (count 1) or 'zero' (count 0,
    the old style meaning one).
    """
    fam = family(name)
    wrap = t2_wrap(name)
    recs: list[int] = []
    truth = Truth(records=np.zeros(0, np.uint32))
    nwrap = 0
    for tick, kind, value in events:
        w, t = divmod(int(tick), wrap)
        if w < nwrap:
            raise ValueError("events must be sorted by time")
        ovf = _overflow_records(name, w - nwrap, overflow_style)
        recs += ovf
        truth.n_overflow_records += len(ovf)
        nwrap = w
        if fam == "picoharp":
            if kind == PHOTON:
                if not 0 <= value <= 4:
                    raise ValueError("PicoHarp T2 channel must be 0..4")
                recs.append((value << 28) | t)
            elif kind == MARKER:
                if not 1 <= value <= 15:
                    raise ValueError("marker bits must be 1..15")
                t = (t & ~0xF) | value
                recs.append(0xF000_0000 | t)
            else:
                raise ValueError("PicoHarp T2 has no sync records")
        else:
            if kind == PHOTON:
                if not 0 <= value <= 63:
                    raise ValueError("channel must be 0..63")
                recs.append((value << 25) | t)
            elif kind == SYNC:
                recs.append(0x8000_0000 | t)
            else:
                if not 1 <= value <= 15:
                    raise ValueError("marker bits must be 1..15")
                recs.append(0x8000_0000 | (value << 25) | t)
        truth.kind.append(kind)
        truth.time.append(nwrap * wrap + t)
        truth.value.append(value)
        truth.dtime.append(0)
    last = truth.time[-1] if truth.time else 0
    if end is not None and end // wrap > nwrap:
        ovf = _overflow_records(name, end // wrap - nwrap, overflow_style)
        recs += ovf
        truth.n_overflow_records += len(ovf)
        nwrap = end // wrap
        last = nwrap * wrap
    truth.end = last
    truth.records = np.asarray(recs, dtype=np.uint32)
    return truth


def encode_t3(
    name: str,
    events: Sequence[tuple[int, int, int, int]],
    *,
    end: int | None = None,
    overflow_style: str = "combined",
) -> Truth:
    """Encode T3 events `(sync_index, kind, value, dtime)`, sorted by sync index.

    `kind` is PHOTON (value = channel, ptufile numbering: PicoHarp records store channel + 1) or
    MARKER (value = marker bits; dtime ignored). Overflow records are added as needed, and up to
    sync index `end` at the end.
    """
    fam = family(name)
    wrap = t3_wrap(name)
    recs: list[int] = []
    truth = Truth(records=np.zeros(0, np.uint32))
    nwrap = 0
    for sync, kind, value, dtime in events:
        w, n = divmod(int(sync), wrap)
        if w < nwrap:
            raise ValueError("events must be sorted by sync index")
        ovf = _overflow_records(name, w - nwrap, overflow_style)
        recs += ovf
        truth.n_overflow_records += len(ovf)
        nwrap = w
        if fam == "picoharp":
            if kind == PHOTON:
                if not (0 <= value <= 3 and 0 <= dtime < 4096):
                    raise ValueError("PicoHarp T3: channel 0..3, dtime < 4096")
                recs.append(((value + 1) << 28) | (dtime << 16) | n)
            elif kind == MARKER:
                if not 1 <= value <= 15:
                    raise ValueError("marker bits must be 1..15")
                recs.append(0xF000_0000 | (value << 16) | n)
                dtime = 0
            else:
                raise ValueError("no sync records in T3")
        else:
            if kind == PHOTON:
                if not (0 <= value <= 63 and 0 <= dtime < 32768):
                    raise ValueError("T3: channel 0..63, dtime < 32768")
                recs.append((value << 25) | (dtime << 10) | n)
            elif kind == MARKER:
                if not 1 <= value <= 15:
                    raise ValueError("marker bits must be 1..15")
                recs.append(0x8000_0000 | (value << 25) | n)
                dtime = 0
            else:
                raise ValueError("no sync records in T3")
        truth.kind.append(kind)
        truth.time.append(nwrap * wrap + n)
        truth.value.append(value)
        truth.dtime.append(dtime)
    last = truth.time[-1] if truth.time else 0
    if end is not None and end // wrap > nwrap:
        ovf = _overflow_records(name, end // wrap - nwrap, overflow_style)
        recs += ovf
        truth.n_overflow_records += len(ovf)
        nwrap = end // wrap
        last = nwrap * wrap
    truth.end = last
    truth.records = np.asarray(recs, dtype=np.uint32)
    return truth


def random_events_t2(
    rng: np.random.Generator, name: str, n: int, *, mean_gap: int, p_sync=0.1, p_marker=0.05
) -> list[tuple[int, int, int]]:
    """`n` random time-sorted T2 events (tick, kind, value), gaps exponential with mean
    `mean_gap` ticks (mixing gaps of many overflow periods in when mean_gap is large)."""
    gaps = rng.exponential(mean_gap, n).astype(np.int64)
    ticks = np.cumsum(gaps) + int(rng.integers(0, 1000))
    kinds = rng.choice([PHOTON, SYNC, MARKER], size=n, p=[1 - p_sync - p_marker, p_sync, p_marker])
    events = []
    pico = family(name) == "picoharp"
    for t, k in zip(ticks.tolist(), kinds.tolist(), strict=True):
        if k == SYNC and pico:
            k = PHOTON
        if k == PHOTON:
            v = int(rng.integers(0, max_channel(name) + 1 if pico else 4))
        elif k == MARKER:
            v = int(rng.integers(1, 16))
        else:
            v = 0
        events.append((t, k, v))
    if pico:  # a PicoHarp marker's time is tick with its low 4 bits replaced: keep it sorted
        fixed = []
        for t, k, v in events:
            if k == MARKER:
                t = (t & ~0xF) | v
            fixed.append((t, k, v))
        fixed.sort(key=lambda e: e[0])
        events = fixed
    return events


# --- PTU and PHU (tagged) files ----------------------------------------------------------------

_TY_EMPTY8 = 0xFFFF0008
_TY_BOOL8 = 0x00000008
_TY_INT8 = 0x10000008
_TY_FLOAT8 = 0x20000008
_TY_ANSI = 0x4001FFFF


def _tag(ident: str, value: Any, index: int = -1) -> bytes:
    head = ident.encode("ascii").ljust(32, b"\0")
    if value is None:
        return head + struct.pack("<iIq", index, _TY_EMPTY8, 0)
    if isinstance(value, bool):
        return head + struct.pack("<iIq", index, _TY_BOOL8, int(value))
    if isinstance(value, int):
        return head + struct.pack("<iIq", index, _TY_INT8, value)
    if isinstance(value, float):
        return head + struct.pack("<iId", index, _TY_FLOAT8, value)
    if isinstance(value, str):
        data = value.encode("windows-1252") + b"\0"
        data += b"\0" * (-len(data) % 8)
        return head + struct.pack("<iIq", index, _TY_ANSI, len(data)) + data
    raise TypeError(f"unsupported tag value {value!r}")


def tags_bytes(magic: bytes, tags: Sequence[tuple[str, Any]] | Mapping[str, Any]) -> bytes:
    """A tagged header: magic, version, tags (lists become indexed tags), Header_End."""
    items = tags.items() if isinstance(tags, Mapping) else tags
    out = [magic.ljust(8, b"\0"), b"1.0.00\0\0"]
    for ident, value in items:
        if isinstance(value, list | tuple):
            out += [_tag(ident, v, i) for i, v in enumerate(value)]
        else:
            out.append(_tag(ident, value))
    out.append(_tag("Header_End", None))
    return b"".join(out)


def write_ptu(
    path: str | Path,
    name: str,
    records: np.ndarray,
    *,
    global_resolution_s: float,
    resolution_s: float | None = None,
    number_of_records: int | None = None,
    acquisition_time_ms: int = 1000,
    extra_tags: Mapping[str, Any] | None = None,
    tail: bytes = b"",
) -> Path:
    """Write a PTU file of record type `name` (see RECTYPES) holding `records`.

    `global_resolution_s` is MeasDesc_GlobalResolution (T2 tick; T3 sync period) and
    `resolution_s` MeasDesc_Resolution (T3 micro-time bin). `number_of_records` lets a test make
    the header lie (default: the true count); `tail` appends raw bytes after the records.
    """
    t3 = name.endswith("T3")
    if resolution_s is None:
        resolution_s = global_resolution_s
    n = len(records) if number_of_records is None else number_of_records
    tags: dict[str, Any] = {
        "File_GUID": "{00000000-0000-0000-0000-000000000000}",
        "CreatorSW_Name": "qdsim test writer",
        "File_Comment": f"{name} test file",
        "Measurement_Mode": 3 if t3 else 2,
        "Measurement_SubMode": 0,
        "HW_Type": name,
        "MeasDesc_AcquisitionTime": int(acquisition_time_ms),
        "MeasDesc_GlobalResolution": float(global_resolution_s),
        "MeasDesc_Resolution": float(resolution_s),
        "TTResult_SyncRate": int(round(1 / global_resolution_s)) if t3 else 1000,
        "TTResult_NumberOfRecords": int(n),
        "TTResultFormat_TTTRRecType": RECTYPES[name],
        "TTResultFormat_BitsPerRecord": 32,
    }
    if extra_tags:
        tags.update(extra_tags)
    data = tags_bytes(b"PQTTTR", tags) + np.asarray(records, "<u4").tobytes() + tail
    path = Path(path)
    path.write_bytes(data)
    return path


def write_phu(
    path: str | Path,
    curves: Sequence[np.ndarray],
    resolutions_s: Sequence[float],
    *,
    extra_tags: Mapping[str, Any] | None = None,
    truncate: int = 0,
) -> Path:
    """Write a PHU histogram file holding `curves` (uint32 counts) with per-curve bin widths
    `resolutions_s` (HistResDscr_MDescResolution). `truncate` drops that many trailing bytes."""
    n = len(curves)
    tags: list[tuple[str, Any]] = [
        ("File_GUID", "{00000000-0000-0000-0000-000000000001}"),
        ("Measurement_Mode", 0),
        ("Measurement_SubMode", 1),
        ("HW_Type", "HydraHarp"),
        ("MeasDesc_Resolution", float(resolutions_s[0])),
        ("HistoResult_NumberOfCurves", n),
        ("HistoResult_BitsPerBin", 32),
        ("HistResDscr_CurveIndex", list(range(n))),
        ("HistResDscr_HistogramBins", [len(c) for c in curves]),
        ("HistResDscr_MDescResolution", [float(r) for r in resolutions_s]),
        ("HistResDscr_HWBaseResolution", [1e-12] * n),
        ("HistResDscr_DataOffset", [0] * n),  # placeholder, fixed below
    ]
    if extra_tags:
        tags += list(extra_tags.items())
    header = tags_bytes(b"PQHISTO", tags)
    offsets, pos = [], len(header)
    for c in curves:
        offsets.append(pos)
        pos += 4 * len(c)
    tags[-1 - (len(extra_tags) if extra_tags else 0)] = ("HistResDscr_DataOffset", offsets)
    header2 = tags_bytes(b"PQHISTO", tags)
    assert len(header2) == len(header)
    data = header2 + b"".join(np.asarray(c, "<u4").tobytes() for c in curves)
    if truncate:
        data = data[:-truncate]
    path = Path(path)
    path.write_bytes(data)
    return path


# --- legacy PicoHarp (.pt2, .pt3) and HydraHarp (.ht2, .ht3) files ------------------------------


def _s(text: str, size: int) -> bytes:
    return text.encode("ascii")[:size].ljust(size, b"\0")


def _txt_header(ident: str, version: str, comment: str = "test") -> bytes:
    return (
        _s(ident, 16)
        + _s(version, 6)
        + _s("qdsim test", 18)
        + _s("1.0", 12)
        + _s("01/01/26 00:00:00", 18)
        + b"\r\n"
        + _s(comment, 256)
    )


def write_picoharp_legacy(
    path: str | Path,
    records: np.ndarray,
    *,
    mode: int,
    resolution_ns: float = 0.004,
    sync_rate_hz: int = 10_000_000,
    number_of_records: int | None = None,
    number_of_boards: int = 1,
    img_hdr: Sequence[int] = (),
    acquisition_time_ms: int = 1000,
    ident: str = "PicoHarp 300",
    version: str = "2.0",
) -> Path:
    """Write a PicoHarp 300 .pt2 (mode 2) or .pt3 (mode 3) file, format version 2.0: text
    header (328 B), binary header (208 B), board header (156 B), TTTR header (36 B), image
    header (4 B each), records. In T3 the sync rate (CntRate0, Hz) is all the file says about
    the sync period."""
    n = len(records) if number_of_records is None else number_of_records
    binhdr = struct.pack(
        "<18i",
        1,  # Curves
        32,  # BitsPerRecord
        4,  # RoutingChannels
        number_of_boards,
        0,  # ActiveCurve
        mode,
        0,  # SubMode
        0,  # RangeNo
        0,  # Offset
        acquisition_time_ms,
        0,  # StopAt
        0,  # StopOnOvfl
        0,  # Restart
        0,  # DispLinLog
        0,
        100,
        0,
        1000,
    )
    binhdr += struct.pack("<16i", *([0, 1] * 8))  # DispCurves
    binhdr += struct.pack("<9f", *([0.0] * 9))  # Params
    binhdr += struct.pack("<4i", 0, 0, 0, 0) + _s("", 20)
    assert len(binhdr) == 208
    board = (
        _s("PicoHarp 300", 16)
        + _s("2.0", 8)
        + struct.pack("<6i", 1000, 1, 10, 100, 10, 100)
        + struct.pack("<f", resolution_ns)
        + struct.pack("<2i", 0, 0)
        + struct.pack("<24i", *([0] * 24))
    )
    assert len(board) == 156
    tttr = struct.pack("<9i", 0, 0, 0, sync_rate_hz, 1000, acquisition_time_ms, 0, n, len(img_hdr))
    data = (
        _txt_header(ident, version)
        + binhdr
        + board * max(number_of_boards, 1)
        + tttr
        + struct.pack(f"<{len(img_hdr)}i", *img_hdr)
        + np.asarray(records, "<u4").tobytes()
    )
    path = Path(path)
    path.write_bytes(data)
    return path


def write_hydraharp_legacy(
    path: str | Path,
    records: np.ndarray,
    *,
    mode: int,
    version: str = "2.0",
    resolution_ps: float = 1.0,
    base_resolution_ps: float = 1.0,
    sync_rate_hz: int = 10_000_000,
    input_channels: int = 2,
    number_of_records: int | None = None,
    img_hdr: Sequence[int] = (),
    acquisition_time_ms: int = 1000,
    ident: str = "HydraHarp",
) -> Path:
    """Write a HydraHarp 400 .ht2 (mode 2) or .ht3 (mode 3) file, format version 1.0 or 2.0
    (v1 or v2 records): text header, binary header (208 B), hardware header (160 B), input
    channel settings (16 B each), input rates (4 B each), TTTR header (24 B), image header,
    records."""
    n = len(records) if number_of_records is None else number_of_records
    binhdr = struct.pack("<6i", 1, 32, 0, mode, 0, 0)  # Curves..Binning
    binhdr += struct.pack("<d", resolution_ps)
    binhdr += struct.pack("<10i", 0, acquisition_time_ms, 0, 0, 0, 0, 0, 100, 0, 1000)
    binhdr += struct.pack("<16i", *([0, 1] * 8))
    binhdr += struct.pack("<9f", *([0.0] * 9))
    binhdr += struct.pack("<4i", 0, 0, 0, 0) + _s("", 20)
    assert len(binhdr) == 208, len(binhdr)
    hw = _s("HydraHarp 400", 16) + _s("930021", 8) + struct.pack("<2i", 1001, 1)
    hw += struct.pack("<20i", *([0] * 20))  # ModuleInfo[10]
    hw += struct.pack("<dq", base_resolution_ps, (1 << input_channels) - 1)
    hw += struct.pack("<8i", input_channels, 0, 0, 0, 1, 100, 10, 0)
    assert len(hw) == 160, len(hw)
    chans = b"".join(struct.pack("<4i", 0, 100, 10, 0) for _ in range(input_channels))
    rates = struct.pack(f"<{input_channels}i", *([1000] * input_channels))
    tttr = struct.pack("<4iq", sync_rate_hz, acquisition_time_ms, 0, len(img_hdr), n)
    data = (
        _txt_header(ident, version)
        + binhdr
        + hw
        + chans
        + rates
        + tttr
        + struct.pack(f"<{len(img_hdr)}i", *img_hdr)
        + np.asarray(records, "<u4").tobytes()
    )
    path = Path(path)
    path.write_bytes(data)
    return path
