"""Starting guess for the optimal correlation length lambda* of the exciton ansatz.

Only the number of Newton steps depends on it: the optimum itself is found to `lam_tol` from any
start inside the search interval (a test perturbs the guess and gets the same solution). One
Newton step squares the error in log(lambda) (times ~1.6, measured), so a guess within ~1 % lets
most points stop after two lambda evaluations instead of three or four.

log(lambda*/a_B) = F(R/a_B) + P(log(R/a_B), u_e, u_h):

- F: the impenetrable sphere (m_e = m_h, product ansatz), lambda*/a_B = 1 + 1.0077 (1 + d x) /
  (1 + a x + b x^2 + c x^3), x = R/a_B: 2.0077 as R -> 0 (physics.md C.2), 1 in the bulk; fitted
  to this model's own optimum on x = 0.01-30 (largest error 0.0018 in log lambda).
- P: the correction for carriers that leak into the matrix, a polynomial symmetric in
  u_i = 1/(1 + kappa_i R) (0 for an impenetrable barrier; -> 1 at a binding threshold), up to
  cubic, times 1, L, L^2 with L = log(R/a_B) clipped to the fitted range. Fitted by least squares
  to the converged lambda* of `phase_diagram` for the default materials with f_v = 0.2, 0.5, 0.8
  and mass_ratio = 0.4, 1, 2.5 over R = 1.2-10 nm, x = 0-1 (70,000 solved points): error in log
  lambda median 0.0015, 90 % 0.005, 99 % 0.02, largest 0.08 (fitted on four of these systems, it
  predicts the other five to median 0.0016, 99 % 0.035). Regenerate with
  `python benchmarks/fit_lambda_guess.py`.

The old guess (1 + 1/(1 + 0.5 x^1.5) with x widened by the leakage) was off by median 0.017 and up
to 0.54 in log lambda.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["leakage", "log_lambda_guess"]

# F(x) = log(1 + 1.0077 (1 + d x) / (1 + a x + b x^2 + c x^3)): (a, b, c, d)
_F = (0.5400330341319791, 0.09128251012595522, 0.08772167023928228, 0.22034512479626314)
# (i, j, k, coefficient) of (u_e^i u_h^j + u_e^j u_h^i [i != j]) L^k
_P = (
    (1, 0, 0, -0.06775794793926153),
    (1, 0, 1, -0.15371743971721089),
    (1, 0, 2, 0.018960043927590486),
    (1, 1, 0, 0.9212492101487016),
    (1, 1, 1, -0.5806519331554632),
    (1, 1, 2, -0.24992625924987355),
    (2, 0, 0, -1.0099013976667235),
    (2, 0, 1, 0.9194049063645283),
    (2, 0, 2, 0.07693814290096172),
    (2, 1, 0, -0.13992567621704657),
    (2, 1, 1, -0.0648768644340784),
    (2, 1, 2, 0.2259571828353555),
    (3, 0, 0, 0.5068000061978825),
    (3, 0, 1, -0.2825255913426548),
    (3, 0, 2, -0.20834306000771263),
)
#: Range of R/a_B the correction was fitted on (L is clipped to it).
_X_FIT = (0.218, 2.563)


def impenetrable_ratio(x):
    """lambda*/a_B of the impenetrable sphere (m_e = m_h) at x = R/a_B (fit, see module doc)."""
    a, b, c, d = _F
    return 1.0 + 1.0077 * (1.0 + d * x) / (1.0 + x * (a + x * (b + x * c)))


def leakage(st, R):
    """u = 1/(1 + kappa R) of a `WellState` at radius R (nm): -> 1 at a binding threshold,
    0 for an impenetrable barrier (no exterior amplitude)."""
    return jnp.where(st.amp_out > 0, 1.0 / (1.0 + st.kappa_nm * R), 0.0)


def log_lambda_guess(x, u_e, u_h):
    """Guess of log(lambda*/a_B) at x = R/a_B, u_i = 1/(1 + kappa_i R) (0: no leakage)."""
    L = jnp.log(jnp.clip(x, *_X_FIT))
    corr = jnp.zeros_like(L)
    for i, j, k, c in _P:
        sym = u_e**i * u_h**j + (u_e**j * u_h**i if i != j else 0.0)
        corr = corr + c * sym * L**k
    return jnp.log(impenetrable_ratio(x)) + corr
