"""Reading PTU photon files: absolute times, chunking, header problems, the real sample files."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qdsim import analysis
from qdsim.analysis.photons.io import (
    SYNC_CHANNEL,
    FileFormatWarning,
    count_records,
    iter_photons,
    read_photons,
)
from tests.analysis import ptu_writer as w

# a distinct whole-picosecond tick per T2 type (as on the instruments: 4, 1, 1, 250, 25, 5 ps)
T2_TICK_S = {
    "PicoHarpT2": 4e-12,
    "HydraHarpT2": 1e-12,
    "HydraHarp2T2": 1e-12,
    "TimeHarp260NT2": 250e-12,
    "TimeHarp260PT2": 25e-12,
    "MultiHarpT2": 5e-12,
}


def exact_ps(ticks, unit_ps: float) -> np.ndarray:
    """Oracle: round(ticks * unit_ps) in exact rational arithmetic (half to even, as np.rint)."""
    u = Fraction(unit_ps)
    return np.array([round(Fraction(int(t)) * u) for t in ticks], dtype=np.int64)


def t2_file(tmp_path, name, n=300, seed=0, **kw):
    rng = np.random.default_rng(seed)
    wrap = w.t2_wrap(name)
    events = w.random_events_t2(rng, name, n, mean_gap=wrap // 5)
    truth = w.encode_t2(name, events, end=events[-1][0] + 3 * wrap + 17)
    path = w.write_ptu(
        tmp_path / f"{name}.ptu", name, truth.records, global_resolution_s=T2_TICK_S[name], **kw
    )
    return path, truth


@pytest.mark.parametrize("name", w.T2_NAMES)
def test_t2_absolute_times_channels_markers_duration(tmp_path, name):
    path, truth = t2_file(tmp_path, name)
    tick = T2_TICK_S[name] * 1e12
    s = analysis.read_photons(path)
    t, c, _ = truth.photons()
    np.testing.assert_array_equal(s.time_ps, exact_ps(t, tick))
    np.testing.assert_array_equal(s.channel, c)
    mt, mb = truth.markers()
    assert mt.size > 3
    np.testing.assert_array_equal(s.marker_time_ps, exact_ps(mt, tick))
    np.testing.assert_array_equal(s.marker_bits, mb)
    # duration: to the last record, here trailing overflows 3 periods after the last event
    assert round(s.duration_s * 1e12) == exact_ps([truth.end], tick)[0]
    assert truth.end > truth.time[-1]
    assert s.micro_ps is None and s.sync_index is None and s.start_ps == 0
    assert s.record_type == name.replace("MultiHarp", "Generic")
    assert s.resolution_ps == pytest.approx(tick)
    assert s.header["TTResult_NumberOfRecords"] == len(truth.records)
    assert s.path == str(path)
    census = count_records(path)
    assert census["overflow"] == truth.n_overflow_records
    assert census["marker"] == mt.size
    assert census["sync"] == truth.syncs().size
    assert sum(census["photons"].values()) == t.size


@pytest.mark.parametrize("name", [n for n in w.T2_NAMES if not n.startswith("PicoHarp")])
def test_t2_sync_records_only_on_request(tmp_path, name):
    """HydraHarp-family T2 sync records are not photons: dropped by default, on channel -1 when
    asked for, never mixed into channel 0."""
    path, truth = t2_file(tmp_path, name)
    syncs = truth.syncs()
    assert syncs.size > 10
    tick = T2_TICK_S[name] * 1e12
    plain = read_photons(path)
    assert SYNC_CHANNEL not in plain.channel
    assert len(plain) == truth.photons()[0].size
    both = read_photons(path, include_sync=True)
    np.testing.assert_array_equal(both.select(SYNC_CHANNEL), exact_ps(syncs, tick))
    np.testing.assert_array_equal(both.select(0), plain.select(0))
    assert np.all(np.diff(both.time_ps) >= 0)
    only = read_photons(path, channels=[SYNC_CHANNEL])
    np.testing.assert_array_equal(only.time_ps, exact_ps(syncs, tick))
    small = read_photons(path, include_sync=True, chunk_records=7)  # chunk edges anywhere
    np.testing.assert_array_equal(small.time_ps, both.time_ps)
    np.testing.assert_array_equal(small.channel, both.channel)


@pytest.mark.parametrize("name", w.T3_NAMES)
@pytest.mark.parametrize("period_s", [12.5e-9, 2.000016000128001e-07])
def test_t3_absolute_times(tmp_path, name, period_s):
    """time_ps = round(sync_index * period) + round(dtime * resolution), also for a sync period
    that is not a whole number of picoseconds (the real HydraHarp file: 200 001.6000128 ps)."""
    rng = np.random.default_rng(3)
    wrap = w.t3_wrap(name)
    pico = w.family(name) == "picoharp"
    syncs = np.cumsum(rng.integers(0, 3 * wrap, 200))
    events = [
        (int(s), w.PHOTON, int(rng.integers(0, 4)), int(rng.integers(0, 4096 if pico else 32768)))
        if k
        else (int(s), w.MARKER, int(rng.integers(1, 16)), 0)
        for s, k in zip(syncs, rng.random(200) > 0.1, strict=True)
    ]
    truth = w.encode_t3(name, events, end=int(syncs[-1]) + 2 * wrap)
    res_s = 4e-12 if pico else 2.5e-11
    path = w.write_ptu(
        tmp_path / "t3.ptu", name, truth.records, global_resolution_s=period_s, resolution_s=res_s
    )
    s = read_photons(path)
    period_ps, res_ps = period_s * 1e12, res_s * 1e12
    sync, ch, dt = truth.photons()
    order = np.lexsort((dt, sync))  # photons of one sync period in micro-time order
    expected = exact_ps(sync, period_ps) + exact_ps(dt, res_ps)
    np.testing.assert_array_equal(s.time_ps, expected[order])
    np.testing.assert_array_equal(s.sync_index, sync[order])
    np.testing.assert_array_equal(s.micro_ps, exact_ps(dt, res_ps)[order])
    np.testing.assert_array_equal(s.channel, ch[order])
    assert s.sync_period_ps == period_ps
    assert s.resolution_ps == pytest.approx(res_ps)
    mt, mb = truth.markers()
    np.testing.assert_array_equal(s.marker_time_ps, exact_ps(mt, period_ps))
    np.testing.assert_array_equal(s.marker_bits, mb)
    assert round(s.duration_s * 1e12) == exact_ps([truth.end], period_ps)[0]
    # a sync period given by the caller replaces the header's
    s2 = read_photons(path, sync_period_ps=10_000.0)
    np.testing.assert_array_equal(s2.time_ps, (sync * 10_000 + exact_ps(dt, res_ps))[order])


@st.composite
def unordered_t3(draw):
    """T3 photons whose micro times exceed the sync period, so photons of one sync period land
    after photons of later ones: time order differs from record order across chunk edges."""
    n = draw(st.integers(1, 80))
    s, events = 0, []
    for _ in range(n):
        s += draw(st.integers(0, 3))
        events.append((s, w.PHOTON, draw(st.integers(0, 2)), draw(st.integers(0, 32767))))
    chunk = draw(st.integers(1, 40))
    return events, chunk


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=unordered_t3())
def test_chunks_are_the_whole_file_in_order(tmp_path, case):
    events, chunk = case
    truth = w.encode_t3("HydraHarp2T3", events, end=events[-1][0] + 1)
    path = w.write_ptu(
        tmp_path / "u.ptu",
        "HydraHarp2T3",
        truth.records,
        global_resolution_s=1e-9,  # 1000 ps period, micro times up to 32.767 ns
        resolution_s=1e-12,
    )
    whole = read_photons(path, chunk_records=10**6)
    chunks = list(iter_photons(path, chunk_records=chunk))
    assert len(chunks) == -(-len(truth.records) // chunk)
    sync, ch, dt = truth.photons()
    expected = np.sort(sync * 1000 + dt)
    np.testing.assert_array_equal(whole.time_ps, expected)
    cat = analysis.PhotonStream.concatenate(chunks)
    for f in ("time_ps", "channel", "micro_ps", "sync_index"):
        np.testing.assert_array_equal(getattr(cat, f), getattr(whole, f))
    assert cat.duration_s == whole.duration_s
    t = 0
    for c in chunks:  # consecutive intervals, each holding its photons
        assert c.start_ps == t
        end = c.start_ps + round(c.duration_s * 1e12)
        assert np.all((c.time_ps >= c.start_ps) & (c.time_ps <= end))
        t = end


def test_chunked_t2_equals_whole_and_bounded_memory(tmp_path):
    """A 3 M-record file read in 100 k-record chunks: every photon, in order, and the peak of
    NumPy allocations bounded by the chunk (~80 B per chunk record; the records themselves are
    memory-mapped), not by the file: decoding it whole would take ~240 MB."""
    rng = np.random.default_rng(7)
    n = 3_000_000
    gaps = rng.integers(0, 30_000, n)
    ticks = np.cumsum(gaps)
    wrap = 1 << 25
    nwrap = np.diff(np.concatenate([[0], ticks // wrap]))
    # one v2 overflow record (count = periods skipped) before each photon that needs one
    rec = np.empty(n + int((nwrap > 0).sum()), np.uint32)
    pos = np.arange(n) + np.cumsum(nwrap > 0)
    rec[pos] = (rng.integers(0, 2, n).astype(np.uint32) << 25) | (ticks % wrap).astype(np.uint32)
    ovf_pos = pos[nwrap > 0] - 1
    rec[ovf_pos] = np.uint32(0xFE00_0000) | nwrap[nwrap > 0].astype(np.uint32)
    path = w.write_ptu(tmp_path / "big.ptu", "HydraHarp2T2", rec, global_resolution_s=1e-12)
    tracemalloc.start()
    total, last, tsum = 0, -1, 0
    for c in iter_photons(path, chunk_records=100_000):
        assert c.time_ps[0] >= last
        last = int(c.time_ps[-1])
        total += len(c)
        tsum += int(c.time_ps.sum() % (1 << 40))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total == n
    assert last == ticks[-1]
    assert tsum % (1 << 40) == int(ticks.sum() % (1 << 40))
    assert peak < 120 * 100_000, f"peak {peak / 1e6:.1f} MB for chunks of 100k records"


# --- header and file problems --------------------------------------------------------------------


def small_t2(tmp_path, **kw):
    truth = w.encode_t2("HydraHarp2T2", [(10, w.PHOTON, 0), (2**26, w.PHOTON, 1)], end=2**27)
    return w.write_ptu(
        tmp_path / "s.ptu", "HydraHarp2T2", truth.records, global_resolution_s=1e-12, **kw
    ), truth


def test_header_acquisition_time_is_not_the_duration(tmp_path):
    """The PicoHarp sample file's header says 60 s for a 7.65 s run: durations come from records."""
    path, truth = small_t2(tmp_path, acquisition_time_ms=60_000)
    s = read_photons(path)
    assert s.header["MeasDesc_AcquisitionTime"] == 60_000
    assert s.duration_s == pytest.approx(2**27 * 1e-12)


def test_truncated_file_names_the_file_and_the_shortfall(tmp_path):
    path, truth = small_t2(tmp_path, number_of_records=10)
    n = len(truth.records)
    msg = rf"s\.ptu: truncated PTU file: header says 10 records, the file holds {n} "
    with pytest.raises(ValueError, match=msg + rf"\({4 * (10 - n)} bytes missing\)"):
        read_photons(path)
    # ... also when the header count is unknown (0) and the file ends inside a record
    path, truth = small_t2(tmp_path, number_of_records=0, tail=b"\x01\x02")
    with pytest.raises(ValueError, match=r"s\.ptu: truncated PTU file"):
        read_photons(path)


def test_header_record_count_smaller_or_zero(tmp_path):
    path, truth = small_t2(tmp_path, number_of_records=0)
    assert len(read_photons(path)) == 2  # unknown count: every record present is read
    path, truth = small_t2(tmp_path, number_of_records=2, tail=b"")
    # the header rules: only the first two records (overflow, photon), and the rest is not
    # skipped silently
    with pytest.warns(FileFormatWarning, match=r"s\.ptu: the header says 2 records but 8 more"):
        s = read_photons(path)
    assert len(s) == 1 and s.time_ps[0] == 10


def test_unsupported_record_type(tmp_path):
    path, _ = small_t2(tmp_path, extra_tags={"TTResultFormat_TTTRRecType": 0x00010208})
    with pytest.raises(ValueError, match=r"s\.ptu: unsupported record type 0x00010208"):
        read_photons(path)


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (
            {"Measurement_Mode": 3},
            "header says Measurement_Mode 3 but record type HydraHarp2T2 is T2",
        ),
        ({"MeasDesc_GlobalResolution": 0.0}, "MeasDesc_GlobalResolution missing or not positive"),
        ({"TTResultFormat_BitsPerRecord": 64}, "64-bit records are not supported"),
    ],
)
def test_inconsistent_header(tmp_path, tags, message):
    path, _ = small_t2(tmp_path, extra_tags=tags)
    with pytest.raises(ValueError, match=rf"s\.ptu: {message}"):
        read_photons(path)


def test_t3_without_micro_time_resolution(tmp_path):
    truth = w.encode_t3("MultiHarpT3", [(1, w.PHOTON, 0, 5)])
    path = w.write_ptu(
        tmp_path / "m.ptu", "MultiHarpT3", truth.records, global_resolution_s=1e-8, resolution_s=0.0
    )
    with pytest.raises(ValueError, match=r"m\.ptu: MeasDesc_Resolution missing or not positive"):
        read_photons(path)


def test_corrupt_and_foreign_files(tmp_path):
    path, _ = small_t2(tmp_path)
    data = bytes(path.read_bytes())
    for tag in (b"File_GUID", b"TTResultFormat_BitsPerRecord"):  # the first and the last tag
        pos = data.index(tag) + 36  # its type code: garbage
        bad = tmp_path / "corrupt.ptu"
        bad.write_bytes(data[:pos] + b"\x77\x77\x77\x77" + data[pos + 4 :])
        with pytest.raises(ValueError, match=r"corrupt\.ptu: (corrupt header|PTU header lacks)"):
            read_photons(bad)
    cut = tmp_path / "cut.ptu"
    cut.write_bytes(path.read_bytes()[:100])  # ends inside the header
    with pytest.raises(ValueError, match=r"cut\.ptu"):
        read_photons(cut)
    txt = tmp_path / "notes.ptu"
    txt.write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.ptu: not a photon file this reader knows"):
        read_photons(txt)
    empty = tmp_path / "empty.ptu"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.ptu: empty file"):
        read_photons(empty)
    phu = w.write_phu(tmp_path / "h.phu", [np.arange(4)], [1e-12])
    with pytest.raises(
        ValueError, match=r"h\.phu: a PHU histogram file: read it with read_histogram"
    ):
        read_photons(phu)
    with pytest.raises(FileNotFoundError):
        read_photons(tmp_path / "missing.ptu")


def test_undefined_record_in_file(tmp_path):
    rec = np.array([(1 << 25) | 5, 0x8000_0000 | (40 << 25)], np.uint32)
    path = w.write_ptu(tmp_path / "u.ptu", "HydraHarp2T2", rec, global_resolution_s=1e-12)
    with pytest.raises(ValueError, match=r"u\.ptu: record 1: special record with channel code 40"):
        read_photons(path)


def test_channel_selection_and_missing_channel(tmp_path):
    path, truth = t2_file(tmp_path, "HydraHarp2T2")
    s = read_photons(path, channels=[1])
    assert set(s.channel.tolist()) == {1}
    t, c, _ = truth.photons()
    np.testing.assert_array_equal(s.time_ps, t[c == 1])
    with pytest.raises(
        ValueError, match=r"HydraHarp2T2\.ptu: no photons on channel\(s\) \[7\]; present: 0 \("
    ):
        read_photons(path, channels=[1, 7])


def test_empty_record_section(tmp_path):
    path = w.write_ptu(
        tmp_path / "e.ptu",
        "PicoHarpT3",
        np.zeros(0, np.uint32),
        global_resolution_s=1e-8,
        resolution_s=4e-12,
    )
    s = read_photons(path)
    assert len(s) == 0 and s.duration_s == 0.0 and s.micro_ps is not None


def test_progress_callback(tmp_path):
    path, truth = t2_file(tmp_path, "PicoHarpT2")
    calls = []
    list(iter_photons(path, chunk_records=100, progress=lambda d, n: calls.append((d, n))))
    n = len(truth.records)
    assert calls == [(min(k, n), n) for k in range(100, n + 100, 100)]


# --- the real sample files ---------------------------------------------------------------------


@pytest.mark.data
def test_real_picoharp_t2(data_file):
    """README: 929 254 records: channel 0 531 477, channel 1 388 700, 9 077 overflows, no
    markers; stopped by hand after 7.652 s although the header says 60 s."""
    path = data_file("bischof_picoharp_v30_t2.ptu")
    census = count_records(path)
    assert census["records"] == 929_254
    assert census["photons"] == {0: 531_477, 1: 388_700}
    assert census["overflow"] == 9_077 and census["marker"] == 0 and census["sync"] == 0
    s = read_photons(path)
    assert s.record_type == "PicoHarpT2" and s.resolution_ps == 4.0
    assert s.header["MeasDesc_AcquisitionTime"] == 60_000  # the header's claim (ms)
    assert 7.64 < s.duration_s < 7.66  # the records: last photon at 7.6504 s
    assert s.duration_s >= s.time_ps[-1] * 1e-12
    # the same photons as ptufile's own decoder (ticks of 4 ps)
    import ptufile

    with ptufile.PtuFile(path) as f:
        ref = f.decode_records()
    keep = ref["channel"] >= 0
    np.testing.assert_array_equal(s.time_ps, ref["time"][keep].astype(np.int64) * 4)
    np.testing.assert_array_equal(s.channel, ref["channel"][keep])
    cat = analysis.PhotonStream.concatenate(list(iter_photons(path, chunk_records=65_536)))
    np.testing.assert_array_equal(cat.time_ps, s.time_ps)
    assert cat.duration_s == s.duration_s


@pytest.mark.data
def test_real_hydraharp_t3(data_file):
    """README: 106 349 records: channel 0 45 012, channel 1 32 871, 28 466 non-photon records;
    sync period 200.0016 ns, micro time resolution 64 ps, bins 0-3124, duration 10 s; an
    out-of-order UsrHeadName tag that must not stop reading."""
    path = data_file("bischof_hydraharp_v20_t3.ptu")
    census = count_records(path)
    assert census["records"] == 106_349
    assert census["photons"] == {0: 45_012, 1: 32_871}
    assert census["overflow"] + census["marker"] == 28_466
    s = read_photons(path)
    assert s.record_type == "HydraHarp2T3"
    assert s.sync_period_ps == pytest.approx(200_001.6, abs=0.01)
    assert s.resolution_ps == pytest.approx(64.0, abs=1e-6)
    bins = np.rint(s.micro_ps / s.resolution_ps)
    assert bins.min() == 0 and bins.max() == 3124
    assert 9.99 < s.duration_s <= 10.0
    assert any("UsrHeadName" in str(v) for v in open_notes(path))
    import ptufile

    with ptufile.PtuFile(path) as f:
        ref = f.decode_records()
    keep = ref["channel"] >= 0
    sync = ref["time"][keep].astype(np.int64)
    dt = ref["dtime"][keep].astype(np.int64)
    expected = exact_ps(sync, s.sync_period_ps) + np.rint(dt * s.resolution_ps).astype(np.int64)
    order = np.argsort(expected, kind="stable")
    np.testing.assert_array_equal(s.time_ps, expected[order])
    np.testing.assert_array_equal(s.channel, ref["channel"][keep][order])


def open_notes(path):
    from qdsim.analysis.photons.io import open_records

    return open_records(path).notes
