"""The layout rules of the source tree, checked by reading the code (``ast``), never by importing it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "kernels"

# Third-party packages a kernel may use besides the standard library: the array
# libraries, the compiler, and threadpoolctl (limits BLAS threads in kernels/cpu/_runtime.py).
KERNEL_THIRD_PARTY = frozenset({"numpy", "numba", "cupy", "threadpoolctl"})


def _kernel_modules() -> list[Path]:
    return sorted(p for p in KERNELS.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(source: str, path: Path, root: Path = KERNELS) -> list[tuple[int, str, tuple[str, ...]]]:
    """Every import in ``source`` (module level and inside functions) as ``(line, module, names)``.

    ``module`` is absolute and dotted; a relative import is resolved against the
    file's own package, with the top folder named ``kernels`` (``from ..shared.pool
    import window_max`` in ``kernels/cuda/pool.py`` gives ``kernels.shared.pool``), or
    ``<outside kernels>...`` when it climbs above it. ``names`` are the imported
    names (``()`` for ``import m``).
    """
    relative = path.relative_to(root)
    package = ("kernels",) + relative.parts[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            if node.level == 0:
                found.append((node.lineno, node.module, names))
                continue
            if node.level > len(package):
                found.append((node.lineno, "<outside kernels>." + (node.module or ""), names))
                continue
            base = package[: len(package) - (node.level - 1)]
            module = ".".join(base + ((node.module,) if node.module else ()))
            found.append((node.lineno, module, names))
    return sorted(found)


def _foreign_imports(source: str, path: Path, root: Path = KERNELS) -> list[str]:
    """Imports of anything other than the kernels package, NumPy/Numba/CuPy/threadpoolctl and the stdlib."""
    bad = []
    for line, module, _names in _imports(source, path, root):
        top = module.split(".")[0]
        if top == "kernels" or top in KERNEL_THIRD_PARTY or top in sys.stdlib_module_names:
            continue
        bad.append(f"{path.relative_to(root)}:{line} imports {module}")
    return bad


def _cross_device_imports(source: str, path: Path, root: Path = KERNELS) -> list[str]:
    """Imports by a CUDA module from ``kernels.cpu`` (or by a CPU module from ``kernels.cuda``), and
    any private name (``_x``) imported from another module unless it is a sibling module itself."""
    relative = path.relative_to(root)
    device = relative.parts[0] if len(relative.parts) > 1 else None
    other = {"cuda": "kernels.cpu", "cpu": "kernels.cuda"}.get(device)
    bad = []
    for line, module, names in _imports(source, path, root):
        if other is not None and (module == other or module.startswith(other + ".")):
            bad.append(f"{relative}:{line} ({device}) imports {names or module} from {module}")
        for name in names:
            if not name.startswith("_"):
                continue
            folder = root.joinpath(*module.split(".")[1:]) if module.startswith("kernels") else None
            if folder is None or not ((folder / f"{name}.py").exists() or (folder / name).is_dir()):
                bad.append(f"{relative}:{line} imports the private name {name} from {module}")
    return bad


def test_kernels_import_nothing_of_the_engine():
    """Kernels know arrays, not tensors: no module under kernels/ imports minitorchseg (the engine,
    nn, models, ...), torch or any package but NumPy/Numba/CuPy/threadpoolctl and the standard library."""
    modules = _kernel_modules()
    assert len(modules) > 20, modules
    bad = [msg for p in modules for msg in _foreign_imports(p.read_text(encoding="utf-8"), p)]
    assert not bad, "\n".join(bad)


def test_cuda_modules_import_nothing_from_cpu_modules():
    """Helpers both devices compile live in kernels/shared/ or kernels/geometry.py: a CUDA module imports
    nothing from kernels/cpu/ (nor a CPU module from kernels/cuda/), and no module imports another
    module's private name."""
    bad = [msg for p in _kernel_modules() for msg in _cross_device_imports(p.read_text(encoding="utf-8"), p)]
    assert not bad, "\n".join(bad)


def test_import_checks_catch_violations(tmp_path):
    """The two checks above flag what they are meant to flag (so a green run means something)."""
    root = tmp_path / "kernels"
    (root / "cuda").mkdir(parents=True)
    cuda_module = root / "cuda" / "pool.py"
    (root / "cuda" / "_launch.py").write_text("")
    source = (
        "import os\nimport numpy as np\nfrom numba import cuda\n"
        "from ._launch import launch\nfrom . import _launch\nfrom ..shared.pool import window_max\n"
        "from minitorchseg.tensor import Tensor\n"
        "def f():\n    import torch\n"
        "from ...functional import conv\n"
        "from ..cpu.pool import _window_max_kernel\n"
        "from ..cpu import conv\n"
        "from ._launch import _private\n"
    )
    foreign = _foreign_imports(source, cuda_module, root)
    assert [m.split(" imports ")[1] for m in foreign] == [
        "minitorchseg.tensor", "torch", "<outside kernels>.functional"
    ], foreign
    cross = _cross_device_imports(source, cuda_module, root)
    assert any("_window_max_kernel" in m and "from kernels.cpu.pool" in m and "(cuda)" in m for m in cross), cross
    assert any("private name _window_max_kernel" in m for m in cross), cross
    assert any("('conv',) from kernels.cpu" in m for m in cross), cross
    assert any("private name _private from kernels.cuda._launch" in m for m in cross), cross
    assert not any("_launch from" in m or "window_max from kernels.shared" in m for m in cross), cross
    assert len(cross) == 4, cross
