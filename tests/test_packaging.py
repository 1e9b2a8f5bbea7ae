"""The installed package owns its import names: ``minitorchseg`` only (its kernels are ``minitorchseg.kernels``)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_a_users_kernels_py_does_not_shadow_ours(tmp_path):
    # A notebook folder holding its own kernels.py: `import minitorchseg` must still work, and `import kernels`
    # must still give the user's module.
    (tmp_path / "kernels.py").write_text("MARK = 'the user module'\n")
    code = ("import minitorchseg, minitorchseg.functional as F, kernels; "
            "x = minitorchseg.randn(1, 1, 4, 4); print(F.max_pool2d(x, 2).shape, kernels.MARK)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(1,", "1,", "2,", "2)", "the", "user", "module"]


def test_subpackages_are_attributes_after_one_import():
    code = ("import minitorchseg as mts; m = mts.models.unet(num_classes=3, base_channels=4, depth=1); "
            "print(type(m).__name__, mts.metrics.ConfusionMatrix.__name__, mts.data.__name__, mts.ops.nms.__name__,"
            " mts.nn.Conv2d.__name__, mts.optim.Adam.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["UNet", "ConfusionMatrix", "minitorchseg.data", "nms", "Conv2d", "Adam"]


def test_the_wheel_installs_nothing_named_kernels_at_the_top(tmp_path):
    pytest.importorskip("setuptools")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    if done.returncode != 0:
        pytest.skip(f"pip wheel could not build here: {done.stderr.strip()[-300:]}")
    (wheel,) = tmp_path.glob("minitorchseg-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"minitorchseg", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    kernel_files = {name for name in names if name.startswith("minitorchseg/kernels/")}
    expected = {f"minitorchseg/kernels/{p.relative_to(ROOT / 'kernels').as_posix()}"
                for p in (ROOT / "kernels").rglob("*.py")}
    assert expected <= kernel_files
