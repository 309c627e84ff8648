"""`qdsim trace FILE`: intensity (blinking) trace of a photon file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qdsim.cli._app import UserError, app

#: Files with more records than this show a progress bar (decoding runs at tens of M records/s).
PROGRESS_MIN_RECORDS = 5_000_000


def _channels(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise UserError(
            f"--channels expects comma-separated integers like '0,1', got {text!r}"
        ) from None


@app.command("trace")
def trace(
    file: Annotated[Path, typer.Argument(help="Photon file: PTU, .pt2/.pt3, .ht2/.ht3.")],
    bin: Annotated[
        str, typer.Option("--bin", help="Bin width with unit, e.g. 1ms, 10ms, 0.1s.")
    ] = "10ms",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the trace (netCDF).")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Save a figure (PNG, PDF, SVG).")
    ] = None,
    channels: Annotated[
        str | None, typer.Option("--channels", help="Channels to count, e.g. 0,1 (default: all).")
    ] = None,
    per_channel: Annotated[
        bool, typer.Option("--per-channel", help="One trace per channel.")
    ] = False,
) -> None:
    """Intensity (blinking) trace: photon counts per time bin of a photon file."""
    from qdsim.analysis.photons.io import iter_photons, open_records
    from qdsim.analysis.photons.trace import intensity_trace
    from qdsim.analysis.units import format_duration_ps, parse_duration_ps

    try:
        bin_ps = parse_duration_ps(bin)
    except ValueError as exc:
        raise UserError(f"--bin: {exc}") from None
    if not file.exists():
        raise UserError(f"{file}: no such file")
    for out in (output, plot):
        if out is not None and not out.parent.exists():
            raise UserError(f"{out}: directory {out.parent} does not exist")
    chans = _channels(channels)
    src = open_records(file)

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("decoding {task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        transient=True,
        disable=src.n_records < PROGRESS_MIN_RECORDS,
    ) as bar:
        task = bar.add_task(file.name, total=max(src.n_records, 1))
        chunks = iter_photons(
            file,
            chunk_records=1_000_000,
            channels=chans,
            progress=lambda done, total: bar.update(task, completed=done),
        )
        tr = intensity_trace(chunks, bin_s=bin_ps * 1e-12, channels=chans, per_channel=per_channel)

    counts = tr.values if tr.ndim == 1 else tr.values.sum(axis=0)
    chan_list = ", ".join(str(int(c)) for c in tr.attrs["channels"])
    typer.echo(
        f"{file.name}: {src.layout.name}, {int(counts.sum()):,} photons on channel(s) {chan_list} "
        f"in {tr.attrs['duration_s']:.6g} s"
    )
    typer.echo(
        f"{counts.size:,} bins of {format_duration_ps(bin_ps)}: counts per bin mean "
        f"{counts.mean():.6g}, min {counts.min():,}, max {counts.max():,}; "
        f"mean rate {tr.attrs['mean_rate_cps'] / 1e3:.4g} kcounts/s"
    )
    if tr.attrs["dropped_counts"]:
        typer.echo(f"last partial bin dropped ({tr.attrs['dropped_counts']:,} photons)")
    if output is not None:
        try:
            tr.to_netcdf(output)
        except OSError as exc:
            raise UserError(f"{output}: cannot write: {exc}") from None
        typer.echo(f"wrote {output}")
    if plot is not None:
        from qdsim.plotting.trace import plot_trace

        try:
            fig = plot_trace(tr, path=plot)
        except OSError as exc:
            raise UserError(f"{plot}: cannot write: {exc}") from None
        import matplotlib.pyplot as plt

        plt.close(fig)
        typer.echo(f"wrote {plot}")
