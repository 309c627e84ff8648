"""Photon files -> g2, end to end, beside ptufile's own decoder: records per second, same run.

    python benchmarks/photon_decode.py [--records 20_000_000] [--repeat 5] [--quick]

A script, not a test. For each file, every method is timed `--repeat` times, the methods taking
turns round by round (so a slow spell of this shared machine hits all of them), and each keeps
its best time:

- `ptufile decode`: `PtuFile(path).decode_records()`, header parse and file read included:
  ptufile's own decoder (a compiled Cython loop), which yields raw records (times in ticks
  and overflow / marker records still in) and no absolute times;
- `read_photons`: the package's reader (numba kernel), absolute times in ps, sorted;
- `read_photons, NumPy decoder`: the same with `QDSIM_PHOTON_DECODER=numpy`, the decoder this
  replaces (kept as the reference the tests compare with);
- `file -> g2`: `g2(path)` with the defaults (channels 0, 1; 64 ps bins over +-50 ns; cw
  normalisation): what a user calls; decoding and counting are fused, the file's photons are
  never held in memory;
- `g2(read_photons)`: `g2(read_photons(path))`, the same through a whole-file `PhotonStream`.

Wall time is what counts, but on a machine shared with other jobs it mostly measures them; the
process CPU time of the same runs (all threads summed) is recorded beside it.

Files: the two real PTU files of `../shared/data` when present, and synthetic files written
here with `tests/analysis/ptu_writer.write_ptu` (records built vectorised): PicoHarp T2, two
detectors, `--records` records; HydraHarp v2 T3 with `--records // 2` records. Before timing,
the photon times are checked equal to ptufile's decode (ticks times the resolution; T3: sync
time plus micro time), so the rows compare the same work. Rates count every record of the file
(photons, overflows, markers). The table is printed and written as JSON to
`benchmarks/out/photon_decode_<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
OUT = HERE / "out"
DATA = (ROOT / ".." / "shared" / "data").resolve()

from tests.analysis import ptu_writer as w  # noqa: E402

# ptufile logs an out-of-order header tag of a real file on every open: keep the output readable
logging.getLogger("ptufile").setLevel(logging.ERROR)


def synthetic_t2(path: Path, n: int, seed: int = 0) -> Path:
    """PicoHarp T2 (4 ps ticks): two detectors at ~1 Mcps each, Poissonian; an overflow record
    (channel 15, low bits 0) wherever the 28-bit time tag wraps."""
    rng = np.random.default_rng(seed)
    wrap = w.PH_T2_WRAP
    mean_gap_ticks = 1e12 / 2e6 / 4  # 2 Mcps in all, 4 ps ticks
    ticks = np.cumsum(rng.exponential(mean_gap_ticks, n).astype(np.int64) + 1)
    period = ticks // wrap
    n_ph = int(np.searchsorted(np.arange(n) + period, n, side="left"))  # records <= n in all
    ticks, period = ticks[:n_ph], period[:n_ph]
    chan = rng.integers(0, 2, n_ph).astype(np.uint32)
    rec = np.empty(n_ph + int(period[-1]), np.uint32)
    # photon i sits after the period[i] overflow records before it
    pos = np.arange(n_ph) + period
    rec[pos] = (chan << np.uint32(28)) | (ticks % wrap).astype(np.uint32)
    is_ovf = np.ones(rec.size, bool)
    is_ovf[pos] = False
    rec[is_ovf] = np.uint32(0xF000_0000)
    return w.write_ptu(path, "PicoHarpT2", rec, global_resolution_s=4e-12)


def synthetic_t3(path: Path, n: int, seed: int = 1) -> Path:
    """HydraHarp v2 T3: 80 MHz laser (12.5 ns), 16 ps bins, two detectors, ~1 photon in 40 syncs
    (combined overflow records, count in the record, where syncs wrap past 1024)."""
    rng = np.random.default_rng(seed)
    wrap = w.HH_T3_WRAP
    sync = np.cumsum(rng.geometric(1 / 40, n).astype(np.int64))
    steps = np.diff(np.concatenate([[0], sync // wrap]))
    n_ph = int(np.searchsorted(np.arange(n) + np.cumsum(steps > 0), n, side="left"))
    sync, steps = sync[:n_ph], steps[:n_ph]
    has_ovf = steps > 0
    pos = np.arange(n_ph) + np.cumsum(has_ovf)
    rec = np.empty(n_ph + int(has_ovf.sum()), np.uint32)
    chan = rng.integers(0, 2, n_ph).astype(np.uint32)
    dtime = np.clip(rng.exponential(60.0, n_ph) + 50, 0, 780).astype(np.uint32)  # 1 ns decay
    rec[pos] = (chan << np.uint32(25)) | (dtime << np.uint32(10)) | (sync % wrap).astype(np.uint32)
    rec[pos[has_ovf] - 1] = np.uint32(0xFE00_0000) | steps[has_ovf].astype(np.uint32)
    return w.write_ptu(path, "HydraHarp2T3", rec, global_resolution_s=12.5e-9, resolution_s=16e-12)


def check_equal(path: Path) -> bool:
    """Photon times of `read_photons` equal ptufile's decode (converted to ps, time-sorted)."""
    import ptufile

    from qdsim.analysis import read_photons
    from qdsim.analysis.photons.io.reader import ticks_to_ps

    s = read_photons(path)
    with ptufile.PtuFile(path) as f:
        ref = f.decode_records()
    keep = ref["channel"] >= 0
    if s.micro_ps is None:
        t = ticks_to_ps(ref["time"][keep].astype(np.int64), s.resolution_ps)
        return bool(
            np.array_equal(s.time_ps, t) and np.array_equal(s.channel, ref["channel"][keep])
        )
    sync = ref["time"][keep].astype(np.int64)
    micro = np.rint(ref["dtime"][keep].astype(np.int64) * s.resolution_ps).astype(np.int64)
    t = ticks_to_ps(sync, s.sync_period_ps) + micro
    order = np.argsort(t, kind="stable")
    return bool(
        np.array_equal(s.time_ps, t[order])
        and np.array_equal(s.channel, ref["channel"][keep][order])
    )


def time_methods(path: Path, repeat: int) -> dict:
    import ptufile

    from qdsim.analysis import g2, read_photons

    def ptufile_decode():
        with ptufile.PtuFile(path) as f:
            return f.decode_records()

    def numpy_reader():
        os.environ["QDSIM_PHOTON_DECODER"] = "numpy"
        try:
            return read_photons(path)
        finally:
            del os.environ["QDSIM_PHOTON_DECODER"]

    methods = {
        "ptufile decode": ptufile_decode,
        "read_photons": lambda: read_photons(path),
        "file -> g2": lambda: g2(path),
        "g2(read_photons)": lambda: g2(read_photons(path)),
        "read_photons, NumPy decoder": numpy_reader,
    }
    for fn in methods.values():  # warm-up: numba cache load, page cache
        fn()
    best = dict.fromkeys(methods, np.inf)
    best_cpu = dict.fromkeys(methods, np.inf)
    for _ in range(repeat):
        for name, fn in methods.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
            best_cpu[name] = min(best_cpu[name], time.process_time() - c0)
    with ptufile.PtuFile(path) as f:
        n = int(f.number_records)
        rtype = f.record_type.name if hasattr(f.record_type, "name") else str(f.record_type)
    s = read_photons(path)
    return {
        "file": path.name,
        "record_type": rtype,
        "records": n,
        "photons": len(s),
        "seconds": best,
        "cpu_seconds": best_cpu,
        "ratio_g2_to_ptufile_cpu": best_cpu["file -> g2"] / best_cpu["ptufile decode"],
        "ratio_read_to_ptufile_cpu": best_cpu["read_photons"] / best_cpu["ptufile decode"],
        "records_per_s": {k: n / v for k, v in best.items()},
        "ratio_g2_to_ptufile": best["file -> g2"] / best["ptufile decode"],
        "ratio_read_to_ptufile": best["read_photons"] / best["ptufile decode"],
        "ratio_g2_read_to_ptufile": best["g2(read_photons)"] / best["ptufile decode"],
        "ratio_g2_read_to_ptufile_cpu": best_cpu["g2(read_photons)"] / best_cpu["ptufile decode"],
        "times_equal_ptufile": check_equal(path),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=20_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    a = ap.parse_args(argv)
    if a.quick:
        a.records, a.repeat = 400_000, 2

    import numba
    import ptufile

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = [DATA / n for n in ("bischof_picoharp_v30_t2.ptu", "bischof_hydraharp_v20_t3.ptu")]
        files = [p for p in files if p.is_file()]
        files.append(synthetic_t2(Path(tmp) / "synthetic_t2.ptu", a.records))
        files.append(synthetic_t3(Path(tmp) / "synthetic_t3.ptu", a.records // 2))
        for p in files:
            rows.append(time_methods(p, a.repeat))
    info = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "ptufile": ptufile.__version__,
        "repeat": a.repeat,
        "results": rows,
    }
    names = list(rows[0]["seconds"])
    print(
        f"photon files -> g2, best of {a.repeat}, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.1f}' for x in info['load_average'])}; M records/s (ms)"
    )
    print(
        "| file | records | " + " | ".join(names) + " | g2 / ptufile | g2(read_photons) / "
        "ptufile | read / ptufile |"
    )
    print("|---" * (len(names) + 5) + "|")
    for r in rows:
        cells = [f"{r['records_per_s'][k] / 1e6:.0f} ({r['seconds'][k] * 1e3:.1f})" for k in names]
        print(
            f"| {r['file']} | {r['records']:,} | " + " | ".join(cells) + f" | "
            f"{r['ratio_g2_to_ptufile']:.2f} | {r['ratio_g2_read_to_ptufile']:.2f} | "
            f"{r['ratio_read_to_ptufile']:.2f} |"
            + ("" if r["times_equal_ptufile"] else " NOT EQUAL")
        )
    print(
        "CPU time of the process (all threads), best of the same runs: less sensitive to other "
        "jobs on the machine; ms"
    )
    print(
        "| file | " + " | ".join(names) + " | g2 / ptufile | g2(read_photons) / ptufile | "
        "read / ptufile |"
    )
    print("|---" * (len(names) + 4) + "|")
    for r in rows:
        cells = [f"{r['cpu_seconds'][k] * 1e3:.1f}" for k in names]
        print(
            f"| {r['file']} | " + " | ".join(cells) + f" | {r['ratio_g2_to_ptufile_cpu']:.2f} | "
            f"{r['ratio_g2_read_to_ptufile_cpu']:.2f} | {r['ratio_read_to_ptufile_cpu']:.2f} |"
        )
    OUT.mkdir(exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    path = OUT / f"photon_decode_{stamp}.json"
    path.write_text(json.dumps(info, indent=2, default=float))
    print(f"wrote {path}")
    return info


if __name__ == "__main__":
    main()
