"""Place the paper's dots on the (diameter, x) plane with `qdsim.place` (grid engine, default
GridSpec and system).

Run: python studies/11_place_paper_dots.py
Writes studies/out/11_place_paper_dots.png (the Fig. 3g analogue: posterior-predictive regions
on the model's phase diagram, and the posteriors in (x, diameter)), studies/out/11_dot3_corner.png,
studies/out/11_place_paper_dots.nc (all draws, dim `dot`) and studies/out/11_place_paper_dots.md
(the table). The first run builds the default grid table (a minute or two); it is cached after.

Data (physics.md C.4, [PAPER]):
- Fig. 2a emission energies 1.922, 1.872, 1.818 and 1.722 eV, energy only. 1-sigma error
  0.5 meV [CHOICE]: the spectral resolution (~0.12-0.13 meV, the linewidth) plus the spectral
  diffusion seen between spectra (< 0.25 meV), rounded up; the grid engine adds its own 0.5 meV
  model error (qdsim.placement.MODEL_ERROR) in quadrature. The 1.818 eV line matches dot 3: it
  is placed as "dot 3, energy only" to show what the splitting adds.
- Dot 3: 1.8167 eV (same 0.5 meV error) and Delta_DB from the Zeeman fit of
  studies/10_dot3_zeeman.py, its headline variant C (E_Z midway between X and Y), run here:
  1.45 +- 0.08 meV.
- Dot 5: PL lifetime 246 ps (mono-exponential, Fig. 2i) with a 10 % error [ASSUMPTION: the paper
  gives none], g2(0) = 0.1 (Fig. 2h; a single emitter); no energy is given, so it is placed from
  the lifetime alone (quantum yield 1 [ASSUMPTION], the library default): a wide posterior is
  the honest answer. Dot 3 and dot 5 are different dots and are never combined
  (architecture.md section 12.11).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import qdsim
from qdsim.cli.place import combine
from qdsim.plotting._style import pyplot
from qdsim.plotting.placement import plot_corner, plot_placements

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

ENERGY_ERR_eV = 0.5e-3  # resolution ~0.13 meV + spectral diffusion < 0.25 meV, rounded up
LIFETIME_REL_ERR = 0.10  # [ASSUMPTION]: the paper quotes no error on dot 5's 246 ps


def dot3_zeeman():
    """The headline fit (variant C) of studies/10_dot3_zeeman.py."""
    spec = importlib.util.spec_from_file_location("dot3_zeeman", HERE / "10_dot3_zeeman.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    name, offset, fix = mod.VARIANTS[mod.HEADLINE]
    B = np.array([r[0] for r in mod.LINES])
    E = np.array([r[1] for r in mod.LINES])
    pol = [r[2] for r in mod.LINES]
    r = qdsim.analysis.fit_zeeman(B, E, mod.SIGMA_eV, polarization=pol, offset=offset, fix=fix)
    return name, r


def what_it_says(p) -> str:
    """One honest sentence: how much of the prior's 68 % width each quantity keeps."""
    d_lo, d_hi = p.priors["diameter"].interval(0.68)
    x_lo, x_hi = p.priors["x"].support
    keep_d = math.log(p.diameter_interval_nm[1] / p.diameter_interval_nm[0]) / math.log(d_hi / d_lo)
    keep_x = (p.x_interval[1] - p.x_interval[0]) / (0.68 * (x_hi - x_lo))
    widths = f"68 % widths: ln d {100 * keep_d:.0f} %, x {100 * keep_x:.0f} % of the prior's"
    if p.degenerate:
        rho = p.diagnostics.get("corr_lnd_x", float("nan"))
        return (
            f"degenerate: a ridge (corr(ln d, x) = {rho:+.2f}) fixes a size-composition "
            f"combination, not each; {widths}"
        )
    if keep_d > 0.7 and keep_x > 0.7:
        return f"little information: the posterior is close to the prior; {widths}"
    return f"{widths}"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    zname, z3 = dot3_zeeman()
    print(
        f"dot 3 Zeeman fit ({zname}, studies/10_dot3_zeeman.py): Delta_DB = "
        f"{z3.dark_bright_eV * 1e3:.3f} +- {z3.dark_bright_err_eV * 1e3:.3f} meV, "
        f"g_X = {z3.g_X:.2f} +- {z3.g_X_err:.2f}"
    )
    e = ENERGY_ERR_eV
    dots = [
        ("1.922 eV (Fig. 2a)", {"energy_eV": (1.922, e)}),
        ("1.872 eV (Fig. 2a)", {"energy_eV": (1.872, e)}),
        ("dot 3, energy only", {"energy_eV": (1.818, e)}),
        ("1.722 eV (Fig. 2a)", {"energy_eV": (1.722, e)}),
        ("dot 3", {"energy_eV": (1.8167, e), "zeeman": z3}),  # the energy given wins
        (
            "dot 5",
            {
                "lifetime_s": (246e-12, LIFETIME_REL_ERR * 246e-12),
                "g2": SimpleNamespace(g2_0=0.1, g2_0_err=float("nan")),
            },
        ),
    ]
    placements = []
    for name, kw in dots:
        p = qdsim.place(**kw, name=name, progress=True)
        print(p.summary())
        placements.append(p)

    phase = qdsim.phase_diagram(np.geomspace(1.5, 8.0, 48), np.linspace(0.0, 0.6, 31))
    plt = pyplot()
    fig = plot_placements(
        placements,
        phase,
        title="The paper's dots placed by qdsim.place (grid engine, default system; "
        "nuisances marginalised)",
    )
    png = OUT / "11_place_paper_dots.png"
    fig.savefig(png, dpi=150)
    plt.close(fig)
    corner = OUT / "11_dot3_corner.png"
    fig = plot_corner(placements[4])
    fig.savefig(corner, dpi=130)
    plt.close(fig)
    nc = OUT / "11_place_paper_dots.nc"
    combine(placements).to_netcdf(nc, engine="h5netcdf")

    rows = [
        "| dot | measured | diameter (nm), median [68 %] | x, median [68 %] | degenerate | "
        "what the data can and cannot say |",
        "|---|---|---|---|---|---|",
    ]
    for p in placements:
        m = p.measurements
        meas = []
        if "energy_eV" in m:
            meas.append(f"E = {m['energy_eV'][0]:.4f} ± {m['energy_eV'][1] * 1e3:.1f} meV")
        if "dark_bright_eV" in m:
            v, s = m["dark_bright_eV"]
            meas.append(f"Δ_DB = {v * 1e3:.2f} ± {s * 1e3:.2f} meV")
        if "lifetime_s" in m:
            v, s = m["lifetime_s"]
            meas.append(f"τ = {v * 1e12:.0f} ± {s * 1e12:.0f} ps")
        lo, hi = p.diameter_interval_nm
        xl, xh = p.x_interval
        rows.append(
            f"| {p.name} | {'; '.join(meas)} | {p.diameter_nm:.1f} [{lo:.1f}, {hi:.1f}] | "
            f"{p.x:.2f} [{xl:.2f}, {xh:.2f}] | {'yes' if p.degenerate else 'no'} | "
            f"{what_it_says(p)} |"
        )
    prior = placements[0].priors
    d_lo, d_hi = prior["diameter"].interval(0.68)
    md = "\n".join(
        [
            "# The paper's dots placed on the (diameter, x) plane",
            "",
            "`python studies/11_place_paper_dots.py`: `qdsim.place`, grid engine, default "
            "GridSpec and system; f_v, bowing, mass ratio, Δ_SR and ħω_LT marginalised over "
            "their priors. Energy errors 0.5 meV (resolution + spectral diffusion, "
            "a choice); dot 5's lifetime error 10 % [ASSUMPTION]; quantum yield 1 "
            "[ASSUMPTION]. Dot 3 and dot 5 are different dots, placed separately.",
            f"Priors: diameter lognormal, 68 % in [{d_lo:.1f}, {d_hi:.1f}] nm; x uniform on "
            f"{list(prior['x'].support)}.",
            "",
            *rows,
            "",
            "Paper (Fig. 3g): dot 3 at d ≈ 10 nm, 0.2 < x < 0.4.",
            "",
        ]
    )
    table = OUT / "11_place_paper_dots.md"
    table.write_text(md, encoding="utf-8")
    print("\n" + md)
    print(f"figures: {png}, {corner}\ndraws: {nc}\ntable: {table}")


if __name__ == "__main__":
    main()
