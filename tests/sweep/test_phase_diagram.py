"""phase_diagram: the grid entry point (issue 3; architecture.md §4, §8 equivalences)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import qdsim

R = np.array([1.2, 3.0, 5.0, 7.5])
X = np.array([0.0, 0.3, 0.6, 1.0])


@pytest.fixture(scope="module")
def ds():
    return qdsim.phase_diagram(radius_nm=R, x=X)


def test_structure_units_and_provenance(ds):
    assert ds.sizes == {"radius": 4, "x": 4}
    assert ds.radius.attrs["units"] == "nm"
    for name in ("emission_energy", "dark_bright_splitting"):
        assert ds[name].attrs["units"] == "eV"
        assert ds[name].dims == ("radius", "x")
    assert ds.radiative_lifetime.attrs["units"] == "s"
    assert ds.status.dtype == np.int32 and "flag_meanings" in ds.status.attrs
    for key in (
        "qdsim_version",
        "jax_version",
        "codata",
        "system",
        "material_files",
        "uncalibrated",
        "config",
    ):
        assert key in ds.attrs


def test_points_without_bound_exciton_are_nan_with_status(ds):
    """x = 1: the dot is the matrix (no offset): NOT_TYPE_I and NaN, never a valid-looking number.
    R = 1.2 nm at x = 0.6 lies below the critical radius: no bound state."""
    at_x1 = ds.sel(x=1.0)
    assert np.all(at_x1.status.values == int(qdsim.Status.NOT_TYPE_I))
    for name in ("emission_energy", "dark_bright_splitting", "radiative_lifetime"):
        assert np.all(np.isnan(at_x1[name].values))
    bad = (ds.status.values & qdsim.FAILURE_MASK) != 0
    assert np.all(np.isnan(ds.emission_energy.values[bad]))
    assert np.all(np.isfinite(ds.emission_energy.values[~bad]))
    assert ds.attrs["failed_points"] == int(bad.sum())


def test_matches_scalar_solver_pointwise(ds):
    system = qdsim.load_system()
    for r in (3.0, 7.5):
        for x in (0.0, 0.3):
            s = system.solve(x, r)
            pt = ds.sel(radius=r, x=x)
            assert float(pt.emission_energy) == pytest.approx(float(s.bright_energy_eV), rel=1e-13)
            assert float(pt.dark_bright_splitting) == pytest.approx(
                float(s.dark_bright_eV), rel=1e-12
            )


def test_monotonic_physics_on_the_grid(ds):
    """Fig. 3g text: at fixed x both emission energy and splitting rise as the dot shrinks; at
    fixed R the emission rises with Br content."""
    sub = ds.sel(x=[0.0, 0.3], radius=[3.0, 5.0, 7.5])
    assert np.all(np.diff(sub.emission_energy.values, axis=0) < 0)
    assert np.all(np.diff(sub.dark_bright_splitting.values, axis=0) < 0)
    assert np.all(np.diff(sub.emission_energy.values, axis=1) > 0)


def test_chunked_equals_unchunked(ds):
    """Chunk size changes only the XLA batch shape: results agree to rounding (measured
    <= 4e-15 relative), status codes exactly."""
    small = qdsim.phase_diagram(radius_nm=R, x=X, chunk_points=3)
    np.testing.assert_array_equal(small.status.values, ds.status.values)
    for name in ds.data_vars:
        np.testing.assert_allclose(small[name].values, ds[name].values, rtol=1e-13, atol=0)


def test_netcdf_roundtrip(ds, tmp_path):
    f = tmp_path / "pd.nc"
    ds.to_netcdf(f, engine="h5netcdf")
    with xr.open_dataset(f, engine="h5netcdf") as back:
        xr.testing.assert_identical(back.load(), ds)


def test_array_override_adds_a_dimension():
    out = qdsim.phase_diagram(radius_nm=[4.0], x=[0.3], f_v=[0.3, 0.5, 0.8])
    assert out.emission_energy.dims == ("radius", "x", "f_v")
    assert out.f_v.attrs["units"] == "1"
    system = qdsim.load_system()
    s = system.solve(0.3, 4.0, f_v=0.8)
    assert float(out.emission_energy.sel(f_v=0.8).squeeze()) == pytest.approx(
        float(s.bright_energy_eV), rel=1e-13
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"radius_nm": [-1.0, 2.0], "x": [0.3]}, "radius_nm"),
        ({"radius_nm": [2.0], "x": [1.5]}, "x must lie"),
        ({"radius_nm": [np.nan], "x": [0.3]}, "NaN"),
        ({"radius_nm": [2.0], "x": [0.3], "f_v": 2.0}, "f_v"),
    ],
)
def test_bad_grid_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        qdsim.phase_diagram(**kwargs)


def test_progress_callback_reaches_total():
    seen = []
    qdsim.phase_diagram(
        radius_nm=[3.0, 4.0],
        x=[0.2, 0.3],
        chunk_points=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (4, 4) and len(seen) == 2


@pytest.mark.parametrize(
    ("f_v", "mass_ratio"), [(None, None), (0.2, 2.5)], ids=["default", "asymmetric"]
)
def test_default_quadrature_is_converged_over_the_domain(f_v, mass_ratio):
    """physics.md §1(b, d) over the whole default domain, not one dot: the default order against
    order 24 on a grid that includes the weakly bound edge (x -> 0.6-0.95 at small R, where a
    level approaches its barrier top), for the default system (electron and hole alike) and an
    asymmetric one (different offsets and masses, so different exterior decay rates).
    Status-OK points: energy within 1e-6 eV, Delta_DB within 1e-4 relative (measured 1e-8 eV and
    1e-6 at order 10, asserted with ~5x margin); NEAR_THRESHOLD points at order 12: within
    1 microeV (measured 1e-7 to 6e-7 eV)."""
    radius = np.linspace(1.5, 8.0, 14)
    x = np.linspace(0.0, 0.97, 16)
    kw = {"f_v": f_v, "mass_ratio": mass_ratio}
    ref = qdsim.phase_diagram(radius, x, config=qdsim.SolverConfig(n_quad=24), **kw)
    st = ref.status.values
    ok, warn = st == 0, st == int(qdsim.Status.NEAR_THRESHOLD)
    assert ok.sum() > 50 and warn.sum() > 5  # both regimes are exercised

    def errors(ds, mask):
        dE = np.abs(ds.emission_energy - ref.emission_energy).values[mask]
        dD = np.abs(ds.dark_bright_splitting / ref.dark_bright_splitting - 1).values[mask]
        return dE.max(), dD.max()

    dflt = qdsim.phase_diagram(radius, x, **kw)
    np.testing.assert_array_equal(dflt.status.values, st)
    dE, dD = errors(dflt, ok)
    assert dE < 5e-8 and dD < 5e-6
    cfg12 = qdsim.SolverConfig(n_quad=12)
    dE12, _ = errors(qdsim.phase_diagram(radius, x, config=cfg12, **kw), warn)
    assert dE12 < 1e-6
