"""What a training run writes besides checkpoints: ``metrics.csv``, ``metrics.json`` and ``curve.png``.

Every file goes through :func:`minitorchseg.serialization.atomic_write`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os

import numpy as np

from minitorchseg.serialization import atomic_write

__all__ = ["json_value", "write_text", "write_metrics", "plot_curves"]


def write_text(path, text: str) -> None:
    """``text`` to ``path`` (UTF-8), atomically."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def json_value(value):
    """Floats NaN → None, arrays → lists: JSON that every reader accepts."""
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_value(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(out_dir, history: list[dict], class_names, config: dict | None = None) -> None:
    """``metrics.csv`` (one row per epoch, per-class IoU columns) and ``metrics.json`` (history and config)."""
    columns = ["epoch", "train_loss", "val_loss", "miou", "pixel_accuracy", "mean_accuracy", "fwiou", "lr",
               "seconds", "elapsed_seconds", "images_per_second"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns + [f"iou_{name}" for name in class_names])
    for row in history:
        cells = [row.get(key) for key in columns] + list(row.get("iou") or [None] * len(class_names))
        writer.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in cells])
    write_text(os.path.join(out_dir, "metrics.csv"), buffer.getvalue())
    payload = {"class_names": list(class_names), "history": history, "config": config or {}}
    write_text(os.path.join(out_dir, "metrics.json"), json.dumps(json_value(payload), indent=2) + "\n")


def plot_curves(path, history: list[dict]) -> None:
    """A PNG with the training/validation loss and the validation mIoU per epoch (matplotlib, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(fig)
    ax_loss, ax_iou = fig.subplots(1, 2)
    ax_loss.plot(epochs, [row["train_loss"] for row in history], "o-", label="train")
    val = [row.get("val_loss") for row in history]
    if any(v is not None for v in val):
        ax_loss.plot(epochs, [np.nan if v is None else v for v in val], "s-", label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    miou = [row.get("miou") for row in history]
    ax_iou.plot(epochs, [np.nan if v is None else v for v in miou], "o-", color="tab:green")
    ax_iou.set_xlabel("epoch")
    ax_iou.set_ylabel("validation mIoU")
    ax_iou.set_ylim(0, 1)
    ax_iou.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
