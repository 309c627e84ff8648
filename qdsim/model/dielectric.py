"""Dielectric confinement: image-charge (polarisation) energies of a carrier pair in a sphere.

A sphere of radius R and dielectric constant eps1 (`eps_in`) sits in a matrix eps2 (`eps_out`).
Gaussian units, energies in eV, lengths in nm, e^2 = `E2_4PIEPS0_eV_nm`.

**Multipole kernels** (Brus, J. Chem. Phys. 80, 4403 (1984); Bolcatto & Proetto, PRB 59, 12487
(1999) [UNVERIFIED: papers not re-read; the coefficients are re-derived from the l-resolved
boundary conditions of a dielectric sphere and pinned by the tests' independent limits: l = 0 at
the centre, the Kelvin image for eps2 -> inf (all l), the planar image near the surface]):

- charge e at r < R, induced potential at r' < R:
  phi_ind = (e / eps1 R) sum_l alpha_l (r r' / R^2)^l P_l(cos theta),
  alpha_l = (l + 1)(eps1 - eps2) / (l eps1 + (l + 1) eps2);
- charge e at r > R, induced potential at r' > R:
  phi_ind = (e / eps2 R) sum_l gamma_l (R^2 / r r')^(l+1) P_l(cos theta),
  gamma_l = l (eps2 - eps1) / (l eps1 + (l + 1) eps2)   (no l = 0 term: no net induced charge).

**Self-polarisation energy** Sigma(r) = (e/2) phi_ind(r, r):

    Sigma_in(r)  = e^2/(2 eps1 R) sum_l alpha_l y^l,        y = (r/R)^2,
    Sigma_out(r) = e^2/(2 eps2 R) z sum_l gamma_l z^l,      z = (R/r)^2.

Summed in closed form [DERIVED here; checked against the brute-force series in the tests]:
with a = (eps1 - eps2)/(eps1 + eps2) and c = eps2/(eps1 + eps2) in (0, 1),
alpha_l = a (1 + (1 - c)/(l + c)), gamma_l = -a (1 - c/(l + c)), so

    sum_l alpha_l y^l = a [1/(1 - y) + (1 - c) Phi(y, c)],
    sum_l gamma_l z^l = -a [1/(1 - z) - c Phi(z, c)],      Phi(y, c) = sum_l y^l/(l + c),

Phi (Lerch's transcendent) by two Kummer steps, 1/(l+c) = 1/(l+1) + (1-c)/((l+1)(l+2))
+ (1-c)(2-c)/((l+c)(l+1)(l+2)): closed forms -log(1-y)/y and ((1-y)log(1-y) + y)/y^2 plus a
remainder series whose terms fall as l^-3 even at y = 1 (`n_terms` terms: error < 1/(2 n^2)).
Limits: Sigma_in(0) = e^2/(2R)(1/eps2 - 1/eps1) (the l = 0 term, Brus 1984); eps2 -> inf,
Sigma_in = -e^2 R/(2 eps1 (R^2 - r^2)) (grounded metal sphere, Kelvin image); near the surface
Sigma -> e^2 (eps1 - eps2)/(4 eps1 (eps1 + eps2) |R - r|) (the planar image charge), i.e. the
sharp-interface self-energy diverges as 1/|R - r| on both sides.

**Regularisation** [ASSUMPTION, a parameter]: the divergence is an artefact of the step in eps;
Bolcatto & Proetto (1999) show that a dielectric profile graded over a width ~ a lattice constant
makes Sigma finite and continuous, with the sharp result recovered a few widths away. Here
Sigma(r) is the sharp-interface result for |r - R| >= `cut_nm` and the straight line between
Sigma_in(R - cut) and Sigma_out(R + cut) inside the layer |r - R| < cut. This is the simplest
finite, continuous profile with the right sharp limits; it is *not* the Bolcatto-Proetto profile
itself. Default cut 0.3 nm (about half the pseudo-cubic lattice constant, 0.6 nm) [ASSUMPTION];
the study 12 shows the sensitivity to it. With infinite barriers the density vanishes at R and
the cut only matters as cut -> 0 at order cut^2.

**First-order energies on the product ansatz** Phi = phi_e(r_e) phi_h(r_h) (s states):

    <Sigma_i> = 4 pi int u_i(r)^2 Sigma(r) dr,
    <V_pol>   = -e^2 (1/eps2 - 1/eps1) <1 / max(r_e, r_h, R)>.

The second is exact for an uncorrelated pair of s states: the angular average kills l >= 1, and
the l = 0 (monopole) field of a shell of charge at r_e is D = e/r'^2 for r' > r_e (Gauss), so the
pair energy is -e^2 int_{max(r_e, r_h)}^inf dr'/(eps(r') r'^2); minus the same with eps1
everywhere gives the formula [DERIVED]. Both carriers inside: -e^2/R (1/eps2 - 1/eps1), which
cancels the l = 0 parts of the two self-energies exactly (Brus 1984): the net shift comes from
l >= 1 of the self-energies only.

**Neglected** [ASSUMPTION]: (i) the correlation factor f(r_eh): on Phi^2 f^2 the l >= 1 pair
terms -e^2/(eps1 R) alpha_l <(r_e r_h/R^2)^l P_l(cos theta)> no longer vanish (e and h lean to
the same side, so <cos theta> > 0); the l = 1 term is -e^2 alpha_1/(eps1 R^3) <r_e . r_h> with
<r_e . r_h> = (<r_e^2> + <r_h^2> - <r_eh^2>)/2, which vanishes without correlation. Measured
(studies/12, infinite barrier, x = 0.3 dot in eps_out = 2.4, lambda from solve_sphere): about
-1.1 meV at every R = 1.5-8 nm (in strong confinement <r_e . r_h>_f ~ R^3/lambda, so the term
tends to a constant ~ e^2 alpha_1/(eps1 lambda)), i.e. 3 % (R = 1.5 nm) to 12 % (R = 8 nm) of
the first-order shift; it scales with alpha_1, ~20x smaller for the buried dots (eps 9.07 in
8.42). (ii) the polarisation potential's feedback on
the single-particle states and on lambda (second order in the shift). (iii) the dielectric
constants are frequency-independent (which of eps_inf / eps_s screens is open, physics.md A.1).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from qdsim.constants import E2_4PIEPS0_eV_nm
from qdsim.model.quadrature import gauss_legendre_01
from qdsim.model.well import WellState, sin_0_pi

__all__ = [
    "DEFAULT_CUT_nm",
    "pair_polarisation_eV",
    "polarisation_shift_eV",
    "self_energy_eV",
    "self_energy_expectation_eV",
]

#: Half-width of the interface layer where the sharp-interface self-energy is replaced by a line.
DEFAULT_CUT_nm = 0.3
_N_TERMS = 256
_SMALL_Y = 1e-2


def _log_terms(y):
    """(-log(1-y)/y, ((1-y) log(1-y) + y)/y^2) for 0 <= y < 1, Taylor series near y = 0."""
    small = y < _SMALL_Y
    ys = jnp.where(small, 0.5, y)
    lg = jnp.log1p(-ys)
    t1 = -lg / ys
    t2 = ((1.0 - ys) * lg + ys) / (ys * ys)
    # sum y^l/(l+1) and sum y^l/((l+1)(l+2)), l <= 8: error < y^9 < 1e-18 for y < 1e-2
    s1 = sum(y**l / (l + 1) for l in range(9))
    s2 = sum(y**l / ((l + 1) * (l + 2)) for l in range(9))
    return jnp.where(small, s1, t1), jnp.where(small, s2, t2)


def lerch_phi(y, c, n_terms: int = _N_TERMS):
    """Phi(y, c) = sum_{l>=0} y^l / (l + c) for 0 <= y < 1, 0 < c <= 1 (two Kummer steps, see
    module docstring; remainder truncated after `n_terms` terms, error < 1/(2 n_terms^2))."""
    y = jnp.asarray(y, dtype=float)
    c = jnp.asarray(c, dtype=float)
    t1, t2 = _log_terms(y)
    ls = jnp.arange(n_terms, dtype=float)
    shape = jnp.broadcast_shapes(y.shape, c.shape)
    yb, cb = jnp.broadcast_to(y, shape)[..., None], jnp.broadcast_to(c, shape)[..., None]
    powers = jnp.cumprod(
        jnp.concatenate([jnp.ones_like(yb), jnp.repeat(yb, n_terms - 1, -1)], -1), -1
    )
    rest = jnp.sum(powers / ((ls + cb) * (ls + 1.0) * (ls + 2.0)), axis=-1)
    return t1 + (1.0 - c) * (t2 + (2.0 - c) * rest)


def _ac(eps_in, eps_out):
    return (eps_in - eps_out) / (eps_in + eps_out), eps_out / (eps_in + eps_out)


def _sigma_in(r, R, eps_in, eps_out, n_terms):
    a, c = _ac(eps_in, eps_out)
    y = (r / R) ** 2
    return (
        E2_4PIEPS0_eV_nm
        / (2.0 * eps_in * R)
        * a
        * (1.0 / (1.0 - y) + (1.0 - c) * lerch_phi(y, c, n_terms))
    )


def _sigma_out(r, R, eps_in, eps_out, n_terms):
    a, c = _ac(eps_in, eps_out)
    z = (R / r) ** 2
    return (
        -E2_4PIEPS0_eV_nm
        / (2.0 * eps_out * R)
        * a
        * z
        * (1.0 / (1.0 - z) - c * lerch_phi(z, c, n_terms))
    )


def self_energy_eV(r_nm, R_nm, eps_in, eps_out, cut_nm=DEFAULT_CUT_nm, n_terms: int = _N_TERMS):
    """Regularised self-polarisation energy Sigma(r) of one carrier (eV) at radius `r_nm`.

    Sharp-interface multipole sum (module docstring, Brus 1984) for |r - R| >= `cut_nm`; the
    straight line between its values at R -+ cut inside the layer. Sign independent of the
    carrier's charge. Zero exactly when eps_in == eps_out. Jittable and differentiable.
    """
    r = jnp.asarray(r_nm, dtype=float)
    lo, hi = R_nm - cut_nm, R_nm + cut_nm
    s_lo = _sigma_in(lo, R_nm, eps_in, eps_out, n_terms)
    s_hi = _sigma_out(hi, R_nm, eps_in, eps_out, n_terms)
    s_in = _sigma_in(jnp.minimum(r, lo), R_nm, eps_in, eps_out, n_terms)
    s_out = _sigma_out(jnp.maximum(r, hi), R_nm, eps_in, eps_out, n_terms)
    s_mid = s_lo + (s_hi - s_lo) * (r - lo) / (2.0 * cut_nm)
    return jnp.where(r <= lo, s_in, jnp.where(r >= hi, s_out, s_mid))


# --- radial quadrature on a WellState's density 4 pi u(r)^2 -----------------------------------
_T_IN, _W_IN = gauss_legendre_01(48)
_T_LAY, _W_LAY = gauss_legendre_01(16)
_T_OUT, _W_OUT = gauss_legendre_01(64)
_T_PAN, _W_PAN = gauss_legendre_01(24)
_PANEL_EDGES = np.array([0.0, 4.0**-4, 4.0**-3, 4.0**-2, 4.0**-1, 1.0])
#: exterior integrands are cut where exp(-2 kappa rho) < exp(-_CUT_EXP)
_CUT_EXP = 40.0


def _density(st: WellState, r, R):
    """4 pi u(r)^2 of the well state (u = r psi, normalised)."""
    inside = r <= R
    rin = jnp.minimum(r, R)
    u_in = st.amp_in * sin_0_pi(jnp.clip(st.k_nm * rin, 0.0, np.pi))
    u_out = st.amp_out * jnp.exp(-st.kappa_nm * jnp.maximum(r - R, 0.0))
    return 4.0 * np.pi * jnp.where(inside, u_in * u_in, u_out * u_out)


def _radial_nodes(st: WellState, R, cut):
    """Nodes and weights (r, w) of int_0^inf dr, graded log-uniformly in |R - r| toward R +- cut
    (where Sigma ~ 1/|R - r|), Gauss-Legendre on the layer, log-uniform outside to the decay."""
    # inside [0, R - cut]: r = R - exp(v), v from log(R) down to log(cut)
    v0, v1 = jnp.log(R), jnp.log(cut)
    v = v0 + (v1 - v0) * _T_IN
    r1 = R - jnp.exp(v)
    w1 = _W_IN * (v0 - v1) * jnp.exp(v)
    # layer [R - cut, R + cut], split at R (the density has a kink there)
    r2 = jnp.concatenate([R - cut + cut * _T_LAY, R + cut * _T_LAY])
    w2 = jnp.concatenate([cut * _W_LAY, cut * _W_LAY])
    # outside [R + cut, R + L]: r = R + exp(v), v from log(cut) to log(L)
    L = cut + _CUT_EXP / (2.0 * st.kappa_nm)
    u0, u1 = jnp.log(cut), jnp.log(L)
    v = u0 + (u1 - u0) * _T_OUT
    r3 = R + jnp.exp(v)
    w3 = _W_OUT * (u1 - u0) * jnp.exp(v)
    return jnp.concatenate([r1, r2, r3]), jnp.concatenate([w1, w2, w3])


def self_energy_expectation_eV(
    st: WellState, R_nm, eps_in, eps_out, cut_nm=DEFAULT_CUT_nm, n_terms: int = _N_TERMS
):
    """<Sigma> = 4 pi int u^2 Sigma(r) dr (eV), first order on the well state `st`."""
    r, w = _radial_nodes(st, R_nm, cut_nm)
    sig = self_energy_eV(r, R_nm, eps_in, eps_out, cut_nm, n_terms)
    return jnp.sum(w * _density(st, r, R_nm) * sig)


def _tail(st: WellState, rho):
    """Probability beyond R + rho: 4 pi amp_out^2 exp(-2 kappa rho)/(2 kappa)."""
    return 4.0 * np.pi * st.amp_out**2 * jnp.exp(-2.0 * st.kappa_nm * rho) / (2.0 * st.kappa_nm)


def inverse_max_radius_nm(e: WellState, h: WellState, R_nm):
    """<1/max(r_e, r_h, R)> (1/nm) on the product density:
    F_e(R) F_h(R)/R + int_R^inf [P_e (1 - T_h) + P_h (1 - T_e)]/r dr, T = tail probability."""
    q = 2.0 * jnp.minimum(e.kappa_nm, h.kappa_nm)
    # rho in [0, 40/q]: Gauss-Legendre on geometrically graded panels (edges 40/q * 4^-k)
    edges = _CUT_EXP / q * _PANEL_EDGES
    lo, width = edges[:-1, None], (edges[1:] - edges[:-1])[:, None]
    rho = (lo + width * _T_PAN).ravel()
    w = (width * _W_PAN).ravel()
    r = R_nm + rho
    pe, ph = _density(e, r, R_nm), _density(h, r, R_nm)
    integrand = (pe * (1.0 - _tail(h, rho)) + ph * (1.0 - _tail(e, rho))) / r
    inside = (1.0 - _tail(e, 0.0)) * (1.0 - _tail(h, 0.0)) / R_nm
    return inside + jnp.sum(w * integrand)


def pair_polarisation_eV(e: WellState, h: WellState, R_nm, eps_in, eps_out):
    """<V_pol> = -e^2 (1/eps_out - 1/eps_in) <1/max(r_e, r_h, R)> (eV): the polarisation part
    of the e-h attraction on the uncorrelated product of s states (exact there; module
    docstring). Both carriers confined: -e^2/R (1/eps_out - 1/eps_in) (Brus 1984)."""
    return -E2_4PIEPS0_eV_nm * (1.0 / eps_out - 1.0 / eps_in) * inverse_max_radius_nm(e, h, R_nm)


def polarisation_shift_eV(
    e: WellState,
    h: WellState,
    R_nm,
    eps_in,
    eps_out,
    cut_nm=DEFAULT_CUT_nm,
    n_terms: int = _N_TERMS,
):
    """First-order dielectric-confinement shift of the exciton energy (eV):
    <Sigma_e> + <Sigma_h> + <V_pol> on the product ansatz (module docstring)."""
    se = self_energy_expectation_eV(e, R_nm, eps_in, eps_out, cut_nm, n_terms)
    sh = self_energy_expectation_eV(h, R_nm, eps_in, eps_out, cut_nm, n_terms)
    return se + sh + pair_polarisation_eV(e, h, R_nm, eps_in, eps_out)
