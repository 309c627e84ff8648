"""Correlated exciton ansatz (`SolverConfig(ansatz="correlated")`): a linear Rayleigh-Ritz
basis on top of the product ansatz of `qdsim.model.exciton`,

    Psi = Phi_e(r_e) Phi_h(r_h) G,
    G = sum_k c_k r_e^m_k r_h^n_k x_k(r_e, r_h) exp(-r_eh / lambda_k),

with Phi_e, Phi_h the single-particle ground states (BenDaniel-Duke, finite barriers), the
lambdas a geometric ladder lambda* rho^j (j centred on 0) around the product optimum lambda*,
and m, n even powers up to 2 `corr_powers` in total. Outside the dot a carrier's r^m factor is
frozen at its value at R (r -> min(r, R): continuous, so the trial function stays in H^1 and the
identity below holds): polynomials left to grow in the barrier change sign there, and at
NEAR_THRESHOLD points gave overlap^2 0.01-3x the product value (frozen: 0.87-1.37x).

Exterior functions (with `corr_powers` >= 2): x = 1 for the functions above; in addition, at
the lambda of the ladder closest to lambda* and for each carrier alone, x = exp(-alpha kappa
(r - R)) - 1 outside the dot and 0 inside (r that carrier's radius, kappa its exterior decay
constant, alpha in `EXTERIOR_ALPHAS` = 0.5, 1.5; m = n = 0). With the frozen factors the
exterior part of Psi cannot change its shape, and where a carrier is barely bound the other
one's Coulomb pull steepens its tail a lot. Measured at R = 0.5 a_B of the P_ASYM dot of the
tests (electron 34 meV below its barrier, NEAR_THRESHOLD), as the fraction of the product's gap
to the CI of tests/model/finite_barrier_ci.py closed: default basis 28 %; 5 lambdas, powers up
to 6, or n_quad 20: 34 %, 34 %, 28 % (neither the ladder nor the quadrature is short); letting
r^m grow outside: 83 %; the default basis plus these exterior functions: 97 % (every lambda:
99.5 %); `corr_powers=2`: 98 % (and 100 % at 1 and 2 a_B, against 94 and 93 % by default). In
the default basis they would cost ~18x the product per point instead of ~5x, hence only from
`corr_powers=2` on (~30-40x; benchmarks/correlated_ansatz.py). They vanish inside, so where a
carrier has no exterior (infinite barrier) they have zero norm and `_lowest` decouples them
(the impenetrable-sphere numbers are unchanged). Their derivative x' = -alpha kappa
exp(-alpha kappa (r - R)) outside enters the kinetic term as a radial gradient, like
m r^(m-1) inside.
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
m terms only where the electron is inside, its factor being constant outside); an exterior
function adds x_i' x_j' - (x_i' x_j / lambda_j + x_i x_j' / lambda_i) (r_e^2 - r_h^2 + s^2) /
(2 r_e s) outside. So every element is a 2-D moment sum_w r_e^p r_h^q X(r_e, r_h) K_k(beta) of
the existing split quadrature (X: products of the x and x', evaluated at the nodes) with
the angular kernels K_k = int s^k e^{-beta s} ds, k = 0..2, at beta = 1/lambda_i + 1/lambda_j
(`exciton._kernels`, `exciton._mixed_sums`); checked against a brute-force 3-D quadrature
(r_e, r_h, r_eh) of the same identity: S and H agree to 2e-7 relative. Measured
(benchmarks/correlated_ansatz.py) in the impenetrable sphere with equal masses against
physics.md C.2: a function of r_eh alone saturates
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

__all__ = ["EXTERIOR_ALPHAS", "basis_exponents", "correlated_energy", "improve"]

_FOUR_PI = 4.0 * np.pi

#: exterior decay factors alpha of the exterior functions: a carrier's factor outside the dot is
#: exp(-alpha kappa (r - R)) - 1 (kappa its own exterior decay constant, 1/nm), zero inside
EXTERIOR_ALPHAS = (0.5, 1.5)


@functools.lru_cache(maxsize=16)
def basis_exponents(n_lambdas: int, n_powers: int) -> tuple[tuple[int, int, float, int, int], ...]:
    """Basis functions (m, n, j, ie, ih): r_e^m r_h^n exp(-r_eh / (lambda* rho^j)) times the
    exterior functions x_ie(r_e) x_ih(r_h) (x_0 = 1, x_k = exp(-EXTERIOR_ALPHAS[k-1] kappa
    (r - R)) - 1 outside the dot and 0 inside), m, n even, m + n <= 2 n_powers,
    j = -(K - 1)/2 .. (K - 1)/2. The exterior functions (m = n = 0, one carrier at a time, each
    alpha, at the j closest to 0) come with n_powers >= 2, after the powers. Ordered so that
    the first function is the product ansatz (0, 0, 0, 0, 0) when K is odd."""
    js = [j - (n_lambdas - 1) / 2.0 for j in range(n_lambdas)]
    js.sort(key=abs)
    pows = [(m, t - m) for t in range(0, 2 * n_powers + 1, 2) for m in range(t, -1, -2)]
    out = [(m, n, j, 0, 0) for (m, n) in pows for j in js]
    if n_powers >= 2:
        for k in range(1, len(EXTERIOR_ALPHAS) + 1):
            out += [(0, 0, js[0], k, 0), (0, 0, js[0], 0, k)]
    return tuple(out)


def _kind(ki: int, kj: int, di: int, dj: int):
    """Canonical key of a carrier's exterior factor x_ki^(di) x_kj^(dj) (d = 1: derivative),
    or None where it vanishes identically (the derivative of x_0 = 1)."""
    if (ki == 0 and di) or (kj == 0 and dj):
        return None
    return tuple(sorted(((ki, di), (kj, dj))))


def _assembly(basis):
    """Static tables: the ladder values j, the distinct ladder pairs (one beta each), the weight
    columns (p, q, g_e, g_h, kind_e, kind_h): min(r_e, R)^p min(r_h, R)^q r_e^g_e r_h^g_h times
    the carriers' exterior factors (`_kind`), the columns each beta needs, and for the upper
    triangle (i <= j) the indices and integer coefficients of every term, a term's column
    index counting through the betas' columns in turn, with one past the last (an appended
    zero column) where a term vanishes."""
    js = sorted({b[2] for b in basis})
    jpairs = list(itertools.combinations_with_replacement(js, 2))
    jidx = {jp: i for i, jp in enumerate(jpairs)}
    cols: dict = {}

    def w(p, q, ge, gh, kind_e, kind_h):
        if min(p, q) < 0 or kind_e is None or kind_h is None:
            return -1
        return cols.setdefault((p, q, ge, gh, kind_e, kind_h), len(cols))

    rows = []
    for i, j in itertools.combinations_with_replacement(range(len(basis)), 2):
        (mi, ni, ji, ei, hi), (mj, nj, jj, ej, hj) = basis[i], basis[j]
        P, Q = mi + mj, ni + nj
        ke, kh = _kind(ei, ej, 0, 0), _kind(hi, hj, 0, 0)
        # the r^m gradient terms live inside the dot, where the exterior functions vanish
        ke_in = ke if ei == ej == 0 else None
        kh_in = kh if hi == hj == 0 else None
        rows.append(
            (
                i, j, jidx[tuple(sorted((ji, jj)))], js.index(ji), js.index(jj),
                w(P, Q, 0, 0, ke, kh), mi * mj, w(P - 2, Q, 0, 0, ke_in, kh),
                w(P - 2, Q, 0, 2, ke_in, kh), ni * nj, w(P, Q - 2, 0, 0, ke, kh_in),
                w(P, Q - 2, 2, 0, ke, kh_in), mi, mj, ni, nj,
                # exterior functions: x'x' and x'x (derivative on i, then on j), per carrier
                w(P, Q, 0, 0, _kind(ei, ej, 1, 1), kh),
                *(w(P, Q, *g, _kind(ei, ej, 1, 0), kh) for g in ((1, 0), (-1, 2), (-1, 0))),
                *(w(P, Q, *g, _kind(ei, ej, 0, 1), kh) for g in ((1, 0), (-1, 2), (-1, 0))),
                w(P, Q, 0, 0, ke, _kind(hi, hj, 1, 1)),
                *(w(P, Q, *g, ke, _kind(hi, hj, 1, 0)) for g in ((0, 1), (2, -1), (0, -1))),
                *(w(P, Q, *g, ke, _kind(hi, hj, 0, 1)) for g in ((0, 1), (2, -1), (0, -1))),
            )
        )  # fmt: skip
    tab = np.asarray(rows)
    # each beta gets the columns its rows use; column ids -> ids in their concatenation
    slots = [5, 7, 8, 10, 11, *range(16, 30)]
    per_beta, flat, off = [], {}, 0
    for bb in range(len(jpairs)):
        used = sorted({c for c in tab[tab[:, 2] == bb][:, slots].ravel() if c >= 0})
        flat.update({(bb, c): off + k for k, c in enumerate(used)})
        per_beta.append(np.asarray(used, dtype=int))
        off += len(used)
    for row in tab:
        row[slots] = [flat[(row[2], c)] if c >= 0 else off for c in row[slots]]  # off: zeros
    return js, jpairs, sorted(cols, key=cols.get), tuple(per_beta), tab.T


def _exterior_factor(r, R, kappa, kind):
    """A carrier's exterior factor of weight column `kind` at r (nm): the product of
    x_k = exp(-alpha_k kappa (r - R)) - 1 (or its r-derivative, 1/nm) over the kind's two
    entries, 1 for x_0; the x_k vanish inside the dot, their derivatives too."""
    out = r > R
    x = jnp.maximum(r - R, 0.0)
    f = 1.0
    for k, d in kind:
        if k == 0:
            continue
        a = EXTERIOR_ALPHAS[k - 1] * kappa
        f = f * (jnp.where(out, -a * jnp.exp(-a * x), 0.0) if d else jnp.expm1(-a * x))
    return f


def _moments(nodes: exciton.ExcitonNodes, betas, columns, per_beta, kappa_e, kappa_h):
    """M[k, w, block] = sum over the block's nodes of weight * (column's factor) * K_k(beta),
    k = 0..2, for each beta in turn and its columns `per_beta` (w counts through them); blocks
    ordered as `nodes.c` (in-in e<h, h<e, out-out e<h, h<e, mixed e-in, h-in). Vectorised over
    the columns (one kernel evaluation per beta)."""
    r_in = 0.5 * nodes.d_in
    R = nodes.delta[0] + r_in[0]
    # each carrier's factor of a column, min(r, R)^p r^g x(r), is one of a few distinct ones:
    # computed once per node set (integer powers: multiplications), then gathered per column
    keys = [sorted({(c[i], c[2 + i], c[4 + i]) for c in columns}) for i in (0, 1)]
    idx = [
        np.asarray([k.index((c[i], c[2 + i], c[4 + i])) for c in columns])
        for i, k in enumerate(keys)
    ]
    kappas = (kappa_e, kappa_h)

    def wt(r, i, sub=slice(None)):  # carrier i's factors (W, ...) at r (r^m frozen outside R)
        rm = jnp.minimum(r, R)
        x = {}  # the x_k and x_k' at r, each computed once
        for _, _, kind in keys[i]:
            for kd in kind:
                if kd[0] and kd not in x:
                    x[kd] = _exterior_factor(r, R, kappas[i], (kd,))
        f = []
        for p, g, kind in keys[i]:
            v = rm**p * r**g
            for kd in kind:
                v = v * x[kd] if kd[0] else v
            f.append(jnp.broadcast_to(v, r.shape))
        return jnp.stack(f)[idx[i][sub]]

    # in-in nodes: only the columns without exterior factors (x_k and x_k' vanish inside)
    base = ((0, 0), (0, 0))
    inner = np.asarray([i for i, c in enumerate(columns) if c[4] == c[5] == base])

    def both(re, rh, sub=slice(None)):
        return wt(re, 0, sub) * wt(rh, 1, sub)

    groups = []
    for g, (w, a, d) in enumerate(zip(nodes.w, nodes.a, nodes.d, strict=True)):
        rs, rb = 0.5 * d, a + 0.5 * d
        re = jnp.stack([rs[0], rb[1]])
        rh = jnp.stack([rb[0], rs[1]])
        groups.append((w * both(re, rh, inner if g == 0 else slice(None)), a, d))  # (W, 2, n)
    r_out = R + nodes.rho
    # (W, 2, n): block 0 has e inside, h outside; block 1 the reverse
    f_in = nodes.f_in * jnp.concatenate([wt(r_in[None], 0), wt(r_in[None], 1)], axis=1)
    f_out = nodes.f_out * jnp.concatenate([wt(r_out[0:1], 1), wt(r_out[1:2], 0)], axis=1)
    pos_in = {c: k for k, c in enumerate(inner)}

    out = []
    for beta, sub in zip(betas, per_beta, strict=True):  # only the columns this beta needs
        blocks = []
        for g, (ww, a, d) in enumerate(groups):
            K = jnp.stack(exciton._kernels(a, d, beta, 1))  # (3, 2, n)
            if g == 0:
                k_in = [k for k, c in enumerate(sub) if c in pos_in]
                m = jnp.einsum("kbn,wbn->kwb", K, ww[np.asarray([pos_in[sub[k]] for k in k_in])])
                m = jnp.zeros((3, len(sub), 2), m.dtype).at[:, np.asarray(k_in)].set(m)
            else:
                m = jnp.einsum("kbn,wbn->kwb", K, ww[sub])
            blocks.append(m)
        mixed = nodes._replace(f_in=f_in[sub], f_out=f_out[sub])
        blocks.append(jnp.stack(exciton._mixed_sums(mixed, beta, 1)))  # (3, W_b, 2)
        out.append(jnp.concatenate(blocks, axis=-1))  # (3, W_b, 6)
    return jnp.concatenate(out, axis=1)


def _matrices(e: WellState, h: WellState, nodes, lam_star, rho, kc, basis):
    """S and H (eV) of the basis at ladder lambda* rho^j."""
    js, jpairs, columns, per_beta, tab = _assembly(basis)
    ii, jj, _, li_, lj_, w0, mm, we1, we2, nn, wh1, wh2, mi, mj, ni, nj = tab[:16]
    xe = tab[16:23]
    xh = tab[23:30]
    lam = lam_star * rho ** jnp.asarray(js, dtype=float)
    jpos = {j: k for k, j in enumerate(js)}
    betas = [1.0 / lam[jpos[a]] + 1.0 / lam[jpos[c]] for a, c in jpairs]
    M = _moments(nodes, betas, columns, per_beta, e.kappa_nm, h.kappa_nm)
    M = jnp.concatenate([M, jnp.zeros_like(M[:, :1])], axis=1)  # the zero column
    ce = jnp.stack([e.c_in, e.c_in, e.c_out, e.c_out, e.c_in, e.c_out])
    ch = jnp.stack([h.c_in, h.c_in, h.c_out, h.c_out, h.c_out, h.c_in])
    Mp = jnp.sum(M, axis=-1)  # (3, W + 1)
    Me = M @ ce
    Mh = M @ ch
    # gradients of the r^m factors: only where that carrier is inside (frozen outside)
    Mei = M @ (ce * jnp.asarray([1.0, 1.0, 0.0, 0.0, 1.0, 0.0]))
    Mhi = M @ (ch * jnp.asarray([1.0, 1.0, 0.0, 0.0, 0.0, 1.0]))
    li, lj = lam[li_], lam[lj_]
    s = Mp[1, w0]

    def exterior(Mc, x):  # x'x' - (x'x / lambda_j + x x' / lambda_i) r-hat . s-hat
        cross_i = 0.5 * (Mc[0, x[1]] - Mc[0, x[2]] + Mc[2, x[3]])
        cross_j = 0.5 * (Mc[0, x[4]] - Mc[0, x[5]] + Mc[2, x[6]])
        return Mc[1, x[0]] - cross_i / lj - cross_j / li

    te = Me[1, w0] / (li * lj) + mm * Mei[1, we1] + exterior(Me, xe)
    te = te - (mi / lj + mj / li) * 0.5 * (Mei[0, w0] - Mei[0, we2] + Mei[2, we1])
    th = Mh[1, w0] / (li * lj) + nn * Mhi[1, wh1] + exterior(Mh, xh)
    th = th - (ni / lj + nj / li) * 0.5 * (Mhi[0, w0] - Mhi[0, wh2] + Mhi[2, wh1])
    hij = (e.energy_eV + h.energy_eV) * s + te + th - kc * Mp[0, w0]
    n = len(basis)
    S = jnp.zeros((n, n)).at[ii, jj].set(s).at[jj, ii].set(s)
    H = jnp.zeros((n, n)).at[ii, jj].set(hij).at[jj, ii].set(hij)
    return S, H


def _lowest(S, H):
    """Lowest eigenpair of H c = E S c (diagonal scaling, Cholesky, eigh). Returns (E, c) with
    E the Rayleigh quotient at the eigenvector held fixed (exact Hellmann-Feynman gradient).
    Functions of (numerically) zero norm, the exterior functions of a carrier with no exterior
    (infinite barrier), are decoupled: unit norm, an energy above every other one (H_00 / S_00
    + 1 eV, the product state's Rayleigh quotient plus 1 eV), zero coefficient."""
    d = jnp.diag(S)
    keep = d > jnp.finfo(S.dtype).eps ** 2 * d[0]
    dg = jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, d, 1.0)), 0.0)
    both = keep[:, None] & keep[None, :]
    eye = jnp.eye(S.shape[0], dtype=S.dtype)
    top = jnp.abs(H[0, 0] / S[0, 0]) + 1.0
    S2 = jnp.where(both, S * dg[:, None] * dg[None, :], eye)
    H2 = jnp.where(both, H * dg[:, None] * dg[None, :], top * eye)
    L = jnp.linalg.cholesky(S2)
    X = jax.scipy.linalg.solve_triangular(L, H2, lower=True)
    A = jax.scipy.linalg.solve_triangular(L, X.T, lower=True).T
    A = 0.5 * (A + A.T)
    _, v = jnp.linalg.eigh(A)
    c = dg * jax.scipy.linalg.solve_triangular(L.T, v[:, 0], lower=False)
    cs = jax.lax.stop_gradient(c)
    E = (cs @ H @ cs) / (cs @ S @ cs)
    return E, c


def _one_d(e: WellState, h: WellState, R, n: int, c, basis):
    """(4 pi int u_e^2 u_h^2 g^2 / r^2 dr, 4 pi int u_e u_h g dr), g(r) = G on the diagonal
    r_e = r_h = r (r_eh = 0): sum_k c_k r^(m_k + n_k) inside, where the exterior functions
    vanish, and sum_k c_k R^(m_k + n_k) x_ie(r) x_ih(r) outside; split at R, exterior mapped."""
    t, w = (jnp.asarray(v) for v in gauss_legendre_01(n))
    r = R * t
    ue, uh = _u_in(e, r), _u_in(h, r)
    g = sum(
        ck * r ** (m + nn) for ck, (m, nn, _, ie, ih) in zip(c, basis, strict=True) if ie == ih == 0
    )
    c_in = jnp.sum(R * w * (ue * uh * g / r) ** 2)
    o_in = jnp.sum(R * w * ue * uh * g)
    rho, jac = _exterior(t, w, R, e.kappa_nm + h.kappa_nm)
    ue, uh = _u_out(e, rho), _u_out(h, rho)
    g = sum(
        ck
        * R ** (m + nn)
        * _exterior_factor(R + rho, R, e.kappa_nm, ((ie, 0),))
        * _exterior_factor(R + rho, R, h.kappa_nm, ((ih, 0),))
        for ck, (m, nn, _, ie, ih) in zip(c, basis, strict=True)
    )  # G's r^m factors are frozen at r = R outside the dot
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
    contact, ovl = _one_d(e, h, R, config.n_quad_1d, list(c), basis)
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
