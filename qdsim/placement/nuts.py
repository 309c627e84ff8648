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
with x (the gap). The sampler works in (ln R, w, nuisances) with

    y = s(ln R) w + k(ln R) + sum_k g_k(ln R) dnu_k + 1/2 sum_kl H_kl(ln R) dnu_k dnu_l,

y the unconstrained coordinate of x (logit of its uniform prior's interval), k the ridge of the
measured energy at the nuisances' prior medians nu_0 (bracketing search), g and H its first and
second derivatives in the nuisances (implicit function theorem on central differences of the
energy), dnu = nu - nu_0, and s = 1/sqrt((dE/dy / sigma_E)^2 + 1) the ridge's width in y (sigma_E:
measurement and model error in quadrature), capped at 1 where the energy hardly depends on x (near
x = 0 or 1 the logit makes dE/dy vanish: without s the ridge's width would grow there into a
funnel). The map (ln R, w, nu) -> (ln R, y, nu) is triangular with Jacobian s(ln R), added to
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


def ridge_taylor(system, priors, fixed, y_nodes, ln_r_nodes, config):
    """Second-order Taylor coefficients of the ridge y = r(ln R, nu) (y: x's unconstrained
    coordinate) about the nuisances' prior medians: (g, H), g[k, j] = dr/d nu_k, H[k, l, j] =
    d2r/d nu_k d nu_l at ln R node j, from central differences of the energy and the implicit
    function theorem (r_k = -E_k/E_y, r_kl = -(E_kl + E_ky r_l + E_ly r_k + E_yy r_k r_l)/E_y).
    Steps: 0.01 in y, 2 % of each prior's central 68 % width in the nuisances. Zero where not
    finite. Third output: dE/dy on the ridge (eV)."""
    free = [n for n in NUISANCES if n not in fixed]
    nom = _nominal(priors, fixed)
    _, to_x = _x_transform(priors)
    m = 1 + len(free)  # y, then the free nuisances
    step = np.asarray([1e-2, *(0.02 * float(np.diff(priors[n].interval(0.68))[0]) for n in free)])
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
    y = y_nodes[None, :] + off[:, :1]
    nu = {n: np.full((n_pt, n_r), nom[n]) for n in NUISANCES}
    for i, n in enumerate(free, start=1):
        nu[n] = nom[n] + off[:, i : i + 1] + 0 * y
    radius = np.broadcast_to(np.exp(ln_r_nodes), (n_pt, n_r))
    e = _batch(system, radius, to_x(y), nu, config).reshape(n_pt, n_r)
    grad = np.stack([(e[1 + 2 * i] - e[2 + 2 * i]) / (2 * step[i]) for i in range(m)])
    hess = np.empty((m, m, n_r))
    for i in range(m):
        hess[i, i] = (e[1 + 2 * i] - 2 * e[0] + e[2 + 2 * i]) / step[i] ** 2
    base = 1 + 2 * m
    for p, (i, j) in enumerate(pairs):
        pp, pm, mp, mm = e[base + 4 * p : base + 4 * p + 4]
        hess[i, j] = hess[j, i] = (pp - pm - mp + mm) / (4 * step[i] * step[j])
    e_y = grad[0]
    g = -grad[1:] / e_y
    e_ky = hess[1:, 0]  # (k, node)
    H = (
        -(
            hess[1:, 1:]
            + e_ky[:, None] * g[None, :]
            + e_ky[None, :] * g[:, None]
            + hess[0, 0] * g[:, None] * g[None, :]
        )
        / e_y
    )
    return np.where(np.isfinite(g), g, 0.0), np.where(np.isfinite(H), H, 0.0), e_y


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

    def potential_gen(vals, data, model_error, r_nodes, k_nodes, s_nodes, g_nodes, h_nodes, nu0):
        values = dict(zip(keys, vals, strict=True))

        def potential(z):
            ln_r = z["ln_r"]
            lp = 0.0
            nu = dict(fixed)
            for n in free:
                nu[n] = nu_t[n](z[n])
                lp = lp + nu_dist[n].log_prob(nu[n]) + nu_t[n].log_abs_det_jacobian(z[n], nu[n])
            dnu = [nu[n] - nu0[i] for i, n in enumerate(free)]
            scale = jnp.interp(ln_r, r_nodes, s_nodes)
            lp = lp + jnp.log(scale)  # Jacobian of w -> y
            y = scale * z["w"] + jnp.interp(ln_r, r_nodes, k_nodes)
            for i in range(len(free)):
                y = y + jnp.interp(ln_r, r_nodes, g_nodes[i]) * dnu[i]
                for j in range(len(free)):
                    y = y + 0.5 * jnp.interp(ln_r, r_nodes, h_nodes[i, j]) * dnu[i] * dnu[j]
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
    if "energy_eV" in data:
        x_ridge = ridge(system, priors, fixed, data["energy_eV"][0], r_nodes, config)
        # 1e-6 of the support inside its ends: a finite y where the ridge is clamped
        eps = 1e-6 * (x_hi - x_lo)
        k_nodes = to_y(np.clip(x_ridge, x_lo + eps, x_hi - eps))
        g_nodes, h_nodes, e_y = ridge_taylor(system, priors, fixed, k_nodes, r_nodes, config)
        clamped = (x_ridge <= x_lo + eps) | (x_ridge >= x_hi - eps)
        g_nodes[:, clamped] = 0.0  # no ridge there: a plain shift
        # the ridge's width in y, capped at the prior's unit scale where the energy hardly
        # depends on x (x -> 0 or 1: dE/dy = dE/dx x (1 - x))
        sig = math.hypot(data["energy_eV"][1], model_error["energy_eV"])
        s_nodes = 1.0 / np.sqrt((np.where(np.isfinite(e_y), e_y, 0.0) / sig) ** 2 + 1.0)
        h_nodes[:, :, clamped] = 0.0
    else:
        k_nodes = np.full(r_nodes.size, float(to_y(priors["x"].ppf(0.5))))
        s_nodes = np.ones(r_nodes.size)
        g_nodes = np.zeros((len(free), r_nodes.size))
        h_nodes = np.zeros((len(free), len(free), r_nodes.size))

    def y_of(ln_r, nu):
        dnu = [nu[n] - nom[n] for n in free]
        y = np.interp(ln_r, r_nodes, k_nodes)
        for i in range(len(free)):
            y = y + np.interp(ln_r, r_nodes, g_nodes[i]) * dnu[i]
            for j in range(len(free)):
                y = y + 0.5 * np.interp(ln_r, r_nodes, h_nodes[i, j]) * dnu[i] * dnu[j]
        return y

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
        init["x"][:half] = to_x(y_of(init["ln_r"][:half], {n: init[n][:half] for n in free}))
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
        w0 = (to_y(st["x"]) - y_of(st["ln_r"], st)) / np.interp(st["ln_r"], r_nodes, s_nodes)
        z0 = {"ln_r": st["ln_r"], "w": w0}
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
            jnp.asarray(r_nodes),
            jnp.asarray(k_nodes),
            jnp.asarray(s_nodes),
            jnp.asarray(g_nodes.reshape(len(free), r_nodes.size)),
            jnp.asarray(h_nodes.reshape(len(free), len(free), r_nodes.size)),
            jnp.asarray([nom[n] for n in free]),
        )
        rng_keys = jax.random.split(jax.random.PRNGKey(seed), num_chains)
        # initial (diagonal) inverse mass matrix, in the order of jax's flattening of z (sorted
        # names): the prior's spread of each unconstrained nuisance, 0.3 in ln R, and for w the
        # energy's total error over dE/dy at the start points (the ridge's width)
        var = {"ln_r": 0.3**2}
        u = rng.uniform(0.001, 0.999, 512)
        var.update({n: float(np.var(np.asarray(nu_t[n].inv(priors[n].ppf(u))))) for n in free})
        var["w"] = 1.0 if "energy_eV" in data else float(np.var(to_y(priors["x"].ppf(u))))
        imm = jnp.asarray([var[k] for k in sorted(z0)], dtype=jnp.float64)
        t1 = time.perf_counter()
        steps_warmup, z, steps, diverging = jax.device_get(run(rng_keys, z0, imm, args))
        t_run = time.perf_counter() - t1
        grouped = {n: np.asarray(nu_t[n](z[n])) for n in free}
    grouped["radius"] = np.exp(z["ln_r"])
    grouped["x"] = to_x(np.interp(z["ln_r"], r_nodes, s_nodes) * z["w"] + y_of(z["ln_r"], grouped))
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
