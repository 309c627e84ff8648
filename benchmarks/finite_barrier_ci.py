"""Finite-barrier, unequal-mass CI reference (issue 16): the configuration-interaction solver
of tests/model/finite_barrier_ci.py at large bases against qdsim's product and correlated ansatz.

    python benchmarks/finite_barrier_ci.py [--quick]

Cases: tests/model/common.py P_ASYM (dEc = 0.18 eV, dEv = 0.35 eV, masses 0.17/0.24 in,
0.21/0.31 out, eps = 8.8; eps_bg = 0, Eg = 0) at R = 0.5, 1, 2 a_B, and P_C5 (finite barriers,
equal masses) at R = 5 nm; first the infinite-barrier, equal-mass check against physics.md C.2.
For each case: E_CI(l_max) at N radial states per carrier and l (n_true box eigenstates plus
states of a 5 eV auxiliary barrier, Ritz-diagonalised), the l -> inf extrapolation
E = E_inf + B l^-p (p fitted to the last three l_max), and three error estimates, all of which
only lower the energy: delta_L = |E(l_last) - E_inf| (C.2's convention), delta_N = the drop from
N - 4 to N at l_last, delta_box = the change at a small l_max when the box grows by 1 R and the
mesh is refined. Uncertainty = their sum. E(l_last, N) itself is a strict upper bound.
Writes benchmarks/out/finite_barrier_ci.json.
"""

from __future__ import annotations

import json
import math
import pathlib
import platform
import sys
import time

import numpy as np

import qdsim
from tests.model.common import P_ASYM, P_C5
from tests.model.finite_barrier_ci import Mesh, ci_energies_eV, extrapolate_l

OUT_PATH = pathlib.Path(__file__).parent / "out" / "finite_barrier_ci.json"
QUICK = "--quick" in sys.argv

PA = P_ASYM._replace(Eg_eV=0.0, eps_bg_in=0.0, eps_bg_out=0.0, dSR_eV=0.0, hwLT_eV=0.0)
PC = P_C5._replace(Eg_eV=0.0)
AB_A = float(qdsim.bohr_star_nm(PA))
RY_A = float(qdsim.rydberg_star_eV(PA))


def ci_args(p):
    return (p.me_in, p.mh_in, p.me_out, p.mh_out, p.dEc_eV, p.dEv_eV, p.eps)


def mesh_for(box, elems_per_R):
    return Mesh(box, elems_per_R, int(round((box - 1.0) * elems_per_R)), 10, 22)


# name, params, R (nm), box factor, elements per R, l_max sequence
CASES = [
    ("P_ASYM R=1aB", PA, 1.0 * AB_A, 2.5, 6, (4, 8, 12, 16)),
    ("P_ASYM R=2aB", PA, 2.0 * AB_A, 1.75, 10, (4, 8, 12, 16, 20)),
    ("P_ASYM R=0.5aB", PA, 0.5 * AB_A, 5.0, 3, (4, 8, 12, 16)),
    ("P_C5 R=5nm", PC, 5.0, 2.0, 6, (4, 8, 12, 16)),
]
N_BIG, N_SMALL, N_TRUE, AUX_EV = (12, 8, 4, 5.0) if QUICK else (20, 16, 4, 5.0)


def c2_check():
    """physics.md C.2: impenetrable sphere, m_e = m_h = 0.2, eps = 10, R = a_B, (16, 20):
    E_CI = 5.974248 Ry*."""
    mu, eps = 0.1, 10.0
    ry = 13.605693122994 * mu / eps**2
    ab = 0.0529177210903 * eps / mu
    lv, n = ((4, 8), 8) if QUICK else ((4, 8, 12, 16), 20)
    t = time.perf_counter()
    r = ci_energies_eV(
        0.2, 0.2, 0.2, 0.2, math.inf, math.inf, eps, ab, l_values=lv, n_per_l=n,
        mesh=Mesh(1.0, 6, 0, 10, 22),
    )  # fmt: skip
    e = [x / ry for x in r.energies_eV]
    print(
        f"C.2 check, R = a_B, N = {n}: E(l_max) = {dict(zip(lv, np.round(e, 7), strict=True))} Ry*"
    )
    print(f"  C.2 (16, 20): 5.974248 Ry*; this CI at l_max = {lv[-1]}: {e[-1]:.7f}")
    return {"l_values": lv, "N": n, "E_Ry": e, "C2_16_20_Ry": 5.974248,
            "seconds": time.perf_counter() - t}  # fmt: skip


def run_case(name, p, R, box, epr, lv):
    t0 = time.perf_counter()
    if QUICK:
        lv = lv[:3]
    kw = dict(n_true=N_TRUE, aux_V_eV=AUX_EV)
    big = ci_energies_eV(*ci_args(p), R, l_values=lv, n_per_l=N_BIG, mesh=mesh_for(box, epr), **kw)
    small = ci_energies_eV(
        *ci_args(p), R, l_values=lv, n_per_l=N_SMALL, mesh=mesh_for(box, epr), **kw
    )
    # box and mesh: one more R of box and 1.5x the elements, small l_max, N_SMALL
    lv0 = (2, 4)
    base = ci_energies_eV(
        *ci_args(p), R, l_values=lv0, n_per_l=N_SMALL, mesh=mesh_for(box, epr), **kw
    )
    wide = ci_energies_eV(
        *ci_args(p), R, l_values=lv0, n_per_l=N_SMALL,
        mesh=mesh_for(box + 1.0, int(math.ceil(1.5 * epr))), **kw,
    )  # fmt: skip
    e_inf, d_l, pfit = extrapolate_l(lv, big.energies_eV)
    d_n = small.energies_eV[-1] - big.energies_eV[-1]
    d_box = abs(base.energies_eV[-1] - wide.energies_eV[-1])
    unc = d_l + max(d_n, 0.0) + d_box
    prod = qdsim.solve_sphere(p, R, throw=False)
    corr = qdsim.solve_sphere(p, R, config=qdsim.SolverConfig(ansatz="correlated"), throw=False)
    ep, ec = float(prod.energy_eV), float(corr.energy_eV)
    ry = float(qdsim.rydberg_star_eV(p))
    res = {
        "name": name,
        "R_nm": R,
        "R_over_aB": R / float(qdsim.bohr_star_nm(p)),
        "Ry_star_eV": ry,
        "box_factor": box,
        "elems_per_R": epr,
        "N": N_BIG,
        "N_small": N_SMALL,
        "n_true": N_TRUE,
        "aux_V_eV": AUX_EV,
        "l_values": lv,
        "E_CI_eV": list(big.energies_eV),
        "E_CI_smallN_eV": list(small.energies_eV),
        "E_CI_box_mesh_eV": [list(base.energies_eV), list(wide.energies_eV)],
        "E_CI_extrap_eV": e_inf,
        "p_fit": pfit,
        "delta_L_eV": d_l,
        "delta_N_eV": d_n,
        "delta_box_mesh_eV": d_box,
        "uncertainty_eV": unc,
        "E_product_eV": ep,
        "E_correlated_eV": ec,
        "status_product": int(prod.status),
        "status_correlated": int(corr.status),
        "electron_level_eV": float(prod.electron_level_eV),
        "hole_level_eV": float(prod.hole_level_eV),
        "gap_closed_fraction": (ep - ec) / (ep - e_inf),
        "seconds": time.perf_counter() - t0,
    }
    print(
        f"{name}: E_CI(l={lv[-1]}, N={N_BIG}) = {1e3 * big.energies_eV[-1]:.5f} meV, "
        f"extrap {1e3 * e_inf:.5f} +- {1e3 * unc:.5f} meV (dL {1e3 * d_l:.5f}, dN {1e3 * d_n:.5f}, "
        f"dbox {1e3 * d_box:.5f}; p = {pfit:.2f}); product {1e3 * ep:.5f}, correlated "
        f"{1e3 * ec:.5f} meV; closed {100 * res['gap_closed_fraction']:.1f} %; "
        f"{res['seconds']:.0f} s",
        flush=True,
    )
    return res


def main():
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "quick": QUICK,
    }
    out["cases"] = []
    for case in CASES:
        out["cases"].append(run_case(*case))
        if not QUICK:
            OUT_PATH.parent.mkdir(exist_ok=True)
            OUT_PATH.write_text(json.dumps(out, indent=1))
    out["c2_check"] = c2_check()
    if not QUICK:
        OUT_PATH.write_text(json.dumps(out, indent=1))
    if not QUICK:
        print(f"wrote {OUT_PATH}")


if __name__ == "__main__":
    main()
