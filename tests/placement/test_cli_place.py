"""`qdsim place DOTS.toml`: the netCDF with a `dot` dim equals direct `qdsim.place` calls, the
figures are PNGs, bad input is one `qdsim: error:` line with exit status 2."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import qdsim
from qdsim.placement import GridSpec

SMALL = GridSpec(n_radius=64, n_x=48, n_slices=4, n_exchange=8)
GRID_ARGS = ["--grid-radius", "64", "--grid-x", "48", "--grid-slices", "4", "--grid-exchange", "8"]

DOTS = """
[[dot]]
name = "dot 3"
energy_eV = [1.8167, 0.0005]
dark_bright_eV = [1.45e-3, 0.08e-3]

[[dot]]
name = "dot 1"
energy_eV = [1.922, 0.0005]
"""


def run_cli(args, capsys):
    from qdsim.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("placement_cache")


@pytest.fixture(scope="module")
def placed(tmp_path_factory, cache):
    """One CLI run on a TOML of numbers with -o and --plot (module scope: ~10 s)."""
    from qdsim.cli import main

    d = tmp_path_factory.mktemp("place")
    toml = d / "dots.toml"
    toml.write_text(DOTS)
    nc, png = d / "placement.nc", d / "placement.png"
    main(["place", str(toml), "-o", str(nc), "--plot", str(png), "--cache", str(cache), *GRID_ARGS])
    return d, nc, png


def test_netcdf_matches_direct_place(placed, cache):
    _, nc, _ = placed
    ds = xr.load_dataset(nc)
    assert list(ds["dot"].values) == ["dot 3", "dot 1"]
    assert ds["diameter"].dims == ("dot", "draw")
    direct = {
        "dot 3": qdsim.place(
            energy_eV=(1.8167, 0.0005),
            dark_bright_eV=(1.45e-3, 0.08e-3),
            grid=SMALL,
            cache=cache,
            name="dot 3",
        ),
        "dot 1": qdsim.place(energy_eV=(1.922, 0.0005), grid=SMALL, cache=cache, name="dot 1"),
    }
    for name, p in direct.items():
        sub = ds.sel(dot=name)
        assert float(sub["diameter_nm"]) == pytest.approx(p.diameter_nm, rel=1e-12)
        assert float(sub["x_median"]) == pytest.approx(p.x, rel=1e-12)
        assert (float(sub["diameter_lo_nm"]), float(sub["diameter_hi_nm"])) == pytest.approx(
            p.diameter_interval_nm, rel=1e-12
        )
        assert (float(sub["x_lo"]), float(sub["x_hi"])) == pytest.approx(p.x_interval, rel=1e-12)
        assert int(sub["degenerate"]) == int(p.degenerate)
        np.testing.assert_allclose(sub["x"].values, p.samples["x"].values)
    assert np.isnan(float(ds.sel(dot="dot 1")["measured_dark_bright_eV"]))
    assert float(ds.sel(dot="dot 3")["measured_dark_bright_eV"]) == pytest.approx(1.45e-3)


def test_plots_are_pngs(placed):
    d, _, png = placed
    files = [png, d / "placement_dot_3_corner.png", d / "placement_dot_1_corner.png"]
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f


def test_plot_verb_overlays_dots(placed, tmp_path, capsys):
    _, nc, _ = placed
    # the axes of `qdsim place --plot`: its compiled solver is reused
    pd = qdsim.phase_diagram(np.geomspace(1.5, 8.0, 40), np.linspace(0.0, 0.6, 25))
    pd.to_netcdf(tmp_path / "pd.nc", engine="h5netcdf")
    for extra in ([], ["--map", "emission_energy"]):
        out = tmp_path / f"pd{len(extra)}.png"
        code, _, err = run_cli(
            ["plot", tmp_path / "pd.nc", "--dots", nc, "-o", out, *extra], capsys
        )
        assert code == 0, err
        assert out.read_bytes()[:4] == b"\x89PNG"
    code, _, err = run_cli(["plot", tmp_path / "pd.nc", "--dots", tmp_path / "pd.nc"], capsys)
    assert code == 2 and err.startswith("qdsim: error: --dots") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('[[dot]]\nname = "a"\nenergy_eV = [1.8, 0.001]\nenergy = 1.8\n', "unknown key"),
        ('[[dot]]\nname = "a"\nptu = "missing.ptu"\n', "no such file"),
        ('[[dot]]\nname = "a"\nenergy_eV = [1816.7, 0.5]\n', "looks like meV"),
        ('[[dot]]\nname = "a"\n', "no measurement"),
        ('[[dot]]\nname = "a"\nenergy_eV = 1.8\n', "[value, 1-sigma]"),
        ('[[dots]]\nname = "a"\n', "unknown top-level key"),
        ('[[dot]]\nname = "a"\nenergy_eV = [3.9, 0.001]\n', "cannot be produced"),
    ],
)
def test_bad_input_one_line_exit_2(body, needle, tmp_path, cache, capsys):
    toml = tmp_path / "dots.toml"
    toml.write_text(body)
    code, _, err = run_cli(["place", toml, "--cache", cache, *GRID_ARGS], capsys)
    assert code == 2
    assert err.startswith("qdsim: error:") and err.count("\n") == 1, err
    assert needle in err


def test_bad_ansatz_one_line_exit_2(tmp_path, capsys):
    toml = tmp_path / "dots.toml"
    toml.write_text('[[dot]]\nname = "a"\nenergy_eV = [1.8, 0.001]\n')
    code, _, err = run_cli(["place", toml, "--ansatz", "exact"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "--ansatz: expected product or correlated, got 'exact'" in err


def test_missing_toml(tmp_path, capsys):
    code, _, err = run_cli(["place", tmp_path / "nope.toml"], capsys)
    assert code == 2 and "no such file" in err and err.count("\n") == 1


LINES = """field_T,energy_eV,polarization
0,1.816565,perp
0,1.816835,perp
6,1.8174,
6,1.8171,pi
6,1.8165,
6,1.8155,pi
7,1.8177,sigma+
7,1.8167,sigma-
"""


def test_files_ptu_and_zeeman_lines(tmp_path, cache, capsys):
    """A T3 photon file gives the lifetime (fit printed; g2 skipped: one channel), a line table
    the splitting (fit printed); the placement uses them (recorded in the netCDF)."""
    from tests.analysis.synth_photons import decay_t3, write_t3_ptu

    s, _ = decay_t3(4, n_photons=50_000)
    write_t3_ptu(tmp_path / "dot5.ptu", s, 8)
    (tmp_path / "lines.csv").write_text(LINES)
    toml = tmp_path / "dots.toml"
    toml.write_text(
        '[[dot]]\nname = "dot 5"\nptu = "dot5.ptu"\n\n'
        '[[dot]]\nname = "dot 3"\nzeeman_lines = "lines.csv"\nzeeman_sigma_eV = 5e-5\n'
        "zeeman_fix = {split_z_eV = 0.0}\n"
    )
    nc = tmp_path / "p.nc"
    code, out, err = run_cli(["place", toml, "-o", nc, "--cache", cache, *GRID_ARGS], capsys)
    assert code == 0, err
    assert "lifetime (dot5.ptu): tau = 2" in out and "g2 (dot5.ptu): skipped" in out
    assert "zeeman (lines.csv, 8 lines)" in out
    ds = xr.load_dataset(nc)
    tau = float(ds.sel(dot="dot 5")["measured_lifetime_s"])
    assert 200e-12 < tau < 300e-12  # the source's 246 ps
    db = float(ds.sel(dot="dot 3")["measured_dark_bright_eV"])
    assert db == pytest.approx(1.45e-3, abs=0.1e-3)  # studies/10: 1.45 +- 0.08 meV
