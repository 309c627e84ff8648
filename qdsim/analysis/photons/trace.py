"""Intensity (blinking) traces: photon counts in consecutive time bins."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from qdsim.analysis.photons.stream import PhotonStream

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["MAX_BINS", "intensity_trace"]

#: Refuse traces with more bins than this (memory guard: 8 bytes per bin and channel).
MAX_BINS = 100_000_000


def intensity_trace(
    stream: PhotonStream | Iterable[PhotonStream],
    bin_s: float = 0.01,
    channels: Sequence[int] | None = None,
    *,
    per_channel: bool = False,
) -> xr.DataArray:
    """Count photons in consecutive bins of `bin_s` seconds: the intensity (blinking) trace.

    **Arguments:**

    - `stream`: a `PhotonStream`, or an iterable of consecutive chunks (e.g.
      `iter_photons(path)`), which is consumed chunk by chunk in bounded memory.
    - `bin_s`: bin width (s), rounded to whole picoseconds; > 0.
    - `channels`: photon channels to count; None = every channel >= 0 present (T2 sync events,
      channel -1, are not photons and are counted only when listed explicitly).
    - `per_channel`: one trace per channel (dims "channel", "time") instead of their sum.

    **Returns:** `xarray.DataArray` of int64 counts per bin, dim "time" (and "channel" first if
    `per_channel`), coord "time" = bin start (s) from the stream start (`start_ps`; the first
    photon for streams built from arrays). Only whole bins are kept: a last partial bin would
    read as a spurious dim state, so its photons are dropped and counted in the attr
    `dropped_counts`. Attrs: `bin_s`, `channels`, `duration_s`, `mean_rate_cps` (counts/s over
    the kept bins), `source`, `units`, `long_name`.

    **Raises:** `ValueError` naming the file when a requested channel has no photons, when the
    recording is shorter than one bin, for `bin_s` <= 0 or more than `MAX_BINS` bins.
    """
    import xarray as xr

    if not (np.isfinite(bin_s) and bin_s > 0):
        raise ValueError(f"bin_s must be positive, got {bin_s}")
    bin_ps = int(round(bin_s * 1e12))
    if bin_ps < 1:
        raise ValueError(f"bin_s = {bin_s} s is below 1 ps")
    chunks = [stream] if isinstance(stream, PhotonStream) else stream
    want = None if channels is None else sorted({int(c) for c in channels})
    counts: dict[int, np.ndarray] = {}
    seen: dict[int, int] = {}
    t0: int | None = None
    duration_ps = 0
    path = None
    for chunk in chunks:
        path = path or chunk.path
        if t0 is None:
            if chunk.start_ps is not None:
                t0 = int(chunk.start_ps)
            else:
                t0 = int(chunk.time_ps[0]) if len(chunk) else 0
        duration_ps += int(round(chunk.duration_s * 1e12))
        ids, n = np.unique(chunk.channel, return_counts=True)
        for c, k in zip(ids.tolist(), n.tolist(), strict=True):
            seen[c] = seen.get(c, 0) + k
        use = want if want is not None else [c for c in ids.tolist() if c >= 0]
        if not len(chunk):
            continue
        idx_all = (chunk.time_ps - t0) // bin_ps
        if idx_all.size and idx_all[-1] >= MAX_BINS:
            raise ValueError(
                f"{chunk.path or 'stream'}: more than {MAX_BINS} bins of {bin_s} s: use wider bins"
            )
        for c in use:
            sel = idx_all[chunk.channel == c]
            if sel.size == 0:
                continue
            h = np.bincount(sel, minlength=0)
            acc = counts.get(c)
            if acc is None:
                counts[c] = h.astype(np.int64)
            else:
                if h.size > acc.size:
                    acc = np.concatenate([acc, np.zeros(h.size - acc.size, np.int64)])
                acc[: h.size] += h
                counts[c] = acc
    where = path or "stream"
    if want is not None:
        missing = [c for c in want if c not in seen]
        if missing:
            present = ", ".join(f"{c} ({n})" for c, n in sorted(seen.items())) or "none"
            raise ValueError(f"{where}: no photons on channel(s) {missing}; present: {present}")
        use_channels = want
    else:
        use_channels = sorted(c for c in seen if c >= 0)
    nbins = duration_ps // bin_ps
    if nbins < 1:
        raise ValueError(
            f"{where}: recording of {duration_ps * 1e-12:.6g} s is shorter than one {bin_s} s bin"
        )
    if nbins > MAX_BINS:
        raise ValueError(f"{where}: {nbins} bins of {bin_s} s exceed {MAX_BINS}: use wider bins")
    table = np.zeros((len(use_channels), nbins), np.int64)
    dropped = 0
    for i, c in enumerate(use_channels):
        h = counts.get(c, np.zeros(0, np.int64))
        k = min(h.size, nbins)
        table[i, :k] = h[:k]
        dropped += int(h[nbins:].sum())
    time_s = (t0 + np.arange(nbins, dtype=np.int64) * bin_ps) * 1e-12
    total = int(table.sum())
    attrs = {
        "bin_s": bin_ps * 1e-12,
        "channels": np.asarray(use_channels, dtype=np.int64),
        "duration_s": nbins * bin_ps * 1e-12,
        "mean_rate_cps": total / (nbins * bin_ps * 1e-12),
        "dropped_counts": dropped,
        "source": str(path) if path else "",
        "units": "counts",
        "long_name": "photon counts per bin",
    }
    tcoord = ("time", time_s, {"units": "s", "long_name": "bin start time"})
    if per_channel:
        return xr.DataArray(
            table,
            dims=("channel", "time"),
            coords={"channel": np.asarray(use_channels, np.int64), "time": tcoord},
            name="counts",
            attrs=attrs,
        )
    return xr.DataArray(
        table.sum(axis=0), dims=("time",), coords={"time": tcoord}, name="counts", attrs=attrs
    )
