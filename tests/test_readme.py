"""The README's forward-model examples run as written (a user copies them first)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_forward_model_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files
    blocks = [
        b
        for b in _python_blocks()
        if "from qdsim import analysis" not in b and "qdsim.place(" not in b
    ]
    assert len(blocks) >= 4
    ns: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), ns)  # noqa: S102
    assert 1.72 < float(ns["s"].energy_eV) < 2.0
    assert ns["ds"].emission_energy.dims == ("radius", "x")
    assert np.isfinite(float(ns["dE_dR"])) and float(ns["dE_dR"]) < 0  # smaller dot, bluer
    assert ns["batch"].energy_eV.shape == (100,)
    assert float(ns["dE_dx"]) > 0  # more Br, larger gap


def test_placement_example_runs(tmp_path, monkeypatch):
    """The placement block as written, on a small grid (the default table takes ~1 min)."""
    from qdsim.placement import GridSpec
    from qdsim.placement import grid as pgrid

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QDSIM_CACHE_DIR", str(tmp_path))
    small = GridSpec(n_radius=64, n_x=48, n_slices=4, n_exchange=8)
    monkeypatch.setattr(pgrid, "GridSpec", lambda: small)
    (block,) = [b for b in _python_blocks() if "qdsim.place(" in b]
    ns: dict = {}
    exec(compile(block, str(README), "exec"), ns)  # noqa: S102
    p = ns["p"]
    assert p.diameter_interval_nm[0] < p.diameter_nm < p.diameter_interval_nm[1]
    assert (tmp_path / "dot.nc").is_file()
