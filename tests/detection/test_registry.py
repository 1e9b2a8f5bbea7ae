"""Mask R-CNN through the model registry and ``summary``, as the command line uses it."""

from __future__ import annotations

import pytest

from minitorchseg.models import get_model, list_models, summary
from minitorchseg.models.detection import MaskRCNN


def test_maskrcnn_is_registered_with_its_compact_default():
    assert "maskrcnn" in list_models()
    model = get_model("maskrcnn", num_classes=3)
    assert isinstance(model, MaskRCNN)
    assert model.roi_heads.box_predictor.cls_score.out_features == 3
    with pytest.raises(TypeError, match="takes no argument"):
        get_model("maskrcnn", num_classes=3, depth=4)


def test_summary_runs_on_maskrcnn_and_counts_what_torchvision_counts():
    torch = pytest.importorskip("torch")
    from minitorchseg.export import to_torch

    model = get_model("maskrcnn", num_classes=2, min_size=64, max_size=64)
    text, totals = summary(model, (1, 3, 64, 64))
    twin = to_torch(model)
    assert totals["total_params"] == sum(p.numel() for p in twin.parameters())
    assert isinstance(twin, torch.nn.Module)
    conv1 = next(r for r in totals["layers"] if r["name"] == "backbone.body.conv1")
    # 7x7 stride-2 conv, 3 -> 16 channels, on the 64x64 image: 32·32 output pixels × 16·3·7·7 weights
    assert conv1["output_shape"] == (1, 16, 32, 32) and conv1["macs"] == 32 * 32 * 16 * 3 * 7 * 7
    assert totals["layers"][0]["name"] == "transform" and totals["layers"][0]["output_shape"] == (1, 3, 64, 64)
    assert "MaskRCNN" in text
