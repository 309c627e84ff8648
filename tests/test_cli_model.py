"""The forward-model command line (`qdsim sweep`, `solve`, `info`, `plot`), as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import qdsim
from qdsim.cli import main


@pytest.fixture(autouse=True)
def _no_cache_in_this_process(monkeypatch):
    """In-process calls must not switch this test session's JAX to a persistent cache in $HOME."""
    monkeypatch.setenv("QDSIM_JAX_CACHE", "off")


def _run(*args, env=None):
    """Run `qdsim ARGS` in a fresh interpreter (what the console script does)."""
    cmd = [sys.executable, "-c", "from qdsim.cli import main; main()", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def test_sweep_writes_the_dataset_and_figure_and_reuses_compiled_kernels(tmp_path):
    """The README's main job on a small grid: netCDF + PNG + a summary line; the second run
    finds the compiled kernel in the persistent cache ($QDSIM_JAX_CACHE) instead of compiling."""
    cache = tmp_path / "cache"
    env = {**os.environ, "QDSIM_JAX_CACHE": str(cache), "JAX_PLATFORMS": "cpu"}
    nc, png = tmp_path / "pd.nc", tmp_path / "pd.png"
    args = ("sweep", "--radius", "2:7:6", "--x", "0:0.9:4", "-o", nc, "--plot", png)
    first = _run(*args, "--no-progress", env=env)
    assert first.returncode == 0, first.stderr
    assert "wrote" in first.stdout and "24 points" in first.stdout
    assert png.stat().st_size > 10_000
    with xr.open_dataset(nc, engine="h5netcdf") as ds:
        assert ds.emission_energy.dims == ("radius", "x") and ds.emission_energy.shape == (6, 4)
        assert np.isfinite(ds.emission_energy.values[:, 0]).all()
    cached = sorted(p.name for p in cache.iterdir())
    assert cached, "no compiled kernel was cached"
    again = _run(*args, "--no-progress", env=env)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in cache.iterdir()) == cached  # reused, nothing new compiled
    off = _run(*args, "--no-progress", env={**env, "QDSIM_JAX_CACHE": "off"})
    assert off.returncode == 0, off.stderr


def test_solve_prints_every_output_with_units(capsys):
    main(["solve", "--radius", "5", "--x", "0.3"])
    out = capsys.readouterr().out
    for name in ("energy_eV", "dark_bright_eV", "radiative_lifetime_s", "lam_nm", "status"):
        assert name in out
    assert "meV" in out and "nm" in out


def test_info_lists_parameters_with_sources(capsys):
    main(["info"])
    out = capsys.readouterr().out
    assert "FAPbI3" in out and "FAPbBr3" in out and "uncalibrated" in out.lower()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", "--radius", "5:2:x"], "--radius: num (the third field"),
        (["sweep", "--radius", "5:2"], "--radius: expected 'start:stop:num'"),
        (["sweep", "--radius", "a:2:4"], "--radius: expected 'start:stop:num'"),
        (["sweep", "--radius", "1.5:8:0"], "--radius: num (the third field of 'start:stop:num') "),
        (["sweep", "--radius", "-1:5:10"], "--radius: radii (nm) must be > 0, got -1"),
        (["sweep", "--x", "0:1.5:4", "--radius", "3"], "--x: Br fractions must be <= 1, got 1.5"),
        (["sweep", "--f-v", "0.3:1.2:3"], "--f-v: valence-band shares must be <= 1"),
        (["sweep", "--mass-ratio", "-2"], "--mass-ratio: hole-to-electron mass ratios must be > 0"),
        (["sweep", "--bowing", "nan"], "--bowing: values must be finite"),
        (["sweep", "--device", "tpu"], "--device: expected cpu, gpu or auto"),
        (["sweep", "--ansatz", "hylleraas"], "--ansatz: expected product or correlated, got 'hyl"),
        (["sweep", "--n-quad", "1"], "--n-quad: must be >= 2, got 1"),
        (["sweep", "-o", "/no/such/dir/pd.nc"], "does not exist"),
        (["sweep", "-o", "/proc/pd.nc"], "--output /proc/pd.nc: cannot write in /proc"),
        (["sweep", "-o", "pd.csv"], "unknown output format '.csv'; use .nc"),
        (["sweep", "--plot", "pd.nc"], "--plot pd.nc: expected a .png"),
        (["solve", "--radius", "0.5", "--x", "0.3"], "R = 0.5 nm"),
        (["solve", "--radius", "5", "--x", "1.0"], "at x = 1 the dot has the matrix's compos"),
        (["solve", "--radius", "-5", "--x", "0.3"], "--radius: the dot radius must be > 0 nm"),
        (["plot", "missing.nc"], "missing.nc: no such file"),
        (["plot", "notes.txt"], "notes.txt: cannot be read as a netCDF file written by"),
        (["plot", "other.zarr"], "other.zarr: not a qdsim sweep store"),
        (["plot", "notes.txt", "-o", "fig.txt"], "--output fig.txt: expected a .png"),
    ],
)
def test_bad_input_is_one_line_and_status_2(args, message, capsys, tmp_path, monkeypatch):
    """Expected errors: one line naming the flag or file and what is wrong, exit status 2,
    nothing written (checked before any work)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a sweep\n")
    (tmp_path / "other.zarr").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qdsim: error:") and message in err and "\n" not in err, err
    assert "np.float64" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


SMALL = ("--radius", "2:7:16", "--x", "0:0.9:12", "--chunk-points", "8", "--no-progress")


def test_sweep_to_zarr_with_an_extra_axis_then_plot_and_map(tmp_path, capsys):
    """`qdsim sweep -o pd.zarr --f-v 0.3:0.7:3` adds an f_v dim; the same command again finds
    the store complete and solves nothing; another grid is refused with the store left intact;
    `qdsim plot` draws a panel per f_v value, one with --select, and a --map of any variable."""
    store = tmp_path / "pd.zarr"
    args = ["sweep", *SMALL, "--f-v", "0.3:0.7:3", "--block-rows", "4", "-o", str(store)]
    main(args)
    assert "wrote" in capsys.readouterr().out
    ds = xr.open_dataset(store, engine="zarr", consolidated=False)
    assert ds.emission_energy.dims == ("radius", "x", "f_v") and ds.sizes["f_v"] == 3
    ref = qdsim.phase_diagram(
        np.linspace(2, 7, 16), np.linspace(0, 0.9, 12), f_v=np.linspace(0.3, 0.7, 3), chunk_points=8
    )
    for name in ref.data_vars:
        np.testing.assert_array_equal(ds[name].values, ref[name].values)
    main(args)  # complete: nothing to do, same file
    with pytest.raises(SystemExit):
        main(["sweep", *SMALL, "--f-v", "0.3:0.7:4", "--block-rows", "4", "-o", str(store)])
    assert "another grid" in capsys.readouterr().err
    np.testing.assert_array_equal(
        xr.open_dataset(store, engine="zarr", consolidated=False).emission_energy.values,
        ds.emission_energy.values,
    )
    for extra in ([], ["--select", "f_v=0.5"], ["--map", "dark_bright_splitting"]):
        png = tmp_path / f"fig{len(extra)}.png"
        main(["plot", str(store), "-o", str(png), *extra])
        assert png.stat().st_size > 10_000
    with pytest.raises(SystemExit):
        main(["plot", str(store), "--select", "bowing_Eg=0.1"])
    assert "no extra dim 'bowing_Eg'" in capsys.readouterr().err


def test_parse_range():
    from qdsim.cli.model import parse_range

    np.testing.assert_array_equal(parse_range("1:2:3", "r"), [1.0, 1.5, 2.0])
    np.testing.assert_array_equal(parse_range(" 4 ", "r"), [4.0])
    np.testing.assert_array_equal(parse_range("1:2:1", "r"), [1.0])
