"""Placement and calibration timings (issue 13): run by hand, results in benchmarks/README.md.

    python benchmarks/placement.py            # default GridSpec, NUTS with its defaults
    python benchmarks/placement.py --quick    # small grid, short NUTS (smoke run)

Prints and writes benchmarks/out/placement.json: the table build (once per system, config and
grid; cached after), per-dot grid placement (best of 5, table in memory: read from the cache
once), per-dot NUTS (warm-up + sampling, compile included and apart), and the calibration of 20
simulated dots. Targets: grid <= 1 s per dot, NUTS <= 60 s per dot on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
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


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small grid and short chains")
    ap.add_argument("--skip-nuts", action="store_true", help="grid engine and calibration only")
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
    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        pgrid.load_table(system, priors, spec, qdsim.SolverConfig(), cache=cache)
        out["table_build_s"] = time.perf_counter() - t
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
    print(json.dumps(out, indent=1, default=str))
    dest = Path(__file__).parent / "out"
    dest.mkdir(exist_ok=True)
    (dest / ("placement_quick.json" if args.quick else "placement.json")).write_text(
        json.dumps(out, indent=1, default=str)
    )


if __name__ == "__main__":
    main()
