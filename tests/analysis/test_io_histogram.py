"""Reading TCSPC histograms: PHU, PicoQuant ASCII exports, two-column CSV."""

from __future__ import annotations

import numpy as np
import pytest

from qdsim.analysis import read_histogram
from tests.analysis import ptu_writer as w


def pq_ascii(counts: np.ndarray, ns_per_bin: list[str], *, nbins: int | None = None) -> str:
    """A PicoQuant 'Histogram Data' export in the layout of the HydraHarp 400 software."""
    ncurves = counts.shape[1]
    head = [
        "#HydraHarp 400  Histogram Data\t\t\t07/09/2021 04:48:03 PM",
        "#channels per curve",
        str(nbins if nbins is not None else counts.shape[0]),
        "#display curve no.",
        "".join(f"{i}\t" for i in range(ncurves)),
        "#memory block no.",
        "".join(f"{4 * i}\t" for i in range(ncurves)),
        "#ns/bin",
        "".join(f"{v}\t" for v in ns_per_bin),
        "#counts",
    ]
    rows = ["".join(f"{v}\t" for v in row) for row in counts]
    return "\n".join(head + rows) + "\n"


def test_pq_ascii_export(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 1000, (50, 3))
    path = tmp_path / "decay.dat"
    path.write_text(pq_ascii(counts, ["0.0040", "0.0040", "0.1280"]))
    hs = read_histogram(path)
    assert len(hs) == 3
    for i, h in enumerate(hs):
        assert h.dims == ("time",) and h.dtype == np.int64
        np.testing.assert_array_equal(h.values, counts[:, i])
        res = 128.0 if i == 2 else 4.0
        assert h.attrs["resolution_ps"] == res and h.attrs["curve"] == i
        np.testing.assert_array_equal(h["time"].values, np.arange(50) * res)
        assert h["time"].attrs["units"] == "ps"
        assert h.attrs["memory_block"] == 4 * i and h.attrs["device"] == "HydraHarp 400"
        assert h.attrs["format"] == "PicoQuant ASCII" and h.attrs["source"] == str(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda t: t.replace("#channels per curve\n50", "#channels per curve\n60"),
            "header says 60 bins per curve, found 50 rows",
        ),
        (lambda t: t.replace("#ns/bin", "#ps/bin"), r"no '#ns/bin' line"),
        (
            lambda t: t.replace("0.1280\t", "0.1280\t0.1280\t"),
            r"4 curves in '#ns/bin' but count rows have \[3\] columns",
        ),
        (lambda t: t.replace("#counts", "#cnts"), r"expected '#counts'"),
        (lambda t: t[: t.rindex("\n", 0, -1)] + "\n7\t8\n", r"count rows have \[2, 3\] columns"),
        (lambda t: t.replace("0.0040", "0"), "bin widths must be positive"),
    ],
)
def test_pq_ascii_problems(tmp_path, mutate, message):
    counts = np.arange(150).reshape(50, 3)
    path = tmp_path / "bad.dat"
    path.write_text(mutate(pq_ascii(counts, ["0.0040", "0.0040", "0.1280"])))
    with pytest.raises(ValueError, match=rf"bad\.dat: .*{message}"):
        read_histogram(path)


def test_phu(tmp_path):
    curves = [np.array([0, 5, 100, 7], np.uint32), np.arange(10, dtype=np.uint32) * 3]
    path = w.write_phu(tmp_path / "h.phu", curves, [4e-12, 1.28e-10])
    hs = read_histogram(path)
    assert [h.attrs["resolution_ps"] for h in hs] == pytest.approx([4.0, 128.0])
    for h, c in zip(hs, curves, strict=True):
        np.testing.assert_array_equal(h.values, c)
        np.testing.assert_allclose(h["time"].values, np.arange(c.size) * h.attrs["resolution_ps"])
        assert h.attrs["format"] == "PHU"
    assert hs[1].attrs["HistResDscr_HistogramBins"] == 10  # the curve's own descriptor
    assert hs[1].attrs["HistoResult_NumberOfCurves"] == 2
    cut = w.write_phu(tmp_path / "cut.phu", curves, [4e-12, 1.28e-10], truncate=8)
    with pytest.raises(ValueError, match=r"cut\.phu: truncated PHU file: curve 1"):
        read_histogram(cut)


def test_phu_attrs_survive_netcdf(tmp_path):
    path = w.write_phu(tmp_path / "h.phu", [np.arange(5, dtype=np.uint32)], [8e-12])
    h = read_histogram(path)[0]
    h.to_netcdf(tmp_path / "h.nc")
    import xarray as xr

    back = xr.open_dataarray(tmp_path / "h.nc")
    xr.testing.assert_identical(back.load(), h)
    back.close()


@pytest.mark.parametrize(
    ("text", "kw"),
    [
        ("time_ns,counts\n0.0,3\n0.5,4\n1.0,5\n", {}),
        ("Time (ns);Counts\n0;3\n0.5;4\n1;5\n", {}),
        ("# exported\nt [ps]\tcounts\n0\t3\n500\t4\n1000\t5\n", {}),
        ("0 3\n0.5 4\n1.0 5\n", {"time_unit": "ns"}),
    ],
)
def test_two_column_csv(tmp_path, text, kw):
    path = tmp_path / "d.csv"
    path.write_text(text)
    (h,) = read_histogram(path, **kw)
    np.testing.assert_array_equal(h.values, [3, 4, 5])
    np.testing.assert_allclose(h["time"].values, [0.0, 500.0, 1000.0])
    assert h.attrs["resolution_ps"] == pytest.approx(500.0) and h.attrs["format"] == "CSV"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n0,1\n1,2\n", "time unit of the first column unknown"),
        ("time_ns,counts\n0,1\n1,2\n3,4\n", "time column is not uniformly spaced"),
        ("time_ns,counts\n0,1\n1,2,3\n", "data row 2 has 3 columns"),
        ("time_ns,counts\n0,1\n1,x\n", "unreadable number"),
        ("time_ns,counts\n0,1\n", "need at least two bins"),
        ("time_ns,counts\n0,1\n1,-2\n", "curve 0 holds negative or non-integer counts"),
    ],
)
def test_csv_problems(tmp_path, text, message):
    path = tmp_path / "e.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"e\.csv: {message}"):
        read_histogram(path)


def test_photon_file_is_not_a_histogram(tmp_path):
    truth = w.encode_t2("PicoHarpT2", [(5, w.PHOTON, 0)])
    path = w.write_ptu(tmp_path / "p.ptu", "PicoHarpT2", truth.records, global_resolution_s=4e-12)
    with pytest.raises(ValueError, match=r"p\.ptu: a PTU photon file: read it with read_photons"):
        read_histogram(path)


@pytest.mark.data
def test_real_hydraharp_export(data_file):
    """README: 8 curves x 65 536 bins; curves 0-3 4 ps bins, 4-7 128 ps; curves 0-1 about 40 M
    counts (laser / IRF), 2-3 about 1.1 M, 4-7 2.2-3.1 M. The fall to 1/e of the peak, a few
    hundred ps for the decays, checks each curve got its own bin width (a 32x mix-up would put
    it at ~8 ps or ~8 ns)."""
    hs = read_histogram(data_file("fitmydata_demo_lifetime.dat"))
    assert len(hs) == 8
    assert [h.attrs["resolution_ps"] for h in hs] == [4.0] * 4 + [128.0] * 4
    assert all(h.sizes["time"] == 65_536 for h in hs)
    sums = [int(h.sum()) for h in hs]
    assert all(38e6 < s < 45e6 for s in sums[:2])
    assert all(1.0e6 < s < 1.2e6 for s in sums[2:4])
    assert all(2.1e6 < s < 3.2e6 for s in sums[4:])
    for h in hs[2:]:
        y, t = h.values, h["time"].values
        k = int(np.argmax(y))
        fall = t[k + np.flatnonzero(y[k:] < y[k] / np.e)[0]] - t[k]
        assert 100 < fall < 600, (h.attrs["curve"], fall)
    assert hs[7]["time"].values[-1] == 65_535 * 128.0
