"""Photon streams: time-tagged detection events (the common currency of the analysis module).

A `PhotonStream` holds absolute arrival times in picoseconds (int64) and detector channels for
every photon record, plus (T3 mode) the sync index and micro time. It is built by
`read_photons` from files or directly from arrays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PhotonStream"]


@dataclass(frozen=True, eq=False)
class PhotonStream:
    """Time-tagged photons.

    **Arguments / fields:**

    - `time_ps`: absolute arrival times (ps, int64), non-decreasing.
    - `channel`: detector channel of each photon (same length as `time_ps`): int8 from files
      (channels -1..63, a quarter of the memory traffic of int64 in g2 and in the reader),
      any integer dtype as given from arrays (other dtypes become int64).
    - `micro_ps`: T3 only: arrival time after the last sync pulse (ps, int64), else None.
    - `sync_index`: T3 only: index of the sync pulse each photon follows (int64), else None.
    - `sync_period_ps`: T3 only: sync (laser) period in ps, else None.
    - `marker_time_ps`, `marker_bits`: external marker events (ps, int64; bit mask), may be empty.
    - `duration_s`: acquisition duration (s). When not given, the span of `time_ps` is used.
    - `header`: the file header tags (empty for arrays).
    - `path`: the source file, when read from one.
    - `start_ps`: start of the time interval the stream covers (ps): 0 for a whole file, the
      previous chunk's end for a chunk of `iter_photons`; None when unknown (arrays). The
      interval is `[start_ps, start_ps + duration_s)`, so chunk durations add up to the file's.
    - `record_type`: the file's record type (ptufile's names, e.g. "PicoHarpT2"), else None.
    - `resolution_ps`: time-tag resolution (ps): T2 tick, T3 micro-time bin; None if unknown.

    Raises `ValueError` for mismatched lengths, non-integer times or unsorted times.
    """

    time_ps: np.ndarray
    channel: np.ndarray
    micro_ps: np.ndarray | None = None
    sync_index: np.ndarray | None = None
    sync_period_ps: float | None = None
    marker_time_ps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    marker_bits: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    duration_s: float | None = None
    header: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = None
    start_ps: int | None = None
    record_type: str | None = None
    resolution_ps: float | None = None

    def __post_init__(self) -> None:
        t = np.asarray(self.time_ps)
        c = np.asarray(self.channel)
        if t.ndim != 1 or c.ndim != 1 or t.shape != c.shape:
            raise ValueError(
                f"time_ps and channel must be 1-D arrays of equal length, got shapes "
                f"{t.shape} and {c.shape}"
            )
        if t.size and not np.issubdtype(t.dtype, np.integer):
            if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
                raise ValueError("time_ps must hold integer picoseconds (finite whole numbers)")
        t = t.astype(np.int64, copy=False)
        if t.size > 1 and np.any(np.diff(t) < 0):
            raise ValueError("time_ps must be sorted (non-decreasing)")
        object.__setattr__(self, "time_ps", t)
        if not np.issubdtype(c.dtype, np.integer):
            c = c.astype(np.int64)
        object.__setattr__(self, "channel", c)
        for name in ("micro_ps", "sync_index"):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v).astype(np.int64, copy=False)
                if v.shape != t.shape:
                    raise ValueError(f"{name} must have the same length as time_ps")
                object.__setattr__(self, name, v)
        if self.duration_s is None:
            span = (int(t[-1]) - int(t[0])) if t.size > 1 else 0
            object.__setattr__(self, "duration_s", span * 1e-12)
        elif not (np.isfinite(self.duration_s) and self.duration_s >= 0):
            raise ValueError(f"duration_s must be finite and >= 0, got {self.duration_s}")

    @classmethod
    def _from_reader(cls, **fields: Any) -> PhotonStream:
        """A stream from a reader whose arrays are int64, equally long and time-sorted by
        construction (the compiled decoder of `read_photons`): the checks of `__post_init__`,
        a full pass over the times, are skipped. Not for arrays from elsewhere."""
        obj = cls.__new__(cls)
        for f in dataclasses.fields(cls):
            if f.name in fields:
                value = fields.pop(f.name)
            elif f.default is not dataclasses.MISSING:
                value = f.default
            elif f.default_factory is not dataclasses.MISSING:
                value = f.default_factory()
            else:
                raise TypeError(f"PhotonStream field {f.name!r} missing")
            object.__setattr__(obj, f.name, value)
        if fields:
            raise TypeError(f"unknown PhotonStream fields {sorted(fields)}")
        return obj

    @classmethod
    def concatenate(cls, streams: Sequence[PhotonStream]) -> PhotonStream:
        """One stream from consecutive chunks (e.g. of `iter_photons`): arrays joined, durations
        added, metadata from the first chunk. Raises `ValueError` if times go backwards."""
        streams = list(streams)
        if not streams:
            raise ValueError("no streams to concatenate")
        first = streams[0]
        t3 = first.micro_ps is not None

        def cat(name: str) -> np.ndarray | None:
            parts = [getattr(s, name) for s in streams]
            if any(p is None for p in parts):
                return None
            return np.concatenate(parts) if len(parts) > 1 else parts[0]

        if all(s.start_ps is not None for s in streams):  # exact: whole picoseconds
            last = streams[-1]
            end_ps = last.start_ps + round(last.duration_s * 1e12)
            duration_s = (end_ps - first.start_ps) * 1e-12
        else:
            duration_s = float(sum(s.duration_s for s in streams))
        return cls(
            time_ps=cat("time_ps"),
            channel=cat("channel"),
            micro_ps=cat("micro_ps") if t3 else None,
            sync_index=cat("sync_index") if t3 else None,
            sync_period_ps=first.sync_period_ps,
            marker_time_ps=cat("marker_time_ps"),
            marker_bits=cat("marker_bits"),
            duration_s=duration_s,
            header=first.header,
            path=first.path,
            start_ps=first.start_ps,
            record_type=first.record_type,
            resolution_ps=first.resolution_ps,
        )

    def __len__(self) -> int:
        return int(self.time_ps.size)

    @property
    def channels(self) -> np.ndarray:
        """Sorted unique channel numbers present."""
        return np.unique(self.channel)

    def select(self, channel: int) -> np.ndarray:
        """Arrival times (ps, int64) of one channel."""
        return self.time_ps[self.channel == channel]

    def __repr__(self) -> str:
        chans = ", ".join(f"{c}: {int(np.sum(self.channel == c))}" for c in self.channels)
        mode = "T3" if self.micro_ps is not None else "T2"
        src = f" from {self.path!r}" if self.path else ""
        return (
            f"PhotonStream({len(self)} photons, {mode}, {self.duration_s:.4g} s, "
            f"channels {{{chans}}}{src})"
        )
