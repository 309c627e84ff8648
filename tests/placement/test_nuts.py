"""The NUTS engine's ingredients (issue 13): the cheaper quadrature of its forward model and the
ridge coordinates it samples in. Sampling itself is in the slow tests of test_placement.py (a
first NUTS call compiles for minutes on 2 cores)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import qdsim
from qdsim.placement import nuts
from qdsim.placement.api import MODEL_ERROR
from qdsim.placement.forward import predict_batch
from qdsim.placement.priors import NUISANCES, system_priors
from qdsim.status import Status


@pytest.fixture(scope="module")
def system():
    return qdsim.load_system()


@pytest.fixture(scope="module")
def priors(system):
    return system_priors(system)


def _prior_draws(priors, n, seed):
    rng = np.random.default_rng(seed)
    d = priors["diameter"].ppf(rng.uniform(0.005, 0.995, n))
    out = {"radius": d / 2, "x": rng.uniform(0, 1, n)}
    out.update({k: priors[k].ppf(rng.random(n)) for k in NUISANCES})
    return out


def test_nuts_quadrature_order_is_far_inside_the_model_error(system, priors):
    """NUTS_N_QUAD against the default order over prior draws: the same points fail, energies
    within 20 ueV (4 % of the 0.5 meV energy model error; measured 4 ueV), splitting and
    lifetime within 1 % relative (a tenth of their 10 % model errors; measured 0.2 %), also at
    NEAR_THRESHOLD points. The likelihood moves by < 0.03 sigma anywhere in the prior range."""
    p = _prior_draws(priors, 1024, seed=5)
    args = (p["radius"], p["x"], *(p[k] for k in nuts._ORDER))
    ref = predict_batch(system, *args, qdsim.SolverConfig())
    low = predict_batch(system, *args, qdsim.SolverConfig(n_quad=nuts.NUTS_N_QUAD))
    np.testing.assert_array_equal(ref.ok, low.ok)
    ok = ref.ok
    assert ok.sum() > 500 and ((ref.status[ok] & int(Status.NEAR_THRESHOLD)) != 0).sum() > 100
    assert np.max(np.abs(ref.energy_eV[ok] - low.energy_eV[ok])) < 0.04 * MODEL_ERROR["energy_eV"]
    for q in ("dark_bright_eV", "lifetime_s"):
        rel = np.abs(getattr(low, q)[ok] / getattr(ref, q)[ok] - 1)
        assert np.max(rel) < 0.1 * MODEL_ERROR["dark_bright_rel"], q


def test_ridge_coordinates_put_nuisance_draws_on_the_measured_energy(system, priors):
    """The sampler's ridge x_r(ln R, nuisances) (ridge at the prior medians plus its second-order
    Taylor terms in the nuisances) reproduces the measured energy of dot 3 within the
    measurement's total error for typical nuisances (central 68 % of each prior), far better
    than the ridge at the medians alone: what is left is small against the posterior's spread in
    w, which the warm-up's mass matrix takes up."""
    cfg = qdsim.SolverConfig(n_quad=nuts.NUTS_N_QUAD)
    E = 1.8167
    sigma = math.hypot(5e-4, MODEL_ERROR["energy_eV"])
    r_nodes = np.linspace(math.log(3.0), math.log(7.0), 41)
    x_ridge = nuts.ridge(system, priors, {}, E, r_nodes, cfg)
    g, H, e_x = nuts.ridge_taylor(system, priors, {}, x_ridge, r_nodes, cfg)
    assert np.all(e_x > 0)  # the energy rises with x along the whole ridge
    rng = np.random.default_rng(2)
    n = 512
    ln_r = rng.uniform(math.log(4.0), math.log(6.0), n)
    nu = {n_: priors[n_].ppf(rng.uniform(0.16, 0.84, n)) for n_ in NUISANCES}
    nom = nuts._nominal(priors, {})
    dnu = [nu[n_] - nom[n_] for n_ in NUISANCES]
    x0 = np.interp(ln_r, r_nodes, x_ridge)
    x2 = x0.copy()
    for i in range(len(NUISANCES)):
        x2 += np.interp(ln_r, r_nodes, g[i]) * dnu[i]
        for j in range(len(NUISANCES)):
            x2 += 0.5 * np.interp(ln_r, r_nodes, H[i, j]) * dnu[i] * dnu[j]
    dev = {}
    for label, x in (("medians", x0), ("taylor", x2)):
        e = nuts._batch(system, np.exp(ln_r), x, nu, cfg)
        assert np.all(np.isfinite(e))
        dev[label] = np.abs(e - E) / sigma
    assert np.median(dev["taylor"]) < 0.5 and np.percentile(dev["taylor"], 95) < 3
    assert np.median(dev["taylor"]) < 0.1 * np.median(dev["medians"])


def _toy_tables(n_free=2):
    """Ridge tables without the forward model: x_r0 = 0.4 (ln R - 1) crossing 0 at ln R = 1
    (the wall), dE/dx = 0.7 eV, small smooth Taylor terms."""
    r = np.linspace(0.0, 3.0, 31)
    xr = 0.4 * (r - 1.0)
    g = 0.01 * np.stack([np.sin(r + i) for i in range(n_free)])
    H = 0.002 * np.ones((n_free, n_free, r.size))
    sig, ex, slope = 7e-4, 0.7, 0.4
    with nuts.float64():
        return tuple(
            nuts.jnp.asarray(a, dtype=nuts.jnp.float64)
            for a in (
                r[0],
                r[1] - r[0],
                nuts._spline(r, xr),
                nuts._spline(r, np.full(r.size, ex)),
                nuts._spline(r, g),
                nuts._spline(r, H),
                sig,
                1.0,
                3 * sig / ex / slope,
                slope,
                1.0,
                0.5 / (3 * sig / ex / slope),
            )
        )


def test_ridge_coordinates_are_smooth_and_their_jacobian_exact():
    """The sampler's coordinate maps on toy tables: the splines pass through the nodes with
    continuous slopes (no kinks for the leapfrog); ln R = c(nu) + delta sinh(p) has the log
    Jacobian the potential adds, and c(nu) is where x_r = 0; k = logit(x_r) inside (0, 1) and
    stays finite and increasing past the wall, where no x reaches the energy."""
    jnp = nuts.jnp
    r = np.linspace(0.0, 3.0, 31)
    eps = 1e-7  # one-sided slopes of the spline of g_0 either side of each inner knot
    u_knots = np.concatenate([r[1:-1] + o for o in (-2 * eps, -eps, eps, 2 * eps)])
    p = np.array([-2.0, 0.0, 0.7, 3.0, 8.0])
    dnu = np.array([[0.3], [-0.2]])

    @nuts.jax.jit  # one compilation instead of one per operation
    def maps(tab):
        out = {
            "xr": nuts._spline_eval(jnp.asarray(r), tab[0], tab[1], tab[2]),
            "g0": nuts._spline_eval(jnp.asarray(u_knots), tab[0], tab[1], tab[4][:, 0]),
            "u": nuts._ln_r(jnp.asarray(p), dnu, tab),
            "du": [nuts._ln_r(jnp.asarray(p + o), dnu, tab)[0] for o in (1e-6, -1e-6)],
            "ridge": nuts._ridge_point(jnp.linspace(0, 2.0, 200), jnp.zeros((2, 200)), tab),
        }
        c = nuts._wall(dnu, tab)
        xr_c = nuts._spline_eval(c, tab[0], tab[1], tab[2]) + jnp.sum(
            nuts._spline_eval(c, tab[0], tab[1], tab[4]) * dnu, axis=0
        )
        out["xr_c"] = xr_c + 0.5 * jnp.sum(
            nuts._spline_eval(c, tab[0], tab[1], tab[5]) * dnu[:, None] * dnu[None, :], axis=(0, 1)
        )
        return out

    with nuts.float64():
        tab = _toy_tables()
        m = nuts.jax.tree.map(np.asarray, maps(tab))
        np.testing.assert_allclose(m["xr"], 0.4 * (r - 1.0), atol=1e-12)
        g0 = m["g0"].reshape(4, -1)
        np.testing.assert_allclose((g0[1] - g0[0]) / eps, (g0[3] - g0[2]) / eps, atol=1e-6)
        u, log_jac = m["u"]
        du = (m["du"][0] - m["du"][1]) / 2e-6
        np.testing.assert_allclose(log_jac, np.log(du), rtol=0, atol=1e-7)
        np.testing.assert_allclose(nuts._p_of(u, jnp.asarray(dnu), tab), p, atol=1e-9)
        assert abs(float(m["xr_c"][0])) < 1e-4  # second order in the shift of c (0.4 x 5e-3)
        k, sc = m["ridge"]
        assert k[-1] == pytest.approx(math.log(0.4 / 0.6), rel=1e-5)
        assert sc[-1] == pytest.approx(1 / math.hypot(0.7 * 0.24 / 7e-4, 1), rel=1e-5)
        assert np.all(np.isfinite(k)) and np.all(np.diff(k) > 0)
