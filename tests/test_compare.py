"""``python -m benchmarks.compare``: the verdict rule on hand-made numbers, the training time budget it relies on
(``train(max_seconds=...)``), and the whole script in its quick mode, so that it cannot rot."""

import json
import math
import re

import numpy as np
import pytest

from benchmarks import compare
from minitorchseg.data.spec import open_split
from minitorchseg.models import get_model
from minitorchseg.train import read_checkpoint, train

CLAIMS = {"FCN": "lower", "U-Net": "higher", "SegNet": "medium"}


# ------------------------------------------------------------------------------------------------ verdicts


def test_verdict_confirms_an_ordering_as_claimed():
    got = compare.verdict("accuracy", {"FCN": 0.40, "U-Net": 0.60, "SegNet": 0.50}, CLAIMS, 0.02)
    assert {k: v["verdict"] for k, v in got.items()} == dict.fromkeys(CLAIMS, "confirmed")
    assert got["U-Net"]["claim"] == "higher"
    assert "FCN" in got["U-Net"]["why"] and "SegNet" in got["U-Net"]["why"]


def test_verdict_refutes_the_reversed_ordering():
    got = compare.verdict("accuracy", {"FCN": 0.60, "U-Net": 0.40, "SegNet": 0.50}, CLAIMS, 0.02)
    assert {k: v["verdict"] for k, v in got.items()} == dict.fromkeys(CLAIMS, "refuted")


def test_verdict_depends_on_ties_mixed_orders_and_missing_numbers():
    # U-Net above FCN as claimed, but within the margin of SegNet: depends (and says on what).
    got = compare.verdict("accuracy", {"FCN": 0.40, "U-Net": 0.51, "SegNet": 0.50}, CLAIMS, 0.02)
    assert got["U-Net"]["verdict"] == "depends"
    assert "as claimed against FCN" in got["U-Net"]["why"] and "within the margin of SegNet" in got["U-Net"]["why"]
    assert got["FCN"]["verdict"] == "confirmed"
    # SegNet above FCN (as claimed) and above U-Net (the other way): depends.
    got = compare.verdict("accuracy", {"FCN": 0.40, "U-Net": 0.45, "SegNet": 0.50}, CLAIMS, 0.02)
    assert got["SegNet"]["verdict"] == "depends"
    assert "the other way against U-Net" in got["SegNet"]["why"]
    got = compare.verdict("accuracy", {"FCN": 0.40, "U-Net": None, "SegNet": 0.50}, CLAIMS, 0.02)
    assert got["U-Net"] == {"claim": "higher", "verdict": "depends", "why": "not measured on the same data"}
    assert got["SegNet"]["verdict"] == "confirmed"


def test_verdict_with_ratios_and_equal_claims():
    claims = {"FCN": "low", "U-Net": "high", "SegNet": "low"}
    got = compare.verdict("compute", {"FCN": 1.0, "U-Net": 3.0, "SegNet": 2.0}, claims, 1.25, ratio=True)
    # FCN and SegNet are both "low": they are never compared with each other (2x apart here).
    assert {k: v["verdict"] for k, v in got.items()} == dict.fromkeys(claims, "confirmed")
    got = compare.verdict("compute", {"FCN": 1.0, "U-Net": 1.2, "SegNet": 1.0}, claims, 1.25, ratio=True)
    assert {k: v["verdict"] for k, v in got.items()} == dict.fromkeys(claims, "depends")
    got = compare.verdict("compute", {"FCN": 4.0, "U-Net": 1.0, "SegNet": 4.0}, claims, 1.25, ratio=True)
    assert {k: v["verdict"] for k, v in got.items()} == dict.fromkeys(claims, "refuted")


def test_claim_verdicts_judge_each_row_from_the_measured_numbers():
    size = [1, 3, 180, 240]

    def measured(macs_per_pixel, infer_ms, miou, small):
        return {"compute": {"macs_per_pixel": macs_per_pixel, "infer_ms": infer_ms, "input": size},
                "training": {"miou": miou, "small_miou": small}}

    results = {"FCN-8s": measured(80e3, 600.0, 0.40, 0.10), "U-Net": measured(40e3, 100.0, 0.55, 0.30),
               "SegNet": measured(40e3, 500.0, 0.50, 0.10), "SegNet-Basic": measured(20e3, 40.0, 0.45, 0.12),
               "Mask R-CNN": {"skipped": "not measured: no instance data set given (--dsb)"}}
    got = compare.claim_verdicts(results, compare.NETWORKS)
    verdicts = {row: {label: v["verdict"] for label, v in rows.items()} for row, rows in got.items()}
    assert verdicts["accuracy"] == {"FCN-8s": "confirmed", "U-Net": "confirmed", "SegNet": "confirmed",
                                    "SegNet-Basic": "confirmed", "Mask R-CNN": "depends"}
    assert verdicts["small objects"] == {"FCN-8s": "confirmed", "U-Net": "confirmed", "SegNet": "confirmed",
                                         "SegNet-Basic": "confirmed", "Mask R-CNN": "depends"}
    # FCN-8s costs more than U-Net by both measures; SegNet ties U-Net in MACs but is slower: depends on the measure.
    assert verdicts["compute"] == {"FCN-8s": "refuted", "U-Net": "depends", "SegNet": "depends",
                                   "SegNet-Basic": "confirmed", "Mask R-CNN": "depends"}
    assert got["compute"]["SegNet"]["why"].startswith("on the measure: MACs per pixel depends")
    assert "inference time per pixel refuted" in got["compute"]["SegNet"]["why"]
    assert all(got[row]["Mask R-CNN"]["why"] == results["Mask R-CNN"]["skipped"] for row in got)
    assert got["compute"]["Mask R-CNN"]["claim"] == "high" and got["accuracy"]["Mask R-CNN"]["claim"] == "very high"


# ------------------------------------------------------------------------------------------------ time budget


def _tiny_run(tmp_path, **kwargs):
    spec = "shapes:size=16,train=8,val=2,test=1,max_objects=1"
    train_set, val_set = open_split(spec, "train"), open_split(spec, "val")
    model_kwargs = {"num_classes": train_set.num_classes, "base_channels": 2, "depth": 1}
    model = get_model("unet", **model_kwargs)
    return train(model, train_set, val_set, out_dir=tmp_path, model_name="unet", model_kwargs=model_kwargs,
                 batch_size=4, progress=False, log=lambda message: None, **kwargs)


def test_train_stops_at_the_time_budget(tmp_path):
    budget = 0.5
    history = _tiny_run(tmp_path, epochs=100_000, max_seconds=budget)
    spent = [row["train_seconds"] for row in history]
    assert len(history) < 100_000
    assert history[-1]["stopped"] == "max_seconds"
    assert all("stopped" not in row for row in history[:-1])
    # The budget was reached in the last epoch and not before it.
    assert sum(spent) >= budget > sum(spent[:-1])
    assert history[-1]["miou"] is not None  # the cut epoch is validated as any other
    assert int(read_checkpoint(tmp_path / "checkpoint.npz")["epoch"]) == len(history)


def test_train_without_a_budget_runs_every_epoch(tmp_path):
    history = _tiny_run(tmp_path, epochs=2)
    assert [row["epoch"] for row in history] == [1, 2]
    assert all("stopped" not in row and row["train_seconds"] > 0 for row in history)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, True, "30"])
def test_train_rejects_a_bad_budget_before_any_work(tmp_path, bad):
    with pytest.raises(ValueError, match=r"max_seconds must be a positive finite number of seconds or None, got"):
        _tiny_run(tmp_path / "run", epochs=1, max_seconds=bad)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------ the script


def test_quick_mode_writes_the_table_the_verdicts_and_the_figure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert compare.main(["--quick", "--no-memory"]) == 0
    out = tmp_path / "runs" / "compare-quick"  # the default of --quick: never docs/
    runs = out / "runs"
    assert not (tmp_path / "docs").exists()
    page = (out / "comparison.md").read_text(encoding="utf-8")
    report = json.loads((runs / "comparison.json").read_text(encoding="utf-8"))
    labels = [n.label for n in compare.NETWORKS]
    assert page.count("| | " + " | ".join(labels) + " |") == 1
    rows = [line.split(" | ")[0][2:] for line in page.splitlines() if line.startswith("| ") and " | " in line]
    table = rows[rows.index("architecture"):rows.index("architecture") + 6]
    assert table == ["architecture", "upsampling", "task", "accuracy", "small objects", "compute"]
    assert "Quick mode" in page and "python -m benchmarks.compare --quick" in page
    # Every claim of the lecture gets a verdict, on the page and in the JSON, and they agree.
    for row, claims in compare.CLAIMS.items():
        line = next(x for x in page.splitlines() if x.startswith(f"| {row} |"))
        cells = line.split(" | ")[1:]
        assert len(cells) == len(labels)
        for network, cell in zip(compare.NETWORKS, cells):
            v = report["verdicts"][row][network.label]
            assert v["claim"] == claims[network.lecture]
            assert v["verdict"] in ("confirmed", "refuted", "depends")
            assert f"lecture: {v['claim']};" in cell and f"**{v['verdict']}**" in cell
    # The page quotes the measured numbers of the JSON.
    for network in compare.NETWORKS:
        result = report["results"][network.label]
        compute = result["compute"]
        assert compute["params"] == compute["torch_params"] > 0
        assert compute["infer_ms"] > 0 and compute["torch_infer_ms"] > 0 and compute["step_ms"] > 0
        if network.instance:
            assert 0.0 <= result["instance"]["merged"]["pixel_accuracy"] <= 1.0
            assert result["instance"]["curve"][-1][1] == result["instance"]["mask_AP"]
            assert 0.0 <= result["instance"]["small_share"] <= 1.0
            assert f"synthetic shapes mask AP {compare._f(result['instance']['mask_AP'])}" in page
        else:
            assert compute["macs"] == compute["torch_macs"]  # summary's count = torch's flop counter / 2
            training = result["training"]
            assert training["curve"] and training["curve"][-1][1] == training["miou"]
            assert f"val mIoU {compare._f(training['miou'])}" in page
    png = (out / "figures" / "comparison.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # Every trained semantic network's prediction on one validation image, and the share of small-class pixels found.
    shown = report["predictions"]
    assert set(shown["stats"]) == {n.label for n in compare.NETWORKS if not n.instance}
    assert all(0.0 <= v["small_recall"] <= 1.0 for v in shown["stats"].values())
    assert f"Validation image {shown['index']}" in page and "figures/comparison_predictions.png" in page
    assert (out / "figures" / "comparison_predictions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pick_image_prefers_more_small_classes_then_more_of_their_pixels():
    class Data:
        class_names = ("background", "pole", "sign")

        def __init__(self, masks):
            self.masks = masks

        def __len__(self):
            return len(self.masks)

        def __getitem__(self, i):
            return None, self.masks[i]

    def mask(pole, sign):
        m = np.zeros(100, np.int64)
        m[:pole] = 1
        m[pole:pole + sign] = 2
        return m.reshape(10, 10)

    data = Data([mask(50, 0), mask(2, 3), mask(4, 3), mask(1, 6)])
    assert compare.pick_image(data, ("pole", "sign")) == 2  # both classes in 1, 2, 3; then 7 pixels in 2 and 3


def test_peak_memory_is_measured_in_a_child_process_per_library():
    plan = compare.quick_plan()
    unet = next(n for n in plan.networks if n.key == "unet")
    weights = np.ones(4)
    got = compare.measure_memory(unet, plan, 4, None, weights)
    assert set(got) == {"peak_mib", "torch_peak_mib", "rss_before_mib", "torch_rss_before_mib"}
    assert got["rss_before_mib"] > 10 and got["torch_rss_before_mib"] > 10
    assert got["peak_mib"] >= 0 and got["torch_peak_mib"] >= 0


def test_bad_budget_is_an_error(capsys):
    with pytest.raises(SystemExit):
        compare.main(["--quick", "--budget-minutes", "0"])
    assert re.search(r"--budget-minutes must be a positive number of minutes, got 0", capsys.readouterr().err)
