"""Sweeps to disk (issue 15; architecture.md §4.2): zarr stores written block by block that resume
after a kill, refusal of a store made by another run, atomic netCDF, output checks before work."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import xarray as xr
import zarr

import qdsim
from qdsim.sweep import phase_diagram as pd

R = np.linspace(2.0, 7.0, 16)
X = np.linspace(0.0, 0.9, 12)
KW = {"chunk_points": 8, "block_rows": 2}  # 8 blocks of 2 x 12 points, 3 chunks each


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    """Identical data, coords and attributes, bit for bit, except the creation time."""
    a, b = a.load().copy(), b.load().copy()
    a.attrs.pop("created"), b.attrs.pop("created")
    xr.testing.assert_identical(a, b)
    for name in a.data_vars:  # assert_identical treats NaN == NaN; bits too
        np.testing.assert_array_equal(a[name].values.view(np.uint8), b[name].values.view(np.uint8))


def _done(path) -> np.ndarray:
    return np.asarray(zarr.open_array(path / "qdsim_progress" / "chunk_done")[:]) == 1


@pytest.fixture(scope="module")
def ref():
    """The uninterrupted in-memory sweep."""
    return qdsim.phase_diagram(R, X, **KW)


def test_zarr_store_equals_in_memory_and_netcdf(ref, tmp_path):
    """Streaming to zarr changes nothing: the store reads back identical to the in-memory sweep
    (and to its netCDF file), chunked by blocks of rows, all blocks marked done; blocks of rows
    change nothing either (the same chunks of points are solved)."""
    z = qdsim.phase_diagram(R, X, store=tmp_path / "pd.zarr", **KW)
    _same(z, ref)
    assert z.emission_energy.encoding["chunks"] == (2, 12)
    assert _done(tmp_path / "pd.zarr").all()
    nc = qdsim.phase_diagram(R, X, store=tmp_path / "pd.nc", **KW)
    _same(nc, ref)
    with xr.open_dataset(tmp_path / "pd.nc", engine="h5netcdf") as back:
        _same(back, ref)
    _same(qdsim.phase_diagram(R, X, chunk_points=8), ref)  # one block


def test_two_passes_run_per_block(tmp_path, monkeypatch):
    """A grid of several blocks of >= 4096 points keeps the two-pass speed-up in each block
    (two `_solve_points` calls per block) and streams to zarr identically to memory; against
    one pass over the whole grid only the Newton starting points differ (energies to 1e-10)."""
    r, x = np.linspace(1.5, 8.0, 128), np.linspace(0.0, 1.0, 64)
    calls = []
    solve = pd._solve_points
    monkeypatch.setattr(pd, "_solve_points", lambda *a, **k: calls.append(1) or solve(*a, **k))
    z = qdsim.phase_diagram(r, x, block_rows=64, store=tmp_path / "big.zarr")
    assert len(calls) == 4  # 2 blocks x 2 passes
    mem = qdsim.phase_diagram(r, x, block_rows=64)
    _same(z, mem)
    whole = qdsim.phase_diagram(r, x)  # one block, two passes over the whole grid
    np.testing.assert_array_equal(whole.status.values, mem.status.values)
    np.testing.assert_allclose(mem.emission_energy, whole.emission_energy, rtol=1e-10)
    np.testing.assert_allclose(mem.lam, whole.lam, rtol=5e-8)


_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import qdsim

    def progress(done, total):
        print(done, flush=True)
        time.sleep(0.15)

    R, X = np.linspace(2.0, 7.0, 16), np.linspace(0.0, 0.9, 12)
    qdsim.phase_diagram(R, X, chunk_points=8, block_rows=2, store=sys.argv[1], progress=progress)
    print("finished", flush=True)
    """
)


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    """A compilation cache shared by the killed processes (the second one skips compiling)."""
    return tmp_path_factory.mktemp("jax_cache")


@pytest.mark.parametrize("kill_after", [9, 13], ids=["solved-not-written", "mid-block"])
def test_sigkill_then_rerun_is_bit_identical(ref, tmp_path, kill_after, monkeypatch, jax_cache):
    """A real sweep process killed with SIGKILL mid-sweep (after 9 chunks: the third block is
    solved but not yet written; after 13: inside the fifth block) leaves a store with some blocks
    marked done; rerunning the same call solves only the missing blocks and ends bit-identical to
    an uninterrupted run."""
    store = tmp_path / "pd.zarr"
    script = tmp_path / "sweep.py"
    script.write_text(_SCRIPT)
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(jax_cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        for _ in range(kill_after):
            line = proc.stdout.readline()
            assert line and line.strip() != "finished"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    done = _done(store)
    assert 0 < done.sum() < done.size
    with xr.open_dataset(store, engine="zarr", consolidated=False) as partial:
        assert partial.attrs["failed_points"] == -1  # marked unfinished
        assert (partial.status.values == -1).any()  # unsolved points say so
    from qdsim.cli import main

    with pytest.raises(SystemExit) as exc:  # `qdsim plot` refuses an unfinished store
        main(["plot", str(store), "-o", str(tmp_path / "fig.png")])
    assert exc.value.code == 2 and not (tmp_path / "fig.png").exists()
    seen = []
    calls = []
    solve = pd._solve_points
    monkeypatch.setattr(pd, "_solve_points", lambda *a, **k: calls.append(1) or solve(*a, **k))
    out = qdsim.phase_diagram(R, X, store=store, progress=lambda d, t: seen.append(d), **KW)
    assert len(calls) == (~done).sum()  # only the missing blocks (one pass each)
    assert seen[0] == 24 * done.sum() and seen[-1] == R.size * X.size
    _same(out, ref)
    assert _done(store).all()


def test_written_but_unmarked_block_is_recomputed(ref, tmp_path):
    """A kill between a block's data and its mark leaves the region written (possibly in part)
    and unmarked: the rerun overwrites it with the same numbers."""
    store = tmp_path / "pd.zarr"
    qdsim.phase_diagram(R, X, store=store, **KW)
    g = zarr.open_group(store, mode="r+")
    g["emission_energy"][4:6] = 123.0  # block 2 torn
    g["status"][4:5] = -1
    g["qdsim_progress"]["chunk_done"][2] = 0
    _same(qdsim.phase_diagram(R, X, store=store, **KW), ref)


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"radius_nm": np.linspace(2.0, 7.0, 17)}, "grid"),
        ({"x": X + 0.01}, "grid"),
        ({"config": qdsim.SolverConfig(n_quad=10)}, "solver config"),
        ({"block_rows": 4}, "chunking"),
        ({"f_v": 0.4}, "overrides"),
        ({"material": True}, "material values"),
    ],
)
def test_store_from_another_run_is_refused(tmp_path, change, what, monkeypatch):
    """No silent mixing: a store made with another grid, solver config, chunking, override or
    material set is refused in one line naming what differs, before any solving, and left as
    it was."""
    store = tmp_path / "pd.zarr"
    qdsim.phase_diagram(R, X, store=store, **KW)
    before = (store / "emission_energy" / "c" / "0" / "0").read_bytes()
    kw = {"radius_nm": R, "x": X, **KW}
    if change.pop("material", False):
        system = qdsim.load_system()
        values = {**system.values, "f_v": system.values["f_v"] + 1e-9}
        kw["system"] = dataclasses.replace(system, values=values)
    kw.update(change)
    monkeypatch.setattr(pd, "_solve_points", lambda *a, **k: pytest.fail("solved"))
    with pytest.raises(ValueError, match=f"another {what}") as exc:
        qdsim.phase_diagram(**kw, store=store)
    assert "\n" not in str(exc.value) and str(store) in str(exc.value)
    assert (store / "emission_energy" / "c" / "0" / "0").read_bytes() == before


def test_store_key_names_the_material_hash(tmp_path):
    """The store records the SHA-256 of every material file (what a changed file is refused
    by) along with the grid and solver config."""
    store = tmp_path / "pd.zarr"
    qdsim.phase_diagram(R[:2], X[:2], store=store, chunk_points=8)
    key = json.loads(zarr.open_group(store / "qdsim_progress").attrs["qdsim_store_key"])
    files = json.loads(qdsim.load_system().provenance()["material_files"])
    assert key["material hash"] == files and set(key["grid"]) == {"radius", "x"}


def test_foreign_directory_and_bad_paths_are_refused_before_work(tmp_path, monkeypatch):
    """An existing directory that is not a qdsim store is never written into; an unknown suffix,
    a missing directory and an unwritable place fail before any point is solved."""
    monkeypatch.setattr(pd, "_solve_points", lambda *a, **k: pytest.fail("solved"))
    foreign = tmp_path / "data.zarr"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    cases = [
        (foreign, "not a qdsim sweep store"),
        (tmp_path / "pd.txt", "unknown output format"),
        (tmp_path / "pd", "unknown output format"),
        (tmp_path / "no" / "pd.zarr", "does not exist"),
        ("/proc/pd.nc", "cannot write"),
        (tmp_path, "unknown output format"),
    ]
    for path, message in cases:
        with pytest.raises(ValueError, match=message):
            qdsim.phase_diagram(R, X, store=path)
    assert sorted(p.name for p in foreign.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.zarr"]


def test_netcdf_is_written_atomically(ref, tmp_path, monkeypatch):
    """A netCDF write that dies half-way leaves the previous file intact and no partial file
    under the final name (written to a temporary name, then renamed)."""
    path = tmp_path / "pd.nc"
    path.write_bytes(b"previous")

    def dies(self, target, **kw):
        with open(target, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n truncated")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", dies)
    with pytest.raises(KeyboardInterrupt):
        qdsim.phase_diagram(R, X, store=path, **KW)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["pd.nc"]
