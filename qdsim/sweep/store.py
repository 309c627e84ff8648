"""Where a sweep goes: the output format from the suffix, checks before any work, atomic netCDF,
and resumable zarr stores (architecture.md §4.2).

A zarr store (zarr >= 3, format 3) is created whole before the first point is solved: every
variable at its full shape, chunked by blocks of `block_rows` radii (the unit the sweep solves,
writes and records), with the Dataset's attributes. It is built under a temporary name and
renamed into place, so a store that exists is complete in its layout. Each solved block writes
its region, then its mark in `qdsim_progress/chunk_done` (one object per block, written after
the data): a run killed at any moment leaves only finished blocks marked, and a rerun computes
the others. A store records what made it (grid, solver config, chunking, material hashes and
values, qdsim version); a run with anything else is refused instead of mixing results.

Until a store is complete its root attribute `failed_points` is -1, unsolved points read NaN and
their `status` reads -1.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

__all__ = ["ZarrSweepStore", "check_output", "output_format", "write_netcdf_atomic"]

#: Suffixes and the format they select.
FORMATS = {".nc": "netcdf", ".zarr": "zarr"}
#: Subgroup of a qdsim zarr store holding the completion marks and the store's identity.
PROGRESS_GROUP = "qdsim_progress"
_KEY_ATTR = "qdsim_store_key"
_STATUS_FILL = -1


def output_format(path) -> str:
    """'netcdf' for `.nc`, 'zarr' for `.zarr`; any other suffix is a ValueError."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"{path}: unknown output format {suffix or '(no suffix)'!r}; "
            "use .nc (netCDF) or .zarr (zarr store)"
        )
    return FORMATS[suffix]


def check_output(path) -> str:
    """Check, before any work, that `path` can be written; return its format.

    The directory must exist and accept a new file (probed by creating and removing one, which
    also catches read-only and pseudo file systems); a netCDF path must not be a directory; an
    existing zarr path must be a qdsim store (whether it matches the run is checked on open).
    """
    path = Path(path)
    fmt = output_format(path)
    parent = path.resolve().parent
    if not parent.is_dir():
        raise ValueError(f"{path}: directory {parent} does not exist")
    if fmt == "netcdf" and path.is_dir():
        raise ValueError(f"{path}: is a directory, not a netCDF file")
    if fmt == "zarr" and path.exists() and not is_qdsim_store(path):
        raise ValueError(
            f"{path}: exists and is not a qdsim sweep store; refusing to write into it "
            "(choose another path or remove it)"
        )
    probe = parent / f".{path.name}.probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.touch(exist_ok=False)
    except OSError as exc:
        raise ValueError(f"{path}: cannot write in {parent} ({exc.strerror or exc})") from None
    probe.unlink(missing_ok=True)
    return fmt


def write_netcdf_atomic(ds, path) -> None:
    """Write `ds` to netCDF (h5netcdf) under a temporary name in the same directory, then rename
    it over `path`: a killed run leaves the old file or none, never a truncated one."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def is_qdsim_store(path) -> bool:
    """True when `path` is a zarr store created by a qdsim sweep."""
    path = Path(path)
    if not (path / PROGRESS_GROUP / "zarr.json").is_file():
        return False
    try:
        return _KEY_ATTR in _zarr().open_group(path / PROGRESS_GROUP, mode="r").attrs
    except Exception:  # unreadable metadata: not a (usable) qdsim store
        return False


def _zarr():
    """The zarr module, version 3 or later (the format-3 API used here)."""
    import zarr

    if int(zarr.__version__.split(".")[0]) < 3:
        raise ImportError(f"qdsim's zarr stores need zarr >= 3, found {zarr.__version__}")
    return zarr


def _sha(array) -> str:
    a = np.ascontiguousarray(np.asarray(array, dtype=np.float64))
    return hashlib.sha256(a.tobytes()).hexdigest()[:16]


def store_key(*, axes, scalars, config, chunk, block_rows, two_pass, system, version) -> dict:
    """What a store's contents depend on, as JSON-able fields compared on resume."""
    values = json.dumps({k: float(v) for k, v in sorted(system.values.items())})
    return {
        "grid": {
            name: f"{a.size} values {a.min():g}..{a.max():g} sha {_sha(a)}"
            for name, a in axes.items()
        },
        "overrides": {k: float(v) for k, v in sorted(scalars.items())},
        "solver config": json.dumps(config._asdict(), sort_keys=True),
        "chunking": f"chunk_points={chunk}, block_rows={block_rows}, two_pass={two_pass}",
        "material hash": json.loads(system.provenance()["material_files"]),
        "material values": hashlib.sha256(values.encode()).hexdigest()[:16],
        "system": system.name,
        "qdsim version": version,
    }


def _json_attrs(attrs: dict) -> dict:
    """Attributes as JSON values (NumPy scalars and arrays to Python)."""
    out = {}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


class ZarrSweepStore:
    """A resumable zarr store for one sweep (see the module docstring). Open with `open()`."""

    def __init__(self, path: Path, group, n_blocks: int) -> None:
        self.path = path
        self.group = group
        self.n_blocks = n_blocks
        self._done = group[PROGRESS_GROUP]["chunk_done"]

    @classmethod
    def open(cls, path, *, key: dict, template: dict, n_blocks: int) -> ZarrSweepStore:
        """Open the store at `path`, creating it from `template` when absent; refuse one whose
        key differs from `key` (one line naming what differs).

        `template`: {"dims", "shape", "chunks", "coords": {name: (values, attrs)},
        "data_vars": {name: (dtype, attrs)}, "attrs"}.
        """
        zarr = _zarr()
        path = Path(path)
        if not path.exists():
            cls._create(path, key=key, template=template, n_blocks=n_blocks)
        if not is_qdsim_store(path):
            raise ValueError(
                f"{path}: exists and is not a qdsim sweep store; refusing to write into it "
                "(choose another path or remove it)"
            )
        group = zarr.open_group(path, mode="r+")
        stored = json.loads(group[PROGRESS_GROUP].attrs[_KEY_ATTR])
        differ = [k for k in sorted(set(key) | set(stored)) if key.get(k) != stored.get(k)]
        if differ:
            what = ", ".join(differ)
            raise ValueError(
                f"{path}: a qdsim store made with another {what}; refusing to mix results "
                "(use a new path, or remove the store to start over)"
            )
        return cls(path, group, n_blocks)

    @staticmethod
    def _create(path: Path, *, key, template, n_blocks) -> None:
        zarr = _zarr()

        tmp = path.parent / f".{path.name}.creating-{uuid.uuid4().hex[:8]}"
        try:
            g = zarr.open_group(tmp, mode="w-", zarr_format=3, attributes=template["attrs"])
            for name, (values, attrs) in template["coords"].items():
                a = g.create_array(
                    name,
                    shape=values.shape,
                    chunks=values.shape,
                    dtype=values.dtype,
                    dimension_names=(name,),
                    attributes=_json_attrs(attrs),
                    fill_value=np.nan,
                )
                a[...] = values
            for name, (dtype, attrs) in template["data_vars"].items():
                g.create_array(
                    name,
                    shape=template["shape"],
                    chunks=template["chunks"],
                    dtype=dtype,
                    dimension_names=template["dims"],
                    attributes=_json_attrs(attrs),
                    fill_value=np.nan if np.dtype(dtype).kind == "f" else _STATUS_FILL,
                )
            pg = g.create_group(PROGRESS_GROUP, attributes={_KEY_ATTR: json.dumps(key)})
            pg.create_array(
                "chunk_done",
                shape=(n_blocks,),
                chunks=(1,),
                dtype="uint8",
                fill_value=0,
                compressors=None,
                attributes={"description": "1 where the block of rows is written"},
            )
            try:
                os.rename(tmp, path)
            except OSError:
                if not path.exists():  # another process may have created it meanwhile
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def done(self) -> np.ndarray:
        """Boolean mask of finished blocks (a mark that cannot be read counts as not done)."""
        try:
            return np.asarray(self._done[:]) == 1
        except Exception:
            out = np.zeros(self.n_blocks, dtype=bool)
            for i in range(self.n_blocks):
                with contextlib.suppress(Exception):
                    out[i] = int(self._done[i]) == 1
            return out

    def write_block(self, i: int, rows: slice, data: dict[str, np.ndarray]) -> None:
        """Write one block's region of every variable, then mark the block done."""
        for name, values in data.items():
            self.group[name][rows] = values
        self.mark_done(i)

    def mark_done(self, i: int) -> None:
        """Record block `i` as written (after its data, never before)."""
        self._done[i] = 1

    @staticmethod
    def write_region(path, rows: slice, data: dict[str, np.ndarray]) -> None:
        """Write a block's region into the store at `path` without marking it (a Dask worker:
        the client marks it once the task has returned)."""
        group = _zarr().open_group(path, mode="r+")
        for name, values in data.items():
            group[name][rows] = values

    def read_status(self, rows: slice) -> np.ndarray:
        return np.asarray(self.group["status"][rows])

    def finish(self, attrs: dict) -> None:
        """Update root attributes once every block is written."""
        self.group.attrs.update(_json_attrs(attrs))
