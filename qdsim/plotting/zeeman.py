"""Figures for magneto-PL: Zeeman fan (data and B.6 model), linewidth(T), fitted spectra.

No pyplot: figures are `matplotlib.figure.Figure` objects (Agg canvas when saved), so nothing
here touches global matplotlib state. Every function takes an optional `ax` and returns the
Figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = ["plot_linewidth", "plot_peaks", "plot_zeeman_fan"]

# colours per state character (ZeemanStates.labels)
_COLORS = {
    "D": "0.35",
    "X": "tab:orange",
    "Y": "tab:purple",
    "Z": "tab:green",
    "sigma+": "tab:red",
    "sigma-": "tab:blue",
}
_LABEL_TEXT = {
    "D": "D (dark)",
    "X": "X",
    "Y": "Y",
    "Z": "Z (dipole ∥ B)",
    "sigma+": "σ+",
    "sigma-": "σ−",
}
_MARKERS = {"": "o", "sigma+": "^", "sigma-": "v", "pi": "s", "perp": "D"}


def _axes(ax: Axes | None, size: tuple[float, float] = (6.4, 4.8)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _fmt(v: float, e: float, scale: float, nd: int) -> str:
    if not np.isfinite(e):
        return f"{v * scale:.{nd}f} ± ∞"
    if e == 0:
        return f"{v * scale:.{nd}f} (fixed)"
    return f"{v * scale:.{nd}f} ± {e * scale:.{nd}f}"


def _param_box(ax, text: str) -> None:
    """Fitted parameters in a monospace box at the top left of `ax`."""
    ax.text(
        0.02,
        0.98,
        text,
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontsize=8,
        family="monospace",
        bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.9},
    )


def plot_zeeman_fan(
    result: Any,
    *,
    ax: Axes | None = None,
    relative: bool = False,
    field_max_T: float | None = None,
    n_points: int = 300,
    annotate: bool = True,
    title: str | None = None,
) -> Figure:
    """Zeeman fan: the four B.6 levels against field with the fitted line energies.

    **Arguments:**
    - `result`: a `qdsim.analysis.spectroscopy.zeeman.ZeemanResult`.
    - `ax`: axes to draw in (default: a new Figure).
    - `relative`: plot E - mean of the four levels at each field (the paper's Fig. 3e; free of
      the diamagnetic shift), else E - E_bright (zero-field bright mean), both in meV.
    - `field_max_T`: upper end of the model curves (default: the largest field + 5 %).
    - `n_points`: model sampling.
    - `annotate`: print g_X, Delta_DB, splittings and chi^2_red in the axes.

    Model curves are coloured by the dominant character of each eigenstate (D grey, X/Y
    orange/purple at low field, sigma+ red, sigma- blue, Z green), their opacity following the
    bright fraction (the dark branch fades out at low field). Data: the assigned state's colour,
    marker by polarisation label (^ sigma+, v sigma-, s pi, D perp, o none), error bars when
    the fit had sigma_eV. Per-field offsets (``offset="per_field"``) are removed from the data.

    **Returns:** the matplotlib Figure.
    """
    from qdsim.analysis.spectroscopy.zeeman import zeeman_states

    fig, ax = _axes(ax)
    B = np.asarray(result.field_T)
    bmax = field_max_T if field_max_T is not None else max(float(np.max(np.abs(B))) * 1.05, 1.0)
    bmin = min(0.0, float(np.min(B)))
    grid = np.linspace(bmin, bmax, n_points)
    geom = np.asarray(result.geometry)
    mp = result.model_params
    st = zeeman_states(mp, grid, geom)
    E0 = mp["E_bright_eV"]
    mean = st.energy_eV.mean(axis=1)
    ref = mean if relative else np.full(grid.size, E0)
    y = (st.energy_eV - ref[:, None]) * 1e3
    labels = st.labels
    for n in range(4):
        # one polyline per run of equal character and (quantised) brightness, faded towards
        # white with the bright fraction: no seams between tiny segments
        lab = labels[:, n]
        fade = np.round(np.clip(0.15 + 0.85 * np.sqrt(st.bright[:, n]), 0, 1) * 10) / 10
        start = 0
        for k in range(1, grid.size + 1):
            if k < grid.size and lab[k] == lab[start] and fade[k] == fade[start]:
                continue
            a = float(fade[start])
            rgb = a * np.asarray(to_rgba(_COLORS[str(lab[start])]))[:3] + (1 - a)
            stop = min(k + 1, grid.size)
            ax.plot(grid[start:stop], y[start:stop, n], "-", color=tuple(rgb), lw=1.8, zorder=1)
            start = k
    # data
    E = np.asarray(result.energy_eV)
    offs = np.asarray(result.line_offset_eV)
    st_d = zeeman_states(mp, B, geom)
    ref_d = st_d.energy_eV.mean(axis=1) if relative else np.full(B.size, E0)
    yd = (E - offs - ref_d) * 1e3
    sig = np.asarray(result.sigma_eV) * 1e3
    slabs = np.asarray(result.state_labels)
    pols = np.asarray(result.polarization)
    for i in range(E.size):
        c = _COLORS.get(str(slabs[i]), "k")
        m = _MARKERS.get(str(pols[i]), "o")
        ax.errorbar(
            B[i],
            yd[i],
            yerr=sig[i] if np.isfinite(sig[i]) else None,
            fmt=m,
            ms=6,
            mfc=c,
            mec="k",
            mew=0.6,
            ecolor="k",
            elinewidth=0.8,
            capsize=2,
            zorder=3,
        )
    ax.set_xlim(bmin - 0.02 * (bmax - bmin), bmax)
    lo = min(float(np.min(y)), float(np.min(yd)))
    hi = max(float(np.max(y)), float(np.max(yd)))
    pad = 0.08 * (hi - lo if hi > lo else 1.0)
    ax.set_ylim(lo - pad, hi + pad * (4.0 if annotate else 1.0))
    ax.set_xlabel("magnetic field B (T)")
    ax.set_ylabel("E − mean of the four levels (meV)" if relative else "E − E_bright (meV)")
    handles = [
        Line2D([], [], color=_COLORS[k], lw=2, label=_LABEL_TEXT[k])
        for k in ("sigma+", "sigma-", "Z", "X", "Y", "D")
        if k in set(labels.ravel().tolist()) | set(slabs.tolist())
    ]
    handles.append(
        Line2D([], [], ls="", marker="o", mfc="w", mec="k", label="data (assigned colour)")
    )
    ax.legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.85)
    if annotate:
        sgn = "" if result.g_X_sign_determined else "|g_X|"
        txt = "\n".join(
            [
                f"{sgn or 'g_X'} = {_fmt(result.g_X, result.g_X_err, 1, 3)}",
                f"Δ_DB = {_fmt(result.dark_bright_eV, result.dark_bright_err_eV, 1e3, 3)} meV",
                f"E_Y − E_X = {_fmt(result.split_xy_eV, result.split_xy_err_eV, 1e3, 3)} meV",
                f"E_Z − E_⊥ = {_fmt(result.split_z_eV, result.split_z_err_eV, 1e3, 3)} meV",
                f"|g_e − g_h| = {_fmt(result.g_e_minus_g_h, result.g_e_minus_g_h_err, 1, 2)}",
                f"χ²_red = {result.gof.chi2_red:.2f} (dof {result.gof.dof})",
            ]
        )
        _param_box(ax, txt)
    ax.set_title(title if title is not None else "Exciton fine structure in B (physics.md B.6)")
    return fig


def plot_linewidth(
    result: Any,
    *,
    ax: Axes | None = None,
    n_points: int = 300,
    annotate: bool = True,
    title: str | None = None,
) -> Figure:
    """Linewidth against temperature: data, fitted model and its three terms (ueV vs K).

    **Arguments:** `result`, a `qdsim.analysis.spectroscopy.linewidth.LinewidthResult`; `ax`;
    `n_points`; `annotate` (fitted values in the axes). **Returns:** the Figure.
    """
    fig, ax = _axes(ax)
    T = np.asarray(result.temperature_K)
    G = np.asarray(result.fwhm_eV) * 1e6
    S = np.asarray(result.sigma_eV) * 1e6
    grid = np.linspace(0.0, float(T.max()) * 1.05, n_points)[1:]
    comp = result.components(grid)
    ax.errorbar(
        T,
        G,
        yerr=S if np.all(np.isfinite(S)) else None,
        fmt="o",
        ms=5,
        mfc="tab:blue",
        mec="k",
        mew=0.6,
        ecolor="k",
        capsize=2,
        label="data",
        zorder=3,
    )
    ax.plot(grid, result.model(grid) * 1e6, "k-", lw=1.8, label="fit")
    ax.plot(
        grid,
        (comp["constant"] + comp["acoustic"]) * 1e6,
        "--",
        color="tab:green",
        label="Γ₀ + σ_ac T",
    )
    ax.plot(grid, comp["LO"] * 1e6, ":", color="tab:red", lw=1.8, label="Γ_LO n_B(E_LO, T)")
    ax.set_xlabel("temperature T (K)")
    ax.set_ylabel("linewidth FWHM (µeV)")
    ax.set_xlim(0, float(T.max()) * 1.05)
    ax.set_ylim(0, max(float(np.max(G)), float(np.max(result.model(grid) * 1e6))) * 1.1)
    ax.legend(loc="center left", fontsize=8)
    if annotate:
        txt = "\n".join(
            [
                f"Γ₀   = {_fmt(result.gamma0_eV, result.gamma0_err_eV, 1e6, 1)} µeV",
                f"σ_ac = {_fmt(result.acoustic_eV_per_K, result.acoustic_err_eV_per_K, 1e6, 2)}"
                " µeV/K",
                f"Γ_LO = {_fmt(result.gamma_LO_eV, result.gamma_LO_err_eV, 1e3, 2)} meV",
                f"E_LO = {_fmt(result.E_LO_eV, result.E_LO_err_eV, 1e3, 2)} meV",
                f"χ²_red = {result.gof.chi2_red:.2f} (dof {result.gof.dof})",
            ]
        )
        _param_box(ax, txt)
    ax.set_title(title if title is not None else "Linewidth vs temperature")
    return fig


def plot_peaks(
    result: Any,
    index: int = 0,
    *,
    ax: Axes | None = None,
    components: bool = True,
    title: str | None = None,
) -> Figure:
    """One fitted spectrum of a `PeakFitResult`: data, total fit, lines, residual offset.

    **Arguments:** `result`; `index` of the spectrum in a series; `ax`; `components`: draw each
    line (plus background). Energy axis in eV. **Returns:** the Figure.
    """
    from qdsim.analysis.spectroscopy.spectra import _profile

    fig, ax = _axes(ax)
    E = np.asarray(result.energy_eV)
    Y = np.asarray(result.data)[index]
    F = np.asarray(result.best_fit)[index]
    ax.plot(E, Y, ".", color="0.4", ms=3, label="data")
    ax.plot(E, F, "k-", lw=1.4, label="fit")
    bg = result.background[index, 0] + result.background[index, 1] * (E - result.bg_center_eV)
    if components:
        for j in range(result.center_eV.shape[1]):
            c = result.center_eV[index, j]
            if not np.isfinite(c):
                continue
            wl = result.fwhm_lorentz_eV[index, j]
            wg = result.fwhm_gauss_eV[index, j]
            w = wl if result.shape != "gaussian" else wg
            prof = result.area[index, j] * _profile(
                result.shape, E - c, float(w), float(0.0 if np.isnan(wg) else wg)
            )
            ax.plot(E, prof + bg, "-", lw=0.9, alpha=0.8)
    ax.set_xlabel("photon energy (eV)")
    ax.set_ylabel("intensity")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(
        title if title is not None else f"{result.shape} fit, χ²_red = {result.gof.chi2_red:.2f}"
    )
    return fig
