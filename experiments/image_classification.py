"""2-d image classification: digits, MNIST, CIFAR-10, an image folder or a .npz set.

Commands (from the repository root; ``--help`` lists every option with its default):

    python experiments/image_classification.py                  # 8x8 digits, offline
    python experiments/image_classification.py --dataset mnist --data ../shared/data/mnist
    python experiments/image_classification.py --dataset mnist --data ../shared/data/mnist \\
        --model small_cnn --epochs 12
    python experiments/image_classification.py --dataset cifar10 \\
        --data ../shared/data/cifar10-jpeg.tar.gz
    python experiments/image_classification.py --dataset folder --data PATH
    python experiments/image_classification.py --dataset npz --data pathmnist.npz

Measured: test accuracy, mean +- sample std over seeds 0, 1, 2, the command above with
``--seed S`` and nothing else changed. CPU rows: a 2-core Intel Xeon VM (AVX-512), jax
0.10.2, shared with other jobs (wall times are upper bounds); GPU row: one NVIDIA H200,
jax 0.11.2, the three seeds side by side (``benchmarks/results/gpu/cifar10_resnet20.md``).

    ==========  ==========  ================  =========================  ===============
    data        model       test accuracy     reference                  wall per run
    ==========  ==========  ================  =========================  ===============
    digits      digits_cnn  99.81 +- 0.16 %   SVC(gamma=0.001) 98.89 %   32-35 s (CPU)
    MNIST       lenet5      99.25 +- 0.13 %   LeCun et al. 1998 99.05 %  159-172 s (CPU)
    MNIST       small_cnn   99.60 +- 0.03 %   target 99.6 %              83-91 min (CPU)
    CIFAR-10    resnet20    89.15 +- 0.19 %   He et al. 2016 91.25 %     356 s (H200)
    ==========  ==========  ================  =========================  ===============

Each dataset has a preset (``PRESETS``) for the options left unset: model, epochs, batch
size, peak learning rate of the one-cycle cosine schedule, AdamW or SGD with Nesterov
momentum, weight decay and the augmentation, which runs on the device on whole batches.
Pixels are scaled to [0, 1] and standardised per channel with the training set's
statistics (saved in ``config.json``). Digits and single image folders are split into
train and test by class (``--test-fraction``, ``--split-seed``).

The run folder (``--workdir``) holds ``config.json``, ``run.json`` (git commit),
``metrics.jsonl``, ``checkpoints/``, ``result.json`` (``test_accuracy``, ``wall_time_s``)
and the plots ``curves.png``, ``filters.png``, ``feature_maps.png``, ``confusion.png``;
``jaxcnn.train.load_run`` rebuilds the trained model from it.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Literal, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

import _cli
from _cli import option, per_dataset
from jaxcnn import distributed
from jaxcnn.data import augment as aug
from jaxcnn.data import load_image_dataset, stratified_split
from jaxcnn.interpret import activations
from jaxcnn.models import get_model
from jaxcnn.train import fit, num_params, update_result

# ------------------------------------------------------------------------------- config

PRESETS = {
    "digits": dict(model="digits_cnn", epochs=30, batch_size=64, lr=2e-3, optimizer="adamw",
                   weight_decay=5e-4, augment="affine"),
    "mnist": dict(model="lenet5", epochs=10, batch_size=128, lr=2e-3, optimizer="adamw",
                  weight_decay=5e-4, augment="affine"),
    "cifar10": dict(model="resnet20", epochs=100, batch_size=128, lr=0.1, optimizer="sgd",
                    weight_decay=5e-4, augment="crop_flip"),
    "folder": dict(model="small_cnn", epochs=30, batch_size=64, lr=2e-3, optimizer="adamw",
                   weight_decay=5e-4, augment="crop"),
    "npz": dict(model="small_cnn", epochs=30, batch_size=64, lr=2e-3, optimizer="adamw",
                weight_decay=5e-4, augment="crop"),
}
AFFINE = {"digits": (8.0, 1.0), "mnist": (10.0, 2.0)}  # (degrees, shift in pixels)
Model = Literal["digits_cnn", "lenet5", "small_cnn", "resnet20", "resnet32", "resnet56",
                "resnet18", "resnet34", "resnet50", "vgg11", "vgg13", "vgg16", "vgg19",
                "vgg11_bn", "vgg16_bn",
                "mobilenet_v2", "shufflenet_v2", "squeezenet", "densenet121", "googlenet",
                "alexnet"]


def preset(name: str) -> str:
    return per_dataset(PRESETS, name)


@dataclasses.dataclass
class Config(_cli.RunOptions):
    """Train an image classifier; options left unset take the dataset's preset."""

    dataset: Literal["digits", "mnist", "cifar10", "folder", "npz"] = option(
        "digits", "The data: scikit-learn's 8x8 digits (bundled), MNIST, CIFAR-10, an image "
                  "folder (<class>/<image> or train|test/<class>/<image>) or a .npz file.")
    data: Optional[str] = option(
        None, "Where the data is: the MNIST or CIFAR-10 folder (or CIFAR-10's .tar.gz), "
              "the image folder (or its .tar/.tar.gz), the .npz file (MedMNIST layout).",
        shown="$JAXCNN_DATA/<dataset> or ~/.cache/jaxcnn/<dataset> for mnist and "
              "cifar10 (downloaded there when missing); required for folder and npz",
        metavar="PATH")
    model: Optional[Model] = option(None, "The network, by its name in jaxcnn.models.",
                                    shown=preset("model"))
    epochs: Optional[int] = option(None, "Passes over the training set.",
                                   shown=preset("epochs"))
    batch_size: Optional[int] = option(None, "Examples per training step.",
                                       shown=preset("batch_size"))
    lr: Optional[float] = option(None, "Peak learning rate of the one-cycle cosine schedule.",
                                 shown=preset("lr"))
    optimizer: Optional[Literal["adamw", "sgd"]] = option(
        None, "adamw (AdamW) or sgd (SGD with Nesterov momentum 0.9).",
        shown=preset("optimizer"))
    weight_decay: Optional[float] = option(None, "Decoupled weight decay.",
                                           shown=preset("weight_decay"))
    augment: Optional[Literal["none", "affine", "crop", "crop_flip"]] = option(
        None, "Augmentation on the device: none; affine (random rotation and shift); crop "
              "(reflect-padded random crops); crop_flip (crops and horizontal flips).",
        shown=preset("augment"))
    label_smoothing: float = option(0.0, "Label smoothing of the cross-entropy.")
    split_seed: int = option(0, "Seed of the train/test split (digits, single image "
                                "folders), the validation split and --train-limit.")
    test_fraction: float = option(0.2, "Share of each class held out for testing (digits, "
                                       "single image folders).")
    val_fraction: float = option(0.0, "Share of the training set held out for validation; "
                                      "above 0 the best epoch is tested.")
    train_limit: Optional[int] = option(None, "Train on this many examples only (quick runs).",
                                        shown="all")
    workdir: Optional[str] = _cli.run_folder(
        "runs/image_classification/<dataset>-<model>-seed<seed>-<time>")


def resolve(cfg: Config) -> Config:
    """The config with every unset option replaced by the dataset's preset."""
    return dataclasses.replace(cfg, **_cli.unset_from(cfg, PRESETS[cfg.dataset]))


# ------------------------------------------------------------------------------- data


def load(cfg: Config):
    """Train/test arrays as float32 standardised per channel, plus class names and stats."""
    kw = {}
    if cfg.dataset in ("digits", "folder"):
        kw = dict(test_fraction=cfg.test_fraction, seed=cfg.split_seed)
    ds = load_image_dataset(cfg.dataset, cfg.data, **kw)
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if cfg.train_limit is not None and cfg.train_limit < len(x_train):
        keep = np.random.default_rng(cfg.split_seed).permutation(len(x_train))[:cfg.train_limit]
        x_train, y_train = x_train[np.sort(keep)], y_train[np.sort(keep)]
    scale = 255.0 if x_train.dtype == np.uint8 else 1.0
    x_train = x_train.astype(np.float32) / scale
    x_test = x_test.astype(np.float32) / scale
    axes = tuple(range(x_train.ndim - 1))
    mean, std = x_train.mean(axes), x_train.std(axes) + 1e-6
    norm = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return (norm(x_train), y_train), (norm(x_test), y_test), ds.class_names, dict(
        mean=mean.tolist(), std=std.tolist())


def make_augment(cfg: Config, image_shape):
    """The on-device augmentation ``(key, batch) -> batch`` named by ``cfg.augment``."""
    pad = max(1, image_shape[0] // 8)
    if cfg.augment == "affine":
        degrees, shift = AFFINE.get(cfg.dataset, (10.0, 2.0))
        return aug.random_affine(degrees, shift)  # edge fill: background stays background
    if cfg.augment == "crop":
        return aug.random_crop(pad, "reflect")
    if cfg.augment == "crop_flip":
        return aug.compose(aug.random_crop(pad, "reflect"), aug.random_flip())
    return None


# ------------------------------------------------------------------------------- train


def make_optimizer(cfg: Config, steps: int):
    """AdamW or SGD (Nesterov momentum 0.9, decoupled weight decay) on a one-cycle cosine
    schedule (warm-up over the first 30% of the steps, then cosine decay)."""
    schedule = optax.cosine_onecycle_schedule(max(steps, 1), cfg.lr)
    if cfg.optimizer == "adamw":
        return optax.adamw(schedule, weight_decay=cfg.weight_decay)
    return optax.chain(optax.add_decayed_weights(cfg.weight_decay),
                       optax.sgd(schedule, momentum=0.9, nesterov=True))


def train(cfg: Config, mesh) -> dict:
    """Loads the data, trains, tests, and writes the result and the plots."""
    t0 = time.time()
    train_set, test, class_names, stats = load(cfg)
    val = None
    if cfg.val_fraction > 0:
        tr, va = stratified_split(train_set[1], cfg.val_fraction, cfg.split_seed)
        train_set, val = (train_set[0][tr], train_set[1][tr]), (train_set[0][va],
                                                                train_set[1][va])
    model_kwargs = {"num_classes": len(class_names)}  # saved: load_run rebuilds the model
    model = get_model(cfg.model, **model_kwargs)
    steps = cfg.epochs * (len(train_set[0]) // cfg.batch_size)
    if cfg.workdir is None and jax.process_count() > 1:
        raise ValueError("image_classification: a run of several processes needs --workdir, "
                         "the same folder on every process")
    workdir = Path(cfg.workdir or "runs/image_classification/{}-{}-seed{}-{}".format(
        cfg.dataset, cfg.model, cfg.seed, time.strftime("%Y%m%d-%H%M%S")))
    print(f"{cfg.dataset}: {len(train_set[0])} train / {len(test[0])} test images "
          f"{train_set[0].shape[1:]}, {len(class_names)} classes; model {cfg.model}", flush=True)
    result = fit(model, make_optimizer(cfg, steps), train_set, val, test, epochs=cfg.epochs,
                 batch_size=cfg.batch_size, seed=cfg.seed, workdir=workdir, resume=cfg.resume,
                 config={**dataclasses.asdict(cfg), "normalisation": stats,
                         "model_kwargs": model_kwargs},
                 augment=make_augment(cfg, train_set[0].shape[1:]),
                 label_smoothing=cfg.label_smoothing, ensemble=cfg.ensemble,
                 progress=cfg.progress, mesh=mesh, loggers=_cli.loggers(cfg))
    return report(cfg, workdir, model, result, test, class_names, time.time() - t0)


# ------------------------------------------------------------------------------- report


def first_member(tree, ensemble):
    return jax.tree.map(lambda a: a[0], tree) if ensemble > 1 else tree


def write_plots(workdir: Path, model, params, state, history, test, class_names, confusion):
    """Curves, first-layer filters, feature maps of one test image, confusion matrix."""
    from jaxcnn import viz

    viz.plot_history(history, workdir / "curves.png", title="training curves")
    x0 = jnp.asarray(test[0][:1])
    acts = activations(model, params, state, x0)
    convs = [p for p in acts if p.rsplit("/", 1)[-1].startswith("conv_") and acts[p].ndim == 4]
    if convs:
        node = params
        for part in convs[0].split("/"):
            node = node[part]
        viz.plot_filters(np.asarray(node["kernel"]), workdir / "filters.png",
                         title="first-layer filters")
    relus = [p for p in acts if p.rsplit("/", 1)[-1].startswith("relu_") and acts[p].ndim == 4]
    if len(relus) > 6:  # deep nets: six layers, evenly spaced, the last included
        relus = [relus[i] for i in np.linspace(0, len(relus) - 1, 6).round().astype(int)]
    viz.plot_feature_maps({p: acts[p] for p in relus}, workdir / "feature_maps.png",
                          image=np.asarray(test[0][0]),
                          title=f"test image 0 ({class_names[int(test[1][0])]})")
    viz.plot_confusion_matrix(np.asarray(confusion), class_names, workdir / "confusion.png",
                              title="confusion matrix (test)")


def report(cfg: Config, workdir: Path, model, result, test, class_names, wall: float) -> dict:
    """``result.json``, the plots and a line on stdout (process 0 of a multi-process run)."""
    params, state = first_member(distributed.to_host((result.train_state.params,
                                                     result.train_state.state)), cfg.ensemble)
    summary = {"test_accuracy": result.test_metrics["accuracy"],
               "num_params": num_params(params), "wall_time_s": round(wall, 2),
               "devices": jax.device_count(), "processes": jax.process_count(),
               "workdir": str(workdir)}
    if "member_accuracy" in result.test_metrics:
        summary["member_accuracy"] = result.test_metrics["member_accuracy"]
    if not _cli.is_main_process():
        return summary
    if cfg.plots:
        write_plots(workdir, model, params, state, result.history, test, class_names,
                    result.test_metrics["confusion_matrix"])
    update_result(workdir, summary)
    members = (f" (members: {', '.join(f'{a:.4f}' for a in summary['member_accuracy'])})"
               if "member_accuracy" in summary else "")
    print(f"test accuracy {summary['test_accuracy']:.4f}{members}; {summary['num_params']:,} "
          f"params; {summary['wall_time_s']:.1f} s; run folder: {workdir}")
    return summary


def main(argv=None) -> dict:
    parser = _cli.parser(Config, __doc__)
    cfg = resolve(_cli.parse(parser, Config, argv))
    if cfg.dataset in ("folder", "npz") and cfg.data is None:
        parser.error(f"--dataset {cfg.dataset} needs --data, the "
                     + ("image folder" if cfg.dataset == "folder" else ".npz file"))
    return _cli.run(parser, cfg, train)


if __name__ == "__main__":
    main()
