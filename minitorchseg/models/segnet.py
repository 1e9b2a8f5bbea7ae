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

__all__ = ["SegNet", "SegNetBasic", "segnet", "segnet_basic", "SEGNET_CHANNELS", "encode_with_indices",
           "decode_with_indices"]

SEGNET_CHANNELS: tuple[int, ...] = tuple(c for c, _ in VGG16_STAGES)
"""The paper's encoder widths per stage (VGG16's)."""


def encode_with_indices(x: Tensor, stages) -> tuple[Tensor, list[Tensor], list[tuple[int, int]]]:
    """Run ``(conv stage, pool)`` pairs in order; return the last pooled map, every pool's indices and the size
    before every pool (the ``output_size`` its unpool must restore, odd sizes included)."""
    indices, sizes = [], []
    h = x
    for stage, pool in stages:
        h = stage(h)
        sizes.append(h.shape[2:])   # H / 2^(s−1), rounded down at each earlier pool
        h, idx = pool(h)            # halves it (floor); idx: flat positions of the maxima in that map
        indices.append(idx)
    return h, indices, sizes


def decode_with_indices(h: Tensor, indices: list[Tensor], sizes: list[tuple[int, int]], stages) -> Tensor:
    """Run ``(unpool, conv stage)`` pairs, deepest first: unpool with the matching encoder's indices to its
    pre-pool size (a sparse map), then densify with the convolutions."""
    for (unpool, stage), idx, size in zip(stages, reversed(indices), reversed(sizes)):
        h = stage(unpool(h, idx, output_size=size))
    return h


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
        n1, n2, n3, n4, n5 = (n for _, n in VGG16_STAGES)  # 2, 2, 3, 3, 3 convolutions per stage

        def enc(cin: int, cout: int, n: int) -> Sequential:
            return conv_stage((cin,) + (cout,) * n, batch_norm=True)

        def dec(cin: int, cout: int | None, n: int) -> Sequential:
            # a decoder stage keeps its encoder's width c_s, then its last conv narrows to c_(s−1), the width the
            # next unpool expects (512 → 512 → 512 → 256 for dec4); dec1 has one conv fewer: the classifier follows.
            return conv_stage((cin,) * n + ((cout,) if cout is not None else ()), batch_norm=True)

        self.enc1, self.pool1 = enc(in_channels, c[0], n1), MaxPool2d(2, stride=2, return_indices=True)
        self.enc2, self.pool2 = enc(c[0], c[1], n2), MaxPool2d(2, stride=2, return_indices=True)
        self.enc3, self.pool3 = enc(c[1], c[2], n3), MaxPool2d(2, stride=2, return_indices=True)
        self.enc4, self.pool4 = enc(c[2], c[3], n4), MaxPool2d(2, stride=2, return_indices=True)
        self.enc5, self.pool5 = enc(c[3], c[4], n5), MaxPool2d(2, stride=2, return_indices=True)
        self.unpool5, self.dec5 = MaxUnpool2d(2, stride=2), dec(c[4], c[3], n5)
        self.unpool4, self.dec4 = MaxUnpool2d(2, stride=2), dec(c[3], c[2], n4)
        self.unpool3, self.dec3 = MaxUnpool2d(2, stride=2), dec(c[2], c[1], n3)
        self.unpool2, self.dec2 = MaxUnpool2d(2, stride=2), dec(c[1], c[0], n2)
        self.unpool1, self.dec1 = MaxUnpool2d(2, stride=2), dec(c[0], None, n1)
        self.classifier = Conv2d(c[0], num_classes, 3, padding=1)
        he_init_(self)

    def encode(self, x: Tensor) -> tuple[Tensor, list[Tensor], list[tuple[int, int]]]:
        """pool5 (N, c5, ⌊H/32⌋, ⌊W/32⌋), the five pools' indices, and the five sizes before each pool."""
        check_input("segnet", x, self.in_channels, self.min_size,
                    "five 2x2 max-pools each halve the size, rounding down")
        return encode_with_indices(x, ((self.enc1, self.pool1), (self.enc2, self.pool2), (self.enc3, self.pool3),
                                       (self.enc4, self.pool4), (self.enc5, self.pool5)))

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, H, W) with H, W ≥ 32 → class scores (N, num_classes, H, W)."""
        h, indices, sizes = self.encode(x)
        h = decode_with_indices(h, indices, sizes, ((self.unpool5, self.dec5), (self.unpool4, self.dec4),
                                                    (self.unpool3, self.dec3), (self.unpool2, self.dec2),
                                                    (self.unpool1, self.dec1)))
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

        def enc(cin: int) -> Sequential:
            return Sequential(Conv2d(cin, channels, k, padding=pad, bias=False), BatchNorm2d(channels),
                              ReLU(inplace=True))

        def dec() -> Sequential:
            return Sequential(Conv2d(channels, channels, k, padding=pad, bias=False), BatchNorm2d(channels))

        self.enc1, self.pool1 = enc(in_channels), MaxPool2d(2, stride=2, return_indices=True)
        self.enc2, self.pool2 = enc(channels), MaxPool2d(2, stride=2, return_indices=True)
        self.enc3, self.pool3 = enc(channels), MaxPool2d(2, stride=2, return_indices=True)
        self.enc4, self.pool4 = enc(channels), MaxPool2d(2, stride=2, return_indices=True)
        self.unpool4, self.dec4 = MaxUnpool2d(2, stride=2), dec()
        self.unpool3, self.dec3 = MaxUnpool2d(2, stride=2), dec()
        self.unpool2, self.dec2 = MaxUnpool2d(2, stride=2), dec()
        self.unpool1, self.dec1 = MaxUnpool2d(2, stride=2), dec()
        self.classifier = Conv2d(channels, num_classes, 1)
        he_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, H, W) with H, W ≥ 16 → class scores (N, num_classes, H, W)."""
        check_input("segnet_basic", x, self.in_channels, self.min_size,
                    "four 2x2 max-pools each halve the size, rounding down")
        h, indices, sizes = encode_with_indices(x, ((self.enc1, self.pool1), (self.enc2, self.pool2),
                                                    (self.enc3, self.pool3), (self.enc4, self.pool4)))
        h = decode_with_indices(h, indices, sizes, ((self.unpool4, self.dec4), (self.unpool3, self.dec3),
                                                    (self.unpool2, self.dec2), (self.unpool1, self.dec1)))
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
