"""Exciton fine structure in a magnetic field: the 4x4 dark/bright Hamiltonian and its global fit.

Physics: design/physics.md B.4 (dark singlet D below a bright triplet X, Y, Z) and B.6 (Zeeman
Hamiltonian). In the basis {D, X, Y, Z} (dot axes fixed, X, Y, Z the linear dipoles of the bright
triplet)

    H = [[E_D, d_x, d_y, d_z], [d_x, E_X, ., .], [d_y, ., E_Y, .], [d_z, ., ., E_Z]]
        + (g_X mu_B / 2) [[0, 0], [0, B.S]] + gamma_dia B^2 * 1,

with (S_k)_ij = -i eps_kij on the bright block and d_k = (g_e - g_h) mu_B B_k / 2. mu_B is taken
from `scipy.constants` (eV/T). The parameters (eV, tesla; `PARAM_NAMES`):

- ``E_bright_eV``: mean zero-field bright energy (E_X + E_Y + E_Z) / 3.
- ``dark_bright_eV``: Delta_DB = E_bright - E_D (> 0: dark ground state).
- ``split_xy_eV``: E_Y - E_X, the in-plane bright anisotropy (the paper's zero-field doublet).
- ``split_z_eV``: E_Z - (E_X + E_Y) / 2, the axial bright anisotropy.
- ``g_X``: exciton g-factor g_e + g_h; the J_z = +-1 pair splits by g_X mu_B B.
- ``g_e_minus_g_h``: g_e - g_h, the dark-bright mixing (D couples to the dipole along B).
- ``gamma_dia_eV_T2``: diamagnetic coefficient (eV/T^2), the same for all four states.

So E_X = E_b - s_z/3 - s_xy/2, E_Y = E_b - s_z/3 + s_xy/2, E_Z = E_b + 2 s_z/3 and
E_D = E_b - Delta_DB.

Geometry: the field direction in dot axes, ``"faraday"`` = z (the optical axis, the paper's
configuration, Methods), ``"voigt"`` = x, or any 3-vector. A negative field reverses it.

Degeneracies (what energies alone cannot tell; the fit reports them in ``notes``):

- The spectrum is even in g_X (H(-g_X) = H(g_X)*, same eigenvalues): without circular
  polarisation labels only |g_X| is determined and is reported as g_X >= 0. With "sigma+" /
  "sigma-" labels the sign is fixed by the convention: sigma+ is the J_z = +1 state
  (X + iY)/sqrt(2) (S_z = +1 with the S above), photon angular momentum +hbar along +B; with
  g_X > 0 it is the upper line of the pair (the paper's 7 T assignment, Fig. 3f).
- The spectrum is even in g_e - g_h (the unitary diag(-1, 1, 1, 1) flips every d_k), and so is
  the dark line's brightening (proportional to d^2): only |g_e - g_h| is determined, reported >= 0.
  Polarisation does not help either.
- In Faraday geometry (field along z) the spectrum is even in split_xy (relabel X <-> Y): |E_Y -
  E_X| is reported.
- The Zeeman and mixing blocks are traceless: the mean of the four eigenvalues is
  (E_D + E_X + E_Y + E_Z) / 4 + gamma B^2, so energies relative to their mean (the paper's
  Fig. 3e) do not depend on gamma_dia or on the absolute energy (`offset="per_field"` fits such
  relative data and also absorbs spectral diffusion between fields).
- If the dark and the Z line are observed at one field only, Delta_DB, split_z and g_e - g_h are
  not separable (two numbers, three unknowns): fix one of them (``fix=``). physics.md C.5.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.constants as _sc
from scipy.optimize import least_squares, linear_sum_assignment

from qdsim.analysis.fitting import FitWarning
from qdsim.analysis.spectroscopy.spectra import GoodnessOfFit, _readonly

__all__ = [
    "MU_B_eV_T",
    "PARAM_NAMES",
    "STATE_NAMES",
    "ZeemanFitWarning",
    "ZeemanLevels",
    "ZeemanResult",
    "ZeemanStates",
    "fit_zeeman",
    "field_direction",
    "parse_polarization",
    "zeeman_energies",
    "zeeman_hamiltonian",
    "zeeman_states",
]

MU_B_eV_T: float = _sc.physical_constants["Bohr magneton in eV/T"][0]
"""Bohr magneton in eV/T (CODATA, from scipy.constants)."""

PARAM_NAMES: tuple[str, ...] = (
    "E_bright_eV",
    "dark_bright_eV",
    "split_xy_eV",
    "split_z_eV",
    "g_X",
    "g_e_minus_g_h",
    "gamma_dia_eV_T2",
)
"""Names of the B.6 model parameters, in the order of covariance rows (eV, eV/T^2, 1)."""

STATE_NAMES: tuple[str, ...] = ("D", "X", "Y", "Z")
"""The zero-field basis: dark singlet, then the three linear bright dipoles (dot axes)."""

_DEFAULTS: dict[str, float] = {
    "dark_bright_eV": 0.0,
    "split_xy_eV": 0.0,
    "split_z_eV": 0.0,
    "g_X": 0.0,
    "g_e_minus_g_h": 0.0,
    "gamma_dia_eV_T2": 0.0,
}

# The Levi-Civita spin-1 matrices on the bright block, (S_k)_ij = -i eps_kij.
_EPS = np.zeros((3, 3, 3))
for _i, _j, _k in itertools.permutations(range(3)):
    _EPS[_i, _j, _k] = np.linalg.det(np.eye(3)[[_i, _j, _k]])
_S = -1j * _EPS  # _S[k] is S_k


class ZeemanFitWarning(FitWarning):
    """A fit whose result needs care: undetermined parameters, unstable assignment."""


# ------------------------------------------------------------------------------------------
# forward model
# ------------------------------------------------------------------------------------------


def field_direction(geometry: str | Sequence[float] | np.ndarray = "faraday") -> np.ndarray:
    """Unit vector of the magnetic field in dot axes.

    **Arguments:**
    - `geometry`: ``"faraday"`` (field along the dot z axis = optical axis), ``"voigt"`` (along
      x, perpendicular to the optical axis) or a 3-vector (any length > 0).

    **Returns:** float array (3,), unit length. Raises `ValueError` on anything else.
    """
    if isinstance(geometry, str):
        g = geometry.strip().lower()
        if g == "faraday":
            return np.array([0.0, 0.0, 1.0])
        if g == "voigt":
            return np.array([1.0, 0.0, 0.0])
        raise ValueError(f"geometry must be 'faraday', 'voigt' or a 3-vector, got {geometry!r}")
    b = np.asarray(geometry, dtype=float)
    if b.shape != (3,) or not np.all(np.isfinite(b)) or np.linalg.norm(b) == 0:
        raise ValueError(f"geometry vector must be 3 finite numbers, not all 0; got {geometry!r}")
    return b / np.linalg.norm(b)


def _as_param_dict(params: Any) -> dict[str, float]:
    """Mapping or result object -> full dict of the seven B.6 parameters (defaults 0)."""
    if hasattr(params, "params") and not isinstance(params, Mapping):
        params = params.params
    if not isinstance(params, Mapping):
        raise TypeError("params must be a mapping of PARAM_NAMES to values or a ZeemanResult")
    unknown = set(params) - set(PARAM_NAMES)
    unknown = {k for k in unknown if not str(k).startswith("offset_") and k != "dark_scale"}
    if unknown:
        raise ValueError(f"unknown Zeeman parameter(s) {sorted(unknown)}; known: {PARAM_NAMES}")
    if "E_bright_eV" not in params:
        raise ValueError("params needs 'E_bright_eV' (the mean zero-field bright energy, eV)")
    out = {"E_bright_eV": float(params["E_bright_eV"])}
    for k, v in _DEFAULTS.items():
        out[k] = float(params.get(k, v))
    for k, v in out.items():
        if not math.isfinite(v):
            raise ValueError(f"parameter {k} = {v} is not finite")
    return out


def _basis_matrices(field_T: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dH/dp for each of the seven parameters at each field: complex array (7, N, 4, 4).

    H is linear in every parameter, so H = sum_p p * dH/dp (eV; g factors dimensionless).
    """
    B = np.asarray(field_T, dtype=float)
    n = B.size
    out = np.zeros((7, n, 4, 4), dtype=complex)
    out[0] = np.eye(4)
    out[1, :, 0, 0] = -1.0
    out[2, :, 1, 1] = -0.5
    out[2, :, 2, 2] = 0.5
    out[3, :, 1, 1] = -1.0 / 3.0
    out[3, :, 2, 2] = -1.0 / 3.0
    out[3, :, 3, 3] = 2.0 / 3.0
    bS = np.einsum("k,kij->ij", b, _S)
    out[4, :, 1:, 1:] = 0.5 * MU_B_eV_T * B[:, None, None] * bS
    mix = 0.5 * MU_B_eV_T * B[:, None] * b[None, :]
    out[5, :, 0, 1:] = mix
    out[5, :, 1:, 0] = mix
    out[6] = (B**2)[:, None, None] * np.eye(4)
    return out


def zeeman_hamiltonian(
    params: Mapping[str, float] | Any,
    field_T: float | Sequence[float] | np.ndarray,
    geometry: str | Sequence[float] | np.ndarray = "faraday",
) -> np.ndarray:
    """The B.6 Hamiltonian in the basis {D, X, Y, Z} (eV).

    **Arguments:**
    - `params`: mapping of `PARAM_NAMES` (eV, eV/T^2, dimensionless g's; only ``E_bright_eV`` is
      required, the others default to 0) or a `ZeemanResult`.
    - `field_T`: field magnitude(s) in tesla, scalar or 1-D; a negative value reverses the field.
    - `geometry`: see `field_direction`.

    **Returns:** complex Hermitian array (..., 4, 4) in eV, leading shape that of `field_T`.
    """
    p = _as_param_dict(params)
    B = np.asarray(field_T, dtype=float)
    if not np.all(np.isfinite(B)):
        raise ValueError("field_T must be finite")
    basis = _basis_matrices(B.reshape(-1), field_direction(geometry))
    vec = np.array([p[k] for k in PARAM_NAMES])
    H = np.einsum("p,pnij->nij", vec, basis)
    return H.reshape(B.shape + (4, 4))


class ZeemanLevels(NamedTuple):
    """Output of `zeeman_energies` (unpacks as ``energy_eV, dark_bright_fraction``)."""

    energy_eV: np.ndarray
    """Eigenvalues of H, sorted ascending, shape (..., 4), eV."""
    dark_bright_fraction: np.ndarray
    """Bright fraction 1 - |<D|psi>|^2 of the dark-like eigenstate (the one with the largest
    dark weight), shape (...). Isotropic triplet, B || z: (1 - Delta/sqrt(Delta^2 + 4 d^2))/2,
    -> d^2/Delta^2 at small field (the B^2 brightening of physics.md B.6)."""


@dataclass(frozen=True)
class ZeemanStates:
    """Eigen-decomposition of H with the character of every eigenstate (all arrays (..., 4)).

    Eigenstates are sorted by energy. Weights are squared amplitudes (sum to 1 per state):
    ``dark`` on D, ``x``, ``y``, ``z`` on the dot-axis dipoles, ``bright = 1 - dark``.
    Polarisation weights are fractions of the state's bright part, relative to the field
    direction (at zero field the `geometry` direction): ``pi`` (dipole along B), ``perp``
    (dipole perpendicular to B), ``sigma_plus`` / ``sigma_minus`` (circular about +B; sigma+ is
    (e1 + i e2)/sqrt(2), J = +1 along B). A state with no bright part gets 0 everywhere.
    """

    energy_eV: np.ndarray
    vectors: np.ndarray
    dark: np.ndarray
    bright: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    pi: np.ndarray
    perp: np.ndarray
    sigma_plus: np.ndarray
    sigma_minus: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """Dominant character of each state: 'D', 'X', 'Y', 'Z', 'sigma+' or 'sigma-'."""
        names = np.array(["D", "X", "Y", "Z", "sigma+", "sigma-"])
        w = np.stack(
            [
                self.dark,
                self.x,
                self.y,
                self.z,
                self.sigma_plus * self.bright,
                self.sigma_minus * self.bright,
            ],
            axis=-1,
        )
        return names[np.argmax(w, axis=-1)]


def _transverse_basis(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right-handed (e1, e2) perpendicular to the unit vector b, e1 x e2 = b; z -> (x, y)."""
    a = np.array([1.0, 0.0, 0.0]) if abs(b[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = a - a.dot(b) * b
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(b, e1)


def _characters(vectors: np.ndarray, field_T: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Weights of each eigenvector (N, 4 comps, 4 states) -> dict of (N, 4) arrays."""
    amp2 = np.abs(vectors) ** 2
    dark = amp2[:, 0, :]
    bright = amp2[:, 1:, :].sum(axis=1)
    c = vectors[:, 1:, :]  # dipole amplitudes (N, 3, 4)
    sgn = np.where(np.asarray(field_T) < 0, -1.0, 1.0)
    bdir = sgn[:, None] * b[None, :]  # (N, 3) actual field direction
    safe = np.where(bright > 1e-300, bright, 1.0)
    pi = np.abs(np.einsum("nk,nks->ns", bdir, c)) ** 2
    e1p, e2p = _transverse_basis(b)
    e1 = np.broadcast_to(e1p, bdir.shape)
    e2 = sgn[:, None] * e2p[None, :]  # reversing B keeps e1, flips e2: e1 x e2 = -b
    # <(e1 + i e2)/sqrt2 | psi> = (e1 - i e2) . c / sqrt2
    sp = np.abs(np.einsum("nk,nks->ns", e1 - 1j * e2, c)) ** 2 / 2
    sm = np.abs(np.einsum("nk,nks->ns", e1 + 1j * e2, c)) ** 2 / 2
    has = bright > 1e-300
    return {
        "dark": dark,
        "bright": bright,
        "x": amp2[:, 1, :],
        "y": amp2[:, 2, :],
        "z": amp2[:, 3, :],
        "pi": np.where(has, pi / safe, 0.0),
        "perp": np.where(has, (bright - pi) / safe, 0.0),
        "sigma_plus": np.where(has, sp / safe, 0.0),
        "sigma_minus": np.where(has, sm / safe, 0.0),
    }


def zeeman_states(
    params: Mapping[str, float] | Any,
    field_T: float | Sequence[float] | np.ndarray,
    geometry: str | Sequence[float] | np.ndarray = "faraday",
) -> ZeemanStates:
    """Eigenvalues, eigenvectors and state characters of the B.6 Hamiltonian.

    **Arguments:** as `zeeman_hamiltonian`.

    **Returns:** `ZeemanStates`; energies in eV sorted ascending, ``vectors[..., :, n]`` is the
    n-th eigenvector in the basis {D, X, Y, Z}.
    """
    B = np.asarray(field_T, dtype=float)
    H = zeeman_hamiltonian(params, B.reshape(-1), geometry)
    w, v = np.linalg.eigh(H)
    ch = _characters(v, B.reshape(-1), field_direction(geometry))
    shp = B.shape
    return ZeemanStates(
        energy_eV=w.reshape(shp + (4,)),
        vectors=v.reshape(shp + (4, 4)),
        **{k: a.reshape(shp + (4,)) for k, a in ch.items()},
    )


def zeeman_energies(
    params: Mapping[str, float] | Any,
    field_T: float | Sequence[float] | np.ndarray,
    geometry: str | Sequence[float] | np.ndarray = "faraday",
) -> ZeemanLevels:
    """Forward model of physics.md B.6: the four exciton levels in a magnetic field.

    **Arguments:**
    - `params`: mapping with the keys of `PARAM_NAMES` (``E_bright_eV`` required, eV; the
      others default to 0: ``dark_bright_eV``, ``split_xy_eV``, ``split_z_eV`` in eV, ``g_X``,
      ``g_e_minus_g_h`` dimensionless, ``gamma_dia_eV_T2`` in eV/T^2), or a `ZeemanResult`.
    - `field_T`: field in tesla, scalar or array (a negative value reverses the field).
    - `geometry`: ``"faraday"`` (B along the dot z axis), ``"voigt"`` (along x) or a 3-vector.

    **Returns:** `ZeemanLevels` ``(energy_eV, dark_bright_fraction)``: eigenvalues sorted
    ascending (shape ``field_T.shape + (4,)``, eV) and the bright fraction of the dark-like
    state (shape ``field_T.shape``).
    """
    st = zeeman_states(params, field_T, geometry)
    idx = np.argmax(st.dark, axis=-1)
    frac = np.take_along_axis(st.bright, idx[..., None], axis=-1)[..., 0]
    return ZeemanLevels(st.energy_eV, frac)


# ------------------------------------------------------------------------------------------
# input handling
# ------------------------------------------------------------------------------------------

_POL_ALIASES = {
    "sigma+": "sigma+",
    "s+": "sigma+",
    "σ+": "sigma+",
    "+": "sigma+",
    "sigma_plus": "sigma+",
    "sigma-": "sigma-",
    "s-": "sigma-",
    "σ-": "sigma-",
    "-": "sigma-",
    "sigma_minus": "sigma-",
    "pi": "pi",
    "π": "pi",
    "z": "pi",
    "parallel": "pi",
    "perp": "perp",
    "xy": "perp",
    "perpendicular": "perp",
    "": "",
    "none": "",
    "nan": "",
    "?": "",
    "unknown": "",
}
_POL_KEYS = {"sigma+": "sigma_plus", "sigma-": "sigma_minus", "pi": "pi", "perp": "perp"}


def parse_polarization(values: Sequence[Any] | np.ndarray | None, n: int) -> np.ndarray:
    """Normalise polarisation labels to '', 'sigma+', 'sigma-', 'pi' or 'perp' (array (n,)).

    Accepted (case-insensitive): sigma+/s+/σ+/+, sigma-/s-/σ-/-, pi/π/z/parallel (dipole along
    B), perp/xy/perpendicular (dipole perpendicular to B), and ''/none/nan/?/unknown (no label).
    """
    if values is None:
        return np.full(n, "", dtype=object)
    arr = np.asarray(values, dtype=object).reshape(-1)
    if arr.size != n:
        raise ValueError(f"polarization has {arr.size} entries, energy_eV has {n}")
    out = np.empty(n, dtype=object)
    for i, v in enumerate(arr):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out[i] = ""
            continue
        key = str(v).strip().lower()
        if key not in _POL_ALIASES:
            raise ValueError(
                f"polarization label {v!r} (line {i}) not understood; use sigma+, sigma-, pi, "
                "perp or leave empty"
            )
        out[i] = _POL_ALIASES[key]
    return out


def _group_fields(B: np.ndarray, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Distinct fields (within tol tesla) and the group index of each line."""
    order = np.argsort(B, kind="stable")
    groups = np.empty(B.size, dtype=int)
    values: list[float] = []
    for i in order:
        if not values or abs(B[i] - values[-1]) > tol:
            values.append(float(B[i]))
        groups[i] = len(values) - 1
    uniq = np.array([B[groups == g].mean() for g in range(len(values))])
    return uniq, groups


# ------------------------------------------------------------------------------------------
# result
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZeemanResult:
    """Result of `fit_zeeman` (energies eV, fields T, g factors dimensionless).

    Named fields are the fitted values and 1-sigma standard errors (inf where the data do not
    determine a parameter, the fixed value with error 0 for fixed parameters). ``params`` /
    ``stderr`` are dicts over ``param_names`` (the seven B.6 names, then per-field offsets
    ``offset_<B>T_eV`` with ``offset="per_field"``, then ``dark_scale`` if fitted);
    ``covariance``/``correlation`` are over the free parameters ``free_names``.
    ``gof``: chi^2 of the weighted residuals (without ``sigma_eV``: the sum of squared
    residuals in eV^2, so ``gof.chi2_red`` is the scatter variance).
    ``assignment[i]`` is the index (0..3, ascending energy at that field) of the eigenstate that
    input line i was assigned to, ``state_labels[i]`` its character (`ZeemanStates.labels`).
    ``model_energy_eV`` includes the per-field offset of each line (``line_offset_eV``, zero
    unless ``offset="per_field"``); `energies` and `model_params` exclude it.
    """

    g_X: float
    g_X_err: float
    dark_bright_eV: float
    dark_bright_err_eV: float
    split_xy_eV: float
    split_xy_err_eV: float
    split_z_eV: float
    split_z_err_eV: float
    g_e_minus_g_h: float
    g_e_minus_g_h_err: float
    bright_eV: float
    bright_err_eV: float
    gamma_dia_eV_T2: float
    gamma_dia_err_eV_T2: float
    params: dict[str, float]
    stderr: dict[str, float]
    param_names: tuple[str, ...]
    free_names: tuple[str, ...]
    covariance: np.ndarray
    correlation: np.ndarray
    gof: GoodnessOfFit
    converged: bool
    assignment: np.ndarray
    state_labels: np.ndarray
    field_T: np.ndarray
    energy_eV: np.ndarray
    sigma_eV: np.ndarray
    polarization: np.ndarray
    model_energy_eV: np.ndarray
    residual_eV: np.ndarray
    line_offset_eV: np.ndarray
    geometry: tuple[float, float, float]
    offset: str
    g_X_sign_determined: bool
    absolute_sigma: bool
    fixed: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    n_iterations: int = 0

    def energies(self, field_T: float | Sequence[float] | np.ndarray) -> ZeemanLevels:
        """Model levels at `field_T` (tesla) with the fitted parameters (no per-field offsets)."""
        return zeeman_energies(self.model_params, field_T, np.asarray(self.geometry))

    @property
    def model_params(self) -> dict[str, float]:
        """The seven B.6 parameters (eV, eV/T^2, 1), as `zeeman_energies` takes them."""
        return {k: self.params[k] for k in PARAM_NAMES}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary: parameters, errors, correlation, gof, assignment."""
        return {
            "params": dict(self.params),
            "stderr": dict(self.stderr),
            "free_names": list(self.free_names),
            "correlation": self.correlation.tolist(),
            "gof": {"chi2": self.gof.chi2, "dof": self.gof.dof, "chi2_red": self.gof.chi2_red},
            "converged": self.converged,
            "geometry": list(self.geometry),
            "offset": self.offset,
            "g_X_sign_determined": self.g_X_sign_determined,
            "absolute_sigma": self.absolute_sigma,
            "fixed": dict(self.fixed),
            "notes": list(self.notes),
            "lines": {
                "field_T": self.field_T.tolist(),
                "energy_eV": self.energy_eV.tolist(),
                "sigma_eV": self.sigma_eV.tolist(),
                "polarization": [str(p) for p in self.polarization],
                "assignment": self.assignment.tolist(),
                "state_label": [str(s) for s in self.state_labels],
                "model_energy_eV": self.model_energy_eV.tolist(),
            },
        }

    def to_json(self) -> str:
        """`to_dict` as a JSON string (NaN and inf written as null)."""
        return json.dumps(_finite_or_none(self.to_dict()), indent=2, allow_nan=False)

    def to_dataset(self) -> Any:
        """xarray Dataset: lines (dim ``line``), parameters (dim ``parameter``), covariance.

        Variables carry ``units``; attrs hold gof, geometry, offset mode, fixed parameters and
        notes (netCDF-safe: strings and numbers only).
        """
        import xarray as xr

        names = list(self.param_names)
        free = list(self.free_names)
        ds = xr.Dataset(
            {
                "field": ("line", self.field_T, {"units": "T", "long_name": "magnetic field"}),
                "energy": ("line", self.energy_eV, {"units": "eV", "long_name": "line energy"}),
                "energy_sigma": ("line", self.sigma_eV, {"units": "eV"}),
                "polarization": ("line", np.array([str(p) for p in self.polarization])),
                "assignment": (
                    "line",
                    self.assignment,
                    {"long_name": "eigenstate index, ascending energy at that field"},
                ),
                "state_label": ("line", np.array([str(s) for s in self.state_labels])),
                "model_energy": ("line", self.model_energy_eV, {"units": "eV"}),
                "residual": ("line", self.residual_eV, {"units": "eV"}),
                "line_offset": ("line", self.line_offset_eV, {"units": "eV"}),
                "value": ("parameter", np.array([self.params[k] for k in names])),
                "stderr": ("parameter", np.array([self.stderr[k] for k in names])),
                "covariance": (("free_parameter", "free_parameter2"), self.covariance),
                "correlation": (("free_parameter", "free_parameter2"), self.correlation),
            },
            coords={
                "line": np.arange(self.field_T.size),
                "parameter": names,
                "free_parameter": free,
                "free_parameter2": free,
            },
            attrs={
                "model": "exciton fine structure, 4x4 dark/bright Hamiltonian (physics.md B.6)",
                "parameter_units": json.dumps({k: _unit(k) for k in names}),
                "chi2": self.gof.chi2,
                "dof": self.gof.dof,
                "chi2_red": self.gof.chi2_red,
                "converged": int(self.converged),
                "geometry": json.dumps(list(self.geometry)),
                "offset": self.offset,
                "g_X_sign_determined": int(self.g_X_sign_determined),
                "absolute_sigma": int(self.absolute_sigma),
                "fixed": json.dumps(self.fixed),
                "notes": json.dumps(list(self.notes)),
                "mu_B_eV_T": MU_B_eV_T,
            },
        )
        return ds


def _finite_or_none(o: Any) -> Any:
    """Recursively turn numpy scalars into Python ones and NaN/inf into None (JSON-safe)."""
    if isinstance(o, dict):
        return {str(k): _finite_or_none(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite_or_none(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def _unit(name: str) -> str:
    if name.endswith("_eV"):
        return "eV"
    if name.endswith("_eV_T2"):
        return "eV/T^2"
    return "1"


# ------------------------------------------------------------------------------------------
# the fit
# ------------------------------------------------------------------------------------------

# Internally energies are in meV relative to a reference energy (conditioning).
_SCALE = {
    "E_bright_eV": 1e3,
    "dark_bright_eV": 1e3,
    "split_xy_eV": 1e3,
    "split_z_eV": 1e3,
    "g_X": 1.0,
    "g_e_minus_g_h": 1.0,
    "gamma_dia_eV_T2": 1e3,
}
_POL_PENALTY = 1.0e3  # assignment cost (chi^2 units) of a line on a state of the other polarisation
_SIGMA_ASSIGN_DEFAULT_eV = 1.0e-5
_VIS_FLOOR = 1.0e-6
_VIS_THRESHOLD = 1.0e-3
_VIS_F0 = 1.0e-2  # bright fraction seen with probability 1/2 (detection model, tie-breaks only)


class _Problem:
    """Everything fixed during a fit: data, grouping, basis matrices (internal units)."""

    def __init__(
        self,
        B: np.ndarray,
        E: np.ndarray,
        sig: np.ndarray,
        pol: np.ndarray,
        b: np.ndarray,
        offset: str,
        fixed: dict[str, float],
        dark: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        fit_dark_scale: bool,
    ) -> None:
        self.B, self.sig, self.pol, self.b = B, sig, pol, b
        self.fields, self.group = _group_fields(B)
        self.F = self.fields.size
        self.group_idx = [np.flatnonzero(self.group == g) for g in range(self.F)]
        self.last_shift = 0.0
        self.E_ref = float(np.mean(E))
        self.y = (E - self.E_ref) * 1e3  # meV
        self.s = sig * 1e3  # meV
        self.offset = offset
        # parameter list
        names = list(PARAM_NAMES)
        self.ref_group = int(np.argmin(np.abs(self.fields)))
        if offset == "per_field":
            self.offset_groups = [g for g in range(self.F) if g != self.ref_group]
            names += [_offset_name(self.fields[g]) for g in self.offset_groups]
        else:
            self.offset_groups = []
        self.dark = dark
        if dark is not None and fit_dark_scale:
            names.append("dark_scale")
        self.names = names
        self.fixed_int = {k: _to_internal(k, v, self.E_ref) for k, v in fixed.items()}
        self.free = [k for k in names if k not in self.fixed_int]
        # basis matrices per distinct field, internal units (meV)
        # H [meV] = sum_p p_int * M_p with p_int = p_pub * _SCALE[p]: M_p = dH/dp_pub * 1e3 /
        # _SCALE[p], i.e. unchanged for the energy-valued parameters, x 1e3 for the g factors.
        basis = _basis_matrices(self.fields, b)
        basis[[4, 5]] *= 1e3
        extra = []
        for g in self.offset_groups:
            m = np.zeros((self.F, 4, 4), dtype=complex)
            m[g] = np.eye(4)
            extra.append(m)
        self.basis_all = np.concatenate([basis, np.array(extra).reshape(-1, self.F, 4, 4)])
        if dark is not None:
            self.dark_fields = dark[0]
            self.dark_basis = _basis_matrices(dark[0], b)
            self.dark_basis[[4, 5]] *= 1e3
        self.n_model = len(PARAM_NAMES) + len(self.offset_groups)

    # parameter vectors ------------------------------------------------------------------
    def full(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(len(self.names))
        it = iter(x)
        for i, k in enumerate(self.names):
            out[i] = self.fixed_int[k] if k in self.fixed_int else next(it)
        return out

    def free_index(self) -> np.ndarray:
        return np.array([self.names.index(k) for k in self.free], dtype=int)

    def eig(self, full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        H = np.einsum("p,pnij->nij", full[: self.n_model], self.basis_all)
        return np.linalg.eigh(H)

    def dark_eig(self, full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        H = np.einsum("p,pnij->nij", full[: len(PARAM_NAMES)], self.dark_basis)
        return np.linalg.eigh(H)


def _offset_name(B: float) -> str:
    return f"offset_{B:.9g}T_eV"


def _to_internal(name: str, value: float, E_ref: float) -> float:
    if name == "E_bright_eV":
        return (value - E_ref) * 1e3
    if name.startswith("offset_"):
        return value * 1e3
    if name == "dark_scale":
        return value
    return value * _SCALE[name]


def _to_public(name: str, value: float, E_ref: float) -> float:
    if name == "E_bright_eV":
        return value / 1e3 + E_ref
    if name.startswith("offset_"):
        return value / 1e3
    if name == "dark_scale":
        return value
    return value / _SCALE[name]


def _public_scale(name: str) -> float:
    """d(public)/d(internal)."""
    if name in ("E_bright_eV",) or name.startswith("offset_"):
        return 1e-3
    if name == "dark_scale":
        return 1.0
    return 1.0 / _SCALE[name]


def _line_penalties(
    prob: _Problem, full: np.ndarray, sgn: float, visibility: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Model energies (F, 4), assignment penalties (n, 4), bright fractions (F, 4) or None.

    Polarisation: with w the fraction of the label's polarisation in the state's bright part,
    `_POL_PENALTY` x max(1 - 2 w, 0): no cost while the state is at least half of the labelled
    kind (a label only excludes states that contradict it; it is not fitted). Visibility: a
    line on a state of bright fraction f < `_VIS_THRESHOLD` costs
    2 ln(_VIS_THRESHOLD / max(f, 1e-6)) (a line is not put on a practically dark state).
    """
    f2 = full.copy()
    f2[PARAM_NAMES.index("g_X")] *= sgn
    E, V = prob.eig(f2)
    pen = np.zeros((prob.y.size, 4))
    labelled = [i for i, p in enumerate(prob.pol) if p]
    if not visibility and not labelled:
        return E, pen, None
    ch = _characters(V, prob.fields, prob.b)
    bright = ch["bright"]
    if visibility:
        f = np.maximum(bright[prob.group], _VIS_FLOOR)
        pen += 2.0 * np.log(np.maximum(_VIS_THRESHOLD / f, 1.0))
    for i in labelled:
        w = ch[_POL_KEYS[prob.pol[i]]][prob.group[i]]
        pen[i] += _POL_PENALTY * np.maximum(1.0 - 2.0 * w, 0.0)
    return E, pen, bright if visibility else None


def _detection_score(prob: _Problem, bright: np.ndarray | None, state: np.ndarray) -> float:
    """-2 ln L of which states were seen, P(seen | f) = f / (f + `_VIS_F0`).

    Breaks ties between assignments with equal chi^2 (the exact symmetries of
    `_axis_partners`): seen lines should be bright states, missing ones dim states.
    """
    if bright is None:
        return 0.0
    f = np.maximum(bright, _VIS_FLOOR)
    p_seen = f / (f + _VIS_F0)
    seen = np.zeros(bright.shape, dtype=bool)
    seen[prob.group, state] = True
    return float(-2.0 * (np.log(p_seen[seen]).sum() + np.log1p(-p_seen[~seen]).sum()))


def _assign(
    prob: _Problem,
    full: np.ndarray,
    sig_assign: np.ndarray,
    visibility: bool = True,
    shifts: Sequence[float] = (0.0,),
) -> tuple[np.ndarray, float, float, float]:
    """Minimum-cost assignment of observed lines to eigenstates at every field.

    Cost of line i on state j: ((E_i - E_j - shift) / sigma_i)^2 + penalties
    (`_line_penalties`); `linear_sum_assignment` per field (each state takes at most one line).
    With several `shifts` (trial offsets of all model energies, meV) the best one is used.
    Returns (state index per line, total cost, sign of g_X preferred by polarisation labels,
    `_detection_score`), and stores the chosen shift in ``prob.last_shift``.
    """
    signs = [1.0, -1.0] if any(p in ("sigma+", "sigma-") for p in prob.pol) else [1.0]
    best: tuple[np.ndarray, float, float, np.ndarray | None] | None = None
    s_a = sig_assign * 1e3
    for sgn in signs:
        E, pen, bright = _line_penalties(prob, full, sgn, visibility)
        for shift in shifts:
            cost_all = ((prob.y[:, None] - E[prob.group] - shift) / s_a[:, None]) ** 2 + pen
            state = np.empty(prob.y.size, dtype=int)
            total = 0.0
            for idx in prob.group_idx:
                cost = cost_all[idx]
                rows, cols = linear_sum_assignment(cost)
                state[idx[rows]] = cols
                total += float(cost[rows, cols].sum())
            if best is None or total < best[1] - 1e-9:
                best = (state, total, sgn, bright)
                prob.last_shift = float(shift)
    assert best is not None
    return best[0], best[1], best[2], _detection_score(prob, best[3], best[0])


def _better(cand: dict[str, Any], best: dict[str, Any] | None) -> bool:
    """Lower assignment cost wins; (near-)ties go to the more visible assignment."""
    if best is None:
        return True
    tol = 1e-6 * max(1.0, abs(best["total"]))
    if cand["total"] < best["total"] - tol:
        return True
    return abs(cand["total"] - best["total"]) <= tol and cand["vis"] < best["vis"] - 1e-6


def _dark_fraction_and_grad(
    prob: _Problem, full: np.ndarray, want_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Bright fraction of the dark-like state at the dark-data fields, and d/d(model params)."""
    w, v = prob.dark_eig(full)
    nd = np.argmax(np.abs(v[:, 0, :]) ** 2, axis=-1)
    n_idx = np.arange(w.shape[0])
    cD = v[n_idx, 0, nd]
    frac = 1.0 - np.abs(cD) ** 2
    if not want_grad:
        return frac, None
    P = len(PARAM_NAMES)
    grad = np.zeros((w.shape[0], P))
    for i in range(w.shape[0]):
        psi = v[i, :, nd[i]]
        for p in range(P):
            Hp = prob.dark_basis[p, i]
            dc = 0.0j
            for m in range(4):
                if m == nd[i]:
                    continue
                gap = w[i, nd[i]] - w[i, m]
                if abs(gap) < 1e-12:
                    continue
                dc += v[i, 0, m] * (v[i, :, m].conj() @ Hp @ psi) / gap
            grad[i, p] = -2.0 * np.real(np.conj(cD[i]) * dc)
    return frac, grad


def _residuals_and_jac(
    prob: _Problem, x: np.ndarray, state: np.ndarray, want_jac: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    full = prob.full(x)
    E, V = prob.eig(full)
    g, s = prob.group, state
    model = E[g, s]
    r = (model - prob.y) / prob.s
    J = None
    if want_jac:
        vec = V[g, :, s]  # (n, 4)
        # dE/dp = <n| dH/dp |n> (Hellmann-Feynman), all model parameters at once
        dE = np.real(np.einsum("ni,pnij,nj->np", vec.conj(), prob.basis_all[:, g], vec))
        Jfull = np.zeros((prob.y.size, len(prob.names)))
        Jfull[:, : prob.n_model] = dE / prob.s[:, None]
    if prob.dark is not None:
        fB, fval, fsig = prob.dark
        frac, grad = _dark_fraction_and_grad(prob, full, want_jac)
        scale = full[prob.names.index("dark_scale")] if "dark_scale" in prob.names else 1.0
        r = np.concatenate([r, (scale * frac - fval) / fsig])
        if want_jac:
            Jd = np.zeros((fB.size, len(prob.names)))
            assert grad is not None
            Jd[:, : len(PARAM_NAMES)] = scale * grad / fsig[:, None]
            if "dark_scale" in prob.names:
                Jd[:, prob.names.index("dark_scale")] = frac / fsig
            Jfull = np.concatenate([Jfull, Jd])
    if want_jac:
        J = Jfull[:, prob.free_index()]
    return r, J


def _solve_fixed_assignment(
    prob: _Problem, x0: np.ndarray, state: np.ndarray, tight: bool = False
) -> tuple[np.ndarray, float, bool]:
    cache: dict[str, Any] = {}

    def fun(x: np.ndarray) -> np.ndarray:
        r, J = _residuals_and_jac(prob, x, state, True)
        cache["x"], cache["J"] = x.copy(), J
        return r

    def jac(x: np.ndarray) -> np.ndarray:
        if "x" in cache and np.array_equal(cache["x"], x):
            return cache["J"]
        return _residuals_and_jac(prob, x, state, True)[1]

    tol = 1e-15 if tight else 1e-8
    res = least_squares(
        fun, x0, jac=jac, method="lm", xtol=tol, ftol=tol, gtol=tol, max_nfev=2000 if tight else 300
    )
    return res.x, float(2 * res.cost), bool(res.success)


def _align_offset(
    prob: _Problem, full: np.ndarray, sig_assign: np.ndarray, visibility: bool
) -> np.ndarray:
    """Shift E_bright so that the model overlaps the lines best (over all fields).

    Candidate shifts put one line of the best-populated field exactly on one model level; the
    one with the lowest total assignment cost wins.
    """
    if "E_bright_eV" in prob.fixed_int:
        return full
    E, _ = prob.eig(full)
    score = [idx.size - 1e-3 * abs(prob.fields[k]) for k, idx in enumerate(prob.group_idx)]
    g = int(np.argmax(score))
    shifts = [float(prob.y[i] - E[g, j]) for i in prob.group_idx[g] for j in range(4)]
    _assign(prob, full, sig_assign, visibility, shifts)
    out = full.copy()
    out[0] += prob.last_shift
    return out


def _starts(prob: _Problem, initial: dict[str, float]) -> list[np.ndarray]:
    """Starting points (internal units) of the multi-start assignment/fit iteration."""
    y, g = prob.y, prob.group
    low = y[g == prob.ref_group]
    spacing = np.diff(np.sort(low))
    sxy0 = float(np.clip(spacing.min(), 0.02, 2.0)) if spacing.size else 0.1
    span_all = float(np.mean(low) - y.min())
    g_grid = [1.0, 2.5, 4.0]
    d_grid = [0.5, 1.5, 4.0]
    dg_grid = [0.7, 2.5]
    if span_all > 0.3 and all(abs(span_all - d) / d > 0.3 for d in d_grid):
        d_grid.append(span_all)
    base = {
        "E_bright_eV": float(np.mean(low)),
        "split_xy_eV": sxy0,
        "split_z_eV": 0.0,
        "g_e_minus_g_h": 1.0,
        "gamma_dia_eV_T2": 0.0,
        "dark_scale": 1.0,
    }
    init_int = {k: _to_internal(k, v, prob.E_ref) for k, v in initial.items()}
    starts = []
    # axial splitting: Z below, between or above the in-plane pair (scale: the lowest-field
    # spread of the lines)
    s_low = float(np.ptp(low)) if low.size > 1 else 0.3
    sz_grid = [0.0, -0.5 * s_low, 0.5 * s_low]
    grids = [
        [init_int["g_X"]] if "g_X" in init_int else g_grid,
        [init_int["dark_bright_eV"]] if "dark_bright_eV" in init_int else d_grid,
        [init_int["g_e_minus_g_h"]] if "g_e_minus_g_h" in init_int else dg_grid,
        [init_int["split_z_eV"]] if "split_z_eV" in init_int else sz_grid,
    ]
    for gx, dd, dg, sz in itertools.product(*grids):
        vals = dict(base, g_X=gx, dark_bright_eV=dd, g_e_minus_g_h=dg, split_z_eV=sz)
        vals.update(
            {
                k: v
                for k, v in init_int.items()
                if k not in ("g_X", "dark_bright_eV", "g_e_minus_g_h", "split_z_eV")
            }
        )
        full = np.array([prob.fixed_int.get(k, vals.get(k, 0.0)) for k in prob.names])
        starts.append(full)
    return starts


def _iterate(
    prob: _Problem,
    full: np.ndarray,
    sig_assign: np.ndarray,
    visibility: bool,
    max_iter: int,
) -> dict[str, Any]:
    """Alternate assignment and least squares from `full` until the assignment is stable."""
    free_idx = prob.free_index()
    seen: list[bytes] = []
    state, total, sgn, vis = _assign(prob, full, sig_assign, visibility)
    ok, ok_iter, n_it = False, False, 0
    for n_it in range(1, max_iter + 1):  # noqa: B007
        x, _, ok = _solve_fixed_assignment(prob, full[free_idx], state)
        full = prob.full(x)
        new_state, total, sgn, vis = _assign(prob, full, sig_assign, visibility)
        if np.array_equal(new_state, state):
            ok_iter = True
            break
        if new_state.tobytes() in seen:  # a cycle: stop
            break
        seen.append(state.tobytes())
        state = new_state
    return {
        "full": full,
        "state": state,
        "total": total,
        "vis": vis,
        "ok": ok and ok_iter,
        "n_it": n_it,
        "sgn": sgn,
    }


def _axis_partners(prob: _Problem, full: np.ndarray) -> list[np.ndarray]:
    """Parameter sets with exactly the same energies, when the field lies along dot axis k.

    Then H splits into two 2x2 blocks of the same form: the dipoles i, j perpendicular to B,
    mixed by g_X (levels (E_i + E_j)/2 +- sqrt((E_j - E_i)^2/4 + (g_X mu_B B/2)^2)), and D with
    the dipole k along B, mixed by g_e - g_h (same form with E_D, E_k). Hence three partners:
    E_D <-> E_k; the two blocks exchanged (E_i, E_j, g_X) <-> (E_D, E_k, g_e - g_h); both.
    Only brightness (which state is dark at B = 0, which lines are missing) tells them apart.
    Variants that would change a fixed parameter are left out. Empty for other directions.
    """
    axes = np.flatnonzero(np.abs(prob.b) > 1e-12)
    if axes.size != 1:
        return []
    k = int(axes[0]) + 1  # index in (D, X, Y, Z)
    i, j = (m for m in (1, 2, 3) if m != k)
    Eb, D, sxy, sz = full[:4]
    ig, idg = PARAM_NAMES.index("g_X"), PARAM_NAMES.index("g_e_minus_g_h")
    lev0 = np.array([Eb - D, Eb - sz / 3 - sxy / 2, Eb - sz / 3 + sxy / 2, Eb + 2 * sz / 3])

    def swap_dk(lev: np.ndarray) -> np.ndarray:
        out = lev.copy()
        out[[0, k]] = lev[[k, 0]]
        return out

    def swap_blocks(lev: np.ndarray) -> np.ndarray:
        c1, a1 = (lev[i] + lev[j]) / 2, abs(lev[j] - lev[i]) / 2
        c2, a2 = (lev[0] + lev[k]) / 2, abs(lev[k] - lev[0]) / 2
        out = lev.copy()
        out[i], out[j] = c2 - a2, c2 + a2
        out[0], out[k] = c1 - a1, c1 + a1  # D the lower one
        return out

    variants = [
        (swap_dk(lev0), False),
        (swap_blocks(lev0), True),
        (swap_dk(swap_blocks(lev0)), True),
    ]
    partners = []
    for lev, exchange_g in variants:
        ED, EX, EY, EZ = lev
        Eb2 = (EX + EY + EZ) / 3
        out = full.copy()
        out[:4] = [Eb2, Eb2 - ED, EY - EX, EZ - (EX + EY) / 2]
        if exchange_g:
            out[ig], out[idg] = full[idg], full[ig]
        changed = [n for m, n in enumerate(prob.names) if abs(out[m] - full[m]) > 1e-12]
        if any(n in prob.fixed_int for n in changed):
            continue
        partners.append(out)
    return partners


def _per_field_seed(
    B: np.ndarray,
    E: np.ndarray,
    sigma_eV: Any,
    pol: np.ndarray,
    geometry: Any,
    fix: dict[str, float],
    initial: dict[str, float],
    dark: Any,
    visibility: bool,
) -> dict[str, float] | None:
    """Parameters of a common-offset (diamagnetic) fit, used to start the per-field fit."""
    fix_d = {k: v for k, v in fix.items() if k in PARAM_NAMES and k != "gamma_dia_eV_T2"}
    init_d = {k: v for k, v in initial.items() if k in PARAM_NAMES}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ZeemanFitWarning)
            r = fit_zeeman(
                B,
                E,
                sigma_eV,
                polarization=pol,
                geometry=geometry,
                offset="diamagnetic",
                fix=fix_d,
                initial=init_d,
                dark_fraction=dark,
                visibility=visibility,
            )
    except ValueError:
        return None
    return {k: r.params[k] for k in PARAM_NAMES}


def _covariance(
    J: np.ndarray, chi2: float, dof: int, absolute_sigma: bool, names: list[str]
) -> tuple[np.ndarray, list[str]]:
    """Covariance (internal units) from the weighted Jacobian, via SVD of the column-scaled J.

    Directions with relative singular value < 1e-8 are undetermined: the parameters that take
    part in them get infinite variance. Returns (cov, undetermined names).
    """
    norms = np.linalg.norm(J, axis=0)
    undetermined = set(np.flatnonzero(norms == 0).tolist())
    safe = np.where(norms > 0, norms, 1.0)
    Js = J / safe
    _, s, Vt = np.linalg.svd(Js, full_matrices=False)
    tol = 1e-8 * (s.max() if s.size else 1.0)
    good = s > tol
    for k in np.flatnonzero(~good):
        undetermined |= set(np.flatnonzero(np.abs(Vt[k]) > 1e-3).tolist())
    cov_s = (Vt[good].T / s[good] ** 2) @ Vt[good]
    cov = cov_s / np.outer(safe, safe)
    if not absolute_sigma:
        cov = cov * (chi2 / dof if dof > 0 else np.nan)
    for i in undetermined:
        cov[i, :] = np.nan
        cov[:, i] = np.nan
        cov[i, i] = np.inf
    return cov, [names[i] for i in sorted(undetermined)]


def _validate_1d(name: str, a: Any) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers: {exc}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat (1-D) array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr))
        raise ValueError(f"{name} has NaN or inf at index {bad[:5].tolist()}")
    return arr


@dataclass(frozen=True, eq=False)
class _ZeemanInput:
    """The validated input of `fit_zeeman` and the problem it defines."""

    B: np.ndarray
    E: np.ndarray
    sig: np.ndarray  # 1-sigma errors (eV); 1 meV placeholders without sigma_eV
    absolute_sigma: bool
    pol: np.ndarray
    b: np.ndarray  # field direction
    fix: dict[str, float]
    initial: dict[str, float]
    dark: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    prob: _Problem
    n_data: int
    n_free: int


def _validate_zeeman(
    field_T: Any,
    energy_eV: Any,
    sigma_eV: Any,
    *,
    polarization: Any,
    geometry: Any,
    offset: str,
    fix: Mapping[str, float] | None,
    initial: Mapping[str, float] | None,
    dark_fraction: tuple[Any, Any, Any] | None,
    fit_dark_scale: bool,
) -> _ZeemanInput:
    """Check lengths, values, fields (two or more, at most four lines each), parameter names
    and the count of data against free parameters; build the problem."""
    B = _validate_1d("field_T", field_T)
    E = _validate_1d("energy_eV", energy_eV)
    if B.size != E.size:
        raise ValueError(f"field_T has {B.size} entries but energy_eV has {E.size}")
    absolute_sigma = sigma_eV is not None
    if sigma_eV is None:
        sig = np.full(E.size, 1e-3)
    else:
        sig = _validate_1d("sigma_eV", sigma_eV)
        if sig.size == 1:
            sig = np.full(E.size, sig[0])
        if sig.size != E.size:
            raise ValueError(f"sigma_eV has {sig.size} entries but energy_eV has {E.size}")
        if np.any(sig <= 0):
            raise ValueError("sigma_eV must be > 0")
    pol = parse_polarization(polarization, E.size)
    b = field_direction(geometry)
    if offset not in ("diamagnetic", "per_field"):
        raise ValueError(f"offset must be 'diamagnetic' or 'per_field', got {offset!r}")
    fields, groups = _group_fields(B)
    if fields.size < 2:
        raise ValueError(
            f"all {B.size} lines are at one field ({fields[0]:g} T): g_X, the anisotropy and "
            "the dark-bright splitting cannot be separated; give a field series"
        )
    counts = np.bincount(groups)
    if counts.max() > 4:
        gbad = int(np.argmax(counts))
        raise ValueError(
            f"{counts[gbad]} lines at {fields[gbad]:g} T but the exciton has 4 states; remove "
            "trion, phonon-replica or other lines before fitting"
        )
    fix = dict(fix or {})
    initial = dict(initial or {})
    dark = None
    if dark_fraction is not None:
        if len(dark_fraction) != 3:
            raise ValueError("dark_fraction must be (field_T, value, sigma)")
        dB = _validate_1d("dark_fraction field", dark_fraction[0])
        dv = _validate_1d("dark_fraction value", dark_fraction[1])
        ds = _validate_1d("dark_fraction sigma", dark_fraction[2])
        if ds.size == 1:
            ds = np.full(dv.size, ds[0])
        if not (dB.size == dv.size == ds.size):
            raise ValueError("dark_fraction arrays must have equal lengths")
        if np.any(ds <= 0):
            raise ValueError("dark_fraction sigma must be > 0")
        dark = (dB, dv, ds)
    if offset == "per_field":
        fix.setdefault("gamma_dia_eV_T2", 0.0)
    prob = _Problem(B, E, sig, pol, b, offset, {}, dark, fit_dark_scale)
    for k in list(fix) + list(initial):
        if k not in prob.names:
            raise ValueError(f"unknown parameter {k!r}; known: {prob.names}")
    for k, v in list(fix.items()) + list(initial.items()):
        if not math.isfinite(float(v)):
            raise ValueError(f"{k} = {v} is not finite")
    prob = _Problem(
        B, E, sig, pol, b, offset, {k: float(v) for k, v in fix.items()}, dark, fit_dark_scale
    )
    n_data = E.size + (dark[0].size if dark is not None else 0)
    n_free = len(prob.free)
    if n_free == 0:
        raise ValueError("every parameter is fixed; nothing to fit")
    if n_data < n_free or (not absolute_sigma and n_data == n_free):
        need = n_free + (0 if absolute_sigma else 1)
        raise ValueError(
            f"{n_data} data but {n_free} free parameters ({', '.join(prob.free)}); need at "
            f"least {need}" + ("" if absolute_sigma else " without sigma_eV") + ": add lines "
            "or fix parameters (fix=...)"
        )
    return _ZeemanInput(B, E, sig, absolute_sigma, pol, b, fix, initial, dark, prob, n_data, n_free)


def _seed_zeeman(
    inp: _ZeemanInput, sigma_eV: Any, geometry: Any, offset: str, visibility: bool
) -> list[np.ndarray]:
    """Start points of the assignment search: the grid of `_starts`, led (per-field offsets)
    by the common-offset fit's solution."""
    prob = inp.prob
    starts = _starts(prob, inp.initial)
    if offset == "per_field":
        # Seed from the common-offset model (gamma B^2 for the field dependence): spectral
        # diffusion is usually small against the splittings, and single lines at a field
        # would otherwise be placed arbitrarily by their free offsets.
        seed = _per_field_seed(
            inp.B, inp.E, sigma_eV, inp.pol, geometry, inp.fix, inp.initial, inp.dark, visibility
        )
        if seed is not None:
            vals = {k: _to_internal(k, v, prob.E_ref) for k, v in seed.items()}
            gam = seed.get("gamma_dia_eV_T2", 0.0)
            for gi in prob.offset_groups:
                nm = _offset_name(prob.fields[gi])
                vals[nm] = 1e3 * gam * (prob.fields[gi] ** 2 - prob.fields[prob.ref_group] ** 2)
            vals["E_bright_eV"] += 1e3 * gam * prob.fields[prob.ref_group] ** 2
            starts = [
                np.array([prob.fixed_int.get(k, vals.get(k, 0.0)) for k in prob.names])
            ] + starts
    return starts


def _search_assignment(
    prob: _Problem,
    starts: list[np.ndarray],
    sig_assign: np.ndarray,
    visibility: bool,
    max_iter: int,
) -> tuple[dict[str, Any], bool]:
    """Alternate assignment and fit from every start, keep the lowest chi^2; then try the
    exact symmetry partners of the best solution. Returns (best, tie_broken)."""
    best: dict[str, Any] | None = None
    for full0 in starts:
        start = _align_offset(prob, full0, sig_assign, visibility)
        cand = _iterate(prob, start, sig_assign, visibility, max_iter)
        if _better(cand, best):
            best = cand
    # With the field along a dot axis the energies have exact discrete symmetries
    # (`_axis_partners`): try the partners of the best solution; brightness decides.
    assert best is not None
    tie_broken = False
    for partner in _axis_partners(prob, best["full"]):
        cand = _iterate(prob, partner, sig_assign, visibility, max_iter)
        tol = 1e-6 * max(1.0, abs(best["total"]))
        if abs(cand["total"] - best["total"]) <= tol and not np.allclose(
            cand["full"][:6], best["full"][:6], rtol=1e-6, atol=1e-6
        ):
            tie_broken = True
        if _better(cand, best):
            best = cand
    return best, tie_broken


def _polish_zeeman(
    prob: _Problem,
    best: dict[str, Any],
    sig_assign: np.ndarray,
    visibility: bool,
    tie_broken: bool,
) -> tuple[np.ndarray, np.ndarray, float, bool, list[str]]:
    """A tight least-squares fit at the best assignment, and a check that the assignment still
    holds there. Returns (full parameters, assignment, sign of g_X from the labels, converged,
    notes)."""
    state = best["state"]
    x, _chi2, ok = _solve_fixed_assignment(prob, best["full"][prob.free_index()], state, tight=True)
    full = prob.full(x)
    final_state, _, sgn, _ = _assign(prob, full, sig_assign, visibility)
    notes: list[str] = []
    if tie_broken:
        notes.append(
            "an exact relabelling of the levels (E_D <-> E_k or the exchange of the two 2x2 "
            "blocks, field along a dot axis) fits equally well; the solution whose seen lines "
            "are bright and missing lines dim was kept: confirm with polarisation labels"
        )
    if not np.array_equal(final_state, state):
        notes.append("assignment changed after the final polish; result may be at a boundary")
        ok = False
    converged = bool(best["ok"] and ok)
    return full, state, sgn, converged, notes


def _sign_conventions(
    prob: _Problem, full: np.ndarray, pol: np.ndarray, b: np.ndarray, sgn: float
) -> tuple[np.ndarray, bool]:
    """g_X >= 0 (or the sign set by circular labels), g_e - g_h >= 0, split_xy >= 0 in Faraday
    geometry, each unless fixed. Returns (full parameters, any circular labels)."""
    sign_flip = np.ones(len(prob.names))
    has_circ = any(p in ("sigma+", "sigma-") for p in pol)
    ig = prob.names.index("g_X")
    if "g_X" not in prob.fixed_int:
        want = sgn if has_circ else 1.0
        if np.sign(full[ig]) != want and full[ig] != 0:
            sign_flip[ig] = -1.0
    idg = prob.names.index("g_e_minus_g_h")
    if "g_e_minus_g_h" not in prob.fixed_int and full[idg] < 0:
        sign_flip[idg] = -1.0
    isxy = prob.names.index("split_xy_eV")
    if "split_xy_eV" not in prob.fixed_int and b[0] == 0 and b[1] == 0 and full[isxy] < 0:
        sign_flip[isxy] = -1.0
    return full * sign_flip, has_circ


def _zeeman_errors(
    inp: _ZeemanInput,
    full: np.ndarray,
    state: np.ndarray,
    converged: bool,
    has_circ: bool,
    notes: list[str],
) -> tuple[np.ndarray, list[str], float, int]:
    """Covariance (internal units) at the solution, with the warnings and notes for
    undetermined parameters, a fit that did not converge and undetermined signs. Returns
    (covariance, undetermined names, chi2, dof); appends to `notes`."""
    prob = inp.prob
    x = full[prob.free_index()]
    r, J = _residuals_and_jac(prob, x, state, True)
    assert J is not None
    chi2 = float(r @ r)
    dof = inp.n_data - inp.n_free
    cov_int, undetermined = _covariance(J, chi2, dof, inp.absolute_sigma, prob.free)
    if undetermined:
        notes.append(
            "not determined by these data (error inf): "
            + ", ".join(undetermined)
            + "; fix one of them (fix=...) or add data"
        )
        warnings.warn(
            f"fit_zeeman: parameters not determined by the data: {', '.join(undetermined)}",
            ZeemanFitWarning,
            stacklevel=3,
        )
    if not converged:
        notes.append("the fit or the line assignment did not converge")
        warnings.warn(
            "fit_zeeman: the fit or the assignment did not converge", ZeemanFitWarning, stacklevel=3
        )
    if not has_circ and "g_X" not in prob.fixed_int:
        notes.append("no circular polarisation labels: |g_X| reported (sign undetermined)")
    if "g_e_minus_g_h" not in prob.fixed_int:
        notes.append("energies fix |g_e - g_h| only (sign undetermined)")
    return cov_int, undetermined, chi2, dof


def _assemble_zeeman(
    inp: _ZeemanInput,
    full: np.ndarray,
    state: np.ndarray,
    cov_int: np.ndarray,
    undetermined: list[str],
    chi2: float,
    dof: int,
    *,
    converged: bool,
    has_circ: bool,
    offset: str,
    notes: list[str],
    n_iterations: int,
) -> ZeemanResult:
    """Public units, correlation, per-line model energies, offsets and state labels."""
    prob, B, E, b = inp.prob, inp.B, inp.E, inp.b
    absolute_sigma = inp.absolute_sigma
    scale_free = np.array([_public_scale(k) for k in prob.free])
    cov = cov_int * np.outer(scale_free, scale_free)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.diag(cov))
        corr = cov / np.outer(sd, sd)
    corr[~np.isfinite(corr)] = np.nan
    for i, k in enumerate(prob.free):
        if k in undetermined:
            corr[i, :] = np.nan
            corr[:, i] = np.nan
        else:
            corr[i, i] = 1.0
    params = {k: _to_public(k, full[i], prob.E_ref) for i, k in enumerate(prob.names)}
    stderr = {k: 0.0 for k in prob.names}
    for i, k in enumerate(prob.free):
        stderr[k] = float(sd[i])
    # per-line outputs
    Em, V = prob.eig(full)
    model = Em[prob.group, state] / 1e3 + prob.E_ref
    line_off = np.zeros(E.size)
    for gi in prob.offset_groups:
        line_off[prob.group == gi] = params[_offset_name(prob.fields[gi])]
    ch = _characters(V, prob.fields, b)
    labels = ZeemanStates(Em, V, **ch).labels
    return ZeemanResult(
        g_X=params["g_X"],
        g_X_err=stderr["g_X"],
        dark_bright_eV=params["dark_bright_eV"],
        dark_bright_err_eV=stderr["dark_bright_eV"],
        split_xy_eV=params["split_xy_eV"],
        split_xy_err_eV=stderr["split_xy_eV"],
        split_z_eV=params["split_z_eV"],
        split_z_err_eV=stderr["split_z_eV"],
        g_e_minus_g_h=params["g_e_minus_g_h"],
        g_e_minus_g_h_err=stderr["g_e_minus_g_h"],
        bright_eV=params["E_bright_eV"],
        bright_err_eV=stderr["E_bright_eV"],
        gamma_dia_eV_T2=params["gamma_dia_eV_T2"],
        gamma_dia_err_eV_T2=stderr["gamma_dia_eV_T2"],
        params=params,
        stderr=stderr,
        param_names=tuple(prob.names),
        free_names=tuple(prob.free),
        covariance=_readonly(cov),
        correlation=_readonly(corr),
        # without sigma_eV the residuals carry unit weight: chi2 in eV^2 (r is in meV here)
        gof=GoodnessOfFit(chi2=chi2 if absolute_sigma else chi2 * 1e-6, dof=dof),
        converged=converged,
        assignment=_readonly(state),
        state_labels=_readonly(labels[prob.group, state]),
        field_T=_readonly(B),
        energy_eV=_readonly(E),
        sigma_eV=_readonly(inp.sig if absolute_sigma else np.full(E.size, np.nan)),
        polarization=_readonly(inp.pol),
        model_energy_eV=_readonly(model),
        residual_eV=_readonly(E - model),
        line_offset_eV=_readonly(line_off),
        geometry=(float(b[0]), float(b[1]), float(b[2])),
        offset=offset,
        g_X_sign_determined=bool(has_circ or "g_X" in prob.fixed_int),
        absolute_sigma=absolute_sigma,
        fixed={k: float(v) for k, v in inp.fix.items()},
        notes=tuple(notes),
        n_iterations=n_iterations,
    )


def fit_zeeman(
    field_T: Sequence[float] | np.ndarray,
    energy_eV: Sequence[float] | np.ndarray,
    sigma_eV: float | Sequence[float] | np.ndarray | None = None,
    *,
    polarization: Sequence[Any] | np.ndarray | None = None,
    geometry: str | Sequence[float] | np.ndarray = "faraday",
    offset: Literal["diamagnetic", "per_field"] = "diamagnetic",
    fix: Mapping[str, float] | None = None,
    initial: Mapping[str, float] | None = None,
    dark_fraction: tuple[Any, Any, Any] | None = None,
    fit_dark_scale: bool = False,
    visibility: bool = True,
    max_iter: int = 50,
) -> ZeemanResult:
    """Global fit of the B.6 Hamiltonian to unassigned magneto-PL line energies.

    Lines are given as flat arrays (one entry per observed line, any order, any number of lines
    per field up to four, e.g. the dark line missing at low field). The fit alternates a
    minimum-cost assignment of lines to eigenstates at each field
    (`scipy.optimize.linear_sum_assignment`, cost ((E_obs - E_model)/sigma)^2 plus a penalty for
    a polarisation label that contradicts the state) with a weighted least-squares fit of the
    parameters (Levenberg-Marquardt, analytic Hellmann-Feynman Jacobian), until the assignment
    no longer changes; this is repeated from a grid of starting points (g_X, Delta_DB) and the
    lowest chi^2 is kept. So it minimises sum_fields min_assignment chi^2.

    **Arguments:**
    - `field_T`: field of each line, tesla (1-D). At least two distinct fields.
    - `energy_eV`: energy of each line, eV (1-D, same length).
    - `sigma_eV`: 1-sigma error of each line (eV; scalar or 1-D). Given: absolute errors,
      chi^2 tests the model. None: equal weights and the covariance is scaled by chi^2_red
      (needs at least one degree of freedom).
    - `polarization`: optional labels per line: 'sigma+', 'sigma-' (circular about +B),
      'pi' (dipole along B: the Z and brightened dark lines in Faraday geometry), 'perp'
      (dipole perpendicular to B) or '' (unknown). They steer the assignment (a state less
      than half of the labelled kind costs up to ~30 sigma of energy offset) and, if any
      circular label is given, fix the sign of g_X (module docstring).
    - `geometry`: field direction in dot axes, 'faraday' (z), 'voigt' (x) or a 3-vector.
    - `offset`: 'diamagnetic' (one E_bright_eV + gamma_dia B^2 for all fields) or 'per_field'
      (a free energy offset at every field but the one closest to 0 T, gamma_dia fixed to 0:
      fits relative energies, robust to spectral diffusion between spectra).
    - `fix`: parameters held at given values (public units), e.g. ``{"g_e_minus_g_h": 2.0}``.
    - `initial`: starting values (public units); g_X / dark_bright_eV given here replace the
      start grid.
    - `dark_fraction`: optional ``(field_T, value, sigma)`` arrays: measured bright fraction of
      the dark line (e.g. from its oscillator strength relative to the Z line), fitted jointly
      with the model's dark-state bright fraction (-> (g_e - g_h)^2 mu_B^2 B^2 / (4 Delta^2)).
    - `fit_dark_scale`: fit `dark_fraction` values as ``dark_scale * fraction`` (arbitrary
      intensity units: only the field dependence is used).
    - `visibility`: add -2 ln(bright fraction) (floored at 1e-6) to the assignment cost, so an
      observed line prefers a bright state. It breaks the exact Z <-> D relabelling symmetry of
      the energies in Faraday geometry; switch off only with care.
    - `max_iter`: cap on assignment/fit alternations per start.

    **Returns:** `ZeemanResult` (frozen). g_X >= 0 and g_e - g_h >= 0 unless fixed otherwise or,
    for g_X, set by circular labels; split_xy >= 0 in Faraday geometry (module docstring).

    **Raises:** `ValueError` for mismatched lengths, NaN/inf, non-positive sigma, a single
    distinct field, more than four lines at one field, fewer data than free parameters, or
    unknown parameter names. Warns `ZeemanFitWarning` if some parameters are not determined by
    the data (their errors are inf) or the assignment did not settle.
    """
    inp = _validate_zeeman(
        field_T,
        energy_eV,
        sigma_eV,
        polarization=polarization,
        geometry=geometry,
        offset=offset,
        fix=fix,
        initial=initial,
        dark_fraction=dark_fraction,
        fit_dark_scale=fit_dark_scale,
    )
    prob = inp.prob
    sig_assign = inp.sig if inp.absolute_sigma else np.full(inp.E.size, _SIGMA_ASSIGN_DEFAULT_eV)
    starts = _seed_zeeman(inp, sigma_eV, geometry, offset, visibility)
    best, tie_broken = _search_assignment(prob, starts, sig_assign, visibility, max_iter)
    full, state, sgn, converged, notes = _polish_zeeman(
        prob, best, sig_assign, visibility, tie_broken
    )
    full, has_circ = _sign_conventions(prob, full, inp.pol, inp.b, sgn)
    cov_int, undetermined, chi2, dof = _zeeman_errors(inp, full, state, converged, has_circ, notes)
    return _assemble_zeeman(
        inp,
        full,
        state,
        cov_int,
        undetermined,
        chi2,
        dof,
        converged=converged,
        has_circ=has_circ,
        offset=offset,
        notes=notes,
        n_iterations=int(best["n_it"]),
    )
