"""`qdsim place DOTS.toml`: place measured dots on the (diameter, x) plane (`qdsim.place`).

DOTS.toml holds one `[[dot]]` table per dot:

    [[dot]]
    name = "dot 3"
    energy_eV = [1.8167, 0.0005]        # (value, 1-sigma), eV
    dark_bright_eV = [1.45e-3, 0.08e-3] # eV
    lifetime_s = [246e-12, 25e-12]      # s

    [[dot]]
    name = "dot 5"
    ptu = "dot5.ptu"                    # T3 photon file: lifetime fit and g2(0)
    zeeman_lines = "dot5_lines.csv"     # line table of `qdsim zeeman`: Delta_DB (and energy)

    [[dot]]
    name = "dot 6"
    zeeman_spectra = {0 = "B0T.sif", 6 = "B6T.spe", 7 = "B7T.spe"}  # field (T) = spectrum
    spectra_medium = "air"              # lines fitted per spectrum, as `qdsim zeeman --spectrum`

Numbers given explicitly win over those from files. Paths are relative to the TOML file.
"""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from qdsim.cli._app import UserError, app

#: Keys of a [[dot]] table.
DOT_KEYS = {
    "name": "label of the dot (required)",
    "energy_eV": "[value, 1-sigma] emission energy, eV",
    "dark_bright_eV": "[value, 1-sigma] dark-bright splitting, eV",
    "lifetime_s": "[value, 1-sigma] PL lifetime, s",
    "ptu": "T3 photon file (PTU, .pt3, .ht3): lifetime fit and g2(0)",
    "irf": "measured IRF for the lifetime fit (photon or histogram file)",
    "channels": "[a, b] detector channels of the g2 (default [0, 1])",
    "zeeman_lines": "CSV of magneto-PL lines (see `qdsim zeeman --help`)",
    "zeeman_spectra": "table FIELD_T = spectrum file (.sif, .spe, text): lines fitted per spectrum",
    "spectra_medium": "air or vacuum: the wavelength calibration of zeeman_spectra",
    "zeeman_min_snr": "line detection threshold (x noise) in zeeman_spectra (default 5)",
    "zeeman_sigma_eV": "line error (eV) for CSV rows without sigma_eV",
    "zeeman_fix": "table of Zeeman parameters held fixed, e.g. {split_z_eV = 0.0}",
}
_NUMBERS = ("energy_eV", "dark_bright_eV", "lifetime_s")
_PATHS = ("ptu", "irf", "zeeman_lines")


def read_dots(path: Path) -> list[dict[str, Any]]:
    """The [[dot]] tables of a dots TOML, checked (keys, names, paths made absolute);
    raises `UserError`."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    extra = [k for k in doc if k != "dot"]
    if extra:
        raise UserError(f"{path}: unknown top-level key(s) {extra}; expected [[dot]] tables")
    dots = doc.get("dot")
    if not isinstance(dots, list) or not dots:
        raise UserError(f"{path}: no [[dot]] table")
    seen: set[str] = set()
    out = []
    for k, d in enumerate(dots, start=1):
        where = f"{path}: [[dot]] #{k}"
        unknown = [key for key in d if key not in DOT_KEYS]
        if unknown:
            raise UserError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(DOT_KEYS)}")
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise UserError(f'{where}: needs a name = "..."')
        if name in seen:
            raise UserError(f"{where}: the name {name!r} is used twice")
        seen.add(name)
        where = f"{path}: dot {name!r}"
        if not any(key in d for key in (*_NUMBERS, "ptu", "zeeman_lines", "zeeman_spectra")):
            raise UserError(
                f"{where}: no measurement; give energy_eV, dark_bright_eV, lifetime_s "
                "([value, 1-sigma]), ptu, zeeman_lines or zeeman_spectra"
            )
        if "zeeman_lines" in d and "zeeman_spectra" in d:
            raise UserError(f"{where}: give zeeman_lines or zeeman_spectra, not both")
        zeeman_source = "zeeman_lines" if "zeeman_lines" in d else "zeeman_spectra"
        for key, needs in (
            ("irf", "ptu"),
            ("channels", "ptu"),
            ("zeeman_sigma_eV", zeeman_source),
            ("zeeman_fix", zeeman_source),
            ("spectra_medium", "zeeman_spectra"),
            ("zeeman_min_snr", "zeeman_spectra"),
        ):
            if key in d and needs not in d:
                raise UserError(f"{where}: {key} without {needs}")
        fix = d.get("zeeman_fix", {})
        if not isinstance(fix, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in fix.values()
        ):
            raise UserError(f"{where}: zeeman_fix must be a table of numbers, got {fix!r}")
        d = dict(d)
        for key in _PATHS:
            if key in d:
                if not isinstance(d[key], str):
                    raise UserError(f"{where}: {key} must be a path string, got {d[key]!r}")
                p = Path(d[key])
                p = p if p.is_absolute() else path.parent / p
                if not p.exists():
                    raise UserError(f"{where}: {key}: no such file {p}")
                d[key] = p
        if "zeeman_spectra" in d:
            spectra = d["zeeman_spectra"]
            if not isinstance(spectra, dict) or not spectra:
                raise UserError(f"{where}: zeeman_spectra must be a table FIELD_T = path")
            resolved = {}
            for field, name in spectra.items():
                try:
                    b = float(field)
                except ValueError:
                    raise UserError(
                        f"{where}: zeeman_spectra key {field!r} is not a field in tesla"
                    ) from None
                if not isinstance(name, str):
                    raise UserError(f"{where}: zeeman_spectra: {name!r} is not a path string")
                p = Path(name) if Path(name).is_absolute() else path.parent / name
                if not p.exists():
                    raise UserError(f"{where}: zeeman_spectra: no such file {p}")
                resolved[b] = p
            d["zeeman_spectra"] = resolved
        for key in _NUMBERS:
            if key in d and not (
                isinstance(d[key], list)
                and len(d[key]) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in d[key])
            ):
                raise UserError(
                    f"{where}: {key} must be [value, 1-sigma] (two numbers), got {d[key]!r}"
                )
        out.append(d)
    return out


def _lifetime_from_ptu(d: dict, console) -> Any:
    """Lifetime fit of the dot's photon file (as `qdsim lifetime`), printed; the DecayResult."""
    from qdsim.analysis import fit_decay
    from qdsim.cli.photons import _fit_quietly, _load_decay, _warn_poor_fit

    path = d["ptu"]
    h = _load_decay(path, None, None, None, "the decay")
    p = h.attrs.get("period_ps")
    period_ps = float(p) if p is not None and math.isfinite(float(p)) else None
    irf_h = None
    if "irf" in d:
        irf_h = _load_decay(d["irf"], None, None, None, "the IRF")
    r = _fit_quietly(fit_decay, h["time"].values, h.values, irf=irf_h, n_exp=1, period_ps=period_ps)
    note = "" if r.converged else "  (NOT CONVERGED)"
    console.print(
        f"  lifetime ({path.name}): tau = {r.lifetimes_ps[0]:.5g} ± "
        f"{r.lifetimes_err_ps[0]:.2g} ps, chi2_red = {r.gof['chi2_red']:.3f}{note}",
        highlight=False,
    )
    _warn_poor_fit(r.gof, "fit it with `qdsim lifetime` (--irf, --from/--to) and give lifetime_s")
    return r


def _g2_from_ptu(d: dict, console) -> Any:
    """g2(0) of the dot's photon file (as `qdsim g2`: pulsed detected), printed; the fit result
    or None when the file gives no g2 (one channel, too few coincidences)."""
    from qdsim.analysis import fit_g2_cw, fit_g2_pulsed, g2
    from qdsim.cli.photons import _as_pulsed, _fit_quietly

    path = d["ptu"]
    a, b = (int(v) for v in d.get("channels", (0, 1)))
    try:
        h = g2(str(path), channels=(a, b), bin_ps=64, window_ps=50_000, normalize="cw")
        hp = _as_pulsed(h)
        if hp is not None:
            r = _fit_quietly(fit_g2_pulsed, hp)
        else:
            r = _fit_quietly(fit_g2_cw, h)
    except ValueError as exc:
        console.print(f"  g2 ({path.name}): skipped ({exc})", highlight=False)
        return None
    console.print(
        f"  g2 ({path.name}, channels {a} x {b}): g2(0) = {r.g2_0:.3f} ± {r.g2_0_err:.3f}"
        f"{'' if r.converged else '  (NOT CONVERGED)'}",
        highlight=False,
    )
    return r


def _zeeman_from_lines(d: dict, console) -> Any:
    """Fine-structure fit of the dot's line table (as `qdsim zeeman`), printed."""
    import warnings

    import numpy as np

    from qdsim.analysis import fit_zeeman
    from qdsim.cli.zeeman import lines_from_spectra, read_lines_csv

    if "zeeman_spectra" in d:
        spectra = d["zeeman_spectra"]
        data = lines_from_spectra(
            [f"{b!r}={p}" for b, p in spectra.items()],
            medium=d.get("spectra_medium"),
            unit=None,
            peaks=None,
            window=None,
            shape="lorentzian",
            min_snr=float(d.get("zeeman_min_snr", 5.0)),
        )
        label = f"{len(spectra)} spectra"
        path = Path(label)  # for the messages below
    else:
        path = d["zeeman_lines"]
        data = read_lines_csv(path)
        label = path.name
    sig = None
    if "sigma_eV" in data:
        sig = np.asarray(data["sigma_eV"], dtype=float)
        if np.any(np.isnan(sig)):
            if "zeeman_sigma_eV" not in d:
                raise UserError(f"{path}: some rows lack sigma_eV: give zeeman_sigma_eV")
            sig = np.where(np.isnan(sig), float(d["zeeman_sigma_eV"]), sig)
    elif "zeeman_sigma_eV" in d:
        sig = np.full(len(data["field_T"]), float(d["zeeman_sigma_eV"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its notes are printed below
        r = fit_zeeman(
            data["field_T"],
            data["energy_eV"],
            sig,
            polarization=data.get("polarization"),
            fix={k: float(v) for k, v in d.get("zeeman_fix", {}).items()},
        )
    console.print(
        f"  zeeman ({label}, {len(data['field_T'])} lines): Δ_DB = "
        f"{r.dark_bright_eV * 1e3:.3f} ± {r.dark_bright_err_eV * 1e3:.3f} meV, g_X = "
        f"{r.g_X:.3f} ± {r.g_X_err:.3f}, E_bright = {r.bright_eV:.5f} eV"
        f"{'' if r.converged else '  (NOT CONVERGED)'}",
        highlight=False,
    )
    for note in r.notes:
        console.print(f"    note: {note}", highlight=False)
    return r


def combine(placements) -> Any:
    """One Dataset of several placements: the draws along (dot, draw), the summaries as
    variables over `dot` (diameter_nm, diameter_lo_nm, diameter_hi_nm, x_median, x_lo, x_hi,
    degenerate, explanation, the measurements and their errors, NaN where not measured)."""
    import json

    import numpy as np
    import xarray as xr

    parts = []
    for p in placements:
        ds = p.to_dataset()
        attrs = dict(ds.attrs)
        ds.attrs = {}
        ds = ds.expand_dims(dot=[p.name])
        m = json.loads(attrs["measurements"])
        summary = {
            "diameter_nm": (p.diameter_nm, "nm", "posterior median of the diameter"),
            "diameter_lo_nm": (p.diameter_interval_nm[0], "nm", "diameter: 15.9 % quantile"),
            "diameter_hi_nm": (p.diameter_interval_nm[1], "nm", "diameter: 84.1 % quantile"),
            "x_median": (p.x, "1", "posterior median of x"),
            "x_lo": (p.x_interval[0], "1", "x: 15.9 % quantile"),
            "x_hi": (p.x_interval[1], "1", "x: 84.1 % quantile"),
            "degenerate": (int(p.degenerate), "1", "1: size and composition not separated"),
            "corr_lnd_x": (p.diagnostics.get("corr_lnd_x", np.nan), "1", "corr(ln d, x)"),
        }
        for key, unit in (("energy_eV", "eV"), ("dark_bright_eV", "eV"), ("lifetime_s", "s")):
            v, s = m.get(key, (np.nan, np.nan))
            summary[f"measured_{key}"] = (v, unit, f"measured {key} (NaN: not measured)")
            summary[f"measured_{key}_err"] = (s, unit, f"1-sigma error of {key}")
        for k, (v, unit, long) in summary.items():
            ds[k] = ("dot", [v], {"units": unit, "long_name": long})
        for k in ("explanation", "method", "measurements", "diagnostics", "notes", "priors"):
            ds[k] = ("dot", np.array([str(attrs.get(k, ""))], dtype=object))
        parts.append(ds)
    out = xr.concat(parts, dim="dot", join="outer", combine_attrs="drop")
    out.attrs = {
        "title": "qdsim placement of measured dots",
        "intervals": "central 68 % posterior intervals (15.9 % and 84.1 % quantiles)",
    }
    return out


def write_atomic(ds, path: Path) -> None:
    """Write `ds` as netCDF to a temporary file beside `path`, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write: {exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def corner_path(plot: Path, name: str) -> Path:
    """`placement_<dotname>_corner.png` beside `plot` (name made file-safe)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip()) or "dot"
    return plot.with_name(f"{plot.stem}_{safe}_corner{plot.suffix or '.png'}")


_HELP = (
    "Place measured dots: posterior over each dot's diameter and Br fraction x (68 % "
    "intervals), from energies, splittings, lifetimes, photon files and Zeeman line tables.\n\n"
    'DOTS_FILE has one \\[\\[dot]] table per dot: name = "dot 3" and any of energy_eV, '
    'dark_bright_eV, lifetime_s = \\[value, 1-sigma] (eV, eV, s); ptu = "file.ptu" (T3 photon '
    'file: lifetime fit and g2(0); irf = "irf.phu", channels = \\[0, 1]); zeeman_lines = '
    '"lines.csv" (as `qdsim zeeman`; zeeman_sigma_eV, zeeman_fix = {split_z_eV = 0.0}) or '
    'zeeman_spectra = {0 = "B0T.sif", 6 = "B6T.spe"} with spectra_medium = "air" (.sif, .spe '
    "or text spectra; lines fitted per spectrum, as `qdsim zeeman --spectrum`; zeeman_min_snr). "
    "Paths are relative to DOTS_FILE; numbers given win over those from files. Prints each "
    "fit, then a table of the placements; -o writes every draw (netCDF, dim dot)."
)


@app.command("place", help=_HELP)
def place_command(
    dots_file: Annotated[Path, typer.Argument(help="TOML with one \\[\\[dot]] table per dot.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the placements (netCDF).")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Save the Fig. 3g analogue with the dots (PNG, PDF, SVG); corner plots go "
            "beside it as <stem>_<dot>_corner.<ext>.",
        ),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="grid (cached table, fast) or nuts (numpyro).")
    ] = "grid",
    system: Annotated[str, typer.Option("--system", help="System name or path.")] = "default",
    ansatz: Annotated[
        str,
        typer.Option(
            "--ansatz", help="Exciton ansatz of the forward model: product or correlated."
        ),
    ] = "product",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the posterior draws.")] = 0,
    num_samples: Annotated[
        int, typer.Option("--num-samples", help="Posterior draws per dot.")
    ] = 4000,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Directory of the grid tables (default: user cache)."),
    ] = None,
    grid_radius: Annotated[int | None, typer.Option("--grid-radius", hidden=True)] = None,
    grid_x: Annotated[int | None, typer.Option("--grid-x", hidden=True)] = None,
    grid_slices: Annotated[int | None, typer.Option("--grid-slices", hidden=True)] = None,
    grid_exchange: Annotated[int | None, typer.Option("--grid-exchange", hidden=True)] = None,
) -> None:
    """Place measured dots (see _HELP)."""
    from rich.console import Console
    from rich.table import Table

    import qdsim
    from qdsim.cli.model import _enable_compile_cache, _solver_config
    from qdsim.placement import GridSpec

    if method not in ("grid", "nuts"):
        raise UserError(f"--method must be grid or nuts, got {method!r}")
    config = _solver_config(ansatz)
    for out, what in ((output, "--output"), (plot, "--plot")):
        if out is not None and not out.parent.exists():
            raise UserError(f"{what} {out}: directory {out.parent} does not exist")
    spec = None
    sizes = (grid_radius, grid_x, grid_slices, grid_exchange)
    if any(v is not None for v in sizes):
        base = GridSpec()
        try:
            spec = GridSpec(
                n_radius=grid_radius or base.n_radius,
                n_x=grid_x or base.n_x,
                n_slices=grid_slices or base.n_slices,
                n_exchange=grid_exchange or base.n_exchange,
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None
    dots = read_dots(dots_file)
    _enable_compile_cache()  # the NUTS program compiles for minutes: once per machine
    console = Console()
    placements = []
    for d in dots:
        name = d["name"]
        console.print(f"[bold]{name}[/bold]")
        kw: dict[str, Any] = {k: tuple(d[k]) for k in _NUMBERS if k in d}
        for k in _NUMBERS:
            if k in d:
                console.print(f"  {k} = {d[k][0]:g} ± {d[k][1]:g} (given)", highlight=False)
        if "ptu" in d:
            kw["decay"] = _lifetime_from_ptu(d, console)
            g = _g2_from_ptu(d, console)
            if g is not None:
                kw["g2"] = g
        if "zeeman_lines" in d or "zeeman_spectra" in d:
            kw["zeeman"] = _zeeman_from_lines(d, console)
        try:
            p = qdsim.place(
                **kw,
                method=method,
                system=system,
                config=config,
                grid=spec,
                cache=cache,
                num_samples=num_samples,
                seed=seed,
                name=name,
            )
        except ValueError as exc:
            raise UserError(f"{dots_file}: dot {name!r}: {exc}") from None
        for k, v in p.notes.items():
            console.print(f"  note ({k}): {v}", highlight=False)
        console.print("  " + p.summary().splitlines()[0], highlight=False)
        placements.append(p)
    table = Table(title=f"placement of {len(placements)} dot(s) ({method}, 68 % intervals)")
    for col, just in (
        ("dot", "left"),
        ("measured", "left"),
        ("diameter (nm)", "right"),
        ("x", "right"),
        ("degenerate", "center"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for p in placements:
        lo, hi = p.diameter_interval_nm
        xl, xh = p.x_interval
        table.add_row(
            p.name,
            ", ".join(_short(k) for k in p.measurements),
            f"{p.diameter_nm:.2f} [{lo:.2f}, {hi:.2f}]",
            f"{p.x:.3f} [{xl:.3f}, {xh:.3f}]",
            "yes" if p.degenerate else "no",
        )
    console.print(table)
    for p in placements:
        if p.degenerate:
            console.print(f"{p.name}: {p.explanation}", highlight=False)
    ds = combine(placements)
    if output is not None:
        write_atomic(ds, output)
        console.print(f"wrote {output}")
    if plot is not None:
        _write_plots(ds, placements, plot, system, console)


def _short(key: str) -> str:
    return {"energy_eV": "E", "dark_bright_eV": "Δ_DB", "lifetime_s": "τ"}.get(key, key)


def _write_plots(ds, placements, plot: Path, system: str, console) -> None:
    import numpy as np

    import qdsim
    from qdsim.materials.loader import load_system
    from qdsim.plotting._style import pyplot
    from qdsim.plotting.placement import plot_corner, plot_placements

    plt = pyplot()
    phase = qdsim.phase_diagram(
        np.geomspace(1.5, 8.0, 40), np.linspace(0.0, 0.6, 25), system=load_system(system)
    )
    figs = [(plot_placements(ds, phase), plot)]
    for p in placements:
        figs.append((plot_corner(p), corner_path(plot, p.name)))
    for fig, path in figs:
        try:
            fig.savefig(path, dpi=150)
        except OSError as exc:
            raise UserError(f"{path}: cannot write: {exc}") from None
        finally:
            plt.close(fig)
        console.print(f"wrote {path}")
