"""Spectrometer camera files through `read_spectrum`: Andor SIF, Princeton Instruments SPE 2.x
and 3.0 (`qdsim.analysis.spectroscopy.camera`), on files written here with known content
(`tests/analysis/spectrum_writer.py`) and on the real files of ../shared/data."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from numpy.polynomial.polynomial import polyval

from qdsim.analysis import read_spectrum
from qdsim.analysis.errors import FileFormatError, FileFormatWarning
from qdsim.analysis.spectroscopy.spectra import HC_eV_nm, wavelength_to_energy
from tests.analysis import spectrum_writer as sw

RNG = np.random.default_rng(11)


def _energy_order(lam):
    """Indices that put pixels in ascending photon energy (descending wavelength)."""
    return np.argsort(HC_eV_nm / np.asarray(lam))


def _read(path, **kw):
    """read_spectrum with any FileFormatWarning recorded, not raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FileFormatWarning)
        out = read_spectrum(path, **kw)
    return out, [w for w in caught if issubclass(w.category, FileFormatWarning)]


# --- files written here ------------------------------------------------------------------------


def test_spe3_frames_rows_calibration_metadata(tmp_path):
    counts = RNG.integers(0, 60000, (3, 2, 64)).astype(np.uint16)
    lam = np.linspace(880.0, 900.0, 64) + 1e-3 * np.arange(64) ** 2
    path = sw.write_spe3(
        tmp_path / "pl.spe", counts, lam, exposure_ms=250, gate_ns=(100, 5000), accumulations=3
    )
    s, warned = _read(path, medium="vacuum", jacobian=False)
    assert not warned
    assert s.dims == ("frame", "row", "energy")
    order = _energy_order(lam)
    np.testing.assert_array_equal(s.values, counts[..., order])
    np.testing.assert_allclose(s.energy.values, wavelength_to_energy(lam, "vacuum")[order])
    a = s.attrs
    assert a["source_format"] == "Princeton Instruments SPE 3.0"
    assert a["exposure_s"] == pytest.approx(0.25)
    assert a["gate_delay_s"] == pytest.approx(100e-9) and a["gate_width_s"] == pytest.approx(5e-6)
    assert a["accumulations"] == 3 and a["detector"] == "PIXIS: 100BR TEST0001"
    assert a["pixel_format"] == "uint16" and a["n_frames"] == 3 and a["n_rows"] == 2
    # summed on request, over either dim or both
    by_frame = read_spectrum(path, medium="vacuum", jacobian=False, sum_over="frame")
    assert by_frame.dims == ("row", "energy")
    np.testing.assert_array_equal(by_frame.values, counts.sum(0)[..., order])
    both = read_spectrum(path, medium="vacuum", jacobian=False, sum_over=("frame", "row"))
    assert both.dims == ("energy",) and both.attrs["summed_over"] == "frame,row"
    np.testing.assert_array_equal(both.values, counts.sum((0, 1))[order])


def test_spe3_saturated_pixels_warn(tmp_path):
    counts = RNG.integers(0, 1000, (1, 1, 32)).astype(np.uint16)
    counts[0, 0, [5, 6]] = 65535
    lam = np.linspace(600.0, 610.0, 32)
    s, warned = _read(sw.write_spe3(tmp_path / "sat.spe", counts, lam), medium="air")
    assert len(warned) == 1
    msg = str(warned[0].message)
    assert "sat.spe: 2 pixel value(s) at or above the saturation level 65535" in msg
    assert f"{lam[5]:.4f} nm" in msg
    assert s.attrs["n_saturated_pixels"] == 2 and s.attrs["saturation_level"] == 65535.0
    # a level given by the caller
    _, warned = _read(tmp_path / "sat.spe", medium="air", saturation=900)
    assert f"{int(np.count_nonzero(counts >= 900))} pixel value(s)" in str(warned[0].message)


def test_spe2_polynomial_calibration_and_nan(tmp_path):
    counts = RNG.uniform(0, 5e4, (1, 1, 100)).astype(np.float32)
    counts[0, 0, 17] = np.nan
    coef = (700.0, 0.05, 2e-6)
    path = sw.write_spe2(tmp_path / "old.spe", counts, coef, exposure_s=2.5, accumulations=4)
    s, warned = _read(path, medium="air", jacobian=False)
    lam = polyval(np.arange(100), coef)  # pixel positions 0..n-1, as spexread evaluates it
    order = _energy_order(lam)
    np.testing.assert_allclose(s.energy.values, wavelength_to_energy(lam, "air")[order])
    np.testing.assert_array_equal(s.values, counts[0, 0, order].astype(float))
    assert [str(w.message) for w in warned] == [
        f"{path}: 1 NaN or infinite pixel value(s) out of 100"
    ]
    assert s.attrs["exposure_s"] == 2.5 and s.attrs["accumulations"] == 4
    assert s.attrs["source_format"] == "Princeton Instruments SPE 2.5"
    assert "saturation_level" not in s.attrs  # float data: no level unless given


def test_sif_frames_rows_calibration_metadata(tmp_path):
    counts = RNG.uniform(0, 1e4, (3, 2, 50)).astype(np.float32)
    coef = (500.0, 0.1, 1e-5, 0.0)
    path = sw.write_sif(
        tmp_path / "x.sif",
        counts,
        coef,
        exposure_s=0.25,
        accumulations=4,
        gate_delay_ps=1500,
        gate_width_ps=2e6,
        detector="DU401A_BVF",
    )
    s, warned = _read(path, medium="air", jacobian=False)
    assert not warned
    lam = polyval(np.arange(1, 51), coef)  # pixel numbers 1..n, as sif-parser evaluates it
    order = _energy_order(lam)
    assert s.dims == ("frame", "row", "energy")
    np.testing.assert_array_equal(s.values, counts[..., order].astype(float))
    np.testing.assert_allclose(s.energy.values, wavelength_to_energy(lam, "air")[order])
    np.testing.assert_allclose(s.frame_time_s.values, [0.0, 1e-3, 2e-3])
    a = s.attrs
    assert a["exposure_s"] == 0.25 and a["accumulations"] == 4 and a["detector"] == "DU401A_BVF"
    assert a["gate_delay_s"] == pytest.approx(1.5e-9) and a["gate_width_s"] == pytest.approx(2e-6)
    one = read_spectrum(path, medium="air", jacobian=False, sum_over="row")
    np.testing.assert_array_equal(one.values, counts.astype(float).sum(1)[..., order])


def test_jacobian_gives_counts_per_ev(tmp_path):
    """jacobian=True: counts per pixel -> per eV; the integral over energy is the count total."""
    lam = np.linspace(850.0, 950.0, 400)
    counts = (1e4 * np.exp(-0.5 * ((lam - 900.0) / 3.0) ** 2)).astype(np.float32)
    path = sw.write_spe3(tmp_path / "g.spe", counts, lam)
    s = read_spectrum(path, medium="vacuum")
    assert s.attrs["intensity_per"] == "eV" and s.attrs["pixel_width_divided"] == 1
    total = np.trapezoid(s.values, s.energy.values)
    assert total == pytest.approx(counts.astype(float).sum(), rel=1e-4)


@pytest.mark.parametrize("kind", ["sif", "spe2", "spe3"])
def test_file_without_calibration_is_a_clear_error(tmp_path, kind):
    counts = np.ones((1, 1, 20), np.float32)
    path = {
        "sif": lambda: sw.write_sif(tmp_path / "u.sif", counts, None),
        "spe2": lambda: sw.write_spe2(tmp_path / "u.spe", counts, None),
        "spe3": lambda: sw.write_spe3(tmp_path / "u.spe", counts, None),
    }[kind]()
    with pytest.raises(FileFormatError, match=r"u\.(sif|spe): no wavelength calibration"):
        read_spectrum(path, medium="air")


def _written(tmp_path):
    c = RNG.uniform(0, 1e3, (2, 2, 30)).astype(np.float32)
    lam = np.linspace(700.0, 710.0, 30)
    return [
        sw.write_sif(tmp_path / "a.sif", c, (700.0, 0.3, 0.0, 0.0)),
        sw.write_spe2(tmp_path / "b.spe", c, (700.0, 0.3)),
        sw.write_spe3(tmp_path / "c.spe", c.astype(np.uint16), lam),
    ]


def _one_line_error(path) -> str:
    with pytest.raises(FileFormatError) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FileFormatWarning)
            read_spectrum(path, medium="air")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg
    return msg


def test_truncated_files_are_one_line_errors(tmp_path):
    """Every cut of a SIF, SPE 2.x and SPE 3.0 file (header, data, XML footer) is a one-line
    FileFormatError naming the file, never a hang (sif-parser 0.3.6 would loop forever on a
    header cut short; the reader stops it) or another exception."""
    for good in _written(tmp_path):
        data = good.read_bytes()
        cut_path = good.with_name("cut" + good.suffix)
        for cut in sorted({*range(0, len(data), 23), len(data) - 1, 4099, 4100}):
            if cut >= len(data):
                continue
            cut_path.write_bytes(data[:cut])
            msg = _one_line_error(cut_path)
            assert any(k in msg for k in ("truncated", "not a", "damaged")), msg


def test_damaged_headers_are_one_line_errors_or_read(tmp_path):
    """Bytes of the headers overwritten: the file is read, or it is a one-line FileFormatError
    naming it (never another exception)."""
    rng = np.random.default_rng(5)
    for good in _written(tmp_path):
        data = bytearray(good.read_bytes())
        bad_path = good.with_name("bad" + good.suffix)
        head = len(data) - 2 * 2 * 30 * 4 if good.suffix == ".sif" else 4100  # before the data
        for pos in rng.choice(head, 60, replace=False):
            damaged = bytearray(data)
            damaged[pos] = (damaged[pos] + 1 + int(rng.integers(0, 254))) % 256
            bad_path.write_bytes(bytes(damaged))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FileFormatWarning)
                    read_spectrum(bad_path, medium="vacuum")
            except FileFormatError as exc:
                assert "\n" not in str(exc) and str(exc).startswith(str(bad_path))
            except ValueError as exc:  # read, but the axis is outside what read_spectrum takes
                assert "wavelength" in str(exc), exc


def test_camera_options_only_for_camera_files(tmp_path):
    txt = tmp_path / "s.csv"
    txt.write_text("wavelength_nm,counts\n700,1\n701,2\n")
    with pytest.raises(ValueError, match="apply to camera files"):
        read_spectrum(txt, medium="air", sum_over="frame")
    with pytest.raises(ValueError, match="apply to camera files"):
        read_spectrum(np.array([700.0, 701.0]), [1.0, 2.0], unit="nm", medium="air", saturation=1)
    path = _written(tmp_path)[2]
    with pytest.raises(ValueError, match="sum_over takes 'frame' and/or 'row'"):
        read_spectrum(path, medium="air", sum_over="pixel")
    with pytest.raises(ValueError, match="wavelength calibration \\(nm\\), not eV"):
        read_spectrum(path, medium="air", unit="eV")
    with pytest.raises(ValueError, match="medium"):
        read_spectrum(path)


def test_missing_library_says_what_to_install(tmp_path, monkeypatch):
    path = _written(tmp_path)[1]
    monkeypatch.setitem(sys.modules, "spexread", None)
    with pytest.raises(ImportError, match="pip install spexread"):
        read_spectrum(path, medium="air")


# --- the real sample files ---------------------------------------------------------------------


def _library_sif(path):
    import sif_parser
    from sif_parser.utils import extract_calibration

    data, info = sif_parser.np_open(str(path))
    return data[0, 0].astype(float), extract_calibration(info)


def _library_spe(path):
    import spexread

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = spexread.read_spe_file(path)
    return ds["ROI 0"].values[0, 0].astype(float), ds["wavelength"].values


@pytest.mark.data
@pytest.mark.parametrize(
    ("name", "medium", "px", "lam_range", "total", "meta"),
    [
        (
            "raman1.sif",
            "air",
            1024,
            (405.2332, 454.5533),
            1.91861e9,
            {"detector": "DU888_BV", "exposure_s": 0.1, "accumulations": 500},
        ),
        (
            "step_and_glue.sif",
            "vacuum",
            4711,
            (150.0000, 850.0000),
            2.02638e7,
            {"detector": "DU401_BVF", "exposure_s": 0.01223, "accumulations": 10},
        ),
        (
            "lightfield_step_and_glue.spe",
            "air",
            5344,
            (340.0304, 690.0564),
            6.34196e7,
            {
                "detector": "PI-MAX4: 1024B/EM X030003225",
                "gate_delay_s": 250e-9,
                "accumulations": 30,
            },
        ),
        (
            "step_and_glue_v2_Andor.spe",
            "vacuum",
            4711,
            (149.8514, 849.8514),
            1.0951e7,
            {"exposure_s": 0.02, "accumulations": 20},
        ),
    ],
)
def test_real_files(data_file, name, medium, px, lam_range, total, meta):
    """README of ../shared/data: pixels, calibrated range and sum of each file; the values and
    wavelengths equal what the libraries return; the LightField file has clipped pixels."""
    path = data_file(name)
    s, warned = _read(path, medium=medium, jacobian=False)
    counts, lam = _library_sif(path) if name.endswith(".sif") else _library_spe(path)
    assert s.dims == ("energy",) and s.sizes["energy"] == px
    assert (lam.min(), lam.max()) == pytest.approx(lam_range, abs=5e-5)
    assert float(s.sum()) == pytest.approx(total, rel=1e-4)
    order = _energy_order(lam)
    np.testing.assert_array_equal(s.values, counts[order])
    np.testing.assert_allclose(s.energy.values, wavelength_to_energy(lam, medium)[order])
    for k, v in meta.items():
        assert s.attrs[k] == (pytest.approx(v, rel=1e-6) if isinstance(v, float) else v), k
    if name == "lightfield_step_and_glue.spe":  # uint16: 10 pixels at 65535
        assert len(warned) == 1 and s.attrs["n_saturated_pixels"] == int(np.sum(counts >= 65535))
        assert s.attrs["n_saturated_pixels"] == 10
    else:
        assert not warned


@pytest.mark.data
def test_real_step_and_glue_below_230_nm_needs_vacuum(data_file):
    """150-850 nm spans below the 230 nm limit of the air-index formula: medium='air' is
    refused rather than extrapolated."""
    with pytest.raises(ValueError, match="230"):
        read_spectrum(data_file("step_and_glue.sif"), medium="air")
