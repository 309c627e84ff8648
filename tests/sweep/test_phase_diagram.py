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
    Default order (n_quad = 12): status-OK points within 1e-10 eV and 5e-8 relative in Delta_DB
    (measured 5e-12 eV and 1e-9); NEAR_THRESHOLD points within 3e-7 eV and 2e-4 (measured
    4e-8 eV and 2e-5). Order 10 is ~1000x worse on status-OK points and must fail the first
    bound (the test can tell)."""
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
    assert dE < 1e-10 and dD < 5e-8
    dE, dD = errors(dflt, warn)
    assert dE < 3e-7 and dD < 2e-4
    dE10, _ = errors(qdsim.phase_diagram(radius, x, config=qdsim.SolverConfig(n_quad=10), **kw), ok)
    assert dE10 > 1e-10


def test_offset_interpolation_is_exact_for_multilinear_data():
    """The second pass starts Newton from the guess error interpolated over the first-pass
    subgrid: multilinear data (here in 3-D, with an axis too short to subsample) must come back
    exactly; the curvature that orders the chunks is 0 for it, positive for a quadratic, and
    marks a failed (NaN) point and its neighbours."""
    from qdsim.sweep.phase_diagram import _coarse_axes, _curvature, _interpolate

    shape = (33, 18, 3)
    idx = [np.unique(np.r_[np.arange(0, L, 4), L - 1]) if L >= 16 else np.arange(L) for L in shape]
    i, j, k = np.meshgrid(*[np.arange(L, dtype=float) for L in shape], indexing="ij")
    f = 0.3 + 0.01 * i - 0.02 * j + 0.05 * k + 1e-3 * i * j - 2e-3 * j * k
    np.testing.assert_allclose(_interpolate(idx, f[np.ix_(*idx)], shape), f, rtol=0, atol=1e-14)
    coarse = f[np.ix_(*idx)]
    # zero except next to the last, narrower cell of the second axis (17 - 16 = 1, not 4)
    assert np.abs(_curvature(coarse)[:, :-2]).max() < 1e-12
    assert _curvature(coarse**2).min() > 0
    holed = coarse.copy()
    holed[2, 1, 0] = np.nan  # the point (8, 4, 0) failed
    c = _curvature(holed)
    assert c[2, 1, 0] == c[1, 1, 0] == c[3, 1, 0] == 1e3 and c[6, 3, 2] < 1
    assert _coarse_axes((16, 16)) is None  # small grids: one pass
    assert [len(c) for c in _coarse_axes((256, 256))] == [65, 65]


@pytest.mark.parametrize("f_v", [None, np.array([0.3, 0.5, 0.7, 0.9])], ids=["2d", "3d"])
def test_two_pass_sweep_equals_one_pass(f_v, monkeypatch):
    """Two passes (a subgrid first, then the rest started from their solved neighbours) change
    only where Newton starts: every status equal, lambda within the Newton tolerance
    (lam_tol = 1e-8 bounds the error in log lambda by ~1.6e-8), the energy (stationary in
    lambda) to ~1e-12 and the lambda-linear quantities (contact density, Delta_DB) to ~4e-8."""
    n = 64 if f_v is None else 32
    R, X = np.linspace(1.5, 8.0, n), np.linspace(0.0, 1.0, n)
    from qdsim.sweep import phase_diagram as pd

    one = qdsim.phase_diagram(R, X, f_v=f_v, two_pass=False)
    passes = []
    solve = pd._solve_points
    monkeypatch.setattr(pd, "_solve_points", lambda *a, **k: passes.append(1) or solve(*a, **k))
    two = qdsim.phase_diagram(R, X, f_v=f_v)
    assert len(passes) == 2
    np.testing.assert_array_equal(one.status.values, two.status.values)
    tol = {"lam": 5e-8, "contact_density": 1e-7, "dark_bright_splitting": 1e-7}
    for name in one.data_vars:
        if name == "status":
            continue
        a, b = one[name].values, two[name].values
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        rtol = tol.get(name, 1e-7 if name in ("overlap2", "radiative_lifetime") else 1e-10)
        np.testing.assert_allclose(b, a, rtol=rtol, atol=0, err_msg=name)
