"""`qdsim zeeman`: fit the exciton fine structure (physics.md B.6) to a table of line energies.

Input CSV (comma separated, '#' comment lines allowed, one header row, one line per row):

    field_T,energy_eV,sigma_eV,polarization
    0,1.816565,5e-5,perp
    6,1.8174,5e-5,
    7,1.8177,5e-5,sigma+

- ``field_T`` (tesla) and ``energy_eV`` (eV) are required; lines need not be assigned to states
  or ordered (the fit assigns them).
- ``sigma_eV``: optional 1-sigma error per line (eV); else ``--sigma`` for all lines, else
  equal weights with errors scaled by chi^2_red.
- ``polarization``: optional label: sigma+, sigma-, pi (dipole along B), perp, or empty.
Other column names are an error (a misspelt sigma column would otherwise be ignored silently).

Spectra instead of a line table: ``--spectrum FIELD_T=PATH`` (repeatable), one spectrum per
field: Andor .sif, Princeton Instruments .spe (2.x, 3.0) or two-column text, read by
`read_spectrum` (camera files: the wavelength calibration stored in the file, frames and rows
summed; ``--medium`` required for wavelength axes). The lines of each spectrum are fitted by
`fit_peaks` (``--peaks`` lines per spectrum, or every line above ``--min-snr``; Poisson errors on
the counts) and their centres and 1-sigma errors become the line table (unassigned, no
polarisation labels); ``--lines-out`` writes that table as CSV (the input format above, which
`qdsim place` also reads).
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Annotated

import typer

from qdsim.cli._app import UserError, app, exit_not_converged

CSV_COLUMNS = ("field_T", "energy_eV", "sigma_eV", "polarization")


def read_lines_csv(path: Path) -> dict[str, list]:
    """Parse the line table described in the module docstring; raises `UserError`."""
    if not path.exists():
        raise UserError(f"no such file: {path}")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].lstrip().startswith("#")]
    if not rows:
        raise UserError(f"{path}: empty (need a header row field_T,energy_eV[,...])")
    header = [h.strip() for h in rows[0]]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise UserError(f"{path}: unknown column(s) {unknown}; allowed: {', '.join(CSV_COLUMNS)}")
    for req in ("field_T", "energy_eV"):
        if req not in header:
            raise UserError(f"{path}: missing column {req!r} (header: {','.join(header)})")
    out: dict[str, list] = {h: [] for h in header}
    for k, row in enumerate(rows[1:], start=2):
        if len(row) > len(header):
            raise UserError(f"{path}: row {k} has {len(row)} fields, header {len(header)}")
        row = row + [""] * (len(header) - len(row))
        for h, v in zip(header, row, strict=True):
            v = v.strip()
            if h == "polarization":
                out[h].append(v)
                continue
            try:
                out[h].append(float(v) if v != "" else math.nan)
            except ValueError:
                raise UserError(f"{path}: row {k}, column {h}: {v!r} is not a number") from None
    if not out["field_T"]:
        raise UserError(f"{path}: no data rows")
    return out


def lines_from_spectra(
    items: list[str],
    *,
    medium: str | None,
    unit: str | None,
    peaks: int | None,
    window: tuple[float, float] | None,
    shape: str,
    min_snr: float,
) -> dict[str, list]:
    """Line table (as `read_lines_csv` returns it) from ``FIELD_T=PATH`` spectra, one
    `fit_peaks` per spectrum; raises `UserError`."""
    import numpy as np

    from qdsim.analysis import fit_peaks, read_spectrum
    from qdsim.analysis.spectroscopy.camera import is_camera_file

    out: dict[str, list] = {"field_T": [], "energy_eV": [], "sigma_eV": [], "polarization": []}
    todo = []
    for item in items:  # check every item before the first fit
        field_s, sep, path_s = item.partition("=")
        try:
            field = float(field_s)
        except ValueError:
            field = math.nan
        if not sep or not path_s or not math.isfinite(field):
            raise UserError(f"--spectrum expects FIELD_T=PATH (e.g. 6=B6T.sif), got {item!r}")
        if not Path(path_s).exists():
            raise UserError(f"no such file: {path_s}")
        todo.append((field, Path(path_s)))
    for field, path in todo:
        try:
            if is_camera_file(path):
                spec = read_spectrum(path, medium=medium, jacobian=False, sum_over=("frame", "row"))
            else:
                spec = read_spectrum(path, unit=unit, medium=medium, jacobian=False)
            fit = fit_peaks(
                spec,
                n_peaks=peaks,
                sigma="poisson",
                window_eV=window,
                shape=shape,
                min_snr=min_snr,
            )
        except ValueError as exc:  # FileFormatError included: one line naming the file
            msg = str(exc)
            raise UserError(msg if str(path) in msg else f"{path}: {msg}") from None
        centre, err = fit.center_eV[0], fit.center_err_eV[0]
        keep = np.isfinite(centre)
        if not np.any(keep):
            raise UserError(f"{path}: no line found")
        for e, de in zip(centre[keep].tolist(), err[keep].tolist(), strict=True):
            out["field_T"].append(field)
            out["energy_eV"].append(e)
            out["sigma_eV"].append(de if math.isfinite(de) and de > 0 else math.nan)
            out["polarization"].append("")
    return out


def write_lines_csv(path: Path, data: dict[str, list]) -> None:
    """The line table in the input format of `qdsim zeeman` (and `qdsim place`)."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for row in zip(*(data[c] for c in CSV_COLUMNS), strict=True):
            b, e, s, pol = row
            w.writerow([f"{b:g}", f"{e:.9f}", "" if math.isnan(s) else f"{s:.3g}", pol])


def _parse_fix(items: list[str]) -> dict[str, float]:
    fix: dict[str, float] = {}
    for it in items:
        if "=" not in it:
            raise UserError(f"--fix expects NAME=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        try:
            fix[k.strip()] = float(v)
        except ValueError:
            raise UserError(f"--fix {it!r}: {v!r} is not a number") from None
    return fix


_HELP = (
    "Fit the 4x4 dark/bright exciton Hamiltonian (physics.md B.6) to magneto-PL line "
    "energies.\n\n"
    "LINES is a CSV with a header row: field_T (tesla) and energy_eV (eV) required, sigma_eV "
    "(1-sigma error, eV) and polarization (sigma+, sigma-, pi, perp or empty) optional; one "
    "observed line per row, in any order, unassigned; '#' starts a comment line. Prints g_X, "
    "the dark-bright splitting, the anisotropies and |g_e - g_h| with 1-sigma errors."
)


@app.command("zeeman", help=_HELP)
def zeeman(
    lines: Annotated[
        Path | None,
        typer.Argument(
            help="CSV of lines: field_T,energy_eV[,sigma_eV][,polarization] (or --spectrum)."
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Save the Zeeman fan (PNG, PDF, ...).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Save the result: .nc (netCDF) or .json."),
    ] = None,
    sigma: Annotated[
        float | None, typer.Option("--sigma", help="Line error (eV) for rows without sigma_eV.")
    ] = None,
    geometry: Annotated[
        str, typer.Option("--geometry", help="faraday (B along z) or voigt (B along x).")
    ] = "faraday",
    offset: Annotated[
        str,
        typer.Option("--offset", help="diamagnetic (E + gamma B^2) or per_field (free offsets)."),
    ] = "diamagnetic",
    fix: Annotated[
        list[str] | None,
        typer.Option("--fix", help="Hold a parameter, NAME=VALUE (eV, T units); repeatable."),
    ] = None,
    relative: Annotated[
        bool, typer.Option("--relative", help="Plot E minus the mean of the four levels.")
    ] = False,
    spectrum: Annotated[
        list[str] | None,
        typer.Option(
            "--spectrum",
            help="FIELD_T=PATH: a spectrum (.sif, .spe, text) whose fitted lines enter the "
            "fit; repeatable, instead of LINES.",
        ),
    ] = None,
    medium: Annotated[
        str | None,
        typer.Option("--medium", help="air or vacuum: the spectra's wavelength calibration."),
    ] = None,
    unit: Annotated[
        str | None, typer.Option("--unit", help="Axis unit of text spectra (nm, eV, ...).")
    ] = None,
    peaks: Annotated[
        int | None,
        typer.Option("--peaks", help="Lines per spectrum (default: all above --min-snr)."),
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", help="LO,HI: fit the spectra in this range (eV).")
    ] = None,
    shape: Annotated[
        str, typer.Option("--shape", help="Line shape: lorentzian, gaussian or voigt.")
    ] = "lorentzian",
    min_snr: Annotated[
        float, typer.Option("--min-snr", help="Line detection threshold (x noise).")
    ] = 5.0,
    lines_out: Annotated[
        Path | None,
        typer.Option("--lines-out", help="Write the lines fitted in the spectra (CSV)."),
    ] = None,
) -> None:
    """Fit the 4x4 dark/bright exciton Hamiltonian to magneto-PL line energies."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from qdsim.analysis import fit_zeeman
    from qdsim.analysis.spectroscopy.zeeman import ZeemanFitWarning

    if (lines is None) == (not spectrum):
        raise UserError("give either a line table LINES or spectra (--spectrum FIELD_T=PATH)")
    if spectrum:
        win = None
        if window is not None:
            try:
                lo, hi = (float(v) for v in window.split(","))
            except ValueError:
                raise UserError(f"--window expects LO,HI in eV, got {window!r}") from None
            win = (lo, hi)
        data = lines_from_spectra(
            spectrum,
            medium=medium,
            unit=unit,
            peaks=peaks,
            window=win,
            shape=shape,
            min_snr=min_snr,
        )
        source = f"{len(spectrum)} spectra"
        if lines_out is not None:
            write_lines_csv(lines_out, data)
    else:
        assert lines is not None
        data = read_lines_csv(lines)
        source = lines.name
    n = len(data["field_T"])
    sig = None
    if "sigma_eV" in data:
        s = np.asarray(data["sigma_eV"], dtype=float)
        if np.any(np.isnan(s)):
            if sigma is None:
                raise UserError("some rows lack sigma_eV: give --sigma for them")
            s = np.where(np.isnan(s), sigma, s)
        sig = s
    elif sigma is not None:
        sig = np.full(n, sigma)
    if output is not None and output.suffix.lower() not in (".nc", ".json"):
        raise UserError(f"--output must end in .nc or .json, got {output.name}")
    if offset not in ("diamagnetic", "per_field"):
        raise UserError(f"--offset must be diamagnetic or per_field, got {offset!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ZeemanFitWarning)
        res = fit_zeeman(
            data["field_T"],
            data["energy_eV"],
            sig,
            polarization=data.get("polarization"),
            geometry=geometry,
            offset=offset,  # type: ignore[arg-type]
            fix=_parse_fix(fix or []),
        )
    console = Console()
    table = Table(title=f"Zeeman fit of {source} ({n} lines, {res.offset} offset)")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    table.add_column("± 1σ", justify="right")
    table.add_column("unit")
    show = [
        ("g_X", "g_X", 1.0, ""),
        ("dark_bright_eV", "Δ_DB (dark-bright)", 1e3, "meV"),
        ("split_xy_eV", "E_Y − E_X", 1e3, "meV"),
        ("split_z_eV", "E_Z − (E_X+E_Y)/2", 1e3, "meV"),
        ("g_e_minus_g_h", "|g_e − g_h|", 1.0, ""),
        ("E_bright_eV", "E_bright (B = 0 mean)", 1.0, "eV"),
        ("gamma_dia_eV_T2", "γ_dia", 1e6, "µeV/T²"),
    ]
    for key, label, scale, unit in show:
        v, e = res.params[key], res.stderr[key]
        if key == "g_X" and not res.g_X_sign_determined:
            label = "|g_X| (sign needs σ± labels)"
        err = "fixed" if e == 0 else ("∞" if not math.isfinite(e) else f"{e * scale:.4g}")
        digits = 7 if key == "E_bright_eV" else 4
        table.add_row(label, f"{v * scale:.{digits}g}", err, unit)
    console.print(table)
    console.print(
        f"χ² = {res.gof.chi2:.3g}, dof = {res.gof.dof}, χ²_red = {res.gof.chi2_red:.3g}, "
        f"converged = {res.converged}"
    )
    for note in res.notes:
        console.print(f"note: {note}", highlight=False)
    if caught:  # the same content is in the notes
        console.print("[yellow]warning:[/yellow] see the notes above")
    if output is not None:
        if output.suffix.lower() == ".json":
            output.write_text(res.to_json())
        else:
            res.to_dataset().to_netcdf(output, engine="h5netcdf")
        console.print(f"result written to {output}")
    if plot is not None:
        from qdsim.plotting.zeeman import plot_zeeman_fan

        fig = plot_zeeman_fan(res, relative=relative, title=f"Zeeman fan: {source}")
        fig.savefig(plot, dpi=150)
        console.print(f"fan plot written to {plot}")
    if not res.converged:
        exit_not_converged(lines or source, "Zeeman")
