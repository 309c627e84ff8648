"""Refit the starting guess of lambda* (`qdsim/model/_lambda_guess.py`) from the model's optima.

Run by hand:  python benchmarks/fit_lambda_guess.py   (about 15 s on 2 cores)

1. F(x): lambda*/a_B of the impenetrable sphere (m_e = m_h) on x = R/a_B = 0.01-30, fitted as
   1 + 1.0077 (1 + d x) / (1 + a x + b x^2 + c x^3) in log lambda.
2. P: the leakage correction, linear least squares over the basis
   (u_e^i u_h^j + u_e^j u_h^i) L^k (1 <= i + j <= 3, k <= 2), u = 1/(1 + kappa R), L = log(R/a_B),
   on the converged lambda* of `phase_diagram` (default materials, f_v = 0.2, 0.5, 0.8,
   mass_ratio = 0.4, 1, 2.5, R = 1.2-10 nm, x = 0-1).
Prints the residuals (fit on all systems; and a fit on half of them predicting the rest) and the
coefficient block to paste into `_lambda_guess.py`. The guess only changes how many Newton steps a
point takes, never the converged result.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import least_squares

import qdsim
from qdsim.constants import BOHR_nm
from qdsim.materials.loader import alloy_params
from qdsim.model import well
from qdsim.model._lambda_guess import leakage


def _features(values, R, x, f_v, bowing, mass_ratio):
    p = alloy_params(values, x, f_v, bowing, mass_ratio)
    e = well.ground_state(p.me_in, p.me_out, p.dEc_eV, R)
    h = well.ground_state(p.mh_in, p.mh_out, p.dEv_eV, R)
    aB = BOHR_nm * p.eps / (p.me_in * p.mh_in / (p.me_in + p.mh_in))
    return jnp.stack([R / aB, leakage(e, R), leakage(h, R), aB])


def _basis(L, u_e, u_h):
    terms, cols = [], []
    for i, j, k in itertools.product(range(4), range(4), range(3)):
        if 1 <= i + j <= 3 and i >= j:
            terms.append((i, j, k))
            cols.append((u_e**i * u_h**j + (u_e**j * u_h**i if i != j else 0.0)) * L**k)
    return terms, np.column_stack(cols)


def _F(p, x):
    a, b, c, d = p
    return np.log1p(1.0077 * (1 + d * x) / (1 + a * x + b * x**2 + c * x**3))


def main() -> None:
    # 1. impenetrable sphere
    xs = np.geomspace(0.01, 30.0, 60)
    p_inf = qdsim.SphereParams(1.7, 0.2, 0.2, 0.2, 0.2, 9.0, math.inf, math.inf)
    ab = float(qdsim.bohr_star_nm(p_inf))
    lam = np.asarray(qdsim.solve_sphere(p_inf, xs * ab).lam_nm) / ab
    fit = least_squares(lambda p: _F(p, xs) - np.log(lam), [0.5, 0.1, 0.1, 0.2], bounds=(0, np.inf))
    pF = fit.x
    print(f"F: largest error in log lambda {np.abs(fit.fun).max():.2g}")

    # 2. leaky carriers
    system = qdsim.load_system()
    with qdsim.float64():
        values = {k: jnp.asarray(v) for k, v in system.values.items()}
        feats = jax.jit(jax.vmap(_features, in_axes=(None, 0, 0, None, None, None)))
        R, X = np.linspace(1.2, 10.0, 96), np.linspace(0.0, 1.0, 96)
        RR, XX = (m.ravel() for m in np.meshgrid(R, X, indexing="ij"))
        rows, sysid = [], []
        for f_v in (0.2, 0.5, 0.8):
            for mr in (0.4, 1.0, 2.5):
                ds = qdsim.phase_diagram(R, X, f_v=f_v, mass_ratio=mr)
                bowing = system.values["bowing.Eg"]
                F = np.asarray(feats(values, jnp.asarray(RR), jnp.asarray(XX), f_v, bowing, mr))
                lam_nm = ds.lam.values.ravel()
                ok = np.isfinite(lam_nm)
                rows.append(np.column_stack([F, lam_nm])[ok])
                sysid.append(np.full(ok.sum(), f_v != 0.5 and mr != 0.4))
    D, half = np.concatenate(rows), np.concatenate(sysid)
    x, u_e, u_h, aB, lam_nm = D.T
    y = np.log(lam_nm / aB) - _F(pF, x)
    terms, B = _basis(np.log(x), u_e, u_h)
    coef = np.linalg.lstsq(B, y, rcond=None)[0]
    q = [0.5, 0.9, 0.99, 1.0]
    print("all systems, |error| in log lambda at", q, np.quantile(np.abs(B @ coef - y), q).round(4))
    c_half = np.linalg.lstsq(B[half], y[half], rcond=None)[0]
    err = np.abs(B[~half] @ c_half - y[~half])
    print("fit on 4 systems, the other 5:", np.quantile(err, q).round(4))
    print(f"R/a_B range {x.min():.3f}-{x.max():.3f}")
    print("_F =", tuple(float(v) for v in pF))
    print("_P = (")
    for (i, j, k), c in zip(terms, coef, strict=True):
        print(f"    ({i}, {j}, {k}, {float(c)!r}),")
    print(")")


if __name__ == "__main__":
    main()
