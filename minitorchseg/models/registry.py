"""Models by name, the one registry (the command line and checkpoints use it): ``get_model("unet", num_classes=4)``.

Semantic models map images to per-pixel class scores; ``maskrcnn`` (instance
segmentation, :func:`~minitorchseg.models.detection.maskrcnn_resnet_fpn`, its
compact CPU default) follows torchvision's detection contract instead.
"""

from __future__ import annotations

import inspect
from typing import Callable

from ..nn import Module
from .detection.mask_rcnn import maskrcnn_resnet_fpn
from .fcn import fcn8s, fcn16s, fcn32s
from .segnet import segnet, segnet_basic
from .unet import unet

__all__ = ["get_model", "list_models"]

_MODELS: dict[str, Callable[..., Module]] = {
    "fcn32s": fcn32s,
    "fcn16s": fcn16s,
    "fcn8s": fcn8s,
    "unet": unet,
    "segnet": segnet,
    "segnet_basic": segnet_basic,
    "maskrcnn": maskrcnn_resnet_fpn,
}


def list_models() -> list[str]:
    """The names :func:`get_model` knows, sorted."""
    return sorted(_MODELS)


def get_model(name: str, **kwargs) -> Module:
    """Build the model called ``name`` with the builder's keyword arguments (``num_classes`` is required).

    Raises ValueError for an unknown name (listing the known ones) and TypeError
    for an argument the builder does not take (listing the ones it does).
    """
    if name not in _MODELS:
        raise ValueError(f"get_model: unknown model {name!r}; known models: {', '.join(list_models())}")
    builder = _MODELS[name]
    accepted = list(inspect.signature(builder).parameters)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"get_model: {name} takes no argument(s) {unknown}; its arguments are {accepted}")
    if "num_classes" not in kwargs:
        raise TypeError(f"get_model: {name} needs num_classes=")
    return builder(**kwargs)
