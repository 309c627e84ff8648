"""Durations with units, as typed on the command line: "64ps", "50 ns", "2.5us", "10ms", "1s".

Parsing is exact (decimal arithmetic): "0.1ns" is 100 ps, not 99.99999999999999.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["UNITS_PS", "format_duration_ps", "parse_duration_ps"]

#: Picoseconds per unit. "us", "µs" (micro sign) and "μs" (Greek mu) all mean microseconds.
UNITS_PS: dict[str, int] = {
    "ps": 1,
    "ns": 10**3,
    "us": 10**6,
    "µs": 10**6,
    "μs": 10**6,
    "ms": 10**9,
    "s": 10**12,
    "min": 60 * 10**12,
    "h": 3600 * 10**12,
}

_RE = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Zµμ]+)\s*$")


def parse_duration_ps(text: str) -> int:
    """Parse a duration with a unit into whole picoseconds.

    **Arguments:** `text`: a number and a unit, optionally separated by spaces: "64ps",
    "50 ns", "2.5us", "1e-3s", "10ms", "1s", "5min", "1h" (units: ps, ns, us/µs, ms, s, min, h).

    **Returns:** the duration in picoseconds (int, > 0).

    **Raises:** `ValueError` (quoting the text) for a missing or unknown unit, a number that
    cannot be read, a duration <= 0, or one that is not a whole number of picoseconds.
    """
    if not isinstance(text, str):
        raise ValueError(f"duration must be text like '10ms', got {text!r}")
    m = _RE.match(text)
    if not m:
        raise ValueError(
            f"cannot read duration {text!r}: expected a number and a unit, e.g. '64ps', '50ns', "
            f"'10ms' (units: {', '.join(UNITS_PS)})"
        )
    number, unit = m.groups()
    if unit not in UNITS_PS:
        raise ValueError(
            f"unknown unit {unit!r} in duration {text!r}; use one of {', '.join(UNITS_PS)}"
        )
    try:
        value = Decimal(number) * UNITS_PS[unit]
    except InvalidOperation:
        raise ValueError(f"cannot read the number in duration {text!r}") from None
    if value <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    if value != value.to_integral_value():
        raise ValueError(f"duration {text!r} is not a whole number of picoseconds")
    return int(value)


def format_duration_ps(ps: int | float) -> str:
    """A duration in ps as short text in the largest unit that keeps it >= 1: 10**10 -> '10 ms'."""
    ps = float(ps)
    for unit in ("h", "min", "s", "ms", "us", "ns"):
        if abs(ps) >= UNITS_PS[unit]:
            return f"{ps / UNITS_PS[unit]:.4g} {unit}"
    return f"{ps:.4g} ps"
