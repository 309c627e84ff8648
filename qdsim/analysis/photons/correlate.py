"""Second-order photon correlation g2(tau): exact, streaming cross-correlation of two channels.

Every pair of photons (one in `channels[0]` at `t0`, one in `channels[1]` at `t1`) whose delay
`tau = t1 - t0` lies in `[-W, +W]` is counted in one bin of width `b`; nothing is sampled or
approximated. The count is a sweep over the time-sorted merged stream: each photon looks back at
the photons at most `W` earlier (a two-pointer window), so the work is O(N + pairs) and the memory
O(N) for an in-memory stream, O(chunk + photons within `W`) for a stream read in chunks; a file
path given to the numba kernel is decoded and counted block by block in one pass.

**Bins.** With `n = ceil(window_ps / bin_ps)` the window used is `W = n * bin_ps` (widened up to
the next multiple of `bin_ps` when `window_ps` is not one, and recorded in the attrs), the edges
are `-W + k * bin_ps` (k = 0 .. 2n), symmetric about zero with zero delay on the edge between
bins `n - 1` and `n`. A delay `tau` goes to bin `floor((tau + W) / bin_ps)`: bins are half-open
`[left, right)`, except that `tau = +W` goes to the last bin. This is exactly `numpy.histogram`
of all pairwise delays on those edges. The coordinate `delay` holds the bin centres (ps).

**Same channel.** `channels=(c, c)` gives the autocorrelation over ordered pairs of distinct
photons (`i != j`), so the result is symmetric and photons at equal times count at zero delay.

Two interchangeable kernels count the pairs: a numba kernel (compiled, GIL released, run over
blocks of the stream on `numba.get_num_threads()` threads: `NUMBA_NUM_THREADS` /
`numba.set_num_threads`) and a pure NumPy one
(`searchsorted` + `bincount`), which is the oracle the numba kernel is tested against and the
fallback when numba cannot be imported. Both give identical integer counts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np
import xarray as xr

from qdsim.analysis.photons.stream import PhotonStream

__all__ = ["g2", "correlate_counts", "g2_bins", "normalize_g2"]

try:  # numba is a regular dependency; the NumPy kernel is the fallback
    import numba

    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    _HAVE_NUMBA = False

Normalize = Literal["cw", "pulsed", False]


# --------------------------------------------------------------------------------------------
# bins
# --------------------------------------------------------------------------------------------


def _as_int_ps(value: Any, name: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of picoseconds, got {value!r}") from None
    if not math.isfinite(f) or f != round(f) or f <= 0:
        raise ValueError(f"{name} must be a positive whole number of picoseconds, got {value!r}")
    return int(round(f))


def g2_bins(bin_ps: float, window_ps: float) -> tuple[int, int, int]:
    """Resolve the binning of `g2`.

    **Arguments:** `bin_ps` (ps) and `window_ps` (ps), positive whole numbers of picoseconds.

    **Returns:** `(bin_ps, W, n_bins)` as ints: the window actually used `W = n * bin_ps` with
    `n = ceil(window_ps / bin_ps)` (so `W >= window_ps`), and `n_bins = 2 n`.

    Raises `ValueError` for non-positive, non-finite or fractional picosecond values.
    """
    b = _as_int_ps(bin_ps, "bin_ps")
    w = _as_int_ps(window_ps, "window_ps")
    n = -(-w // b)
    return b, n * b, 2 * n


def _edges(b: int, W: int) -> np.ndarray:
    return np.arange(-W, W + b, b, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# kernels: count the pairs (i, j), i < j in the merged order, j >= start
# --------------------------------------------------------------------------------------------


def _count_numpy(
    t: np.ndarray, c: np.ndarray, start: int, ch_a: int, ch_b: int, b: int, W: int, nb: int
) -> tuple[np.ndarray, int, int]:
    """NumPy oracle/fallback: pairs (i, j), i < j (merged order), j >= start, t_j - t_i <= W.

    A pair with `c_i = a, c_j = b` adds delay `+(t_j - t_i)`, with `c_i = b, c_j = a` adds
    `-(t_j - t_i)` (both when `a == b`). Returns `(hist, n_a, n_b)` with the photon counts of
    the two channels among `j >= start`. Memory is bounded by working in blocks of `j`.
    """
    hist = np.zeros(nb, np.int64)
    pos = np.arange(t.size, dtype=np.int64)

    def add(later: np.ndarray, earlier: np.ndarray, sign: int) -> None:
        # later: positions j (>= start) of one channel; earlier: positions i of the other.
        if later.size == 0 or earlier.size == 0:
            return
        te = t[earlier]
        block = 1 << 16
        for s in range(0, later.size, block):
            pj = later[s : s + block]
            tj = t[pj]
            lo = np.searchsorted(te, tj - W, side="left")
            hi = np.searchsorted(earlier, pj, side="left")  # only i < j in merged order
            m = np.maximum(hi - lo, 0)
            tot = int(m.sum())
            if tot == 0:
                continue
            rep = np.repeat(np.arange(pj.size), m)
            offs = np.arange(tot) - np.repeat(np.cumsum(m) - m, m)
            d = tj[rep] - te[lo[rep] + offs]  # >= 0
            k = (W + sign * d) // b
            np.minimum(k, nb - 1, out=k)
            hist[:] += np.bincount(k, minlength=nb)

    pa = pos[c == ch_a]
    pb = pa if ch_a == ch_b else pos[c == ch_b]
    new_a = pa[pa >= start]
    new_b = pb[pb >= start]
    add(new_b, pa, +1)
    add(new_a, pb, -1)
    return hist, int(new_a.size), int(new_b.size)


if _HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def _count_block(t, c, j0, j1, ch_a, ch_b, b, W, nb, hist, n_ab):  # pragma: no cover
        na = 0
        nbb = 0
        for j in range(j0, j1):  # photons per channel: a branch-free pass, vectorised
            cj = c[j]
            na += cj == ch_a
            nbb += cj == ch_b
        n_ab[0] += na
        n_ab[1] += nbb
        _count_pairs(t, c, j0, j1, ch_a, ch_b, b, W, nb, hist)

    @numba.njit(cache=True, nogil=True)
    def _count_pairs(t, c, j0, j1, ch_a, ch_b, b, W, nb, hist):  # pragma: no cover
        """The pairs (i, j), i < j, j0 <= j < j1, t_j - t_i <= W, into `hist`."""
        for j in range(max(j0, 1), j1):
            tj = t[j]
            if tj - t[j - 1] > W:  # the common case: no earlier photon within the window
                continue
            cj = c[j]
            ja = cj == ch_a
            jb = cj == ch_b
            if not (ja or jb):
                continue
            i = j - 1
            while i >= 0:
                d = tj - t[i]
                if d > W:
                    break
                ci = c[i]
                if jb and ci == ch_a:
                    k = (W + d) // b
                    if k >= nb:
                        k = nb - 1
                    hist[k] += 1
                if ja and ci == ch_b:
                    hist[(W - d) // b] += 1
                i -= 1


_POOL: dict[tuple[int, int], Any] = {}


def _pool(threads: int) -> Any:
    """A thread pool of `threads` workers, created once per process (the numba kernel releases
    the GIL); keyed by process id so a forked worker makes its own."""
    key = (os.getpid(), threads)
    if key not in _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL[key] = ThreadPoolExecutor(threads, thread_name_prefix="qdsim-g2")
    return _POOL[key]


#: Photons per block of the threaded kernel: many more blocks than threads, handed out as
#: threads come free, so a core that is busy with something else does not hold the rest up.
_BLOCK = 1 << 18


def _count_numba(
    t: np.ndarray, c: np.ndarray, start: int, ch_a: int, ch_b: int, b: int, W: int, nb: int
) -> tuple[np.ndarray, int, int]:
    """numba kernel: blocks of photons `j` counted by `_count_block` (nogil) on
    `numba.get_num_threads()` threads, block histograms summed (exact integer counts)."""
    n_new = t.size - start
    if n_new <= 0:
        return np.zeros(nb, np.int64), 0, 0
    t = np.ascontiguousarray(t, np.int64)
    # any integer channel dtype (files give int8): the kernel compiles once per dtype
    c = np.ascontiguousarray(c if np.issubdtype(c.dtype, np.integer) else c.astype(np.int64))
    threads = numba.get_num_threads()
    if threads == 1 or n_new < 2 * _BLOCK:
        hist = np.zeros(nb, np.int64)
        tot = np.zeros(2, np.int64)
        _count_block(t, c, int(start), t.size, int(ch_a), int(ch_b), int(b), int(W), nb, hist, tot)
        return hist, int(tot[0]), int(tot[1])
    nblocks = max(4 * threads, -(-n_new // _BLOCK))
    cuts = start + (np.arange(nblocks + 1) * n_new) // nblocks
    hists = np.zeros((nblocks, nb), np.int64)
    tots = np.zeros((nblocks, 2), np.int64)
    args = (int(ch_a), int(ch_b), int(b), int(W), int(nb))
    futures = [
        _pool(threads).submit(
            _count_block, t, c, int(cuts[k]), int(cuts[k + 1]), *args, hists[k], tots[k]
        )
        for k in range(nblocks)
    ]
    for f in futures:
        f.result()
    tot = tots.sum(axis=0)
    return hists.sum(axis=0), int(tot[0]), int(tot[1])


_KERNELS: dict[str, Callable[..., np.ndarray]] = {"numpy": _count_numpy}
if _HAVE_NUMBA:
    _KERNELS["numba"] = _count_numba


def _default_kernel() -> str:
    env = os.environ.get("QDSIM_G2_KERNEL")
    if env:
        return env
    return "numba" if _HAVE_NUMBA else "numpy"


# --------------------------------------------------------------------------------------------
# streaming driver
# --------------------------------------------------------------------------------------------


def _iter_chunks(source: Any, chunk_records: int | None) -> Iterable[PhotonStream]:
    if isinstance(source, PhotonStream):
        return (source,)
    if isinstance(source, str | os.PathLike):
        from qdsim.analysis.photons.io import iter_photons

        kw = {} if chunk_records is None else {"chunk_records": int(chunk_records)}
        return iter_photons(source, **kw)
    if isinstance(source, Iterable):
        return source
    raise TypeError(
        "g2 expects a PhotonStream, an iterable of PhotonStream chunks or a file path, "
        f"got {type(source).__name__}"
    )


def correlate_counts(
    source: PhotonStream | Iterable[PhotonStream] | str | os.PathLike,
    channels: tuple[int, int] = (0, 1),
    bin_ps: float = 64,
    window_ps: float = 50_000,
    *,
    kernel: str | None = None,
    chunk_records: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Raw coincidence counts per delay bin (the engine behind `g2`).

    **Arguments:** as `g2`; `kernel` is `"numba"` (default when importable) or `"numpy"`.

    **Returns:** `(counts, info)`: int64 counts of the `2 n` bins (see the module docstring for
    the exact bin rule) and a dict with `bin_ps`, `window_ps` (used, ps), `n_a`, `n_b` (photons
    in each channel), `t_first_ps`, `t_last_ps`, `n_tags` (all tags read), `duration_s` (sum of
    the chunks' `duration_s` when every chunk gives its interval by `start_ps`, else None).

    Chunks must follow each other in time (each chunk's first tag no earlier than the previous
    chunk's last); the last `W` of tags is carried over each chunk edge, so the counts equal
    those of the concatenated stream exactly. Raises `ValueError` for unsorted chunks.
    """
    b, W, nb = g2_bins(bin_ps, window_ps)
    if len(channels) != 2:
        raise ValueError(f"channels must be a pair of channel numbers, got {channels!r}")
    ch_a, ch_b = (int(channels[0]), int(channels[1]))
    name = kernel or _default_kernel()
    if name not in _KERNELS:
        raise ValueError(f"unknown g2 kernel {name!r}; available: {sorted(_KERNELS)}")
    count = _KERNELS[name]
    if name == "numba" and isinstance(source, str | os.PathLike):
        from qdsim.analysis.photons.io import reader

        if reader._decoder() == "numba":
            return _correlate_file(source, ch_a, ch_b, b, W, nb, chunk_records, progress)

    hist = np.zeros(nb, np.int64)
    carry_t = np.zeros(0, np.int64)
    carry_c = np.zeros(0, np.int64)
    n_a = n_b = n_tags = 0
    t_first: int | None = None
    t_last: int | None = None
    durations: list[float | None] = []
    for chunk in _iter_chunks(source, chunk_records):
        if not isinstance(chunk, PhotonStream):
            raise TypeError(f"expected PhotonStream chunks, got {type(chunk).__name__}")
        # a chunk's duration counts only when it says which interval it covers (start_ps),
        # as iter_photons chunks do; chunks cut from arrays fall back to the span of the tags
        known = getattr(chunk, "start_ps", None) is not None
        durations.append(chunk.duration_s if known else None)
        t = chunk.time_ps
        c = chunk.channel
        if t.size == 0:
            continue
        if t_last is not None and int(t[0]) < t_last:
            raise ValueError(
                f"photon chunks are out of order: a chunk starts at {int(t[0])} ps, before the "
                f"previous chunk's last tag at {t_last} ps"
            )
        n_tags += t.size
        if t_first is None:
            t_first = int(t[0])
        t_last = int(t[-1])
        buf_t = np.concatenate([carry_t, t]) if carry_t.size else t
        buf_c = np.concatenate([carry_c, c]) if carry_c.size else c
        h, na, nbb = count(buf_t, buf_c, carry_t.size, ch_a, ch_b, b, W, nb)
        hist += h
        n_a += na
        n_b += nbb
        if buf_t.size:
            cut = int(np.searchsorted(buf_t, buf_t[-1] - W, side="left"))
            carry_t = buf_t[cut:].copy()
            carry_c = buf_c[cut:].copy()
        if progress is not None:
            progress(int(chunk.time_ps.size))
    dur = None
    if durations and all(d is not None for d in durations):
        dur = float(sum(durations))  # type: ignore[arg-type]
    info = {
        "bin_ps": b,
        "window_ps": W,
        "n_a": n_a,
        "n_b": n_b,
        "n_tags": n_tags,
        "t_first_ps": t_first,
        "t_last_ps": t_last,
        "duration_s": dur,
    }
    return hist, info


def _correlate_file(
    path: str | os.PathLike,
    ch_a: int,
    ch_b: int,
    b: int,
    W: int,
    nb: int,
    chunk_records: int | None,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """`correlate_counts` of a file path with the numba kernels: decode and count fused. The
    records are decoded slice by slice into small reused buffers (`reader._windows`) and each
    block of new photons is counted at once against the photons of the last `W`, so the file's
    photons are never held in memory (no `PhotonStream`, no chunk joins). The same counts and
    info as counting the chunks of `iter_photons(path, chunk_records)`: the same photons in the
    same order, and the durations summed chunk by chunk."""
    from qdsim.analysis.photons.io import reader

    stats = reader.WindowStats()
    kw = {} if chunk_records is None else {"chunk_records": int(chunk_records)}
    hist = np.zeros(nb, np.int64)
    for t, c, j0, j1 in reader._windows(path, W, stats, progress=progress, **kw):
        _count_pairs(t, c, j0, j1, ch_a, ch_b, b, W, nb, hist)
    info = {
        "bin_ps": b,
        "window_ps": W,
        "n_a": stats.photons.get(ch_a, 0),
        "n_b": stats.photons.get(ch_b, 0),
        "n_tags": stats.n_tags,
        "t_first_ps": stats.t_first_ps,
        "t_last_ps": stats.t_last_ps,
        "duration_s": stats.duration_s,
    }
    return hist, info


# --------------------------------------------------------------------------------------------
# public g2
# --------------------------------------------------------------------------------------------


def normalize_g2(
    counts: np.ndarray,
    delay_ps: np.ndarray,
    how: Normalize,
    *,
    n_a: int | None = None,
    n_b: int | None = None,
    duration_s: float | None = None,
    bin_ps: float | None = None,
    period_ps: float | None = None,
) -> tuple[float, dict[str, Any]]:
    """Normalisation factor of raw coincidence counts (expected counts per bin at g2 = 1).

    - `"cw"`: `n_a * n_b * bin_ps / T` with `T = duration_s` in ps: the coincidences per bin of
      two uncorrelated (Poissonian) streams of the same rates.
    - `"pulsed"`: `mean side-peak area * bin_ps / period_ps`. Side-peak areas are the counts in
      the full periods `[t0 + k P - P/2, t0 + k P + P/2)` (k != 0) inside the window, with `P`
      and the peak offset `t0` found from the data when `period_ps` is None. Averaged over one
      period, g2 is then the peak-area ratio: 1 for uncorrelated peaks, g2(0) at zero delay.
    - `False`: 1.

    **Returns:** `(factor, extra)` where `extra` holds e.g. `period_ps`, `offset_ps`,
    `n_side_peaks`, `side_peak_area`. Raises `ValueError` when the factor cannot be formed
    (zero duration or rates; no complete side peak in the window).
    """
    if how is False or how is None:
        return 1.0, {}
    if how == "cw":
        if not duration_s or duration_s <= 0:
            raise ValueError("cw normalisation needs a positive duration_s")
        if not n_a or not n_b:
            raise ValueError("cw normalisation needs photons in both channels")
        return float(n_a) * float(n_b) * float(bin_ps) / (duration_s * 1e12), {}
    if how == "pulsed":
        from qdsim.analysis.photons.g2fit import find_period, side_peak_areas

        period, offset = find_period(delay_ps, counts, period_ps=period_ps)
        areas = side_peak_areas(delay_ps, counts, period, offset)
        side = {k: v for k, v in areas.items() if k != 0}
        if not side:
            raise ValueError(
                f"no complete side peak within the window (period {period:.6g} ps): "
                "widen window_ps to at least 1.5 periods"
            )
        mean_side = float(np.mean(list(side.values())))
        if mean_side <= 0:
            raise ValueError("side peaks hold no coincidences: cannot normalise")
        extra = {
            "period_ps": float(period),
            "offset_ps": float(offset),
            "n_side_peaks": len(side),
            "side_peak_area": mean_side,
        }
        return mean_side * float(bin_ps) / float(period), extra
    raise ValueError(f"normalize must be 'cw', 'pulsed' or False, got {how!r}")


def g2(
    stream: PhotonStream | Iterable[PhotonStream] | str | os.PathLike,
    channels: tuple[int, int] = (0, 1),
    bin_ps: float = 64,
    window_ps: float = 50_000,
    normalize: Normalize = "cw",
    *,
    duration_s: float | None = None,
    period_ps: float | None = None,
    kernel: str | None = None,
    chunk_records: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> xr.DataArray:
    """Second-order correlation g2(tau) of two detector channels (Hanbury Brown-Twiss).

    **Arguments:**

    - `stream`: a `PhotonStream` (T2, or T3 whose `time_ps` already holds macro + micro time),
      an iterable of `PhotonStream` chunks in time order (e.g. `iter_photons(path)`), or a file
      path: decoded and counted in one pass through small buffers, never held in memory (the
      numba kernels; the result of counting the chunks of `iter_photons(path, chunk_records)`,
      which the NumPy kernel or `QDSIM_PHOTON_DECODER=numpy` do).
    - `channels`: `(a, b)`; the delay is `tau = t(b) - t(a)` (ps). `(c, c)` autocorrelates.
    - `bin_ps`, `window_ps`: bin width and half window (ps, whole numbers). Bins run from `-W`
      to `+W` with `W = ceil(window_ps / bin_ps) * bin_ps`; the exact edge rule is in the
      module docstring (numpy.histogram of all pairwise delays on those edges).
    - `normalize`: `"cw"` (default; by the rates, bin and duration), `"pulsed"` (by the mean
      side-peak area) or `False` (raw integer coincidence counts). See `normalize_g2`.
    - `duration_s`: acquisition time (s) for `"cw"`; default the stream's `duration_s` (for
      chunks: the sum of their durations when each has a `start_ps`, as `iter_photons`
      chunks do, else the span of the tags).
    - `period_ps`: laser period (ps) for `"pulsed"`; found from the data when None.
    - `kernel`: `"numba"` or `"numpy"` (identical counts); `progress`: called with the number
      of tags of each chunk read.

    **Returns:** a DataArray on dim `delay` (coordinate = bin centres, ps) holding g2 (or raw
    counts), with a coordinate `counts` (raw coincidences per bin) and a coordinate
    `counts_err` = sqrt(counts) / norm_factor (Poisson standard error of each value; 0 where
    no coincidence was counted). Attrs: `normalize` ("cw", "pulsed" or "none"), `norm_factor`
    (raw counts = values * norm_factor), `bin_ps`, `window_ps` (used), `window_requested_ps`,
    `channels`, `n_a`, `n_b`, `duration_s`, `n_tags`, and for pulsed `period_ps`, `offset_ps`,
    `n_side_peaks`, `side_peak_area`.

    Raises `ValueError` for bad bins/channels, unsorted chunks, or a normalisation that cannot
    be formed (no photons, zero duration, no side peak).
    """
    hist, info = correlate_counts(
        stream,
        channels,
        bin_ps,
        window_ps,
        kernel=kernel,
        chunk_records=chunk_records,
        progress=progress,
    )
    b, W = info["bin_ps"], info["window_ps"]
    delay = (_edges(b, W)[:-1] + b / 2).astype(np.float64)
    if duration_s is None:
        if isinstance(stream, PhotonStream):
            duration_s = stream.duration_s
        else:
            duration_s = info["duration_s"]
        if not duration_s and info["t_first_ps"] is not None:
            duration_s = (info["t_last_ps"] - info["t_first_ps"]) * 1e-12
    how: Normalize = normalize if normalize in ("cw", "pulsed") else False
    if normalize not in ("cw", "pulsed", False, None):
        raise ValueError(f"normalize must be 'cw', 'pulsed' or False, got {normalize!r}")
    factor, extra = normalize_g2(
        hist,
        delay,
        how,
        n_a=info["n_a"],
        n_b=info["n_b"],
        duration_s=duration_s,
        bin_ps=b,
        period_ps=period_ps,
    )
    values = hist / factor if how else hist.copy()
    err = np.sqrt(hist) / factor
    attrs: dict[str, Any] = {
        "long_name": "second-order correlation g2" if how else "coincidence counts",
        "units": "1" if how else "counts",
        "normalize": how or "none",
        "norm_factor": float(factor),
        "bin_ps": int(b),
        "window_ps": int(W),
        "window_requested_ps": float(window_ps),
        "channels": [int(channels[0]), int(channels[1])],
        "n_a": int(info["n_a"]),
        "n_b": int(info["n_b"]),
        "n_tags": int(info["n_tags"]),
        "duration_s": float(duration_s) if duration_s is not None else float("nan"),
        "delay_definition": "t(channels[1]) - t(channels[0])",
    }
    attrs.update(extra)
    return _g2_array(values, delay, hist, err, attrs)


_DELAY_ATTRS = {"units": "ps", "long_name": "delay (bin centre)"}
_COUNTS_ATTRS = {"units": "counts", "long_name": "raw coincidences"}
_ERR_ATTRS = {"long_name": "Poisson standard error of the values (sqrt(counts)/norm_factor)"}


def _g2_array(
    values: np.ndarray,
    delay: np.ndarray,
    hist: np.ndarray,
    err: np.ndarray,
    attrs: dict[str, Any],
) -> xr.DataArray:
    """The DataArray `g2` returns. Assembled from its parts (variables, the `delay` index)
    through xarray's direct constructor: the public one checks and converts every coordinate,
    ~0.15-0.2 ms, as long as decoding a 10^5-record file. The tests check the result identical
    to the public constructor's (`_g2_array_public`), which is used if this xarray lacks the
    internals."""
    try:
        import pandas as pd
        from xarray.core.indexes import PandasIndex

        index = PandasIndex(pd.Index(delay, name="delay"), "delay", coord_dtype=delay.dtype)
        dvar = xr.Variable(("delay",), delay, dict(_DELAY_ATTRS), fastpath=True)
        coords = {
            **index.create_variables({"delay": dvar}),
            "counts": xr.Variable(("delay",), hist, dict(_COUNTS_ATTRS), fastpath=True),
            "counts_err": xr.Variable(("delay",), err, dict(_ERR_ATTRS), fastpath=True),
        }
        var = xr.Variable(("delay",), values, attrs, fastpath=True)
        return xr.DataArray._construct_direct(var, coords, "g2", {"delay": index})
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - other xarray
        return _g2_array_public(values, delay, hist, err, attrs)


def _g2_array_public(
    values: np.ndarray,
    delay: np.ndarray,
    hist: np.ndarray,
    err: np.ndarray,
    attrs: dict[str, Any],
) -> xr.DataArray:
    """`_g2_array` through xarray's public constructor."""
    return xr.DataArray(
        values,
        dims=("delay",),
        coords={
            "delay": ("delay", delay, dict(_DELAY_ATTRS)),
            "counts": ("delay", hist, dict(_COUNTS_ATTRS)),
            "counts_err": ("delay", err, dict(_ERR_ATTRS)),
        },
        name="g2",
        attrs=attrs,
    )
