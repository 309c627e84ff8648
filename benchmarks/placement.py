"""Placement and calibration timings (issue 13): run by hand, results in benchmarks/README.md.

    python benchmarks/placement.py            # default GridSpec, NUTS with its defaults
    python benchmarks/placement.py --quick    # small grid, short NUTS (smoke run)
    python benchmarks/placement.py --nuts-only  # NUTS on three dots against the grid engine

Prints and writes benchmarks/out/placement.json: the table build (once per system, config and
grid; cached after), per-dot grid placement (best of 5, table in memory: read from the cache
once), per-dot NUTS (warm-up + sampling, compile included and apart), and the calibration of 20
simulated dots. Targets: grid <= 1 s per dot, NUTS <= 60 s per dot on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import jax
import numpy as np

import qdsim
from qdsim.placement import GridSpec, calibrate, place
from qdsim.placement import grid as pgrid
from qdsim.placement.forward import predict_batch
from qdsim.placement.priors import system_priors

DOT = dict(energy_eV=(1.8167, 5e-4), dark_bright_eV=(1.5e-3, 0.3e-3), lifetime_s=(300e-12, 50e-12))

#: NUTS benchmark dots: the paper's dot 3 (all three quantities), energy only, energy + lifetime
NUTS_DOTS = {
    "dot 3 (all three)": DOT,
    "energy only": {"energy_eV": DOT["energy_eV"]},
    "energy + lifetime": {k: DOT[k] for k in ("energy_eV", "lifetime_s")},
}


def _agreement(g, n) -> dict:
    """|median_grid - median_nuts| in units of the grid's central 68 % interval width."""
    out = {}
    for var in ("diameter", "x"):
        lo, hi = g.samples[var].quantile([0.15865, 0.84135]).values
        mg, mn = float(g.samples[var].median()), float(n.samples[var].median())
        w = float(hi - lo)
        out[var] = {"grid": mg, "nuts": mn, "width": w, "diff_in_widths": abs(mg - mn) / w}
    return out


def nuts_section(spec, cache, nuts_kw) -> dict:
    """NUTS per dot (the first call compiles the sampler: timed apart), diagnostics and the
    agreement of its medians with the grid engine's on the same problem."""
    out = {}
    t = time.perf_counter()
    place(**DOT, method="nuts", seed=0, cache=cache, **nuts_kw)
    out["nuts_first_call_s"] = time.perf_counter() - t  # compilation + one dot
    rows = {}
    for label, dot in NUTS_DOTS.items():
        g = place(**dot, grid=spec, cache=cache)
        t = time.perf_counter()
        n = place(**dot, method="nuts", seed=1, cache=cache, **nuts_kw)
        wall = time.perf_counter() - t
        d = n.diagnostics
        rows[label] = {
            "nuts_s": wall,
            "r_hat_max": max(d["r_hat"].values()),
            "ess_min": min(d["ess"].values()),
            "ess": d["ess"],
            "divergences": d["divergences"],
            "mean_steps": d["mean_steps"],
            "mean_steps_warmup": d["mean_steps_warmup"],
            "max_tree_depth_hits": d["max_tree_depth_hits"],
            "draws": d["num_chains"] * d["num_samples"],
            "agreement": _agreement(g, n),
        }
    out["nuts_dots"] = rows
    return out


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small grid and short chains")
    ap.add_argument("--skip-nuts", action="store_true", help="grid engine and calibration only")
    ap.add_argument(
        "--nuts-only", action="store_true", help="NUTS on three dots against the grid engine"
    )
    args = ap.parse_args()
    spec = GridSpec(n_radius=64, n_x=48, n_slices=4, n_exchange=8) if args.quick else GridSpec()
    cal_spec = GridSpec(
        n_radius=spec.n_radius, n_x=spec.n_x, n_slices=spec.n_slices, n_exchange=256
    )
    nuts_kw = dict(num_samples=200, num_warmup=50, num_chains=2) if args.quick else {}
    system = qdsim.load_system()
    priors = system_priors(system)
    out = {"device": f"{jax.default_backend()} ({platform.machine()})", "grid": spec.__dict__}
    warnings.simplefilter("ignore")
    out["load_average_start"] = os.getloadavg()
    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        pgrid.load_table(system, priors, spec, qdsim.SolverConfig(), cache=cache)
        out["table_build_s"] = time.perf_counter() - t
        if args.nuts_only:
            out.update(nuts_section(spec, cache, nuts_kw))
            out["load_average_end"] = os.getloadavg()
            _write(out, "placement_nuts_quick.json" if args.quick else "placement_nuts.json")
            return
        out["grid_first_dot_s"] = _timed(lambda: place(**DOT, grid=spec, cache=cache))
        times = {}
        for label, keys in (
            ("energy", ("energy_eV",)),
            ("energy+splitting", ("energy_eV", "dark_bright_eV")),
            ("all three", tuple(DOT)),
        ):
            best = np.inf
            for _ in range(5):
                t = time.perf_counter()
                place(**{k: DOT[k] for k in keys}, grid=spec, cache=cache)
                best = min(best, time.perf_counter() - t)
            times[label] = best
        out["grid_per_dot_s"] = times
        if not args.skip_nuts:
            t = time.perf_counter()
            p = place(**DOT, method="nuts", **nuts_kw)
            out["nuts_first_dot_s"] = time.perf_counter() - t
            t = time.perf_counter()
            p = place(**DOT, method="nuts", seed=1, **nuts_kw)
            out["nuts_second_dot_s"] = time.perf_counter() - t
            out["nuts_diagnostics"] = {
                k: p.diagnostics[k] for k in ("r_hat", "ess", "divergences", "sampling_s")
            }
            out.update(nuts_section(spec, cache, nuts_kw))
        # calibration: 20 simulated dots sharing the prior medians of the constants
        rng = np.random.default_rng(0)
        r = priors["diameter"].ppf(rng.random(80)) / 2
        x = rng.uniform(0, 0.6, 80)
        th = [float(priors[n].ppf(0.5)) for n in ("f_v", "bowing_Eg", "mass_ratio", "dSR", "hwLT")]
        pr = predict_batch(system, r, x, *th)
        keep = np.flatnonzero(pr.ok)[:20]
        dots = [
            {
                "energy_eV": (pr.energy_eV[i], 5e-4),
                "dark_bright_eV": (pr.dark_bright_eV[i], 0.2 * pr.dark_bright_eV[i]),
                "lifetime_s": (pr.lifetime_s[i], 0.15 * pr.lifetime_s[i]),
            }
            for i in keep
        ]
        pgrid.load_table(system, priors, cal_spec, qdsim.SolverConfig(), cache=cache)
        t = time.perf_counter()
        cal = calibrate(dots, grid=cal_spec, cache=cache)
        out["calibration_20_dots_s"] = time.perf_counter() - t
        out["calibration_effective_draws"] = cal.effective_draws
    _write(out, "placement_quick.json" if args.quick else "placement.json")


def _write(out: dict, name: str) -> None:
    print(json.dumps(out, indent=1, default=str))
    dest = Path(__file__).parent / "out"
    dest.mkdir(exist_ok=True)
    (dest / name).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
