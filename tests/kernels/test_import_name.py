"""The kernels load under one module name only: ``minitorchseg.kernels``.

Numba names its cache files after the source file, so a kernel cached while the
folder was imported as the top-level package ``kernels`` failed to load in a
process importing ``minitorchseg`` ("No module named 'kernels'"). The top-level
name is refused with a message that names the right import.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_top_level_name_is_refused_with_the_right_import():
    result = _python("import kernels.cpu")
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "minitorchseg.kernels" in result.stderr, result.stderr


def test_package_name_imports():
    result = _python("import minitorchseg.kernels.cpu as k; print(k.conv2d_forward.__module__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "minitorchseg.kernels.cpu.conv"
