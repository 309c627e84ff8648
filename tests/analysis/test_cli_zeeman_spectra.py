"""`qdsim zeeman --spectrum FIELD_T=PATH`: magneto-PL spectra (camera files or text) instead of
a line table; their lines are fitted and enter the Zeeman fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qdsim import analysis
from qdsim.analysis.spectroscopy.spectra import HC_eV_nm
from qdsim.cli import main
from qdsim.cli.zeeman import lines_from_spectra, read_lines_csv
from tests.analysis import spectrum_writer as sw
from tests.analysis.test_zeeman import TRUTH  # the dot-3-like fan of the Zeeman tests


def write_series(tmp_path, kind="spe3"):
    """One spectrum per field 0..7 T: Gaussian lines (30 ueV) at the model's bright levels,
    heights by their bright fraction, Poisson counts on a flat background; a vacuum-wavelength
    calibration of 1340 pixels over 680-685 nm."""
    fields = np.arange(0.0, 7.01, 1.0)
    st = analysis.zeeman_states(TRUTH, fields)
    lam = np.linspace(680.0, 685.0, 1340)
    energy = HC_eV_nm / lam
    rng = np.random.default_rng(0)
    args = []
    for i, b in enumerate(fields):
        y = np.full(lam.size, 50.0)
        for j in range(4):
            if st.bright[i, j] > 0.02:
                y += (
                    3000
                    * st.bright[i, j]
                    * np.exp(-0.5 * ((energy - st.energy_eV[i, j]) / 3e-5) ** 2)
                )
        counts = rng.poisson(y)
        if kind == "spe3":
            path = sw.write_spe3(tmp_path / f"B{b:g}.spe", counts.astype(np.uint16), lam)
        elif kind == "sif":  # SIF calibrations are polynomials of the pixel number 1..n
            coef = (680.0 - 5.0 / 1339, 5.0 / 1339, 0.0, 0.0)
            path = sw.write_sif(tmp_path / f"B{b:g}.sif", counts.astype(np.float32), coef)
        else:
            path = tmp_path / f"B{b:g}.csv"
            rows = "\n".join(f"{x:.6f},{c}" for x, c in zip(lam, counts, strict=True))
            path.write_text("wavelength_nm,counts\n" + rows + "\n")
        args += ["--spectrum", f"{b:g}={path}"]
    return args


def test_spectra_to_zeeman_fit(tmp_path, capsys):
    args = write_series(tmp_path, "spe3")
    out, table = tmp_path / "res.json", tmp_path / "lines.csv"
    main(["zeeman", *args, "--medium", "vacuum", "--shape", "gaussian", "--min-snr", "20",
          "--lines-out", str(table), "-o", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    assert "Zeeman fit of 8 spectra" in text
    res = json.loads(out.read_text())
    assert res["params"]["g_X"] == pytest.approx(2.6, abs=0.05)
    assert res["params"]["dark_bright_eV"] == pytest.approx(1.5e-3, abs=0.05e-3)
    assert res["params"]["gamma_dia_eV_T2"] == pytest.approx(8e-6, abs=0.5e-6)
    # the fitted line table reads back as a line table, and the fit from it is the same
    lines = read_lines_csv(table)
    assert set(lines["field_T"]) == set(np.arange(8.0))
    assert all(s > 0 for s in lines["sigma_eV"])
    main(["zeeman", str(table), "-o", str(tmp_path / "res2.json")])
    res2 = json.loads((tmp_path / "res2.json").read_text())
    assert res2["params"]["g_X"] == pytest.approx(res["params"]["g_X"], rel=1e-4)


@pytest.mark.parametrize("kind", ["sif", "csv"])
def test_same_lines_from_sif_and_text_spectra(tmp_path, kind):
    """The same counts as SIF (polynomial calibration) or as a text table give the lines of the
    SPE 3.0 series (SPE: per-pixel wavelength array)."""
    kw = {"medium": "vacuum", "unit": None, "peaks": None, "window": None}
    kw |= {"shape": "gaussian", "min_snr": 20.0}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ref = lines_from_spectra(write_series(tmp_path / "a", "spe3")[1::2], **kw)
    got = lines_from_spectra(write_series(tmp_path / "b", kind)[1::2], **kw)
    assert got["field_T"] == ref["field_T"]
    np.testing.assert_allclose(got["energy_eV"], ref["energy_eV"], rtol=0, atol=2e-8)
    np.testing.assert_allclose(got["sigma_eV"], ref["sigma_eV"], rtol=0.05)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--spectrum", "six=x.spe"], "FIELD_T=PATH"),
        (["--spectrum", "6"], "FIELD_T=PATH"),
        (["--spectrum", "6=nope.spe"], "no such file"),
        (["--window", "1.8"], "LO,HI"),
    ],
)
def test_spectrum_option_errors(tmp_path, capsys, extra, message):
    args = write_series(tmp_path)[:2]
    with pytest.raises(SystemExit) as exc:
        main(["zeeman", *args, "--medium", "vacuum", *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_spectrum_file_problems_name_the_file(tmp_path, capsys):
    args = write_series(tmp_path)[:4]
    with pytest.raises(SystemExit) as exc:  # a wavelength axis needs its medium
        main(["zeeman", *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "B0.spe" in err and "medium" in err and err.count("\n") == 1
    bare = sw.write_spe3(tmp_path / "bare.spe", np.ones((1, 1, 40), np.uint16), None)
    with pytest.raises(SystemExit) as exc:
        main(["zeeman", "--spectrum", f"2={bare}", *args, "--medium", "air"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "bare.spe: no wavelength calibration" in err
    with pytest.raises(SystemExit) as exc:  # a line table and spectra at once
        main(["zeeman", str(bare), *args, "--medium", "air"])
    assert exc.value.code == 2 and "either" in capsys.readouterr().err
