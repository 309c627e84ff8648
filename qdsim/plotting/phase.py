"""The phase diagram (the paper's Fig. 3g): emission energy vs dark-bright splitting over size
and composition, with measured dots placed on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qdsim.plotting._style import pyplot

__all__ = ["PAPER_DOTS", "MeasuredDot", "plot_phase_diagram"]


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
):
    """Emission energy (eV) vs dark-bright splitting (meV) from a `phase_diagram` Dataset.

    Solid coloured lines: fixed composition x, size varying; dashed grey lines: fixed diameter,
    x varying (labelled in nm). Failed points (NaN) are left out. `highlight_x` draws the
    paper's range of observed compositions in bold. Returns the Figure; saves it to `path`.
    """
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
    ax.set_title(
        f"FAPb(I$_{{1-x}}$Br$_x$)$_3$ dots in FAPbBr$_3$ (system '{sysname}')", fontsize=11
    )
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
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
