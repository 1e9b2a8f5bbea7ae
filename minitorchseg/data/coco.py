"""COCO instance annotations: a reader (polygons, RLE, compressed RLE, crowd regions) and a writer.

Reading::

    ds = CocoInstances("images/", "instances.json")
    image, target = ds[i]        # the target of minitorchseg.data.instances, crowd regions left out
    gt = ds.ground_truth(i)      # the same with the crowd regions, iscrowd = 1

Masks are decoded by pycocotools' mask API, as torchvision's references do
(``references/detection/coco_utils.py``, ``convert_coco_poly_to_mask``):

* a polygon list ``[[x1, y1, x2, y2, ...], ...]``: ``frPyObjects(polygons, h, w)``, merged;
* an uncompressed RLE ``{"size": [h, w], "counts": [n0, n1, ...]}``: ``frPyObjects(rle, h, w)``;
* a compressed RLE ``{"size": [h, w], "counts": "text"}``: used as is.

As in those references, annotations with ``iscrowd = 1`` are not training
targets (``ds[i]`` leaves them out); the evaluation keeps them, so that COCOeval
ignores detections on crowds. Images without annotations are kept (K = 0).
Labels are contiguous: the category with the ``j``-th smallest id gets label
``j`` (1-based); ``ds.category_ids[j - 1]`` maps back. An annotation whose mask
has no pixel is skipped in the training target.

The whole file is checked when the data set is opened; each problem is a
``ValueError`` naming the file and the entry: an annotation whose ``image_id`` is
not in ``images`` or whose ``category_id`` is not in ``categories``, duplicate
ids, a malformed segmentation, an RLE whose size differs from its image's. An
image file of another size than its ``width``/``height`` is an error when read.

Writing: :func:`coco_ground_truth` (a data set's ground truth as a COCO dict),
:func:`coco_detections` (model outputs as a COCO result list), :func:`write_coco_json`
(atomic). Masks are written as compressed RLE with ``counts`` as text.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from minitorchseg.data.base import read_image, require_dir
from minitorchseg.data.instances import instance_palette, make_target

__all__ = [
    "CocoInstances",
    "load_coco_json",
    "check_coco_dict",
    "decode_segmentation",
    "encode_mask",
    "coco_ground_truth",
    "coco_detections",
    "write_coco_json",
]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_coco_dict(coco, source: str, need_annotations: bool = True) -> None:
    """``ValueError`` naming ``source`` and the entry when ``coco`` is not a usable COCO instances dict.

    Checks: ``images``, ``categories`` (and ``annotations``) are lists of dicts; image
    ids, category ids and annotation ids are unique ints; every image has ``file_name``,
    ``width`` and ``height``; every annotation's ``image_id`` is in ``images`` and its
    ``category_id`` in ``categories``; every segmentation is well formed (see
    :func:`decode_segmentation`).
    """
    if not isinstance(coco, dict):
        raise ValueError(f"{source}: expected a JSON object with 'images', 'annotations' and 'categories'")
    keys = ("images", "categories") + (("annotations",) if need_annotations else ())
    for key in keys:
        if not isinstance(coco.get(key), list) or not all(isinstance(x, dict) for x in coco[key]):
            raise ValueError(f"{source}: {key!r} must be a list of objects, got {type(coco.get(key)).__name__}")
    sizes = {}
    for entry in coco["images"]:
        image_id = entry.get("id")
        if not _is_int(image_id):
            raise ValueError(f"{source}: image {entry!r:.120} has no integer 'id'")
        if image_id in sizes:
            raise ValueError(f"{source}: image id {image_id} appears twice in 'images'")
        h, w = entry.get("height"), entry.get("width")
        if not (_is_int(h) and _is_int(w) and h > 0 and w > 0):
            raise ValueError(f"{source}: image {image_id} needs positive integer 'width' and 'height', "
                             f"got width={w!r}, height={h!r}")
        if not isinstance(entry.get("file_name"), str):
            raise ValueError(f"{source}: image {image_id} needs a 'file_name' string, got {entry.get('file_name')!r}")
        sizes[image_id] = (h, w)
    categories = set()
    for entry in coco["categories"]:
        cat = entry.get("id")
        if not _is_int(cat) or cat in categories:
            raise ValueError(f"{source}: category {entry!r:.120} has no integer 'id' or a duplicate one")
        categories.add(cat)
    seen = set()
    for entry in coco.get("annotations", []):
        ann_id = entry.get("id")
        if not _is_int(ann_id) or ann_id in seen:
            raise ValueError(f"{source}: annotation {entry!r:.120} has no integer 'id' or a duplicate one")
        seen.add(ann_id)
        if entry.get("image_id") not in sizes:
            raise ValueError(f"{source}: annotation {ann_id} has image_id {entry.get('image_id')!r}, which is not "
                             f"an id in 'images'")
        if entry.get("category_id") not in categories:
            raise ValueError(f"{source}: annotation {ann_id} has category_id {entry.get('category_id')!r}, which is "
                             f"not an id in 'categories' ({sorted(categories)})")
        if entry.get("iscrowd", 0) not in (0, 1):
            raise ValueError(f"{source}: annotation {ann_id} has iscrowd {entry.get('iscrowd')!r}; expected 0 or 1")
        if "segmentation" not in entry:
            raise ValueError(f"{source}: annotation {ann_id} has no 'segmentation'")
        _check_segmentation(entry["segmentation"], sizes[entry["image_id"]], f"{source}: annotation {ann_id}")


def _check_segmentation(segm, size, where: str) -> None:
    h, w = size
    if isinstance(segm, list):
        for poly in segm:
            if (not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2
                    or not all(isinstance(v, numbers.Real) for v in poly)):
                raise ValueError(f"{where}: a polygon must be a list of at least 3 (x, y) pairs of numbers, "
                                 f"got {poly!r:.80}")
        return
    if isinstance(segm, dict) and "counts" in segm and "size" in segm:
        if list(segm["size"]) != [h, w]:
            raise ValueError(f"{where}: its RLE has size {list(segm['size'])} (h, w) but its image is [{h}, {w}]")
        counts = segm["counts"]
        if isinstance(counts, list):
            if not all(_is_int(c) and c >= 0 for c in counts) or sum(counts) != h * w:
                raise ValueError(f"{where}: uncompressed RLE counts must be non-negative ints summing to "
                                 f"h * w = {h * w}")
        elif not isinstance(counts, (str, bytes)):
            raise ValueError(f"{where}: RLE counts must be a list of ints or a string, got {type(counts).__name__}")
        return
    raise ValueError(f"{where}: segmentation must be a polygon list or an RLE dict with 'size' and 'counts', "
                     f"got {segm!r:.80}")


def decode_segmentation(segm, height: int, width: int) -> np.ndarray:
    """The ``(height, width)`` uint8 0/1 mask of a COCO segmentation (polygons, RLE or compressed RLE)."""
    return mask_utils.decode(_rle(segm, height, width)).astype(np.uint8)


def _rle(segm, height: int, width: int) -> dict:
    if isinstance(segm, list):
        if not segm:
            return mask_utils.encode(np.zeros((height, width), np.uint8, order="F"))
        return mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    if isinstance(segm["counts"], list):
        return mask_utils.frPyObjects(segm, height, width)
    counts = segm["counts"]
    return {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def encode_mask(mask: np.ndarray) -> dict:
    """A ``(H, W)`` mask (nonzero inside) as a compressed RLE ``{"size": [H, W], "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask) != 0, dtype=np.uint8))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def load_coco_json(path) -> dict:
    """The checked COCO dict in ``path`` (see :func:`check_coco_dict`)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"COCO annotation file not found: {path!r}")
    try:
        with open(path, encoding="utf-8") as f:
            coco = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON file: {exc}") from None
    check_coco_dict(coco, path)
    return coco


class CocoInstances(Sequence):
    """The images of ``annotation_file`` (in its order) read from ``images_dir``; see the module docstring.

    Attributes: ``num_classes`` (categories + background), ``class_names``,
    ``category_ids``, ``palette``, ``image_ids``, ``coco`` (the checked dict).
    """

    def __init__(self, images_dir, annotation_file):
        self.images_dir = require_dir(images_dir, "COCO image folder")
        self.annotation_file = os.fspath(annotation_file)
        self.coco = load_coco_json(self.annotation_file)
        if not self.coco["images"]:
            raise ValueError(f"{self.annotation_file}: 'images' is empty: the data set has no image")
        cats = sorted(self.coco["categories"], key=lambda c: c["id"])
        if not cats:
            raise ValueError(f"{self.annotation_file}: 'categories' is empty")
        self.category_ids = tuple(int(c["id"]) for c in cats)
        self.class_names = ("background",) + tuple(str(c.get("name", c["id"])) for c in cats)
        self.num_classes = len(self.class_names)
        self.palette = np.concatenate([np.zeros((1, 3), np.uint8), instance_palette(len(cats))])
        self._label = {cat: j + 1 for j, cat in enumerate(self.category_ids)}
        self.images = list(self.coco["images"])
        self.image_ids = [int(entry["id"]) for entry in self.images]
        self._anns = {image_id: [] for image_id in self.image_ids}
        for ann in self.coco["annotations"]:
            self._anns[ann["image_id"]].append(ann)

    def __len__(self) -> int:
        return len(self.images)

    def _index(self, i) -> int:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"CocoInstances index must be an int, got {type(i).__name__}")
        if not -len(self) <= i < len(self):
            raise IndexError(f"CocoInstances index {i} out of range for {len(self)} items")
        return int(i) % len(self)

    def file_name(self, i) -> str:
        return str(self.images[self._index(i)]["file_name"])

    def image_path(self, i) -> str:
        return os.path.join(self.images_dir, self.file_name(i))

    def _target(self, i, with_crowd: bool) -> dict:
        entry = self.images[self._index(i)]
        h, w = entry["height"], entry["width"]
        masks, labels, crowd = [], [], []
        for ann in self._anns[entry["id"]]:
            is_crowd = int(ann.get("iscrowd", 0))
            if is_crowd and not with_crowd:
                continue
            mask = decode_segmentation(ann["segmentation"], h, w)
            if not mask.any():
                continue
            masks.append(mask)
            labels.append(self._label[ann["category_id"]])
            crowd.append(is_crowd)
        stacked = np.stack(masks) if masks else np.zeros((0, h, w), np.uint8)
        return make_target(stacked, labels, entry["id"], crowd)

    def __getitem__(self, i):
        i = self._index(i)
        path = self.image_path(i)
        image = read_image(path)
        entry = self.images[i]
        if image.shape[:2] != (entry["height"], entry["width"]):
            raise ValueError(
                f"image {path!r} has size {image.shape[1]}x{image.shape[0]} (WxH) but {self.annotation_file!r} "
                f"gives image {entry['id']} the size {entry['width']}x{entry['height']}"
            )
        return image, self._target(i, with_crowd=False)

    def ground_truth(self, i) -> dict:
        """Item ``i``'s target with its crowd regions (``iscrowd = 1``); the image is not read."""
        return self._target(i, with_crowd=True)

    def image_entry(self, i) -> dict:
        """Item ``i``'s entry in the file's ``images``."""
        return dict(self.images[self._index(i)])

    def coco_annotations(self, i) -> list[dict]:
        """Item ``i``'s annotations as in the file (copies), with ``iscrowd`` (default 0), ``area`` and ``bbox``
        (from the decoded mask, pycocotools' ``area`` and ``toBbox``) filled in where missing."""
        entry = self.images[self._index(i)]
        out = []
        for ann in self._anns[entry["id"]]:
            ann = dict(ann)
            ann.setdefault("iscrowd", 0)
            if "area" not in ann or "bbox" not in ann:
                rle = _rle(ann["segmentation"], entry["height"], entry["width"])
                ann.setdefault("area", float(mask_utils.area(rle)))
                ann.setdefault("bbox", [float(v) for v in mask_utils.toBbox(rle)])
            out.append(ann)
        return out

    def __repr__(self) -> str:
        return f"CocoInstances({self.annotation_file!r}, {len(self)} images, {self.num_classes - 1} categories)"


def _bbox_xywh(box) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def coco_ground_truth(dataset, targets=None) -> dict:
    """The ground truth of an instance data set as a COCO dict (``images``, ``annotations``, ``categories``).

    A data set read from a COCO file (one with ``coco_annotations(i)``: :class:`CocoInstances`
    and its subsets) gives its own annotations, unchanged (``area`` and ``bbox`` filled in
    from the mask where the file has none), so the AP is the one the official evaluation
    computes on that file. Any other data set's targets become one annotation per
    instance: ``segmentation`` a compressed RLE (counts as text), ``bbox``
    ``[x1, y1, x2 − x1, y2 − y1]`` of the mask (see :mod:`minitorchseg.data.instances`),
    ``area`` the pixel count, ``iscrowd``, ``category_id`` ``dataset.category_ids[label − 1]``;
    annotation ids count from 1. ``targets``: the items' :meth:`ground_truth` targets when
    already read (one per item), else they are read.
    """
    images, annotations = [], []
    if targets is not None and len(targets) != len(dataset):
        raise ValueError(f"coco_ground_truth: {len(targets)} targets for {len(dataset)} items")
    original = callable(getattr(dataset, "coco_annotations", None))
    for i in range(len(dataset)):
        if original:
            entry = dataset.image_entry(i)
            images.append({k: entry[k] for k in ("id", "file_name", "height", "width") if k in entry})
            annotations.extend(dataset.coco_annotations(i))
            continue
        target = dataset.ground_truth(i) if targets is None else targets[i]
        h, w = target["masks"].shape[1:]
        images.append({"id": int(target["image_id"]), "file_name": dataset.file_name(i), "height": int(h),
                       "width": int(w)})
        for k in range(len(target["labels"])):
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": int(target["image_id"]),
                "category_id": int(dataset.category_ids[int(target["labels"][k]) - 1]),
                "segmentation": encode_mask(target["masks"][k]),
                "area": float(target["area"][k]),
                "bbox": _bbox_xywh(target["boxes"][k]),
                "iscrowd": int(target["iscrowd"][k]),
            })
    categories = [{"id": int(c), "name": str(n)} for c, n in zip(dataset.category_ids, dataset.class_names[1:])]
    return {"images": images, "annotations": annotations, "categories": categories}


def _host(value) -> np.ndarray:
    if hasattr(value, "numpy"):
        return np.asarray(value.numpy())
    return np.asarray(value)


def coco_detections(predictions, image_ids, category_ids, mask_threshold: float = 0.5) -> list[dict]:
    """Model outputs as a COCO result list: one dict per detection.

    ``predictions``: one dict per image with ``boxes`` (D, 4) xyxy, ``labels`` (D,)
    in ``1..len(category_ids)``, ``scores`` (D,) and optionally ``masks`` (D, 1, H, W)
    probabilities (Tensors or arrays). Each detection becomes ``{"image_id",
    "category_id", "bbox": [x, y, w, h], "score"}`` plus, with masks,
    ``"segmentation"``: the RLE of ``mask > mask_threshold`` (0.5, as torchvision's
    ``references/detection/coco_eval.py``). For COCOeval's box evaluation give it the
    detections without ``segmentation`` (pycocotools' ``loadRes`` would take the
    boxes' areas otherwise), and for the mask evaluation without ``bbox``:
    :func:`minitorchseg.metrics_instance.coco_evaluate` does this.
    """
    if len(predictions) != len(image_ids):
        raise ValueError(f"coco_detections: {len(predictions)} predictions but {len(image_ids)} image ids")
    results = []
    for prediction, image_id in zip(predictions, image_ids):
        boxes = _host(prediction["boxes"]).reshape(-1, 4)
        labels = _host(prediction["labels"]).reshape(-1)
        scores = _host(prediction["scores"]).reshape(-1)
        masks = _host(prediction["masks"]) if "masks" in prediction else None
        if np.any((labels < 1) | (labels > len(category_ids))):
            raise ValueError(f"coco_detections: image {image_id}: labels must be in 1..{len(category_ids)}, "
                             f"got {sorted(set(labels.tolist()))}")
        for d in range(len(labels)):
            result = {"image_id": int(image_id), "category_id": int(category_ids[int(labels[d]) - 1]),
                      "bbox": _bbox_xywh(boxes[d]), "score": float(scores[d])}
            if masks is not None:
                result["segmentation"] = encode_mask(masks[d].reshape(masks.shape[-2:]) > mask_threshold)
            results.append(result)
    return results


def write_coco_json(path, payload) -> None:
    """Write a COCO dict (checked first with :func:`check_coco_dict`) or result list to ``path`` atomically.

    Nothing is written when the check fails.
    """
    from minitorchseg.serialization import atomic_write

    if isinstance(payload, dict):
        check_coco_dict(payload, os.fspath(path))
    elif not isinstance(payload, list):
        raise TypeError(f"write_coco_json: payload must be a COCO dict or a result list, got {type(payload).__name__}")
    text = json.dumps(payload)
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))

