"""Issue 16, "beyond the product ansatz", with finite barriers and unequal masses: the independent
CI reference of tests/model/finite_barrier_ci.py (spectral-element BDD radial states in a boxed
well, L = 0 configurations, multipole Coulomb) is first checked against physics.md C.2
(impenetrable sphere, m_e = m_h), then used to show that qdsim's correlated ansatz closes most of
the product ansatz's gap to the exact energy for the P_ASYM dot and for a finite-barrier,
equal-mass dot (P_C5).

The large-basis reference energies below come from benchmarks/finite_barrier_ci.py (table and
method in benchmarks/README.md, "Finite-barrier, unequal-mass CI reference (issue 16)"); the
default tests recompute small bases live (a few seconds) and check them against those numbers
with tolerances set from the measured convergence; the large bases are `slow`."""

from __future__ import annotations

import math

import numpy as np
import pytest

import qdsim
from tests.model.common import AB, COULOMB_COEFF, P_ASYM, P_C5, P_INF, RY
from tests.model.fd_radial import fd_ground_level_richardson_eV
from tests.model.finite_barrier_ci import (
    Mesh,
    ci_energies_eV,
    extrapolate_l,
    radial_states,
    three_j_000_squared,
)

CORR = qdsim.SolverConfig(ansatz="correlated")
PA = P_ASYM._replace(Eg_eV=0.0, eps_bg_in=0.0, eps_bg_out=0.0)
PC = P_C5._replace(Eg_eV=0.0)
AB_A = float(qdsim.bohr_star_nm(PA))
#: name, parameters, R (nm): P_ASYM at 0.5, 1, 2 a_B and a finite-barrier, equal-mass dot
CASES = [
    ("P_ASYM R=0.5aB", PA, 0.5 * AB_A),
    ("P_ASYM R=1aB", PA, 1.0 * AB_A),
    ("P_ASYM R=2aB", PA, 2.0 * AB_A),
    ("P_C5 R=5nm", PC, 5.0),
]

#: benchmarks/finite_barrier_ci.py, 2026-12-03 (meV, from the dot's band edges): case ->
#: (E_CI extrapolated to l -> inf, its uncertainty, E_CI at the largest basis = a strict upper
#: bound, l_max of that basis, fraction of the product-CI gap the correlated ansatz closes)
REF = {
    "P_ASYM R=0.5aB": (218.79265, 0.01014, 218.79319, 16, 0.279),
    "P_ASYM R=1aB": (56.86995, 0.00517, 56.87356, 16, 0.938),
    "P_ASYM R=2aB": (-0.14776, 0.00665, -0.14214, 20, 0.931),
    "P_C5 R=5nm": (54.81815, 0.00494, 54.82193, 16, 0.933),
}
#: physics.md C.2, R = a_B: E_CI (16, 20) and the l -> inf extrapolation with its uncertainty (Ry*)
C2_16_20, C2_INF, C2_UNC = 5.974248, 5.9740, 0.0002


def ci_args(p):
    return (p.me_in, p.mh_in, p.me_out, p.mh_out, p.dEc_eV, p.dEv_eV, p.eps)


def mesh_for(box, elems_per_R):
    """The benchmark's meshes: elements of ~0.8 nm, degree 10, 22 Coulomb nodes each."""
    return Mesh(box, elems_per_R, int(round((box - 1.0) * elems_per_R)), 10, 22)


def test_three_j_symbols():
    """(l k l'; 0 0 0)^2: tabulated values, parity and triangle zeros, and the sum rule
    sum_k (2k + 1) (l k l'; 0 0 0)^2 = 1."""
    assert three_j_000_squared(1, 1, 0) == pytest.approx(1 / 3)
    assert three_j_000_squared(1, 1, 2) == pytest.approx(2 / 15)
    assert three_j_000_squared(2, 2, 2) == pytest.approx(2 / 35)
    assert three_j_000_squared(1, 1, 1) == 0.0
    assert three_j_000_squared(1, 4, 2) == 0.0
    for l, lp in ((0, 3), (2, 5), (7, 7)):
        s = sum((2 * k + 1) * three_j_000_squared(l, k, lp) for k in range(l + lp + 1))
        assert s == pytest.approx(1.0, abs=1e-13)


def test_single_configuration_and_radial_levels():
    """Impenetrable sphere, one configuration: pi^2 - 2 * 1.786073 Ry* (physics.md B.2), so the
    Slater integral of the radial grid is right; the finite-barrier l = 0 levels (BDD mass jump,
    box 2.5 R) agree with the flux-conserving FD solver of fd_radial (Richardson)."""
    r = ci_energies_eV(*ci_args(P_INF), AB, l_values=(0,), n_per_l=1, mesh=Mesh(1.0, 6, 0, 10, 22))
    assert r.energies_eV[0] / RY == pytest.approx(math.pi**2 - 2 * COULOMB_COEFF, abs=1e-8)
    R = AB_A
    for m_in, m_out, V0 in ((PA.me_in, PA.me_out, PA.dEc_eV), (PA.mh_in, PA.mh_out, PA.dEv_eV)):
        e, _ = radial_states(m_in, m_out, V0, R, 0, 1, mesh_for(2.5, 6))
        fd, _ = fd_ground_level_richardson_eV(m_in, m_out, V0, R, r_max_nm=2.5 * R)
        assert e[0] == pytest.approx(fd, abs=1e-8)


def test_ci_reproduces_c2_infinite_barrier_equal_masses():
    """R = a_B, N = 8 radial states per l: E(l_max) decreases with l_max, stays above C.2's
    l -> inf value, and its extrapolation (C.2's rule: p = 2.7, last two l_max) lands on C.2's
    within 4e-4 Ry* (measured: N = 8 sits 2.1e-4 above N = 20 at l_max = 16; this gives
    5.97426 vs 5.9740 +- 0.0002)."""
    lv = (4, 8, 12)
    r = ci_energies_eV(*ci_args(P_INF), AB, l_values=lv, n_per_l=8, mesh=Mesh(1.0, 6, 0, 10, 22))
    E = [e / RY for e in r.energies_eV]
    assert all(b < a for a, b in zip(E, E[1:], strict=False))
    assert min(E) > C2_INF - C2_UNC
    e_inf, _, _ = extrapolate_l(lv[-2:], E[-2:], p=2.7)
    assert abs(e_inf - C2_INF) < 4e-4


@pytest.mark.slow
def test_ci_reproduces_c2_at_its_largest_basis():
    """C.2's (l_max, N) = (16, 20) at R = a_B: 5.974248 Ry* (measured 5.9742491)."""
    r = ci_energies_eV(
        *ci_args(P_INF), AB, l_values=(16,), n_per_l=20, mesh=Mesh(1.0, 6, 0, 10, 22)
    )
    assert r.energies_eV[0] / RY == pytest.approx(C2_16_20, abs=1e-5)


@pytest.mark.slow
def test_reference_upper_bound_reproduced():
    """The benchmark's largest basis at R = a_B (l_max = 16, N = 20): the REF upper bound."""
    e_ref, unc, e_big, l_max, _ = REF["P_ASYM R=1aB"]
    r = ci_energies_eV(
        *ci_args(PA), AB_A, l_values=(l_max,), n_per_l=20, mesh=mesh_for(2.5, 6),
        n_true=4, aux_V_eV=5.0,
    )  # fmt: skip
    assert 1e3 * r.energies_eV[0] == pytest.approx(e_big, abs=2e-5)


@pytest.fixture(scope="module")
def small_ci():
    """P_ASYM at R = a_B, box 2.5 R: l_max = 2, 4, 6 at N = 8 and 12 (meV)."""
    out = {}
    for n in (8, 12):
        r = ci_energies_eV(
            *ci_args(PA), AB_A, l_values=(2, 4, 6), n_per_l=n, mesh=mesh_for(2.5, 6),
            n_true=4, aux_V_eV=5.0,
        )  # fmt: skip
        out[n] = [1e3 * e for e in r.energies_eV]
    return out


def test_finite_barrier_ci_converges_from_above(small_ci):
    """Nested bases give monotonically decreasing energies, in l_max and in N; every one is
    above the large-basis reference minus its uncertainty; the three-point l extrapolation of
    the small basis lands within 0.05 meV of the large one (measured: 0.030 meV)."""
    e_ref, unc, e_big, _, _ = REF["P_ASYM R=1aB"]
    for n in (8, 12):
        E = small_ci[n]
        assert all(b < a for a, b in zip(E, E[1:], strict=False))
        assert min(E) > e_big > e_ref - unc
    assert all(b < a for a, b in zip(small_ci[8], small_ci[12], strict=True))
    e_inf, _, _ = extrapolate_l((2, 4, 6), small_ci[12])
    assert abs(e_inf - e_ref) < 0.05


def _solve(points, config):
    """qdsim energies (meV) and statuses of (params, R nm) points in one vectorised call."""
    p = qdsim.SphereParams(*(np.array(v) for v in zip(*(q[0] for q in points), strict=True)))
    s = qdsim.solve_sphere(p, np.array([q[1] for q in points]), config=config, throw=False)
    return [(1e3 * float(e), int(st)) for e, st in zip(s.energy_eV, s.status, strict=True)]


@pytest.fixture(scope="module")
def qdsim_cases():
    """Product and correlated energies (meV) and statuses of every case in CASES. The calls are
    padded to the shapes of the C.2 fixtures of test_exciton (product: 8 points, one past the
    graded-rules threshold) and test_correlated (correlated: 3 points), so that a full run
    compiles nothing new for them (alone, this fixture compiles both: ~30 s when loaded)."""
    pts = [(c[1], c[2]) for c in CASES]
    pad = [(P_INF, 6.0 * AB)] * 4
    prod = _solve(pts + pad, qdsim.SolverConfig())[:4]
    corr = _solve(pts[:3], CORR) + _solve([pts[3]] * 3, CORR)[:1]
    return {c[0]: (prod[i], corr[i]) for i, c in enumerate(CASES)}


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_correlated_closes_the_product_gap(qdsim_cases, name):
    """Finite barriers: product >= correlated >= E_CI - uncertainty (variational), and the
    correlated ansatz closes the measured fraction (REF) of the product's gap to the CI, to
    +-0.03 (the CI uncertainty moves the fractions by <= 0.016): 93-94 % at R = 1-2 a_B and for
    the equal-mass dot, like the impenetrable sphere; only 28 % at R = 0.5 a_B, where the
    electron is barely bound (flag NEAR_THRESHOLD) and the hole's pull steepens its tail, which
    the default basis cannot describe (its exterior factors are frozen; the exterior functions
    of `corr_powers` >= 2 can: test_exterior_functions_close_the_near_threshold_gap)."""
    (ep, sp), (ec, sc) = qdsim_cases[name]
    e_ref, unc, e_big, _, frac = REF[name]
    assert sp & qdsim.FAILURE_MASK == 0 and sc & qdsim.FAILURE_MASK == 0
    assert ep > ec >= e_ref - unc
    closed = (ep - ec) / (ep - e_ref)
    assert closed == pytest.approx(frac, abs=0.03)
    near = sp & int(qdsim.Status.NEAR_THRESHOLD) != 0
    assert near == (name == "P_ASYM R=0.5aB")
    if not near:
        assert closed > 0.9


#: qdsim with `corr_powers=2` (powers up to 4 and the exterior functions), 2026-12-03: fraction of
#: the product-CI gap closed (measured; the CI uncertainties move them by <= 0.016)
REF_P2 = {
    "P_ASYM R=0.5aB": 0.982,
    "P_ASYM R=1aB": 1.004,
    "P_ASYM R=2aB": 1.000,
    "P_C5 R=5nm": 1.002,
}


def test_exterior_functions_close_the_near_threshold_gap():
    """`corr_powers=2` adds the exterior functions exp(-alpha kappa (r - R)) - 1 of each carrier
    (qdsim/model/correlated.py): they let the tail outside the dot steepen, which the frozen
    exterior factors cannot. Near threshold (R = 0.5 a_B) they close 98 % of the product-CI gap
    (default basis 28 %; 5 lambdas and powers up to 6 without them: 34 %), elsewhere ~100 %,
    never below E_CI - its uncertainty (variational)."""
    cfg = CORR._replace(corr_powers=2)
    pts = [(c[1], c[2]) for c in CASES]
    prod = _solve(pts, qdsim.SolverConfig())
    corr = _solve(pts, cfg)
    for (name, *_), (ep, _), (ec, sc) in zip(CASES, prod, corr, strict=True):
        e_ref, unc, _, _, _ = REF[name]
        assert sc & qdsim.FAILURE_MASK == 0
        assert ep > ec >= e_ref - unc, name
        closed = (ep - ec) / (ep - e_ref)
        assert closed == pytest.approx(REF_P2[name], abs=0.03), name
        assert closed > 0.95
