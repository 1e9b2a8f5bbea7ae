"""Fully Convolutional Networks (Long, Shelhamer & Darrell, CVPR 2015): FCN-32s, FCN-16s and FCN-8s.

VGG16 with its classifier turned into convolutions (fc6 a 7x7 convolution,
fc7 a 1x1), a 1x1 convolution scoring each class at stride 32, and upsampling
by transposed convolutions initialised to bilinear interpolation::

    image → conv1 pool1 → conv2 pool2 → conv3 pool3 → conv4 pool4 → conv5 pool5 → fc6 → fc7 → score_fr (stride 32)
                                                │             │
                                           score_pool3   score_pool4      (1x1 class scores at strides 8 and 16)

    FCN-32s: score_fr → upscore ×32 → crop → out
    FCN-16s: score_fr → upscore2 ×2 → + crop(score_pool4) → upscore16 ×16 → crop → out
    FCN-8s:  score_fr → upscore2 ×2 → + crop(score_pool4) → upscore_pool4 ×2 → + crop(score_pool3)
             → upscore8 ×8 → crop → out

Why any input size works and the output has the input's size (the reference
Caffe nets; every 2x2 max-pool uses ``ceil_mode=True``, as Caffe does):

* conv1_1 pads the image by 100 pixels. fc6 is an *unpadded* 7x7 convolution,
  so it needs a pool5 map of at least 7x7; with the padding, pool5 has
  ``ceil((H + 198) / 32) ≥ 7`` rows for every H ≥ 1 (and likewise columns).
* Each map stands for a grid of input positions: pixel ``t`` of a map of
  stride ``s`` is centred on input coordinate ``s·t + b``. A conv or pool with
  kernel k, stride σ and padding p maps ``t ↦ σ·t + (k − 1)/2 − p`` into its
  input; a transposed conv maps the other way. Following ``b`` through the net:
  conv1_1 (p = 100): −99; pool1: 2t − 98.5; pool2: 4t − 97.5; pool3: 8t − 95.5;
  pool4: 16t − 91.5; pool5: 32t − 83.5; fc6 (7x7, p = 0): 32t + 12.5.
* So after an upsampling the map is larger than the image and shifted; the
  forward methods below crop it at the offset where its pixel grid coincides
  with the image's, then the output is exactly H x W. The offsets (19, 27, 31 for
  the outputs, 5 and 9 for the skips) are derived where they are used.

Weights: the 13 convolutions and fc6/fc7 come from ImageNet VGG16
(:func:`minitorchseg.models.vgg.load_vgg16`); the class scores start at zero
(§4.1: "zero-initializing the class scoring layer"), and every upsampling is the
bilinear kernel of :func:`bilinear_kernel`, kept fixed as in the reference nets
(``learn_upsampling=True`` trains them, as §3.3 allows).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..nn import Conv2d, ConvTranspose2d, Dropout, MaxPool2d, Module, ReLU, Sequential, init
from ..tensor import Tensor
from ._common import check_input, check_positive_int, crop, scale_channels
from .vgg import VGG16_STAGES, conv_stage

__all__ = ["bilinear_kernel", "FCN32s", "FCN16s", "FCN8s", "fcn32s", "fcn16s", "fcn8s", "FCN_CHANNELS"]

FCN_CHANNELS: tuple[int, ...] = tuple(c for c, _ in VGG16_STAGES) + (4096,)
"""The paper's widths: conv1..conv5 stages, then fc6/fc7."""


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> np.ndarray:
    """A ConvTranspose2d weight ``(in_channels, out_channels, k, k)`` that upsamples by bilinear interpolation.

    With ``f = ceil(k / 2)`` (the upsampling factor when k = 2·stride) and the
    kernel's centre ``c = f − 1`` for odd k, ``c = f − 0.5`` for even k::

        filt[i, j] = (1 − |i − c| / f) · (1 − |j − c| / f)
        weight[i, i] = filt for i < min(in_channels, out_channels); all other entries 0

    so channel i is upsampled into channel i alone. Example: k = 4 (stride 2)
    gives f = 2, c = 1.5 and the 1-D taps (0.25, 0.75, 0.75, 0.25): away from the
    border every output pixel receives 0.75 of its nearer and 0.25 of its farther
    input neighbour, which is linear interpolation at positions 1/4 and 3/4.
    (FCN's ``surgery.upsample_filt``; Dive into Deep Learning §14.10.)
    """
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    taps = 1 - np.abs(np.arange(kernel_size) - center) / factor
    weight = np.zeros((in_channels, out_channels, kernel_size, kernel_size), dtype=np.float32)
    diagonal = np.arange(min(in_channels, out_channels))
    weight[diagonal, diagonal] = np.outer(taps, taps)
    return weight


def _upsampling(num_classes: int, factor: int, learn: bool) -> ConvTranspose2d:
    """Transposed conv, kernel 2·factor, stride factor, no bias, initialised to bilinear; fixed unless ``learn``."""
    layer = ConvTranspose2d(num_classes, num_classes, 2 * factor, stride=factor, bias=False)
    layer.weight.copy_(bilinear_kernel(num_classes, num_classes, 2 * factor))
    layer.weight.requires_grad_(learn)
    return layer


def _score(in_channels: int, num_classes: int) -> Conv2d:
    """1x1 class-scoring convolution, zero-initialised (§4.1)."""
    layer = Conv2d(in_channels, num_classes, 1)
    init.zeros_(layer.weight)
    init.zeros_(layer.bias)
    return layer


class _FCN(Module):
    """The shared part: VGG16 stages conv1..conv5 with their pools, fc6, fc7 and score_fr (stride 32).

    ``conv{s}`` is a :func:`~minitorchseg.models.vgg.conv_stage`; ``conv{s}.0`` is
    the paper's ``conv{s}_1``. ``vgg_stage_names`` tells
    :func:`~minitorchseg.models.vgg.load_vgg16` where VGG16's weights go.
    """

    vgg_stage_names = ("conv1", "conv2", "conv3", "conv4", "conv5")
    _name = "fcn"
    stride = 32  # the output stride of the finest score map summed in: 32 (no skip), 16 (+pool4), 8 (+pool3)

    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0,
                 channels: Sequence[int] | None = None, batch_norm: bool = False, dropout: float = 0.5,
                 learn_upsampling: bool = False):
        super().__init__()
        self.num_classes = check_positive_int(self._name, "num_classes", num_classes)
        self.in_channels = check_positive_int(self._name, "in_channels", in_channels)
        widths = scale_channels(self._name, FCN_CHANNELS, width, channels)
        self.channels = widths
        self.learn_upsampling = learn_upsampling
        c1, c2, c3, c4, c5, fc = widths

        def stage(cin: int, cout: int, index: int, first_padding: int | None = None) -> Sequential:
            return conv_stage((cin,) + (cout,) * VGG16_STAGES[index][1], batch_norm, first_padding=first_padding)

        # conv1_1 pads by 100 (see the module docstring); all other 3x3 convs by 1. Pools round up (ceil_mode).
        self.conv1, self.pool1 = stage(in_channels, c1, 0, first_padding=100), MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.pool2 = stage(c1, c2, 1), MaxPool2d(2, 2, ceil_mode=True)
        self.conv3, self.pool3 = stage(c2, c3, 2), MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.pool4 = stage(c3, c4, 3), MaxPool2d(2, 2, ceil_mode=True)
        self.conv5, self.pool5 = stage(c4, c5, 4), MaxPool2d(2, 2, ceil_mode=True)
        self.fc6 = Conv2d(c5, fc, 7)  # unpadded: a 7x7 window of pool5 is fc6's 512x7x7 input
        self.relu6 = ReLU(inplace=True)
        self.drop6 = Dropout(dropout)
        self.fc7 = Conv2d(fc, fc, 1)
        self.relu7 = ReLU(inplace=True)
        self.drop7 = Dropout(dropout)
        self.score_fr = _score(fc, num_classes)
        # the variant's head: its skips (score_pool4, score_pool3) and upsampling layers, in the paper's order
        if self.stride == 32:
            self.upscore = _upsampling(num_classes, 32, learn_upsampling)
        else:
            self.upscore2 = _upsampling(num_classes, 2, learn_upsampling)
            self.score_pool4 = _score(c4, num_classes)
        if self.stride == 16:
            self.upscore16 = _upsampling(num_classes, 16, learn_upsampling)
        if self.stride == 8:
            self.upscore_pool4 = _upsampling(num_classes, 2, learn_upsampling)
            self.score_pool3 = _score(c3, num_classes)
            self.upscore8 = _upsampling(num_classes, 8, learn_upsampling)

    def _backbone(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """pool3 (stride 8), pool4 (stride 16) and the class scores at stride 32 (score_fr)."""
        check_input(self._name, x, self.in_channels)
        h = self.pool1(self.conv1(x))   # (H + 198) / 2 rows (ceil), input coordinate 2t − 98.5
        h = self.pool2(self.conv2(h))   # stride 4,  4t − 97.5
        pool3 = self.pool3(self.conv3(h))      # stride 8,  8t − 95.5
        pool4 = self.pool4(self.conv4(pool3))  # stride 16, 16t − 91.5
        h = self.pool5(self.conv5(pool4))      # stride 32, 32t − 83.5; at least 7x7
        h = self.drop6(self.relu6(self.fc6(h)))  # 7x7 valid conv: rows − 6, centre shifts by 3: 32t + 12.5
        h = self.drop7(self.relu7(self.fc7(h)))
        return pool3, pool4, self.score_fr(h)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, in_channels={self.in_channels}, channels={self.channels}"


class FCN32s(_FCN):
    """FCN-32s: the stride-32 scores upsampled ×32 in one step."""

    _name = "fcn32s"
    stride = 32

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, H, W) → class scores (N, num_classes, H, W)."""
        _, _, score_fr = self._backbone(x)  # pixel t ↔ input 32t + 12.5
        # upscore (k 64, s 32): its pixel z is centred on score_fr's t = (z − 31.5) / 32, i.e. on input
        # 32·(z − 31.5)/32 + 12.5 = z − 19: crop 19 pixels at the top and left.
        upscore = self.upscore(score_fr)
        return crop(upscore, 19, x.shape[2:])


class FCN16s(_FCN):
    """FCN-16s: scores at stride 32 upsampled ×2, summed with pool4's scores, then upsampled ×16."""

    _name = "fcn16s"
    stride = 16

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, H, W) → class scores (N, num_classes, H, W)."""
        _, pool4, score_fr = self._backbone(x)
        # upscore2 (k 4, s 2): pixel z ↔ score_fr's (z − 1.5)/2 ↔ input 16z − 24 + 12.5 = 16z − 11.5.
        upscore2 = self.upscore2(score_fr)
        # pool4's pixel t is input 16t − 91.5; 16(z + 5) − 91.5 = 16z − 11.5: crop score_pool4 at offset 5.
        fuse_pool4 = upscore2 + crop(self.score_pool4(pool4), 5, upscore2.shape[2:])
        # upscore16 (k 32, s 16): pixel z ↔ (z − 15.5)/16 ↔ input z − 15.5 − 11.5 = z − 27: crop 27.
        return crop(self.upscore16(fuse_pool4), 27, x.shape[2:])


class FCN8s(_FCN):
    """FCN-8s: as FCN-16s, then ×2 again and summed with pool3's scores, then upsampled ×8."""

    _name = "fcn8s"
    stride = 8

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, H, W) → class scores (N, num_classes, H, W)."""
        pool3, pool4, score_fr = self._backbone(x)
        upscore2 = self.upscore2(score_fr)  # pixel z ↔ input 16z − 11.5 (as in FCN-16s)
        fuse_pool4 = upscore2 + crop(self.score_pool4(pool4), 5, upscore2.shape[2:])
        # upscore_pool4 (k 4, s 2): pixel z ↔ fuse_pool4's (z − 1.5)/2 ↔ input 8z − 12 − 11.5 = 8z − 23.5.
        upscore_pool4 = self.upscore_pool4(fuse_pool4)
        # pool3's pixel t is input 8t − 95.5; 8(z + 9) − 95.5 = 8z − 23.5: crop score_pool3 at offset 9.
        fuse_pool3 = upscore_pool4 + crop(self.score_pool3(pool3), 9, upscore_pool4.shape[2:])
        # upscore8 (k 16, s 8): pixel z ↔ (z − 7.5)/8 ↔ input z − 7.5 − 23.5 = z − 31: crop 31.
        return crop(self.upscore8(fuse_pool3), 31, x.shape[2:])


def fcn32s(num_classes: int, in_channels: int = 3, width: float = 1.0, channels: Sequence[int] | None = None,
           batch_norm: bool = False, dropout: float = 0.5, learn_upsampling: bool = False) -> FCN32s:
    """FCN-32s. ``width`` scales the paper's channels ``(64, 128, 256, 512, 512, 4096)``, or give ``channels``."""
    return FCN32s(num_classes, in_channels, width, channels, batch_norm, dropout, learn_upsampling)


def fcn16s(num_classes: int, in_channels: int = 3, width: float = 1.0, channels: Sequence[int] | None = None,
           batch_norm: bool = False, dropout: float = 0.5, learn_upsampling: bool = False) -> FCN16s:
    """FCN-16s; arguments as :func:`fcn32s`."""
    return FCN16s(num_classes, in_channels, width, channels, batch_norm, dropout, learn_upsampling)


def fcn8s(num_classes: int, in_channels: int = 3, width: float = 1.0, channels: Sequence[int] | None = None,
          batch_norm: bool = False, dropout: float = 0.5, learn_upsampling: bool = False) -> FCN8s:
    """FCN-8s; arguments as :func:`fcn32s`."""
    return FCN8s(num_classes, in_channels, width, channels, batch_norm, dropout, learn_upsampling)
