"""SegNet (Badrinarayanan, Kendall & Cipolla, TPAMI 2017) and SegNet-Basic.

The encoder is VGG16's 13 convolutions, each followed by batch norm and ReLU;
each stage ends in a 2x2 max-pool that *remembers where each maximum came
from* (the indices). The decoder mirrors it: every stage first max-*unpools*
with its encoder's indices (each value goes back to the position it was pooled
from, zeros elsewhere: a sparse map), then convolutions densify it::

    input (H)  enc1 ─ pool1 ─ enc2 ─ pool2 ─ enc3 ─ pool3 ─ enc4 ─ pool4 ─ enc5 ─ pool5 (H/32)
                         ╎indices      ╎           ╎             ╎             ╎
    scores (H) ← classifier ← dec1 ← unpool1 ← dec2 ← unpool2 ← ... ← dec5 ← unpool5

    channels     enc: 64 64 │ 128 128 │ 256 256 256 │ 512 512 512 │ 512 512 512
                 dec: 512 512 512 │ 512 512 256 │ 256 256 128 │ 128 64 │ 64 → classifier → classes

Each decoder stage keeps its encoder twin's channels and changes them at its
last convolution, so that unpool k receives as many channels as pool k produced.
The classifier is the Caffe reference net's ``conv1_1_D``: a 3x3 convolution
to the class scores (soft-max and the loss come after, in the loss function).

Sizes: the pools floor (``ceil_mode=False``), so an odd H loses its last row;
``max_unpool2d`` is given ``output_size`` = the size before that pool, which
restores it (the last row is then all zeros before the decoder's convolutions).
Five pools need H, W ≥ 32 (SegNet-Basic's four: ≥ 16); smaller inputs are
rejected with that minimum.
"""

from __future__ import annotations

from typing import Sequence

from ..nn import BatchNorm2d, Conv2d, MaxPool2d, MaxUnpool2d, Module, ReLU, Sequential
from ..tensor import Tensor
from ._common import check_input, check_positive_int, he_init_, scale_channels
from .vgg import VGG16_STAGES, conv_stage

__all__ = ["SegNet", "SegNetBasic", "segnet", "segnet_basic", "SEGNET_CHANNELS"]

SEGNET_CHANNELS: tuple[int, ...] = tuple(c for c, _ in VGG16_STAGES)
"""The paper's encoder widths per stage (VGG16's)."""


class SegNet(Module):
    """SegNet: a VGG16-bn encoder, a mirrored decoder that unpools with the encoder's indices, a classifier.

    ``width`` scales the stage widths ``(64, 128, 256, 512, 512)``, or give
    ``channels``. :meth:`encode` returns what the decoder needs; its first output
    is VGG16-bn's ``features`` output (pool5), which is how
    :func:`~minitorchseg.models.vgg.load_vgg16` is tested.
    """

    vgg_stage_names = ("enc1", "enc2", "enc3", "enc4", "enc5")
    min_size = 32

    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0,
                 channels: Sequence[int] | None = None):
        super().__init__()
        self.num_classes = check_positive_int("segnet", "num_classes", num_classes)
        self.in_channels = check_positive_int("segnet", "in_channels", in_channels)
        self.channels = scale_channels("segnet", SEGNET_CHANNELS, width, channels)
        c = self.channels
        convs = [n for _, n in VGG16_STAGES]  # 2, 2, 3, 3, 3 convolutions per stage
        for s in range(1, 6):
            cin = in_channels if s == 1 else c[s - 2]
            setattr(self, f"enc{s}", conv_stage((cin,) + (c[s - 1],) * convs[s - 1], batch_norm=True))
            setattr(self, f"pool{s}", MaxPool2d(2, stride=2, return_indices=True))
        for s in range(5, 0, -1):
            # dec_s: its encoder's width c_s, then its last conv narrows to c_(s−1), the width unpool_(s−1) expects
            # (512 → 512 → 512 → 256 for dec4); dec1 has one conv fewer: the classifier is its last one.
            path = (c[s - 1],) * convs[s - 1] + ((c[s - 2],) if s > 1 else ())
            setattr(self, f"unpool{s}", MaxUnpool2d(2, stride=2))
            setattr(self, f"dec{s}", conv_stage(path, batch_norm=True))
        self.classifier = Conv2d(c[0], num_classes, 3, padding=1)
        he_init_(self)

    def encode(self, x: Tensor) -> tuple[Tensor, list[Tensor], list[tuple[int, int]]]:
        """pool5 (N, c5, ⌊H/32⌋, ⌊W/32⌋), the five pools' indices, and the five sizes before each pool."""
        check_input("segnet", x, self.in_channels, self.min_size,
                    "five 2x2 max-pools each halve the size, rounding down")
        indices, sizes = [], []
        h = x
        for s in range(1, 6):
            h = getattr(self, f"enc{s}")(h)
            sizes.append(h.shape[2:])                   # H / 2^(s−1), rounded down at each pool
            h, idx = getattr(self, f"pool{s}")(h)       # halves it (floor); idx: flat positions in that map
            indices.append(idx)
        return h, indices, sizes

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, H, W) with H, W ≥ 32 → class scores (N, num_classes, H, W)."""
        h, indices, sizes = self.encode(x)
        for s in range(5, 0, -1):
            # unpool to exactly the pre-pool size (odd sizes included), then densify with the convolutions
            h = getattr(self, f"unpool{s}")(h, indices[s - 1], output_size=sizes[s - 1])
            h = getattr(self, f"dec{s}")(h)
        return self.classifier(h)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, in_channels={self.in_channels}, channels={self.channels}"


class SegNetBasic(Module):
    """SegNet-Basic (the paper's §4 small network): four encoders and four decoders of one 7x7 conv each.

    Encoder k: conv 7x7 (64 channels, no bias) → batch norm → ReLU → max-pool 2x2 with indices.
    Decoder k: max-unpool with encoder k's indices → conv 7x7 (no bias) → batch norm, *no* ReLU.
    Classifier: 1x1 convolution to the classes. (The Caffe reference net's first
    layer, a local response normalisation of the input, is left out.)
    """

    min_size = 16

    def __init__(self, num_classes: int, in_channels: int = 3, channels: int = 64, kernel_size: int = 7):
        super().__init__()
        self.num_classes = check_positive_int("segnet_basic", "num_classes", num_classes)
        self.in_channels = check_positive_int("segnet_basic", "in_channels", in_channels)
        self.channels = check_positive_int("segnet_basic", "channels", channels)
        k = check_positive_int("segnet_basic", "kernel_size", kernel_size)
        if k % 2 == 0:
            raise ValueError(f"segnet_basic: kernel_size must be odd (the conv keeps the size), got {k}")
        pad = k // 2  # a k x k conv with padding k // 2 keeps H x W
        for s in range(1, 5):
            cin = in_channels if s == 1 else channels
            setattr(self, f"enc{s}", Sequential(Conv2d(cin, channels, k, padding=pad, bias=False),
                                                 BatchNorm2d(channels), ReLU(inplace=True)))
            setattr(self, f"pool{s}", MaxPool2d(2, stride=2, return_indices=True))
        for s in range(4, 0, -1):
            setattr(self, f"unpool{s}", MaxUnpool2d(2, stride=2))
            setattr(self, f"dec{s}", Sequential(Conv2d(channels, channels, k, padding=pad, bias=False),
                                                 BatchNorm2d(channels)))
        self.classifier = Conv2d(channels, num_classes, 1)
        he_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, H, W) with H, W ≥ 16 → class scores (N, num_classes, H, W)."""
        check_input("segnet_basic", x, self.in_channels, self.min_size,
                    "four 2x2 max-pools each halve the size, rounding down")
        indices, sizes = [], []
        h = x
        for s in range(1, 5):
            h = getattr(self, f"enc{s}")(h)
            sizes.append(h.shape[2:])
            h, idx = getattr(self, f"pool{s}")(h)
            indices.append(idx)
        for s in range(4, 0, -1):
            h = getattr(self, f"unpool{s}")(h, indices[s - 1], output_size=sizes[s - 1])
            h = getattr(self, f"dec{s}")(h)
        return self.classifier(h)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, in_channels={self.in_channels}, channels={self.channels}"


def segnet(num_classes: int, in_channels: int = 3, width: float = 1.0,
           channels: Sequence[int] | None = None) -> SegNet:
    """SegNet at the paper's size (``width=1``), or with scaled / given stage widths."""
    return SegNet(num_classes, in_channels, width, channels)


def segnet_basic(num_classes: int, in_channels: int = 3, channels: int = 64, kernel_size: int = 7) -> SegNetBasic:
    """SegNet-Basic: 4 + 4 layers of 7x7 convolutions with 64 channels (the paper's defaults)."""
    return SegNetBasic(num_classes, in_channels, channels, kernel_size)
