"""Run the same function in minitorchseg and in torch and compare forward and every input gradient.

``check_against_torch(ours, theirs, arrays)`` builds leaf tensors from the same
NumPy arrays in both libraries, runs both functions, compares the outputs,
back-propagates the *same* non-uniform upstream gradient through both, and
compares each input's gradient, with the named tolerance of the dtype
(:data:`tests.strategies.TOL`) unless one is given.
"""

from __future__ import annotations

import numpy as np
import torch

import minitorchseg as mts

from .strategies import TOL

__all__ = ["check_against_torch", "upstream"]


def upstream(shape, dtype, seed: int = 1) -> np.ndarray:
    """A non-uniform upstream gradient: values in ±[0.5, 1.5], signs mixed."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)


def check_against_torch(ours, theirs, arrays, grad=True, tol=None, grad_tol=None, seed: int = 1):
    """Compare ``ours(*tensors)`` with ``theirs(*torch_tensors)``; return both outputs as NumPy."""
    dtype = np.result_type(*[a.dtype for a in arrays if a.dtype.kind == "f"])
    tol = tol or TOL[np.dtype(dtype)]
    grad_tol = grad_tol or tol
    wants = [grad and a.dtype.kind == "f" for a in arrays]
    mine = [mts.tensor(a, requires_grad=w) for a, w in zip(arrays, wants)]
    ref = [torch.tensor(a, requires_grad=w) for a, w in zip(arrays, wants)]
    out = ours(*mine)
    expected = theirs(*ref)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **tol, err_msg="forward")
    assert out.dtype == np.dtype(str(expected.dtype).replace("torch.", "")), (out.dtype, expected.dtype)
    if grad and any(wants):
        g = upstream(out.shape, out.dtype, seed)
        out.backward(mts.tensor(g))
        expected.backward(torch.tensor(g))
        for i, (m, r, w) in enumerate(zip(mine, ref, wants)):
            if not w:
                continue
            theirs_grad = np.zeros(m.shape) if r.grad is None else r.grad.numpy()
            mine_grad = np.zeros(m.shape) if m.grad is None else m.grad.numpy()
            assert m.grad is None or m.grad.shape == m.shape
            np.testing.assert_allclose(mine_grad, theirs_grad, **grad_tol, err_msg=f"gradient of input {i}")
    return out.numpy(), expected.detach().numpy()
