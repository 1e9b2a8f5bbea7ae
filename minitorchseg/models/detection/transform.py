"""``GeneralizedRCNNTransform``: images in, a padded batch out, detections mapped back (torchvision's ``transform.py``).

Per image ``(C, H, W)`` (floats in [0, 1]), in this order:

1. normalise: ``(image − mean[c]) / std[c]``;
2. resize by one factor for both sides, ``s = min(min_size / min(H, W), max_size / max(H, W))``
   (the short side becomes ``min_size`` unless the long side would exceed
   ``max_size``), as ``F.interpolate(scale_factor=s, mode="bilinear",
   recompute_scale_factor=True)``: output ``floor(H·s) × floor(W·s)``, sampled at
   the ratio of the sizes; a target's masks are resized the same way with mode
   'nearest' and its boxes scaled by ``new/old`` per axis (the ratio in float32);
   ``fixed_size=(w, h)`` resizes to exactly that instead;
3. batch: pad every image with zeros at the right and bottom to the largest
   height and width, rounded up to a multiple of ``size_divisible``.

:meth:`GeneralizedRCNNTransform.postprocess` maps eval-mode detections back to
the original sizes: boxes scaled by ``original/resized`` per axis, masks pasted
into the original image (``paste_masks_in_image`` of ``roi_heads``).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from ... import functional as F
from ...nn import Module
from ...random import default_generator
from ...tensor import Tensor
from .image_list import ImageList

__all__ = ["GeneralizedRCNNTransform", "resize_boxes"]


def resize_boxes(boxes: Tensor, original_size, new_size) -> Tensor:
    """Scale (N, 4) boxes from ``original_size`` (h, w) to ``new_size``: x by ``w'/w``, y by ``h'/h``.

    The two ratios are computed in float32 (torchvision divides two float32
    scalars), then applied in the boxes' dtype. Differentiable in ``boxes``.
    """
    ratio_h = np.float32(new_size[0]) / np.float32(original_size[0])
    ratio_w = np.float32(new_size[1]) / np.float32(original_size[1])
    scale = boxes.backend.asarray(np.array([ratio_w, ratio_h, ratio_w, ratio_h], dtype=boxes.dtype))
    return boxes * Tensor(scale, device=boxes.device)


class GeneralizedRCNNTransform(Module):
    """Normalise, resize and batch images (and resize their targets) for an R-CNN model.

    Args:
        min_size (int or tuple of int): target length of the short side; with a
            tuple, training picks one at random per image (eval uses the last).
        max_size (int): upper bound of the long side.
        image_mean, image_std (sequence of C floats): per-channel normalisation.
        size_divisible (int): the batch's height and width are rounded up to a multiple.
        fixed_size ((w, h) or None): resize every image to exactly this size instead.
        generator (numpy Generator or None): where training's choice of ``min_size``
            comes from (None: the library's global generator).

    ``forward(images, targets=None)`` takes a list of (C, H, W) float Tensors and
    optionally a list of target dicts (``"boxes"`` (K, 4) float, ``"masks"``
    (K, H, W) uint8, other keys passed through), and returns ``(ImageList,
    targets)`` with resized copies of the targets (the inputs are not modified).
    Raises ValueError for an image that is not 3-D and TypeError for a non-float image.
    """

    def __init__(self, min_size, max_size: int, image_mean, image_std, size_divisible: int = 32,
                 fixed_size=None, generator=None, **kwargs):
        super().__init__()
        if not isinstance(min_size, (list, tuple)):
            min_size = (min_size,)
        for name, value in (("min_size", min_size), ("max_size", (max_size,))):
            if not value or not all(isinstance(v, Real) and not isinstance(v, bool) and v > 0 for v in value):
                raise ValueError(f"GeneralizedRCNNTransform: {name}: expected positive numbers, got {value!r}")
        if len(image_mean) != len(image_std):
            raise ValueError(f"GeneralizedRCNNTransform: image_mean has {len(image_mean)} channels but image_std "
                             f"has {len(image_std)}")
        self.min_size = tuple(min_size)
        self.max_size = max_size
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.size_divisible = size_divisible
        self.fixed_size = fixed_size
        self.generator = generator
        self._skip_resize = kwargs.pop("_skip_resize", False)
        if kwargs:
            raise TypeError(f"GeneralizedRCNNTransform: unexpected keyword arguments {sorted(kwargs)}")

    def forward(self, images, targets=None):
        if not isinstance(images, (list, tuple)):
            raise TypeError(f"GeneralizedRCNNTransform: images: expected a list of (C, H, W) Tensors, "
                            f"got {type(images).__name__}")
        if targets is not None and len(targets) != len(images):
            raise ValueError(f"GeneralizedRCNNTransform: got {len(images)} images but {len(targets)} targets")
        images = list(images)
        targets = [dict(t) for t in targets] if targets is not None else None
        for i, image in enumerate(images):
            if not isinstance(image, Tensor) or image.ndim != 3:
                shape = image.shape if isinstance(image, Tensor) else type(image).__name__
                raise ValueError(f"images is expected to be a list of 3d tensors of shape [C, H, W], got {shape} "
                                 f"for image {i}")
            if image.shape[0] != len(self.image_mean):
                raise ValueError(f"GeneralizedRCNNTransform: image {i} has {image.shape[0]} channels (shape "
                                 f"{image.shape}), expected {len(self.image_mean)} (len(image_mean))")
            image = self.normalize(image)
            image, target = self.resize(image, targets[i] if targets is not None else None)
            images[i] = image
            if targets is not None:
                targets[i] = target
        image_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        return ImageList(self.batch_images(images, self.size_divisible), image_sizes), targets

    def normalize(self, image: Tensor) -> Tensor:
        """``(image − mean[:, None, None]) / std[:, None, None]`` in the image's dtype."""
        if image.dtype.kind != "f":
            raise TypeError(f"Expected input images to be of floating type (in range [0, 1]), but found type "
                            f"{image.dtype} instead")
        if image.shape[0] != len(self.image_mean):
            raise ValueError(f"GeneralizedRCNNTransform: an image has {image.shape[0]} channels, expected "
                             f"{len(self.image_mean)} (len(image_mean))")
        xp = image.backend.xp
        mean = Tensor(xp.asarray(np.asarray(self.image_mean, dtype=image.dtype)[:, None, None]), device=image.device)
        std = Tensor(xp.asarray(np.asarray(self.image_std, dtype=image.dtype)[:, None, None]), device=image.device)
        return (image - mean) / std

    def torch_choice(self, k):
        """A uniformly random element of ``k`` (torchvision's name; drawn from ``generator``)."""
        generator = self.generator if self.generator is not None else default_generator()
        return k[int(generator.uniform(0.0, float(len(k))))]

    def resize(self, image: Tensor, target=None):
        """Resize one normalised image (and its target's boxes and masks); see the module docstring, step 2."""
        h, w = image.shape[-2:]
        if self.training:
            if self._skip_resize:
                return image, target
            size = self.torch_choice(self.min_size)
        else:
            size = self.min_size[-1]
        if self.fixed_size is not None:
            geometry = dict(size=(self.fixed_size[1], self.fixed_size[0]))
        else:
            scale = min(size / min(h, w), self.max_size / max(h, w))
            if scale == 1.0:
                return _keep_size(image, target)
            geometry = dict(scale_factor=scale, recompute_scale_factor=True)
        image = F.interpolate(F.unsqueeze(image, 0), mode="bilinear", align_corners=False, **geometry)[0]
        if target is None:
            return image, target
        if "masks" in target:
            target["masks"] = _resize_masks(target["masks"], geometry, tuple(image.shape[-2:]))
        if "boxes" in target:
            target["boxes"] = resize_boxes(target["boxes"], (h, w), image.shape[-2:])
        return image, target

    def batch_images(self, images, size_divisible: int = 32) -> Tensor:
        """Zero-pad every (C, H_i, W_i) image to ``(C, ceil(max H / d)·d, ceil(max W / d)·d)`` and stack."""
        channels = {int(img.shape[0]) for img in images}
        if len(channels) != 1:
            raise ValueError(f"GeneralizedRCNNTransform: images have different channel counts {sorted(channels)}")
        stride = float(size_divisible)
        height = int(math.ceil(max(img.shape[1] for img in images) / stride) * stride)
        width = int(math.ceil(max(img.shape[2] for img in images) / stride) * stride)
        padded = [F.pad(img, (0, width - img.shape[2], 0, height - img.shape[1])) for img in images]
        return F.stack(padded, 0)

    def postprocess(self, result, image_shapes, original_image_sizes):
        """Eval mode: boxes (and ``"masks"``, pasted) mapped from the resized to the original sizes, in place."""
        if self.training:
            return result
        for i, (pred, im_s, o_im_s) in enumerate(zip(result, image_shapes, original_image_sizes)):
            boxes = resize_boxes(pred["boxes"], im_s, o_im_s)
            result[i]["boxes"] = boxes
            if "masks" in pred:
                from .roi_heads import paste_masks_in_image

                result[i]["masks"] = paste_masks_in_image(pred["masks"], boxes, o_im_s)
        return result

    def extra_repr(self) -> str:
        return (f"Normalize(mean={self.image_mean}, std={self.image_std}), Resize(min_size={self.min_size}, "
                f"max_size={self.max_size}, mode='bilinear')")


def _keep_size(image: Tensor, target):
    """The resize at scale 1: the image, the masks (as uint8) and the boxes unchanged.

    With ``scale_factor=1`` the bilinear resize samples source pixel ``(dst + 0.5)·1 − 0.5 = dst``
    with weights 1 and 0, and 'nearest' source pixel ``floor(dst·1) = dst``: both copy their input
    exactly, so this returns what :meth:`GeneralizedRCNNTransform.resize` would compute, without
    resampling the image and every mask.
    """
    if target is None:
        return image, target
    if "masks" in target:
        masks = target["masks"]
        data = masks.data if isinstance(masks, Tensor) else np.asarray(masks)
        if data.ndim != 3:
            raise ValueError(f"GeneralizedRCNNTransform: target masks: expected shape (K, H, W), got "
                             f"{tuple(data.shape)}")
        if not (isinstance(masks, Tensor) and data.dtype == np.uint8):
            device = masks.device if isinstance(masks, Tensor) else "cpu"
            masks = Tensor(data.astype(np.float32).astype(np.uint8), device=device)
        target["masks"] = masks
    if "boxes" in target:
        size = tuple(image.shape[-2:])
        target["boxes"] = resize_boxes(target["boxes"], size, size)
    return image, target


def _resize_masks(masks, geometry: dict, out_hw: tuple[int, int]):
    """(K, H, W) uint8 masks resized with mode 'nearest' as the image (``geometry``), back to uint8."""
    data = masks.data if isinstance(masks, Tensor) else np.asarray(masks)
    device = masks.device if isinstance(masks, Tensor) else "cpu"
    if data.ndim != 3:
        raise ValueError(f"GeneralizedRCNNTransform: target masks: expected shape (K, H, W), got {tuple(data.shape)}")
    if data.shape[0] == 0:
        return Tensor(np.zeros((0,) + out_hw, dtype=np.uint8), device=device)
    as_float = Tensor(data[:, None].astype(np.float32), device=device)
    resized = F.interpolate(as_float, mode="nearest", **geometry)
    return Tensor(resized.data[:, 0].astype(np.uint8), device=device)
