"""Zeeman model (physics.md B.6) and its global fit to unassigned line energies.

Exact limits of the 4x4 Hamiltonian, its symmetries, and recovery of known parameters from
synthetic field series (noise, missing lines, shuffled peaks), plus ill-posed input.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import scipy.constants as sc

from qdsim import analysis
from qdsim.analysis.spectroscopy.zeeman import (
    PARAM_NAMES,
    ZeemanFitWarning,
    zeeman_hamiltonian,
    zeeman_states,
)

MU_B = sc.physical_constants["Bohr magneton in eV/T"][0]

# dot-3-like parameters (physics.md C.4/C.5), eV, T
TRUTH = {
    "E_bright_eV": 1.8170,
    "dark_bright_eV": 1.5e-3,
    "split_xy_eV": 0.27e-3,
    "split_z_eV": 0.10e-3,
    "g_X": 2.6,
    "g_e_minus_g_h": 2.0,
    "gamma_dia_eV_T2": 8e-6,
}
FIELDS = np.arange(0.0, 7.01, 0.5)


def zero_field_energies(p):
    """E_D, E_X, E_Y, E_Z from the parameter definitions of the module docstring."""
    Eb, sxy, sz = p["E_bright_eV"], p["split_xy_eV"], p["split_z_eV"]
    return np.array(
        [
            Eb - p["dark_bright_eV"],
            Eb - sz / 3 - sxy / 2,
            Eb - sz / 3 + sxy / 2,
            Eb + 2 * sz / 3,
        ]
    )


def synthetic_lines(
    p, seed, sigma, *, fields=FIELDS, drop=0.2, min_bright=0.02, geometry="faraday"
):
    """Flat, shuffled line list: states dimmer than `min_bright` unseen, `drop` of the rest lost."""
    st = zeeman_states(p, fields, geometry)
    rng = np.random.default_rng(seed)
    B = np.repeat(fields, 4)
    E = st.energy_eV.ravel()
    lab = st.labels.ravel()
    keep = (st.bright.ravel() > min_bright) & (rng.random(E.size) >= drop)
    B, E, lab = B[keep], E[keep], lab[keep]
    perm = rng.permutation(E.size)
    return B[perm], E[perm] + rng.normal(0.0, sigma, E.size) * (sigma > 0), lab[perm]


def z_scores(res, truth):
    return {k: (res.params[k] - truth[k]) / res.stderr[k] for k in PARAM_NAMES}


# ------------------------------------------------------------------------------------------
# the Hamiltonian: exact limits and symmetries
# ------------------------------------------------------------------------------------------


def test_mu_B_is_codata():
    """physics.md B: mu_B = 57.8838 ueV/T, from scipy.constants (not hand-typed)."""
    from qdsim.analysis.spectroscopy import zeeman

    assert zeeman.MU_B_eV_T == MU_B
    assert abs(MU_B - 57.8838e-6) < 1e-10


@pytest.mark.parametrize("geometry", ["faraday", "voigt", (0.3, -0.5, 0.8)])
def test_zero_field_eigenvalues_are_ED_EX_EY_EZ(geometry):
    """B.6 at B = 0: eigenvalues are E_D, E_X, E_Y, E_Z whatever the g factors."""
    p = dict(TRUTH, split_z_eV=-0.4e-3, g_X=-3.1, g_e_minus_g_h=5.0)
    E, frac = analysis.zeeman_energies(p, 0.0, geometry)
    np.testing.assert_allclose(E, np.sort(zero_field_energies(p)), rtol=0, atol=1e-15)
    assert frac == 0.0  # the dark state is exactly dark at zero field


def test_isotropic_faraday_closed_form():
    """B.6, isotropic triplet, B || z: E_B +- g mu_B B/2 + gamma B^2 and the closed Z/D pair."""
    p = dict(TRUTH, split_xy_eV=0.0, split_z_eV=0.0)
    B = np.linspace(0.0, 30.0, 61)
    E, frac = analysis.zeeman_energies(p, B)
    EB, D, g, dg, gam = (
        p["E_bright_eV"],
        p["dark_bright_eV"],
        p["g_X"],
        p["g_e_minus_g_h"],
        p["gamma_dia_eV_T2"],
    )
    ED = EB - D
    delta = 0.5 * dg * MU_B * B
    root = np.sqrt(D**2 / 4 + delta**2)
    expect = (
        np.stack(
            [
                EB + 0.5 * g * MU_B * B,
                EB - 0.5 * g * MU_B * B,
                (EB + ED) / 2 + root,
                (EB + ED) / 2 - root,
            ],
            axis=1,
        )
        + (gam * B**2)[:, None]
    )
    np.testing.assert_allclose(E, np.sort(expect, axis=1), rtol=0, atol=2e-15)
    # brightening, exact: (1 - Delta / sqrt(Delta^2 + 4 delta^2)) / 2
    np.testing.assert_allclose(frac, 0.5 * (1 - D / np.sqrt(D**2 + 4 * delta**2)), atol=1e-14)


def test_brightening_is_delta2_over_Delta2_at_small_field():
    """B.6: |<Z|D(B)>|^2 -> delta^2 / Delta_DB^2 (propto B^2) as B -> 0, also anisotropic."""
    p = dict(TRUTH)
    B = np.array([1e-3, 1e-2, 0.1])
    _, frac = analysis.zeeman_energies(p, B)
    # with anisotropy the D-Z gap at B -> 0 is E_Z - E_D
    ED, _, _, EZ = zero_field_energies(p)
    delta = 0.5 * p["g_e_minus_g_h"] * MU_B * B
    ratio = frac / (delta / (EZ - ED)) ** 2
    assert abs(ratio[0] - 1) < 1e-6
    assert abs(ratio[1] - 1) < 1e-4
    assert abs(ratio[2] - 1) < 1e-2  # corrections O(delta^2 / Delta^2)
    # and it grows as B^2
    np.testing.assert_allclose(frac[1] / frac[0], 100.0, rtol=1e-4)


def test_dark_line_shift_is_delta2_over_Delta():
    """B.6: the dark line moves down by ~ delta^2 / Delta_DB (isotropic, no diamagnetism)."""
    p = dict(TRUTH, split_xy_eV=0.0, split_z_eV=0.0, gamma_dia_eV_T2=0.0)
    B = 0.05
    E, _ = analysis.zeeman_energies(p, B)
    delta = 0.5 * p["g_e_minus_g_h"] * MU_B * B
    ED = p["E_bright_eV"] - p["dark_bright_eV"]
    shift = E[0] - ED
    assert shift < 0
    np.testing.assert_allclose(-shift, delta**2 / p["dark_bright_eV"], rtol=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_traceless_zeeman_block_mean_eigenvalue(seed):
    """B.6: mean eigenvalue = (E_D + E_X + E_Y + E_Z)/4 + gamma B^2 for any field direction."""
    rng = np.random.default_rng(seed)
    p = {
        "E_bright_eV": 1.8 + rng.normal() * 0.01,
        "dark_bright_eV": rng.uniform(-2e-3, 5e-3),
        "split_xy_eV": rng.normal() * 1e-3,
        "split_z_eV": rng.normal() * 1e-3,
        "g_X": rng.normal() * 3,
        "g_e_minus_g_h": rng.normal() * 3,
        "gamma_dia_eV_T2": rng.uniform(0, 2e-5),
    }
    geom = rng.normal(size=3)
    B = rng.uniform(-20, 20, size=7)
    E, _ = analysis.zeeman_energies(p, B, geom)
    expect = zero_field_energies(p).mean() + p["gamma_dia_eV_T2"] * B**2
    np.testing.assert_allclose(E.mean(axis=1), expect, rtol=0, atol=1e-14)
    # so energies relative to their mean do not depend on gamma nor on E_bright
    q = dict(p, gamma_dia_eV_T2=0.0, E_bright_eV=0.0)
    Eq, _ = analysis.zeeman_energies(q, B, geom)
    np.testing.assert_allclose(
        E - E.mean(axis=1, keepdims=True), Eq - Eq.mean(axis=1, keepdims=True), atol=1e-14
    )


def test_voigt_faraday_symmetry():
    """Relabelling the dot axes: Voigt (B || x) with (E_X, E_Y, E_Z) has the spectrum of
    Faraday (B || z) with (E_Z, E_Y, E_X); an isotropic triplet does not care about direction."""
    p = dict(TRUTH, split_xy_eV=0.3e-3, split_z_eV=-0.5e-3)
    ED, EX, EY, EZ = zero_field_energies(p)
    Eb = (EX + EY + EZ) / 3
    # parameters with E_X' = E_Z, E_Y' = E_Y, E_Z' = E_X (same bright mean and E_D)
    q = dict(
        p,
        E_bright_eV=Eb,
        split_xy_eV=EY - EZ,
        split_z_eV=EX - (EZ + EY) / 2,
    )
    np.testing.assert_allclose(zero_field_energies(q)[[1, 2, 3]], [EZ, EY, EX], atol=1e-15)
    B = np.linspace(-9, 9, 19)
    Ev, fv = analysis.zeeman_energies(p, B, "voigt")
    Ef, ff = analysis.zeeman_energies(q, B, "faraday")
    np.testing.assert_allclose(Ev, Ef, atol=1e-15)
    np.testing.assert_allclose(fv, ff, atol=1e-12)
    # Voigt genuinely differs from Faraday for an anisotropic dot
    assert np.max(np.abs(Ev - analysis.zeeman_energies(p, B, "faraday")[0])) > 1e-5
    iso = dict(p, split_xy_eV=0.0, split_z_eV=0.0)
    E1 = analysis.zeeman_energies(iso, B, "faraday")[0]
    for geom in ("voigt", (1.0, 2.0, -0.5)):
        np.testing.assert_allclose(analysis.zeeman_energies(iso, B, geom)[0], E1, atol=1e-15)


def test_spectrum_even_in_B_gX_and_dg():
    """The energies cannot tell the sign of B, g_X or g_e - g_h (module docstring)."""
    p = dict(TRUTH)
    B = np.linspace(0.5, 8, 9)
    geom = (0.2, 0.4, 0.9)
    E0 = analysis.zeeman_energies(p, B, geom)[0]
    np.testing.assert_allclose(analysis.zeeman_energies(p, -B, geom)[0], E0, atol=1e-15)
    for k in ("g_X", "g_e_minus_g_h"):
        q = dict(p, **{k: -p[k]})
        np.testing.assert_allclose(analysis.zeeman_energies(q, B, geom)[0], E0, atol=1e-15)


def _swap_dark_and(p, k):
    """Parameters with E_D and the bright level k (1 = X, 2 = Y, 3 = Z) exchanged."""
    lev = zero_field_energies(p)
    lev[[0, k]] = lev[[k, 0]]
    ED, EX, EY, EZ = lev
    Eb = (EX + EY + EZ) / 3
    return dict(
        p,
        E_bright_eV=Eb,
        dark_bright_eV=Eb - ED,
        split_xy_eV=EY - EX,
        split_z_eV=EZ - (EX + EY) / 2,
    )


@pytest.mark.parametrize(("geometry", "k"), [("faraday", 3), ("voigt", 1)])
def test_dark_and_parallel_bright_level_can_be_swapped(geometry, k):
    """B along a dot axis: D couples only to the dipole along B, so E_D <-> E_k leaves every
    energy unchanged (the energies cannot tell which of the two is dark) but not the
    brightness: at low field the swapped 'dark' state is the bright one."""
    q = _swap_dark_and(TRUTH, k)
    B = np.linspace(0, 8, 17)
    np.testing.assert_allclose(
        analysis.zeeman_energies(q, B, geometry)[0],
        analysis.zeeman_energies(TRUTH, B, geometry)[0],
        atol=1e-15,
    )
    assert analysis.zeeman_energies(q, 1.0, geometry).dark_bright_fraction < 1e-2
    # a field off the axis breaks the symmetry
    tilt = (0.3, 0.0, 1.0) if geometry == "faraday" else (1.0, 0.0, 0.3)
    d = analysis.zeeman_energies(q, B, tilt)[0] - analysis.zeeman_energies(TRUTH, B, tilt)[0]
    assert np.max(np.abs(d)) > 1e-6


def _swap_blocks(p):
    """Faraday: exchange the (X, Y; g_X) block with the (D, Z; g_e - g_h) block."""
    ED, EX, EY, EZ = zero_field_energies(p)
    c1, a1 = (EX + EY) / 2, abs(EY - EX) / 2
    c2, a2 = (ED + EZ) / 2, abs(EZ - ED) / 2
    EX, EY, ED, EZ = c2 - a2, c2 + a2, c1 - a1, c1 + a1
    Eb = (EX + EY + EZ) / 3
    return dict(
        p,
        E_bright_eV=Eb,
        dark_bright_eV=Eb - ED,
        split_xy_eV=EY - EX,
        split_z_eV=EZ - (EX + EY) / 2,
        g_X=p["g_e_minus_g_h"],
        g_e_minus_g_h=p["g_X"],
    )


def test_faraday_blocks_can_be_exchanged():
    """B || z: the (X, Y) block mixed by g_X and the (D, Z) block mixed by g_e - g_h have the
    same form, so exchanging them (levels and g factors) leaves every energy unchanged."""
    q = _swap_blocks(TRUTH)
    B = np.linspace(0, 8, 17)
    np.testing.assert_allclose(
        analysis.zeeman_energies(q, B)[0], analysis.zeeman_energies(TRUTH, B)[0], atol=1e-15
    )
    # but the states that are bright differ: at 0 T one of the observed doublet is dark in q
    assert analysis.zeeman_states(q, 0.0).bright.min() == 0.0
    assert np.max(np.abs(q["g_X"] - TRUTH["g_X"])) > 0.5


@pytest.mark.parametrize("partner", ["swap_dz", "swap_blocks"])
def test_visibility_prior_picks_the_dark_level(partner):
    """Started in an equal-chi^2 partner solution, the fit ends on the one where the lines
    seen are bright and the missing ones dim; without the visibility prior it stays."""
    B, E, _ = synthetic_lines(TRUTH, seed=7, sigma=2e-5)
    swapped = _swap_dark_and(TRUTH, 3) if partner == "swap_dz" else _swap_blocks(TRUTH)
    res = analysis.fit_zeeman(B, E, 2e-5, initial=swapped)
    z = z_scores(res, TRUTH)
    assert all(abs(v) < 4 for v in z.values()), z
    blind = analysis.fit_zeeman(B, E, 2e-5, initial=swapped, visibility=False)
    assert blind.gof.chi2 == pytest.approx(res.gof.chi2, rel=1e-6)
    assert abs(blind.dark_bright_eV - swapped["dark_bright_eV"]) < 4 * blind.dark_bright_err_eV
    assert abs(blind.g_X - abs(swapped["g_X"])) < 4 * blind.g_X_err


def test_hamiltonian_structure_and_polarisation():
    """H is Hermitian; B || z isotropic: the upper J = +-1 state is pure sigma+ for g_X > 0,
    the Z-like and the dark state radiate only pi (dipole || B)."""
    p = dict(TRUTH, split_xy_eV=0.0, split_z_eV=0.0)
    H = zeeman_hamiltonian(p, [0.0, 3.0, 7.0], (0.1, 0.7, 0.3))
    np.testing.assert_allclose(H, np.conj(np.swapaxes(H, -1, -2)), atol=0)
    st = zeeman_states(p, 7.0)
    top = int(np.argmax(st.energy_eV))
    assert st.labels[top] == "sigma+"
    assert st.sigma_plus[top] == pytest.approx(1.0, abs=1e-12)
    q = dict(p, g_X=-p["g_X"])
    stq = zeeman_states(q, 7.0)
    assert stq.sigma_minus[int(np.argmax(stq.energy_eV))] == pytest.approx(1.0, abs=1e-12)
    dark = int(np.argmax(st.dark))
    assert st.pi[dark] == pytest.approx(1.0, abs=1e-12)
    assert 0 < st.bright[dark] < 0.1
    np.testing.assert_allclose(st.dark + st.bright, 1.0, atol=1e-12)


def test_forward_model_input_errors():
    with pytest.raises(ValueError, match="E_bright_eV"):
        analysis.zeeman_energies({"g_X": 2.0}, 1.0)
    with pytest.raises(ValueError, match="unknown"):
        analysis.zeeman_energies(dict(TRUTH, g_x=2.0), 1.0)
    with pytest.raises(ValueError, match="geometry"):
        analysis.zeeman_energies(TRUTH, 1.0, "oblique")
    with pytest.raises(ValueError, match="finite"):
        analysis.zeeman_energies(TRUTH, np.nan)


# ------------------------------------------------------------------------------------------
# fit recovery
# ------------------------------------------------------------------------------------------


def test_noiseless_recovery_unassigned_shuffled_missing():
    """Noiseless, shuffled lines with the dark line unseen at low field: truth to ~1e-8."""
    B, E, _ = synthetic_lines(TRUTH, seed=3, sigma=0.0, drop=0.15)
    res = analysis.fit_zeeman(B, E, 1e-5)
    assert res.converged
    for k in PARAM_NAMES:
        tol = 1e-8 * max(abs(TRUTH[k]), 1e-3) if k != "E_bright_eV" else 1e-12
        assert abs(res.params[k] - TRUTH[k]) < tol, k
    assert res.gof.chi2 < 1e-12
    assert np.max(np.abs(res.residual_eV)) < 1e-12


@pytest.mark.parametrize("seed", [11, 12, 23])
def test_noisy_recovery_within_reported_errors(seed):
    """Seeded noise (20 ueV), 20 % of lines lost, shuffled: every parameter within 4 sigma."""
    B, E, _ = synthetic_lines(TRUTH, seed=seed, sigma=2e-5)
    res = analysis.fit_zeeman(B, E, 2e-5)
    assert res.converged
    z = z_scores(res, TRUTH)
    assert all(abs(v) < 4 for v in z.values()), z
    assert 0.3 < res.gof.chi2_red < 2.0
    # the short names agree with the dicts
    assert res.g_X == res.params["g_X"] and res.g_X_err == res.stderr["g_X"]
    assert res.dark_bright_eV == res.params["dark_bright_eV"]
    assert res.dark_bright_err_eV == res.stderr["dark_bright_eV"]


def test_assignment_does_not_depend_on_input_order():
    B, E, _ = synthetic_lines(TRUTH, seed=5, sigma=2e-5)
    r1 = analysis.fit_zeeman(B, E, 2e-5)
    perm = np.random.default_rng(0).permutation(E.size)
    r2 = analysis.fit_zeeman(B[perm], E[perm], 2e-5)
    for k in PARAM_NAMES:
        assert r2.params[k] == pytest.approx(r1.params[k], rel=1e-7, abs=1e-12)
    np.testing.assert_array_equal(r2.assignment, r1.assignment[perm])


def test_assignment_matches_truth():
    """Each observed line ends up on the eigenstate it came from."""
    B, E, lab = synthetic_lines(TRUTH, seed=8, sigma=1e-5)
    res = analysis.fit_zeeman(B, E, 1e-5)
    np.testing.assert_array_equal(res.state_labels, lab)


def test_sigma_none_scales_covariance_by_chi2_red():
    B, E, _ = synthetic_lines(TRUTH, seed=2, sigma=2e-5)
    ra = analysis.fit_zeeman(B, E, 2e-5)
    rn = analysis.fit_zeeman(B, E)
    assert not rn.absolute_sigma
    # unit weights: chi2 is the residual sum of squares (eV^2), chi2_red the scatter variance
    assert rn.gof.chi2 == pytest.approx(float(np.sum(rn.residual_eV**2)), rel=1e-9)
    assert 0.5 < math.sqrt(rn.gof.chi2_red) / 2e-5 < 1.5
    for k in PARAM_NAMES:
        assert rn.params[k] == pytest.approx(ra.params[k], rel=1e-7, abs=1e-13)
        assert rn.stderr[k] == pytest.approx(ra.stderr[k] * math.sqrt(ra.gof.chi2_red), rel=1e-6)


def test_circular_labels_fix_the_sign_of_gX():
    """Without polarisation only |g_X| is known; sigma+/- labels give the sign (B.6 docstring)."""
    p = dict(TRUTH, g_X=-2.6)
    B, E, lab = synthetic_lines(p, seed=1, sigma=2e-5)
    pol = np.where(np.isin(lab, ["sigma+", "sigma-"]), lab, "")
    r = analysis.fit_zeeman(B, E, 2e-5, polarization=pol)
    assert r.g_X_sign_determined
    assert abs(r.g_X - (-2.6)) < 4 * r.g_X_err
    r0 = analysis.fit_zeeman(B, E, 2e-5)
    assert not r0.g_X_sign_determined
    assert r0.g_X == pytest.approx(-r.g_X, rel=1e-6)
    assert any("sign" in n for n in r0.notes)
    # labels that contradict the data (all swapped) change the assignment, not the energies
    swapped = np.where(pol == "sigma+", "sigma-", np.where(pol == "sigma-", "sigma+", pol))
    r1 = analysis.fit_zeeman(B, E, 2e-5, polarization=swapped)
    assert r1.g_X == pytest.approx(-r.g_X, rel=1e-6)


def test_voigt_geometry_recovery():
    B, E, _ = synthetic_lines(TRUTH, seed=2, sigma=2e-5, geometry="voigt")
    res = analysis.fit_zeeman(B, E, 2e-5, geometry="voigt")
    z = z_scores(res, TRUTH)
    assert all(abs(v) < 4 for v in z.values()), z
    assert res.geometry == (1.0, 0.0, 0.0)


def test_per_field_offsets_absorb_spectral_diffusion():
    """Random per-field energy jumps (spectral diffusion, 100 ueV): relative energies still
    give the fine structure; the common-offset model fails chi^2."""
    B, E, _ = synthetic_lines(TRUTH, seed=4, sigma=1e-5, drop=0.1)
    rng = np.random.default_rng(9)
    jumps = rng.normal(0, 1e-4, FIELDS.size)
    E2 = E + jumps[np.searchsorted(FIELDS, B)]
    res = analysis.fit_zeeman(B, E2, 1e-5, offset="per_field")
    assert res.gamma_dia_eV_T2 == 0.0 and res.stderr["gamma_dia_eV_T2"] == 0.0
    for k in ("dark_bright_eV", "split_xy_eV", "split_z_eV", "g_X", "g_e_minus_g_h"):
        assert abs(res.params[k] - TRUTH[k]) < 4 * res.stderr[k], k
    # each offset = jump + gamma (B^2 - 0) relative to the 0 T reference
    for b in FIELDS[1:]:
        expect = jumps[np.searchsorted(FIELDS, b)] - jumps[0] + TRUTH["gamma_dia_eV_T2"] * b * b
        key = f"offset_{b:.9g}T_eV"
        assert abs(res.params[key] - expect) < 4 * res.stderr[key] + 1e-12, key
    assert res.gof.chi2_red < 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZeemanFitWarning)
        common = analysis.fit_zeeman(B, E2, 1e-5)
    assert common.gof.chi2_red > 10


def _zd_single_field_lines(seed):
    """X, Y (or the +-1 pair) at 0, 2, 4 T; all four lines only at 6 T (physics.md C.5 case)."""
    fields = np.array([0.0, 2.0, 4.0, 6.0])
    st = zeeman_states(TRUTH, fields)
    B, E, pol = [], [], []
    for i, b in enumerate(fields):
        for j in range(4):
            lab = st.labels[i, j]
            if b == 6.0 or lab not in ("D", "Z"):
                B.append(b)
                E.append(st.energy_eV[i, j])
                pol.append("pi" if lab in ("D", "Z") else "perp")
    rng = np.random.default_rng(seed)
    E = np.array(E) + rng.normal(0, 1e-5, len(E))
    return np.array(B), E, np.array(pol)


def test_dark_and_Z_at_one_field_only_is_flagged_undetermined():
    """Two Z/D energies at one field cannot give E_D, E_Z and g_e - g_h: warn, errors inf;
    fixing g_e - g_h makes it well posed again (the dot-3 situation, physics.md C.5)."""
    B, E, pol = _zd_single_field_lines(0)
    with pytest.warns(ZeemanFitWarning, match="not determined"):
        res = analysis.fit_zeeman(B, E, 1e-5, polarization=pol)
    for k in ("dark_bright_eV", "split_z_eV", "g_e_minus_g_h"):
        assert math.isinf(res.stderr[k]), k
    assert math.isfinite(res.g_X_err) and math.isfinite(res.split_xy_err_eV)
    assert any("not determined" in n for n in res.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeemanFitWarning)
        fixed = analysis.fit_zeeman(B, E, 1e-5, polarization=pol, fix={"g_e_minus_g_h": 2.0})
    assert abs(fixed.dark_bright_eV - TRUTH["dark_bright_eV"]) < 4 * fixed.dark_bright_err_eV
    assert fixed.stderr["g_e_minus_g_h"] == 0.0 and fixed.fixed == {"g_e_minus_g_h": 2.0}


def test_dark_fraction_data_determine_the_mixing():
    """The dark line's bright fraction (B^2 brightening) fixes |g_e - g_h| / Delta_DB and so
    resolves the single-field degeneracy."""
    B, E, pol = _zd_single_field_lines(1)
    Bd = np.array([2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    fd = analysis.zeeman_energies(TRUTH, Bd).dark_bright_fraction
    rng = np.random.default_rng(4)
    sd = 0.03 * fd
    fd_noisy = fd + rng.normal(0, 1, fd.size) * sd
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeemanFitWarning)
        res = analysis.fit_zeeman(B, E, 1e-5, polarization=pol, dark_fraction=(Bd, fd_noisy, sd))
    z = z_scores(res, TRUTH)
    assert all(abs(v) < 4 for v in z.values()), z
    assert res.gof.dof == E.size + Bd.size - len(PARAM_NAMES)


def test_dark_fraction_gradient_matches_finite_differences():
    from qdsim.analysis.spectroscopy import zeeman as Z

    Bd = np.array([0.5, 3.0, 7.0])
    B, E, _ = synthetic_lines(TRUTH, seed=0, sigma=0.0)
    prob = Z._Problem(
        B,
        E,
        np.full(E.size, 1e-5),
        Z.parse_polarization(None, E.size),
        np.array([0.3, 0.2, 0.9]) / np.linalg.norm([0.3, 0.2, 0.9]),
        "diamagnetic",
        {},
        (Bd, np.zeros(3), np.ones(3)),
        False,
    )
    full = np.array([Z._to_internal(k, TRUTH[k], prob.E_ref) for k in PARAM_NAMES])
    _, grad = Z._dark_fraction_and_grad(prob, full, True)
    for k in range(len(PARAM_NAMES)):
        h = 1e-5 * max(1.0, abs(full[k]))
        fp, fm = full.copy(), full.copy()
        fp[k] += h
        fm[k] -= h
        num = (
            Z._dark_fraction_and_grad(prob, fp, False)[0]
            - Z._dark_fraction_and_grad(prob, fm, False)[0]
        ) / (2 * h)
        np.testing.assert_allclose(grad[:, k], num, rtol=1e-5, atol=1e-9)


def test_line_jacobian_matches_finite_differences():
    """Hellmann-Feynman derivatives of the assigned levels equal finite differences."""
    from qdsim.analysis.spectroscopy import zeeman as Z

    B, E, _ = synthetic_lines(TRUTH, seed=0, sigma=0.0)
    prob = Z._Problem(
        B,
        E,
        np.full(E.size, 1e-5),
        Z.parse_polarization(None, E.size),
        np.array([0.0, 0.0, 1.0]),
        "per_field",
        {},
        None,
        False,
    )
    x = prob.full(np.zeros(len(prob.free)))
    x[: len(PARAM_NAMES)] = [Z._to_internal(k, TRUTH[k], prob.E_ref) for k in PARAM_NAMES]
    x[len(PARAM_NAMES) :] = np.linspace(-0.1, 0.1, len(prob.names) - len(PARAM_NAMES))
    state, *_ = Z._assign(prob, x, np.full(E.size, 1e-5))
    _, J = Z._residuals_and_jac(prob, x, state, True)
    for k in range(x.size):
        h = 1e-6
        xp, xm = x.copy(), x.copy()
        xp[k] += h
        xm[k] -= h
        num = (
            Z._residuals_and_jac(prob, xp, state, False)[0]
            - Z._residuals_and_jac(prob, xm, state, False)[0]
        ) / (2 * h)
        np.testing.assert_allclose(J[:, k], num, rtol=1e-6, atol=1e-4)


# ------------------------------------------------------------------------------------------
# result object
# ------------------------------------------------------------------------------------------


def test_result_is_frozen_and_consistent(tmp_path):
    B, E, _ = synthetic_lines(TRUTH, seed=6, sigma=2e-5)
    res = analysis.fit_zeeman(B, E, 2e-5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.g_X = 0.0
    with pytest.raises(ValueError):
        res.assignment[0] = 3
    C = res.covariance
    np.testing.assert_allclose(C, C.T, rtol=1e-10, atol=0)
    assert np.all(np.linalg.eigvalsh(C) > 0)
    np.testing.assert_allclose(np.diag(res.correlation), 1.0)
    i, j = res.free_names.index("g_X"), res.free_names.index("dark_bright_eV")
    assert res.correlation[i, j] == pytest.approx(C[i, j] / math.sqrt(C[i, i] * C[j, j]), rel=1e-12)
    assert res.gof.dof == E.size - len(PARAM_NAMES)
    assert res.gof["chi2_red"] == res.gof.chi2_red == pytest.approx(res.gof.chi2 / res.gof.dof)
    assert np.all((res.assignment >= 0) & (res.assignment < 4))
    np.testing.assert_allclose(res.model_energy_eV + res.residual_eV, E, atol=1e-15)
    np.testing.assert_allclose(
        res.energies(B).energy_eV[np.arange(E.size), res.assignment],
        res.model_energy_eV,
        atol=1e-15,
    )
    ds = res.to_dataset()
    path = tmp_path / "z.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    import xarray as xr

    back = xr.load_dataset(path, engine="h5netcdf")
    xr.testing.assert_allclose(back, ds)
    assert float(back["value"].sel(parameter="g_X")) == res.g_X
    import json

    d = json.loads(res.to_json())
    assert d["params"]["g_X"] == res.g_X


# ------------------------------------------------------------------------------------------
# ill-posed input
# ------------------------------------------------------------------------------------------


def test_one_field_only_is_rejected():
    E = analysis.zeeman_energies(TRUTH, 6.0).energy_eV
    with pytest.raises(ValueError, match="one field"):
        analysis.fit_zeeman(np.full(4, 6.0), E, 1e-5)


def test_fewer_lines_than_parameters_is_rejected():
    E = analysis.zeeman_energies(TRUTH, [0.0, 6.0]).energy_eV
    B = np.array([0.0, 0.0, 6.0, 6.0, 6.0])
    with pytest.raises(ValueError, match="free parameters"):
        analysis.fit_zeeman(B, [E[0, 1], E[0, 2], *E[1, 1:]], 1e-5)
    # without sigma one extra datum is needed to estimate the scatter
    B7 = np.array([0, 0, 6, 6, 6, 6, 7.0])
    E7 = np.concatenate([E[0, 1:3], E[1], analysis.zeeman_energies(TRUTH, 7.0).energy_eV[:1]])
    with pytest.raises(ValueError, match="without sigma"):
        analysis.fit_zeeman(B7, E7)


@pytest.mark.parametrize(
    ("B", "E", "sigma", "match"),
    [
        ([0, 1, np.nan], [1.8, 1.8, 1.8], 1e-5, "NaN"),
        ([0, 1, 2], [1.8, np.inf, 1.8], 1e-5, "NaN or inf"),
        ([0, 1, 2], [1.8, 1.8], 1e-5, "entries"),
        ([0, 1, 2], [1.8, 1.8, 1.8], [1e-5, 1e-5], "sigma_eV has 2"),
        ([0, 1, 2], [1.8, 1.8, 1.8], 0.0, "> 0"),
        ([[0, 1], [2, 3]], [1.8, 1.8, 1.8, 1.8], 1e-5, "1-D"),
    ],
)
def test_bad_arrays_are_rejected(B, E, sigma, match):
    with pytest.raises(ValueError, match=match):
        analysis.fit_zeeman(B, E, sigma)


def test_more_lines_than_states_and_bad_options_are_rejected():
    B = np.array([0, 0, 6, 6, 6, 6, 6, 7, 7.0])
    E = np.linspace(1.815, 1.818, B.size)
    with pytest.raises(ValueError, match="4 states"):
        analysis.fit_zeeman(B, E, 1e-5)
    B, E, _ = synthetic_lines(TRUTH, seed=0, sigma=1e-5)
    with pytest.raises(ValueError, match="unknown parameter"):
        analysis.fit_zeeman(B, E, 1e-5, fix={"g_x": 2.0})
    with pytest.raises(ValueError, match="polarization label"):
        analysis.fit_zeeman(B, E, 1e-5, polarization=["circular"] * E.size)
    with pytest.raises(ValueError, match="offset"):
        analysis.fit_zeeman(B, E, 1e-5, offset="relative")
    with pytest.raises(ValueError, match="nothing to fit"):
        analysis.fit_zeeman(B, E, 1e-5, fix=TRUTH)


# ------------------------------------------------------------------------------------------
# coverage over many seeds
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_coverage_over_seeds():
    """Over 200 seeded data sets the reported 1-sigma errors cover the truth ~68 % of the time
    (95 % for 2 sigma), and chi^2 averages to its dof."""
    zs, red = [], []
    for seed in range(200):
        B, E, _ = synthetic_lines(TRUTH, seed=1000 + seed, sigma=2e-5)
        res = analysis.fit_zeeman(B, E, 2e-5)
        zs.append(list(z_scores(res, TRUTH).values()))
        red.append(res.gof.chi2 / res.gof.dof)
    z = np.abs(np.array(zs))
    within1 = (z < 1).mean(axis=0)
    within2 = (z < 2).mean(axis=0)
    assert np.all((within1 > 0.58) & (within1 < 0.78)), within1
    assert np.all(within2 > 0.90), within2
    assert np.max(z) < 6
    assert abs(np.mean(red) - 1) < 0.1
