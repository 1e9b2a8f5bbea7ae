"""Instance training, evaluation and prediction (minitorchseg.train.instance) and the command line's instance side,
end to end on tiny synthetic data with a model of torchvision's detection API (tests/instance_fakes.py): train one
epoch, resume, eval, predict (PNG and COCO JSON), demo --task instance --quick, and every bad-input message."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO

from minitorchseg.cli import main
from minitorchseg.data.instances import InstanceShapes, make_target
from minitorchseg.metrics_instance import coco_evaluate
from minitorchseg.models import registry
from minitorchseg.models.detection.mask_rcnn import maskrcnn_resnet_fpn
from minitorchseg.random import manual_seed
from minitorchseg.serialization import load
from minitorchseg.train.instance import (
    LOSS_NAMES,
    display_scale,
    draw_instances,
    evaluate_instance,
    instance_batches,
    instance_transform,
    load_instance_checkpoint,
    train_instance,
    warmup_factor_at,
)
from tests.instance_fakes import FakeMaskRCNN, fake_maskrcnn

SHAPES = "shapes:size=24,train=6,val=3,test=3,min_size=6,max_size=12,max_objects=2"


@pytest.fixture
def fake_registry(monkeypatch):
    monkeypatch.setitem(registry._MODELS, "maskrcnn", fake_maskrcnn)


def tiny(n=6, seed=0):
    return InstanceShapes(n, size=24, seed=seed, min_size=6, max_size=12, max_objects=2)


def test_warmup_equals_torchvision_references_linear_lr():
    # references/detection/train.py: LinearLR(optimizer, start_factor=warmup_factor, total_iters=warmup_iters),
    # stepped once per iteration.
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.02)
    scheduler = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.001, total_iters=7)
    for step in range(12):
        assert 0.02 * warmup_factor_at(step, 7, 0.001) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        scheduler.step()


def test_batches_are_reproducible_and_transformed_consistently():
    data = tiny(5)
    transform = instance_transform(crop=(16, 16), flip=True, vflip=True, color_jitter=0.2)
    first = list(instance_batches(data, 2, transform, seed=3, epoch=1))
    again = list(instance_batches(data, 2, transform, seed=3, epoch=1))
    other = list(instance_batches(data, 2, transform, seed=3, epoch=2))
    assert [len(b) for b in first] == [2, 2, 1]
    for b1, b2 in zip(first, again):
        for (i1, t1), (i2, t2) in zip(b1, b2):
            np.testing.assert_array_equal(i1, i2)
            np.testing.assert_array_equal(t1["masks"], t2["masks"])
    assert any(not np.array_equal(a[0][0], b[0][0]) for a, b in zip(first, other))
    assert [len(b) for b in instance_batches(data, 2, None, drop_last=True)] == [2, 2]


def test_train_writes_everything_and_resume_equals_one_run(tmp_path):
    train_set, val_set = tiny(6), tiny(3, seed=1)
    kwargs = dict(epochs=2, model_name="maskrcnn", model_kwargs={"num_classes": 4}, batch_size=2, lr=0.05,
                  warmup_steps=3, crop=(20, 20), color_jitter=0.1, progress=False, log=lambda *a: None)
    manual_seed(7)  # both runs start from the same weights, whatever earlier tests did to the global generator
    whole = FakeMaskRCNN(4)
    history = train_instance(whole, train_set, val_set, out_dir=tmp_path / "whole", **kwargs)
    assert [row["epoch"] for row in history] == [1, 2]
    for key in ("train_loss", *LOSS_NAMES, "lr", "images_per_second", "elapsed_seconds"):
        assert math.isfinite(history[-1][key]), key
    assert all(key in history[-1] for key in ("mask_AP", "mask_AP50", "box_AP", "box_AR100", "nuclei_score"))
    names = {p.name for p in (tmp_path / "whole").iterdir()}
    assert {"checkpoint.npz", "best.npz", "metrics.csv", "metrics.json", "curve.png"} <= names
    assert not [n for n in names if n.startswith(".tmp")]
    csv_header = (tmp_path / "whole" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"loss_mask", "mask_AP", "box_AP75", "nuclei_score", "elapsed_seconds"} <= set(csv_header)
    assert json.loads((tmp_path / "whole" / "metrics.json").read_text())["task"] == "instance"
    ckpt = load(tmp_path / "whole" / "checkpoint.npz")
    assert ckpt["task"] == "instance" and ckpt["epoch"] == 2 and ckpt["data"]["category_ids"] == [1, 2, 3]

    manual_seed(7)
    first = FakeMaskRCNN(4)
    train_instance(first, train_set, val_set, out_dir=tmp_path / "split", **dict(kwargs, epochs=1))
    resumed = FakeMaskRCNN(4)
    history2 = train_instance(resumed, train_set, val_set, out_dir=tmp_path / "split", resume=True, **kwargs)
    for (name, a), (_, b) in zip(sorted(whole.state_dict().items()), sorted(resumed.state_dict().items())):
        np.testing.assert_array_equal(np.asarray(a.numpy() if hasattr(a, "numpy") else a),
                                      np.asarray(b.numpy() if hasattr(b, "numpy") else b), err_msg=name)
    assert history2[-1]["train_loss"] == history[-1]["train_loss"]


def test_warmup_sets_the_learning_rate_of_each_step(tmp_path):
    seen = []

    class Recording(FakeMaskRCNN):
        def forward(self, images, targets=None):
            if self.training:
                seen.append(self.optimizer.param_groups[0]["lr"])
            return super().forward(images, targets)

    model = Recording(4)
    import minitorchseg.train.instance as instance

    real = instance.make_optimizer

    def capture(*args, **kw):
        model.optimizer = real(*args, **kw)
        return model.optimizer

    instance.make_optimizer = capture
    try:
        train_instance(model, tiny(6), None, epochs=2, out_dir=tmp_path, model_name="maskrcnn",
                       model_kwargs={"num_classes": 4}, batch_size=2, lr=0.1, warmup_steps=4, warmup_factor=0.25,
                       lr_schedule="poly", progress=False, log=lambda *a: None)
    finally:
        instance.make_optimizer = real
    poly1 = 0.1 * (1 - 1 / 2) ** 0.9
    expected = [0.1 * 0.25, 0.1 * (0.25 + 0.75 / 4), 0.1 * (0.25 + 0.75 * 2 / 4),
                poly1 * (0.25 + 0.75 * 3 / 4), poly1, poly1]
    assert seen == pytest.approx(expected, rel=1e-12)


def test_evaluate_instance_is_coco_eval_of_the_exported_detections():
    model = FakeMaskRCNN(4)
    model.conv.bias.data[...] = 3.0
    data = tiny(3, seed=2)
    results = evaluate_instance(model, data)
    again = coco_evaluate(results["ground_truth"], results["detections"])
    for iou_type in ("bbox", "segm"):
        np.testing.assert_equal(results[iou_type], again[iou_type])
    assert len(results["detections"]) == 3 and len(results["nuclei_per_image"]) == 3
    with pytest.raises(ValueError, match="the data set is empty"):
        evaluate_instance(model, tiny(0))


def test_draw_instances_colours_masks_and_boxes():
    image = np.full((40, 40, 3), 100, np.uint8)
    mask = np.zeros((1, 40, 40), np.uint8)
    mask[0, 20:30, 10:22] = 1
    t = make_target(mask, [1], 1)
    prediction = {"boxes": t["boxes"], "labels": t["labels"], "scores": np.array([0.9]),
                  "masks": mask.astype(np.float32)}
    out = draw_instances(image, prediction, ("background", "thing"), alpha=0.5)
    colour = out[29, 10]
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[25, 15], np.rint((100.0 + colour) / 2), err_msg="mask blended half and half")
    np.testing.assert_array_equal(out[39, 39], image[39, 39])
    np.testing.assert_array_equal(out[21, 21], colour, err_msg="the box's right edge is x2 - 1 = 21")
    np.testing.assert_array_equal(out[25, 22], image[25, 22])
    hidden = draw_instances(image, dict(prediction, scores=np.array([0.2])), ("background", "thing"))
    np.testing.assert_array_equal(hidden, image)
    large = draw_instances(image, prediction, ("background", "thing"), scale=3)
    assert large.shape == (120, 120, 3)
    np.testing.assert_array_equal(large[75:78, 45:48], np.broadcast_to(out[25, 15], (3, 3, 3)))
    assert display_scale(image) == 7 and display_scale(np.zeros((300, 512, 3))) == 1


def test_training_errors(tmp_path):
    with pytest.raises(ValueError, match="the training set is empty"):
        train_instance(FakeMaskRCNN(4), tiny(0), None, epochs=1, out_dir=tmp_path, model_name="maskrcnn",
                       model_kwargs={"num_classes": 4}, progress=False)
    with pytest.raises(ValueError, match=r"warmup_factor must be in \(0, 1\], got 0"):
        train_instance(FakeMaskRCNN(4), tiny(2), None, epochs=1, out_dir=tmp_path, model_name="maskrcnn",
                       model_kwargs={"num_classes": 4}, warmup_factor=0, progress=False)

    class Incomplete(FakeMaskRCNN):
        def forward(self, images, targets=None):
            losses = super().forward(images, targets)
            return {k: v for k, v in losses.items() if k != "loss_mask"} if self.training else losses

    with pytest.raises(ValueError, match=r"the model returned no \['loss_mask'\]"):
        train_instance(Incomplete(4), tiny(2), None, epochs=1, out_dir=tmp_path / "x", model_name="maskrcnn",
                       model_kwargs={"num_classes": 4}, progress=False)
    assert not (tmp_path / "x" / "checkpoint.npz").exists()


# ------------------------------------------------------------------------------------------ command line
def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_train_resume_eval_predict(tmp_path, capsys, fake_registry):
    out = tmp_path / "run"
    code, text, err = run(capsys, "train", "--model", "maskrcnn", "--data", SHAPES, "--epochs", 1, "--out", out,
                          "--batch-size", 2, "--warmup-steps", 2, "--vflip", "--quiet")
    assert code == 0, err
    assert "epoch 1/1" in text and "val mask AP" in text
    code, text, err = run(capsys, "train", "--out", out, "--resume", "--epochs", 2, "--quiet")
    assert code == 0, err
    assert "resuming" in text and "epoch 2/2" in text
    assert load(out / "checkpoint.npz")["config"]["vflip"] is True

    code, text, err = run(capsys, "eval", out / "checkpoint.npz", "--quiet")
    assert code == 0, err
    lines = text.splitlines()
    assert "maskrcnn after 2 epoch(s)" in lines[0]
    assert lines[1].split() == ["box", "mask"] and lines[2].startswith("AP ")
    assert any(line.startswith("AP75") for line in lines) and any(line.startswith("ARl") for line in lines)
    assert "nuclei score" in lines[-1]

    data = InstanceShapes(2, size=24, seed=9, min_size=6, max_size=12)
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(data[i][0]).save(paths[-1])
    code, text, err = run(capsys, "predict", out / "checkpoint.npz", *paths, "--out", tmp_path / "pred",
                          "--score-threshold", 0.0)
    assert code == 0, err
    for i in range(2):
        picture = np.asarray(Image.open(tmp_path / "pred" / f"img{i}_instances.png"))
        assert picture.shape == (24 * 11, 24 * 11, 3), "enlarged to a short side of at least 256 pixels"
    payload = json.loads((tmp_path / "pred" / "detections.json").read_text())
    assert [e["file_name"] for e in payload["images"]] == ["img0.png", "img1.png"]
    if payload["detections"]:
        gt = COCO()
        gt.dataset = {"images": payload["images"], "annotations": [], "categories": payload["categories"]}
        gt.createIndex()
        results = gt.loadRes(payload["detections"])
        assert len(results.getAnnIds()) == len(payload["detections"])


def test_cli_demo_instance_quick(tmp_path, capsys, fake_registry):
    code, text, err = run(capsys, "demo", "--task", "instance", "--quick", "--out", tmp_path / "demo", "--quiet")
    assert code == 0, err
    assert "held-out mask AP" in text
    for name in ("demo.png", "metrics.txt", "checkpoint.npz", "metrics.csv", "curve.png"):
        assert (tmp_path / "demo" / name).is_file(), name


def test_cli_semantic_and_instance_checkpoints_are_not_interchangeable(tmp_path, capsys, fake_registry):
    semantic = tmp_path / "semantic"
    code, _, err = run(capsys, "train", "--model", "unet", "--model-arg", "base_channels=4", "--model-arg", "depth=1",
                       "--data", "shapes:size=16,train=4,val=2,test=2,min_size=4,max_size=8", "--epochs", 1,
                       "--batch-size", 2, "--out", semantic, "--quiet")
    assert code == 0, err
    instance = tmp_path / "instance"
    code, _, err = run(capsys, "train", "--model", "maskrcnn", "--data", SHAPES, "--epochs", 1, "--out", instance,
                       "--quiet")
    assert code == 0, err

    code, _, err = run(capsys, "train", "--model", "maskrcnn", "--out", semantic, "--resume")
    assert code == 1 and "holds a semantic segmentation model ('unet'), not 'maskrcnn'" in err
    code, _, err = run(capsys, "train", "--model", "unet", "--out", instance, "--resume")
    assert code == 1 and "holds an instance segmentation model ('maskrcnn'), not 'unet'" in err
    code, _, err = run(capsys, "eval", semantic / "checkpoint.npz", "--model", "maskrcnn")
    assert code == 1 and "holds a 'unet' model" in err
    code, _, err = run(capsys, "eval", instance / "checkpoint.npz", "--model", "unet")
    assert code == 1 and "holds a 'maskrcnn' model" in err
    with pytest.raises(ValueError, match="holds a semantic segmentation model"):
        load_instance_checkpoint(semantic / "checkpoint.npz")

    code, _, err = run(capsys, "train", "--model", "unet", "--data", "dsb2018:/nowhere", "--out", tmp_path / "a")
    assert code == 1 and "dsb2018 holds instance annotations" in err
    code, _, err = run(capsys, "train", "--model", "maskrcnn", "--data", "camvid:/nowhere", "--out", tmp_path / "b")
    assert code == 1 and "camvid holds semantic label maps, not instances" in err
    code, _, err = run(capsys, "train", "--model", "unet", "--data", SHAPES, "--vflip", "--out", tmp_path / "c")
    assert code == 1 and "--vflip: only for instance models" in err
    code, _, err = run(capsys, "train", "--model", "maskrcnn", "--data", SHAPES, "--class-weights", "median",
                       "--out", tmp_path / "d")
    assert code == 1 and "--class-weights is for semantic models" in err
    code, _, err = run(capsys, "train", "--out", instance, "--resume", "--lr", "0.5")
    assert code == 1 and "--lr 0.5 differs from the checkpoint's 0.01" in err
    code, _, err = run(capsys, "train", "--out", instance, "--resume", "--model-arg", "hidden=3")
    assert code == 1 and "holds 'maskrcnn' with arguments (num_classes=4), but (hidden=3, num_classes=4)" in err
    code, _, err = run(capsys, "train", "--model", "maskrcnn", "--data", SHAPES, "--out", instance)
    assert code == 1 and "exists already" in err
    for path in (tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "d"):
        assert not path.exists()


def test_cli_empty_instance_data(tmp_path, capsys, fake_registry):
    root = tmp_path / "dsb"
    (root / "stage1_train").mkdir(parents=True)
    (root / "train.txt").write_text("")
    (root / "val.txt").write_text("")
    code, _, err = run(capsys, "train", "--model", "maskrcnn", "--data", f"dsb2018:{root}", "--out", tmp_path / "o")
    assert code == 1 and "lists no image: the 'train' split is empty" in err
    assert not (tmp_path / "o").exists()


def test_cli_on_coco_files(tmp_path, capsys, fake_registry):
    from tests.test_instance_data import coco_fixture

    images_dir, path, coco = coco_fixture(tmp_path, np.random.default_rng(0))
    spec = f"coco:{images_dir},{path},{images_dir},{path}"
    code, text, err = run(capsys, "train", "--model", "maskrcnn", "--data", spec, "--epochs", 1, "--out",
                          tmp_path / "run", "--quiet")
    assert code == 0, err
    assert "3 training, 3 validation images" in text
    assert load(tmp_path / "run" / "checkpoint.npz")["data"]["category_ids"] == [3, 7]
    code, text, err = run(capsys, "eval", tmp_path / "run" / "checkpoint.npz", "--quiet")
    assert code == 0, err
    coco["categories"].append({"id": 12, "name": "twelve"})
    other = tmp_path / "other.json"
    other.write_text(json.dumps(coco))
    code, _, err = run(capsys, "eval", tmp_path / "run" / "checkpoint.npz", "--data", f"coco:{images_dir},{other}")
    assert code == 1 and "has the categories [3, 7, 12] but the checkpoint's model predicts [3, 7]" in err
    mixed = f"coco:{images_dir},{path},{images_dir},{other}"
    code, _, err = run(capsys, "train", "--model", "maskrcnn", "--data", mixed, "--out", tmp_path / "mixed")
    assert code == 1 and "the validation set's categories [3, 7, 12] differ from the training set's [3, 7]" in err
    assert not (tmp_path / "mixed").exists()


def test_cli_on_the_shared_dsb2018(tmp_path, capsys, fake_registry):
    from tests.test_instance_data import dsb2018_root

    root = dsb2018_root()
    if root is None:
        pytest.skip("shared DSB2018 not found (set MINITORCHSEG_DSB2018 or place it at ../shared/data/dsb2018)")
    out = tmp_path / "nuclei"
    code, text, err = run(capsys, "train", "--model", "maskrcnn", "--data", f"dsb2018:{root}", "--epochs", 1,
                          "--out", out, "--quiet")
    assert code == 0, err
    assert "233 training, 50 validation images" in text and "val mask AP" in text
    ckpt = load(out / "checkpoint.npz")
    assert ckpt["data"]["class_names"] == ["background", "nucleus"] and ckpt["model"]["kwargs"]["num_classes"] == 2
    code, text, err = run(capsys, "eval", out / "checkpoint.npz", "--quiet", "--score-threshold", 0.3)
    assert code == 0, err
    assert f"dsb2018:{root} val (50 images)" in text and "nuclei score" in text
    code, _, err = run(capsys, "eval", out / "checkpoint.npz", "--score-threshold", 2)
    assert code == 1 and "--score-threshold must be in [0, 1], got 2.0" in err


def test_real_compact_maskrcnn_trains_resumes_and_evaluates(tmp_path):
    def build():
        manual_seed(0)
        return maskrcnn_resnet_fpn(4, min_size=32, max_size=32)

    train_set = InstanceShapes(2, size=32, seed=0, min_size=8, max_size=14, max_objects=2)
    val_set = InstanceShapes(1, size=32, seed=1, min_size=8, max_size=14, max_objects=2)
    kwargs = dict(model_name="maskrcnn", model_kwargs={"num_classes": 4, "min_size": 32, "max_size": 32},
                  batch_size=2, warmup_steps=1, progress=False, log=lambda *a: None)
    whole = build()
    history = train_instance(whole, train_set, val_set, epochs=2, out_dir=tmp_path / "whole", **kwargs)
    for key in ("train_loss", *LOSS_NAMES):
        assert math.isfinite(history[-1][key]), key
    assert history[-1]["mask_AP"] is None or 0.0 <= history[-1]["mask_AP"] <= 1.0
    first = build()
    train_instance(first, train_set, val_set, epochs=1, out_dir=tmp_path / "split", **kwargs)
    resumed = build()
    again = train_instance(resumed, train_set, val_set, epochs=2, out_dir=tmp_path / "split", resume=True, **kwargs)
    assert again[-1]["train_loss"] == history[-1]["train_loss"], "the samplers' random state is resumed"
    for (name, a), (_, b) in zip(sorted(whole.state_dict().items()), sorted(resumed.state_dict().items())):
        np.testing.assert_array_equal(np.asarray(a.numpy() if hasattr(a, "numpy") else a),
                                      np.asarray(b.numpy() if hasattr(b, "numpy") else b), err_msg=name)
    results = evaluate_instance(resumed, val_set)
    assert set(results["segm"]) == set(results["bbox"]) and len(results["nuclei_per_image"]) == 1
