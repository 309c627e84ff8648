"""What a photon file holds before decoding: record layout, where the records are, time units."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qdsim.analysis.photons.io.errors import FileFormatError, FileFormatWarning
from qdsim.analysis.photons.io.records import Layout

__all__ = ["RecordSource", "check_record_count"]


@dataclass(frozen=True)
class RecordSource:
    """A file of 32-bit TTTR records, described by its header.

    - `path`, `format` ("PTU", "PT2", "PT3", "HT2", "HT3"), `layout` (record type).
    - `offset` (bytes) and `n_records`: where the records are (count checked against the size).
    - `tick_ps`: T2: time-tag unit; T3: sync period (ps, float).
    - `micro_ps`: T3 micro-time bin width (ps, float); None in T2.
    - `header`: the header fields, as read.
    - `header_duration_s`: the acquisition time the header claims (s), for information only:
      durations come from the records.
    - `notes`: harmless irregularities met while reading the header.
    """

    path: str
    format: str
    layout: Layout
    offset: int
    n_records: int
    tick_ps: float
    micro_ps: float | None
    header: Mapping[str, Any]
    header_duration_s: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def t3(self) -> bool:
        return self.layout.t3


def check_record_count(path: str, offset: int, n_header: int, what: str) -> tuple[int, list[str]]:
    """Number of records to read, checked against the file size.

    `n_header` is the count the header gives (<= 0: unknown, then every complete record after
    `offset` is read). Raises `ValueError` naming the file when the file is shorter than the
    header says or ends inside a record; warns (`FileFormatWarning`) when records follow the
    announced ones (they are not read).
    """
    size = os.path.getsize(path)
    notes: list[str] = []
    if offset > size:
        raise FileFormatError(
            f"{path}: truncated {what} file: header ends at byte {offset}, file has {size}"
        )
    avail_bytes = size - offset
    avail, rest = divmod(avail_bytes, 4)
    if n_header <= 0:
        if rest:
            raise FileFormatError(
                f"{path}: truncated {what} file: the header gives no record count and the "
                f"{avail_bytes} bytes after it are not a whole number of 4-byte records"
            )
        if avail:
            notes.append(f"header record count {n_header}: reading the {avail} records present")
        return avail, notes
    if n_header > avail:
        raise FileFormatError(
            f"{path}: truncated {what} file: header says {n_header} records, the file holds "
            f"{avail} ({4 * n_header - avail_bytes} bytes missing)"
        )
    if avail_bytes > 4 * n_header:
        extra = avail_bytes - 4 * n_header
        note = (
            f"{path}: the header says {n_header} records but {extra} more bytes "
            f"({extra // 4} records) follow them: not read"
        )
        notes.append(note)
        warnings.warn(note, FileFormatWarning, stacklevel=3)
    return n_header, notes
