"""The forward model as placement sees it: (radius, x, nuisances) -> measurable quantities.

Two views of the same `qdsim.model` kernel:

- `predict(...)`: one dot, traceable (jit / vmap / grad; the NUTS engine and the simulations of
  the calibration tests). Exchange constants are the nuisances `dSR` and `hwLT` (eV), taken equal
  at both end members of the alloy (as in the default materials file).
- `exchange_coefficients(...)`: the exchange-free solution on a grid is turned into the
  coefficients of the two linear maps the exchange constants enter through (physics.md B.4-B.5):
  Delta_DB = dSR * A + hwLT * B and radiative rate = G * E_bright^3 * hwLT. The grid engine
  solves the exciton once per (radius, x, f_v, bowing, mass ratio) and applies any number of
  exchange draws exactly, with the model's own formulas (`qdsim.model.exchange`).

Units: nm, eV, s.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from qdsim.materials.loader import alloy_params
from qdsim.model import exchange
from qdsim.model.solve import _kernel_unjitted
from qdsim.model.types import SolverConfig
from qdsim.status import FAILURE_MASK

__all__ = ["Prediction", "exchange_coefficients", "predict", "predict_batch"]


class Prediction(NamedTuple):
    """Model outputs a measurement is compared with (failed points: NaN, `ok` False)."""

    energy_eV: jax.Array  # bright (emission) energy
    dark_bright_eV: jax.Array
    lifetime_s: jax.Array  # radiative lifetime of one bright component
    status: jax.Array
    ok: jax.Array


def _sphere_params(values, x, f_v, bowing_Eg, mass_ratio, dSR, hwLT):
    p = alloy_params(values, x, f_v, bowing_Eg, mass_ratio)
    zero = 0.0 * p.Eg_eV
    return p._replace(dSR_eV=dSR + zero, hwLT_eV=hwLT + zero)


def predict(values, radius_nm, x, f_v, bowing_Eg, mass_ratio, dSR, hwLT, config=SolverConfig()):
    """`Prediction` of one dot (traceable; `values`: a `System.values` mapping of floats or
    JAX scalars). Radius in nm, exchange constants in eV."""
    p = _sphere_params(values, x, f_v, bowing_Eg, mass_ratio, dSR, hwLT)
    s = _kernel_unjitted(p, radius_nm, config)
    ok = (s.status & FAILURE_MASK) == 0
    return Prediction(s.bright_energy_eV, s.dark_bright_eV, s.radiative_lifetime_s, s.status, ok)


@functools.partial(jax.jit, static_argnames=("keys", "config"))
def _predict_batch(vals, radius_nm, x, f_v, bowing_Eg, mass_ratio, dSR, hwLT, *, keys, config):
    values = dict(zip(keys, vals, strict=True))
    return jax.vmap(lambda *a: predict(values, *a, config=config))(
        radius_nm, x, f_v, bowing_Eg, mass_ratio, dSR, hwLT
    )


def predict_batch(system, radius_nm, x, f_v, bowing_Eg, mass_ratio, dSR, hwLT, config=None):
    """`predict` over 1-D arrays of equal length (NumPy in, NumPy out, float64)."""
    import numpy as np

    from qdsim._x64 import float64

    config = config or SolverConfig()
    keys = tuple(system.values)
    args = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (radius_nm, x, f_v, bowing_Eg, mass_ratio, dSR, hwLT))
    )
    with float64():
        vals = jnp.asarray([system.values[k] for k in keys], dtype=jnp.float64)
        out = _predict_batch(
            vals, *(jnp.asarray(a.ravel()) for a in args), keys=keys, config=config
        )
        return Prediction(*(np.asarray(v).reshape(args[0].shape) for v in out))


def exchange_coefficients(p, radius_nm, contact_density_nm3, overlap2):
    """(A, B, G) with Delta_DB = dSR A + hwLT B (eV) and rate = G E_bright^3 hwLT (1/s; E in
    eV): the exact linear maps of `qdsim.model.exchange` at fixed exciton (any array shapes that
    broadcast; `p` a `SphereParams`). Evaluated in float64."""
    from qdsim._x64 import float64

    mu = p.me_in * p.mh_in / (p.me_in + p.mh_in)
    args = (contact_density_nm3, overlap2, radius_nm, p.eps, mu)
    with float64():
        A = exchange.fine_structure(*args, 1.0, 0.0, p.eps_bg_in, p.eps_bg_out).dark_bright_eV
        B = exchange.fine_structure(*args, 0.0, 1.0, p.eps_bg_in, p.eps_bg_out).dark_bright_eV
        G = exchange.radiative_rate(1.0, overlap2, p.eps, mu, 1.0, p.eps_bg_in, p.eps_bg_out)
        return tuple(jax.device_get(v) for v in (A, B, G))
