"""TTTR record layouts and a vectorised NumPy decoder for them.

The 32-bit record layouts are PicoQuant's published ones ("TTTR Record Format", PTU file-format
demos; the legacy .pt2/.pt3/.ht2/.ht3 files use the same records):

- PicoHarp T2: channel 4 | timetag 28 bits; overflow period 210 698 240 ticks. Channel 15 is
  special: low 4 timetag bits 0 = overflow, else marker bits.
- PicoHarp T3: channel 4 (1..4) | dtime 12 | nsync 16 bits; period 65 536 syncs. Channel 15 is
  special: dtime 0 = overflow, else marker bits.
- HydraHarp v1 T2: special 1 | channel 6 | timetag 25 bits; period 33 552 000 ticks. Special
  channel 63 = overflow (one period), 0 = sync, 1..15 = marker bits.
- HydraHarp v2, MultiHarp, TimeHarp 260 T2: as v1, period 2**25 ticks, and an overflow record's
  timetag is the number of periods (0 means 1).
- HydraHarp v1 T3: special 1 | channel 6 | dtime 15 | nsync 10 bits; period 1024 syncs.
  Special channel 63 = overflow (one period), 1..15 = marker bits.
- HydraHarp v2, MultiHarp, TimeHarp 260 T3: as v1, an overflow record's nsync is the number of
  periods (0 means 1).

Channels follow `ptufile`'s numbering: PicoHarp T3 records store channel + 1; everything else is
stored as is (PicoHarp T2 channel 0 is the sync input, a detection channel like the others).
Decoding is chunk-wise: an integer `carry` (overflow periods accumulated so far, in ticks or
syncs) passes from one chunk to the next, so a file of any length is decoded in O(chunk) memory.
Records no layout defines (a PicoHarp photon on channel 0 or > 4, a HydraHarp special record with
channel code 16..62, or 0 in T3) raise `RecordError` with their index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "LAYOUTS",
    "SYNC_CHANNEL",
    "DecodedChunk",
    "Layout",
    "RecordError",
    "decode_numpy",
    "layout_for",
]

#: Channel number given to T2 sync events (HydraHarp, MultiHarp, TimeHarp 260) when they are kept.
SYNC_CHANNEL = -1


class RecordError(ValueError):
    """A record that no layout defines; `index` is its position among the file's records."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Layout:
    """A record layout: name (ptufile's PtuRecordType name), type code, mode, family."""

    name: str
    code: int
    t3: bool
    family: str  # "picoharp", "hh1" (HydraHarp v1 records) or "hh2" (v2 layout)

    @property
    def wrap(self) -> int:
        """Overflow period in ticks (T2) or syncs (T3)."""
        if self.family == "picoharp":
            return 65_536 if self.t3 else 210_698_240
        if self.t3:
            return 1024
        return 33_552_000 if self.family == "hh1" else 1 << 25

    @property
    def time_mask(self) -> int:
        """Mask of the timetag (T2) or nsync (T3) field."""
        if self.family == "picoharp":
            return 0xFFFF if self.t3 else 0x0FFF_FFFF
        return 0x3FF if self.t3 else 0x1FF_FFFF

    @property
    def max_dtime(self) -> int:
        """Largest micro-time bin the layout can hold (T3)."""
        return 4095 if self.family == "picoharp" else 32767


LAYOUTS: dict[int, Layout] = {
    lay.code: lay
    for lay in (
        Layout("PicoHarpT2", 0x00010203, False, "picoharp"),
        Layout("PicoHarpT3", 0x00010303, True, "picoharp"),
        Layout("HydraHarpT2", 0x00010204, False, "hh1"),
        Layout("HydraHarpT3", 0x00010304, True, "hh1"),
        Layout("HydraHarp2T2", 0x01010204, False, "hh2"),
        Layout("HydraHarp2T3", 0x01010304, True, "hh2"),
        Layout("TimeHarp260NT2", 0x00010205, False, "hh2"),
        Layout("TimeHarp260NT3", 0x00010305, True, "hh2"),
        Layout("TimeHarp260PT2", 0x00010206, False, "hh2"),
        Layout("TimeHarp260PT3", 0x00010306, True, "hh2"),
        Layout("GenericT2", 0x00010207, False, "hh2"),  # MultiHarp, PicoHarp 330
        Layout("GenericT3", 0x00010307, True, "hh2"),
    )
}


def layout_for(code: int) -> Layout:
    """The layout of record type `code`; `ValueError` for unknown codes."""
    try:
        return LAYOUTS[int(code)]
    except KeyError:
        known = ", ".join(f"{lay.name} (0x{c:08x})" for c, lay in LAYOUTS.items())
        raise ValueError(f"unsupported record type 0x{int(code):08x}; known: {known}") from None


@dataclass
class DecodedChunk:
    """Events of one chunk of records, in file order, times overflow-corrected.

    `photon_time`: ticks (T2) or sync index (T3) of photon records, int64; `photon_channel`
    (int64, ptufile numbering); `photon_dtime` (T3 micro-time bins, int64; None in T2);
    `sync_time` (T2 sync records, ticks); `marker_time` / `marker_bits`; counts of overflow
    and marker records; `carry` after the chunk; `end`: overflow-corrected time of the last
    record (ticks / syncs; an overflow record counts as the start of its period); `last_time`:
    time of the last photon (or T2 sync) record so far, for the order check of the next chunk.
    """

    photon_time: np.ndarray
    photon_channel: np.ndarray
    photon_dtime: np.ndarray | None
    sync_time: np.ndarray
    marker_time: np.ndarray
    marker_bits: np.ndarray
    n_overflow: int
    carry: int
    end: int
    last_time: int


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def decode_numpy(
    records: np.ndarray, layout: Layout, carry: int = 0, start: int = 0, last_time: int = 0
) -> DecodedChunk:
    """Decode a chunk of raw records (uint32) of `layout`.

    **Arguments:** `records` (1-D uint32 array); `carry`: overflow-corrected time base at the
    chunk start (ticks or syncs, the previous chunk's `carry`); `start`: index of the first
    record in the file (for error messages); `last_time`: the previous chunk's `last_time`.

    **Returns:** a `DecodedChunk`.

    **Raises:** `RecordError` for undefined records, and for time going backwards: photon and
    sync records must come in time order (T2), photon records in sync order (T3). Markers are
    exempt: PicoQuant notes they may appear slightly out of order by design.
    """
    rec = np.asarray(records, dtype=np.uint32)
    fam, t3 = layout.family, layout.t3
    if fam == "picoharp":
        ch = rec >> np.uint32(28)
        special = ch == 15
        if t3:
            field = (rec >> np.uint32(16)) & np.uint32(0xFFF)  # dtime, or marker bits
        else:
            field = rec & np.uint32(0xF)  # low timetag bits: marker bits
        ovf = special & (field == 0)
        mark = special & (field != 0)
        phot = ~special
        bad = phot & ((ch == 0) | (ch > 4)) if t3 else phot & (ch > 4)
        if bad.any():
            i = _first(bad)
            raise RecordError(
                f"record {start + i}: channel code {int(ch[i])} in a {layout.name} photon record "
                f"(0x{int(rec[i]):08x}) is undefined",
                start + i,
            )
        ovf_count = None  # one period per overflow record
        sync = None
        marker_field = field
        chan_offset = 1 if t3 else 0
    else:
        special = (rec >> np.uint32(31)).astype(bool)
        ch = (rec >> np.uint32(25)) & np.uint32(0x3F)
        ovf = special & (ch == 63)
        mark = special & (ch >= 1) & (ch <= 15)
        sync = special & (ch == 0)
        bad = special & (ch >= 16) & (ch <= 62)
        if t3:
            bad |= sync
        if bad.any():
            i = _first(bad)
            raise RecordError(
                f"record {start + i}: special record with channel code {int(ch[i])} "
                f"(0x{int(rec[i]):08x}) is undefined in {layout.name}",
                start + i,
            )
        phot = ~special
        ovf_count = None
        if fam == "hh2":  # the count of periods is in the time field; 0 means 1 (old style)
            ovf_count = np.maximum(rec[ovf] & np.uint32(layout.time_mask), 1).astype(np.int64)
        if t3:
            sync = None
        marker_field = ch
        chan_offset = 0

    # overflow-corrected time of every record: field + carry + periods seen so far
    time = (rec & np.uint32(layout.time_mask)).astype(np.int64)
    ovf_idx = np.flatnonzero(ovf)
    n_ovf = int(ovf_idx.size)
    new_carry = carry
    if n_ovf:
        periods = np.zeros(rec.size, np.int64)
        periods[ovf_idx] = layout.wrap if ovf_count is None else ovf_count * layout.wrap
        np.cumsum(periods, out=periods)
        new_carry += int(periods[-1])
        time[ovf_idx] = 0  # an overflow record marks the start of its period
        time += periods
    if carry:
        time += carry
    photon_time = time[phot]
    photon_channel = ch[phot].astype(np.int64)
    if chan_offset:
        photon_channel -= chan_offset
    photon_dtime = None
    if t3:
        sh, m = (16, 0xFFF) if fam == "picoharp" else (10, 0x7FFF)
        photon_dtime = ((rec[phot] >> np.uint32(sh)) & np.uint32(m)).astype(np.int64)
    if sync is not None:
        sync_time = time[sync]
    else:
        sync_time = np.zeros(0, np.int64)
    marker_time = time[mark]
    marker_bits = marker_field[mark].astype(np.int64)
    end = int(time[-1]) if rec.size else max(carry, last_time)
    ordered = phot if sync is None else phot | sync
    ev_time = photon_time if sync is None else time[ordered]
    if ev_time.size:
        if ev_time[0] < last_time:
            bad = 0
        else:
            steps = np.flatnonzero(ev_time[1:] < ev_time[:-1])
            bad = int(steps[0]) + 1 if steps.size else -1
        if bad >= 0:
            i = int(np.flatnonzero(ordered)[bad])
            prev = int(ev_time[bad - 1]) if bad else last_time
            what = "sync index" if t3 else "time tag"
            raise RecordError(
                f"record {start + i}: {what} goes backwards ({int(ev_time[bad])} after {prev} "
                f"{'syncs' if t3 else 'ticks'}): corrupt or out-of-order records",
                start + i,
            )
        last_time = int(ev_time[-1])
    return DecodedChunk(
        photon_time=photon_time,
        photon_channel=photon_channel,
        photon_dtime=photon_dtime,
        sync_time=sync_time,
        marker_time=marker_time,
        marker_bits=marker_bits,
        n_overflow=n_ovf,
        carry=new_carry,
        end=end,
        last_time=last_time,
    )
