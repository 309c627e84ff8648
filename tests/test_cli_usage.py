"""Usage errors of the installed `qdsim` console script: click's usage line, exit status 2.

Run as a subprocess (the entry point users get), with whatever typer is installed: typer >= 0.2x
vendors click as `typer._click` and no longer installs `click`, so the error handler must not
need the real one.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

QDSIM = Path(sys.executable).with_name("qdsim")

CASES = [
    (["sweep", "--bogus"], "qdsim sweep", "No such option: --bogus"),
    (["foo"], "qdsim", "No such command 'foo'"),
    (["g2"], "qdsim g2", "Missing argument"),
    (["sweep", "--n-quad", "abc"], "qdsim sweep", "Invalid value for '--n-quad'"),
    (["solve", "--radius", "5"], "qdsim solve", "Missing option '--x'"),
]


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QDSIM_JAX_CACHE": "off", "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def _assert_usage_error(p: subprocess.CompletedProcess[str], prog: str, message: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith(f"Usage: {prog} "), p.stderr
    assert lines[1] == f"Try '{prog} --help' for help.", p.stderr
    assert lines[-1].startswith("Error: ") and message in lines[-1], p.stderr
    assert len(lines) == 3, p.stderr


@pytest.mark.skipif(not QDSIM.exists(), reason=f"console script {QDSIM} not installed")
@pytest.mark.parametrize(("args", "prog", "message"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_usage_errors_print_usage_and_exit_2(args, prog, message):
    _assert_usage_error(_run([str(QDSIM), *args]), prog, message)


@pytest.mark.skipif(
    importlib.util.find_spec("typer._click") is None, reason="this typer runs on the real click"
)
def test_usage_errors_without_click_installed():
    """A fresh install of a typer that vendors click has no `click` module: `import click` then
    fails. Block it and the handler must still print the usage error."""
    code = (
        "import sys; sys.modules['click'] = None; sys.argv[0] = 'qdsim'; "
        "from qdsim.cli import main; main()"
    )
    p = _run([sys.executable, "-c", code, "sweep", "--bogus"])
    _assert_usage_error(p, "qdsim sweep", "No such option: --bogus")
