"""`import qdsim` is cheap and side-effect free (architecture.md §2), and the layers hold."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_heavy_optional_modules():
    code = (
        "import sys, qdsim; heavy = [m for m in ('xarray', 'matplotlib', 'numba', 'ptufile') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert out.stderr == ""


def test_lazy_attributes_resolve():
    import qdsim

    assert callable(qdsim.phase_diagram) and callable(qdsim.load_system)
    assert qdsim.analysis.__name__ == "qdsim.analysis"
