"""The compiled decoder (`qdsim.analysis.photons.io.fast`) against the NumPy reference decoder.

`decode_fast` must return exactly what `records.decode_numpy` returns (times, channels, micro
times, syncs, markers, overflow count, carry, end, last time) and raise the same `RecordError`,
for every record type, any chunking, and damaged records; `read_photons` through the compiled
whole-file kernel must equal `read_photons` through `iter_photons` and the NumPy decoder
(`QDSIM_PHOTON_DECODER=numpy`) field for field, duration included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qdsim.analysis.photons.io import fast, read_photons
from qdsim.analysis.photons.io.records import LAYOUTS, RecordError, decode_numpy
from tests.analysis import ptu_writer as w
from tests.analysis.test_io_records import t2_case, t3_case

pytestmark = pytest.mark.skipif(not fast.HAVE_NUMBA, reason="numba not importable")

LAYOUT = {lay.name: lay for lay in LAYOUTS.values()}
NAME = {n: n.replace("MultiHarp", "Generic") for n in w.RECTYPES}
FIELDS = ("photon_time", "photon_channel", "photon_dtime", "sync_time", "marker_time")
STREAM = ("time_ps", "channel", "micro_ps", "sync_index", "marker_time_ps", "marker_bits")


def _decode_both(lay, rec, cuts):
    """Decode chunk by chunk with both decoders; compare every chunk; return the error text."""
    carry = last = 0
    for a, b in zip([0, *cuts], [*cuts, len(rec)], strict=True):
        try:
            ref, err_ref = decode_numpy(rec[a:b], lay, carry, a, last), None
        except RecordError as exc:
            ref, err_ref = None, (str(exc), exc.index)
        try:
            got, err_got = fast.decode_fast(rec[a:b], lay, carry, a, last), None
        except RecordError as exc:
            got, err_got = None, (str(exc), exc.index)
        assert err_got == err_ref
        if err_ref:
            return err_ref
        for f in (*FIELDS, "marker_bits"):
            x, y = getattr(ref, f), getattr(got, f)
            assert (x is None) == (y is None), f
            if x is not None:
                assert y.dtype == np.int64, f
                np.testing.assert_array_equal(y, x, err_msg=f)
        assert (got.n_overflow, got.carry, got.end, got.last_time) == (
            ref.n_overflow,
            ref.carry,
            ref.end,
            ref.last_time,
        )
        carry, last = ref.carry, ref.last_time
    return None


@settings(max_examples=150, deadline=None)
@given(case=st.one_of(t2_case(), t3_case()))
def test_decode_fast_equals_numpy_on_valid_files(case):
    name, truth, cuts = case
    assert _decode_both(LAYOUT[NAME[name]], truth.records, cuts) is None


@settings(max_examples=150, deadline=None)
@given(
    case=st.one_of(t2_case(), t3_case()),
    damage=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 2**32 - 1))),
)
def test_decode_fast_equals_numpy_on_damaged_records(case, damage):
    """Random 32-bit words written over records: undefined records, times going backwards and
    absurd overflow counts give the same error (message and record index) or the same result."""
    name, truth, cuts = case
    rec = truth.records.copy()
    if rec.size:
        for pos, word in damage:
            rec[int(pos * rec.size)] = word
    _decode_both(LAYOUT[NAME[name]], rec, cuts)


def test_v2_overflow_count_beyond_32_bits():
    """A v2 T2 overflow record counting 2**25 - 1 periods of 2**25 ticks: ~2**50 ticks, kept
    exactly (int64), in both decoders."""
    lay = LAYOUT["HydraHarp2T2"]
    rec = np.array([0xFE00_0000 | 0x1FF_FFFF, (1 << 25) | 7], np.uint32)
    d = fast.decode_fast(rec, lay)
    assert d.photon_time.tolist() == [(2**25 - 1) * 2**25 + 7]
    assert _decode_both(lay, rec, [1]) is None


def _files(tmp_path):
    """One T2 file per type (syncs and markers in the HydraHarp family) and one T3 file per
    type with micro times beyond the sync period (time order differs from record order)."""
    rng = np.random.default_rng(3)
    out = []
    for name in w.T2_NAMES:
        events = w.random_events_t2(rng, name, 400, mean_gap=w.t2_wrap(name) // 7)
        truth = w.encode_t2(name, events, end=events[-1][0] + 5)
        out.append(
            w.write_ptu(tmp_path / f"{name}.ptu", name, truth.records, global_resolution_s=5e-12)
        )
    for name in w.T3_NAMES:
        pico = w.family(name) == "picoharp"
        s, events = 0, []
        for _ in range(400):
            s += int(rng.integers(0, 3))
            if rng.random() < 0.05:
                events.append((s, w.MARKER, int(rng.integers(1, 16)), 0))
            else:
                ch = int(rng.integers(0, 4))
                events.append((s, w.PHOTON, ch, int(rng.integers(0, 4096 if pico else 32768))))
        truth = w.encode_t3(name, events, end=s + 3)
        out.append(
            w.write_ptu(
                tmp_path / f"{name}.ptu",
                name,
                truth.records,
                global_resolution_s=1.0000017e-9,  # a sync period of no whole ps: rounding path
                resolution_s=1e-12,
            )
        )
    return out


def _numpy_read(monkeypatch, path, **kw):
    with monkeypatch.context() as m:
        m.setenv("QDSIM_PHOTON_DECODER", "numpy")
        return read_photons(path, **kw)


def _same_stream(a, b):
    for f in STREAM:
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=f)
            assert x.dtype == y.dtype == (np.int8 if f == "channel" else np.int64), f
    for f in ("duration_s", "start_ps", "sync_period_ps", "record_type", "resolution_ps", "path"):
        assert getattr(a, f) == getattr(b, f), f


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"chunk_records": 37},
        {"channels": [1, 2]},
        {"include_sync": True, "chunk_records": 50},
        {"channels": [0, -1]},
    ],
)
def test_read_photons_compiled_equals_reference(tmp_path, monkeypatch, kw):
    for path in _files(tmp_path):
        want = kw
        if "channels" in kw and -1 in kw["channels"] and path.stem.endswith("T3"):
            want = {"channels": [0]}  # T3 has no sync records
        if path.stem == "PicoHarpT2" and kw.get("channels") == [0, -1]:
            want = {"channels": [0]}
        _same_stream(read_photons(path, **want), _numpy_read(monkeypatch, path, **want))


def test_compiled_reader_errors_and_progress(tmp_path, monkeypatch):
    rec = np.array([(1 << 25) | 500, (2 << 25) | 400], np.uint32)  # time goes backwards
    path = w.write_ptu(tmp_path / "b.ptu", "HydraHarp2T2", rec, global_resolution_s=1e-12)
    with pytest.raises(ValueError, match=r"b\.ptu: record 1: time tag goes backwards"):
        read_photons(path)
    path = _files(tmp_path)[0]
    calls = []
    read_photons(path, chunk_records=100, progress=lambda d, n: calls.append((d, n)))
    n = calls[-1][1]
    assert calls == [(min(k, n), n) for k in range(100, n + 100, 100)]
    with pytest.raises(ValueError, match=r"no photons on channel\(s\) \[9\]; present: 0 \("):
        read_photons(path, channels=[0, 9])
    with pytest.raises(ValueError, match="QDSIM_PHOTON_DECODER"):
        monkeypatch.setenv("QDSIM_PHOTON_DECODER", "fortran")
        read_photons(path)


@pytest.mark.data
@pytest.mark.parametrize("name", ["bischof_picoharp_v30_t2.ptu", "bischof_hydraharp_v20_t3.ptu"])
def test_real_files_compiled_equals_reference(data_file, monkeypatch, name):
    path = data_file(name)
    _same_stream(read_photons(path), _numpy_read(monkeypatch, path))
    _same_stream(
        read_photons(path, chunk_records=4096), _numpy_read(monkeypatch, path, chunk_records=4096)
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=st.one_of(t2_case(), t3_case()), chunk=st.integers(1, 40))
def test_read_photons_compiled_equals_reference_property(tmp_path, monkeypatch, case, chunk):
    name, truth, _ = case
    path = w.write_ptu(
        tmp_path / "p.ptu", name, truth.records, global_resolution_s=3.3e-12, resolution_s=1e-12
    )
    _same_stream(
        read_photons(path, chunk_records=chunk, include_sync=True),
        _numpy_read(monkeypatch, path, chunk_records=chunk, include_sync=True),
    )


def test_read_slices_inside_chunks_change_nothing(tmp_path, monkeypatch):
    """`read_photons` reads each chunk in slices of `_READ_RECORDS` records: slices of 7 records
    inside chunks of 50 (and chunks smaller than a slice) give the reference result."""
    from qdsim.analysis.photons.io import reader

    monkeypatch.setattr(reader, "_READ_RECORDS", 7)
    for path in _files(tmp_path):
        for kw in ({"chunk_records": 50}, {"chunk_records": 5}, {}):
            _same_stream(read_photons(path, **kw), _numpy_read(monkeypatch, path, **kw))


def _counts_both(monkeypatch, path, **kw):
    """`correlate_counts(path)` fused (compiled decoder + counting on reused buffers) and
    through `iter_photons` with the NumPy reference decoder."""
    from qdsim.analysis.photons.correlate import correlate_counts

    got = correlate_counts(path, **kw)
    with monkeypatch.context() as m:
        m.setenv("QDSIM_PHOTON_DECODER", "numpy")
        ref = correlate_counts(path, **kw)
    return got, ref


def _same_counts(got, ref):
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1] == ref[1]  # n_a, n_b, n_tags, first/last tag, duration (bit for bit)


@pytest.mark.parametrize("read_records", [7, 1 << 16])
def test_g2_of_path_fused_equals_reference(tmp_path, monkeypatch, read_records):
    """`g2(path)` decodes and counts in one pass over small buffers: the same counts, photon
    numbers, tag span and duration as the chunks of `iter_photons` through the reference
    decoder, for every record type, chunking, slices inside chunks, windows holding many
    photons (the buffers grow) and an autocorrelation."""
    from qdsim.analysis.photons.io import reader

    monkeypatch.setattr(reader, "_READ_RECORDS", read_records)
    for path in _files(tmp_path):
        per_tag = 1e12 * read_photons(path).duration_s / 400  # mean time between records
        windows = {
            (0, 1): 50,
            (1, 0): int(per_tag) + 7,
            (2, 1): int(60 * per_tag) + 1000,  # ~60 photons per window: the buffers grow
            (3, 3): int(5 * per_tag) + 100,
        }
        for pair, window in windows.items():
            kw = {"channels": pair, "bin_ps": max(7, window // 40), "window_ps": window}
            for chunk in (None, 37, 5):
                _same_counts(*_counts_both(monkeypatch, path, chunk_records=chunk, **kw))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=st.one_of(t2_case(), t3_case()), chunk=st.integers(1, 40), slice_=st.integers(1, 9))
def test_g2_of_path_fused_equals_reference_property(tmp_path, monkeypatch, case, chunk, slice_):
    from qdsim.analysis.photons.io import reader

    name, truth, _ = case
    path = w.write_ptu(
        tmp_path / "p.ptu", name, truth.records, global_resolution_s=3.3e-12, resolution_s=1e-12
    )
    monkeypatch.setattr(reader, "_READ_RECORDS", slice_)
    for pair in ((0, 1), (1, 1)):
        kw = {"channels": pair, "bin_ps": 3, "window_ps": 10**6, "chunk_records": chunk}
        _same_counts(*_counts_both(monkeypatch, path, **kw))


def test_g2_of_path_fused_errors(tmp_path, monkeypatch):
    """Damaged files: the fused path raises the reference path's one-line errors."""
    from qdsim.analysis import g2

    rec = np.array([(1 << 25) | 500, (2 << 25) | 400], np.uint32)  # time goes backwards
    path = w.write_ptu(tmp_path / "b.ptu", "HydraHarp2T2", rec, global_resolution_s=1e-12)
    with pytest.raises(ValueError, match=r"b\.ptu: record 1: time tag goes backwards"):
        g2(path)
    good = _files(tmp_path)[-1]
    data = good.read_bytes()
    cut = tmp_path / "cut.ptu"
    cut.write_bytes(data[: len(data) - 10])
    msgs = []
    for decoder in ("numba", "numpy"):
        monkeypatch.setenv("QDSIM_PHOTON_DECODER", decoder)
        with pytest.raises(ValueError, match=r"cut\.ptu: truncated") as exc:
            g2(cut, chunk_records=50)
        msgs.append(str(exc.value))
    assert msgs[0] == msgs[1]
