"""Instance data: the box convention, the nuclei (Kaggle) and COCO readers against pycocotools' own decoding,
the COCO writer, instance transforms, the data specs, and the shared DSB2018 copy when present."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from minitorchseg.data.coco import (
    CocoInstances,
    coco_detections,
    coco_ground_truth,
    decode_segmentation,
    encode_mask,
    write_coco_json,
)
from minitorchseg.data.dsb2018 import NucleiDSB2018
from minitorchseg.data.instance_transforms import (
    ColorJitter,
    InstanceCompose,
    InstanceHorizontalFlip,
    InstanceRandomCrop,
    InstanceResize,
    InstanceVerticalFlip,
)
from minitorchseg.data.instances import InstanceShapes, check_target, empty_target, make_target, masks_to_boxes
from minitorchseg.data.spec import open_instance_split, open_split, parse_data_spec
from tests.strategies import seeds, settings_fast

REPO = Path(__file__).resolve().parents[1]


def dsb2018_root():
    """The shared DSB2018 copy: $MINITORCHSEG_DSB2018, else ../shared/data/dsb2018 next to the repo."""
    for c in (os.environ.get("MINITORCHSEG_DSB2018"), REPO.parent / "shared" / "data" / "dsb2018"):
        if c and (Path(c) / "stage1_train").is_dir():
            return Path(c)
    return None


def write_png(path, array, mode=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(np.asarray(array), mode=mode) if mode else Image.fromarray(np.asarray(array))).save(path)
    return path


# ------------------------------------------------------------------------------------------ boxes and targets
def test_one_pixel_mask_box_matches_pycocotools():
    mask = np.zeros((5, 6), np.uint8)
    mask[2, 3] = 1
    box = masks_to_boxes(mask[None])[0]
    assert box.tolist() == [3.0, 2.0, 4.0, 3.0]
    x, y, w, h = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask)))
    assert [box[0], box[1], box[2] - box[0], box[3] - box[1]] == [x, y, w, h] == [3, 2, 1, 1]
    assert box[2] > box[0] and box[3] > box[1]


def test_boxes_match_pycocotools_on_random_masks():
    rng = np.random.default_rng(0)
    masks = (rng.random((6, 9, 11)) < 0.1).astype(np.uint8)
    masks[:, 4, 5] = 1
    boxes = masks_to_boxes(masks)
    coco = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0))))
    np.testing.assert_array_equal(boxes[:, :2], coco[:, :2])
    np.testing.assert_array_equal(boxes[:, 2:] - boxes[:, :2], coco[:, 2:])


@settings_fast
@given(seed=seeds, k=st.integers(1, 5), h=st.integers(1, 12), w=st.integers(1, 12))
def test_boxes_are_torchvisions_masks_to_boxes_plus_one(seed, k, h, w):
    # torchvision/ops/boxes.py masks_to_boxes: x2 = max column, y2 = max row; ours are one more (module docstring).
    rng = np.random.default_rng(seed)
    masks = rng.random((k, h, w)) < 0.3
    masks[np.arange(k), rng.integers(0, h, k), rng.integers(0, w, k)] = True
    theirs = torchvision.ops.masks_to_boxes(torch.from_numpy(masks)).numpy()
    np.testing.assert_array_equal(masks_to_boxes(masks), theirs + np.array([0, 0, 1, 1], np.float32))


@settings_fast
@given(seed=seeds, k=st.integers(0, 4), vertical=st.booleans())
def test_flips_equal_torchvisions_v2_flips(seed, k, vertical):
    # torchvision/transforms/v2/functional/_geometry.py: horizontal_flip_bounding_boxes maps XYXY x1 -> W - x2,
    # x2 -> W - x1 (and vertical_flip likewise in y), masks mirrored.
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as TF

    rng = np.random.default_rng(seed)
    image, target = _random_target(rng, k=max(k, 1))
    if k == 0:
        target = empty_target(*image.shape[:2], 3)
    flip = InstanceVerticalFlip(1.0) if vertical else InstanceHorizontalFlip(1.0)
    out_image, out = flip(image, target, rng)
    op = TF.vertical_flip if vertical else TF.horizontal_flip
    boxes = tv_tensors.BoundingBoxes(torch.from_numpy(target["boxes"]), format="XYXY", canvas_size=image.shape[:2])
    np.testing.assert_array_equal(out["boxes"], op(boxes).numpy())
    np.testing.assert_array_equal(out["masks"], op(tv_tensors.Mask(torch.from_numpy(target["masks"]))).numpy())
    np.testing.assert_array_equal(out_image, op(torch.from_numpy(image).permute(2, 0, 1)).permute(1, 2, 0).numpy())
    np.testing.assert_array_equal(out["labels"], target["labels"])


def test_empty_mask_has_no_box_and_empty_target_is_valid():
    with pytest.raises(ValueError, match="mask 1 is empty"):
        masks_to_boxes(np.stack([np.ones((3, 3)), np.zeros((3, 3))]))
    t = empty_target(4, 5, image_id=7)
    assert t["boxes"].shape == (0, 4) and t["masks"].shape == (0, 4, 5) and t["labels"].shape == (0,)
    check_target(t, (4, 5), 3, "empty")


def test_boxes_pass_the_detector_check():
    detection = pytest.importorskip("minitorchseg.models.detection.generalized_rcnn")
    from minitorchseg.tensor import Tensor

    mask = np.zeros((1, 6, 7), np.uint8)
    mask[0, 3, 2] = 1
    t = make_target(mask, [1], 1)
    detection.check_detection_inputs([Tensor(np.zeros((3, 6, 7), np.float32))],
                                     [{k: Tensor(t[k]) for k in ("boxes", "labels", "masks")}],
                                     True, 3, 2, True)


def test_instance_shapes_masks_paint_the_semantic_mask():
    ds = InstanceShapes(6, size=24, seed=3, max_objects=3)
    for i in range(len(ds)):
        image, target = ds[i]
        _, semantic = ds.shapes[i]
        check_target(target, image.shape, ds.num_classes, f"shapes {i}")
        painted = np.zeros_like(semantic)
        for m, label in zip(target["masks"], target["labels"]):
            assert not painted[m.astype(bool)].any()
            painted[m.astype(bool)] = label
        np.testing.assert_array_equal(painted, semantic)
        assert target["image_id"] == i + 1


# ------------------------------------------------------------------------------------------ nuclei (Kaggle layout)
def make_nuclei(root, ids, rng, size=(10, 12), per_image=(2, 0, 3)):
    """Kaggle layout: RGBA images, one 0/255 mask PNG per nucleus; returns {id: (rgb, [masks])}."""
    h, w = size
    truth = {}
    for sample, count in zip(ids, per_image):
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        write_png(root / "stage1_train" / sample / "images" / f"{sample}.png", rgba, mode="RGBA")
        (root / "stage1_train" / sample / "masks").mkdir(parents=True, exist_ok=True)
        masks = []
        for k in range(count):
            m = np.zeros((h, w), np.uint8)
            m[k * 3:k * 3 + 2, k:k + 3 + k] = 255
            write_png(root / "stage1_train" / sample / "masks" / f"m{k}.png", m)
            masks.append(m > 0)
        truth[sample] = (rgba[..., :3], masks)
    return truth


def test_nuclei_reader(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "dsb"
    truth = make_nuclei(root, ["aa", "bb", "cc"], rng)
    (root / "train.txt").write_text("aa\nbb\n\n")
    (root / "val.txt").write_text("cc\n")
    train, val = NucleiDSB2018(root, "train"), NucleiDSB2018(root, "val")
    assert (len(train), len(val)) == (2, 1) and train.num_classes == 2
    for ds, ids in ((train, ["aa", "bb"]), (val, ["cc"])):
        for i, sample in enumerate(ids):
            image, target = ds[i]
            rgb, masks = truth[sample]
            np.testing.assert_array_equal(image, rgb)
            check_target(target, image.shape, 2, sample)
            assert target["masks"].shape[0] == len(masks)
            for got, want in zip(target["masks"], masks):
                np.testing.assert_array_equal(got.astype(bool), want)
            assert target["labels"].tolist() == [1] * len(masks)
    assert train[1][1]["masks"].shape == (0, 10, 12)


def test_nuclei_errors(tmp_path):
    rng = np.random.default_rng(2)
    root = tmp_path / "dsb"
    make_nuclei(root, ["aa", "bb"], rng, per_image=(1, 1))
    (root / "train.txt").write_text("aa\nbb\n")
    (root / "val.txt").write_text("\n")
    with pytest.raises(ValueError, match="lists no image: the 'val' split is empty"):
        NucleiDSB2018(root, "val")
    write_png(root / "stage1_train" / "bb" / "masks" / "wrong.png", np.zeros((9, 12), np.uint8))
    ds = NucleiDSB2018(root, "train")
    with pytest.raises(ValueError, match=r"wrong\.png.*size 12x9.*size 12x10"):
        ds[1]
    write_png(root / "stage1_train" / "aa" / "masks" / "rgb.png", np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(ValueError, match=r"rgb\.png.*single-channel"):
        ds[0]
    (root / "train.txt").write_text("aa\nzz\n")
    with pytest.raises(FileNotFoundError, match=r"train\.txt:2: image file not found"):
        NucleiDSB2018(root, "train")
    with pytest.raises(ValueError, match="split must be one of"):
        NucleiDSB2018(root, "test")


# ------------------------------------------------------------------------------------------ COCO reader and writer
def coco_fixture(tmp_path, rng, size=(10, 12)):
    """Three images: a polygon, an uncompressed RLE and a crowd (compressed RLE) on image 5; a compressed RLE on
    image 9; image 11 without annotation. Categories 3 and 7 (non-contiguous)."""
    h, w = size
    images_dir = tmp_path / "images"
    images = []
    for image_id, name in ((5, "a.png"), (9, "b.jpg.png"), (11, "c.png")):
        write_png(images_dir / name, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
    square = np.zeros((h, w), np.uint8, order="F")
    square[1:5, 6:10] = 1
    uncompressed = {"size": [h, w], "counts": _uncompressed_counts(square)}
    crowd = np.zeros((h, w), np.uint8, order="F")
    crowd[6:9, 0:5] = 1
    blob = np.zeros((h, w), np.uint8, order="F")
    blob[2:7, 3:8] = 1
    blob[4, 5] = 0
    annotations = [
        {"id": 1, "image_id": 5, "category_id": 3, "iscrowd": 0,
         "segmentation": [[0.5, 0.5, 4.5, 0.5, 4.5, 3.5, 0.5, 3.5]], "area": 12.0, "bbox": [0.5, 0.5, 4, 3]},
        {"id": 2, "image_id": 5, "category_id": 7, "iscrowd": 0, "segmentation": uncompressed,
         "area": 16.0, "bbox": [6, 1, 4, 4]},
        {"id": 3, "image_id": 5, "category_id": 3, "iscrowd": 1, "segmentation": encode_mask(crowd),
         "area": 15.0, "bbox": [0, 6, 5, 3]},
        {"id": 4, "image_id": 9, "category_id": 7, "iscrowd": 0, "segmentation": encode_mask(blob),
         "area": 24.0, "bbox": [3, 2, 5, 5]},
    ]
    categories = [{"id": 7, "name": "seven"}, {"id": 3, "name": "three"}]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco))
    return images_dir, path, coco


def _uncompressed_counts(mask):
    flat = np.asarray(mask).flatten(order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    return counts


def test_coco_reader_against_pycocotools(tmp_path):
    images_dir, path, _ = coco_fixture(tmp_path, np.random.default_rng(3))
    ds = CocoInstances(images_dir, path)
    ref = COCO(str(path))
    assert ds.category_ids == (3, 7) and ds.class_names == ("background", "three", "seven")
    assert ds.image_ids == [5, 9, 11] and len(ds) == 3
    label_of = {3: 1, 7: 2}
    for i, image_id in enumerate(ds.image_ids):
        image, target = ds[i]
        np.testing.assert_array_equal(image, np.asarray(Image.open(images_dir / ds.file_name(i)).convert("RGB")))
        check_target(target, image.shape, ds.num_classes, f"image {image_id}")
        anns = ref.loadAnns(ref.getAnnIds(imgIds=[image_id]))
        plain = [a for a in anns if not a["iscrowd"]]
        assert len(target["masks"]) == len(plain)
        for got, ann in zip(target["masks"], plain):
            np.testing.assert_array_equal(got, ref.annToMask(ann))
        assert target["labels"].tolist() == [label_of[a["category_id"]] for a in plain]
        gt = ds.ground_truth(i)
        assert gt["iscrowd"].tolist() == [a["iscrowd"] for a in anns]
        for got, ann in zip(gt["masks"], anns):
            np.testing.assert_array_equal(got, ref.annToMask(ann))
    assert ds[2][1]["masks"].shape == (0, 10, 12)
    assert ds[0][1]["masks"].shape[0] == 2 and ds.ground_truth(0)["masks"].shape[0] == 3


def test_decode_all_three_segmentation_kinds():
    mask = np.zeros((7, 5), np.uint8)
    mask[2:6, 1:3] = 1
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], str)
    np.testing.assert_array_equal(decode_segmentation(rle, 7, 5), mask)
    np.testing.assert_array_equal(decode_segmentation({"size": [7, 5], "counts": _uncompressed_counts(mask)}, 7, 5),
                                  mask)
    polygon = [[1.0, 2.0, 3.0, 2.0, 3.0, 6.0, 1.0, 6.0]]
    want = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygon, 7, 5)))
    np.testing.assert_array_equal(decode_segmentation(polygon, 7, 5), want)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["annotations"][1].update(image_id=99),
     r"annotation 2 has image_id 99, which is not an id in 'images'"),
    (lambda c: c["annotations"][3].update(category_id=4),
     r"annotation 4 has category_id 4, which is not an id in 'categories' \(\[3, 7\]\)"),
    (lambda c: c["annotations"][0].update(segmentation=[[1, 2, 3]]), r"annotation 1: a polygon must be"),
    (lambda c: c["annotations"][3]["segmentation"].update(size=[4, 4]), r"annotation 4: its RLE has size \[4, 4\]"),
    (lambda c: c.update(images=[], annotations=[]), r"'images' is empty: the data set has no image"),
    (lambda c: c["images"][1].update(id=5), r"image id 5 appears twice"),
    (lambda c: c["images"][2].pop("file_name"), r"image 11 needs a 'file_name' string, got None"),
    (lambda c: c["images"][0].update(height=0), r"image 5 needs positive integer 'width' and 'height'"),
])
def test_coco_bad_files(tmp_path, change, message):
    images_dir, path, coco = coco_fixture(tmp_path, np.random.default_rng(4))
    change(coco)
    path.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=message):
        CocoInstances(images_dir, path)


def test_coco_image_of_another_size(tmp_path):
    images_dir, path, _ = coco_fixture(tmp_path, np.random.default_rng(5))
    write_png(images_dir / "b.jpg.png", np.zeros((10, 13, 3), np.uint8))
    ds = CocoInstances(images_dir, path)
    with pytest.raises(ValueError, match=r"size 13x10 \(WxH\) but .* gives image 9 the size 12x10"):
        ds[1]


def test_coco_export_round_trip(tmp_path):
    images_dir, path, coco = coco_fixture(tmp_path, np.random.default_rng(6))
    ds = CocoInstances(images_dir, path)
    out = tmp_path / "gt.json"
    write_coco_json(out, coco_ground_truth(ds))
    # A data set read from a COCO file exports the file's own annotations (the official evaluation's ground truth).
    assert json.loads(out.read_text())["annotations"] == coco["annotations"]
    ref = COCO(str(out))
    for i, image_id in enumerate(ds.image_ids):
        gt = ds.ground_truth(i)
        anns = ref.loadAnns(ref.getAnnIds(imgIds=[image_id]))
        assert [a["iscrowd"] for a in anns] == gt["iscrowd"].tolist()
        assert [a["category_id"] for a in anns] == [ds.category_ids[k - 1] for k in gt["labels"]]
        for got, ann in zip(gt["masks"], anns):
            np.testing.assert_array_equal(ref.annToMask(ann), got)
    probabilities = np.stack([gt_mask.astype(np.float32) * 0.9 for gt_mask in ds[0][1]["masks"]])[:, None]
    dets = coco_detections([{"boxes": ds[0][1]["boxes"], "labels": ds[0][1]["labels"], "scores": [0.9, 0.8],
                             "masks": probabilities}], [5], ds.category_ids)
    assert [d["category_id"] for d in dets] == [3, 7]
    results = ref.loadRes([{k: v for k, v in d.items() if k != "bbox"} for d in dets])
    for d, want in zip(results.loadAnns(results.getAnnIds()), ds[0][1]["masks"]):
        np.testing.assert_array_equal(results.annToMask(d), want)
    # Missing area and bbox are filled in from the mask; a subset exports its own images only.
    for ann in coco["annotations"]:
        del ann["area"], ann["bbox"]
    path.write_text(json.dumps(coco))
    filled = coco_ground_truth(open_instance_split(f"coco:{images_dir},{path}", "train"))
    assert [image["id"] for image in filled["images"]] == [5, 9]
    first = filled["annotations"][0]
    x1, y1, x2, y2 = ds.ground_truth(0)["boxes"][0].tolist()
    assert first["area"] == 12.0 and first["bbox"] == [x1, y1, x2 - x1, y2 - y1] == [1.0, 1.0, 4.0, 3.0]


def test_other_data_export_as_compressed_rle_text(tmp_path):
    ds = InstanceShapes(3, size=20, seed=4, min_size=4, max_size=10)
    out = tmp_path / "gt.json"
    write_coco_json(out, coco_ground_truth(ds))
    assert all(isinstance(a["segmentation"]["counts"], str) for a in json.loads(out.read_text())["annotations"])
    ref = COCO(str(out))
    for i, image_id in enumerate(ds.image_ids):
        target = ds[i][1]
        anns = ref.loadAnns(ref.getAnnIds(imgIds=[image_id]))
        assert [a["category_id"] for a in anns] == target["labels"].tolist()
        for got, ann in zip(target["masks"], anns):
            np.testing.assert_array_equal(ref.annToMask(ann), got)
            np.testing.assert_array_equal(ann["bbox"], mask_utils.toBbox(ann["segmentation"]))
            assert ann["area"] == got.sum()


def test_writer_refuses_a_bad_dict_and_writes_nothing(tmp_path):
    images_dir, path, coco = coco_fixture(tmp_path, np.random.default_rng(7))
    coco["annotations"][0]["image_id"] = 404
    out = tmp_path / "bad.json"
    with pytest.raises(ValueError, match="image_id 404"):
        write_coco_json(out, coco)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


# ------------------------------------------------------------------------------------------ transforms
def _random_target(rng, h=13, w=17, k=4):
    masks = np.zeros((k, h, w), np.uint8)
    for j in range(k):
        y, x = rng.integers(0, h - 1), rng.integers(0, w - 1)
        masks[j, y:y + rng.integers(1, 5), x:x + rng.integers(1, 6)] = 1
    masks[0] = 0
    masks[0, h - 1, w - 1] = 1
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), make_target(masks, np.arange(1, k + 1), 3)


@pytest.mark.parametrize("transform", [
    InstanceHorizontalFlip(1.0), InstanceVerticalFlip(1.0), InstanceResize((9, 31)), InstanceResize((4, 5)),
    InstanceRandomCrop((7, 8)), InstanceRandomCrop((20, 20)),
    InstanceCompose([InstanceHorizontalFlip(0.5), InstanceRandomCrop(10), ColorJitter(0.3, 0.3, 0.3)]),
])
def test_instance_transforms_keep_boxes_and_masks_consistent(transform):
    for seed in range(12):
        rng = np.random.default_rng(seed)
        image, target = _random_target(rng)
        before = {k: np.copy(v) for k, v in target.items()}
        out_image, out = transform(image, target, np.random.default_rng(seed + 100))
        check_target(out, out_image.shape, 5, repr(transform))
        for key, value in before.items():
            np.testing.assert_array_equal(target[key], value)
        for m, label in zip(out["masks"], out["labels"]):
            assert m.any() and label in before["labels"]
        assert out["area"].tolist() == out["masks"].sum(axis=(1, 2)).tolist()


def test_flip_moves_a_one_pixel_mask_to_the_mirrored_box():
    image = np.zeros((3, 5, 3), np.uint8)
    mask = np.zeros((1, 3, 5), np.uint8)
    mask[0, 0, 1] = 1
    _, out = InstanceHorizontalFlip(1.0)(image, make_target(mask, [1], 1), np.random.default_rng(0))
    assert out["boxes"].tolist() == [[3.0, 0.0, 4.0, 1.0]]
    _, out = InstanceVerticalFlip(1.0)(image, make_target(mask, [1], 1), np.random.default_rng(0))
    assert out["boxes"].tolist() == [[1.0, 2.0, 2.0, 3.0]]


def test_crop_drops_instances_outside_and_keeps_empty_images():
    image = np.zeros((10, 10, 3), np.uint8)
    masks = np.zeros((2, 10, 10), np.uint8)
    masks[0, 0:2, 0:2] = 1
    masks[1, 8:10, 8:10] = 1
    crop = InstanceRandomCrop((5, 5))
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        out_image, out = crop(image, make_target(masks, [1, 2], 1), rng)
        assert out_image.shape == (5, 5, 3) and out["masks"].shape[1:] == (5, 5)
        seen.add(tuple(out["labels"].tolist()))
    assert () in seen and (1,) in seen and (2,) in seen
    out_image, out = InstanceResize(4)(image, empty_target(10, 10, 2))
    assert out_image.shape == (4, 4, 3) and out["masks"].shape == (0, 4, 4)


def test_color_jitter_changes_only_the_image():
    rng = np.random.default_rng(0)
    image, target = _random_target(rng)
    out_image, out = ColorJitter(0.5, 0.5, 0.5)(image, target, np.random.default_rng(1))
    assert out is target and out_image.dtype == np.uint8 and out_image.shape == image.shape
    assert not np.array_equal(out_image, image)
    same, _ = ColorJitter()(image, target, np.random.default_rng(1))
    np.testing.assert_array_equal(same, image)
    with pytest.raises(ValueError, match="brightness must be >= 0, got -1"):
        ColorJitter(brightness=-1)


# ------------------------------------------------------------------------------------------ data specs
def test_instance_specs(tmp_path):
    spec = parse_data_spec("dsb2018:/some/where")
    assert (spec.kind, spec.paths) == ("dsb2018", ("/some/where",))
    assert parse_data_spec("coco:i,a.json,vi,va.json").paths == ("i", "a.json", "vi", "va.json")
    with pytest.raises(ValueError, match="coco needs IMAGES,ANNOTATIONS.json"):
        parse_data_spec("coco:i,a.json,vi")
    with pytest.raises(ValueError, match="dsb2018 needs a path"):
        parse_data_spec("dsb2018:")
    with pytest.raises(ValueError, match="holds instance annotations"):
        open_split("dsb2018:/some/where")
    with pytest.raises(ValueError, match="holds semantic label maps, not instances"):
        open_instance_split("camvid:/some/where")
    images_dir, path, _ = coco_fixture(tmp_path, np.random.default_rng(8))
    text = f"coco:{images_dir},{path}"
    train, val, test = (open_instance_split(text, s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (2, 1, 3) and val.image_ids == [11]
    two = open_instance_split(f"coco:{images_dir},{path},{images_dir},{path}", "val")
    assert len(two) == 3
    shapes = open_instance_split("shapes:size=16,train=3,val=2,min_size=4,max_size=8", "val")
    assert len(shapes) == 2 and shapes.shapes.seed == 1


def test_shared_dsb2018():
    root = dsb2018_root()
    if root is None:
        pytest.skip("shared DSB2018 not found (set MINITORCHSEG_DSB2018 or place it at ../shared/data/dsb2018)")
    train, val = open_instance_split(f"dsb2018:{root}", "train"), open_instance_split(f"dsb2018:{root}", "val")
    assert (len(train), len(val)) == (233, 50)
    image, target = val[0]
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    check_target(target, image.shape, 2, "val[0]")
    masks = target["masks"].astype(np.int64)
    assert masks.sum(axis=0).max() == 1, "README: masks of one image do not overlap"
