"""Validation of the materials TOML files (no JAX). Errors name the file, the key and the problem.

File kinds (see materials/README.md):

- `material`: `[params.<name>]` tables for Eg (eV), eps_eff (1), me, mh (m0), and optionally mu
  (m0, checked against me, mh), binding (eV), lattice_constant (nm).
- `alloy`: `x0`, `x1` (material names), `[bowing.<quantity>]` for Eg, me, mh, eps_eff, and
  `[params.f_v]` (valence-band share of the gap difference, 0..1).
- `system`: `dot` (alloy name), `matrix` (material name) and `[params.<name>]` for the
  exchange/optical constants dSR_x0, dSR_x1, hwLT_x0, hwLT_x1 (eV), eps_bg_in, eps_bg_out (1,
  0 = use eps_eff) and optionally g_X (1); optionally `[priors.<name>]` for the placement and
  calibration priors (`qdsim.placement`) of the dot size and composition (`diameter`, `x`) and
  of the uncalibrated constants (`dSR`, `hwLT`, `f_v`, `bowing_Eg`, `mass_ratio`).

Every number is a table with `value`, `unit`, `source`, `status` and optionally
`uncalibrated` (bool) and `note`.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["STATUS_WORDS", "MaterialsError", "validate_document"]

SCHEMA_VERSION = 1
STATUS_WORDS = ("source", "paper", "derived", "unverified", "assumption", "not_found")
ENTRY_KEYS = {"value", "unit", "source", "status", "uncalibrated", "note"}


class MaterialsError(ValueError):
    """A materials file is missing, malformed or out of range."""


# name -> (unit, lower bound, lower inclusive?, upper bound, required?)
_MATERIAL = {
    "Eg": ("eV", 0.0, False, 20.0, True),
    "eps_eff": ("1", 1.0, True, 1000.0, True),
    "me": ("m0", 0.0, False, 100.0, True),
    "mh": ("m0", 0.0, False, 100.0, True),
    "mu": ("m0", 0.0, False, 100.0, False),
    "binding": ("eV", 0.0, False, 10.0, False),
    "lattice_constant": ("nm", 0.0, False, 10.0, False),
}
_ALLOY_PARAMS = {"f_v": ("1", 0.0, True, 1.0, True)}
_ALLOY_BOWING = {
    "Eg": ("eV", -20.0, True, 20.0, False),
    "me": ("m0", -100.0, True, 100.0, False),
    "mh": ("m0", -100.0, True, 100.0, False),
    "eps_eff": ("1", -1000.0, True, 1000.0, False),
}
_SYSTEM = {
    "dSR_x0": ("eV", 0.0, True, 1.0, True),
    "dSR_x1": ("eV", 0.0, True, 1.0, True),
    "hwLT_x0": ("eV", 0.0, True, 1.0, True),
    "hwLT_x1": ("eV", 0.0, True, 1.0, True),
    "eps_bg_in": ("1", 0.0, True, 1000.0, True),
    "eps_bg_out": ("1", 0.0, True, 1000.0, True),
    "g_X": ("1", -100.0, True, 100.0, False),
}
_TOP = {
    "material": {"schema", "name", "kind", "temperature_K", "params"},
    "alloy": {"schema", "name", "kind", "x0", "x1", "bowing", "params"},
    "system": {
        "schema",
        "name",
        "kind",
        "dot",
        "matrix",
        "temperature_K",
        "params",
        "description",
        "priors",
    },
}
#: Prior tables of a system file: name -> unit of `center`, `width`, `low`, `high` (the width of
#: a lognormal is the standard deviation of the natural log, unitless).
PRIOR_UNITS = {
    "diameter": "nm",
    "x": "1",
    "dSR": "eV",
    "hwLT": "eV",
    "f_v": "1",
    "bowing_Eg": "eV",
    "mass_ratio": "1",
}
PRIOR_KINDS = ("normal", "lognormal", "uniform")
_PRIOR_KEYS = {"kind", "center", "width", "low", "high", "unit", "source", "status", "note"}


def _err(path: str, key: str, problem: str) -> MaterialsError:
    return MaterialsError(f"{path}: {key}: {problem}")


def _entry(path: str, key: str, entry: Any, spec: tuple) -> dict:
    unit, lo, lo_incl, hi, _ = spec
    if not isinstance(entry, dict):
        raise _err(path, key, "must be a table with value, unit, source, status")
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise _err(path, key, f"unknown field(s) {sorted(unknown)}; allowed: {sorted(ENTRY_KEYS)}")
    for field in ("value", "unit", "source", "status"):
        if field not in entry:
            raise _err(path, key, f"missing '{field}'")
    v = entry["value"]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _err(path, key, f"value must be a finite number, got {v!r}")
    if entry["unit"] != unit:
        raise _err(path, key, f"unit must be {unit!r}, got {entry['unit']!r}")
    if not isinstance(entry["source"], str) or not entry["source"].strip():
        raise _err(path, key, "source must be a non-empty string (cite paper and table/figure)")
    if entry["status"] not in STATUS_WORDS:
        raise _err(path, key, f"status must be one of {STATUS_WORDS}, got {entry['status']!r}")
    if "uncalibrated" in entry and not isinstance(entry["uncalibrated"], bool):
        raise _err(path, key, "uncalibrated must be true or false")
    ok_lo = v >= lo if lo_incl else v > lo
    if not ok_lo or v > hi:
        bracket = "[" if lo_incl else "("
        raise _err(path, key, f"value {v} outside the allowed range {bracket}{lo}, {hi}]")
    return dict(entry, value=float(v))


def _table(path: str, doc: dict, section: str, specs: dict) -> dict:
    raw = doc.get(section, {})
    if not isinstance(raw, dict):
        raise _err(path, section, "must be a table")
    unknown = set(raw) - set(specs)
    if unknown:
        raise _err(
            path, f"{section}.{sorted(unknown)[0]}", f"unknown key; allowed: {sorted(specs)}"
        )
    out = {}
    for name, spec in specs.items():
        if name not in raw:
            if spec[4]:
                raise _err(path, f"{section}.{name}", "missing (required)")
            continue
        out[name] = _entry(path, f"{section}.{name}", raw[name], spec)
    return out


def validate_document(doc: dict, path: str, kind: str | None = None) -> dict:
    """Validate one parsed TOML document and return a normalised dict.

    Raises `MaterialsError` (a ValueError) naming `path`, the key and the problem.
    """
    if doc.get("schema") != SCHEMA_VERSION:
        raise _err(path, "schema", f"must be {SCHEMA_VERSION}, got {doc.get('schema')!r}")
    k = doc.get("kind")
    if k not in _TOP:
        raise _err(path, "kind", f"must be one of {sorted(_TOP)}, got {k!r}")
    if kind is not None and k != kind:
        raise _err(path, "kind", f"expected a {kind} file, got {k!r}")
    unknown = set(doc) - _TOP[k]
    if unknown:
        raise _err(path, sorted(unknown)[0], f"unknown top-level key; allowed: {sorted(_TOP[k])}")
    if not isinstance(doc.get("name"), str) or not doc["name"]:
        raise _err(path, "name", "missing or not a string")
    out: dict[str, Any] = {"name": doc["name"], "kind": k, "path": path}
    if k == "material":
        out["params"] = _table(path, doc, "params", _MATERIAL)
        p = out["params"]
        if "mu" in p:
            me, mh = p["me"]["value"], p["mh"]["value"]
            mu = me * mh / (me + mh)
            if abs(mu - p["mu"]["value"]) > 0.01 * p["mu"]["value"]:
                raise _err(
                    path,
                    "params.mu",
                    f"{p['mu']['value']} disagrees with me*mh/(me+mh) = {mu:.4g} by more than 1 %",
                )
    elif k == "alloy":
        for end in ("x0", "x1"):
            if not isinstance(doc.get(end), str):
                raise _err(path, end, "missing: the material name at this end of the alloy")
        out["x0"], out["x1"] = doc["x0"], doc["x1"]
        out["params"] = _table(path, doc, "params", _ALLOY_PARAMS)
        out["bowing"] = _table(path, doc, "bowing", _ALLOY_BOWING)
    else:
        for key in ("dot", "matrix"):
            if not isinstance(doc.get(key), str):
                raise _err(path, key, "missing: a name of an alloy (dot) or material (matrix)")
        out["dot"], out["matrix"] = doc["dot"], doc["matrix"]
        out["params"] = _table(path, doc, "params", _SYSTEM)
        out["description"] = str(doc.get("description", ""))
        out["priors"] = _priors(path, doc.get("priors", {}))
    return out


def _priors(path: str, raw: Any) -> dict[str, dict]:
    """Validate `[priors.<name>]` tables: kind normal (center, width; optional low/high
    truncation), lognormal (center = median > 0, width = sd of ln) or uniform (low, high)."""
    if not isinstance(raw, dict):
        raise _err(path, "priors", "must be a table")
    out = {}
    for name, e in raw.items():
        key = f"priors.{name}"
        if name not in PRIOR_UNITS:
            raise _err(path, key, f"unknown prior; allowed: {sorted(PRIOR_UNITS)}")
        if not isinstance(e, dict):
            raise _err(path, key, "must be a table with kind, unit, source, status")
        unknown = set(e) - _PRIOR_KEYS
        if unknown:
            raise _err(
                path, key, f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_PRIOR_KEYS)}"
            )
        for f in ("kind", "unit", "source", "status"):
            if f not in e:
                raise _err(path, key, f"missing '{f}'")
        if e["kind"] not in PRIOR_KINDS:
            raise _err(path, key, f"kind must be one of {PRIOR_KINDS}, got {e['kind']!r}")
        if e["unit"] != PRIOR_UNITS[name]:
            raise _err(path, key, f"unit must be {PRIOR_UNITS[name]!r}, got {e['unit']!r}")
        if not isinstance(e["source"], str) or not e["source"].strip():
            raise _err(path, key, "source must be a non-empty string (where the width comes from)")
        if e["status"] not in STATUS_WORDS:
            raise _err(path, key, f"status must be one of {STATUS_WORDS}, got {e['status']!r}")
        nums = {}
        for f in ("center", "width", "low", "high"):
            if f in e:
                v = e[f]
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise _err(path, f"{key}.{f}", f"must be a finite number, got {v!r}")
                nums[f] = float(v)
        need = {"uniform": ("low", "high"), "normal": ("width",), "lognormal": ("width",)}
        for f in need[e["kind"]]:
            if f not in nums:
                raise _err(path, key, f"a {e['kind']} prior needs '{f}'")
        if "width" in nums and not nums["width"] > 0:
            raise _err(path, f"{key}.width", f"must be > 0, got {nums['width']}")
        if e["kind"] == "lognormal" and "center" in nums and not nums["center"] > 0:
            raise _err(path, f"{key}.center", "the median of a lognormal prior must be > 0")
        if "low" in nums and "high" in nums and not nums["low"] < nums["high"]:
            raise _err(path, key, f"low ({nums['low']}) must be below high ({nums['high']})")
        out[name] = dict(e, **nums)
    return out
