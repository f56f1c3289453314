"""2-d image classification with jaxcnn: one file, a typed config, a run folder with plots.

Commands (from the repository root):

    python experiments/image_classification.py                  # 8x8 digits, offline
    python experiments/image_classification.py --dataset mnist --data-dir ../shared/data/mnist
    python experiments/image_classification.py --dataset mnist --model small_cnn --epochs 12
    python experiments/image_classification.py --dataset cifar10 \
        --data-dir ../shared/data/cifar10-jpeg.tar.gz
    python experiments/image_classification.py --dataset folder --data-dir PATH --model small_cnn
    python experiments/image_classification.py --dataset npz --data pathmnist.npz

Every option is a field of ``Config`` (``--help`` lists them); fields left at ``None`` take
the dataset's preset in ``PRESETS``. The run folder (``--workdir``, default
``runs/image_classification/<dataset>-<model>-seed<seed>-<time>``) holds ``config.json``,
``run.json`` (git commit), ``metrics.jsonl``, ``checkpoints/``, ``result.json``
(``test_accuracy``, ``wall_time_s``) and the plots ``curves.png``, ``filters.png``,
``feature_maps.png``, ``confusion.png``. ``--resume`` continues a run from its folder;
``--ensemble K`` trains K members in one vmapped step and reports their mean prediction.

Measured (2-core CPU shared with other jobs at load average 15-17, so wall times are upper
bounds; CPU time = user + sys of the whole process, imports included):

* default (digits, ``digits_cnn``, 30 epochs, AdamW, random affine 8 deg / 1 px), seeds
  0, 1, 2 on the quiet machine (no other job): test accuracy 100.00%, 99.72%, 99.72%
  (mean 99.81 +- 0.16%, 360 test images, stratified 80/20 split on which
  ``SVC(gamma=0.001)`` scores 98.89%); wall 35.3 / 33.5 / 31.7 s, CPU time 46.1 / 43.6 /
  42.0 s. (Session 1's code gave 100.00% on all three seeds.)
* MNIST ``lenet5`` (``--dataset mnist --data-dir ../shared/data/mnist``: 10 epochs,
  AdamW 2e-3, random affine 10 deg / 2 px), seeds 0, 1, 2 on the quiet machine: 99.14%,
  99.23%, 99.39% (mean 99.25 +- 0.13%, sample std); wall 172 / 159 / 161 s, CPU time
  292 / 287 / 290 s (about 14 s per epoch).
* MNIST ``small_cnn`` (``--model small_cnn --epochs 12``, otherwise the MNIST defaults),
  seeds 0, 1, 2 side by side on the 2 cores (with one or two other jobs): 99.61%, 99.56%,
  99.62% (mean 99.60 +- 0.03%; 99.597% unrounded, so the 99.6% target is not met
  strictly); wall 83-91 min each, CPU time 3,181-3,508 s.
* CIFAR-10 ``resnet20`` (SGD, crop + flip), timing only: 7.7 images/s in the second epoch
  of a 5,000-image run (``--train-limit 5000 --epochs 2``), i.e. about 108 minutes per
  50,000-image epoch under that load; the 91.25% of He et al. needs ~100+ epochs and a GPU.
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

from jaxcnn import enable_compilation_cache
from jaxcnn.data import augment as aug
from jaxcnn.data import load_image_dataset, stratified_split
from jaxcnn.interpret import activations
from jaxcnn.models import get_model
from jaxcnn.train import fit, num_params, parse_config, update_result


@dataclasses.dataclass
class Config:
    """Train an image classifier; fields left at None take the dataset's preset."""

    dataset: Literal["digits", "mnist", "cifar10", "folder", "npz"] = "digits"
    data_dir: Optional[str] = None  # mnist / cifar10 / folder: where the files are
    # (cifar10 and folder also read a .tar.gz of an image folder without extracting it)
    data: Optional[str] = None  # npz: the file (--data and --data-dir are interchangeable)
    model: Optional[str] = None  # a name from jaxcnn.models.list_models()
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None  # peak of the one-cycle cosine schedule
    optimizer: Optional[Literal["adamw", "sgd"]] = None
    weight_decay: Optional[float] = None
    augment: Optional[Literal["none", "affine", "crop", "crop_flip"]] = None
    label_smoothing: float = 0.0
    seed: int = 0
    split_seed: int = 0  # digits / single image folders: the train/test split (fixed)
    test_fraction: float = 0.2
    val_fraction: float = 0.0  # > 0: hold out part of train; the best epoch is tested
    train_limit: Optional[int] = None  # use this many training examples (quick runs)
    ensemble: int = 1
    workdir: Optional[str] = None
    resume: bool = False
    plots: bool = True
    progress: bool = True
    compile_cache: bool = True  # keep compiled programs on disk: enable_compilation_cache


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


def resolve(cfg: Config) -> Config:
    """The config with every ``None`` replaced by the dataset's preset."""
    preset = PRESETS[cfg.dataset]
    return dataclasses.replace(cfg, **{k: v for k, v in preset.items()
                                       if getattr(cfg, k) is None})


def load(cfg: Config):
    """Train/test arrays as float32 standardised per channel, plus class names and stats."""
    path = cfg.data or cfg.data_dir
    kw = {}
    if cfg.dataset in ("digits", "folder"):
        kw = dict(test_fraction=cfg.test_fraction, seed=cfg.split_seed)
    ds = load_image_dataset(cfg.dataset, path, **kw)
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


def make_optimizer(cfg: Config, steps: int):
    """AdamW or SGD (Nesterov momentum 0.9, decoupled weight decay) on a one-cycle cosine
    schedule (warm-up over the first 30% of the steps, then cosine decay)."""
    schedule = optax.cosine_onecycle_schedule(max(steps, 1), cfg.lr)
    if cfg.optimizer == "adamw":
        return optax.adamw(schedule, weight_decay=cfg.weight_decay)
    return optax.chain(optax.add_decayed_weights(cfg.weight_decay),
                       optax.sgd(schedule, momentum=0.9, nesterov=True))


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


def main(argv=None) -> dict:
    cfg = resolve(parse_config(Config, argv))
    if cfg.resume and cfg.workdir is None:
        raise ValueError("image_classification: --resume needs --workdir, the run folder to "
                         "continue")
    if cfg.compile_cache:
        enable_compilation_cache()
    t0 = time.time()
    train, test, class_names, stats = load(cfg)
    val = None
    if cfg.val_fraction > 0:
        tr, va = stratified_split(train[1], cfg.val_fraction, cfg.split_seed)
        train, val = (train[0][tr], train[1][tr]), (train[0][va], train[1][va])
    model_kwargs = {"num_classes": len(class_names)}  # saved: load_run rebuilds the model
    model = get_model(cfg.model, **model_kwargs)
    steps = cfg.epochs * (len(train[0]) // cfg.batch_size)
    workdir = Path(cfg.workdir or "runs/image_classification/{}-{}-seed{}-{}".format(
        cfg.dataset, cfg.model, cfg.seed, time.strftime("%Y%m%d-%H%M%S")))
    print(f"{cfg.dataset}: {len(train[0])} train / {len(test[0])} test images "
          f"{train[0].shape[1:]}, {len(class_names)} classes; model {cfg.model}", flush=True)
    result = fit(model, make_optimizer(cfg, steps), train, val, test, epochs=cfg.epochs,
                 batch_size=cfg.batch_size, seed=cfg.seed, workdir=workdir, resume=cfg.resume,
                 config={**dataclasses.asdict(cfg), "normalisation": stats,
                         "model_kwargs": model_kwargs},
                 augment=make_augment(cfg, train[0].shape[1:]),
                 label_smoothing=cfg.label_smoothing, ensemble=cfg.ensemble,
                 progress=cfg.progress)
    ts = result.train_state
    params, state = first_member(ts.params, cfg.ensemble), first_member(ts.state, cfg.ensemble)
    summary = {"test_accuracy": result.test_metrics["accuracy"],
               "num_params": num_params(params), "wall_time_s": round(time.time() - t0, 2),
               "workdir": str(workdir)}
    if "member_accuracy" in result.test_metrics:
        summary["member_accuracy"] = result.test_metrics["member_accuracy"]
    if cfg.plots:
        write_plots(workdir, model, params, state, result.history, test, class_names,
                    result.test_metrics["confusion_matrix"])
    update_result(workdir, summary)
    members = (f" (members: {', '.join(f'{a:.4f}' for a in summary['member_accuracy'])})"
               if "member_accuracy" in summary else "")
    print(f"test accuracy {summary['test_accuracy']:.4f}{members}; {summary['num_params']:,} "
          f"params; {summary['wall_time_s']:.1f} s; run folder: {workdir}")
    return summary


if __name__ == "__main__":
    main()
