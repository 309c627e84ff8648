"""Forward-model verbs: `sweep` (phase diagram), `solve` (one dot), `info` (materials), `plot`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import typer

from qdsim.cli._app import UserError, app


def parse_range(text: str, name: str) -> np.ndarray:
    """'start:stop:num' -> numpy.linspace(start, stop, num); a single number -> [number].

    Errors name the flag (`--NAME`) and what is wrong: the format, a value that is not a
    number, or num < 1."""
    flag = f"--{name}"
    parts = text.strip().split(":")
    if len(parts) not in (1, 3):
        raise UserError(
            f"{flag}: expected 'start:stop:num' (e.g. 1.5:8:64) or a number, got {text!r}"
        )
    try:
        nums = [float(p) for p in parts[:2]]
    except ValueError:
        raise UserError(
            f"{flag}: expected 'start:stop:num' (e.g. 1.5:8:64) or a number, got {text!r}"
        ) from None
    if not all(np.isfinite(nums)):
        raise UserError(f"{flag}: values must be finite numbers, got {text!r}")
    if len(parts) == 1:
        return np.array(nums)
    try:
        num = int(parts[2])
    except ValueError:
        raise UserError(
            f"{flag}: num (the third field of 'start:stop:num') must be a whole number, "
            f"got {parts[2]!r}"
        ) from None
    if num < 1:
        raise UserError(
            f"{flag}: num (the third field of 'start:stop:num') must be >= 1, got {num}"
        )
    return np.linspace(nums[0], nums[1], num)


#: Flag -> (lowest allowed, highest allowed, strict lower bound, what the values are).
_LIMITS = {
    "radius": (0.0, None, True, "radii (nm)"),
    "x": (0.0, 1.0, False, "Br fractions"),
    "f-v": (0.0, 1.0, False, "valence-band shares"),
    "mass-ratio": (0.0, None, True, "hole-to-electron mass ratios"),
    "bowing": (None, None, False, "bowing parameters (eV)"),
}


def _axis_arg(text: str | None, name: str) -> np.ndarray | float | None:
    """Parse a range option and check its domain; a single number stays a scalar (an override
    of the system value), a range becomes an axis."""
    if text is None:
        return None
    values = parse_range(text, name)
    lo, hi, strict, what = _LIMITS[name]
    if lo is not None and (np.any(values <= lo) if strict else np.any(values < lo)):
        bound = f"> {lo:g}" if strict else f">= {lo:g}"
        raise UserError(f"--{name}: {what} must be {bound}, got {values.min():g}")
    if hi is not None and np.any(values > hi):
        raise UserError(f"--{name}: {what} must be <= {hi:g}, got {values.max():g}")
    return values if ":" in text else float(values[0])


def _check_writable(path: Path | None, what: str, suffixes=(".png", ".pdf", ".svg")) -> None:
    """The directory exists and accepts a file; the suffix is one we write."""
    if path is None:
        return
    if suffixes and path.suffix.lower() not in suffixes:
        raise UserError(f"{what} {path}: expected a {', '.join(suffixes)} file name")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise UserError(f"{what}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or path.is_dir():
        raise UserError(f"{what} {path}: not writable")


def _enable_compile_cache() -> None:
    """Keep compiled kernels between runs (JAX's persistent compilation cache), so the ~3 s
    compile of the forward model happens once per machine, JAX version and config (measured:
    the default `qdsim sweep` 3.5 s -> 1.2 s on the second run). `$QDSIM_JAX_CACHE`: a
    directory, or `off`; default `$XDG_CACHE_HOME/qdsim/jax` (`~/.cache/qdsim/jax`). A cache
    directory you set for JAX yourself wins. The command line owns its process; the library
    never changes JAX settings."""
    import jax

    where = os.environ.get("QDSIM_JAX_CACHE", "").strip()
    if where.lower() in ("off", "0", "no", "false") or jax.config.jax_compilation_cache_dir:
        return
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    path = Path(where) if where else Path(base) / "qdsim" / "jax"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # read-only home and the like: run uncached
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@app.command("sweep")
def sweep(
    radius: str = typer.Option("1.5:8:64", help="Radii in nm, 'start:stop:num' or a number."),
    x: str = typer.Option("0:1:64", help="Br fractions, 'start:stop:num' within [0, 1]."),
    system: str = typer.Option("default", help="System name under materials/systems or a path."),
    f_v: str = typer.Option(
        None, "--f-v", help="Valence-band share f_v (0..1): a number overrides, a range adds a dim."
    ),
    bowing: str = typer.Option(
        None, "--bowing", help="Band-gap bowing (eV): a number overrides, a range adds a dim."
    ),
    mass_ratio: str = typer.Option(
        None,
        "--mass-ratio",
        help="m_h/m_e at fixed reduced mass: a number overrides, a range adds a dim.",
    ),
    n_quad: int = typer.Option(12, help="Gauss-Legendre order per piece (SolverConfig.n_quad)."),
    ansatz: str = typer.Option(
        "product",
        help="Exciton ansatz: product (the paper's, fast) or correlated (~15x closer to exact "
        "CI energies, ~8x the cost per point; SolverConfig.ansatz).",
    ),
    output: Path = typer.Option(
        Path("phase_diagram.nc"),
        "-o",
        "--output",
        help="A .nc file (netCDF, written at the end) or a .zarr store (written as it goes; "
        "rerun the same command to resume an interrupted sweep).",
    ),
    plot: Path = typer.Option(None, "--plot", help="Also draw the Fig. 3g diagram to this PNG."),
    chunk_points: int = typer.Option(
        None,
        help="Points per compiled chunk (default: 128 on CPU; on a GPU the largest that fits "
        "half its free memory, from XLA's memory analysis).",
    ),
    block_rows: int = typer.Option(
        None, help="Radii per block (the unit of zarr chunks and resuming; default ~2^16 points)."
    ),
    device: str = typer.Option("auto", help="cpu, gpu or auto (a GPU when JAX sees one)."),
    scheduler: str = typer.Option(
        None, help="Dask scheduler address (tcp://host:8786): workers solve the blocks."
    ),
    workers: int = typer.Option(
        None, help="Solve the blocks in N local Dask worker processes (a LocalCluster)."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Phase-diagram sweep over radius and composition (emission energy vs dark-bright)."""
    import qdsim
    from qdsim.sweep.store import check_output

    r, xs = np.atleast_1d(_axis_arg(radius, "radius")), np.atleast_1d(_axis_arg(x, "x"))
    extra = {
        "f_v": _axis_arg(f_v, "f-v"),
        "bowing_Eg": _axis_arg(bowing, "bowing"),
        "mass_ratio": _axis_arg(mass_ratio, "mass-ratio"),
    }
    if device not in ("cpu", "gpu", "auto"):
        raise UserError(f"--device: expected cpu, gpu or auto, got {device!r}")
    config = _solver_config(ansatz, n_quad=n_quad)
    if scheduler is not None and workers is not None:
        raise UserError("--scheduler and --workers: give one or the other")
    for flag, v in (
        ("--chunk-points", chunk_points),
        ("--block-rows", block_rows),
        ("--workers", workers),
    ):
        if v is not None and v < 1:
            raise UserError(f"{flag}: must be >= 1, got {v}")
    try:
        check_output(output)
    except ValueError as exc:
        raise UserError(f"--output {exc}") from None
    _check_writable(plot, "--plot")
    sysobj = qdsim.load_system(system)
    _enable_compile_cache()
    ds = qdsim.phase_diagram(
        r,
        xs,
        system=sysobj,
        config=config,
        progress=progress,
        store=output,
        chunk_points=chunk_points,
        block_rows=block_rows,
        device=device,
        scheduler=scheduler,
        workers=workers,
        **extra,
    )
    n = int(np.prod(list(ds.sizes.values())))
    failed = ds.attrs["failed_points"]
    warned = _count_near_threshold(ds)
    typer.echo(
        f"wrote {output} ({n} points: {n - failed} solved, {failed} without a bound exciton "
        f"(NaN + status code); {warned} of the solved flagged NEAR_THRESHOLD, a warning: a carrier "
        "is barely bound there and the variational energy is a looser upper bound)"
    )
    if plot is not None:
        from qdsim.plotting.phase import plot_phase_panels

        plot_phase_panels(_load_for_plot(ds), path=plot)
        typer.echo(f"wrote {plot}")


def _count_near_threshold(ds) -> int:
    """Points flagged NEAR_THRESHOLD, read a slab of radii at a time (a zarr store stays on
    disk)."""
    from qdsim.status import Status

    st, step = ds["status"], max(1, (1 << 22) // max(1, ds["status"][0].size))
    return sum(
        int(np.count_nonzero(np.asarray(st[i : i + step].values) & int(Status.NEAR_THRESHOLD)))
        for i in range(0, st.shape[0], step)
    )


def _load_for_plot(ds):
    """The two variables the Fig. 3g analogue draws, in memory."""
    return ds[["emission_energy", "dark_bright_splitting"]].load()


def _solver_config(ansatz: str, **kw):
    """`SolverConfig` for the --ansatz flag (a one-line error for anything else)."""
    import qdsim

    if ansatz not in ("product", "correlated"):
        raise UserError(f"--ansatz: expected product or correlated, got {ansatz!r}")
    if kw.get("n_quad", 12) < 2:
        raise UserError(f"--n-quad: must be >= 2, got {kw['n_quad']}")
    return qdsim.SolverConfig(ansatz=ansatz, **kw)


@app.command("solve")
def solve(
    radius: float = typer.Option(..., help="Dot radius in nm."),
    x: float = typer.Option(..., help="Br fraction in [0, 1]."),
    system: str = typer.Option("default", help="System name or path."),
) -> None:
    """Solve one dot of the system and print every output with its unit."""
    from rich.console import Console
    from rich.table import Table

    import qdsim
    from qdsim.status import describe

    if not (np.isfinite(radius) and radius > 0):
        raise UserError(f"--radius: the dot radius must be > 0 nm, got {radius:g}")
    if not 0.0 <= x <= 1.0:
        raise UserError(f"--x: the Br fraction must lie in [0, 1], got {x:g}")
    sysobj = qdsim.load_system(system)
    p = sysobj.sphere_params(x)
    dEc, dEv = float(p.dEc_eV), float(p.dEv_eV)
    if not (dEc > 0 and dEv > 0):
        why = (
            f"at x = 1 the dot has the matrix's composition ({sysobj.matrix}): it is the matrix, "
            "there is no dot to confine the exciton"
            if x == 1.0
            else "a carrier is not confined in the dot (not a type-I dot)"
        )
        raise UserError(
            f"R = {radius:g} nm, x = {x:g}: no bound exciton: {why} (band offsets "
            f"conduction {dEc * 1e3:.3g} meV, valence {dEv * 1e3:.3g} meV)"
        )
    _enable_compile_cache()
    s = sysobj.solve(x, radius, throw=False)
    if int(s.status) & qdsim.FAILURE_MASK:
        raise UserError(f"R = {radius:g} nm, x = {x:g}: {describe(int(s.status))}")
    table = Table(title=f"{sysobj.name}: R = {radius:g} nm (d = {2 * radius:g} nm), x = {x:g}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    units = {
        "_eV": ("meV", 1e3),
        "_nm": ("nm", 1.0),
        "_nm3": ("nm^-3", 1.0),
        "rate_s": ("1/s", 1.0),
        "_s": ("s", 1.0),
    }
    for name, val in s._asdict().items():
        if name == "status":
            table.add_row("status", f"{int(val)} ({describe(int(val))})")
            continue
        unit, scale = next(
            ((u, f) for suf, (u, f) in units.items() if name.endswith(suf)), ("", 1.0)
        )
        if name in ("energy_eV", "bright_energy_eV", "dark_energy_eV"):
            unit, scale = "eV", 1.0
        table.add_row(name, f"{float(val) * scale:.6g} {unit}")
    Console().print(table)


@app.command("info")
def info(system: str = typer.Option("default", help="System name or path.")) -> None:
    """List every material parameter with its unit, status and source."""
    import qdsim

    typer.echo(qdsim.load_system(system).describe())


@app.command("plot")
def plot_cmd(
    dataset: Path = typer.Argument(
        ..., help="A netCDF file (.nc) or zarr store (.zarr) written by `qdsim sweep`."
    ),
    output: Path = typer.Option(
        Path("phase_diagram.png"), "-o", "--output", help="Figure file (.png, .pdf, .svg)."
    ),
    select: list[str] = typer.Option(
        None,
        "--select",
        help="DIM=VALUE: keep the nearest value of an extra dim (f_v, bowing_Eg, mass_ratio); "
        "repeat for several. Without it, every value gets a panel.",
    ),
    map_var: str = typer.Option(
        None,
        "--map",
        help="Draw a map of this variable over (radius, x) instead of the Fig. 3g diagram, "
        "with points without a bound exciton hatched (e.g. --map dark_bright_splitting).",
    ),
    dots: Path = typer.Option(
        None,
        "--dots",
        help="Overlay placed dots from `qdsim place -o` (netCDF): their posterior-predictive "
        "regions on the Fig. 3g diagram, or their (x, diameter) medians, 68 % intervals and "
        "regions on a --map.",
    ),
) -> None:
    """Draw the Fig. 3g diagram (emission energy vs dark-bright splitting) or a map of any
    variable from a sweep file (a panel per value of any extra dim)."""
    from qdsim.plotting.phase import PAPER_DOTS, plot_map, plot_phase_panels

    _check_writable(output, "--output")
    placed = None if dots is None else _open_placements(dots)
    with _open_sweep(dataset) as ds:
        sub = _select(ds, select or [], dataset)
        try:
            if map_var is not None:
                if map_var not in sub.data_vars:
                    raise UserError(
                        f"--map: {dataset} has no variable {map_var!r}; it has "
                        f"{', '.join(sorted(sub.data_vars))}"
                    )
                keep = [map_var] + (["status"] if map_var != "status" else [])
                fig = plot_map(sub[keep].load(), map_var)
            else:
                marks = () if placed is not None else PAPER_DOTS
                fig = plot_phase_panels(_load_for_plot(sub), dots=marks)
            if placed is not None:
                from qdsim.plotting.placement import overlay_figure

                overlay_figure(fig, placed, "size" if map_var is not None else "energy")
            fig.savefig(output, dpi=150 if len(fig.axes) <= 2 else 130)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    typer.echo(f"wrote {output}")


def _open_placements(path: Path):
    """The Dataset written by `qdsim place -o`, in memory; one-line errors."""
    import xarray as xr

    if not path.exists():
        raise UserError(f"--dots {path}: no such file")
    try:
        ds = xr.load_dataset(path, engine="h5netcdf")
    except Exception as exc:
        raise UserError(f"--dots {path}: cannot be read as netCDF ({exc})") from None
    if "dot" not in ds.dims or not {"diameter", "x", "emission_energy"} <= set(ds.data_vars):
        raise UserError(f"--dots {path}: not a placement file written by `qdsim place -o`")
    return ds


def _open_sweep(path: Path):
    """Open a sweep written by `qdsim sweep` (netCDF file or zarr store) lazily; one-line errors
    for a missing path, an unreadable file, a file that is not a qdsim sweep and an unfinished
    store."""
    import xarray as xr

    from qdsim.sweep.store import is_qdsim_store

    if not path.exists():
        raise UserError(f"{path}: no such file")
    is_zarr = path.is_dir()
    if is_zarr and not is_qdsim_store(path):
        raise UserError(f"{path}: not a qdsim sweep store (no {path.name}/qdsim_progress)")
    try:
        if is_zarr:
            ds = xr.open_dataset(path, engine="zarr", consolidated=False)
        else:
            ds = xr.open_dataset(path, engine="h5netcdf")
    except Exception as exc:
        kind = "zarr store" if is_zarr else "netCDF file"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"{path}: cannot be read as a {kind} written by `qdsim sweep` ({reason})"
        ) from None
    if not {"emission_energy", "dark_bright_splitting"} <= set(ds.data_vars) or not {
        "radius",
        "x",
    } <= set(ds.dims):
        ds.close()
        raise UserError(f"{path}: not a qdsim phase diagram (no emission_energy over radius, x)")
    if ds.attrs.get("failed_points", 0) == -1:
        ds.close()
        raise UserError(
            f"{path}: the sweep that writes this store has not finished; rerun the same "
            "`qdsim sweep` command to complete it"
        )
    return ds


def _select(ds, items: list[str], path: Path):
    """Apply --select DIM=VALUE (nearest value) to `ds`."""
    out = ds
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise UserError(f"--select: expected DIM=VALUE (e.g. f_v=0.5), got {item!r}")
        if name not in ds.dims or name in ("radius", "x"):
            extra = [d for d in ds.dims if d not in ("radius", "x")]
            raise UserError(
                f"--select {item}: {path} has no extra dim {name!r} "
                f"(extra dims: {', '.join(extra) or 'none'})"
            )
        try:
            v = float(value)
        except ValueError:
            raise UserError(f"--select {item}: {value!r} is not a number") from None
        out = out.sel({name: v}, method="nearest")
    return out
