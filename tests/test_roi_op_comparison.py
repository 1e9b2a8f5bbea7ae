"""``python -m benchmarks.roi_op_comparison``: the quick mode end to end (seconds), the equal-budget rule, the page."""

import json
import os
import re
from dataclasses import replace

import pytest

from benchmarks import roi_op_comparison as roc

ROW = re.compile(r"^\| (RoIPool|RoIAlign) \(`(pool|align)`\) \| (.+) \|$")


def _table(page: str) -> dict:
    """``{op: [mask AP, AP50, AP75, box AP, box AP75, epochs]}`` read from the page's main table."""
    rows = {}
    for line in page.splitlines():
        m = ROW.match(line)
        if m:
            cells = [c.strip() for c in m.group(3).split("|")]
            rows[m.group(2)] = [float(c) for c in cells[:5]] + [int(cells[5])]
    return rows


def test_quick_mode_trains_both_ops_from_the_same_start_and_writes_the_table(tmp_path):
    out = tmp_path / "out"
    assert roc.main(["--quick", "--out", str(out)]) == 0
    page = (out / roc.PAGE_NAME).read_text(encoding="utf-8")
    assert "Quick mode" in page and "python -m benchmarks.roi_op_comparison --quick" in page
    report = json.loads((out / "runs" / "roi_op_comparison.json").read_text(encoding="utf-8"))
    assert report["same_start_tensors"] > 50
    table = _table(page)
    assert set(table) == {"pool", "align"}
    for op in ("pool", "align"):
        r = report["results"][op]
        assert table[op] == [round(r[k], 3) for k in roc.REPORTED] + [1]
        for k in roc.REPORTED:
            assert 0.0 <= r[k] <= 1.0, (op, k, r[k])
    runs = {}
    for op in ("pool", "align"):
        saved = json.loads((out / "runs" / op / "metrics.json").read_text(encoding="utf-8"))
        assert saved["config"]["model_kwargs"]["roi_op"] == op
        runs[op] = saved["history"]
    assert len(runs["pool"]) == len(runs["align"]) == 1
    # Same data, weights and sampler seed: only the pooling differs, and it changes what the heads see.
    assert runs["pool"][0]["loss_classifier"] != runs["align"][0]["loss_classifier"]
    assert runs["pool"][0]["loss_mask"] != runs["align"][0]["loss_mask"]


def test_the_builder_switches_both_poolers():
    plan = roc.quick_plan()
    for op in roc.ROI_OPS:
        model, kwargs = roc.build(plan, op)
        assert kwargs["roi_op"] == op
        assert model.roi_heads.box_roi_pool.roi_op == op and model.roi_heads.mask_roi_pool.roi_op == op


def test_a_minutes_budget_gives_the_pool_run_the_epochs_the_align_run_reached(tmp_path):
    """RoIAlign trains epoch by epoch (resumed) while the budget lasts; RoIPool then trains as many epochs."""
    plan = replace(roc.quick_plan(), epochs=None, minutes=1e6, max_epochs=2)
    report = roc.run_comparison(plan, str(tmp_path), str(tmp_path / "runs"), "test", log=lambda m: None)
    assert report["epochs"] == 2
    assert [row[0] for row in report["results"]["pool"]["curve"]] == [1, 2]
    assert [row[0] for row in report["results"]["align"]["curve"]] == [1, 2]
    histories = [json.loads((tmp_path / "runs" / op / "metrics.json").read_text(encoding="utf-8"))["history"]
                 for op in roc.ROI_OPS]
    assert [len(h) for h in histories] == [2, 2]


def test_a_spent_budget_stops_after_the_first_epoch(tmp_path):
    plan = replace(roc.quick_plan(), epochs=None, minutes=1e-9, max_epochs=5)
    report = roc.run_comparison(plan, str(tmp_path), str(tmp_path / "runs"), "test", log=lambda m: None)
    assert report["epochs"] == 1
    assert report["results"]["pool"]["epochs"] == report["results"]["align"]["epochs"] == 1


def test_the_page_states_the_difference_align_minus_pool(tmp_path):
    result = {"mask_AP": 0.5, "mask_AP50": 0.9, "mask_AP75": 0.4, "box_AP": 0.6, "box_AP75": 0.7, "epochs": 3,
              "train_minutes": 9.5, "curve": [[1, 0.1, 0.05], [2, 0.3, 0.2], [3, 0.5, 0.4]]}
    better = {**result, "mask_AP": 0.625, "mask_AP75": 0.55, "curve": [[1, 0.2, 0.1], [2, 0.4, 0.3], [3, 0.625, 0.55]]}
    report = {"quick": False, "same_start_tensors": 106, "epochs": 3, "steps_per_epoch": 64, "val_images": 64,
              "results": {"pool": result, "align": better}, "minutes": 10.0, "data": "shapes", "train_images": 256,
              "model_kwargs": {"num_classes": 4}, "recipe": {"lr": 0.02}, "seed": 0, "date": "today",
              "load_before": 0.1, "load_after": 2.0, "wall_minutes": 21.0, "command": "python -m x"}
    page = open(roc.write_report(report, str(tmp_path)), encoding="utf-8").read()
    assert "| align − pool | +0.125 | +0.000 | +0.150 | +0.000 | +0.000 |" in page
    assert "Quick mode" not in page
    assert _table(page) == {"pool": [0.5, 0.9, 0.4, 0.6, 0.7, 3], "align": [0.625, 0.9, 0.55, 0.6, 0.7, 3]}
    assert "| 3 | 0.500 (0.400) | 0.625 (0.550) |" in page


@pytest.mark.parametrize("argv", [["--minutes", "0"], ["--minutes", "nan"], ["--epochs", "0"],
                                  ["--minutes", "5", "--epochs", "2"], ["--quick", "--epochs", "2"],
                                  ["--data", "dsb2018:/no/such/folder"]])
def test_bad_arguments_are_refused_before_any_work(argv, capsys):
    with pytest.raises(SystemExit) as info:
        roc.main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


DSB2018 = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "dsb2018")


@pytest.mark.skipif(not os.path.isdir(DSB2018), reason="the DSB2018 copy is not on this machine")
def test_the_dsb2018_plan_uses_the_compact_default_and_the_command_line_recipe():
    plan = roc.full_plan(f"dsb2018:{DSB2018}", minutes=20.0)
    assert plan.model_kwargs == {"num_classes": 2} and plan.recipe == {"flip": True}
    assert (plan.minutes, plan.epochs, plan.quick) == (20.0, None, False)
    model, kwargs = roc.build(plan, "pool")
    assert kwargs == {"num_classes": 2, "roi_op": "pool"} and model.transform.min_size[0] == 256
