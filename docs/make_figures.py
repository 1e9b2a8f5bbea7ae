"""The figures of the pages in ``docs/``, each computed with minitorchseg's own ops and kernels.

::

    python docs/make_figures.py                       # every figure into docs/figures/
    python docs/make_figures.py --only checkerboard   # one figure (repeat --only for several)
    python docs/make_figures.py --out /tmp/figs       # somewhere else
    python docs/make_figures.py --small --out /tmp/f  # less work for the two costliest (what tests/test_docs.py runs)

One function per figure: ``fig_<name>(out_dir)`` computes its picture with the
library (``minitorchseg.functional``, ``minitorchseg.ops``, ``minitorchseg.metrics``,
``minitorchseg.kmeans``, ``minitorchseg.models``), checks the numbers the page
quotes, and writes ``<out_dir>/<name>.png`` (matplotlib's Agg canvas, 100 dpi)
and returns its path. :data:`FIGURES` maps each name to its function.

Two tricks read a kernel's geometry through its public op, without copying it:

* a convolution whose filters are the ``K = C·kh·kw`` one-hot kernels writes
  out the im2col column matrix (each output channel copies one kernel tap);
* interpolating a linear ramp ``f[y, x] = x`` returns the sampling coordinate
  (bilinear interpolation reproduces linear functions exactly), so
  ``F.interpolate`` and ``ops.roi_align`` on ramps show where they sample.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib import colormaps
from matplotlib.cbook import get_sample_data
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import minitorchseg as mts  # noqa: E402  (after the checkout is put on the path)
import minitorchseg.functional as F  # noqa: E402
from minitorchseg import nn, ops  # noqa: E402
from minitorchseg.autograd import _topological_order, no_grad  # noqa: E402
from minitorchseg.data import SyntheticShapes  # noqa: E402
from minitorchseg.data.dsb2018 import NucleiDSB2018  # noqa: E402
from minitorchseg.data.instances import InstanceShapes  # noqa: E402
from minitorchseg.data.weights import median_frequency_weights  # noqa: E402
from minitorchseg.kmeans import kmeans  # noqa: E402
from minitorchseg.metrics import ConfusionMatrix, binary_metrics  # noqa: E402
from minitorchseg.models import fcn8s, segnet, summary, unet  # noqa: E402
from minitorchseg.models.detection import maskrcnn_resnet_fpn  # noqa: E402
from minitorchseg.models.detection.roi_heads import paste_masks_in_image, project_masks_on_boxes  # noqa: E402
from minitorchseg.models.fcn import bilinear_kernel  # noqa: E402
from minitorchseg.random import manual_seed  # noqa: E402
from minitorchseg.train.instance import model_inputs  # noqa: E402

__all__ = [
    "FIGURES", "SMALL_ARGS", "SEED_TRUE", "SEED_PRED", "main", "roi_stride32_errors", "street_example",
    "fig_tasks", "fig_autograd", "fig_im2col", "fig_checkerboard", "fig_transposed_views", "fig_unpool", "fig_bilinear",
    "fig_bilinear_weights", "fig_roi_align", "fig_roi_stride32", "fig_nms", "fig_metrics", "fig_metrics_multiclass",
    "fig_kmeans", "fig_models", "fig_fcn_fc", "fig_fcn_skips", "fcn_skip_ceiling",
    "fig_encoder_decoder", "unet_levels", "fig_mask_rcnn_rpn", "fig_mask_rcnn_heads", "mask_rcnn_example",
    "oracle_rpn_proposals",
]

FIGURE_DIR = Path(__file__).resolve().parent / "figures"
DPI = 100

# The seed lecture's 5x5 example (the same arrays as tests/test_metrics.py): 13 foreground pixels, 8 found.
SEED_TRUE = np.array([[0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]])
SEED_PRED = np.array([[0, 1, 1, 0, 0], [0, 1, 1, 0, 0], [0, 1, 1, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 0, 0]])

BIN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


def _save(fig: Figure, out_dir: Path, name: str) -> Path:
    """Write ``fig`` as ``out_dir/name.png`` (100 dpi, Pillow-optimised) and return the path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=DPI, pil_kwargs={"optimize": True})
    return path


def _t64(array) -> mts.Tensor:
    """A float64 Tensor of ``array``."""
    return mts.tensor(np.asarray(array, dtype=np.float64))


def _annotate(ax, values: np.ndarray, fmt: str = "{:g}", size: int = 8, dark=None) -> None:
    """Write every entry of the 2-D ``values`` at its cell (white on cells where ``dark`` is True)."""
    dark = np.zeros(values.shape, bool) if dark is None else dark
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=size, color="white" if dark[r, c] else "k")


def _pixel_grid(ax, h: int, w: int, colour: str = "0.6") -> None:
    """Thin lines between the pixels of an ``h × w`` imshow (pixel ``i`` spans ``[i − ½, i + ½]``)."""
    for y in np.arange(-0.5, h, 1.0):
        ax.axhline(y, color=colour, lw=0.5)
    for x in np.arange(-0.5, w, 1.0):
        ax.axvline(x, color=colour, lw=0.5)


def _no_ticks(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


# --------------------------------------------------------------------------------------------- 0. the four tasks
def fig_tasks(out_dir: Path = FIGURE_DIR) -> Path:
    """Classification, detection, semantic and instance segmentation of one SyntheticShapes image, with label grids.

    The image has two overlapping squares and a triangle: the semantic map paints
    both squares with one class (they merge into one region), the instance map
    gives each its own id. The bottom row zooms on the pixels where the two
    squares meet and writes every pixel's label: class index, then instance id.
    """
    ds = SyntheticShapes(num_images=1, size=(48, 48), seed=11, min_objects=3, max_objects=3, min_size=12,
                         max_size=22, noise=2.0)
    image, semantic = ds[0]
    inst = ds.instances(0)
    masks, boxes, labels = inst["masks"], inst["boxes"], inst["labels"]
    instance = np.zeros(semantic.shape, dtype=np.int64)
    for k, mask in enumerate(masks, start=1):
        instance[mask] = k
    assert labels.tolist() == [2, 2, 3], labels
    assert np.array_equal(semantic, np.where(instance > 0, labels[np.maximum(instance, 1) - 1], 0)), \
        "the semantic map is the instance map with each id replaced by its class"
    touching = (instance[:, :-1] == 1) & (instance[:, 1:] == 2) | (instance[:, :-1] == 2) & (instance[:, 1:] == 1)
    assert touching.any(), "the two squares meet: one semantic region, two instances"
    pixels = np.bincount(semantic.ravel(), minlength=4)
    image_label = int(np.argmax(pixels[1:]) + 1)
    assert image_label == 2
    names = SyntheticShapes.class_names
    palette = ListedColormap(np.asarray(SyntheticShapes.palette, dtype=np.float64)[:4] / 255.0)
    instance_colours = ListedColormap(["#000000", "#ffd166", "#06d6a0", "#ef476f"])

    rows, cols = np.nonzero(touching)
    cy, cx = int(np.median(rows)), int(np.median(cols))
    r0, c0 = min(max(cy - 5, 0), 48 - 11), min(max(cx - 5, 0), 48 - 11)
    assert (r0, c0) == (19, 23), (r0, c0)                     # quoted on the page
    crop = (slice(r0, r0 + 11), slice(c0, c0 + 11))

    fig = Figure(figsize=(11, 6.4))
    grid = fig.add_gridspec(2, 4, height_ratios=[1.0, 1.25])
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(image, interpolation="nearest")
    ax.set_title(f"classification: one label\nfor the image: \"{names[image_label]}\"", fontsize=9)
    _no_ticks(ax)
    ax = fig.add_subplot(grid[0, 1])
    ax.imshow(image, interpolation="nearest")
    for (x1, y1, x2, y2), label in zip(boxes, labels):
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="w", lw=1.8))
        ax.text(x1 - 0.5, y1 - 1.0, names[label], fontsize=7.5, color="k", bbox=dict(fc="w", ec="none", pad=1))
    ax.set_title("detection: a box and a class\nper object", fontsize=9)
    _no_ticks(ax)
    ax = fig.add_subplot(grid[0, 2])
    ax.imshow(semantic, cmap=palette, vmin=-0.5, vmax=3.5, interpolation="nearest")
    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), 11, 11, fill=False, ec="w", lw=1.2, ls="--"))
    ax.set_title("semantic segmentation: a class\nper pixel (the squares merge)", fontsize=9)
    _no_ticks(ax)
    ax = fig.add_subplot(grid[0, 3])
    ax.imshow(instance, cmap=instance_colours, vmin=-0.5, vmax=3.5, interpolation="nearest")
    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), 11, 11, fill=False, ec="w", lw=1.2, ls="--"))
    ax.set_title("instance segmentation: a class and\nan object id per pixel", fontsize=9)
    _no_ticks(ax)
    grids = (
        (semantic[crop], palette, "the dashed crop, semantic labels\n(0 background, 1 circle, 2 square, 3 triangle)"),
        (instance[crop], instance_colours, "the same crop, instance ids\n(0 none; 1, 2 the squares, 3 the triangle)"),
    )
    for col, (array, cmap, title) in enumerate(grids):
        ax = fig.add_subplot(grid[1, 2 * col:2 * col + 2])
        ax.imshow(array, cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest", alpha=0.75)
        _annotate(ax, array, "{:d}", size=8, dark=array == 0)
        _pixel_grid(ax, 11, 11, "0.5")
        ax.set_xticks(range(11))
        ax.set_xticklabels(range(c0, c0 + 11), fontsize=6)
        ax.set_yticks(range(11))
        ax.set_yticklabels(range(r0, r0 + 11), fontsize=6)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, out_dir, "tasks")


# --------------------------------------------------------------------------------------------- 1. autograd
def fig_autograd(out_dir: Path = FIGURE_DIR) -> Path:
    """The graph of ``L = tanh(x·y + x)`` as recorded by the engine, with the backward visiting order.

    Nodes are placed by their depth below ``L``; the red numbers are the order in
    which :func:`minitorchseg.autograd.backward` visits them (the reversed
    post-order of ``_topological_order``); edges carry the local derivative
    that the op's ``backward`` multiplies in.
    """
    x = mts.tensor(np.array(0.5), requires_grad=True)
    y = mts.tensor(np.array(-2.0), requires_grad=True)
    u = x * y
    v = u + x
    loss = F.tanh(v)
    loss.backward()
    local = 1.0 - np.tanh(-0.5) ** 2
    assert np.isclose(float(x.grad.numpy()), local * (-2.0 + 1.0)), "x is used twice: dL/dx = tanh'(v)·(y + 1)"
    assert np.isclose(float(y.grad.numpy()), local * 0.5)

    names = {id(x): "x", id(y): "y", id(u): "u = x·y", id(v): "v = u + x", id(loss): "L = tanh(v)"}
    order = _topological_order(loss)
    depth = {id(loss): 0}
    for t in order:  # consumers come before producers, so a tensor's depth is final when it is reached
        if t.grad_fn is not None:
            for parent in t.grad_fn.inputs:
                depth[id(parent)] = max(depth.get(id(parent), 0), depth[id(t)] + 1)
    max_depth = max(depth.values())
    rows: dict[int, int] = {}
    pos = {}
    for t in order:
        d = depth[id(t)]
        pos[id(t)] = (float(max_depth - d) * 3.8, -1.5 * rows.get(d, 0))
        rows[d] = rows.get(d, 0) + 1
    edge_labels = {
        (id(x), id(u)): "∂u/∂x = y", (id(y), id(u)): "∂u/∂y = x", (id(u), id(v)): "∂v/∂u = 1",
        (id(x), id(v)): "∂v/∂x = 1", (id(v), id(loss)): "∂L/∂v = 1 − tanh²v",
    }

    half = 0.95  # half the width of a node's box
    fig = Figure(figsize=(9.2, 2.9))
    ax = fig.add_axes((0.01, 0.0, 0.98, 0.9))
    for t in order:
        if t.grad_fn is None:
            continue
        (x1, y1) = pos[id(t)]
        for parent in t.grad_fn.inputs:
            (x0, y0) = pos[id(parent)]
            start, end = np.array([x0 + half, y0]), np.array([x1 - half, y1])
            bend = 0.3 if abs(x1 - x0) > 4 else 0.0
            ax.annotate("", xy=tuple(end), xytext=tuple(start),
                        arrowprops=dict(arrowstyle="-|>", color="0.35", lw=1.2, shrinkA=0, shrinkB=0,
                                        connectionstyle=f"arc3,rad={bend}"))
            dx, dy = end - start
            mid = (start + end) / 2 + 0.5 * bend * np.array([dy, -dx])  # the arc's midpoint (quadratic Bézier)
            label = edge_labels[(id(parent), id(t))]
            if bend:
                ax.text(mid[0], mid[1] - 0.08, label, ha="center", va="top", fontsize=8, color="#1f5fa0")
            elif dy == 0:
                ax.text(mid[0], mid[1] + 0.08, label, ha="center", va="bottom", fontsize=8, color="#1f5fa0")
            else:
                ax.text(mid[0] + 0.12, mid[1], label, ha="left", va="center", fontsize=8, color="#1f5fa0")
    for step, t in enumerate(order, start=1):
        cx, cy = pos[id(t)]
        leaf = t.grad_fn is None
        label = f"{names[id(t)]}\nvalue {float(t.numpy()):+.3f}"
        label += f"\ngrad {float(t.grad.numpy()):+.3f}" if leaf else f"\ngrad_fn <{t.grad_fn.name}>"
        ax.add_patch(FancyBboxPatch((cx - half, cy - 0.42), 2 * half, 0.84, boxstyle="round,pad=0.05",
                                    fc="#e8f1fb" if leaf else "#fdf1e3", ec="0.3"))
        ax.text(cx, cy, label, ha="center", va="center", fontsize=7.5)
        ax.text(cx - half, cy + 0.5, str(step), ha="center", va="center", fontsize=9, color="white",
                bbox=dict(boxstyle="circle,pad=0.2", fc="#c0392b", ec="none"))
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - half - 0.1, max(xs) + half + 0.1)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.75)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.suptitle("L = tanh(x·y + x): forward left to right; backward visits the red numbers in order "
                 "(x gets 2 contributions)", fontsize=9)
    return _save(fig, out_dir, "autograd")


# --------------------------------------------------------------------------------------------- 2. im2col
def fig_im2col(out_dir: Path = FIGURE_DIR) -> Path:
    """conv2d of a 4x4 image, k = 3, padding 1: the image, its column matrix, and the input gradient.

    The column matrix is computed by ``F.conv2d`` with the nine one-hot 3x3
    filters (output channel ``(i, j)`` copies tap ``(i, j)`` of every window);
    the right panel is ``x.grad`` from autograd for an all-ones upstream gradient
    and all-ones weights, checked equal to ``F.conv_transpose2d`` of the upstream
    gradient: the number of windows that read each pixel.
    """
    h = w = 4
    k = 3
    image = np.arange(1, h * w + 1, dtype=np.float64).reshape(1, 1, h, w)
    one_hot = np.eye(k * k).reshape(k * k, 1, k, k)
    cols = F.conv2d(_t64(image), _t64(one_hot), padding=1).numpy().reshape(k * k, h * w)
    weight = np.random.default_rng(0).standard_normal((1, 1, k, k))
    direct = F.conv2d(_t64(image), _t64(weight), padding=1).numpy().reshape(1, h * w)
    assert np.allclose(weight.reshape(1, k * k) @ cols, direct), "conv2d = w.reshape(Cout, K) @ cols"

    x = mts.tensor(image, requires_grad=True)
    ones_w = _t64(np.ones((1, 1, k, k)))
    out = F.conv2d(x, ones_w, padding=1)
    out.backward(_t64(np.ones(out.shape)))
    grad_x = x.grad.numpy()[0, 0]
    transposed = F.conv_transpose2d(_t64(np.ones(out.shape)), ones_w, padding=1).numpy()[0, 0]
    assert np.array_equal(grad_x, transposed), "conv2d's input gradient is conv_transpose2d of grad_out"

    oy, ox = 1, 2
    column = oy * w + ox
    fig = Figure(figsize=(10.5, 3.3))
    axes = fig.subplots(1, 3, gridspec_kw=dict(width_ratios=[1.0, 2.3, 0.9]))
    padded = np.pad(image[0, 0], 1)
    ax = axes[0]
    ax.imshow(padded, cmap="Blues", vmin=-4, vmax=20)
    _annotate(ax, padded, "{:.0f}")
    _pixel_grid(ax, h + 2, w + 2)
    ax.add_patch(Rectangle((ox - 0.5, oy - 0.5), k, k, fill=False, ec="#c0392b", lw=2.5))
    ax.set_title(f"x (4×4, zero-padded by 1)\nwindow of output ({oy}, {ox})", fontsize=9)
    _no_ticks(ax)

    ax = axes[1]
    ax.imshow(cols, cmap="Blues", vmin=-4, vmax=20, aspect="auto")
    _annotate(ax, cols, "{:.0f}", size=7)
    _pixel_grid(ax, k * k, h * w)
    ax.add_patch(Rectangle((column - 0.5, -0.5), 1, k * k, fill=False, ec="#c0392b", lw=2.5))
    ax.set_xticks(range(h * w))
    ax.set_xticklabels([f"{r},{c}" for r in range(h) for c in range(w)], fontsize=6, rotation=90)
    ax.set_yticks(range(k * k))
    ax.set_yticklabels([f"{i},{j}" for i in range(k) for j in range(k)], fontsize=7)
    ax.set_xlabel("output pixel (y, x)", fontsize=8)
    ax.set_ylabel("tap (i, j)", fontsize=8)
    ax.set_title("cols (K = C·kh·kw = 9 rows, Ho·Wo = 16 columns): conv2d = w.reshape(1, 9) @ cols",
                 fontsize=9)

    ax = axes[2]
    ax.imshow(grad_x, cmap="Oranges", vmin=0, vmax=12)
    _annotate(ax, grad_x, "{:.0f}")
    _pixel_grid(ax, h, w)
    ax.set_title("∂L/∂x for ∂L/∂out = 1, w = 1\n= conv_transpose2d(1, w)", fontsize=9)
    _no_ticks(ax)
    fig.tight_layout()
    return _save(fig, out_dir, "im2col")


# --------------------------------------------------------------------------------------------- 3. 2b. Winograd
def fig_winograd(out_dir: Path = FIGURE_DIR) -> Path:
    """Winograd F(2x2, 3x3) on a 6x6 image, 3x3 filter, no padding: 4 output tiles of 2x2 from 4x4 input tiles.

    Every number is computed by the kernels' own transforms (``kernels.cpu.winograd``):
    ``U = G g Gᵀ``, ``V = Bᵀ d B`` of the red tile, their elementwise product (the 16
    multiplies), and ``Y = Aᵀ (U ⊙ V) A``, checked equal to ``F.conv2d``'s output at
    that tile (and the whole 4x4 output of ``_conv2d_winograd``, the kernels' Winograd
    route, to ``F.conv2d``'s).
    """
    from minitorchseg.kernels.cpu import conv as conv_kernels
    from minitorchseg.kernels.cpu import winograd

    image = np.random.default_rng(3).integers(-3, 4, (1, 1, 6, 6)).astype(np.float64)
    g = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0], [2.0, 0.0, 1.0]]).reshape(1, 1, 3, 3)
    direct = F.conv2d(_t64(image), _t64(g)).numpy()[0, 0]                                      # (4, 4)
    u = winograd.weight_transform(g)[:, 0, 0].reshape(4, 4)
    v = np.empty((16, 2 * 3))                           # flat planes: 2 tile rows of 2 tiles and a zero column
    winograd.input_transform(image, v, 0, 0, 0, 2)
    ty, tx = 0, 1                                       # the red tile: input rows 0..3, columns 2..5
    vt = v.reshape(16, 2, 3)[:, ty, tx].reshape(4, 4)
    product = u * vt + 0.0                              # + 0.0: no "-0" labels
    y = winograd.A_T @ product @ winograd.A_T.T
    assert np.allclose(y, direct[2 * ty : 2 * ty + 2, 2 * tx : 2 * tx + 2]), "Aᵀ (U ⊙ V) A = conv2d's 2x2 tile"
    assert np.allclose(conv_kernels._conv2d_winograd(image, winograd.weight_transform(g), (0, 0), (4, 4))[0, 0], direct)

    fig = Figure(figsize=(12.5, 3.2))
    axes = fig.subplots(1, 5, gridspec_kw=dict(width_ratios=[1.5, 1, 1, 1, 1.05]))
    red, blue = "#c0392b", "#2471a3"
    ax = axes[0]
    ax.imshow(image[0, 0], cmap="Greys", vmin=-6, vmax=6)
    _annotate(ax, image[0, 0], "{:.0f}", dark=image[0, 0] > 1.5)
    _pixel_grid(ax, 6, 6)
    ax.add_patch(Rectangle((2 * tx - 0.5, 2 * ty - 0.5), 4, 4, fill=False, ec=red, lw=2.5))
    ax.add_patch(Rectangle((-0.45, 2 * ty - 0.45), 3.9, 3.9, fill=False, ec=blue, lw=1.5, ls="--"))
    ax.set_title("x (6×6): 4×4 input tiles, 2 apart\n(red: tile (0, 1); blue: tile (0, 0))", fontsize=9)
    _no_ticks(ax)
    panels = [(u, "U = G g Gᵀ (g: a 3×3 filter)\nonce per filter", "PuOr_r"),
              (vt, "V = Bᵀ d B of the red tile\nadditions only", "RdBu_r"),
              (product, "U ⊙ V: the 16 multiplies\n(direct: 2·2·9 = 36)", "PiYG")]
    for ax, (values, title, cmap) in zip(axes[1:4], panels):
        bound = max(1.0, float(np.abs(values).max()))
        ax.imshow(values, cmap=cmap, vmin=-1.2 * bound, vmax=1.2 * bound)
        _annotate(ax, values, "{:g}", dark=np.abs(values) > 0.6 * bound)
        _pixel_grid(ax, 4, 4)
        ax.set_title(title, fontsize=9)
        _no_ticks(ax)
    ax = axes[4]
    bound = float(np.abs(direct).max())
    ax.imshow(direct, cmap="Greens", vmin=-1.5 * bound, vmax=1.5 * bound)
    _annotate(ax, direct, "{:.0f}")
    _pixel_grid(ax, 4, 4)
    ax.add_patch(Rectangle((2 * tx - 0.5, 2 * ty - 0.5), 2, 2, fill=False, ec=red, lw=2.5))
    ax.set_title("conv2d(x, g) (4×4); red tile =\nY = Aᵀ (U ⊙ V) A", fontsize=9)
    _no_ticks(ax)
    fig.tight_layout()
    return _save(fig, out_dir, "winograd")


# --------------------------------------------------------------------------------------------- 3. checkerboard
def fig_checkerboard(out_dir: Path = FIGURE_DIR) -> Path:
    """Contributions per output pixel of ``F.conv_transpose2d`` (stride 2) on a 6x6 all-ones input, all-ones kernel.

    k = 3 (k % s ≠ 0): rows and columns alternate 1, 2 taps → a 1/2/4 checkerboard;
    k = 2: exactly one tap everywhere; k = 4: 4 taps everywhere except the border.
    """
    x = _t64(np.ones((1, 1, 6, 6)))
    fig = Figure(figsize=(10.5, 3.7))
    axes = fig.subplots(1, 3)
    captions = {3: "k % s ≠ 0: checkerboard", 2: "k = s: one tap each", 4: "k = 2s: even inside"}
    for ax, k in zip(axes, (3, 2, 4)):
        counts = F.conv_transpose2d(x, _t64(np.ones((1, 1, k, k))), stride=2).numpy()[0, 0]
        inner = counts[k:-k, k:-k]
        if k == 3:
            assert set(np.unique(inner)) == {1.0, 2.0, 4.0}
        else:
            assert np.all(inner == (k // 2) ** 2)
        ax.imshow(counts, cmap="magma", vmin=0, vmax=4.6)
        _annotate(ax, counts, "{:.0f}", size=7, dark=counts < 2.5)
        ax.set_title(f"k={k}, s=2 → {counts.shape[0]}×{counts.shape[1]}: {captions[k]}", fontsize=9)
        _no_ticks(ax)
    fig.suptitle("conv_transpose2d(ones 6×6, ones k×k, stride=2): how many input pixels write each output pixel",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out_dir, "checkerboard")


def fig_transposed_views(out_dir: Path = FIGURE_DIR) -> Path:
    """Transposed convolution as "insert zeros, pad, convolve", and the resize-then-convolve alternative.

    Top row: ``F.conv_transpose2d(x, w, stride=2)`` of a 3×3 ``x`` equals
    ``F.conv2d`` of x with ``s − 1`` zeros inserted between its pixels (itself a
    ``conv_transpose2d`` with a 1×1 kernel of 1) and ``k − 1`` zeros padded around,
    with the kernel rotated by 180°. Bottom row, a constant 6×6 input (so any
    non-constant output is the layer's own pattern): stride 2, k = 4 with FCN's
    bilinear kernel (uniform), k = 4 with another kernel (still a checkerboard:
    k divisible by s is not enough), and nearest ×2 then a 3×3 convolution with
    that kernel's corner (uniform for any kernel).
    """
    x_np = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 0.0, 1.0]])
    w_np = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    x, w = _t64(x_np[None, None]), _t64(w_np[None, None])
    k, s = 3, 2
    direct = F.conv_transpose2d(x, w, stride=s).numpy()[0, 0]
    spread = F.conv_transpose2d(x, _t64(np.ones((1, 1, 1, 1))), stride=s)        # zeros between the pixels
    padded = F.pad(spread, (k - 1, k - 1, k - 1, k - 1))
    rotated = w_np[::-1, ::-1].copy()
    via_conv = F.conv2d(padded, _t64(rotated[None, None])).numpy()[0, 0]
    assert direct.shape == (7, 7) and padded.shape[-2:] == (9, 9)
    holders = F.pad(F.conv_transpose2d(_t64(np.ones((1, 1, 3, 3))), _t64(np.ones((1, 1, 1, 1))), stride=s),
                    (k - 1, k - 1, k - 1, k - 1)).numpy()
    assert np.count_nonzero(holders) == 9, "9 of the 81 positions hold input pixels, the rest are zeros"
    assert np.allclose(direct, via_conv), "conv_transpose2d = insert zeros, pad k − 1, convolve with w rotated 180°"

    ones = _t64(np.ones((1, 1, 6, 6)))
    bilinear = bilinear_kernel(1, 1, 4).astype(np.float64)
    rng = np.random.default_rng(3)
    learned = np.abs(rng.normal(0.5, 0.3, size=(1, 1, 4, 4)))
    out_bilinear = F.conv_transpose2d(ones, _t64(bilinear), stride=2).numpy()[0, 0]
    out_learned = F.conv_transpose2d(ones, _t64(learned), stride=2).numpy()[0, 0]
    resized = F.interpolate(ones, scale_factor=2, mode="nearest")
    out_resize = F.conv2d(resized, _t64(learned[:, :, :3, :3]), padding=1).numpy()[0, 0]
    inner = (slice(2, -2), slice(2, -2))
    assert np.allclose(out_bilinear[inner], 1.0), "bilinear kernel: every interior output is exactly 1"
    assert np.ptp(out_learned[inner]) > 0.1, "k divisible by s, yet a checkerboard"
    assert np.allclose(out_learned[inner][0::2, 0::2], out_learned[inner][0, 0]), "period 2 along both axes"
    assert np.allclose(out_resize[1:-1, 1:-1], out_resize[1, 1]), "resize then convolve: uniform inside"

    fig = Figure(figsize=(11, 6.6))
    grid = fig.add_gridspec(2, 5, height_ratios=[1.0, 1.05])
    top = [
        (x_np, "x (3×3)", "Blues"),
        (padded.numpy()[0, 0], "zeros inserted (s − 1 = 1 between pixels)\nand padded by k − 1 = 2: 9×9", "Blues"),
        (rotated, "w rotated by 180°", "PuOr"),
        (via_conv, "conv2d(that, rotated w)\n= conv_transpose2d(x, w, s=2)", "PuOr"),
    ]
    for col, (array, title, cmap) in enumerate(top):
        ax = fig.add_subplot(grid[0, col + (col > 1)])
        limit = np.abs(array).max()
        ax.imshow(array, cmap=cmap, vmin=-limit if cmap == "PuOr" else -1, vmax=limit + (cmap != "PuOr"))
        _annotate(ax, array, "{:.0f}", size=7 if array.shape[0] > 5 else 9)
        _pixel_grid(ax, *array.shape)
        ax.set_title(title, fontsize=8.5)
        _no_ticks(ax)
    ax = fig.add_subplot(grid[0, 2])
    ax.imshow(w_np, cmap="PuOr", vmin=-2, vmax=2)
    _annotate(ax, w_np, "{:.0f}", size=9)
    _pixel_grid(ax, 3, 3)
    ax.set_title("w (3×3)", fontsize=8.5)
    _no_ticks(ax)

    ax = fig.add_subplot(grid[1, 0])
    ax.imshow(learned[0, 0], cmap="viridis")
    _annotate(ax, learned[0, 0], "{:.2f}", size=7, dark=learned[0, 0] < np.median(learned))
    phase_sums = [learned[0, 0][i::2, j::2].sum() for i in range(2) for j in range(2)]
    ax.set_title("a 4×4 kernel (learnt, say);\nphase sums " + ", ".join(f"{v:.2f}" for v in phase_sums),
                 fontsize=8)
    _no_ticks(ax)
    bottom = [
        (out_bilinear, "transposed, bilinear k=4, s=2:\nuniform (phase sums all 1)"),
        (out_learned, "transposed, that kernel, s=2:\ncheckerboard (2 divides 4)"),
        (out_resize, "nearest ×2, then 3×3 conv\n(its corner): uniform"),
    ]
    for col, (array, title) in enumerate(bottom, start=1):
        ax = fig.add_subplot(grid[1, col])
        ax.imshow(array, cmap="magma", vmin=0, vmax=array.max() * 1.05)
        ax.set_title(title, fontsize=8)
        _no_ticks(ax)
    ax = fig.add_subplot(grid[1, 4])
    for (array, _), label, colour in zip(bottom, ("bilinear", "other kernel", "resize + conv"),
                                         ("#1f77b4", "#c0392b", "#2ca02c")):
        row = array[array.shape[0] // 2]
        ax.plot(np.arange(row.size), row / row[row.size // 2 - 1 : row.size // 2 + 1].mean(), ".-", color=colour,
                label=label, ms=4)
    ax.set_title("middle row of each output\n(divided by its mean inside)", fontsize=8)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    fig.suptitle("top: a transposed convolution is a convolution of the zero-stuffed, padded input; bottom: a constant "
                 "6×6 input upsampled three ways", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return _save(fig, out_dir, "transposed_views")


# --------------------------------------------------------------------------------------------- 4. unpool
def fig_unpool(out_dir: Path = FIGURE_DIR) -> Path:
    """Thin bright lines on a soft 32x32 background: the 2x2 max-pool, max-unpool with its indices, bilinear x2.

    Each line is one pixel wide, so a 2x2 window that meets it keeps the line's
    value and remembers which of its four pixels it was: unpooling puts one line
    pixel per window back at its exact place (zeros around it), where bilinear
    upsampling of the same pooled map smears the line over two to three pixels.
    """
    size = 32
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    grey = 0.3 + 0.12 * np.sin(xx / 3.0) * np.cos(yy / 4.0)
    ring = np.abs(np.hypot(yy - 12.3, xx - 19.2) - 8.0) < 0.5
    diagonal = (np.abs(yy - (0.9 * xx + 5.0)) < 0.5) & (xx < 16)
    grey[ring | diagonal] = 1.0
    grey = grey[None, None]
    x = _t64(grey)
    pooled, indices = F.max_pool2d(x, 2, return_indices=True)
    unpooled = F.max_unpool2d(pooled, indices, 2, output_size=x.shape[-2:])
    upsampled = F.interpolate(pooled, scale_factor=2, mode="bilinear")
    up = unpooled.numpy()[0, 0]
    assert np.count_nonzero(up) <= pooled.numel(), "one value per 2x2 window, zeros elsewhere"
    assert np.array_equal(up[up != 0], grey[0, 0][up != 0]), "each max goes back where it came from"
    windows_on_line = (ring | diagonal).reshape(16, 2, 16, 2).any(axis=(1, 3))
    assert np.all(pooled.numpy()[0, 0][windows_on_line] == 1.0), "every window that meets a line keeps it"

    idx = indices.numpy()[0, 0]
    rows_of, cols_of = np.divmod(idx, size)                     # the index is ih·W + iw in the 32-wide plane
    dy, dx = rows_of - 2 * np.arange(16)[:, None], cols_of - 2 * np.arange(16)[None, :]
    assert set(np.unique(dy)) <= {0, 1} and set(np.unique(dx)) <= {0, 1}, "each index lies in its own window"

    r0, c0 = 2, 14                                               # an 8×8 crop (4×4 windows) on the ring
    fig = Figure(figsize=(10, 5.6))
    grid = fig.add_gridspec(2, 4, height_ratios=[1.0, 1.05])
    panels = [
        (grey[0, 0], "x (32×32), 1-pixel lines"),
        (pooled.numpy()[0, 0], "max_pool2d(x, 2) (16×16) + indices:\nred dot = where in its 2×2 window"),
        (up, "max_unpool2d(pool, indices)\n(SegNet decoder: sparse)"),
        (upsampled.numpy()[0, 0], "interpolate(pool, ×2, bilinear)\n(dense, blurred)"),
    ]
    for col, (array, title) in enumerate(panels):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(array, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        if col == 1:
            ax.plot(np.arange(16)[None, :] + 0.5 * (dx - 0.5), np.arange(16)[:, None] + 0.5 * (dy - 0.5), ".",
                    color="#c0392b", ms=2.2)
        if col < 3:                                                # where the crop below comes from
            f = 2 if col == 1 else 1
            ax.add_patch(Rectangle((c0 / f - 0.5, r0 / f - 0.5), 8 / f, 8 / f, fill=False, ec="#1f77b4", lw=1.5))
        ax.set_title(title, fontsize=9)
        _no_ticks(ax)

    crop_x = grey[0, 0][r0:r0 + 8, c0:c0 + 8]
    crop_pool = pooled.numpy()[0, 0][r0 // 2:r0 // 2 + 4, c0 // 2:c0 // 2 + 4]
    crop_idx = idx[r0 // 2:r0 // 2 + 4, c0 // 2:c0 // 2 + 4]
    crop_up = up[r0:r0 + 8, c0:c0 + 8]
    ax = fig.add_subplot(grid[1, 0:2])
    ax.imshow(crop_x, cmap="gray", vmin=-0.9, vmax=1.25, interpolation="nearest")
    for (r, c), v in np.ndenumerate(crop_x):
        ax.text(c, r - 0.15, f"{v:.2f}", ha="center", va="center", fontsize=6)
    for i in range(4):
        for j in range(4):
            ax.add_patch(Rectangle((2 * j - 0.5, 2 * i - 0.5), 2, 2, fill=False, ec="#1f77b4", lw=1.2))
            r, c = divmod(int(crop_idx[i, j]), size)
            ax.add_patch(Rectangle((c - c0 - 0.45, r - r0 - 0.45), 0.9, 0.9, fill=False, ec="#c0392b", lw=1.6))
            ax.text(c - c0, r - r0 + 0.25, f"{int(crop_idx[i, j])}", ha="center", va="center", fontsize=6,
                    color="#c0392b")
    ax.set_xticks(range(8))
    ax.set_xticklabels(range(c0, c0 + 8), fontsize=6)
    ax.set_yticks(range(8))
    ax.set_yticklabels(range(r0, r0 + 8), fontsize=6)
    ax.set_title("the blue crop of x: 2×2 windows (blue), each one's max (red)\nand its index ih·32 + iw "
                 "(row ih, column iw: the tick labels)", fontsize=8)
    ax = fig.add_subplot(grid[1, 2])
    ax.imshow(crop_pool, cmap="gray", vmin=-0.9, vmax=1.25, interpolation="nearest")
    for (i, j), v in np.ndenumerate(crop_pool):
        ax.text(j, i - 0.12, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.text(j, i + 0.22, f"idx {int(crop_idx[i, j])}", ha="center", va="center", fontsize=6.5, color="#c0392b")
    _pixel_grid(ax, 4, 4)
    ax.set_title("pooled values + indices (4×4)", fontsize=8)
    _no_ticks(ax)
    ax = fig.add_subplot(grid[1, 3])
    ax.imshow(crop_up, cmap="gray", vmin=-0.9, vmax=1.25, interpolation="nearest")
    _annotate(ax, crop_up, "{:.2g}", size=5.5)
    _pixel_grid(ax, 8, 8)
    ax.set_title("unpooled: each value at its index", fontsize=8)
    _no_ticks(ax)
    for i in range(4):
        for j in range(4):
            r, c = divmod(int(crop_idx[i, j]), size)
            assert crop_up[r - r0, c - c0] == crop_pool[i, j], "the crop's unpooled value sits at its index"
    assert 175 in crop_idx and divmod(175, size) == (5, 15), "the page's example: row 5, column 15"
    fig.tight_layout()
    return _save(fig, out_dir, "unpool")


# --------------------------------------------------------------------------------------------- 5. bilinear
def _sample_positions(n_in: int, **kwargs) -> np.ndarray:
    """Where ``F.interpolate(mode='bilinear')`` samples along one axis: the interpolated ramp 0, 1, ..., n_in − 1."""
    ramp = _t64(np.arange(n_in, dtype=np.float64).reshape(1, 1, 1, n_in))
    if "scale_factor" in kwargs:
        kwargs["scale_factor"] = (1.0, kwargs["scale_factor"])
    else:
        kwargs["size"] = (1, kwargs["size"])
    return F.interpolate(ramp, mode="bilinear", **kwargs).numpy()[0, 0, 0]


def fig_bilinear(out_dir: Path = FIGURE_DIR) -> Path:
    """Bilinear sampling positions (align_corners False/True, size vs scale_factor) and a 4x4 → 8x8 resize.

    Positions come from ``F.interpolate`` on a ramp (they are the source
    coordinates clamped to ``[0, n − 1]``); the worked example checks the seed's
    formula ``(1−λy)((1−λx)a + λx b) + λy((1−λx)c + λx d)`` against the library at one pixel.
    """
    rows = [
        ("4 → 8, align_corners=False", 4, dict(size=8, align_corners=False)),
        ("4 → 8, align_corners=True", 4, dict(size=8, align_corners=True)),
        ("5 → 7, size=7   (r = 5/7)", 5, dict(size=7)),
        ("5 → 7, scale_factor=1.5   (r = 1/1.5)", 5, dict(scale_factor=1.5)),
    ]
    positions = [_sample_positions(n, **kw) for _, n, kw in rows]
    assert np.allclose(positions[0], np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3))
    assert np.allclose(positions[1], np.arange(8) * 3 / 7)
    assert not np.allclose(positions[2], positions[3]), "size=7 and scale_factor=1.5 sample differently"

    ramp = _t64(np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4))
    out = F.interpolate(ramp, size=(8, 8), mode="bilinear", align_corners=False).numpy()[0, 0]
    a, b, c, d, ly, lx = 0.0, 1.0, 4.0, 5.0, 0.25, 0.75  # out[1, 2]: source (0.25, 0.75)
    assert np.isclose(out[1, 2], (1 - ly) * ((1 - lx) * a + lx * b) + ly * ((1 - lx) * c + lx * d))

    small = np.array([[0.0, 0.2, 0.2, 0.0], [0.2, 1.0, 0.6, 0.0], [0.2, 0.6, 0.0, 0.0], [0.0, 0.0, 0.0, 0.8]])
    resized = {ac: F.interpolate(_t64(small[None, None]), size=(8, 8), mode="bilinear", align_corners=ac)
               .numpy()[0, 0] for ac in (False, True)}

    fig = Figure(figsize=(10, 6.0))
    grid = fig.add_gridspec(2, 3, height_ratios=[1.3, 1.0])
    ax = fig.add_subplot(grid[0, :])
    for r, ((label, n_in, _), pos) in enumerate(zip(rows, positions)):
        yy = -1.2 * r
        ax.axhline(yy, color="0.85", lw=0.8, zorder=0)
        ax.plot(np.arange(n_in), np.full(n_in, yy), "s", ms=11, mfc="#dbe9f6", mec="#1f77b4", zorder=1)
        ax.plot(pos, np.full(pos.shape, yy), "o", ms=5, color="#c0392b", zorder=2)
        for o, p in enumerate(pos):
            ax.text(p, yy - 0.22, str(o), ha="center", va="top", fontsize=6.5, color="#c0392b")
        ax.text(-0.55, yy + 0.3, label, ha="left", va="bottom", fontsize=8)
    ax.set_xlim(-0.6, 4.4)
    ax.set_ylim(-1.2 * len(rows) + 0.6, 0.75)
    ax.set_yticks([])
    ax.set_xticks(range(5))
    ax.tick_params(labelsize=8)
    ax.set_xlabel("input coordinate: pixel centres (blue squares), output o's sample (red dot o)", fontsize=8)
    for spine in ("left", "right", "top"):
        ax.spines[spine].set_visible(False)
    ax.set_title("where each output pixel samples the input (F.interpolate of a ramp)", fontsize=9)
    images = [(small, "input 4×4"), (resized[False], "8×8, align_corners=False"),
              (resized[True], "8×8, align_corners=True")]
    for col, (array, title) in enumerate(images):
        ax = fig.add_subplot(grid[1, col])
        ax.imshow(array, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        _no_ticks(ax)
    fig.tight_layout()
    return _save(fig, out_dir, "bilinear")


def _bilinear_corner_weights(px: float, py: float) -> np.ndarray:
    """The weights ``ops.roi_align`` gives the four pixels of a 2×2 map when it samples the point ``(px, py)``.

    Four one-hot channels (channel ``k`` is 1 at pixel ``k`` of the 2×2 map only);
    a 1×1 box centred on the point, one sample, ``aligned=False``: the sample lands
    exactly on ``(px, py)`` and channel ``k`` returns the weight of pixel ``k``.
    Returned as ``[[w(Q11), w(Q21)], [w(Q12), w(Q22)]]`` (rows: y, columns: x).
    """
    one_hot = _t64(np.eye(4).reshape(1, 4, 2, 2))
    box = _t64([[0.0, px - 0.5, py - 0.5, px + 0.5, py + 0.5]])
    return ops.roi_align(one_hot, box, 1, sampling_ratio=1).numpy().reshape(2, 2)


def fig_bilinear_weights(out_dir: Path = FIGURE_DIR) -> Path:
    """The lecture's Q11, Q21, Q12, Q22 around a point P, each weight the area of the rectangle opposite its corner.

    The weights are the library's (``ops.roi_align`` sampling one-hot channels, the
    same ``bilinear`` helper every RoIAlign kernel calls); the figure checks that
    each equals the area of the rectangle between P and the *opposite* corner,
    that they sum to 1, and that the corner nearest to P weighs most.
    """
    px, py = 0.7, 0.25                                       # P = (x1 + λx, y1 + λy) with x1 = y1 = 0
    w = _bilinear_corner_weights(px, py)
    areas = np.array([[(1 - px) * (1 - py), px * (1 - py)], [(1 - px) * py, px * py]])
    assert np.allclose(w, areas, atol=1e-15), (w, areas)
    assert np.isclose(w.sum(), 1.0) and w.argmax() == 1, "Q21 = (x2, y1) is nearest to P and weighs most"

    names = [["Q11 = (x1, y1)", "Q21 = (x2, y1)"], ["Q12 = (x1, y2)", "Q22 = (x2, y2)"]]
    colours = [["#1f77b4", "#ff7f0e"], ["#2ca02c", "#d62728"]]
    fig = Figure(figsize=(9.6, 4.0))
    axes = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[1.15, 1.0]))
    ax = axes[0]
    for r in range(2):
        for c in range(2):
            # the rectangle opposite corner (c, r) spans from P to corner (1 − c, 1 − r)
            ox, oy = 1 - c, 1 - r
            x0, x1_ = sorted((px, ox))
            y0, y1_ = sorted((py, oy))
            ax.add_patch(Rectangle((x0, y0), x1_ - x0, y1_ - y0, fc=colours[r][c], alpha=0.28, ec=colours[r][c]))
            ax.text((x0 + x1_) / 2, (y0 + y1_) / 2, f"{areas[r, c]:.3f}\n{names[r][c][:3]}",
                    ha="center", va="center", fontsize=7.5, color=colours[r][c])
            ax.plot(c, r, "s", ms=13, color=colours[r][c])
            ax.text(c + (0.07 if c else -0.07), r + (0.09 if r else -0.09), names[r][c], fontsize=8.5,
                    ha="left" if c else "right", va="top" if r else "bottom")
    ax.plot(px, py, "o", ms=9, color="k")
    ax.text(px - 0.04, py + 0.04, "P = (x, y)", fontsize=9, ha="right", va="top")
    ax.annotate("", xy=(px, 1.2), xytext=(0, 1.2), arrowprops=dict(arrowstyle="<->", color="0.3"))
    ax.text(px / 2, 1.23, f"λx = x − x1 = {px}", ha="center", va="top", fontsize=8)
    ax.annotate("", xy=(-0.28, py), xytext=(-0.28, 0), arrowprops=dict(arrowstyle="<->", color="0.3"))
    ax.text(-0.31, py / 2, f"λy = {py}", ha="right", va="center", fontsize=8)
    ax.set_xlim(-0.75, 1.75)
    ax.set_ylim(1.35, -0.35)                                  # image convention: y grows downwards
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("pixel centres of f around P; each corner's weight is the area\nof the rectangle opposite it "
                 "(the nearer the corner, the bigger)", fontsize=9)

    ax = axes[1]
    order = [(0, 0), (0, 1), (1, 0), (1, 1)]
    labels = [f"{names[r][c]}\n{['(1 − λx)(1 − λy)', 'λx(1 − λy)'][c] if r == 0 else ['(1 − λx)λy', 'λx·λy'][c]}"
              for r, c in order]
    ax.barh(range(4), [w[r, c] for r, c in order], color=[colours[r][c] for r, c in order], alpha=0.8)
    for i, (r, c) in enumerate(order):
        ax.text(w[r, c] + 0.01, i, f"{w[r, c]:.3f}", va="center", fontsize=9)
    ax.set_yticks(range(4))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 0.75)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title("the library's weights (ops.roi_align on one-hot pixels)\n"
                 "f(P) = Σ weight · f(corner); they sum to 1", fontsize=9)
    fig.tight_layout()
    return _save(fig, out_dir, "bilinear_weights")


# --------------------------------------------------------------------------------------------- 6. RoIAlign / RoIPool
def _roi_align_samples(box, size: int, output: int, grid: int, aligned: bool, scale: float = 1.0) -> np.ndarray:
    """The sample points of ``ops.roi_align(..., output, sampling_ratio=grid, aligned)`` as ``(output·grid)² × (y, x)``.

    RoIAlign with ``output·grid`` bins and one sample per bin samples exactly the
    same points; on the ramps ``f = x`` and ``f = y`` it returns their coordinates.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    ramps = _t64(np.stack([yy, xx])[None])
    rois = _t64([[0.0, *box]])
    pts = ops.roi_align(ramps, rois, output * grid, spatial_scale=scale, sampling_ratio=1, aligned=aligned).numpy()[0]
    return pts.reshape(2, -1).T


def _roi_pool_bins(box, size: int, output: int, scale: float = 1.0) -> np.ndarray:
    """``member[ph, pw, y, x]``: whether pixel ``(y, x)`` lies in RoIPool bin ``(ph, pw)``.

    Computed by ``ops.roi_pool`` on ``size²`` one-hot channels: channel ``p`` is 1
    at pixel ``p`` only, so the bin's max is 1 exactly when the bin contains ``p``.
    """
    one_hot = _t64(np.eye(size * size).reshape(1, size * size, size, size))
    out = ops.roi_pool(one_hot, _t64([[0.0, *box]]), output, spatial_scale=scale).numpy()[0]
    return out.reshape(size, size, output, output).transpose(2, 3, 0, 1) > 0.5


def fig_roi_align(out_dir: Path = FIGURE_DIR) -> Path:
    """One box on an 8x8 map, 2x2 bins: RoIAlign's samples (aligned False / True) and RoIPool's quantised bins.

    Pixel ``i`` is drawn as the square ``[i − ½, i + ½]`` around its centre ``i``
    (the coordinate bilinear interpolation uses), so the box ``[x1, x2]`` in
    image coordinates (pixel ``i`` covering ``[i, i + 1)``) is drawn at ``[x1 − ½, x2 − ½]``.
    """
    size, output, grid = 8, 2, 2
    box = (1.6, 1.2, 6.3, 5.9)  # x1, y1, x2, y2
    x1, y1, x2, y2 = box
    yy, xx = np.mgrid[0:size, 0:size]
    backdrop = np.exp(-((yy - 3.5) ** 2 + (xx - 4.0) ** 2) / 12.0)

    samples = {aligned: _roi_align_samples(box, size, output, grid, aligned) for aligned in (False, True)}
    shift = samples[False] - samples[True]
    assert np.allclose(shift, 0.5), "aligned=True samples half a pixel up-left of aligned=False"
    bins = _roi_pool_bins(box, size, output)
    assert bins[0, 0, 1:4, 2:5].all() and bins[0, 1, 1:4, 4:7].all(), "rounded box, overlapping bins"

    fig = Figure(figsize=(10.5, 4.1))
    axes = fig.subplots(1, 3)
    titles = {False: "roi_align, aligned=False\n(samples ½ pixel down-right)",
              True: "roi_align, aligned=True\n(box shifted by −½: samples centred)"}
    for ax, aligned in zip(axes[:2], (False, True)):
        ax.imshow(backdrop, cmap="Greys", vmin=0, vmax=2.5)
        _pixel_grid(ax, size, size)
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="k", lw=2))
        sy0, sx0 = (y1, x1) if not aligned else (y1 - 0.5, x1 - 0.5)
        bh, bw = (y2 - y1) / output, (x2 - x1) / output
        for ph in range(output):
            for pw in range(output):
                colour = BIN_COLOURS[ph * output + pw]
                ax.add_patch(Rectangle((sx0 + pw * bw, sy0 + ph * bh), bw, bh, fill=False, ec=colour, lw=1.2, ls="--"))
        pts = samples[aligned].reshape(output, grid, output, grid, 2)
        for ph in range(output):
            for pw in range(output):
                p = pts[ph, :, pw, :].reshape(-1, 2)
                ax.plot(p[:, 1], p[:, 0], "o", ms=5, color=BIN_COLOURS[ph * output + pw], mec="k", mew=0.5)
        ax.set_title(titles[aligned], fontsize=9)
    ax = axes[2]
    ax.imshow(backdrop, cmap="Greys", vmin=0, vmax=2.5)
    _pixel_grid(ax, size, size)
    for ph in range(output):
        for pw in range(output):
            colour = BIN_COLOURS[ph * output + pw]
            ys, xs = np.nonzero(bins[ph, pw])
            for py, px in zip(ys, xs):
                ax.add_patch(Rectangle((px - 0.5, py - 0.5), 1, 1, fc=colour, alpha=0.25, ec="none"))
            inset = 0.07
            left, top = xs.min() - 0.5 + inset, ys.min() - 0.5 + inset
            width, height = xs.max() - xs.min() + 1 - 2 * inset, ys.max() - ys.min() + 1 - 2 * inset
            ax.add_patch(Rectangle((left, top), width, height, fill=False, ec=colour, lw=2))
    ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="k", lw=2))
    ax.set_title("roi_pool: box rounded to pixels 2–6 × 1–6,\nbins floor/ceil: columns 2–4 and 4–6 share 4",
                 fontsize=9)
    for ax in axes:
        ax.set_xticks(range(size))
        ax.set_yticks(range(size))
        ax.tick_params(labelsize=7)
    fig.suptitle(f"box (x1, y1, x2, y2) = {box} (black) on an 8×8 map, output 2×2, sampling_ratio 2", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(fig, out_dir, "roi_align")


STRIDE32_BOXES = ((75.0, 140.0, 300.0, 410.0), (200.0, 50.0, 245.0, 110.0))   # x1, y1, x2, y2 in a 512×512 image


def roi_stride32_errors(box, stride: int = 32, size: int = 16, output: int = 2) -> dict:
    """Where RoIPool and RoIAlign look for ``box`` (image pixels) on a stride-``stride`` map, in image pixels.

    ``pool``: the image region RoIPool's bins cover (``ops.roi_pool`` on one-hot
    channels, ``spatial_scale = 1/stride``; map cell ``j`` covers image pixels
    ``[stride·j, stride·(j + 1))``) and its edge errors ``region − box``.
    ``align``: RoIAlign's sample points in image pixels for ``aligned=True`` (map
    coordinate ``u`` is the centre of cell ``u``, image ``stride·(u + ½)``) and the
    same points read back for ``aligned=False``, which samples ``u = x / stride``
    and so reads image ``x + stride/2``.
    """
    bins = _roi_pool_bins(box, size, output, scale=1.0 / stride)
    covered = bins.any(axis=(0, 1))
    rows, cols = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
    region = np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64) * stride
    cells = {(ph, pw): np.argwhere(bins[ph, pw]) for ph in range(output) for pw in range(output)}
    samples = {aligned: _roi_align_samples(box, size, output, 2, aligned, scale=1.0 / stride)
               for aligned in (False, True)}
    image_points = {True: (samples[True] + 0.5) * stride, False: (samples[False] + 0.5) * stride}
    return dict(region=region, error=region - np.asarray(box), cells=cells, points=image_points)


def fig_roi_stride32(out_dir: Path = FIGURE_DIR) -> Path:
    """RoIPool vs RoIAlign for two boxes of a 512×512 image on its stride-32 (16×16) feature map.

    RoIPool's region snaps to whole 32-pixel cells (coordinates rounded, end
    cell included); RoIAlign's ``aligned=True`` samples sit exactly on the box's
    2×2 bins (2×2 samples each); ``aligned=False`` reads every sample 16 image
    pixels down and right.
    """
    stride = 32
    results = [roi_stride32_errors(box, stride) for box in STRIDE32_BOXES]
    for box, r in zip(STRIDE32_BOXES, results):
        x1, y1, x2, y2 = box
        assert np.all(r["region"] % stride == 0), "RoIPool sees whole cells"
        assert np.all(np.abs(r["error"][:2]) <= stride / 2) and np.all(r["error"][2:] > stride / 2 - 1e-9)
        pts = r["points"][True]
        assert np.all((pts[:, 1] > x1) & (pts[:, 1] < x2) & (pts[:, 0] > y1) & (pts[:, 0] < y2))
        quarter_w, quarter_h = (x2 - x1) / 4, (y2 - y1) / 4          # 2 bins × 2 samples per side
        assert np.isclose(pts[:, 1].min(), x1 + quarter_w / 2) and np.isclose(pts[:, 0].max(), y2 - quarter_h / 2)
        assert np.allclose(r["points"][False] - pts, stride / 2), "aligned=False is 16 image pixels off"
        cell = np.floor(np.asarray(box) / stride + 0.5) + np.array([0, 0, 1, 1])   # round, end cell included
        assert np.array_equal(r["error"], cell * stride - np.asarray(box)), (r["error"], cell)
    assert results[0]["error"].tolist() == [-11.0, -12.0, 20.0, 38.0], results[0]["error"]   # quoted on the page
    assert results[1]["error"].tolist() == [-8.0, 14.0, 43.0, 18.0], results[1]["error"]

    fig = Figure(figsize=(10.5, 5.0))
    axes = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[1.25, 1.0]))
    for ax, box, r in zip(axes, STRIDE32_BOXES, results):
        x1, y1, x2, y2 = box
        region = r["region"]
        lo_x, hi_x = min(region[0], x1) - stride, max(region[2], x2) + stride
        lo_y, hi_y = min(region[1], y1) - stride, max(region[3], y2) + stride
        for (ph, pw), cells in r["cells"].items():
            colour = BIN_COLOURS[ph * 2 + pw]
            for cy, cx in cells:
                ax.add_patch(Rectangle((cx * stride, cy * stride), stride, stride, fc=colour, alpha=0.18, ec="none"))
            (cy0, cx0), (cy1, cx1) = cells.min(axis=0), cells.max(axis=0)
            inset = 2.0 + 2.0 * (ph * 2 + pw)
            ax.add_patch(Rectangle((cx0 * stride + inset, cy0 * stride + inset), (cx1 - cx0 + 1) * stride - 2 * inset,
                                   (cy1 - cy0 + 1) * stride - 2 * inset, fill=False, ec=colour, lw=1.3))
        for v in np.arange(0, 513, stride):
            ax.axvline(v, color="0.75", lw=0.6, zorder=0)
            ax.axhline(v, color="0.75", lw=0.6, zorder=0)
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="k", lw=2.2))
        for aligned, marker in ((True, "o"), (False, "x")):
            pts = r["points"][aligned].reshape(2, 2, 2, 2, 2)
            for ph in range(2):
                for pw in range(2):
                    p = pts[ph, :, pw, :].reshape(-1, 2)
                    ax.plot(p[:, 1], p[:, 0], marker, ms=5, color=BIN_COLOURS[ph * 2 + pw],
                            mec="k" if aligned else None, mew=0.5 if aligned else 1.2)
        err = r["error"]
        ax.set_title(f"box {tuple(int(v) for v in box)}: RoIPool covers {tuple(int(v) for v in region)}\n"
                     f"edge errors x1 {err[0]:+.0f}, y1 {err[1]:+.0f}, x2 {err[2]:+.0f}, y2 {err[3]:+.0f} image px",
                     fontsize=9)
        ax.set_xlim(lo_x, hi_x)
        ax.set_ylim(hi_y, lo_y)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    fig.suptitle("stride 32 (spatial_scale = 1/32), output 2×2: black = the box; shaded cells = RoIPool's 4 bins; "
                 "dots = RoIAlign aligned=True samples; × = aligned=False", fontsize=9.5)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(fig, out_dir, "roi_stride32")


# --------------------------------------------------------------------------------------------- 7. NMS
def fig_nms(out_dir: Path = FIGURE_DIR) -> Path:
    """Jittered candidate boxes around the objects of a SyntheticShapes image, before and after ``ops.nms(…, 0.5)``.

    Each candidate's score is its IoU with its object's box (``ops.box_iou``)
    plus a little noise, as a detector's confidence would roughly be.
    """
    ds = SyntheticShapes(num_images=1, size=(96, 96), seed=7, min_objects=3, max_objects=3, min_size=22, noise=2.0)
    image, _ = ds[0]
    truth = ds.instances(0)["boxes"].astype(np.float64)
    rng = np.random.default_rng(1)
    candidates, scores = [], []
    for gt in truth:
        side = np.array([gt[2] - gt[0], gt[3] - gt[1], gt[2] - gt[0], gt[3] - gt[1]])
        jitter = gt + rng.normal(0.0, 0.12, size=(7, 4)) * side
        jitter[:, 2:] = np.maximum(jitter[:, 2:], jitter[:, :2] + 2.0)
        iou = ops.box_iou(jitter, gt[None]).reshape(-1)
        candidates.append(jitter)
        scores.append(np.clip(iou + rng.normal(0.0, 0.05, size=iou.shape), 0.05, 0.99))
    boxes = ops.clip_boxes_to_image(np.concatenate(candidates), image.shape[:2])
    score = np.concatenate(scores)
    keep = ops.nms(boxes, score, 0.5)
    assert len(keep) < len(boxes) and np.all(np.diff(score[keep]) <= 0), "kept in decreasing score order"
    kept_iou = ops.box_iou(boxes[keep], boxes[keep])
    assert np.all(kept_iou[~np.eye(len(keep), dtype=bool)] <= 0.5), "no two kept boxes overlap by IoU > 0.5"

    fig = Figure(figsize=(8.8, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    cmap = colormaps["plasma"]
    for ax, which, title in ((axes[0], np.arange(len(boxes)), f"{len(boxes)} candidates (colour = score)"),
                             (axes[1], keep, f"nms(boxes, scores, iou_threshold=0.5): {len(keep)} kept")):
        ax.imshow(image, interpolation="nearest")
        for i in which:
            bx1, by1, bx2, by2 = boxes[i]
            ax.add_patch(Rectangle((bx1 - 0.5, by1 - 0.5), bx2 - bx1, by2 - by1, fill=False,
                                   ec=cmap(score[i]), lw=2.4 if which is keep else 1.2))
            if which is keep:
                ax.text(bx1 - 0.5, by1 - 1.5, f"{score[i]:.2f}", fontsize=8, color="k",
                        bbox=dict(fc=cmap(score[i]), ec="none", pad=1, alpha=0.9))
        ax.set_title(title, fontsize=9)
        _no_ticks(ax)
    fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=axes, shrink=0.8, label="score")
    return _save(fig, out_dir, "nms")


# --------------------------------------------------------------------------------------------- 8. metrics
def fig_metrics(out_dir: Path = FIGURE_DIR) -> Path:
    """The seed's 5x5 masks and the TP/FP/FN/TN map, titled with ``binary_metrics``' numbers."""
    m = binary_metrics(SEED_PRED, SEED_TRUE)
    expected = dict(precision=1.0, recall=0.615, accuracy=0.8, f1=0.762, iou=0.615, dice=0.762)
    for key, value in expected.items():
        assert round(m[key], 3) == value, (key, m[key])
    kind = np.select(
        [(SEED_PRED == 1) & (SEED_TRUE == 1), (SEED_PRED == 1) & (SEED_TRUE == 0), (SEED_PRED == 0) & (SEED_TRUE == 1)],
        [0, 1, 2], default=3,
    )
    names = ("TP", "FP", "FN", "TN")
    counts = {name: int(np.sum(kind == i)) for i, name in enumerate(names)}
    assert counts == dict(TP=8, FP=0, FN=5, TN=12)
    colours = ListedColormap(["#2ca02c", "#d62728", "#ff9f1c", "#e6e6e6"])

    fig = Figure(figsize=(9, 3.5))
    axes = fig.subplots(1, 3)
    for ax, mask, title in ((axes[0], SEED_TRUE, "true mask (13 foreground)"),
                            (axes[1], SEED_PRED, "predicted mask (8 foreground)")):
        ax.imshow(mask, cmap="Greys", vmin=0, vmax=1.6)
        _annotate(ax, mask, "{:d}", size=9, dark=mask == 1)
        _pixel_grid(ax, 5, 5, "0.4")
        ax.set_title(title, fontsize=9)
        _no_ticks(ax)
    ax = axes[2]
    ax.imshow(kind, cmap=colours, vmin=-0.5, vmax=3.5)
    for (r, c), v in np.ndenumerate(kind):
        ax.text(c, r, names[v], ha="center", va="center", fontsize=8)
    _pixel_grid(ax, 5, 5, "0.4")
    ax.set_title("  ".join(f"{n}={counts[n]}" for n in names), fontsize=9)
    _no_ticks(ax)
    fig.suptitle(
        f"binary_metrics: precision {m['precision']:.3f}  recall {m['recall']:.3f}  accuracy {m['accuracy']:.3f}  "
        f"F1 = Dice {m['f1']:.3f}  IoU {m['iou']:.3f}", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_dir, "metrics")


STREET_CLASSES = ("road", "building", "car", "pole")
STREET_COLOURS = ListedColormap(["#804080", "#808080", "#40008f", "#c0c080"])     # CamVid's palette for these four


def street_example():
    """An imbalanced 4-class 24×32 label map (road, building, a car, a 1-pixel pole) and a prediction of it.

    The prediction gets road and building right, misses the car's right 2 columns
    (predicted road) and the whole pole (predicted building, its foot road).
    Returns ``(truth, pred, logits)``; ``logits (1, 4, 24, 32)`` is a model's output
    whose argmax is ``pred``: 3 for the predicted class, 0 elsewhere, and on the
    pole 1.2 for the pole class (the model hesitates, but building wins).
    """
    truth = np.zeros((24, 32), dtype=np.int64)
    truth[:10] = 1
    truth[13:19, 4:14] = 2
    truth[3:22, 24] = 3
    pred = truth.copy()
    pred[truth == 3] = 1
    pred[21, 24] = 0
    pred[13:19, 12:14] = 0
    logits = np.where(np.arange(4)[:, None, None] == pred[None], 3.0, 0.0)[None]
    logits[0, 3][truth == 3] = 1.2
    return truth, pred, logits


def fig_metrics_multiclass(out_dir: Path = FIGURE_DIR) -> Path:
    """The output step, an imbalanced example (pixel accuracy vs mIoU vs fwIoU), class weights, Dice vs IoU.

    Every number the metrics page quotes about this example is asserted here:
    the metrics from ``ConfusionMatrix``, the median-frequency weights from
    ``median_frequency_weights``, the pole's share of the (weighted) cross-entropy
    from ``F.cross_entropy``, and the gradient that ``F.dice_loss`` and
    ``F.cross_entropy`` put on four missed pixels of a small and of a large object.
    """
    truth, pred, logits = street_example()
    x = _t64(logits)
    assert np.array_equal(F.argmax(x, dim=1).numpy()[0], pred), "prediction = argmax over the class channels"
    probs = F.softmax(x, dim=1).numpy()[0]
    pole_pixel = (12, 24)
    p_pole = probs[:, pole_pixel[0], pole_pixel[1]]
    assert np.allclose(p_pole.sum(), 1.0) and p_pole.argmax() == 1
    target = mts.tensor(truth[None])
    per_pixel = F.cross_entropy(x, target, reduction="none").numpy()[0]
    assert np.allclose(per_pixel, -np.log(np.take_along_axis(probs, truth[None], 0)[0])), "CE = −log p(true class)"
    assert np.isclose(per_pixel[pole_pixel], -np.log(np.exp(1.2) / (2 + np.exp(3) + np.exp(1.2))))   # 2.035

    cm = ConfusionMatrix(4)
    cm.update(pred, truth)
    m = cm.compute()
    assert np.allclose(np.round(m["iou"], 3), [0.967, 0.946, 0.8, 0.0])
    assert (round(m["pixel_accuracy"], 3), round(m["mean_accuracy"], 3), round(m["miou"], 3), round(m["fwiou"], 3)) \
        == (0.96, 0.7, 0.678, 0.921)
    support = np.bincount(truth.ravel(), minlength=4)
    assert support.tolist() == [376, 313, 60, 19]

    weights = median_frequency_weights(truth, 4)
    assert np.allclose(np.round(weights, 2), [0.50, 0.60, 3.11, 9.82])
    weighted = F.cross_entropy(x, target, weight=_t64(weights), reduction="none").numpy()[0]
    pole = truth == 3
    share, share_weighted = per_pixel[pole].sum() / per_pixel.sum(), weighted[pole].sum() / weighted.sum()
    assert (round(share, 2), round(share_weighted, 2)) == (0.22, 0.67), (share, share_weighted)

    # Dice vs IoU: per image one is a function of the other; as losses, Dice weighs a small object's pixels more.
    assert np.allclose(m["dice"], 2 * m["iou"] / (1 + m["iou"]))
    method_a, method_b = np.array([1.0, 0.1]), np.array([0.5, 0.5])      # two images' IoU per method
    means = [(round(float(v.mean()), 2), round(float(np.mean(2 * v / (1 + v))), 2)) for v in (method_a, method_b)]
    assert means == [(0.55, 0.59), (0.5, 0.67)], means                     # mIoU prefers A, mean Dice B
    small = np.zeros((1, 32, 32), dtype=np.int64)
    small[0, 4:20, 4:20] = 1                      # a 16×16 object
    small[0, 25:27, 25:27] = 2                    # a 2×2 object
    guess = small.copy()
    guess[0, 25:27, 25:27] = 0                    # the small object missed (4 pixels)
    guess[0, 4:6, 4:6] = 0                        # 4 pixels of the large one missed
    ratios = {}
    for name, loss_fn in (("cross_entropy", F.cross_entropy), ("dice_loss", F.dice_loss)):
        z = mts.tensor(np.where(np.arange(3)[None, :, None, None] == guess[:, None], 3.0, 0.0), requires_grad=True)
        loss_fn(z, mts.tensor(small)).backward()
        g = np.abs(z.grad.numpy()[0]).sum(axis=0)
        ratios[name] = g[25:27, 25:27].sum() / g[4:6, 4:6].sum()
    assert np.isclose(ratios["cross_entropy"], 1.0) and round(ratios["dice_loss"]) == 14, ratios

    fig = Figure(figsize=(11, 3.6))
    axes = fig.subplots(1, 4, gridspec_kw=dict(width_ratios=[1, 1, 1.05, 1.15]))
    for ax, labels, title in ((axes[0], truth, "truth (24×32)"), (axes[1], pred, "prediction = argmax of the logits")):
        ax.imshow(labels, cmap=STREET_COLOURS, vmin=-0.5, vmax=3.5, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        _no_ticks(ax)
    axes[1].plot(pole_pixel[1], pole_pixel[0], "o", mfc="none", mec="w", ms=8, mew=1.5)
    for c, name in enumerate(STREET_CLASSES):
        axes[0].text(33, 2 + 5 * c, f"■ {name} ({support[c]} px)", color=STREET_COLOURS(c), fontsize=8, va="center")
    ax = axes[2]
    bars = ax.bar(range(4), p_pole, color=[STREET_COLOURS(c) for c in range(4)])
    bars[3].set_hatch("//")
    for c in range(4):
        ax.text(c, p_pole[c] + 0.02, f"z={logits[0, c, pole_pixel[0], pole_pixel[1]]:g}\np={p_pole[c]:.2f}",
                ha="center", fontsize=7.5)
    ax.set_xticks(range(4))
    ax.set_xticklabels(STREET_CLASSES, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"the circled pole pixel: softmax of its logits z;\nargmax = building, CE = −log p(pole) = "
                 f"{per_pixel[pole_pixel]:.2f}", fontsize=8.5)
    ax = axes[3]
    ax.barh(range(4), m["iou"], color=[STREET_COLOURS(c) for c in range(4)])
    for c in range(4):
        ax.text(m["iou"][c] + 0.02, c, f"IoU {m['iou'][c]:.3f}   weight {weights[c]:.2f}", va="center", fontsize=7.5)
    ax.set_yticks(range(4))
    ax.set_yticklabels(STREET_CLASSES, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.9)
    ax.set_xticks([0, 0.5, 1])
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(f"pixel acc {m['pixel_accuracy']:.3f}  mean acc {m['mean_accuracy']:.3f}\n"
                 f"mIoU {m['miou']:.3f}  fwIoU {m['fwiou']:.3f}", fontsize=8.5)
    fig.tight_layout()
    return _save(fig, out_dir, "metrics_multiclass")


# --------------------------------------------------------------------------------------------- 9. K-means
def fig_kmeans(out_dir: Path = FIGURE_DIR) -> Path:
    """Grace Hopper's photo (150×128, H×W) in k = 5 colour clusters; pick a cluster, make the mask, paste.

    Top: the photo, each pixel painted with its cluster's centre, the centres.
    Bottom, the lecture's steps: pick the background cluster (the one that fills
    the right-hand column), the mask of every other pixel, and the kept pixels
    pasted on a new background.
    """
    with Image.open(get_sample_data("grace_hopper.jpg", asfileobj=False)) as photo:
        rgb = np.asarray(photo.convert("RGB").resize((128, 150), Image.BILINEAR), dtype=np.float64)   # (W, H)
    h, w, _ = rgb.shape
    assert (h, w) == (150, 128)
    labels, centers = kmeans(rgb.reshape(-1, 3), 5, iters=30, seed=0)
    order = np.argsort(centers.sum(axis=1))  # dark to light, for a stable legend
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    labels, centers = rank[labels], centers[order]
    fractions = np.bincount(labels, minlength=5) / labels.size
    assert np.isclose(fractions.sum(), 1.0) and np.all(fractions > 0)

    label_map = labels.reshape(h, w)
    background = int(np.bincount(label_map[:, -1], minlength=5).argmax())
    assert background == 2 and centers[background].argmax() == 2, "the blue backdrop is cluster 2"
    keep = label_map != background
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    new_background = np.stack([230 - 60 * yy, 150 + 80 * xx * (1 - yy), 60 + 40 * yy], axis=-1)
    pasted = np.where(keep[..., None], rgb, new_background)
    assert np.array_equal(pasted[keep], rgb[keep]) and np.array_equal(pasted[~keep], new_background[~keep])
    assert round(float(keep.mean()), 2) == 0.80, keep.mean()

    fig = Figure(figsize=(8.8, 6.8))
    axes = fig.subplots(2, 3, gridspec_kw=dict(width_ratios=[1, 1, 0.9]))
    bottom = axes[1]
    axes = axes[0]
    axes[0].imshow(rgb.astype(np.uint8), interpolation="nearest")
    axes[0].set_title(f"photo, H×W = {h}×{w}\n({h * w} RGB points)", fontsize=9)
    axes[1].imshow(centers[labels].reshape(h, w, 3).astype(np.uint8), interpolation="nearest")
    axes[1].set_title("each pixel → its cluster's centre colour", fontsize=9)
    for ax in axes[:2]:
        _no_ticks(ax)
    picked = np.where(keep[..., None], 0.35 * centers[label_map] + 150, centers[label_map])
    bottom[0].imshow(picked.astype(np.uint8), interpolation="nearest")
    bottom[0].set_title(f"1. pick cluster {background} (the blue backdrop:\nit fills the right-hand column)",
                        fontsize=9)
    bottom[1].imshow(keep, cmap="gray", interpolation="nearest")
    bottom[1].set_title(f"2. the mask: label ≠ {background}\n({keep.mean():.0%} of the pixels kept)", fontsize=9)
    bottom[2].imshow(pasted.astype(np.uint8), interpolation="nearest")
    bottom[2].set_title("3. paste the kept pixels\non a new background", fontsize=9)
    for ax in bottom:
        _no_ticks(ax)
    ax = axes[2]
    for j, (centre, share) in enumerate(zip(centers, fractions)):
        ax.barh(j, share, color=centre / 255.0, ec="k", lw=0.5)
        ax.text(share + 0.01, j, f"{share:.0%}  ({centre[0]:.0f}, {centre[1]:.0f}, {centre[2]:.0f})",
                va="center", fontsize=8)
    ax.set_xlim(0, max(fractions) + 0.45)
    ax.set_yticks(range(5))
    ax.set_yticklabels([f"cluster {j}" for j in range(5)], fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.invert_yaxis()
    ax.set_title("k = 5 centres (RGB) and pixel shares", fontsize=9)
    fig.tight_layout()
    return _save(fig, out_dir, "kmeans")


# --------------------------------------------------------------------------------------------- 12. encoder-decoder
def unet_levels(height: int = 160, width: int = 128, base: int = 64) -> dict:
    """Every level's feature map of ``unet(num_classes=12, base_channels=base, depth=4)`` on the Grace Hopper photo.

    The photo (H×W = ``height × width``, RGB scaled to [0, 1]) goes through the
    model's own submodules in ``UNet.forward``'s order (``inc``, ``down[l]``,
    ``up[l]``, ``outc``; eval mode, He-initialised weights, no training), and the
    maps are kept: ``{"input", "enc": [4 maps], "bottleneck", "upconv": [4],
    "concat": [4], "dec": [4], "out"}`` as NumPy arrays ``(C, H, W)``.
    """
    with Image.open(get_sample_data("grace_hopper.jpg", asfileobj=False)) as photo:
        rgb = np.asarray(photo.convert("RGB").resize((width, height), Image.BILINEAR), dtype=np.float32) / 255
    mts.random.manual_seed(0)                     # He initialisation draws from the library's generator
    model = unet(num_classes=12, base_channels=base, depth=4)
    model.eval()
    x = mts.tensor(rgb.transpose(2, 0, 1)[None].copy())
    levels = {"input": x.numpy()[0], "enc": [], "upconv": [], "concat": [], "dec": []}
    with no_grad():
        skips = [model.inc(x)]
        for down in model.down:
            skips.append(down(skips[-1]))
        h = skips.pop()
        levels["enc"] = [t.numpy()[0] for t in skips]
        levels["bottleneck"] = h.numpy()[0]
        for up in model.up:
            skip = skips.pop()
            upsampled = up.up(h)
            levels["upconv"].append(upsampled.numpy()[0])
            joined = F.cat([skip, upsampled], dim=1)
            levels["concat"].append(joined.numpy()[0])
            h = up.conv(joined)
            levels["dec"].append(h.numpy()[0])
        levels["out"] = model.outc(h).numpy()[0]
    with no_grad():
        assert np.allclose(model(x).numpy()[0], levels["out"]), "the levels are the model's own forward"
    return levels


def fig_encoder_decoder(out_dir: Path = FIGURE_DIR, base: int = 64) -> Path:
    """U-Net (the paper's widths for ``base = 64``, padded convolutions) on one photo: every level's map, C × H × W.

    The small mode draws it with ``base = 16`` (a quarter of the channels); the
    shapes are checked for any ``base``, the page's table for 64.
    """
    levels = unet_levels(base=base)
    shapes = {k: [a.shape for a in v] if isinstance(v, list) else v.shape for k, v in levels.items()}
    sizes = [(160, 128), (80, 64), (40, 32), (20, 16)]
    assert shapes["input"] == (3, 160, 128)
    assert shapes["enc"] == [(base * 2 ** lvl, *sizes[lvl]) for lvl in range(4)]
    assert shapes["bottleneck"] == (16 * base, 10, 8)
    assert shapes["upconv"] == [(base * 2 ** lvl, *sizes[lvl]) for lvl in range(3, -1, -1)]
    assert shapes["concat"] == [(2 * base * 2 ** lvl, *sizes[lvl]) for lvl in range(3, -1, -1)]
    assert shapes["dec"] == shapes["upconv"]
    assert shapes["out"] == (12, 160, 128)
    values = [int(np.prod(sh)) for sh in shapes["enc"] + [shapes["bottleneck"]]]
    assert values == [1310720 * base // 64 // 2 ** lvl for lvl in range(5)], "each level down: ×2 channels, ÷4 pixels"
    if base == 64:
        assert shapes["enc"][3] == (512, 20, 16) and values[0] == 1310720      # the page's table

    def thumb(array):
        a = np.abs(array).mean(axis=0)
        return (a - a.min()) / (np.ptp(a) + 1e-12)

    fig = Figure(figsize=(11, 6.4))
    scale = 0.22                                               # axes height of a 160-row map (figure fraction)
    aspect = 6.4 / 11

    def place(array, cx, top, label, cmap="magma"):
        c, hh, ww = array.shape
        side = scale * np.sqrt(hh / 160)
        w_frac = side * ww / hh * aspect
        ax = fig.add_axes((cx - w_frac / 2, top - side, w_frac, side))
        ax.imshow(array.transpose(1, 2, 0) if c == 3 else thumb(array), cmap=cmap, interpolation="nearest")
        _no_ticks(ax)
        ax.set_title(label, fontsize=7.5, pad=2)
        return ax, (cx - w_frac / 2, top - side, w_frac, side)

    tops = [0.88, 0.60, 0.38, 0.21, 0.10]
    xs_enc = [0.165, 0.25, 0.33, 0.40]
    xs_dec = [0.835, 0.75, 0.67, 0.60]
    boxes_enc, boxes_dec = [], []
    place(levels["input"], 0.055, tops[0], "input\n3 × 160 × 128", cmap=None)
    for lvl in range(4):
        c, hh, ww = levels["enc"][lvl].shape
        _, box = place(levels["enc"][lvl], xs_enc[lvl], tops[lvl], f"enc {lvl}\n{c} × {hh} × {ww}")
        boxes_enc.append(box)
        dec = levels["dec"][3 - lvl]
        cc, hd, wd = levels["concat"][3 - lvl].shape
        _, box = place(dec, xs_dec[lvl], tops[lvl],
                       f"dec {lvl}: concat {cc} × {hd} × {wd}\n→ 2 convs → {dec.shape[0]} × {hd} × {wd}")
        boxes_dec.append(box)
    c, hh, ww = levels["bottleneck"].shape
    _, bottom_box = place(levels["bottleneck"], 0.5, tops[4], f"bottleneck\n{c} × {hh} × {ww}")
    out = levels["out"]
    place(out, 0.945, tops[0], f"out\n{out.shape[0]} × {out.shape[1]} × {out.shape[2]}", cmap="viridis")

    def arrow(p, q, text, colour, offset=(0.0, 0.0), style="-|>"):
        fig.add_artist(FancyArrowPatch(p, q, transform=fig.transFigure, arrowstyle=style, mutation_scale=10,
                                       color=colour, lw=1.3))
        if text:
            fig.text((p[0] + q[0]) / 2 + offset[0], (p[1] + q[1]) / 2 + offset[1], text, fontsize=7, color=colour,
                     ha="center", va="center")

    chain = boxes_enc + [bottom_box]
    for a, b in zip(chain, chain[1:]):
        arrow((a[0] + a[2] / 2, a[1] - 0.005), (b[0] + b[2] / 2, b[1] + b[3] + 0.045), "max-pool 2×2\n+ 2 convs",
              "#c0392b", offset=(-0.075, -0.01))
    ups = [bottom_box] + boxes_dec[::-1]
    for lvl, (a, b) in enumerate(zip(ups, ups[1:])):
        cu = levels["upconv"][lvl].shape[0]
        arrow((a[0] + a[2] / 2, a[1] + a[3] + 0.045), (b[0] + b[2] / 2, b[1] - 0.005), f"up-conv 2×2\n→ {cu} ch",
              "#1f77b4", offset=(0.075, -0.01))
    for a, b in zip(boxes_enc, boxes_dec):
        arrow((a[0] + a[2] + 0.005, a[1] + a[3] / 2), (b[0] - 0.005, b[1] + b[3] / 2), "copy, concatenate", "0.35",
              offset=(0, 0.012))
    widths = "paper's widths" if base == 64 else f"base_channels={base}"
    fig.text(0.5, 0.985, f"U-Net ({widths}, padded 3×3 convolutions, untrained) on one photo: every level's "
             "map (mean |activation| over channels), C × H × W; thumbnails at √ of their size", ha="center",
             va="top", fontsize=9)
    return _save(fig, out_dir, "encoder_decoder")


# --------------------------------------------------------------------------------------------- 11. FCN
def fig_fcn_fc(out_dir: Path = FIGURE_DIR) -> Path:
    """VGG's fc6 as a 7×7 convolution: the same weights reshaped give the same outputs, and a map on a larger input.

    A ``Linear(C·7·7, O)`` on a flattened ``(C, 7, 7)`` pool5 map and a ``Conv2d(C, O, 7)``
    whose weight is the Linear's reshaped to ``(O, C, 7, 7)`` (bias copied) give the
    same ``O`` numbers; on a ``(C, 10, 12)`` map the convolution returns a 4×6 grid
    of them, each equal to the Linear applied to that 7×7 window. fc7 (a Linear
    ``O → O``) is a 1×1 convolution the same way.
    """
    c, o = 8, 16
    rng = np.random.default_rng(5)
    mts.random.manual_seed(5)                     # the layers' initial weights
    fc6 = nn.Linear(c * 7 * 7, o)
    conv6 = nn.Conv2d(c, o, 7)
    conv6.load_state_dict({"weight": fc6.weight.numpy().reshape(o, c, 7, 7), "bias": fc6.bias.numpy()})
    fc7 = nn.Linear(o, o)
    conv7 = nn.Conv2d(o, o, 1)
    conv7.load_state_dict({"weight": fc7.weight.numpy().reshape(o, o, 1, 1), "bias": fc7.bias.numpy()})

    pool5 = rng.standard_normal((1, c, 7, 7)).astype(np.float32)
    as_linear = fc7(F.relu(fc6(mts.tensor(pool5.reshape(1, -1))))).numpy()[0]
    as_conv = conv7(F.relu(conv6(mts.tensor(pool5)))).numpy()[0, :, 0, 0]
    assert np.allclose(as_linear, as_conv, rtol=1e-5, atol=1e-5), "same weights, same outputs"

    big = rng.standard_normal((1, c, 10, 12)).astype(np.float32)
    score_map = conv7(F.relu(conv6(mts.tensor(big)))).numpy()[0]
    assert score_map.shape == (o, 4, 6)
    for y in range(4):
        for x in range(6):
            window = big[:, :, y:y + 7, x:x + 7].reshape(1, -1)
            expected = fc7(F.relu(fc6(mts.tensor(window)))).numpy()[0]
            assert np.allclose(score_map[:, y, x], expected, rtol=1e-5, atol=1e-5), (y, x)

    fig = Figure(figsize=(11, 3.6))
    axes = fig.subplots(1, 3, gridspec_kw=dict(width_ratios=[1.3, 1.0, 1.0]))
    ax = axes[0]
    row = fc6.weight.numpy()[0]
    kernel = conv6.weight.numpy()[0]
    assert np.array_equal(row.reshape(c, 7, 7), kernel)
    mosaic = np.full((2 * 8 - 1, 4 * 8 - 1), np.nan)
    for ch in range(c):
        r, q = divmod(ch, 4)
        mosaic[8 * r:8 * r + 7, 8 * q:8 * q + 7] = kernel[ch]
    ax.imshow(mosaic, cmap="PuOr", interpolation="nearest")
    ax.set_title(f"fc6.weight[0] ({c * 49} numbers) reshaped to ({c}, 7, 7)\n= conv6.weight[0]: "
                 "a 7×7 filter per channel (tiles 0–7)", fontsize=9)
    _no_ticks(ax)
    ax = axes[1]
    ax.plot(range(o), as_linear, "o", ms=8, mfc="none", mec="#1f77b4", label="Linear on the flattened 7×7")
    ax.plot(range(o), as_conv, "x", ms=6, color="#c0392b", label="Conv2d 7×7, then 1×1")
    ax.legend(fontsize=7.5)
    ax.set_xlabel("output o (after fc7)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title("a 7×7 pool5 map: the same 16 numbers", fontsize=9)
    ax = axes[2]
    ax.imshow(score_map[0], cmap="viridis", interpolation="nearest")
    _annotate(ax, score_map[0], "{:.2f}", size=7, dark=score_map[0] < np.median(score_map[0]))
    ax.set_title("a 10×12 map: a 4×6 grid of outputs\n(output 0; each = the Linear on one window)",
                 fontsize=9)
    _no_ticks(ax)
    fig.tight_layout()
    return _save(fig, out_dir, "fcn_fc")


def _stride_scores(one_hot: np.ndarray, stride: int) -> mts.Tensor:
    """Class scores at ``stride``: the share of each class in every ``stride × stride`` cell (a strided mean filter)."""
    k = one_hot.shape[1]
    mean_filter = _t64(np.full((k, 1, stride, stride), 1.0 / stride ** 2))
    return F.conv2d(_t64(one_hot), mean_filter, stride=stride, groups=k)


def fcn_skip_ceiling():
    """The best FCN-32s, -16s and -8s can do on one image, if their scores at stride 32, 16, 8 were exact.

    SyntheticShapes image (128×128, seed 4, 10 objects); per stride ``S`` the class
    shares of each ``S × S`` cell (:func:`_stride_scores`) are upsampled to 128×128
    by bilinear interpolation (as FCN's fixed upsampling does) and the argmax taken.
    Returns ``(image, truth, {S: prediction}, {S: mIoU}, skips)`` where ``skips[S]``
    is what the skip at stride ``S`` adds: ``scores_S − upsample×2(scores_2S)``.
    """
    ds = SyntheticShapes(num_images=1, size=(128, 128), seed=4, min_objects=10, max_objects=10, min_size=8,
                         max_size=40, noise=2.0)
    image, truth = ds[0]
    one_hot = (np.arange(4)[:, None, None] == truth[None]).astype(np.float64)[None]
    scores = {s: _stride_scores(one_hot, s) for s in (32, 16, 8)}
    predictions, mious = {}, {}
    for s, score in scores.items():
        up = F.interpolate(score, size=(128, 128), mode="bilinear", align_corners=False)
        predictions[s] = F.argmax(up, dim=1).numpy()[0]
        cm = ConfusionMatrix(4)
        cm.update(predictions[s], truth)
        mious[s] = cm.compute()["miou"]
    skips = {s: scores[s].numpy()[0] - F.interpolate(scores[2 * s], scale_factor=2, mode="bilinear").numpy()[0]
             for s in (16, 8)}
    return image, truth, predictions, mious, skips


def fig_fcn_skips(out_dir: Path = FIGURE_DIR) -> Path:
    """FCN-32s / 16s / 8s upper bounds side by side on one image, and what the pool4 and pool3 skips add."""
    image, truth, predictions, mious, skips = fcn_skip_ceiling()
    assert mious[32] < mious[16] < mious[8], mious
    assert [round(mious[s], 2) for s in (32, 16, 8)] == [0.34, 0.63, 0.86], mious   # quoted on the page
    palette = ListedColormap(np.asarray(SyntheticShapes.palette, dtype=np.float64)[:4] / 255.0)
    fig = Figure(figsize=(11, 5.6))
    axes = fig.subplots(2, 4)
    axes[0, 0].imshow(image, interpolation="nearest")
    axes[0, 0].set_title("image (128×128)", fontsize=9)
    axes[1, 0].imshow(truth, cmap=palette, vmin=-0.5, vmax=3.5, interpolation="nearest")
    axes[1, 0].set_title("truth", fontsize=9)
    for col, (s, name) in enumerate(((32, "FCN-32s"), (16, "FCN-16s"), (8, "FCN-8s")), start=1):
        ax = axes[0, col]
        ax.imshow(predictions[s], cmap=palette, vmin=-0.5, vmax=3.5, interpolation="nearest")
        ax.set_title(f"{name}: exact stride-{s} scores\n({128 // s}×{128 // s}) upsampled: mIoU {mious[s]:.2f}",
                     fontsize=9)
    for col, s in ((2, 16), (3, 8)):
        ax = axes[1, col]
        added = np.abs(skips[s]).sum(axis=0)
        ax.imshow(added, cmap="magma", interpolation="nearest")
        ax.set_title(f"what the {'pool4' if s == 16 else 'pool3'} skip adds:\n"
                     f"Σ_c |scores_{s} − up×2(scores_{2 * s})|", fontsize=9)
    axes[1, 1].axis("off")
    axes[1, 1].text(-0.1, 0.5, "FCN-16s = up×16(up×2(score_fr)\n                   + score_pool4)\n"
                    "FCN-8s = up×8(up×2(that)\n                 + score_pool3)\n\nHere each stride's scores are\n"
                    "the exact class shares of its\ncells: the best each variant\ncould output.", fontsize=8.5,
                    va="center")
    for ax in axes.ravel():
        _no_ticks(ax)
    fig.tight_layout()
    return _save(fig, out_dir, "fcn_skips")


# --------------------------------------------------------------------------------------------- 10. models
def _model_summaries() -> dict:
    """``summary`` tables of small FCN-8s, U-Net and SegNet on a (1, 3, 64, 64) input."""
    models = {
        "FCN-8s (width 1/16)": fcn8s(num_classes=4, width=1 / 16),
        "U-Net (base 4 = width 1/16)": unet(num_classes=4, base_channels=4, depth=4),
        "SegNet (width 1/16)": segnet(num_classes=4, width=1 / 16),
    }
    return {name: summary(model, (1, 3, 64, 64)) for name, model in models.items()}


def _shape_of(totals: dict, name: str | None = None, kind: str | None = None, nth: int = 0) -> tuple:
    """``(C, H, W)`` of the layer called ``name``, or of the ``nth`` layer of type ``kind``, in a summary."""
    rows = [r for r in totals["layers"] if (name is None or r["name"] == name) and (kind is None or r["type"] == kind)]
    return tuple(rows[nth]["output_shape"][1:])


def _last_shape(totals: dict, prefix: str) -> tuple:
    """``(C, H, W)`` of the last layer whose name starts with ``prefix`` (a submodule's output)."""
    return tuple([r for r in totals["layers"] if r["name"].startswith(prefix)][-1]["output_shape"][1:])


def _block(ax, x, y, title, shape, colour, width=1.9):
    """A layer block centred at ``(x, y)``: its name and ``C×H×W``; the height grows with log2 H."""
    c, h, w = shape
    height = 0.26 + 0.05 * np.log2(h)
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02",
                                fc=colour, ec="0.3", lw=0.8))
    ax.text(x, y, f"{title}\n{c}×{h}×{w}", ha="center", va="center", fontsize=6.8)
    return (x, y, width, height)


def _link(ax, a, b, colour="0.3", text=None, style="-|>", ls="-", rad=0.0, where=0.5, dx=0.0, dy=0.0):
    """An arrow from point ``a`` to point ``b`` with an optional label at fraction ``where``."""
    ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle=style, color=colour, lw=1.1, ls=ls, shrinkA=0,
                                                    shrinkB=0, connectionstyle=f"arc3,rad={rad}"))
    if text:
        ax.text(a[0] + where * (b[0] - a[0]) + dx, a[1] + where * (b[1] - a[1]) + dy, text, fontsize=6.5,
                color=colour, ha="center", va="center")


def _bottom(box):
    return (box[0], box[1] - box[3] / 2)


def _top(box):
    return (box[0], box[1] + box[3] / 2)


def _side(box, sign):
    return (box[0] + sign * box[2] / 2, box[1])


ENC, DEC, SKIP = "#fde2c8", "#d6e6f5", "#e4f2dc"


def _draw_fcn(ax, totals):
    enc_shapes = [_shape_of(totals, kind="MaxPool2d", nth=i) for i in range(5)]
    ys = [7.0, 5.9, 4.8, 3.7, 2.6, 1.5]
    xs = [1.2, 1.5, 1.8, 2.1, 2.4, 2.7]
    boxes = [_block(ax, xs[0], ys[0], "input", totals["input_shape"][1:], "white")]
    for i, shape in enumerate(enc_shapes):
        boxes.append(_block(ax, xs[i + 1], ys[i + 1], f"conv{i + 1} + pool{i + 1}", shape, ENC))
    for a, b in zip(boxes, boxes[1:]):
        _link(ax, _bottom(a), _top(b))
    fc = _block(ax, 4.6, 0.25, "fc6 7×7, fc7 1×1 → score_fr", _shape_of(totals, "score_fr"), ENC, width=2.6)
    _link(ax, _bottom(boxes[5]), _side(fc, -1))
    up2 = _block(ax, 7.0, 1.5, "upscore2 ×2", _shape_of(totals, "upscore2"), DEC)
    _link(ax, _side(fc, 1), _bottom(up2))
    plus1 = (7.0, 2.6)
    up4 = _block(ax, 7.0, 3.15, "upscore_pool4 ×2", _shape_of(totals, "upscore_pool4"), DEC)
    plus2 = (7.0, 3.7)
    up8 = _block(ax, 7.0, 4.8, "upscore8 ×8", _shape_of(totals, "upscore8"), DEC)
    out = _block(ax, 7.0, 5.9, "crop → out", totals["output_shape"][1:], "white", width=1.4)
    s4 = _block(ax, 4.6, 2.6, "score_pool4 1×1", _shape_of(totals, "score_pool4"), SKIP)
    s3 = _block(ax, 4.6, 3.7, "score_pool3 1×1", _shape_of(totals, "score_pool3"), SKIP)
    for plus in (plus1, plus2):
        ax.add_patch(plt_circle(plus))
        ax.text(*plus, "+", ha="center", va="center", fontsize=11, color="#c0392b")
    _link(ax, _side(boxes[4], 1), _side(s4, -1))
    _link(ax, _side(boxes[3], 1), _side(s3, -1))
    _link(ax, _side(s4, 1), (plus1[0] - 0.22, plus1[1]), "#c0392b", "crop", dy=0.18)
    _link(ax, _side(s3, 1), (plus2[0] - 0.22, plus2[1]), "#c0392b", "crop", dy=0.18)
    _link(ax, _top(up2), (plus1[0], plus1[1] - 0.22))
    _link(ax, (plus1[0], plus1[1] + 0.22), _bottom(up4))
    _link(ax, _top(up4), (plus2[0], plus2[1] - 0.22))
    _link(ax, (plus2[0], plus2[1] + 0.22), _bottom(up8))
    _link(ax, _top(up8), _bottom(out))


def plt_circle(centre, radius=0.22):
    """A small white circle with a red edge: the ⊕ of a skip."""
    from matplotlib.patches import Circle
    return Circle(centre, radius, fc="white", ec="#c0392b", lw=1.3)


def _draw_u(ax, totals, enc_shapes, bottom_shape, dec_shapes, enc_names, dec_names, link_kind):
    ys = [5.9, 4.8, 3.7, 2.6, 1.5]
    boxes = [_block(ax, 1.6 + 0.35 * i, ys[i], enc_names[i], shape, ENC) for i, shape in enumerate(enc_shapes)]
    bottom = _block(ax, 5.0, 0.25, enc_names[-1], bottom_shape, ENC)
    dec = [_block(ax, 8.4 - 0.35 * i, ys[i], dec_names[i], shape, DEC) for i, shape in enumerate(dec_shapes)]
    chain = boxes + [bottom]
    for a, b in zip(chain[:-1], chain[1:-1]):
        _link(ax, _bottom(a), _top(b))
    _link(ax, _bottom(chain[-2]), _side(bottom, -1))
    _link(ax, _side(bottom, 1), _bottom(dec[-1]))
    for a, b in zip(dec[::-1], dec[::-1][1:]):
        _link(ax, _top(a), _bottom(b))
    for a, b in zip(boxes, dec):
        if link_kind == "concat":
            _link(ax, _side(a, 1), _side(b, -1), "#2c7a2c", "copy, concatenate", where=0.45, dy=0.14)
        else:
            _link(ax, _side(a, 1), _side(b, -1), "#8e44ad", "indices", ls="--", where=0.45, dy=0.14)
    out = _block(ax, 8.4, 7.0, "1×1 conv → out", totals["output_shape"][1:], "white", width=1.6)
    _link(ax, _top(dec[0]), _bottom(out))


def fig_models(out_dir: Path = FIGURE_DIR, at_256: bool = True) -> Path:
    """FCN-8s, U-Net and SegNet as architecture diagrams, every shape from ``models.summary`` on a 64×64 input.

    FCN: side branches (score_pool4, score_pool3) summed (+) into the upsampling
    path; U-Net: the encoder's maps concatenated into the decoder; SegNet: only
    the pooling indices cross. Also checks the multiply-accumulate counts the
    page quotes, at 64×64 and 256×256.
    """
    summaries = _model_summaries()
    (_, fcn), (_, unet_totals), (_, segnet_totals) = summaries.values()
    for totals in (fcn, unet_totals, segnet_totals):
        assert totals["output_shape"] == (1, 4, 64, 64)
    assert (fcn["total_params"], unet_totals["total_params"], segnet_totals["total_params"]) == (531120, 122108,
                                                                                              116656)
    assert _shape_of(fcn, "conv1.0") == (4, 262, 262), "conv1_1 pads by 100: 64 + 200 − 2 = 262"
    ratio64 = fcn["total_macs"] / unet_totals["total_macs"]
    assert round(ratio64, 1) == 7.8, ratio64
    if at_256:                                                  # the small mode skips the two 256×256 passes
        _, fcn256 = summary(fcn8s(num_classes=4, width=1 / 16), (1, 3, 256, 256))
        _, unet256 = summary(unet(num_classes=4, base_channels=4, depth=4), (1, 3, 256, 256))
        ratio256 = fcn256["total_macs"] / unet256["total_macs"]
        assert _shape_of(fcn256, "conv1.0") == (4, 454, 454)
        assert round(ratio256, 1) == 1.6, ratio256

    fig = Figure(figsize=(14, 5.6))
    axes = fig.subplots(1, 3)
    _draw_fcn(axes[0], fcn)
    _draw_u(axes[1], unet_totals,
            [_last_shape(unet_totals, "inc.")] + [_last_shape(unet_totals, f"down.{i}.") for i in range(3)],
            _last_shape(unet_totals, "down.3."),
            [_last_shape(unet_totals, f"up.{3 - i}.") for i in range(4)],
            ["2 convs", "pool + 2 convs", "pool + 2 convs", "pool + 2 convs", "pool + 2 convs (bottom)"],
            ["up, concat, 2 convs"] * 4, "concat")
    _draw_u(axes[2], segnet_totals,
            [_shape_of(segnet_totals, kind="MaxPool2d", nth=i) for i in range(4)],
            _shape_of(segnet_totals, kind="MaxPool2d", nth=4),
            [_shape_of(segnet_totals, kind="MaxUnpool2d", nth=4 - i) for i in range(4)],
            [f"conv{i + 1} + pool{i + 1}" for i in range(4)] + ["conv5 + pool5"],
            [f"unpool{i + 1} + convs" for i in range(4)], "indices")
    names = list(summaries)
    for ax, name, totals in zip(axes, names, (fcn, unet_totals, segnet_totals)):
        ax.set_xlim(0, 10.6)
        ax.set_ylim(-0.4, 8.0)
        ax.axis("off")
        ax.set_title(f"{name}: {totals['total_params']:,} params, {totals['total_macs'] / 1e6:.0f} M mult-adds",
                     fontsize=9.5)
    fig.text(0.5, 0.015, "orange: encoder (down), blue: decoder (up), green: skip scores; + sums FCN's class "
             "scores, U-Net concatenates feature maps, SegNet passes only the argmax indices; "
             "C×H×W from models.summary on a 1×3×64×64 input", ha="center", fontsize=8.5)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(fig, out_dir, "models")


# --------------------------------------------------------------------------------------------- 13. Mask R-CNN
DSB2018_ROOT = ROOT.parent / "shared" / "data" / "dsb2018"
LN2 = float(np.log(2.0))


def _host(value) -> np.ndarray:
    """A Tensor's or an array's values as a NumPy array."""
    return value.numpy() if isinstance(value, mts.Tensor) else np.asarray(value)


@functools.lru_cache(maxsize=2)
def mask_rcnn_example(root: Path | None = DSB2018_ROOT) -> dict:
    """One 256×256 instance image, the compact Mask R-CNN (seed 0, untrained) and its intermediate values.

    The image is the first validation image of DSB2018 (nuclei) when ``root`` holds
    the data set, else a :class:`~minitorchseg.data.instances.InstanceShapes` image,
    so that CI can run it. Returned: ``image`` (H, W, 3) uint8, ``target`` (boxes,
    labels, masks), ``source``, the ``model`` (train mode), ``image_list`` and
    ``features`` (the backbone's FPN maps), ``anchors`` (ΣHf·Wf·A, 4) and
    ``num_anchors_per_level``, and ``losses`` (the five losses of one training
    forward, floats). Cached: both Mask R-CNN figures use one call.
    """
    if root is not None and Path(root).is_dir():
        data = NucleiDSB2018(root, "val")
        source = f"DSB2018 val image {data.file_name(0)[:8]}…"
    else:
        data = InstanceShapes(1, size=(256, 256), seed=3, min_objects=8, max_objects=10, min_size=12, max_size=28)
        source = "InstanceShapes (256×256; DSB2018 not found)"
    image, target = data[0]
    manual_seed(0)
    model = maskrcnn_resnet_fpn(num_classes=data.num_classes)
    model.train()
    images, targets = model_inputs([(image, target)])
    with no_grad():
        image_list, transformed = model.transform(images, targets)
        features = model.backbone(image_list.tensors)
        anchors = _host(model.rpn.anchor_generator(image_list, list(features.values()))[0])
        losses = {k: float(v.item()) for k, v in model(images, targets).items()}
    counts = [int(np.prod(f.shape[-2:])) * a for f, a in
              zip(features.values(), model.rpn.anchor_generator.num_anchors_per_location())]
    return dict(image=image, target=target, source=source, model=model, image_list=image_list, features=features,
                anchors=anchors, num_anchors_per_level=counts, losses=losses,
                transformed_boxes=_host(transformed[0]["boxes"]))


def oracle_rpn_proposals(example: dict, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The RPN's anchor labels and its proposals from a stand-in head that knows the ground truth.

    An untrained RPN head proposes arbitrary boxes, so the head's two outputs are
    replaced by what a trained one approximates: per anchor the deltas to its matched
    ground-truth box (``rpn.box_coder.encode``) plus N(0, 0.1²) noise, and the
    objectness logit ``10·(IoU with the best ground-truth box − 0.5)`` plus N(0, 1).
    Everything after the head is the model's own: ``assign_targets_to_anchors`` (the
    labels the objectness loss trains toward: 1 IoU ≥ 0.7 or an object's best anchor,
    0 below 0.3, −1 ignored), ``box_coder.decode`` and ``filter_proposals`` (per-level
    top-n, clip, remove small, NMS at 0.7 per level, post-NMS top-n). Returns
    ``(labels (A,), proposals (P, 4), scores (P,))``.
    """
    rpn, anchors = example["model"].rpn, example["anchors"]
    gt = example["transformed_boxes"].astype(np.float32)
    labels, matched = rpn.assign_targets_to_anchors([anchors], [{"boxes": gt}])
    rng = np.random.default_rng(seed)
    deltas = _host(rpn.box_coder.encode(matched, [anchors])[0])
    deltas = (deltas + rng.normal(0.0, 0.1, deltas.shape)).astype(np.float32)
    best_iou = ops.box_iou(anchors, gt).max(axis=1)
    logits = (10.0 * (best_iou - 0.5) + rng.normal(0.0, 1.0, best_iou.shape)).astype(np.float32)
    decoded = _host(rpn.box_coder.decode(deltas, [anchors])).reshape(1, -1, 4)
    boxes, scores = rpn.filter_proposals(decoded, logits[:, None], example["image_list"].image_sizes,
                                         example["num_anchors_per_level"])
    return labels[0], boxes[0], scores[0]


def _contrast(image: np.ndarray) -> np.ndarray:
    """``image`` stretched to its 99.5th percentile (dark fluorescence images become visible), as floats in [0, 1]."""
    top = max(float(np.percentile(image, 99.5)), 1.0)
    return np.clip(image.astype(np.float64) / top, 0.0, 1.0)


def fig_mask_rcnn_rpn(out_dir: Path = FIGURE_DIR, root: Path | None = DSB2018_ROOT) -> Path:
    """Anchors at one location, the RPN's positive anchors and proposals, and the FPN level of each box.

    ``root``: the DSB2018 folder (``None`` or a missing folder: the shapes image, see :func:`mask_rcnn_example`).
    """
    ex = mask_rcnn_example(root)
    anchors, image = ex["anchors"], ex["image"]
    generator = ex["model"].rpn.anchor_generator
    gt = ex["target"]["boxes"].astype(np.float64)
    # Anchors: row (y·Wf + x)·A + a of level l, after the levels before it; a location that all five levels share.
    cx = cy = 128
    strides = [image.shape[0] // f.shape[-2] for f in ex["features"].values()]
    assert strides == [4, 8, 16, 32, 64], strides
    offsets = np.cumsum([0] + ex["num_anchors_per_level"])
    at_location = []
    for level, (stride, feature) in enumerate(zip(strides, ex["features"].values())):
        wf = feature.shape[-1]
        row = offsets[level] + ((cy // stride) * wf + cx // stride) * 3
        cell = anchors[row:row + 3]
        assert np.array_equal(cell, generator.cell_anchors[level] + cx), "anchor = cell + (x·s, y·s, x·s, y·s)"
        at_location.append(cell)
    half = [tuple(int(v) for v in generator.cell_anchors[level][0, 2:]) for level in range(5)]
    assert half == [(6, 3), (11, 6), (23, 11), (45, 23), (91, 45)], half     # ratio 0.5: (w/2, h/2), quoted
    assert np.array_equal(generator.cell_anchors[2], [[-23, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23]])
    assert len(anchors) == 16368 == 3 * (64 ** 2 + 32 ** 2 + 16 ** 2 + 8 ** 2 + 4 ** 2)

    labels, proposals, scores = oracle_rpn_proposals(ex)
    positive = np.flatnonzero(labels == 1)
    per_object = ops.box_iou(gt, anchors[positive]).argmax(axis=0)
    assert set(per_object.tolist()) == set(range(len(gt))), "every object has at least one positive anchor"
    assert np.all(np.diff(scores) <= 0) and len(proposals) <= ex["model"].rpn.post_nms_top_n()
    best = ops.box_iou(gt, proposals).max(axis=1)
    shown = min(len(proposals), 3 * len(gt))

    mapper = ex["model"].roi_heads.box_roi_pool.map_levels
    assert (mapper.k_min, mapper.k_max) == (2, 5)
    sides = np.array([56.0, 111.0, 112.0, 223.0, 224.0, 447.0, 448.0, 1000.0])
    square = np.stack([np.zeros_like(sides), np.zeros_like(sides), sides, sides], axis=1)
    assert mapper([square]).tolist() == [0, 0, 1, 1, 2, 2, 3, 3], mapper([square])       # quoted on the page
    gt_side = np.sqrt((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))
    assert gt_side.max() < 112 and np.all(mapper([gt]) == 0), "every object of the image pools from level '0'"
    if ex["source"].startswith("DSB2018"):
        assert len(gt) == 24, len(gt)                                                      # quoted on the page

    fig = Figure(figsize=(15.0, 5.4), layout="constrained")
    axes = fig.subplots(1, 3, gridspec_kw=dict(width_ratios=[1, 1, 1.1]))
    level_colours = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
    ax = axes[0]
    ax.imshow(_contrast(image), interpolation="nearest")
    for level, cell in enumerate(at_location):
        for a, (x1, y1, x2, y2) in enumerate(cell):
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec=level_colours[level],
                                   lw=1.4, ls=("-", "--", ":")[a],
                                   label=f"'{list(ex['features'])[level]}' stride {strides[level]}: size "
                                         f"{generator.sizes[level][0]}" if a == 1 else None))
    ax.plot([cx - 0.5], [cy - 0.5], "w+", ms=10, mew=2)
    ax.legend(fontsize=7, loc="lower left", framealpha=0.85)
    zoom = ax.inset_axes((0.64, 0.64, 0.35, 0.35))
    zoom.imshow(_contrast(image), interpolation="nearest")
    for level, cell in enumerate(at_location[:2]):
        for a, (x1, y1, x2, y2) in enumerate(cell):
            zoom.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec=level_colours[level],
                                     lw=1.4, ls=("-", "--", ":")[a]))
    zoom.set_xlim(cx - 14.5, cx + 13.5)
    zoom.set_ylim(cy + 13.5, cy - 14.5)
    _no_ticks(zoom)
    ax.set_title(f"anchors at ({cx}, {cy}), one size per level × ratios\n0.5 solid, 1 dashed, 2 dotted "
                 f"(inset: sizes 8 and 16); {len(anchors)} in all", fontsize=9)
    ax = axes[1]
    ax.imshow(_contrast(image), interpolation="nearest")
    for i in positive:
        x1, y1, x2, y2 = anchors[i]
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="#ffd166", lw=0.6, alpha=0.8))
    for x1, y1, x2, y2 in proposals[:shown]:
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="#ef476f", lw=1.0))
    ax.set_title(f"yellow: the {len(positive)} positive anchors (IoU ≥ 0.7 or an object's best)\n"
                 f"red: top {shown} of {len(proposals)} proposals after NMS (oracle head + noise);\n"
                 f"best proposal IoU per object: median {np.median(best):.2f}", fontsize=9)
    ax = axes[2]
    s = np.geomspace(4, 1200, 600)
    k = np.clip(np.floor(4 + np.log2(s / 224) + 1e-6), 2, 5)
    ax.semilogx(s, k, color="k", lw=1.5, label="k = floor(4 + log2(√(wh) / 224)), clamped to 2..5")
    ax.plot(gt_side, 2 + mapper([gt]), "o", ms=5, mfc="#ffd166", mec="k", mew=0.5,
            label=f"the image's {len(gt)} objects (√(wh) {gt_side.min():.0f}–{gt_side.max():.0f} px)")
    p_side = np.sqrt((proposals[:, 2] - proposals[:, 0]) * (proposals[:, 3] - proposals[:, 1]))
    ax.plot(p_side, 2 + mapper([proposals]) + 0.1, "|", ms=6, color="#ef476f", alpha=0.5,
            label=f"the {len(proposals)} proposals (shifted up 0.1)")
    for edge in (112, 224, 448):
        ax.axvline(edge, color="0.7", lw=0.8, ls="--")
        ax.text(edge * 1.03, 2.2, f"{edge}", fontsize=8, color="0.4")
    ax.set_yticks([2, 3, 4, 5], [f"k={k} → '{n}' (stride {2 ** k})" for k, n in zip(range(2, 6), "0123")], fontsize=8)
    ax.set_xlabel("√(w·h) of the box, image pixels", fontsize=9)
    ax.legend(fontsize=7.5, loc="upper left")
    ax.set_title("the FPN level mapper: which map each box is pooled from", fontsize=9)
    ax.tick_params(labelsize=8)
    for a in axes[:2]:
        _no_ticks(a)
    fig.suptitle(f"Mask R-CNN's first stage on one image ({ex['source']}), compact maskrcnn_resnet_fpn", fontsize=10)
    return _save(fig, out_dir, "mask_rcnn_rpn")


def fig_mask_rcnn_heads(out_dir: Path = FIGURE_DIR, root: Path | None = DSB2018_ROOT) -> Path:
    """RoIPool's and RoIAlign's 7×7 bins on one object at its level's stride, its 28×28 mask target, pasted back.

    ``root`` as in :func:`fig_mask_rcnn_rpn`.
    """
    ex = mask_rcnn_example(root)
    image, target = ex["image"], ex["target"]
    gt = target["boxes"].astype(np.float64)
    area = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
    inside = (gt[:, :2].min(axis=1) >= 16) & (gt[:, 2] <= image.shape[1] - 16) & (gt[:, 3] <= image.shape[0] - 16)
    k = int(np.argmax(np.where(inside, area, -1.0)))                # the largest object away from the border
    box = gt[k]
    stride, output = 4, 7                      # level '0' (every object here, see fig_mask_rcnn_rpn), box head 7×7
    # A 16×16 window of the stride-4 map around the box: shifting by whole cells keeps every rounding the same.
    c0 = np.floor(box[:2] / stride).astype(int) - 2
    local = box - np.array([c0[0], c0[1], c0[0], c0[1]]) * stride
    assert np.all(local >= 2 * stride) and np.all(local <= 14 * stride), local
    r = roi_stride32_errors(local, stride=stride, size=16, output=output)
    bins = _roi_pool_bins(local, 16, output, scale=1.0 / stride)
    reads = bins.sum(axis=(0, 1))                                     # how many bins read each feature cell
    cell = np.floor(local / stride + 0.5) + np.array([0, 0, 1, 1])   # round half away (positive), end cell included
    assert np.array_equal(r["region"], cell * stride), (r["region"], cell)
    assert reads.max() >= 2, "7 rounded bins over fewer cells: some cells are read by two bins"
    if ex["source"].startswith("DSB2018"):                                                # quoted on the page
        assert (r["region"][2:] - r["region"][:2]).tolist() == [32.0, 24.0] and reads.max() == 4, r["region"]
        assert (box[2:] - box[:2]).tolist() == [26.0, 23.0], box
    samples = r["points"][False] + np.array([c0[1], c0[0]]) * stride   # aligned=False, as MultiScaleRoIAlign
    exact = r["points"][True] + np.array([c0[1], c0[0]]) * stride
    assert np.allclose(samples - exact, stride / 2), "aligned=False reads every sample half a cell down-right"
    assert len(samples) == (output * 2) ** 2

    # The mask branch: the object's mask projected on a proposal (its box, jittered), and pasted back.
    rng = np.random.default_rng(4)
    side = np.array([box[2] - box[0], box[3] - box[1]] * 2)
    proposal = (box + rng.normal(0.0, 0.08, 4) * side).astype(np.float32)
    masks = mts.tensor(target["masks"].astype(np.float32))
    projected = project_masks_on_boxes(masks, proposal[None], np.array([k]), 28).numpy()[0]
    assert projected.shape == (28, 28) and 0.0 <= projected.min() and projected.max() <= 1.0
    assert np.any((projected > 0.05) & (projected < 0.95)), "bilinear samples: soft targets at the border"
    h, w = image.shape[:2]
    pasted = paste_masks_in_image(mts.tensor(projected[None, None]), proposal[None], (h, w)).numpy()[0, 0]
    truth = target["masks"][k].astype(bool)
    iou = float(np.logical_and(pasted >= 0.5, truth).sum() / np.logical_or(pasted >= 0.5, truth).sum())
    assert iou > 0.8, iou                                                                   # quoted on the page
    if ex["source"].startswith("DSB2018"):
        assert f"{iou:.2f}" == "0.90", iou
    losses = ex["losses"]
    assert sorted(losses) == sorted(("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness",
                                     "loss_rpn_box_reg"))
    assert abs(losses["loss_objectness"] - LN2) < 0.01, losses     # an untrained RPN says 50/50: ln 2 (quoted)

    pad = 6
    region = r["region"] + np.array([c0[0], c0[1], c0[0], c0[1]]) * stride
    x_lo, y_lo = int(min(box[0], region[0])) - pad, int(min(box[1], region[1])) - pad
    x_hi, y_hi = int(max(box[2], region[2], samples[:, 1].max())) + pad, \
        int(max(box[3], region[3], samples[:, 0].max())) + pad
    shown = _contrast(image)
    fig = Figure(figsize=(10.5, 11.0), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for ax in axes[:2]:
        ax.imshow(shown, interpolation="nearest")
        for v in range(0, max(h, w) + 1, stride):
            ax.axvline(v - 0.5, color="0.55", lw=0.5)
            ax.axhline(v - 0.5, color="0.55", lw=0.5)
        ax.add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), box[2] - box[0], box[3] - box[1], fill=False,
                               ec="w", lw=2))
        ax.set_xlim(x_lo - 0.5, x_hi - 0.5)
        ax.set_ylim(y_hi - 0.5, y_lo - 0.5)
    ax = axes[0]
    for (cy_, cx_), n in np.ndenumerate(reads):
        if n:
            x = (cx_ + c0[0]) * stride - 0.5
            y = (cy_ + c0[1]) * stride - 0.5
            ax.add_patch(Rectangle((x, y), stride, stride, fc=colormaps["YlOrRd"](0.2 * n), alpha=0.5, ec="none"))
            ax.text(x + stride / 2, y + stride / 2, f"{n}", ha="center", va="center", fontsize=8)
    ax.add_patch(Rectangle((region[0] - 0.5, region[1] - 0.5), region[2] - region[0], region[3] - region[1],
                           fill=False, ec="#d62728", lw=2))
    err = r["error"]
    ax.set_title(f"roi_pool, 7×7 bins at stride 4 (grey: feature cells)\nthe box (white) rounded to whole cells (red): "
                 f"edges {err[0]:+.0f}, {err[1]:+.0f}, {err[2]:+.0f}, {err[3]:+.0f} px\n"
                 "number in a cell: how many of the 49 bins read it", fontsize=9)
    ax = axes[1]
    shift = stride / 2
    for i in range(output + 1):
        x = box[0] + i * (box[2] - box[0]) / output + shift - 0.5
        y = box[1] + i * (box[3] - box[1]) / output + shift - 0.5
        ax.plot([x, x], [box[1] + shift - 0.5, box[3] + shift - 0.5], color="#06d6a0", lw=0.8)
        ax.plot([box[0] + shift - 0.5, box[2] + shift - 0.5], [y, y], color="#06d6a0", lw=0.8)
    ax.plot(samples[:, 1] - 0.5, samples[:, 0] - 0.5, "o", ms=2.2, color="#06d6a0")
    ax.set_title("roi_align as MultiScaleRoIAlign calls it (aligned=False):\n7×7 bins (green), 2×2 bilinear samples "
                 "per bin (dots),\nall read ½ cell = 2 px down-right of the box", fontsize=9)
    ax = axes[2]
    ax.imshow(projected, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    _pixel_grid(ax, 28, 28, colour="0.3")
    ax.set_title("project_masks_on_boxes: the object's mask sampled\n28×28 on a proposal (its box jittered): "
                 "the mask head's target", fontsize=9)
    ax = axes[3]
    ax.imshow(shown, interpolation="nearest")
    ax.contour(truth, levels=[0.5], colors="w", linewidths=1.2)
    ax.contour(pasted, levels=[0.5], colors="#ef476f", linewidths=1.2)
    ax.add_patch(Rectangle((proposal[0] - 0.5, proposal[1] - 0.5), proposal[2] - proposal[0],
                           proposal[3] - proposal[1], fill=False, ec="#ffd166", lw=1.2, ls="--"))
    ax.set_xlim(x_lo - 0.5, x_hi - 0.5)
    ax.set_ylim(y_hi - 0.5, y_lo - 0.5)
    ax.set_title(f"paste_masks_in_image: that 28×28 pasted back on the\nproposal (yellow), > 0.5 (red) vs the "
                 f"object's mask (white): IoU {iou:.2f}", fontsize=9)
    for a in axes:
        _no_ticks(a)
    fig.suptitle(f"Mask R-CNN's second stage on one object of {ex['source']}", fontsize=10)
    fig.supxlabel("the untrained network's five losses on this image: "
                  + ", ".join(f"{name} {value:.3f}" for name, value in losses.items()), fontsize=8.5)
    return _save(fig, out_dir, "mask_rcnn_heads")


FIGURES: dict[str, Callable[[Path], Path]] = {
    "tasks": fig_tasks,
    "autograd": fig_autograd,
    "im2col": fig_im2col,
    "winograd": fig_winograd,
    "checkerboard": fig_checkerboard,
    "transposed_views": fig_transposed_views,
    "unpool": fig_unpool,
    "bilinear": fig_bilinear,
    "bilinear_weights": fig_bilinear_weights,
    "roi_align": fig_roi_align,
    "roi_stride32": fig_roi_stride32,
    "nms": fig_nms,
    "metrics": fig_metrics,
    "metrics_multiclass": fig_metrics_multiclass,
    "kmeans": fig_kmeans,
    "models": fig_models,
    "encoder_decoder": fig_encoder_decoder,
    "fcn_fc": fig_fcn_fc,
    "fcn_skips": fig_fcn_skips,
    "mask_rcnn_rpn": fig_mask_rcnn_rpn,
    "mask_rcnn_heads": fig_mask_rcnn_heads,
}


# The small mode (what tests/test_docs.py runs) draws every figure, the two costliest with less work:
# U-Net at a quarter of the paper's channels, and the model summaries at 64×64 only.
SMALL_ARGS: dict[str, dict] = {"encoder_decoder": dict(base=16), "models": dict(at_256=False)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(FIGURES), metavar="NAME",
                        help=f"make only this figure (repeatable); one of {', '.join(FIGURES)}")
    parser.add_argument("--small", action="store_true",
                        help=f"less work for {', '.join(SMALL_ARGS)} (fewer channels, one size), as the tests do")
    parser.add_argument("--out", type=Path, default=FIGURE_DIR, help="output directory (default docs/figures)")
    args = parser.parse_args(argv)
    for name in args.only or list(FIGURES):
        start = time.perf_counter()
        path = FIGURES[name](args.out, **(SMALL_ARGS.get(name, {}) if args.small else {}))
        kib = path.stat().st_size / 1024
        print(f"{name:<18} {path}  {kib:6.1f} KiB  {time.perf_counter() - start:5.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
