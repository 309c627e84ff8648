"""NUTS engine: the continuous posterior with every nuisance free, through the differentiable
JAX forward model (numpyro's NUTS; gradients through the well root and the lambda optimum by
implicit differentiation, qdsim.model).

Why numpyro and not blackjax: numpyro's NUTS comes with the warm-up (step size and dense mass
matrix adaptation), constrained-support transforms for every prior kind used here (truncated
normal, lognormal, uniform) and the split-R-hat / ESS diagnostics in one maintained package;
blackjax would need each of those assembled by hand. The chains run as compiled programs built
from numpyro's functional NUTS kernel (`numpyro.infer.hmc.hmc`), not through `MCMC`: `MCMC`
replays the model eagerly (op by op) to initialise and to post-process draws, which costs
minutes of compilation per call and, with vectorised chains, segfaulted in the CPU compiler of
jaxlib 0.10.2.

Geometry: a measured energy confines the posterior to a thin ridge (0.7 meV against ~1 eV of
range in x; the bowing moves the ridge by ~40 meV over its prior, f_v non-monotonically by a few
meV, the exchange constants by ~1 meV). Along the ridge, ln R runs towards infinity where x
approaches the composition whose bulk exciton has the measured energy, so (x, ln R) is a bad
coordinate pair; (ln R, x) is a good one: at fixed size and nuisances the energy rises smoothly
with x (the gap). The sampler works in (p, w, nuisances) with

    ln R = c(nu) + delta G(p),
    x_r = x_r0(ln R) + sum_k g_k(ln R) dnu_k + 1/2 sum_kl H_kl(ln R) dnu_k dnu_l,
    y = k(x_r) + s w,

y the unconstrained coordinate of x (logit of its uniform prior's interval), x_r the ridge in x
(normalised to that interval): x_r0 where the energy at the nuisances' prior medians nu_0 equals
the measured one (bracketing search), g and H its first and second derivatives in the nuisances
(implicit function theorem on central differences of the energy), dnu = nu - nu_0. All tables are
natural cubic splines over 121 ln R nodes (C2: linear interpolation put a kink at every node, and
the leapfrog does not integrate across kinks). k = asinh(x_r/(2 delta_x)) - asinh((1 - x_r)/(2
delta_x)) is logit(x_r) inside the interval (to (delta_x/x_r)^2) and, where the ridge leaves it,
the mode of y given ln R (delta_x = sigma_E/(dE/dx), the ridge's width; sigma_E: measurement and
model error in quadrature; near x = 0 the density of y is e^y N(e^y; x_r, delta_x), whose mode is
e^y = delta_x (t + sqrt(t^2 + 4))/2, t = x_r/delta_x); s = 1/sqrt((dE/dy / sigma_E)^2 + 1) is the
ridge's width in y (the Laplace width there too), capped at 1 where the energy hardly depends on
x (near x = 0 or 1 the logit makes dE/dy vanish: without s the ridge's width would grow there
into a funnel).

The wall: where no x reaches the measured energy (x_r0 leaves [0, 1]; for dot 3's 1.8167 eV at
d < 4.6 nm, in the middle of the size prior) the posterior in ln R ends within the ridge's width
there, delta_x/(dx_r/d ln R) ~ 1.6e-3, a cliff against a posterior spread of ~0.4 in ln R: in ln R
every trajectory reaching it diverged (34 % of the draws next to it did, energy only). The map
ln R = c(nu) + delta G(p), G' = C cosh p/(C + cosh p), stretches the cliff to a width ~1 in p:
c(nu) is the wall, where x_r crosses the interval's end (c0 at nu_0, moved by the Taylor terms at
c0 over the ridge's slope; off by 0.5 sigma_E in energy at median, 1.7 at the 90th percentile of
typical nuisances), delta twice the wall's width in ln R; G = sinh near the wall and C p + const
far from it, delta C = 0.5 (a pure sinh made p ~ log(ln R - c) and the size prior's tail a
double exponential in p, whose stiffness diverged trajectories there). With walls at both ends
the one where the size prior is denser is stretched; with none (or no energy measured) ln R is
~linear in p.

The map (p, w, nu) -> (ln R, y, nu) is triangular with Jacobian delta G'(p) s(ln R), added to
the log density, so the posterior is exactly the model's: the same priors (x uniform, d
lognormal, nuisances as in the materials file), the same likelihood; only the coordinates
change. The ridge becomes w ~ N(0, 1)-like and what the Taylor expansion leaves is taken up by
the dense mass matrix.

Quadrature: the sampler's forward model uses `NUTS_N_QUAD` (8) instead of the default order 12:
over prior draws the energies differ by < 4 ueV (0.5 meV model error) and the splitting and
lifetime by < 0.3 % (10 % model error), the status bits agree, and each gradient is ~5x cheaper
(tests/placement/test_nuts.py holds the bound).

Cost: the sampler (warm-up and draws) is one compiled program per (system, solver config, priors,
fixed nuisances, chain layout, warm-up and draw counts), kept for the process: the data (any
subset of the three quantities, switched by a mask), ridge tables and start points are its
arguments, so a further dot with the same layout does not recompile.
"""

from __future__ import annotations

import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from qdsim._x64 import float64
from qdsim.placement.forward import predict, predict_batch
from qdsim.placement.priors import NUISANCES

__all__ = ["NUTS_N_QUAD", "run_nuts"]

#: Gauss-Legendre order of the forward model inside the sampler (see the module docstring).
NUTS_N_QUAD = 8

#: argument order of `predict` after (radius, x)
_ORDER = ("f_v", "bowing_Eg", "mass_ratio", "dSR", "hwLT")

#: ln R nodes of the ridge tables
_N_NODES = 121

#: ln R = wall + delta G(p) turns from delta sinh(p) near the wall to linear in p with slope
#: _SPREAD far from it (the scale of ln R's posterior there), so that the size prior's tail stays
#: Gaussian in p
_SPREAD = 0.5


def _nominal(priors, fixed):
    return {n: fixed[n] if n in fixed else float(priors[n].ppf(0.5)) for n in NUISANCES}


def _x_transform(priors):
    """(x -> y, y -> x) of the x prior's support (numpy in and out, float64)."""
    import numpyro.distributions as dist

    t = dist.biject_to(priors["x"].numpyro().support)

    def apply(f, v):
        with float64():
            return np.asarray(f(jnp.asarray(v, dtype=jnp.float64)))

    return functools.partial(apply, t.inv), functools.partial(apply, t)


def _batch(system, radius, x, nu, config, chunk=1024):
    """Bright energies through `predict_batch` in chunks of one shape (one compilation)."""
    radius, x = np.asarray(radius, dtype=float).ravel(), np.asarray(x, dtype=float).ravel()
    out = np.empty(radius.size)
    nu = {n: np.broadcast_to(np.asarray(nu[n], dtype=float).ravel(), radius.shape) for n in _ORDER}
    for c in range(0, radius.size, chunk):
        sl = slice(c, min(c + chunk, radius.size))
        pad = chunk - (sl.stop - sl.start)
        out[sl] = predict_batch(
            system,
            np.pad(radius[sl], (0, pad), mode="edge"),
            np.pad(x[sl], (0, pad), mode="edge"),
            *(np.pad(nu[n][sl], (0, pad), mode="edge") for n in _ORDER),
            config,
        ).energy_eV[: sl.stop - sl.start]
    return out


def ridge(system, priors, fixed, energy_eV, ln_r_nodes, config, n_sub=24, rounds=5):
    """x at which the bright energy equals `energy_eV` for each ln R node (nm), nuisances at
    their prior medians; clamped to the x prior's support where no x reaches it. The energy
    rises with x: each round splits every node's bracket into `n_sub` pieces and keeps the one
    holding the crossing (final bracket: support / n_sub^rounds, 1e-7 by default). A failed
    point (no bound state) counts as above the measurement."""
    nom = _nominal(priors, fixed)
    x_lo, x_hi = priors["x"].support
    lo = np.full(ln_r_nodes.size, max(x_lo, 0.0))
    hi = np.full(ln_r_nodes.size, min(x_hi, 1.0))
    t = np.arange(1, n_sub) / n_sub
    rows = np.arange(ln_r_nodes.size)
    for _ in range(rounds):
        mid = lo[:, None] + (hi - lo)[:, None] * t[None, :]  # (node, n_sub - 1)
        radius = np.repeat(np.exp(ln_r_nodes), t.size)
        e = _batch(system, radius, mid, nom, config).reshape(mid.shape)
        below = e <= energy_eV  # energies rise with x: the first k points lie below
        k = below.sum(axis=1)
        new_lo = np.where(k > 0, mid[rows, np.maximum(k - 1, 0)], lo)
        new_hi = np.where(k < t.size, mid[rows, np.minimum(k, t.size - 1)], hi)
        lo, hi = new_lo, new_hi
    return 0.5 * (lo + hi)


def ridge_taylor(system, priors, fixed, x_nodes, ln_r_nodes, config, step_x=2e-4):
    """Second-order Taylor coefficients of the ridge x = r(ln R, nu) about the nuisances' prior
    medians: (g, H), g[k, j] = dr/d nu_k, H[k, l, j] = d2r/d nu_k d nu_l at ln R node j, from
    central differences of the energy and the implicit function theorem (r_k = -E_k/E_x, r_kl =
    -(E_kl + E_kx r_l + E_lx r_k + E_xx r_k r_l)/E_x). Steps: `step_x` in x, 2 % of each prior's
    central 68 % width in the nuisances. NaN where not finite or where x +- step_x leaves [0, 1].
    Third output: dE/dx on the ridge (eV)."""
    free = [n for n in NUISANCES if n not in fixed]
    nom = _nominal(priors, fixed)
    m = 1 + len(free)  # x, then the free nuisances
    step = np.asarray([step_x, *(0.02 * float(np.diff(priors[n].interval(0.68))[0]) for n in free)])
    unit = np.eye(m)
    offsets = [np.zeros(m)]
    for i in range(m):
        offsets += [step * unit[i], -step * unit[i]]
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
    for i, j in pairs:
        for si in (1, -1):
            for sj in (1, -1):
                offsets.append(step * (si * unit[i] + sj * unit[j]))
    off = np.asarray(offsets)  # (n_points, m)
    n_pt, n_r = off.shape[0], ln_r_nodes.size
    inside = (x_nodes - step_x >= 0.0) & (x_nodes + step_x <= 1.0)
    x = np.clip(x_nodes, step_x, 1.0 - step_x)[None, :] + off[:, :1]
    nu = {n: np.full((n_pt, n_r), nom[n]) for n in NUISANCES}
    for i, n in enumerate(free, start=1):
        nu[n] = nom[n] + off[:, i : i + 1] + 0 * x
    radius = np.broadcast_to(np.exp(ln_r_nodes), (n_pt, n_r))
    e = _batch(system, radius, x, nu, config).reshape(n_pt, n_r)
    grad = np.stack([(e[1 + 2 * i] - e[2 + 2 * i]) / (2 * step[i]) for i in range(m)])
    hess = np.empty((m, m, n_r))
    for i in range(m):
        hess[i, i] = (e[1 + 2 * i] - 2 * e[0] + e[2 + 2 * i]) / step[i] ** 2
    base = 1 + 2 * m
    for p, (i, j) in enumerate(pairs):
        pp, pm, mp, mm = e[base + 4 * p : base + 4 * p + 4]
        hess[i, j] = hess[j, i] = (pp - pm - mp + mm) / (4 * step[i] * step[j])
    e_x = grad[0]
    g = -grad[1:] / e_x
    e_kx = hess[1:, 0]  # (k, node)
    H = (
        -(
            hess[1:, 1:]
            + e_kx[:, None] * g[None, :]
            + e_kx[None, :] * g[:, None]
            + hess[0, 0] * g[:, None] * g[None, :]
        )
        / e_x
    )
    bad = ~inside | ~np.isfinite(e_x)
    g[:, bad] = np.nan
    H[:, :, bad] = np.nan
    e_x = np.where(bad, np.nan, e_x)
    return g, H, e_x


def _spline(ln_r_nodes, values):
    """Natural cubic spline coefficients (4, ..., n - 1) of `values` (..., n) on the uniform
    nodes: C2, so the leapfrog meets no kinks (linear interpolation of the ridge put a kink at
    every node, ~0.25 ridge widths in w at dot 3's energy)."""
    from scipy.interpolate import CubicSpline

    c = CubicSpline(ln_r_nodes, np.moveaxis(values, -1, 0), bc_type="natural").c
    return np.moveaxis(c, 1, -1)  # (4, ..., n - 1)


def _spline_eval(u, u0, h, coef):
    """The spline of `_spline` at u (clamped to the nodes' range), jnp."""
    n = coef.shape[-1]
    u = jnp.clip(u, u0, u0 + n * h)
    i = jnp.clip(jnp.floor((u - u0) / h).astype(jnp.int32), 0, n - 1)
    t = u - (u0 + i * h)
    c = coef[..., i]
    return ((c[0] * t + c[1]) * t + c[2]) * t + c[3]


def _fill(values, valid):
    """Values at invalid nodes: those of the nearest valid node (the last axis is ln R)."""
    idx = np.flatnonzero(valid)
    near = idx[np.abs(np.arange(valid.size)[:, None] - idx[None, :]).argmin(axis=1)]
    return values[..., near]


def _loglik(pred, data, model_error):
    """Gaussian log-likelihood of the measurements (safe where the point failed)."""
    ok = pred.ok
    ll = 0.0
    E = jnp.where(ok, pred.energy_eV, 1.0)
    ddb = jnp.where(ok, pred.dark_bright_eV, 1e-3)
    tau = jnp.where(ok, pred.lifetime_s, 1e-10)
    if "energy_eV" in data:
        mu, sig = data["energy_eV"]
        var = sig**2 + model_error["energy_eV"] ** 2
        ll = ll - 0.5 * (E - mu) ** 2 / var
    if "dark_bright_eV" in data:
        mu, sig = data["dark_bright_eV"]
        var = sig**2 + (model_error["dark_bright_rel"] * ddb) ** 2
        ll = ll - 0.5 * (ddb - mu) ** 2 / var - 0.5 * jnp.log(var)
    if "lifetime_s" in data:
        mu, sig = data["lifetime_s"]
        var = sig**2 + (model_error["lifetime_rel"] * tau) ** 2
        ll = ll - 0.5 * (tau - mu) ** 2 / var - 0.5 * jnp.log(var)
    return jnp.where(ok, ll, -jnp.inf)


#: the measurable quantities, in the order of the sampler's data arrays
_QUANTITIES = ("energy_eV", "dark_bright_eV", "lifetime_s")


def _loglik_masked(pred, mu, sig, use, model_error):
    """`_loglik` with every quantity present and switched by `use` (0/1), so that one compiled
    sampler serves any subset of measurements (the terms of unused quantities are exactly 0)."""
    data = {q: (mu[i], sig[i]) for i, q in enumerate(_QUANTITIES)}
    ok = pred.ok
    terms = [_loglik(pred, {q: data[q]}, model_error) for q in _QUANTITIES]
    ll = sum(jnp.where(use[i] > 0, jnp.where(ok, t, 0.0), 0.0) for i, t in enumerate(terms))
    return jnp.where(ok, ll, -jnp.inf)


def _nuisance_transforms(priors, free):
    import numpyro.distributions as dist

    dists = {n: priors[n].numpyro() for n in free}
    return dists, {n: dist.biject_to(d.support) for n, d in dists.items()}


def _ridge_point(u, dnu, tab):
    """(k, s) of the ridge coordinates at ln R = u (nm) and nuisance offsets dnu (free, ...):
    x's unconstrained coordinate is y = k + s w. The ridge in x normalised to the prior's
    support, x_r = x_r0(u) + g(u) dnu + dnu H(u) dnu / 2 (splines), is soft-clipped into (0, 1)
    at the scale of its width delta_x = sigma_E / (dE/dx): k = log softplus(x_r / delta_x) -
    log softplus((1 - x_r) / delta_x), which is logit(x_r) inside and runs on smoothly (linearly
    in x_r / delta_x) past the ends, where no x reaches the measured energy; s = 1/sqrt((dE/dy /
    sigma_E)^2 + 1) the ridge's width in y, capped at 1 where the energy hardly depends on x."""
    u0, h, xr_c, ex_c, g_c, h_c, sig = tab[:7]
    xr = _spline_eval(u, u0, h, xr_c)
    xr = xr + jnp.sum(_spline_eval(u, u0, h, g_c) * dnu, axis=0)
    xr = xr + 0.5 * jnp.sum(_spline_eval(u, u0, h, h_c) * dnu[:, None] * dnu[None, :], axis=(0, 1))
    ex = jnp.maximum(_spline_eval(u, u0, h, ex_c), 0.0)
    width = jnp.clip(sig / jnp.maximum(ex, 1e-300), 1e-6, 0.05)
    k = jnp.arcsinh(xr / (2.0 * width)) - jnp.arcsinh((1.0 - xr) / (2.0 * width))
    q = jax.nn.sigmoid(k) * jax.nn.sigmoid(-k)
    return k, 1.0 / jnp.sqrt((ex * q / sig) ** 2 + 1.0)


def _wall(dnu, tab):
    """ln R of the stretched wall (where the ridge leaves the support) at nuisance offsets dnu:
    c0 moved by the ridge's Taylor terms at c0 over the ridge's slope there (first order in the
    shift of x_r, second order in dnu); c0 itself where the wall is off."""
    u0, h, g_c, h_c, c0, slope, on = (tab[i] for i in (0, 1, 4, 5, 7, 9, 10))
    tail = (1,) * (dnu.ndim - 1)  # dnu: (free, points...), the tables at the scalar c0
    g0 = _spline_eval(c0, u0, h, g_c)
    h0 = _spline_eval(c0, u0, h, h_c)
    dx = jnp.sum(g0.reshape(g0.shape + tail) * dnu, axis=0)
    dx = dx + 0.5 * jnp.sum(h0.reshape(h0.shape + tail) * dnu[:, None] * dnu[None, :], axis=(0, 1))
    return c0 - on * dx / slope


def _stretch(p, big_c, xp=jnp):
    """(G(p), log G'(p)) with G' = C cosh p / (C + cosh p), G(0) = 0 (C > 1); xp: jnp or np."""
    root = xp.sqrt(big_c**2 - 1)
    g = big_c * p - 2 * big_c**2 / root * xp.arctanh(
        xp.sqrt((big_c - 1) / (big_c + 1)) * xp.tanh(p / 2)
    )
    log_cosh = xp.logaddexp(p, -p) - math.log(2)
    return g, xp.log(big_c) + log_cosh - xp.logaddexp(xp.log(big_c), log_cosh)


def _ln_r(p, dnu, tab):
    """ln R from the sampler's coordinate p: u = wall + delta G(p), G' = C cosh p / (C + cosh p):
    sinh(p) near the wall, C p + const far from it (see the module docstring); second output
    log du/dp."""
    delta, big_c = tab[8], tab[11]
    g, log_g1 = _stretch(p, big_c)
    return _wall(dnu, tab) + delta * g, jnp.log(delta) + log_g1


def _p_of(ln_r, dnu, tab):
    """The inverse of `_ln_r` in p (bisection; numpy out)."""
    t = np.asarray((jnp.asarray(ln_r) - _wall(dnu, tab)) / tab[8])
    big_c = float(tab[11])
    lo, hi = np.full(t.shape, -60.0), np.full(t.shape, 60.0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        above = _stretch(mid, big_c, np)[0] > t
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    return 0.5 * (lo + hi)


@functools.lru_cache(maxsize=8)
def _sampler(keys, config, priors_items, fixed_items, layout):
    """run(rng_keys, z0, inverse_mass_matrix, args) -> (warm-up num_steps, draws z, num_steps,
    diverging), chains on the leading axis: one compiled program (see the module docstring).
    `layout` = (num_chains, chain_method, max_tree_depth, num_warmup, num_samples)."""
    import numpyro.distributions as dist
    from numpyro.infer.hmc import hmc

    num_chains, chain_method, depth, num_warmup, num_samples = layout
    priors = dict(priors_items)
    fixed = dict(fixed_items)
    free = [n for n in NUISANCES if n not in fixed]
    nu_dist, nu_t = _nuisance_transforms(priors, free)
    px = priors["x"].numpyro()
    tx = dist.biject_to(px.support)
    pd = priors["diameter"].numpyro()

    def potential_gen(vals, data, model_error, tab, nu0):
        values = dict(zip(keys, vals, strict=True))

        def potential(z):
            lp = 0.0
            nu = dict(fixed)
            for n in free:
                nu[n] = nu_t[n](z[n])
                lp = lp + nu_dist[n].log_prob(nu[n]) + nu_t[n].log_abs_det_jacobian(z[n], nu[n])
            dnu = jnp.stack([nu[n] - nu0[i] for i, n in enumerate(free)]) if free else nu0
            ln_r, log_jac = _ln_r(z["p"], dnu, tab)
            k, scale = _ridge_point(ln_r, dnu, tab)
            lp = lp + log_jac + jnp.log(scale)  # Jacobians of p -> ln R and w -> y
            y = scale * z["w"] + k
            x = tx(y)
            lp = lp + px.log_prob(x) + tx.log_abs_det_jacobian(y, x)
            d = 2.0 * jnp.exp(ln_r)
            lp = lp + pd.log_prob(d) + jnp.log(d)  # size prior as a density in ln d
            pr = predict(values, jnp.exp(ln_r), x, *(nu[n] for n in _ORDER), config=config)
            lp = lp + _loglik_masked(pr, *data, model_error)
            return -lp

        return potential

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def one_chain(key, z0, inverse_mass_matrix, args):
        state = init_kernel(
            z0,
            num_warmup=num_warmup,
            inverse_mass_matrix=inverse_mass_matrix,
            find_heuristic_step_size=True,
            dense_mass=True,
            target_accept_prob=0.9,
            max_tree_depth=depth,
            model_args=args,
            rng_key=key,
        )

        def warm(st, _):
            st = sample_kernel(st, model_args=args)
            return st, st.num_steps

        def draw(st, _):
            st = sample_kernel(st, model_args=args)
            return st, (st.z, st.num_steps, st.diverging)

        state, steps_warmup = jax.lax.scan(warm, state, None, length=num_warmup)
        _, (z, steps, diverging) = jax.lax.scan(draw, state, None, length=num_samples)
        return steps_warmup, z, steps, diverging

    if chain_method == "vectorized":
        return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None, None)))
    if chain_method != "sequential":
        raise ValueError(f"chain_method must be 'sequential' or 'vectorized', not {chain_method!r}")
    run1 = jax.jit(one_chain)

    def run(rng_keys, z0, inverse_mass_matrix, args):
        out = [
            run1(rng_keys[i], jax.tree.map(lambda a, i=i: a[i], z0), inverse_mass_matrix, args)
            for i in range(num_chains)
        ]
        return jax.tree.map(lambda *a: jnp.stack(a), *out)

    return run


def _tables(system, priors, fixed, data, model_error, r_nodes, config, free):
    """The ridge's tables as the sampler's argument: (u0, h, x_r0, dE/dx, g, H (cubic-spline
    coefficients over ln R, x normalised to the prior's support), sigma_E, wall c0, stretch
    delta, ridge slope at the wall, wall on/off, C of the stretch). Past the ends of the ridge
    (no x reaches the measured energy) x_r0 runs on linearly with the slope of its last three
    nodes and the other tables stay at their last values, so x_r0 crosses 0 (or 1) smoothly at
    the wall c0."""
    x_lo, x_hi = max(priors["x"].support[0], 0.0), min(priors["x"].support[1], 1.0)
    span = x_hi - x_lo
    n_r, n_free = r_nodes.size, len(free)
    h = float(r_nodes[1] - r_nodes[0])
    wall = (float(np.mean(r_nodes)), _SPREAD / 2, 1.0, 0.0)  # no wall: G' from 1 to 2, ~linear
    if "energy_eV" in data:
        sig = math.hypot(data["energy_eV"][1], model_error["energy_eV"])
        x_ridge = ridge(system, priors, fixed, data["energy_eV"][0], r_nodes, config)
        g, H, e_x = ridge_taylor(system, priors, fixed, x_ridge, r_nodes, config)
        ok = (
            (x_ridge > x_lo + 1e-4 * span)
            & (x_ridge < x_hi - 1e-4 * span)
            & np.isfinite(e_x)
            & (e_x > 0)
            & np.all(np.isfinite(g), axis=0)
            & np.all(np.isfinite(H), axis=(0, 1))
        )
        if ok.sum() < 4:
            raise ValueError("the measured energy's ridge crosses fewer than 4 ln R nodes")
        # the longest run of nodes with the ridge inside the interval (near the bound-state
        # threshold at the smallest sizes a few isolated nodes can cross too)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
        starts, stops = edges[::2], edges[1::2]
        longest = np.argmax(stops - starts)
        i0, i1 = starts[longest], stops[longest] - 1
        ok[:] = False
        ok[i0 : i1 + 1] = True
        xn = (x_ridge - x_lo) / span
        slope_lo = np.polyfit(r_nodes[i0 : i0 + 3], xn[i0 : i0 + 3], 1)[0]
        slope_hi = np.polyfit(r_nodes[i1 - 2 : i1 + 1], xn[i1 - 2 : i1 + 1], 1)[0]
        xn[:i0] = xn[i0] + slope_lo * (r_nodes[:i0] - r_nodes[i0])
        xn[i1 + 1 :] = xn[i1] + slope_hi * (r_nodes[i1 + 1 :] - r_nodes[i1])
        ex = _fill(e_x, ok) * span
        g, H = _fill(g, ok) / span, _fill(H, ok) / span
        walls = []  # (log density of the size prior there, c0, delta, slope, on)
        for cut, i, j, sl, edge in (
            (i0 > 0, i0, i0 - 1, slope_lo, 0.0),
            (i1 < n_r - 1, i1, i1 + 1, slope_hi, 1.0),
        ):
            if not (cut and sl > 0):
                continue
            if abs(x_ridge[j] - (x_lo + edge * span)) <= 1e-4 * span:
                # the ridge leaves the interval: the wall where x_r crosses its end; delta twice
                # the wall's width in ln R
                c0, delta, on = r_nodes[i] + (edge - xn[i]) / sl, 2 * sig / ex[i] / sl, 1.0
            else:
                # the ridge ends inside the interval where the state unbinds (the energy's
                # derivatives fail at the next node): a hard edge, between the nodes
                c0, delta, on = 0.5 * (r_nodes[i] + r_nodes[j]), max(2 * sig / ex[i] / sl, h), 0.0
            d = 2 * math.exp(c0)
            walls.append((priors["diameter"].logpdf(d) + math.log(d), c0, delta, sl, on))
        if walls:
            wall = max(walls)[1:]
    else:
        sig = 1.0
        xn = np.full(n_r, (float(priors["x"].ppf(0.5)) - x_lo) / span)
        ex = np.zeros(n_r)
        g, H = np.zeros((n_free, n_r)), np.zeros((n_free, n_free, n_r))
    g, H = g.reshape(n_free, n_r), H.reshape(n_free, n_free, n_r)
    with float64():
        return tuple(
            jnp.asarray(a, dtype=jnp.float64)
            for a in (
                r_nodes[0],
                h,
                _spline(r_nodes, xn),
                _spline(r_nodes, ex),
                _spline(r_nodes, g),
                _spline(r_nodes, H),
                sig,
                *wall,
                max(_SPREAD / wall[1], 2.0),
            )
        )


def run_nuts(
    system,
    priors,
    data,
    model_error,
    config,
    *,
    fixed=None,
    num_warmup=300,
    num_samples=500,
    num_chains=4,
    seed=0,
    progress=False,
    n_init=1024,
    chain_method="sequential",
    max_tree_depth=7,
    n_quad=NUTS_N_QUAD,
):
    """Sample the posterior; returns (draws dict, diagnostics dict).

    `data`: name -> (value, sigma) with the lifetime already divided by the quantum yield.
    Chains start from the best `num_chains` of `n_init` draws (x and the nuisances from their
    priors, ln R uniform over the size prior's 99.9 % range, half of them put on the first-order
    ridge). `n_quad`: quadrature order of the sampler's forward model (at most the config's).
    `progress` is accepted for the API and ignored (the chains run as one compiled program).
    """
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

    del progress
    config = config._replace(n_quad=min(config.n_quad, n_quad))
    fixed = dict(fixed or {})
    keys = tuple(system.values)
    free = [n for n in NUISANCES if n not in fixed]
    nom = _nominal(priors, fixed)
    to_y, to_x = _x_transform(priors)
    d_lo, d_hi = priors["diameter"].interval(0.999)
    ln_r_range = np.log([max(d_lo, 0.2) / 2, d_hi / 2])
    r_nodes = np.linspace(*ln_r_range, _N_NODES)
    x_lo, x_hi = max(priors["x"].support[0], 0.0), min(priors["x"].support[1], 1.0)
    t0 = time.perf_counter()
    tab = _tables(system, priors, fixed, data, model_error, r_nodes, config, free)

    def offsets(nu, size):
        """dnu (free, points) of arrays of nuisance values (also with every nuisance fixed)."""
        rows = [np.asarray(nu[n], dtype=float).reshape(-1) - nom[n] for n in free]
        return jnp.asarray(np.stack(rows) if rows else np.zeros((0, size)), dtype=jnp.float64)

    def coords(u_or_p, nu, from_p):
        """(ln R, k, s) at p (from_p) or at ln R, for arrays of points (numpy in and out)."""
        with float64():
            v = jnp.asarray(u_or_p, dtype=jnp.float64).reshape(-1)
            dnu = offsets(nu, v.size)
            u = _ln_r(v, dnu, tab)[0] if from_p else v
            k, sc = _ridge_point(u, dnu, tab)
            return np.asarray(u), np.asarray(k), np.asarray(sc)

    # start points: the best of n_init draws
    rng = np.random.default_rng(seed)
    init = {
        "ln_r": rng.uniform(*ln_r_range, n_init),
        "x": rng.uniform(x_lo, x_hi, n_init),
    }
    for n in NUISANCES:
        init[n] = np.full(n_init, fixed[n]) if n in fixed else priors[n].ppf(rng.random(n_init))
    if "energy_eV" in data:  # half of them on the ridge
        half = n_init // 2
        _, k_half, _ = coords(init["ln_r"][:half], {n: init[n][:half] for n in free}, False)
        init["x"][:half] = to_x(k_half)
    radius = np.exp(init["ln_r"])
    pred = predict_batch(system, radius, init["x"], *(init[k] for k in _ORDER), config=config)
    with float64():
        ll0 = np.asarray(_loglik(pred, data, model_error))
    lp0 = ll0 + priors["diameter"].logpdf(2 * radius) + np.log(2 * radius)
    lp0 += sum(priors[n].logpdf(init[n]) for n in free)
    order = np.argsort(-np.where(np.isfinite(lp0), lp0, -np.inf))
    if not np.isfinite(lp0[order[0]]):
        raise ValueError("no prior draw reproduces the measurements: nothing to start NUTS from")
    starts = order[:num_chains]
    t_setup = time.perf_counter() - t0

    layout = (num_chains, chain_method, max_tree_depth, num_warmup, num_samples)
    run = _sampler(
        keys,
        config,
        tuple(sorted(priors.items())),
        tuple(sorted(fixed.items())),
        layout,
    )
    _, nu_t = _nuisance_transforms(priors, free)
    with float64():
        st = {k: init[k][starts] for k in ("ln_r", "x", *free)}
        _, k0, s0 = coords(st["ln_r"], st, False)
        dnu0 = offsets(st, num_chains)
        p0 = _p_of(st["ln_r"], dnu0, tab)
        z0 = {"p": p0, "w": (to_y(st["x"]) - k0) / s0}
        z0.update({n: nu_t[n].inv(st[n]) for n in free})
        z0 = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in z0.items()}
        args = (
            jnp.asarray([system.values[k] for k in keys], dtype=jnp.float64),
            (
                jnp.asarray([float(data[q][0]) if q in data else 1.0 for q in _QUANTITIES]),
                jnp.asarray([float(data[q][1]) if q in data else 1.0 for q in _QUANTITIES]),
                jnp.asarray([1.0 if q in data else 0.0 for q in _QUANTITIES]),
            ),
            {k: jnp.asarray(float(v)) for k, v in model_error.items()},
            tab,
            jnp.asarray([nom[n] for n in free]),
        )
        rng_keys = jax.random.split(jax.random.PRNGKey(seed), num_chains)
        # initial (diagonal) inverse mass matrix, in the order of jax's flattening of z (sorted
        # names): the prior's spread of each unconstrained nuisance, 0.3 in ln R, and for w the
        # energy's total error over dE/dy at the start points (the ridge's width)
        # energy's total error over dE/dy at the start points (the ridge's width); p: its spread
        # over the best eighth of the start draws
        best = order[: max(num_chains, n_init // 8)]
        dnu_b = offsets({n: init[n][best] for n in free}, best.size)
        p_b = _p_of(init["ln_r"][best], dnu_b, tab)
        var = {"p": max(float(np.var(p_b)), 1e-4)}
        u = rng.uniform(0.001, 0.999, 512)
        var.update({n: float(np.var(np.asarray(nu_t[n].inv(priors[n].ppf(u))))) for n in free})
        var["w"] = 1.0 if "energy_eV" in data else float(np.var(to_y(priors["x"].ppf(u))))
        imm = jnp.asarray([var[k] for k in sorted(z0)], dtype=jnp.float64)
        t1 = time.perf_counter()
        steps_warmup, z, steps, diverging = jax.device_get(run(rng_keys, z0, imm, args))
        t_run = time.perf_counter() - t1
        grouped = {n: np.asarray(nu_t[n](z[n])) for n in free}
    u, k, sc = coords(z["p"], grouped, True)
    grouped["radius"] = np.exp(u).reshape(z["p"].shape)
    grouped["x"] = to_x(k.reshape(z["p"].shape) + sc.reshape(z["p"].shape) * z["w"])
    names = ["radius", "x", *free]
    diag = {
        "r_hat": {n: float(split_gelman_rubin(grouped[n])) for n in names},
        "ess": {n: float(effective_sample_size(grouped[n])) for n in names},
        "divergences": int(np.sum(diverging)),
        "num_chains": num_chains,
        "num_samples": num_samples,
        "num_warmup": num_warmup,
        "chain_method": chain_method,
        "n_quad": config.n_quad,
        "setup_s": t_setup,
        "sampling_s": t_run,  # warm-up + draws (+ compilation on a layout's first use)
        "mean_steps_warmup": float(np.mean(steps_warmup)),
        "mean_steps": float(np.mean(steps)),
        "max_tree_depth_hits": float(np.mean(steps >= 2**max_tree_depth - 1)),
    }
    draws = {n: grouped[n].reshape(-1) for n in names}
    for n in fixed:
        draws[n] = np.full(draws["x"].size, fixed[n])
    return draws, diag
