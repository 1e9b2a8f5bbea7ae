"""``summary(model, input_shape)``: a torchinfo-like table of every layer's output shape, parameters and MACs.

One forward pass of zeros (``no_grad``, eval mode, so batch-norm statistics
are left alone; each module's mode is restored afterwards) records, for each
call of a *leaf* module (one without children) in call order:

* the output shape (the first output for layers that return a tuple, such as
  a max-pool with indices);
* its own parameters, counted at its first call only;
* its multiply-accumulates (MACs) for the whole batch::

      Conv2d            N·H_out·W_out · C_out·(C_in/groups)·k_h·k_w   (= output pixels × weight elements)
      ConvTranspose2d   N·H_in·W_in  · C_in·(C_out/groups)·k_h·k_w    (each input pixel scatters the kernel)
      Linear            rows · in_features·out_features
      anything else     0   (batch norm, activations, pooling and resampling multiply by no weights;
                             biases and the additions of skip connections are not counted either)

The totals count every parameter of the model (``sum(p.numel())``, torch's
number), trainable or not (FCN's fixed bilinear upsamplings are not trainable).
"""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..nn import Conv2d, ConvTranspose2d, Linear, Module
from ..tensor import Tensor

__all__ = ["summary"]


def _macs(module: Module, inputs: tuple, output: Tensor) -> int:
    if isinstance(module, Conv2d):
        n, _, h, w = output.shape
        return n * h * w * module.weight.numel()
    if isinstance(module, ConvTranspose2d):
        n, _, h, w = inputs[0].shape
        return n * h * w * module.weight.numel()
    if isinstance(module, Linear):
        return int(np.prod(output.shape[:-1])) * module.weight.numel()
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
            first = out[0] if isinstance(out, tuple) else out
            params = 0 if id(module) in counted else sum(p.numel() for p in module.parameters())
            counted.add(id(module))
            rows.append(dict(name=name, type=type(module).__name__, output_shape=first.shape,
                             params=params, macs=_macs(module, args, first)))
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
    out = out[0] if isinstance(out, tuple) else out
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    totals = dict(total_params=total, trainable_params=trainable, non_trainable_params=total - trainable,
                  total_macs=sum(r["macs"] for r in rows), input_shape=shape, output_shape=out.shape, layers=rows)
    return _format(type(model).__name__, rows, totals), totals


def _format(title: str, rows: list[dict], totals: dict) -> str:
    header = ("Layer (type)", "Output Shape", "Param #", "Mult-Adds")
    body = [(f"{r['name']} ({r['type']})", str(list(r["output_shape"])), f"{r['params']:,}" if r["params"] else "--",
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
             f"Output shape: {list(totals['output_shape'])}",
             f"Params size (MB): {totals['total_params'] * 4 / 1e6:,.2f}  (float32)",
             rule]
    return "\n".join(lines)
