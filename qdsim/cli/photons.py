"""`qdsim g2 FILE` and `qdsim lifetime FILE`: photon correlation and TCSPC lifetime fits."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qdsim.cli._app import UserError, app, exit_not_converged

if TYPE_CHECKING:
    import xarray as xr

#: Files with more records than this show a progress bar.
PROGRESS_MIN_RECORDS = 5_000_000
CHUNK_RECORDS = 1_000_000


def _duration(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    from qdsim.analysis.units import parse_duration_ps

    try:
        return parse_duration_ps(text)
    except ValueError as exc:
        raise UserError(f"{option}: {exc}") from None


def _check_paths(file: Path, *outputs: Path | None) -> None:
    if not file.exists():
        raise UserError(f"{file}: no such file")
    for out in outputs:
        if out is not None and not out.parent.exists():
            raise UserError(f"{out}: directory {out.parent} does not exist")


def _progress(n_records: int, label: str):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label + " {task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        transient=True,
        disable=n_records < PROGRESS_MIN_RECORDS,
    )


def _open_photon_file(file: Path):
    """`(record source, None)` of a photon file, or `(None, why)` when the file is intact but no
    photon file (e.g. a histogram). A damaged photon file raises the reader's
    `FileFormatError`, whose message (file and problem) reaches the user unchanged."""
    from qdsim.analysis.photons.io import NotAPhotonFileError, open_records

    try:
        return open_records(file), None
    except NotAPhotonFileError as exc:
        return None, exc


def _write_netcdf(obj: Any, path: Path) -> None:
    try:
        obj.to_netcdf(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write: {exc}") from None
    typer.echo(f"wrote {path}")


def _save_plot(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=150)
    except OSError as exc:
        raise UserError(f"{path}: cannot write: {exc}") from None
    finally:
        plt.close(fig)
    typer.echo(f"wrote {path}")


def _netcdf_safe(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list | tuple):
        return [_netcdf_safe(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# g2
# ---------------------------------------------------------------------------------------------


#: Fewest raw coincidences per bin (mean over the window) for a g2(0) fit: below this each bin's
#: Poisson noise exceeds ~30 %, the peak shape and width are not determined and the fit's chi2 and
#: deviance say nothing about the model. Wider --bin fixes it.
MIN_G2_COUNTS_PER_BIN = 10.0

#: Complete side peaks (both sides together) a CW-normalised g2 must show to be taken as pulsed.
MIN_DETECTED_SIDE_PEAKS = 4

#: deviance/dof above which a fit is reported as not describing the data (Poisson: ~1 +- few %).
POOR_FIT_DEVIANCE_DOF = 3.0


def _warn_poor_fit(gof, hint: str) -> None:
    """One stderr line when the model does not describe the data: the errors then mean little."""
    dev = float(gof["deviance_dof"])
    if dev > POOR_FIT_DEVIANCE_DOF:
        typer.echo(
            f"warning: the model does not describe these data (deviance/dof = {dev:.3g}); "
            f"the quoted errors are then not meaningful: {hint}",
            err=True,
        )


def _fit_quietly(fit, *args, **kwargs):
    """Run a library fit; its FitWarning (not converged) is reported by the verb itself."""
    import warnings

    from qdsim.analysis import FitWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        return fit(*args, **kwargs)


def _as_pulsed(h: xr.DataArray) -> xr.DataArray | None:
    """The CW-normalised g2 `h` renormalised to its side peaks when its coincidences form a peak
    train (pulsed excitation), else None."""
    import numpy as np

    from qdsim.analysis.photons.correlate import normalize_g2
    from qdsim.analysis.photons.g2fit import find_period

    counts, delay = h["counts"].values, h["delay"].values
    try:
        find_period(delay, counts)
        factor, extra = normalize_g2(counts, delay, "pulsed", bin_ps=h.attrs["bin_ps"])
    except ValueError:
        return None
    if extra["n_side_peaks"] < MIN_DETECTED_SIDE_PEAKS:
        return None  # one side peak each way is no train: a CW dip or bump can look like that
    out = h.copy(data=counts / factor)
    out["counts_err"] = ("delay", np.sqrt(counts) / factor, h["counts_err"].attrs)
    out.attrs.update(extra, normalize="pulsed", norm_factor=float(factor))
    out.attrs["pulsed_detected"] = 1
    return out


@app.command("g2")
def g2_command(
    file: Annotated[
        Path, typer.Argument(help="Photon file (T2 or T3): PTU, .pt2/.pt3, .ht2/.ht3.")
    ],
    channels: Annotated[
        tuple[int, int],
        typer.Option("--channels", help="The two channels a b; delay = t(b) - t(a)."),
    ] = (0, 1),
    bin: Annotated[str, typer.Option("--bin", help="Bin width with unit, e.g. 64ps.")] = "64ps",
    window: Annotated[
        str, typer.Option("--window", help="Half window with unit, e.g. 50ns (+-window).")
    ] = "50ns",
    pulsed: Annotated[
        bool,
        typer.Option("--pulsed", help="Pulsed excitation: side-peak normalisation and peak fit."),
    ] = False,
    period: Annotated[
        str | None, typer.Option("--period", help="Laser period, e.g. 12.8ns (default: found).")
    ] = None,
    sigma: Annotated[
        str | None,
        typer.Option("--sigma", help="Timing response (Gaussian sigma) to hold fixed, e.g. 40ps."),
    ] = None,
    bunching: Annotated[
        bool, typer.Option("--bunching", help="Fit a blinking (bunching) envelope.")
    ] = False,
    fit: Annotated[bool, typer.Option("--fit/--no-fit", help="Fit g2(0) (default on).")] = True,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write g2 and fit (netCDF).")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Save a figure (PNG, PDF, SVG).")
    ] = None,
) -> None:
    """Second-order correlation g2(tau) of two detectors, with g2(0) from a fit."""
    from qdsim.analysis import fit_g2_cw, fit_g2_pulsed, g2
    from qdsim.analysis.photons.io import iter_photons

    bin_ps = _duration(bin, "--bin")
    window_ps = _duration(window, "--window")
    period_ps = _duration(period, "--period")
    sigma_ps = _duration(sigma, "--sigma")
    _check_paths(file, output, plot)
    src, _ = _open_photon_file(file)
    if src is None:
        raise UserError(f"{file}: not a photon file (PTU, .pt2/.pt3, .ht2/.ht3)")
    a, b = channels
    with _progress(src.n_records, "correlating") as bar:
        task = bar.add_task(file.name, total=max(src.n_records, 1))
        chunks = iter_photons(
            file,
            chunk_records=CHUNK_RECORDS,
            channels=sorted({a, b}),
            progress=lambda done, total: bar.update(task, completed=done),
        )
        h = g2(
            chunks,
            channels=(a, b),
            bin_ps=bin_ps,
            window_ps=window_ps,
            normalize="pulsed" if pulsed else "cw",
            period_ps=period_ps,
        )
    h.attrs["source"] = str(file)
    n_pairs = int(h["counts"].sum())
    typer.echo(
        f"{file.name}: channels {a} x {b}: {h.attrs['n_a']:,} x {h.attrs['n_b']:,} photons in "
        f"{h.attrs['duration_s']:.6g} s; {n_pairs:,} pairs within +-{h.attrs['window_ps']:,} ps "
        f"in {h.sizes['delay']} bins of {h.attrs['bin_ps']} ps"
    )
    if not pulsed:
        hp = _as_pulsed(h)
        if hp is not None:
            h, pulsed = hp, True
            typer.echo(
                f"pulsed excitation: the coincidences form peaks every "
                f"{h.attrs['period_ps']:.6g} ps, which the CW model cannot describe; analysed "
                "as pulsed (pass --pulsed to skip this check)"
            )
    if pulsed:
        typer.echo(
            f"pulsed normalisation: period {h.attrs['period_ps']:.6g} ps, "
            f"{h.attrs['n_side_peaks']} side peaks of mean area {h.attrs['side_peak_area']:.6g}"
        )
        from qdsim.analysis.photons.g2fit import g2_area_ratio

        try:
            r0, r0_err, _ = g2_area_ratio(
                h["delay"].values, h["counts"].values, h.attrs["period_ps"], h.attrs["offset_ps"]
            )
            typer.echo(f"g2(0) = {r0:.4f} ± {r0_err:.4f} (raw area ratio)")
        except ValueError as exc:
            typer.echo(f"area ratio skipped: {exc}")
    result = None
    per_bin = n_pairs / max(h.sizes["delay"], 1)
    if fit and per_bin < MIN_G2_COUNTS_PER_BIN:
        k = math.ceil(MIN_G2_COUNTS_PER_BIN / max(per_bin, 1e-9))
        typer.echo(
            f"fit refused: {per_bin:.3g} coincidences per bin on average, a g2(0) fit needs at "
            f"least {MIN_G2_COUNTS_PER_BIN:g}: use wider bins (--bin {k * h.attrs['bin_ps']}ps or "
            "more) or a longer measurement"
        )
        fit = False
    if fit:
        try:
            if pulsed:
                result = _fit_quietly(
                    fit_g2_pulsed, h, period_ps=period_ps, sigma_ps=sigma_ps, bunching=bunching
                )
            else:
                result = _fit_quietly(fit_g2_cw, h, sigma_ps=sigma_ps, bunching=bunching)
        except ValueError as exc:
            typer.echo(f"fit skipped: {exc}")
    if result is not None:
        _print_g2_fit(result, pulsed)
    if output is not None:
        ds = h.to_dataset(name="g2")
        ds.attrs = {k: _netcdf_safe(v) for k, v in h.attrs.items()}
        if result is not None:
            f = float(h.attrs["norm_factor"])
            ds["g2_fit"] = ("delay", result.fit / f, {"long_name": "fitted g2 (same scale)"})
            ds.attrs["fit_model"] = "pulsed" if pulsed else "cw"
            ds.attrs["fit_converged"] = int(result.converged)
            for k, v in result.params.items():
                ds.attrs[f"fit_{k}"] = v
                ds.attrs[f"fit_{k}_stderr"] = result.stderr[k]
            for k, v in result.gof.items():
                ds.attrs[f"fit_gof_{k}"] = v
        _write_netcdf(ds, output)
    if plot is not None:
        from qdsim.plotting.photons import plot_g2

        _save_plot(plot_g2(h, result, title=f"{file.name}: channels {a} × {b}"), plot)
    if result is not None and not result.converged:
        exit_not_converged(file, "g2", result.message)


def _print_g2_fit(r: Any, pulsed: bool) -> None:
    note = "" if r.converged else " (NOT CONVERGED: not a result)"
    err = f"± {r.g2_0_err:.4f}" if r.g2_0_err > 0 else "(at its bound)"
    typer.echo(f"g2(0) = {r.g2_0:.4f} {err} (fit){note}")
    if pulsed:
        typer.echo(
            f"peak decay tau = {r.tau_ps:.4g} ± {r.tau_err_ps:.2g} ps, timing sigma = "
            f"{r.sigma_ps:.3g} ps, period = {r.period_ps:.6g} ps"
        )
    else:
        typer.echo(
            f"tau_r = {r.tau_r_ps:.4g} ± {r.tau_r_err_ps:.2g} ps, timing sigma = "
            f"{r.sigma_ps:.3g} ps"
        )
    if r.params.get("bunch_amp"):
        typer.echo(
            f"bunching: amplitude {r.params['bunch_amp']:.3g} ± {r.stderr['bunch_amp']:.2g}, "
            f"time {r.params['bunch_tau_ps']:.4g} ± {r.stderr['bunch_tau_ps']:.2g} ps"
        )
    typer.echo(f"chi2_red = {r.gof['chi2_red']:.3f}, deviance/dof = {r.gof['deviance_dof']:.3f}")
    _warn_poor_fit(r.gof, "check --period, --sigma, --bunching and the window")


# ---------------------------------------------------------------------------------------------
# lifetime
# ---------------------------------------------------------------------------------------------


def _rebin(h: xr.DataArray, bin_ps: int | None) -> xr.DataArray:
    if bin_ps is None:
        return h
    b = float(h.attrs["bin_ps"])
    k = bin_ps / b
    if abs(k - round(k)) > 1e-6 or round(k) < 1:
        raise UserError(f"--bin {bin_ps} ps is not a whole multiple of the {b:g} ps bins")
    k = int(round(k))
    if k == 1:
        return h
    n = h.sizes["time"] // k * k
    import numpy as np

    vals = h.values[:n].reshape(-1, k).sum(axis=1)
    t0 = float(h["time"].values[0]) - b / 2
    out = h.isel(time=slice(0, n // k)).copy(data=vals)
    out = out.assign_coords(time=t0 + (np.arange(n // k) + 0.5) * b * k)
    out["time"].attrs["units"] = "ps"
    out.attrs["bin_ps"] = b * k
    return out


def _load_decay(
    path: Path, curve: int | None, channel: int | None, bin_ps: int | None, what: str
) -> xr.DataArray:
    """A TCSPC histogram (time = bin centres, ps) from a T3 photon file or a histogram file."""
    import numpy as np

    from qdsim.analysis import decay_histogram
    from qdsim.analysis.photons.io import iter_photons, read_histogram

    src, _ = _open_photon_file(path)
    if src is not None:
        if not src.layout.t3:
            raise UserError(
                f"{path}: a T2 file has no micro times; {what} needs T3 data or a histogram file"
            )
        chans = None if channel is None else [channel]
        total = None
        with _progress(src.n_records, "histogramming") as bar:
            task = bar.add_task(path.name, total=max(src.n_records, 1))
            for chunk in iter_photons(
                path,
                chunk_records=CHUNK_RECORDS,
                channels=chans,
                progress=lambda done, n: bar.update(task, completed=done),
            ):
                if len(chunk) == 0 or not np.any(chunk.channel >= 0):
                    continue
                h = decay_histogram(chunk, channel=channel, bin_ps=bin_ps)
                if total is None:
                    total = h
                else:
                    total = total.copy(data=total.values + h.values)
                    total.attrs["n_photons"] += h.attrs["n_photons"]
        if total is None:
            raise UserError(f"{path}: no photons")
        total.attrs["source"] = str(path)
        return total
    try:
        curves = read_histogram(path)
    except ValueError as exc:
        raise UserError(f"{path}: neither a photon file nor a histogram file ({exc})") from None
    if curve is None:
        if len(curves) != 1:
            raise UserError(
                f"{path}: holds {len(curves)} curves; choose one with "
                f"{'--curve' if what == 'the decay' else '--irf-curve'} (0..{len(curves) - 1})"
            )
        curve = 0
    if not 0 <= curve < len(curves):
        raise UserError(f"{path}: no curve {curve} (0..{len(curves) - 1})")
    h = curves[curve]
    b = float(h.attrs["resolution_ps"])
    h = h.assign_coords(time=h["time"].values + b / 2)  # read_histogram gives bin starts
    h["time"].attrs["units"] = "ps"
    h.attrs["bin_ps"] = b
    h.attrs["source"] = str(path)
    return _rebin(h, bin_ps)


@app.command("lifetime")
def lifetime_command(
    file: Annotated[
        Path,
        typer.Argument(help="T3 photon file (PTU, .pt3, .ht3) or histogram (PHU, .dat, CSV)."),
    ],
    irf: Annotated[
        Path | None,
        typer.Option("--irf", help="Measured IRF: T3 photon file or histogram file."),
    ] = None,
    curve: Annotated[
        int | None, typer.Option("--curve", help="Curve of a multi-curve histogram file.")
    ] = None,
    irf_curve: Annotated[
        int | None, typer.Option("--irf-curve", help="Curve of a multi-curve IRF file.")
    ] = None,
    channel: Annotated[
        int | None, typer.Option("--channel", help="T3: detector channel (default: all).")
    ] = None,
    bin: Annotated[
        str | None, typer.Option("--bin", help="Bin width, a multiple of the resolution.")
    ] = None,
    n_exp: Annotated[int, typer.Option("--n-exp", help="1 (mono) or 2 (bi-exponential).")] = 1,
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            help="Laser period for the wrapped tail, e.g. 12.5ns, or 'none' "
            "(default: the sync period of T3 files, none for histograms).",
        ),
    ] = None,
    fit_period: Annotated[
        bool, typer.Option("--fit-period", help="Also fit the period (multi-pulse traces).")
    ] = False,
    start: Annotated[
        str | None, typer.Option("--from", help="Start of the fitted range, e.g. 1ns.")
    ] = None,
    stop: Annotated[
        str | None, typer.Option("--to", help="End of the fitted range, e.g. 12ns.")
    ] = None,
    profile: Annotated[
        bool,
        typer.Option("--profile/--no-profile", help="Profile-likelihood intervals (default on)."),
    ] = True,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write data, fit, results (netCDF).")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Save a figure (PNG, PDF, SVG).")
    ] = None,
) -> None:
    """Fluorescence lifetime(s): IRF reconvolution fit of a TCSPC decay (Poisson ML)."""
    from qdsim.analysis import fit_decay

    bin_ps = _duration(bin, "--bin")
    period_ps: float | None
    no_wrap = period is not None and period.strip().lower() == "none"
    period_ps = None if no_wrap else _duration(period, "--period")
    start_ps = None
    if start is not None:
        try:
            start_ps = 0 if float(start.rstrip("psnuµμm ")) == 0 else None
        except ValueError:
            start_ps = None
        if start_ps is None:
            start_ps = _duration(start, "--from")
    stop_ps = _duration(stop, "--to")
    if n_exp not in (1, 2):
        raise UserError(f"--n-exp must be 1 or 2, got {n_exp}")
    _check_paths(file, output, plot)
    if irf is not None and not irf.exists():
        raise UserError(f"{irf}: no such file")
    h = _load_decay(file, curve, channel, bin_ps, "the decay")
    if period_ps is None and not no_wrap:
        p = h.attrs.get("period_ps")
        period_ps = float(p) if p is not None and math.isfinite(float(p)) else None
    irf_h = None
    if irf is not None:
        irf_h = _load_decay(irf, irf_curve, channel, bin_ps, "the IRF")
        if not math.isclose(irf_h.attrs["bin_ps"], h.attrs["bin_ps"], rel_tol=1e-6):
            raise UserError(
                f"{irf}: IRF bins of {irf_h.attrs['bin_ps']:g} ps differ from the decay's "
                f"{h.attrs['bin_ps']:g} ps (use --bin to rebin both)"
            )
    fit_range = None
    if start_ps is not None or stop_ps is not None:
        fit_range = (float(start_ps or -math.inf), float(stop_ps or math.inf))
    r = _fit_quietly(
        fit_decay,
        h["time"].values,
        h.values,
        irf=irf_h,
        n_exp=n_exp,
        period_ps=period_ps,
        fit_period=fit_period,
        fit_range_ps=fit_range,
        profile=profile,
    )
    wrap = f"wrapped tail, period {r.period_ps:.6g} ps" if r.period_ps else "no wrapped tail"
    irf_txt = {"measured": f"IRF {irf.name if irf else ''}", "gaussian": "Gaussian IRF (fitted)"}
    irf_txt = irf_txt.get(r.irf_model, f"no IRF ({r.irf_model})")
    typer.echo(
        f"{file.name}: {int(h.values.sum()):,} counts in {h.sizes['time']} bins of "
        f"{h.attrs['bin_ps']:.4g} ps; {irf_txt}; {wrap}"
    )
    for i in range(r.n_exp):
        lo, hi = r.lifetimes_ci_ps[i]
        ci = f", {100 * r.ci_level:.1f} % profile CI [{lo:.5g}, {hi:.5g}] ps" if profile else ""
        frac = f", fraction {r.fractions[i]:.3f} ± {r.fractions_err[i]:.3f}" if r.n_exp > 1 else ""
        typer.echo(
            f"tau{i + 1} = {r.lifetimes_ps[i]:.5g} ± {r.lifetimes_err_ps[i]:.2g} ps{ci}{frac}"
        )
    if "irf_sigma_ps" in r.params:
        typer.echo(
            f"IRF: t0 = {r.params['irf_t0_ps']:.6g} ps, sigma = {r.params['irf_sigma_ps']:.3g} ± "
            f"{r.stderr['irf_sigma_ps']:.2g} ps"
        )
    elif "shift_ps" in r.params:
        typer.echo(f"IRF shift = {r.params['shift_ps']:.4g} ± {r.stderr['shift_ps']:.2g} ps")
    note = "" if r.converged else "  (NOT CONVERGED: not a result)"
    typer.echo(
        f"background {r.params['background']:.4g} counts/bin; chi2_red = "
        f"{r.gof['chi2_red']:.3f}, deviance/dof = {r.gof['deviance_dof']:.3f}{note}"
    )
    _warn_poor_fit(
        r.gof,
        "multi-pulse histograms need --period (or --fit-period), a measured --irf fits better "
        "than the Gaussian stand-in, and --from/--to restrict the range",
    )
    if output is not None:
        ds = r.to_dataset()
        ds.attrs["source"] = str(file)
        if irf is not None:
            ds.attrs["irf_source"] = str(irf)
        _write_netcdf(ds, output)
    if plot is not None:
        from qdsim.plotting.photons import plot_decay

        _save_plot(plot_decay(r, title=file.name), plot)
    if not r.converged:
        exit_not_converged(file, "lifetime", r.message)
