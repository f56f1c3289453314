"""Time-series classification: MNIST-1D and UCR/UEA sets with FCN, ResNet1D, TCN or a small CNN.

Commands (defaults: no per-dataset tuning; ``--seed`` 0, 1, 2 for the numbers below):

    python experiments/timeseries_classification.py                        # MNIST-1D, mnist1d_cnn
    python experiments/timeseries_classification.py --dataset ucr --name GunPoint \\
        --data-dir /work/shared/data/ucr                                    # FCN
    python experiments/timeseries_classification.py --model tcn --ensemble 3

Measured: test accuracy %, mean +- std (sample std) over seeds 0, 1, 2, default settings;
wall time per run (load, train, test, plots) on the 2-core CPU while other jobs kept its
load average at 15-18, so these are upper bounds (CPU user time in brackets); jax 0.10.

    ================  ===========  ===============  ===================  ================
    dataset           model        accuracy         published            wall per run
    ================  ===========  ===============  ===================  ================
    MNIST-1D          mnist1d_cnn  99.07 +- 0.21    CNN 94, GRU 91       658 s (~120 s)
    GunPoint          fcn          100.00 +- 0.00   FCN 100.0, Res 99.1  209 s (~72 s)
    ItalyPowerDemand  fcn          96.11 +- 0.19    FCN 96.1, Res 96.3   86 s (~35 s)
    ArrowHead         fcn          77.14 +- 0.57    FCN 84.3, Res 84.5   170 s (~73 s)
    OSULeaf           fcn          98.35 (seed 0)   FCN 97.7, Res 97.9   796 s (431 s)
    ================  ===========  ===============  ===================  ================

Published UCR numbers: Ismail Fawaz et al. 2019, mean of 10 runs of 2000 epochs (FCN).
ArrowHead misses FCN's 84.3 by 7 points: with 36 training series the batch is 3 and
the 2000 steps are 170 passes, against Ismail Fawaz et al.'s 2000 epochs (24000 steps).
OSULeaf (200 series of length 427): only seed 0 had finished when this was written.

Defaults. MNIST-1D (4000 train / 1000 test, length 40): ``mnist1d_cnn``, AdamW (weight
decay 1e-4), one-cycle cosine schedule peaking at 3e-3, batch 128, 30 epochs. UCR/UEA: FCN,
Adam with the same one-cycle schedule peaking at 1e-3, batch ``min(16, N_train // 10)``
(Ismail Fawaz et al. 2019), as many epochs as give ``--steps`` (default 2000) updates;
per-series z-normalisation; variable lengths resampled to the longest training series
(see :mod:`jaxcnn.data.timeseries`). No validation split is taken from the small UCR
training sets: the final weights are tested, as Ismail Fawaz et al. test the weights of
the lowest training loss.

The run folder holds ``config.json`` (this config, resolved), ``run.json`` (git commit),
``metrics.jsonl``, ``checkpoints/``, ``result.json`` (``test_accuracy``, wall time) and the
plots: ``series.png`` (a few series per class), ``filters.png`` (first-layer filters),
``cam.png`` (class activation along time for one test series) and ``curves.png``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Literal, Optional

import jax
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jaxcnn.data.timeseries import TimeSeriesData, load_mnist1d, load_ucr  # noqa: E402
from jaxcnn.models import get_model  # noqa: E402
from jaxcnn.train import fit, num_params, parse_config  # noqa: E402


@dataclasses.dataclass
class Config:
    """Time-series classification (MNIST-1D or a UCR/UEA dataset); None = dataset default."""

    dataset: Literal["mnist1d", "ucr"] = "mnist1d"
    name: str = "GunPoint"  # UCR/UEA dataset: finds NAME_TRAIN.ts/.tsv in data_dir[/NAME]
    data_dir: str = "data/ucr"
    model: Optional[Literal["fcn", "resnet1d", "tcn", "mnist1d_cnn"]] = None
    znorm: bool = True  # per-series z-normalisation (UCR/UEA)
    variable_length: Literal["resample", "pad"] = "resample"
    num_samples: int = 5000  # MNIST-1D size (5000: the standard 4000/1000 split)
    epochs: Optional[int] = None  # None: 30 (MNIST-1D) or enough for `steps` updates (UCR)
    steps: int = 2000  # UCR: number of updates when epochs is None
    epoch_steps: int = 100  # UCR: an epoch is this many steps, over shuffled copies of train
    batch_size: Optional[int] = None  # None: 128 (MNIST-1D) or min(16, N_train // 10)
    lr: Optional[float] = None  # peak of the one-cycle schedule; None: 3e-3 / 1e-3
    weight_decay: Optional[float] = None  # AdamW; None: 1e-4 (MNIST-1D) or 0 (UCR)
    seed: int = 0
    ensemble: int = 1
    workdir: Optional[str] = None  # None: runs/timeseries/<dataset>_<model>_seed<seed>
    resume: bool = False
    plots: bool = True


PRESETS = {
    "mnist1d": dict(model="mnist1d_cnn", epochs=30, batch_size=128, lr=3e-3, weight_decay=1e-4),
    "ucr": dict(model="fcn", epochs=None, batch_size=16, lr=1e-3, weight_decay=0.0),
}


def load_data(cfg: Config) -> TimeSeriesData:
    if cfg.dataset == "mnist1d":
        return load_mnist1d(num_samples=cfg.num_samples)
    return load_ucr(cfg.name, cfg.data_dir, znorm=cfg.znorm, variable_length=cfg.variable_length)


def copies_per_epoch(cfg: Config, n: int) -> int:
    """How many shuffled copies of a training set of ``n`` series make one epoch: UCR sets
    are so small (GunPoint: 10 steps per pass) that checkpointing and logging after every
    pass would cost more than the training, so an epoch holds ``epoch_steps`` steps."""
    if cfg.dataset == "mnist1d":
        return 1
    return max(1, math.ceil(cfg.epoch_steps * cfg.batch_size / n))


def resolve(cfg: Config, data: TimeSeriesData) -> Config:
    """``cfg`` with every ``None`` replaced by the dataset's default."""
    preset, n = PRESETS[cfg.dataset], len(data.x_train)
    batch = cfg.batch_size or (preset["batch_size"] if cfg.dataset == "mnist1d"
                               else max(1, min(preset["batch_size"], n // 10)))
    per_epoch = n * copies_per_epoch(dataclasses.replace(cfg, batch_size=batch), n) // batch
    epochs = cfg.epochs or preset["epochs"] or math.ceil(cfg.steps / per_epoch)
    name = cfg.name if cfg.dataset == "ucr" else "mnist1d"
    model = cfg.model or preset["model"]
    return dataclasses.replace(
        cfg, model=model, batch_size=batch, epochs=epochs,
        lr=cfg.lr if cfg.lr is not None else preset["lr"],
        weight_decay=cfg.weight_decay if cfg.weight_decay is not None else preset["weight_decay"],
        workdir=cfg.workdir or f"runs/timeseries/{name}_{model}_seed{cfg.seed}")


def make_optimizer(cfg: Config, steps_per_epoch: int):
    schedule = optax.cosine_onecycle_schedule(cfg.epochs * steps_per_epoch, cfg.lr)
    return optax.adamw(schedule, weight_decay=cfg.weight_decay)


# ------------------------------------------------------------------------------- plots


def first_kernel(params):
    """The first convolution kernel ``(k, C_in, C_out)`` in the model's feature part."""
    leaves = jax.tree_util.tree_flatten_with_path(params["features_0"])[0]
    kernels = [v for p, v in leaves if getattr(p[-1], "key", None) == "kernel" and v.ndim == 3]
    return np.asarray(kernels[0])


def class_activation(model_name, params, state, x):
    """CAM of every class along time ``(L', K)`` for one series ``x`` ``(L, C)``:
    the features before global average pooling times the head's kernel."""
    features = get_model(model_name, num_classes=None)
    a, _ = features.apply(params["features_0"], state["features_0"], x[None], train=False)
    return np.asarray(a[0]) @ np.asarray(params["head_2"]["kernel"])


def save_plots(cfg: Config, data: TimeSeriesData, params, state, history, workdir: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from _plots import plot_curves

    if cfg.ensemble > 1:  # plot the first member
        params, state = jax.tree_util.tree_map(lambda a: a[0], (params, state))
    classes = list(range(min(len(data.class_names), 10)))
    cols = min(len(classes), 5)
    rows = math.ceil(len(classes) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 1.9 * rows), sharex=True,
                             sharey=True, squeeze=False)
    for ax in axes.flat[len(classes):]:
        ax.set_axis_off()
    for k, ax in zip(classes, axes.flat):
        for i in np.flatnonzero(data.y_train == k)[:3]:
            ax.plot(data.x_train[i, :, 0], lw=1)
        ax.set_title(f"class {data.class_names[k]}", fontsize=9)
    fig.suptitle(f"{cfg.name if cfg.dataset == 'ucr' else 'MNIST-1D'}: three training series "
                 "per class (channel 0)", fontsize=10)
    fig.tight_layout()
    fig.savefig(workdir / "series.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    kernel = first_kernel(params)
    n = min(kernel.shape[-1], 32)
    cols = 8
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(12, 1.3 * math.ceil(n / cols)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.plot(kernel[:, :, i], lw=1)
    fig.suptitle(f"first-layer filters (size {kernel.shape[0]}, {n} of {kernel.shape[-1]})")
    fig.savefig(workdir / "filters.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    x = data.x_test[0]
    cam = class_activation(cfg.model, params, state, x)
    pred = int((cam.mean(0) + np.asarray(params["head_2"]["bias"])).argmax())
    t = np.linspace(0, len(x) - 1, len(cam))
    weight = np.interp(np.arange(len(x)), t, cam[:, pred])
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(x[:, 0], color="0.7", lw=1, zorder=1)
    sc = ax.scatter(np.arange(len(x)), x[:, 0], c=weight, cmap="jet", s=12, zorder=2)
    fig.colorbar(sc, ax=ax, label="class activation")
    ax.set(title=f"CAM of the predicted class {data.class_names[pred]} (true "
           f"{data.class_names[data.y_test[0]]}), test series 0", xlabel="time")
    fig.savefig(workdir / "cam.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    plot_curves(history, workdir / "curves.png")


# ------------------------------------------------------------------------------- main


def main(argv=None):
    cfg = parse_config(Config, argv)
    t0 = time.perf_counter()
    data = load_data(cfg)
    cfg = resolve(cfg, data)
    model = get_model(cfg.model, num_classes=len(data.class_names))
    copies = copies_per_epoch(cfg, len(data.x_train))
    x_train, y_train = np.tile(data.x_train, (copies, 1, 1)), np.tile(data.y_train, copies)
    steps_per_epoch = len(x_train) // cfg.batch_size
    result = fit(model, make_optimizer(cfg, steps_per_epoch), (x_train, y_train),
                 test=(data.x_test, data.y_test), epochs=cfg.epochs, batch_size=cfg.batch_size,
                 seed=cfg.seed, workdir=cfg.workdir, resume=cfg.resume, ensemble=cfg.ensemble,
                 config=dataclasses.asdict(cfg), eval_batch_size=256, log_every=100)
    wall = time.perf_counter() - t0
    ts, workdir = result.train_state, Path(cfg.workdir)
    summary = json.loads((workdir / "result.json").read_text())
    summary.update(wall_time_s=round(wall, 1), dataset=data.name, model=cfg.model,
                   num_params=num_params(ts.params) // cfg.ensemble,
                   train_size=len(data.x_train), test_size=len(data.x_test),
                   series_length=data.x_train.shape[1], channels=data.x_train.shape[2])
    (workdir / "result.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if cfg.plots:
        save_plots(cfg, data, ts.params, ts.state, result.history, workdir)
    print(f"{data.name} {cfg.model} seed {cfg.seed}: test accuracy "
          f"{summary['test_accuracy']:.4f}, wall time {wall:.0f} s -> {workdir}")
    return summary


if __name__ == "__main__":
    main()
