"""Linewidth against temperature (acoustic + LO-phonon broadening) and phonon replicas.

The model Gamma(T) = Gamma_0 + sigma_ac T + Gamma_LO / (exp(E_LO / k_B T) - 1) is the one the
paper fits to dot 3 (Fig. 2f: sigma_ac < 10 ueV/K, E_LO = 20 meV); replicas 3-4, 6-7, 10 meV
below the zero-phonon line (Fig. 2d).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.constants as sc
import xarray as xr

from qdsim import analysis
from qdsim.analysis.spectroscopy.linewidth import K_B_eV_K, _bose, linewidth_model

TRUTH = {"gamma0_eV": 130e-6, "acoustic_eV_per_K": 5e-6, "gamma_LO_eV": 8e-3, "E_LO_eV": 20e-3}
T_DATA = np.array([3.7, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120.0])


def test_boltzmann_constant_from_scipy():
    assert K_B_eV_K == sc.k / sc.e
    assert abs(K_B_eV_K - 8.617333e-5) < 1e-11


def test_bose_factor_limits():
    """n_B -> exp(-E/kT) for kT << E; n_B = kT/E - 1/2 + E/(12 kT) + O((E/kT)^3) for kT >> E."""
    E = 20e-3
    T = 10.0
    x = E / (K_B_eV_K * T)
    assert _bose(E, T) == pytest.approx(math.exp(-x) / (1 - math.exp(-x)), rel=1e-14)
    assert _bose(E, 1.0) == pytest.approx(math.exp(-E / K_B_eV_K), rel=1e-12)
    assert _bose(E, 0.01) == 0.0  # no overflow warning, exact underflow
    Thot = 1e5
    y = E / (K_B_eV_K * Thot)
    assert _bose(E, Thot) == pytest.approx(1 / y - 0.5 + y / 12, rel=1e-9)


def test_model_limits():
    """T -> 0: Gamma -> Gamma_0 (LO frozen out); T linear regime below E_LO/k."""
    g = linewidth_model(np.array([1e-3, 1.0]), **TRUTH)
    assert g[0] == pytest.approx(TRUTH["gamma0_eV"] + 1e-3 * TRUTH["acoustic_eV_per_K"], rel=1e-13)
    assert g[1] - g[0] == pytest.approx(TRUTH["acoustic_eV_per_K"] * (1.0 - 1e-3), rel=1e-6)


def test_noiseless_recovery():
    G = linewidth_model(T_DATA, **TRUTH)
    r = analysis.fit_linewidth(T_DATA, G, 5e-6)
    for k, v in TRUTH.items():
        assert r.params[k] == pytest.approx(v, rel=1e-8), k
    assert r.gof.chi2 < 1e-12
    assert r.converged


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_recovery_within_errors(seed):
    rng = np.random.default_rng(seed)
    s = 10e-6
    G = linewidth_model(T_DATA, **TRUTH) + rng.normal(0, s, T_DATA.size)
    r = analysis.fit_linewidth(T_DATA, G, s)
    for k, v in TRUTH.items():
        assert abs(r.params[k] - v) < 4 * r.stderr[k], (k, r.params[k], r.stderr[k])
    assert r.gamma0_eV == r.params["gamma0_eV"] and r.E_LO_err_eV == r.stderr["E_LO_eV"]
    # named fields: the paper's quantities
    assert r.acoustic_eV_per_K < 10e-6 + 4 * r.acoustic_err_eV_per_K
    C = r.covariance
    np.testing.assert_allclose(C, C.T, rtol=1e-12)
    np.testing.assert_allclose(np.diag(r.correlation), 1.0)


def test_fixed_E_LO_and_sigma_none():
    rng = np.random.default_rng(5)
    G = linewidth_model(T_DATA, **TRUTH) + rng.normal(0, 10e-6, T_DATA.size)
    r = analysis.fit_linewidth(T_DATA, G, fix={"E_LO_eV": 20e-3})
    assert r.E_LO_eV == 20e-3 and r.E_LO_err_eV == 0.0
    assert r.free_names == ("gamma0_eV", "acoustic_eV_per_K", "gamma_LO_eV")
    assert not r.absolute_sigma
    ra = analysis.fit_linewidth(T_DATA, G, 10e-6, fix={"E_LO_eV": 20e-3})
    for k in r.free_names:
        assert r.stderr[k] == pytest.approx(ra.stderr[k] * math.sqrt(ra.gof.chi2_red), rel=1e-6)
    # with E_LO fixed the model is linear: the fit equals the weighted linear least squares
    A = np.stack([np.ones_like(T_DATA), T_DATA, _bose(20e-3, T_DATA)], axis=1)
    sol, *_ = np.linalg.lstsq(A, G, rcond=None)
    np.testing.assert_allclose([r.params[k] for k in r.free_names], sol, rtol=1e-7)


def test_low_temperature_only_leaves_LO_undetermined():
    """Below ~20 K a 20 meV phonon is frozen out: the LO term is not resolved (huge errors)."""
    T = np.linspace(4, 20, 9)
    rng = np.random.default_rng(1)
    G = linewidth_model(T, **TRUTH) + rng.normal(0, 5e-6, T.size)
    r = analysis.fit_linewidth(T, G, 5e-6)
    assert abs(r.acoustic_eV_per_K - TRUTH["acoustic_eV_per_K"]) < 4 * r.acoustic_err_eV_per_K
    assert not (r.gamma_LO_err_eV < 0.5 * abs(r.gamma_LO_eV))  # LO strength not determined


@pytest.mark.parametrize(
    ("T", "G", "s", "match"),
    [
        ([4, 10, 20], [1e-4, 1e-4, 2e-4], None, "temperatures"),
        ([4, 10, 20, 30], [1e-4, 1e-4, 2e-4], 1e-5, "entries"),
        ([4, 10, np.nan, 30, 40], [1e-4] * 5, 1e-5, "NaN"),
        ([0, 10, 20, 30, 40], [1e-4] * 5, 1e-5, "> 0 K"),
        ([4, 10, 20, 30, 40], [1e-4] * 5, -1e-5, "> 0"),
        ([4, 4, 4, 4, 4], [1e-4] * 5, 1e-5, "distinct"),
    ],
)
def test_ill_posed_input(T, G, s, match):
    with pytest.raises(ValueError, match=match):
        analysis.fit_linewidth(T, G, s)


def test_unknown_names_rejected():
    G = linewidth_model(T_DATA, **TRUTH)
    with pytest.raises(ValueError, match="unknown parameter"):
        analysis.fit_linewidth(T_DATA, G, 1e-5, fix={"E_LO": 0.02})


def test_result_frozen_and_dataset(tmp_path):
    G = linewidth_model(T_DATA, **TRUTH) + np.random.default_rng(0).normal(0, 1e-5, T_DATA.size)
    r = analysis.fit_linewidth(T_DATA, G, 1e-5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.gamma0_eV = 0.0
    ds = r.to_dataset()
    ds.to_netcdf(tmp_path / "lw.nc", engine="h5netcdf")
    back = xr.load_dataset(tmp_path / "lw.nc", engine="h5netcdf")
    xr.testing.assert_allclose(back, ds)
    comp = r.components(T_DATA)
    np.testing.assert_allclose(sum(comp.values()), r.model(T_DATA), rtol=1e-14)


def test_plot_linewidth_draws_data_and_model(tmp_path):
    from qdsim.plotting.zeeman import plot_linewidth

    G = linewidth_model(T_DATA, **TRUTH) + np.random.default_rng(0).normal(0, 1e-5, T_DATA.size)
    r = analysis.fit_linewidth(T_DATA, G, 1e-5)
    fig = plot_linewidth(r)
    ax = fig.axes[0]
    fit_line = next(ln for ln in ax.get_lines() if ln.get_label() == "fit")
    x, y = fit_line.get_data()
    np.testing.assert_allclose(y, r.model(x) * 1e6, rtol=1e-12)  # ueV
    out = tmp_path / "lw.png"
    fig.savefig(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_linewidth_coverage():
    """Over 300 seeds the 1-sigma errors cover the truth ~68 % of the time."""
    s = 10e-6
    z = []
    for seed in range(300):
        rng = np.random.default_rng(100 + seed)
        G = linewidth_model(T_DATA, **TRUTH) + rng.normal(0, s, T_DATA.size)
        r = analysis.fit_linewidth(T_DATA, G, s)
        z.append([(r.params[k] - v) / r.stderr[k] for k, v in TRUTH.items()])
    z = np.abs(np.array(z))
    within1 = (z < 1).mean(axis=0)
    assert np.all((within1 > 0.6) & (within1 < 0.76)), within1
    assert np.all((z < 2).mean(axis=0) > 0.92)


# ------------------------------------------------------------------------------------------
# phonon replicas
# ------------------------------------------------------------------------------------------


def lorentz(E, c, w, A):
    return A * (w / 2 / np.pi) / ((E - c) ** 2 + (w / 2) ** 2)


def test_replica_spacings_recovered():
    """ZPL at 1.8167 eV with replicas 3.5, 6.5 and 10 meV below (paper Fig. 2d)."""
    rng = np.random.default_rng(0)
    E = np.linspace(1.8030, 1.8200, 1701)
    zpl = 1.8167
    reps = [3.5e-3, 6.5e-3, 10.0e-3]
    ratios = [0.12, 0.08, 0.05]
    mu = 20 + lorentz(E, zpl, 150e-6, 1.0)
    for d, a in zip(reps, ratios, strict=True):
        mu = mu + lorentz(E, zpl - d, 600e-6, a)
    y = rng.poisson(mu * 1.0).astype(float)
    r = analysis.fit_replicas((E, y), 4, sigma="poisson")
    assert abs(r.zpl_eV - zpl) < 4 * r.zpl_err_eV
    for k, d in enumerate(reps):
        assert abs(r.spacing_eV[k] - d) < 4 * r.spacing_err_eV[k], (k, r.spacing_eV[k])
        assert abs(r.area_ratio[k] - ratios[k]) < 4 * r.area_ratio_err[k]
    # the spacing error includes the ZPL-replica covariance (it is not just a quadrature sum)
    assert np.all(r.spacing_err_eV > 0)
    ds = r.to_dataset()
    np.testing.assert_allclose(ds["spacing"].values, r.spacing_eV)


def test_replicas_need_a_line_below_the_zpl():
    E = np.linspace(1.81, 1.82, 501)
    y = 5 + lorentz(E, 1.815, 2e-4, 0.1) + lorentz(E, 1.818, 2e-4, 0.02)
    with pytest.raises(ValueError, match="below the zero-phonon"):
        analysis.fit_replicas((E, y), 2, zpl_eV=1.8149)
