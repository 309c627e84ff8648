"""Blocks of a sweep solved by Dask workers (architecture.md §4.3).

`scheduler="tcp://host:8786"` connects to a running Dask scheduler; `workers=N` starts a
`LocalCluster` of N single-threaded worker processes for the sweep and closes it after. Each task
solves one block of radii with the same code as the local loop (`_block_data`), so each worker
compiles the kernel once and the numbers are identical to a local run; with a zarr store the
worker writes its block's region and the client marks the block done when the task returns
(a killed run resumes like a local one). Dask is imported here only (optional dependency:
`pip install "qdsim[distributed]"`).
"""

from __future__ import annotations

from collections.abc import Callable


def _client(scheduler: str | None, workers: int | None):
    """(client, cluster or None) for a scheduler address or a number of local processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(
            "scheduler= / workers= need Dask: pip install 'qdsim[distributed]'"
        ) from None
    if scheduler is not None and workers is not None:
        raise ValueError(
            "give either scheduler (an address) or workers (local processes), not both"
        )
    if scheduler is not None:
        return Client(scheduler), None
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(cluster), cluster


def run_blocks(
    spec,
    todo: list[int],
    *,
    scheduler: str | None,
    workers: int | None,
    finished: Callable[[int, dict | None], None],
    report: Callable,
    done0: int,
) -> None:
    """Solve blocks `todo` of `spec` on Dask workers; call `finished(i, data)` for each as it
    completes (data None when the worker wrote it to the store) and `report(points done)`."""
    from dask.distributed import as_completed

    from qdsim.sweep.phase_diagram import _solve_and_write

    client, cluster = _client(scheduler, workers)
    try:
        row = 1
        for a in list(spec.axes.values())[1:]:
            row *= a.size
        spec_f = client.scatter(spec, broadcast=True)
        futures = client.map(_solve_and_write, [spec_f] * len(todo), todo, pure=False)
        done = done0
        for fut in as_completed(futures):
            i, data = fut.result()
            finished(i, data)
            r0, r1 = spec.blocks[i]
            done += row * (r1 - r0)
            report(done)
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
