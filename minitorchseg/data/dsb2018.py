"""The 2018 Data Science Bowl nuclei in Kaggle's layout: one PNG per nucleus.

::

    root/
      stage1_train/<id>/images/<id>.png     the image (RGBA, RGB or grey; alpha dropped)
      stage1_train/<id>/masks/*.png         one single-channel PNG per nucleus, nonzero inside
      train.txt   val.txt                   the ids of each split, one a line

``ds[i] -> (image (H, W, 3) uint8, target)`` with the target of
:mod:`minitorchseg.data.instances` (one class, ``nucleus``, label 1; ``image_id = i + 1``
in list order). Mask files are read in sorted file-name order; a mask with no pixel
is skipped; an image whose ``masks/`` folder is empty is kept with no instance.

Errors (each names the file): a split list that is missing or lists no id, an id
without its folder or image, a missing ``masks/`` folder, a mask of another size
than its image (both sizes given), a mask with colour channels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from minitorchseg.data.base import read_image, read_mask, require_dir
from minitorchseg.data.instances import empty_target, make_target

__all__ = ["NucleiDSB2018", "DSB2018_CLASSES"]

DSB2018_CLASSES = ("background", "nucleus")
_PALETTE = np.array([(0, 0, 0), (255, 215, 0)], dtype=np.uint8)
SPLITS = ("train", "val")


class NucleiDSB2018(Sequence):
    """Split ``split`` (``train`` or ``val``) of the nuclei data under ``root``; see the module docstring."""

    num_classes = len(DSB2018_CLASSES)
    class_names = DSB2018_CLASSES
    category_ids = (1,)
    palette = _PALETTE

    def __init__(self, root, split: str = "train"):
        if split not in SPLITS:
            raise ValueError(f"NucleiDSB2018: split must be one of {SPLITS}, got {split!r}")
        self.root = require_dir(root, "DSB2018 root")
        self.split = split
        stage = require_dir(os.path.join(self.root, "stage1_train"), "DSB2018 image folder stage1_train")
        list_file = os.path.join(self.root, f"{split}.txt")
        if not os.path.isfile(list_file):
            raise FileNotFoundError(f"DSB2018 split list not found: {list_file!r} (one image id a line)")
        self.ids, self.folders = [], []
        with open(list_file) as f:
            for lineno, line in enumerate(f, start=1):
                sample = line.strip()
                if not sample:
                    continue
                folder = os.path.join(stage, sample)
                image = os.path.join(folder, "images", sample + ".png")
                if not os.path.isfile(image):
                    raise FileNotFoundError(f"{list_file}:{lineno}: image file not found: {image!r}")
                if not os.path.isdir(os.path.join(folder, "masks")):
                    raise FileNotFoundError(f"{list_file}:{lineno}: image {image!r} has no masks folder")
                self.ids.append(sample)
                self.folders.append(folder)
        if not self.ids:
            raise ValueError(f"DSB2018 split list {list_file!r} lists no image: the {split!r} split is empty")
        self.image_ids = list(range(1, len(self.ids) + 1))

    def __len__(self) -> int:
        return len(self.ids)

    def _index(self, i) -> int:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"NucleiDSB2018 index must be an int, got {type(i).__name__}")
        if not -len(self) <= i < len(self):
            raise IndexError(f"NucleiDSB2018 index {i} out of range for {len(self)} items")
        return int(i) % len(self)

    def image_path(self, i) -> str:
        i = self._index(i)
        return os.path.join(self.folders[i], "images", self.ids[i] + ".png")

    def file_name(self, i) -> str:
        return os.path.basename(self.image_path(i))

    def mask_paths(self, i) -> list[str]:
        folder = os.path.join(self.folders[self._index(i)], "masks")
        return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.lower().endswith(".png")]

    def __getitem__(self, i):
        i = self._index(i)
        image_path = self.image_path(i)
        image = read_image(image_path)
        h, w = image.shape[:2]
        masks = []
        for path in self.mask_paths(i):
            mask = read_mask(path)
            if mask.shape != (h, w):
                raise ValueError(
                    f"mask {path!r} has size {mask.shape[1]}x{mask.shape[0]} (WxH) but its image "
                    f"{image_path!r} has size {w}x{h}"
                )
            if mask.any():
                masks.append(mask != 0)
        if not masks:
            return image, empty_target(h, w, self.image_ids[i])
        return image, make_target(np.stack(masks), np.ones(len(masks), np.int64), self.image_ids[i])

    def ground_truth(self, i) -> dict:
        return self[i][1]

    def __repr__(self) -> str:
        return f"NucleiDSB2018({self.root!r}, split={self.split!r}, {len(self)} images)"
