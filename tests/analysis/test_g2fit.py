"""g2 fits: recovery of g2(0), lifetimes, jitter and blinking from synthetic photon streams
with known truth, noiseless recovery, line shapes, period detection and ill-posed input."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import integrate

from qdsim import analysis
from qdsim.analysis.photons import g2fit
from tests.analysis.synth_photons import cw_source, pulsed_source


def _z(r, name, truth):
    return (r.params[name] - truth) / r.stderr[name]


# ---------------------------------------------------------------------------------------------
# line shapes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tau", "sigma"), [(246.0, 40.0), (50.0, 200.0), (1000.0, 1.0)])
def test_laplace_gauss_cdf_matches_quadrature(tau, sigma):
    """CDF of two-sided exponential * Gaussian against direct numerical convolution."""

    def pdf(x):
        def f(u):
            gauss = math.exp(-((x - u) ** 2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
            return math.exp(-abs(u) / tau) / (2 * tau) * gauss

        lo, hi = x - 12 * sigma, x + 12 * sigma
        pts = [p for p in (0.0,) if lo < p < hi]
        return integrate.quad(f, lo, hi, points=pts or None, limit=200)[0]

    for a, b in [(-300.0, -100.0), (-20.0, 35.0), (100.0, 900.0)]:
        num = integrate.quad(pdf, a, b, limit=200)[0]
        ana = g2fit.laplace_gauss_cdf(b, tau, sigma) - g2fit.laplace_gauss_cdf(a, tau, sigma)
        assert ana == pytest.approx(num, rel=1e-6, abs=1e-12)
    edges = np.linspace(-60 * tau - 20 * sigma, 60 * tau + 20 * sigma, 4001)
    assert g2fit._edge_mass(edges, tau, sigma).sum() == pytest.approx(1.0, abs=1e-12)
    # far tails stay positive and accurate (no 1 - 1 cancellation)
    m = g2fit._edge_mass(np.array([30 * tau, 31 * tau]), tau, sigma)[0]
    assert m > 0 and m == pytest.approx(
        0.5 * math.exp(sigma**2 / (2 * tau**2)) * (math.exp(-30) - math.exp(-31)), rel=1e-6
    )


# ---------------------------------------------------------------------------------------------
# noiseless recovery
# ---------------------------------------------------------------------------------------------


PULSED_TRUTH = dict(
    area=5000.0,
    g2_0=0.1,
    tau_ps=246.0,
    sigma_ps=42.0,
    offset_ps=12.0,
    period_ps=12_800.0,
    background=0.8,
    bunch_amp=0.3,
    bunch_tau_ps=20_000.0,
)


def test_pulsed_noiseless_exact():
    """Expected counts of the model itself: every parameter back to 1e-7 (period found from
    the data, blinking envelope fitted)."""
    d = np.arange(-60_000, 60_000, 32.0) + 16
    mu = g2fit.pulsed_model(PULSED_TRUTH, d - 16, d + 16)
    r = analysis.fit_g2_pulsed(d, mu, bunching=True, allow_fractional=True)
    assert r.converged
    for k, v in PULSED_TRUTH.items():
        assert r.params[k] == pytest.approx(v, rel=1e-7, abs=1e-7), k
    assert r.gof["deviance"] < 1e-8
    assert r.g2_0 == pytest.approx(0.1, abs=1e-8)


def test_cw_noiseless_exact():
    truth = dict(
        n_inf=800.0,
        g2_0=0.44,
        tau_r_ps=700.0,
        sigma_ps=60.0,
        offset_ps=-25.0,
        bunch_amp=0.2,
        bunch_tau_ps=8000.0,
    )
    d = np.arange(-30_000, 30_000, 64.0) + 32
    mu = g2fit.cw_model(truth, d - 32, d + 32)
    r = analysis.fit_g2_cw(d, mu, bunching=True, allow_fractional=True)
    assert r.converged
    for k, v in truth.items():
        assert r.params[k] == pytest.approx(v, rel=1e-7, abs=1e-7), k
    assert r.tau_r_ps == pytest.approx(700.0, rel=1e-7)


# ---------------------------------------------------------------------------------------------
# recovery from photon streams
# ---------------------------------------------------------------------------------------------


def test_pulsed_recovery_jitter_dark_counts():
    """Pulsed single-photon source (g2(0) = 0.1, tau = 246 ps, detector jitter, dark counts,
    a 150 ps cable delay): every fitted parameter within 4 standard errors of the truth, the
    errors of the size Poisson statistics predict."""
    s, truth = pulsed_source(21, duration_s=0.04, dark_cps=20_000, jitter_ps=30, offset_ps=150.0)
    h = analysis.g2(s, bin_ps=32, window_ps=40_000, normalize=False)
    r = analysis.fit_g2_pulsed(h)
    assert r.converged
    for k in ("g2_0", "tau_ps", "sigma_ps", "offset_ps", "period_ps"):
        assert abs(_z(r, k, truth[k])) < 4, (k, r.params[k], r.stderr[k], truth[k])
    # the error Poisson statistics of the central peak's counts predict (side peaks are many)
    a = r.params["area"]
    assert r.g2_0_err == pytest.approx(r.g2_0 * math.sqrt(1 / (r.g2_0 * a)), rel=0.3)
    # raw area ratio includes the flat background, so it lies above the model g2(0)
    bg_area = r.params["background"] * r.period_ps / 32.0
    expected_ratio = (r.g2_0 * r.params["area"] + bg_area) / (r.params["area"] + bg_area)
    assert r.g2_0_area == pytest.approx(expected_ratio, abs=4 * r.g2_0_area_err)
    assert r.g2_0_area > r.g2_0
    assert r.period_ps == pytest.approx(12_800.0, abs=1.0)


def test_pulsed_area_ratio_and_model_agree_without_background():
    """Without dark counts, the model-free area ratio and the model fit both give g2(0)
    within their (similar) errors."""
    s, truth = pulsed_source(4, duration_s=0.03)
    h = analysis.g2(s, bin_ps=64, window_ps=40_000, normalize=False)
    r = analysis.fit_g2_pulsed(h, period_ps=12_800.0)
    assert r.params["period_ps"] == 12_800.0 and r.stderr["period_ps"] == 0.0
    assert abs(r.g2_0_area - truth["g2_0"]) < 4 * r.g2_0_area_err
    assert abs(r.g2_0 - truth["g2_0"]) < 4 * r.g2_0_err
    assert 0.5 < r.g2_0_err / r.g2_0_area_err < 2.0


def test_pulsed_recovery_blinking():
    """Blinking (telegraph, on 60 ns / off 20 ns) bunches the peaks near zero delay: with
    bunching=True, g2(0), the envelope amplitude and time are recovered within 4 sigma."""
    s, truth = pulsed_source(
        2,
        duration_s=0.05,
        dark_cps=5000,
        jitter_ps=25,
        blink_on_ps=60_000,
        blink_off_ps=20_000,
    )
    h = analysis.g2(s, bin_ps=64, window_ps=100_000, normalize=False)
    r = analysis.fit_g2_pulsed(h, bunching=True)
    assert r.converged
    for k in ("g2_0", "tau_ps", "bunch_amp", "bunch_tau_ps"):
        assert abs(_z(r, k, truth[k])) < 4, (k, r.params[k], r.stderr[k], truth[k])
    assert r.stderr["bunch_amp"] < 0.1
    # ignoring the envelope compares the central peak, bunched by 1 + bunch_amp, with the
    # average side peak, bunched less: g2(0) comes out too high
    r0 = analysis.fit_g2_pulsed(h, bunching=False)
    assert r0.g2_0 > truth["g2_0"] + 3 * r0.g2_0_err


def test_pulsed_dataarray_any_normalisation():
    """The fit undoes the normalisation of a g2 DataArray (same result as raw counts) and
    refuses bare normalised values."""
    s, _ = pulsed_source(8, duration_s=0.01)
    raw = analysis.g2(s, bin_ps=64, window_ps=30_000, normalize=False)
    for how in ("cw", "pulsed"):
        h = analysis.g2(s, bin_ps=64, window_ps=30_000, normalize=how)
        r = analysis.fit_g2_pulsed(h)
        r0 = analysis.fit_g2_pulsed(raw["delay"].values, raw.values)
        assert r.g2_0 == pytest.approx(r0.g2_0, rel=1e-9)
        assert analysis.fit_g2_pulsed(h["delay"], h).g2_0 == pytest.approx(r0.g2_0, rel=1e-9)
        hb = h.drop_vars("counts")
        assert analysis.fit_g2_pulsed(hb).g2_0 == pytest.approx(r0.g2_0, rel=1e-6)
        with pytest.raises(ValueError, match="whole numbers"):
            analysis.fit_g2_pulsed(h["delay"].values, h.values)


def test_cw_recovery():
    """CW antibunching with uncorrelated background (g2(0) = 0.44 as in the electrically
    driven dot): g2(0) and tau_r within 4 sigma, sigma fixed to the known jitter or fitted."""
    s, truth = cw_source(3, background_fraction=1 - math.sqrt(0.56))
    assert truth["g2_0"] == pytest.approx(0.44)
    h = analysis.g2(s, bin_ps=64, window_ps=20_000, normalize=False)
    r = analysis.fit_g2_cw(h, sigma_ps=truth["sigma_ps"])
    assert r.converged
    assert abs(_z(r, "g2_0", truth["g2_0"])) < 4
    assert abs(_z(r, "tau_r_ps", truth["tau_r_ps"])) < 4
    assert 0.003 < r.g2_0_err < 0.05
    assert r.gof["chi2_red"] == pytest.approx(1.0, abs=0.2)
    rf = analysis.fit_g2_cw(h)
    assert abs(_z(rf, "g2_0", truth["g2_0"])) < 4
    assert rf.g2_0_err >= r.g2_0_err * 0.99  # freeing sigma cannot shrink the error


def test_cw_recovery_perfect_antibunching():
    """No background: g2(0) = 0 (at its bound) recovered, tau_r within 4 sigma."""
    s, truth = cw_source(9, k_exc_per_ps=1 / 1500, k_rad_per_ps=1 / 500)
    h = analysis.g2(s, bin_ps=32, window_ps=10_000, normalize=False)
    r = analysis.fit_g2_cw(h, sigma_ps=truth["sigma_ps"])
    assert r.g2_0 < 0.05
    assert abs(_z(r, "tau_r_ps", truth["tau_r_ps"])) < 4


@pytest.mark.slow
def test_pulsed_coverage_many_seeds():
    """Over 40 seeds the standardised g2(0) errors have mean ~0 and spread ~1."""
    z = []
    for seed in range(40):
        s, truth = pulsed_source(100 + seed, duration_s=0.01, dark_cps=5000)
        h = analysis.g2(s, bin_ps=64, window_ps=30_000, normalize=False)
        z.append(_z(analysis.fit_g2_pulsed(h), "g2_0", truth["g2_0"]))
    z = np.asarray(z)
    assert abs(z.mean()) < 0.5 and 0.7 < z.std() < 1.35


# ---------------------------------------------------------------------------------------------
# period detection, results, ill-posed input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "offset", "g2_0", "window"),
    [
        (12_800.0, 0.0, 0.1, 150_000),
        (38_461.5, -900.0, 0.1, 150_000),
        (38_461.5, 0.0, 0.0, 50_048),  # only the two side peaks +-P in the window
    ],
)
def test_find_period(period, offset, g2_0, window):
    """The laser period (12.8 ns: 78 MHz; 38.5 ns: 26 MHz) and the peak offset from the data,
    also from a window holding just the side peaks of a perfect single-photon source."""
    rng = np.random.default_rng(1)
    p = dict(PULSED_TRUTH, period_ps=period, offset_ps=offset, bunch_amp=0.0, area=2000.0)
    p["g2_0"] = g2_0
    d = np.arange(-window, window, 64.0) + 32
    n = rng.poisson(g2fit.pulsed_model(p, d - 32, d + 32))
    P, t0 = g2fit.find_period(d, n)
    # centroids of ~2000-count peaks on background: a few ps of noise (more with 2 peaks)
    assert P == pytest.approx(period, abs=5.0 if window > 100_000 else 20.0)
    assert t0 == pytest.approx(offset, abs=20.0)
    assert g2fit.find_period(d, n, period_ps=period)[0] == period


def test_result_fields_and_dataset():
    d = np.arange(-40_000, 40_000, 64.0) + 32
    mu = g2fit.pulsed_model(dict(PULSED_TRUTH, bunch_amp=0.0), d - 32, d + 32)
    n = np.random.default_rng(2).poisson(mu)
    r = analysis.fit_g2_pulsed(d, n)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.g2_0 = 1.0
    assert set(r.params) == set(r.stderr) == set(r.param_names)
    assert r.covariance.shape == (len(r.param_names),) * 2
    i = r.param_names.index("g2_0")
    assert math.sqrt(r.covariance[i, i]) == pytest.approx(r.g2_0_err)
    assert {"deviance", "dof", "deviance_dof", "chi2", "chi2_red"} <= set(r.gof)
    ds = r.to_dataset()
    assert set(ds.data_vars) == {"counts", "fit", "residual"}
    assert ds.attrs["g2_0"] == r.g2_0 and ds.attrs["g2_0_stderr"] == r.g2_0_err
    np.testing.assert_allclose(ds["fit"].sum(), n.sum(), rtol=1e-3)


def test_ill_posed_input_raises():
    d = np.arange(-20_000, 20_000, 64.0) + 32
    with pytest.raises(ValueError, match="too few"):
        analysis.fit_g2_pulsed(d, np.zeros(d.size))
    with pytest.raises(ValueError, match="too few"):
        analysis.fit_g2_cw(d, np.zeros(d.size))
    n = np.ones(d.size)
    n[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        analysis.fit_g2_cw(d, n)
    with pytest.raises(ValueError, match="negative"):
        analysis.fit_g2_cw(d, -np.ones(d.size))
    flat = np.random.default_rng(0).poisson(50.0, d.size)
    with pytest.raises(ValueError, match="side peaks"):
        analysis.fit_g2_pulsed(d, flat)
    short = np.arange(-5000, 5000, 64.0) + 32  # window shorter than one period
    mu = g2fit.pulsed_model(dict(PULSED_TRUTH, bunch_amp=0.0), short - 32, short + 32)
    with pytest.raises(ValueError):
        analysis.fit_g2_pulsed(short, np.round(mu), period_ps=12_800.0)
    with pytest.raises(ValueError, match="equal length"):
        analysis.fit_g2_cw(d, np.ones(d.size - 1))
    with pytest.raises(ValueError, match="uniform"):
        analysis.fit_g2_cw(np.r_[d[:-1], d[-1] + 10], np.ones(d.size) * 10)


def test_fit_that_does_not_converge_warns():
    """CW data through the pulsed model with a single side peak: the fit stalls. It says so with
    a FitWarning (and `converged=False`), not only in a field nobody reads."""
    s, _ = cw_source(6, background_fraction=0.25, duration_s=5e-4)
    h = analysis.g2(s, channels=(0, 1), bin_ps=64, window_ps=20_000, normalize="cw")
    with pytest.warns(analysis.FitWarning, match="fit_g2_pulsed: the fit did not converge"):
        r = analysis.fit_g2_pulsed(h, sigma_ps=71)
    assert not r.converged
    assert issubclass(analysis.FitWarning, UserWarning)
