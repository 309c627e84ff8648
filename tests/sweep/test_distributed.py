"""Dask-distributed sweeps (issue 15; architecture.md §4.3): a 2-process LocalCluster solves the
blocks and writes them into the zarr store; the numbers are identical to a local run.

Marked slow: starting two worker processes and compiling the kernel in each takes ~30-50 s on
2 shared cores."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import qdsim

distributed = pytest.importorskip("dask.distributed")

R = np.linspace(2.0, 7.0, 16)
X = np.linspace(0.0, 0.9, 12)
KW = {"chunk_points": 8, "block_rows": 2}


def _same(a, b):
    a, b = a.load().copy(), b.load().copy()
    a.attrs.pop("created"), b.attrs.pop("created")
    xr.testing.assert_identical(a, b)


@pytest.mark.slow
def test_two_process_cluster_equals_local_run(tmp_path):
    """Blocks solved by two worker processes (each writing its regions into the shared store,
    the client marking them done) give exactly the local numbers, to a store and in memory; a
    store half written locally is finished by the cluster."""
    ref = qdsim.phase_diagram(R, X, **KW)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        z = qdsim.phase_diagram(R, X, store=tmp_path / "pd.zarr", scheduler=address, **KW)
        _same(z, ref)
        _same(qdsim.phase_diagram(R, X, scheduler=address, **KW), ref)
        # resume: a store whose blocks 0-3 were written locally, finished by the cluster
        local = tmp_path / "half.zarr"
        qdsim.phase_diagram(R, X, store=local, **KW)
        import zarr

        done = zarr.open_array(local / "qdsim_progress" / "chunk_done", mode="r+")
        done[4:] = 0
        _same(qdsim.phase_diagram(R, X, store=local, scheduler=address, **KW), ref)


def test_scheduler_and_workers_are_exclusive():
    with pytest.raises(ValueError, match="either scheduler"):
        qdsim.phase_diagram(R[:2], X[:2], scheduler="tcp://127.0.0.1:1", workers=2, **KW)
