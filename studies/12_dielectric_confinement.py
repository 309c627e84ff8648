"""How much does dielectric confinement move the exciton energy? Buried vs colloidal dots.

Run: python studies/12_dielectric_confinement.py
Writes studies/out/12_dielectric_confinement.png and prints a table.

First-order image-charge shift dE = <Sigma_e> + <Sigma_h> + <V_pol> of `qdsim.model.dielectric`
(Brus 1984 multipole series; interface regularised by a straight line across |r - R| < cut) on
the product-ansatz single-particle states, for a FAPbI3-rich dot (x = 0.3) over R = 1.5-8 nm:

- buried: the default system (FAPbBr3 matrix, finite offsets, f_v = 0.5). The default materials
  give no background dielectric constants (eps_bg_in = eps_bg_out = 0, physics.md A.1 "eps_inf,
  eps_s [NOT FOUND]"); as the best available proxy the contrast is taken between the exciton
  eps_eff of dot (9.07 at x = 0.3) and matrix (8.42, FAPbBr3) [ASSUMPTION]. Cut 0.15 / 0.3 /
  0.6 nm (band) shows the sensitivity to the regularisation. Below R ~ 2 nm the levels are
  near threshold (flagged; at R = 1.5 nm 70 % of the electron is in the matrix) and the shift
  turns negative (carriers in the lower-eps matrix see attractive images).
- colloidal: the same dot in toluene, eps_out = 2.4 [ASSUMPTION: optical eps of toluene,
  n^2 = 1.50^2 = 2.25 to static 2.38], impenetrable barriers (ligand/solvent barrier of eV).

Also printed: the l = 1 e-h polarisation term on the *correlated* product-ansatz density
(infinite barrier, lambda from solve_sphere), -e^2 alpha_1 <r_e . r_h>_f / (eps1 R^3), the
leading term the first-order shift neglects (qdsim.model.dielectric docstring).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import qdsim
from qdsim.constants import E2_4PIEPS0_eV_nm
from qdsim.materials.loader import alloy_params
from qdsim.model import dielectric
from qdsim.model.well import ground_state
from qdsim.plotting._style import pyplot

OUT = Path(__file__).resolve().parent / "out"
X = 0.3
EPS_TOLUENE = 2.4
RADII = np.linspace(1.5, 8.0, 27)
CUTS = (0.15, 0.3, 0.6)


def shift_eV(p, R, eps_in, eps_out, cut):
    """(total, <Sigma_e> + <Sigma_h>, <V_pol>) in eV for params `p` at radius R."""
    e = ground_state(p.me_in, p.me_out, p.dEc_eV, R)
    h = ground_state(p.mh_in, p.mh_out, p.dEv_eV, R)
    se = dielectric.self_energy_expectation_eV(e, R, eps_in, eps_out, cut)
    sh = dielectric.self_energy_expectation_eV(h, R, eps_in, eps_out, cut)
    pair = dielectric.pair_polarisation_eV(e, h, R, eps_in, eps_out)
    return se + sh + pair, se + sh, pair


def l1_correlated_eV(eps_in, eps_out, R, lam):
    """-e^2 alpha_1 <r_e . r_h>_f / (eps_in R^3) on |phi_e phi_h exp(-r_eh/lam)|^2, infinite
    barrier (phi = sin(pi r/R)/r for both carriers); r_e . r_h = (r_e^2 + r_h^2 - s^2)/2 and
    d^3r_e d^3r_h -> 8 pi^2 r_e r_h s dr_e dr_h ds (physics.md B.3). Gauss-Legendre, numpy."""
    x, w = np.polynomial.legendre.leggauss(80)
    r, wr = 0.5 * R * (x + 1), 0.5 * R * w
    xs, ws = np.polynomial.legendre.leggauss(40)
    re, rh = np.meshgrid(r, r, indexing="ij")
    wre = np.outer(wr, wr)
    lo, hi = np.abs(re - rh), re + rh
    s = 0.5 * (hi - lo)[..., None] * (xs + 1) + lo[..., None]
    wsd = 0.5 * (hi - lo)[..., None] * ws
    f2 = np.exp(-2 * s / lam)
    dens = (np.sin(np.pi * re / R) * np.sin(np.pi * rh / R)) ** 2 / (re * rh)  # r^2 phi^2 / r
    norm = np.sum(wre * dens * np.sum(wsd * s * f2, -1))
    rdot = 0.5 * (re[..., None] ** 2 + rh[..., None] ** 2 - s**2)
    dot = np.sum(wre * dens * np.sum(wsd * s * f2 * rdot, -1))
    alpha1 = 2 * (eps_in - eps_out) / (eps_in + 2 * eps_out)
    return -E2_4PIEPS0_eV_nm * alpha1 * (dot / norm) / (eps_in * R**3)


def main():
    OUT.mkdir(exist_ok=True)
    system = qdsim.load_system()
    with qdsim.float64():
        v = {k: jnp.asarray(val) for k, val in system.values.items()}
        p = alloy_params(v, X)
        eps_dot, eps_matrix = float(p.eps), float(v["matrix.eps_eff"])
        p_coll = p._replace(dEc_eV=jnp.inf, dEv_eV=jnp.inf)
        Rs = jnp.asarray(RADII)
        buried = {
            cut: jax.vmap(lambda R, cut=cut: shift_eV(p, R, eps_dot, eps_matrix, cut))(Rs)
            for cut in CUTS
        }
        coll = jax.vmap(lambda R: shift_eV(p_coll, R, eps_dot, EPS_TOLUENE, 0.3))(Rs)
        sol = qdsim.solve_sphere(p_coll, np.asarray(RADII))
        flagged = np.asarray(qdsim.solve_sphere(p, np.asarray(RADII)).status) != 0
    b = {c: [np.asarray(a) * 1e3 for a in buried[c]] for c in CUTS}  # meV
    c = [np.asarray(a) * 1e3 for a in coll]
    binding = np.asarray(sol.binding_energy_eV) * 1e3
    l1 = np.array(
        [
            l1_correlated_eV(eps_dot, EPS_TOLUENE, R, lam) * 1e3
            for R, lam in zip(RADII, np.asarray(sol.lam_nm), strict=True)
        ]
    )
    print(
        f"x = {X}: eps_dot = {eps_dot:.3f}, buried eps_out = {eps_matrix}, colloidal {EPS_TOLUENE}"
    )
    print(
        f"{'R (nm)':>7}{'buried (meV)':>14}{'cut .15/.6':>16}{'colloidal':>11}"
        f"{'self':>9}{'pair':>9}{'l=1 corr':>10}{'E_b (coll)':>11}"
    )
    for i, R in enumerate(RADII):
        if i % 3:
            continue
        print(
            f"{R:7.2f}{b[0.3][0][i]:14.3f}{b[0.15][0][i]:8.3f}/{b[0.6][0][i]:<7.3f}{c[0][i]:11.2f}"
            f"{c[1][i]:9.2f}{c[2][i]:9.2f}{l1[i]:10.3f}{binding[i]:11.2f}"
            + (" *" if flagged[i] else "")
        )
    print(
        "* buried point flagged by solve_sphere (NEAR_THRESHOLD: a level within E_b of its barrier)"
    )
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), constrained_layout=True)
    ax = axes[0]
    ax.plot(RADII, c[0], "C3-", label=f"colloidal (eps_out = {EPS_TOLUENE}, inf. barrier)")
    ax.plot(RADII, c[0] + l1, "C3--", lw=1, label="  + l = 1 correlated pair term")
    ax.plot(RADII, b[0.3][0], "C0-", label=f"buried (eps {eps_dot:.2f} in {eps_matrix})")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("radius R (nm)")
    ax.set_ylabel("first-order shift (meV)")
    ax.set_title(f"dielectric confinement, x = {X}", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax = axes[1]
    if flagged.any():
        r_flag = RADII[flagged].max()
        ax.axvspan(RADII[0], r_flag, color="0.85", label="flagged (NEAR_THRESHOLD)")
    ax.fill_between(RADII, b[0.15][0], b[0.6][0], color="C0", alpha=0.3, label="cut 0.15-0.6 nm")
    ax.plot(RADII, b[0.3][0], "C0-", label="buried, cut 0.3 nm")
    ax.plot(RADII, b[0.3][1], "C0:", label="  self-polarisation part")
    ax.plot(RADII, b[0.3][2], "C0--", label="  e-h pair (l = 0) part")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("radius R (nm)")
    ax.set_ylabel("shift (meV)")
    ax.set_title("buried dot (FAPbBr3 matrix), eps_eff proxy", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.savefig(OUT / "12_dielectric_confinement.png", dpi=130)
    print("wrote", OUT / "12_dielectric_confinement.png")


if __name__ == "__main__":
    main()
