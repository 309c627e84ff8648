"""Shared likelihood machinery: Poisson maximum likelihood for histograms of counts.

Used by the g2 fits (`g2fit.py`) and the lifetime fits (`decay.py`). A model is a function of a
parameter vector returning the expected counts `mu` of every fitted bin. `fit_poisson`
minimises the Poisson deviance

    D(p) = 2 sum_k [ mu_k - n_k + n_k log(n_k / mu_k) ]

with `scipy.optimize.minimize` (L-BFGS-B, bounds, gradient from a central-difference Jacobian
of `mu`), then polishes the optimum with damped Fisher-scoring steps so noiseless data (n = mu
of some parameters) are recovered to ~1e-10 relative. Uncertainties come from the observed
Fisher information, the Hessian of -log L:

    I_obs = J^T diag(n / mu^2) J - sum_k (n_k / mu_k - 1) d2 mu_k / dp dp^T

(J = d mu / dp), by finite differences of `mu` with steps of a tenth of a standard error;
`profile_interval` gives profile-likelihood confidence intervals. Parameters fixed by the
caller or sitting on a bound keep stderr 0 / are excluded from the covariance of the others.
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
    t = m - n
    t[pos] += n[pos] * np.log(n[pos] / m[pos])
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


def _information(
    prob: _Problem, q: np.ndarray, active: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str]:
    """(observed information over active params, expected information, kind)."""
    mu0 = prob.mu(q)
    m = np.maximum(mu0, _TINY)
    h, side = prob.steps(q, 1e-6)
    J = prob.jac(q, h, side, mu0)
    F = J.T @ (J / m[:, None])
    idx = np.flatnonzero(active)
    Fa = F[np.ix_(idx, idx)]
    try:
        cov_exp = np.linalg.inv(Fa)
        sig = np.sqrt(np.abs(np.diag(cov_exp)))
    except np.linalg.LinAlgError:
        return Fa, Fa, "expected"
    # second derivatives of mu with steps ~ sigma / 10 (central where the bounds allow)
    hs = 0.1 * np.where(np.isfinite(sig) & (sig > 0), sig, h[idx])
    qa = q.copy()
    k = idx.size
    sides = np.zeros(k, int)
    for a, i in enumerate(idx):
        if qa[i] - 2 * hs[a] < prob.lo[i]:
            sides[a] = 1
        elif qa[i] + 2 * hs[a] > prob.hi[i]:
            sides[a] = -1

    def mu_at(d: dict[int, float]) -> np.ndarray:
        qq = q.copy()
        for a, v in d.items():
            qq[idx[a]] += v
        return prob.mu(qq)

    H = np.zeros((k, k, mu0.size))
    for a in range(k):
        ha = hs[a]
        if sides[a] == 0:
            H[a, a] = (mu_at({a: ha}) - 2 * mu0 + mu_at({a: -ha})) / ha**2
        else:
            s = sides[a] * ha
            H[a, a] = (mu_at({a: 2 * s}) - 2 * mu_at({a: s}) + mu0) / s**2
        for b in range(a):
            hb = hs[b]
            if sides[a] == 0 and sides[b] == 0:
                v = (
                    mu_at({a: ha, b: hb})
                    - mu_at({a: ha, b: -hb})
                    - mu_at({a: -ha, b: hb})
                    + mu_at({a: -ha, b: -hb})
                ) / (4 * ha * hb)
            else:
                sa = (sides[a] or 1) * ha
                sb = (sides[b] or 1) * hb
                v = (mu_at({a: sa, b: sb}) - mu_at({a: sa}) - mu_at({b: sb}) + mu0) / (sa * sb)
            H[a, b] = H[b, a] = v
    r = prob.n / m - 1.0
    Ja = J[:, idx]
    wn = np.divide(prob.n, m * m, out=np.zeros_like(m), where=prob.n > 0)
    I_obs = Ja.T @ (Ja * wn[:, None]) - np.einsum("k,abk->ab", r, H)
    I_obs = 0.5 * (I_obs + I_obs.T)
    try:
        np.linalg.cholesky(I_obs)
        return I_obs, Fa, "observed"
    except np.linalg.LinAlgError:
        return Fa, Fa, "expected"


def _lbfgsb(prob: _Problem, q0: np.ndarray, max_iter: int) -> np.ndarray:
    from scipy.optimize import minimize

    s = prob.scale

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g, _, _ = prob.grad(x * s)
        if not math.isfinite(f):
            return 1e300, np.zeros_like(x)
        return f, g * s

    bounds = [
        (a if math.isfinite(a) else None, b if math.isfinite(b) else None)
        for a, b in zip(prob.lo / s, prob.hi / s, strict=True)
    ]
    res = minimize(
        fun,
        q0 / s,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 30},
    )
    return np.clip(res.x * s, prob.lo, prob.hi)


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
    max_iter: int = 2000,
    uncertainties: bool = True,
    tol: float = 1e-14,
) -> PoissonFit:
    """Poisson maximum-likelihood fit of `model(p) -> mu` to `counts`.

    **Arguments:**

    - `model`: maps the full parameter vector (order of `names`) to expected counts per bin.
    - `counts`: observed counts (float64, validated by the caller, see `check_counts`).
    - `names`, `p0`: parameter names and start values; `lower`/`upper`: bounds (default
      unbounded); `fixed`: names held at their `p0`; `scale`: typical magnitudes used to scale
      the optimisation and the difference steps (default `max(|p0|, 1)`).
    - `uncertainties`: compute the observed information and covariance (default True).
    - `tol`: convergence threshold on the Newton decrement (log-likelihood still to gain).

    **Returns:** a `PoissonFit`. Never raises for a failed optimisation: `converged` says.
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
    msg = ""
    converged = False
    if q0.size:
        # damped Fisher scoring first (fast near a good start), L-BFGS-B when it stalls
        q, converged, msg = _scoring_polish(prob, q0, max_iter=100, tol=tol)
        if not converged:
            start = q if prob.half_dev(q) <= prob.half_dev(q0) else q0
            q = _lbfgsb(prob, start, max_iter)
            q, converged, msg2 = _scoring_polish(prob, q, tol=tol)
            msg = f"scoring: {msg}; then L-BFGS-B and {msg2}"
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
        active = ~(at_lo | at_hi)
        at_bound[np.flatnonzero(free)] = ~active
        if uncertainties and active.any():
            I, _, info_kind = _information(prob, q, active)
            try:
                c = np.linalg.inv(I)
            except np.linalg.LinAlgError:
                c = np.linalg.pinv(I)
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
    """Profile-likelihood confidence interval of one parameter.

    The interval holds the values `v` where the deviance minimised over the other free
    parameters stays within `delta_deviance` of the best fit (1.0: 68.27 %, 3.84: 95 %). Each
    end is found by a safeguarded secant search on the signed root sqrt(D(v) - D_min), nearly
    linear in v, to 1e-4 of it. An end that reaches a bound is returned as that bound; NaN
    when the search fails. `best` is the `fit_poisson` result with the same model, counts and
    options. Returns `(low, high)`.
    """
    names = best.names
    k = names.index(name)
    lo = np.full(len(names), -np.inf) if lower is None else np.asarray(lower, float)
    hi = np.full(len(names), np.inf) if upper is None else np.asarray(upper, float)
    d0 = best.deviance
    v0 = float(best.values[k])
    sig = float(best.stderr[k]) or max(abs(v0) * 1e-2, 1e-12)
    fixed_k = tuple(fixed) + (name,)
    target = math.sqrt(delta_deviance)

    ends = []
    for side in (-1, 1):
        warm = {"p": best.values.copy()}  # warm start: the last profile point's parameters
        lim = float(lo[k] if side < 0 else hi[k])
        room = abs(lim - v0) if math.isfinite(lim) else math.inf

        def root(x: float, warm: dict = warm, side: int = side) -> tuple[float, np.ndarray]:
            p = warm["p"].copy()
            p[k] = v0 + side * x
            r = fit_poisson(
                model,
                counts,
                names,
                p,
                lower=lo,
                upper=hi,
                fixed=fixed_k,
                scale=scale,
                uncertainties=False,
                tol=1e-10,
            )
            e = r.deviance - d0
            return (math.sqrt(max(e, 0.0)) if math.isfinite(e) else math.nan), r.values

        x_lo, r_lo = 0.0, 0.0  # bracket: r(x_lo) < target <= r(x_hi)
        x_hi = r_hi = math.nan
        x = min(target * sig, room)
        result = math.nan
        for _ in range(40):
            r, vals = root(x)
            if not math.isfinite(r):
                x = x_lo + 0.5 * (x - x_lo)
                continue
            warm["p"] = vals
            if abs(r - target) <= 1e-4 * target:
                result = v0 + side * x
                break
            if r < target:
                x_lo, r_lo = x, r
                if x >= room:
                    result = lim
                    break
            else:
                x_hi, r_hi = x, r
            if math.isfinite(x_hi):
                # secant inside the bracket, bisection when it lands outside
                xn = x_lo + (target - r_lo) * (x_hi - x_lo) / (r_hi - r_lo)
                if not (x_lo < xn < x_hi):
                    xn = 0.5 * (x_lo + x_hi)
                if x_hi - x_lo < 1e-4 * sig:
                    result = v0 + side * xn
                    break
            else:
                xn = x_lo * target / r_lo if r_lo > 0 else 2 * x_lo
                xn = min(max(xn, 1.2 * x_lo), 4 * x_lo, room)
            x = xn
        ends.append(result)
    return ends[0], ends[1]
