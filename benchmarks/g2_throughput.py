"""g2 throughput: photon tags per second of the numba kernel against baselines, same run.

    python benchmarks/g2_throughput.py [--tags 20_000_000] [--rate-cps 500_000] [--quick]

A script, not a test. A synthetic two-detector stream (Poissonian, `--rate-cps` per detector,
`--tags` tags in all) is correlated over +-50 ns in 64 ps bins (1564 bins) by

- `qdsim.analysis.g2` with the numba kernel (all numba threads, then 1 thread): the public
  call, DataArray and normalisation included;
- the package's NumPy kernel (`searchsorted` + `bincount`, the oracle of the tests);
- `pycorrelate.pcorrelate` when importable (not a dependency: `pip install pycorrelate`),
  on a subset because its cost grows with the number of bins.

Every timing is the best of `--repeat` runs after a warm-up call (numba compilation and cache
load are timed apart). Counts are checked equal to the numba result. The table is printed and
written as JSON to `benchmarks/out/g2_throughput_<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"


def make_stream(n_tags: int, rate_cps: float, seed: int = 0):
    from qdsim.analysis.photons.stream import PhotonStream

    rng = np.random.default_rng(seed)
    mean_gap_ps = 1e12 / (2 * rate_cps)  # two detectors
    t = np.cumsum(rng.exponential(mean_gap_ps, n_tags)).astype(np.int64)
    c = rng.integers(0, 2, n_tags).astype(np.int64)
    return PhotonStream(time_ps=t, channel=c)


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tags", type=int, default=20_000_000)
    ap.add_argument("--rate-cps", type=float, default=500_000.0)
    ap.add_argument("--bin-ps", type=int, default=64)
    ap.add_argument("--window-ps", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pycorrelate-tags", type=int, default=200_000)
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    a = ap.parse_args(argv)
    if a.quick:
        a.tags, a.repeat, a.pycorrelate_tags = 200_000, 2, 20_000

    import numba

    from qdsim.analysis import g2
    from qdsim.analysis.photons import correlate

    s = make_stream(a.tags, a.rate_cps)
    kw = dict(bin_ps=a.bin_ps, window_ps=a.window_ps)
    rows = []

    # numba: compile / cache load, then steady state (all threads, then one)
    t0 = time.perf_counter()
    ref = g2(s, normalize="cw", **kw)
    first = time.perf_counter() - t0
    threads = numba.get_num_threads()
    dt, _ = best_time(lambda: g2(s, normalize="cw", **kw), a.repeat)
    rows.append(("qdsim g2, numba", threads, a.tags, dt, True))
    numba.set_num_threads(1)
    try:
        dt1, h1 = best_time(lambda: g2(s, normalize="cw", **kw), a.repeat)
    finally:
        numba.set_num_threads(threads)
    rows.append(("qdsim g2, numba", 1, a.tags, dt1, bool(np.array_equal(h1, ref))))

    # NumPy kernel (searchsorted + bincount)
    dtn, hn = best_time(
        lambda: correlate.correlate_counts(s, (0, 1), kernel="numpy", **kw)[0],
        max(1, a.repeat // 2),
    )
    rows.append(
        ("NumPy searchsorted+bincount", 1, a.tags, dtn, bool(np.array_equal(hn, ref["counts"])))
    )

    # pycorrelate (subset)
    py_note = "not installed"
    try:
        import pycorrelate

        py_note = f"pycorrelate {getattr(pycorrelate, '__version__', '?')}"
        n = min(a.pycorrelate_tags, a.tags)
        sub = make_stream(n, a.rate_cps, seed=1)
        ta = sub.time_ps[sub.channel == 0]
        tb = sub.time_ps[sub.channel == 1]
        _, W, _ = correlate.g2_bins(a.bin_ps, a.window_ps)
        edges = np.arange(-W, W + a.bin_ps, a.bin_ps)
        pycorrelate.pcorrelate(ta[:100], tb[:100], edges)  # compile
        dtp, gp = best_time(lambda: pycorrelate.pcorrelate(ta, tb, edges), 2)
        ours = correlate.correlate_counts(sub, (0, 1), **kw)[0]
        # pcorrelate returns counts / bin width, and its last bin excludes a delay of exactly +W
        theirs = np.rint(np.asarray(gp) * a.bin_ps).astype(np.int64)
        same = bool(np.array_equal(theirs[:-1], ours[:-1]) and 0 <= ours[-1] - theirs[-1])
        rows.append(("pycorrelate.pcorrelate", 1, n, dtp, same))
    except ImportError:
        pass

    numba_rate = a.tags / dt
    table = []
    for name, th, n, t, ok in rows:
        rate = n / t
        table.append(
            {
                "method": name,
                "threads": th,
                "tags": n,
                "seconds": t,
                "tags_per_s": rate,
                "numba_speedup": numba_rate / rate,
                "counts_equal": ok,
            }
        )
    info = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.platform(),
        "cpu_count": os.cpu_count(),
        "numba_threads": threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "rate_cps_per_detector": a.rate_cps,
        "bin_ps": a.bin_ps,
        "window_ps": a.window_ps,
        "n_bins": int(ref.sizes["delay"]),
        "pairs_counted": int(ref["counts"].sum()),
        "first_call_s": first,
        "pycorrelate": py_note,
        "results": table,
    }
    print(
        f"g2 throughput: {a.tags:,} tags, {a.rate_cps:,.0f} cps/detector, +-{a.window_ps} ps in "
        f"{a.bin_ps} ps bins ({info['n_bins']} bins), {info['pairs_counted']:,} pairs; "
        f"first call (compile/cache) {first:.2f} s; {os.cpu_count()} CPUs"
    )
    print(
        f"{'method':32s} {'thr':>3s} {'tags':>12s} {'s':>8s} {'M tags/s':>9s} {'numba x':>8s} equal"
    )
    for r in table:
        print(
            f"{r['method']:32s} {r['threads']:3d} {r['tags']:12,d} {r['seconds']:8.4f} "
            f"{r['tags_per_s'] / 1e6:9.1f} {r['numba_speedup']:8.1f} {r['counts_equal']}"
        )
    OUT.mkdir(exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    path = OUT / f"g2_throughput_{stamp}.json"
    path.write_text(json.dumps(info, indent=2))
    print(f"wrote {path}")
    return info


if __name__ == "__main__":
    main()
