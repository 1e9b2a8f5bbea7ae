"""`minitorchseg.kernels.cuda` offers every entry point of `minitorchseg.kernels.cpu`, with the same signature."""

import inspect
import types

import pytest

import minitorchseg.kernels.cpu as cpu
import minitorchseg.kernels.cuda as gpu

pytestmark = pytest.mark.cudasim

CPU_ENTRIES = sorted(
    name for name, value in vars(cpu).items()
    if isinstance(value, types.FunctionType) and not name.startswith("_")
)


def test_the_cpu_package_exports_entry_points():
    assert len(CPU_ENTRIES) >= 20, CPU_ENTRIES


@pytest.mark.parametrize("name", CPU_ENTRIES)
def test_cuda_twin_has_the_same_signature(name):
    assert hasattr(gpu, name), f"minitorchseg.kernels.cuda lacks {name}"
    assert name in gpu.__all__
    assert inspect.signature(getattr(gpu, name)) == inspect.signature(getattr(cpu, name))
