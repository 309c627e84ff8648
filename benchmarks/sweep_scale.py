"""Sweeps at scale (issue 15): points/s and process peak RSS of `phase_diagram` to a zarr store
vs in memory, at growing grid sizes.

Each (size, mode) runs in a fresh Python process so that its peak RSS (`ru_maxrss`) is its own.
The process first compiles the kernel on a small grid (the same chunk shape, the same mode, so
that imports are not timed), records its RSS ("after compile"), then times the sweep of the
full grid (compile excluded) and records the peak RSS. Results go to
`benchmarks/out/sweep_scale.json` (or `--out`) and a table on stdout.

On `--device gpu` (or auto finding one) the warm-up grid is one block of the full grid, so that
it compiles the chunk that the memory policy picks for the full grid (recorded with its reason),
and the full grid reuses that chunk. `--chunk-points` overrides the chunk on any device.

    python benchmarks/sweep_scale.py                      # 256^2 and 1024^2, zarr and memory
    python benchmarks/sweep_scale.py --sizes 4096 --modes zarr   # long: many minutes
    python benchmarks/sweep_scale.py --smoke              # 64^2, seconds
    python benchmarks/sweep_scale.py --device gpu --sizes 1024 4096 --out /tmp/gpu.json
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

n, mode, store, device = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
chunk = int(sys.argv[5]) or None
kb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
# compile the chunk, and import what the mode needs (zarr, xarray's backends) untimed: on the
# CPU a 16 x 16 grid (the 128-point chunk), elsewhere one block of the full grid (the chunk the
# memory policy picks for it)
rows = 16 if device == "cpu" else max(1, min(n, (1 << 16) // n))
warm = np.linspace(1.5, 8, rows), np.linspace(0, 1, 16 if device == "cpu" else n)
ds = qdsim.phase_diagram(*warm, store=None if mode == "memory" else store + ".warm.zarr",
                         device=device, chunk_points=chunk).load()
chunk, reason = int(ds.attrs["chunk_points"]), ds.attrs["chunk_reason"]
rss_compiled = kb()
r, x = np.linspace(1.5, 8.0, n), np.linspace(0.0, 1.0, n)
t = time.perf_counter()
ds = qdsim.phase_diagram(r, x, store=None if mode == "memory" else store, device=device,
                         chunk_points=chunk)
wall = time.perf_counter() - t
print(json.dumps({
    "grid": f"{n}x{n}", "points": n * n, "mode": mode, "wall_s": round(wall, 2),
    "points_per_s": round(n * n / wall), "rss_after_compile_mib": round(rss_compiled),
    "peak_rss_mib": round(kb()), "failed_points": int(ds.attrs["failed_points"]),
    "device": ds.attrs["device"], "chunk_points": chunk, "chunk_reason": reason,
}))
"""


def run_one(n: int, mode: str, tmp: Path, device: str = "cpu", chunk: int = 0) -> dict:
    store = tmp / f"pd{n}.zarr"
    shutil.rmtree(store, ignore_errors=True)
    env = dict(os.environ)
    if device == "cpu":
        env["JAX_PLATFORMS"] = os.environ.get("JAX_PLATFORMS", "cpu")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n), mode, str(store), device, str(chunk)],
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
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu", "auto"])
    ap.add_argument("--chunk-points", type=int, default=0, help="default: qdsim's choice")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "sweep_scale.json")
    args = ap.parse_args()
    sizes = [64] if args.smoke else args.sizes
    rows = []
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        for n in sizes:
            for mode in args.modes:
                row = run_one(n, mode, Path(tmp), args.device, args.chunk_points)
                rows.append(row)
                print(
                    f"{row['grid']:>10} {mode:>6}: {row['wall_s']:8.2f} s, "
                    f"{row['points_per_s']:7d} points/s, peak RSS {row['peak_rss_mib']} MiB "
                    f"(after compile {row['rss_after_compile_mib']} MiB), {row['device']}, "
                    f"chunk {row['chunk_points']} ({row['chunk_reason']})",
                    flush=True,
                )
    import jax

    result = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "device": args.device,
        "jax_default_backend": jax.default_backend(),
        "jax": jax.__version__,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
