"""Single-particle levels of the finite spherical well (physics.md B.1, A.2, §1(a), §D)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qdsim
from benchmarks.scipy_reference import well_level_eV
from qdsim.constants import HBAR2_2M0_eV_nm2
from qdsim.model.well import critical_radius_nm, ground_state
from tests.model.common import INF, richardson
from tests.model.fd_radial import fd_ground_level_richardson_eV


def level(m_in, m_out, V0, R):
    with qdsim.float64():
        return float(ground_state(m_in, m_out, V0, R).energy_eV)


@pytest.mark.parametrize(("m_out", "oracle_meV"), [(0.25, 53.33275309), (0.2, 55.43622965)])
def test_level_oracles_1e9_eV(m_out, oracle_meV):
    """§1(a): R = 5 nm, V0 = 0.3 eV, m_in = 0.2: 30-digit roots [COMPUTED], to 1e-9 eV."""
    assert abs(level(0.2, m_out, 0.3, 5.0) - oracle_meV * 1e-3) < 1e-9


@pytest.mark.parametrize(
    ("m_in", "m_out", "V0", "R"),
    [
        (0.2, 0.25, 0.3, 5.0),
        (0.195, 0.23, 0.2562, 5.0),
        (0.12, 0.4, 0.05, 3.0),
        (0.4, 0.12, 0.8, 1.2),
        (0.3, 0.3, 0.02, 9.0),
        (0.18, 0.23, 1.5, 2.0),
    ],
)
def test_level_matches_independent_root_finder(m_in, m_out, V0, R):
    """§1(a): the jitted bisection root agrees with SciPy brentq (independent code) to 1e-9 eV."""
    ref, *_ = well_level_eV(m_in, m_out, V0, R)
    assert abs(level(m_in, m_out, V0, R) - ref) < 1e-9


@pytest.mark.parametrize(
    ("m_in", "m_out", "V0", "R"), [(0.2, 0.25, 0.3, 5.0), (0.3, 0.15, 0.1, 4.0)]
)
def test_level_matches_finite_volume_radial_solver(m_in, m_out, V0, R):
    """B.1: a flux-conserving finite-volume radial solver (Richardson in h) agrees to 1e-7 eV."""
    fd, raw = fd_ground_level_richardson_eV(m_in, m_out, V0, R)
    assert abs(level(m_in, m_out, V0, R) - fd) < 1e-7
    assert abs(raw[0] - fd) > 1e-7  # the raw grids are not yet converged: the test has teeth


@pytest.mark.parametrize("R", [0.7, 3.0, 12.0])
def test_infinite_barrier_is_particle_in_sphere(R):
    """V0 -> inf: E = hbar^2 pi^2 / (2 m R^2); a 1e12 eV barrier approaches it from below."""
    exact = HBAR2_2M0_eV_nm2 / 0.2 * math.pi**2 / R**2
    assert level(0.2, 0.25, INF, R) == pytest.approx(exact, rel=1e-13)
    big = level(0.2, 0.25, 1e12, R)
    assert big <= exact
    assert big == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize(
    ("m_in", "m_out", "V0"), [(0.2, 0.2, 0.2), (0.15, 0.3, 0.1), (0.3, 0.15, 0.4)]
)
def test_bound_state_threshold_flips_status(m_in, m_out, V0):
    """A.2: bound iff k0 R > xi_c, xi_c cot xi_c = 1 - m_in/m_out; status flips at +-1 % of R_c."""
    Rc = critical_radius_nm(m_in, m_out, V0)
    if m_in == m_out:  # closed form: V0 R^2 = pi^2 hbar^2 / (8 m)
        assert Rc == pytest.approx(
            math.pi * math.sqrt(HBAR2_2M0_eV_nm2 / (4 * m_in * V0)), rel=1e-12
        )
    with qdsim.float64():
        above = ground_state(m_in, m_out, V0, 1.01 * Rc, no_bound_flag=qdsim.Status.NO_BOUND_HOLE)
        below = ground_state(m_in, m_out, V0, 0.99 * Rc, no_bound_flag=qdsim.Status.NO_BOUND_HOLE)
    assert int(above.status) & qdsim.FAILURE_MASK == 0
    assert float(above.energy_eV) < V0
    assert int(below.status) == int(qdsim.Status.NO_BOUND_HOLE)


def test_equal_mass_threshold_radius_of_design_note():
    """A.2: Delta E = 0.2 eV, m = 0.2 m0 gives R_min ~ 1.53 nm."""
    assert critical_radius_nm(0.2, 0.2, 0.2) == pytest.approx(1.53, abs=0.005)


@pytest.mark.parametrize("arg", [0, 1, 2, 3])
def test_level_gradient_matches_finite_differences(arg):
    """§1(g): implicit-function derivative of the BDD root vs Richardson differences."""
    x0 = [0.2, 0.25, 0.3, 5.0]

    def f(v):
        a = list(x0)
        a[arg] = v
        return ground_state(*a).energy_eV

    with qdsim.float64():
        g = float(jax.grad(f)(jnp.float64(x0[arg])))
        fd = richardson(lambda v: float(f(v)), x0[arg], 1e-3 * x0[arg])
    assert g == pytest.approx(fd, rel=1e-7)


def test_gradients_finite_at_infinite_barrier():
    """No NaN from the infinite-wall branch; dE/dV0 = 0 there, dE/dR = -2E/R."""
    with qdsim.float64():
        g = jax.grad(lambda *a: ground_state(*a).energy_eV, argnums=(0, 1, 2, 3))(
            0.2, 0.25, jnp.inf, 5.0
        )
        E = float(ground_state(0.2, 0.25, INF, 5.0).energy_eV)
    g = np.array([float(v) for v in g])
    assert np.all(np.isfinite(g))
    assert abs(g[1]) < 1e-14 and g[2] == 0.0  # sin(pi) ~ 1e-16 leaves a rounding-level m_out term
    assert g[3] == pytest.approx(-2 * E / 5.0, rel=1e-12)
    assert g[0] == pytest.approx(-E / 0.2, rel=1e-12)


def test_wavefunction_normalised_and_flux_continuous():
    """B.1: 4 pi int u^2 dr = 1 and (1/m) d(psi)/dr continuous at R (BDD condition)."""
    from scipy.integrate import quad

    m_in, m_out, V0, R = 0.2, 0.3, 0.25, 4.0
    with qdsim.float64():
        st = ground_state(m_in, m_out, V0, R)
    A, Ao, k, kap = (float(v) for v in (st.amp_in, st.amp_out, st.k_nm, st.kappa_nm))
    inside = quad(lambda r: (A * np.sin(k * r)) ** 2, 0, R, epsabs=1e-14)[0]
    outside = Ao**2 / (2 * kap)
    assert 4 * np.pi * (inside + outside) == pytest.approx(1.0, abs=1e-12)
    assert A * np.sin(k * R) == pytest.approx(Ao, rel=1e-12)  # psi continuous
    # psi = u/r: psi' = u'/r - u/r^2; u' inside A k cos(kR), outside -kappa Ao
    dpsi_in = (A * k * np.cos(k * R)) / R - Ao / R**2
    dpsi_out = (-kap * Ao) / R - Ao / R**2
    assert dpsi_in / m_in == pytest.approx(dpsi_out / m_out, rel=1e-10)
