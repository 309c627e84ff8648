"""Materials files and the loader (issue 3 item 1; physics.md A.1-A.3, §0)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qdsim
from qdsim.materials import MaterialsError, load_system
from qdsim.materials.schema import STATUS_WORDS

ROOT = Path(__file__).resolve().parents[2] / "materials"


def test_every_number_in_materials_has_source_and_status():
    files = sorted(ROOT.rglob("*.toml"))
    assert len(files) >= 4
    for f in files:
        doc = tomllib.loads(f.read_text())
        for section in ("params", "bowing"):
            for key, entry in doc.get(section, {}).items():
                assert entry["source"].strip(), f"{f}:{key}"
                assert entry["status"] in STATUS_WORDS, f"{f}:{key}"


def test_default_system_values_and_vegard_example():
    """A.3 example [DERIVED], x = 0.30: Eg = 1.7206 eV, eps = 9.071, mu = 0.0975, Ry* = 16.1 meV,
    a_B = 4.92 nm; end members bit-exact at x = 0 and 1."""
    s = load_system()
    p = s.sphere_params(0.3)
    assert float(p.Eg_eV) == pytest.approx(1.7206, abs=1e-12)
    assert float(p.eps) == pytest.approx(9.071, abs=1e-12)
    assert float(p.me_in) == pytest.approx(0.195, abs=1e-12)
    assert float(qdsim.rydberg_star_eV(p)) * 1e3 == pytest.approx(16.1, abs=0.05)
    assert float(qdsim.bohr_star_nm(p)) == pytest.approx(4.92, abs=0.005)
    p0, p1 = s.sphere_params(0.0), s.sphere_params(1.0)
    assert float(p0.Eg_eV) == s.values["x0.Eg"] and float(p1.Eg_eV) == s.values["x1.Eg"]
    assert float(p0.eps) == s.values["x0.eps_eff"] and float(p1.me_in) == s.values["x1.me"]
    # offsets: split of the gap difference by f_v = 0.5 (A.2); zero at x = 1 (dot = matrix)
    assert float(p.dEc_eV) == pytest.approx(0.2562, abs=1e-12)
    assert float(p.dEc_eV + p.dEv_eV) == pytest.approx(2.233 - 1.7206, abs=1e-12)
    assert float(p1.dEc_eV) == 0.0 and float(p1.dEv_eV) == 0.0


def test_overrides_fv_bowing_mass_ratio():
    s = load_system()
    p = s.sphere_params(0.3, f_v=0.8, bowing_Eg=0.1, mass_ratio=2.0)
    gap = 0.7 * 1.501 + 0.3 * 2.233 - 0.1 * 0.21
    assert float(p.Eg_eV) == pytest.approx(gap, abs=1e-12)
    assert float(p.dEv_eV) == pytest.approx(0.8 * (2.233 - gap), abs=1e-12)
    mu = float(p.me_in * p.mh_in / (p.me_in + p.mh_in))
    assert mu == pytest.approx(0.0975, rel=1e-12) and float(p.mh_in / p.me_in) == pytest.approx(2.0)


def test_x_outside_range_is_an_error_or_a_status():
    s = load_system()
    for bad in (-0.1, 1.2, float("nan")):
        with pytest.raises(ValueError, match="x"):
            s.sphere_params(bad)
    with qdsim.float64():
        out = jax.vmap(lambda x: qdsim.solve_sphere(s.sphere_params(x), 5.0))(
            jnp.asarray([0.3, 1.2, -0.5])
        )
    bad = int(qdsim.Status.INVALID_INPUT)
    assert list(np.asarray(out.status)) == [0, bad, bad]
    assert np.isnan(np.asarray(out.energy_eV)[1:]).all()


def test_sphere_params_differentiable_in_x():
    """grad of the bright energy with respect to x through Vegard and the solver."""
    s = load_system()
    with qdsim.float64():
        g = jax.grad(lambda x: qdsim.solve_sphere(s.sphere_params(x), 5.0).bright_energy_eV)(0.3)
    fd = (
        float(s.solve(0.3 + 1e-5, 5.0).bright_energy_eV)
        - float(s.solve(0.3 - 1e-5, 5.0).bright_energy_eV)
    ) / 2e-5
    assert float(g) == pytest.approx(fd, rel=1e-6)
    assert float(g) > 0  # more Br, larger gap


def test_uncalibrated_flags_and_provenance():
    s = load_system()
    unc = s.uncalibrated
    assert any("f_v" in k for k in unc) and any("hwLT" in k for k in unc)
    prov = s.provenance()
    assert "FAPbI3.toml" in prov["material_files"]
    assert "f_v" in s.describe()


@pytest.fixture()
def mat_copy(tmp_path):
    dst = tmp_path / "materials"
    shutil.copytree(ROOT, dst)
    return dst


def _edit(path: Path, old: str, new: str):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "old", "new", "match"),
    [
        (
            "FAPbI3.toml",
            'unit = "eV"',
            'unit = "meV"',
            r"FAPbI3.toml: params.Eg: unit must be 'eV'",
        ),
        ("FAPbI3.toml", 'status = "unverified"', 'status = "guess"', r"params.Eg: status must be"),
        ("FAPbI3.toml", "value = 0.18", "value = -0.18", r"params.me: value -0.18 outside"),
        ("FAPbI3.toml", "value = 1.501", 'value = "1.5"', r"params.Eg: value must be a finite"),
        ("FAPbI3.toml", "[params.Eg]", "[params.Egg]", r"params.Egg.*unknown key"),
        ("FAPbI3.toml", "value = 0.090", "value = 0.12", r"params.mu: .*disagrees"),
        ("alloys/FAPbI3-FAPbBr3.toml", "value = 0.5", "value = 1.5", r"params.f_v: value 1.5"),
        (
            "systems/default.toml",
            'dot = "FAPbI3-FAPbBr3"',
            'dot = "nope"',
            r"nope.toml: no such alloy",
        ),
        ("FAPbBr3.toml", "schema = 1", "schema = 2", r"FAPbBr3.toml: schema"),
    ],
)
def test_validation_errors_name_file_key_problem(mat_copy, file, old, new, match):
    _edit(mat_copy / file, old, new)
    with pytest.raises(MaterialsError, match=match):
        load_system(materials_dir=mat_copy)


def test_missing_source_is_rejected(mat_copy):
    f = mat_copy / "FAPbI3.toml"
    lines = [ln for ln in f.read_text().splitlines() if not ln.startswith("source")]
    f.write_text("\n".join(lines))
    with pytest.raises(MaterialsError, match="missing 'source'"):
        load_system(materials_dir=mat_copy)


def test_unknown_system_and_env_lookup(mat_copy, monkeypatch):
    with pytest.raises(MaterialsError, match="unknown system 'nope'.*known: \\['default'\\]"):
        load_system("nope")
    monkeypatch.setenv("QDSIM_MATERIALS", str(mat_copy))
    _edit(mat_copy / "FAPbI3.toml", "value = 1.501", "value = 1.551")
    assert load_system().values["x0.Eg"] == 1.551
    assert load_system(mat_copy / "systems" / "default.toml").values["x0.Eg"] == 1.551


def test_invalid_toml_syntax(mat_copy):
    (mat_copy / "FAPbI3.toml").write_text("schema = 1\nname = [unclosed\n")
    with pytest.raises(MaterialsError, match="FAPbI3.toml: not valid TOML"):
        load_system(materials_dir=mat_copy)
