"""The phase diagram (the paper's Fig. 3g): emission energy vs dark-bright splitting over size
and composition, with measured dots placed on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qdsim.plotting._style import pyplot

__all__ = ["PAPER_DOTS", "MeasuredDot", "plot_map", "plot_phase_diagram", "plot_phase_panels"]

#: The dims of a sweep over which the Fig. 3g lines run; any other dim gets a panel per value.
_GRID_DIMS = ("radius", "x")


@dataclass(frozen=True)
class MeasuredDot:
    """A measured dot: emission energy (eV) and, when known, dark-bright splitting (eV)."""

    label: str
    energy_eV: float
    dark_bright_eV: float | None = None
    dark_bright_err_eV: float | None = None


#: Dots of the paper (Fig. 2a energies; dot 3's splitting from Fig. 3b, physics.md C.5).
PAPER_DOTS = (
    MeasuredDot("dot 3", 1.8167, 1.5e-3, 0.1e-3),
    MeasuredDot("dot 1", 1.922),
    MeasuredDot("dot 2", 1.872),
    MeasuredDot("dot 4", 1.722),
)


def plot_phase_diagram(
    ds,
    *,
    x_values: Sequence[float] | None = None,
    diameters_nm: Sequence[float] | None = None,
    dots: Sequence[MeasuredDot] = PAPER_DOTS,
    highlight_x: tuple[float, float] | None = (0.2, 0.4),
    ax=None,
    path=None,
    legend: bool = True,
    title: str | None = None,
):
    """Emission energy (eV) vs dark-bright splitting (meV) from a `phase_diagram` Dataset.

    Solid coloured lines: fixed composition x, size varying; dashed grey lines: fixed diameter,
    x varying (labelled in nm). Failed points (NaN) are left out. `highlight_x` draws the
    paper's range of observed compositions in bold. `ds` must have dims (radius, x) only (see
    `plot_phase_panels` for more). Returns the Figure; saves it to `path`.
    """
    extra = [d for d in ds["emission_energy"].dims if d not in _GRID_DIMS]
    if extra:
        raise ValueError(
            f"the Dataset has extra dims {extra}: select one value of each, or use "
            "plot_phase_panels"
        )
    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(9.0, 5.8), constrained_layout=True)
    else:
        fig = ax.figure
    E = ds["emission_energy"]
    D = ds["dark_bright_splitting"] * 1e3
    xs = ds["x"].values
    rs = ds["radius"].values
    if x_values is None:
        x_values = np.round(np.arange(0.0, 1.0, 0.1), 2)
    if diameters_nm is None:
        d = 2 * rs
        diameters_nm = [v for v in (3, 4, 5, 6, 8, 10, 12, 16) if d.min() <= v <= d.max()]
    cmap = plt.get_cmap("viridis")
    for xv in x_values:
        if not xs.min() <= xv <= xs.max():
            continue
        e, dd = E.interp(x=xv).values, D.interp(x=xv).values
        if not np.any(np.isfinite(e)):
            continue
        bold = highlight_x is not None and highlight_x[0] <= xv <= highlight_x[1]
        ax.plot(e, dd, color=cmap(xv), lw=2.6 if bold else 1.2, label=f"x = {xv:.2f}")
    for dv in diameters_nm:
        e, dd = E.interp(radius=dv / 2).values, D.interp(radius=dv / 2).values
        ok = np.isfinite(e) & np.isfinite(dd)
        if ok.sum() < 2:
            continue
        ax.plot(e[ok], dd[ok], color="0.45", lw=0.8, ls="--")
        k = int(np.flatnonzero(ok)[0])  # label at the I-rich end, where the lines fan out
        ax.annotate(
            f"d = {dv:g} nm",
            (e[k], dd[k]),
            fontsize=8,
            color="0.3",
            xytext=(-4, 0),
            textcoords="offset points",
            va="center",
            ha="right",
        )
    for dot in dots:
        if dot.dark_bright_eV is None:
            ax.axvline(dot.energy_eV, color="tab:red", lw=0.8, ls=":", alpha=0.7)
            ax.annotate(
                dot.label,
                (dot.energy_eV, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=8,
                color="tab:red",
                va="top",
                ha="right",
            )
        else:
            err = None if dot.dark_bright_err_eV is None else dot.dark_bright_err_eV * 1e3
            ax.errorbar(
                dot.energy_eV,
                dot.dark_bright_eV * 1e3,
                yerr=err,
                fmt="*",
                ms=13,
                color="tab:red",
                mec="k",
                zorder=5,
                label=dot.label,
            )
    ax.set_xlabel("bright exciton emission energy (eV)")
    ax.set_ylabel("dark-bright splitting (meV)")
    ax.set_yscale("log")
    sysname = ds.attrs.get("system", "?")
    if title is None:
        title = f"FAPb(I$_{{1-x}}$Br$_x$)$_3$ dots in FAPbBr$_3$ (system '{sysname}')"
    ax.set_title(title, fontsize=11)
    if ds.attrs.get("uncalibrated"):
        ax.text(
            0.01,
            0.01,
            "exchange constants calibrated on the paper's dots 3 and 5 "
            "(uncalibrated parameters: see `qdsim info`)",
            transform=ax.transAxes,
            fontsize=7,
            color="0.4",
        )
    ax.grid(True, which="both", alpha=0.25)
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo - 0.08 * (hi - lo), hi)  # room for the diameter labels
    if legend:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig


def _panels(ds, var: str, max_panels: int):
    """[(title suffix, sub-Dataset)] over every combination of the dims of `var` other than
    radius and x (one entry, suffix "", when there are none)."""
    import itertools

    extra = [d for d in ds[var].dims if d not in _GRID_DIMS]
    combos = list(itertools.product(*[range(ds.sizes[d]) for d in extra]))
    if len(combos) > max_panels:
        raise ValueError(
            f"{len(combos)} panels (one per value of {', '.join(extra)}) is more than "
            f"{max_panels}: select values first (qdsim plot --select {extra[0]}=VALUE)"
        )
    out = []
    for combo in combos:
        sel = dict(zip(extra, combo, strict=True))
        sub = ds.isel(sel)
        label = ", ".join(f"{d} = {float(sub[d]):.4g}" for d in extra)
        out.append((label, sub))
    return out


def _grid(plt, n: int, size):
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(size[0] * ncols, size[1] * nrows),
        constrained_layout=True,
        squeeze=False,
    )
    for a in axes.ravel()[n:]:
        a.set_visible(False)
    return fig, axes.ravel()[:n]


def plot_phase_panels(ds, *, path=None, max_panels: int = 12, **kwargs):
    """The Fig. 3g analogue with a panel per value of every extra dim (f_v, bowing_Eg,
    mass_ratio swept as axes); a (radius, x) Dataset gives the single diagram of
    `plot_phase_diagram`. Keyword arguments go to `plot_phase_diagram`. Returns the Figure."""
    panels = _panels(ds, "emission_energy", max_panels)
    if len(panels) == 1 and not panels[0][0]:
        return plot_phase_diagram(ds, path=path, **kwargs)
    plt = pyplot()
    fig, axes = _grid(plt, len(panels), (6.5, 4.6))
    for k, (ax, (label, sub)) in enumerate(zip(axes, panels, strict=True)):
        plot_phase_diagram(sub, ax=ax, legend=k == len(panels) - 1, title=label, **kwargs)
    if path is not None:
        fig.savefig(path, dpi=130)
    return fig


def plot_map(ds, var: str, *, path=None, max_panels: int = 12):
    """A colour map of `var` over (radius, x), a panel per value of any extra dim. Points whose
    `status` has a failure bit (no bound exciton, NaN) are drawn grey and hatched; points with
    only the NEAR_THRESHOLD warning are outlined by a contour. Returns the Figure."""
    from qdsim.status import FAILURE_MASK, Status

    if var not in ds.data_vars:
        raise ValueError(f"no variable {var!r}; the Dataset has {', '.join(sorted(ds.data_vars))}")
    if ds[var].dims[:2] != _GRID_DIMS:
        raise ValueError(f"{var} is not a variable over (radius, x)")
    plt = pyplot()
    panels = _panels(ds, var, max_panels)
    fig, axes = _grid(plt, len(panels), (6.0, 4.6))
    for ax, (label, sub) in zip(axes, panels, strict=True):
        r, x = sub["radius"].values, sub["x"].values
        v = np.asarray(sub[var].values, dtype=float)
        units = sub[var].attrs.get("units", "")
        if var != "status" and units == "eV" and np.nanmax(np.abs(v), initial=0) < 0.1:
            v, units = v * 1e3, "meV"
        st = np.asarray(sub["status"].values) if "status" in sub else np.zeros(v.shape, int)
        failed = (st & FAILURE_MASK) != 0
        shown = np.ma.masked_where(failed | ~np.isfinite(v), v)
        ax.set_facecolor("0.85")
        mesh = ax.pcolormesh(x, 2 * r, shown, shading="nearest", cmap="viridis")
        if failed.any():
            ax.contourf(
                x, 2 * r, failed.astype(float), levels=[0.5, 1.5], colors="none", hatches=["//"]
            )
        near = (st & int(Status.NEAR_THRESHOLD)) != 0
        if near.any() and len(x) > 1 and len(r) > 1:
            ax.contour(x, 2 * r, near.astype(float), levels=[0.5], colors="w", linewidths=0.8)
        cb = fig.colorbar(mesh, ax=ax)
        cb.set_label(f"{sub[var].attrs.get('long_name', var)} ({units})", fontsize=8)
        ax.set_xlabel("Br fraction x")
        ax.set_ylabel("dot diameter (nm)")
        ax.set_title(
            f"{var}{' (' + label + ')' if label else ''}; grey hatched: no bound exciton, "
            "white line: near threshold",
            fontsize=8,
        )
    if path is not None:
        fig.savefig(path, dpi=130)
    return fig
