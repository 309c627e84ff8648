"""Points per chunk: the CPU default, an explicit `chunk_points`, and the accelerator policy from
the device's free memory and XLA's memory analysis of the kernel (issue 15: GPU batch runs).

The policy is a pure function of memory numbers, so it is tested here without a GPU; the bytes
per point come from a real XLA compile (slow test)."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

import qdsim
from qdsim.model.types import SolverConfig
from qdsim.sweep import phase_diagram as pd
from qdsim.sweep.phase_diagram import (
    DEFAULT_CHUNK,
    FALLBACK_CHUNK,
    MAX_CHUNK,
    MIN_CHUNK,
    chunk_for_memory,
)

GiB = 1 << 30
KEYS = ("a", "b")


class _FakeAccelerator:
    """What `_choose_chunk` reads of a JAX device: its platform and memory statistics."""

    platform = "gpu"

    def __init__(self, stats=None, fails=False):
        self.stats, self.fails = stats, fails

    def memory_stats(self):
        if self.fails:
            raise NotImplementedError("no memory statistics on this backend")
        return self.stats


def _no_probe(*args, **kwargs):
    raise AssertionError("no memory-analysis compile expected here")


def test_policy_largest_power_of_two_in_half_the_free_memory():
    stats = {"bytes_limit": 100 * GiB, "bytes_in_use": 20 * GiB}
    chunk, why = chunk_for_memory(1 << 24, 67e3, stats)
    fit = 0.5 * 80 * GiB / (67e3 * 5)  # 5 = `_IN_FLIGHT` dispatched ahead + 1 being collected
    assert chunk == 1 << int(np.log2(fit)) == 65536
    assert chunk * 67e3 * 5 <= 0.5 * 80 * GiB < 2 * chunk * 67e3 * 5
    assert "67.0 kB/point" in why and "80.00 GiB free" in why


def test_policy_caps_at_the_grid_and_at_max_chunk():
    huge = {"bytes_limit": 1 << 50}
    assert chunk_for_memory(1 << 30, 1.0, huge)[0] == MAX_CHUNK == 1 << 20
    assert chunk_for_memory(1000, 67e3, huge)[0] == 1024  # the power of two >= the points
    assert chunk_for_memory(1, 67e3, huge)[0] == 1


def test_policy_without_memory_statistics_falls_back():
    for stats in (None, {}, {"bytes_in_use": 5}):
        chunk, why = chunk_for_memory(1 << 20, 67e3, stats)
        assert chunk == FALLBACK_CHUNK and why.startswith("fallback")
    assert chunk_for_memory(1 << 20, None, {"bytes_limit": GiB})[0] == FALLBACK_CHUNK
    assert chunk_for_memory(100, None, None)[0] == 128  # capped at the grid all the same


def test_policy_tiny_memory_warns_and_keeps_the_minimum_chunk():
    with pytest.warns(RuntimeWarning, match="fewer than the minimum chunk"):
        chunk, why = chunk_for_memory(1 << 20, 67e3, {"bytes_limit": 10 << 20})
    assert chunk == MIN_CHUNK and "below the minimum" in why


def test_cpu_default_unchanged_and_compiles_nothing(monkeypatch):
    monkeypatch.setattr(pd, "_bytes_per_point", _no_probe)
    cpu = jax.devices("cpu")[0]
    cfg = SolverConfig()
    for dev in (None, cpu):  # None: JAX's default device, the CPU here
        assert pd._choose_chunk(None, 1 << 20, 1 << 16, dev, KEYS, cfg, False)[0] == DEFAULT_CHUNK
        assert pd._choose_chunk(None, 100, 100, dev, KEYS, cfg, False)[0] == 128
        assert pd._choose_chunk(None, 12, 12, dev, KEYS, cfg, False)[0] == 16
        assert pd._choose_chunk(None, 1, 1, dev, KEYS, cfg, False)[0] == 1


def test_explicit_chunk_wins_everywhere(monkeypatch):
    monkeypatch.setattr(pd, "_bytes_per_point", _no_probe)
    gpu = _FakeAccelerator({"bytes_limit": 100 * GiB})
    for dev in (None, gpu):
        assert pd._choose_chunk(256, 1 << 20, 1 << 16, dev, KEYS, SolverConfig(), False) == (
            256,
            "given (chunk_points)",
        )
    with pytest.raises(ValueError, match="chunk_points must be >= 1"):
        pd._choose_chunk(0, 10, 10, None, KEYS, SolverConfig(), False)


def test_accelerator_chunk_from_memory_capped_at_the_block(monkeypatch):
    calls = []

    def probe(dev, n_values, keys, config, with_mr):
        calls.append((dev, n_values, keys, config, with_mr))
        return 67e3

    monkeypatch.setattr(pd, "_bytes_per_point", probe)
    gpu = _FakeAccelerator({"bytes_limit": 100 * GiB, "bytes_in_use": 0})
    chunk, why = pd._choose_chunk(None, 1 << 24, 1 << 16, gpu, KEYS, SolverConfig(), True)
    assert chunk == 1 << 16 and why.startswith("memory:")  # memory allows 2^17: the block caps
    assert calls == [(gpu, 2, KEYS, SolverConfig(), True)]
    small = _FakeAccelerator({"bytes_limit": 4 * GiB, "bytes_in_use": GiB})
    chunk, _ = pd._choose_chunk(None, 1 << 24, 1 << 16, small, KEYS, SolverConfig(), False)
    assert chunk == 4096  # 1.5 GiB / (5 x 67 kB) = 4808 points


def test_accelerator_without_memory_statistics_compiles_nothing(monkeypatch):
    monkeypatch.setattr(pd, "_bytes_per_point", _no_probe)
    for gpu in (_FakeAccelerator(None), _FakeAccelerator(fails=True)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            chunk, why = pd._choose_chunk(None, 1 << 20, 1 << 16, gpu, KEYS, SolverConfig(), False)
        assert chunk == FALLBACK_CHUNK and why.startswith("fallback")


def test_dataset_records_the_chunk():
    R, X = np.linspace(2, 7, 2), np.linspace(0, 0.5, 4)
    ds = qdsim.phase_diagram(R, X, device="cpu")
    assert ds.attrs["chunk_points"] == 8 and ds.attrs["chunk_reason"].startswith("CPU default")
    given = qdsim.phase_diagram(R, X, chunk_points=8)
    assert given.attrs["chunk_reason"] == "given (chunk_points)"
    np.testing.assert_array_equal(ds.emission_energy.values, given.emission_energy.values)


@pytest.mark.slow
def test_memory_analysis_of_the_real_kernel_is_linear_in_the_points():
    """Real XLA (CPU): the compiled kernel's bytes per point are positive and about constant
    from 256 to 1024 points (measured: 66.7, 67.3, 70.9 kB at 128, 1024, 4096), which the
    policy assumes. Two compiles (~10-20 s)."""
    system = qdsim.load_system()
    keys = tuple(system.values)
    cpu = jax.devices("cpu")[0]
    small, large = (
        pd._bytes_per_point(cpu, len(keys), keys, SolverConfig(), False, probe=p)
        for p in (256, 1024)
    )
    assert 1e3 < small < 1e7 and 1e3 < large < 1e7
    assert 0.9 < large / small < 1.2
