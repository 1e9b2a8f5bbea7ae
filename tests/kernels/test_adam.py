"""minitorchseg.kernels.cpu adam_step against torch.optim.Adam / AdamW (single-tensor path), several steps.

Each case runs a few steps on the same parameter with the same gradients on both
sides, from random moments (a restored state), so every term of the update is
exercised at every step: Adam's L2 term, AdamW's decoupled decay, the bias
corrections at growing step counts. Shapes include more elements than one
parallel chunk and a non-contiguous parameter (updated in a copy and written
back). Through ``optim.Adam``: the trajectory test in ``tests/test_nn_optim.py``.
"""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import adam, adam_step
from tests.strategies import TOL, dtypes, randn, seeds, settings_fast

shapes = st.sampled_from([(1,), (7,), (16, 3, 3, 3), (adam.CHUNK + 5,), (3, adam.CHUNK // 2)])


@settings_fast
@given(shape=shapes, seed=seeds, dtype=dtypes, decoupled=st.booleans(), weight_decay=st.sampled_from([0.0, 0.05]),
       contiguous=st.booleans(), start=st.integers(0, 50))
def test_adam_step_matches_torch(shape, seed, dtype, decoupled, weight_decay, contiguous, start):
    lr, betas, eps = 0.01, (0.85, 0.995), 1e-6
    p = randn(seed, shape, dtype)
    m = randn(seed + 1, shape, dtype, scale=0.1)
    v = np.abs(randn(seed + 2, shape, dtype, scale=0.01))
    grads = [randn(seed + 3 + k, shape, dtype) for k in range(3)]
    if contiguous:
        ours = [p.copy(), m.copy(), v.copy()]
    else:
        ours = [np.asfortranarray(a) if a.ndim > 1 else np.repeat(a, 2)[::2] for a in (p, m, v)]
        assert not ours[0].flags.c_contiguous or p.size == 1

    tp = torch.nn.Parameter(torch.tensor(p))
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = cls([tp], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
    opt.state[tp] = {"step": torch.tensor(float(start)), "exp_avg": torch.tensor(m), "exp_avg_sq": torch.tensor(v)}
    for k, g in enumerate(grads):
        adam_step(ours[0], g, ours[1], ours[2], start + k + 1, lr, *betas, eps, weight_decay, decoupled)
        tp.grad = torch.tensor(g)
        opt.step()
    tol = TOL[np.dtype(dtype)]
    state = opt.state[tp]
    for name, a, ref in (("param", ours[0], tp.detach()), ("exp_avg", ours[1], state["exp_avg"]),
                         ("exp_avg_sq", ours[2], state["exp_avg_sq"])):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, ref.numpy(), **tol, err_msg=name)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_step_hand_example(decoupled):
    """Step 1 from zero moments, by hand: m = 0.1 g, v = 0.001 g², the bias corrections undo both factors, so
    p moves by lr·g/(|g| + eps) = ±lr; AdamW first shrinks p by (1 − lr·wd), Adam adds wd·p to g."""
    p = np.array([1.0, -2.0])
    g = np.array([0.5, 0.25])
    m, v = np.zeros(2), np.zeros(2)
    lr, wd = 0.1, 0.5
    adam_step(p, g, m, v, 1, lr, 0.9, 0.999, 0.0, wd, decoupled)
    g_eff = g if decoupled else g + wd * np.array([1.0, -2.0])
    p0 = np.array([1.0, -2.0]) * (1 - lr * wd if decoupled else 1.0)
    np.testing.assert_allclose(m, 0.1 * g_eff, rtol=1e-15)
    np.testing.assert_allclose(v, 0.001 * g_eff**2, rtol=1e-14)
    np.testing.assert_allclose(p, p0 - lr * np.sign(g_eff), rtol=1e-14)
