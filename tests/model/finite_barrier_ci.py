"""Configuration-interaction (CI) reference for the L = 0 exciton in a finite spherical well with
BenDaniel-Duke (BDD) masses and unequal electron/hole parameters. Pure NumPy/SciPy, no qdsim
import: an independent check of `qdsim.solve_sphere` (product and correlated ansatz).

Hamiltonian (energies from the dot's band edges, the same zero as qdsim's `energy_eV - Eg_eV`):

    H = sum_{i=e,h} [ -div c_i(r_i) grad_i + V_i(r_i) ] - e^2 / (4 pi eps0 eps r_eh),

c_i = hbar^2 / (2 m_i(r)) with m_i = m_in (r < R), m_out (r > R); V_e = dEc, V_h = dEv outside the
dot, 0 inside; one eps everywhere (as qdsim). An infinite wall at R_box = box_factor * R makes each
single-particle spectrum discrete; a box state extended by zero lies in H^1 of all space, so every
energy here is a variational upper bound for the unboxed problem, decreasing as R_box grows.

Method.

1. Single-particle radial states per l (u = r psi, psi = u/r Y_lm), from the exact energy
   functional  T[u] = int c(r) [(u' - u/r)^2 + l(l+1) u^2/r^2] dr,  int V u^2 dr,  int u^2 dr
   (|grad psi|^2 integrated over angles), discretised with spectral elements: Lagrange polynomials
   of degree `degree` on Gauss-Lobatto nodes, element boundaries at R (the mass jump), u(0) = 0,
   u(R_box) = 0. The flux (BDD) condition is the natural condition of the weak form (no term to
   add by hand: (u' - u/r)^2 carries the (c_out - c_in) u(R)^2 / R interface term). Element
   integrals use Gauss-Legendre rules exact for these polynomial integrands, so the discrete
   states are exact eigenvectors of H_1 restricted to the element space: the CI below is a
   Rayleigh-Ritz calculation in that space (an upper bound). Box eigenstates spread over the
   whole box, so the correlation inside the dot converges slowly in their number; optionally
   (`n_true`) the span is the lowest n_true box eigenstates plus states of the same well with
   the barrier raised to `aux_V_eV` (concentrated in the dot), Ritz-diagonalised: at R = a_B of
   P_ASYM (l_max = 4) N = 20 of these match N = 24 box states.
2. Configurations (n_e l, n_h l) coupled to L = 0, l <= l_max, n_e, n_h <= n_per_l: the one-body
   part is diagonal (eps_e(n_e, l) + eps_h(n_h, l)).
3. Coulomb by the multipole expansion, 1/r_12 = sum_k r_<^k / r_>^(k+1) P_k(cos theta_12); for
   |(l l) 0> -> |(l' l') 0> the angular factor is (-1)^(l+l') sqrt((2l+1)(2l'+1)) (l k l'; 0 0 0)^2
   (physics.md C.2). Radial Slater integrals R^k = int rho_e(r1) rho_h(r2) r_<^k / r_>^(k+1) as
   rho_e^T K_k rho_h on Gauss-Legendre nodes of every element: for a node r_i the other
   elements contribute through the plain rule, its own element through Gauss sub-rules on
   [a, r_i] and [r_i, b] (the densities, degree 2*degree polynomials, interpolated exactly), so
   the kink of the kernel never falls inside a rule, and only ratios (s/r)^k <= 1 are formed
   (no overflow at high k). K_k is symmetrised, (W D_k + (W D_k)^T)/2.
4. Lowest eigenvalue of the dense CI matrix (scipy.linalg.eigh, or ARPACK eigsh for large ones).
   The matrix for l_max is ordered by l, so every smaller l_max is its leading block: one build
   gives the whole sequence E(l_max) used by `extrapolate_l` (E = E_inf + B l^-p, physics.md C.2).

Units: inputs in eV, nm, free-electron masses m0 and the relative permittivity; all energies
returned in eV. Internally lengths are in units of R.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
from typing import NamedTuple

import numpy as np
import scipy.constants as sc
from numpy.polynomial import legendre as npleg
from scipy.linalg import eigh
from scipy.sparse.linalg import eigsh

HBAR2_2M0_EV_NM2 = sc.hbar**2 / (2.0 * sc.m_e) / sc.e * 1e18  # 0.0380998 eV nm^2
E2_4PIEPS0_EV_NM = sc.e / (4.0 * math.pi * sc.epsilon_0) * 1e9  # 1.4399645 eV nm
RYDBERG_EV = sc.physical_constants["Rydberg constant times hc in eV"][0]
BOHR_NM = sc.physical_constants["Bohr radius"][0] * 1e9

__all__ = [
    "CIResult",
    "Mesh",
    "ci_energies_eV",
    "extrapolate_l",
    "radial_states",
    "three_j_000_squared",
]


_THREAD_API = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Best effort: run the block with `n` OpenBLAS threads in every OpenBLAS loaded in this
    process (NumPy's and SciPy's), restoring the previous counts after; None or an unknown
    BLAS leaves everything as it is. On a loaded 2-core machine the many small LAPACK calls of
    this module run ~20x faster single-threaded (thread hand-offs dominate)."""
    saved = []
    if n is not None:
        try:
            with open("/proc/self/maps") as f:
                paths = {ln.split()[-1] for ln in f if "openblas" in ln.lower() and "/" in ln}
        except OSError:
            paths = set()
        for path in sorted(paths):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for get, put in _THREAD_API:
                if hasattr(lib, get) and hasattr(lib, put):
                    saved.append((getattr(lib, put), int(getattr(lib, get)())))
                    getattr(lib, put)(int(n))
                    break
    try:
        yield
    finally:
        for put, old in saved:
            put(old)


class Mesh(NamedTuple):
    """Spectral-element mesh, lengths in units of R: `elems_in` elements on [0, 1],
    `elems_out` on [1, box_factor] (none when box_factor == 1), polynomial `degree`, and
    `n_coulomb` Gauss-Legendre nodes per element for the Slater integrals."""

    box_factor: float = 3.0
    elems_in: int = 6
    elems_out: int = 12
    degree: int = 10
    n_coulomb: int = 22


DEFAULT_MESH = Mesh()


class CIResult(NamedTuple):
    """Lowest L = 0 eigenvalues (eV) for each l_max in `l_values` (same n_per_l), the
    single-particle levels (eV, index [l][n]) and the configuration count at the largest l."""

    l_values: tuple[int, ...]
    energies_eV: tuple[float, ...]
    electron_levels_eV: list
    hole_levels_eV: list
    n_configs: int


def three_j_000_squared(l1: int, l2: int, l3: int) -> float:
    """(l1 l2 l3; 0 0 0)^2, exact (integer factorials); 0 unless the sum is even and the
    triangle holds."""
    J = l1 + l2 + l3
    if J % 2 or l3 > l1 + l2 or l3 < abs(l1 - l2):
        return 0.0
    g = J // 2
    f = math.factorial
    num = f(J - 2 * l1) * f(J - 2 * l2) * f(J - 2 * l3) * f(g) ** 2
    den = f(J + 1) * (f(g - l1) * f(g - l2) * f(g - l3)) ** 2
    return num / den


def _element_edges(mesh: Mesh) -> np.ndarray:
    inner = np.linspace(0.0, 1.0, mesh.elems_in + 1)
    if mesh.box_factor <= 1.0:
        return inner
    outer = np.linspace(1.0, mesh.box_factor, mesh.elems_out + 1)
    return np.concatenate([inner, outer[1:]])


def _gll_nodes(p: int) -> np.ndarray:
    """Gauss-Lobatto-Legendre nodes on [-1, 1] (p + 1 of them)."""
    c = np.zeros(p + 1)
    c[-1] = 1.0
    inner = npleg.legroots(npleg.legder(c))
    return np.concatenate([[-1.0], np.sort(inner.real), [1.0]])


def _lagrange(nodes: np.ndarray, x: np.ndarray, deriv: bool = False):
    """Values (and with `deriv` the derivatives) of the Lagrange polynomials on `nodes` at the
    points x, shape (len(x), len(nodes)): barycentric form for the values."""
    d = nodes[:, None] - nodes[None, :]
    np.fill_diagonal(d, 1.0)
    bw = 1.0 / np.prod(d, axis=1)  # barycentric weights
    diff = x[:, None] - nodes[None, :]
    exact = diff == 0.0
    diff[exact] = 1.0
    t = bw[None, :] / diff
    L = t / t.sum(axis=1, keepdims=True)
    rows = exact.any(axis=1)
    L[rows] = exact[rows].astype(float)
    if not deriv:
        return L
    n = len(nodes)
    Vi = np.linalg.inv(npleg.legvander(nodes, n - 1))
    dP = np.stack([npleg.legval(x, npleg.legder(np.eye(n)[m])) for m in range(n)], axis=1)
    return L, dP @ Vi


def _element_matrices(mesh: Mesh, c_in: float, c_out: float, V_out: float, l: int):
    """Global stiffness (kinetic + potential) and mass matrices (units of c / R^2, with c in
    eV nm^2 and R = 1 here: the caller scales) on the interior dofs."""
    edges = _element_edges(mesh)
    p = mesh.degree
    ref = _gll_nodes(p)
    xq, wq = npleg.leggauss(p + 3)
    B, dB = _lagrange(ref, xq, deriv=True)
    ne = len(edges) - 1
    ndof = ne * p + 1
    K = np.zeros((ndof, ndof))
    M = np.zeros((ndof, ndof))
    for e in range(ne):
        a, b = edges[e], edges[e + 1]
        h = 0.5 * (b - a)
        r = a + h * (xq + 1.0)
        w = h * wq
        inside = b <= 1.0 + 1e-12
        c = c_in if inside else c_out
        V = 0.0 if inside else V_out
        dr = dB / h
        t = dr - B / r[:, None]  # (u' - u/r) per basis function
        ke = c * (t.T * w) @ t + c * l * (l + 1) * (B.T * (w / r**2)) @ B + V * (B.T * w) @ B
        me = (B.T * w) @ B
        sl = slice(e * p, e * p + p + 1)
        K[sl, sl] += ke
        M[sl, sl] += me
    keep = slice(1, ndof - 1)  # u(0) = 0 and u(R_box) = 0
    return K[keep, keep], M[keep, keep], edges


@functools.lru_cache(maxsize=4)
def _coulomb_grid(mesh: Mesh):
    """Gauss-Legendre nodes r (units of R) and weights of every element, the interpolation B
    from an element's GLL nodes to its GL nodes, and for every node r_i the sub-rules of the
    running integrals inside its own element: nodes and weights on [a_e, r_i] and [r_i, b_e]
    with the matrices Lb, La interpolating nodal values (a product of two degree-`degree`
    polynomials is exact when n_coulomb > 2 degree) onto them."""
    edges = _element_edges(mesh)
    n = mesh.n_coulomb
    x, w = npleg.leggauss(n)
    xs, ws = npleg.leggauss(n + 10)
    ne = len(edges) - 1
    G = ne * n
    r = np.empty(G)
    wt = np.empty(G)
    elem = np.repeat(np.arange(ne), n)
    sb = np.empty((G, len(xs)))  # sub-nodes below r_i (in its element) and their weights
    wb = np.empty((G, len(xs)))
    sa = np.empty((G, len(xs)))  # above r_i
    wa = np.empty((G, len(xs)))
    Lb = np.empty((G, len(xs), n))
    La = np.empty((G, len(xs), n))
    for e in range(ne):
        a, b = edges[e], edges[e + 1]
        h = 0.5 * (b - a)
        sl = slice(e * n, (e + 1) * n)
        r[sl] = a + h * (x + 1.0)
        wt[sl] = h * w
        for i in range(n):
            xi = x[i]
            tb = -1.0 + 0.5 * (xi + 1.0) * (xs + 1.0)  # [-1, x_i]
            ta = xi + 0.5 * (1.0 - xi) * (xs + 1.0)  # [x_i, 1]
            g = e * n + i
            sb[g], wb[g] = a + h * (tb + 1.0), h * 0.5 * (xi + 1.0) * ws
            sa[g], wa[g] = a + h * (ta + 1.0), h * 0.5 * (1.0 - xi) * ws
            Lb[g] = _lagrange(x, tb)
            La[g] = _lagrange(x, ta)
    B = _lagrange(_gll_nodes(mesh.degree), x)
    return r, wt, B, (elem, sb, wb, sa, wa, Lb, La)


def _kernel_matrix(grid, k: int) -> np.ndarray:
    """Symmetrised matrix K_k (units 1/R) with int int rho_1(r) rho_2(s) r_<^k / r_>^(k+1)
    = rho_1^T K_k rho_2 (nodal values at the Coulomb nodes). Only ratios (s/r)^k <= 1 are
    formed, so high k neither overflows nor cancels."""
    r, wt, _, (elem, sb, wb, sa, wa, Lb, La) = grid
    with np.errstate(divide="ignore"):
        lr = np.log(r)
    lo = elem[:, None] > elem[None, :]  # s_j in an earlier element than r_i
    hi = elem[:, None] < elem[None, :]
    D = np.zeros((len(r), len(r)))
    ratio = lr[None, :] - lr[:, None]  # log(s_j / r_i)
    D[lo] = (np.exp(k * ratio) / r[:, None] * wt[None, :])[lo]
    D[hi] = (np.exp(-(k + 1) * ratio) / r[:, None] * wt[None, :])[hi]
    n = Lb.shape[2]
    for g in range(len(r)):
        e = elem[g]
        fb = wb[g] * (sb[g] / r[g]) ** k / r[g]  # s^k / r^(k+1) on [a_e, r_i]
        fa = wa[g] * (r[g] / sa[g]) ** (k + 1) / r[g]  # r^k / s^(k+1) on [r_i, b_e]
        D[g, e * n : (e + 1) * n] = fb @ Lb[g] + fa @ La[g]
    WD = wt[:, None] * D
    return 0.5 * (WD + WD.T)


def radial_states(
    m_in,
    m_out,
    V0_eV,
    radius_nm,
    l,
    n_states,
    mesh=DEFAULT_MESH,
    n_true=None,
    aux_V_eV=5.0,
    _grid=None,
):
    """`n_states` orthonormal radial states of angular momentum l in the boxed well that
    diagonalise the single-particle Hamiltonian H_1 in their span (Ritz vectors).

    With n_true = None (or >= n_states) they are the lowest eigenstates of H_1. Otherwise the
    span is the n_true lowest eigenstates of H_1 plus the n_states - n_true lowest eigenstates of
    an auxiliary H_1 whose barrier is raised to `aux_V_eV` (same masses): those oscillate inside
    the dot and die fast outside, where the exciton has little weight, so the correlation inside
    the dot converges with far fewer states than with box states spread over the whole box. Any
    span gives a variational CI; this one only changes the rate of convergence.

    Returns (levels_eV, U): U[n, i] = u_n(r_i) / sqrt(R) at the Coulomb nodes r_i (units of R),
    normalised as sum_i w_i U[n, i]^2 = 1 (weights in units of R). `V0_eV` = inf is allowed
    only with box_factor == 1 (impenetrable sphere)."""
    if not math.isfinite(V0_eV) and mesh.box_factor > 1.0:
        raise ValueError("infinite barrier: use box_factor = 1")
    R = radius_nm
    c_in = HBAR2_2M0_EV_NM2 / m_in / R**2
    c_out = HBAR2_2M0_EV_NM2 / m_out / R**2
    V = V0_eV if math.isfinite(V0_eV) else 0.0
    K, M, edges = _element_matrices(mesh, c_in, c_out, V, l)
    if n_true is None or n_true >= n_states:
        ev, vec = eigh(K, M, subset_by_index=[0, n_states - 1])
    else:
        _, v1 = eigh(K, M, subset_by_index=[0, n_true - 1])
        Ka, _, _ = _element_matrices(mesh, c_in, c_out, aux_V_eV, l)
        n_aux = min(K.shape[0], n_states + 20)
        _, v2 = eigh(Ka, M, subset_by_index=[0, n_aux - 1])
        # Gram-Schmidt (M inner product): the true states, then aux states in order, skipping
        # those (nearly) in the span already; the basis for n_states is a prefix of the next one
        X = [v for v in v1.T]
        for v in v2.T:
            if len(X) == n_states:
                break
            w = v.copy()
            for _ in range(2):
                for x in X:
                    w -= (x @ M @ w) * x
            nrm = math.sqrt(w @ M @ w)
            if nrm > 1e-6:
                X.append(w / nrm)
        if len(X) < n_states:
            raise ValueError("auxiliary basis exhausted: refine the mesh")
        X = np.stack(X, axis=1)
        ev, c = eigh(X.T @ K @ X, X.T @ M @ X)  # Ritz vectors of H_1 in the span
        vec = X @ c
    # nodal values (with the two Dirichlet zeros) -> values at the Coulomb nodes
    full = np.zeros((vec.shape[0] + 2, n_states))
    full[1:-1] = vec
    B = (_grid if _grid is not None else _coulomb_grid(mesh))[2]
    p, n = mesh.degree, mesh.n_coulomb
    ne = len(edges) - 1
    U = np.empty((n_states, ne * n))
    for e in range(ne):
        U[:, e * n : (e + 1) * n] = (B @ full[e * p : e * p + p + 1]).T
    return ev, U


def ci_energies_eV(
    me_in,
    mh_in,
    me_out,
    mh_out,
    dEc_eV,
    dEv_eV,
    eps,
    radius_nm,
    *,
    l_values=(0, 1, 2, 3, 4),
    n_per_l=8,
    mesh=DEFAULT_MESH,
    n_true=None,
    aux_V_eV=5.0,
    n_blas_threads=1,
):
    """Lowest L = 0 exciton energy (eV, from the band edges inside the dot) for every l_max in
    `l_values`, with n_per_l radial states per carrier and l. Infinite barriers need
    mesh.box_factor == 1. See the module docstring for the method. `n_blas_threads`: OpenBLAS
    threads during the call (`blas_threads`; None leaves the setting alone)."""
    with blas_threads(n_blas_threads):
        return _ci_energies_eV(
            me_in, mh_in, me_out, mh_out, dEc_eV, dEv_eV, eps, radius_nm,
            l_values, n_per_l, mesh, n_true, aux_V_eV,
        )  # fmt: skip


def _ci_energies_eV(
    me_in, mh_in, me_out, mh_out, dEc_eV, dEv_eV, eps, radius_nm,
    l_values, n_per_l, mesh, n_true, aux_V_eV,
):  # fmt: skip
    R = radius_nm
    l_values = tuple(sorted(l_values))
    L = l_values[-1]
    grid = _coulomb_grid(mesh)
    N = n_per_l
    es, hs, Ue, Uh = [], [], [], []
    for l in range(L + 1):
        e, u = radial_states(me_in, me_out, dEc_eV, R, l, N, mesh, n_true, aux_V_eV, grid)
        h, v = radial_states(mh_in, mh_out, dEv_eV, R, l, N, mesh, n_true, aux_V_eV, grid)
        es.append(e)
        hs.append(h)
        Ue.append(u)
        Uh.append(v)
    # kernel matrices K_k (units of 1/R): Slater integral = rho_e^T K_k rho_h (nodal values)
    kern = [_kernel_matrix(grid, k) for k in range(2 * L + 1)]
    kc = E2_4PIEPS0_EV_NM / eps / R
    nb = N * N
    dim = (L + 1) * nb
    H = np.zeros((dim, dim))
    for l in range(L + 1):
        diag = (es[l][:, None] + hs[l][None, :]).ravel()
        H[l * nb : (l + 1) * nb, l * nb : (l + 1) * nb][np.diag_indices(nb)] += diag
        for lp in range(l, L + 1):
            Ksum = None
            for k in range(abs(l - lp), l + lp + 1):
                t3 = three_j_000_squared(l, k, lp)
                if t3 == 0.0:
                    continue
                ang = (-1) ** (l + lp) * math.sqrt((2 * l + 1) * (2 * lp + 1)) * t3
                Ksum = ang * kern[k] if Ksum is None else Ksum + ang * kern[k]
            # electron densities u_{n l} u_{n' l'} (N, N, G), hole likewise
            re = (Ue[l][:, None, :] * Ue[lp][None, :, :]).reshape(nb, -1)
            rh = (Uh[l][:, None, :] * Uh[lp][None, :, :]).reshape(nb, -1)
            blk = (re @ Ksum @ rh.T).reshape(N, N, N, N)  # [n_e, n_e', n_h, n_h']
            blk = -kc * blk.transpose(0, 2, 1, 3).reshape(nb, nb)  # [(n_e n_h), (n_e' n_h')]
            H[l * nb : (l + 1) * nb, lp * nb : (lp + 1) * nb] += blk
            if lp != l:
                H[lp * nb : (lp + 1) * nb, l * nb : (l + 1) * nb] += blk.T
    H = 0.5 * (H + H.T)
    out = []
    for lv in l_values:
        n = (lv + 1) * nb
        A = H[:n, :n]
        if n <= 1200:
            E = eigh(A, eigvals_only=True, subset_by_index=[0, 0])[0]
        else:
            v0 = np.zeros(n)
            v0[0] = 1.0
            E = eigsh(A, k=1, which="SA", v0=v0 + 1e-3, tol=1e-13)[0][0]
        out.append(float(E))
    return CIResult(l_values, tuple(out), es, hs, dim)


def extrapolate_l(l_values, energies, p=None):
    """Extrapolate E(l_max) = E_inf + B l_max^-p to l_max -> inf (physics.md C.2).

    With three or more points and p=None, p is fitted to the last three; otherwise the given p
    (default 2.7, C.2's value for R <= a_B) is used with the last two. Returns
    (E_inf, uncertainty, p) with the uncertainty the size of the extrapolation
    |E(l_last) - E_inf| (C.2's convention), in the units of `energies`."""
    ls = np.asarray(l_values, float)
    E = np.asarray(energies, float)
    if p is None and len(E) >= 3:
        l1, l2, l3 = ls[-3:]
        e1, e2, e3 = E[-3:]

        def resid(q):
            return (e1 - e2) / (e2 - e3) - (l1**-q - l2**-q) / (l2**-q - l3**-q)

        from scipy.optimize import brentq

        try:
            p = brentq(resid, 0.5, 8.0)
        except ValueError:
            p = 2.7
    elif p is None:
        p = 2.7
    l2, l3 = ls[-2:]
    e2, e3 = E[-2:]
    B = (e2 - e3) / (l2**-p - l3**-p)
    e_inf = e3 - B * l3**-p
    return float(e_inf), float(abs(e3 - e_inf)), float(p)
