"""Photon-statistics figures: g2(tau) with its fit and residuals, TCSPC decays (log scale) with
the reconvolution fit, the IRF and residuals.

Each function takes the analysis objects (`g2` DataArray, fit results, `decay_histogram`
DataArray) and returns the matplotlib Figure; `path=` saves it (format from the extension).
The Agg backend is used when there is no display.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qdsim.plotting._style import pyplot

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

__all__ = ["plot_decay", "plot_g2"]


def _data_axes(plt, with_residuals: bool, height: float, height_alone: float):
    """(fig, data axes, residual axes or None): data over a shared-x residual panel when fitted."""
    if not with_residuals:
        fig, ax = plt.subplots(figsize=(8, height_alone), layout="constrained")
        return fig, ax, None
    fig, (ax, rax) = plt.subplots(
        2,
        1,
        figsize=(8, height),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05},
        layout="constrained",
    )
    return fig, ax, rax


def _time_axis(span_ps: float) -> tuple[float, str]:
    """Scale and unit for a time axis spanning `span_ps` picoseconds."""
    if span_ps >= 5e6:
        return 1e-6, "µs"
    if span_ps >= 5e3:
        return 1e-3, "ns"
    return 1.0, "ps"


def _deviance_residuals(counts: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Poisson deviance residuals sign(n - mu) sqrt(2 (n log(n / mu) - (n - mu))): close to
    standard normal even at a few counts per bin, unlike Pearson residuals."""
    n = np.asarray(counts, float)
    m = np.maximum(np.asarray(fit, float), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(n > 0, n * np.log(n / m), 0.0) - (n - m)
    return np.sign(n - m) * np.sqrt(np.maximum(2 * t, 0.0))


def _label_peak_areas(ax: Any, h: xr.DataArray, scale: float) -> None:
    """Write each complete period's area ratio (mean g2 over the period) above its peak."""
    P = h.attrs.get("period_ps")
    t0 = h.attrs.get("offset_ps", 0.0)
    if not P:
        return
    d = np.asarray(h["delay"].values, float)
    y = np.asarray(h.values, float)
    b = float(h.attrs.get("bin_ps", 1.0))
    k = np.arange(
        np.ceil((d[0] - b / 2 + P / 2 - t0) / P), np.floor((d[-1] + b / 2 - P / 2 - t0) / P) + 1
    )
    for kk in k:
        c = t0 + kk * P
        sel = (d >= c - P / 2) & (d < c + P / 2)
        if sel.any():
            ax.annotate(
                f"{y[sel].sum() * b / P:.2f}",
                (c * scale, y[sel].max()),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize="x-small",
                color="C0" if kk else "C3",
            )


def plot_g2(
    h: xr.DataArray,
    fit: Any = None,
    *,
    title: str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Plot a g2 histogram from `qdsim.analysis.g2`, with a fit and its residuals.

    **Arguments:** `h`: DataArray on dim `delay` (ps), any normalisation (the y axis follows its
    `normalize` attr: g2 or raw coincidences); `fit`: optional `G2PulsedResult` /
    `G2CWResult` of the same histogram, drawn over the data (scaled by `norm_factor`) with a
    panel of Pearson residuals and g2(0) in the legend; `title`; `path`: save there.

    **Returns:** the matplotlib Figure.
    """
    plt = pyplot()
    d = np.asarray(h["delay"].values, dtype=float)
    f = float(h.attrs.get("norm_factor", 1.0)) or 1.0
    how = h.attrs.get("normalize", "none")
    y = np.asarray(h.values, dtype=float)
    scale, unit = _time_axis(float(np.ptp(d)) if d.size else 1.0)
    b = float(h.attrs.get("bin_ps", np.diff(d[:2])[0] if d.size > 1 else 1.0))
    edges = np.append(d - b / 2, d[-1] + b / 2) * scale if d.size else d
    fig, ax, rax = _data_axes(plt, fit is not None, 5.0, 3.6)
    ax.stairs(y, edges, color="0.25", linewidth=0.7, label="data")
    if how == "cw":
        ax.axhline(1.0, color="0.6", linewidth=0.6, linestyle=":")
        ax.set_ylabel("g$^{(2)}(\\tau)$")
    elif how == "pulsed":
        ax.set_ylabel("g$^{(2)}(\\tau)$ (mean over a period = area ratio)")
        _label_peak_areas(ax, h, scale)
    else:
        ax.set_ylabel(f"coincidences per {b:g} ps bin")
    if fit is not None:
        model = np.asarray(fit.fit, dtype=float) / f
        err = getattr(fit, "g2_0_err", float("nan"))
        label = f"fit: g$^{{(2)}}$(0) = {fit.g2_0:.3f} ± {err:.3f}"
        area = getattr(fit, "g2_0_area", None)
        if area is not None:
            label += f" (area ratio {area:.3f} ± {fit.g2_0_area_err:.3f})"
        tau_r = getattr(fit, "tau_r_ps", None)
        if tau_r is not None:
            label += f", τ$_r$ = {tau_r:.0f} ps"
        tau = getattr(fit, "tau_ps", None)
        if tau is not None and getattr(fit, "period_ps", None):
            label += f", τ = {tau:.0f} ps"
        ax.plot(np.asarray(fit.delay_ps) * scale, model, color="C3", linewidth=1.0, label=label)
        r = _deviance_residuals(np.asarray(fit.counts, float), np.asarray(fit.fit, float))
        rax.stairs(r, edges, color="C0", linewidth=0.6)
        rax.axhline(0, color="0.5", linewidth=0.6)
        lim = max(4.0, float(np.nanpercentile(np.abs(r), 99.5)) * 1.1) if r.size else 4.0
        rax.set_ylim(-lim, lim)
        rax.set_ylabel("dev. residual")
        rax.set_xlabel(f"delay τ ({unit})")
        conv = "" if fit.converged else ", NOT CONVERGED"
        ax.lines[-1].set_label(f"{label}\nχ²$_{{red}}$ = {fit.gof['chi2_red']:.2f}{conv}")
    else:
        ax.set_xlabel(f"delay τ ({unit})")
    top = float(np.nanmax(y)) if y.size else 1.0
    ax.set_ylim(0, top * 1.25 if top > 0 else 1.0)
    ax.set_xlim(edges[0], edges[-1])
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    ch = h.attrs.get("channels")
    if title is None:
        src = h.attrs.get("source")
        title = Path(str(src)).name if src else None
        if ch is not None:
            desc = f"channels {ch[0]} × {ch[1]}"
            title = f"{title}: {desc}" if title else desc
    if title:
        fig.suptitle(title, fontsize="medium")
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig


def plot_decay(
    data: Any,
    *,
    irf: Any = None,
    log: bool = True,
    title: str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Plot a TCSPC decay: counts (log scale), the reconvolution fit, the IRF and residuals.

    **Arguments:** `data`: a `DecayResult` from `fit_decay` (counts, fit, its normalised IRF,
    residuals over the fitted bins, lifetimes in the legend) or a histogram DataArray on dim
    `time` (ps); `irf`: an IRF histogram to draw when `data` is a plain histogram (scaled to
    the data's peak); `log`: logarithmic counts axis; `title`; `path`: save there.

    **Returns:** the matplotlib Figure.
    """
    plt = pyplot()
    result = data if hasattr(data, "lifetimes_ps") else None
    if result is not None:
        t = np.asarray(result.time_ps, float)
        n = np.asarray(result.counts, float)
    else:
        t = np.asarray(data["time"].values, float)
        n = np.asarray(data.values, float)
    b = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    scale, unit = _time_axis(float(np.ptp(t)) + b)
    edges = np.append(t - b / 2, t[-1] + b / 2) * scale
    fig, ax, rax = _data_axes(plt, result is not None, 5.2, 3.8)
    ax.stairs(n, edges, color="0.3", linewidth=0.6, label="data")
    irf_curve = None
    if result is not None and result.irf is not None:
        irf_curve = np.asarray(result.irf, float)
    elif irf is not None:
        irf_curve = np.asarray(getattr(irf, "values", irf), float)
    if irf_curve is not None and irf_curve.size == n.size and irf_curve.max() > 0:
        irf_curve = irf_curve / irf_curve.max() * max(n.max(), 1.0)
        ax.stairs(irf_curve, edges, color="C2", linewidth=0.6, alpha=0.8, label="IRF (scaled)")
    if result is not None:
        m = np.asarray(result.fit, float)
        taus = ", ".join(
            f"{tau:.4g} ± {err:.2g} ps"
            for tau, err in zip(result.lifetimes_ps, result.lifetimes_err_ps, strict=True)
        )
        label = f"fit: τ = {taus}"
        if result.n_exp > 1:
            label += " (" + "/".join(f"{100 * f:.0f}" for f in result.fractions) + " %)"
        mask = np.asarray(result.fit_mask, bool)
        ax.plot(t[mask] * scale, m[mask], color="C3", linewidth=1.0, label=label)
        r = np.where(mask, _deviance_residuals(n, m), np.nan)
        rax.stairs(np.nan_to_num(r), edges, color="C0", linewidth=0.6)
        rax.axhline(0, color="0.5", linewidth=0.6)
        good = r[np.isfinite(r)]
        lim = max(4.0, float(np.percentile(np.abs(good), 99.5)) * 1.1) if good.size else 4.0
        rax.set_ylim(-lim, lim)
        rax.set_ylabel("dev. residual")
        rax.set_xlabel(f"time ({unit})")
        conv = "" if result.converged else ", NOT CONVERGED"
        ax.lines[-1].set_label(f"{label}\nχ²$_{{red}}$ = {result.gof['chi2_red']:.2f}{conv}")
    else:
        ax.set_xlabel(f"time ({unit})")
    if log:
        ax.set_yscale("log")
        pos = n[n > 0]
        ax.set_ylim(max(0.5, float(pos.min()) * 0.7) if pos.size else 0.5, max(n.max(), 1) * 3)
    # the fitted range (or the span holding counts), not empty bins up to the end of the range
    keep = np.asarray(result.fit_mask, bool) if result is not None else n > 0
    if not keep.any():
        keep = np.ones(n.size, bool)
    i0, i1 = int(np.argmax(keep)), n.size - int(np.argmax(keep[::-1]))
    ax.set_xlim(edges[i0], edges[i1])
    ax.set_ylabel(f"counts per {b:.4g} ps bin")
    ax.legend(loc="best", fontsize="small")
    if title:
        fig.suptitle(title, fontsize="medium")
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
