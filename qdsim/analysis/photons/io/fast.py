"""Compiled (numba) TTTR record decoders: the fast path of `read_photons`, `iter_photons` and
`count_records`.

Two kernels share one record classifier (`_classify`, the layouts of `records.py`):

- `decode_fast(records, layout, carry, start, last_time)`: a drop-in for `records.decode_numpy`
  (same `DecodedChunk`, times in ticks / sync indices), one pass over the records instead of
  NumPy's dozen. `iter_photons` and `count_records` use it.
- `decode_into(...)`: decodes straight into the arrays of a whole-file `PhotonStream`: absolute
  times in ps (the arithmetic of `reader.ticks_to_ps`, operation for operation), channels,
  T3 micro times and sync indices, kept channels only, T3 photons put in time order by an
  insertion step as they are written (records come in sync order, so it moves a photon at most
  past the others of its own sync period). `read_photons` calls it chunk by chunk with the
  state (overflow carry, order check) passed on, so the result does not depend on the chunking.
  `g2(path)` calls it too, on small reused buffers (times and channels only; see
  `reader._windows`), and counts each block of photons as it is decoded.

Neither raises: an undefined record or time going backwards stops the kernel, which reports the
record, and the caller re-decodes that chunk with `decode_numpy` to raise its `RecordError`
(one implementation of the messages). `decode_numpy` stays the reference the tests compare
these kernels with.
"""

from __future__ import annotations

import numpy as np

from qdsim.analysis.photons.io.records import (
    SYNC_CHANNEL,
    DecodedChunk,
    Layout,
    RecordError,
    decode_numpy,
)

__all__ = ["FAMILY_CODE", "HAVE_NUMBA", "decode_fast", "decode_into"]

try:  # numba is a dependency; without it the NumPy decoder is used
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    HAVE_NUMBA = False

#: Layout family -> the integer the kernels take.
FAMILY_CODE = {"picoharp": 0, "hh1": 1, "hh2": 2}

# record kinds returned by _classify
_PHOTON, _OVERFLOW, _SYNC, _MARKER, _BAD = 0, 1, 2, 3, 4

# state slots shared by the kernels (int64 array)
CARRY, LAST, N_OUT, N_MARK, N_OVF, N_SYNC, ERR, END = range(8)
STATE_SIZE = 8


def _raise_from_numpy(records, layout, carry, start, last_time, index):
    """The kernel stopped at record `index` (in the file): let the reference decoder raise."""
    decode_numpy(records, layout, carry, start, last_time)
    raise RecordError(f"record {index}: undefined record or time going backwards", index)


if HAVE_NUMBA:

    @numba.njit(inline="always")
    def _classify(r, fam, t3, tmask):  # pragma: no cover - compiled
        """`(kind, channel or marker bits, time field, dtime, overflow periods)` of record `r`."""
        if fam == 0:  # PicoHarp: channel 4 bits | ...; 15 = special
            ch = np.int64(r >> 28)
            if t3:
                dt = np.int64((r >> 16) & 0xFFF)
                tf = np.int64(r & 0xFFFF)
                if ch == 15:
                    if dt == 0:
                        return _OVERFLOW, 0, tf, 0, 1
                    return _MARKER, dt, tf, 0, 0
                if ch == 0 or ch > 4:
                    return _BAD, ch, tf, dt, 0
                return _PHOTON, ch - 1, tf, dt, 0
            tf = np.int64(r & 0x0FFF_FFFF)
            if ch == 15:
                low = np.int64(r & 0xF)
                if low == 0:
                    return _OVERFLOW, 0, tf, 0, 1
                return _MARKER, low, tf, 0, 0
            if ch > 4:
                return _BAD, ch, tf, 0, 0
            return _PHOTON, ch, tf, 0, 0
        # HydraHarp family: special 1 | channel 6 | ...
        top = np.int64(r >> 25)
        tf = np.int64(r & tmask)
        dt = np.int64((r >> 10) & 0x7FFF) if t3 else np.int64(0)
        if top < 64:
            return _PHOTON, top, tf, dt, 0
        if top == 127:
            n = 1
            if fam == 2 and tf > 1:
                n = tf
            return _OVERFLOW, 0, tf, 0, n
        if top == 64:
            if t3:
                return _BAD, 0, tf, 0, 0
            return _SYNC, 0, tf, 0, 0
        if top <= 79:
            return _MARKER, top - 64, tf, 0, 0
        return _BAD, top - 64, tf, 0, 0

    @numba.njit(cache=True, nogil=True)
    def _decode_ticks(
        rec, fam, t3, tmask, wrap, st, p_t, p_c, p_d, s_t, m_t, m_b
    ):  # pragma: no cover - compiled
        """One chunk to ticks / syncs (the `decode_numpy` outputs); counts in `st`."""
        carry = st[CARRY]
        last = st[LAST]
        n_p = 0
        n_s = 0
        n_m = 0
        n_o = 0
        for i in range(rec.size):
            kind, ch, tf, dt, nper = _classify(rec[i], fam, t3, tmask)
            if kind == _PHOTON:
                t = carry + tf
                if t < last:
                    st[ERR] = i
                    return
                last = t
                p_t[n_p] = t
                p_c[n_p] = ch
                if t3:
                    p_d[n_p] = dt
                n_p += 1
            elif kind == _OVERFLOW:
                carry += nper * wrap
                n_o += 1
            elif kind == _SYNC:
                t = carry + tf
                if t < last:
                    st[ERR] = i
                    return
                last = t
                s_t[n_s] = t
                n_s += 1
            elif kind == _MARKER:
                m_t[n_m] = carry + tf
                m_b[n_m] = ch
                n_m += 1
            else:
                st[ERR] = i
                return
        if rec.size:
            kind, ch, tf, dt, nper = _classify(rec[rec.size - 1], fam, t3, tmask)
            st[END] = carry if kind == _OVERFLOW else carry + tf
        else:
            st[END] = max(carry, last)
        st[CARRY] = carry
        st[LAST] = last
        st[N_OUT] = n_p
        st[N_SYNC] = n_s
        st[N_MARK] = n_m
        st[N_OVF] = n_o

    @numba.njit(inline="always")
    def _to_ps(t, whole, frac, exact):  # pragma: no cover - compiled
        """`reader.ticks_to_ps` for one value, operation for operation."""
        if exact:
            return t * whole
        return t * whole + np.int64(np.rint(np.float64(t) * frac))

    @numba.njit(inline="always")
    def _t2_body(
        rec, fam, tmask, wrap, keep, keep_sync, whole, frac, exact, st, counts, o_t, o_c, m_t, m_b
    ):  # pragma: no cover - compiled
        """T2 chunk appended to a whole-file stream: times in ps, kept channels only. Inlined
        into one kernel per family (`_T2_PS`), `fam` a constant there: no per-record branch on
        the layout."""
        carry = st[CARRY]
        last = st[LAST]
        n = st[N_OUT]
        n_m = st[N_MARK]
        n_o = st[N_OVF]
        n_s = st[N_SYNC]
        for i in range(rec.size):
            kind, ch, tf, dt, nper = _classify(rec[i], fam, False, tmask)
            if kind == _PHOTON:
                t = carry + tf
                if t < last:
                    st[ERR] = i
                    break
                last = t
                counts[ch] += 1
                if keep[ch]:
                    tp = _to_ps(t, whole, frac, exact)
                    k = n
                    # a sync at the same time was written first: photons go before syncs
                    while k > 0 and o_t[k - 1] == tp and o_c[k - 1] == SYNC_CHANNEL:
                        o_t[k] = o_t[k - 1]
                        o_c[k] = o_c[k - 1]
                        k -= 1
                    o_t[k] = tp
                    o_c[k] = ch
                    n += 1
            elif kind == _OVERFLOW:
                carry += nper * wrap
                n_o += 1
            elif kind == _SYNC:
                t = carry + tf
                if t < last:
                    st[ERR] = i
                    break
                last = t
                n_s += 1
                if keep_sync:
                    o_t[n] = _to_ps(t, whole, frac, exact)
                    o_c[n] = SYNC_CHANNEL
                    n += 1
            elif kind == _MARKER:
                m_t[n_m] = carry + tf
                m_b[n_m] = ch
                n_m += 1
            else:
                st[ERR] = i
                break
        if st[ERR] < 0 and rec.size:
            kind, ch, tf, dt, nper = _classify(rec[rec.size - 1], fam, False, tmask)
            st[END] = carry if kind == _OVERFLOW else carry + tf
        st[CARRY] = carry
        st[LAST] = last
        st[N_OUT] = n
        st[N_MARK] = n_m
        st[N_OVF] = n_o
        st[N_SYNC] = n_s

    @numba.njit(inline="always")
    def _t3_body(
        rec,
        fam,
        full,
        tmask,
        wrap,
        keep,
        whole,
        frac,
        exact,
        micro,
        st,
        counts,
        o_t,
        o_c,
        o_m,
        o_s,
        m_t,
        m_b,
    ):  # pragma: no cover - compiled
        """T3 chunk appended to a whole-file stream: time = sync time + micro time (ps), in
        time order (stable: equal times keep record order), kept channels only; micro times
        and sync indices too when `full`. Inlined into one kernel per family and `full`
        (`_T3_PS`), both constants there."""
        carry = st[CARRY]
        last = st[LAST]
        n = st[N_OUT]
        n_m = st[N_MARK]
        n_o = st[N_OVF]
        for i in range(rec.size):
            kind, ch, tf, dt, nper = _classify(rec[i], fam, True, tmask)
            if kind == _PHOTON:
                s = carry + tf
                if s < last:
                    st[ERR] = i
                    break
                last = s
                counts[ch] += 1
                if keep[ch]:
                    mp = np.int64(np.rint(np.float64(dt) * micro))
                    tp = _to_ps(s, whole, frac, exact) + mp
                    k = n
                    while k > 0 and o_t[k - 1] > tp:
                        o_t[k] = o_t[k - 1]
                        o_c[k] = o_c[k - 1]
                        if full:
                            o_m[k] = o_m[k - 1]
                            o_s[k] = o_s[k - 1]
                        k -= 1
                    o_t[k] = tp
                    o_c[k] = ch
                    if full:
                        o_m[k] = mp
                        o_s[k] = s
                    n += 1
            elif kind == _OVERFLOW:
                carry += nper * wrap
                n_o += 1
            elif kind == _MARKER:
                m_t[n_m] = carry + tf
                m_b[n_m] = ch
                n_m += 1
            else:
                st[ERR] = i
                break
        if st[ERR] < 0 and rec.size:
            kind, ch, tf, dt, nper = _classify(rec[rec.size - 1], fam, True, tmask)
            st[END] = carry if kind == _OVERFLOW else carry + tf
        st[CARRY] = carry
        st[LAST] = last
        st[N_OUT] = n
        st[N_MARK] = n_m
        st[N_OVF] = n_o

    # One compiled kernel per layout family (and T3 output set), the body inlined with `fam`
    # (and `full`) as constants: the per-record branches on them fold away (~20 % of a T3
    # decode). Written out, not generated, so that numba can cache each one on disk.

    @numba.njit(cache=True, nogil=True)
    def _t2_ps_ph(rec, tmask, wrap, keep, ks, whole, frac, exact, st, counts, o_t, o_c, m_t, m_b):
        _t2_body(rec, 0, tmask, wrap, keep, ks, whole, frac, exact, st, counts, o_t, o_c, m_t, m_b)

    @numba.njit(cache=True, nogil=True)
    def _t2_ps_hh1(rec, tmask, wrap, keep, ks, whole, frac, exact, st, counts, o_t, o_c, m_t, m_b):
        _t2_body(rec, 1, tmask, wrap, keep, ks, whole, frac, exact, st, counts, o_t, o_c, m_t, m_b)

    @numba.njit(cache=True, nogil=True)
    def _t2_ps_hh2(rec, tmask, wrap, keep, ks, whole, frac, exact, st, counts, o_t, o_c, m_t, m_b):
        _t2_body(rec, 2, tmask, wrap, keep, ks, whole, frac, exact, st, counts, o_t, o_c, m_t, m_b)

    @numba.njit(cache=True, nogil=True)
    def _t3_ps_ph(rec, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb):
        _t3_body(
            rec, 0, False, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb
        )

    @numba.njit(cache=True, nogil=True)
    def _t3_ps_hh1(rec, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb):
        _t3_body(
            rec, 1, False, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb
        )

    @numba.njit(cache=True, nogil=True)
    def _t3_ps_hh2(rec, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb):
        _t3_body(
            rec, 2, False, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb
        )

    @numba.njit(cache=True, nogil=True)
    def _t3_ps_ph_full(rec, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb):
        _t3_body(
            rec, 0, True, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb
        )

    @numba.njit(cache=True, nogil=True)
    def _t3_ps_hh1_full(
        rec, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb
    ):
        _t3_body(
            rec, 1, True, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb
        )

    @numba.njit(cache=True, nogil=True)
    def _t3_ps_hh2_full(
        rec, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb
    ):
        _t3_body(
            rec, 2, True, tm, wrap, keep, whole, frac, ex, mic, st, cnt, ot, oc, om, os_, mt, mb
        )

    _T2_PS = {0: _t2_ps_ph, 1: _t2_ps_hh1, 2: _t2_ps_hh2}
    _T3_PS = {
        (0, False): _t3_ps_ph,
        (1, False): _t3_ps_hh1,
        (2, False): _t3_ps_hh2,
        (0, True): _t3_ps_ph_full,
        (1, True): _t3_ps_hh1_full,
        (2, True): _t3_ps_hh2_full,
    }


def decode_fast(
    records: np.ndarray, layout: Layout, carry: int = 0, start: int = 0, last_time: int = 0
) -> DecodedChunk:
    """`records.decode_numpy`, compiled: the same arguments, result and errors."""
    rec = np.ascontiguousarray(records, dtype=np.uint32)
    if not HAVE_NUMBA:  # pragma: no cover
        return decode_numpy(rec, layout, carry, start, last_time)
    n = rec.size
    st = np.zeros(STATE_SIZE, np.int64)
    st[CARRY], st[LAST], st[ERR] = carry, last_time, -1
    t3 = layout.t3
    p_t = np.empty(n, np.int64)
    p_c = np.empty(n, np.int64)
    p_d = np.empty(n if t3 else 0, np.int64)
    s_t = np.empty(0 if t3 else n, np.int64)
    m_t = np.empty(n, np.int64)
    m_b = np.empty(n, np.int64)
    _decode_ticks(
        rec,
        FAMILY_CODE[layout.family],
        t3,
        layout.time_mask,
        layout.wrap,
        st,
        p_t,
        p_c,
        p_d,
        s_t,
        m_t,
        m_b,
    )
    if st[ERR] >= 0:
        _raise_from_numpy(rec, layout, carry, start, last_time, start + int(st[ERR]))
    n_p, n_s, n_m = int(st[N_OUT]), int(st[N_SYNC]), int(st[N_MARK])
    return DecodedChunk(
        photon_time=p_t[:n_p].copy() if n_p < n else p_t,
        photon_channel=p_c[:n_p].copy() if n_p < n else p_c,
        photon_dtime=(p_d[:n_p].copy() if n_p < n else p_d) if t3 else None,
        sync_time=s_t[:n_s].copy(),
        marker_time=m_t[:n_m].copy(),
        marker_bits=m_b[:n_m].copy(),
        n_overflow=int(st[N_OVF]),
        carry=int(st[CARRY]),
        end=int(st[END]),
        last_time=int(st[LAST]),
    )


_EMPTY = np.zeros(0, np.int64)


def decode_into(
    records: np.ndarray,
    layout: Layout,
    start: int,
    st: np.ndarray,
    counts: np.ndarray,
    keep: np.ndarray,
    keep_sync: bool,
    unit: tuple[int, float, bool],
    micro_ps: float,
    out: tuple[np.ndarray, ...],
    markers: tuple[np.ndarray, np.ndarray],
) -> None:
    """Append one chunk of records to whole-file arrays (see the module docstring).

    `st`: the state (int64, `STATE_SIZE`; ERR must be -1 on entry); `counts`: photons per
    channel (indexed by channel), updated; `keep`: bool per channel; `unit`: `(whole, frac,
    exact)` of the T2 tick or T3 sync period in ps (as `ticks_to_ps` splits it); `out`:
    `(time_ps, channel)` (T2, or T3 without micro times and sync indices) or `(time_ps,
    channel, micro_ps, sync_index)` (T3), each with room for the photons already there and
    every record of the chunk; `markers`: `(ticks, bits)` arrays as long as the chunk (from
    `st[N_MARK]` on). Raises the reference decoder's `RecordError` for an undefined record or
    time going backwards.
    """
    carry, last = int(st[CARRY]), int(st[LAST])
    fam = FAMILY_CODE[layout.family]
    whole, frac, exact = unit
    if layout.t3:
        full = len(out) == 4
        if not full:  # times and channels only: micro times and syncs not written
            out = (*out, _EMPTY, _EMPTY)
        _T3_PS[fam, full](
            records,
            layout.time_mask,
            layout.wrap,
            keep,
            whole,
            frac,
            exact,
            micro_ps,
            st,
            counts,
            *out,
            *markers,
        )
    else:
        _T2_PS[fam](
            records,
            layout.time_mask,
            layout.wrap,
            keep,
            keep_sync,
            whole,
            frac,
            exact,
            st,
            counts,
            *out,
            *markers,
        )
    if st[ERR] >= 0:
        _raise_from_numpy(records, layout, carry, start, last, start + int(st[ERR]))
