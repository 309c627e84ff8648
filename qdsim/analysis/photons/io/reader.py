"""Photon files to `PhotonStream`s: format dispatch, chunked decoding, absolute times in ps."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from qdsim.analysis.photons.io import fast
from qdsim.analysis.photons.io.errors import FileFormatError, NotAPhotonFileError
from qdsim.analysis.photons.io.records import SYNC_CHANNEL, DecodedChunk, RecordError, decode_numpy
from qdsim.analysis.photons.io.source import RecordSource
from qdsim.analysis.photons.stream import PhotonStream

__all__ = [
    "DEFAULT_CHUNK_RECORDS",
    "count_records",
    "iter_photons",
    "open_records",
    "read_photons",
    "ticks_to_ps",
]

#: Records decoded per step when reading a whole file (about 100 MB of temporaries).
DEFAULT_CHUNK_RECORDS = 2_000_000

_OTHER_PQ = {
    b"PQHISTO\0": "a PHU histogram file: read it with read_histogram",
    b"PQCHECK\0": "a PicoQuant check file (PCK) without photon records",
    b"PQCOMNT\0": "a PicoQuant comment file (PCO) without photon records",
    b"PQDEFLT\0": "a PicoQuant settings file (PFS/PUS) without photon records",
    b"PQRESLT\0": "a PicoQuant result file (PQRES) without photon records",
}


def _decoder() -> str:
    """ "numba" (the compiled kernels of `fast`) or "numpy" (`records.decode_numpy`, the
    reference): `QDSIM_PHOTON_DECODER` chooses, default numba when it imports."""
    name = os.environ.get("QDSIM_PHOTON_DECODER") or ("numba" if fast.HAVE_NUMBA else "numpy")
    if name not in ("numba", "numpy"):
        raise ValueError(f"QDSIM_PHOTON_DECODER must be 'numba' or 'numpy', got {name!r}")
    if name == "numba" and not fast.HAVE_NUMBA:  # pragma: no cover
        raise ImportError("QDSIM_PHOTON_DECODER=numba but numba cannot be imported")
    return name


def _decode(records: np.ndarray, layout, carry: int, start: int, last_time: int) -> DecodedChunk:
    decode = fast.decode_fast if _decoder() == "numba" else decode_numpy
    return decode(records, layout, carry, start, last_time)


def open_records(path: str | os.PathLike[str]) -> RecordSource:
    """Identify a photon file by its first bytes (not its name) and read its header.

    PTU files go through `ptufile`; PicoHarp .pt2/.pt3 and HydraHarp .ht2/.ht3 through
    `legacy`. Raises `FileNotFoundError`, or `FileFormatError` (a `ValueError`) naming the file
    and the problem; warns (`FileFormatWarning`) about records it will not read.
    """
    return _open_records(path)


def _open_records(path: str | os.PathLike[str], header: str = "ptufile") -> RecordSource:
    """`open_records`; a PTU header read by ptufile (`header="ptufile"`), or by the package's
    own scan (`ptu.open_ptu_lean`, which hands anything unusual to ptufile): every tag
    (`"all"`), or only the tags that locate and describe the records (`"source"`), for a
    caller that never shows the header (`_windows`)."""
    p = os.fspath(path)
    with open(p, "rb") as fh:
        head = fh.read(22)
    try:
        return _open_by_content(p, head, header)
    except (FileFormatError, OSError, Warning):  # Warning: a warning turned into an error
        raise
    except Exception as exc:  # a header parser tripping over damaged bytes: still one line
        raise FileFormatError(f"{p}: corrupt header ({type(exc).__name__}: {exc})") from None


def _open_by_content(p: str, head: bytes, header: str = "ptufile") -> RecordSource:
    if head[:8] == b"PQTTTR\0\0":
        from qdsim.analysis.photons.io.ptu import open_ptu, open_ptu_lean

        return open_ptu(p) if header == "ptufile" else open_ptu_lean(p, full=header == "all")
    if head[:8] in _OTHER_PQ:
        raise NotAPhotonFileError(f"{p}: {_OTHER_PQ[head[:8]]}")
    ident = head[:16].split(b"\0", 1)[0].decode("latin-1", "replace").strip()
    from qdsim.analysis.photons.io.legacy import LEGACY_IDENTS, open_legacy

    if ident in LEGACY_IDENTS:
        return open_legacy(p)
    if not head:
        raise FileFormatError(f"{p}: empty file")
    magics = [b"PQTTTR\0\0", *_OTHER_PQ, *(i.encode() for i in LEGACY_IDENTS)]
    if len(head) < 22 and any(len(head) < len(m) and m.startswith(head) for m in magics):
        raise FileFormatError(
            f"{p}: truncated file: it ends at byte {len(head)}, inside its format identifier"
        )
    raise NotAPhotonFileError(
        f"{p}: not a photon file this reader knows (starts with {head[:16]!r}); "
        "supported: PicoQuant PTU, PicoHarp .pt2/.pt3, HydraHarp .ht2/.ht3"
    )


def ticks_to_ps(ticks: np.ndarray, unit_ps: float) -> np.ndarray:
    """`ticks * unit_ps` rounded to whole picoseconds (int64).

    Exact for whole-picosecond units (4 ps, 1 ps, 12 500 ps ...); otherwise the unit is split
    into whole and fractional picoseconds so that the rounding error stays below 1 ps for any
    tick count below 2**62 / unit (float64 alone loses picoseconds past ~10**16 ps, 3 hours).
    """
    ticks = np.asarray(ticks, dtype=np.int64)
    whole = round(unit_ps)
    if abs(unit_ps - whole) <= 1e-9 * max(1.0, unit_ps):
        return ticks * np.int64(whole)
    whole = math.floor(unit_ps)
    out = ticks * np.int64(whole)
    out += np.rint(ticks * (unit_ps - whole)).astype(np.int64)
    return out


class _Assembler:
    """Turns decoded chunks into ordered PhotonStream chunks.

    T2 photon records (and sync records) must come in time order; T3 photon records in sync
    order; a step backwards is a corrupt file. Within a T3 sync period photons are put in time
    order; photons that a later chunk could still precede are held back to the next chunk.
    """

    def __init__(
        self,
        src: RecordSource,
        *,
        sync_period_ps: float | None,
        include_sync: bool,
        channels: Sequence[int] | None,
    ) -> None:
        self.src = src
        self.t3 = src.t3
        self.period = float(sync_period_ps) if sync_period_ps is not None else src.tick_ps
        if not (self.period > 0 and math.isfinite(self.period)):
            why = src.header.get("SyncPeriodUnknown", f"sync period {self.period} ps")
            raise FileFormatError(
                f"{src.path}: {why}: cannot compute absolute times (pass sync_period_ps)"
            )
        self.want = None if channels is None else np.unique(np.asarray(channels, np.int64))
        self.include_sync = include_sync or (
            self.want is not None and SYNC_CHANNEL in self.want.tolist()
        )
        self.carry = 0  # overflow-corrected time base (ticks / syncs)
        self.last_time = 0  # last photon (T2: or sync) tick / sync index decoded
        self.boundary_ps = 0  # end of what has been emitted
        self.end_ps = 0  # latest time seen in any record
        self.seen: dict[int, int] = {}
        empty = np.zeros(0, np.int64)
        self.held = (empty, empty, empty, empty)  # time_ps, channel, micro_ps, sync_index

    def decode(self, records: np.ndarray, start: int) -> DecodedChunk:
        try:
            d = _decode(records, self.src.layout, self.carry, start, self.last_time)
        except RecordError as exc:
            raise FileFormatError(f"{self.src.path}: {exc}") from None
        self.carry, self.last_time = d.carry, d.last_time
        return d

    def chunk(self, d: DecodedChunk, last: bool) -> PhotonStream:
        """PhotonStream for one decoded chunk (`last`: no more records follow)."""
        src = self.src
        ch = d.photon_channel.astype(np.int8)  # channels -1..63: PhotonStream keeps int8
        if self.t3:
            sync = d.photon_time
            micro = np.rint(d.photon_dtime * src.micro_ps).astype(np.int64)
            t = ticks_to_ps(sync, self.period) + micro
        else:
            sync = micro = None
            t = ticks_to_ps(d.photon_time, src.tick_ps)
            if self.include_sync and d.sync_time.size:
                st = ticks_to_ps(d.sync_time, src.tick_ps)
                t = np.concatenate([t, st])
                ch = np.concatenate([ch, np.full(st.size, SYNC_CHANNEL, np.int8)])
        if self.want is not None:
            keep = np.zeros(ch.size, bool)
            for c in self.want.tolist():
                sel = ch == c
                self.seen[c] = self.seen.get(c, 0) + int(np.count_nonzero(sel))
                keep |= sel
            t, ch = t[keep], ch[keep]
            if self.t3:
                sync, micro = sync[keep], micro[keep]
        # no later photon can be earlier than `cutoff` (records are in time / sync order)
        unit = self.period if self.t3 else src.tick_ps
        rec_end = int(ticks_to_ps(np.array([d.end]), unit)[0])
        cutoff = int(ticks_to_ps(np.array([max(d.carry, d.last_time)]), unit)[0])
        if self.t3:
            ht, hc, hm, hs = self.held
            if ht.size:
                t, ch = np.concatenate([ht, t]), np.concatenate([hc, ch])
                micro, sync = np.concatenate([hm, micro]), np.concatenate([hs, sync])
        if t.size > 1 and np.any(t[1:] < t[:-1]):
            order = np.argsort(t, kind="stable")
            t, ch = t[order], ch[order]
            if self.t3:
                micro, sync = micro[order], sync[order]
        self.end_ps = max(self.end_ps, rec_end, int(t[-1]) if t.size else 0)
        if last:
            cutoff = self.end_ps
        elif self.t3:
            n_emit = int(np.searchsorted(t, cutoff, side="right"))
            self.held = (t[n_emit:], ch[n_emit:], micro[n_emit:], sync[n_emit:])
            t, ch, micro, sync = t[:n_emit], ch[:n_emit], micro[:n_emit], sync[:n_emit]
        cutoff = max(cutoff, self.boundary_ps, int(t[-1]) if t.size else 0)
        start_ps, self.boundary_ps = self.boundary_ps, cutoff
        mt = ticks_to_ps(d.marker_time, unit)
        return PhotonStream(
            time_ps=t,
            channel=ch,
            micro_ps=micro,
            sync_index=sync,
            sync_period_ps=self.period if self.t3 else None,
            marker_time_ps=mt,
            marker_bits=d.marker_bits,
            duration_s=(cutoff - start_ps) * 1e-12,
            header=src.header,
            path=src.path,
            start_ps=start_ps,
            record_type=src.layout.name,
            resolution_ps=src.micro_ps if self.t3 else src.tick_ps,
        )

    def finish(self) -> None:
        """Raise if a requested channel never had a photon."""
        if self.want is None:
            return
        missing = [int(c) for c in self.want if not self.seen.get(int(c))]
        if missing:
            counts = count_records(self.src.path)["photons"]
            present = ", ".join(f"{c} ({n} photons)" for c, n in counts.items())
            raise ValueError(
                f"{self.src.path}: no photons on channel(s) {missing}; present: {present or 'none'}"
            )


def _chunks(src: RecordSource, chunk_records: int) -> Iterator[tuple[int, np.ndarray]]:
    """`(index of first record, records)` in chunks, read from the file: O(chunk) memory."""
    with open(src.path, "rb") as fh:
        fh.seek(src.offset)
        for start in range(0, src.n_records, chunk_records):
            n = min(chunk_records, src.n_records - start)
            part = np.fromfile(fh, dtype="<u4", count=n)
            if part.size != n:  # the file shrank since its header was checked
                raise FileFormatError(
                    f"{src.path}: truncated while reading record {start + part.size}"
                )
            yield start, part


def iter_photons(
    path: str | os.PathLike[str],
    chunk_records: int = 1_000_000,
    *,
    channels: Sequence[int] | None = None,
    include_sync: bool = False,
    sync_period_ps: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[PhotonStream]:
    """Read a photon file in chunks of `chunk_records` records: O(chunk) memory, any file size.

    **Arguments:**

    - `path`: PTU (any PicoHarp, HydraHarp v1/v2, TimeHarp 260, MultiHarp record type, T2 or
      T3), or legacy .pt2/.pt3/.ht2/.ht3; recognised by content.
    - `chunk_records`: records decoded per chunk (each record is 4 bytes).
    - `channels`: keep only these photon channels (ptufile numbering, from 0); a channel that
      never occurs raises `ValueError` after the last chunk.
    - `include_sync`: T2 files of the HydraHarp family (HydraHarp, MultiHarp, TimeHarp 260)
      record every sync pulse; by default they are dropped, with `include_sync=True` (or
      `SYNC_CHANNEL` in `channels`) they are returned on channel `SYNC_CHANNEL` = -1.
      (PicoHarp T2 records its sync input as an ordinary channel 0; T3 has no sync records.)
    - `sync_period_ps`: T3: override the header's sync period (ps).
    - `progress`: called as `progress(records_done, records_total)` after each chunk.

    **Returns:** an iterator of `PhotonStream` chunks whose absolute times (ps, int64) continue
    across chunks and are sorted over the whole file. Chunk `k` covers
    `[start_ps, start_ps + duration_s)`; the durations add up to the file's duration (from the
    records: the time of the last record or overflow, never the header's acquisition time).
    Empty chunks (e.g. all overflows) are yielded too, so durations stay complete. T3 photons
    of the last sync periods of a chunk may be held back to the next chunk to keep times sorted.

    **Raises:** `FileNotFoundError`; `ValueError` naming the file for unknown or corrupt
    files, unsupported record types, truncated files (fewer records than the header says),
    undefined records or time going backwards (with the record index), missing channels.
    """
    if chunk_records < 1:
        raise ValueError(f"chunk_records must be >= 1, got {chunk_records}")
    src = open_records(path)
    asm = _Assembler(
        src, sync_period_ps=sync_period_ps, include_sync=include_sync, channels=channels
    )
    n = src.n_records
    if n == 0:
        yield asm.chunk(asm.decode(np.zeros(0, np.uint32), 0), last=True)
    for start, part in _chunks(src, chunk_records):
        d = asm.decode(part, start)
        yield asm.chunk(d, last=start + part.size == n)
        if progress is not None:
            progress(start + part.size, n)
    asm.finish()


def read_photons(
    path: str | os.PathLike[str],
    *,
    channels: Sequence[int] | None = None,
    include_sync: bool = False,
    sync_period_ps: float | None = None,
    chunk_records: int = DEFAULT_CHUNK_RECORDS,
    progress: Callable[[int, int], None] | None = None,
) -> PhotonStream:
    """Read a whole photon file into one `PhotonStream` (see `iter_photons` for the arguments).

    `time_ps` holds absolute arrival times (ps, int64, sorted, 0 = start of acquisition);
    `channel` the detector (ptufile numbering from 0; -1 for T2 sync events if requested); in
    T3 also `micro_ps` (arrival after the sync pulse, ps), `sync_index` and `sync_period_ps`, with
    `time_ps = round(sync_index * sync_period_ps) + micro_ps`; `marker_time_ps`/`marker_bits`
    for external markers; `duration_s` from the records (the last record or overflow), not the
    header, whose acquisition time may be wrong (a measurement stopped by hand); `header` the
    file's header fields; `record_type`, `resolution_ps`. Decoding runs in chunks of
    `chunk_records`, so temporaries stay bounded; the result itself needs ~32 B per photon.

    The compiled decoder (`fast.decode_into`) writes every chunk straight into the arrays of the
    result, so reading costs about one pass over the records; with `QDSIM_PHOTON_DECODER=numpy`
    the file goes through `iter_photons` and the NumPy reference decoder instead (same result).
    """
    if _decoder() == "numba":
        return _read_whole(
            path,
            channels=channels,
            include_sync=include_sync,
            sync_period_ps=sync_period_ps,
            chunk_records=chunk_records,
            progress=progress,
        )
    chunks = list(
        iter_photons(
            path,
            chunk_records,
            channels=channels,
            include_sync=include_sync,
            sync_period_ps=sync_period_ps,
            progress=progress,
        )
    )
    return PhotonStream.concatenate(chunks)


#: Records read from the file per call of the compiled decoder in `read_photons` (256 KiB: the
#: buffer stays in cache and its memory is reused; 1 MiB and whole chunks measured slower).
_READ_RECORDS = 1 << 16


def _split_unit(unit_ps: float) -> tuple[int, float, bool]:
    """`(whole, frac, exact)`: how `ticks_to_ps` splits a unit, for the compiled kernels."""
    whole = round(unit_ps)
    if abs(unit_ps - whole) <= 1e-9 * max(1.0, unit_ps):
        return int(whole), 0.0, True
    whole = math.floor(unit_ps)
    return int(whole), float(unit_ps - whole), False


def _read_whole(
    path: str | os.PathLike[str],
    *,
    channels: Sequence[int] | None,
    include_sync: bool,
    sync_period_ps: float | None,
    chunk_records: int,
    progress: Callable[[int, int], None] | None,
) -> PhotonStream:
    """`read_photons` through the compiled kernel: the result's arrays are allocated once (as
    long as the file has records; the tail never written stays unmapped memory) and each chunk
    of records, read into one reused buffer, is decoded into them. The same result as joining
    the chunks of `iter_photons`: times, order, markers, and the duration, which follows the
    chunk edges exactly as `_Assembler.chunk` does."""
    if chunk_records < 1:
        raise ValueError(f"chunk_records must be >= 1, got {chunk_records}")
    src = _open_records(path, header="all")
    asm = _Assembler(
        src, sync_period_ps=sync_period_ps, include_sync=include_sync, channels=channels
    )
    t3, n = src.t3, src.n_records
    unit_ps = asm.period if t3 else src.tick_ps
    unit = _split_unit(unit_ps)
    keep = np.zeros(64, np.bool_)
    if asm.want is None:
        keep[:] = True
    else:
        keep[[c for c in asm.want.tolist() if 0 <= c < 64]] = True
    n_out = max(n, 1)
    o_t = np.empty(n_out, np.int64)
    o_c = np.empty(n_out, np.int8)  # channels -1..63
    out = (o_t, o_c, np.empty(n_out, np.int64), np.empty(n_out, np.int64)) if t3 else (o_t, o_c)
    st = np.zeros(fast.STATE_SIZE, np.int64)
    counts = np.zeros(64, np.int64)
    # records are read in slices of at most _READ_RECORDS into one small buffer (reused memory:
    # no page faults, cache-resident); chunk edges still decide the duration as in iter_photons
    buf = np.empty(min(chunk_records, _READ_RECORDS, n_out), np.uint32)
    # markers of a slice, moved out after it (rare: a whole-file pair of arrays would only
    # churn memory)
    markers = (np.empty(buf.size, np.int64), np.empty(buf.size, np.int64))
    mark_t: list[np.ndarray] = []
    mark_b: list[np.ndarray] = []
    end_ps = boundary_ps = 0
    with open(src.path, "rb") as fh:
        fh.seek(src.offset)
        for start in range(0, n, chunk_records):
            stop = min(start + chunk_records, n)
            for first in range(start, stop, buf.size):
                part = buf[: min(buf.size, stop - first)]
                got = fh.readinto(part) or 0
                if got != 4 * part.size:  # the file shrank since its header was checked
                    raise FileFormatError(
                        f"{src.path}: truncated while reading record {first + got // 4}"
                    )
                st[fast.ERR] = -1
                try:
                    fast.decode_into(
                        part, src.layout, first, st, counts, keep, asm.include_sync and not t3,
                        unit, src.micro_ps or 0.0, out, markers,
                    )  # fmt: skip
                except RecordError as exc:
                    raise FileFormatError(f"{src.path}: {exc}") from None
                if st[fast.N_MARK]:
                    n_mark = int(st[fast.N_MARK])
                    mark_t.append(markers[0][:n_mark].copy())
                    mark_b.append(markers[1][:n_mark].copy())
                    st[fast.N_MARK] = 0
            # as _Assembler.chunk: the latest record end, and each chunk's cutoff
            end_ps = max(end_ps, int(ticks_to_ps(np.array([st[fast.END]]), unit_ps)[0]))
            if stop < n:
                cut = max(int(st[fast.CARRY]), int(st[fast.LAST]))
                boundary_ps = max(boundary_ps, int(ticks_to_ps(np.array([cut]), unit_ps)[0]))
            if progress is not None:
                progress(stop, n)
    k = int(st[fast.N_OUT])
    if asm.want is not None:
        asm.seen = {int(c): int(counts[c]) for c in range(64) if counts[c]}
        asm.seen[SYNC_CHANNEL] = int(st[fast.N_SYNC]) if asm.include_sync else 0
        asm.finish()
    t = o_t[:k]
    final_ps = max(end_ps, boundary_ps, int(t[-1]) if k else 0)
    return PhotonStream._from_reader(
        time_ps=t,
        channel=o_c[:k],
        micro_ps=out[2][:k] if t3 else None,
        sync_index=out[3][:k] if t3 else None,
        sync_period_ps=asm.period if t3 else None,
        marker_time_ps=ticks_to_ps(_join(mark_t), unit_ps),
        marker_bits=_join(mark_b),
        duration_s=final_ps * 1e-12,
        header=src.header,
        path=src.path,
        start_ps=0,
        record_type=src.layout.name,
        resolution_ps=src.micro_ps if t3 else src.tick_ps,
    )


def _join(parts: list[np.ndarray]) -> np.ndarray:
    """The int64 arrays `parts` end to end (a new array; empty for no parts)."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


class WindowStats:
    """What `_windows` learnt about the file, filled in as it runs: `n_tags` (photons of every
    channel), `photons` ({channel: photons}), `t_first_ps` / `t_last_ps` (None without photons)
    and `duration_s`, the sum of the chunk durations `iter_photons` would give with the same
    `chunk_records` (bit for bit)."""

    def __init__(self) -> None:
        self.n_tags = 0
        self.photons: dict[int, int] = {}
        self.t_first_ps: int | None = None
        self.t_last_ps: int | None = None
        self.duration_s = 0.0


def _windows(
    path: str | os.PathLike[str],
    window_ps: int,
    stats: WindowStats,
    *,
    chunk_records: int = 1_000_000,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, int, int]]:
    """The photons of a file (every channel, no sync records: as `iter_photons(path)`) in time
    order, block by block, through small reused buffers: the file is never held in memory.

    Yields `(time_ps, channel, j0, j1)`: `[j0, j1)` are the next photons in final order, and
    `[0, j0)` holds at least every earlier photon within `window_ps` of `time_ps[j0]` (so a
    correlation that looks back at most `window_ps` from each new photon sees all its pairs).
    The arrays are views of buffers that the next step overwrites: use them before resuming.
    Records are decoded by the compiled kernel in slices of `_READ_RECORDS`; T3 photons that a
    later record could still precede (the current sync period) are held back to the next
    block. `progress(photons)` is called after each chunk of `chunk_records` records. Errors as
    `iter_photons`; `stats` is complete once the generator is exhausted.
    """
    if chunk_records < 1:
        raise ValueError(f"chunk_records must be >= 1, got {chunk_records}")
    src = _open_records(path, header="source")  # the header itself is never shown
    asm = _Assembler(src, sync_period_ps=None, include_sync=False, channels=None)
    t3, n = src.t3, src.n_records
    unit_ps = asm.period if t3 else src.tick_ps
    unit = _split_unit(unit_ps)
    whole, frac, exact = unit

    def to_ps(ticks: int) -> int:  # ticks_to_ps of one value, without building arrays
        if exact:
            return ticks * whole
        return ticks * whole + int(np.rint(np.float64(ticks) * frac))

    keep = np.ones(64, np.bool_)
    step = max(1, min(chunk_records, _READ_RECORDS, n))
    buf = np.empty(step, np.uint32)
    cap = 2 * step
    arrays = [np.empty(cap, np.int64), np.empty(cap, np.int8)]  # T3: no micro times, syncs
    markers = (np.empty(step, np.int64), np.empty(step, np.int64))
    st = np.zeros(fast.STATE_SIZE, np.int64)
    counts = np.zeros(64, np.int64)
    n_done = 0  # photons of the buffer [0, n_done) already yielded as new
    end_ps = boundary_ps = 0
    durations: list[float] = []
    with open(src.path, "rb") as fh:
        fh.seek(src.offset)
        for start in range(0, n, chunk_records):
            stop = min(start + chunk_records, n)
            tags0 = int(counts.sum())
            for first in range(start, stop, step):
                part = buf[: min(step, stop - first)]
                got = fh.readinto(part) or 0
                if got != 4 * part.size:  # the file shrank since its header was checked
                    raise FileFormatError(
                        f"{src.path}: truncated while reading record {first + got // 4}"
                    )
                k0 = int(st[fast.N_OUT])
                if k0 + part.size > cap:  # a window holding many photons: grow the buffers
                    cap = 2 * (k0 + part.size)
                    arrays = [np.concatenate([a[:k0], np.empty(cap - k0, a.dtype)]) for a in arrays]
                st[fast.ERR] = -1
                st[fast.N_MARK] = 0
                try:
                    fast.decode_into(
                        part, src.layout, first, st, counts, keep, False, unit,
                        src.micro_ps or 0.0, tuple(arrays), markers,
                    )  # fmt: skip
                except RecordError as exc:
                    raise FileFormatError(f"{src.path}: {exc}") from None
                k = int(st[fast.N_OUT])
                t = arrays[0]
                final = first + part.size == n
                # no later record gives a photon before `cut` (records in time / sync order)
                cut = to_ps(max(int(st[fast.CARRY]), int(st[fast.LAST])))
                j1 = k if final else int(np.searchsorted(t[:k], cut, side="left"))
                if j1 > n_done:
                    if stats.t_first_ps is None:
                        stats.t_first_ps = int(t[n_done])
                    stats.t_last_ps = int(t[j1 - 1])
                    yield t, arrays[1], n_done, j1
                if not final:  # keep what a later photon can still pair with, and the held
                    lo = int(np.searchsorted(t[:j1], cut - window_ps, side="left"))
                    if lo:
                        for a in arrays:
                            a[: k - lo] = a[lo:k]
                    st[fast.N_OUT] = k - lo
                    n_done = j1 - lo
            # the chunk durations of iter_photons (_Assembler.chunk), edge for edge
            end_ps = max(end_ps, to_ps(int(st[fast.END])))
            if stop < n:
                cutoff = max(to_ps(max(int(st[fast.CARRY]), int(st[fast.LAST]))), boundary_ps)
            else:
                cutoff = max(end_ps, boundary_ps, stats.t_last_ps or 0)
            durations.append((cutoff - boundary_ps) * 1e-12)
            boundary_ps = cutoff
            if progress is not None:
                progress(int(counts.sum()) - tags0)
    stats.n_tags = int(counts.sum())
    stats.photons = {c: int(counts[c]) for c in np.flatnonzero(counts).tolist()}
    stats.duration_s = float(sum(durations)) if durations else 0.0


def count_records(
    path: str | os.PathLike[str], chunk_records: int = DEFAULT_CHUNK_RECORDS
) -> dict[str, object]:
    """Census of a photon file's records, decoded chunk-wise without building streams.

    **Returns:** `{"records": n, "photons": {channel: count}, "sync": n, "marker": n,
    "overflow": n, "record_type": name, "format": "PTU"|"PT2"|..., "duration_s": s}`, the
    duration from the records: the time of the last record (T3: its sync period's start; None
    when a legacy T3 header gives no sync rate).
    """
    src = open_records(path)
    photons: dict[int, int] = {}
    sync = marker = overflow = 0
    carry = end = last_time = 0
    for start, part in _chunks(src, chunk_records):
        try:
            d = _decode(part, src.layout, carry, start, last_time)
        except RecordError as exc:
            raise FileFormatError(f"{src.path}: {exc}") from None
        carry, end, last_time = d.carry, d.end, d.last_time
        counts = np.bincount(d.photon_channel + 1)  # channels from -1 up
        for c in np.flatnonzero(counts).tolist():
            photons[c - 1] = photons.get(c - 1, 0) + int(counts[c])
        sync += d.sync_time.size
        marker += d.marker_time.size
        overflow += d.n_overflow
    unit = src.tick_ps
    duration = float(ticks_to_ps(np.array([end]), unit)[0]) * 1e-12 if math.isfinite(unit) else None
    return {
        "records": src.n_records,
        "photons": dict(sorted(photons.items())),
        "sync": sync,
        "marker": marker,
        "overflow": overflow,
        "record_type": src.layout.name,
        "format": src.format,
        "duration_s": duration,
        "path": str(Path(path)),
    }
