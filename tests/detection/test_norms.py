"""F.group_norm / nn.GroupNorm against torch, and FrozenBatchNorm2d against torchvision.ops.misc."""

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg import nn
from minitorchseg.autograd import gradcheck
from minitorchseg.ops import FrozenBatchNorm2d

from ..strategies import dtypes, randn, seeds, settings_fast, strided
from ..torch_ref import check_against_torch

GROUPINGS = st.sampled_from([(1, 4), (2, 4), (4, 4), (3, 6), (2, 8)])  # (groups, channels)


@settings_fast
@given(seed=seeds, dtype=dtypes, grouping=GROUPINGS, n=st.integers(1, 3), spatial=st.sampled_from([(5, 4), (3,), ()]),
       affine=st.booleans(), contiguous=st.booleans())
def test_group_norm_matches_torch(seed, dtype, grouping, n, spatial, affine, contiguous):
    groups, channels = grouping
    if channels // groups * int(np.prod(spatial)) == 1:
        # one value per group: x̂ = 0 and the exact gradient is 0, torch's is rounding noise × 1/sqrt(eps)
        # (and with N = 1 torch refuses it: test_group_norm_bad_input); keep ≥ 2 values per group
        spatial = (3,)
    x = randn(seed, (n, channels) + spatial, dtype, scale=3.0) + 1.5
    if not contiguous:
        x = strided(x)
    arrays = [x]
    if affine:
        arrays += [randn(seed + 1, (channels,), dtype), randn(seed + 2, (channels,), dtype)]
    # The reference is torch computed in float64 (cast back to the input dtype): with two values per group the
    # gradient is a difference of nearly equal terms, and torch's own float32 kernel is off by ~1.5e-5 there
    # (seed 22300545, grouping (3, 6), one image) while ours stays within 5e-7 of the float64 answer.
    check_against_torch(
        lambda *t: F.group_norm(t[0], groups, *t[1:], eps=1e-5),
        lambda *t: torch.nn.functional.group_norm(t[0].double(), groups, *(a.double() for a in t[1:]),
                                                  eps=1e-5).to(t[0].dtype),
        arrays,
    )


@settings_fast
@given(seed=seeds, grouping=GROUPINGS)
def test_group_norm_gradcheck(seed, grouping):
    groups, channels = grouping
    x = mts.tensor(randn(seed, (2, channels, 3, 2)), requires_grad=True)
    w = mts.tensor(randn(seed + 1, (channels,)), requires_grad=True)
    b = mts.tensor(randn(seed + 2, (channels,)), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.group_norm(x, groups, w, b), [x, w, b])


def test_group_norm_literal():
    # one group of the values 1, 2, 3, 4 (two channels of two): mean 2.5, variance 1.25
    x = mts.tensor(np.array([[[1.0, 2.0], [3.0, 4.0]]]))
    expected = (np.array([[[1.0, 2.0], [3.0, 4.0]]]) - 2.5) / np.sqrt(1.25 + 1e-5)
    np.testing.assert_allclose(F.group_norm(x, 1).numpy(), expected, rtol=1e-15)


@settings_fast
@given(seed=seeds, dtype=dtypes)
def test_group_norm_layer_matches_torch_and_loads_its_state(seed, dtype):
    ours, theirs = nn.GroupNorm(2, 6), torch.nn.GroupNorm(2, 6)
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    theirs = theirs.to(getattr(torch, np.dtype(dtype).name))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.to(dtype)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    x = randn(seed, (1, 6, 4, 3), dtype)  # a batch of one: what batch norm cannot do in training
    check_against_torch(lambda t: ours(t), lambda t: theirs(t), [x])


def test_group_norm_bad_input():
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="divisible by num_groups=4"):
        F.group_norm(mts.zeros((1, 6, 2, 2)), 4)
    with pytest.raises(ValueError, match="more than 1 value"):
        F.group_norm(mts.zeros((1, 4)), 4)
    with pytest.raises(ValueError, match=r"expected input \(N, 6"):
        nn.GroupNorm(2, 6)(mts.zeros((1, 4, 2, 2)))
    with pytest.raises(TypeError, match="weight: expected dtype float64"):
        nn.GroupNorm(2, 6)(mts.zeros((1, 6, 2, 2), dtype=np.float64))


@settings_fast
@given(seed=seeds, dtype=dtypes)
def test_frozen_batch_norm_matches_torchvision(seed, dtype):
    theirs = torchvision.ops.misc.FrozenBatchNorm2d(5)
    rng = np.random.default_rng(seed)
    for name in ("weight", "bias", "running_mean"):
        getattr(theirs, name).copy_(torch.tensor(rng.standard_normal(5)))
    theirs.running_var.copy_(torch.tensor(rng.uniform(0.1, 3.0, 5)))
    theirs = theirs.to(getattr(torch, np.dtype(dtype).name))
    ours = FrozenBatchNorm2d(5)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.to(dtype)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias", "running_mean", "running_var"]
    assert list(ours.parameters()) == []
    check_against_torch(lambda t: ours(t), lambda t: theirs(t), [randn(seed + 1, (2, 5, 3, 4), dtype)])


def test_frozen_batch_norm_loads_a_batch_norm_state_and_ignores_num_batches_tracked():
    bn = torch.nn.BatchNorm2d(3)
    bn.running_mean.copy_(torch.tensor([1.0, -2.0, 0.5]))
    bn.running_var.copy_(torch.tensor([4.0, 1.0, 0.25]))
    state = {k: v.numpy() for k, v in bn.state_dict().items()}
    assert "num_batches_tracked" in state
    frozen = FrozenBatchNorm2d(3, eps=0.0)
    result = frozen.load_state_dict(state)
    assert result.unexpected_keys == [] and result.missing_keys == []
    y = frozen(mts.tensor(np.ones((1, 3, 1, 1)))).numpy().reshape(-1)
    np.testing.assert_allclose(y, [(1 - 1) / 2, (1 + 2) / 1, (1 - 0.5) / 0.5], rtol=1e-6)  # (x − mean)/sqrt(var)
    with pytest.raises(KeyError, match="unexpected"):
        frozen.load_state_dict(dict(state, extra=np.zeros(1)))
