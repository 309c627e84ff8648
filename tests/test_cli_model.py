"""The forward-model command line (`qdsim sweep`, `solve`, `info`, `plot`), as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

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
        (["sweep", "--radius", "5:2:x"], "--radius: expected 'start:stop:num'"),
        (["sweep", "--x", "0:1.5:4", "--radius", "3"], "x must lie in [0.0, 1.0]"),
        (["sweep", "-o", "/no/such/dir/pd.nc"], "does not exist"),
        (["solve", "--radius", "0.5", "--x", "0.3"], "R = 0.5 nm"),
        (["plot", "missing.nc"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_status_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qdsim: error:") and message in err and "\n" not in err, err
