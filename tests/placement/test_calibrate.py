"""qdsim.calibrate: shared constants from many simulated dots, written back as a materials file
(issue 13 item 3)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import qdsim
from qdsim.placement import GridSpec, PlacementError, calibrate
from qdsim.placement.forward import predict_batch
from qdsim.placement.priors import system_priors

ROOT = Path(__file__).resolve().parents[2]
GRID = GridSpec(n_radius=96, n_x=64, n_slices=16, n_exchange=128)


def _dots(n, seed, theta):
    """n dots sharing `theta`, sizes and compositions from the priors, all three measurements
    with 0.5 meV, 15 % and 10 % errors (plus the engines' model errors, added to the noise)."""
    system = qdsim.load_system()
    pri = system_priors(system)
    rng = np.random.default_rng(seed)
    m = 4 * n
    r = pri["diameter"].ppf(rng.random(m)) / 2
    x = rng.uniform(0.0, 0.6, m)
    args = [theta[k] for k in ("f_v", "bowing_Eg", "mass_ratio", "dSR", "hwLT")]
    p = predict_batch(system, r, x, *args)
    keep = np.flatnonzero(p.ok)[:n]
    e, d, t = p.energy_eV[keep], p.dark_bright_eV[keep], p.lifetime_s[keep]
    s_e, s_d, s_t = 0.5e-3, 0.15 * d, 0.10 * t
    se = math.hypot(0.5e-3, 0.5e-3)
    e = e + se * rng.standard_normal(n)
    d = d + np.hypot(s_d, 0.1 * d) * rng.standard_normal(n)
    t = t + np.hypot(s_t, 0.1 * t) * rng.standard_normal(n)
    return [
        {
            "name": f"sim {i}",
            "energy_eV": (e[i], s_e),
            "dark_bright_eV": (d[i], s_d[i]),
            "lifetime_s": (t[i], s_t[i]),
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    theta = {"f_v": 0.55, "bowing_Eg": 0.0, "mass_ratio": 1.0, "dSR": 2e-4, "hwLT": 2.0e-3}
    dots = _dots(15, 5, theta)
    cal = calibrate(dots, grid=GRID, cache=tmp_path_factory.mktemp("cal"))
    return theta, cal


def test_calibration_recovers_the_shared_transition_dipole(result):
    """15 dots pin hwLT (the dipole behind both the lifetimes and the long-range exchange):
    the truth lies in the 95 % interval and the interval is far narrower than the prior's."""
    theta, cal = result
    lo, hi = np.quantile(cal.samples["hwLT"], [0.025, 0.975])
    assert lo <= theta["hwLT"] <= hi
    prior = system_priors(qdsim.load_system())["hwLT"]
    p_lo, p_hi = prior.interval(0.95)
    assert (hi - lo) < 0.5 * (p_hi - p_lo)
    assert cal.effective_draws > 5 and len(cal.dots) == 15


def test_calibration_written_back_is_a_valid_system_used_by_place(result, tmp_path):
    _, cal = result
    mats = tmp_path / "materials"
    shutil.copytree(ROOT / "materials", mats)
    path = cal.to_materials(mats / "systems" / "calibrated.toml")
    sys2 = qdsim.load_system("calibrated", materials_dir=mats)
    assert sys2.values["hwLT_x0"] == pytest.approx(cal.median["hwLT"])
    entry = next(e for e in sys2.entries if e["key"] == "hwLT_x0")
    assert entry["status"] == "derived" and "qdsim.calibrate" in entry["source"]
    pri = system_priors(sys2)
    assert pri["hwLT"].center == pytest.approx(cal.median["hwLT"])
    assert path.read_text().startswith("# Calibrated by qdsim.calibrate over 15 dots")


def test_calibrate_refuses_bad_dots():
    with pytest.raises(PlacementError, match="at least one dot"):
        calibrate([])
    with pytest.raises(PlacementError, match="unknown key"):
        calibrate([{"energy": (1.8, 1e-3)}], grid=GRID, cache=False)
