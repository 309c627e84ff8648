"""The `qdsim` command line (typer). Each verb group lives in its own module and registers itself.

Expected errors (bad input, missing file, corrupt data) print one line and exit with status 2;
`--debug` shows the traceback.
"""

from __future__ import annotations

from qdsim.cli._app import app, main

__all__ = ["app", "main"]
