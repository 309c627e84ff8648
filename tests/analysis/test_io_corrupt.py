"""Damaged photon files: every case is a one-line `FileFormatError` naming the file and the
problem, or a read that warns what it skipped; never a traceback, never silently fewer photons.

The files are written here (tests/analysis/ptu_writer.py): PTU T2 and T3, PicoHarp .pt3 and
HydraHarp .ht2; the real sample files (marker `data`) are cut the same way when present.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from qdsim.analysis.photons.io import (
    FileFormatError,
    FileFormatWarning,
    count_records,
    open_records,
    read_photons,
)
from tests.analysis import ptu_writer as w

N_PHOTONS = 600


def _t2_events(rng):
    t = np.sort(rng.integers(0, 3 * 10**8, N_PHOTONS))
    return [
        (int(x), w.PHOTON, int(c)) for x, c in zip(t, rng.integers(0, 2, N_PHOTONS), strict=True)
    ]


def _t3_events(rng):
    s = np.sort(rng.integers(0, 300_000, N_PHOTONS))
    d = rng.integers(0, 4000, N_PHOTONS)
    return [
        (int(x), w.PHOTON, int(c), int(k))
        for x, c, k in zip(s, rng.integers(0, 2, N_PHOTONS), d, strict=True)
    ]


def _write(kind: str, directory):
    rng = np.random.default_rng(7)
    if kind == "ptu_t2":
        tr = w.encode_t2("HydraHarp2T2", _t2_events(rng))
        return w.write_ptu(
            directory / "f.ptu", "HydraHarp2T2", tr.records, global_resolution_s=1e-12
        )
    if kind == "ptu_t3":
        tr = w.encode_t3("PicoHarpT3", _t3_events(rng))
        return w.write_ptu(
            directory / "f.ptu",
            "PicoHarpT3",
            tr.records,
            global_resolution_s=1e-7,
            resolution_s=4e-12,
        )
    if kind == "pt3":
        tr = w.encode_t3("PicoHarpT3", _t3_events(rng))
        return w.write_picoharp_legacy(directory / "f.pt3", tr.records, mode=3)
    tr = w.encode_t2("HydraHarpT2", _t2_events(rng))
    return w.write_hydraharp_legacy(directory / "f.ht2", tr.records, mode=2)


KINDS = ["ptu_t2", "ptu_t3", "pt3", "ht2"]


@pytest.fixture(scope="module", params=KINDS)
def good(request, tmp_path_factory):
    """(path, bytes, photon count, byte offset of the records) of an intact file."""
    path = _write(request.param, tmp_path_factory.mktemp(request.param))
    src = open_records(path)
    assert len(read_photons(path)) == N_PHOTONS
    return path, path.read_bytes(), N_PHOTONS, src.offset


def _outcome(path, n_true: int) -> str:
    """Read `path`: 'error' (a proper FileFormatError), 'ok' (all photons), 'warned' (fewer
    photons, said so); anything else fails the test."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            n = len(read_photons(path))
        except FileFormatError as exc:
            msg = str(exc)
            assert "\n" not in msg, msg
            assert msg.startswith(f"{path}: ") and len(msg) > len(f"{path}: ") + 5, msg
            return "error"
    other = [c for c in caught if not issubclass(c.category, FileFormatWarning)]
    assert not other, [str(c.message) for c in other]
    if n == n_true:
        return "ok"
    assert caught, f"{path}: {n} photons instead of {n_true}, without a warning"
    assert all(str(path) in str(c.message) for c in caught)
    return "warned"


def _cuts(size: int, offset: int) -> dict[str, int]:
    cuts = {f"{k}/8": size * k // 8 for k in range(8)}
    cuts.update({"header only": offset, "10 bytes": 10, "empty": 0, "one byte short": size - 1})
    return cuts


def test_truncated_files_are_one_line_errors(good, tmp_path):
    path, data, n_true, offset = good
    for name, cut in _cuts(len(data), offset).items():
        bad = tmp_path / f"cut{path.suffix}"
        bad.write_bytes(data[:cut])
        assert _outcome(bad, n_true) == "error", (name, cut)
        with pytest.raises(FileFormatError, match="truncated|empty file"):
            read_photons(bad)


def test_truncated_ptu_says_how_many_records_are_missing(tmp_path):
    path = _write("ptu_t2", tmp_path)
    n = open_records(path).n_records
    data = path.read_bytes()
    bad = tmp_path / "half.ptu"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=rf"half\.ptu: truncated PTU file: header says {n} "):
        read_photons(bad)
    bad.write_bytes(data[:10])  # ptufile alone fails with UnboundLocalError here
    with pytest.raises(FileFormatError, match=r"truncated file: it ends at byte 10"):
        read_photons(bad)
    with pytest.raises(FileFormatError, match=r"truncated file: it ends at byte 10"):
        count_records(bad)


def test_every_header_byte_flipped(good, tmp_path):
    """Each header byte in turn inverted: an error naming the file, all photons, or a warning
    (e.g. a smaller record count in the header leaves records unread)."""
    path, data, n_true, offset = good
    bad = tmp_path / f"flip{path.suffix}"
    seen = set()
    for i in range(offset):
        b = bytearray(data)
        b[i] ^= 0xFF
        bad.write_bytes(bytes(b))
        seen.add(_outcome(bad, n_true))
    assert "error" in seen  # the flips do reach the checks


def test_flipped_record_bytes(good, tmp_path):
    """A damaged record decodes as what it now says (one record: at most one photon more or
    less) or fails with its index; never a traceback."""
    path, data, n_true, offset = good
    rng = np.random.default_rng(3)
    bad = tmp_path / f"rec{path.suffix}"
    seen = set()
    for _ in range(150):
        i = int(rng.integers(offset, len(data)))
        b = bytearray(data)
        b[i] ^= int(rng.integers(1, 256))
        bad.write_bytes(bytes(b))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                n = len(read_photons(bad))
            except FileFormatError as exc:
                assert str(exc).startswith(f"{bad}: record "), str(exc)
                seen.add("error")
                continue
        assert abs(n - n_true) <= 1
        seen.add("ok")
    assert seen == {"error", "ok"}


def test_renamed_files_are_read_by_content(good, tmp_path):
    path, data, n_true, offset = good
    for name in ("data.txt", "data.phu", "data.pt2", "noext"):
        renamed = tmp_path / name
        shutil.copyfile(path, renamed)
        assert _outcome(renamed, n_true) == "ok"
        renamed.write_bytes(data[: len(data) // 2])
        with pytest.raises(FileFormatError, match=rf"{name}: truncated"):
            read_photons(renamed)


def test_more_records_than_the_header_says_warns(tmp_path):
    path = _write("ptu_t2", tmp_path)
    n = open_records(path).n_records
    tr = w.encode_t2("HydraHarp2T2", [(5, w.PHOTON, 0), (9, w.PHOTON, 1)])
    recs = np.concatenate([tr.records, tr.records[-1:]])
    short = w.write_ptu(
        tmp_path / "short.ptu",
        "HydraHarp2T2",
        recs,
        global_resolution_s=1e-12,
        number_of_records=2,
    )
    with pytest.warns(FileFormatWarning, match=r"short\.ptu: the header says 2 records but 4 more"):
        s = read_photons(short)
    assert len(s) == 2 and n > 2


@pytest.mark.data
@pytest.mark.parametrize("name", ["bischof_picoharp_v30_t2.ptu", "bischof_hydraharp_v20_t3.ptu"])
def test_real_files_cut_short(data_file, tmp_path, name):
    src = data_file(name)
    offset = open_records(src).offset
    size = src.stat().st_size
    with open(src, "rb") as fh:
        data = fh.read(size * 7 // 8 + 1)
    for label, cut in _cuts(size, offset).items():
        if cut > len(data):
            continue
        bad = tmp_path / name
        bad.write_bytes(data[:cut])
        with pytest.raises(FileFormatError, match=rf"{name}: (truncated|empty file)"):
            read_photons(bad)
        assert label
