"""Fixtures for the analysis tests: the real sample files of ../shared/data (skipped when absent)
and the PicoQuant file writer (`tests/analysis/ptu_writer.py`, also importable as
`tests.analysis.ptu_writer`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.analysis import ptu_writer as _ptu_writer

DATA_DIR = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()


@pytest.fixture
def data_file():
    """`data_file(name)` -> path of a real sample file; skips the test when it is absent."""

    def get(name: str) -> Path:
        path = DATA_DIR / name
        if not path.is_file():
            pytest.skip(f"sample data file {path} not present")
        return path

    return get


@pytest.fixture
def ptu_writer():
    """The writer module: encode_t2/encode_t3, write_ptu, write_phu, legacy writers."""
    return _ptu_writer
