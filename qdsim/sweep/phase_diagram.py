"""`phase_diagram`: the forward model on a (radius, x, ...) grid, as an xarray Dataset.

The flattened grid is cut into equal chunks (the last one padded) so the kernel compiles once per
chunk size; each chunk is one jitted `vmap` call (no Python loop over points). Memory is bounded
by the chunk size. Runs in float64 whatever the JAX default.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import itertools
import json
import os
import platform
import warnings
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from qdsim._x64 import float64
from qdsim.constants import CODATA_YEAR
from qdsim.materials.loader import alloy_params
from qdsim.model.exciton import may_need_graded_rules
from qdsim.model.solve import _kernel_with_guess
from qdsim.model.types import SolverConfig, SphereSolution
from qdsim.quantities import QUANTITIES
from qdsim.status import FAILURE_MASK, flag_attrs

__all__ = ["phase_diagram"]

#: Default points per compiled chunk. Small batches keep the (points x 6 n^2 nodes) temporaries
#: in cache: measured on a 2-core CPU, 64-128 points per chunk run ~2x faster per point than 4096.
DEFAULT_CHUNK = 128
#: Chunks dispatched ahead of the one being collected (JAX dispatch is asynchronous).
_IN_FLIGHT = 4
#: On an accelerator (any device but the CPU) without `chunk_points`, the chunk is the largest
#: power of two whose in-flight chunks (`_IN_FLIGHT` + the one being collected) fit
#: `MEMORY_FRACTION` of the device's free memory, at the bytes per point that XLA's compiled
#: memory analysis gives for the kernel at `_PROBE_POINTS` points (`chunk_for_memory`).
MEMORY_FRACTION = 0.5
#: Largest chunk the memory policy picks (2^20 points, ~70 GB of temporaries at the ~67 kB per
#: point measured on CPU).
MAX_CHUNK = 1 << 20
#: Smallest chunk the memory policy picks (below it: a warning, and this chunk all the same).
MIN_CHUNK = DEFAULT_CHUNK
#: Chunk on an accelerator that reports no memory statistics (`device.memory_stats()` None or
#: without "bytes_limit"): ~0.3 GB of temporaries per chunk at ~67 kB per point.
FALLBACK_CHUNK = 4096
_PROBE_POINTS = 1024
_OVERRIDES = ("f_v", "bowing_Eg", "mass_ratio")
_FLOAT_FIELDS = tuple(f for f in SphereSolution._fields if f != "status")
#: Grids of at least this many points run in two passes: every `_COARSE_STRIDE`-th point per
#: axis first (fitted starting guess), then the rest, each starting Newton from the guess plus
#: the guess's error interpolated from its solved neighbours (median 1e-6 in log lambda, < 1e-4
#: for ~95 % of points: one lambda evaluation instead of two to three), in chunks ordered by the
#: curvature of the guess error around them. Results are the same to the Newton tolerance
#: (tests/sweep).
_TWO_PASS_MIN_POINTS = 4096
#: Points per block (default `block_rows`): grids up to 256 x 256 are one block. Two passes run
#: per block; a zarr sweep holds one block's inputs and results at a time.
_BLOCK_POINTS = 1 << 16
_COARSE_STRIDE = 4
_OVERRIDE_UNITS = {"f_v": "1", "bowing_Eg": "eV", "mass_ratio": "1"}
_OVERRIDE_NAMES = {
    "f_v": "valence-band share of the gap difference",
    "bowing_Eg": "band-gap bowing parameter",
    "mass_ratio": "hole-to-electron mass ratio at fixed reduced mass",
}


def _axis(name: str, values, lo=None, hi=None) -> np.ndarray:
    a = np.atleast_1d(np.asarray(values, dtype=float))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a scalar or a non-empty 1-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    if lo is not None and np.any(a < lo) or hi is not None and np.any(a > hi):
        if hi is None:
            what = "> 0" if lo == np.finfo(float).tiny else f">= {lo:g}"
            raise ValueError(f"{name} must be {what}, got min {a.min():g}")
        if lo is None:
            raise ValueError(f"{name} must be <= {hi:g}, got max {a.max():g}")
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got min {a.min()}, max {a.max()}")
    return a


@functools.partial(jax.jit, static_argnames=("keys", "config", "with_mass_ratio", "graded_rules"))
def _solve_chunk(
    values, inputs, *, keys, config: SolverConfig, with_mass_ratio: bool, graded_rules=True
):
    """One compiled kernel per (chunk shape, config): material numbers are traced leaves.

    Packed in and out (one array of material values in `keys` order, one (6, chunk) array of
    R, x, f_v, bowing, mass ratio and the Newton start offset ds0; one (fields + 1, chunk) float
    array, the last row the fitted guess of log lambda, and the int32 status out): one transfer
    each way per chunk instead of ~50 (a third of a millisecond of Python per chunk).
    `graded_rules=False` for chunks below the grading threshold (`_solve_points`).
    """
    vals = dict(zip(keys, values, strict=True))

    def point(R, x, fv, bEg, mr, ds0):
        p = alloy_params(vals, x, fv, bEg, mr if with_mass_ratio else None)
        return _kernel_with_guess(p, R, config, ds0, graded_rules=graded_rules)

    sol, guess = jax.vmap(point)(*inputs)
    return jnp.stack([getattr(sol, f) for f in _FLOAT_FIELDS] + [guess]), sol.status


def chunk_for_memory(
    points: int,
    bytes_per_point: float | None,
    memory_stats: Mapping[str, int] | None,
    *,
    in_flight: int = _IN_FLIGHT + 1,
    fraction: float = MEMORY_FRACTION,
    max_chunk: int = MAX_CHUNK,
    min_chunk: int = MIN_CHUNK,
) -> tuple[int, str]:
    """Points per chunk on an accelerator: pure policy, (chunk, reason) from memory numbers.

    The largest power of two `c` with `c * bytes_per_point * in_flight <= fraction * free`, where
    free = `memory_stats["bytes_limit"]` - `memory_stats.get("bytes_in_use", 0)` (the keys of
    JAX's `Device.memory_stats()`), capped at `max_chunk` and at the power of two >= `points`.
    Assumes the kernel's memory grows linearly with the chunk (XLA's memory analysis on CPU:
    66.7, 67.3 and 70.9 kB per point at 128, 1024 and 4096 points; the power-of-two floor and
    `fraction` leave room for the 6 % growth). Without memory statistics or bytes per point:
    `FALLBACK_CHUNK`. Where even `min_chunk` does not fit: a `RuntimeWarning` and `min_chunk`
    (the solve may then run out of device memory; give `chunk_points`)."""
    cap = min(max_chunk, 1 << max(0, (int(points) - 1).bit_length()))
    if not memory_stats or "bytes_limit" not in memory_stats or not bytes_per_point:
        chunk = min(FALLBACK_CHUNK, cap)
        return chunk, f"fallback: the device reports no memory statistics; {chunk} points"
    free = int(memory_stats["bytes_limit"]) - int(memory_stats.get("bytes_in_use", 0))
    fit = int(fraction * free // (bytes_per_point * in_flight))
    what = (
        f"{bytes_per_point / 1e3:.1f} kB/point (XLA memory analysis), {free / 2**30:.2f} GiB "
        f"free, {fraction:.0%} of it for {in_flight} chunks in flight: {fit} points"
    )
    if fit < min_chunk:
        warnings.warn(
            f"device memory: {what}, fewer than the minimum chunk; using {min_chunk} points "
            "(give chunk_points to choose)",
            RuntimeWarning,
            stacklevel=2,
        )
        chunk = min(min_chunk, cap)
        return chunk, f"memory: {what}; below the minimum, {chunk} points"
    chunk = min(1 << (fit.bit_length() - 1), cap)
    return chunk, f"memory: {what}; {chunk} points (cap {cap})"


@functools.lru_cache(maxsize=16)
def _bytes_per_point(dev, n_values: int, keys, config, with_mr: bool, probe=_PROBE_POINTS):
    """Device bytes per point of `_solve_chunk` on `dev`: XLA's compiled memory analysis
    (temporaries + arguments + outputs - aliased) at `probe` points, divided by `probe`; None
    where the backend gives no analysis. One compile (not run), cached per process."""
    with float64(), _on(dev):
        compiled = _solve_chunk.lower(
            jax.ShapeDtypeStruct((n_values,), jnp.float64),
            jax.ShapeDtypeStruct((6, probe), jnp.float64),
            keys=keys,
            config=config,
            with_mass_ratio=with_mr,
            graded_rules=False,  # the graded kernel's memory is the same within 0.1 % (CPU)
        ).compile()
    m = compiled.memory_analysis()
    if m is None:
        return None
    used = (
        m.temp_size_in_bytes
        + m.argument_size_in_bytes
        + m.output_size_in_bytes
        - m.alias_size_in_bytes
    )
    return used / probe if used > 0 else None


def _choose_chunk(chunk_points, n, block_points, dev, keys, config, with_mr) -> tuple[int, str]:
    """(points per chunk, why): `chunk_points` if given; on the CPU `DEFAULT_CHUNK` (fewer for
    grids smaller than it; no compile); on an accelerator `chunk_for_memory` of its free memory
    and the kernel's bytes per point, capped at the block's points."""
    if chunk_points is not None:
        if chunk_points < 1:
            raise ValueError(f"chunk_points must be >= 1, got {chunk_points}")
        return int(chunk_points), "given (chunk_points)"
    target = dev if dev is not None else jax.devices()[0]
    if target.platform == "cpu":
        chunk = min(DEFAULT_CHUNK, 1 << max(0, (n - 1).bit_length()))
        return chunk, f"CPU default: {DEFAULT_CHUNK} points (temporaries stay in cache)"
    try:
        stats = target.memory_stats()
    except Exception:  # noqa: BLE001  (backends without the call raise assorted errors)
        stats = None
    bpp = _bytes_per_point(target, len(keys), keys, config, with_mr) if stats else None
    return chunk_for_memory(block_points, bpp, stats)


def _solve_points(values, inputs, *, keys, chunk, config, with_mr, report, done0=0):
    """Solve the points in the columns of `inputs` (6, m) chunk by chunk, `_IN_FLIGHT` chunks
    dispatched ahead (the last chunk padded with copies of the last point). Returns
    ((fields + 1, m) floats, (m,) status), filled in place chunk by chunk."""
    m = inputs.shape[1]
    n_chunks = -(-m // chunk)
    floats = np.empty((len(_FLOAT_FIELDS) + 1, m))
    status = np.empty(m, dtype=np.int32)
    pending = []
    # Which chunks can reach the graded quadrature rules (R >> a_B): only those compile and run
    # them (a default-domain sweep never does). NumPy, so that a pass of any length compiles
    # nothing.
    R, x, fv, bEg, mr, _ = np.asarray(inputs, dtype=float)
    vals = dict(zip(keys, np.asarray(values, dtype=float), strict=True))
    with np.errstate(invalid="ignore"):
        p = alloy_params(vals, x, fv, bEg, mr if with_mr else None, xp=np)

    def graded(i):
        part = slice(i * chunk, (i + 1) * chunk)
        return may_need_graded_rules(p.me_in[part], p.mh_in[part], p.eps[part], R[part])

    def collect():
        i, (f, st) = pending.pop(0)
        k = min(chunk, m - i * chunk)
        floats[:, i * chunk : i * chunk + k] = np.asarray(f)[:, :k]
        status[i * chunk : i * chunk + k] = np.asarray(st)[:k]
        report(done0 + i * chunk + k)

    for i in range(n_chunks):
        part = inputs[:, i * chunk : (i + 1) * chunk]
        if part.shape[1] < chunk:
            part = np.concatenate([part, np.repeat(part[:, -1:], chunk - part.shape[1], 1)], 1)
        res = _solve_chunk(
            values,
            jnp.asarray(part, dtype=jnp.float64),
            keys=keys,
            config=config,
            with_mass_ratio=with_mr,
            graded_rules=graded(i),
        )
        pending.append((i, res))
        if len(pending) > _IN_FLIGHT:
            collect()
    while pending:
        collect()
    return floats, status


def _coarse_axes(shape) -> list[np.ndarray] | None:
    """Per-axis indices of the first-pass subgrid (every `_COARSE_STRIDE`-th point and the
    last one of axes with >= 4 strides), or None where a single pass is cheaper."""
    n = int(np.prod(shape))
    idx = [
        np.unique(np.r_[np.arange(0, L, _COARSE_STRIDE), L - 1])
        if L >= 4 * _COARSE_STRIDE
        else np.arange(L)
        for L in shape
    ]
    m = int(np.prod([len(i) for i in idx]))
    return idx if n >= _TWO_PASS_MIN_POINTS and m <= n // 4 else None


def _interpolate(coarse_idx, v_coarse, shape):
    """Multilinear interpolation (in index space) of values on the coarse subgrid (indices
    `coarse_idx` per axis) onto the full grid of `shape`; NaN values count as 0."""
    cells = []
    for c, L in zip(coarse_idx, shape, strict=True):
        i = np.arange(L)
        j = np.clip(np.searchsorted(c, i, side="right") - 1, 0, max(len(c) - 2, 0))
        j1 = np.minimum(j + 1, len(c) - 1)
        width = np.where(j1 > j, c[j1] - c[j], 1)
        cells.append((j, j1, np.clip((i - c[j]) / width, 0.0, 1.0)))
    value = np.zeros(shape)
    for corner in itertools.product((0, 1), repeat=len(shape)):
        pick = [cell[b] for cell, b in zip(cells, corner, strict=True)]
        weight = functools.reduce(
            np.multiply.outer,
            [cell[2] if b else 1.0 - cell[2] for cell, b in zip(cells, corner, strict=True)],
        )
        v = v_coarse[np.ix_(*pick)]
        value += np.where(weight > 0, weight * np.where(np.isfinite(v), v, 0.0), 0.0)
    return value


def _curvature(v):
    """Largest |second difference| along any axis at each coarse point (edge-padded), 1e3 where
    a NaN (a failed point) is involved: linear interpolation errs by <= 1/8 of it per cell."""
    c = np.zeros_like(v)
    for ax in range(v.ndim):
        if v.shape[ax] < 3:
            continue
        d2 = np.abs(np.diff(v, 2, axis=ax))
        pad = [(0, 0)] * v.ndim
        pad[ax] = (1, 1)
        c = np.fmax(c, np.pad(np.where(np.isnan(d2), 1e3, d2), pad, mode="edge"))
    return np.where(np.isnan(v), 1e3, c)


def _two_passes(solve, values, inputs, shape, coarse_idx):
    """The subgrid `coarse_idx` first, from the fitted guess; then the other points, each
    starting from the guess plus its error interpolated from the solved subgrid, the points with
    the most curved neighbourhood (or failed neighbours) last so that they share chunks: a chunk
    runs as many Newton steps as its worst point. Returns what `solve` returns, for all points."""
    n = inputs.shape[1]
    first = np.zeros(shape, dtype=bool)
    first[np.ix_(*coarse_idx)] = True
    first = first.ravel()
    f1, st1 = solve(values, inputs[:, first])
    # the guess's error where solved: log(lambda*) - fitted guess (NaN where the point failed)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.log(f1[_FLOAT_FIELDS.index("lam_nm")]) - f1[-1]
    r = r.reshape([len(i) for i in coarse_idx])
    rest = np.flatnonzero(~first)
    difficulty = _interpolate(coarse_idx, _curvature(r), shape).ravel()
    rest = rest[np.argsort(difficulty[rest], kind="stable")]
    inputs = inputs.copy()
    inputs[-1, rest] = _interpolate(coarse_idx, r, shape).ravel()[rest]
    f2, st2 = solve(values, inputs[:, rest], done0=int(first.sum()))
    floats = np.empty((f1.shape[0], n))
    status = np.empty(n, dtype=st1.dtype)
    floats[:, first], status[first] = f1, st1
    floats[:, rest], status[rest] = f2, st2
    return floats, status


def phase_diagram(
    radius_nm,
    x,
    *,
    system=None,
    f_v=None,
    bowing_Eg=None,
    mass_ratio=None,
    config: SolverConfig = SolverConfig(),
    chunk_points: int | None = None,
    progress: bool | Callable[[int, int], None] = False,
    two_pass: bool | None = None,
    store: str | os.PathLike | None = None,
    block_rows: int | None = None,
    device: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> xr.Dataset:
    """Solve the default (or given) system on the grid radius_nm x x and return a Dataset.

    **Arguments:**

    - `radius_nm`: dot radii (nm), 1-D; `x`: Br fractions in [0, 1], 1-D.
    - `system`: a `qdsim.System` (default: `qdsim.load_system()`).
    - `f_v`, `bowing_Eg` (eV), `mass_ratio` (m_h/m_e at fixed reduced mass): override the system
      value; a scalar replaces it, a 1-D array adds a dimension of that name.
    - `config`: `SolverConfig` (static).
    - `chunk_points`: points per compiled chunk. Default: 128 on the CPU (fewer for small
      grids); on a GPU (any accelerator) the largest power of two whose in-flight chunks fit
      half the device's free memory, from XLA's memory analysis of the kernel (one extra
      compile; `chunk_for_memory`), at most the points of a block. The attrs `chunk_points`
      and `chunk_reason` record the choice; a zarr store resumes only with the same chunk.
    - `progress`: True for a progress bar, or a callback `f(done_points, total_points)`.
    - `two_pass`: None (default) solves blocks of >= 4096 points in two passes, a coarse subgrid
      first and the rest started from what their solved neighbours say (1.2-1.3x faster on
      256 x 256; the same results to the Newton tolerance, `SolverConfig.lam_tol`); False always
      solves in one.
    - `store`: None (in memory), or a path: `*.zarr` streams each solved block into a zarr
      store created up front and resumes an interrupted run (only missing blocks are solved; a
      store made with another grid, config, chunking or material set is refused); `*.nc` writes
      netCDF (h5netcdf) at the end, atomically. Another suffix is a ValueError. The path is
      checked before any work.
    - `block_rows`: radii per block (default: about 2^16 points per block). A block is the unit
      of the two-pass solve, of the zarr chunks and of resuming; memory use of a zarr sweep
      grows with the block, not with the grid.
    - `device`: None (JAX's default), "cpu", "gpu" or "auto" (a GPU when JAX sees one).
    - `scheduler`: a Dask scheduler address ("tcp://host:8786"), or `workers`: a number of
      local worker processes (a `dask.distributed.LocalCluster`): blocks are solved by the
      workers (each compiles once), which write their regions into the zarr `store` (it must be
      on storage every worker sees); the client marks blocks done and shows progress. Results
      are identical to a local run. Needs `pip install "qdsim[distributed]"`.

    **Returns:** `xarray.Dataset` with dims `radius` (nm), `x` (and any array-valued override);
    variables `emission_energy`, `dark_bright_splitting`, `exchange_free_energy`,
    `binding_energy`, `electron_level`, `hole_level` (eV), `radiative_lifetime` (s), `lam` (nm),
    `contact_density` (nm-3), `overlap2` (1), each with `units`/`long_name`, and `status` (int32
    flags, 0 = ok, CF `flag_masks`/`flag_meanings`; see `qdsim.Status`). Points without a bound
    exciton (e.g. x near 1, where the dot is the matrix) hold NaN and a nonzero status. With a
    zarr `store` the Dataset is the store opened lazily (nothing loaded into memory).
    """
    from qdsim.materials.loader import load_system  # noqa: PLC0415
    from qdsim.sweep import store as _store

    if scheduler is not None and workers is not None:
        raise ValueError("give either scheduler (an address) or workers (a number), not both")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    fmt = None if store is None else _store.check_output(store)
    system = load_system() if system is None else system
    axes = {
        "radius": _axis("radius_nm", radius_nm, lo=np.finfo(float).tiny),
        "x": _axis("x", x, 0.0, 1.0),
    }
    defaults = {
        "f_v": system.values["f_v"],
        "bowing_Eg": system.values["bowing.Eg"],
        "mass_ratio": 1.0,
    }
    given = {"f_v": f_v, "bowing_Eg": bowing_Eg, "mass_ratio": mass_ratio}
    bounds = {"f_v": (0.0, 1.0), "bowing_Eg": (None, None), "mass_ratio": (1e-6, None)}
    scalars: dict[str, float] = {}
    for name in _OVERRIDES:
        v = given[name]
        if v is None:
            scalars[name] = defaults[name]
        elif np.ndim(v) == 0:
            scalars[name] = float(_axis(name, v, *bounds[name])[0])
        else:
            axes[name] = _axis(name, v, *bounds[name])
    with_mr = mass_ratio is not None

    shape = tuple(a.size for a in axes.values())
    n = int(np.prod(shape))
    row = n // shape[0]
    rows = int(block_rows or max(1, min(shape[0], _BLOCK_POINTS // row)))
    if rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    blocks = [slice(r, min(r + rows, shape[0])) for r in range(0, shape[0], rows)]
    dev = _device(device)
    keys = tuple(system.values)
    chunk, chunk_reason = _choose_chunk(chunk_points, n, row * rows, dev, keys, config, with_mr)

    dims = tuple(axes)
    coords = {
        "radius": (axes["radius"], {"units": "nm", "long_name": "dot radius"}),
        "x": (axes["x"], {"units": "1", "long_name": "Br fraction x in FAPb(I1-xBrx)3"}),
    }
    for name in _OVERRIDES:
        if name in axes:
            coords[name] = (
                axes[name],
                {"units": _OVERRIDE_UNITS[name], "long_name": _OVERRIDE_NAMES[name]},
            )
    var_attrs = {
        name: {"units": q.units, "long_name": q.long_name, "description": q.description}
        for name, q in QUANTITIES.items()
    }
    var_attrs["status"] = flag_attrs()
    attrs = {
        "title": "qdsim phase diagram: emission energy and dark-bright splitting",
        "qdsim_version": _version(),
        "jax_version": jax.__version__,
        "codata": CODATA_YEAR,
        "device": f"{dev.platform if dev is not None else jax.default_backend()} "
        f"({platform.machine()})",
        "config": json.dumps(config._asdict()),
        "chunk_points": chunk,
        "chunk_reason": chunk_reason,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "failed_points": -1,
        **system.provenance(),
        **{f"{k}_value": v for k, v in scalars.items() if k in given and given[k] is not None},
    }

    sink = None
    done = np.zeros(len(blocks), dtype=bool)
    if fmt == "zarr":
        key = _store.store_key(
            axes=axes,
            scalars=scalars,
            config=config,
            chunk=chunk,
            block_rows=rows,
            two_pass=two_pass is not False,
            system=system,
            version=attrs["qdsim_version"],
        )
        template = {
            "dims": dims,
            "shape": shape,
            "chunks": (rows, *shape[1:]),
            "coords": coords,
            "data_vars": {
                name: (np.int32 if name == "status" else np.float64, a)
                for name, a in var_attrs.items()
            },
            "attrs": attrs,
        }
        sink = _store.ZarrSweepStore.open(store, key=key, template=template, n_blocks=len(blocks))
        done = sink.done()
        out = None
    else:
        out = {name: np.empty(shape) for name in QUANTITIES}
        out["status"] = np.empty(shape, dtype=np.int32)

    report = _progress_callback(progress, n)
    spec = _BlockSpec(
        axes=axes,
        scalars=scalars,
        keys=keys,
        values=np.asarray([system.values[k] for k in keys], dtype=np.float64),
        config=config,
        chunk=chunk,
        with_mr=with_mr,
        two_pass=two_pass,
        blocks=tuple((b.start, b.stop) for b in blocks),
        device=device,
        store=None if sink is None else os.path.abspath(store),
    )
    todo = [i for i in range(len(blocks)) if not done[i]]
    base = int(sum(row * (b.stop - b.start) for b, d in zip(blocks, done, strict=True) if d))
    if base:
        report(base)

    def finished(i, data):
        """Record block i: mark it done in the store (written by whoever solved it) or keep
        its arrays."""
        if sink is not None:
            sink.mark_done(i)
        else:
            for name, v in data.items():
                out[name][blocks[i]] = v

    if scheduler is not None or workers is not None:
        from qdsim.sweep.distributed import run_blocks

        run_blocks(
            spec,
            todo,
            scheduler=scheduler,
            workers=workers,
            finished=finished,
            report=report,
            done0=base,
        )
    else:
        for i in todo:
            data = _block_data(spec, i, report=functools.partial(_offset_report, report, base))
            if sink is not None:
                sink.write_block(i, blocks[i], data)
            finished(i, data)
            base += row * (blocks[i].stop - blocks[i].start)
    report(None)

    if sink is not None:
        failed = sum(int(np.count_nonzero(sink.read_status(b) & FAILURE_MASK)) for b in blocks)
        sink.finish({"failed_points": failed})
        return xr.open_dataset(store, engine="zarr", consolidated=False)
    attrs["failed_points"] = int(np.count_nonzero(out["status"] & FAILURE_MASK))
    ds = xr.Dataset(
        {name: (dims, out[name], var_attrs[name]) for name in var_attrs},
        coords={name: (name, v, a) for name, (v, a) in coords.items()},
        attrs=attrs,
    )
    if fmt == "netcdf":
        _store.write_netcdf_atomic(ds, store)
    return ds


def _offset_report(report, base, done):
    report(base + done)


class _BlockSpec(NamedTuple):
    """Everything a process needs to solve any block of a sweep (picklable: NumPy arrays,
    numbers, the static config), so that Dask workers solve blocks as the local loop does."""

    axes: dict
    scalars: dict
    keys: tuple
    values: np.ndarray
    config: SolverConfig
    chunk: int
    with_mr: bool
    two_pass: bool | None
    blocks: tuple
    device: str | None
    store: str | None


def _block_data(spec: _BlockSpec, i: int, report=None) -> dict[str, np.ndarray]:
    """Solve block `i` of `spec`: {variable name: array of the block's shape}."""
    r0, r1 = spec.blocks[i]
    block_axes = [spec.axes["radius"][r0:r1], *list(spec.axes.values())[1:]]
    block_shape = tuple(a.size for a in block_axes)
    solve = functools.partial(
        _solve_points,
        keys=spec.keys,
        chunk=spec.chunk,
        config=spec.config,
        with_mr=spec.with_mr,
        report=report or (lambda done: None),
    )
    with float64(), _on(_device(spec.device)):
        values = jnp.asarray(spec.values, dtype=jnp.float64)
        floats, status = _solve_block(
            solve, values, block_axes, spec.axes, spec.scalars, block_shape, spec.two_pass
        )
    data = {
        name: floats[_FLOAT_FIELDS.index(q.field)].reshape(block_shape)
        for name, q in QUANTITIES.items()
    }
    data["status"] = status.reshape(block_shape).astype(np.int32)
    return data


def _solve_and_write(spec: _BlockSpec, i: int):
    """A Dask task: solve block `i`; with a store, write its region there (the client marks it
    done) and return (i, None), else return (i, data)."""
    data = _block_data(spec, i)
    if spec.store is None:
        return i, data
    from qdsim.sweep.store import ZarrSweepStore

    ZarrSweepStore.write_region(spec.store, slice(*spec.blocks[i]), data)
    return i, None


def _solve_block(solve, values, block_axes, axes, scalars, block_shape, two_pass):
    """Solve one block (its radii and every other axis): the packed inputs, then one or two
    passes. Returns ((fields + 1, m) floats, (m,) status) in C order of `block_shape`."""
    mesh = np.meshgrid(*block_axes, indexing="ij")
    cols = {name: m.ravel() for name, m in zip(axes, mesh, strict=True)}
    m = int(np.prod(block_shape))
    inputs = np.stack(
        [cols["radius"], cols["x"]]
        + [cols.get(k, np.full(m, scalars.get(k, 1.0))) for k in _OVERRIDES]
        + [np.zeros(m)]  # last row: Newton start offset ds0
    )
    del mesh, cols
    coarse_idx = None if two_pass is False else _coarse_axes(block_shape)
    if coarse_idx is None:
        return solve(values, inputs)
    return _two_passes(solve, values, inputs, block_shape, coarse_idx)


def _device(device: str | None):
    """The JAX device for `device` (None: JAX's default)."""
    if device is None:
        return None
    if device not in ("cpu", "gpu", "auto"):
        raise ValueError(f"device must be 'cpu', 'gpu' or 'auto', got {device!r}")
    if device == "auto":
        try:
            return jax.devices("gpu")[0]
        except RuntimeError:
            return jax.devices("cpu")[0]
    try:
        return jax.devices(device)[0]
    except RuntimeError:
        raise ValueError(
            f"device {device!r}: JAX sees no {device.upper()} (install jax[cuda12], or use "
            "--device cpu)"
        ) from None


def _on(dev):
    """Run on `dev`; a no-op where it is JAX's default device anyway (entering
    `jax.default_device` changes the compilation cache key: one needless recompile)."""
    if dev is None or dev == jax.devices()[0]:
        return contextlib.nullcontext()
    return jax.default_device(dev)


def _version() -> str:
    from qdsim import __version__

    return __version__


def _progress_callback(progress, total: int):
    if callable(progress):
        return lambda done: None if done is None else progress(done, total)
    if not progress:
        return lambda done: None
    from rich.progress import BarColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.completed}/{task.total} points",
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )
    task = bar.add_task("phase diagram", total=total)
    bar.start()

    def report(done):
        if done is None:
            bar.stop()
        else:
            bar.update(task, completed=done)

    return report
