"""Forward-model verbs: `sweep` (phase diagram), `solve` (one dot), `info` (materials), `plot`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import typer

from qdsim.cli._app import UserError, app


def parse_range(text: str, name: str) -> np.ndarray:
    """'start:stop:num' -> numpy.linspace(start, stop, num); a single number -> [number]."""
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return np.array([float(parts[0])])
        if len(parts) == 3:
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            if num < 1:
                raise ValueError
            return np.linspace(start, stop, num)
    except ValueError:
        pass
    raise UserError(
        f"--{name}: expected 'start:stop:num' (e.g. 1.5:8:64) or a number, got {text!r}"
    )


def _check_writable(path: Path | None, what: str) -> None:
    if path is not None and not path.resolve().parent.is_dir():
        raise UserError(f"{what}: directory {path.resolve().parent} does not exist")


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
    radius: str = typer.Option("1.5:8:64", help="Radii in nm, 'start:stop:num'."),
    x: str = typer.Option("0:1:64", help="Br fractions, 'start:stop:num' within [0, 1]."),
    system: str = typer.Option("default", help="System name under materials/systems or a path."),
    f_v: float = typer.Option(None, "--f-v", help="Override the valence-band share f_v (0..1)."),
    n_quad: int = typer.Option(12, help="Gauss-Legendre order per piece (SolverConfig.n_quad)."),
    output: Path = typer.Option(Path("phase_diagram.nc"), "-o", "--output", help="netCDF file."),
    plot: Path = typer.Option(None, "--plot", help="Also draw the Fig. 3g diagram to this PNG."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Phase-diagram sweep over radius and composition (emission energy vs dark-bright)."""
    import qdsim
    from qdsim.status import Status

    r, xs = parse_range(radius, "radius"), parse_range(x, "x")
    _check_writable(output, "--output")
    _check_writable(plot, "--plot")
    sysobj = qdsim.load_system(system)
    _enable_compile_cache()
    ds = qdsim.phase_diagram(
        r, xs, system=sysobj, f_v=f_v, config=qdsim.SolverConfig(n_quad=n_quad), progress=progress
    )
    ds.to_netcdf(output, engine="h5netcdf")
    n = ds.status.size
    failed = ds.attrs["failed_points"]
    warned = int(np.count_nonzero(ds.status.values & int(Status.NEAR_THRESHOLD)))
    typer.echo(
        f"wrote {output} ({n} points: {n - failed} solved, {failed} without a bound exciton "
        f"(NaN + status code); {warned} of the solved flagged NEAR_THRESHOLD, a warning: a carrier "
        "is barely bound there and the variational energy is a looser upper bound)"
    )
    if plot is not None:
        from qdsim.plotting.phase import plot_phase_diagram

        plot_phase_diagram(ds, path=plot)
        typer.echo(f"wrote {plot}")


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

    sysobj = qdsim.load_system(system)
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
    dataset: Path = typer.Argument(..., help="A netCDF file written by `qdsim sweep`."),
    output: Path = typer.Option(Path("phase_diagram.png"), "-o", "--output", help="PNG file."),
) -> None:
    """Draw the Fig. 3g diagram (emission energy vs dark-bright splitting) from a sweep file."""
    import xarray as xr

    from qdsim.plotting.phase import plot_phase_diagram

    if not dataset.is_file():
        raise UserError(f"{dataset}: no such file")
    _check_writable(output, "--output")
    with xr.open_dataset(dataset, engine="h5netcdf") as ds:
        if "emission_energy" not in ds or "dark_bright_splitting" not in ds:
            raise UserError(f"{dataset}: not a qdsim phase diagram (no emission_energy)")
        plot_phase_diagram(ds.load(), path=output)
    typer.echo(f"wrote {output}")
