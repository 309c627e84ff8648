"""Placed dots on the phase diagram: posterior-predictive regions in the (emission energy,
dark-bright splitting) plane (the paper's Fig. 3g), posterior regions in the (x, diameter) plane,
and a corner plot of one dot's posterior (diameter, x and the nuisances).

Every function takes the dots as a list of `qdsim.Placement` objects or as the Dataset that
`qdsim place -o` writes (dim `dot`, draws on dim `draw`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qdsim.plotting._style import pyplot

__all__ = [
    "dot_draws",
    "overlay_dots_energy",
    "overlay_dots_size",
    "overlay_figure",
    "plot_corner",
    "plot_placements",
]

#: Probability mass inside the drawn credible regions.
LEVELS = (0.68, 0.95)


def dot_draws(dots) -> list[tuple[str, dict[str, np.ndarray]]]:
    """[(name, {variable: finite draws})] of a list of Placements or a `qdsim place` Dataset."""
    out = []
    if hasattr(dots, "dims") and "dot" in getattr(dots, "dims", ()):
        for k in range(dots.sizes["dot"]):
            sub = dots.isel(dot=k)
            name = str(sub["dot"].values)
            d = {
                v: np.asarray(sub[v].values, dtype=float)
                for v in sub.data_vars
                if "draw" in sub[v].dims
            }
            ok = np.isfinite(d["diameter"])
            out.append((name, {k2: v[ok] for k2, v in d.items()}))
        return out
    for p in dots:
        s = p.samples
        out.append((p.name, {v: np.asarray(s[v].values, dtype=float) for v in s.data_vars}))
    return out


def _colors(n: int):
    plt = pyplot()
    cmap = plt.get_cmap("tab10")
    return [cmap(k % 10) for k in range(n)]


def _halo(width: float):
    from matplotlib import patheffects

    return patheffects.withStroke(linewidth=width, foreground="w")


def _density_levels(h: np.ndarray, levels: Sequence[float]) -> list[float]:
    """Density thresholds of the highest-density regions holding `levels` of the mass."""
    flat = np.sort(h.ravel())[::-1]
    cum = np.cumsum(flat)
    cum /= cum[-1]
    out = []
    for lv in sorted(levels, reverse=True):  # increasing thresholds
        k = min(int(np.searchsorted(cum, lv)), len(flat) - 1)
        out.append(float(flat[k]))
    return out


def credible_regions(
    ax, u, v, color, *, logv: bool = False, bins: int = 60, label=None, fill: bool = True
):
    """68 % and 95 % highest-density regions of the draws (u, v) (2-D histogram smoothed by one
    bin): filled, or (`fill=False`) outlined, 68 % solid and 95 % dotted. `logv`: v is
    histogrammed in log10 (for a log axis). Falls back to a scatter when the draws are too few
    or too concentrated for a histogram. Returns the (68 %) upper edge of v drawn."""
    from scipy.ndimage import gaussian_filter

    u, v = np.asarray(u, float), np.asarray(v, float)
    ok = np.isfinite(u) & np.isfinite(v) & ((v > 0) if logv else True)
    u, v = u[ok], v[ok]
    vv = np.log10(v) if logv else v
    if len(u) < 50 or np.ptp(u) == 0 or np.ptp(vv) == 0:
        ax.scatter(u, v, s=4, color=color, alpha=0.4, label=label)
        return float(np.max(v)) if len(v) else float("nan")
    lo_u, hi_u = np.quantile(u, [0.001, 0.999])
    lo_v, hi_v = np.quantile(vv, [0.001, 0.999])
    pu, pv = 0.15 * (hi_u - lo_u) + 1e-12, 0.15 * (hi_v - lo_v) + 1e-12
    h, eu, ev = np.histogram2d(
        u, vv, bins=bins, range=[[lo_u - pu, hi_u + pu], [lo_v - pv, hi_v + pv]]
    )
    h = gaussian_filter(h, 1.0)
    th = _density_levels(h, LEVELS)
    cu, cv = 0.5 * (eu[1:] + eu[:-1]), 0.5 * (ev[1:] + ev[:-1])
    cv_plot = 10**cv if logv else cv
    if fill:
        ax.contourf(cu, cv_plot, h.T, levels=[th[0], np.inf], colors=[color], alpha=0.18)
        ax.contourf(cu, cv_plot, h.T, levels=[th[1], np.inf], colors=[color], alpha=0.35)
        ax.contour(cu, cv_plot, h.T, levels=th, colors=[color], linewidths=[0.8, 1.4])
    else:
        ax.contour(
            cu,
            cv_plot,
            h.T,
            levels=th,
            colors=[color],
            linewidths=[1.0, 1.6],
            linestyles=[":", "-"],
        )
    if label is not None:
        ax.plot([], [], color=color, lw=6, alpha=0.5, label=label)
    inside = np.any(h >= th[0], axis=0)  # v bins holding part of the 95 % region
    return float(cv_plot[np.flatnonzero(inside)[-1]]) if inside.any() else float(np.max(v))


def _measured(dots) -> list[dict[str, tuple[float, float]]]:
    """Per dot: {quantity: (value, sigma)} of what was measured (eV, s)."""
    if hasattr(dots, "dims") and "dot" in getattr(dots, "dims", ()):
        out = []
        for k in range(dots.sizes["dot"]):
            m = {}
            for q in ("energy_eV", "dark_bright_eV", "lifetime_s"):
                v = f"measured_{q}"
                if v in dots and np.isfinite(float(dots[v][k])):
                    m[q] = (float(dots[v][k]), float(dots[f"{v}_err"][k]))
            out.append(m)
        return out
    return [dict(p.measurements) for p in dots]


def overlay_dots_energy(ax, dots, *, colors=None, labels: bool = True, fill=None):
    """Each dot's posterior-predictive (emission energy, splitting in meV) 68/95 % regions on a
    Fig. 3g axis, labelled at their top, and its measurement (star with error bars) where both
    energy and splitting were measured. `fill`: filled regions (default: for up to 3 dots)."""
    items = dot_draws(dots)
    meas = _measured(dots)
    colors = colors or _colors(len(items))
    fill = len(items) <= 3 if fill is None else fill
    logy = ax.get_yscale() == "log"
    for (name, d), m, c in zip(items, meas, colors, strict=True):
        e, s = d["emission_energy"], d["dark_bright_splitting"] * 1e3
        top = credible_regions(ax, e, s, c, logv=logy, fill=fill)
        k = np.isfinite(e) & np.isfinite(s) & ((s > 0) if logy else True)
        if "energy_eV" in m and "dark_bright_eV" in m:
            ax.errorbar(
                m["energy_eV"][0],
                m["dark_bright_eV"][0] * 1e3,
                xerr=m["energy_eV"][1],
                yerr=m["dark_bright_eV"][1] * 1e3,
                fmt="*",
                ms=12,
                color=c,
                mec="k",
                zorder=7,
            )
        if labels and k.any():
            lo_e, hi_e = np.quantile(e[k], [0.025, 0.975])
            lo_s, hi_s = np.quantile(s[k], [0.025, 0.975])
            x0, x1 = ax.get_xlim()
            tall = (hi_e - lo_e) < 0.03 * (x1 - x0) and hi_s > 4 * max(lo_s, 1e-12)
            ax.annotate(
                name,
                (float(np.median(e[k])), top),
                xytext=(0, 3),
                textcoords="offset points",
                rotation=90 if tall else 0,
                ha="center",
                va="bottom",
                fontsize=8,
                color=c,
                weight="bold",
                zorder=8,
                path_effects=[_halo(2.5)],
            )
    return ax


def overlay_dots_size(ax, dots, *, colors=None, regions: bool = True, fill=None, labels=None):
    """Each dot's posterior 68/95 % regions in the (x, diameter) plane (x horizontal) and its
    median with 68 % intervals as error bars. `fill`, `labels` (text beside each median):
    default on for up to 3 dots (a legend names them otherwise)."""
    items = dot_draws(dots)
    colors = colors or _colors(len(items))
    fill = len(items) <= 3 if fill is None else fill
    labels = len(items) <= 3 if labels is None else labels
    logy = ax.get_yscale() == "log"
    for (name, d), c in zip(items, colors, strict=True):
        x, dia = d["x"], d["diameter"]
        if regions:
            credible_regions(ax, x, dia, c, logv=logy, fill=fill)
        xl, xm, xh = np.quantile(x, [0.15865, 0.5, 0.84135])
        dl, dm, dh = np.quantile(dia, [0.15865, 0.5, 0.84135])
        bars = ax.errorbar(
            xm,
            dm,
            xerr=[[xm - xl], [xh - xm]],
            yerr=[[dm - dl], [dh - dm]],
            fmt="o",
            ms=7,
            color=c,
            mec="k",
            capsize=3,
            elinewidth=1.8,
            zorder=6,
            label=name,
        )
        for line in bars.lines[2]:  # a white halo keeps the bars visible on a colour map
            line.set_path_effects([_halo(3.5)])
        if not labels:
            continue
        ax.annotate(
            name,
            (xm, dm),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=9,
            color=c,
            weight="bold",
            zorder=7,
            path_effects=[_halo(2.5)],
        )
    return ax


def plot_placements(dots, phase=None, *, path=None, title: str | None = None):
    """The Fig. 3g analogue with placed dots (left) and their posteriors in (x, diameter)
    (right).

    - `dots`: Placements or the Dataset of `qdsim place -o`.
    - `phase`: a (radius, x) `phase_diagram` Dataset for the lines of constant x and diameter
      (None: no lines).
    Returns the Figure; saves it to `path`.
    """
    from qdsim.plotting.phase import plot_phase_diagram

    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(15.0, 6.0), constrained_layout=True, width_ratios=[1.35, 1.0]
    )
    items = dot_draws(dots)
    colors = _colors(len(items))
    if phase is not None:
        plot_phase_diagram(
            phase,
            ax=ax1,
            dots=(),
            legend=False,
            title="",
            x_values=np.round(np.arange(0, 1, 0.1), 1),
        )
        ax1.legend(
            fontsize=7,
            loc="upper left",
            ncols=2,
            title="lines of constant x",
            title_fontsize=7,
            framealpha=0.8,
        )
    else:
        ax1.set_yscale("log")
        ax1.set_xlabel("bright exciton emission energy (eV)")
        ax1.set_ylabel("dark-bright splitting (meV)")
        ax1.grid(True, which="both", alpha=0.25)
    overlay_dots_energy(ax1, dots, colors=colors)
    lo, hi = ax1.get_ylim()
    ax1.set_ylim(lo, hi * 6 if ax1.get_yscale() == "log" else hi + 0.3 * (hi - lo))
    ax1.set_title(
        "posterior predictive of each dot (68 / 95 % regions"
        + ("" if len(items) <= 3 else ": solid / dotted")
        + "; stars: measured)\nmodel lines: constant x (solid colours), constant diameter "
        "(dashed grey)",
        fontsize=10,
    )
    overlay_dots_size(ax2, dots, colors=colors)
    ax2.set_xlabel("Br fraction x in FAPb(I$_{1-x}$Br$_x$)$_3$")
    ax2.set_ylabel("dot diameter (nm)")
    ax2.set_yscale("log")
    ax2.yaxis.set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
    ax2.yaxis.set_minor_formatter(plt.matplotlib.ticker.ScalarFormatter())
    ax2.tick_params(axis="y", which="minor", labelsize=7)
    ax2.grid(True, which="both", alpha=0.25)
    lo, hi = ax2.get_xlim()
    ax2.set_xlim(max(lo, -0.02), min(hi, 1.02))
    ax2.set_title(
        "posterior: median, 68 % intervals, 68 / 95 % regions"
        + ("" if len(items) <= 3 else " (solid / dotted)"),
        fontsize=10,
    )
    ax2.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=12)
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig


#: Corner plot variables: (name, label, scale).
CORNER_VARS = (
    ("diameter", "diameter (nm)", 1.0),
    ("x", "Br fraction x", 1.0),
    ("f_v", "f_v", 1.0),
    ("hwLT", "ħω_LT (meV)", 1e3),
    ("dSR", "Δ_SR (meV)", 1e3),
)


def plot_corner(dot, *, name: str | None = None, path=None, variables=CORNER_VARS, bins: int = 40):
    """Corner plot of one dot's posterior: marginal histograms on the diagonal (median and 68 %
    interval dashed), 68/95 % regions of each pair below. `dot`: a Placement, or a Dataset of
    draws (one dot of the `qdsim place` file, `ds.isel(dot=k)`). Returns the Figure."""
    plt = pyplot()
    if hasattr(dot, "samples"):
        name = name or dot.name
        src = {v: np.asarray(dot.samples[v].values, float) for v in dot.samples.data_vars}
    else:
        if name is None:
            name = str(dot["dot"].values) if "dot" in dot.coords else "dot"
        src = {v: np.asarray(dot[v].values, float) for v in dot.data_vars if "draw" in dot[v].dims}
    ok = np.isfinite(src["diameter"])
    vars_ = [(v, lab, sc) for v, lab, sc in variables if v in src]
    n = len(vars_)
    fig, axes = plt.subplots(
        n, n, figsize=(2.2 * n, 2.2 * n), constrained_layout=True, squeeze=False
    )
    color = "tab:blue"
    for i, (vi, li, si) in enumerate(vars_):
        a = src[vi][ok] * si
        for j, (vj, lj, sj) in enumerate(vars_):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                ax.hist(a, bins=bins, color=color, alpha=0.6, density=True)
                q = np.quantile(a, [0.15865, 0.5, 0.84135])
                for qq, ls in zip(q, ("--", "-", "--"), strict=True):
                    ax.axvline(qq, color="k", lw=0.9, ls=ls)
                ax.set_title(f"{li}\n{q[1]:.3g} [{q[0]:.3g}, {q[2]:.3g}]", fontsize=8)
                ax.set_yticks([])
            else:
                b = src[vj][ok] * sj
                if np.ptp(a) > 0 and np.ptp(b) > 0:
                    credible_regions(ax, b, a, color, bins=30)
                else:
                    ax.scatter(b, a, s=2, color=color)
            if i == n - 1:
                ax.set_xlabel(lj, fontsize=9)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(li, fontsize=9)
            elif j > 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=7)
    for i, (vi, _, si) in enumerate(vars_):  # common ranges along rows and columns
        a = src[vi][ok] * si
        lo, hi = np.quantile(a, [0.002, 0.998])
        pad = 0.05 * (hi - lo) if hi > lo else 0.5 * abs(lo) + 1e-9
        for k in range(n):
            if k >= i:
                axes[k, i].set_xlim(lo - pad, hi + pad)
            if k < i:
                axes[i, k].set_ylim(lo - pad, hi + pad)
    title = f"{name}: posterior (68 / 95 % regions; median and 68 % interval)"
    if getattr(dot, "method", None) == "grid" or (
        not hasattr(dot, "samples") and "method" in dot and str(dot["method"].values) == "grid"
    ):
        title += "\ngrid engine: f_v, ħω_LT, Δ_SR take the values of the table's quasi-random draws"
    fig.suptitle(title, fontsize=11)
    if path is not None:
        fig.savefig(path, dpi=130)
    return fig


def overlay_figure(fig, dots, kind: str = "energy"):
    """Overlay placed dots on every panel of a figure of `plot_phase_panels` (`kind="energy"`:
    posterior-predictive regions) or `plot_map` (`kind="size"`: (x, diameter) medians, 68 %
    intervals and regions). Colour bars are left alone. Returns the Figure."""
    if kind not in ("energy", "size"):
        raise ValueError(f"kind must be 'energy' or 'size', got {kind!r}")
    items = dot_draws(dots)
    colors = _colors(len(items))
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>" or not ax.get_visible():
            continue
        if kind == "energy":
            overlay_dots_energy(ax, dots, colors=colors)
        else:
            lims = ax.get_xlim(), ax.get_ylim()
            overlay_dots_size(ax, dots, colors=colors, regions=False)
            ax.set_xlim(*lims[0])
            ax.set_ylim(*lims[1])
    return fig
