"""Shared likelihood machinery: Poisson maximum likelihood for histograms of counts.

Used by the g2 fits (`g2fit.py`) and the lifetime fits (`decay.py`). A model is a function of a
parameter vector returning the expected counts `mu` of every fitted bin. `fit_poisson`
minimises the Poisson deviance (Baker & Cousins; the cost of `iminuit.cost.poisson_chi2`)

    D(p) = 2 sum_k [ mu_k - n_k + n_k log(n_k / mu_k) ]

with iminuit (MINUIT2): MIGRAD, with the gradient from a central-difference Jacobian of `mu`,
on the parameters divided by their scales; then a few damped Fisher-scoring steps polish the
optimum, so noiseless data (n = mu of some parameters) are recovered to ~1e-10 relative (MIGRAD
stops at its machine-precision floor, EDM ~1e-12, some 1e-6 standard errors away) and put
parameters that the likelihood pushes against a bound exactly on it. The polish also runs
straight from the start values and wins when it ends lower (MIGRAD's first steps can leave a
good start's basin: two 128 ps-bin curves of the real FitMyData decay file). Uncertainties come from
HESSE (the observed information: second derivatives of the deviance) over the parameters off
their bounds; `profile_interval` gives profile-likelihood intervals with MINOS. Parameters fixed
by the caller or sitting on a bound keep stderr 0 / are excluded from the covariance of the
others.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "FitWarning",
    "PoissonFit",
    "check_counts",
    "fit_poisson",
    "poisson_deviance",
    "profile_interval",
    "warn_not_converged",
]

_TINY = 1e-300
# Minuit tolerance: EDM goal 0.002 tol (deviance units); MIGRAD floors it near 1e-12 anyway
_MIGRAD_TOL = 1e-6


class FitWarning(UserWarning):
    """A fit result that is not a result as it stands: the fit did not converge (`converged` is
    False), or (subclasses) some parameters are not determined by the data."""


def warn_not_converged(what: str, message: str = "", *, stacklevel: int = 3) -> None:
    """Warn (`FitWarning`) that the fit `what` did not converge; `message` says why."""
    why = f" ({message})" if message else ""
    warnings.warn(
        f"{what}: the fit did not converge{why}; its values and errors are not a result",
        FitWarning,
        stacklevel=stacklevel,
    )


def poisson_deviance(counts: np.ndarray, mu: np.ndarray) -> float:
    """Poisson deviance `2 sum(mu - n + n log(n/mu))` (0 log 0 = 0); inf if mu <= 0 where n > 0."""
    n = np.asarray(counts, dtype=np.float64)
    m = np.asarray(mu, dtype=np.float64)
    if np.any(~np.isfinite(m)):
        return math.inf
    pos = n > 0
    if np.any(m[pos] <= 0):
        return math.inf
    if np.any(m < 0):
        return math.inf
    # n (x - log(1 + x)) with x = mu/n - 1 for n > 0 (mu for n = 0): each term to its own
    # relative precision, also near the optimum, where mu - n and n log(n/mu) nearly cancel
    # (MIGRAD and HESSE see the deviance's changes there, not its rounding)
    t = m.copy()
    x = m[pos] / n[pos] - 1.0
    t[pos] = n[pos] * (x - np.log1p(x))
    return float(2.0 * t.sum())


def pearson_chi2(counts: np.ndarray, mu: np.ndarray) -> float:
    """Pearson chi2 `sum((n - mu)^2 / mu)` over bins with mu > 0."""
    m = np.asarray(mu, float)
    ok = m > 0
    return float(np.sum((np.asarray(counts, float)[ok] - m[ok]) ** 2 / m[ok]))


def check_binned(axis, counts, axis_name: str, *, allow_fractional: bool, min_total: float):
    """Validate a binned curve: 1-D axis (ps) and counts of equal length, at least 8 bins, a finite
    axis, and counts accepted by `check_counts`. Returns (axis as float64, counts)."""
    x = np.asarray(axis, dtype=np.float64)
    n = np.asarray(counts)
    if x.ndim != 1 or np.shape(n) != x.shape:
        raise ValueError(
            f"{axis_name} and counts must be 1-D of equal length: {x.shape}, {np.shape(n)}"
        )
    if x.size < 8:
        raise ValueError(f"only {x.size} {axis_name.removesuffix('_ps')} bins: too few to fit")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{axis_name} contains NaN or inf")
    return x, check_counts(n, allow_fractional=allow_fractional, min_total=min_total)


def check_counts(
    counts: Any, *, name: str = "counts", allow_fractional: bool = False, min_total: float = 1
) -> np.ndarray:
    """Validate a histogram of counts; return it as float64.

    Raises `ValueError` for NaN/inf, negative values, non-integer values (unless
    `allow_fractional`, e.g. noiseless expected counts), or a total below `min_total`.
    Normalised data (g2 values, probabilities) must be turned back into raw counts first.
    """
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {n.shape}")
    if not np.all(np.isfinite(n)):
        raise ValueError(f"{name} contains NaN or inf")
    if np.any(n < 0):
        raise ValueError(f"{name} contains negative values; raw counts are needed")
    if not allow_fractional and np.any(n != np.round(n)):
        raise ValueError(
            f"{name} are not whole numbers: the fit needs raw counts (Poisson), not normalised "
            "values; pass g2(..., normalize=False), the normalised DataArray itself (its "
            "norm_factor is undone), or allow_fractional=True for expected-value data"
        )
    total = float(n.sum())
    if total < min_total:
        raise ValueError(
            f"{name} hold {total:g} counts in all, too few to fit (need {min_total:g})"
        )
    return n


@dataclass(frozen=True, eq=False)
class PoissonFit:
    """Outcome of `fit_poisson` (all parameters, fixed ones included, in the caller's order).

    `values`, `stderr` (0 for fixed / at-bound parameters), `covariance` (full square matrix,
    zero rows for fixed ones), `deviance`, `pearson_chi2`, `dof` (fitted bins minus free
    parameters), `converged`, `message`, `mu` (expected counts at the optimum), `information`
    ("observed" or "expected" when the observed matrix was not positive definite), `free`
    (mask of the parameters varied), `at_bound` (mask).
    """

    names: tuple[str, ...]
    values: np.ndarray
    stderr: np.ndarray
    covariance: np.ndarray
    deviance: float
    pearson_chi2: float
    dof: int
    converged: bool
    message: str
    mu: np.ndarray
    information: str
    free: np.ndarray
    at_bound: np.ndarray

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in zip(self.names, self.values, strict=True)}

    def stderr_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in zip(self.names, self.stderr, strict=True)}

    @property
    def gof(self) -> dict[str, float]:
        dof = max(self.dof, 1)
        return {
            "deviance": self.deviance,
            "dof": float(self.dof),
            "deviance_dof": self.deviance / dof,
            "chi2": self.pearson_chi2,
            "chi2_red": self.pearson_chi2 / dof,
        }


class _Problem:
    def __init__(
        self,
        model: Callable[[np.ndarray], np.ndarray],
        counts: np.ndarray,
        p_all: np.ndarray,
        free: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        scale: np.ndarray,
    ) -> None:
        self.model = model
        self.n = counts
        self.p_all = p_all.copy()
        self.free = free
        self.lo = lower[free]
        self.hi = upper[free]
        self.scale = scale[free]

    def full(self, q: np.ndarray) -> np.ndarray:
        p = self.p_all.copy()
        p[self.free] = q
        return p

    def mu(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(self.full(q)), dtype=np.float64)

    def half_dev(self, q: np.ndarray) -> float:
        return 0.5 * poisson_deviance(self.n, self.mu(q))

    def steps(self, q: np.ndarray, rel: float) -> tuple[np.ndarray, np.ndarray]:
        """Finite-difference steps and sides (0 central, +1 forward, -1 backward)."""
        h = rel * np.maximum(np.abs(q), self.scale)
        side = np.zeros(q.size, int)
        side[q - h < self.lo] = 1
        side[q + h > self.hi] = -1
        return h, side

    def jac(self, q: np.ndarray, h: np.ndarray, side: np.ndarray, mu0: np.ndarray) -> np.ndarray:
        J = np.empty((mu0.size, q.size))
        for i in range(q.size):
            e = np.zeros(q.size)
            e[i] = h[i]
            if side[i] == 0:
                J[:, i] = (self.mu(q + e) - self.mu(q - e)) / (2 * h[i])
            else:
                s = side[i]
                J[:, i] = (self.mu(q + s * e) - mu0) / (s * h[i])
        return J

    def deviance_scaled(self, u: np.ndarray) -> float:
        """The deviance at `q = u * scale` (the cost Minuit minimises)."""
        return poisson_deviance(self.n, self.mu(np.asarray(u) * self.scale))

    def grad_scaled(self, u: np.ndarray) -> np.ndarray:
        """Gradient of `deviance_scaled`."""
        _, g, _, _ = self.grad(np.asarray(u) * self.scale)
        return 2.0 * g * self.scale

    def grad(self, q: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        mu0 = self.mu(q)
        f = 0.5 * poisson_deviance(self.n, mu0)
        h, side = self.steps(q, 1e-6)
        J = self.jac(q, h, side, mu0)
        if not math.isfinite(f):
            return f, np.zeros(q.size), J, mu0
        m = np.maximum(mu0, _TINY)
        g = J.T @ (1.0 - self.n / m)
        return f, g, J, mu0


def _bounded_candidates(
    prob: _Problem, q: np.ndarray, act: np.ndarray, step: np.ndarray, A: np.ndarray, ga: np.ndarray
) -> tuple[np.ndarray, float]:
    """Best of the step clipped to the bounds, the longest step inside them, and (when some
    parameters would cross) the step re-solved with those halfway to their bounds."""
    lo, hi = prob.lo[act], prob.hi[act]
    qa = q[act]
    cands = []
    qn = q.copy()
    qn[act] = np.clip(qa + step, lo, hi)
    cands.append(qn)
    cross = (qa + step < lo) | (qa + step > hi)
    if cross.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(step < 0, (qa - lo) / -step, (hi - qa) / step)
        alpha = float(np.min(room[np.isfinite(room)], initial=np.inf))
        if 1e-6 < alpha < 1.0:
            qi = q.copy()
            qi[act] = np.clip(qa + 0.9 * alpha * step, lo, hi)
            cands.append(qi)
        free = ~cross
        if free.any():
            target = np.where(qa + step < lo, lo, np.where(qa + step > hi, hi, qa))
            d_fix = 0.5 * (target - qa)
            # A d = -g with the crossing components set to d_fix
            rhs = -ga[free] - A[np.ix_(free, cross)] @ d_fix[cross]
            try:
                d_free = np.linalg.solve(A[np.ix_(free, free)], rhs)
                d = d_fix.copy()
                d[free] = d_free
                qr = q.copy()
                qr[act] = np.clip(qa + d, lo, hi)
                cands.append(qr)
            except np.linalg.LinAlgError:
                pass
    best, fbest = q, math.inf
    for c in cands:
        fc = prob.half_dev(c)
        if math.isfinite(fc) and fc < fbest:
            best, fbest = c, fc
    return best, fbest


def _scoring_polish(
    prob: _Problem, q: np.ndarray, max_iter: int = 100, tol: float = 1e-14
) -> tuple[np.ndarray, bool, str]:
    """Damped Fisher scoring (Levenberg-Marquardt on the Poisson likelihood) with an active set
    on the bounds. Converged when the Newton decrement g^T F^-1 g / 2 (the log-likelihood still
    to gain) is below `tol` (or stops improving). Returns (q, converged, message)."""
    lam = 1e-3
    f, g, J, mu = prob.grad(q)
    stall = 0
    dec = math.inf
    for _ in range(max_iter):
        if not math.isfinite(f):
            return q, False, "non-finite likelihood"
        m = np.maximum(mu, _TINY)
        F = J.T @ (J / m[:, None])
        at_lo = (q <= prob.lo) & (g > 0)
        at_hi = (q >= prob.hi) & (g < 0)
        act = ~(at_lo | at_hi)
        if not act.any():
            return q, True, "all parameters at bounds"
        Fa = F[np.ix_(act, act)]
        ga = g[act]
        try:
            dec = 0.5 * float(ga @ np.linalg.solve(Fa, ga))
        except np.linalg.LinAlgError:
            dec = math.inf
        if dec < tol:
            return q, True, "scoring converged"
        accepted = False
        for _ in range(30):
            A = Fa + lam * np.diag(np.diag(Fa))
            try:
                step = -np.linalg.solve(A, ga)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            qn, fn = _bounded_candidates(prob, q, act, step, A, ga)
            if math.isfinite(fn) and fn <= f:
                accepted = True
                break
            lam *= 10
        if not accepted:
            return q, dec < 1e-6, "scoring: no further descent"
        stall = stall + 1 if f - fn <= 1e-13 * max(1.0, abs(f)) else 0
        q = qn
        lam = max(lam / 10, 1e-12)
        f, g, J, mu = prob.grad(q)
        if stall >= 3:
            return q, dec < 1e-6, "scoring: stalled"
    return q, False, "scoring: iteration limit"


def _minuit(prob: _Problem, q: np.ndarray, names: Sequence[str]) -> Any:
    """A Minuit on the scaled free parameters `q / scale`, errordef 1 (the deviance is
    -2 log L up to a constant), with bounds and the gradient."""
    from iminuit import Minuit

    s = prob.scale
    m = Minuit(prob.deviance_scaled, q / s, grad=prob.grad_scaled, name=list(names))
    m.errordef = Minuit.LEAST_SQUARES
    m.print_level = 0
    m.strategy = 2
    m.tol = _MIGRAD_TOL
    m.limits = list(zip(prob.lo / s, prob.hi / s, strict=True))
    m.errors = [0.1] * q.size
    return m


def _snap_to_bounds(prob: _Problem, q: np.ndarray) -> np.ndarray:
    """Minuit's bounded parameters (a sine or square-root transform) approach a bound without
    reaching it: those within 1e-8 of their scale from one go onto it, where the polish's
    active set holds them if the likelihood pushes outwards (else it moves them back)."""
    eps = 1e-8 * prob.scale
    q = np.clip(q, prob.lo, prob.hi)
    q = np.where(q - prob.lo < eps, prob.lo, q)
    return np.where(prob.hi - q < eps, prob.hi, q)


def _fmin_message(fmin: Any) -> str:
    """What MIGRAD says about its minimum, in words."""
    if fmin is None:
        return "MIGRAD did not run"
    bad = [
        text
        for flag, text in (
            (fmin.has_reached_call_limit, "call limit reached"),
            (fmin.is_above_max_edm, f"EDM {fmin.edm:.2g} above its goal {fmin.edm_goal:.2g}"),
            (not fmin.has_valid_parameters, "invalid parameters"),
        )
        if flag
    ]
    if bad:
        return "MIGRAD: " + "; ".join(bad)
    return f"MIGRAD: valid minimum (EDM {fmin.edm:.2g})"


def _hesse(prob: _Problem, m: Any, q: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, str]:
    """Covariance of the active parameters at `q`: HESSE's (the observed information), or,
    where HESSE's matrix is not accurate, the inverse expected (Fisher) information.

    HESSE runs without the bounds: with them, Minuit differentiates in its transformed
    coordinates and shrinks the errors of parameters near a bound (g2(0) near 0, a fraction
    near 1); the deviance is infinite where the model has no meaning, and HESSE then fails over
    to the expected information."""
    m.limits = [(-math.inf, math.inf)] * q.size
    m.values = q / prob.scale
    for i in np.flatnonzero(~active):
        m.fixed[i] = True
    idx = np.flatnonzero(active)
    s = prob.scale[idx]
    try:
        m.hesse()
        fm = m.fmin
        ok = fm is not None and fm.has_accurate_covar and not fm.has_made_posdef_covar
    except RuntimeError:
        ok = False
    if ok:
        c = np.asarray(m.covariance)[np.ix_(idx, idx)]
        if np.all(np.isfinite(c)):
            return c * np.outer(s, s), "observed"
    mu0 = prob.mu(q)
    h, side = prob.steps(q, 1e-6)
    Ja = prob.jac(q, h, side, mu0)[:, idx]
    F = Ja.T @ (Ja / np.maximum(mu0, _TINY)[:, None])
    try:
        return np.linalg.inv(F), "expected"
    except np.linalg.LinAlgError:
        return np.linalg.pinv(F), "expected"


def fit_poisson(
    model: Callable[[np.ndarray], np.ndarray],
    counts: np.ndarray,
    names: Sequence[str],
    p0: Sequence[float],
    *,
    lower: Sequence[float] | None = None,
    upper: Sequence[float] | None = None,
    fixed: Sequence[str] = (),
    scale: Sequence[float] | None = None,
    window: Sequence[str] = (),
    max_iter: int = 2000,
    uncertainties: bool = True,
    tol: float = 1e-20,
) -> PoissonFit:
    """Poisson maximum-likelihood fit of `model(p) -> mu` to `counts`: MIGRAD, a scoring
    polish, HESSE (iminuit).

    **Arguments:**

    - `model`: maps the full parameter vector (order of `names`) to expected counts per bin.
    - `counts`: observed counts (float64, validated by the caller, see `check_counts`).
    - `names`, `p0`: parameter names and start values; `lower`/`upper`: bounds (default
      unbounded); `fixed`: names held at their `p0`; `scale`: typical magnitudes; Minuit works
      on the parameters divided by them, and they set the difference steps (default
      `max(|p0|, 1)`).
    - `window`: names whose bounds are a search window, not a physical limit (a position, a
      period): a fit that ends on such a bound has found no minimum and is not converged.
    - `max_iter`: MIGRAD's call limit is `max_iter` times (free parameters + 1).
    - `uncertainties`: compute the covariance with HESSE (default True).
    - `tol`: convergence threshold of the polish on the Newton decrement (log-likelihood still
      to gain); below ~1e-16 the polish runs until it stops improving (a converged polish).

    **Returns:** a `PoissonFit`; `converged` needs MIGRAD's minimum valid and the polish
    converged. Never raises for a failed optimisation: `converged` says.
    """
    names = tuple(names)
    p_all = np.asarray(p0, dtype=np.float64).copy()
    npar = p_all.size
    lo = np.full(npar, -np.inf) if lower is None else np.asarray(lower, float)
    hi = np.full(npar, np.inf) if upper is None else np.asarray(upper, float)
    sc = np.maximum(np.abs(p_all), 1.0) if scale is None else np.asarray(scale, float)
    p_all = np.clip(p_all, lo, hi)
    free = np.array([nm not in set(fixed) for nm in names])
    prob = _Problem(model, np.asarray(counts, float), p_all, free, lo, hi, sc)
    q0 = p_all[free]
    m = None
    if q0.size:
        # two routes to the optimum, the better kept: MIGRAD from the start values, then the
        # polish; and the polish (damped Fisher scoring) straight from the start values, which
        # holds a good start's basin where MIGRAD's first steps can leave it (real decays)
        m = _minuit(prob, q0, [nm for nm, f in zip(names, free, strict=True) if f])
        m.migrad(ncall=max_iter * (q0.size + 1))
        q = _snap_to_bounds(prob, np.asarray(m.values) * prob.scale)
        if not math.isfinite(prob.half_dev(q)):
            q = q0
        q, polished, msg2 = _scoring_polish(prob, q, tol=tol)
        converged = bool(m.fmin is not None and m.fmin.is_valid and polished)
        msg = f"{_fmin_message(m.fmin)}; {msg2}"
        qs, ok_s, msg_s = _scoring_polish(prob, q0, tol=tol)
        better = prob.half_dev(qs) < prob.half_dev(q) - 1e-9 * max(1.0, abs(prob.half_dev(q)))
        if ok_s and (not converged or better):
            q, converged, msg = qs, True, f"from the start values, {msg_s} ({msg})"
    else:
        q = q0
        converged = True
        msg = "no free parameters"
    mu = prob.mu(q)
    dev = poisson_deviance(prob.n, mu)
    values = prob.full(q)
    cov = np.zeros((npar, npar))
    stderr = np.zeros(npar)
    at_bound = np.zeros(npar, bool)
    info_kind = "none"
    if q.size:
        f, g, _, _ = prob.grad(q)
        at_lo = (q <= prob.lo) & (g > 0)
        at_hi = (q >= prob.hi) & (g < 0)
        held = at_lo | at_hi
        on_edge = held & np.isin(np.array(names)[free], list(window))
        if on_edge.any():
            # no minimum inside the search window: not converged, and no other parameter is
            # "held at its bound" (a statement about a minimum): all get their errors
            converged = False
            edge = ", ".join(np.array(names)[free][on_edge])
            msg += f"; {edge} on the edge of the search window"
            held = on_edge
        active = ~held
        at_bound[np.flatnonzero(free)] = held
        if uncertainties and active.any() and m is not None:
            c, info_kind = _hesse(prob, m, q, active)
            fidx = np.flatnonzero(free)[active]
            cov[np.ix_(fidx, fidx)] = c
            stderr[fidx] = np.sqrt(np.maximum(np.diag(c), 0.0))
            # converged also demands a tiny gradient in units of the standard error
            ga = g[active]
            if converged and not np.all(np.abs(ga) * np.sqrt(np.abs(np.diag(c))) < 1e-3):
                converged = False
                msg += "; gradient not small at the optimum"
    dof = int(np.count_nonzero(np.isfinite(mu))) - int(np.count_nonzero(free & ~at_bound))
    return PoissonFit(
        names=names,
        values=values,
        stderr=stderr,
        covariance=cov,
        deviance=dev,
        pearson_chi2=pearson_chi2(prob.n, mu),
        dof=dof,
        converged=bool(converged),
        message=msg,
        mu=mu,
        information=info_kind,
        free=free,
        at_bound=at_bound,
    )


def profile_interval(
    model: Callable[[np.ndarray], np.ndarray],
    counts: np.ndarray,
    best: PoissonFit,
    name: str,
    *,
    lower: Sequence[float] | None = None,
    upper: Sequence[float] | None = None,
    fixed: Sequence[str] = (),
    scale: Sequence[float] | None = None,
    delta_deviance: float = 1.0,
) -> tuple[float, float]:
    """Profile-likelihood confidence interval of one parameter: MINOS (iminuit).

    The interval holds the values `v` where the deviance minimised over the other free
    parameters stays within `delta_deviance` of the best fit (1.0: 68.27 %, 3.84: 95 %). An
    end that reaches a bound is returned as that bound; NaN when MINOS fails. `best` is the
    `fit_poisson` result with the same model, counts and options. Returns `(low, high)`.
    """
    from scipy.stats import chi2

    names = best.names
    npar = len(names)
    lo = np.full(npar, -np.inf) if lower is None else np.asarray(lower, float)
    hi = np.full(npar, np.inf) if upper is None else np.asarray(upper, float)
    p_all = np.asarray(best.values, dtype=np.float64)
    sc = np.maximum(np.abs(p_all), 1.0) if scale is None else np.asarray(scale, float)
    free = np.array([nm not in set(fixed) for nm in names])
    prob = _Problem(model, np.asarray(counts, float), p_all, free, lo, hi, sc)
    free_names = [nm for nm, f in zip(names, free, strict=True) if f]
    k = free_names.index(name)
    m = _minuit(prob, p_all[free], free_names)
    try:
        m.migrad()
        m.minos(name, cl=float(chi2.cdf(delta_deviance, 1)))
    except RuntimeError:  # no valid minimum to start from
        return math.nan, math.nan
    me = m.merrors[name]
    v, s = float(m.values[name]), float(prob.scale[k])
    if me.at_lower_limit:
        low = float(prob.lo[k])
    else:
        low = (v + me.lower) * s if me.lower_valid else math.nan
    if me.at_upper_limit:
        high = float(prob.hi[k])
    else:
        high = (v + me.upper) * s if me.upper_valid else math.nan
    return low, high
