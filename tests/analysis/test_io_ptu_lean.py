"""The lean PTU header scan of the fused g2 path (`ptu.open_ptu_lean`) against `open_ptu`
(ptufile): the same record source for intact headers, and for damaged ones the same error or
warning (the scan hands every header it cannot vouch for to `open_ptu`)."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

from qdsim import analysis
from qdsim.analysis.photons.io import ptu
from tests.analysis import ptu_writer as w

FIELDS = ("path", "format", "layout", "offset", "n_records", "tick_ps", "micro_ps")


def _norm(value):
    """A header value in a form `==` compares (arrays: dtype, values, writeable)."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.tolist(), value.flags.writeable)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return (type(value).__name__, value)


def _open(fn, path, keys):
    """`("ok", fields, header tags, warnings)` or `("error", type, message, warnings)`;
    `keys`: the header tags compared (None: all)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            src = fn(str(path))
        except Exception as exc:  # noqa: BLE001 - compared between the readers
            return ("error", type(exc), str(exc), [str(c.message) for c in caught])
    got = tuple(getattr(src, f) for f in FIELDS) + (src.header_duration_s,)
    tags = {k: _norm(v) for k, v in src.header.items() if keys is None or k in keys}
    return ("ok", got, tags, [str(c.message) for c in caught])


def _same(path):
    """The lean open (source tags only, and every tag) agrees with ptufile's `open_ptu`."""
    lean = _open(ptu.open_ptu_lean, path, ptu._SOURCE_TAGS)
    assert lean == _open(ptu.open_ptu, path, ptu._SOURCE_TAGS), path
    full = _open(lambda p: ptu.open_ptu_lean(p, full=True), path, None)
    assert full == _open(ptu.open_ptu, path, None), path
    return lean[0]


def _files(tmp_path):
    rng = np.random.default_rng(5)
    out = []
    for name in w.RECTYPES:
        if name.endswith("T2"):
            tr = w.encode_t2(name, w.random_events_t2(rng, name, 50, mean_gap=1000))
            out.append(
                w.write_ptu(tmp_path / f"{name}.ptu", name, tr.records, global_resolution_s=1e-12)
            )
        else:
            ev = [(int(s), w.PHOTON, 0, 5) for s in np.sort(rng.integers(0, 10**5, 50))]
            tr = w.encode_t3(name, ev)
            out.append(
                w.write_ptu(
                    tmp_path / f"{name}.ptu", name, tr.records, global_resolution_s=1e-7,
                    resolution_s=4e-12,
                )
            )  # fmt: skip
    return out


def test_lean_equals_ptufile_every_record_type(tmp_path):
    for path in _files(tmp_path):
        assert ptu._scan_ptu_tags(str(path)) is not None  # the fast path is taken
        assert ptu._scan_ptu_tags(str(path), full=True) is not None
        assert _same(path) == "ok"


@pytest.mark.data
@pytest.mark.parametrize("name", ["bischof_picoharp_v30_t2.ptu", "bischof_hydraharp_v20_t3.ptu"])
def test_lean_equals_ptufile_real_files(data_file, name):
    path = data_file(name)
    assert ptu._scan_ptu_tags(str(path)) is not None  # out-of-order indexed tags included
    assert ptu._scan_ptu_tags(str(path), full=True) is not None
    s = analysis.read_photons(path)
    assert s.header.keys() == ptu.open_ptu(str(path)).header.keys()
    assert _same(path) == "ok"
    for channels in [(0, 1), (1, 0), (0, 0)]:  # the fused path (lean) == through a stream
        a = analysis.g2(path, channels=channels)
        b = analysis.g2(analysis.read_photons(path), channels=channels)
        np.testing.assert_array_equal(a["counts"].values, b["counts"].values)


def _flip_header_bytes(path, tmp_path, stride):
    """Invert every `stride`-th header byte in turn; the lean open and ptufile's must agree on
    each. Returns the outcomes seen ("ok", "error")."""
    data = path.read_bytes()
    offset = ptu.open_ptu(str(path)).offset
    bad = tmp_path / "flip.ptu"
    seen = set()
    for i in range(16, offset, stride):
        b = bytearray(data[: offset + 4096])  # the header and some records: enough to compare
        b[i] ^= 0xFF
        bad.write_bytes(bytes(b))
        seen.add(_same(bad))
    return seen


@pytest.mark.data
def test_header_bytes_flipped_real_t3(data_file, tmp_path):
    """Every 7th byte of the real T3 file's header inverted in turn (every tag type it holds,
    strings, indexed tags): the lean open and ptufile's agree on each (all bytes: slow)."""
    seen = _flip_header_bytes(data_file("bischof_hydraharp_v20_t3.ptu"), tmp_path, 7)
    assert seen == {"ok", "error"}


@pytest.mark.data
@pytest.mark.slow
def test_every_header_byte_flipped_real_t3(data_file, tmp_path):
    seen = _flip_header_bytes(data_file("bischof_hydraharp_v20_t3.ptu"), tmp_path, 1)
    assert seen == {"ok", "error"}


def test_every_header_byte_flipped_written(tmp_path):
    for path in _files(tmp_path)[:2]:
        data = path.read_bytes()
        offset = ptu.open_ptu(str(path)).offset
        bad = tmp_path / "flip.ptu"
        for i in range(offset):
            b = bytearray(data)
            b[i] ^= 0xFF
            bad.write_bytes(bytes(b))
            _same(bad)


def _tag(ident: str, index: int, typecode: int, value: bytes, data: bytes = b"") -> bytes:
    return ident.encode().ljust(32, b"\0") + struct.pack("<iI", index, typecode) + value + data


ODD_TAGS = [
    _tag("X_Date", -1, 0x21000008, struct.pack("<d", 1e300)),  # date out of range
    _tag("X_Date", -1, 0x21000008, struct.pack("<d", 45000.5)),  # a good date
    _tag("X_Wide", -1, 0x4002FFFF, struct.pack("<q", 3), b"abc"),  # odd UTF-16
    _tag("X_Wide", -1, 0x4002FFFF, struct.pack("<q", 4), "ab".encode("utf-16-le")),
    _tag("X_Arr", -1, 0x2001FFFF, struct.pack("<q", 12), bytes(12)),  # not whole doubles
    _tag("X_Arr", -1, 0x2001FFFF, struct.pack("<q", 16), bytes(16)),
    _tag("ChkHistogram", -1, 0xFFFFFFFF, struct.pack("<q", 12), bytes(12)),
    _tag("X_Blob", -1, 0xFFFFFFFF, struct.pack("<q", -8)),  # negative size
    _tag("X_Bad", -1, 0x12345678, bytes(8)),  # unknown tag type
    _tag("X_Int", -1, 0x10000008, bytes(8)) + _tag("X_Int", 1, 0x10000008, bytes(8)),
    _tag("X_Int", -1, 0x10000008, bytes(8)) + _tag("X_Int", 0, 0x10000008, bytes(8)),
    _tag("X_Int", 2, 0x10000008, bytes(8)) + _tag("X_Int", 0, 0x10000008, bytes(8)),
    _tag("X_Int", 0, 0x10000008, bytes(8)) + _tag("X_Int", -1, 0x10000008, bytes(8)),
    _tag("Measurement_Mode", 0, 0x10000008, struct.pack("<q", 2)),  # indexed source tag
    _tag("MeasDesc_AcquisitionTime", -1, 0x20000008, struct.pack("<d", 5.0)),
    _tag("TTResult_NumberOfRecords", -1, 0x00000008, struct.pack("<q", 1)),  # a bool
    (b"X_\xe9".ljust(32, b"\0") + struct.pack("<iI", -1, 0x10000008) + bytes(8)),  # not ASCII
    _tag("Fast_Load_End", -1, 0x4001FFFF, struct.pack("<q", 8)),  # no data read after it
    _tag("ChkHistogram", -1, 0xFFFFFFFF, struct.pack("<q", 16), bytes(range(16))),
    _tag("X_Blob", -1, 0xFFFFFFFF, struct.pack("<q", 5), b"ab\0cd"),
    _tag("X_Ansi", -1, 0x4001FFFF, struct.pack("<q", 8), b"\x81\xe9ab\0\0\0\0"),
    _tag("X_Bits", -1, 0x11000008, struct.pack("<q", -5))
    + _tag("X_Color", -1, 0x12000008, struct.pack("<q", 7)),
    _tag("X_Int", 1, 0x10000008, bytes(8)) + _tag("X_Int", 3, 0x10000008, bytes(8)),
    _tag("X_Int", 0, 0x10000008, bytes(8))
    + _tag("X_Int", 1, 0x20000008, bytes(8))
    + _tag("X_Int", 0, 0x10000008, struct.pack("<q", 4)),
    _tag("X_Flt", -1, 0x20000008, bytes(8)) + _tag("X_Flt", -1, 0x20000008, bytes(7) + b"\x01"),
    _tag("X_Arr", 0, 0x2001FFFF, struct.pack("<q", 0)),
]


@pytest.mark.parametrize("extra", ODD_TAGS, ids=[f"odd{i}" for i in range(len(ODD_TAGS))])
def test_odd_tags(tmp_path, extra):
    """Tags placed before Header_End that ptufile converts, merges or rejects in its own way."""
    tr = w.encode_t2("HydraHarp2T2", [(10, w.PHOTON, 0), (20, w.PHOTON, 1)])
    path = w.write_ptu(tmp_path / "f.ptu", "HydraHarp2T2", tr.records, global_resolution_s=1e-12)
    data = path.read_bytes()
    end = data.index(b"Header_End".ljust(32, b"\0"))
    path.write_bytes(data[:end] + extra + data[end:])
    _same(path)
