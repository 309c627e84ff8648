"""`qdsim place` with `zeeman_spectra`: magneto-PL spectra (camera files) instead of a line
table; their fitted lines give the splitting used by the placement."""

from __future__ import annotations

import pytest
import xarray as xr

from tests.analysis.test_cli_zeeman_spectra import write_series
from tests.placement.test_cli_place import GRID_ARGS, run_cli


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("placement_cache")


def _spectra_table(tmp_path) -> str:
    args = write_series(tmp_path, "spe3")  # --spectrum B=PATH pairs, 0..7 T
    items = [a.split("=", 1) for a in args[1::2]]
    return "{" + ", ".join(f'"{b}" = "{p}"' for b, p in items) + "}"


def test_zeeman_spectra_give_the_splitting(tmp_path, cache, capsys):
    toml = tmp_path / "dots.toml"
    toml.write_text(
        '[[dot]]\nname = "dot 6"\n'
        f"zeeman_spectra = {_spectra_table(tmp_path)}\n"
        'spectra_medium = "vacuum"\nzeeman_min_snr = 20\n'
    )
    nc = tmp_path / "p.nc"
    code, out, err = run_cli(["place", toml, "-o", nc, "--cache", cache, *GRID_ARGS], capsys)
    assert code == 0, err
    assert "zeeman (8 spectra, " in out
    ds = xr.load_dataset(nc)
    db = float(ds.sel(dot="dot 6")["measured_dark_bright_eV"])
    assert db == pytest.approx(1.5e-3, abs=0.05e-3)  # the spectra's model: 1.5 meV


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ('spectra_medium = "air"\nenergy_eV = [1.8, 0.001]\n', "spectra_medium without"),
        ('zeeman_spectra = {"six" = "B0.spe"}\n', "not a field in tesla"),
        ('zeeman_spectra = {"6" = "nope.spe"}\n', "no such file"),
        ('zeeman_spectra = {"6" = "B0.spe"}\nzeeman_lines = "B0.spe"\n', "not both"),
    ],
)
def test_zeeman_spectra_errors(tmp_path, cache, capsys, extra, needle):
    (tmp_path / "B0.spe").write_bytes(b"")
    toml = tmp_path / "dots.toml"
    toml.write_text('[[dot]]\nname = "a"\n' + extra)
    code, _, err = run_cli(["place", toml, "--cache", cache, *GRID_ARGS], capsys)
    assert code == 2 and err.startswith("qdsim: error:") and err.count("\n") == 1, err
    assert needle in err
