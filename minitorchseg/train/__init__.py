"""Training, evaluation and prediction for segmentation models, one module per job.

::

    model = get_model("unet", num_classes=4, base_channels=8, depth=2)
    history = train(model, train_set, val_set, epochs=5, out_dir="runs/shapes",
                    model_name="unet", model_kwargs=dict(num_classes=4, base_channels=8, depth=2))
    model, ckpt = load_checkpoint("runs/shapes/checkpoint.npz")     # rebuilt from the file alone
    results = evaluate(model, val_set, mean=ckpt["data"]["mean"], std=ckpt["data"]["std"])
    labels = predict(model, image, mean=..., std=...)               # (H, W) int64

One epoch of :func:`train`:

1. the training set is visited in the order of ``DataLoader(seed)`` for that epoch,
   each item randomly cropped (``crop``) and flipped (``flip``), then normalised
   ``(image / 255 - mean) / std``;
2. per batch: logits = model(x); loss = cross_entropy(logits, y, class weights,
   ignore_index); backward; optimiser step. A batch with no labelled pixel (every
   pixel ``ignore_index``, or of classes of weight 0: its mean loss is 0/0) is
   skipped, and a warning counts the skipped batches of the epoch; an epoch that
   skips them all is an error. A non-finite loss stops the run (the learning rate
   is blamed only when earlier updates were finite). On a terminal a tqdm bar shows
   the running loss and images per second; in a log file or CI
   (:mod:`.progress`) one line per epoch (and one every 30 s of a long epoch);
3. the model is evaluated on the validation set (:func:`evaluate`: a confusion
   matrix over every pixel, :class:`~minitorchseg.metrics.ConfusionMatrix`);
4. the checkpoint ``out_dir/checkpoint.npz`` is written atomically with
   :func:`minitorchseg.save` (and ``best.npz`` when the validation mIoU improved),
   then ``metrics.csv``, ``metrics.json`` and ``curve.png`` (loss and mIoU per epoch).

A checkpoint is a dict (see :func:`make_checkpoint`) holding the weights, the
optimiser state, the epochs done, the model's name and constructor arguments, the
data's classes, palette, ignore label and normalisation, the training settings,
the metric history and the state of the global random generator. With
``resume=True`` training continues from ``out_dir/checkpoint.npz``: a run of 2
epochs equals a run of 1 epoch resumed for 1 more, weight for weight.

Every file is written to a temporary name in its folder and renamed into place,
so a crash (or Ctrl-C) at any moment leaves the previous version of each file
or the new one, never half of one.

The modules: :mod:`.config` (:class:`TrainConfig`, the settings and their
defaults, the optimiser and the learning-rate schedule), :mod:`.checkpoint` (the
checkpoint format), :mod:`.reporting` (CSV, JSON and the curve), :mod:`.progress`
(progress bars and lines) and :mod:`.loop` (train, evaluate, predict).
"""

from .checkpoint import (
    BEST_NAME,
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    build_model,
    check_checkpoint_model,
    load_checkpoint,
    make_checkpoint,
    read_checkpoint,
)
from .config import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LR_SCHEDULES,
    OPTIMIZERS,
    TrainConfig,
    make_optimizer,
    scheduled_lr,
)
from .loop import evaluate, overlay, predict, train
from .reporting import plot_curves, write_metrics

__all__ = [
    "TrainConfig", "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "BEST_NAME", "IMAGENET_MEAN", "IMAGENET_STD",
    "OPTIMIZERS", "LR_SCHEDULES", "build_model", "make_optimizer", "scheduled_lr", "make_checkpoint",
    "read_checkpoint", "load_checkpoint", "check_checkpoint_model", "train", "evaluate", "predict", "overlay",
    "write_metrics", "plot_curves",
]
