"""Shared fixtures of the placement tests: a small grid and a per-session table cache."""

from __future__ import annotations

import pytest

from qdsim.placement import GridSpec

#: Small enough to build in seconds, fine enough for the tests' tolerances.
SMALL = GridSpec(n_radius=96, n_x=64, n_slices=16, n_exchange=16)


@pytest.fixture(scope="session")
def table_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("placement-cache")
