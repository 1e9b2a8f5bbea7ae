"""Feature Pyramid Network (Lin et al., 2017), torchvision's ``ops/feature_pyramid_network.py``.

From backbone maps C_1..C_L (finest first, each half the size of the previous),
with ``inner`` = 1×1 lateral convs and ``layer`` = 3×3 output convs, all to
``out_channels``::

    last  = inner[L](C_L);                         P_L = layer[L](last)
    for i = L−1 … 1:
        last = inner[i](C_i) + nearest_upsample(last, size of C_i)
        P_i  = layer[i](last)

then an optional extra block, e.g. :class:`LastLevelMaxPool` appends
``"pool" = P_L[:, :, ::2, ::2]`` (a 1×1 max pool with stride 2). Keys as torchvision
0.29's ``Conv2dNormActivation`` layout: ``inner_blocks.i.0.weight``,
``inner_blocks.i.0.bias``, ``layer_blocks.i.0.*`` (and ``.1.*`` for a norm layer).
"""

from __future__ import annotations

from collections import OrderedDict

from .. import functional as F
from ..nn import Conv2d, Module, ModuleList, init
from ..tensor import Tensor
from .misc import Conv2dNormActivation

__all__ = ["FeaturePyramidNetwork", "ExtraFPNBlock", "LastLevelMaxPool"]


class ExtraFPNBlock(Module):
    """Base of the blocks run after the FPN: ``forward(results, x, names) → (results, names)``.

    ``results`` are the FPN outputs, ``x`` the backbone maps, ``names`` the output
    names; a block returns the extended lists.
    """

    def forward(self, results: list[Tensor], x: list[Tensor], names: list[str]):
        raise NotImplementedError


class LastLevelMaxPool(ExtraFPNBlock):
    """Appends ``"pool"``: ``max_pool2d(results[-1], kernel_size=1, stride=2)`` (every other row and column)."""

    def forward(self, results: list[Tensor], x: list[Tensor], names: list[str]):
        names.append("pool")
        results.append(F.max_pool2d(results[-1], kernel_size=1, stride=2, padding=0))
        return results, names


class FeaturePyramidNetwork(Module):
    """torchvision's ``FeaturePyramidNetwork(in_channels_list, out_channels, extra_blocks=None, norm_layer=None)``.

    Args:
        in_channels_list (list of int): channels of each input map, finest first.
        out_channels (int): channels of every output map.
        extra_blocks (ExtraFPNBlock or None): run on the outputs at the end.
        norm_layer (callable C → Module or None): a norm after every conv (the
            convs then have no bias).

    ``forward(x)`` takes an ordered dict name → Tensor[N, C_i, H_i, W_i] and returns
    an ordered dict of Tensor[N, out_channels, H_i, W_i] under the same names
    (plus the extra block's). Convs are initialised Kaiming-uniform (a=1), biases 0.
    """

    def __init__(self, in_channels_list, out_channels: int, extra_blocks: ExtraFPNBlock | None = None,
                 norm_layer=None):
        super().__init__()
        self.inner_blocks = ModuleList()
        self.layer_blocks = ModuleList()
        for in_channels in in_channels_list:
            if in_channels == 0:
                raise ValueError("in_channels=0 is currently not supported")
            self.inner_blocks.append(Conv2dNormActivation(in_channels, out_channels, kernel_size=1, padding=0,
                                                          norm_layer=norm_layer, activation_layer=None))
            self.layer_blocks.append(Conv2dNormActivation(out_channels, out_channels, kernel_size=3,
                                                          norm_layer=norm_layer, activation_layer=None))
        for m in self.modules():
            if isinstance(m, Conv2d):
                init.kaiming_uniform_(m.weight, a=1)
                if m.bias is not None:
                    init.constant_(m.bias, 0)
        if extra_blocks is not None and not isinstance(extra_blocks, ExtraFPNBlock):
            raise TypeError(f"extra_blocks should be of type ExtraFPNBlock not {type(extra_blocks)}")
        self.extra_blocks = extra_blocks

    def forward(self, x: dict) -> OrderedDict:
        if len(x) != len(self.inner_blocks):
            raise ValueError(f"FeaturePyramidNetwork: expected {len(self.inner_blocks)} feature maps, got {len(x)}")
        names = list(x.keys())
        maps = list(x.values())
        last_inner = self.inner_blocks[-1](maps[-1])
        results = [self.layer_blocks[-1](last_inner)]
        for idx in range(len(maps) - 2, -1, -1):
            inner_lateral = self.inner_blocks[idx](maps[idx])
            top_down = F.interpolate(last_inner, size=tuple(inner_lateral.shape[-2:]), mode="nearest")
            last_inner = inner_lateral + top_down
            results.insert(0, self.layer_blocks[idx](last_inner))
        if self.extra_blocks is not None:
            results, names = self.extra_blocks(results, maps, names)
        return OrderedDict(zip(names, results))
