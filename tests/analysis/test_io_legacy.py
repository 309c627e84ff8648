"""Legacy PicoHarp .pt2/.pt3 and HydraHarp .ht2/.ht3 files."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from qdsim.analysis.photons.io import count_records, open_records, read_photons
from tests.analysis import ptu_writer as w

T3_EVENTS = [  # (sync, kind, value, dtime): photons, a marker between them, overflows between
    (5, w.PHOTON, 0, 100),
    (70_000, w.MARKER, 2, 0),
    (70_001, w.PHOTON, 1, 7),
    (200_000, w.MARKER, 1, 0),
    (200_000, w.PHOTON, 2, 4000),
    (1_000_000, w.PHOTON, 3, 1),
]


def test_pt3_markers_are_markers_not_overflows(tmp_path):
    """phconvert counts PicoHarp T3 marker records as overflows, moving every later photon by
    65 536 sync periods per marker; here the photons after the markers stay where they are."""
    truth = w.encode_t3("PicoHarpT3", T3_EVENTS)
    path = w.write_picoharp_legacy(
        tmp_path / "a.pt3", truth.records, mode=3, resolution_ns=0.004, sync_rate_hz=80_000_000
    )
    s = read_photons(path)
    period = 1e12 / 80_000_000  # 12 500 ps, from the sync rate in the header
    assert s.sync_period_ps == period and s.resolution_ps == pytest.approx(4.0)
    np.testing.assert_array_equal(s.sync_index, [5, 70_001, 200_000, 1_000_000])
    np.testing.assert_array_equal(
        s.time_ps,
        [5 * 12_500 + 400, 70_001 * 12_500 + 28, 200_000 * 12_500 + 16_000, 1_000_000 * 12_500 + 4],
    )
    np.testing.assert_array_equal(s.channel, [0, 1, 2, 3])
    np.testing.assert_array_equal(s.marker_time_ps, [70_000 * 12_500, 200_000 * 12_500])
    np.testing.assert_array_equal(s.marker_bits, [2, 1])
    c = count_records(path)
    assert c["marker"] == 2 and c["overflow"] == truth.n_overflow_records == 15
    assert c["format"] == "PT3" and c["record_type"] == "PicoHarpT3"
    assert s.header["Ident"] == "PicoHarp 300" and s.header["CntRate0"] == 80_000_000


def test_pt2(tmp_path):
    rng = np.random.default_rng(5)
    events = w.random_events_t2(rng, "PicoHarpT2", 300, mean_gap=50_000_000)
    truth = w.encode_t2("PicoHarpT2", events, end=events[-1][0] + 10)
    path = w.write_picoharp_legacy(tmp_path / "a.pt2", truth.records, mode=2, img_hdr=[1, 2, 3])
    s = read_photons(path)
    t, c, _ = truth.photons()
    np.testing.assert_array_equal(s.time_ps, t * 4)  # PicoHarp T2 ticks are 4 ps
    np.testing.assert_array_equal(s.channel, c)
    mt, mb = truth.markers()
    np.testing.assert_array_equal(s.marker_time_ps, mt * 4)
    np.testing.assert_array_equal(s.marker_bits, mb)
    assert round(s.duration_s * 1e12) == truth.end * 4
    assert open_records(path).format == "PT2"


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("mode", [2, 3])
def test_hydraharp_legacy_same_as_ptu(tmp_path, version, mode):
    """.ht2/.ht3 v1.0 carry HydraHarp v1 records, v2.0 v2 records; the same records in a PTU
    file with the same time units give the same stream."""
    name = ("HydraHarp2" if version == "2.0" else "HydraHarp") + ("T3" if mode == 3 else "T2")
    rng = np.random.default_rng(11)
    if mode == 2:
        events = w.random_events_t2(rng, name, 400, mean_gap=10_000_000)
        truth = w.encode_t2(name, events, end=events[-1][0] + 3 * w.t2_wrap(name))
    else:
        truth = w.encode_t3(
            name, [(s, k, v, d + 3000 if k == w.PHOTON else d) for s, k, v, d in T3_EVENTS]
        )
    legacy = w.write_hydraharp_legacy(
        tmp_path / f"a.ht{mode}",
        truth.records,
        mode=mode,
        version=version,
        resolution_ps=8.0,
        sync_rate_hz=40_000_000,
        input_channels=4,
    )
    ptu = w.write_ptu(
        tmp_path / "a.ptu",
        name,
        truth.records,
        global_resolution_s=1 / 40_000_000 if mode == 3 else 1e-12,
        resolution_s=8e-12,
    )
    a, b = read_photons(legacy, include_sync=True), read_photons(ptu, include_sync=True)
    assert a.record_type == b.record_type == name
    for f in ("time_ps", "channel", "marker_time_ps", "marker_bits"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert a.duration_s == b.duration_s
    if mode == 3:
        np.testing.assert_array_equal(a.micro_ps, b.micro_ps)
        np.testing.assert_array_equal(a.sync_index, [5, 70_001, 200_000, 1_000_000])
        np.testing.assert_array_equal(a.micro_ps, np.array([3100, 3007, 7000, 3001]) * 8)
    else:
        t, c, _ = truth.photons()
        np.testing.assert_array_equal(a.select(0), t[c == 0])  # 1 ps ticks
        np.testing.assert_array_equal(a.select(-1), truth.syncs())
    assert a.header["FormatVersion"] == version and a.header["InputChannelsPresent"] == 4


def test_legacy_header_problems(tmp_path):
    truth = w.encode_t3("PicoHarpT3", T3_EVENTS)
    good = w.write_picoharp_legacy(tmp_path / "g.pt3", truth.records, mode=3)
    data = good.read_bytes()
    n = len(truth.records)

    def variant(name, blob):
        p = tmp_path / name
        p.write_bytes(blob)
        return p

    cases = [
        (
            variant("v.pt3", data[:16] + b"1.0\0\0\0" + data[22:]),
            r"v\.pt3: PicoHarp file format version '1\.0'",
        ),
        (
            variant("h.pt3", data[:400]),
            r"h\.pt3: truncated file: the binary header ends at byte 536",
        ),
        (
            variant("r.pt3", data[:-6]),
            rf"r\.pt3: truncated PT3 file: header says {n} records, the file holds {n - 2}",
        ),
        (
            variant("t.pt3", b"TimeHarp 200\0\0\0\0" + data[16:]),
            r"t\.pt3: not a photon file this reader knows",
        ),
    ]
    mode0 = bytearray(data)
    struct.pack_into("<i", mode0, 328 + 5 * 4, 0)  # MeasMode = 0: interactive
    cases.append((variant("i.pt3", bytes(mode0)), r"i\.pt3: an interactive \(histogram\) file"))
    boards = bytearray(data)
    struct.pack_into("<i", boards, 328 + 3 * 4, 2)  # NumberOfBoards = 2
    cases.append((variant("b.pt3", bytes(boards)), r"b\.pt3: NumberOfBoards = 2"))
    rate0 = bytearray(data)
    struct.pack_into("<i", rate0, 328 + 208 + 156 + 3 * 4, 0)  # CntRate0 = 0: sync period unknown
    cases.append((variant("s.pt3", bytes(rate0)), r"s\.pt3: header sync rate CntRate0 = 0 Hz"))
    for path, message in cases:
        with pytest.raises(ValueError, match=message):
            read_photons(path)
    # ... but with the period given, a file without a sync rate is readable
    s = read_photons(tmp_path / "s.pt3", sync_period_ps=12_500.0)
    assert s.time_ps[0] == 5 * 12_500 + 400


def test_hydraharp_legacy_version_and_truncation(tmp_path):
    truth = w.encode_t2("HydraHarpT2", [(1, w.PHOTON, 0), (2, w.SYNC, 0)])
    path = w.write_hydraharp_legacy(tmp_path / "x.ht2", truth.records, mode=2, version="3.0")
    with pytest.raises(
        ValueError, match=r"x\.ht2: HydraHarp file format version '3\.0' is not supported"
    ):
        read_photons(path)
    path = w.write_hydraharp_legacy(tmp_path / "y.ht2", truth.records, mode=2, number_of_records=9)
    with pytest.raises(ValueError, match=r"y\.ht2: truncated HT2 file: header says 9 records"):
        read_photons(path)
