"""`qdsim zeeman lines.csv`: CSV parsing, the fit it runs, outputs, the fan plot, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as hst

from qdsim import analysis
from qdsim.cli import main
from tests.analysis.test_zeeman import TRUTH  # the dot-3-like fan of the Zeeman tests

# the paper's dot 3 (physics.md C.4), energies rounded to 0.1 meV -> sigma 0.05 meV
DOT3 = """# dot 3, Zhang et al., Fig. 3 (0 T doublet centred on 1.8167 eV, split 270 ueV)
field_T,energy_eV,sigma_eV,polarization
0,1.816565,5e-5,perp
0,1.816835,5e-5,perp
6,1.8174,5e-5,
6,1.8171,5e-5,pi
6,1.8165,5e-5,
6,1.8155,5e-5,pi
7,1.8177,5e-5,sigma+
7,1.8167,5e-5,sigma-
"""


def synthetic_csv(path, seed=0, sigma=2e-5):
    fields = np.arange(0.0, 7.01, 1.0)
    st = analysis.zeeman_states(TRUTH, fields)
    rng = np.random.default_rng(seed)
    rows = ["field_T,energy_eV,sigma_eV"]
    for i, b in enumerate(fields):
        for j in range(4):
            if st.bright[i, j] > 0.02:
                e = st.energy_eV[i, j] + rng.normal(0, sigma)
                rows.append(f"{b},{e:.9f},{sigma}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_fit_table_json_and_netcdf(tmp_path, capsys):
    csv = synthetic_csv(tmp_path / "lines.csv")
    out = tmp_path / "res.json"
    main(["zeeman", str(csv), "-o", str(out)])
    text = capsys.readouterr().out
    assert "g_X" in text and "Δ_DB" in text and "χ²_red" in text
    d = json.loads(out.read_text())
    assert abs(d["params"]["g_X"] - 2.6) < 4 * d["stderr"]["g_X"]
    assert abs(d["params"]["dark_bright_eV"] - 1.5e-3) < 4 * d["stderr"]["dark_bright_eV"]
    # the CLI runs exactly the library fit
    raw = np.genfromtxt(csv, delimiter=",", names=True)
    lib = analysis.fit_zeeman(raw["field_T"], raw["energy_eV"], raw["sigma_eV"])
    assert d["params"]["g_X"] == pytest.approx(lib.g_X, rel=1e-12)
    nc = tmp_path / "res.nc"
    main(["zeeman", str(csv), "-o", str(nc)])
    ds = xr.load_dataset(nc, engine="h5netcdf")
    assert float(ds["value"].sel(parameter="g_X")) == pytest.approx(lib.g_X, rel=1e-12)


def test_dot3_with_fix_and_plot(tmp_path, capsys):
    """The paper's dot 3 lines: the Z/D pair at one field needs a fixed parameter; the fan
    plot shows the data where they are (E - E_bright in meV)."""
    csv = tmp_path / "dot3.csv"
    csv.write_text(DOT3)
    png = tmp_path / "fan.png"
    main(["zeeman", str(csv), "--fix", "g_e_minus_g_h=2.0", "--plot", str(png)])
    text = capsys.readouterr().out
    assert "fixed" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # without a fixed parameter the undetermined ones are reported, not hidden
    main(["zeeman", str(csv)])
    text = capsys.readouterr().out
    assert "not determined" in text and "∞" in text


def test_plot_fan_places_data_and_model():
    from qdsim.plotting.zeeman import plot_zeeman_fan

    fields = np.array([0.0, 2.0, 4.0, 6.0])
    st = analysis.zeeman_states(TRUTH, fields)
    keep = st.bright.ravel() > 0.02
    B = np.repeat(fields, 4)[keep]
    E = st.energy_eV.ravel()[keep]
    res = analysis.fit_zeeman(B, E, 1e-5)
    for relative in (False, True):
        fig = plot_zeeman_fan(res, relative=relative)
        ax = fig.axes[0]
        pts = np.array(
            [
                ln.get_xydata()[0]
                for ln in ax.get_lines()
                if ln.get_marker() in {"o", "^", "v", "s", "D"}
            ]
        )
        ref = analysis.zeeman_energies(res, B).energy_eV.mean(axis=1) if relative else res.bright_eV
        np.testing.assert_allclose(np.sort(pts[:, 1]), np.sort((E - ref) * 1e3), atol=1e-9)
        # model curves reach every level at the largest field
        curves = [ln.get_xydata() for ln in ax.get_lines() if ln.get_linestyle() == "-"]
        ends = sorted(c[-1, 1] for c in curves if c[-1, 0] == max(c[-1, 0] for c in curves))
        assert len(ends) == 4


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("field,energy_eV\n0,1.8\n", [], "unknown column"),
        ("energy_eV\n1.8\n", [], "missing column"),
        ("field_T,energy_eV\n0,abc\n", [], "not a number"),
        ("field_T,energy_eV,sigma_eV\n0,1.8,\n1,1.81,1e-5\n", [], "--sigma"),
        ("field_T,energy_eV\n6,1.8\n6,1.801\n6,1.802\n", ["--sigma", "1e-5"], "one field"),
        (DOT3, ["-o", "res.txt"], ".nc or .json"),
        (DOT3, ["--fix", "g_X"], "NAME=VALUE"),
        (DOT3, ["--fix", "gx=2"], "unknown parameter"),
        (DOT3, ["--offset", "relative"], "offset"),
    ],
)
def test_errors_exit_2_with_one_line(tmp_path, capsys, content, args, message):
    csv = tmp_path / "lines.csv"
    csv.write_text(content)
    args = [a if a != "res.txt" else str(tmp_path / a) for a in args]
    with pytest.raises(SystemExit) as exc:
        main(["zeeman", str(csv), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["zeeman", str(tmp_path / "nope.csv")])
    assert exc.value.code == 2
    assert "no such file" in capsys.readouterr().err


@settings(max_examples=40, deadline=None)
@given(
    rows=hst.lists(
        hst.tuples(
            hst.floats(-20, 20, allow_nan=False),
            hst.floats(0.5, 4.0, allow_nan=False),
            hst.one_of(hst.none(), hst.floats(1e-7, 1e-3)),
            hst.sampled_from(["", "sigma+", "sigma-", "pi", "perp", "σ+", "XY"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_csv_parser_round_trip(tmp_path_factory, rows):
    """Any table written in the documented format reads back exactly (repr round trip)."""
    from qdsim.analysis.spectroscopy.zeeman import parse_polarization
    from qdsim.cli.zeeman import read_lines_csv

    path = tmp_path_factory.mktemp("csv") / "lines.csv"
    text = "# comment\nfield_T,energy_eV,sigma_eV,polarization\n"
    text += "".join(f"{b!r},{e!r},{'' if s is None else repr(s)},{p}\n" for b, e, s, p in rows)
    path.write_text(text, encoding="utf-8")
    got = read_lines_csv(path)
    assert got["field_T"] == [b for b, _, _, _ in rows]
    assert got["energy_eV"] == [e for _, e, _, _ in rows]
    sig = [np.nan if s is None else s for _, _, s, _ in rows]
    np.testing.assert_array_equal(got["sigma_eV"], sig)
    assert list(parse_polarization(got["polarization"], len(rows))) == [
        {"σ+": "sigma+", "XY": "perp"}.get(p, p) for *_, p in rows
    ]
