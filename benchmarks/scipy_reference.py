"""Independent NumPy/SciPy reference for the qdsim exciton forward model (no JAX).

What it is for
--------------
An oracle for the JAX model in ``qdsim.model`` and the speed baseline of the forward-model
benchmark (``benchmarks/run.py``). It was written from ``physics.md`` (sections A.2, B.1, B.3,
B.4, C, D) without reading the JAX code, so the two implementations check each other. It is
deliberately the code a user would write with SciPy: one point at a time, Python loops over
points, NumPy vectorisation only inside a point.

Method
------
* Single particle (B.1): ground l = 0 level of a finite spherical well with BenDaniel-Duke
  matching, from the pole-free matching function g written in xi = kR and divided by xi,
  h(xi) = sinc(xi) [1 - (m_in/m_out)(1 + kappa R)] - cos(xi), so that h(0) < 0 strictly;
  ``scipy.optimize.brentq`` on (0, min(pi, k0 R)] (bracket of D). No sign change means no
  bound state (threshold A.2): ``ValueError``. ``V0 = math.inf`` gives kR = pi.
* Exciton (B.3): Psi = phi_e phi_h exp(-r_eh/lambda) / sqrt(N), energy from the exact identity
  E(lambda) = E_e + E_h + <Phi^2 f^2 (c_e + c_h)>/(lambda^2 N)
              - e^2/(4 pi eps0 eps) <Phi^2 f^2/r_eh>/N,   c = hbar^2/2m(r).
  The six-dimensional integrals reduce to (r_e, r_h) integrals with analytic angular kernels,
  done by split Gauss-Legendre quadrature (D): split at r_e = r_h and at R, Duffy map on the
  in-in and out-out triangles, exterior mapped as r = R + L t/(1 - t), L = 1/kappa.
  lambda is optimised by bounded Brent minimisation in log lambda.
* Observables (B.3, B.4): contact density int |Psi(r, r)|^2 d^3r, overlap |int Psi(r, r) d^3r|^2
  (1-D integrals split at R), dark-bright splitting (Delta_SR^bulk + hbar omega_LT/3) pi a_B^3
  int |Psi(r, r)|^2 with a_B = a0 eps / mu_in (uniform eps, no dielectric-contrast term).

Units: eV, nm, masses in m0. Constants from ``scipy.constants`` (CODATA).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.constants as sc
from scipy.optimize import brentq, minimize_scalar
from scipy.special import gammainc

__all__ = [
    "HBAR2_2M0_EV_NM2",
    "COULOMB_EV_NM",
    "RYDBERG_EV",
    "BOHR_NM",
    "NEAR_THRESHOLD_KAPPA_R",
    "well_level_eV",
    "well_radial_u",
    "solve_sphere_ref",
    "sphere_at_lambda_ref",
]

# --- constants (CODATA via scipy.constants, never hand-typed) -------------------------------
HBAR2_2M0_EV_NM2 = sc.hbar**2 / (2.0 * sc.m_e) / sc.e * 1e18  # hbar^2/(2 m0) [eV nm^2]
COULOMB_EV_NM = sc.e / (4.0 * sc.pi * sc.epsilon_0) * 1e9  # e^2/(4 pi eps0) [eV nm]
RYDBERG_EV = sc.physical_constants["Rydberg constant times hc in eV"][0]  # [eV]
BOHR_NM = sc.physical_constants["Bohr radius"][0] * 1e9  # a0 [nm]

#: kappa R below this: the level is flagged "NEAR_THRESHOLD" (ill-conditioned, very extended).
NEAR_THRESHOLD_KAPPA_R = 1e-2

_LAMBDA_RANGE = 30.0  # lambda searched in [a_B/30, 30 a_B]


# --- single particle (B.1) ------------------------------------------------------------------
def _kappa_R(xi: float, m_in: float, m_out: float, V0_eV: float, radius_nm: float) -> float:
    E = HBAR2_2M0_EV_NM2 / m_in * xi**2 / radius_nm**2
    return radius_nm * math.sqrt(max(V0_eV - E, 0.0) * m_out / HBAR2_2M0_EV_NM2)


def _h_match(xi: float, m_in: float, m_out: float, V0_eV: float, radius_nm: float) -> float:
    """g(xi)/xi with g the pole-free BDD matching function of B.1 (h(0) < 0, no pole)."""
    kR_out = _kappa_R(xi, m_in, m_out, V0_eV, radius_nm)
    sinc = math.sin(xi) / xi if xi > 0.0 else 1.0
    return sinc * (1.0 - (m_in / m_out) * (1.0 + kR_out)) - math.cos(xi)


def well_level_eV(m_in: float, m_out: float, V0_eV: float, radius_nm: float):
    """Ground l = 0 level of the finite spherical well with BenDaniel-Duke matching (B.1).

    Parameters: masses in m0 (inside, outside), barrier V0 [eV] (``math.inf`` allowed), radius
    [nm]. Returns ``(E_eV, k_nm, kappa_nm, status)``, E from the band edge of the dot,
    k = sqrt(2 m_in E)/hbar, kappa = sqrt(2 m_out (V0 - E))/hbar [1/nm]; status is "OK" or
    "NEAR_THRESHOLD" (kappa R < NEAR_THRESHOLD_KAPPA_R). Raises ``ValueError`` for invalid input
    (V0 <= 0: not type I) or when no bound state exists (A.2 threshold), ``RuntimeError`` if the
    root is not converged.
    """
    if not (m_in > 0.0 and m_out > 0.0 and radius_nm > 0.0):
        raise ValueError("masses and radius must be positive")
    if not V0_eV > 0.0:
        raise ValueError(f"barrier V0 = {V0_eV} eV <= 0: not a type-I confinement")
    c_in = HBAR2_2M0_EV_NM2 / m_in
    if math.isinf(V0_eV):
        k = math.pi / radius_nm
        return c_in * k * k, k, math.inf, "OK"
    k0R = radius_nm * math.sqrt(V0_eV / c_in)
    xi_top = min(math.pi, k0R)
    args = (m_in, m_out, V0_eV, radius_nm)
    if not _h_match(xi_top, *args) > 0.0:
        raise ValueError(
            f"no bound state: R = {radius_nm} nm, V0 = {V0_eV} eV, m_in = {m_in}, m_out = {m_out}"
        )
    xi, info = brentq(
        _h_match,
        0.0,
        xi_top,
        args=args,
        xtol=1e-15,
        rtol=4 * np.finfo(float).eps,
        maxiter=200,
        full_output=True,
    )
    if not info.converged:
        raise RuntimeError(f"BDD root not converged: {info.flag}")
    k = xi / radius_nm
    E = c_in * k * k
    kappa = _kappa_R(xi, *args) / radius_nm
    status = "NEAR_THRESHOLD" if kappa * radius_nm < NEAR_THRESHOLD_KAPPA_R else "OK"
    return E, k, kappa, status


def _norm_A(k: float, kappa: float, radius_nm: float) -> float:
    """Amplitude A of psi = A sin(kr)/r (B.1), int |psi|^2 d^3r = 1."""
    R = radius_nm
    ext = 0.0 if math.isinf(kappa) else math.sin(k * R) ** 2 / (2.0 * kappa)
    return 1.0 / math.sqrt(4.0 * math.pi * (R / 2.0 - math.sin(2.0 * k * R) / (4.0 * k) + ext))


def well_radial_u(r_nm, k: float, kappa: float, radius_nm: float):
    """u(r) = r psi(r) of the normalised B.1 ground state (int 4 pi u^2 dr = 1)."""
    r = np.asarray(r_nm, dtype=float)
    A = _norm_A(k, kappa, radius_nm)
    inside = A * np.sin(k * np.minimum(r, radius_nm))
    if math.isinf(kappa):
        outside = np.zeros_like(r)
    else:
        outside = A * math.sin(k * radius_nm) * np.exp(-kappa * np.maximum(r - radius_nm, 0.0))
    return np.where(r < radius_nm, inside, outside)


# --- quadrature nodes (D) -------------------------------------------------------------------
def _gl01(n: int):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def _exterior_map(t, L):
    """rho = L t/(1-t) on t in [0, 1), with Jacobian."""
    return L * t / (1.0 - t), L / (1.0 - t) ** 2


def _nodes_2d(radius_nm: float, kappa_e: float, kappa_h: float, n: int):
    """Split Gauss-Legendre nodes (r_e, r_h, w) over (0, inf)^2 (D).

    In-in: two Duffy triangles (r_e = t r_h and mirror). In-out and out-in: tensor product with
    the mapped exterior. Out-out: two Duffy triangles in rho = r - R, outer variable mapped.
    """
    R = radius_nm
    t, wt = _gl01(n)
    T1, T2 = np.meshgrid(t, t, indexing="ij")  # T1 outer, T2 inner
    W = np.outer(wt, wt)
    re_list, rh_list, w_list = [], [], []

    # in-in, triangle r_e < r_h: r_h = R T1, r_e = r_h T2; Jacobian R * r_h
    rh = R * T1
    re = rh * T2
    w = W * R * rh
    re_list += [re, rh]
    rh_list += [rh, re]  # mirror triangle r_h < r_e
    w_list += [w, w]

    # exterior pieces only where the wavefunction leaks (an infinite barrier has none)
    if math.isfinite(kappa_h):  # in-out: r_e in (0, R), r_h = R + rho
        rho, jac = _exterior_map(T2, 1.0 / kappa_h)
        re_list.append(R * T1)
        rh_list.append(R + rho)
        w_list.append(W * R * jac)
    if math.isfinite(kappa_e):  # out-in
        rho, jac = _exterior_map(T2, 1.0 / kappa_e)
        rh_list.append(R * T1)
        re_list.append(R + rho)
        w_list.append(W * R * jac)
    if math.isfinite(kappa_e) and math.isfinite(kappa_h):
        # out-out triangles: outer rho mapped (L = 1/smaller kappa), inner rho' = rho T2
        rho, jac = _exterior_map(T1, 1.0 / min(kappa_e, kappa_h))
        inner = rho * T2
        w = W * jac * rho
        re_list += [R + inner, R + rho]
        rh_list += [R + rho, R + inner]
        w_list += [w, w]
    return (
        np.concatenate([a.ravel() for a in re_list]),
        np.concatenate([a.ravel() for a in rh_list]),
        np.concatenate([a.ravel() for a in w_list]),
    )


def _nodes_1d(radius_nm: float, kappa_sum: float, n: int):
    """Nodes for int_0^inf dr: Gauss-Legendre on (0, R), mapped exterior with L = 1/kappa_sum."""
    t, wt = _gl01(n)
    r = [radius_nm * t]
    w = [radius_nm * wt]
    if not math.isinf(kappa_sum):
        rho, jac = _exterior_map(t, 1.0 / kappa_sum)
        r.append(radius_nm + rho)
        w.append(wt * jac)
    return np.concatenate(r), np.concatenate(w)


# --- analytic angular kernels (B.3, D) -------------------------------------------------------
def _kernels(re, rh, beta):
    """K_N = int_u^v s e^{-beta s} ds and K_C = int_u^v e^{-beta s} ds, u = |re-rh|, v = re+rh.

    Cancellation-free: with a = beta u, d = beta (v - u) = 2 beta min(re, rh),
    K_N = e^{-a} [a (1 - e^{-d}) + P(2, d)]/beta^2 (P(2, d) = 1 - e^{-d}(1 + d)),
    K_C = e^{-a} (1 - e^{-d})/beta.
    """
    a = beta * np.abs(re - rh)
    d = 2.0 * beta * np.minimum(re, rh)
    ea = np.exp(-a)
    om = -np.expm1(-d)
    K_N = ea * (a * om + gammainc(2.0, d)) / beta**2
    K_C = ea * om / beta
    return K_N, K_C


# --- exciton (B.3) ---------------------------------------------------------------------------
class _SphereIntegrals:
    """lambda-independent parts of the B.3 integrals for one (material, R) point."""

    def __init__(self, me_in, mh_in, me_out, mh_out, dEc_eV, dEv_eV, radius_nm, n_quad):
        R = radius_nm
        self.Ee, ke, self.kap_e, st_e = well_level_eV(me_in, me_out, dEc_eV, R)
        self.Eh, kh, self.kap_h, st_h = well_level_eV(mh_in, mh_out, dEv_eV, R)
        self.status = {"electron": st_e, "hole": st_h}
        self.ke, self.kh = ke, kh
        re, rh, w = _nodes_2d(R, self.kap_e, self.kap_h, n_quad)
        ue = well_radial_u(re, ke, self.kap_e, R)
        uh = well_radial_u(rh, kh, self.kap_h, R)
        # 8 pi^2 r_e r_h phi_e^2 phi_h^2 = 8 pi^2 u_e^2 u_h^2/(r_e r_h)
        self.W = w * 8.0 * math.pi**2 * ue**2 * uh**2 / (re * rh)
        c_e = np.where(re < R, HBAR2_2M0_EV_NM2 / me_in, HBAR2_2M0_EV_NM2 / me_out)
        c_h = np.where(rh < R, HBAR2_2M0_EV_NM2 / mh_in, HBAR2_2M0_EV_NM2 / mh_out)
        self.c_sum = c_e + c_h
        self.re, self.rh = re, rh
        # 1-D integrals (independent of lambda)
        r1, w1 = _nodes_1d(R, self.kap_e + self.kap_h, max(4 * n_quad, 32))
        ue1 = well_radial_u(r1, ke, self.kap_e, R)
        uh1 = well_radial_u(r1, kh, self.kap_h, R)
        self.contact_phi = 4.0 * math.pi * np.sum(w1 * (ue1 * uh1 / r1) ** 2)  # int phi_e^2 phi_h^2
        self.overlap_phi = 4.0 * math.pi * np.sum(w1 * ue1 * uh1)  # int phi_e phi_h d^3r

    def parts(self, lam_nm: float):
        """(N, <Phi^2 f^2 (c_e + c_h)>, <Phi^2 f^2/r_eh>) at lambda."""
        K_N, K_C = _kernels(self.re, self.rh, 2.0 / lam_nm)
        WN = self.W * K_N
        return WN.sum(), (WN * self.c_sum).sum(), (self.W * K_C).sum()


def _correlation_eV(ints: _SphereIntegrals, lam_nm: float, eps: float) -> float:
    N, T, C = ints.parts(lam_nm)
    return T / (lam_nm**2 * N) - COULOMB_EV_NM / eps * C / N


def _result(ints, lam, Eg_eV, me_in, mh_in, eps, dSR_eV, hwLT_eV) -> dict:
    mu = me_in * mh_in / (me_in + mh_in)
    a_B = BOHR_NM * eps / mu
    N, T, C = ints.parts(lam)
    kinetic = T / (lam**2 * N)
    coulomb = -COULOMB_EV_NM / eps * C / N
    contact = ints.contact_phi / N
    return {
        "energy_eV": float(Eg_eV + ints.Ee + ints.Eh + kinetic + coulomb),
        "lam_nm": lam,
        "contact_density_nm3": float(contact),
        "overlap2": float(ints.overlap_phi**2 / N),
        "electron_level_eV": ints.Ee,
        "hole_level_eV": ints.Eh,
        "dark_bright_eV": float((dSR_eV + hwLT_eV / 3.0) * math.pi * a_B**3 * contact),
        "correlation_eV": float(kinetic + coulomb),
        "kinetic_corr_eV": float(kinetic),
        "coulomb_eV": float(coulomb),
        "kappa_e_nm": ints.kap_e,
        "kappa_h_nm": ints.kap_h,
        "a_B_nm": a_B,
        "Ry_eV": RYDBERG_EV * mu / eps**2,
        "norm": float(N),
        "status": dict(ints.status),
    }


def sphere_at_lambda_ref(
    lam_nm,
    Eg_eV,
    me_in,
    mh_in,
    me_out,
    mh_out,
    eps,
    dEc_eV,
    dEv_eV,
    radius_nm,
    dSR_eV=0.0,
    hwLT_eV=0.0,
    n_quad=16,
) -> dict:
    """Same outputs as :func:`solve_sphere_ref` at a fixed lambda [nm] (no optimisation).

    Extra keys: kinetic_corr_eV = <Phi^2 f^2 (c_e + c_h)>/(lambda^2 N) and
    coulomb_eV = -e^2/(4 pi eps0 eps) <Phi^2 f^2/r_eh>/N. lambda -> inf gives the uncorrelated
    product state (f = 1).
    """
    ints = _SphereIntegrals(me_in, mh_in, me_out, mh_out, dEc_eV, dEv_eV, radius_nm, n_quad)
    return _result(ints, float(lam_nm), Eg_eV, me_in, mh_in, eps, dSR_eV, hwLT_eV)


def _polish_log_lambda(E, x0: float, h: float = 1e-4, steps: int = 2) -> float:
    """Newton steps on dE/dx (x = log lambda) from 3-point differences.

    Brent (scipy's bounded method) stops at ~sqrt(eps)|x| ~ 3e-8 in log lambda because E is flat
    at the optimum; the observables are first order in that error. Each step moves to the
    vertex of the parabola through x +- h (error ~ h^2 E'''/E'' ~ 1e-9, rounding ~ 1e-12).
    Safeguarded: a step is accepted only if it is small and does not raise E.
    """
    x, Ex = x0, E(x0)
    for _ in range(steps):
        Ep, Em = E(x + h), E(x - h)
        curv = Ep - 2.0 * Ex + Em
        if not curv > 0.0:
            break
        dx = -0.5 * h * (Ep - Em) / curv
        if abs(dx) > 10.0 * h:
            break
        E_new = E(x + dx)
        if E_new > Ex + 1e-15 * abs(Ex):
            break
        x, Ex = x + dx, E_new
    return x


def solve_sphere_ref(
    Eg_eV,
    me_in,
    mh_in,
    me_out,
    mh_out,
    eps,
    dEc_eV,
    dEv_eV,
    radius_nm,
    dSR_eV=0.0,
    hwLT_eV=0.0,
    n_quad=16,
) -> dict:
    """Correlated variational exciton in a sphere (B.3) and its exchange splitting (B.4).

    Masses in m0 (in-dot, matrix), eps the uniform effective dielectric constant, band offsets
    dEc_eV, dEv_eV (``math.inf``: impenetrable), radius [nm], dSR_eV = Delta_SR^bulk and
    hwLT_eV = hbar omega_LT [eV], n_quad the Gauss-Legendre order per dimension per piece.

    Returns a dict: energy_eV (exchange-free E_X), lam_nm, contact_density_nm3
    (int |Psi(r, r)|^2 d^3r), overlap2 (|int Psi(r, r) d^3r|^2), electron_level_eV,
    hole_level_eV, dark_bright_eV, plus correlation_eV (E_X - E_g - E_e - E_h), kappa_e_nm,
    kappa_h_nm, a_B_nm, Ry_eV (of the in-dot reduced mass), norm (N = <Phi^2 f^2>), the two
    parts of the correlation (see :func:`sphere_at_lambda_ref`) and status (dict of the e and h
    level statuses). Raises ``ValueError`` (no bound state, not type I)
    or ``RuntimeError`` (lambda at the search bound or not converged).
    """
    ints = _SphereIntegrals(me_in, mh_in, me_out, mh_out, dEc_eV, dEv_eV, radius_nm, n_quad)
    a_B = BOHR_NM * eps * (me_in + mh_in) / (me_in * mh_in)
    lo, hi = math.log(a_B / _LAMBDA_RANGE), math.log(a_B * _LAMBDA_RANGE)
    res = minimize_scalar(
        lambda x: _correlation_eV(ints, math.exp(x), eps),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-10, "maxiter": 500},
    )
    if not res.success:
        raise RuntimeError(f"lambda optimisation not converged: {res.message}")
    if min(res.x - lo, hi - res.x) < 1e-6:
        raise RuntimeError(f"lambda at the search bound: lambda = {math.exp(res.x)} nm")
    x = _polish_log_lambda(lambda y: _correlation_eV(ints, math.exp(y), eps), res.x)
    lam = math.exp(x)
    return _result(ints, lam, Eg_eV, me_in, mh_in, eps, dSR_eV, hwLT_eV)
