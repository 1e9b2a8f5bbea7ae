"""Pascal VOC semantic segmentation (``VOCdevkit/VOC2012`` layout).

::

    root/
      JPEGImages/<id>.jpg
      SegmentationClass/<id>.png          palette PNGs: index = class, 255 = ignore
      ImageSets/Segmentation/<split>.txt  one image id per line (train, val, trainval, ...)

``root`` is the folder holding ``JPEGImages`` (``.../VOCdevkit/VOC2012``); a
``VOCdevkit`` folder or its parent is accepted too when it holds exactly that.
"""

from __future__ import annotations

import os

from minitorchseg.data.base import PairedSegmentationDataset, listed_pair, require_dir
from minitorchseg.data.palettes import VOC_CLASSES, VOC_IGNORE_INDEX, VOC_PALETTE

__all__ = ["VOCSegmentation"]


def _find_voc_root(root: str) -> str:
    for candidate in (root, os.path.join(root, "VOC2012"), os.path.join(root, "VOCdevkit", "VOC2012")):
        if os.path.isdir(os.path.join(candidate, "JPEGImages")):
            return candidate
    return root


class VOCSegmentation(PairedSegmentationDataset):
    """VOC split ``split``: ``ds[i] -> (image (H, W, 3) uint8, mask (H, W) int64)``.

    ``num_classes = 21``, ``ignore_index = 255``; ``ids`` lists the image ids in order.
    """

    def __init__(self, root, split: str = "train"):
        root = require_dir(root, "VOC root")
        self.root = _find_voc_root(root)
        self.split = split
        images_dir = require_dir(os.path.join(self.root, "JPEGImages"), "VOC image folder")
        masks_dir = require_dir(os.path.join(self.root, "SegmentationClass"), "VOC label folder")
        list_file = os.path.join(self.root, "ImageSets", "Segmentation", f"{split}.txt")
        if not os.path.isfile(list_file):
            raise FileNotFoundError(f"VOC split list not found: {list_file!r} (split={split!r})")
        pairs = []
        with open(list_file) as f:
            for lineno, line in enumerate(f, start=1):
                image_id = line.strip()
                if not image_id:
                    continue
                image = os.path.join(images_dir, image_id + ".jpg")
                mask = os.path.join(masks_dir, image_id + ".png")
                pairs.append(listed_pair(list_file, lineno, image, mask))
        self.ids = [os.path.splitext(os.path.basename(p[0]))[0] for p in pairs]
        super().__init__(pairs, len(VOC_CLASSES), VOC_CLASSES, VOC_PALETTE, VOC_IGNORE_INDEX)
