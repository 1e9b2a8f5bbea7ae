"""The inputs people actually have: each fault kind with a hand-written right value, and its neighbours.

Batched NMS far from the origin, all-ignored cross-entropy batches, state dicts
with several problems at once, batch-norm statistics in float64, and the image
files that cameras, microscopes and labelling tools write (16-bit, alpha,
palette transparency, CMYK, EXIF orientation, 0/255 binary masks).
"""

import warnings

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg import nn
from minitorchseg.cli import main
from minitorchseg.data import SyntheticShapes, class_pixel_counts, colorize
from minitorchseg.data.base import read_image, read_mask, to_rgb8
from minitorchseg.data.folder import ImageMaskFolder
from minitorchseg.data.spec import Subset, open_split, parse_data_spec
from minitorchseg.metrics import ConfusionMatrix
from minitorchseg.ops import batched_nms

from .strategies import TOL, dtypes, randn, seeds, settings_fast


# ----------------------------------------------------------------------------------------- batched NMS
def test_batched_nms_never_suppresses_across_categories_below_zero():
    boxes = np.array([[-20, -20, 0, 0], [-20, -20, 0, 0]], dtype=np.float64)
    keep = batched_nms(boxes, np.array([0.9, 0.8]), np.array([0, 1]), 0.5)
    np.testing.assert_array_equal(keep, [0, 1])
    same_category = batched_nms(boxes, np.array([0.9, 0.8]), np.array([1, 1]), 0.5)
    np.testing.assert_array_equal(same_category, [0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("corner", [(-20, -20, 0, 0), (-1000, -500, -990, -480), (-3, 2, 5, 9), (0, 0, 4, 4)])
def test_batched_nms_identical_boxes_of_other_categories_all_survive(dtype, corner):
    boxes = np.array([corner] * 4, dtype=dtype)
    scores = np.array([0.5, 0.9, 0.7, 0.8], dtype=dtype)
    keep = batched_nms(boxes, scores, np.array([3, 0, 7, 1]), 0.5)
    np.testing.assert_array_equal(keep, [1, 3, 2, 0])  # every category alone, decreasing score


def _per_category_nms(boxes, scores, idxs, threshold):
    """torchvision's ``nms`` run on each category alone; kept indices merged in stable decreasing score order."""
    kept = []
    for c in np.unique(idxs):
        members = np.flatnonzero(idxs == c)
        keep = torchvision.ops.nms(torch.tensor(boxes[members]), torch.tensor(scores[members]), threshold).numpy()
        kept.extend(members[keep].tolist())
    kept = np.array(kept, dtype=np.int64)
    return kept[np.argsort(-scores[kept], kind="stable")]


@settings_fast
@given(seed=seeds, n=st.integers(1, 25), dtype=dtypes, low=st.sampled_from([-10000, -300, -40, -1, 0, 5]),
       categories=st.sampled_from([(0, 1), (0, 1, 2, 3), (2, 5, 9)]), threshold=st.sampled_from([0.0, 0.3, 0.7]))
def test_batched_nms_matches_nms_per_category_anywhere(seed, n, dtype, low, categories, threshold):
    # Integer coordinates and distinct scores: every IoU is exact in both dtypes, so the keep list is exact.
    rng = np.random.default_rng(seed)
    xy = rng.integers(low, low + 40, (n, 2))
    boxes = np.concatenate([xy, xy + rng.integers(1, 15, (n, 2))], axis=1).astype(dtype)
    scores = rng.permutation(n).astype(dtype)
    idxs = rng.choice(np.array(categories), n)
    expected = _per_category_nms(boxes, scores, idxs, threshold)
    np.testing.assert_array_equal(batched_nms(boxes, scores, idxs, threshold), expected)
    if boxes.min() >= 0:  # the same shift as torchvision's when no coordinate is negative
        theirs = torchvision.ops.batched_nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(idxs), threshold)
        np.testing.assert_array_equal(batched_nms(boxes, scores, idxs, threshold), theirs.numpy())


# ----------------------------------------------------------------------------------------- all-ignored losses
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 5)])
@pytest.mark.parametrize("ignore_index", [255, -100])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_of_an_all_ignored_batch_has_zero_gradient(shape, ignore_index, weighted):
    x = randn(0, shape)
    target_shape = (shape[0],) + shape[2:]
    target = np.full(target_shape, ignore_index, dtype=np.int64)
    weight = np.array([0.5, 2.0, 1.5]) if weighted else None
    ours_x = mts.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy divide/invalid warnings
        loss = F.cross_entropy(ours_x, mts.tensor(target), None if weight is None else mts.tensor(weight),
                               ignore_index=ignore_index)
        loss.backward()
    theirs_x = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(theirs_x, torch.tensor(target),
                                            None if weight is None else torch.tensor(weight),
                                            ignore_index=ignore_index)
    ref.backward()
    assert np.isnan(loss.item()) and torch.isnan(ref)
    np.testing.assert_array_equal(theirs_x.grad.numpy(), 0.0)
    np.testing.assert_array_equal(ours_x.grad.numpy(), theirs_x.grad.numpy())


@pytest.mark.parametrize("loss_fn", ["cross_entropy", "nll_loss"])
def test_cross_entropy_ignored_rows_get_zero_gradient_when_the_weights_sum_to_zero(loss_fn):
    # Non-ignored targets of weight 0: torch gives NaN in those rows only (0/0), exact zeros in ignored rows.
    x = randn(1, (4, 3))
    target = np.array([0, 0, -100, 0])
    weight = np.array([0.0, 1.0, 1.0])
    ours_x = mts.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(F, loss_fn)(ours_x, mts.tensor(target), mts.tensor(weight)).backward()
    theirs_x = torch.tensor(x, requires_grad=True)
    getattr(torch.nn.functional, loss_fn)(theirs_x, torch.tensor(target), torch.tensor(weight)).backward()
    np.testing.assert_array_equal(np.isnan(ours_x.grad.numpy()), np.isnan(theirs_x.grad.numpy()))
    np.testing.assert_array_equal(ours_x.grad.numpy()[2], 0.0)


@settings_fast
@given(seed=seeds, dtype=dtypes, reduction=st.sampled_from(["mean", "sum", "none"]))
def test_cross_entropy_partly_ignored_batch_still_matches_torch(seed, dtype, reduction):
    x = randn(seed, (2, 3, 3, 4), dtype)
    target = np.random.default_rng(seed + 1).integers(0, 3, (2, 3, 4))
    target[0] = 255  # the whole first image is ignored, the second is not
    ours_x = mts.tensor(x, requires_grad=True)
    loss = F.cross_entropy(ours_x, mts.tensor(target), ignore_index=255, reduction=reduction)
    g = randn(seed + 2, loss.shape, dtype)
    loss.backward(mts.tensor(g))
    theirs_x = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(theirs_x, torch.tensor(target), ignore_index=255, reduction=reduction)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(loss.numpy(), ref.detach().numpy(), **TOL[np.dtype(dtype)])
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), **TOL[np.dtype(dtype)])
    np.testing.assert_array_equal(ours_x.grad.numpy()[0], 0.0)


def test_dice_loss_of_an_all_ignored_batch_is_finite_with_zero_gradient():
    x = mts.tensor(randn(3, (2, 3, 2, 2)), requires_grad=True)
    target = mts.tensor(np.full((2, 2, 2), 255))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.dice_loss(x, target, ignore_index=255)
        loss.backward()
    assert loss.item() == 0.0  # every class: (0 + eps) / (0 + eps) = 1
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)


# ----------------------------------------------------------------------------------------- state dicts
class _Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(4, 3)


def test_load_state_dict_lists_every_missing_unexpected_and_misshaped_key():
    model = _Two()
    state = model.state_dict()
    before = {k: v.copy() for k, v in state.items()}
    del state["conv.bias"], state["bn.running_var"]
    state["fc.weight"] = np.zeros((4, 4))
    state["bn.weight"] = np.zeros(3)
    state["head.weight"] = np.zeros(1)
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing keys ['conv.bias', 'bn.running_var'] (2)" in message
    assert "unexpected keys ['head.weight', 'extra'] (2)" in message
    assert "wrong shapes (2): 'bn.weight' has shape (3,) in the state dict, but the module expects (2,)" in message
    assert "'fc.weight' has shape (4, 4) in the state dict, but the module expects (3, 4)" in message
    for key, value in model.state_dict().items():  # nothing was copied
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_load_state_dict_lists_every_misshaped_key_even_when_not_strict():
    model = _Two()
    state = model.state_dict()
    state["fc.weight"] = np.zeros((4, 4))
    state["conv.weight"] = np.zeros((2, 1, 2, 2))
    state["fc.bias"] = np.ones(3)
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state, strict=False)
    message = str(info.value)
    assert message.startswith("load_state_dict for _Two: wrong shapes (2): ")
    assert "'conv.weight' has shape (2, 1, 2, 2) in the state dict, but the module expects (2, 1, 3, 3)" in message
    assert "'fc.weight' has shape (4, 4)" in message
    np.testing.assert_array_equal(model.fc.bias.numpy(), model.state_dict()["fc.bias"])
    assert not np.all(model.fc.bias.numpy() == 1.0)
    with pytest.raises(KeyError, match=r"missing keys \['fc.bias'\] \(1\), unexpected keys \[\] \(0\), "
                                       r"wrong shapes \(0\): none"):
        model.load_state_dict({k: v for k, v in model.state_dict().items() if k != "fc.bias"})


# ----------------------------------------------------------------------------------------- batch-norm dtypes
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("convert", ["double", "to"])
def test_batchnorm_running_statistics_follow_the_parameters_dtype(affine, convert):
    ours = nn.BatchNorm2d(3, affine=affine)
    theirs = torch.nn.BatchNorm2d(3, affine=affine)
    ours = ours.double() if convert == "double" else ours.to(np.float64)
    theirs = theirs.double()
    for name, value in theirs.state_dict().items():
        assert ours.state_dict()[name].dtype == value.numpy().dtype, name
    x = randn(5, (4, 3, 3, 2), scale=1e4) + 1e8  # float32 statistics would lose these digits
    for _ in range(2):
        np.testing.assert_allclose(ours(mts.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-10, atol=1e-10)
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-12, err_msg=name)
    ours.float()
    theirs.float()
    for name, value in theirs.state_dict().items():
        assert ours.state_dict()[name].dtype == value.numpy().dtype, name


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_refuses_an_input_of_another_dtype(affine):
    layer = nn.BatchNorm2d(3, affine=affine)
    first = "weight" if affine else "running_mean"
    with pytest.raises(TypeError, match=rf"BatchNorm2d: {first}: expected dtype float64 \(the input's\), "
                                        r"got float32; convert the layer with \.to\(np\.float64\)"):
        layer(mts.tensor(randn(0, (2, 3, 2, 2))))
    assert layer.num_batches_tracked.item() == 0 and np.all(layer.running_mean.numpy() == 0)


# ----------------------------------------------------------------------------------------- image files
def _grey(values: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(values, dtype=np.uint8)[..., None], 3, axis=2)


SIXTEEN_BIT = np.array([[0, 1000, 4096], [16384, 32768, 65535]], dtype=np.uint16)
SIXTEEN_BIT_AS_8 = np.array([[0, 4, 16], [64, 128, 255]])  # round(v · 255 / 65535)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_16_bit_grey_image_is_scaled_to_8_bits(tmp_path, suffix):
    path = tmp_path / f"depth{suffix}"
    Image.fromarray(SIXTEEN_BIT).save(path)
    assert Image.open(path).mode in ("I;16", "I")
    np.testing.assert_array_equal(read_image(path), _grey(SIXTEEN_BIT_AS_8))


def test_16_bit_big_endian_and_32_bit_integer_modes_are_scaled_alike():
    big_endian = Image.frombytes("I;16B", (3, 2), SIXTEEN_BIT.astype(">u2").tobytes())
    np.testing.assert_array_equal(to_rgb8(big_endian), _grey(SIXTEEN_BIT_AS_8))
    as_int32 = Image.fromarray(SIXTEEN_BIT.astype(np.int32))
    assert as_int32.mode == "I"
    np.testing.assert_array_equal(to_rgb8(as_int32), _grey(SIXTEEN_BIT_AS_8))
    for bad, found in ((np.array([[0, 70000]], np.int32), "0..70000"), (np.array([[-1, 5]], np.int32), "-1..5")):
        with pytest.raises(ValueError, match=rf"image 'x.tif': mode 'I' holds values {found}; "
                                             r"expected 16-bit intensities 0\.\.65535 \(inclusive\)"):
            to_rgb8(Image.fromarray(bad), "x.tif")


def test_a_float_image_in_0_1_is_scaled_and_other_ranges_are_refused(tmp_path):
    values = np.array([[0.0, 0.25, 0.5], [0.75, 0.999, 1.0]], dtype=np.float32)
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "F"
    np.testing.assert_array_equal(read_image(path), _grey([[0, 64, 128], [191, 255, 255]]))
    for bad in (np.array([[0.0, 2.5]], np.float32), np.array([[-0.5, 0.5]], np.float32),
                np.array([[np.nan, 0.5]], np.float32)):
        with pytest.raises(ValueError, match=r"mode 'F' holds values .*; expected float intensities 0\.0\.\.1\.0"):
            to_rgb8(Image.fromarray(bad))


def test_alpha_palette_transparency_cmyk_and_bilevel_images(tmp_path):
    rgba = np.array([[[10, 20, 30, 0], [200, 100, 50, 128]]], dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgba[..., :3])  # alpha dropped
    la = np.array([[[7, 0], [250, 255]]], dtype=np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), _grey([[7, 250]]))
    palette_image = Image.fromarray(np.array([[0, 1, 2]], dtype=np.uint8), "P")
    palette_image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    palette_image.info["transparency"] = bytes([0, 128, 255])
    palette_image.save(tmp_path / "p.png", transparency=bytes([0, 128, 255]))
    assert "transparency" in Image.open(tmp_path / "p.png").info
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Palette images with Transparency" warning from PIL
        np.testing.assert_array_equal(read_image(tmp_path / "p.png"), [[[255, 0, 0], [0, 255, 0], [0, 0, 255]]])
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255], [0, 255, 255, 0]]], dtype=np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "cmyk.tif"),
                                  [[[255, 255, 255], [0, 255, 255], [0, 0, 0], [255, 0, 0]]])
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "bilevel.png")
    np.testing.assert_array_equal(read_image(tmp_path / "bilevel.png"), _grey([[255, 0]]))


# EXIF orientation → the numpy operation that shows the stored pixels upright (EXIF 2.32, tag 0x0112).
UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def _photo(path, orientation: int, size=(6, 10)) -> np.ndarray:
    """A JPEG (or PNG) of ``size`` stored pixels with the EXIF orientation tag; returns the stored pixels."""
    rng = np.random.default_rng(orientation)
    stored = np.kron(rng.integers(0, 256, (size[0] // 2, size[1] // 2, 3)), np.ones((2, 2, 1))).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, exif=exif)
    return np.asarray(Image.open(path).convert("RGB"))  # the decoded stored pixels, not oriented


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_is_applied_to_images(tmp_path, orientation, suffix):
    path = tmp_path / f"phone{suffix}"
    stored = _photo(path, orientation)
    image = read_image(path)
    np.testing.assert_array_equal(image, UPRIGHT[orientation](stored))
    assert image.shape == ((10, 6, 3) if orientation >= 5 else (6, 10, 3))


@pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities of TorchVision:DeprecationWarning")
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_torchvision_decode_jpeg(tmp_path, orientation):
    from torchvision.io import decode_jpeg, read_file

    path = tmp_path / "phone.jpg"
    _photo(path, orientation, size=(16, 24))
    theirs = decode_jpeg(read_file(str(path)), apply_exif_orientation=True).permute(1, 2, 0).numpy()
    ours = read_image(path)
    assert ours.shape == theirs.shape
    # Two JPEG decoders may round an IDCT differently by a level or two; a wrong orientation moves whole blocks.
    np.testing.assert_allclose(ours.astype(int), theirs.astype(int), atol=2, rtol=0)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_masks_are_never_rotated_and_pair_with_the_displayed_photo(tmp_path, orientation):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    stored = _photo(images / "phone.jpg", orientation)
    shown_shape = UPRIGHT[orientation](stored).shape[:2]
    labels = np.arange(np.prod(shown_shape)).reshape(shown_shape) % 3
    exif = Image.Exif()
    exif[0x0112] = orientation  # a tool that copied the photo's EXIF into the mask: still not rotated
    Image.fromarray(labels.astype(np.uint8)).save(masks / "phone.png", exif=exif)
    np.testing.assert_array_equal(read_mask(masks / "phone.png"), labels)
    image, mask = ImageMaskFolder(images, masks, num_classes=3)[0]
    np.testing.assert_array_equal(mask, labels)
    np.testing.assert_array_equal(image, UPRIGHT[orientation](stored))


def test_every_reader_uses_the_one_image_reader(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    Image.fromarray(SIXTEEN_BIT).save(images / "a.png")
    Image.fromarray(np.zeros((2, 3), np.uint8)).save(masks / "a.png")
    folder = ImageMaskFolder(images, masks, num_classes=1)
    np.testing.assert_array_equal(folder[0][0], _grey(SIXTEEN_BIT_AS_8))
    assert Subset(folder, [0])[0][0].tolist() == folder[0][0].tolist()
    import minitorchseg.cli as cli

    assert cli.read_image is read_image  # predict and kmeans read their pictures with it


def test_kmeans_on_a_16_bit_image_sees_the_scaled_grey_levels(tmp_path, capsys):
    pytest.importorskip("minitorchseg.kmeans")
    values = np.zeros((8, 6), dtype=np.uint16)
    values[:, 3:] = 32768
    values[5:, :3] = 65535
    Image.fromarray(values).save(tmp_path / "sixteen.png")
    out = tmp_path / "km"
    assert main(["kmeans", str(tmp_path / "sixteen.png"), "--k", "3", "--out", str(out)]) == 0
    segmented = np.asarray(Image.open(out / "segmented.png"))
    np.testing.assert_array_equal(segmented, _grey(np.rint(values * (255 / 65535))))


# ----------------------------------------------------------------------------------------- 0/255 and border masks
def _folder(tmp_path, mask_values, n=5, size=(6, 8)):
    """``n`` image/mask pairs whose masks draw their pixels from ``mask_values``."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    stored = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(images / f"m{i}.png")
        mask = rng.choice(np.array(mask_values, dtype=np.uint8), size)
        mask.flat[: len(mask_values)] = mask_values  # every value present
        Image.fromarray(mask).save(masks / f"m{i}.png")
        stored.append(mask.astype(np.int64))
    return images, masks, stored


def test_0_255_binary_masks_are_read_as_two_classes_with_a_note(tmp_path):
    images, masks, stored = _folder(tmp_path, [0, 255])
    with pytest.warns(UserWarning, match=r"hold only the values 0 and 255: read as two classes, 255 -> class 1"):
        folder = ImageMaskFolder(images, masks)
    assert folder.num_classes == 2 and folder.label_map == {255: 1}
    for i in range(len(folder)):
        np.testing.assert_array_equal(folder[i][1], stored[i] // 255)
        np.testing.assert_array_equal(folder.load_mask(i), stored[i] // 255)
    with pytest.warns(UserWarning, match="0 and 255"):  # a checkpoint's 2 classes: the same reading
        assert ImageMaskFolder(images, masks, num_classes=2)[0][1].max() == 1
    pixels, _ = class_pixel_counts(folder, 2)  # class weights read the mapped labels too
    assert pixels.tolist() == [sum(int((m == 0).sum()) for m in stored), sum(int((m == 255).sum()) for m in stored)]


def test_0_255_masks_with_other_choices(tmp_path):
    images, masks, stored = _folder(tmp_path, [0, 255])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ignoring = ImageMaskFolder(images, masks, ignore_index=255)
        mapped = ImageMaskFolder(images, masks, label_map={255: 3})
    assert ignoring.num_classes == 1 and ignoring.label_map is None
    np.testing.assert_array_equal(ignoring[1][1], stored[1])
    assert mapped.num_classes == 4
    np.testing.assert_array_equal(mapped[1][1], np.where(stored[1] == 255, 3, 0))
    three = ImageMaskFolder(images, masks, num_classes=3)
    with pytest.raises(ValueError, match=r"holds label values \[255\] outside \[0, 3\) .*allowed labels are "
                                         r"0\.\.2 \(inclusive\); 255 is the foreground of a 0/255 binary mask.*"
                                         r"label_map=\{255: 1\}.*ignore_index=255.*num_classes"):
        three[0]


def test_a_255_border_label_is_not_inferred_as_256_classes(tmp_path):
    images, masks, stored = _folder(tmp_path, [0, 1, 2, 255])
    with pytest.raises(ValueError, match=r"hold the values \[0, 1, 2, 255\]: inferring num_classes=256 .*"
                                         r"ignore_index=255 .*map=255:1.*num_classes=256"):
        ImageMaskFolder(images, masks)
    voc_style = ImageMaskFolder(images, masks, ignore_index=255)
    assert voc_style.num_classes == 3
    np.testing.assert_array_equal(voc_style[2][1], stored[2])
    assert ImageMaskFolder(images, masks, num_classes=256).num_classes == 256


def test_folder_spec_options(tmp_path):
    spec = parse_data_spec("folder:a,b,ignore_index=255,num_classes=21,map=128:1,map=64:2")
    assert spec.paths == ("a", "b")
    assert spec.options == {"ignore_index": 255, "num_classes": 21, "label_map": {128: 1, 64: 2}}
    spec = parse_data_spec("folder:a,b,c,d,ignore_index=0")
    assert spec.paths == ("a", "b", "c", "d") and spec.options == {"ignore_index": 0}
    assert parse_data_spec("folder:a,b").options == {}
    for text, message in (("folder:a,b,map=255", r"map must be STORED:LABEL with two integers >= 0 .*got '255'"),
                          ("folder:a,b,map=x:1", r"map must be STORED:LABEL"),
                          ("folder:a,b,map=255:-1", r"map must be STORED:LABEL"),
                          ("folder:a,b,num_classes=0", r"num_classes must be >= 1, got 0"),
                          ("folder:a,b,ignore_index=x", r"ignore_index must be an integer, got 'x'"),
                          ("folder:a,b,ignore_index=1,ignore_index=2", r"ignore_index is given twice"),
                          ("folder:a,ignore_index=1", r"folder needs IMAGES,MASKS")):
        with pytest.raises(ValueError, match=message):
            parse_data_spec(text)


def test_folder_spec_sets_ignore_index_and_classes_of_every_split(tmp_path):
    images, masks, stored = _folder(tmp_path, [0, 1, 255], n=6)
    spec = f"folder:{images},{masks},ignore_index=255"
    for split in ("train", "val", "test"):
        data = open_split(spec, split)
        assert data.ignore_index == 255 and data.num_classes == 2
    data = open_split(f"folder:{images},{masks},num_classes=5,ignore_index=255", "test")
    assert data.num_classes == 5
    assert open_split(f"folder:{images},{masks},num_classes=5,ignore_index=255", "val", num_classes=5).num_classes == 5
    with pytest.raises(ValueError, match=r"num_classes=5 in the data spec, but 2 expected"):
        open_split(f"folder:{images},{masks},num_classes=5", "test", num_classes=2)
    mapped = open_split(f"folder:{images},{masks},map=255:2", "test")
    assert mapped.num_classes == 3
    np.testing.assert_array_equal(mapped[0][1], np.where(stored[0] == 255, 2, stored[0]))


def test_command_line_trains_on_0_255_masks_as_two_classes_and_predicts_upright(tmp_path, capsys):
    images, masks, _ = _folder(tmp_path, [0, 255], n=5, size=(16, 16))
    out = tmp_path / "run"
    argv = ["train", "--model", "unet", "--model-arg", "base_channels=4", "--model-arg", "depth=1",
            "--data", f"folder:{images},{masks}", "--epochs", "1", "--batch-size", "2", "--out", str(out), "--quiet"]
    with pytest.warns(UserWarning, match="hold only the values 0 and 255"):
        assert main(argv) == 0
    ckpt = mts.load(out / "checkpoint.npz")
    assert ckpt["model"]["kwargs"]["num_classes"] == 2 and ckpt["data"]["num_classes"] == 2
    with pytest.warns(UserWarning, match="0 and 255"):
        assert main(["eval", str(out / "checkpoint.npz"), "--data", f"folder:{images},{masks}", "--quiet"]) == 0
    assert "class_1" in capsys.readouterr().out
    stored = _photo(tmp_path / "phone.jpg", 6, size=(16, 24))
    predicted = tmp_path / "p"
    assert main(["predict", str(out / "checkpoint.npz"), str(tmp_path / "phone.jpg"), "--out", str(predicted)]) == 0
    labels = np.asarray(Image.open(predicted / "phone_labels.png"))
    assert stored.shape[:2] == (16, 24) and labels.shape == (24, 16)  # the photo as displayed


# ----------------------------------------------------------------------------------------- range messages
def _zeros(*shape, dtype=np.float64):
    return mts.tensor(np.zeros(shape, dtype=dtype))


def _unpool(output_size):
    return F.max_unpool2d(_zeros(1, 1, 2, 3), mts.tensor(np.zeros((1, 1, 2, 3), np.int64)), 2,
                          output_size=output_size)


def test_max_unpool2d_output_size_message_states_the_allowed_sizes_inclusive():
    # input 2x3, kernel 2, stride 2: default output 4x6; allowed heights 3..5, widths 5..7 (torch's exclusive 2..6)
    for good in ((3, 5), (5, 7), (4, 6), (1, 1, 3, 7)):
        assert _unpool(good).shape[-2:] == tuple(good[-2:])
    with pytest.raises(ValueError, match=r"max_unpool2d: output_size: got the height 6; allowed 3\.\.5 \(inclusive: "
                                         r"within stride − 1 = 1 of the default 4 for an input height of 2, "
                                         r"kernel_size=2, stride=2, padding=0\)"):
        _unpool((6, 6))
    with pytest.raises(ValueError, match=r"got the height 2; allowed 3\.\.5"):
        _unpool((2, 6))
    with pytest.raises(ValueError, match=r"got the width 8; allowed 5\.\.7 \(inclusive: .* the default 6 for an input "
                                         r"width of 3"):
        _unpool((4, 8))
    with pytest.raises(ValueError, match=r"got the width 4; allowed 5\.\.7"):
        _unpool((4, 4))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.max_unpool2d(_zeros(1, 1, 2, 2), mts.tensor(np.full((1, 1, 2, 2), 16)), 2), ValueError,
     r"invalid max index: 16 \(output volumes are of size 4x4\); allowed 0\.\.15 \(inclusive\)"),
    (lambda: F.max_pool2d(_zeros(1, 1, 6, 6), (2, 4), padding=(1, 3)), ValueError,
     r"got padding=\(1, 3\) with kernel_size=\(2, 4\); allowed 0\.\.1 for the height and 0\.\.2 for the width "
     r"\(inclusive\)"),
    (lambda: F.pad(_zeros(1, 1, 3, 4), (4, 0), mode="reflect"), ValueError,
     r"reflect padding \(4, 0\) .*allowed 0\.\.3 \(inclusive\) on each side of the width \(dimension 3\)"),
    (lambda: F.pad(_zeros(1, 1, 3, 4), (0, 0, 0, 3), mode="reflect"), ValueError,
     r"reflect padding \(0, 3\) .*allowed 0\.\.2 \(inclusive\) on each side of the height \(dimension 2\)"),
    (lambda: F.pad(_zeros(1, 1, 3, 4), (0, 0, 4, 0), mode="circular"), ValueError,
     r"circular padding \(4, 0\) wraps around more than once \(size 3\): allowed 0\.\.3 \(inclusive\) on each side "
     r"of the height"),
    (lambda: _zeros(2, 3).sum(dim=2), ValueError, r"sum: dim 2 is out of range .*; allowed -2\.\.1 \(inclusive\)"),
    (lambda: _zeros(2, 3).sum(dim=-3), ValueError, r"dim -3 is out of range .*; allowed -2\.\.1 \(inclusive\)"),
    (lambda: F.cat([_zeros(2, 3)], dim=2), ValueError, r"cat: dim 2 is out of range for 2 dimensions; allowed "
                                                       r"-2\.\.1 \(inclusive\)"),
    (lambda: F.conv_transpose2d(_zeros(1, 1, 3, 3), _zeros(1, 1, 2, 2), stride=(3, 2), output_padding=(3, 0)),
     ValueError, r"output_padding: .*along H, got output_padding=\(3, 0\), .*; allowed 0\.\.2 \(inclusive\) for the "
                 r"height"),
    (lambda: F.conv_transpose2d(_zeros(1, 1, 3, 3), _zeros(1, 1, 2, 2), stride=2, output_padding=(0, 2)),
     ValueError, r"allowed 0\.\.1 \(inclusive\) for the width"),
    (lambda: nn.ConvTranspose2d(1, 1, 2, stride=2)(_zeros(1, 1, 3, 4), output_size=(8, 8)), ValueError,
     r"requested an output size of \[8, 8\], .*allowed heights 6\.\.7 and widths 8\.\.9 \(inclusive\)"),
    (lambda: mts.ops.roi_align(_zeros(2, 1, 4, 4), mts.tensor(np.array([[2.0, 0, 0, 1, 1]])), (1, 1)), ValueError,
     r"row 0 has batch index 2, out of range .*; allowed 0\.\.1 \(inclusive\)"),
    (lambda: colorize(np.array([[0, 4]]), np.zeros((3, 3), np.uint8), ignore_index=255), ValueError,
     r"labels \[4\] outside \[0, 3\) .*; allowed 0\.\.2 \(inclusive\) and 255"),
    (lambda: ConfusionMatrix(3, ignore_index=255).update(np.array([0, 3]), np.array([0, 1])), ValueError,
     r"pred holds labels \[3\] outside \[0, 3\) .*; allowed 0\.\.2 \(inclusive\) and 255"),
    (lambda: SyntheticShapes(3, size=16)[3], IndexError, r"index 3 out of range for 3 items; allowed -3\.\.2 "
                                                         r"\(inclusive\)"),
    (lambda: parse_data_spec("shapes:min_size=1"), ValueError, r"min_size must be positive, got 1; allowed 2 or more"),
    (lambda: parse_data_spec("shapes:seed=-1"), ValueError, r"seed must be positive, got -1; allowed 0 or more"),
])
def test_range_messages_name_the_argument_the_value_and_the_inclusive_range(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_the_stated_bounds_are_accepted(tmp_path):
    F.max_unpool2d(_zeros(1, 1, 2, 2), mts.tensor(np.full((1, 1, 2, 2), 15)), 2)
    F.max_pool2d(_zeros(1, 1, 6, 6), (2, 4), padding=(1, 2))
    F.pad(_zeros(1, 1, 3, 4), (3, 3, 2, 2), mode="reflect")
    F.pad(_zeros(1, 1, 3, 4), (4, 4, 3, 3), mode="circular")
    _zeros(2, 3).sum(dim=-2), _zeros(2, 3).sum(dim=1)
    F.conv_transpose2d(_zeros(1, 1, 3, 3), _zeros(1, 1, 2, 2), stride=(3, 2), output_padding=(2, 1))
    layer = nn.ConvTranspose2d(1, 1, 2, stride=2)
    assert layer(_zeros(1, 1, 3, 4, dtype=np.float32), output_size=(6, 9)).shape == (1, 1, 6, 9)
    assert layer(_zeros(1, 1, 3, 4, dtype=np.float32), output_size=(7, 8)).shape == (1, 1, 7, 8)
    mts.ops.roi_align(_zeros(2, 1, 4, 4), mts.tensor(np.array([[1.0, 0, 0, 1, 1]])), (1, 1))
    colorize(np.array([[0, 2, 255]]), np.zeros((3, 3), np.uint8), ignore_index=255)
    shapes = SyntheticShapes(3, size=16)
    shapes[-3], shapes[2]
    assert parse_data_spec("shapes:min_size=2,seed=0").options["min_size"] == 2
    images, masks, _ = _folder(tmp_path, [0, 1, 2])
    assert ImageMaskFolder(images, masks, num_classes=3)[0][1].max() == 2
    with pytest.raises(ValueError, match=r"holds label values \[2\] outside \[0, 2\) \(num_classes=2, "
                                         r"ignore_index=None\): allowed labels are 0\.\.1 \(inclusive\)"):
        ImageMaskFolder(images, masks, num_classes=2)[0]
