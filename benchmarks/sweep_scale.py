"""Sweeps at scale (issue 15): points/s and process peak RSS of `phase_diagram` to a zarr store
vs in memory, at growing grid sizes.

Each (size, mode) runs in a fresh Python process so that its peak RSS (`ru_maxrss`) is its own.
The process first compiles the kernel on a small grid (the same chunk shape, the same mode, so
that imports are not timed), records its RSS ("after compile"), then times the sweep of the
full grid (compile excluded) and records the peak RSS. Results go to
`benchmarks/out/sweep_scale.json` and a table on stdout.

    python benchmarks/sweep_scale.py                      # 256^2 and 1024^2, zarr and memory
    python benchmarks/sweep_scale.py --sizes 4096 --modes zarr   # long: many minutes
    python benchmarks/sweep_scale.py --smoke              # 64^2, seconds
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time
import numpy as np
import qdsim

n, mode, store = int(sys.argv[1]), sys.argv[2], sys.argv[3]
kb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
# compile the 128-point chunk, and import what the mode needs (zarr, xarray's backends) untimed
warm = np.linspace(1.5, 8, 16), np.linspace(0, 1, 16)
qdsim.phase_diagram(*warm, store=None if mode == "memory" else store + ".warm.zarr").load()
rss_compiled = kb()
r, x = np.linspace(1.5, 8.0, n), np.linspace(0.0, 1.0, n)
t = time.perf_counter()
ds = qdsim.phase_diagram(r, x, store=None if mode == "memory" else store)
wall = time.perf_counter() - t
print(json.dumps({
    "grid": f"{n}x{n}", "points": n * n, "mode": mode, "wall_s": round(wall, 2),
    "points_per_s": round(n * n / wall), "rss_after_compile_mib": round(rss_compiled),
    "peak_rss_mib": round(kb()), "failed_points": int(ds.attrs["failed_points"]),
}))
"""


def run_one(n: int, mode: str, tmp: Path) -> dict:
    store = tmp / f"pd{n}.zarr"
    shutil.rmtree(store, ignore_errors=True)
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n), mode, str(store)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    shutil.rmtree(store, ignore_errors=True)
    shutil.rmtree(f"{store}.warm.zarr", ignore_errors=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--modes", nargs="+", default=["zarr", "memory"], choices=["zarr", "memory"])
    ap.add_argument("--smoke", action="store_true", help="64 x 64 only (seconds)")
    args = ap.parse_args()
    sizes = [64] if args.smoke else args.sizes
    rows = []
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        for n in sizes:
            for mode in args.modes:
                row = run_one(n, mode, Path(tmp))
                rows.append(row)
                print(
                    f"{row['grid']:>10} {mode:>6}: {row['wall_s']:8.2f} s, "
                    f"{row['points_per_s']:7d} points/s, peak RSS {row['peak_rss_mib']} MiB "
                    f"(after compile {row['rss_after_compile_mib']} MiB)",
                    flush=True,
                )
    import jax

    result = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "device": jax.default_backend(),
        "jax": jax.__version__,
        "rows": rows,
    }
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "sweep_scale.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
