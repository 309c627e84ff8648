"""Shared matplotlib setup: Agg backend when no display, one place for figure defaults."""

from __future__ import annotations

import os


def pyplot():
    """Import pyplot, choosing the Agg backend when there is no display."""
    import matplotlib

    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
