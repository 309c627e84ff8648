"""Intensity traces, the duration parser, the trace figure and the `qdsim trace` verb."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qdsim import analysis
from qdsim.analysis.photons.io import iter_photons, read_photons
from qdsim.analysis.photons.trace import intensity_trace
from qdsim.analysis.units import UNITS_PS, format_duration_ps, parse_duration_ps
from tests.analysis import ptu_writer as w

# --- parse_duration_ps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ps"),
    [
        ("64ps", 64),
        ("50ns", 50_000),
        ("50 ns", 50_000),
        ("10ms", 10_000_000_000),
        ("1s", 10**12),
        ("2.5us", 2_500_000),
        ("2.5µs", 2_500_000),
        ("0.1ns", 100),  # exact: no binary floating point on the way
        ("1e-3s", 10**9),
        (".5ms", 500_000_000),
        ("5min", 300 * 10**12),
        ("1h", 3600 * 10**12),
    ],
)
def test_parse_duration(text, ps):
    assert parse_duration_ps(text) == ps
    assert isinstance(parse_duration_ps(text), int)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", "expected a number and a unit"),
        ("ms", "expected a number and a unit"),
        ("10 kg", "unknown unit 'kg'"),
        ("10 MS", "unknown unit 'MS'"),
        ("-5ms", "must be positive"),
        ("0s", "must be positive"),
        ("0.5ps", "not a whole number of picoseconds"),
        ("1.2.3ns", "expected a number and a unit"),
    ],
)
def test_parse_duration_rejects(text, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_duration_ps(text)
    assert repr(text) in str(info.value)


@given(st.integers(1, 10**6), st.sampled_from(sorted(UNITS_PS)), st.sampled_from(["", " "]))
def test_parse_duration_integers_property(n, unit, sep):
    assert parse_duration_ps(f"{n}{sep}{unit}") == n * UNITS_PS[unit]


@given(st.integers(1, 10**15))
def test_format_then_parse_keeps_four_digits(ps):
    back = parse_duration_ps(format_duration_ps(ps).replace(" ", ""))
    assert abs(back - ps) <= 5e-4 * ps


# --- intensity_trace -------------------------------------------------------------------------


def stream_of(times_ps, channels, duration_s, start_ps=0):
    return analysis.PhotonStream(
        time_ps=np.asarray(times_ps, np.int64),
        channel=np.asarray(channels),
        duration_s=duration_s,
        start_ps=start_ps,
        path="dot.ptu",
    )


def test_trace_counts_known_photons():
    # bins of 1 ms over 4.5 ms: 4 whole bins, the half bin at the end is dropped
    ms = 10**9
    t = [0, 1, ms - 1, ms, 2 * ms + 5, 2 * ms + 6, 2 * ms + 7, 4 * ms + 1]
    c = [0, 1, 0, 1, 0, 0, 1, 0]
    s = stream_of(t, c, 4.5e-3)
    tr = intensity_trace(s, bin_s=1e-3)
    np.testing.assert_array_equal(tr.values, [3, 1, 3, 0])
    np.testing.assert_allclose(tr["time"].values, [0, 1e-3, 2e-3, 3e-3])
    assert tr.attrs["dropped_counts"] == 1
    assert tr.attrs["bin_s"] == 1e-3 and tr.attrs["duration_s"] == pytest.approx(4e-3)
    assert tr.attrs["mean_rate_cps"] == pytest.approx(7 / 4e-3)
    assert tr["time"].attrs["units"] == "s" and tr.attrs["source"] == "dot.ptu"
    per = intensity_trace(s, bin_s=1e-3, per_channel=True)
    assert per.dims == ("channel", "time")
    np.testing.assert_array_equal(per.sel(channel=0).values, [2, 0, 2, 0])
    np.testing.assert_array_equal(per.sel(channel=1).values, [1, 1, 1, 0])
    only1 = intensity_trace(s, bin_s=1e-3, channels=[1])
    np.testing.assert_array_equal(only1.values, [1, 1, 1, 0])
    np.testing.assert_array_equal(only1.attrs["channels"], [1])


def test_trace_starts_at_the_stream_start():
    s = stream_of([5 * 10**9 + 3, 6 * 10**9 + 1], [0, 0], 2e-3, start_ps=5 * 10**9)
    tr = intensity_trace(s, bin_s=1e-3)
    np.testing.assert_array_equal(tr.values, [1, 1])
    np.testing.assert_allclose(tr["time"].values, [5e-3, 6e-3])


def test_trace_sync_events_are_not_photons():
    s = stream_of([1, 2, 3], [-1, 0, -1], 1e-3)
    assert int(intensity_trace(s, bin_s=1e-3).sum()) == 1
    assert int(intensity_trace(s, bin_s=1e-3, channels=[-1]).sum()) == 2


def test_trace_errors():
    s = stream_of([1, 2], [0, 1], 1e-3)
    with pytest.raises(
        ValueError, match=r"dot\.ptu: no photons on channel\(s\) \[3\]; present: 0 \(1\), 1 \(1\)"
    ):
        intensity_trace(s, channels=[0, 3])
    with pytest.raises(
        ValueError, match=r"dot\.ptu: recording of 0\.001 s is shorter than one 0\.01 s bin"
    ):
        intensity_trace(s, bin_s=0.01)
    with pytest.raises(ValueError, match="bin_s must be positive"):
        intensity_trace(s, bin_s=0)
    with pytest.raises(ValueError, match="exceed"):
        intensity_trace(stream_of([1], [0], 10.0), bin_s=1e-9)


def blinking_file(tmp_path):
    """A T2 file whose count rate switches between 200 and 20 kcounts/s every 10 ms (a blinking
    dot) on two detectors, 0.2 s long."""
    rng = np.random.default_rng(2)
    events, t = [], 0
    while t < 200_000_000_000:  # ticks of 1 ps
        on = (t // 10_000_000_000) % 2 == 0
        t += int(rng.exponential(5e6 if on else 5e7)) + 1
        events.append((t, w.PHOTON, int(rng.integers(0, 2))))
    events.pop()
    truth = w.encode_t2("HydraHarp2T2", events, end=200_000_000_000 + 2**25)  # overflows past 0.2 s
    return w.write_ptu(
        tmp_path / "blink.ptu", "HydraHarp2T2", truth.records, global_resolution_s=1e-12
    )


def test_trace_of_chunks_equals_trace_of_whole(tmp_path):
    path = blinking_file(tmp_path)
    whole = intensity_trace(read_photons(path), bin_s=1e-3, per_channel=True)
    chunked = intensity_trace(iter_photons(path, chunk_records=997), bin_s=1e-3, per_channel=True)
    import xarray as xr

    xr.testing.assert_identical(chunked, whole)
    assert whole.sizes["time"] == 200
    on = whole.sum("channel").values.reshape(20, 10)  # 1 ms bins, 10 per 10 ms period
    assert on[0::2].mean() > 5 * on[1::2].mean()  # ~200 vs ~20 counts per bin


# --- figure and command line -----------------------------------------------------------------


def test_plot_trace_draws_the_counts(tmp_path):
    from qdsim.plotting.trace import plot_trace

    s = stream_of([1, 2, 10**9 + 5], [0, 1, 0], 3e-3)
    tr = intensity_trace(s, bin_s=1e-3, per_channel=True)
    fig = plot_trace(tr, path=tmp_path / "t.png")
    ax = fig.axes[0]
    steps = [p for p in ax.patches if type(p).__name__ == "StepPatch"]
    assert len(steps) == 2
    np.testing.assert_array_equal(steps[0].get_data().values, [1, 1, 0])
    np.testing.assert_array_equal(steps[1].get_data().values, [1, 0, 0])
    assert "1 ms" in ax.get_ylabel()
    assert (tmp_path / "t.png").stat().st_size > 1000
    import matplotlib.pyplot as plt

    plt.close(fig)


def run_cli(args, capsys):
    from qdsim.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_trace(tmp_path, capsys):
    path = blinking_file(tmp_path)
    nc, png = tmp_path / "trace.nc", tmp_path / "trace.png"
    code, out, err = run_cli(
        ["trace", str(path), "--bin", "2ms", "-o", str(nc), "--plot", str(png)], capsys
    )
    assert code == 0, err
    assert "blink.ptu: HydraHarp2T2" in out and "100 bins of 2 ms" in out
    import xarray as xr

    saved = xr.open_dataarray(nc)
    xr.testing.assert_identical(saved.load(), intensity_trace(read_photons(path), bin_s=2e-3))
    saved.close()
    assert png.stat().st_size > 1000
    code, out, err = run_cli(
        ["trace", str(path), "--bin", "5ms", "--channels", "1", "--per-channel"], capsys
    )
    assert code == 0 and "on channel(s) 1 " in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bin", "10"], "--bin: cannot read duration '10'"),
        (["--channels", "0,9"], r"blink\.ptu: no photons on channel\(s\) \[9\]"),
        (["--channels", "a"], "--channels expects comma-separated integers"),
        (["-o", "/nonexistent/dir/t.nc"], "directory /nonexistent/dir does not exist"),
        (["--bin", "1s"], r"blink\.ptu: recording of 0\.2\d* s is shorter than one 1\.0 s bin"),
    ],
)
def test_cli_trace_errors_print_one_line_and_exit_2(tmp_path, capsys, args, message):
    path = blinking_file(tmp_path)
    code, out, err = run_cli(["trace", str(path), *args], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qdsim: error: ")
    assert __import__("re").search(message, lines[0]), lines[0]


def test_cli_trace_missing_and_foreign_files(tmp_path, capsys):
    code, _, err = run_cli(["trace", str(tmp_path / "none.ptu")], capsys)
    assert code == 2 and "none.ptu: no such file" in err
    bad = tmp_path / "decay.dat"
    bad.write_text("#HydraHarp 400  Histogram Data\n")
    code, _, err = run_cli(["trace", str(bad)], capsys)
    assert code == 2 and "decay.dat: not a photon file" in err


@pytest.mark.data
def test_real_trace(data_file):
    """The PicoHarp sample: 920 177 photons in 7.650 s -> 765 whole 10 ms bins holding all but
    the photons of the last 0.4 ms; a steady ~120 kcounts/s (classical light, no blinking)."""
    s = read_photons(data_file("bischof_picoharp_v30_t2.ptu"))
    tr = intensity_trace(s, bin_s=0.01)
    assert tr.sizes["time"] == 765
    assert int(tr.sum()) + tr.attrs["dropped_counts"] == 920_177
    assert int(tr.sum()) == int(np.sum(s.time_ps < 765 * 10**10))
    assert 110e3 < tr.attrs["mean_rate_cps"] < 130e3
