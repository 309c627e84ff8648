"""g2(tau): exact pair counting against a brute-force O(N^2) oracle, chunked == in memory, bin
edges, normalisations and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qdsim import analysis
from qdsim.analysis.photons import correlate
from qdsim.analysis.photons.stream import PhotonStream
from tests.analysis.synth_photons import decay_t3, pulsed_source

KERNELS = ["numpy"] + (["numba"] if correlate._HAVE_NUMBA else [])


def brute_force(t, c, channels, bin_ps, window_ps):
    """Every ordered pair (i != j) with c_i = a, c_j = b; numpy.histogram of t_j - t_i."""
    b, W, nb = correlate.g2_bins(bin_ps, window_ps)
    a_, b_ = channels
    ta = t[c == a_].astype(np.int64)
    tb = t[c == b_].astype(np.int64)
    d = tb[None, :] - ta[:, None]
    if a_ == b_:
        d = d[~np.eye(ta.size, dtype=bool)]
    d = d.ravel()
    edges = np.arange(-W, W + b, b)
    assert edges.size == nb + 1
    return np.histogram(d, edges)[0]


def make_stream(rng, n, span, n_channels=2):
    t = np.sort(rng.integers(0, span, n))
    c = rng.integers(0, n_channels, n)
    return PhotonStream(time_ps=t, channel=c)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    times=st.lists(st.integers(0, 400), min_size=0, max_size=60),
    chans=st.lists(st.integers(0, 2), min_size=60, max_size=60),
    bin_ps=st.integers(1, 40),
    window_ps=st.integers(1, 250),
    pair=st.sampled_from([(0, 1), (1, 0), (0, 0), (2, 1), (1, 1)]),
)
def test_kernels_equal_brute_force(times, chans, bin_ps, window_ps, pair):
    """Both kernels count exactly the pairs of the O(N^2) oracle (ties, same channel, any
    bin and window, window not a multiple of the bin)."""
    t = np.sort(np.asarray(times, np.int64))
    c = np.asarray(chans[: t.size], np.int64)
    s = PhotonStream(time_ps=t, channel=c)
    ref = brute_force(t, c, pair, bin_ps, window_ps)
    for k in KERNELS:
        h, info = correlate.correlate_counts(s, pair, bin_ps, window_ps, kernel=k)
        np.testing.assert_array_equal(h, ref)
        assert info["n_a"] == np.count_nonzero(c == pair[0])
        assert info["n_b"] == np.count_nonzero(c == pair[1])


@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.integers(0, 400), max_size=6),
    bin_ps=st.integers(1, 30),
    window_ps=st.integers(1, 120),
    pair=st.sampled_from([(0, 1), (1, 0), (0, 0)]),
)
def test_chunked_equals_in_memory(seed, cuts, bin_ps, window_ps, pair):
    """Chunks (split anywhere, also inside runs of equal times, empty ones included) give
    exactly the in-memory counts: the carry over chunk edges loses and double-counts nothing."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 300, 400))  # dense: many ties and many pairs per window
    c = rng.integers(0, 3, 400)
    whole = PhotonStream(time_ps=t, channel=c)
    idx = sorted(set(cuts))
    parts = np.split(np.arange(t.size), idx)
    chunks = [PhotonStream(time_ps=t[p], channel=c[p]) for p in parts]
    for k in KERNELS:
        h1, _ = correlate.correlate_counts(whole, pair, bin_ps, window_ps, kernel=k)
        h2, info = correlate.correlate_counts(iter(chunks), pair, bin_ps, window_ps, kernel=k)
        np.testing.assert_array_equal(h1, h2)
        assert info["n_tags"] == t.size


def test_chunked_g2_identical_dataarray():
    """g2 of a generator of chunks == g2 of the whole stream (values, coords, attrs), for a
    large stream that takes the parallel numba path."""
    rng = np.random.default_rng(7)
    s = make_stream(rng, 300_000, 3_000_000_000)
    cuts = np.sort(rng.integers(0, len(s), 9))
    chunks = (
        PhotonStream(time_ps=s.time_ps[a:b], channel=s.channel[a:b])
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(s)], strict=True)
    )
    h1 = analysis.g2(s, bin_ps=100, window_ps=20_000, duration_s=s.duration_s)
    h2 = analysis.g2(chunks, bin_ps=100, window_ps=20_000, duration_s=s.duration_s)
    assert h1.identical(h2)
    assert int(h1["counts"].sum()) > 1000


@pytest.mark.skipif(not correlate._HAVE_NUMBA, reason="numba not importable")
def test_numba_parallel_equals_numpy_dense():
    """Dense stream (about 3 pairs per photon), parallel blocks: numba == NumPy exactly."""
    rng = np.random.default_rng(3)
    s = make_stream(rng, 200_000, 400_000_000, n_channels=3)
    for pair in [(0, 1), (2, 2)]:
        h1, _ = correlate.correlate_counts(s, pair, 64, 10_000, kernel="numba")
        h2, _ = correlate.correlate_counts(s, pair, 64, 10_000, kernel="numpy")
        np.testing.assert_array_equal(h1, h2)
        assert h1.sum() > 100_000


def test_bin_edges_exact():
    """A delay on an edge goes to the bin on its right; -W is counted in the first bin, +W in
    the last; delays beyond +-W are not counted. Coordinates are the bin centres."""
    b, window = 10, 30
    delays = [-31, -30, -21, -20, -1, 0, 1, 9, 10, 29, 30, 31]
    t, c = [], []
    for i, d in enumerate(delays):
        t0 = 1_000_000 * (i + 1)
        t += [t0, t0 + d]
        c += [0, 1]
    order = np.argsort(t, kind="stable")
    s = PhotonStream(time_ps=np.asarray(t)[order], channel=np.asarray(c)[order])
    h = analysis.g2(s, bin_ps=b, window_ps=window, normalize=False)
    np.testing.assert_array_equal(h["delay"], [-25, -15, -5, 5, 15, 25])
    # bins [-30,-20) [-20,-10) [-10,0) [0,10) [10,20) [20,30]
    expected = [2, 1, 1, 3, 1, 2]  # -30,-21 | -20 | -1 | 0,1,9 | 10 | 29,30
    np.testing.assert_array_equal(h.values, expected)
    assert h.attrs["window_ps"] == 30


def test_window_widened_to_whole_bins():
    """window_ps not a multiple of bin_ps: the window is widened to ceil(window/bin) bins."""
    rng = np.random.default_rng(0)
    s = make_stream(rng, 500, 100_000)
    h = analysis.g2(s, bin_ps=64, window_ps=50_000, normalize=False)
    assert h.attrs["window_ps"] == 50_048 and h.attrs["window_requested_ps"] == 50_000
    assert h.sizes["delay"] == 2 * 782
    assert h["delay"].values[0] == -50_048 + 32 and h["delay"].values[-1] == 50_048 - 32
    np.testing.assert_array_equal(h.values, brute_force(s.time_ps, s.channel, (0, 1), 64, 50_000))


@pytest.mark.parametrize("bad", [0, -5, 2.5, float("nan"), "x"])
def test_bad_bins_raise(bad):
    s = PhotonStream(time_ps=np.arange(10), channel=np.zeros(10, int))
    with pytest.raises(ValueError):
        analysis.g2(s, bin_ps=bad, window_ps=100)
    with pytest.raises(ValueError):
        analysis.g2(s, bin_ps=10, window_ps=bad)


def test_unsorted_chunks_raise():
    a = PhotonStream(time_ps=[10, 20, 30], channel=[0, 1, 0])
    b = PhotonStream(time_ps=[25, 40], channel=[1, 0])
    with pytest.raises(ValueError, match="out of order"):
        analysis.g2([a, b], bin_ps=1, window_ps=10, normalize=False)


def test_cw_normalisation_poisson():
    """Two independent Poisson streams: g2 = counts / (N_a N_b bin / T) averages to 1 within
    its Poisson error; values * norm_factor give back the raw counts; counts_err is
    sqrt(counts) / norm_factor."""
    rng = np.random.default_rng(11)
    T = 2e12  # 2 s in ps
    ta = np.sort(rng.uniform(0, T, 400_000)).astype(np.int64)
    tb = np.sort(rng.uniform(0, T, 300_000)).astype(np.int64)
    t = np.concatenate([ta, tb])
    c = np.r_[np.zeros(ta.size, int), np.ones(tb.size, int)]
    o = np.argsort(t, kind="stable")
    s = PhotonStream(time_ps=t[o], channel=c[o], duration_s=2.0)
    h = analysis.g2(s, bin_ps=1000, window_ps=500_000)
    f = h.attrs["norm_factor"]
    assert f == pytest.approx(400_000 * 300_000 * 1000 / T, rel=1e-12)
    np.testing.assert_allclose(h.values * f, h["counts"].values, rtol=1e-12)
    np.testing.assert_allclose(h["counts_err"], np.sqrt(h["counts"]) / f, rtol=1e-12)
    mean = float(h.mean())
    err = float(np.sqrt(h["counts"].sum())) / f / h.sizes["delay"]
    assert abs(mean - 1) < 4 * err
    assert h.attrs["normalize"] == "cw" and h.attrs["n_a"] == 400_000


def test_pulsed_normalisation_side_peaks():
    """Pulsed normalisation: the complete side periods average to 1 and the mean of g2 over
    the central period is the raw area ratio (g2(0) of the synthetic source, 0.1, with no
    background)."""
    s, truth = pulsed_source(5, duration_s=0.02)
    h = analysis.g2(s, bin_ps=32, window_ps=45_000, normalize="pulsed")
    P, t0 = h.attrs["period_ps"], h.attrs["offset_ps"]
    assert P == pytest.approx(truth["period_ps"], abs=2.0)
    assert abs(t0) < 5
    d = h["delay"].values
    b = h.attrs["bin_ps"]

    def period_sum(k):  # g2 summed over [t0 + kP - P/2, t0 + kP + P/2), times bin / P
        sel = (d >= t0 + k * P - P / 2) & (d < t0 + k * P + P / 2)
        return float(h.values[sel].sum()) * b / P, int(h["counts"].values[sel].sum())

    sides = [period_sum(k)[0] for k in (-3, -2, -1, 1, 2, 3)]
    assert np.mean(sides) == pytest.approx(1.0, rel=1e-12)
    g0, n0 = period_sum(0)
    assert abs(g0 - truth["g2_0"]) < 4 * g0 / np.sqrt(n0)
    raw = analysis.g2(s, bin_ps=32, window_ps=45_000, normalize=False)
    np.testing.assert_array_equal(raw.values, h["counts"].values)


def test_g2_dataarray_equals_public_constructor():
    """g2 assembles its DataArray through xarray's direct constructor: the result is identical
    to the public constructor's (values, coords, attrs, the delay index), behaves like it, and
    no two results share attrs."""
    import xarray as xr

    s, _ = pulsed_source(5, duration_s=0.005)
    for how in ("cw", "pulsed", False):
        h = analysis.g2(s, bin_ps=32, window_ps=45_000, normalize=how)
        ref = correlate._g2_array_public(
            h.values, h["delay"].values, h["counts"].values, h["counts_err"].values, h.attrs
        )
        xr.testing.assert_identical(h, ref)
        assert h.xindexes["delay"].equals(ref.xindexes["delay"])
        assert list(h.indexes) == ["delay"] and list(h.coords) == list(ref.coords)
        d = float(h["delay"][10])
        assert h.sel(delay=d).identical(ref.sel(delay=d))
        assert (h * 2).identical(ref * 2)
    h["delay"].attrs["x"] = 1
    h["counts"].attrs["x"] = 1
    h.attrs["x"] = 1
    again = analysis.g2(s, bin_ps=32, window_ps=45_000, normalize=False)
    assert "x" not in again["delay"].attrs and "x" not in again["counts"].attrs
    assert "x" not in again.attrs


def test_pulsed_normalisation_needs_side_peaks():
    rng = np.random.default_rng(1)
    s = make_stream(rng, 20_000, 10**9)
    with pytest.raises(ValueError, match="side peaks|period"):
        analysis.g2(s, bin_ps=100, window_ps=20_000, normalize="pulsed")


def test_cw_normalisation_needs_photons():
    s = PhotonStream(time_ps=[1, 2, 3], channel=[0, 0, 0], duration_s=1.0)
    with pytest.raises(ValueError):
        analysis.g2(s, channels=(0, 1), bin_ps=1, window_ps=10)
    h = analysis.g2(s, channels=(0, 1), bin_ps=1, window_ps=10, normalize=False)
    assert h.sum() == 0


def test_t3_stream_uses_absolute_times():
    """T3 streams correlate their absolute (macro + micro) times."""
    s, _ = decay_t3(1, n_photons=5000)
    c = np.arange(len(s)) % 2
    s2 = PhotonStream(time_ps=s.time_ps, channel=c, micro_ps=s.micro_ps, sync_index=s.sync_index)
    h = analysis.g2(s2, bin_ps=500, window_ps=50_000, normalize=False)
    np.testing.assert_array_equal(h.values, brute_force(s.time_ps, c, (0, 1), 500, 50_000))


@pytest.mark.data
def test_picoharp_t2_file_flat_and_chunked(data_file):
    """Real PicoHarp T2 file: classical light, flat cross-correlation about 1.1-1.3; reading
    the path in chunks gives exactly the in-memory result."""
    path = data_file("bischof_picoharp_v30_t2.ptu")
    s = analysis.read_photons(path)
    h = analysis.g2(s, bin_ps=1000, window_ps=200_000)
    inner = h.values[np.abs(h["delay"].values) < 150_000]
    assert 1.0 < np.median(inner) < 1.4
    hc = analysis.g2(path, bin_ps=1000, window_ps=200_000, chunk_records=100_000)
    np.testing.assert_array_equal(hc["counts"].values, h["counts"].values)
