"""Helpers shared by the RPN, RoI-heads and Mask R-CNN tests: weight copying, torch replay of the samplers."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["copy_into_ours", "copy_into_torch", "replay_torch_randperm", "as_numpy", "assert_grads_equal",
           "float64_rpn_labels"]


def copy_into_ours(theirs: torch.nn.Module, ours) -> None:
    """Load every tensor of a torch module's state dict into ours, key by key (strict)."""
    ours.load_state_dict({k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()})


def copy_into_torch(ours, theirs: torch.nn.Module) -> None:
    """Load our state dict into a torch module (strict: the same keys and shapes)."""
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)


def replay_torch_randperm(n: int) -> np.ndarray:
    """A sampler generator drawing ``torch.randperm(n)``: with the same torch seed, the same choices as torchvision."""
    return torch.randperm(n).numpy()


def as_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def assert_grads_equal(ours, theirs: torch.nn.Module, tol: dict) -> int:
    """Every parameter's gradient equal (a missing gradient counts as zeros); returns how many were compared."""
    mine = dict(ours.named_parameters())
    count = 0
    for name, p in theirs.named_parameters():
        if not p.requires_grad:
            continue
        expected = np.zeros(tuple(p.shape)) if p.grad is None else p.grad.numpy()
        got = mine[name].grad
        got = np.zeros(tuple(p.shape)) if got is None else got.numpy()
        scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
        np.testing.assert_allclose(got, expected, rtol=tol["rtol"], atol=tol["atol"] * scale, err_msg=name)
        count += 1
    return count


def float64_rpn_labels(theirs) -> None:
    """torchvision makes the RPN's anchor labels float32 whatever the model's dtype, so its objectness loss of a
    float64 model is float32 (BCE promotes to the target's dtype); casting the labels to float64 makes the
    reference a float64 computation (the same formula) that a 1e-10 comparison can use."""
    assign = theirs.assign_targets_to_anchors

    def assign_float64(anchors, targets):
        labels, matched = assign(anchors, targets)
        return [label.double() for label in labels], matched

    theirs.assign_targets_to_anchors = assign_float64
