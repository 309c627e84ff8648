"""Intensity (blinking) trace figure: counts per bin against time, with the histogram of counts
per bin beside it (on/off states of a blinking dot show up as its peaks)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_trace"]


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        import os

        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt_bin(bin_s: float) -> str:
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if bin_s >= f:
            return f"{bin_s / f:.3g} {unit}"
    return f"{bin_s * 1e12:.3g} ps"


def plot_trace(
    trace: xr.DataArray,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Plot an intensity trace from `qdsim.analysis.intensity_trace`.

    **Arguments:** `trace`: DataArray of counts, dim "time" (s) or ("channel", "time");
    `ax`: a matplotlib Axes to draw the trace on (then no side histogram is added);
    `title`: figure title (default: the source file name); `path`: save the figure there (PNG,
    PDF, SVG by extension, 150 dpi).

    **Returns:** the matplotlib Figure.
    """
    plt = _pyplot()
    bin_s = float(trace.attrs.get("bin_s", np.diff(trace["time"].values[:2])[0]))
    t = trace["time"].values
    series = (
        [(f"channel {int(c)}", trace.sel(channel=c).values) for c in trace["channel"].values]
        if "channel" in trace.dims
        else [(None, trace.values)]
    )
    if ax is None:
        fig, (ax, hax) = plt.subplots(
            1,
            2,
            figsize=(9, 3.2),
            sharey=True,
            gridspec_kw={"width_ratios": [5, 1], "wspace": 0.04},
            layout="constrained",
        )
    else:
        fig, hax = ax.figure, None
    edges = np.append(t, t[-1] + bin_s) if t.size else t
    ymax = 0
    for label, y in series:
        ax.stairs(y, edges, label=label, linewidth=0.8)
        ymax = max(ymax, int(y.max()) if y.size else 0)
        if hax is not None:
            hb = np.arange(-0.5, y.max() + 1.5) if y.max() < 60 else 50
            hax.hist(y, bins=hb, orientation="horizontal", histtype="step", linewidth=0.8)
    ax.set_xlim(edges[0] if edges.size else 0, edges[-1] if edges.size else 1)
    ax.set_ylim(0, ymax * 1.18 + 1)  # headroom for the rate note and the legend
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"counts per {_fmt_bin(bin_s)} bin")
    rate = trace.attrs.get("mean_rate_cps")
    if rate is not None:
        ax.text(
            0.995,
            0.97,
            f"mean {rate / 1e3:.3g} kcounts/s",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize="small",
        )
    if len(series) > 1:
        ax.legend(loc="upper left", ncols=len(series), fontsize="small", frameon=False)
    if hax is not None:
        hax.set_xlabel("number of bins")
        hax.tick_params(labelleft=False)
    src = trace.attrs.get("source")
    if title is None and src:
        title = Path(str(src)).name
    if title:
        fig.suptitle(title, fontsize="medium")
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
