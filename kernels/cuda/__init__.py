"""CUDA kernel entry points (Numba-CUDA over CuPy arrays, or NumPy under the simulator).

Every name here has a twin with the same signature in :mod:`kernels.cpu`.
Launch configuration (threads per block, grid size) and output allocation live
in :mod:`kernels.cuda._launch`.
"""

from .adam import adam_step
from .batch_norm import batch_norm_backward, batch_norm_forward
from .conv import (
    conv2d_backward_bias,
    conv2d_backward_input,
    conv2d_backward_weight,
    conv2d_forward,
    conv_transpose2d_backward_input,
    conv_transpose2d_backward_weight,
    conv_transpose2d_forward,
)
from .cross_entropy import cross_entropy_backward, cross_entropy_forward
from .interpolate import (
    upsample_bilinear2d_backward,
    upsample_bilinear2d_forward,
    upsample_nearest2d_backward,
    upsample_nearest2d_forward,
)
from .kmeans import kmeans_assign
from .nms import nms
from .pool import max_pool2d_backward, max_pool2d_forward, max_unpool2d_backward, max_unpool2d_forward
from .relu import relu_backward, relu_forward
from .roi_align import roi_align_backward, roi_align_forward
from .roi_pool import roi_pool_backward, roi_pool_forward

__all__ = [
    "adam_step",
    "relu_forward",
    "relu_backward",
    "batch_norm_forward",
    "batch_norm_backward",
    "cross_entropy_forward",
    "cross_entropy_backward",
    "conv2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_backward_bias",
    "conv_transpose2d_forward",
    "conv_transpose2d_backward_input",
    "conv_transpose2d_backward_weight",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "max_unpool2d_forward",
    "max_unpool2d_backward",
    "upsample_bilinear2d_forward",
    "upsample_bilinear2d_backward",
    "upsample_nearest2d_forward",
    "upsample_nearest2d_backward",
    "roi_align_forward",
    "roi_align_backward",
    "roi_pool_forward",
    "roi_pool_backward",
    "nms",
    "kmeans_assign",
]
