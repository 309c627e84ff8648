"""Pytrees of the forward model: inputs (`SphereParams`), static settings (`SolverConfig`) and
outputs (`SphereSolution`). Leaves are numbers or arrays only, so any two instances stack, vmap
and `jax.tree.map` freely (architecture.md §3.1)."""

from __future__ import annotations

from typing import NamedTuple

from jax.typing import ArrayLike

__all__ = ["SolverConfig", "SphereParams", "SphereSolution"]


class SphereParams(NamedTuple):
    """Physical inputs of one dot: a sphere of radius R (given separately) in a matrix.

    **Fields** (units in the names; masses in free-electron masses m0):

    - `Eg_eV`: band gap of the dot material (eV).
    - `me_in`, `mh_in`: electron and hole effective masses inside the dot (m0).
    - `me_out`, `mh_out`: the same in the matrix (m0); they enter the BenDaniel-Duke matching.
    - `eps`: effective dielectric constant screening the e-h Coulomb interaction in the dot.
    - `dEc_eV`, `dEv_eV`: conduction- and valence-band offsets, dot vs matrix (eV, > 0 for a
      type-I dot); `math.inf` gives an impenetrable sphere.
    - `dSR_eV`: bulk short-range exchange splitting Delta_SR^bulk (eV), default 0 (uncalibrated,
      physics.md A.5).
    - `hwLT_eV`: bulk longitudinal-transverse splitting hbar*omega_LT (eV), default 0; sets the
      long-range exchange and the radiative rate (physics.md B.4-B.5).
    - `eps_bg_in`, `eps_bg_out`: background dielectric constants of dot and matrix for the
      dielectric-contrast exchange term, the local-field factor and the matrix index
      n2 = sqrt(eps_bg_out) (B.4-B.5). 0 (default) means "equal to `eps`" [ASSUMPTION, §E].
    """

    Eg_eV: ArrayLike
    me_in: ArrayLike
    mh_in: ArrayLike
    me_out: ArrayLike
    mh_out: ArrayLike
    eps: ArrayLike
    dEc_eV: ArrayLike
    dEv_eV: ArrayLike
    dSR_eV: ArrayLike = 0.0
    hwLT_eV: ArrayLike = 0.0
    eps_bg_in: ArrayLike = 0.0
    eps_bg_out: ArrayLike = 0.0


class SolverConfig(NamedTuple):
    """Numerical settings; a static (hashable) argument: changing one recompiles.

    - `n_quad`: Gauss-Legendre order per dimension of the split 2-D quadrature (physics.md §D):
      the out-out pieces use n_quad, the in-in pieces n_quad - 2 and the mixed pieces 2 n_quad
      (`qdsim.model.exciton.piece_orders`: the in-in pieces converge ~3 digits per 2 orders, the
      mapped exterior ~1, and the mixed pieces cost O(n) per lambda). Measured against order 32
      over a 64 x 64 default (R, x) grid: at 12 (default), status-OK points are within 1e-11 eV
      and 2e-9 relative in Delta_DB (10: 3e-9 eV, 2e-6; 14: 2e-13 eV, 4e-11). Points flagged
      NEAR_THRESHOLD (a level within the exciton binding energy of its barrier top) converge
      more slowly: at 12, 6e-7 eV and 3e-4 in Delta_DB (10: 5e-6 eV, 3e-3; 14: 2e-7 eV, 5e-5;
      16: 5e-8 eV, 7e-6).
    - `n_quad_1d`: order of the 1-D integrals (contact density, overlap) per piece.
    - `root_iters`: bisection steps of the single-particle root (fixed; 64 reaches float64
      resolution of k R in (0, pi)).
    - `lam_iters`: cap on safeguarded-Newton steps in log(lambda).
    - `lam_tol`: tolerance on log(lambda*): Newton stops once a step is below sqrt(lam_tol),
      which leaves ~1.6 step^2 <= 1.6 lam_tol (quadratic convergence, measured). At 1e-8 the
      norm, contact density and Delta_DB are within 3e-8 relative of the exact optimum at worst
      (the last step is usually far smaller: the grid figures above include this error) and
      the energy within 1e-13 eV (the energy is stationary in lambda).
    - `dielectric`: add the first-order dielectric-confinement (image-charge) shift
      <Sigma_e> + <Sigma_h> + <V_pol> of `qdsim.model.dielectric` (Brus 1984; Bolcatto & Proetto
      1999) to `energy_eV` (and so to the bright and dark energies; `binding_energy_eV` keeps
      Eg + E_e + E_h - energy_eV). Dot eps1 = `eps_bg_in`, matrix eps2 = `eps_bg_out` (0 means
      `eps`, as for the exchange terms: set both). Off by default: the default materials give
      no background constants (eps_bg_in = eps_bg_out = 0, physics.md A.1 [NOT FOUND]), with
      which the shift is exactly 0 anyway; the default path is untouched (static switch).
    - `dielectric_cut_nm`: half-width of the interface layer across which the sharp-interface
      self-energy (divergent as 1/|r - R|) is replaced by a straight line
      (`qdsim.model.dielectric.self_energy_eV`; 0.3 nm ~ half a lattice constant [ASSUMPTION]).
    - `ansatz`: "product" (default: Phi_e Phi_h exp(-r_eh/lambda), physics.md B.3) or
      "correlated" (`qdsim.model.correlated`: a Rayleigh-Ritz basis
      r_e^m r_h^n exp(-r_eh/lambda_k) around the product optimum; variational, within
      0.002 Ry* of the C.2 CI energies at R = 0.5-2 a_B with the defaults below, against
      0.031 Ry* for the product ansatz; energy, contact density and overlap^2 are its own,
      `lam_nm` stays the product lambda*). The product path is untouched (static switch).
      The r^m factors are frozen at r = R outside the dot, so at NEAR_THRESHOLD points the
      basis does not reshape a leaking carrier's tail: there the gain over the product energy
      is small (0.01-0.38 meV on the default grid, against 0.08-0.47 at status-OK points).
    - `corr_lambdas`: number K of correlation lengths lambda* rho^j, j centred on 0.
    - `corr_powers`: r_e^m r_h^n factors with m, n even and m + n <= 2 corr_powers
      (0: functions of r_eh only, which saturate ~0.013 Ry* above CI; 2: ~1e-4 Ry*). From 2
      on the basis also gets exterior functions exp(-alpha kappa (r - R)) - 1 per carrier
      (zero inside, alpha = 0.5, 1.5, kappa the carrier's decay constant), which reshape a
      leaking carrier's tail: near threshold (P_ASYM, R = 0.5 a_B) they close 98 % of the
      product's gap to an independent CI against 28 % for the default basis, at ~30-40x the
      product's cost per point (default ~5x; README accuracy table).
    - `corr_ratio`: rho, the ratio of neighbouring lambdas of the ladder.
    """

    n_quad: int = 12
    n_quad_1d: int = 32
    root_iters: int = 64
    lam_iters: int = 40
    lam_tol: float = 1e-8
    dielectric: bool = False
    dielectric_cut_nm: float = 0.3
    ansatz: str = "product"
    corr_lambdas: int = 3
    corr_powers: int = 1
    corr_ratio: float = 2.5


class SphereSolution(NamedTuple):
    """Results for one dot (arrays when vectorised). Failed points hold NaN and a status flag.

    - `energy_eV`: exchange-free exciton energy Eg + E_e + E_h + correlation (eV), plus the
      dielectric-confinement shift when `SolverConfig.dielectric`; equals the dark (J = 0) state
      energy at first order in the exchange.
    - `bright_energy_eV`: bright triplet energy = energy_eV + dark_bright_eV (eV): the emission.
    - `dark_energy_eV`: dark singlet energy (eV).
    - `dark_bright_eV`: dark-bright splitting Delta_DB (eV), physics.md B.4.
    - `lam_nm`: optimised correlation length lambda of f = exp(-r_eh/lambda) (nm).
    - `contact_density_nm3`: integral of |Psi(r, r)|^2 d^3r (nm^-3), Psi normalised.
    - `overlap2`: |integral of Psi(r, r) d^3r|^2 (dimensionless).
    - `electron_level_eV`, `hole_level_eV`: single-particle confinement energies from the band
      edges of the dot (eV).
    - `binding_energy_eV`: Eg + E_e + E_h - energy_eV (eV), > 0 when correlation lowers E.
    - `radiative_rate_s`: radiative rate of one bright component (1/s), B.5.
    - `radiative_lifetime_s`: its inverse (s); inf when hwLT_eV = 0.
    - `status`: int32 flags (`qdsim.Status`), 0 = ok.
    """

    energy_eV: ArrayLike
    bright_energy_eV: ArrayLike
    dark_energy_eV: ArrayLike
    dark_bright_eV: ArrayLike
    lam_nm: ArrayLike
    contact_density_nm3: ArrayLike
    overlap2: ArrayLike
    electron_level_eV: ArrayLike
    hole_level_eV: ArrayLike
    binding_energy_eV: ArrayLike
    radiative_rate_s: ArrayLike
    radiative_lifetime_s: ArrayLike
    status: ArrayLike
