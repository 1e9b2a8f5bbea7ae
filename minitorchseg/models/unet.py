"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), with padded convolutions so the output has the input's size.

A contracting path of ``depth`` steps (2x2 max-pool, then two 3x3 convolutions
doubling the channels) and an expansive path that climbs back: upsample ×2,
concatenate the contracting path's map of the same level (the skip
connection), two 3x3 convolutions::

    level  channels (base c = 64, depth 4)
      0    in → 64, 64 ─────────────────────────────────────────── cat → 128 → 64, 64 → 1x1 → classes
      1         pool → 128, 128 ───────────────────────── cat → 256 → 128, 128 ↑
      2              pool → 256, 256 ────────── cat → 512 → 256, 256 ↑
      3                   pool → 512, 512 ─ cat → 1024 → 512, 512 ↑
      4                        pool → 1024, 1024 (bottleneck) ─ up ↑

Upsampling: ``bilinear=False`` uses the paper's 2x2 "up-convolution" (a
transposed convolution, stride 2, that halves the channels); ``bilinear=True``
uses bilinear interpolation (``align_corners=True``), which keeps the channels,
so the bottleneck and every expansive step produce half the channels and the
concatenations have the same widths as above.

Changes from the paper, all common practice: 3x3 convolutions are padded by 1
(the paper's are unpadded, so its 572x572 input gives a 388x388 output; here
every level keeps its size); batch norm after each convolution
(``batch_norm=True``, which drops the convolution's bias, redundant before batch
norm); He initialisation as in the paper (§3).

Odd sizes: the pools floor, so level l has ``⌊H / 2^l⌋`` rows and upsampling
level l + 1 gives ``2·⌊H / 2^(l+1)⌋``, one row short of level l when
``⌊H / 2^l⌋`` is odd. The upsampled map is **zero-padded** to the skip's size
before the concatenation (half the difference on top, the rest at the bottom;
likewise left/right), so nothing of the contracting path is cropped away and the
output is exactly H x W. ``depth`` pools need H, W ≥ 2^depth.
"""

from __future__ import annotations

from .. import functional as F
from ..nn import BatchNorm2d, Conv2d, ConvTranspose2d, MaxPool2d, Module, ModuleList, ReLU, Sequential, Upsample
from ..tensor import Tensor
from ._common import check_input, check_positive_int, he_init_

__all__ = ["UNet", "unet", "double_conv"]


def double_conv(in_channels: int, out_channels: int, mid_channels: int | None = None,
                batch_norm: bool = True) -> Sequential:
    """(conv 3x3 padding 1 → [BatchNorm2d] → ReLU) twice: ``in → mid → out`` channels, size kept."""
    mid = out_channels if mid_channels is None else mid_channels
    layers = []
    for cin, cout in ((in_channels, mid), (mid, out_channels)):
        layers.append(Conv2d(cin, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(BatchNorm2d(cout))
        layers.append(ReLU(inplace=True))
    return Sequential(*layers)


class Down(Module):
    """One contracting step: 2x2 max-pool (H → ⌊H/2⌋), then :func:`double_conv`."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True):
        super().__init__()
        self.pool = MaxPool2d(2)
        self.conv = double_conv(in_channels, out_channels, batch_norm=batch_norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pool(x))


class Up(Module):
    """One expansive step: upsample ×2, pad to the skip's size, concatenate [skip, up], :func:`double_conv`.

    ``in_channels`` is the width of the map from below. Transposed: the up-conv
    halves it (1024 → 512), the concatenation with the skip (512) restores it,
    double_conv maps 1024 → 512 → 512. Bilinear: the map from below keeps its
    width (512), the concatenation has 512 + 512, double_conv maps it through
    half of that (512) to ``out_channels`` (256, the next level's skip width).
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, bilinear: bool = False,
                 batch_norm: bool = True):
        super().__init__()
        if bilinear:
            self.up = Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            concat = in_channels + skip_channels
            self.conv = double_conv(concat, out_channels, concat // 2, batch_norm)
        else:
            self.up = ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
            self.conv = double_conv(in_channels // 2 + skip_channels, out_channels, batch_norm=batch_norm)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)                                   # 2·⌊h/2⌋ rows: the skip's h, or h − 1 when h is odd
        dh, dw = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]   # 0 or 1 each
        if dh or dw:
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))   # (left, right, top, bottom)
        return self.conv(F.cat([skip, x], dim=1))


class UNet(Module):
    """U-Net; see the module docstring. Submodules: ``inc``, ``down[0..depth−1]``, ``up[0..depth−1]``, ``outc``."""

    def __init__(self, num_classes: int, in_channels: int = 3, base_channels: int = 64, depth: int = 4,
                 bilinear: bool = False, batch_norm: bool = True):
        super().__init__()
        self.num_classes = check_positive_int("unet", "num_classes", num_classes)
        self.in_channels = check_positive_int("unet", "in_channels", in_channels)
        self.base_channels = check_positive_int("unet", "base_channels", base_channels)
        self.depth = check_positive_int("unet", "depth", depth)
        self.bilinear = bilinear
        self.min_size = 2 ** depth
        widths = [base_channels * 2 ** level for level in range(depth)]   # levels 0..depth−1: 64, 128, 256, 512
        # The bottleneck: 1024 with up-convolutions (which halve it back to 512 before the concatenation);
        # 512 with bilinear upsampling, which cannot change the channels.
        bottom = base_channels * 2 ** depth // (2 if bilinear else 1)
        self.inc = double_conv(in_channels, widths[0], batch_norm=batch_norm)
        self.down = ModuleList([Down(cin, cout, batch_norm) for cin, cout in zip(widths, widths[1:] + [bottom])])
        ups, below = [], bottom
        for level in range(depth - 1, -1, -1):   # up[0] joins the bottleneck to level depth − 1
            # bilinear: halve again after the concatenation, so the next level's input matches its skip
            out = widths[level] // 2 if bilinear and level > 0 else widths[level]
            ups.append(Up(below, widths[level], out, bilinear, batch_norm))
            below = out
        self.up = ModuleList(ups)
        self.outc = Conv2d(base_channels, num_classes, 1)
        he_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, H, W) with H, W ≥ 2^depth → class scores (N, num_classes, H, W)."""
        check_input("unet", x, self.in_channels, self.min_size,
                    f"{self.depth} 2x2 max-pools each halve the size, rounding down")
        skips = [self.inc(x)]                # level 0: H x W
        for down in self.down:
            skips.append(down(skips[-1]))    # level l: ⌊H / 2^l⌋
        h = skips.pop()                      # the bottleneck
        for up in self.up:
            h = up(h, skips.pop())           # back to the skip's size, level by level
        return self.outc(h)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, in_channels={self.in_channels}, "
                f"base_channels={self.base_channels}, depth={self.depth}, bilinear={self.bilinear}")


def unet(num_classes: int, in_channels: int = 3, base_channels: int = 64, depth: int = 4, bilinear: bool = False,
         batch_norm: bool = True) -> UNet:
    """U-Net; ``base_channels`` is the width of level 0 (the paper: 64), doubled at every level."""
    return UNet(num_classes, in_channels, base_channels, depth, bilinear, batch_norm)
