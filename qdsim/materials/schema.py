"""Validation of the materials TOML files (no JAX). Errors name the file, the key and the problem.

File kinds (see materials/README.md):

- `material`: `[params.<name>]` tables for Eg (eV), eps_eff (1), me, mh (m0), and optionally mu
  (m0, checked against me, mh), binding (eV), lattice_constant (nm).
- `alloy`: `x0`, `x1` (material names), `[bowing.<quantity>]` for Eg, me, mh, eps_eff, and
  `[params.f_v]` (valence-band share of the gap difference, 0..1).
- `system`: `dot` (alloy name), `matrix` (material name) and `[params.<name>]` for the
  exchange/optical constants dSR_x0, dSR_x1, hwLT_x0, hwLT_x1 (eV), eps_bg_in, eps_bg_out (1,
  0 = use eps_eff) and optionally g_X (1).

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
    "system": {"schema", "name", "kind", "dot", "matrix", "temperature_K", "params", "description"},
}


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
    return out
