"""TCSPC histograms and lifetime fits: recovery of known mono- and bi-exponential lifetimes
from synthetic T3 photons (measured IRF, Gaussian IRF, wrapped tail), noiseless exactness of the
IRF reconvolution, profile-likelihood intervals and ill-posed input."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.special import log_ndtr
from scipy.stats import norm

from qdsim import analysis
from qdsim.analysis.photons import decay
from qdsim.analysis.photons.stream import PhotonStream
from tests.analysis.synth_photons import decay_t3, irf_histogram


@pytest.fixture(scope="module")
def irf8():
    """A measured IRF (2e6 counts, 8 ps bins) of the synthetic set-up (period 12.5 ns)."""
    return irf_histogram(2)


def _z(r, i, truth):
    return (r.lifetimes_ps[i] - truth) / r.lifetimes_err_ps[i]


# ---------------------------------------------------------------------------------------------
# histogram
# ---------------------------------------------------------------------------------------------


def test_decay_histogram_counts_and_grid():
    s, truth = decay_t3(1, n_photons=20_000)
    h = analysis.decay_histogram(s)
    assert h.dims == ("time",) and int(h.sum()) == 20_000
    assert h.attrs["bin_ps"] == 8.0 and h.attrs["period_ps"] == truth["period_ps"]
    assert h.sizes["time"] == truth["period_ps"] / 8
    np.testing.assert_array_equal(h["time"].values[:2], [4.0, 12.0])
    # 64 ps bins: sums of 8 native bins (the period, 1562 native bins, ends in a partial bin)
    h64 = analysis.decay_histogram(s, bin_ps=64)
    assert h64.sizes["time"] == 196
    np.testing.assert_array_equal(h64.values[:-1], h.values[:1560].reshape(-1, 8).sum(1))
    assert h64.values[-1] == h.values[1560:].sum()
    # channel selection
    s2 = PhotonStream(
        time_ps=s.time_ps,
        channel=np.arange(len(s)) % 2,
        micro_ps=s.micro_ps,
        sync_index=s.sync_index,
        sync_period_ps=s.sync_period_ps,
        header=s.header,
    )
    assert int(analysis.decay_histogram(s2, channel=1).sum()) == 10_000
    with pytest.raises(ValueError, match="multiple"):
        analysis.decay_histogram(s, bin_ps=12)
    with pytest.raises(ValueError, match="T3"):
        analysis.decay_histogram(PhotonStream(time_ps=[1, 2], channel=[0, 0]))
    with pytest.raises(ValueError, match="no photons"):
        analysis.decay_histogram(s, channel=5)


# ---------------------------------------------------------------------------------------------
# noiseless exactness
# ---------------------------------------------------------------------------------------------


def test_gaussian_irf_noiseless_exact():
    """Analytic Gaussian-IRF pulse train, bi-exponential with a wrapped tail: every parameter
    back to 1e-8."""
    P, b = 12_500.0, 16.0
    t = (np.arange(int(P / b)) + 0.5) * b
    edges = np.append(t - b / 2, t[-1] + b / 2)
    p = dict(
        amplitude=1e6,
        background=2.0,
        tau1_ps=246.0,
        tau2_ps=4000.0,
        frac1=0.6,
        irf_t0_ps=2000.0,
        irf_sigma_ps=35.0,
    )
    mu = decay.decay_model(p, edges, n_exp=2, period_ps=P)
    r = analysis.fit_decay(t, mu, n_exp=2, period_ps=P, allow_fractional=True, profile=False)
    assert r.converged
    for k, v in p.items():
        assert r.params[k] == pytest.approx(v, rel=1e-8), k
    np.testing.assert_allclose(r.lifetimes_ps, [246.0, 4000.0], rtol=1e-8)
    np.testing.assert_allclose(r.fractions, [0.6, 0.4], rtol=1e-8)


def test_measured_irf_reconvolution_matches_exact_convolution():
    """Noiseless data from the exact continuous convolution (fine grid) of an IRF with an
    exponential tail and a 246 ps decay, binned at 4 ps: the fit with the binned IRF recovers
    tau to well within 1 % of its Poisson error for 2e6 photons (the linear-in-bin IRF model
    leaves an O(bin^2 / sigma_IRF^2) bias only)."""
    res, P, tau, sig, tail, frac, pos = 4, 6000, 246.0, 30.0, 80.0, 0.2, 2000.0
    dx = 0.05
    x = np.arange(0, P, dx) + dx / 2
    emg = np.exp(
        -(x - pos) / tail + sig**2 / (2 * tail**2) + log_ndtr((x - pos) / sig - sig / tail)
    )
    irf = (1 - frac) * norm.pdf(x, pos, sig) + frac * emg / tail
    dec = np.exp(-(x - dx / 2) / tau) / tau / -math.expm1(-P / tau)  # lag 0 at sample 0
    conv = np.fft.irfft(np.fft.rfft(irf) * np.fft.rfft(dec), x.size) * dx
    nb = P // res
    k = (x // res).astype(int)
    H = np.bincount(k, weights=conv * dx, minlength=nb)[:nb]
    I = np.bincount(k, weights=irf * dx, minlength=nb)[:nb]
    t = (np.arange(nb) + 0.5) * res
    r = analysis.fit_decay(
        t,
        H * 2e6 + 3.0,
        irf=I * 1e7,
        period_ps=P,
        allow_fractional=True,
        profile=False,
        irf_background=None,
    )
    assert abs(r.lifetimes_ps[0] - tau) < 0.01 * r.lifetimes_err_ps[0] + 1e-3
    assert r.gof["deviance"] < 0.1


def test_measured_irf_noiseless_self_consistent(irf8):
    """decay_model with a measured IRF, then fit_decay on it: parameters back to 1e-8."""
    t, irf = irf8
    b = 8.0
    edges = np.append(t - b / 2, t[-1] + b / 2)
    w = irf / irf.sum()
    p = dict(amplitude=5e5, background=1.5, tau1_ps=180.0, tau2_ps=2500.0, frac1=0.3)
    p["shift_ps"] = 37.3
    mu = decay.decay_model(p, edges, n_exp=2, period_ps=12_496.0, irf=w)
    r = analysis.fit_decay(
        t,
        mu,
        irf=irf,
        n_exp=2,
        period_ps=12_496.0,
        allow_fractional=True,
        profile=False,
        irf_background=None,
    )
    for k, v in p.items():
        assert r.params[k] == pytest.approx(v, rel=1e-8), k


# ---------------------------------------------------------------------------------------------
# recovery from photons
# ---------------------------------------------------------------------------------------------


def test_mono_recovery_measured_irf(irf8):
    """Dot 5's 246 ps mono-exponential decay, 3e5 photons, measured IRF, 1 % background:
    tau within 4 sigma, sigma close to the Poisson expectation tau / sqrt(N), and the profile
    interval brackets the estimate with a half width close to sigma."""
    s, truth = decay_t3(11, n_photons=300_000)
    h = analysis.decay_histogram(s)
    r = analysis.fit_decay(h, irf=irf8[1])
    assert r.converged and r.n_exp == 1
    assert abs(_z(r, 0, 246.0)) < 4
    assert r.lifetimes_err_ps[0] == pytest.approx(246.0 / math.sqrt(300_000), rel=0.3)
    lo, hi = r.lifetimes_ci_ps[0]
    assert lo < r.lifetimes_ps[0] < hi
    assert (hi - lo) / 2 == pytest.approx(r.lifetimes_err_ps[0], rel=0.1)
    np.testing.assert_allclose(r.lifetimes_s, r.lifetimes_ps * 1e-12)
    assert r.period_ps == truth["period_ps"]
    assert r.gof["chi2_red"] == pytest.approx(1.0, abs=0.15)


def test_bi_recovery_measured_irf_wrapped_tail(irf8):
    """246 ps + 4 ns (60/40 %) at 80 MHz: the slow tail wraps into the next period. Both
    lifetimes and the fractions within 4 sigma; ignoring the wrap (no period) fits far worse."""
    s, truth = decay_t3(3, n_photons=400_000, lifetimes_ps=(246.0, 4000.0), fractions=(0.6, 0.4))
    h = analysis.decay_histogram(s)
    r = analysis.fit_decay(h, irf=irf8[1], n_exp=2, profile=False)
    assert r.converged
    assert abs(_z(r, 0, 246.0)) < 4 and abs(_z(r, 1, 4000.0)) < 4
    assert abs(r.fractions[0] - 0.6) < 4 * r.fractions_err[0]
    assert r.lifetimes_err_ps[1] < 100
    nowrap = analysis.fit_decay(h["time"].values, h.values, irf=irf8[1], n_exp=2, profile=False)
    assert nowrap.period_ps is None
    assert nowrap.gof["deviance"] > r.gof["deviance"] + 100


def test_mono_recovery_gaussian_irf():
    """No measured IRF: a Gaussian IRF is fitted with the decay (its width too)."""
    s, truth = decay_t3(5, n_photons=200_000, irf_tail_frac=0.0, irf_sigma_ps=40.0)
    h = analysis.decay_histogram(s, bin_ps=16)
    r = analysis.fit_decay(h)
    assert r.converged
    assert abs(_z(r, 0, 246.0)) < 4
    assert abs((r.params["irf_sigma_ps"] - 40.0) / r.stderr["irf_sigma_ps"]) < 4
    assert abs((r.params["irf_t0_ps"] - 2000.0) / r.stderr["irf_t0_ps"]) < 4
    assert r.irf is None


def test_tail_fit_without_irf_or_rise():
    """No IRF and no rise (a pure exponential from t = 0, or a fit range starting after the
    peak): a tail fit recovers the lifetime; noiseless to 1e-8, photons within 4 sigma."""
    b = 10.0
    t = np.arange(400) * b + b / 2
    mu = 1e4 * np.exp(-(t - b / 2) / 600.0) * (1 - math.exp(-b / 600.0)) + 2.0
    r = analysis.fit_decay(t, mu, allow_fractional=True, profile=False)
    assert r.irf_model.startswith("none: tail fit")
    assert r.lifetimes_ps[0] == pytest.approx(600.0, rel=1e-8)
    n = np.random.default_rng(0).poisson(mu * 20)
    r = analysis.fit_decay(t, n)
    assert abs(_z(r, 0, 600.0)) < 4
    lo, hi = r.lifetimes_ci_ps[0]
    assert lo < 600.0 + 4 * r.lifetimes_err_ps[0] and hi > 600.0 - 4 * r.lifetimes_err_ps[0]
    s, _ = decay_t3(7, n_photons=100_000, background_fraction=0.0)
    h = analysis.decay_histogram(s)
    r = analysis.fit_decay(h, fit_range_ps=(2300.0, 6000.0), profile=False)
    assert r.irf_model.startswith("none") and abs(_z(r, 0, 246.0)) < 4


@pytest.mark.slow
def test_mono_coverage_many_seeds(irf8):
    """Standardised lifetime errors over 30 seeds: mean ~0, spread ~1."""
    z = []
    for seed in range(30):
        s, _ = decay_t3(200 + seed, n_photons=100_000)
        r = analysis.fit_decay(analysis.decay_histogram(s), irf=irf8[1], profile=False)
        z.append(_z(r, 0, 246.0))
    z = np.asarray(z)
    assert abs(z.mean()) < 0.5 and 0.7 < z.std() < 1.35


# ---------------------------------------------------------------------------------------------
# results and ill-posed input
# ---------------------------------------------------------------------------------------------


def test_result_dataset_and_frozen(irf8):
    s, _ = decay_t3(12, n_photons=50_000)
    r = analysis.fit_decay(analysis.decay_histogram(s), irf=irf8[1], profile=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.n_exp = 2
    assert np.all(np.isnan(r.lifetimes_ci_ps))
    ds = r.to_dataset()
    assert {"counts", "fit", "residual", "irf", "lifetime", "lifetime_err"} <= set(ds.data_vars)
    assert float(ds["lifetime"][0]) == r.lifetimes_ps[0]
    assert ds.attrs["tau1_ps_stderr"] == r.stderr["tau1_ps"]
    assert float(ds["irf"].sum()) == pytest.approx(1.0)
    i = r.param_names.index("tau1_ps")
    assert math.sqrt(r.covariance[i, i]) == pytest.approx(r.lifetimes_err_ps[0])


def test_ill_posed_input_raises(irf8):
    t, irf = irf8
    with pytest.raises(ValueError, match="too few"):
        analysis.fit_decay(t, np.zeros(t.size), irf=irf)
    n = np.ones(t.size)
    n[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        analysis.fit_decay(t, n, irf=irf)
    with pytest.raises(ValueError, match="n_exp"):
        analysis.fit_decay(t, irf, irf=irf, n_exp=3)
    with pytest.raises(ValueError, match="whole numbers"):
        analysis.fit_decay(t, irf * 0.5 + 0.25, irf=irf)
    with pytest.raises(ValueError, match="grid"):
        analysis.fit_decay(t, irf, irf=irf[:-3])
    s, _ = decay_t3(1, n_photons=50_000)
    h = analysis.decay_histogram(s)
    with pytest.raises(ValueError, match="IRF"):
        analysis.fit_decay(h, irf=np.zeros(h.sizes["time"]))


@pytest.mark.data
def test_real_hydraharp_decay(data_file):
    """FitMyData HydraHarp export: curve 2 (quantum-dot decay, 4 ps bins) reconvolved with
    the sharp curve 0 as IRF, first 4 pulses. The README's 1/e tail (0.19-0.25 ns includes the
    IRF) bounds the mono-exponential lifetime from above; the fit converges with finite errors."""
    curves = analysis.read_histogram(data_file("fitmydata_demo_lifetime.dat"))
    d, irf = curves[2][:13_000], curves[0][:13_000]
    r = analysis.fit_decay(d, irf=irf.values, profile=False)
    assert r.converged
    assert 100 < r.lifetimes_ps[0] < 250
    assert 0 < r.lifetimes_err_ps[0] < 2
