"""Float64 whatever the user's JAX settings (architecture.md §3.4).

A fresh interpreter with JAX_ENABLE_X64=0 (the JAX default): importing qdsim leaves the flag
off, phase_diagram and solve_sphere give the same numbers as a JAX_ENABLE_X64=1 interpreter to
1e-12, a float32 trace raises, and `qdsim.float64()` makes it work without leaking the setting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, math, jax, jax.numpy as jnp, numpy as np
x64_at_start = bool(jax.config.jax_enable_x64)
import qdsim
out = {"x64_after_import": bool(jax.config.jax_enable_x64), "x64_at_start": x64_at_start}
ds = qdsim.phase_diagram(radius_nm=[2.5, 5.0], x=[0.1, 0.35])
out["emission"] = ds.emission_energy.values.ravel().tolist()
out["splitting"] = ds.dark_bright_splitting.values.ravel().tolist()
p = qdsim.load_system().sphere_params(0.3)
s = qdsim.solve_sphere(p, 5.0)
out["energy"] = float(s.energy_eV); out["lam"] = float(s.lam_nm)
out["dtype"] = str(s.energy_eV.dtype)
out["sum_outside_context"] = float(s.energy_eV * 1e3 - 1775.0)
try:
    jax.grad(lambda r: qdsim.solve_sphere(p, r).energy_eV)(5.0)
    out["float32_trace"] = "no error"
except TypeError as e:
    out["float32_trace"] = str(e)
with qdsim.float64():
    g = jax.grad(lambda r: qdsim.solve_sphere(p, r).energy_eV)(5.0)
out["grad"] = float(g); out["grad_dtype"] = str(g.dtype)
out["x64_at_end"] = bool(jax.config.jax_enable_x64)
print(json.dumps(out))
"""


def _run(x64: str) -> dict:
    env = dict(os.environ, JAX_ENABLE_X64=x64, JAX_PLATFORMS="cpu")
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs():
    return _run("0"), _run("1")


def test_import_does_not_touch_the_flag(runs):
    f32, f64 = runs
    assert f32["x64_at_start"] is False and f32["x64_after_import"] is False
    assert f32["x64_at_end"] is False
    assert f64["x64_after_import"] is True


def test_float32_default_gives_float64_results(runs):
    f32, f64 = runs
    assert f32["dtype"] == "float64"
    for key in ("emission", "splitting"):
        assert f32[key] == pytest.approx(f64[key], rel=1e-12, abs=0)
    assert f32["energy"] == pytest.approx(f64["energy"], rel=1e-14)
    assert f32["lam"] == pytest.approx(f64["lam"], rel=1e-12)
    # NumPy outputs keep full precision in later arithmetic (a float32 JAX array would not)
    assert f32["sum_outside_context"] == pytest.approx(f64["sum_outside_context"], abs=1e-10)


def test_float32_trace_raises_and_context_fixes_it(runs):
    f32, f64 = runs
    assert "qdsim needs float64" in f32["float32_trace"]
    assert f64["float32_trace"] == "no error"
    assert f32["grad_dtype"] == "float64"
    assert f32["grad"] == pytest.approx(f64["grad"], rel=1e-12)
