"""Correlated exciton ansatz (`SolverConfig(ansatz="correlated")`): a linear Rayleigh-Ritz
basis on top of the product ansatz of `qdsim.model.exciton`,

    Psi = Phi_e(r_e) Phi_h(r_h) G,   G = sum_k c_k r_e^m_k r_h^n_k exp(-r_eh / lambda_k),

with Phi_e, Phi_h the single-particle ground states (BenDaniel-Duke, finite barriers), the
lambdas a geometric ladder lambda* rho^j (j centred on 0) around the product optimum lambda*,
and m, n even powers up to 2 `corr_powers` in total. Outside the dot a carrier's factor is frozen
at its value at R (r -> min(r, R): continuous, so the trial function stays in H^1 and the
identity below holds): polynomials left to grow in the barrier change sign there, and at
NEAR_THRESHOLD points gave overlap^2 0.01-3x the product value (frozen: 0.87-1.37x).
The lowest eigenvalue of H c = E S c is a variational upper bound for every basis
(Rayleigh-Ritz), and it decreases monotonically as the basis grows (nested bases); K = 1
lambda with no powers is the product ansatz exactly.

Matrix elements, from the symmetrised identity used by the product ansatz (no Laplacian of the
trial function, exact with the mass jump at R because Phi_e, Phi_h are eigenstates):

    <Phi F|H|Phi G> = (E_e + E_h) <Phi^2 F G> + sum_carriers <Phi^2 c grad F . grad G>
                      - (e^2 / 4 pi eps0 eps) <Phi^2 F G / r_eh>,

with c = hbar^2 / 2 m(r) per carrier and region. For b = r_e^m r_h^n e^{-s/lambda} (s = r_eh),
grad_e b_i . grad_e b_j = b_i b_j [m_i m_j / r_e^2 + 1/(lambda_i lambda_j)
- (m_i/lambda_j + m_j/lambda_i) (r_e^2 - r_h^2 + s^2) / (2 r_e^2 s)] (the hole likewise; the
m terms only where the electron is inside, its factor being constant outside), so
every element is a 2-D moment sum_w r_e^p r_h^q K_k(beta) of the existing split quadrature with
the angular kernels K_k = int s^k e^{-beta s} ds, k = 0..2, at beta = 1/lambda_i + 1/lambda_j
(`exciton._kernels`, `exciton._mixed_sums`). Measured (benchmarks/correlated_ansatz.py) in the
impenetrable sphere with equal masses against physics.md C.2: a function of r_eh alone saturates
~0.012-0.014 Ry* above CI whatever the number of lambdas; the r_e^2, r_h^2 factors (radial
polarisation toward the centre) bring the default basis (3 lambdas, powers up to 2) to
0.002 Ry*, and powers up to 4 to 1e-4 Ry*.

Energy gradients: E = c^T H c / c^T S c with the eigenvector c held fixed (Hellmann-Feynman:
exact, since E is stationary in c), so jax.grad never differentiates the eigenvector for the
energy; the contact density and overlap^2 depend on c and differentiate through `eigh`. The
ladder follows lambda*, whose derivative is the product path's implicit one.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from qdsim.constants import E2_4PIEPS0_eV_nm
from qdsim.model import exciton
from qdsim.model.exciton import ExcitonState, _exterior, _u_in, _u_out
from qdsim.model.quadrature import gauss_legendre_01
from qdsim.model.well import WellState
from qdsim.status import Status

__all__ = ["basis_exponents", "correlated_energy", "improve"]

_FOUR_PI = 4.0 * np.pi


@functools.lru_cache(maxsize=16)
def basis_exponents(n_lambdas: int, n_powers: int) -> tuple[tuple[int, int, float], ...]:
    """Basis functions (m, n, j): r_e^m r_h^n exp(-r_eh / (lambda* rho^j)), m, n even,
    m + n <= 2 n_powers, j = -(K - 1)/2 .. (K - 1)/2. Ordered so that the first one is the
    product ansatz (0, 0, 0) when K is odd."""
    js = [j - (n_lambdas - 1) / 2.0 for j in range(n_lambdas)]
    js.sort(key=abs)
    pows = [(m, t - m) for t in range(0, 2 * n_powers + 1, 2) for m in range(t, -1, -2)]
    return tuple((m, n, j) for (m, n) in pows for j in js)


def _pair_table(basis):
    """Static bookkeeping: distinct ladder pairs (beta) and weights (p, q, g_e, g_h) needed:
    min(r_e, R)^p min(r_h, R)^q (the factors of G) times r_e^g_e r_h^g_h (geometry)."""
    js = sorted({b[2] for b in basis})
    jpairs = [(a, b) for a, b in itertools.combinations_with_replacement(js, 2)]
    pw = set()
    for (mi, ni, _), (mj, nj, _) in itertools.combinations_with_replacement(basis, 2):
        P, Q = mi + mj, ni + nj
        for pq in (
            (P, Q, 0, 0),
            (P - 2, Q, 0, 0),
            (P - 2, Q, 0, 2),
            (P, Q - 2, 0, 0),
            (P, Q - 2, 2, 0),
        ):
            if min(pq) >= 0:
                pw.add(pq)
    return js, jpairs, sorted(pw)


def _moments(nodes: exciton.ExcitonNodes, betas, powers):
    """M[b, k, w, block] = sum over the block's nodes of weight * r_e^p r_h^q * K_k(beta_b),
    k = 0..2, (p, q) = powers[w]; blocks ordered as `nodes.c` (in-in e<h, h<e, out-out e<h,
    h<e, mixed e-in, h-in). Vectorised over the powers (one kernel evaluation per beta)."""
    pe, ph, ge, gh = (
        jnp.asarray([w[i] for w in powers], dtype=float)[:, None, None] for i in range(4)
    )
    r_in = 0.5 * nodes.d_in
    R = nodes.delta[0] + r_in[0]

    def wt(r, p, g):  # a carrier's weight: its factor of G is frozen at r = R outside the dot
        return jnp.minimum(r, R) ** p * r**g

    groups = []
    for w, a, d in zip(nodes.w, nodes.a, nodes.d, strict=True):
        rs, rb = 0.5 * d, a + 0.5 * d
        re = jnp.stack([rs[0], rb[1]])
        rh = jnp.stack([rb[0], rs[1]])
        groups.append((w * wt(re, pe, ge) * wt(rh, ph, gh), a, d))  # (W, 2, n)
    r_out = R + nodes.rho
    # (W, 2, n): block 0 has e inside, h outside; block 1 the reverse
    w_in = jnp.concatenate([wt(r_in, pe, ge), wt(r_in, ph, gh)], axis=1)
    w_out = jnp.concatenate([wt(r_out[0:1], ph, gh), wt(r_out[1:2], pe, ge)], axis=1)
    mixed = nodes._replace(f_in=nodes.f_in * w_in, f_out=nodes.f_out * w_out)

    def one(beta):
        out = []
        for ww, a, d in groups:
            K = jnp.stack(exciton._kernels(a, d, beta, 1))  # (3, 2, n)
            out.append(jnp.einsum("kbn,wbn->kwb", K, ww))
        out.append(jnp.stack(exciton._mixed_sums(mixed, beta, 1)))  # (3, W, 2)
        return jnp.concatenate(out, axis=-1)  # (3, W, 6)

    return jax.vmap(one)(betas)


def _assembly(basis):
    """Static index tables: for the upper triangle (i <= j), the beta index and, per term,
    (k, power index) and the integer coefficients, with the index W (an appended zero column)
    where a power would be negative."""
    js, jpairs, powers = _pair_table(basis)
    widx = {pq: i for i, pq in enumerate(powers)}
    zero = len(powers)

    def w(p, q, ge=0, gh=0):
        return widx[(p, q, ge, gh)] if min(p, q) >= 0 else zero

    jidx = {jp: i for i, jp in enumerate(jpairs)}
    rows = []
    for i, j in itertools.combinations_with_replacement(range(len(basis)), 2):
        (mi, ni, ji), (mj, nj, jj) = basis[i], basis[j]
        P, Q = mi + mj, ni + nj
        rows.append(
            (
                i, j, jidx[tuple(sorted((ji, jj)))], js.index(ji), js.index(jj),
                w(P, Q), mi * mj, w(P - 2, Q), w(P - 2, Q, 0, 2),
                ni * nj, w(P, Q - 2), w(P, Q - 2, 2, 0), mi, mj, ni, nj,
            )
        )  # fmt: skip
    return js, jpairs, powers, np.asarray(rows).T


def _matrices(e: WellState, h: WellState, nodes, lam_star, rho, kc, basis):
    """S and H (eV) of the basis at ladder lambda* rho^j."""
    js, jpairs, powers, tab = _assembly(basis)
    ii, jj, b, li_, lj_, w0, mm, we1, we2, nn, wh1, wh2, mi, mj, ni, nj = tab
    lam = lam_star * rho ** jnp.asarray(js, dtype=float)
    jpos = {j: k for k, j in enumerate(js)}
    betas = jnp.stack([1.0 / lam[jpos[a]] + 1.0 / lam[jpos[c]] for a, c in jpairs])
    M = _moments(nodes, betas, powers)
    M = jnp.concatenate([M, jnp.zeros_like(M[:, :, :1])], axis=2)  # the zero column
    ce = jnp.stack([e.c_in, e.c_in, e.c_out, e.c_out, e.c_in, e.c_out])
    ch = jnp.stack([h.c_in, h.c_in, h.c_out, h.c_out, h.c_out, h.c_in])
    Mp = jnp.sum(M, axis=-1)  # (B, 3, W + 1)
    Me = M @ ce
    Mh = M @ ch
    # gradients of the r^m factors: only where that carrier is inside (frozen outside)
    Mei = M @ (ce * jnp.asarray([1.0, 1.0, 0.0, 0.0, 1.0, 0.0]))
    Mhi = M @ (ch * jnp.asarray([1.0, 1.0, 0.0, 0.0, 0.0, 1.0]))
    li, lj = lam[li_], lam[lj_]
    s = Mp[b, 1, w0]
    te = Me[b, 1, w0] / (li * lj) + mm * Mei[b, 1, we1]
    te = te - (mi / lj + mj / li) * 0.5 * (Mei[b, 0, w0] - Mei[b, 0, we2] + Mei[b, 2, we1])
    th = Mh[b, 1, w0] / (li * lj) + nn * Mhi[b, 1, wh1]
    th = th - (ni / lj + nj / li) * 0.5 * (Mhi[b, 0, w0] - Mhi[b, 0, wh2] + Mhi[b, 2, wh1])
    hij = (e.energy_eV + h.energy_eV) * s + te + th - kc * Mp[b, 0, w0]
    n = len(basis)
    S = jnp.zeros((n, n)).at[ii, jj].set(s).at[jj, ii].set(s)
    H = jnp.zeros((n, n)).at[ii, jj].set(hij).at[jj, ii].set(hij)
    return S, H


def _lowest(S, H):
    """Lowest eigenpair of H c = E S c (diagonal scaling, Cholesky, eigh). Returns (E, c) with
    E the Rayleigh quotient at the eigenvector held fixed (exact Hellmann-Feynman gradient)."""
    dg = 1.0 / jnp.sqrt(jnp.diag(S))
    S2 = S * dg[:, None] * dg[None, :]
    H2 = H * dg[:, None] * dg[None, :]
    L = jnp.linalg.cholesky(S2)
    X = jax.scipy.linalg.solve_triangular(L, H2, lower=True)
    A = jax.scipy.linalg.solve_triangular(L, X.T, lower=True).T
    A = 0.5 * (A + A.T)
    _, v = jnp.linalg.eigh(A)
    c = dg * jax.scipy.linalg.solve_triangular(L.T, v[:, 0], lower=False)
    cs = jax.lax.stop_gradient(c)
    E = (cs @ H @ cs) / (cs @ S @ cs)
    return E, c


def _one_d(e: WellState, h: WellState, R, n: int, c, pw):
    """(4 pi int u_e^2 u_h^2 g^2 / r^2 dr, 4 pi int u_e u_h g dr), g(r) = sum_k c_k r^pw_k
    (G on the diagonal r_e = r_h = r, r_eh = 0): split at R, exterior mapped."""
    t, w = (jnp.asarray(v) for v in gauss_legendre_01(n))

    def gfun(r):
        return sum(ck * r**p for ck, p in zip(c, pw, strict=True))

    r = R * t
    ue, uh = _u_in(e, r), _u_in(h, r)
    g = gfun(r)
    c_in = jnp.sum(R * w * (ue * uh * g / r) ** 2)
    o_in = jnp.sum(R * w * ue * uh * g)
    rho, jac = _exterior(t, w, R, e.kappa_nm + h.kappa_nm)
    ue, uh = _u_out(e, rho), _u_out(h, rho)
    g = gfun(R)  # G's factors are frozen at r = R outside the dot
    c_out = jnp.sum(jac * (ue * uh * g / (R + rho)) ** 2)
    o_out = jnp.sum(jac * ue * uh * g)
    return _FOUR_PI * (c_in + c_out), _FOUR_PI * (o_in + o_out)


def correlated_energy(e: WellState, h: WellState, R, eps, lam_star, config):
    """(E_corr = E - E_e - E_h (eV), contact density (nm^-3), overlap^2, S, H) of the correlated
    basis of `config` (`corr_lambdas`, `corr_powers`, `corr_ratio`) around `lam_star`."""
    basis = basis_exponents(config.corr_lambdas, config.corr_powers)
    rho = config.corr_ratio
    kc = E2_4PIEPS0_eV_nm / eps
    lam_max = lam_star * rho ** ((config.corr_lambdas - 1) / 2.0)
    n_in, n_out, n_mix = exciton.piece_orders(config.n_quad)
    # nodes tuned to the longest lambda: the slowest exterior decay sets the cuts
    nodes = exciton.quadrature_nodes(e, h, R, n_out, lam_max, n_in=n_in, n_mix=n_mix)
    S, H = _matrices(e, h, nodes, lam_star, rho, kc, basis)
    E, c = _lowest(S, H)
    norm = c @ S @ c
    contact, ovl = _one_d(e, h, R, config.n_quad_1d, list(c), [m + n for m, n, _ in basis])
    return E - (e.energy_eV + h.energy_eV), contact / norm, ovl * ovl / norm, S, H


def improve(e: WellState, h: WellState, R, eps, x: ExcitonState, config) -> ExcitonState:
    """The correlated state on top of the product optimum `x` (its lambda* seeds the ladder;
    `lam_nm` stays lambda*). Adds QUADRATURE_UNRESOLVED where the eigenproblem failed (S not
    positive definite in floating point) or the result rose above the product energy (which a
    nested basis forbids: a numerical failure)."""
    corr, contact, ovl2, _, _ = correlated_energy(e, h, R, eps, x.lam_nm, config)
    energy = e.energy_eV + h.energy_eV + corr
    bad = ~jnp.isfinite(energy) | (energy > x.energy_eV + 1e-9 * jnp.abs(x.energy_eV) + 1e-12)
    status = x.status | jnp.where(bad, int(Status.QUADRATURE_UNRESOLVED), 0)
    return x._replace(
        energy_eV=energy,
        contact_density_nm3=contact,
        overlap2=ovl2,
        status=status.astype(jnp.int32),
    )
