"""Grid engine: the posterior over (radius, x) on a cached table of the forward model.

**The table** (built once per system, solver config and grid; stored under the user cache dir,
keyed by the material files' SHA-256, the priors, the config and the grid): for each of `n_slices`
quasi-Monte-Carlo draws of the nuisances that need a new exciton solution (f_v, bowing, mass
ratio; a scrambled Sobol sequence mapped through the priors' quantile functions), the
exchange-free solution on a log-spaced radius axis x a linear x axis, solved with
`qdsim.phase_diagram`, and the coefficients of the exchange maps (`forward.exchange_coefficients`).

**Per dot** (no exciton solve: ~0.1-0.5 s): `n_exchange` Sobol draws of (dSR, hwLT) from their
priors are applied exactly through those linear maps, so that every (slice, exchange draw, radius,
x) cell has the model's emission energy, splitting and lifetime. Each cell's weight is
prior(radius) x Gaussian likelihoods; the energy likelihood is averaged over the cell (its
variance gains the spread of the energy across the cell, (dE/dlnR dlnR)^2/12 + (dE/dx dx)^2/12),
because the energy ridge is far narrower than any affordable grid (0.5 meV against ~20 meV per
cell). Failed points (no bound exciton) have zero likelihood. The nuisance draws carry equal
prior weight, so the sum over draws is a Monte-Carlo marginalisation of the same nuisances the
NUTS engine samples.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.stats import qmc

from qdsim.model.types import SolverConfig
from qdsim.placement.forward import exchange_coefficients

__all__ = ["GridSpec", "cache_dir", "load_table"]

#: Version of the table layout: bump when the cached content changes meaning.
_TABLE_VERSION = 1


@dataclass(frozen=True)
class GridSpec:
    """Resolution of the grid engine.

    - `n_radius`: radius nodes, log-spaced over the diameter prior's 0.05 %-99.95 % range.
    - `n_x`: x nodes, linear over the x prior's support.
    - `n_slices`: draws of (f_v, bowing, mass ratio), each a full (radius, x) solve.
    - `n_exchange`: draws of (dSR, hwLT) applied per dot (cheap: no solve).
    - `seed`: of the scrambled Sobol sequences (fixed: placements are reproducible).
    The default (256 x 128 x 32 slices: 1 M model points) takes ~20 s once on 2 cores.
    """

    n_radius: int = 256
    n_x: int = 128
    n_slices: int = 32
    n_exchange: int = 32
    seed: int = 0

    def __post_init__(self):
        for f in ("n_radius", "n_x", "n_slices", "n_exchange"):
            if int(getattr(self, f)) < 2:
                raise ValueError(f"GridSpec.{f} must be >= 2, got {getattr(self, f)}")


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Where tables live: `path`, else `$QDSIM_CACHE_DIR/placement`, else
    `$XDG_CACHE_HOME/qdsim/placement` (`~/.cache/qdsim/placement`)."""
    if path is not None:
        return Path(path)
    if os.environ.get("QDSIM_CACHE_DIR"):
        return Path(os.environ["QDSIM_CACHE_DIR"]) / "placement"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qdsim" / "placement"


def sobol(n: int, d: int, seed: int) -> np.ndarray:
    """n scrambled Sobol points in (0, 1)^d (n rounded up to a power of 2, then cut)."""
    m = max(1, math.ceil(math.log2(n)))
    u = qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)[:n]
    return np.clip(u, 1e-12, 1 - 1e-12)


SLICE_NUISANCES = ("f_v", "bowing_Eg", "mass_ratio")
EXCHANGE_NUISANCES = ("dSR", "hwLT")


def _draws(names, n, seed, priors, fixed) -> dict[str, np.ndarray]:
    u = sobol(n, len(names), seed)
    return {
        name: np.full(n, float(fixed[name])) if name in fixed else priors[name].ppf(u[:, i])
        for i, name in enumerate(names)
    }


def slice_draws(priors, spec: GridSpec, fixed=None) -> dict[str, np.ndarray]:
    """The (f_v, bowing_Eg, mass_ratio) draws of the table's slices (fixed ones held)."""
    fixed = fixed or {}
    n = 1 if all(k in fixed for k in SLICE_NUISANCES) else spec.n_slices
    return _draws(SLICE_NUISANCES, n, spec.seed, priors, fixed)


def exchange_draws(priors, spec: GridSpec, fixed=None) -> dict[str, np.ndarray]:
    """The (dSR, hwLT) draws applied per dot (fixed ones held)."""
    fixed = fixed or {}
    n = 1 if all(k in fixed for k in EXCHANGE_NUISANCES) else spec.n_exchange
    return _draws(EXCHANGE_NUISANCES, n, spec.seed + 1, priors, fixed)


def axes(priors, spec: GridSpec) -> tuple[np.ndarray, np.ndarray]:
    """(radius_nm, x) nodes: radius log-spaced over the diameter prior's central 99.9 %."""
    d_lo, d_hi = priors["diameter"].interval(0.999)
    d_lo = max(d_lo, 0.2)
    r = np.exp(np.linspace(math.log(d_lo / 2), math.log(d_hi / 2), spec.n_radius))
    x_lo, x_hi = priors["x"].support
    x = np.linspace(max(x_lo, 0.0), min(x_hi, 1.0), spec.n_x)
    return r, x


def _model_source_hash() -> str:
    """SHA-256 of the forward model's source files: a changed model never reuses a table."""
    import qdsim.model

    h = hashlib.sha256()
    for f in sorted(Path(qdsim.model.__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()


def _key(system, priors, spec: GridSpec, config: SolverConfig, fixed) -> str:
    blob = json.dumps(
        {
            "version": _TABLE_VERSION,
            "model": _model_source_hash(),
            "fixed": {k: fixed[k] for k in sorted(fixed) if k in SLICE_NUISANCES},
            "hashes": system.sha256,
            "priors": {k: asdict(v) for k, v in priors.items()},
            # the table does not depend on the per-dot exchange draws
            "spec": {k: v for k, v in asdict(spec).items() if k != "n_exchange"},
            "config": config._asdict(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def build_table(system, priors, spec: GridSpec, config: SolverConfig, fixed=None, progress=False):
    """Solve the table (see the module docstring); returns an xarray Dataset."""
    from qdsim.sweep.phase_diagram import phase_diagram

    r, x = axes(priors, spec)
    draws = slice_draws(priors, spec, fixed)
    n_slices = draws["f_v"].size
    names = ("E0", "A", "B", "G")
    out = {n: np.empty((n_slices, r.size, x.size)) for n in names}
    ok = np.empty((n_slices, r.size, x.size), dtype=bool)
    total = n_slices * r.size * x.size
    report = _progress(progress, total)
    for k in range(n_slices):
        fv, b, mr = (float(draws[n][k]) for n in ("f_v", "bowing_Eg", "mass_ratio"))
        ds = phase_diagram(r, x, system=system, f_v=fv, bowing_Eg=b, mass_ratio=mr, config=config)
        p = system.sphere_params(x[None, :], f_v=fv, bowing_Eg=b, mass_ratio=mr)
        A, B, G = exchange_coefficients(
            p, r[:, None], ds.contact_density.values, ds.overlap2.values
        )
        out["E0"][k] = ds.exchange_free_energy.values
        out["A"][k], out["B"][k], out["G"][k] = A, B, G
        ok[k] = np.isfinite(ds.exchange_free_energy.values) & np.isfinite(G)
        report((k + 1) * r.size * x.size)
    report(None)
    dims = ("slice", "radius", "x")
    data = {n: (dims, np.where(ok, v, np.nan)) for n, v in out.items()}
    data["ok"] = (dims, ok.astype(np.int8))
    coords = {"radius": r, "x": x, **{n: ("slice", v) for n, v in draws.items()}}
    return xr.Dataset(data, coords=coords)


def load_table(
    system, priors, spec: GridSpec, config: SolverConfig, *, fixed=None, cache=None, progress=False
):
    """The cached table for (system, priors, spec, config, fixed solve nuisances): read from the
    cache dir when it exists, else built and written atomically (temp file + rename).
    `cache=False` never reads or writes files."""
    fixed = fixed or {}
    if cache is False:
        return build_table(system, priors, spec, config, fixed, progress)
    path = cache_dir(cache) / f"table-{_key(system, priors, spec, config, fixed)}.nc"
    if path in _MEMORY:
        return _MEMORY[path]
    if path.is_file():
        try:
            with xr.open_dataset(path, engine="h5netcdf") as ds:
                return _remember(path, ds.load())
        except (OSError, ValueError):
            pass  # a damaged cache file is rebuilt
    table = _remember(path, build_table(system, priors, spec, config, fixed, progress))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        table.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    except OSError:
        pass  # read-only cache: still usable, just not kept
    return table


#: Tables read in this process (path -> Dataset), the last few: placing many dots reads once.
_MEMORY: dict[Path, xr.Dataset] = {}


def _remember(path: Path, table: xr.Dataset) -> xr.Dataset:
    while len(_MEMORY) >= 4:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[path] = table
    return table


def _progress(progress, total):
    if not progress:
        return lambda done: None
    from qdsim.sweep.phase_diagram import _progress_callback

    return _progress_callback(progress, total)


# ---------------------------------------------------------------------------------------------
# the posterior on the table


@dataclass
class GridPosterior:
    """Posterior on the table, sparse: `w[m, c]` (normalised) for exchange draw m and the
    table cells `cells` (flat indices into (slice, radius, x)) that the data leave in reach."""

    w: np.ndarray  # (exchange, cells)
    cells: np.ndarray  # flat indices into the table's (slice, radius, x)
    shape: tuple[int, int, int]  # the table's (slice, radius, x)
    radius_nm: np.ndarray
    x: np.ndarray
    slices: dict[str, np.ndarray]
    exchange: dict[str, np.ndarray]
    evidence_log: float  # log of the mean likelihood under the prior (up to constants)

    @property
    def n_cells_used(self) -> int:
        return int(self.cells.size)

    @property
    def total(self) -> float:
        return float(self.w.sum())

    def draw_weights(self) -> np.ndarray:
        """(slice, exchange) posterior mass of each nuisance draw."""
        k = np.unravel_index(self.cells, self.shape)[0]
        out = np.zeros((self.shape[0], self.w.shape[0]))
        for m in range(self.w.shape[0]):
            out[:, m] = np.bincount(k, weights=self.w[m], minlength=self.shape[0])
        return out

    def marginal(self, axis: str) -> np.ndarray:
        """Posterior mass per radius or x node."""
        k, i, j = np.unravel_index(self.cells, self.shape)
        idx, n = (i, self.shape[1]) if axis == "radius" else (j, self.shape[2])
        return np.bincount(idx, weights=self.w.sum(axis=0), minlength=n)


def _cell_edges(c: np.ndarray) -> np.ndarray:
    mid = 0.5 * (c[1:] + c[:-1])
    return np.r_[c[0] - (mid[0] - c[0]), mid, c[-1] + (c[-1] - mid[-1])]


#: Per-table arrays that do not depend on the measurements (id(table) -> dict), kept for the
#: tables held in memory.
_DERIVED: dict[int, dict] = {}


def _derived(table, priors) -> dict:
    key = id(table)
    got = _DERIVED.get(key)
    if got is not None and got["table"] is table:
        return got
    r = table.radius.values
    x = table.x.values
    lnr = np.log(r)
    E0 = table.E0.values
    dlnr = np.diff(_cell_edges(lnr))
    dx = np.diff(_cell_edges(x))
    # spread of the energy across a cell (uniform in ln r and x): variance added to sigma^2
    gr = np.gradient(E0, lnr, axis=1)
    gx = np.gradient(E0, x, axis=2)
    smear2 = (gr * dlnr[None, :, None]) ** 2 / 12 + (gx * dx[None, None, :]) ** 2 / 12
    smear2 = np.where(np.isfinite(smear2), smear2, 0.0)
    # log prior of the cell (radius: the diameter prior as a density in ln d, times the cell
    # width in ln r; x: the x prior's density times its cell width)
    d = 2.0 * r
    lp_r = priors["diameter"].logpdf(d) + np.log(d) + np.log(dlnr)
    with np.errstate(divide="ignore"):
        lp_x = priors["x"].logpdf(x) + np.log(dx)
    logprior = lp_r[:, None] + lp_x[None, :]
    ok = table.ok.values.astype(bool) & np.isfinite(logprior)[None]
    if len(_DERIVED) >= 4:
        _DERIVED.pop(next(iter(_DERIVED)))
    got = {"table": table, "smear2": smear2, "logprior": logprior, "ok": ok}
    _DERIVED[key] = got
    return got


def posterior(table, priors, spec: GridSpec, data, model_error, fixed=None) -> GridPosterior:
    """Posterior for measurements `data` (dict name -> (value, sigma) in eV / s, lifetime
    already divided by the quantum yield) with relative/absolute model errors `model_error`."""
    r = table.radius.values
    x = table.x.values
    E0 = table.E0.values
    A, B, G = table.A.values, table.B.values, table.G.values
    der = _derived(table, priors)
    ex = exchange_draws(priors, spec, fixed)
    dSR = ex["dSR"][:, None]  # (exchange, 1) against the kept cells
    hwLT = ex["hwLT"][:, None]
    shape = E0.shape
    keep = der["ok"]
    if "energy_eV" in data:
        # cells worth evaluating: energy within reach of the measurement for some draw
        mu, sig = data["energy_eV"]
        s_tot = math.hypot(sig, model_error["energy_eV"])
        lo_d, hi_d = _ddb_range(table, ex)
        reach = 8.0 * np.sqrt(s_tot**2 + der["smear2"])
        keep = keep & (E0 + lo_d - reach <= mu) & (E0 + hi_d + reach >= mu)
    idx = np.flatnonzero(keep.ravel())
    n_ex = ex["dSR"].size
    empty = GridPosterior(np.zeros((n_ex, 0)), idx[:0], shape, r, x, _slices(table), ex, -math.inf)
    if idx.size == 0:
        return empty
    e0, a, b, g = (v.ravel()[idx][None, :] for v in (E0, A, B, G))
    lp = np.broadcast_to(der["logprior"][None], shape).ravel()[idx]
    ll = np.broadcast_to(lp[None, :], (n_ex, idx.size)).copy()
    ddb = dSR * a + hwLT * b
    bright = e0 + ddb
    if "energy_eV" in data:
        var = s_tot**2 + der["smear2"].ravel()[idx][None, :]
        ll += -0.5 * (bright - mu) ** 2 / var - 0.5 * np.log(var)
    if "dark_bright_eV" in data:
        mu_d, sig_d = data["dark_bright_eV"]
        var = sig_d**2 + (model_error["dark_bright_rel"] * ddb) ** 2
        ll += -0.5 * (ddb - mu_d) ** 2 / var - 0.5 * np.log(var)
    if "lifetime_s" in data:
        mu_t, sig_t = data["lifetime_s"]
        tau = 1.0 / (g * bright**3 * hwLT)
        var = sig_t**2 + (model_error["lifetime_rel"] * tau) ** 2
        ll += -0.5 * (tau - mu_t) ** 2 / var - 0.5 * np.log(var)
    ll = np.where(np.isfinite(ll), ll, -np.inf)
    top = ll.max()
    if not np.isfinite(top):
        return empty
    w = np.exp(ll - top)
    total = w.sum()
    evidence = float(top + math.log(total) - math.log(n_ex * shape[0]))
    return GridPosterior(w / total, idx, shape, r, x, _slices(table), ex, evidence)


def _ddb_range(table, ex) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the lowest (<= 0) and highest splitting over the exchange draws."""
    A, B = table.A.values, table.B.values
    lo = np.minimum(ex["dSR"].min() * A + ex["hwLT"].min() * B, 0.0)
    hi = ex["dSR"].max() * A + ex["hwLT"].max() * B
    return lo, hi


def _slices(table) -> dict[str, np.ndarray]:
    return {n: table[n].values for n in ("f_v", "bowing_Eg", "mass_ratio")}


def weighted_quantiles(centres: np.ndarray, w: np.ndarray, q, log: bool = False) -> np.ndarray:
    """Quantiles of a histogram with mass `w` in cells around `centres` (piecewise-linear CDF
    between cell edges, in log space if `log`)."""
    c = np.log(centres) if log else centres
    edges = _cell_edges(c)
    cdf = np.r_[0.0, np.cumsum(w)]
    cdf /= cdf[-1]
    out = np.interp(q, cdf, edges)
    return np.exp(out) if log else out


def draw_samples(post: GridPosterior, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`n` posterior draws: a cell by its weight, then uniform within the cell (ln r, x)."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(post.w.ravel())
    pick = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), cdf.size - 1)
    m, c = np.unravel_index(pick, post.w.shape)
    k, i, j = np.unravel_index(post.cells[c], post.shape)
    lnr_edges = _cell_edges(np.log(post.radius_nm))
    x_edges = _cell_edges(post.x)
    lnr = lnr_edges[i] + rng.random(n) * (lnr_edges[i + 1] - lnr_edges[i])
    xs = np.clip(x_edges[j] + rng.random(n) * (x_edges[j + 1] - x_edges[j]), 0.0, 1.0)
    out = {"radius": np.exp(lnr), "x": xs}
    out.update({name: v[k] for name, v in post.slices.items()})
    out.update({name: v[m] for name, v in post.exchange.items()})
    return out


def reach(table, priors, spec: GridSpec, fixed=None) -> dict[str, tuple[float, float]]:
    """(lowest, highest) emission energy (eV), dark-bright splitting (eV) and radiative lifetime
    (s) the model produces over the table (every slice and exchange draw)."""
    ex = exchange_draws(priors, spec, fixed)
    key = (id(table), ex["dSR"].tobytes(), ex["hwLT"].tobytes())
    got = _REACH.get(key)
    if got is not None and got[0] is table:
        return got[1]
    ok = table.ok.values.astype(bool)
    E0, A, B, G = (table[n].values[ok] for n in ("E0", "A", "B", "G"))
    if E0.size == 0:
        raise ValueError("the placement table has no usable point (every cell failed)")
    out = {"energy_eV": [np.inf, -np.inf], "dark_bright_eV": [np.inf, -np.inf]}
    out["lifetime_s"] = [np.inf, -np.inf]
    for d, h in zip(ex["dSR"], ex["hwLT"], strict=True):
        ddb = d * A + h * B
        e = E0 + ddb
        tau = 1.0 / (G * e**3 * h) if h > 0 else np.full_like(e, np.inf)
        for name, v in (("energy_eV", e), ("dark_bright_eV", ddb), ("lifetime_s", tau)):
            out[name][0] = min(out[name][0], float(np.min(v)))
            out[name][1] = max(out[name][1], float(np.max(v)))
    result = {k: (v[0], v[1]) for k, v in out.items()}
    if len(_REACH) >= 8:
        _REACH.pop(next(iter(_REACH)))
    _REACH[key] = (table, result)
    return result


_REACH: dict[tuple, tuple] = {}


def predictions(table, post: GridPosterior, draws) -> dict[str, np.ndarray]:
    """Model predictions at the draws' cells (node values; exact exchange of the draw)."""
    lookup = {
        (a, b, c): i
        for i, (a, b, c) in enumerate(
            zip(table.f_v.values, table.bowing_Eg.values, table.mass_ratio.values, strict=True)
        )
    }
    k = np.array(
        [lookup[t] for t in zip(draws["f_v"], draws["bowing_Eg"], draws["mass_ratio"], strict=True)]
    )
    i = np.clip(
        np.searchsorted(_cell_edges(np.log(post.radius_nm)), np.log(draws["radius"])) - 1,
        0,
        post.radius_nm.size - 1,
    )
    j = np.clip(np.searchsorted(_cell_edges(post.x), draws["x"]) - 1, 0, post.x.size - 1)
    E0, A, B, G = (table[n].values[k, i, j] for n in ("E0", "A", "B", "G"))
    ddb = draws["dSR"] * A + draws["hwLT"] * B
    e = E0 + ddb
    return {
        "emission_energy": e,
        "dark_bright_splitting": ddb,
        "radiative_lifetime": 1.0 / (G * e**3 * draws["hwLT"]),
    }


def diagnostics(post: GridPosterior) -> dict:
    """Effective number of nuisance draws (Kish, over slice x exchange) and cells used."""
    w = post.draw_weights().ravel()
    ess = float(w.sum() ** 2 / np.sum(w**2)) if w.sum() > 0 else 0.0
    return {
        "effective_nuisance_draws": ess,
        "nuisance_draws": int(w.size),
        "cells_used": post.n_cells_used,
        "log_evidence": post.evidence_log,
    }
