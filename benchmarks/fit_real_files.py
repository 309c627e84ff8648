"""Poisson fits on the real files in ../shared/data: values, errors, intervals, seconds, as JSON.

Run it with two versions of qdsim on the path to see how a change to the fitting moves the
results (benchmarks/fits_on_iminuit.md):

    python benchmarks/fit_real_files.py > new.json
    PYTHONPATH=/path/to/old/checkout python benchmarks/fit_real_files.py > old.json
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _row(r, keys, t0, ci=None):
    row = {"converged": bool(r.converged), "s": round(time.perf_counter() - t0, 3)}
    for k in keys:
        row[k] = float(r.params[k])
        row[k + "_err"] = float(r.stderr[k])
    if ci is not None:
        row["ci"] = [float(x) for x in ci]
    return row


def main(data: Path = DATA) -> dict:
    from qdsim import analysis

    out = {}
    curves = analysis.read_histogram(data / "fitmydata_demo_lifetime.dat")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in (2, 3):  # 4 ps bins, curve 0 (sharp) as IRF, first 4 pulses
            t0 = time.perf_counter()
            r = analysis.fit_decay(curves[c][:13_000], irf=curves[0][:13_000].values)
            keys = ["tau1_ps", "shift_ps", "background"]
            out[f"dat curve {c}, IRF curve 0"] = _row(r, keys, t0, r.lifetimes_ci_ps[0])
        for c in (4, 5):  # 128 ps bins, no IRF, first 3000 bins
            t0 = time.perf_counter()
            r = analysis.fit_decay(curves[c][:3000])
            ci = r.lifetimes_ci_ps[0]
            out[f"dat curve {c}, no IRF"] = _row(r, ["tau1_ps", "background"], t0, ci)
        h = analysis.decay_histogram(analysis.read_photons(data / "bischof_hydraharp_v20_t3.ptu"))
        t0 = time.perf_counter()
        r = analysis.fit_decay(h)
        out["hydraharp T3 decay"] = _row(r, ["tau1_ps", "background"], t0, r.lifetimes_ci_ps[0])
        s = analysis.read_photons(data / "bischof_picoharp_v30_t2.ptu")
        g = analysis.g2(s, channels=(0, 1), bin_ps=256, window_ps=50_000, normalize=False)
        t0 = time.perf_counter()
        r = analysis.fit_g2_cw(g)
        out["picoharp T2 g2, CW fit"] = _row(r, ["g2_0", "tau_r_ps", "n_inf"], t0)
    return out


if __name__ == "__main__":
    json.dump(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA), sys.stdout, indent=1)
    print()
