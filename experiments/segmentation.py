"""Semantic segmentation with a U-Net, 2-d and 3-d: procedural scenes, MNIST-seg canvases,
or a user's own ``.npz``.

Commands (from the repository root; ``--help`` lists every option with its default;
``--seed`` 0, 1, 2 for the numbers below):

    python experiments/segmentation.py                                # procedural 2-d scenes
    python experiments/segmentation.py --dims 3                       # procedural 3-d volumes
    python experiments/segmentation.py --dataset mnist-seg --data ../shared/data/mnist
    python experiments/segmentation.py --dataset mnist-seg --data ../shared/data/mnist \\
        --no-skip                                                     # the same net, no skips
    python experiments/segmentation.py --dataset npz --data FILE.npz  # a user's own data

Targets (mean over seeds 0, 1, 2, default settings): procedural 2-d mean IoU >= 0.90,
procedural 3-d >= 0.85, MNIST-seg >= 0.85 and clearly above the network without skip
connections.

Measured on the project's 2-core CPUs (procedural: Intel Xeon; MNIST-seg: AMD EPYC, each
seed's run pinned to one core; jax 0.10.2) shared with other jobs, so wall times are upper
bounds (CPU time, user + sys of the whole process, in brackets); test mean IoU as mean +-
sample std over the seeds, against the all-background prediction:

    | data, settings           | seeds   | test mean IoU  | all background | wall (CPU)          |
    |--------------------------|---------|----------------|----------------|---------------------|
    | procedural 2-d (default) | 0, 1, 2 | 0.957 +- 0.002 | 0.190          | 255-608 s (95-128)  |
    | procedural 3-d, --dims 3 | 0, 1, 2 | 0.970 +- 0.006 | 0.313          | 339-451 s (134-160) |
    | MNIST-seg (default)      | 0, 1, 2 | 0.951 +- 0.012 | 0.086          | 653-656 s (650-653) |
    | MNIST-seg, --no-skip     | 0       | 0.674          | 0.086          | 556 s (554)         |

    Procedural 2-d per class (mean of the seeds): background 0.992, disk 0.973, striped
    square 0.954, checkered triangle 0.908; pixel accuracy 0.991; 482,500 parameters.
    Procedural 3-d (16^3, U-Net depth 2, width 16, 339,603 parameters; mean of the seeds):
    background 0.998, ball 0.963, striped box 0.950; voxel accuracy 0.998.

    MNIST-seg (64x64 canvases of two digits whose ink stays more than 2 pixels apart, U-Net
    depth 4, width 8, 486,499 parameters, cross-entropy plus soft Dice, 8,000 canvases, 15
    epochs): seeds 0, 1, 2 score 0.963, 0.939, 0.953; per class (mean of the seeds)
    background 0.999, digits 0.922-0.965; pixel accuracy 0.998, mean Dice 0.968-0.981.
    Seed 1 learns later (training loss 0.71 after 7 epochs, against 0.09 for seed 0), and
    with 10 epochs it stayed behind (0.871; the three seeds 0.921 +- 0.043). The skip
    connections are the point of a U-Net: the same net without them (``--no-skip``, 437,539
    parameters) scores 0.674 on seed 0 (pixel accuracy 0.978), 0.29 below the U-Net on the
    same seed.
    On canvases whose digits may overlap (``load_mnist_seg(gap=None)``), the later digit
    owns the shared pixels, which the image does not show; there the same training scored
    0.805 and 0.536 with 10 epochs (seeds 0, 1).

Data. Procedural scenes (:func:`jaxcnn.data.make_shapes2d` / ``make_shapes3d``): 2-4
overlapping disks (flat grey), striped squares and checkered triangles on a shaded
background with Gaussian noise (3-d: balls and striped boxes), per-pixel masks of the shape
on top; train and test scenes are independent streams of ``data_seed`` (default: the run's
``--seed``). MNIST-seg (:func:`jaxcnn.data.load_mnist_seg`): canvases (64x64 by default)
with two MNIST digits each at random positions, their ink more than 2 pixels apart, train
digits for the train split and test digits for the test split, 11 classes (background + 10
digits, a pixel belongs to a digit where its intensity exceeds 0.5). ``npz``:
:func:`jaxcnn.data.load_segmentation_npz` (a ``val_*`` split, when present, picks the best
epoch by validation loss; ``--ignore-index`` marks unlabelled pixels). Nothing is augmented (a geometric augmentation would have to move
the masks too).

Model and training: :func:`jaxcnn.models.unet` (two ``conv 3 + batch norm + relu`` per
level, max pooling down, 2x2 transposed convolutions up, the encoder's features
concatenated at each level; ``--no-skip`` drops the concatenations and keeps everything
else), per-pixel cross-entropy (``--loss cross_entropy+dice`` adds soft Dice, the default
for MNIST-seg), AdamW on a one-cycle cosine schedule; the weights after the last epoch are
tested. Scores over the whole test set come from one confusion matrix
(:func:`jaxcnn.train.segmentation_scores`), not a mean of per-image scores;
``background_miou`` is the mean IoU of the all-background prediction, the floor to beat.

The run folder (``--workdir``, default ``runs/segmentation/<data>[-noskip]-seed<seed>``)
holds ``config.json`` (``model: unet`` and ``model_kwargs``, so
:func:`jaxcnn.train.load_run` rebuilds the net), ``run.json``, ``metrics.jsonl``,
``checkpoints/``, ``result.json`` (``test_miou``, ``test_pixel_accuracy``, ``test_iou`` per
class, ``test_mean_dice``, ``test_confusion_matrix``, ``background_miou``, ``num_params``,
``wall_time_s``, ``cpu_time_s``) and the plots ``predictions.png`` (image / true mask /
predicted mask for a few test images; 3-d: the depth slice with the most foreground) and
``curves.png``. ``--resume`` continues a run from its folder.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Literal, Optional

import jax
import numpy as np
import optax

import _cli
from _cli import option, per_dataset
from jaxcnn import distributed
from jaxcnn.data import (SegmentationData, load_mnist_seg, load_segmentation_npz,
                         make_shapes2d, make_shapes3d)
from jaxcnn.models import unet
from jaxcnn.train import (fit, num_params, pixel_cross_entropy, predict, segmentation_scores,
                          soft_dice_loss, update_result)

# ------------------------------------------------------------------------------- config

PRESETS = {
    "procedural2d": dict(n_train=2000, n_test=500, size=32, depth=3, base_width=16, epochs=10,
                         batch_size=32, lr=3e-3, loss="cross_entropy"),
    "procedural3d": dict(n_train=400, n_test=100, size=16, depth=2, base_width=16, epochs=20,
                         batch_size=16, lr=3e-3, loss="cross_entropy"),
    "mnist-seg": dict(n_train=8000, n_test=2000, size=64, depth=4, base_width=8, epochs=15,
                      batch_size=32, lr=3e-3, loss="cross_entropy+dice"),
    "npz": dict(n_train=None, n_test=None, size=None, depth=3, base_width=16, epochs=30,
                batch_size=16, lr=1e-3, loss="cross_entropy"),
}


def preset(name: str) -> str:
    """A field's default per preset (``procedural2d``, ``procedural3d``, ``mnist-seg``,
    ``npz``), for ``--help``; the generated-data fields do not apply to npz."""
    shown = {k: v for k, v in PRESETS.items() if v[name] is not None}
    return per_dataset(shown, name)


@dataclasses.dataclass
class Config(_cli.RunOptions):
    """Train a U-Net to segment images or volumes; options left unset take the data's
    preset (procedural2d, procedural3d with --dims 3, mnist-seg, npz)."""

    dataset: Literal["procedural", "mnist-seg", "npz"] = option(
        "procedural", "The data: procedural scenes generated per seed (offline), canvases of "
                      "MNIST digits, or a .npz file with images and masks.")
    dims: Literal[2, 3] = option(2, "Procedural data: 2-d scenes or 3-d volumes (npz: taken "
                                    "from the file).")
    data: Optional[str] = option(
        None, "Where the data is: the MNIST folder (mnist-seg) or the .npz file (npz).",
        shown="$JAXCNN_DATA/mnist or ~/.cache/jaxcnn/mnist for mnist-seg (downloaded there "
              "when missing); required for npz", metavar="PATH")
    num_classes: Optional[int] = option(None, "npz: the number of classes.",
                                        shown="the largest label + 1")
    ignore_index: Optional[int] = option(None, "npz: the label of unlabelled pixels, left out "
                                               "of the loss and the scores (e.g. 255).",
                                         shown="none")
    n_train: Optional[int] = option(None, "Procedural and mnist-seg: training images "
                                          "(volumes) generated.", shown=preset("n_train"))
    n_test: Optional[int] = option(None, "Procedural and mnist-seg: test images (volumes) "
                                         "generated.", shown=preset("n_test"))
    size: Optional[int] = option(None, "Procedural and mnist-seg: side of the square image "
                                       "(cube).", shown=preset("size"))
    data_seed: Optional[int] = option(None, "Procedural and mnist-seg: seed of the generated "
                                            "data.", shown="--seed")
    depth: Optional[int] = option(None, "U-Net poolings.", shown=preset("depth"))
    base_width: Optional[int] = option(None, "Channels at the top level, doubling per level.",
                                       shown=preset("base_width"))
    norm: Literal["batch", "group", "none"] = option("batch", "Normalisation after each "
                                                              "convolution.")
    up: Literal["transpose", "upsample"] = option(
        "transpose", "Up-sampling: 2x2 transposed convolution, or nearest up-sampling and a "
                     "3x3 convolution.")
    skip: bool = option(True, "Skip connections (--no-skip: the same encoder-decoder "
                              "without them).")
    loss: Optional[Literal["cross_entropy", "cross_entropy+dice"]] = option(
        None, "Per-pixel cross-entropy, or cross-entropy plus soft Dice (the mean over "
              "classes, so each class counts alike).", shown=preset("loss"))
    epochs: Optional[int] = option(None, "Passes over the training set.",
                                   shown=preset("epochs"))
    batch_size: Optional[int] = option(None, "Images (volumes) per training step.",
                                       shown=preset("batch_size"))
    lr: Optional[float] = option(None, "Peak learning rate of the one-cycle cosine schedule "
                                       "(AdamW).", shown=preset("lr"))
    weight_decay: float = option(1e-4, "AdamW's decoupled weight decay.")
    workdir: Optional[str] = _cli.run_folder("runs/segmentation/<data>[-noskip]-seed<seed>")


def preset_name(cfg: Config) -> str:
    return f"procedural{cfg.dims}d" if cfg.dataset == "procedural" else cfg.dataset


def resolve(cfg: Config) -> Config:
    """The config with every unset option replaced by the data's preset (``data_seed`` by
    ``seed``), and the default run folder."""
    fields = _cli.unset_from(cfg, PRESETS[preset_name(cfg)])
    if cfg.data_seed is None:
        fields["data_seed"] = cfg.seed
    if cfg.workdir is None:
        name = Path(cfg.data or "").stem if cfg.dataset == "npz" else preset_name(cfg)
        fields["workdir"] = (f"runs/segmentation/{name}{'' if cfg.skip else '-noskip'}"
                             f"-seed{cfg.seed}")
    return dataclasses.replace(cfg, **fields)


# ------------------------------------------------------------------------------- data


def load_data(cfg: Config) -> SegmentationData:
    """The train/test (and for npz, optional val) images and masks the config names."""
    if cfg.dataset == "procedural":
        make = make_shapes2d if cfg.dims == 2 else make_shapes3d
        return make(cfg.n_train, cfg.n_test, size=cfg.size, seed=cfg.data_seed)
    if cfg.dataset == "mnist-seg":
        return load_mnist_seg(cfg.data, n_train=cfg.n_train, n_test=cfg.n_test,
                              size=cfg.size, seed=cfg.data_seed)
    return load_segmentation_npz(cfg.data, num_classes=cfg.num_classes,
                                 ignore_index=cfg.ignore_index)


def confusion(y, pred, num_classes, ignore_index=None):
    """The pixel confusion matrix (row = true class) of integer maps, ``ignore_index``
    pixels left out."""
    keep = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    flat = y[keep].astype(np.int64) * num_classes + pred[keep]
    return np.bincount(flat, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def background_miou(y, num_classes, ignore_index=None) -> float:
    """Mean IoU of predicting class 0 everywhere: the floor a segmenter must beat."""
    return segmentation_scores(confusion(y, np.zeros_like(y), num_classes,
                                         ignore_index))["mean_iou"]


# ------------------------------------------------------------------------------- model


@dataclasses.dataclass(frozen=True)
class PixelLoss:
    """``loss(logits, masks, example_mask)`` for :func:`jaxcnn.train.fit`: per-pixel
    cross-entropy, plus soft Dice for ``"cross_entropy+dice"``. A dataclass, so its repr
    (saved in ``config.json`` and compared on ``--resume``) names the settings."""

    kind: str = "cross_entropy"
    ignore_index: Optional[int] = None

    def __call__(self, logits, labels, mask):
        value = pixel_cross_entropy(logits, labels, ignore_index=self.ignore_index, mask=mask)
        if self.kind == "cross_entropy+dice":
            value = value + soft_dice_loss(logits, labels, ignore_index=self.ignore_index,
                                           mask=mask)
        return value


def make_optimizer(cfg: Config, steps: int):
    schedule = optax.cosine_onecycle_schedule(max(steps, 1), cfg.lr)
    return optax.adamw(schedule, weight_decay=cfg.weight_decay)


# ------------------------------------------------------------------------------- plots


def mask_colours(num_classes):
    """RGB per class: black background, tab10/tab20 colours, white for ignored pixels."""
    from matplotlib import colormaps

    base = colormaps["tab10" if num_classes <= 11 else "tab20"]
    return np.array([(0.0, 0.0, 0.0)] + [base(i % base.N)[:3] for i in range(num_classes - 1)]
                    + [(1.0, 1.0, 1.0)])


def show_slice(y):
    """``(index, label)``: all of a 2-d image; of a volume, the depth slice with the most
    foreground in its true mask."""
    if y.ndim == 2:
        return slice(None), ""
    d = int(np.argmax((y > 0).reshape(len(y), -1).sum(1)))
    return d, f" (slice {d})"


def plot_predictions(x, y, pred, class_names, path, title):
    """Rows of image / true mask / predicted mask with each image's mean IoU."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    c = len(class_names)
    colours = mask_colours(c)
    paint = lambda m: colours[np.where((m < 0) | (m >= c), c, m)]  # noqa: E731
    n = len(x)
    fig = Figure(figsize=(5.4, 1.8 * n + 0.8), layout="constrained")
    axes = fig.subplots(n, 3, squeeze=False)
    for r in range(n):
        keep = (y[r] >= 0) & (y[r] < c)
        miou = segmentation_scores(confusion(y[r][keep], pred[r][keep], c))["mean_iou"]
        at, where = show_slice(y[r])
        image = x[r][at]
        panels = (image[..., 0] if image.shape[-1] == 1 else image, paint(y[r][at]),
                  paint(pred[r][at]))
        for col, (panel, name) in enumerate(zip(panels, ("image", "true mask", "predicted"))):
            ax = axes[r, col]
            ax.imshow(panel, cmap="gray" if col == 0 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
        axes[r, 0].set_ylabel(f"mean IoU {miou:.3f}{where}", fontsize=7)
    patches = [Patch(color=colours[i], label=name) for i, name in enumerate(class_names)]
    fig.legend(handles=patches,
               loc="outside lower center", ncol=min(c, 6), fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=80)


def plot_loss(history, path, title):
    """The mean training loss of each epoch (and the validation loss, when there is one)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0, 2.8), layout="constrained")
    ax = fig.subplots()
    for key in ("train_loss", "val_loss"):
        points = [(row["epoch"], row[key]) for row in history if key in row]
        if points:
            ax.plot(*zip(*points), marker="o", label=key.replace("_", " "))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=80)


def write_plots(cfg, data, pred, history, workdir, count=6):
    plot_predictions(data.x_test[:count], data.y_test[:count], pred[:count], data.class_names,
                     workdir / "predictions.png", f"{preset_name(cfg)} U-Net"
                     f"{'' if cfg.skip else ' without skips'}: test images")
    plot_loss(history, workdir / "curves.png", f"{preset_name(cfg)}: training loss")


# ------------------------------------------------------------------------------- train


def train(cfg: Config, mesh) -> dict:
    """Loads the data, trains, tests on the whole test set, writes the result and plots."""
    t0, c0 = time.perf_counter(), time.process_time()
    data = load_data(cfg)
    dims = data.x_train.ndim - 2
    cfg = dataclasses.replace(cfg, dims=dims)
    num_classes = len(data.class_names)
    model_kwargs = dict(num_classes=num_classes, depth=cfg.depth, base_width=cfg.base_width,
                        norm=cfg.norm, up=cfg.up, skip=cfg.skip, ndim=dims)
    model = unet(**model_kwargs)
    steps = cfg.epochs * (len(data.x_train) // cfg.batch_size)
    val = None if data.x_val is None else (data.x_val, data.y_val)
    print(f"{preset_name(cfg)}: {len(data.x_train)} train / {len(data.x_test)} test "
          f"{data.x_train.shape[1:]}, {num_classes} classes; U-Net depth {cfg.depth}, "
          f"width {cfg.base_width}, skip {cfg.skip}", flush=True)
    result = fit(model, make_optimizer(cfg, steps), (data.x_train, data.y_train), val,
                 epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                 workdir=cfg.workdir, resume=cfg.resume,
                 config={**dataclasses.asdict(cfg), "model": "unet",
                         "model_kwargs": model_kwargs, "class_names": data.class_names},
                 task="regression", loss=PixelLoss(cfg.loss, cfg.ignore_index),
                 progress=cfg.progress, log_every=20, mesh=mesh, loggers=_cli.loggers(cfg))
    params, state = distributed.to_host((result.train_state.params, result.train_state.state))
    workdir = Path(cfg.workdir)
    # the whole test set at once: one confusion matrix, not a mean of per-batch scores
    logits = predict(model, params, state, data.x_test, batch_size=cfg.batch_size)
    pred = np.argmax(np.asarray(logits), axis=-1)
    matrix = confusion(data.y_test, pred, num_classes, cfg.ignore_index)
    scores = segmentation_scores(matrix)
    summary = dict(
        test_miou=scores["mean_iou"], test_pixel_accuracy=scores["pixel_accuracy"],
        test_iou=scores["iou"], test_mean_dice=scores["mean_dice"],
        test_confusion_matrix=matrix.tolist(),
        background_miou=background_miou(data.y_test, num_classes, cfg.ignore_index),
        class_names=list(data.class_names), num_params=num_params(params),
        train_size=len(data.x_train), test_size=len(data.x_test),
        wall_time_s=round(time.perf_counter() - t0, 1),
        cpu_time_s=round(time.process_time() - c0, 1),
        devices=jax.device_count(), processes=jax.process_count())
    if not _cli.is_main_process():
        return summary
    summary = update_result(workdir, summary)
    if cfg.plots:
        write_plots(cfg, data, pred, result.history, workdir)
    print(f"test mean IoU {summary['test_miou']:.4f} (all background: "
          f"{summary['background_miou']:.4f}), pixel accuracy "
          f"{summary['test_pixel_accuracy']:.4f}; {summary['num_params']:,} params; "
          f"{summary['wall_time_s']:.0f} s; run folder: {workdir}")
    return summary


def main(argv=None) -> dict:
    parser = _cli.parser(Config, __doc__, without=("ensemble",))
    cfg = _cli.parse(parser, Config, argv)
    if cfg.dataset == "mnist-seg" and cfg.dims != 2:
        parser.error(f"--dims must be 2 for --dataset mnist-seg, got {cfg.dims}")
    if cfg.dataset == "npz" and cfg.data is None:
        parser.error("--dataset npz needs --data, the .npz file with images and masks")
    return _cli.run(parser, resolve(cfg), train)


if __name__ == "__main__":
    main()
