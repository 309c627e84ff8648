"""Exciton-phonon coupling: linewidth against temperature, and phonon-replica spacings.

Linewidth model (the paper's Fig. 2f analysis; standard for single dots and perovskite films):

    Gamma(T) = Gamma_0 + sigma_ac T + Gamma_LO / (exp(E_LO / k_B T) - 1)

with Gamma_0 the zero-temperature width (eV; includes spectral diffusion and, for resolution-
limited lines, the resolution), sigma_ac the acoustic-phonon coefficient (eV/K), Gamma_LO the
LO-phonon coupling strength (eV) and E_LO the effective LO-phonon energy (eV). k_B from
scipy.constants. The paper reports sigma_ac < 10 ueV/K and E_LO = 20 meV for dot 3.

`fit_replicas` fits the zero-phonon line (ZPL) and its phonon sidebands in one spectrum and
returns the replica spacings E_ZPL - E_i with errors (the paper: 3-4, 6-7 and 10 meV).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.constants as _sc
from scipy.optimize import least_squares

from qdsim.analysis.fitting import warn_not_converged
from qdsim.analysis.spectroscopy.spectra import GoodnessOfFit, PeakFitResult, _readonly, fit_peaks

__all__ = [
    "K_B_eV_K",
    "LINEWIDTH_PARAMS",
    "LinewidthResult",
    "ReplicaResult",
    "fit_linewidth",
    "fit_replicas",
    "linewidth_model",
]

K_B_eV_K: float = _sc.k / _sc.e
"""Boltzmann constant in eV/K (scipy.constants)."""

LINEWIDTH_PARAMS: tuple[str, ...] = ("gamma0_eV", "acoustic_eV_per_K", "gamma_LO_eV", "E_LO_eV")
"""Parameter names of `linewidth_model`, in covariance order."""


def _bose(E_eV: Any, T_K: Any) -> np.ndarray:
    """Bose-Einstein occupation 1/(exp(E/kT) - 1), overflow-safe."""
    x = np.asarray(E_eV, dtype=float) / (K_B_eV_K * np.asarray(T_K, dtype=float))
    with np.errstate(over="ignore"):
        return np.exp(-x) / -np.expm1(-x)


def linewidth_model(
    temperature_K: Any,
    gamma0_eV: float,
    acoustic_eV_per_K: float,
    gamma_LO_eV: float,
    E_LO_eV: float,
) -> np.ndarray:
    """Gamma(T) = Gamma_0 + sigma_ac T + Gamma_LO n_B(E_LO, T), in eV (T in kelvin, > 0)."""
    T = np.asarray(temperature_K, dtype=float)
    return gamma0_eV + acoustic_eV_per_K * T + gamma_LO_eV * _bose(E_LO_eV, T)


@dataclass(frozen=True)
class LinewidthResult:
    """Result of `fit_linewidth` (eV, K). Named fields: values and 1-sigma errors.

    ``params``/``stderr`` are dicts over `LINEWIDTH_PARAMS`; ``covariance``/``correlation``
    over ``free_names`` (fixed parameters have error 0).
    """

    gamma0_eV: float
    gamma0_err_eV: float
    acoustic_eV_per_K: float
    acoustic_err_eV_per_K: float
    gamma_LO_eV: float
    gamma_LO_err_eV: float
    E_LO_eV: float
    E_LO_err_eV: float
    params: dict[str, float]
    stderr: dict[str, float]
    free_names: tuple[str, ...]
    covariance: np.ndarray
    correlation: np.ndarray
    gof: GoodnessOfFit
    converged: bool
    temperature_K: np.ndarray
    fwhm_eV: np.ndarray
    sigma_eV: np.ndarray
    absolute_sigma: bool
    fixed: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def model(self, temperature_K: Any) -> np.ndarray:
        """Fitted Gamma(T) in eV at `temperature_K` (K)."""
        return linewidth_model(temperature_K, *(self.params[k] for k in LINEWIDTH_PARAMS))

    def components(self, temperature_K: Any) -> dict[str, np.ndarray]:
        """The three terms (eV): 'constant', 'acoustic' (sigma T), 'LO' (Gamma_LO n_B)."""
        T = np.asarray(temperature_K, dtype=float)
        return {
            "constant": np.full(T.shape, self.gamma0_eV),
            "acoustic": self.acoustic_eV_per_K * T,
            "LO": self.gamma_LO_eV * _bose(self.E_LO_eV, T),
        }

    def to_dataset(self) -> Any:
        """xarray Dataset: data and model on dim ``temperature``, parameters on ``parameter``."""
        import xarray as xr

        names = list(LINEWIDTH_PARAMS)
        units = {"gamma0_eV": "eV", "acoustic_eV_per_K": "eV/K", "gamma_LO_eV": "eV"}
        units["E_LO_eV"] = "eV"
        return xr.Dataset(
            {
                "fwhm": ("point", self.fwhm_eV, {"units": "eV"}),
                "fwhm_sigma": ("point", self.sigma_eV, {"units": "eV"}),
                "model": ("point", self.model(self.temperature_K), {"units": "eV"}),
                "value": ("parameter", np.array([self.params[k] for k in names])),
                "stderr": ("parameter", np.array([self.stderr[k] for k in names])),
                "covariance": (("free_parameter", "free_parameter2"), self.covariance),
                "correlation": (("free_parameter", "free_parameter2"), self.correlation),
            },
            coords={
                "temperature": ("point", self.temperature_K, {"units": "K"}),
                "parameter": names,
                "free_parameter": list(self.free_names),
                "free_parameter2": list(self.free_names),
            },
            attrs={
                "model": "Gamma0 + sigma_ac T + Gamma_LO / (exp(E_LO / kT) - 1)",
                "parameter_units": json.dumps(units),
                "chi2": self.gof.chi2,
                "dof": self.gof.dof,
                "chi2_red": self.gof.chi2_red,
                "converged": int(self.converged),
                "absolute_sigma": int(self.absolute_sigma),
                "fixed": json.dumps(self.fixed),
                "notes": json.dumps(list(self.notes)),
            },
        )


def _validate(name: str, a: Any) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=float).reshape(-1) if np.ndim(a) <= 1 else None
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers") from None
    if arr is None:
        raise ValueError(f"{name} must be 1-D")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has NaN or inf at index {np.flatnonzero(~np.isfinite(arr))[:5]}")
    return arr


# scaled internal units of (gamma0, acoustic, gamma_LO, E_LO): meV, ueV/K, meV, meV
_LW_SCALE = np.array([1e3, 1e6, 1e3, 1e3])


@dataclass(frozen=True, eq=False)
class _LinewidthProblem:
    """The validated data of `fit_linewidth`, its fixed and free parameters, and the weighted
    residuals and Jacobian in scaled internal units (`_LW_SCALE`)."""

    T: np.ndarray
    G: np.ndarray
    S: np.ndarray
    absolute: bool
    fix: dict[str, float]
    initial: dict[str, float]
    free: list[str]

    @property
    def idx_free(self) -> list[int]:
        return [LINEWIDTH_PARAMS.index(k) for k in self.free]

    def full(self, x: np.ndarray) -> np.ndarray:
        out = np.array([self.fix.get(k, 0.0) for k in LINEWIDTH_PARAMS]) * _LW_SCALE
        out[self.idx_free] = x
        return out

    def resid(self, x: np.ndarray) -> np.ndarray:
        p = self.full(x) / _LW_SCALE
        return (linewidth_model(self.T, *p) - self.G) / self.S

    def jac(self, x: np.ndarray) -> np.ndarray:
        T = self.T
        p = self.full(x) / _LW_SCALE
        n = _bose(p[3], T)
        cols = np.stack(
            [
                np.ones_like(T),
                T,
                n,
                p[2] * (-n * (1.0 + n)) / (K_B_eV_K * T),
            ],
            axis=1,
        )
        cols = cols / _LW_SCALE[None, :]
        return cols[:, self.idx_free] / self.S[:, None]


def _validate_linewidth(
    temperature_K: Any,
    fwhm_eV: Any,
    sigma_eV: Any,
    fix: Mapping[str, float] | None,
    initial: Mapping[str, float] | None,
) -> _LinewidthProblem:
    """Check the data, the parameter names and that the free parameters are determined."""
    T = _validate("temperature_K", temperature_K)
    G = _validate("fwhm_eV", fwhm_eV)
    if T.size != G.size:
        raise ValueError(f"temperature_K has {T.size} entries but fwhm_eV has {G.size}")
    if np.any(T <= 0):
        raise ValueError("temperatures must be > 0 K")
    absolute = sigma_eV is not None
    if sigma_eV is None:
        S = np.ones_like(G)
    else:
        S = _validate("sigma_eV", sigma_eV)
        if S.size == 1:
            S = np.full(G.size, S[0])
        if S.size != G.size:
            raise ValueError(f"sigma_eV has {S.size} entries but fwhm_eV has {G.size}")
        if np.any(S <= 0):
            raise ValueError("sigma_eV must be > 0")
    fix = {k: float(v) for k, v in (fix or {}).items()}
    initial = {k: float(v) for k, v in (initial or {}).items()}
    for k in list(fix) + list(initial):
        if k not in LINEWIDTH_PARAMS:
            raise ValueError(f"unknown parameter {k!r}; known: {LINEWIDTH_PARAMS}")
    if "E_LO_eV" in fix and fix["E_LO_eV"] <= 0:
        raise ValueError("E_LO_eV must be > 0")
    free = [k for k in LINEWIDTH_PARAMS if k not in fix]
    if not free:
        raise ValueError("every parameter is fixed; nothing to fit")
    n_T = np.unique(T).size
    need = len(free) + (0 if absolute else 1)
    if n_T < len(free) or T.size < need:
        raise ValueError(
            f"{T.size} points at {n_T} distinct temperatures for {len(free)} free parameters "
            f"({', '.join(free)}); need at least {len(free)} temperatures"
            + ("" if absolute else " and one more point without sigma_eV")
            + ": add data or fix parameters (fix=...)"
        )
    return _LinewidthProblem(T, G, S, absolute, fix, initial, free)


def _seed_linewidth(lp: _LinewidthProblem) -> np.ndarray:
    """Start (internal units): for each E_LO of a grid (2-100 meV, or the given one) the model
    is linear in the other parameters, solved exactly; the E_LO with the lowest chi^2 wins."""
    T, G, S, fix, initial, free = lp.T, lp.G, lp.S, lp.fix, lp.initial, lp.free
    idx_free = lp.idx_free
    E_grid = (
        [initial["E_LO_eV"]]
        if "E_LO_eV" in initial
        else ([fix["E_LO_eV"]] if "E_LO_eV" in fix else list(np.geomspace(2e-3, 0.1, 12)))
    )
    lin = [k for k in ("gamma0_eV", "acoustic_eV_per_K", "gamma_LO_eV") if k not in fix]
    best: tuple[float, np.ndarray] | None = None
    for E_LO in E_grid:
        cols = {
            "gamma0_eV": np.ones_like(T),
            "acoustic_eV_per_K": T,
            "gamma_LO_eV": _bose(E_LO, T),
        }
        rhs = G.copy()
        for k in ("gamma0_eV", "acoustic_eV_per_K", "gamma_LO_eV"):
            if k in fix:
                rhs = rhs - fix[k] * cols[k]
        vals = dict(fix)
        vals["E_LO_eV"] = E_LO
        if lin:
            A = np.stack([cols[k] for k in lin], axis=1) / S[:, None]
            sol, *_ = np.linalg.lstsq(A, rhs / S, rcond=None)
            vals.update(dict(zip(lin, sol, strict=True)))
        vals.update({k: v for k, v in initial.items() if k != "E_LO_eV"})
        x0 = np.array([vals[k] for k in free]) * _LW_SCALE[idx_free]
        c = float(np.sum(lp.resid(x0) ** 2))
        if best is None or c < best[0]:
            best = (c, x0)
    assert best is not None
    return best[1]


def _least_squares_linewidth(lp: _LinewidthProblem, x_start: np.ndarray) -> Any:
    """Refine in all free parameters (trust region, E_LO >= 1 ueV); warns when not converged."""
    free = lp.free
    lb = np.full(len(free), -np.inf)
    ub = np.full(len(free), np.inf)
    if "E_LO_eV" in free:
        lb[free.index("E_LO_eV")] = 1e-3  # 1 ueV in internal meV
    x0 = np.clip(x_start, lb + 1e-9, ub)
    res = least_squares(
        lp.resid, x0, jac=lp.jac, bounds=(lb, ub), method="trf", xtol=1e-15, ftol=1e-15,
        gtol=1e-15, max_nfev=2000,
    )  # fmt: skip
    if not res.success:
        warn_not_converged("fit_linewidth", str(res.message), stacklevel=4)
    return res


def _assemble_linewidth(lp: _LinewidthProblem, res: Any) -> LinewidthResult:
    """Covariance from the Jacobian at the optimum (undetermined directions get inf errors;
    scaled by chi^2_red without sigma), public units and notes."""
    T, G, S, free, absolute = lp.T, lp.G, lp.S, lp.free, lp.absolute
    idx_free = lp.idx_free
    x = res.x
    r = lp.resid(x)
    chi2 = float(r @ r)
    dof = T.size - len(free)
    J = lp.jac(x)
    notes: list[str] = []
    _, s, Vt = np.linalg.svd(J, full_matrices=False)
    good = s > 1e-10 * s[0]
    cov = (Vt[good].T / s[good] ** 2) @ Vt[good]
    if not good.all():
        notes.append("rank-deficient Jacobian: a parameter combination is not determined")
        for k in np.flatnonzero(~good):
            for i in np.flatnonzero(np.abs(Vt[k]) > 1e-3):
                cov[i, :] = np.nan
                cov[:, i] = np.nan
                cov[i, i] = np.inf
    if not absolute:
        cov = cov * (chi2 / dof)
    cov = cov / np.outer(_LW_SCALE[idx_free], _LW_SCALE[idx_free])
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.diag(cov))
        corr = cov / np.outer(sd, sd)
    corr[~np.isfinite(corr)] = np.nan
    for i in range(len(free)):
        if math.isfinite(sd[i]):
            corr[i, i] = 1.0
    pub = lp.full(x) / _LW_SCALE
    params = dict(zip(LINEWIDTH_PARAMS, map(float, pub), strict=True))
    stderr = {k: 0.0 for k in LINEWIDTH_PARAMS}
    for i, k in enumerate(free):
        stderr[k] = float(sd[i])
    if "E_LO_eV" in free and pub[3] <= 1.0001e-6:
        notes.append("E_LO at its lower bound (1 ueV): the LO term is not resolved")
    if "E_LO_eV" in free and pub[3] > 3 * K_B_eV_K * T.max() * 10:
        notes.append("E_LO far above k_B T_max: the LO term is barely activated in the data")
    return LinewidthResult(
        gamma0_eV=params["gamma0_eV"],
        gamma0_err_eV=stderr["gamma0_eV"],
        acoustic_eV_per_K=params["acoustic_eV_per_K"],
        acoustic_err_eV_per_K=stderr["acoustic_eV_per_K"],
        gamma_LO_eV=params["gamma_LO_eV"],
        gamma_LO_err_eV=stderr["gamma_LO_eV"],
        E_LO_eV=params["E_LO_eV"],
        E_LO_err_eV=stderr["E_LO_eV"],
        params=params,
        stderr=stderr,
        free_names=tuple(free),
        covariance=_readonly(cov),
        correlation=_readonly(corr),
        gof=GoodnessOfFit(chi2, dof),
        converged=bool(res.success),
        temperature_K=_readonly(T),
        fwhm_eV=_readonly(G),
        sigma_eV=_readonly(S if absolute else np.full(G.size, np.nan)),
        absolute_sigma=absolute,
        fixed=lp.fix,
        notes=tuple(notes),
    )


def fit_linewidth(
    temperature_K: Sequence[float] | np.ndarray,
    fwhm_eV: Sequence[float] | np.ndarray,
    sigma_eV: float | Sequence[float] | np.ndarray | None = None,
    *,
    fix: Mapping[str, float] | None = None,
    initial: Mapping[str, float] | None = None,
) -> LinewidthResult:
    """Fit Gamma(T) = Gamma_0 + sigma_ac T + Gamma_LO / (exp(E_LO / k_B T) - 1).

    For each E_LO of a grid (2-100 meV, or `initial`) the model is linear in the other three
    parameters and is solved exactly; the best start is then refined in all parameters (trust
    region, E_LO > 0). Errors from the Jacobian at the optimum.

    **Arguments:**
    - `temperature_K`: temperatures, K (> 0), 1-D.
    - `fwhm_eV`: linewidths (FWHM), eV, same length.
    - `sigma_eV`: 1-sigma errors of the widths (eV; scalar or array). None: equal weights and
      the covariance scaled by chi^2_red (needs one more point than free parameters).
    - `fix`: parameters held fixed, e.g. ``{"E_LO_eV": 0.020}`` (names: `LINEWIDTH_PARAMS`).
    - `initial`: starting values.

    **Returns:** `LinewidthResult`. **Raises:** `ValueError` on mismatched lengths, NaN,
    T <= 0, sigma <= 0, unknown names, or fewer distinct temperatures than free parameters.
    """
    problem = _validate_linewidth(temperature_K, fwhm_eV, sigma_eV, fix, initial)
    x_start = _seed_linewidth(problem)
    res = _least_squares_linewidth(problem, x_start)
    return _assemble_linewidth(problem, res)


# ------------------------------------------------------------------------------------------
# phonon replicas
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaResult:
    """Result of `fit_replicas` (eV). Replicas sorted by spacing (nearest to the ZPL first).

    ``spacing_eV[i] = E_ZPL - E_i`` with ``spacing_err_eV`` from the full covariance of the
    two centres; ``area_ratio`` = replica area / ZPL area (a Huang-Rhys-type weight) with
    ``area_ratio_err``. ``peaks`` is the underlying `PeakFitResult`.
    """

    zpl_eV: float
    zpl_err_eV: float
    spacing_eV: np.ndarray
    spacing_err_eV: np.ndarray
    area_ratio: np.ndarray
    area_ratio_err: np.ndarray
    peaks: PeakFitResult

    def to_dataset(self) -> Any:
        """xarray Dataset on dim ``replica`` (spacing, errors, area ratio), ZPL in attrs."""
        import xarray as xr

        return xr.Dataset(
            {
                "spacing": ("replica", self.spacing_eV, {"units": "eV"}),
                "spacing_err": ("replica", self.spacing_err_eV, {"units": "eV"}),
                "area_ratio": ("replica", self.area_ratio),
                "area_ratio_err": ("replica", self.area_ratio_err),
            },
            coords={"replica": np.arange(self.spacing_eV.size)},
            attrs={"zpl_eV": self.zpl_eV, "zpl_err_eV": self.zpl_err_eV},
        )


def fit_replicas(
    spectrum: Any,
    n_peaks: int | None = None,
    *,
    zpl_eV: float | None = None,
    centers_eV: Sequence[float] | None = None,
    **peak_options: Any,
) -> ReplicaResult:
    """Zero-phonon line and phonon replicas of one spectrum: spacings E_ZPL - E_i (eV).

    **Arguments:**
    - `spectrum`: one spectrum (DataArray with dim 'energy' in eV, or ``(energy_eV, y)``).
    - `n_peaks`: total number of lines (ZPL + replicas) to fit, or None (automatic detection).
    - `zpl_eV`: approximate ZPL energy (eV); default: the line of largest area.
    - `centers_eV`: starting centres of all lines instead of automatic detection.
    - `peak_options`: passed to `fit_peaks` (shape, background, sigma, window_eV, ...).

    **Returns:** `ReplicaResult` with the lines below the ZPL as replicas (lines above it, e.g.
    other excitonic lines, are ignored). **Raises:** `ValueError` if no line lies below the
    ZPL, or from `fit_peaks`.
    """
    pk = fit_peaks(spectrum, n_peaks, centers_eV=centers_eV, **peak_options)
    if pk.center_eV.shape[0] != 1:
        raise ValueError("fit_replicas takes one spectrum, not a series")
    c = pk.center_eV[0]
    m = np.isfinite(c)
    k_all = np.flatnonzero(m)
    if zpl_eV is None:
        z = int(k_all[np.argmax(pk.area[0, m])])
    else:
        z = int(k_all[np.argmin(np.abs(c[m] - zpl_eV))])
    reps = [k for k in k_all if c[k] < c[z]]
    if not reps:
        raise ValueError("no line below the zero-phonon line: nothing to call a replica")
    cov = pk.covariance
    cz = pk.center_param[0, z]
    az = pk.area_param[0, z]
    sp, sp_err, ar, ar_err = [], [], [], []
    for k in reps:
        ck, ak = pk.center_param[0, k], pk.area_param[0, k]
        sp.append(c[z] - c[k])
        sp_err.append(math.sqrt(max(cov[cz, cz] + cov[ck, ck] - 2 * cov[cz, ck], 0.0)))
        A_z, A_k = pk.area[0, z], pk.area[0, k]
        ratio = A_k / A_z
        var = (
            cov[ak, ak] / A_z**2
            + ratio**2 * cov[az, az] / A_z**2
            - 2 * ratio * cov[ak, az] / A_z**2
        )
        ar.append(ratio)
        ar_err.append(math.sqrt(max(var, 0.0)))
    o = np.argsort(sp)
    return ReplicaResult(
        zpl_eV=float(c[z]),
        zpl_err_eV=float(pk.center_err_eV[0, z]),
        spacing_eV=_readonly(np.asarray(sp)[o]),
        spacing_err_eV=_readonly(np.asarray(sp_err)[o]),
        area_ratio=_readonly(np.asarray(ar)[o]),
        area_ratio_err=_readonly(np.asarray(ar_err)[o]),
        peaks=pk,
    )
