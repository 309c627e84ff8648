"""Photon streams: time-tagged detection events (the common currency of the analysis module).

A `PhotonStream` holds absolute arrival times in picoseconds (int64) and detector channels for
every photon record, plus (T3 mode) the sync index and micro time. It is built by
`read_photons` from files or directly from arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PhotonStream"]


@dataclass(frozen=True, eq=False)
class PhotonStream:
    """Time-tagged photons.

    **Arguments / fields:**

    - `time_ps`: absolute arrival times (ps, int64), non-decreasing.
    - `channel`: detector channel of each photon (int, same length as `time_ps`).
    - `micro_ps`: T3 only: arrival time after the last sync pulse (ps, int64), else None.
    - `sync_index`: T3 only: index of the sync pulse each photon follows (int64), else None.
    - `sync_period_ps`: T3 only: sync (laser) period in ps, else None.
    - `marker_time_ps`, `marker_bits`: external marker events (ps, int64; bit mask), may be empty.
    - `duration_s`: acquisition duration (s). When not given, the span of `time_ps` is used.
    - `header`: the file header tags (empty for arrays).
    - `path`: the source file, when read from one.

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
        object.__setattr__(self, "channel", c.astype(np.int64, copy=False))
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
        return f"PhotonStream({len(self)} photons, {mode}, {self.duration_s:.4g} s, channels {{{chans}}}{src})"
