"""``summary(model, input_shape)``: a torchinfo-like table of every layer's output shape, parameters and MACs.

One forward pass of zeros (``no_grad``, eval mode, so batch-norm statistics
are left alone; each module's mode is restored afterwards) records, for each
call of a *leaf* module (one without children) in call order:

* the output shape (the first array of what it returns: the first output of a
  max-pool with indices, the padded batch of an ``ImageList``);
* its own parameters, counted at its first call only;
* its multiply-accumulates (MACs) for the whole batch::

      Conv2d            N·H_out·W_out · C_out·(C_in/groups)·k_h·k_w   (= output pixels × weight elements)
      ConvTranspose2d   N·H_in·W_in  · C_in·(C_out/groups)·k_h·k_w    (each input pixel scatters the kernel)
      Linear            rows · in_features·out_features
      anything else     0   (batch norm, activations, pooling and resampling multiply by no weights;
                             biases and the additions of skip connections are not counted either)

For Mask R-CNN the count depends on the image: the RoI heads run once per
proposal (the RPN keeps up to ``post_nms_top_n`` of them) and the mask head once
per detection, so the table is the cost of that forward on zeros.

The totals count every parameter of the model (``sum(p.numel())``, torch's
number), trainable or not (FCN's fixed bilinear upsamplings are not trainable).
"""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..nn import Conv2d, ConvTranspose2d, Linear, Module
from ..tensor import Tensor

__all__ = ["summary"]


def _first_shape(out) -> tuple[int, ...] | None:
    """The shape of the first array in ``out`` (a Tensor; a tuple, list or dict of them; an ImageList), or None."""
    if hasattr(out, "shape"):
        return tuple(out.shape)
    if hasattr(out, "tensors"):
        return _first_shape(out.tensors)
    if isinstance(out, (tuple, list)) and out:
        return _first_shape(out[0])
    if isinstance(out, dict) and out:
        return _first_shape(next(iter(out.values())))
    return None


def _macs(module: Module, inputs: tuple, output_shape: tuple[int, ...] | None) -> int:
    if isinstance(module, Conv2d):
        n, _, h, w = output_shape
        return n * h * w * module.weight.numel()
    if isinstance(module, ConvTranspose2d):
        n, _, h, w = inputs[0].shape
        return n * h * w * module.weight.numel()
    if isinstance(module, Linear):
        return int(np.prod(output_shape[:-1])) * module.weight.numel()
    return 0


def summary(model: Module, input_shape, dtype=np.float32) -> tuple[str, dict]:
    """Run ``model`` on zeros of ``input_shape`` ((N, C, H, W), or (C, H, W) for N = 1) and tabulate its layers.

    Returns ``(table, totals)``: the table as a string, and ``totals`` with keys
    ``total_params``, ``trainable_params``, ``non_trainable_params``, ``total_macs``,
    ``input_shape``, ``output_shape`` and ``layers`` (a list of dicts: ``name``,
    ``type``, ``output_shape``, ``params``, ``macs``), one per leaf-module call.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"summary: input_shape must be (N, C, H, W) or (C, H, W) of positive ints, got {input_shape}")
    rows: list[dict] = []
    counted: set[int] = set()
    leaves = [(name, m) for name, m in model.named_modules() if not m._modules and m is not model]
    if not model._modules:
        leaves = [(type(model).__name__, model)]

    def recording(name: str, module: Module, forward):
        def call(*args, **kwargs):
            out = forward(*args, **kwargs)
            shape = _first_shape(out)
            params = 0 if id(module) in counted else sum(p.numel() for p in module.parameters())
            counted.add(id(module))
            rows.append(dict(name=name, type=type(module).__name__, output_shape=shape,
                             params=params, macs=_macs(module, args, shape)))
            return out
        return call

    modes = [(m, m.training) for m in model.modules()]
    try:
        # Shadow each leaf's forward with a recording wrapper (an instance attribute, removed in `finally`).
        for name, module in leaves:
            module.__dict__["forward"] = recording(name, module, module.forward)
        model.eval()
        with no_grad():
            out = model(Tensor(np.zeros(shape, dtype=dtype)))
    finally:
        for _, module in leaves:
            module.__dict__.pop("forward", None)
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    totals = dict(total_params=total, trainable_params=trainable, non_trainable_params=total - trainable,
                  total_macs=sum(r["macs"] for r in rows), input_shape=shape, output_shape=_first_shape(out),
                  layers=rows)
    return _format(type(model).__name__, rows, totals), totals


def _shape_text(shape) -> str:
    return "--" if shape is None else str(list(shape))


def _format(title: str, rows: list[dict], totals: dict) -> str:
    header = ("Layer (type)", "Output Shape", "Param #", "Mult-Adds")
    body = [(f"{r['name']} ({r['type']})", _shape_text(r["output_shape"]), f"{r['params']:,}" if r["params"] else "--",
             f"{r['macs']:,}" if r["macs"] else "--") for r in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(4)]
    width = sum(widths) + 6

    def line(cells) -> str:
        return f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:>{widths[2]}}  {cells[3]:>{widths[3]}}"

    rule, thin = "=" * width, "-" * width
    lines = [rule, title, rule, line(header), thin, *[line(b) for b in body], rule,
             f"Total params: {totals['total_params']:,}",
             f"Trainable params: {totals['trainable_params']:,}",
             f"Non-trainable params: {totals['non_trainable_params']:,}",
             f"Total mult-adds (M): {totals['total_macs'] / 1e6:,.2f}",
             thin,
             f"Input shape: {list(totals['input_shape'])}",
             f"Output shape: {_shape_text(totals['output_shape'])}",
             f"Params size (MB): {totals['total_params'] * 4 / 1e6:,.2f}  (float32)",
             rule]
    return "\n".join(lines)
