"""NUTS engine: the continuous posterior with every nuisance free, through the differentiable
JAX forward model (numpyro's NUTS; gradients through the well root and the lambda optimum by
implicit differentiation, qdsim.model).

Why numpyro and not blackjax: numpyro's NUTS comes with the warm-up (step size and dense mass
matrix adaptation), constrained-support transforms for every prior kind used here (truncated
normal, lognormal, uniform), vectorised chains and the split-R-hat / ESS diagnostics in one
maintained package; blackjax would need each of those assembled by hand.

Geometry: a measured energy confines the posterior to a thin curved ridge in (ln R, x) (0.5 meV
against ~1 eV of range in x). The sampler works in (x, s) with ln R = s + h(x), h the ridge of
the measured energy at the nuisances' prior medians (found by bisection before sampling). The
shear has unit Jacobian, so the posterior is unchanged; the ridge becomes nearly straight (s ~ 0),
and the dense mass matrix absorbs what the nuisances move.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from qdsim._x64 import float64
from qdsim.placement.forward import predict, predict_batch
from qdsim.placement.priors import NUISANCES

__all__ = ["run_nuts"]


def _nominal(priors, fixed):
    out = {}
    for n in NUISANCES:
        if n in fixed:
            out[n] = fixed[n]
        else:
            out[n] = float(priors[n].ppf(0.5))
    return out


def ridge(system, priors, fixed, energy_eV, r_range, x_nodes, config):
    """ln R (nm) at which the bright energy equals `energy_eV` for each x node, nuisances at
    their prior medians; clamped to `r_range` where no radius reaches it."""
    nom = _nominal(priors, fixed)
    lo = np.full(x_nodes.size, math.log(r_range[0]))
    hi = np.full(x_nodes.size, math.log(r_range[1]))
    for _ in range(48):
        mid = 0.5 * (lo + hi)
        e = predict_batch(
            system,
            np.exp(mid),
            x_nodes,
            nom["f_v"],
            nom["bowing_Eg"],
            nom["mass_ratio"],
            nom["dSR"],
            nom["hwLT"],
            config,
        ).energy_eV
        above = ~(e <= energy_eV)  # NaN (no bound state: too small) counts as above
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return 0.5 * (lo + hi)


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
):
    """Sample the posterior; returns (draws dict, diagnostics dict).

    `data`: name -> (value, sigma) with the lifetime already divided by the quantum yield.
    Chains start from the best of `n_init` draws from a widened prior (distinct per chain).
    """
    import numpyro
    import numpyro.distributions as dist
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
    from numpyro.infer import MCMC, NUTS, init_to_value
    from numpyro.infer.util import unconstrain_fn

    fixed = dict(fixed or {})
    keys = tuple(system.values)
    free = [n for n in NUISANCES if n not in fixed]
    d_lo, d_hi = priors["diameter"].interval(0.999)
    r_range = (max(d_lo, 0.2) / 2, d_hi / 2)
    x_lo, x_hi = priors["x"].support
    x_lo, x_hi = max(x_lo, 0.0), min(x_hi, 1.0)
    x_nodes = np.linspace(x_lo, x_hi, 41)
    t0 = time.perf_counter()
    if "energy_eV" in data:
        h_nodes = ridge(system, priors, fixed, data["energy_eV"][0], r_range, x_nodes, config)
    else:
        h_nodes = np.full(x_nodes.size, math.log(float(priors["diameter"].ppf(0.5)) / 2))
    # initial points: the best of n_init draws (radius log-uniform over the prior range)
    rng = np.random.default_rng(seed)
    init = {
        "x": rng.uniform(x_lo, x_hi, n_init),
        "radius": np.exp(rng.uniform(*np.log(r_range), n_init)),
    }
    if "energy_eV" in data:  # half of them on the ridge
        half = n_init // 2
        init["radius"][:half] = np.exp(np.interp(init["x"][:half], x_nodes, h_nodes))
    for n in NUISANCES:
        init[n] = np.full(n_init, fixed[n]) if n in fixed else priors[n].ppf(rng.random(n_init))
    pred = predict_batch(system, *(init[k] for k in ("radius", "x", *_ORDER)), config=config)
    with float64():
        ll0 = np.asarray(_loglik(pred, data, model_error))
    lp0 = ll0 + priors["diameter"].logpdf(2 * init["radius"]) + np.log(2 * init["radius"])
    lp0 += sum(priors[n].logpdf(init[n]) for n in free)
    order = np.argsort(-np.where(np.isfinite(lp0), lp0, -np.inf))
    if not np.isfinite(lp0[order[0]]):
        raise ValueError("no prior draw reproduces the measurements: nothing to start NUTS from")
    starts = [int(i) for i in order[:num_chains]]
    t_setup = time.perf_counter() - t0

    h_x = jnp.asarray(x_nodes)
    h_y = jnp.asarray(h_nodes)
    pd = priors["diameter"].numpyro()
    px = priors["x"].numpyro()

    def model(vals):
        values = dict(zip(keys, vals, strict=True))
        x = numpyro.sample("x", px)
        s = numpyro.sample("s", dist.ImproperUniform(dist.constraints.real, (), ()))
        ln_r = s + jnp.interp(x, h_x, h_y)
        d = 2.0 * jnp.exp(ln_r)
        numpyro.factor("size_prior", pd.log_prob(d) + jnp.log(d))  # density in ln d
        nu = {
            n: (fixed[n] if n in fixed else numpyro.sample(n, priors[n].numpyro()))
            for n in NUISANCES
        }
        pr = predict(values, jnp.exp(ln_r), x, *(nu[n] for n in _ORDER), config=config)
        numpyro.deterministic("radius", jnp.exp(ln_r))
        numpyro.factor("likelihood", _loglik(pr, data, model_error))

    with float64():
        vals = jnp.asarray([system.values[k] for k in keys], dtype=jnp.float64)
        inits, constrained = [], []
        for i in starts:
            v = {
                "x": init["x"][i],
                "s": math.log(init["radius"][i]) - np.interp(init["x"][i], x_nodes, h_nodes),
            }
            v.update({n: init[n][i] for n in free})
            constrained.append({k: jnp.asarray(a) for k, a in v.items()})
            inits.append(unconstrain_fn(model, (vals,), {}, constrained[-1]))
        if num_chains == 1:
            init_params = inits[0]
        else:
            init_params = jax.tree.map(lambda *a: jnp.stack(a), *inits)
        kernel = NUTS(
            model,
            dense_mass=True,
            target_accept_prob=0.9,
            max_tree_depth=7,
            init_strategy=init_to_value(values=constrained[0]),
        )
        mcmc = MCMC(
            kernel,
            num_warmup=num_warmup,
            num_samples=num_samples,
            num_chains=num_chains,
            chain_method="sequential",
            progress_bar=bool(progress),
        )
        t1 = time.perf_counter()
        mcmc.run(
            jax.random.PRNGKey(seed), vals, init_params=init_params, extra_fields=("diverging",)
        )
        grouped = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        diverging = np.asarray(mcmc.get_extra_fields()["diverging"])
    t_sample = time.perf_counter() - t1
    names = ["radius", "x", *free]
    diag = {
        "r_hat": {n: float(split_gelman_rubin(grouped[n])) for n in names},
        "ess": {n: float(effective_sample_size(grouped[n])) for n in names},
        "divergences": int(diverging.sum()),
        "num_chains": num_chains,
        "num_samples": num_samples,
        "num_warmup": num_warmup,
        "setup_s": t_setup,
        "sampling_s": t_sample,
    }
    draws = {n: grouped[n].reshape(-1) for n in names}
    for n in fixed:
        draws[n] = np.full(draws["x"].size, fixed[n])
    return draws, diag


#: argument order of `predict` after (radius, x)
_ORDER = ("f_v", "bowing_Eg", "mass_ratio", "dSR", "hwLT")
