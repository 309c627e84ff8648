"""TCSPC decay histograms and lifetime fits (IRF reconvolution, wrapped tail, Poisson ML).

**Model.** The expected counts in bin k (width b, centre t_k) are

    mu_k = background + amplitude * integral over bin k of (IRF * D)(t) dt

with the decay density `D(u) = sum_i f_i exp(-u / tau_i) / tau_i` (u >= 0; `f_i` area
fractions, sum 1; `n_exp` = 1 or 2), so `amplitude` is the number of decay photons per
excitation pulse. With `period_ps` given, the sample is excited by an infinite pulse train of
that period: `D` becomes its periodic sum `D_P(u) = sum_m D(u + m P)`, which is how the tail of
earlier pulses wraps into the histogram (and how a histogram spanning several pulses is
modelled). With `period_ps=None` only the pulse(s) in the IRF excite.

- **Measured IRF** (`irf=` array or DataArray on the same time grid as the counts): the IRF,
  background-subtracted and normalised, is a set of point excitations at its bin centres
  shifted by the fitted `shift_ps`; the bin integrals of `D` are analytic and the sum over the
  IRF bins is an FFT convolution. A multi-pulse IRF needs `period_ps=None`.
- **Gaussian IRF** (`irf=None`): excitation N(`irf_t0_ps`, `irf_sigma_ps`^2), both fitted;
  the bin integrals of the exponentially modified Gaussian are analytic. Used when the rise of
  the decay is resolved in the fitted range.
- **Tail fit** (`irf=None`, rise not resolved: the peak is in the first bins of the fitted
  range): the decay starts sharply at the left edge of the peak bin; earlier bins are left out.

Poisson maximum likelihood (`fitting.fit_poisson`: iminuit's MIGRAD and a scoring polish);
standard errors from the observed Fisher information (HESSE); lifetimes also get
profile-likelihood confidence intervals (MINOS). A fit whose IRF position (`irf_t0_ps`,
`shift_ps`) or fitted period ends on the edge of its search window is not converged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy.special import log_ndtr

from qdsim.analysis.fitting import (
    PoissonFit,
    check_binned,
    fit_poisson,
    profile_interval,
    warn_not_converged,
)
from qdsim.analysis.photons.stream import PhotonStream

__all__ = ["DecayResult", "decay_histogram", "decay_model", "fit_decay"]

_MIN_COUNTS = 50


# --------------------------------------------------------------------------------------------
# histogram
# --------------------------------------------------------------------------------------------


def _resolution_ps(stream: PhotonStream, micro: np.ndarray) -> float:
    res = getattr(stream, "resolution_ps", None)
    if res:
        return float(res)
    h = stream.header or {}
    for key in ("MeasDesc_Resolution", "resolution_s"):
        if key in h:
            try:
                return float(h[key]) * 1e12
            except (TypeError, ValueError):
                pass
    u = np.unique(micro)
    if u.size > 1:
        g = int(np.gcd.reduce(np.diff(u)))
        if g > 0:
            return float(g)
    return 1.0


def decay_histogram(
    stream: PhotonStream,
    channel: int | Sequence[int] | None = None,
    bin_ps: float | None = None,
    *,
    period_ps: float | None = None,
) -> xr.DataArray:
    """TCSPC histogram of the micro times of a T3 `PhotonStream`.

    **Arguments:**

    - `stream`: T3 photons (`micro_ps` set; ps).
    - `channel`: one channel, several, or None for all photon channels (>= 0).
    - `bin_ps`: bin width (ps), default the micro-time resolution (the stream's
      `resolution_ps`, else the header's `MeasDesc_Resolution`, else the gcd of the micro
      times); must be a whole multiple of that resolution.
    - `period_ps`: histogram range `[0, period_ps)`, default the stream's `sync_period_ps`
      (else up to the largest micro time).

    **Returns:** DataArray of counts on dim `time` (bin centres, ps; bin k covers
    `[k bin_ps, (k + 1) bin_ps)`), attrs `bin_ps`, `period_ps` (the sync period, for the wrapped
    tail of `fit_decay`), `resolution_ps`, `channels`, `n_photons`. `fit_decay` accepts it
    directly. Raises `ValueError` for a T2 stream, an empty selection or a bad bin width.
    """
    if stream.micro_ps is None:
        raise ValueError("decay_histogram needs T3 data (micro times); this stream is T2")
    c = stream.channel
    if channel is None:
        sel = c >= 0
        chans = sorted(int(x) for x in np.unique(c[sel]))
    else:
        chans = [int(channel)] if np.isscalar(channel) else [int(x) for x in channel]
        sel = np.isin(c, chans)
    micro = stream.micro_ps[sel]
    if micro.size == 0:
        raise ValueError(f"no photons in channel(s) {chans}")
    res = _resolution_ps(stream, micro)
    b = res if bin_ps is None else float(bin_ps)
    if not (math.isfinite(b) and b > 0):
        raise ValueError(f"bin_ps must be positive, got {bin_ps!r}")
    ratio = b / res
    if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
        raise ValueError(
            f"bin_ps = {b:g} ps is not a whole multiple of the micro-time resolution {res:g} ps"
        )
    P = period_ps if period_ps is not None else stream.sync_period_ps
    span = float(P) if P else float(micro.max()) + res
    nb = max(1, int(math.ceil(span / b - 1e-9)))
    # micro times are whole ps, round(k * resolution): the half-ps offset keeps each in its bin
    # even when the resolution is not a whole number of ps (e.g. 63.99999974 ps)
    idx = np.floor((micro + 0.5) / b).astype(np.int64) if res > 1 else np.floor(micro / b)
    idx = idx.astype(np.int64)
    idx = idx[(idx >= 0) & (idx < nb)]
    h = np.bincount(idx, minlength=nb)[:nb]
    t = (np.arange(nb) + 0.5) * b
    return xr.DataArray(
        h.astype(np.int64),
        dims=("time",),
        coords={"time": ("time", t, {"units": "ps", "long_name": "micro time (bin centre)"})},
        name="counts",
        attrs={
            "units": "counts",
            "long_name": "TCSPC histogram",
            "bin_ps": float(b),
            "period_ps": float(P) if P else float("nan"),
            "resolution_ps": float(res),
            "channels": chans,
            "n_photons": int(micro.size),
        },
    )


# --------------------------------------------------------------------------------------------
# model pieces
# --------------------------------------------------------------------------------------------


def _cum_decay(u: np.ndarray, tau: float, period: float | None) -> np.ndarray:
    """Antiderivative of the unit-area decay density, periodic sum when `period` is given.

    Non-periodic: C(u) = 1 - exp(-u / tau) for u >= 0, 0 before. Periodic: C(u) = floor(u / P)
    + (1 - exp(-(u mod P) / tau)) / (1 - exp(-P / tau)): differences are the bin masses of the
    decays of a pulse train (pulses at u = m P).
    """
    if period is None:
        return np.where(u > 0, -np.expm1(-np.maximum(u, 0.0) / tau), 0.0)
    P = float(period)
    k = np.floor(u / P)
    r = u - k * P
    return k + np.expm1(-r / tau) / np.expm1(-P / tau)


def _c2_np(u: np.ndarray, tau: float) -> np.ndarray:
    """Second antiderivative of the one-sided unit decay exp(-u/tau)/tau (0 for u <= 0)."""
    v = np.maximum(u, 0.0)
    return np.where(u > 0, v + tau * np.expm1(-v / tau), 0.0)


def _c3_np(u: np.ndarray, tau: float) -> np.ndarray:
    """Third antiderivative of the one-sided unit decay (0 for u <= 0)."""
    v = np.maximum(u, 0.0)
    return np.where(u > 0, 0.5 * v * v - tau * v - tau * tau * np.expm1(-v / tau), 0.0)


def _kernels_exp(x: np.ndarray, tau: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """`(K, J)` of the two-sided smooth function exp(-u/tau)/tau (see `_irf_kernels`)."""
    e = np.exp(-(x - b) / tau)
    g = -np.expm1(-b / tau)  # 1 - exp(-b/tau)
    K = (tau / b) * e * g * g
    J = -tau * tau * e * g * g + 0.5 * b * tau * (e - np.exp(-(x + b) / tau))
    return K, J


def _kernels_np(x: np.ndarray, tau: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """`(K, J)` of the one-sided decay exp(-u/tau)/tau, u >= 0 (see `_irf_kernels`)."""
    K = np.zeros(x.shape)
    J = np.zeros(x.shape)
    far = x >= b
    if far.any():
        K[far], J[far] = _kernels_exp(x[far], tau, b)
    near = np.abs(x) < b
    if near.any():
        xn = x[near]
        c2 = [_c2_np(xn + d, tau) for d in (-b, 0.0, b)]
        c3 = [_c3_np(xn + d, tau) for d in (-b, 0.0, b)]
        K[near] = (c2[2] - 2 * c2[1] + c2[0]) / b
        J[near] = c3[2] - 2 * c3[1] + c3[0] - 0.5 * b * (c2[2] - c2[0])
    return K, J


def _irf_kernels(
    x: np.ndarray, tau: float, b: float, period: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Reconvolution kernels for an IRF whose density is linear within each bin.

    For an IRF bin of width `b` centred at lag `x` (ps) before a data bin of width `b`, with
    density `h/b + a (s - s_j)` over the IRF bin, the expected decay mass in the data bin is
    `h K(x) + a J(x)`, where (C2, C3: second and third antiderivatives of the decay density D)

        K(x) = [C2(x + b) - 2 C2(x) + C2(x - b)] / b
        J(x) = C3(x + b) - 2 C3(x) + C3(x - b) - b [C2(x + b) - C2(x - b)] / 2.

    With a period P (2 b < P) the decay is the pulse train's periodic sum, which on (-P, P) is
    the one-sided decay plus exp(-u/tau)/tau / (exp(P/tau) - 1); lags are wrapped to (-b, P - b].
    Closed forms away from the jump keep the differences free of cancellation.
    """
    if period is None:
        return _kernels_np(x, tau, b)
    P = float(period)
    r = np.mod(x, P)
    r = np.where(r > P - b, r - P, r)
    Kn, Jn = _kernels_np(r, tau, b)
    Ke, Je = _kernels_exp(r, tau, b)
    c = math.exp(-P / tau) / -math.expm1(-P / tau)  # 1 / (exp(P/tau) - 1), overflow-free
    return Kn + c * Ke, Jn + c * Je


def _emg_cdf(x: np.ndarray, tau: float, sigma: float) -> np.ndarray:
    """CDF of Exp(tau) + N(0, sigma^2): Phi(x/s) - exp(-x/tau + s^2/(2 tau^2)) Phi(x/s - s/tau)."""
    z = x / sigma
    r = sigma / tau
    return np.exp(log_ndtr(z)) - np.exp(-x / tau + 0.5 * r * r + log_ndtr(z - r))


def _gauss_decay_mass(
    edges: np.ndarray, t0: float, sigma: float, tau: float, period: float | None
) -> np.ndarray:
    """Bin masses of (Gaussian excitation at t0 [+ m P]) * exp decay, for contiguous `edges`."""
    if period is None:
        F = _emg_cdf(edges - t0, tau, sigma)
        return np.diff(F)
    P = float(period)
    reach = 12.0 * sigma + sigma * sigma / tau  # beyond it Phi(x/sigma - sigma/tau) = 1
    # pulses whose Gaussian overlaps the range are summed explicitly; older ones are pure
    # exponential tails there and are summed as a geometric series
    m_hi = math.ceil((edges[-1] + reach - t0) / P)
    m_lo = math.floor((edges[0] - reach - t0) / P)
    out = np.zeros(edges.size - 1)
    for m in range(m_lo, m_hi + 1):
        out += np.diff(_emg_cdf(edges - t0 - m * P, tau, sigma))
    # pulses m < m_lo: each contributes exp(-(t - t0 - mP)/tau + r^2/2) (Phi = 1 there)
    r = sigma / tau
    q = math.exp(-P / tau)
    x = edges - t0 - (m_lo - 1) * P  # > P + reach: no overflow
    cdf_tail = -np.exp(-x / tau + 0.5 * r * r)  # antiderivative of the density for pulse m_lo-1
    out += np.diff(cdf_tail) / (1.0 - q)
    return out


def _prepare_irf(irf: np.ndarray, background: Any) -> np.ndarray:
    w = np.asarray(irf, dtype=np.float64)
    if w.ndim != 1 or not np.all(np.isfinite(w)):
        raise ValueError("irf must be a 1-D array of finite counts")
    if isinstance(background, str):
        if background != "auto":
            raise ValueError(f"irf_background must be 'auto', a number or None, got {background!r}")
        bg = float(np.median(w))
    elif background is None:
        bg = 0.0
    else:
        bg = float(background)
    w = np.clip(w - bg, 0.0, None)
    s = w.sum()
    if s <= 0:
        raise ValueError("the IRF holds no counts above its background")
    return w / s


def decay_model(
    p: dict[str, float],
    edges: np.ndarray,
    *,
    n_exp: int,
    period_ps: float | None,
    irf: np.ndarray | None = None,
    irf_offset_bins: int = 0,
    tail_start_ps: float | None = None,
) -> np.ndarray:
    """Expected counts in the bins between contiguous `edges` (ps) for parameters `p`.

    Keys: `amplitude`, `background` (counts per bin), `tau1_ps` [, `tau2_ps`, `frac1`], and
    `shift_ps` (measured `irf`, normalised, on the same grid starting `irf_offset_bins` bins
    after the first data bin) or `irf_t0_ps`, `irf_sigma_ps` (Gaussian IRF, `irf=None`);
    optional `period_ps` (overrides the argument: a fitted period). With `tail_start_ps` (and
    no `irf`) the decay starts sharply at that time: a tail fit without IRF.
    """
    period_ps = p.get("period_ps", period_ps)
    taus = [p["tau1_ps"]] if n_exp == 1 else [p["tau1_ps"], p["tau2_ps"]]
    fr = [1.0] if n_exp == 1 else [p["frac1"], 1.0 - p["frac1"]]
    N = edges.size - 1
    b = (edges[-1] - edges[0]) / N
    if irf is None and tail_start_ps is not None:
        mass = np.zeros(N)
        u = edges - tail_start_ps
        for f, tau in zip(fr, taus, strict=True):
            mass += f * np.diff(_cum_decay(u, tau, period_ps))
    elif irf is None:
        mass = np.zeros(N)
        for f, tau in zip(fr, taus, strict=True):
            mass += f * _gauss_decay_mass(edges, p["irf_t0_ps"], p["irf_sigma_ps"], tau, period_ps)
    else:
        M = irf.size
        # lags m = k - j (data bin k, IRF bin j); IRF density linear within its bins, slopes
        # from central differences limited so the density stays >= 0
        m = np.arange(-(M - 1 + irf_offset_bins), N - irf_offset_bins, dtype=np.float64)
        x = m * b - p["shift_ps"]
        hp = np.concatenate([[0.0], irf, [0.0]])
        slope = (hp[2:] - hp[:-2]) / (2 * b * b)
        lim = 2 * irf / (b * b)
        slope = np.clip(slope, -lim, lim)
        K = np.zeros(m.size)
        J = np.zeros(m.size)
        for f, tau in zip(fr, taus, strict=True):
            k_, j_ = _irf_kernels(x, tau, b, period_ps)
            K += f * k_
            J += f * j_
        from scipy.signal import fftconvolve

        mass = fftconvolve(irf, K, mode="full") + fftconvolve(slope, J, mode="full")
        mass = mass[M - 1 : M - 1 + N]
    return p["background"] * np.diff(edges) / b + p["amplitude"] * mass


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DecayResult:
    """Result of `fit_decay`.

    - `lifetimes_ps`, `lifetimes_err_ps` (observed-information standard errors),
      `lifetimes_ci_ps` (profile-likelihood intervals, shape (n_exp, 2), at `ci_level`; NaN
      when not computed), `lifetimes_s`, `lifetimes_err_s`: ascending lifetimes.
    - `fractions`, `fractions_err`: area (photon) fraction of each component, same order.
    - `params`, `stderr`, `covariance` (order `param_names`), `gof` (deviance, dof,
      deviance_dof, chi2, chi2_red), `converged`, `message`.
    - `time_ps`, `counts`, `fit` (expected counts, every bin), `fit_mask` (bins in the
      likelihood), `irf` (the normalised measured IRF on the data grid, or None), `n_exp`,
      `period_ps`, `irf_model` ("measured", "gaussian" or "none: tail fit from ... ps").
    """

    lifetimes_ps: np.ndarray
    lifetimes_err_ps: np.ndarray
    lifetimes_ci_ps: np.ndarray
    ci_level: float
    fractions: np.ndarray
    fractions_err: np.ndarray
    params: dict[str, float]
    stderr: dict[str, float]
    covariance: np.ndarray
    param_names: tuple[str, ...]
    gof: dict[str, float]
    converged: bool
    message: str
    time_ps: np.ndarray
    counts: np.ndarray
    fit: np.ndarray
    fit_mask: np.ndarray
    irf: np.ndarray | None
    n_exp: int
    period_ps: float | None
    irf_model: str
    _poisson: PoissonFit = field(repr=False)

    @property
    def lifetimes_s(self) -> np.ndarray:
        return self.lifetimes_ps * 1e-12

    @property
    def lifetimes_err_s(self) -> np.ndarray:
        return self.lifetimes_err_ps * 1e-12

    @property
    def residuals(self) -> np.ndarray:
        """Pearson residuals (counts - fit) / sqrt(fit) (0 outside the fitted range)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(self.fit > 0, (self.counts - self.fit) / np.sqrt(self.fit), 0.0)
        return np.where(self.fit_mask, r, 0.0)

    def to_dataset(self) -> xr.Dataset:
        """Counts, fit, residuals (and IRF) on dim `time` (ps); results in attrs."""
        data = {
            "counts": ("time", self.counts, {"units": "counts"}),
            "fit": ("time", self.fit, {"units": "counts", "long_name": "fitted expected counts"}),
            "residual": ("time", self.residuals, {"long_name": "Pearson residual"}),
            "fit_mask": ("time", self.fit_mask.astype(np.int8), {"long_name": "bin fitted"}),
        }
        if self.irf is not None:
            data["irf"] = ("time", self.irf, {"long_name": "normalised IRF"})
        ds = xr.Dataset(data, coords={"time": ("time", self.time_ps, {"units": "ps"})})
        ds = ds.assign_coords(component=np.arange(1, self.n_exp + 1))
        ds["lifetime"] = ("component", self.lifetimes_ps, {"units": "ps"})
        ds["lifetime_err"] = ("component", self.lifetimes_err_ps, {"units": "ps"})
        ds["lifetime_ci_low"] = ("component", self.lifetimes_ci_ps[:, 0], {"units": "ps"})
        ds["lifetime_ci_high"] = ("component", self.lifetimes_ci_ps[:, 1], {"units": "ps"})
        ds["fraction"] = ("component", self.fractions, {"units": "1"})
        for k, v in self.params.items():
            ds.attrs[k] = v
            ds.attrs[f"{k}_stderr"] = self.stderr[k]
        for k, v in self.gof.items():
            ds.attrs[f"gof_{k}"] = v
        ds.attrs["converged"] = int(self.converged)
        ds.attrs["ci_level"] = self.ci_level
        ds.attrs["n_exp"] = self.n_exp
        ds.attrs["period_ps"] = self.period_ps if self.period_ps else float("nan")
        ds.attrs["irf_model"] = self.irf_model
        return ds


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def _input(
    time_ps: Any, counts: Any, allow_fractional: bool
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    attrs: dict[str, Any] = {}
    if isinstance(time_ps, xr.DataArray) and counts is None:
        if "time" not in time_ps.dims:
            raise ValueError("a DataArray input must have the dim 'time' (ps)")
        attrs = dict(time_ps.attrs)
        t = np.asarray(time_ps["time"].values, dtype=np.float64)
        n = np.asarray(time_ps.values)
    else:
        if counts is None:
            raise ValueError("give time_ps and counts (or a decay DataArray alone)")
        t = np.asarray(time_ps, dtype=np.float64)
        n = np.asarray(counts)
    t, n = check_binned(t, n, "time_ps", allow_fractional=allow_fractional, min_total=_MIN_COUNTS)
    dt = np.diff(t)
    if np.any(dt <= 0) or not np.allclose(dt, dt[0], rtol=1e-6, atol=1e-6):
        raise ValueError("time_ps must be uniformly spaced, increasing bin centres")
    return t, n, attrs


def _irf_on_grid(irf: Any, t: np.ndarray, b: float) -> tuple[np.ndarray, int]:
    """The IRF counts and their offset (in bins) relative to the data's first bin."""
    if isinstance(irf, xr.DataArray):
        if "time" not in irf.dims:
            raise ValueError("an IRF DataArray must have the dim 'time' (ps)")
        ti = np.asarray(irf["time"].values, dtype=np.float64)
        w = np.asarray(irf.values, dtype=np.float64)
        if ti.size > 1 and not np.isclose(np.median(np.diff(ti)), b, rtol=1e-6):
            raise ValueError(
                f"the IRF bin width {np.median(np.diff(ti)):g} ps differs from the data's {b:g} ps"
            )
        off = (ti[0] - t[0]) / b
        if abs(off - round(off)) > 1e-3:
            raise ValueError("the IRF time grid is not aligned with the data's bins")
        return w, int(round(off))
    w = np.asarray(irf, dtype=np.float64)
    if w.shape != t.shape:
        raise ValueError(
            f"an IRF array must be on the data's time grid (length {t.size}), got shape {w.shape}"
            "; pass a DataArray with a 'time' coordinate to align a different range"
        )
    return w, 0


def _rise(n: np.ndarray, mask: np.ndarray) -> tuple[bool, int]:
    """(is the rise resolved in the fitted bins?, index of the peak bin)."""
    idx = np.flatnonzero(mask)
    y = np.convolve(n[idx], np.ones(3) / 3, mode="same") if idx.size > 5 else n[idx]
    k = int(np.argmax(y))
    base = float(np.percentile(y, 5))
    half = base + 0.5 * (y[k] - base)
    return bool(k >= 2 and np.any(y[:k] < half)), int(idx[int(np.argmax(n[idx[: k + 2]]))])


@dataclass(frozen=True, eq=False)
class _DecayData:
    """The validated input of `fit_decay`: grid, counts, fitted bins and the excitation."""

    t: np.ndarray  # bin centres (ps)
    n: np.ndarray  # counts
    edges: np.ndarray  # bin edges (ps)
    b: float  # bin width (ps)
    mask: np.ndarray  # bins in the likelihood
    period_ps: float | None
    irf: np.ndarray | None  # measured IRF, background-subtracted, normalised, zeros trimmed
    irf_offset: int  # bins from the first data bin to the first IRF bin
    tail_start: float | None  # tail fit without IRF: the decay's sharp start (ps)
    peak_bin: int  # no IRF given: the peak bin on the full grid (else -1)


@dataclass(frozen=True, eq=False)
class _DecaySeed:
    """Parameter names, start values, bounds, scales and fixed names of the decay fit."""

    names: tuple[str, ...]
    p0: list[float]
    lower: list[float]
    upper: list[float]
    scale: list[float]
    fixed: list[str]


def _validate_decay(
    time_ps: Any,
    counts: Any,
    irf: Any,
    *,
    n_exp: int,
    period_ps: float | None,
    fit_range_ps: tuple[float, float] | None,
    irf_background: float | str | None,
    allow_fractional: bool,
) -> _DecayData:
    """Check the input and choose the excitation: measured IRF, Gaussian IRF or tail fit."""
    if n_exp not in (1, 2):
        raise ValueError(f"n_exp must be 1 or 2, got {n_exp!r}")
    t, n, attrs = _input(time_ps, counts, allow_fractional)
    if period_ps is None:
        p_attr = attrs.get("period_ps")
        if p_attr is not None and math.isfinite(float(p_attr)):
            period_ps = float(p_attr)
    if period_ps is not None and not (math.isfinite(period_ps) and period_ps > 0):
        raise ValueError(f"period_ps must be positive, got {period_ps!r}")
    b = float(t[1] - t[0])
    edges = np.append(t - b / 2, t[-1] + b / 2)
    if fit_range_ps is None:
        mask = np.ones(t.size, bool)
    else:
        a, z = float(fit_range_ps[0]), float(fit_range_ps[1])
        mask = (t >= a) & (t < z)
        if mask.sum() < 8:
            raise ValueError(f"fit_range_ps {fit_range_ps} holds fewer than 8 bins")
    if n[mask].sum() < _MIN_COUNTS:
        raise ValueError(f"only {n[mask].sum():g} counts in the fitted range: too few to fit")

    w = None
    off = 0
    tail_start = None
    kpk_full = -1
    if irf is None:
        resolved, kpk_full = _rise(n, mask)
        if not resolved:
            # no IRF and no rise: a tail fit from the peak bin on (the decay starts sharply at
            # that bin's left edge)
            mask = mask & (np.arange(t.size) >= kpk_full)
            tail_start = float(edges[kpk_full])
            if mask.sum() < 8:
                raise ValueError("fewer than 8 bins after the peak: too few for a tail fit")
    if irf is not None:
        w_raw, off = _irf_on_grid(irf, t, b)
        w = _prepare_irf(w_raw, irf_background)
        # drop leading/trailing zeros: a shorter convolution, same result
        nz = np.flatnonzero(w)
        w = w[nz[0] : nz[-1] + 1]
        off += int(nz[0])
    return _DecayData(t, n, edges, b, mask, period_ps, w, off, tail_start, kpk_full)


def _seed_decay(
    d: _DecayData,
    *,
    n_exp: int,
    background: bool,
    tau_start_ps: Sequence[float] | None,
    fit_period: bool,
) -> _DecaySeed:
    """Start values from the data (background floor, 1/e time after the peak, IRF position),
    bounds and scales of every parameter."""
    t, n, b, edges, mask, period_ps = d.t, d.n, d.b, d.edges, d.mask, d.period_ps
    nm = n[mask]
    tm = t[mask]
    sm = np.convolve(nm, np.ones(5) / 5, mode="same")
    bg0 = float(np.mean(np.sort(sm)[: max(3, sm.size // 10)])) if background else 0.0
    if background:  # a start strictly above 0, so counts before the rise have mu > 0
        bg0 = max(bg0, 1e-3 * float(nm.mean()))
    kpk = int(np.argmax(sm))
    above = np.clip(nm - bg0, 0, None)
    if d.peak_bin >= 0:
        kpk = int(np.searchsorted(tm, t[d.peak_bin]))
    # 1/e time after the (smoothed) peak: local, so other pulses in the trace do not bias it
    level = bg0 + (sm[kpk] - bg0) / math.e
    below = np.flatnonzero(sm[kpk:] < level)
    tau_mean = float(tm[kpk + below[0]] - tm[kpk]) if below.size else 0.3 * (tm[-1] - tm[kpk])
    tau_mean = float(np.clip(tau_mean, 2 * b, 0.5 * (tm[-1] - tm[0])))
    if period_ps is not None:
        tau_mean = min(tau_mean, 2 * period_ps)
    if tau_start_ps is not None:
        taus0 = [float(x) for x in tau_start_ps]
        if len(taus0) != n_exp:
            raise ValueError(f"tau_start_ps needs {n_exp} value(s)")
    else:
        taus0 = [tau_mean] if n_exp == 1 else [0.4 * tau_mean, 2.5 * tau_mean]
    amp0 = float(max(above.sum(), 1.0))
    if period_ps is not None:
        # the histogram may hold several pulses: per-pulse amplitude
        amp0 *= min(1.0, period_ps / (edges[-1] - edges[0]))

    names: list[str] = ["amplitude", "background", "tau1_ps"]
    p0: list[float] = [amp0, bg0, taus0[0]]
    lower: list[float] = [0.0, 0.0, 0.05 * b]
    tau_hi = 1e3 * (edges[-1] - edges[0]) if period_ps is None else 1e3 * period_ps
    upper: list[float] = [np.inf, np.inf, tau_hi]
    scale: list[float] = [amp0, max(bg0, 1e-3 * amp0 / t.size), taus0[0]]
    if n_exp == 2:
        names += ["tau2_ps", "frac1"]
        p0 += [taus0[1], 0.5]
        lower += [0.05 * b, 0.0]
        upper += [tau_hi, 1.0]
        scale += [taus0[1], 0.1]
    if d.irf is None and d.tail_start is None:
        # Gaussian IRF: t0 at the half-maximum point of the rise, sigma from its 10-90 % time
        kf = d.peak_bin
        y = sm
        ymax = y[kpk]
        pre = np.flatnonzero(y[:kpk] < bg0 + 0.5 * (ymax - bg0))
        t_half = float(tm[pre[-1]]) if pre.size else float(tm[kpk])
        p10 = np.flatnonzero(y[:kpk] < bg0 + 0.1 * (ymax - bg0))
        p90 = np.flatnonzero(y[:kpk] < bg0 + 0.9 * (ymax - bg0))
        rise = (tm[p90[-1]] - tm[p10[-1]]) if p10.size and p90.size else 2 * b
        sig0 = float(max(0.5 * b, rise / 2.56))
        names += ["irf_t0_ps", "irf_sigma_ps"]
        p0 += [t_half, sig0]
        lower += [t[0] - 10 * b if period_ps is None else t_half - period_ps / 2, 0.01 * b]
        upper += [t[kf] + 10 * b if period_ps is None else t_half + period_ps / 2, 0.5 * tau_hi]
        scale += [b, sig0]
    elif d.irf is not None:
        # shift start: the lag that best overlaps the IRF with the data (cross-correlation;
        # for pulse trains, the alignment of the most pulses), less half a lifetime
        from scipy.signal import fftconvolve

        w = d.irf
        y = np.where(mask, np.clip(n - bg0, 0, None), 0.0)
        xc = fftconvolve(y, w[::-1], mode="full")  # index i <-> lag (i - (w.size - 1) - off)
        lag = int(np.argmax(xc)) - (w.size - 1) - d.irf_offset
        s0 = float(lag * b - 0.3 * taus0[0])
        names += ["shift_ps"]
        p0 += [s0]
        span = edges[-1] - edges[0]
        lower += [-0.5 * span]
        upper += [0.5 * span]
        scale += [b]
    if fit_period:
        if period_ps is None:
            raise ValueError("fit_period needs a start value period_ps")
        names += ["period_ps"]
        p0 += [float(period_ps)]
        lower += [0.9 * period_ps]
        upper += [1.1 * period_ps]
        scale += [b]
    fixed = [] if background else ["background"]
    return _DecaySeed(tuple(names), p0, lower, upper, scale, fixed)


def _fitted_span_model(
    d: _DecayData, seed: _DecaySeed, n_exp: int
) -> Callable[[np.ndarray], np.ndarray]:
    """The model's expected counts of the fitted bins, as a function of the parameter vector.

    The likelihood needs the model on the fitted span only: it is evaluated there (the IRF
    keeps its full extent through its offset)."""
    mask = d.mask
    k0 = int(np.argmax(mask))
    k1 = mask.size - int(np.argmax(mask[::-1]))
    sub_edges = d.edges[k0 : k1 + 1]
    sub_mask = mask[k0:k1]
    names_t = seed.names

    def model(v: np.ndarray) -> np.ndarray:
        mu = decay_model(
            dict(zip(names_t, v, strict=True)),
            sub_edges,
            n_exp=n_exp,
            period_ps=d.period_ps,
            irf=d.irf,
            irf_offset_bins=d.irf_offset - k0,
            tail_start_ps=d.tail_start,
        )
        return mu[sub_mask]

    return model


def _fit_decay_likelihood(
    model: Callable[[np.ndarray], np.ndarray], d: _DecayData, seed: _DecaySeed
) -> PoissonFit:
    """Poisson maximum likelihood over the fitted bins; warns when it does not converge."""
    fit = fit_poisson(
        model,
        d.n[d.mask],
        seed.names,
        seed.p0,
        lower=seed.lower,
        upper=seed.upper,
        fixed=seed.fixed,
        scale=seed.scale,
        window=("irf_t0_ps", "shift_ps", "period_ps"),
    )
    if not fit.converged:
        warn_not_converged("fit_decay", fit.message, stacklevel=4)
    return fit


def _lifetime_intervals(
    model: Callable[[np.ndarray], np.ndarray],
    d: _DecayData,
    seed: _DecaySeed,
    fit: PoissonFit,
    tau_names: list[str],
    ci_level: float,
) -> np.ndarray:
    """Profile-likelihood intervals of the lifetimes at `ci_level`, shape (n_exp, 2)."""
    from scipy.stats import chi2

    ci = np.full((len(tau_names), 2), np.nan)
    dd = float(chi2.ppf(ci_level, 1))
    for i, nmk in enumerate(tau_names):
        ci[i] = profile_interval(
            model,
            d.n[d.mask],
            fit,
            nmk,
            lower=seed.lower,
            upper=seed.upper,
            fixed=seed.fixed,
            scale=seed.scale,
            delta_deviance=dd,
        )
    return ci


def _assemble_decay(
    d: _DecayData,
    fit: PoissonFit,
    ci: np.ndarray,
    tau_names: list[str],
    *,
    n_exp: int,
    ci_level: float,
) -> DecayResult:
    """The result: lifetimes sorted short to long with their errors, intervals and fractions,
    the model on the whole grid and the IRF on the data's grid."""
    pr = fit.as_dict()
    se = fit.stderr_dict()
    t, w, off = d.t, d.irf, d.irf_offset
    mu_all = decay_model(
        pr,
        d.edges,
        n_exp=n_exp,
        period_ps=d.period_ps,
        irf=w,
        irf_offset_bins=off,
        tail_start_ps=d.tail_start,
    )
    taus = np.array([pr[k] for k in tau_names])
    taus_err = np.array([se[k] for k in tau_names])
    if n_exp == 1:
        fr = np.array([1.0])
        fr_err = np.array([0.0])
    else:
        fr = np.array([pr["frac1"], 1.0 - pr["frac1"]])
        fr_err = np.array([se["frac1"], se["frac1"]])
    order = np.argsort(taus)
    w_out = None
    if w is not None:
        w_out = np.zeros(t.size)
        lo_i, hi_i = max(off, 0), min(off + w.size, t.size)
        if hi_i > lo_i:
            w_out[lo_i:hi_i] = w[lo_i - off : hi_i - off]
    return DecayResult(
        lifetimes_ps=taus[order],
        lifetimes_err_ps=taus_err[order],
        lifetimes_ci_ps=ci[order],
        ci_level=float(ci_level),
        fractions=fr[order],
        fractions_err=fr_err[order],
        params=pr,
        stderr=se,
        covariance=fit.covariance,
        param_names=fit.names,
        gof=fit.gof,
        converged=fit.converged,
        message=fit.message,
        time_ps=t,
        counts=d.n,
        fit=mu_all,
        fit_mask=d.mask,
        irf=w_out,
        n_exp=n_exp,
        period_ps=pr.get("period_ps", d.period_ps),
        irf_model=(
            "measured"
            if w is not None
            else (
                "gaussian" if d.tail_start is None else f"none: tail fit from {d.tail_start:g} ps"
            )
        ),
        _poisson=fit,
    )


def fit_decay(
    time_ps: Any,
    counts: Any = None,
    irf: Any = None,
    *,
    n_exp: int = 1,
    period_ps: float | None = None,
    fit_range_ps: tuple[float, float] | None = None,
    background: bool = True,
    irf_background: float | str | None = "auto",
    tau_start_ps: Sequence[float] | None = None,
    fit_period: bool = False,
    profile: bool = True,
    ci_level: float = 0.6827,
    allow_fractional: bool = False,
) -> DecayResult:
    """Fit a TCSPC decay by IRF reconvolution and Poisson maximum likelihood.

    **Arguments:**

    - `time_ps`, `counts`: bin centres (ps, uniform) and raw counts; or a DataArray on dim
      `time` alone (from `decay_histogram` or `read_histogram`), whose `period_ps` attr is
      used when `period_ps` is not given.
    - `irf`: measured IRF counts on the same grid (array of the same length, or a DataArray
      with a `time` coordinate of the same bin width); None for a fitted Gaussian IRF, or a
      tail fit from the peak when the data hold no resolved rise (see the module docstring).
    - `n_exp`: 1 (mono-) or 2 (bi-exponential).
    - `period_ps`: laser repetition period (ps) for the wrapped tail of earlier pulses (see the
      module docstring); None for no earlier pulses.
    - `fit_range_ps`: `(start, stop)` of the bins in the likelihood (ps); the model still
      convolves over the whole grid. Default all bins.
    - `background`: fit a flat background (counts per bin), else 0.
    - `irf_background`: subtracted from the IRF before normalising: "auto" (its median), a
      number of counts per bin, or None.
    - `tau_start_ps`: start values of the lifetimes (ps), default from the data.
    - `fit_period`: also fit the period (start `period_ps`, within +-10 %): for histograms
      spanning many pulses, where a small period error adds up along the trace.
    - `profile`: compute profile-likelihood intervals of the lifetimes at `ci_level`.
    - `allow_fractional`: accept non-integer counts (noiseless expected values).

    **Returns:** `DecayResult` (`lifetimes_ps`, `lifetimes_err_ps`, `lifetimes_ci_ps`,
    `lifetimes_s`, `fractions`, ...).

    Raises `ValueError` for NaN, negative or non-integer counts, fewer than 50 counts, an IRF on
    another grid or without counts, or `n_exp` not in (1, 2).
    """
    data = _validate_decay(
        time_ps,
        counts,
        irf,
        n_exp=n_exp,
        period_ps=period_ps,
        fit_range_ps=fit_range_ps,
        irf_background=irf_background,
        allow_fractional=allow_fractional,
    )
    seed = _seed_decay(
        data, n_exp=n_exp, background=background, tau_start_ps=tau_start_ps, fit_period=fit_period
    )
    model = _fitted_span_model(data, seed, n_exp)
    fit = _fit_decay_likelihood(model, data, seed)
    tau_names = ["tau1_ps"] if n_exp == 1 else ["tau1_ps", "tau2_ps"]
    if profile:
        ci = _lifetime_intervals(model, data, seed, fit, tau_names, ci_level)
    else:
        ci = np.full((n_exp, 2), np.nan)
    return _assemble_decay(data, fit, ci, tau_names, n_exp=n_exp, ci_level=ci_level)
