"""Dielectric confinement (qdsim.model.dielectric): exact limits of the image-charge energies.

Kernels: Brus, J. Chem. Phys. 80, 4403 (1984); Bolcatto & Proetto, PRB 59, 12487 (1999).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad

import qdsim
from qdsim.constants import E2_4PIEPS0_eV_nm as E2
from qdsim.model import dielectric as d
from qdsim.model.well import ground_state

R = 2.0
E1, E2_OUT = 9.0, 2.4  # dot, toluene-like matrix


@pytest.fixture(autouse=True)
def _x64():
    with qdsim.float64():
        yield


def _brute_in(r, R, e1, e2, n=20_000):
    """Sigma_in by the raw multipole series, alpha_l = (l+1)(e1-e2)/(l e1 + (l+1) e2)."""
    y = (r / R) ** 2
    ls = np.arange(n)
    alpha = (ls + 1) * (e1 - e2) / (ls * e1 + (ls + 1) * e2)
    return E2 / (2 * e1 * R) * np.sum(alpha * y**ls)


def _brute_out(r, R, e1, e2, n=20_000):
    """Sigma_out by the raw series, gamma_l = l (e2-e1)/(l e1 + (l+1) e2), (R/r)^(2l+2)."""
    z = (R / r) ** 2
    ls = np.arange(n)
    gamma = ls * (e2 - e1) / (ls * e1 + (ls + 1) * e2)
    return E2 / (2 * e2 * R) * np.sum(gamma * z ** (ls + 1))


def _states(R=R):
    """A finite-barrier electron and hole (unequal masses and offsets) and infinite-barrier ones."""
    return (
        ground_state(0.2, 0.3, 0.5, R),
        ground_state(0.25, 0.4, 0.3, R),
        ground_state(0.2, 0.2, math.inf, R),
        ground_state(0.3, 0.3, math.inf, R),
    )


def test_no_contrast_gives_exactly_zero():
    e, h, ei, hi = _states()
    r = jnp.linspace(0.0, 3 * R, 61)
    assert np.all(np.asarray(d.self_energy_eV(r, R, 7.0, 7.0)) == 0.0)
    for a, b in ((e, h), (ei, hi)):
        assert float(d.polarisation_shift_eV(a, b, R, 7.0, 7.0)) == 0.0


def test_point_charge_at_centre_is_the_l0_term():
    """Sigma(0) = e^2/(2R) (1/eps_out - 1/eps_in): only the monopole of the image survives."""
    for e1, e2 in ((9.0, 2.4), (2.0, 30.0), (8.42, 9.35)):
        exact = E2 / (2 * R) * (1 / e2 - 1 / e1)
        assert float(d.self_energy_eV(0.0, R, e1, e2)) == pytest.approx(exact, rel=1e-14)


def test_metallic_sphere_is_the_kelvin_image():
    """eps_out -> inf: grounded conducting sphere, Sigma = -e^2 R / (2 eps_in (R^2 - r^2))."""
    for r in (0.0, 0.5, 1.2, 1.6):
        kelvin = -E2 * R / (2 * E1 * (R * R - r * r))
        got = float(d.self_energy_eV(r, R, E1, 1e12))
        assert got == pytest.approx(kelvin, rel=1e-9)


@pytest.mark.parametrize("e1,e2", [(9.0, 2.4), (2.4, 9.0), (5.0, 1e4)])
def test_closed_form_matches_brute_force_series(e1, e2):
    for r in (0.0, 0.3, 1.0, 1.6, 1.8):
        got = float(d.self_energy_eV(r, R, e1, e2, cut_nm=0.1))
        assert got == pytest.approx(_brute_in(r, R, e1, e2), rel=1e-10, abs=1e-15)
    for r in (2.2, 2.5, 4.0):
        got = float(d.self_energy_eV(r, R, e1, e2, cut_nm=0.1))
        assert got == pytest.approx(_brute_out(r, R, e1, e2), rel=1e-10, abs=1e-15)


def test_near_surface_is_the_planar_image():
    """|R - r| -> 0: Sigma -> e^2 (eps1 - eps2) / (4 eps_side (eps1 + eps2) |R - r|)."""
    delta = 1e-5
    q = (E1 - E2_OUT) / (E1 + E2_OUT)
    inside = float(d.self_energy_eV(R - delta, R, E1, E2_OUT, cut_nm=delta / 2))
    outside = float(d.self_energy_eV(R + delta, R, E1, E2_OUT, cut_nm=delta / 2))
    assert inside * delta == pytest.approx(E2 * q / (4 * E1), rel=2e-3)
    assert outside * delta == pytest.approx(-E2 * q / (4 * E2_OUT), rel=2e-3)


def test_regularised_profile_is_continuous_and_linear_in_the_layer():
    cut = 0.3
    lo, hi = R - cut, R + cut
    s = lambda r: float(d.self_energy_eV(r, R, E1, E2_OUT, cut_nm=cut))  # noqa: E731
    assert s(lo - 1e-12) == pytest.approx(s(lo), abs=1e-9)
    assert s(hi + 1e-12) == pytest.approx(s(hi), abs=1e-9)
    assert s(R) == pytest.approx(0.5 * (s(lo) + s(hi)), rel=1e-13)


def test_self_energy_expectation_against_scipy_quad():
    e, _, ei, _ = _states()
    cut = 0.3
    for st in (e, ei):

        def f(r, st=st):
            return float(d._density(st, r, R)) * float(
                d.self_energy_eV(r, R, E1, E2_OUT, cut_nm=cut)
            )

        pieces = [(0, R - cut), (R - cut, R), (R, R + cut), (R + cut, 60.0)]
        ref = sum(quad(f, a, b, limit=200, epsabs=1e-14)[0] for a, b in pieces)
        got = float(d.self_energy_expectation_eV(st, R, E1, E2_OUT, cut))
        assert got == pytest.approx(ref, rel=1e-10)


def _cdf(st, x):
    """F(x) = int_0^x 4 pi u^2 in closed form (u = A sin kr inside, A' exp(-kappa (r-R)) out)."""
    k, A, kap, Ao = (float(v) for v in (st.k_nm, st.amp_in, st.kappa_nm, st.amp_out))
    xin = min(x, R)
    F = 4 * np.pi * A * A * (xin / 2 - np.sin(2 * k * xin) / (4 * k))
    if x > R:
        F += 4 * np.pi * Ao * Ao * (1 - np.exp(-2 * kap * (x - R))) / (2 * kap)
    return F


def test_inverse_max_radius_against_sorted_quad():
    """<1/max(r_e, r_h, R)> = int [P_e F_h + P_h F_e](x) / max(x, R) dx (split at the diagonal,
    closed-form F), independent of the module's integration by parts."""
    e, h, _, _ = _states()

    def f(x):
        pe, ph = float(d._density(e, x, R)), float(d._density(h, x, R))
        return (pe * _cdf(h, x) + ph * _cdf(e, x)) / max(x, R)

    ref = quad(f, 0, R, epsabs=1e-13)[0] + quad(f, R, 40.0, epsabs=1e-13, limit=200)[0]
    assert float(d.inverse_max_radius_nm(e, h, R)) == pytest.approx(ref, rel=1e-10)
    # symmetric in e <-> h
    assert float(d.inverse_max_radius_nm(h, e, R)) == pytest.approx(ref, rel=1e-12)


def test_confined_pair_cancels_the_monopole_parts():
    """Both carriers inside (infinite barrier): <V_pol> = -e^2/R (1/eps_out - 1/eps_in) exactly,
    = minus the two l = 0 self-energies (Brus 1984); antisymmetric under eps_in <-> eps_out."""
    _, _, ei, hi = _states()
    v = float(d.pair_polarisation_eV(ei, hi, R, E1, E2_OUT))
    assert v == pytest.approx(-E2 / R * (1 / E2_OUT - 1 / E1), rel=1e-13)
    assert float(d.pair_polarisation_eV(ei, hi, R, E2_OUT, E1)) == pytest.approx(-v, rel=1e-13)
    # so the shift equals the l >= 1 self-energies alone: positive for a low-eps matrix
    # (alpha_l > 0 for every l), negative for a high-eps one
    assert float(d.polarisation_shift_eV(ei, hi, R, E1, E2_OUT)) > 0
    assert float(d.polarisation_shift_eV(ei, hi, R, E1, 40.0)) < 0


def test_infinite_barrier_is_insensitive_to_the_cut():
    """The density vanishes as (R - r)^2 at the wall, so the cut -> 0 limit exists."""
    _, _, ei, hi = _states()
    a = float(d.polarisation_shift_eV(ei, hi, R, E1, E2_OUT, cut_nm=0.01))
    b = float(d.polarisation_shift_eV(ei, hi, R, E1, E2_OUT, cut_nm=0.002))
    assert a == pytest.approx(b, rel=2e-4)


@pytest.mark.slow  # 30 s, mostly eager dispatch; the solver-level gradient test below stays
def test_jit_and_gradient_match_finite_differences():
    def shift(R_nm, eps_out):
        e = ground_state(0.2, 0.3, 0.5, R_nm)
        h = ground_state(0.25, 0.4, 0.3, R_nm)
        return d.polarisation_shift_eV(e, h, R_nm, E1, eps_out)

    f = jax.jit(shift)
    x0 = (2.0, 2.4)
    assert float(f(*x0)) == pytest.approx(float(shift(*x0)), rel=1e-13)
    grads = jax.grad(f, argnums=(0, 1))(*x0)
    for i, g in enumerate(grads):
        h = 1e-5
        xp, xm = list(x0), list(x0)
        xp[i] += h
        xm[i] -= h
        fd = (float(f(*xp)) - float(f(*xm))) / (2 * h)
        assert float(g) == pytest.approx(fd, rel=1e-6)


# --- wiring into solve_sphere (SolverConfig.dielectric) ------------------------------------------
_P = qdsim.SphereParams(
    Eg_eV=1.72, me_in=0.195, mh_in=0.195, me_out=0.23, mh_out=0.23, eps=9.071,
    dEc_eV=0.2562, dEv_eV=0.2562,
)  # fmt: skip
_ON = qdsim.SolverConfig(dielectric=True)


def test_solver_switch_adds_exactly_the_first_order_shift():
    radii = np.array([2.5, 5.0])
    base = qdsim.solve_sphere(_P, radii)
    # default materials: eps_bg_in = eps_bg_out = 0 -> no contrast -> bit-identical results
    same = qdsim.solve_sphere(_P, radii, config=_ON)
    for a, b in zip(base, same, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    p = _P._replace(eps_bg_in=9.071, eps_bg_out=2.4)
    on = qdsim.solve_sphere(p, radii, config=_ON)
    off = qdsim.solve_sphere(p, radii)
    for i, R in enumerate(radii):
        e = ground_state(_P.me_in, _P.me_out, _P.dEc_eV, R)
        h = ground_state(_P.mh_in, _P.mh_out, _P.dEv_eV, R)
        want = float(d.polarisation_shift_eV(e, h, R, 9.071, 2.4))
        for f in ("energy_eV", "bright_energy_eV", "dark_energy_eV"):
            got = float(getattr(on, f)[i] - getattr(off, f)[i])
            assert got == pytest.approx(want, rel=1e-9)
        assert float(off.binding_energy_eV[i] - on.binding_energy_eV[i]) == pytest.approx(
            want, rel=1e-9
        )
        # exchange, lambda and the wavefunction observables are first order: unchanged
        for f in ("dark_bright_eV", "lam_nm", "contact_density_nm3", "overlap2"):
            assert float(getattr(on, f)[i]) == float(getattr(off, f)[i])


def test_solver_gradient_of_the_shift_matches_finite_differences():
    def energy(eps_out):
        p = _P._replace(eps_bg_in=9.071, eps_bg_out=eps_out)
        return qdsim.solve_sphere(p, 4.0, config=_ON).energy_eV

    g = float(jax.grad(energy)(jnp.float64(2.4)))
    h = 1e-4
    fd = (float(energy(2.4 + h)) - float(energy(2.4 - h))) / (2 * h)
    assert g == pytest.approx(fd, rel=1e-6)
    # (g > 0 here: with finite barriers the leaked density sees the negative exterior
    # self-energy, strongest for a low-eps matrix, so the shift is not monotonic in eps_out)
