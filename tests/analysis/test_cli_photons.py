"""The `qdsim g2` and `qdsim lifetime` verbs on synthetic PTU / PHU files and the real files."""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr

from qdsim import analysis
from tests.analysis import ptu_writer as w
from tests.analysis.synth_photons import (
    cw_source,
    decay_t3,
    irf_histogram,
    pulsed_source,
    write_t2_ptu,
    write_t3_ptu,
)


def run_cli(args, capsys):
    from qdsim.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def pulsed_file(tmp_path_factory):
    s, truth = pulsed_source(3, duration_s=0.01, dark_cps=2000)
    return write_t2_ptu(tmp_path_factory.mktemp("g2") / "pulsed.ptu", s), truth


@pytest.fixture(scope="module")
def t3_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("t3")
    s, truth = decay_t3(4, n_photons=100_000)
    path = write_t3_ptu(d / "decay.ptu", s, 8)
    _, irf = irf_histogram(5)
    irf_path = w.write_phu(d / "irf.phu", [irf.astype(np.uint32)], [8e-12])
    return path, irf_path, truth


def test_cli_g2_pulsed(pulsed_file, tmp_path, capsys):
    """Pulsed g2 of a PTU file: prints g2(0) (fit and area ratio) near the source's 0.1, writes
    the same counts as the library call, a netCDF with the fit, and a figure."""
    path, truth = pulsed_file
    nc, png = tmp_path / "g2.nc", tmp_path / "g2.png"
    args = ["g2", path, "--channels", "0", "1", "--bin", "64ps", "--window", "50ns", "--pulsed"]
    code, out, err = run_cli([*args, "-o", nc, "--plot", png], capsys)
    assert code == 0, err
    m = re.search(r"g2\(0\) = ([\d.]+) ± ([\d.]+) \(fit\)", out)
    assert m, out
    g0, e0 = float(m.group(1)), float(m.group(2))
    assert abs(g0 - truth["g2_0"]) < 4 * e0
    assert "(raw area ratio)" in out and "period" in out
    ds = xr.load_dataset(nc)
    ref = analysis.g2(analysis.read_photons(path), bin_ps=64, window_ps=50_000, normalize=False)
    np.testing.assert_array_equal(ds["counts"].values, ref.values)
    assert ds.attrs["normalize"] == "pulsed" and ds.attrs["fit_g2_0"] == pytest.approx(g0, abs=1e-4)
    assert "g2_fit" in ds and png.stat().st_size > 10_000


def test_cli_g2_cw(tmp_path, capsys):
    s, truth = cw_source(6, background_fraction=0.25, duration_s=5e-4)
    path = write_t2_ptu(tmp_path / "cw.ptu", s)
    code, out, err = run_cli(
        ["g2", path, "--bin", "64ps", "--window", "20ns", "--sigma", "71ps"], capsys
    )
    assert code == 0, err
    m = re.search(r"g2\(0\) = ([\d.]+) ± ([\d.]+) \(fit\)", out)
    assert m and abs(float(m.group(1)) - truth["g2_0"]) < 4 * float(m.group(2)), out
    assert "tau_r = " in out
    code, out, err = run_cli(["g2", path, "--bin", "64ps", "--window", "20ns", "--no-fit"], capsys)
    assert code == 0 and "g2(0)" not in out


def test_cli_lifetime_t3_with_phu_irf(t3_files, tmp_path, capsys):
    """T3 photons + PHU IRF: the wrapped-tail reconvolution recovers 246 ps within 4 sigma; the
    netCDF holds the same lifetime; --no-profile skips the interval."""
    path, irf_path, truth = t3_files
    nc, png = tmp_path / "d.nc", tmp_path / "d.png"
    code, out, err = run_cli(["lifetime", path, "--irf", irf_path, "-o", nc, "--plot", png], capsys)
    assert code == 0, err
    assert "warning" not in err  # a fit that describes the data raises no quality warning
    m = re.search(r"tau1 = ([\d.]+) ± ([\d.]+) ps, 68.3 % profile CI", out)
    assert m, out
    tau, err_ = float(m.group(1)), float(m.group(2))
    assert abs(tau - 246.0) < 4 * err_
    assert f"period {truth['period_ps']:.6g} ps" in out
    ds = xr.load_dataset(nc)
    assert float(ds["lifetime"][0]) == pytest.approx(tau, rel=1e-4)
    assert png.stat().st_size > 10_000
    code, out, err = run_cli(["lifetime", path, "--no-profile", "--bin", "16ps"], capsys)
    assert code == 0, err
    assert "Gaussian IRF" in out and "profile CI" not in out and "bins of 16 ps" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["g2", "{t2}", "--bin", "64"], "--bin: cannot read duration '64'"),
        (["g2", "{t2}", "--window", "0ns"], "--window: duration '0ns' must be positive"),
        (["g2", "{phu}"], "not a photon file"),
        (["g2", "{t2}", "-o", "/nonexistent/dir/x.nc"], "directory /nonexistent/dir does not"),
        (["g2", "{missing}"], "no such file"),
        (["g2", "{t2}", "--channels", "0", "7"], r"channel"),
        (["lifetime", "{t2}"], "T2 file has no micro times"),
        (["lifetime", "{phu2}"], "holds 2 curves; choose one with --curve"),
        (["lifetime", "{phu2}", "--curve", "5"], "no curve 5"),
        (["lifetime", "{t3}", "--n-exp", "3"], "--n-exp must be 1 or 2"),
        (["lifetime", "{t3}", "--irf", "{irf16}"], "differ from the decay's"),
    ],
)
def test_cli_errors_one_line_exit_2(pulsed_file, t3_files, tmp_path, capsys, args, message):
    t2, _ = pulsed_file
    t3, irf, _ = t3_files
    _, h = irf_histogram(5)
    files = {
        "t2": t2,
        "t3": t3,
        "phu": irf,
        "missing": tmp_path / "none.ptu",
        "phu2": w.write_phu(tmp_path / "two.phu", [h.astype(np.uint32)] * 2, [8e-12] * 2),
        "irf16": w.write_phu(tmp_path / "irf16.phu", [h.astype(np.uint32)], [16e-12]),
    }
    code, out, err = run_cli([a.format(**files) for a in args], capsys)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qdsim: error: ")
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.data
def test_cli_real_files(data_file, tmp_path, capsys):
    """The PicoHarp T2 file (pulsed classical light: area ratio ~1.1-1.3) and the HydraHarp
    histogram export (curve 2 with curve 0 as IRF)."""
    t2 = data_file("bischof_picoharp_v30_t2.ptu")
    code, out, err = run_cli(["g2", t2, "--bin", "256ps", "--window", "100ns", "--pulsed"], capsys)
    assert code == 0, err
    m = re.search(r"g2\(0\) = ([\d.]+) ± [\d.]+ \(raw area ratio\)", out)
    assert m and 1.0 < float(m.group(1)) < 1.4, out
    dat = data_file("fitmydata_demo_lifetime.dat")
    png = tmp_path / "dat.png"
    args = ["lifetime", dat, "--curve", "2", "--irf", dat, "--irf-curve", "0", "--to", "52ns"]
    code, out, err = run_cli([*args, "--no-profile", "--plot", png], capsys)
    assert code == 0, err
    m = re.search(r"tau1 = ([\d.]+) ±", out)
    assert m and 100 < float(m.group(1)) < 250, out


@pytest.mark.data
def test_cli_lifetime_warns_when_the_model_does_not_fit(data_file, capsys):
    """A multi-pulse histogram fitted as one pulse without an IRF is a poor fit: say so."""
    dat = data_file("fitmydata_demo_lifetime.dat")
    code, out, err = run_cli(["lifetime", dat, "--curve", "2", "--no-profile"], capsys)
    assert code == 0
    assert "warning: the model does not describe these data" in err
    assert "--period" in err


# --- hardening: damaged files, fits that fail, pulsed data given to the CW verb -----------------


@pytest.fixture(scope="module")
def cw_file(tmp_path_factory):
    s, truth = cw_source(6, background_fraction=0.25, duration_s=5e-4)
    return write_t2_ptu(tmp_path_factory.mktemp("cw") / "cw.ptu", s), truth


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qdsim: error: "), err
    return lines[0]


@pytest.mark.parametrize("verb", [["g2"], ["lifetime"], ["trace"]])
def test_cli_damaged_photon_file_says_what_is_wrong(pulsed_file, tmp_path, capsys, verb):
    """A cut or header-damaged photon file: the reader's cause (file, problem), not 'not a
    photon file' and not a traceback."""
    path, _ = pulsed_file
    data = path.read_bytes()
    from qdsim.analysis.photons.io import open_records

    n = open_records(path).n_records
    half = tmp_path / "half.ptu"
    half.write_bytes(data[: len(data) // 2])
    code, out, err = run_cli([*verb, half], capsys)
    assert code == 2
    line = _one_error_line(err)
    assert re.search(
        rf"half\.ptu: truncated PTU file: header says {n} records, the file holds", line
    )
    ten = tmp_path / "ten.ptu"
    ten.write_bytes(data[:10])
    code, out, err = run_cli([*verb, ten], capsys)
    assert code == 2
    assert "ten.ptu: truncated file: it ends at byte 10" in _one_error_line(err)
    # the record-count tag made an indexed tag (its index field damaged)
    tag = data.index(b"TTResult_NumberOfRecords")
    bad = bytearray(data)
    bad[tag + 35] ^= 0xFF
    hdr = tmp_path / "hdr.ptu"
    hdr.write_bytes(bytes(bad))
    code, out, err = run_cli([*verb, hdr], capsys)
    assert code == 2
    assert "hdr.ptu: corrupt header: tag TTResult_NumberOfRecords is indexed" in _one_error_line(
        err
    )


def test_cli_g2_fit_not_converged_is_no_result(cw_file, capsys):
    """CW data forced through the pulsed fit with one side peak: the fit stalls. The numbers are
    marked, the closing line says so, and the exit status is 3."""
    path, _ = cw_file
    args = ["g2", path, "--bin", "64ps", "--window", "20ns", "--sigma", "71ps", "--pulsed"]
    code, out, err = run_cli(args, capsys)
    assert code == 3, (out, err)
    assert re.search(r"g2\(0\) = [\d.]+ ± [\d.]+ \(fit\) \(NOT CONVERGED: not a result\)", out)
    last = err.strip().splitlines()[-1]
    assert last.startswith("qdsim: error: ") and "the g2 fit did not converge" in last
    assert "FitWarning" not in err and "Traceback" not in err


@pytest.mark.data
def test_cli_lifetime_fit_not_converged_exits_non_zero(data_file, capsys):
    ptu = data_file("bischof_hydraharp_v20_t3.ptu")
    code, out, err = run_cli(["lifetime", ptu, "--fit-period", "--no-profile"], capsys)
    assert code == 3, (out, err)
    assert "NOT CONVERGED: not a result" in out
    assert "the lifetime fit did not converge" in err.strip().splitlines()[-1]


def test_cli_g2_notices_pulsed_data(pulsed_file, capsys):
    """Without --pulsed, a peak train is recognised and analysed with the pulsed model."""
    path, truth = pulsed_file
    args = ["g2", path, "--channels", "0", "1", "--bin", "64ps", "--window", "50ns"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "pulsed excitation: the coincidences form peaks every" in out
    m = re.search(r"g2\(0\) = ([\d.]+) ± ([\d.]+) \(fit\)", out)
    assert m and abs(float(m.group(1)) - truth["g2_0"]) < 4 * float(m.group(2)), out
    assert "tau_r" not in out  # not the CW model


def test_cli_g2_cw_is_not_taken_for_pulsed(cw_file, capsys):
    path, truth = cw_file
    code, out, err = run_cli(["g2", path, "--window", "100ns", "--sigma", "71ps"], capsys)
    assert code == 0, err
    assert "pulsed" not in out and "tau_r = " in out


def test_cli_g2_refuses_a_fit_on_too_few_counts_per_bin(cw_file, capsys):
    path, _ = cw_file
    code, out, err = run_cli(["g2", path, "--bin", "1ps", "--window", "20ns"], capsys)
    assert code == 0, err
    assert re.search(r"fit refused: [\d.]+ coincidences per bin on average", out), out
    assert "--bin 3ps" in out and "g2(0) =" not in out


@pytest.mark.data
def test_cli_readme_g2_example_gives_a_sensible_number(data_file, capsys):
    """The README's example: pulsed classical light (area ratio ~1.1), ~2 coincidences per 64 ps
    bin. The CW model used to lock onto a pulse peak and report g2(0) = 3.12 +- 0.60."""
    t2 = data_file("bischof_picoharp_v30_t2.ptu")
    args = ["g2", t2, "--channels", "0", "1", "--bin", "64ps", "--window", "50ns"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "pulsed excitation" in out
    m = re.search(r"g2\(0\) = ([\d.]+) ± ([\d.]+) \(raw area ratio\)", out)
    assert m and 1.0 < float(m.group(1)) < 1.3 and float(m.group(2)) < 0.1, out
    assert "fit refused" in out and "(fit)" not in out


def test_cli_records_left_unread_are_one_warning_line(tmp_path, capsys):
    tr = w.encode_t2(
        "HydraHarp2T2", [(5, w.PHOTON, 0), (9_000_000, w.PHOTON, 1), (20_000_000, w.PHOTON, 0)]
    )
    path = w.write_ptu(
        tmp_path / "short.ptu", "HydraHarp2T2", tr.records, global_resolution_s=1e-12,
        number_of_records=2,
    )  # fmt: skip
    code, out, err = run_cli(["trace", path, "--bin", "1us"], capsys)
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("qdsim: warning: ") and "short.ptu: the header says 2 records" in err
