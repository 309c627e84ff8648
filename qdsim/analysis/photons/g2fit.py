"""Fits of g2(tau) histograms: pulsed (peak train) and CW (antibunching dip) excitation.

Both fits take raw coincidence counts per delay bin (from `g2(..., normalize=False)`, or the
DataArray returned by `g2`, whose normalisation is undone) and maximise the Poisson likelihood
of the bin-integrated model (`fitting.fit_poisson`: iminuit's MIGRAD and a scoring polish);
uncertainties come from the observed Fisher information (HESSE). A fit whose `offset_ps` (or,
pulsed, `period_ps`) ends on the edge of its search window has found no minimum and is not
converged.

**Pulsed model** (`fit_g2_pulsed`). Peaks sit at `offset + k * period`. Each is the
distribution of the delay between two photons emitted after different (or, k = 0, the same)
pulses, each delayed from its pulse by an exponential decay of time `tau`: a two-sided
exponential `exp(-|t| / tau) / (2 tau)`, convolved with a Gaussian timing response of standard
deviation `sigma` (both detectors' jitter together). Peak areas are

    A_k = area * (1 + bunch_amp * exp(-|k period| / bunch_tau))      (k != 0)
    A_0 = g2_0 * area * (1 + bunch_amp)

(the optional blinking/bunching envelope, extrapolated to zero delay for the central peak),
on a flat background of `background` counts per bin. So `g2_0` is the background-free ratio of
the central peak to the side-peak envelope at tau = 0. The model-free ratio of the raw areas
(central period over the mean of the complete side periods, background included) is reported
as `g2_0_area`.

**CW model** (`fit_g2_cw`): counts per bin `n_inf / bin * integral over the bin of`

    g(t) = 1 + bunch_amp * exp(-|t - offset| / bunch_tau)
             - (1 + bunch_amp - g2_0) * exp(-|t - offset| / tau_r)

convolved with the Gaussian timing response `sigma`, so `g(offset) = g2_0` before the
convolution (background photons are part of `g2_0` here: a CW g2 alone cannot separate them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy.special import log_ndtr

from qdsim.analysis.fitting import PoissonFit, check_binned, fit_poisson, warn_not_converged

__all__ = [
    "G2CWResult",
    "G2PulsedResult",
    "find_period",
    "fit_g2_cw",
    "fit_g2_pulsed",
    "g2_area_ratio",
    "laplace_gauss_cdf",
    "pulsed_model",
    "cw_model",
    "side_peak_areas",
]

_MIN_COUNTS = 20


# --------------------------------------------------------------------------------------------
# line shapes
# --------------------------------------------------------------------------------------------


def laplace_gauss_cdf(x: np.ndarray, tau: float, sigma: float) -> np.ndarray:
    """CDF of a two-sided exponential (scale `tau`) convolved with N(0, sigma^2), same units.

    F(x) = Phi(x/s) - exp(-x/tau + r^2/2) Phi(x/s - r)/2 + exp(x/tau + r^2/2) Phi(-x/s - r)/2,
    r = sigma/tau, evaluated in log space (no overflow for sigma >> tau or far tails).
    """
    x = np.asarray(x, dtype=np.float64)
    s = float(sigma)
    r = s / float(tau)
    z = x / s
    a = 0.5 * r * r
    t1 = np.exp(log_ndtr(z))
    t2 = 0.5 * np.exp(-x / tau + a + log_ndtr(z - r))
    t3 = 0.5 * np.exp(x / tau + a + log_ndtr(-z - r))
    return t1 - t2 + t3


def _bin_mass(lo: np.ndarray, hi: np.ndarray, tau: float, sigma: float) -> np.ndarray:
    """Probability of [lo, hi) under Laplace(tau) * Gauss(sigma), accurate in both tails."""
    right = lo >= 0
    left = hi <= 0
    mid = ~(right | left)
    out = np.empty(np.broadcast(lo, hi).shape)
    F = laplace_gauss_cdf
    lo_b = np.broadcast_to(lo, out.shape)
    hi_b = np.broadcast_to(hi, out.shape)
    right = np.broadcast_to(right, out.shape)
    left = np.broadcast_to(left, out.shape)
    mid = np.broadcast_to(mid, out.shape)
    out[right] = F(-lo_b[right], tau, sigma) - F(-hi_b[right], tau, sigma)
    out[left] = F(hi_b[left], tau, sigma) - F(lo_b[left], tau, sigma)
    out[mid] = 1.0 - F(lo_b[mid], tau, sigma) - F(-hi_b[mid], tau, sigma)
    return out


def _edge_mass(edges: np.ndarray, tau: float, sigma: float) -> np.ndarray:
    """Bin probabilities between consecutive `edges` (relative to the peak centre, ps)."""
    G = laplace_gauss_cdf(-np.abs(edges), tau, sigma)  # lower tail / upper tail by symmetry
    g0, g1 = G[:-1], G[1:]
    e0, e1 = edges[:-1], edges[1:]
    return np.where(e1 <= 0, g1 - g0, np.where(e0 >= 0, g0 - g1, 1.0 - g0 - g1))


def pulsed_model(
    p: dict[str, float], lo: np.ndarray, hi: np.ndarray, *, max_extra_peaks: int = 400
) -> np.ndarray:
    """Expected counts of the pulsed model in contiguous bins `[lo, hi)` (ps) for parameters `p`.

    Keys: `area`, `g2_0`, `tau_ps`, `sigma_ps`, `offset_ps`, `period_ps`, `background`
    (counts per bin), `bunch_amp`, `bunch_tau_ps` (see the module docstring). Each peak is
    evaluated over the bins within 36 tau + 12 sigma of its centre (beyond, < 1e-15 of it).
    """
    P = p["period_ps"]
    tau = p["tau_ps"]
    sig = p["sigma_ps"]
    t0 = p["offset_ps"]
    edges = np.append(lo, hi[-1])
    reach = 36.0 * tau + 12.0 * sig
    kmin = math.floor((edges[0] - reach - t0) / P)
    kmax = math.ceil((edges[-1] + reach - t0) / P)
    kmin = max(kmin, math.floor((edges[0] - t0) / P) - max_extra_peaks)
    kmax = min(kmax, math.ceil((edges[-1] - t0) / P) + max_extra_peaks)
    out = p["background"] * (hi - lo) / _median_width(lo, hi)
    amp_side = p["area"]
    for k in range(kmin, kmax + 1):
        c = t0 + k * P
        i0 = max(int(np.searchsorted(edges, c - reach)) - 1, 0)
        i1 = min(int(np.searchsorted(edges, c + reach)) + 1, edges.size)
        if i1 - i0 < 2:
            continue
        if k == 0:
            a = p["g2_0"] * amp_side * (1.0 + p["bunch_amp"])
        else:
            a = amp_side * (1.0 + p["bunch_amp"] * math.exp(-abs(k * P) / p["bunch_tau_ps"]))
        out[i0 : i1 - 1] += a * _edge_mass(edges[i0:i1] - c, tau, sig)
    return out


def cw_model(p: dict[str, float], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Expected counts of the CW model in bins `[lo, hi)` (ps).

    Keys: `n_inf` (counts per bin at long delay), `g2_0`, `tau_r_ps`, `sigma_ps`, `offset_ps`,
    `bunch_amp`, `bunch_tau_ps` (see the module docstring).
    """
    t0 = p["offset_ps"]
    sig = p["sigma_ps"]
    w = hi - lo
    a = p["bunch_amp"]
    g = w.astype(np.float64).copy()
    tr = p["tau_r_ps"]
    g -= (1.0 + a - p["g2_0"]) * 2.0 * tr * _bin_mass(lo - t0, hi - t0, tr, sig)
    if a != 0.0:
        tb = p["bunch_tau_ps"]
        g += a * 2.0 * tb * _bin_mass(lo - t0, hi - t0, tb, sig)
    return p["n_inf"] * g / _median_width(lo, hi)


def _median_width(lo: np.ndarray, hi: np.ndarray) -> float:
    return float(np.median(hi - lo))


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _input(
    delay_ps: Any, counts: Any, bin_ps: float | None, allow_fractional: bool
) -> tuple[np.ndarray, np.ndarray, float]:
    """(bin centres ps, raw counts, bin width ps) from arrays or a g2 DataArray (given alone,
    or as `counts` with its delays)."""
    if isinstance(counts, xr.DataArray) and "delay" in counts.dims:
        delay_ps, counts = counts, None
    if isinstance(delay_ps, xr.DataArray) and counts is None:
        da = delay_ps
        if "delay" not in da.dims:
            raise ValueError("a DataArray input must have the dim 'delay' (ps), as g2 returns")
        d = np.asarray(da["delay"].values, dtype=np.float64)
        how = da.attrs.get("normalize", "none")
        if "counts" in da.coords:
            n = np.asarray(da["counts"].values, dtype=np.float64)
        elif how in ("none", False, None):
            n = np.asarray(da.values, dtype=np.float64)
        else:
            f = da.attrs.get("norm_factor")
            if f is None:
                raise ValueError(
                    f"g2 data normalised ({how!r}) without its norm_factor attr: cannot recover "
                    "the raw counts a Poisson fit needs"
                )
            n = np.asarray(da.values, dtype=np.float64) * float(f)
            r = np.round(n)
            if np.all(np.abs(n - r) <= 1e-6 * np.maximum(1.0, r)):
                n = r
        if bin_ps is None and "bin_ps" in da.attrs:
            bin_ps = float(da.attrs["bin_ps"])
    else:
        if counts is None:
            raise ValueError("give delay_ps and counts (or a g2 DataArray alone)")
        d = np.asarray(delay_ps, dtype=np.float64)
        n = np.asarray(counts)
    d, n = check_binned(d, n, "delay_ps", allow_fractional=allow_fractional, min_total=_MIN_COUNTS)
    dd = np.diff(d)
    if np.any(dd <= 0):
        raise ValueError("delay_ps must be strictly increasing bin centres")
    if bin_ps is None:
        bin_ps = float(np.median(dd))
    if not np.allclose(dd, bin_ps, rtol=1e-6, atol=1e-6):
        raise ValueError("delay bins must be uniform (constant spacing equal to bin_ps)")
    return d, n, float(bin_ps)


# --------------------------------------------------------------------------------------------
# period and side peaks
# --------------------------------------------------------------------------------------------


def _circular_offset(d: np.ndarray, n: np.ndarray, P: float) -> float:
    w = np.clip(n - np.percentile(n, 20), 0, None)
    z = np.sum(w * np.exp(2j * np.pi * d / P))
    if abs(z) == 0:
        return 0.0
    return float(np.angle(z) / (2 * np.pi) * P)


def _folded_significance(d: np.ndarray, n: np.ndarray, P: float, t0: float) -> float:
    """Chi2 excess (in sigmas) of the period-folded profile over a flat one."""
    nbins = int(min(32, max(4, (P / np.median(np.diff(d))) // 2)))
    # fold only complete periods so the flat hypothesis is exactly flat
    first = d.min() - np.median(np.diff(d)) / 2
    span = d.max() - d.min() + np.median(np.diff(d))
    nper = int(span // P)
    if nper < 1:
        return 0.0
    sel = (d - first) < nper * P
    ph = np.mod(d[sel] - t0 + P / 2, P)
    idx = np.minimum((ph / P * nbins).astype(int), nbins - 1)
    S = np.bincount(idx, weights=n[sel], minlength=nbins)
    occ = np.bincount(idx, minlength=nbins).astype(float)
    ok = occ > 0
    expect = S[ok].sum() / occ[ok].sum() * occ[ok]
    if expect.sum() <= 0:
        return 0.0
    chi2 = float(np.sum((S[ok] - expect) ** 2 / np.maximum(expect, 1e-300)))
    dof = int(ok.sum()) - 1
    return (chi2 - dof) / math.sqrt(2 * max(dof, 1))


def _period_autocorrelation(n: np.ndarray, b: float) -> float | None:
    """Period (ps) from the first strong maximum of the histogram's autocorrelation after its
    peak-width lobe (lags up to half the window), or None."""
    x = n - n.mean()
    N = x.size
    f = np.fft.rfft(x, 2 * N)
    ac = np.fft.irfft(f * np.conj(f), 2 * N)[: N // 2 + 1]
    ac = ac / (N - np.arange(ac.size))
    if ac[0] <= 0:
        return None
    neg = np.flatnonzero(ac < 0)
    if neg.size == 0:
        return None
    l0 = int(neg[0])
    tail = ac[l0:]
    if tail.size < 3 or tail.max() <= 0:
        return None
    thr = 0.5 * tail.max()
    lag = None
    for i in range(1, tail.size - 1):
        if tail[i] >= thr and tail[i] >= tail[i - 1] and tail[i] >= tail[i + 1]:
            lag = l0 + i
            break
    if lag is None:
        return None
    # parabolic refinement of the autocorrelation maximum
    y0, y1, y2 = ac[lag - 1], ac[lag], ac[lag + 1] if lag + 1 < ac.size else ac[lag]
    den = y0 - 2 * y1 + y2
    frac = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    return float((lag + frac) * b)


def _period_peaks(d: np.ndarray, n: np.ndarray) -> float | None:
    """Period (ps) from the peaks themselves, for windows holding few of them: the smallest
    spacing of significant peaks; two peaks on either side of zero with nothing between them
    are the side peaks +-P of a vanishing central peak. None when fewer than two peaks."""
    from scipy.signal import find_peaks

    k = max(1, int(round(d.size / 400)))
    sm = np.convolve(n, np.ones(2 * k + 1) / (2 * k + 1), mode="same")
    base = float(np.median(sm))
    noise = math.sqrt(max(base, 1.0) / (2 * k + 1))
    idx, _ = find_peaks(sm, prominence=8 * noise, distance=max(3, d.size // 50))
    if idx.size < 2:
        return None
    x = np.sort(d[idx])
    if idx.size == 2 and x[0] < 0 < x[1] and abs(x[0] + x[1]) < 0.25 * (x[1] - x[0]):
        return float((x[1] - x[0]) / 2)
    return float(np.min(np.diff(x)))


def find_period(
    delay_ps: np.ndarray, counts: np.ndarray, period_ps: float | None = None
) -> tuple[float, float]:
    """Laser period and peak offset (ps) of a pulsed g2 histogram.

    With `period_ps` given only the offset is found (circular mean of the background-subtracted
    counts). Otherwise the period comes from the autocorrelation of the histogram (its first
    strong maximum after the peak-width lobe) or, failing that, from the spacing of the peaks
    themselves, refined by a weighted straight-line fit of the peak centroids
    `offset + k * period`, and accepted when the period-folded counts stand out of the noise
    and every side peak it predicts in the window is present. The central peak (k = 0) is the
    one nearest zero delay, so |offset| < period / 2.

    Raises `ValueError` when no periodic peak train stands out of the Poisson noise (flat or
    CW data, or fewer than two peaks in the window).
    """
    d = np.asarray(delay_ps, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    if d.size < 8 or n.sum() <= 0:
        raise ValueError("too few delay bins or counts to find the laser period")
    b = float(np.median(np.diff(d)))
    if period_ps is not None:
        P = float(period_ps)
        if not (math.isfinite(P) and P > 2 * b):
            raise ValueError(f"period_ps must exceed two bins, got {period_ps!r}")
        return P, _circular_offset(d, n, P)
    for P0 in (_period_autocorrelation(n, b), _period_peaks(d, n)):
        if P0 is None:
            continue
        P, t0, half, bg = _refine_period(d, n, P0, b)
        if _folded_significance(d, n, P, t0) >= 8.0 and _all_side_peaks(d, n, P, t0, half, bg):
            return float(P), float(t0)
    raise ValueError(
        "no periodic side peaks stand out of the noise in the g2 window: not pulsed data, "
        "too few counts, or a window shorter than two periods"
    )


def _refine_period(
    d: np.ndarray, n: np.ndarray, P: float, b: float
) -> tuple[float, float, float, float]:
    """(period, offset, peak half window, background per bin): centroids of the background-
    subtracted peaks fitted by offset + k period; the windows shrink to a few peak widths (less
    background noise) and are re-centred."""
    t0 = _circular_offset(d, n, P)
    half = P / 4
    bg = float(np.percentile(n, 20))
    for _ in range(4):
        ph = np.mod(d - t0 + P / 2, P) - P / 2
        valley = np.abs(ph) > 0.35 * P
        bg = float(np.mean(n[valley])) if valley.any() else float(np.percentile(n, 20))
        ks, cs, ws, m2 = [], [], [], 0.0
        kmin = math.ceil((d.min() + half - t0) / P)
        kmax = math.floor((d.max() - half - t0) / P)
        for k in range(kmin, kmax + 1):
            c = t0 + k * P
            sel = np.abs(d - c) <= half
            w = np.clip(n[sel] - bg, 0, None)
            if w.sum() > 0:
                ks.append(k)
                cen = float(np.sum(w * d[sel]) / w.sum())
                cs.append(cen)
                ws.append(float(w.sum()))
                m2 += float(np.sum(w * (d[sel] - cen) ** 2))
        if ws:
            rms = math.sqrt(m2 / sum(ws))
            half = min(P / 4, max(6 * rms, 3 * b))
        if len(ks) < 2:
            break
        kk = np.asarray(ks, float)
        W = np.asarray(ws)
        A = np.vstack([np.ones_like(kk), kk]).T * np.sqrt(W)[:, None]
        sol, *_ = np.linalg.lstsq(A, np.asarray(cs) * np.sqrt(W), rcond=None)
        if not (sol[1] > 2 * b and abs(sol[1] - P) < 0.25 * P):
            break
        P = float(sol[1])
        t0 = float(sol[0])
        t0 = t0 - P * round(t0 / P)
    return P, t0, half, bg


def _all_side_peaks(
    d: np.ndarray, n: np.ndarray, P: float, t0: float, half: float, bg: float
) -> bool:
    """Every side peak the period predicts inside the window is there (a sub-multiple of the
    true period predicts peaks in empty places): each holds at least 15 % of the largest
    background-subtracted area, and together they stand 5 sigma above the background."""
    areas, errs = [], []
    kmin = math.ceil((d.min() + half - t0) / P)
    kmax = math.floor((d.max() - half - t0) / P)
    for k in range(kmin, kmax + 1):
        if k == 0:
            continue
        sel = np.abs(d - t0 - k * P) <= half
        areas.append(float(n[sel].sum() - bg * sel.sum()))
        errs.append(math.sqrt(max(float(n[sel].sum()), 1.0)))
    if not areas:
        return False
    a = np.asarray(areas)
    e = np.asarray(errs)
    return bool(np.all(a >= 0.15 * a.max()) and a.sum() >= 5 * math.sqrt(np.sum(e**2)))


def side_peak_areas(
    delay_ps: np.ndarray, counts: np.ndarray, period_ps: float, offset_ps: float = 0.0
) -> dict[int, float]:
    """Counts in each complete period `[offset + k P - P/2, offset + k P + P/2)` in the window.

    Bins are assigned by their centre; only periods lying wholly inside the histogram are
    returned, as `{k: area}` (k = 0 is the central peak).
    """
    d = np.asarray(delay_ps, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    b = float(np.median(np.diff(d)))
    lo_edge, hi_edge = d[0] - b / 2, d[-1] + b / 2
    P, t0 = float(period_ps), float(offset_ps)
    out: dict[int, float] = {}
    kmin = math.ceil((lo_edge + P / 2 - t0) / P - 1e-9)
    kmax = math.floor((hi_edge - P / 2 - t0) / P + 1e-9)
    for k in range(kmin, kmax + 1):
        c = t0 + k * P
        sel = (d >= c - P / 2) & (d < c + P / 2)
        out[k] = float(n[sel].sum())
    return out


def g2_area_ratio(
    delay_ps: np.ndarray, counts: np.ndarray, period_ps: float, offset_ps: float = 0.0
) -> tuple[float, float, int]:
    """g2(0) as the raw area ratio: central period over the mean complete side period.

    **Returns:** `(ratio, stderr, n_side)`; Poisson error propagation with var(central) =
    max(central, 1). Raises `ValueError` without a central and at least one side period.
    """
    areas = side_peak_areas(delay_ps, counts, period_ps, offset_ps)
    side = [v for k, v in areas.items() if k != 0]
    if 0 not in areas or not side:
        raise ValueError(
            "the g2 window must hold the central period and at least one complete side period "
            f"(period {period_ps:.6g} ps)"
        )
    m = len(side)
    S = float(np.mean(side))
    if S <= 0:
        raise ValueError("side peaks hold no coincidences")
    C = areas[0]
    r = C / S
    var = max(C, 1.0) / S**2 + r**2 * (m * S) / (m * S) ** 2
    return r, math.sqrt(var), m


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


def _fit_dataset(
    dim: str, x: np.ndarray, n: np.ndarray, mu: np.ndarray, fit: PoissonFit, attrs: dict
) -> xr.Dataset:
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = np.where(mu > 0, (n - mu) / np.sqrt(mu), 0.0)
    ds = xr.Dataset(
        {
            "counts": (dim, n, {"units": "counts", "long_name": "observed counts"}),
            "fit": (dim, mu, {"units": "counts", "long_name": "fitted expected counts"}),
            "residual": (dim, resid, {"units": "1", "long_name": "Pearson residual"}),
        },
        coords={dim: (dim, x, {"units": "ps"})},
    )
    for k, v in fit.as_dict().items():
        ds.attrs[k] = v
        ds.attrs[f"{k}_stderr"] = float(fit.stderr[fit.names.index(k)])
    for k, v in fit.gof.items():
        ds.attrs[f"gof_{k}"] = v
    ds.attrs["converged"] = int(fit.converged)
    ds.attrs["fixed"] = ",".join(nm for nm, f in zip(fit.names, fit.free, strict=True) if not f)
    ds.attrs.update(attrs)
    return ds


@dataclass(frozen=True, eq=False)
class _G2Result:
    params: dict[str, float]
    stderr: dict[str, float]
    covariance: np.ndarray
    param_names: tuple[str, ...]
    gof: dict[str, float]
    converged: bool
    message: str
    delay_ps: np.ndarray
    counts: np.ndarray
    fit: np.ndarray
    _poisson: PoissonFit = field(repr=False)

    @property
    def residuals(self) -> np.ndarray:
        """Pearson residuals (counts - fit) / sqrt(fit)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.fit > 0, (self.counts - self.fit) / np.sqrt(self.fit), 0.0)

    def to_dataset(self) -> xr.Dataset:
        """Counts, fit and residuals on dim `delay` (ps); parameters, errors, gof in attrs."""
        return _fit_dataset(
            "delay", self.delay_ps, self.counts, self.fit, self._poisson, self._extra_attrs()
        )

    def _extra_attrs(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, eq=False)
class G2PulsedResult(_G2Result):
    """Result of `fit_g2_pulsed`.

    `g2_0`, `g2_0_err`: model g2(0) (background-free, relative to the side-peak envelope at
    zero delay) and its standard error; `g2_0_area`, `g2_0_area_err`: raw area ratio;
    `period_ps`, `offset_ps`, `tau_ps`, `tau_err_ps` (peak decay time, ps), `sigma_ps` (timing
    response), plus the common `params`, `stderr`, `covariance` (order `param_names`), `gof`
    (deviance, dof, deviance_dof, chi2, chi2_red), `converged`, `fit` (expected counts).
    """

    g2_0: float = math.nan
    g2_0_err: float = math.nan
    g2_0_area: float = math.nan
    g2_0_area_err: float = math.nan
    period_ps: float = math.nan
    offset_ps: float = math.nan
    tau_ps: float = math.nan
    tau_err_ps: float = math.nan
    sigma_ps: float = math.nan

    def _extra_attrs(self) -> dict[str, Any]:
        return {
            "model": "pulsed",
            "g2_0": self.g2_0,
            "g2_0_err": self.g2_0_err,
            "g2_0_area": self.g2_0_area,
            "g2_0_area_err": self.g2_0_area_err,
        }


@dataclass(frozen=True, eq=False)
class G2CWResult(_G2Result):
    """Result of `fit_g2_cw`: `g2_0`, `g2_0_err`, `tau_r_ps`, `tau_r_err_ps`, `sigma_ps`,
    `offset_ps`, plus the common fields (see `G2PulsedResult`)."""

    g2_0: float = math.nan
    g2_0_err: float = math.nan
    tau_r_ps: float = math.nan
    tau_r_err_ps: float = math.nan
    sigma_ps: float = math.nan
    offset_ps: float = math.nan

    def _extra_attrs(self) -> dict[str, Any]:
        return {"model": "cw", "g2_0": self.g2_0, "g2_0_err": self.g2_0_err}


def _common(fit: PoissonFit, d: np.ndarray, n: np.ndarray) -> dict[str, Any]:
    return {
        "params": fit.as_dict(),
        "stderr": fit.stderr_dict(),
        "covariance": fit.covariance,
        "param_names": fit.names,
        "gof": fit.gof,
        "converged": fit.converged,
        "message": fit.message,
        "delay_ps": d,
        "counts": n,
        "fit": fit.mu,
        "_poisson": fit,
    }


# --------------------------------------------------------------------------------------------
# pulsed fit
# --------------------------------------------------------------------------------------------


def _bunching_start(
    lag: np.ndarray, areas: np.ndarray, area0: float, btau0: float
) -> tuple[float, float, float]:
    """Start values (area, bunch_amp, bunch_tau) from a quick fit of the side-peak areas."""
    lag = np.abs(np.asarray(lag, float))
    a = np.clip(np.asarray(areas, float), 1e-3, None)
    if np.unique(lag).size < 3:
        return area0, 0.05, btau0
    far = a[lag == lag.max()].mean()
    near = a[lag == lag.min()].mean()
    amp = float(np.clip(near / far - 1.0, 0.02, 10.0))
    best = (np.inf, area0, amp, btau0)
    for tb in np.geomspace(0.3 * lag.min(), 3 * lag.max(), 24):
        e = np.exp(-lag / tb)
        # linear least squares for (A, A*amp) at this tau, weights 1/area (Poisson)
        X = np.vstack([np.ones_like(e), e]).T / np.sqrt(a)[:, None]
        sol, *_ = np.linalg.lstsq(X, a / np.sqrt(a), rcond=None)
        r = float(np.sum((X @ sol - a / np.sqrt(a)) ** 2))
        if sol[0] > 0 and r < best[0]:
            best = (r, float(sol[0]), float(np.clip(sol[1] / sol[0], 0.0, 10.0)), float(tb))
    _, A, amp, tb = best
    return A, max(amp, 0.01), tb


_PULSED = (
    "area",
    "g2_0",
    "tau_ps",
    "sigma_ps",
    "offset_ps",
    "period_ps",
    "background",
    "bunch_amp",
    "bunch_tau_ps",
)


def fit_g2_pulsed(
    delay_ps: Any,
    counts: Any = None,
    *,
    period_ps: float | None = None,
    tau_ps: float | None = None,
    sigma_ps: float | None = None,
    bunching: bool = False,
    background: bool = True,
    bin_ps: float | None = None,
    allow_fractional: bool = False,
) -> G2PulsedResult:
    """Fit a pulsed-excitation g2 histogram; g2(0) as a model fit and as an area ratio.

    **Arguments:**

    - `delay_ps`, `counts`: bin centres (ps, uniform) and raw coincidence counts; or a
      DataArray from `g2` alone (any normalisation: its raw `counts` coordinate is used).
    - `period_ps`: laser period (ps); found from the data (`find_period`) and then fitted when
      None, held fixed when given.
    - `tau_ps`, `sigma_ps`: peak decay time and Gaussian timing response (ps): fitted when
      None, held fixed when given.
    - `bunching`: fit the blinking envelope `1 + bunch_amp exp(-|tau| / bunch_tau_ps)` of the
      peak areas (else `bunch_amp = 0`). `background`: fit a flat background (else 0).
    - `bin_ps`: bin width (ps), default the spacing of `delay_ps`.
    - `allow_fractional`: accept non-integer counts (noiseless expected values).

    **Returns:** `G2PulsedResult` (`g2_0`, `g2_0_err`, `g2_0_area`, `g2_0_area_err`, ...).

    Raises `ValueError` for NaN, negative or non-integer counts, fewer than 20 counts, no
    periodic side peaks, or a window without a complete side period.
    """
    d, n, b = _input(delay_ps, counts, bin_ps, allow_fractional)
    P, t0 = find_period(d, n, period_ps)
    ratio, ratio_err, n_side = g2_area_ratio(d, n, P, t0)
    lo, hi = d - b / 2, d + b / 2
    areas = side_peak_areas(d, n, P, t0)
    # start values
    ph = np.mod(d - t0 + P / 2, P) - P / 2  # phase relative to the nearest peak
    valley = np.abs(ph) > 0.35 * P
    bg0 = float(np.mean(n[valley])) if background and valley.any() else 0.0
    per_bins = P / b
    side = np.array([v for k, v in areas.items() if k != 0])
    area0 = max(float(side.mean()) - bg0 * per_bins, 1e-3 * max(float(side.mean()), 1.0))
    g0 = (areas[0] - bg0 * per_bins) / area0
    g0 = float(np.clip(g0, 0.005, 2.0))
    # second moment of the side peaks -> 2 tau^2 + sigma^2
    near = (np.abs(ph) < 0.5 * P) & (np.round((d - t0) / P) != 0)
    w = np.clip(n[near] - bg0, 0, None)
    var = float(np.sum(w * ph[near] ** 2) / max(w.sum(), 1e-300)) if w.sum() > 0 else (P / 10) ** 2
    var = max(var, 4.0 * b * b)
    sig0 = float(sigma_ps) if sigma_ps is not None else max(0.5 * b, 0.3 * math.sqrt(var))
    tau0 = (
        float(tau_ps)
        if tau_ps is not None
        else max(math.sqrt(max(var - sig0**2, 0.25 * var) / 2.0), 0.5 * b)
    )
    kk = np.array([k for k in areas if k != 0])
    amp0, btau0 = 0.0, max(abs(d).max() / 3, P)
    if bunching:
        area0, amp0, btau0 = _bunching_start(kk * P, side - bg0 * per_bins, area0, btau0)
    p0 = dict(
        area=area0,
        g2_0=g0,
        tau_ps=tau0,
        sigma_ps=sig0,
        offset_ps=t0,
        period_ps=P,
        background=bg0,
        bunch_amp=amp0,
        bunch_tau_ps=btau0,
    )
    fixed = []
    if period_ps is not None:
        fixed.append("period_ps")
    if tau_ps is not None:
        fixed.append("tau_ps")
    if sigma_ps is not None:
        fixed.append("sigma_ps")
    if not background:
        fixed.append("background")
    if not bunching:
        fixed += ["bunch_amp", "bunch_tau_ps"]
    names = _PULSED
    lower = [0.0, 0.0, 0.05 * b, 0.01 * b, t0 - P / 4, 0.9 * P, 0.0, -0.99, 0.5 * b]
    upper = [np.inf, 20.0, P, P, t0 + P / 4, 1.1 * P, np.inf, 1e3, 1e3 * d.max()]
    scale = [area0, 0.1, tau0, sig0, b, b, max(bg0, 1e-3 * area0 / per_bins), 0.1, btau0]

    def model(v: np.ndarray) -> np.ndarray:
        return pulsed_model(dict(zip(names, v, strict=True)), lo, hi)

    fit = fit_poisson(
        model,
        n,
        names,
        [p0[k] for k in names],
        lower=lower,
        upper=upper,
        fixed=fixed,
        scale=scale,
        window=("offset_ps", "period_ps"),
    )
    pr, se = fit.as_dict(), fit.stderr_dict()
    if not fit.converged:
        warn_not_converged("fit_g2_pulsed", fit.message)
    return G2PulsedResult(
        **_common(fit, d, n),
        g2_0=pr["g2_0"],
        g2_0_err=se["g2_0"],
        g2_0_area=ratio,
        g2_0_area_err=ratio_err,
        period_ps=pr["period_ps"],
        offset_ps=pr["offset_ps"],
        tau_ps=pr["tau_ps"],
        tau_err_ps=se["tau_ps"],
        sigma_ps=pr["sigma_ps"],
    )


# --------------------------------------------------------------------------------------------
# CW fit
# --------------------------------------------------------------------------------------------

_CW = ("n_inf", "g2_0", "tau_r_ps", "sigma_ps", "offset_ps", "bunch_amp", "bunch_tau_ps")


def fit_g2_cw(
    delay_ps: Any,
    counts: Any = None,
    *,
    sigma_ps: float | None = None,
    offset_ps: float | None = None,
    bunching: bool = False,
    bin_ps: float | None = None,
    allow_fractional: bool = False,
) -> G2CWResult:
    """Fit a CW g2 histogram with `1 - (1 - g2_0) exp(-|tau| / tau_r)` (+ optional bunching),
    convolved with a Gaussian timing response, by Poisson maximum likelihood.

    **Arguments:**

    - `delay_ps`, `counts`: bin centres (ps, uniform) and raw coincidence counts, or a `g2`
      DataArray alone.
    - `sigma_ps`: timing response (ps, both detectors together): fitted when None (then
      strongly correlated with `tau_r` and `g2_0` unless `tau_r >> sigma`), fixed when given.
    - `offset_ps`: zero-delay position (ps): fitted within a quarter of the window around zero
      when None, fixed when given.
    - `bunching`: add `bunch_amp exp(-|tau| / bunch_tau_ps)` (blinking shoulders).
    - `bin_ps`, `allow_fractional`: as in `fit_g2_pulsed`.

    **Returns:** `G2CWResult` (`g2_0`, `g2_0_err`, `tau_r_ps`, `tau_r_err_ps`, ...); `g2_0` is
    the value of the (deconvolved) model at zero delay, background photons included.

    Raises `ValueError` for NaN, negative or non-integer counts, or fewer than 20 counts.
    """
    d, n, b = _input(delay_ps, counts, bin_ps, allow_fractional)
    lo, hi = d - b / 2, d + b / 2
    span = d.max() - d.min()
    outer = np.abs(d - np.median(d)) > 0.3 * span
    ninf0 = float(np.mean(n[outer])) if outer.any() else float(n.mean())
    if ninf0 <= 0:
        raise ValueError("no coincidences at long delays: cannot set the g2 = 1 level")
    k = max(1, int(round(len(d) / 100)))
    sm = np.convolve(n, np.ones(2 * k + 1) / (2 * k + 1), mode="same")
    inner = np.abs(d) < 0.2 * span
    imin = int(np.argmin(np.where(inner, sm, np.inf)))
    t00 = float(d[imin]) if offset_ps is None else float(offset_ps)
    g0 = float(np.clip(sm[imin] / ninf0, 0.0, 0.95))
    dip = np.clip(1.0 - n / ninf0, 0.0, None)
    dip_area = float(np.sum(dip[np.abs(d - t00) < 0.3 * span]) * b)
    tr0 = float(np.clip(dip_area / (2.0 * max(1.0 - g0, 0.05)), b, 0.3 * span))
    sig0 = float(sigma_ps) if sigma_ps is not None else max(0.5 * b, 0.25 * tr0)
    p0 = dict(
        n_inf=ninf0,
        g2_0=max(g0, 0.02),
        tau_r_ps=tr0,
        sigma_ps=sig0,
        offset_ps=t00,
        bunch_amp=0.1 if bunching else 0.0,
        bunch_tau_ps=min(20 * tr0, 0.3 * span),
    )
    fixed = []
    if sigma_ps is not None:
        fixed.append("sigma_ps")
    if offset_ps is not None:
        fixed.append("offset_ps")
    if not bunching:
        fixed += ["bunch_amp", "bunch_tau_ps"]
    names = _CW
    lower = [0.0, 0.0, 0.05 * b, 0.01 * b, -span / 4, -0.99, 0.5 * b]
    upper = [np.inf, 10.0, span, span, span / 4, 1e3, 10 * span]
    scale = [ninf0, 0.1, tr0, sig0, b, 0.1, p0["bunch_tau_ps"]]

    def model(v: np.ndarray) -> np.ndarray:
        return cw_model(dict(zip(names, v, strict=True)), lo, hi)

    fit = fit_poisson(
        model,
        n,
        names,
        [p0[k] for k in names],
        lower=lower,
        upper=upper,
        fixed=fixed,
        scale=scale,
        window=("offset_ps",),
    )
    pr, se = fit.as_dict(), fit.stderr_dict()
    if not fit.converged:
        warn_not_converged("fit_g2_cw", fit.message)
    return G2CWResult(
        **_common(fit, d, n),
        g2_0=pr["g2_0"],
        g2_0_err=se["g2_0"],
        tau_r_ps=pr["tau_r_ps"],
        tau_r_err_ps=se["tau_r_ps"],
        sigma_ps=pr["sigma_ps"],
        offset_ps=pr["offset_ps"],
    )
