#!/usr/bin/env bash
# GPU check of qdsim in one call of the lent device machine (an H200, no network, ~15 minutes of
# device time in all, machine start included): versions, the sweep benchmark at 1024^2 and
# 4096^2 on --device gpu, then the sweep and model tests on the GPU backend. Each step has its
# own timeout, so that the whole run stays under the 600 s limit of one call, and a failing step
# does not stop the others. Everything lands in $OUT (or ./gpu_out): log, JSON, test log.
#
# Two halves:
#   bash benchmarks/gpu_run.sh prepare   # HERE (network): download the wheels that the
#                                        # device image lacks into .whl/ (git-ignored)
#   bash benchmarks/gpu_run.sh           # THERE: run(command="bash benchmarks/gpu_run.sh",
#                                        #          carry=[".whl"], timeout_s=600)
#
# The device image has no network, so `pip install -e ".[gpu]"` (which needs PyPI) cannot run
# there; instead the image's own python3 (JAX with the CUDA plugin, xarray, typer, rich, numpyro,
# scipy, h5py, pytest, hypothesis) imports qdsim from the checkout (PYTHONPATH), and the few
# missing pure/cp312 wheels travel in .whl (a few MiB; the 64 MiB transfer limit forbids carrying
# this machine's .venv with a CUDA JAX in it). The spectroscopy readers (sif-parser, spexread:
# pydantic) and Dask are not carried: their tests are not run there.
set -u

WHEELS="zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 google-crc32c==1.9.0 h5netcdf==1.8.3
ptufile==2026.2.6 iminuit==2.33.0"

if [ "${1:-}" = "prepare" ]; then
    cd "$(dirname "$0")/.."
    exclude=$(git rev-parse --git-path info/exclude)
    grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
    mkdir -p .whl
    # shellcheck disable=SC2086
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl $WHEELS
    du -sh .whl
    exit
fi

cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
PY=${PY:-python3}
# overridable for a dry run on a CPU machine, e.g.
#   DEVICE=auto SIZE1=64 SIZE2=96 PLATFORM=cpu TESTS=tests/sweep/test_chunk_policy.py \
#   OUT=/tmp/gpu_dry bash benchmarks/gpu_run.sh
DEVICE=${DEVICE:-gpu} SIZE1=${SIZE1:-1024} SIZE2=${SIZE2:-4096} PLATFORM=${PLATFORM:-cuda}
TESTS=${TESTS:-tests/sweep tests/model}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# compiled kernels shared by the steps' processes (the benchmark runs a process per grid)
export JAX_COMPILATION_CACHE_DIR=/tmp/qdsim-jax-cache
exec > >(tee -a "$OUT/gpu_run.log") 2>&1

step() { echo; echo "=== $(date -u +%T) $*"; }

step "1. machine, versions, devices"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv || true
if ls .whl/*.whl >/dev/null 2>&1; then
    timeout 45 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/*.whl || echo "wheel install failed"
    export PYTHONPATH=$PWD:/tmp/site
else
    echo "no .whl/: run 'bash benchmarks/gpu_run.sh prepare' here first and carry .whl"
    export PYTHONPATH=$PWD
fi
timeout 45 "$PY" - <<'EOF' || echo "step 1 failed"
import jax, numpy, xarray
print("python", __import__("sys").version.split()[0], "jax", jax.__version__, "jaxlib",
      __import__("jaxlib").__version__, "numpy", numpy.__version__, "xarray", xarray.__version__)
print("devices", jax.devices(), "default backend", jax.default_backend())
d = jax.devices()[0]
try:
    s = d.memory_stats() or {}
    print("memory_stats", {k: s[k] for k in ("bytes_limit", "bytes_in_use") if k in s})
except Exception as e:  # noqa: BLE001
    print("memory_stats unavailable:", e)
import qdsim
print("qdsim", qdsim.__version__, "from", qdsim.__file__)
EOF

step "2. sweep benchmark, --device $DEVICE: $SIZE1^2 (zarr, memory)"
timeout 170 "$PY" benchmarks/sweep_scale.py --device "$DEVICE" --sizes "$SIZE1" \
    --modes zarr memory --out "$OUT/sweep_scale_$SIZE1.json" ||
    echo "step 2 failed or timed out (rc $?)"

step "3. sweep benchmark, --device $DEVICE: $SIZE2^2 (zarr)"
timeout 170 "$PY" benchmarks/sweep_scale.py --device "$DEVICE" --sizes "$SIZE2" --modes zarr \
    --out "$OUT/sweep_scale_$SIZE2.json" || echo "step 3 failed or timed out (rc $?)"

step "4. tests on JAX_PLATFORMS=$PLATFORM ($TESTS, not slow; stops at 150 s)"
extra=()
"$PY" -c "import pytest_timeout" 2>/dev/null && extra=(--timeout 120)
# shellcheck disable=SC2086
JAX_PLATFORMS=$PLATFORM timeout 150 "$PY" -m pytest $TESTS -m "not slow" -q \
    -p no:cacheprovider --ignore tests/sweep/test_distributed.py --durations 15 \
    "${extra[@]}" >"$OUT/pytest.log" 2>&1
echo "pytest rc $? (124: timed out); last lines:"
tail -n 25 "$OUT/pytest.log"

step "done"
