"""Synthetic photon streams with known truth for the g2 and lifetime tests.

Each generator returns `(PhotonStream, truth)`; `truth` holds the parameter values the fits
must recover, derived from the simulated physics (not from the fit models):

- `pulsed_source`: a pulsed single-photon source. Each laser pulse (period P) gives 0, 1 or 2
  photons (probabilities 1 - p1 - p2, p1, p2); every photon leaves its pulse after an
  exponential delay (lifetime tau) and goes to detector 0 or 1 (efficiency eta each) or is
  lost. Optional blinking (a two-state telegraph process; no emission while off), Gaussian
  detector jitter and Poissonian dark counts. For independent pulses g2(0) =
  <n(n-1)> / <n>^2 = 2 p2 / (p1 + 2 p2)^2 (on-state), peaks are two-sided exponentials of
  scale tau convolved with the jitter of both detectors (sigma = sqrt(2) jitter), and blinking
  with on fraction f and correlation time tau_b multiplies peak areas by
  1 + (1 - f) / f exp(-|t| / tau_b).
- `cw_source`: a CW-driven two-level emitter, a renewal process whose intervals are
  Exp(k_exc) + Exp(k_rad): g2(t) = 1 - exp(-|t| / tau_r), tau_r = 1 / (k_exc + k_rad).
  Uncorrelated background photons (rate b_i per detector, signal s_i) give
  g2(0) = 1 - rho_0 rho_1, rho_i = s_i / (s_i + b_i).
- `decay_t3`: T3 records of an exponential (mono or bi) decay excited periodically, each
  photon's excitation time drawn from an IRF (a Gaussian with an exponential tail), its micro
  time taken modulo the period (so tails of earlier pulses wrap in), plus flat background.
"""

from __future__ import annotations

import math

import numpy as np

from qdsim.analysis.photons.stream import PhotonStream


def _merge(times: list[np.ndarray], chans: list[int]) -> tuple[np.ndarray, np.ndarray]:
    t = np.concatenate(times)
    c = np.concatenate([np.full(x.size, ch, np.int64) for x, ch in zip(times, chans, strict=True)])
    t = np.round(t).astype(np.int64)
    order = np.argsort(t, kind="stable")
    return t[order], c[order]


def _telegraph_on(rng: np.random.Generator, t_end: float, t_on: float, t_off: float):
    """Switch times and a function telling whether times are in an on period."""
    n = int(2 * t_end / (t_on + t_off)) + 100
    dur = np.empty(2 * n)
    dur[0::2] = rng.exponential(t_on, n)
    dur[1::2] = rng.exponential(t_off, n)
    # random start state weighted by the on fraction
    start_off = rng.random() > t_on / (t_on + t_off)
    edges = np.concatenate([[0.0], np.cumsum(dur)])
    if start_off:
        edges = edges[1:] - edges[1]

    def is_on(t: np.ndarray) -> np.ndarray:
        return (np.searchsorted(edges, t, side="right") - 1) % 2 == 0

    return is_on


def pulsed_source(
    seed: int,
    *,
    duration_s: float = 0.05,
    period_ps: float = 12_800.0,
    tau_ps: float = 246.0,
    g2_0: float = 0.1,
    mean_photons: float = 0.9,
    eta: float = 0.1,
    jitter_ps: float = 30.0,
    dark_cps: float = 0.0,
    blink_on_ps: float | None = None,
    blink_off_ps: float | None = None,
    offset_ps: float = 0.0,
) -> tuple[PhotonStream, dict]:
    """Pulsed single-photon source (see the module docstring); `offset_ps` delays channel 1."""
    rng = np.random.default_rng(seed)
    n_pulses = int(duration_s * 1e12 / period_ps)
    p2 = g2_0 * mean_photons**2 / 2
    p1 = mean_photons - 2 * p2
    if p1 < 0 or p1 + p2 > 1:
        raise ValueError("infeasible photon-number distribution")
    u = rng.random(n_pulses)
    nph = (u < p1 + p2).astype(np.int64) + (u < p2)
    pulse_t = np.arange(n_pulses) * period_ps
    truth = {"g2_0": g2_0, "tau_ps": tau_ps, "period_ps": period_ps, "offset_ps": offset_ps}
    truth["sigma_ps"] = math.sqrt(2) * jitter_ps
    if blink_on_ps is not None:
        is_on = _telegraph_on(rng, n_pulses * period_ps, blink_on_ps, blink_off_ps)
        nph[~is_on(pulse_t)] = 0
        f_on = blink_on_ps / (blink_on_ps + blink_off_ps)
        truth["bunch_amp"] = (1 - f_on) / f_on
        truth["bunch_tau_ps"] = 1.0 / (1.0 / blink_on_ps + 1.0 / blink_off_ps)
    src = np.repeat(pulse_t, nph)
    emit = src + rng.exponential(tau_ps, src.size)
    route = rng.random(src.size)
    t0 = emit[route < eta] + rng.normal(0, jitter_ps, int(np.sum(route < eta)))
    sel1 = (route >= eta) & (route < 2 * eta)
    t1 = emit[sel1] + offset_ps + rng.normal(0, jitter_ps, int(sel1.sum()))
    span = n_pulses * period_ps
    d0 = rng.uniform(0, span, rng.poisson(dark_cps * span * 1e-12))
    d1 = rng.uniform(0, span, rng.poisson(dark_cps * span * 1e-12))
    t, c = _merge([t0, d0, t1, d1], [0, 0, 1, 1])
    t -= min(t[0], 0)
    truth["rate0_cps"] = (t0.size + d0.size) / (span * 1e-12)
    truth["rate1_cps"] = (t1.size + d1.size) / (span * 1e-12)
    return PhotonStream(time_ps=t, channel=c, duration_s=span * 1e-12), truth


def cw_source(
    seed: int,
    *,
    duration_s: float = 1e-3,
    k_exc_per_ps: float = 1 / 2000.0,
    k_rad_per_ps: float = 1 / 2000.0,
    eta: float = 0.3,
    jitter_ps: float = 50.0,
    background_fraction: float = 0.0,
) -> tuple[PhotonStream, dict]:
    """CW antibunched source (see the module docstring).

    `background_fraction` is b / (s + b) in each detector, so g2(0) = 1 - (1 - bf)^2.
    """
    rng = np.random.default_rng(seed)
    span = duration_s * 1e12
    rate = k_exc_per_ps * k_rad_per_ps / (k_exc_per_ps + k_rad_per_ps)
    n = int(span * rate * 1.05) + 1000
    dt = rng.exponential(1 / k_exc_per_ps, n) + rng.exponential(1 / k_rad_per_ps, n)
    emit = np.cumsum(dt)
    emit = emit[emit < span]
    route = rng.random(emit.size)
    a = route < eta
    b = (route >= eta) & (route < 2 * eta)
    t0 = emit[a] + rng.normal(0, jitter_ps, int(a.sum()))
    t1 = emit[b] + rng.normal(0, jitter_ps, int(b.sum()))
    bf = background_fraction
    nb0 = rng.poisson(t0.size * bf / (1 - bf)) if bf > 0 else 0
    nb1 = rng.poisson(t1.size * bf / (1 - bf)) if bf > 0 else 0
    b0 = rng.uniform(0, span, nb0)
    b1 = rng.uniform(0, span, nb1)
    t, c = _merge([t0, b0, t1, b1], [0, 0, 1, 1])
    t -= min(t[0], 0)
    truth = {
        "g2_0": 1 - (1 - bf) ** 2,
        "tau_r_ps": 1 / (k_exc_per_ps + k_rad_per_ps),
        "sigma_ps": math.sqrt(2) * jitter_ps,
        "offset_ps": 0.0,
    }
    return PhotonStream(time_ps=t, channel=c, duration_s=duration_s), truth


def irf_pdf_samples(
    rng: np.random.Generator, n: int, sigma_ps: float, tail_ps: float, tail_frac: float
) -> np.ndarray:
    """Excitation-time samples (ps, around 0) of the synthetic IRF: a Gaussian, a fraction
    `tail_frac` of it followed by an exponential tail of scale `tail_ps`."""
    x = rng.normal(0.0, sigma_ps, n)
    tail = rng.random(n) < tail_frac
    x[tail] += rng.exponential(tail_ps, int(tail.sum()))
    return x


def decay_t3(
    seed: int,
    *,
    n_photons: int = 200_000,
    lifetimes_ps: tuple[float, ...] = (246.0,),
    fractions: tuple[float, ...] = (1.0,),
    period_ps: float = 12_500.0,
    irf_position_ps: float = 2_000.0,
    irf_sigma_ps: float = 30.0,
    irf_tail_ps: float = 80.0,
    irf_tail_frac: float = 0.2,
    background_fraction: float = 0.01,
    resolution_ps: int = 8,
    channel: int = 0,
) -> tuple[PhotonStream, dict]:
    """T3 photon records of a decay with an IRF and wrapped tail (module docstring).

    `fractions` are the photon (area) fractions of the components. Micro times are quantised
    to `resolution_ps` (truncation, as a TCSPC card's bins), the period is a whole number of
    resolution steps.
    """
    rng = np.random.default_rng(seed)
    P = int(round(period_ps / resolution_ps)) * resolution_ps
    n_bg = rng.binomial(n_photons, background_fraction)
    n_sig = n_photons - n_bg
    comp = rng.choice(len(lifetimes_ps), size=n_sig, p=np.asarray(fractions) / sum(fractions))
    decay = rng.exponential(np.asarray(lifetimes_ps)[comp])
    exc = irf_position_ps + irf_pdf_samples(rng, n_sig, irf_sigma_ps, irf_tail_ps, irf_tail_frac)
    arrival = np.concatenate([exc + decay, rng.uniform(0, P, n_bg)])
    # sync index: photons spread over many periods, the pulse they came from set by arrival
    pulse = rng.integers(0, 10 * n_photons, arrival.size)
    abs_t = pulse * P + arrival
    sync = np.floor(abs_t / P).astype(np.int64)
    micro = abs_t - sync * P
    micro = (np.floor(micro / resolution_ps) * resolution_ps).astype(np.int64)
    order = np.argsort(sync * P + micro, kind="stable")
    sync, micro = sync[order], micro[order]
    stream = PhotonStream(
        time_ps=sync * P + micro,
        channel=np.full(micro.size, channel, np.int64),
        micro_ps=micro,
        sync_index=sync,
        sync_period_ps=float(P),
        header={"MeasDesc_Resolution": resolution_ps * 1e-12},
    )
    truth = {
        "lifetimes_ps": tuple(lifetimes_ps),
        "fractions": tuple(np.asarray(fractions) / sum(fractions)),
        "period_ps": float(P),
        "background_fraction": background_fraction,
        "irf_position_ps": irf_position_ps,
        "irf_sigma_ps": irf_sigma_ps,
    }
    return stream, truth


def irf_histogram(
    seed: int,
    *,
    n_counts: int = 2_000_000,
    period_ps: float = 12_500.0,
    irf_position_ps: float = 2_000.0,
    irf_sigma_ps: float = 30.0,
    irf_tail_ps: float = 80.0,
    irf_tail_frac: float = 0.2,
    resolution_ps: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """A measured IRF histogram `(bin centres ps, counts)` on the `decay_t3` micro-time grid."""
    rng = np.random.default_rng(seed)
    P = int(round(period_ps / resolution_ps)) * resolution_ps
    x = irf_position_ps + irf_pdf_samples(rng, n_counts, irf_sigma_ps, irf_tail_ps, irf_tail_frac)
    x = np.mod(x, P)
    nb = P // resolution_ps
    h = np.bincount(np.floor(x / resolution_ps).astype(np.int64), minlength=nb)[:nb]
    return (np.arange(nb) + 0.5) * resolution_ps, h.astype(np.int64)


def write_t2_ptu(path, stream: PhotonStream):
    """Write a T2 stream as a HydraHarp2T2 PTU file (1 ps ticks) with the test writer."""
    from tests.analysis import ptu_writer as w

    events = [
        (int(t), w.PHOTON, int(c)) for t, c in zip(stream.time_ps, stream.channel, strict=True)
    ]
    truth = w.encode_t2("HydraHarp2T2", events)
    return w.write_ptu(path, "HydraHarp2T2", truth.records, global_resolution_s=1e-12)


def write_t3_ptu(path, stream: PhotonStream, resolution_ps: int):
    """Write a T3 stream (sync period a whole number of ps) as a HydraHarp2T3 PTU file."""
    from tests.analysis import ptu_writer as w

    dt = (stream.micro_ps // resolution_ps).astype(int)
    events = [
        (int(s), w.PHOTON, int(c), int(d))
        for s, c, d in zip(stream.sync_index, stream.channel, dt, strict=True)
    ]
    truth = w.encode_t3("HydraHarp2T3", events)
    return w.write_ptu(
        path,
        "HydraHarp2T3",
        truth.records,
        global_resolution_s=stream.sync_period_ps * 1e-12,
        resolution_s=resolution_ps * 1e-12,
    )
