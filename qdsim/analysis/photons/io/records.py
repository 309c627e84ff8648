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
    u32 = np.uint32
    if fam == "picoharp":
        # channel 4 bits; 15 = special, then dtime (T3) / low timetag bits (T2) hold the
        # marker bits, 0 meaning overflow
        special = rec >= u32(0xF000_0000)
        field_shift, field_mask = (16, 0xFFF) if t3 else (0, 0xF)
        field = (rec >> u32(field_shift)) & u32(field_mask)
        ovf = special & (field == 0)
        mark = special & (field != 0)
        sync = None
        phot = ~special
        ch_shift, ch_mask, chan_offset = 28, 0xF, 1 if t3 else 0
        if t3:
            bad = phot & ((rec < u32(0x1000_0000)) | (rec >= u32(0x5000_0000)))
        else:
            bad = phot & (rec >= u32(0x5000_0000))
        if bad.any():
            i = _first(bad)
            raise RecordError(
                f"record {start + i}: channel code {int(rec[i] >> u32(28))} in a {layout.name} "
                f"photon record (0x{int(rec[i]):08x}) is undefined",
                start + i,
            )
        ovf_count = None  # one period per overflow record
    else:
        # special 1 bit | channel 6 bits: top = rec >> 25 is the channel for photons (< 64),
        # 64 + code for special records: 127 overflow, 64 sync (T2), 65..79 markers
        top = rec >> u32(25)
        phot = top < 64
        ovf = top == 127
        mark = (top >= 65) & (top <= 79)
        sync = None if t3 else top == 64
        bad = (top >= 80) & (top <= 126)
        if t3:
            bad |= top == 64
        if bad.any():
            i = _first(bad)
            raise RecordError(
                f"record {start + i}: special record with channel code {int(top[i]) - 64} "
                f"(0x{int(rec[i]):08x}) is undefined in {layout.name}",
                start + i,
            )
        ch_shift, ch_mask, chan_offset = 25, 0x3F, 0
        field = top
        ovf_count = None
        if fam == "hh2":  # the count of periods is in the time field; 0 means 1 (old style)
            ovf_count = np.maximum(rec[ovf] & u32(layout.time_mask), u32(1)).astype(np.int64)

    tmask = u32(layout.time_mask)
    ovf_idx = np.flatnonzero(ovf)
    n_ovf = int(ovf_idx.size)
    periods = None
    new_carry = carry
    if n_ovf:  # overflow periods seen up to and including each record, in ticks / syncs
        periods = np.zeros(rec.size, np.int64)
        periods[ovf_idx] = layout.wrap if ovf_count is None else ovf_count * layout.wrap
        np.cumsum(periods, out=periods)
        new_carry += int(periods[-1])

    def times(mask: np.ndarray, raw: np.ndarray | None = None) -> np.ndarray:
        """Overflow-corrected times of the records selected by `mask`."""
        raw = rec[mask] if raw is None else raw
        t = (raw & tmask).astype(np.int64)
        if periods is not None:
            t += periods[mask]
        if carry:
            t += carry
        return t

    rec_p = rec[phot]
    photon_time = times(phot, rec_p)
    photon_channel = ((rec_p >> u32(ch_shift)) & u32(ch_mask)).astype(np.int64)
    if chan_offset:
        photon_channel -= chan_offset
    photon_dtime = None
    if t3:
        sh, m = (16, 0xFFF) if fam == "picoharp" else (10, 0x7FFF)
        photon_dtime = ((rec_p >> u32(sh)) & u32(m)).astype(np.int64)
    sync_time = times(sync) if sync is not None else np.zeros(0, np.int64)
    marker_time = times(mark)
    marker_bits = field[mark].astype(np.int64)
    if fam != "picoharp":
        marker_bits -= 64
    if rec.size:
        base = new_carry if periods is None else carry + int(periods[-1])
        end = base if ovf[-1] else base + int(rec[-1] & tmask)
    else:
        end = max(carry, last_time)
    if sync is None or not sync.any():
        ordered, ev_time = phot, photon_time
    else:
        ordered = phot | sync
        ev_time = times(ordered)
    if ev_time.size:
        if ev_time[0] < last_time:
            bad_at = 0
        else:
            steps = np.flatnonzero(ev_time[1:] < ev_time[:-1])
            bad_at = int(steps[0]) + 1 if steps.size else -1
        if bad_at >= 0:
            i = int(np.flatnonzero(ordered)[bad_at])
            prev = int(ev_time[bad_at - 1]) if bad_at else last_time
            what = "sync index" if t3 else "time tag"
            raise RecordError(
                f"record {start + i}: {what} goes backwards ({int(ev_time[bad_at])} after "
                f"{prev} {'syncs' if t3 else 'ticks'}): corrupt or out-of-order records",
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
