"""A tiny model with torchvision's detection API, for testing the instance training, evaluation and command line
without the real network: one 1x1 convolution scores each pixel as foreground.

* training: ``model(images, targets)`` → the five losses of Mask R-CNN, each a differentiable function of the
  convolution's weights (``loss_mask``: the mean squared error of the foreground probability against the union
  of the target masks);
* eval: ``model(images)`` → per image at most one detection: the pixels with probability > 0.5 as one mask
  (label 1, score = their mean probability, box = the mask's box), ``masks`` (D, 1, H, W).
"""

import numpy as np

from minitorchseg.data.instances import masks_to_boxes
from minitorchseg.nn import Conv2d, Module
from minitorchseg.tensor import Tensor


class FakeMaskRCNN(Module):
    def __init__(self, num_classes: int, hidden: int = 1):
        super().__init__()
        self.num_classes = num_classes
        self.conv = Conv2d(3, hidden, 1)

    def _probability(self, image: Tensor) -> Tensor:
        c, h, w = image.shape
        return self.conv(image.reshape(1, c, h, w)).mean(dim=1).sigmoid()

    def forward(self, images, targets=None):
        if self.training:
            if targets is None or len(targets) != len(images):
                raise ValueError("FakeMaskRCNN: targets should not be None in training mode")
            losses = {}
            for image, target in zip(images, targets):
                labels = target["labels"].numpy()
                if labels.size and (labels.min() < 1 or labels.max() >= self.num_classes):
                    raise ValueError(f"FakeMaskRCNN: labels {labels} out of range")
                boxes = target["boxes"].numpy()
                if boxes.size and np.any((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])):
                    raise ValueError("FakeMaskRCNN: all boxes should have positive height and width")
                fg = Tensor(target["masks"].numpy().any(axis=0, keepdims=True).astype(np.float32))
                p = self._probability(image)
                mask = ((p - fg) ** 2).mean()
                parts = {"loss_mask": mask, "loss_objectness": (p.mean() - fg.mean()) ** 2,
                         "loss_classifier": (self.conv.bias ** 2).sum() * 0.01,
                         "loss_box_reg": (self.conv.weight ** 2).sum() * 0.01, "loss_rpn_box_reg": mask * 0.5}
                for key, value in parts.items():
                    losses[key] = value * (1.0 / len(images)) if key not in losses else \
                        losses[key] + value * (1.0 / len(images))
            return losses
        outputs = []
        for image in images:
            p = self._probability(image).numpy()[0]
            inside = p > 0.5
            h, w = p.shape
            if inside.any():
                out = {"boxes": masks_to_boxes(inside[None]), "labels": np.ones(1, np.int64),
                       "scores": np.array([p[inside].mean()], np.float32), "masks": p[None, None].astype(np.float32)}
            else:
                out = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64),
                       "scores": np.zeros(0, np.float32), "masks": np.zeros((0, 1, h, w), np.float32)}
            outputs.append({k: Tensor(v) for k, v in out.items()})
        return outputs


def fake_maskrcnn(num_classes: int, hidden: int = 1, min_size: int = 800, max_size: int = 1333) -> FakeMaskRCNN:
    """The registry builder of :class:`FakeMaskRCNN` (``min_size``/``max_size`` accepted as Mask R-CNN's, unused)."""
    return FakeMaskRCNN(num_classes, hidden)
