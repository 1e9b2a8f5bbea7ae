"""Data: synthetic shapes, readers on fixture folders (and on the shared CamVid copy), palettes,
transforms, the batch iterator and median-frequency weights."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from minitorchseg.data import (
    CAMVID_CLASSES,
    CAMVID_PALETTE,
    CAMVID_SEGNET_WEIGHTS,
    VOC_PALETTE,
    CamVid,
    Compose,
    DataLoader,
    ImageMaskFolder,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    Resize,
    SyntheticShapes,
    ToArray,
    VOCSegmentation,
    class_pixel_counts,
    colorize,
    median_frequency_weights,
    voc_colormap,
)
from minitorchseg.data.transforms import resize_mask
from tests.strategies import seeds

REPO = Path(__file__).resolve().parents[1]


def camvid_root():
    """The shared CamVid copy: $MINITORCHSEG_CAMVID, else ../shared/data/camvid next to the repo."""
    candidates = [os.environ.get("MINITORCHSEG_CAMVID"), REPO.parent / "shared" / "data" / "camvid"]
    for c in candidates:
        if c and (Path(c) / "train").is_dir():
            return Path(c)
    return None


def write_png(path, array, mode=None, palette=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.asarray(array), mode=mode) if mode else Image.fromarray(np.asarray(array))
    if palette is not None:
        img.putpalette(palette)
    img.save(path)
    return path


def random_pair(rng, h, w, num_labels):
    image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    mask = rng.integers(0, num_labels, size=(h, w)).astype(np.uint8)
    return image, mask


# ----------------------------------------------------------------------------- synthetic shapes


def test_shapes_deterministic_and_order_independent():
    a = SyntheticShapes(12, size=(32, 40), seed=3)
    b = SyntheticShapes(12, size=(32, 40), seed=3, cache=False)
    for i in reversed(range(12)):
        ia, ma = a[i]
        ib, mb = b[i]
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ma, mb)
        for key in ("masks", "boxes", "labels"):
            np.testing.assert_array_equal(a.instances(i)[key], b.instances(i)[key])
    np.testing.assert_array_equal(a[-1][0], a[11][0])
    c = SyntheticShapes(12, size=(32, 40), seed=4)
    assert not np.array_equal(a[0][0], c[0][0])
    with pytest.raises(IndexError, match="index 12 out of range for 12 items"):
        a[12]


def test_shapes_content():
    ds = SyntheticShapes(64, size=(64, 64), seed=0)
    assert (ds.num_classes, ds.ignore_index, ds.class_names) == (
        4,
        None,
        ("background", "circle", "square", "triangle"),
    )
    assert ds.palette.shape == (4, 3) and ds.palette.dtype == np.uint8
    kinds, areas = set(), []
    for i in range(len(ds)):
        image, mask = ds[i]
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert mask.shape == (64, 64) and mask.dtype == np.int64
        inst = ds.instances(i)
        masks, boxes, labels = inst["masks"], inst["boxes"], inst["labels"]
        k = len(labels)
        assert 1 <= k <= 4
        assert masks.shape == (k, 64, 64) and masks.dtype == np.bool_
        assert boxes.shape == (k, 4) and boxes.dtype == np.float32
        assert labels.dtype == np.int64 and set(labels.tolist()) <= {1, 2, 3}
        assert masks.sum(axis=0).max() <= 1
        painted = np.zeros((64, 64), dtype=np.int64)
        for m, box, label in zip(masks, boxes, labels):
            assert m.sum() >= ds.min_pixels
            ys, xs = np.nonzero(m)
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            painted[m] = label
            areas.append(int(m.sum()))
            kinds.add(int(label))
            inside = image[m].astype(float).mean(axis=0)
            around = image[~masks.any(axis=0)].astype(float).mean(axis=0)
            assert np.linalg.norm(inside - around) > 20
        np.testing.assert_array_equal(mask, painted)
        background = image[mask == 0].astype(float)
        assert background.std(axis=0).max() > 8
    assert kinds == {1, 2, 3}
    assert min(areas) < 40 and max(areas) > 300


def test_shapes_many_images():
    ds = SyntheticShapes(512, size=(64, 64), seed=1, min_objects=0, max_objects=6)
    counts = [len(ds.instances(i)["labels"]) for i in range(len(ds))]
    assert min(counts) == 0 and max(counts) == 6
    empty = counts.index(0)
    inst = ds.instances(empty)
    assert inst["masks"].shape == (0, 64, 64) and inst["boxes"].shape == (0, 4)
    assert not ds[empty][1].any()


def test_shapes_bad_arguments():
    with pytest.raises(ValueError, match="size must be"):
        SyntheticShapes(4, size=(4, 64))
    with pytest.raises(ValueError, match="min_objects <= max_objects"):
        SyntheticShapes(4, min_objects=3, max_objects=2)
    with pytest.raises(ValueError, match="max_size"):
        SyntheticShapes(4, size=(32, 32), max_size=40)


# ----------------------------------------------------------------------------- palettes


def test_voc_colormap_and_colorize():
    cmap = voc_colormap()
    assert cmap.shape == (256, 3)
    assert tuple(cmap[0]) == (0, 0, 0) and tuple(cmap[1]) == (128, 0, 0) and tuple(cmap[2]) == (0, 128, 0)
    assert tuple(cmap[15]) == (192, 128, 128) and tuple(cmap[20]) == (0, 64, 128)
    assert tuple(cmap[255]) == (224, 224, 192)
    np.testing.assert_array_equal(VOC_PALETTE, cmap[:21])
    mask = np.array([[0, 1], [20, 255]])
    rgb = colorize(mask, VOC_PALETTE, ignore_index=255, ignore_color=(224, 224, 192))
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb.reshape(-1, 3), [[0, 0, 0], [128, 0, 0], [0, 64, 128], [224, 224, 192]])
    with pytest.raises(ValueError, match=r"labels \[255\] outside \[0, 21\)"):
        colorize(mask, VOC_PALETTE)


def test_camvid_palette_matches_readme():
    root = camvid_root()
    if root is None or not (root / "README.md").is_file():
        pytest.skip("shared CamVid README not found")
    rows = re.findall(
        r"^\| (\d+) \| (\w+) \| (\d+),(\d+),(\d+) \| ([\d.]+|ignored) \|$",
        (root / "README.md").read_text(),
        re.M,
    )
    assert len(rows) == 12
    for index, name, r, g, b, weight in rows[:11]:
        c = int(index)
        assert CAMVID_CLASSES[c] == name
        assert tuple(CAMVID_PALETTE[c]) == (int(r), int(g), int(b))
        assert CAMVID_SEGNET_WEIGHTS[c] == float(weight)
    assert rows[11][1] == "Unlabelled" and rows[11][5] == "ignored"


# ----------------------------------------------------------------------------- readers


def make_camvid(root, rng, splits=("train", "val"), n=3, size=(6, 8)):
    for split in splits:
        for k in range(n):
            image, mask = random_pair(rng, *size, num_labels=12)
            write_png(root / split / f"f{k}.png", image)
            write_png(root / f"{split}annot" / f"f{k}.png", mask)
    return root


def test_camvid_folders(tmp_path):
    rng = np.random.default_rng(0)
    root = make_camvid(tmp_path / "CamVid", rng)
    ds = CamVid(root, "val")
    assert len(ds) == 3 and (ds.num_classes, ds.ignore_index) == (11, 11)
    assert ds.class_names == CAMVID_CLASSES and ds.palette.shape == (11, 3)
    image, mask = ds[1]
    assert image.shape == (6, 8, 3) and image.dtype == np.uint8 and mask.dtype == np.int64
    np.testing.assert_array_equal(image, np.asarray(Image.open(root / "val" / "f1.png")))
    np.testing.assert_array_equal(mask, np.asarray(Image.open(root / "valannot" / "f1.png")))
    np.testing.assert_array_equal(ds.load_mask(1), mask)
    ds.check()


def test_camvid_lists(tmp_path):
    rng = np.random.default_rng(1)
    root = make_camvid(tmp_path / "CamVid", rng)
    (root / "train.txt").write_text("train/f2.png trainannot/f2.png\n\ntrain/f0.png trainannot/f0.png\n")
    ds = CamVid(root, "train")
    assert len(ds) == 2
    assert ds.pairs[0] == (str(root / "train" / "f2.png"), str(root / "trainannot" / "f2.png"))
    (root / "val.txt").write_text("/SegNet/CamVid/val/f1.png /SegNet/CamVid/valannot/f1.png\n")
    ds = CamVid(root, "val")
    assert ds.pairs == [(str(root / "val" / "f1.png"), str(root / "valannot" / "f1.png"))]
    np.testing.assert_array_equal(ds[0][1], np.asarray(Image.open(root / "valannot" / "f1.png")))


def test_camvid_errors(tmp_path):
    rng = np.random.default_rng(2)
    with pytest.raises(FileNotFoundError, match="CamVid root not found: .*nowhere"):
        CamVid(tmp_path / "nowhere")
    root = make_camvid(tmp_path / "CamVid", rng, splits=("train",))
    with pytest.raises(FileNotFoundError, match=r"CamVid 'val' image folder not found: .*val'"):
        CamVid(root, "val")
    with pytest.raises(ValueError, match="split must be one of"):
        CamVid(root, "training")
    write_png(root / "train" / "lonely.png", random_pair(rng, 6, 8, 11)[0])
    with pytest.raises(
        FileNotFoundError, match=r"image '.*lonely.png' has no mask: no file with the stem 'lonely'"
    ):
        CamVid(root, "train")
    (root / "train" / "lonely.png").unlink()
    (root / "train.txt").write_text("train/f0.png trainannot/missing.png\n")
    with pytest.raises(
        FileNotFoundError, match=r"train.txt:1: image '.*f0.png' has no mask: '.*missing.png' not found"
    ):
        CamVid(root, "train")
    (root / "train.txt").unlink()

    write_png(root / "trainannot" / "f0.png", np.zeros((5, 8), dtype=np.uint8))
    write_png(root / "trainannot" / "f1.png", np.full((6, 8), 12, dtype=np.uint8))
    (root / "train" / "f2.png").write_bytes(b"not a png at all")
    ds = CamVid(root, "train")
    with pytest.raises(
        ValueError, match=r"mask '.*f0.png' has size 8x5 \(WxH\) but its image '.*f0.png' has size 8x6"
    ):
        ds[0]
    with pytest.raises(ValueError, match=r"mask '.*f1.png' holds label values \[12\] outside \[0, 11\)"):
        ds[1]
    with pytest.raises(ValueError, match=r"cannot read image '.*f2.png'"):
        ds[2]
    with pytest.raises(ValueError, match="f0.png"):
        ds.check()
    write_png(root / "trainannot" / "f0.png", np.zeros((6, 8, 3), dtype=np.uint8))
    with pytest.raises(
        ValueError, match=r"mask '.*f0.png' has mode 'RGB' \(3 channels\); expected a single-channel"
    ):
        ds[0]


def make_voc(root, rng, ids=("2007_000032", "2007_000033")):
    palette = voc_colormap().reshape(-1).tolist()
    for image_id in ids:
        image, mask = random_pair(rng, 7, 9, num_labels=21)
        mask[0, :] = 255
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        write_png(root / "SegmentationClass" / f"{image_id}.png", mask, mode="P", palette=palette)
    split_dir = root / "ImageSets" / "Segmentation"
    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / "train.txt").write_text("\n".join(ids) + "\n")
    (split_dir / "val.txt").write_text(ids[0] + "\n")
    return root


def test_voc(tmp_path):
    rng = np.random.default_rng(3)
    root = make_voc(tmp_path / "VOCdevkit" / "VOC2012", rng)
    ds = VOCSegmentation(root, "train")
    assert len(ds) == 2 and (ds.num_classes, ds.ignore_index) == (21, 255) and len(ds.class_names) == 21
    assert ds.ids == ["2007_000032", "2007_000033"]
    image, mask = ds[0]
    assert image.shape == (7, 9, 3) and image.dtype == np.uint8
    assert Image.open(root / "SegmentationClass" / "2007_000032.png").mode == "P"
    np.testing.assert_array_equal(
        mask, np.asarray(Image.open(root / "SegmentationClass" / "2007_000032.png"))
    )
    assert (mask[0] == 255).all() and mask[1:].max() < 21
    assert len(VOCSegmentation(tmp_path, "val")) == 1
    with pytest.raises(FileNotFoundError, match=r"VOC split list not found: .*trainval.txt"):
        VOCSegmentation(root, "trainval")
    (root / "SegmentationClass" / "2007_000033.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"train.txt:2: image '.*2007_000033.jpg' has no mask"):
        VOCSegmentation(root, "train")
    with pytest.raises(FileNotFoundError, match="VOC root not found"):
        VOCSegmentation(tmp_path / "missing")


def test_image_mask_folder(tmp_path):
    rng = np.random.default_rng(4)
    for stem in ("b", "a", "c"):
        image, mask = random_pair(rng, 5, 4, num_labels=3)
        (tmp_path / "img").mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp_path / "img" / f"{stem}.jpg")
        write_png(tmp_path / "msk" / f"{stem}.png", mask)
    write_png(tmp_path / "msk" / "extra.png", np.zeros((5, 4), dtype=np.uint8))
    ds = ImageMaskFolder(tmp_path / "img", tmp_path / "msk")
    assert [Path(p).stem for p, _ in ds.pairs] == ["a", "b", "c"]
    assert (
        ds.num_classes == 3
        and ds.class_names == ("class_0", "class_1", "class_2")
        and ds.ignore_index is None
    )
    assert ds[2][1].shape == (5, 4)
    ds = ImageMaskFolder(
        tmp_path / "img", tmp_path / "msk", class_names=["x", "y", "z", "w"], ignore_index=255
    )
    assert ds.num_classes == 4 and ds.palette.shape == (4, 3)
    ds = ImageMaskFolder(tmp_path / "img", tmp_path / "msk", num_classes=2)
    with pytest.raises(
        ValueError, match=r"holds label values \[2\] outside \[0, 2\) \(num_classes=2, ignore_index=None\)"
    ):
        ds.check()
    with pytest.raises(FileNotFoundError, match=r"masks_dir not found: '.*nope' is not a directory"):
        ImageMaskFolder(tmp_path / "img", tmp_path / "nope")
    (tmp_path / "msk" / "c.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"image '.*c.jpg' has no mask: no file with the stem 'c'"):
        ImageMaskFolder(tmp_path / "img", tmp_path / "msk")


def test_shared_camvid(capsys):
    root = camvid_root()
    if root is None:
        pytest.skip("shared CamVid not found (set MINITORCHSEG_CAMVID or place it at ../shared/data/camvid)")
    train, val = CamVid(root, "train"), CamVid(root, "val")
    assert (len(train), len(val)) == (367, 101)
    image, mask = val[0]
    assert image.shape == (180, 240, 3) and mask.shape == (180, 240) and mask.max() <= 11
    weights = median_frequency_weights(train, 11, ignore_index=11)
    pixels, _ = class_pixel_counts(train, 11, ignore_index=11)
    lines = [f"{'class':<12}{'ours':>9}{'SegNet':>9}{'ratio':>8}"]
    for name, w, s in zip(CAMVID_CLASSES, weights, CAMVID_SEGNET_WEIGHTS):
        lines.append(f"{name:<12}{w:9.4f}{s:9.4f}{w / s:8.3f}")
    with capsys.disabled():
        print("\nCamVid train (half resolution): median-frequency weights\n" + "\n".join(lines))
    assert (pixels > 0).all() and (weights > 0).all()
    ours_order = np.argsort(weights)
    assert set(ours_order[:4]) == set(np.argsort(CAMVID_SEGNET_WEIGHTS)[:4])
    assert set(ours_order[-4:]) == set(np.argsort(CAMVID_SEGNET_WEIGHTS)[-4:])


# ----------------------------------------------------------------------------- transforms


def coordinate_pair(h, w):
    """An image whose pixels encode their own position, and a mask of the flat index."""
    ys, xs = np.mgrid[0:h, 0:w]
    image = np.stack([ys, xs, (ys + xs) % 256], axis=-1).astype(np.uint8)
    return image, (ys * w + xs).astype(np.int64)


@settings(max_examples=30, deadline=None)
@given(seeds, st.integers(4, 20), st.integers(4, 20), st.integers(1, 24), st.integers(1, 24))
def test_random_crop(seed, h, w, ch, cw):
    image, mask = coordinate_pair(h, w)
    crop = RandomCrop((ch, cw), pad_if_needed=True, mask_fill=-1)
    out_image, out_mask = crop(image, mask, np.random.default_rng(seed))
    again = crop(image, mask, np.random.default_rng(seed))
    np.testing.assert_array_equal(out_image, again[0])
    assert out_image.shape == (ch, cw, 3) and out_mask.shape == (ch, cw)
    inside = out_mask >= 0
    np.testing.assert_array_equal(out_image[..., 0][inside], out_mask[inside] // w)
    np.testing.assert_array_equal(out_image[..., 1][inside], out_mask[inside] % w)
    assert (out_image[~inside] == 0).all()
    top, left = divmod(int(out_mask[0, 0]), w) if inside[0, 0] else (0, 0)
    assert inside.sum() == min(ch, h - top) * min(cw, w - left)


def test_crop_flip_errors_and_literals():
    image, mask = coordinate_pair(3, 4)
    with pytest.raises(
        ValueError, match=r"image of size \(H, W\) = \(3, 4\) is smaller than the crop \(5, 5\)"
    ):
        RandomCrop(5)(image, mask, np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs mask_fill"):
        RandomCrop(5, pad_if_needed=True)
    with pytest.raises(ValueError, match=r"mask shape \(3, 3\) differs"):
        RandomCrop(2)(image, mask[:, :3], np.random.default_rng(0))
    flipped_image, flipped_mask = RandomHorizontalFlip(p=1.0)(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(flipped_mask, [[3, 2, 1, 0], [7, 6, 5, 4], [11, 10, 9, 8]])
    np.testing.assert_array_equal(flipped_image[..., 1], [[3, 2, 1, 0]] * 3)
    same = RandomHorizontalFlip(p=0.0)(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(same[1], mask)
    flips = [RandomHorizontalFlip()(image, mask, np.random.default_rng(s))[1][0, 0] == 3 for s in range(200)]
    assert 60 < sum(flips) < 140


@settings(max_examples=30, deadline=None)
@given(seeds, st.integers(2, 16), st.integers(2, 16), st.floats(0.3, 2.5), st.floats(0.3, 2.5))
def test_random_scale(seed, h, w, lo, hi):
    lo, hi = min(lo, hi), max(lo, hi)
    image, mask = coordinate_pair(h, w)
    rng = np.random.default_rng(seed)
    out_image, out_mask = RandomScale(lo, hi)(image, mask, rng)
    s = np.random.default_rng(seed).uniform(lo, hi)
    expected_shape = (max(1, round(h * s)), max(1, round(w * s)))
    assert out_mask.shape == expected_shape and out_image.shape == expected_shape + (3,)
    assert out_image.dtype == np.uint8 and out_mask.dtype == np.int64
    rows, cols = out_mask // w, out_mask % w
    for i in range(expected_shape[0]):
        for j in range(expected_shape[1]):
            assert rows[i, j] == min(int((i + 0.5) * h / expected_shape[0]), h - 1)
            assert cols[i, j] == min(int((j + 0.5) * w / expected_shape[1]), w - 1)


def test_resize_literals():
    mask = np.array([[0, 1], [2, 3]])
    np.testing.assert_array_equal(resize_mask(mask, (4, 4)), np.repeat(np.repeat(mask, 2, 0), 2, 1))
    np.testing.assert_array_equal(resize_mask(np.arange(16).reshape(4, 4), (2, 2)), [[5, 7], [13, 15]])
    image = np.full((4, 6, 3), 100, dtype=np.uint8)
    out_image, out_mask = Resize((2, 3))(image, np.zeros((4, 6), dtype=np.int64))
    assert out_image.shape == (2, 3, 3) and (out_image == 100).all() and out_mask.shape == (2, 3)


def test_normalize_and_compose():
    image = np.array([[[0, 51, 255], [255, 255, 255]]], dtype=np.uint8)
    mask = np.array([[1, 2]], dtype=np.uint8)
    x, m = Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))(image, mask)
    assert x.shape == (3, 1, 2) and x.dtype == np.float32 and m.dtype == np.int64
    np.testing.assert_allclose(x[:, 0, 0], [-1.0, (0.2 - 0.5) / 0.25, 1.0], rtol=1e-6)
    y, _ = ToArray()(image, mask)
    np.testing.assert_allclose(y[:, 0, 0], [0.0, 0.2, 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize(std=(1, 0, 1))
    pipeline = Compose(
        [
            RandomScale(0.5, 1.5),
            RandomCrop(4, pad_if_needed=True, mask_fill=255),
            RandomHorizontalFlip(),
            Normalize(),
        ]
    )
    image, mask = coordinate_pair(6, 7)
    a = pipeline(image, mask, np.random.default_rng(7))
    b = pipeline(image, mask, np.random.default_rng(7))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (3, 4, 4) and a[1].shape == (4, 4)


# ----------------------------------------------------------------------------- loader


def test_loader_batches_and_epochs():
    ds = SyntheticShapes(10, size=(16, 16), seed=0)
    loader = DataLoader(ds, batch_size=4)
    assert len(loader) == 3 and len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 3, 16, 16), (4, 3, 16, 16), (2, 3, 16, 16)]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    np.testing.assert_array_equal(batches[2][1][1], ds[9][1])
    np.testing.assert_allclose(batches[0][0][1], ds[1][0].transpose(2, 0, 1) / np.float32(255), rtol=1e-6)
    assert len(list(DataLoader(ds, batch_size=4, drop_last=True))) == 2

    def masks_order(loader):
        first = {ds[i][1].tobytes(): i for i in range(len(ds))}
        return [first[m.tobytes()] for _, masks in loader for m in masks]

    shuffled = DataLoader(ds, batch_size=3, shuffle=True, seed=5)
    epoch0, epoch1 = masks_order(shuffled), masks_order(shuffled)
    assert sorted(epoch0) == list(range(10)) and sorted(epoch1) == list(range(10))
    assert epoch0 != epoch1
    again = DataLoader(ds, batch_size=5, shuffle=True, seed=5)
    assert masks_order(again) == epoch0 and masks_order(again) == epoch1
    assert masks_order(DataLoader(ds, batch_size=3, shuffle=True, seed=6)) != epoch0


def test_loader_transform_reproducible_and_errors():
    ds = SyntheticShapes(6, size=(20, 24), seed=0)
    transform = Compose(
        [RandomScale(0.8, 1.2), RandomCrop(12), RandomHorizontalFlip(), Normalize((0.5,) * 3, (0.25,) * 3)]
    )
    runs = [list(DataLoader(ds, batch_size=4, shuffle=True, transform=transform, seed=1)) for _ in range(2)]
    for (xa, ma), (xb, mb) in zip(*runs):
        assert xa.shape[1:] == (3, 12, 12)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ma, mb)
    with pytest.raises(ValueError, match=r"items \[0, 1\] have different sizes"):
        next(iter(DataLoader(ds, batch_size=2, transform=RandomScale(0.5, 2.0))))
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader(ds, batch_size=0)


# ----------------------------------------------------------------------------- class weights


def test_median_frequency_literal():
    masks = [
        np.array([[0, 0, 0, 1]]),
        np.array([[0, 2, 2, 9]]),
        np.array([[0, 0, 9, 9]]),
    ]
    # freq(0) = 6/(4+3+2) = 2/3, freq(1) = 1/4, freq(2) = 2/3 (9 = ignored); freq(3): absent.
    pixels, image_pixels = class_pixel_counts(masks, 4, ignore_index=9)
    np.testing.assert_array_equal(pixels, [6, 1, 2, 0])
    np.testing.assert_array_equal(image_pixels, [9, 4, 3, 0])
    w = median_frequency_weights(masks, 4, ignore_index=9)
    np.testing.assert_allclose(w, [1.0, (2 / 3) / (1 / 4), 1.0, 0.0], rtol=1e-12)
    w = median_frequency_weights(masks, 4, ignore_index=9, power=0.5)  # the CLI's sqrt_median
    np.testing.assert_allclose(w, [1.0, ((2 / 3) / (1 / 4)) ** 0.5, 1.0, 0.0], rtol=1e-12)
    np.testing.assert_array_equal(median_frequency_weights(masks, 4, ignore_index=9, power=0), [1, 1, 1, 0])
    for bad in (-0.5, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="power must be a finite number >= 0, got"):
            median_frequency_weights(masks, 4, ignore_index=9, power=bad)
    ds = SyntheticShapes(8, size=(32, 32))
    np.testing.assert_allclose(
        median_frequency_weights(ds, 4), median_frequency_weights([ds[i][1] for i in range(8)], 4), rtol=1e-12
    )
    with pytest.raises(ValueError, match=r"mask '#1' holds label values \[9\] outside \[0, 4\)"):
        median_frequency_weights(masks, 4)
