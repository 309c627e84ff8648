"""Spectra: air/vacuum wavelengths, energy axes and their Jacobian, reading, peak fits.

Also the chain the paper's Fig. 3 analysis needs: a simulated magneto-PL series (B.6 levels
as Lorentzian lines with Poisson noise) -> `fit_peaks` -> `fit_zeeman` recovers g_X.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.constants as sc
import xarray as xr

from qdsim import analysis
from qdsim.analysis.spectroscopy.spectra import (
    HC_eV_nm,
    air_refractive_index,
    air_to_vacuum_nm,
    vacuum_to_air_nm,
    voigt_fwhm,
    wavelength_to_energy,
)

# ------------------------------------------------------------------------------------------
# axis conversion
# ------------------------------------------------------------------------------------------


def test_hc_from_codata():
    """E[eV] = hc / lambda: hc = 1239.84198... eV nm (h, c, e exact in SI 2019)."""
    assert HC_eV_nm == sc.h * sc.c / sc.e * 1e9
    assert abs(HC_eV_nm - 1239.841984) < 1e-6
    assert wavelength_to_energy(HC_eV_nm, "vacuum") == pytest.approx(1.0, rel=1e-15)


def test_ciddor_standard_air_index():
    """Ciddor (1996) standard air: n = 1.00027653 at 632.8 nm (tabulated value)."""
    assert air_refractive_index(632.8) == pytest.approx(1.00027653, abs=2e-8)
    # normal dispersion: n decreases with wavelength
    n = air_refractive_index(np.array([400.0, 600.0, 800.0, 1000.0]))
    assert np.all(np.diff(n) < 0)


@pytest.mark.parametrize(
    ("air", "vac"),
    [(588.9950, 589.1583), (589.5924, 589.7558)],  # Na I D2, D1 (NIST ASD)
)
def test_air_to_vacuum_sodium_d_lines(air, vac):
    """Air -> vacuum for the sodium D lines, NIST ASD values, to their 0.1 pm rounding."""
    assert air_to_vacuum_nm(air) == pytest.approx(vac, abs=2e-4)


def test_air_vacuum_round_trip_and_range():
    lam = np.linspace(300.0, 1600.0, 27)
    np.testing.assert_allclose(air_to_vacuum_nm(vacuum_to_air_nm(lam)), lam, atol=1e-11)
    assert np.all(air_to_vacuum_nm(lam) > lam)
    with pytest.raises(ValueError, match="230"):
        air_to_vacuum_nm(150.0)
    with pytest.raises(ValueError, match="medium"):
        wavelength_to_energy(680.0, None)  # type: ignore[arg-type]


def test_air_vs_vacuum_energy_difference_at_dot3():
    """At dot 3 (1.8167 eV, ~682 nm) mistaking air for vacuum wavelengths shifts the energy
    by (n - 1) E ~ 0.5 meV: larger than the fine structure, hence the required `medium`."""
    lam_vac = HC_eV_nm / 1.8167
    lam_air = float(vacuum_to_air_nm(lam_vac))
    E_ok = float(wavelength_to_energy(lam_air, "air"))
    E_wrong = float(wavelength_to_energy(lam_air, "vacuum"))
    assert E_ok == pytest.approx(1.8167, abs=1e-12)
    assert 0.45e-3 < E_wrong - E_ok < 0.55e-3


@pytest.mark.parametrize(("unit", "medium"), [("nm", "air"), ("nm", "vacuum"), ("um", "air")])
def test_jacobian_conserves_integrated_intensity(unit, medium):
    """A density per unit wavelength, converted with |d lambda/dE|, keeps its integral."""
    lam = np.linspace(675.0, 690.0, 3001)
    dens = np.exp(-0.5 * ((lam - 682.0) / 0.8) ** 2) + 0.2 * np.exp(-0.5 * ((lam - 686) / 0.3) ** 2)
    x = lam / 1e3 if unit == "um" else lam
    y = dens * 1e3 if unit == "um" else dens  # per um
    da = analysis.read_spectrum(x, y, unit=unit, medium=medium)
    E = da["energy"].values
    assert np.all(np.diff(E) > 0)
    np.testing.assert_allclose(np.trapezoid(da.values, E), np.trapezoid(dens, lam), rtol=1e-6)
    # the peak sits at the converted wavelength
    lam_vac = air_to_vacuum_nm(682.0) if medium == "air" else 682.0
    E_peak = E[np.argmax(da.values)]
    assert E_peak == pytest.approx(HC_eV_nm / lam_vac, abs=2 * np.max(np.diff(E)))


def test_energy_units_and_no_jacobian():
    E = np.linspace(1.80, 1.82, 11)
    y = np.arange(11.0)
    a = analysis.read_spectrum(E * 1e3, y, unit="meV")
    np.testing.assert_allclose(a["energy"].values, E, rtol=1e-15)
    np.testing.assert_allclose(a.values, y * 1e3)  # per meV -> per eV
    b = analysis.read_spectrum(E * 1e3, y, unit="meV", jacobian=False)
    np.testing.assert_array_equal(b.values, y)
    assert b.attrs["intensity_per"] == "bin"
    lam = HC_eV_nm / E
    c = analysis.read_spectrum(lam, y, unit="nm", medium="vacuum", jacobian=False)
    np.testing.assert_allclose(c["energy"].values, E, rtol=1e-14)
    np.testing.assert_array_equal(c.values, y)  # reversed twice: ascending energy again
    k = analysis.read_spectrum(1e7 / lam, y, unit="cm-1", jacobian=False)
    np.testing.assert_allclose(k["energy"].values, E, rtol=1e-14)
    assert k["energy"].attrs["units"] == "eV"


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------


def test_read_csv_with_header(tmp_path):
    lam = np.linspace(680.0, 684.0, 41)
    y = np.exp(-(((lam - 682) / 0.5) ** 2))
    p = tmp_path / "spec.csv"
    p.write_text(
        "# dot 3, 4 K\nwavelength_nm,counts\n"
        + "".join(f"{a:.6f},{b:.8f}\n" for a, b in zip(lam, y, strict=True))
    )
    with pytest.raises(ValueError, match="medium"):
        analysis.read_spectrum(p)
    da = analysis.read_spectrum(p, medium="air")
    assert da.dims == ("energy",)
    assert da.attrs["source_medium"] == "air"
    assert da.attrs["source_file"] == str(p)
    np.testing.assert_allclose(
        np.sort(da["energy"].values), wavelength_to_energy(lam, "air")[::-1], rtol=1e-14
    )


def test_read_whitespace_file_needs_unit(tmp_path):
    p = tmp_path / "spec.txt"
    p.write_text("1.810 5\n1.811 7\n1.812 4\n")
    with pytest.raises(ValueError, match="unit"):
        analysis.read_spectrum(p)
    da = analysis.read_spectrum(p, unit="eV")
    np.testing.assert_array_equal(da.values, [5, 7, 4])
    bad = tmp_path / "bad.txt"
    bad.write_text("1.810 5\n1.811 x\n")
    with pytest.raises(ValueError, match="not numeric"):
        analysis.read_spectrum(bad, unit="eV")
    with pytest.raises(FileNotFoundError):
        analysis.read_spectrum(tmp_path / "missing.csv", unit="eV")


def test_read_series_from_xarray_and_arrays():
    lam = np.linspace(680.0, 684.0, 50)
    fields = np.array([0.0, 3.0, 6.0])
    Y = np.random.default_rng(0).random((3, 50))
    src = xr.DataArray(
        Y,
        dims=("field", "wavelength"),
        coords={"field": fields, "wavelength": ("wavelength", lam, {"units": "nm"})},
    )
    da = analysis.read_spectrum(src, medium="vacuum")
    assert da.dims == ("field", "energy")
    np.testing.assert_array_equal(da["field"].values, fields)
    # per-spectrum integrals survive
    np.testing.assert_allclose(
        np.trapezoid(da.values, da["energy"].values, axis=1),
        np.trapezoid(Y, lam, axis=1),
        rtol=1e-3,
    )
    arr = analysis.read_spectrum(lam, Y, unit="nm", medium="vacuum", series=("field", fields))
    xr.testing.assert_allclose(arr.reset_coords(drop=True), da.reset_coords(drop=True))
    with pytest.raises(ValueError, match="series"):
        analysis.read_spectrum(lam, Y, unit="nm", medium="vacuum")
    with pytest.raises(ValueError, match="unit"):
        analysis.read_spectrum(src.assign_coords(wavelength=lam))  # units attr lost


# ------------------------------------------------------------------------------------------
# peak fits
# ------------------------------------------------------------------------------------------


def lorentz(E, c, w, A):
    return A * (w / 2 / np.pi) / ((E - c) ** 2 + (w / 2) ** 2)


def test_voigt_fwhm_limits():
    assert voigt_fwhm(1.0, 0.0) == pytest.approx(1.0, rel=2e-4)
    assert voigt_fwhm(0.0, 1.0) == pytest.approx(1.0, rel=1e-12)


def test_fit_two_lorentzians_noiseless():
    E = np.linspace(1.8140, 1.8200, 601)
    y = lorentz(E, 1.8160, 130e-6, 0.02) + lorentz(E, 1.8167, 130e-6, 0.05) + 7.0
    r = analysis.fit_peaks((E, y), 2)
    np.testing.assert_allclose(r.center_eV[0], [1.8160, 1.8167], rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.fwhm_eV[0], 130e-6, rtol=1e-8)
    np.testing.assert_allclose(r.area[0], [0.02, 0.05], rtol=1e-8)
    assert r.background[0, 0] == pytest.approx(7.0, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_lorentzians_poisson_recovery(seed):
    """Poisson counts: centres, widths, areas within 4 reported sigma; chi^2_red ~ 1."""
    rng = np.random.default_rng(seed)
    E = np.linspace(1.8140, 1.8200, 601)
    truth = [(1.8160, 150e-6, 0.03), (1.8163, 110e-6, 0.05), (1.8180, 130e-6, 0.02)]
    mu = 20.0 + sum(lorentz(E, *t) for t in truth)
    y = rng.poisson(mu).astype(float)
    r = analysis.fit_peaks((E, y), 3, sigma="poisson")
    for j, (c, w, A) in enumerate(truth):
        assert abs(r.center_eV[0, j] - c) < 4 * r.center_err_eV[0, j]
        assert abs(r.fwhm_eV[0, j] - w) < 4 * r.fwhm_err_eV[0, j]
        assert abs(r.area[0, j] - A) < 4 * r.area_err[0, j]
    assert 0.8 < r.gof.chi2_red < 1.25
    assert r.converged


def test_fit_voigt_with_fixed_resolution():
    """Voigt lines with the Gaussian (spectrometer) FWHM fixed: Lorentzian width recovered."""
    from scipy.special import voigt_profile

    E = np.linspace(1.8150, 1.8185, 701)
    fg, fl = 120e-6, 60e-6
    y = 0.04 * voigt_profile(E - 1.8167, fg / (2 * math.sqrt(2 * math.log(2))), fl / 2) + 3.0
    r = analysis.fit_peaks((E, y), 1, shape="voigt", gaussian_fwhm_eV=fg)
    assert r.fwhm_lorentz_eV[0, 0] == pytest.approx(fl, rel=1e-7)
    assert r.fwhm_eV[0, 0] == pytest.approx(float(voigt_fwhm(fl, fg)), rel=1e-12)
    assert r.center_eV[0, 0] == pytest.approx(1.8167, abs=1e-12)


def test_shared_width_over_series_and_dataset():
    rng = np.random.default_rng(3)
    E = np.linspace(1.8150, 1.8190, 401)
    fields = np.array([0.0, 2.0, 4.0])
    cs = [(1.8160, 1.8170), (1.8158, 1.8173), (1.8156, 1.8176)]
    mu = np.array([10 + lorentz(E, a, 1.3e-4, 0.03) + lorentz(E, b, 1.3e-4, 0.03) for a, b in cs])
    Y = rng.poisson(mu).astype(float)
    da = xr.DataArray(Y, dims=("field", "energy"), coords={"field": fields, "energy": E})
    r = analysis.fit_peaks(da, 2, shared_width="all", sigma="poisson")
    assert r.series_dim == "field"
    assert np.all(r.fwhm_eV == r.fwhm_eV[0, 0])  # one width
    assert abs(r.fwhm_eV[0, 0] - 1.3e-4) < 4 * r.fwhm_err_eV[0, 0]
    for i, (a, b) in enumerate(cs):
        assert abs(r.center_eV[i, 0] - a) < 4 * r.center_err_eV[i, 0]
        assert abs(r.center_eV[i, 1] - b) < 4 * r.center_err_eV[i, 1]
    Bl, El, sl = r.lines()
    np.testing.assert_array_equal(Bl, np.repeat(fields, 2))
    np.testing.assert_array_equal(El, r.center_eV.ravel())
    ds = r.to_dataset()
    np.testing.assert_array_equal(ds["field"].values, fields)
    np.testing.assert_allclose(ds["best_fit"].values, r.best_fit)


def test_fit_peaks_rejects_bad_input():
    E = np.linspace(1.81, 1.82, 101)
    y = lorentz(E, 1.815, 5e-4, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        analysis.fit_peaks((E, np.where(E > 1.818, np.nan, y)), 1)
    with pytest.raises(ValueError, match="only 1 maxima"):
        analysis.fit_peaks((E, y), 3)
    with pytest.raises(ValueError, match="shape"):
        analysis.fit_peaks((E, y), 1, shape="sech")
    with pytest.raises(ValueError, match="too few"):
        analysis.fit_peaks((E[:5], y[:5]), centers_eV=[1.8101, 1.8102])


# ------------------------------------------------------------------------------------------
# spectra -> peaks -> Zeeman fit
# ------------------------------------------------------------------------------------------


def test_magneto_pl_series_to_fine_structure():
    """Simulated magneto-PL spectra (B.6 levels, Lorentzian lines, Poisson noise, lines too
    dim to see left out) -> fit_peaks with one shared width -> fit_zeeman: g_X, Delta_DB and
    the splittings come back within their reported errors."""
    truth = {
        "E_bright_eV": 1.8170,
        "dark_bright_eV": 1.5e-3,
        "split_xy_eV": 0.3e-3,
        "split_z_eV": 0.5e-3,
        "g_X": 2.6,
        "g_e_minus_g_h": 2.5,
        "gamma_dia_eV_T2": 8e-6,
    }
    fields = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    st = analysis.zeeman_states(truth, fields)
    E = np.arange(1.8148, 1.8186, 4e-6)
    w = 50e-6
    rng = np.random.default_rng(2)
    Y, n_vis = [], []
    for i in range(fields.size):
        # intensity ~ bright fraction; a line needs a peak well above the noise to be fitted
        A = 0.25 * st.bright[i]
        vis = A / (np.pi * w / 2) > 200
        n_vis.append(int(vis.sum()))
        mu = 30.0 + sum(lorentz(E, st.energy_eV[i, j], w, A[j]) for j in range(4) if vis[j])
        Y.append(rng.poisson(mu).astype(float))
    da = xr.DataArray(np.array(Y), dims=("field", "energy"), coords={"field": fields, "energy": E})
    peaks = analysis.fit_peaks(da, n_vis, shared_width="all", sigma="poisson")
    assert abs(peaks.fwhm_eV[0, 0] - w) < 4 * peaks.fwhm_err_eV[0, 0]
    B, El, sig = peaks.lines()
    res = analysis.fit_zeeman(B, El, sig)
    for k in ("g_X", "dark_bright_eV", "split_xy_eV", "split_z_eV", "g_e_minus_g_h"):
        assert abs(res.params[k] - truth[k]) < 4 * res.stderr[k], (k, res.params[k])
    assert res.g_X_err < 0.05


def test_array_sigma_follows_the_data_through_sorting_and_window():
    """Per-point errors given in the input order stay attached to their points."""
    rng = np.random.default_rng(4)
    E = np.linspace(1.8140, 1.8200, 601)
    mu = 20.0 + lorentz(E, 1.8167, 130e-6, 0.05)
    s = np.sqrt(mu) * np.where(E > 1.817, 3.0, 1.0)  # noisier on one side
    y = mu + rng.normal(0, 1, E.size) * s
    r1 = analysis.fit_peaks((E, y), 1, sigma=s, window_eV=(1.815, 1.819))
    r2 = analysis.fit_peaks((E[::-1], y[::-1]), 1, sigma=s[::-1], window_eV=(1.815, 1.819))
    assert r2.center_eV[0, 0] == pytest.approx(r1.center_eV[0, 0], abs=1e-12)
    assert r2.center_err_eV[0, 0] == pytest.approx(r1.center_err_eV[0, 0], rel=1e-6)
    assert abs(r1.center_eV[0, 0] - 1.8167) < 4 * r1.center_err_eV[0, 0]
    assert 0.7 < r1.gof.chi2_red < 1.4
    with pytest.raises(ValueError, match="does not match"):
        analysis.fit_peaks((E, y), 1, sigma=s[:10])
