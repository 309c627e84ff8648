"""Issue 14 item 1: a status-OK point must carry a right number. Reproducers of impossible
outputs from inputs outside the tested domain (each failed on the code before the fix)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qdsim
from tests.model.common import AB, P_INF, RY

INF = math.inf
OOD = int(qdsim.Status.OUT_OF_DOMAIN)

P1 = qdsim.SphereParams(
    1.15488, 39.549, 2.4587, 2.4837, 1.0660, 1.0803, 0.15068, 0.0016949, 0.0035289, 1.2902e-4,
    9.223, 21.976,
)  # fmt: skip
P2 = qdsim.SphereParams(1.551, 0.01926, 1.545, 75.4, 67.95, 73.37, 0.00359, 0.1553, 4.2e-6,
                        2.87e-6, 0, 69.12)  # fmt: skip
P3 = qdsim.SphereParams(2.0, 0.001692, 0.9318, 1, 1, 33.42, INF, INF, 0, 0.002418, 19.18, 48.78)


def _heaviest_rydberg(p):
    mus = [a * b / (a + b) for a in (p.me_in, p.me_out) for b in (p.mh_in, p.mh_out)]
    return 13.6056931 * max(mus) / p.eps**2


def test_bulk_binding_larger_than_the_gap_is_flagged_not_returned():
    """R = 122 nm, a_B = 0.025 nm: the old rule returned binding -1.03 eV, E above the band
    ceiling and a 4.5e-19 s lifetime with status 0. The exciton (Ry* = 27 eV > Eg) has no
    positive energy: OUT_OF_DOMAIN when a rate is asked for; without one the numbers obey the
    bounds Eg - Ry*(heaviest mu) < E and binding ~ Ry* (bulk)."""
    s = qdsim.solve_sphere(P1, 122.14, throw=False)
    assert int(s.status) & OOD and np.isnan(s.radiative_rate_s)
    q = P1._replace(hwLT_eV=0.0)
    s = qdsim.solve_sphere(q, 122.14, throw=False)
    ry = float(qdsim.rydberg_star_eV(q))
    assert float(s.energy_eV) > q.Eg_eV - _heaviest_rydberg(q)
    assert float(s.binding_energy_eV) / ry == pytest.approx(1.0, abs=1e-3)


def test_bulk_size_dot_binding_is_the_rydberg():
    """R = 1e6 nm = 4900 a_B: the old rule gave binding -2.4e-6 eV and a 5e26 /s rate. Product
    ansatz in the bulk: binding = Ry* (1 - O((a_B/R)^2)); the long-wavelength rate does not
    apply to a millimetre sphere: OUT_OF_DOMAIN."""
    s = qdsim.solve_sphere(P2._replace(hwLT_eV=0.0, dSR_eV=0.0), 1e6, throw=False)
    assert int(s.status) & qdsim.FAILURE_MASK == 0
    ry = float(qdsim.rydberg_star_eV(P2))
    assert float(s.binding_energy_eV) / ry == pytest.approx(1.0, abs=1e-4)
    assert float(s.lam_nm) / float(qdsim.bohr_star_nm(P2)) == pytest.approx(1.0, abs=1e-3)
    assert int(qdsim.solve_sphere(P2, 1e6, throw=False).status) & OOD


def test_absurd_exchange_constants_do_not_come_back_usable():
    """hbar omega_LT = 2.4 meV with a_B = 1 um (a dipole of micrometres): the old rule returned
    a 2361 eV splitting, status 0."""
    s = qdsim.solve_sphere(P3, 8.806, throw=False)
    assert int(s.status) & qdsim.FAILURE_MASK
    assert np.isnan(s.dark_bright_eV)


@pytest.mark.parametrize("R_over_aB", [20.0, 40.0, 80.0])
def test_weak_confinement_quadrature_resolves_lambda(R_over_aB):
    """Infinite barrier, m_e = m_h, default order, against order 40: the old rule was off by
    -6.9e-5, +2.6e-3 and +0.068 Ry* (contact density 40 % low at 80 a_B)."""
    radii = np.array([R_over_aB]) * AB
    s = qdsim.solve_sphere(P_INF, radii)
    ref = qdsim.solve_sphere(P_INF, radii, config=qdsim.SolverConfig(n_quad=40))
    assert abs(float(s.energy_eV[0] - ref.energy_eV[0])) / RY < 1e-5
    for name in ("contact_density_nm3", "overlap2", "lam_nm"):
        a, b = float(getattr(s, name)[0]), float(getattr(ref, name)[0])
        assert a == pytest.approx(b, rel=1e-4), name


def test_negative_band_gap_is_invalid():
    with pytest.raises(ValueError, match="Eg_eV"):
        qdsim.solve_sphere(P_INF._replace(Eg_eV=-0.5), 2.0)
    with qdsim.float64():
        st = jax.jit(lambda g: qdsim.solve_sphere(P_INF._replace(Eg_eV=g), 2.0).status)(
            jnp.asarray(-0.5)
        )
    assert int(st) == int(qdsim.Status.INVALID_INPUT)


def test_grading_threshold_bound_holds_for_every_leakage():
    """`may_need_graded_rules` skips the graded rules below R / a_B = GRADED_MIN_R_OVER_AB: the
    fitted lambda guess must then never reach the grading threshold 1.5 R / lambda > _GRADE_AT,
    whatever the leakages u_e, u_h in [0, 1] (a bound the kernel also checks per point)."""
    from qdsim.model import exciton
    from qdsim.model._lambda_guess import log_lambda_guess

    u = np.linspace(0.0, 1.0, 41)
    ue, uh = np.meshgrid(u, u)
    xs = np.linspace(0.01, exciton.GRADED_MIN_R_OVER_AB, 200)
    worst = max(
        float(np.max(1.5 * x / np.exp(np.asarray(log_lambda_guess(x, ue, uh))))) for x in xs
    )
    assert worst < exciton._GRADE_AT


def test_uniform_only_batches_equal_the_full_kernel_and_flag_what_they_miss():
    """The kernel without the graded rules (chosen for batches below the threshold) gives the
    same numbers as the one that carries both rule sets, and a point beyond the threshold run
    without them is flagged QUADRATURE_UNRESOLVED instead of returned wrong."""
    from qdsim.model.solve import _kernel

    with qdsim.float64():
        p = qdsim.SphereParams(*(jnp.asarray(v, dtype=jnp.float64) for v in P_INF))
        for r_over_ab, graded_needed in ((1.5, False), (3.9, False), (40.0, True)):
            R = jnp.asarray(r_over_ab * AB)
            full = _kernel(p, R, qdsim.SolverConfig(), True)
            lean = _kernel(p, R, qdsim.SolverConfig(), False)
            if not graded_needed:
                assert int(full.status) == int(lean.status) == 0
                for f in ("energy_eV", "contact_density_nm3", "lam_nm"):
                    a, b = float(getattr(full, f)), float(getattr(lean, f))
                    assert a == pytest.approx(b, rel=1e-13, abs=1e-15), f
            else:
                assert int(full.status) == 0
                assert int(lean.status) & int(qdsim.Status.QUADRATURE_UNRESOLVED)


def test_sweep_across_the_grading_threshold_matches_scalar_solves():
    """A phase diagram whose chunks straddle R / a_B = GRADED_MIN_R_OVER_AB picks the rules per
    chunk; every point must equal its own scalar solve (which picks per call)."""
    system = qdsim.load_system()
    a_b = float(qdsim.bohr_star_nm(system.sphere_params(0.5)))
    radii = np.array([2.0, 3.5, 4.5, 10.0, 40.0]) * a_b
    x = np.array([0.0, 0.5])
    ds = qdsim.phase_diagram(radius_nm=radii, x=x, system=system, chunk_points=2)
    beyond = 0
    for i, R in enumerate(radii):
        for j, xx in enumerate(x):
            s = qdsim.solve_sphere(system.sphere_params(xx), R, throw=False)
            a, b = float(ds["emission_energy"].values[i, j]), float(s.bright_energy_eV)
            assert int(ds["status"].values[i, j]) == int(s.status)
            assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, rel=1e-12)
            beyond += R / float(qdsim.bohr_star_nm(system.sphere_params(xx))) > 5
    assert beyond >= 2  # the grid does reach the graded rules
