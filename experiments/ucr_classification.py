"""UCR/UEA time-series classification with FCN, ResNet1D or TCN, the protocol of the FCN papers.

Commands (from the repository root; ``--help`` lists every option with its default):

    python experiments/ucr_classification.py --name GunPoint --data ../shared/data/ucr
    python experiments/ucr_classification.py --name ArrowHead --data ../shared/data/ucr \\
        --model resnet1d
    bash experiments/gpu/run_ucr.sh        # four sets x 3 seeds, FCN and ResNet1D, one GPU

Measured: test accuracy %, mean +- sample std over seeds 0, 1, 2 (ItalyPowerDemand:
seeds 0-9, the papers' 10 runs), the first command with ``--name N --seed S`` and nothing
else changed; published: Ismail Fawaz et al. 2019, mean of 10 runs. Wall time per run on
a 2-core Intel Xeon VM (AVX-512, jax 0.10.2) shared with other jobs: upper bounds.

    ================  ========  ================  ====================  ===============
    dataset           model     test accuracy     published             wall per run
    ================  ========  ================  ====================  ===============
    ArrowHead         fcn       85.71 +- 1.98     FCN 84.3, Res 84.5    1020-1405 s
    ArrowHead         resnet1d  86.29 +- 1.71     FCN 84.3, Res 84.5    1449-1788 s
    ItalyPowerDemand  fcn       96.04 +- 0.19     FCN 96.1, Res 96.3    259-720 s
    GunPoint          fcn       100.00 +- 0.00    FCN 100.0, Res 99.1   293-804 s
    GunPoint          resnet1d  100.00 +- 0.00    FCN 100.0, Res 99.1   605-1131 s
    OSULeaf           fcn       98.21 +- 0.24     FCN 97.7, Res 97.9    41-46 min
    JapaneseVowels    fcn       99.55 +- 0.16     FCN 99.3, Res 99.2    699-760 s
    BasicMotions      fcn       100.00 +- 0.00    -                     427-525 s
    ================  ========  ================  ====================  ===============

The protocol (Wang et al. 2017; Ismail Fawaz et al. 2019), the same for every set: 2000
passes over the training set at batch ``min(16, N_train // 10)``; Adam from 1e-3 with a
cosine decay to 1e-4 (the papers halve the rate on plateaus of the training loss down to
1e-4; a schedule that is a function of the step keeps ``fit`` pure and resumable); the
weights of the lowest training loss (the mean over each group of ``--epoch-steps``
steps); the test set is read once, at the end. Univariate series are z-normalised one by
one, multivariate UEA sets are used raw (``--znorm auto``); variable lengths are resampled
to the longest training series (:mod:`jaxcnn.data.timeseries`). Batches of 3 to 16 series
make batch norm's running statistics noisy, so the test is also run with statistics
recomputed on the whole training set (``test_accuracy_recalibrated_bn`` in
``result.json``; ``--recalibrate-bn`` makes it the headline).

The run folder (``--workdir``) holds ``config.json``, ``run.json`` (git commit),
``metrics.jsonl``, ``checkpoints/``, ``result.json`` (``test_accuracy``, wall time) and the
plots ``series.png``, ``filters.png``, ``cam.png`` (class activation along time for one
test series) and ``curves.png``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Literal, Optional

import jax
import numpy as np
import optax

import _cli
from _cli import option
from _series_plots import save_plots
from jaxcnn import distributed, jit
from jaxcnn.data.timeseries import TimeSeriesData, load_ucr
from jaxcnn.models import get_model
from jaxcnn.train import fit, make_evaluator, num_params, update_result

# ------------------------------------------------------------------------------- config

FINAL_LR = 0.1  # the cosine ends at lr / 10 (1e-4: the floor of Ismail Fawaz et al.)


@dataclasses.dataclass
class Config(_cli.RunOptions):
    """Train a 1-d CNN on a UCR/UEA dataset with the protocol of the FCN papers."""

    name: str = option("GunPoint", "The dataset: reads NAME_TRAIN and NAME_TEST (.ts or .tsv) "
                                   "in --data/NAME/ or --data/.", metavar="NAME")
    data: str = option("data/ucr", "The folder holding the UCR/UEA archive's files.",
                       metavar="PATH")
    model: Literal["fcn", "resnet1d", "tcn", "mnist1d_cnn"] = option(
        "fcn", "The network, by its name in jaxcnn.models.")
    znorm: Literal["auto", "on", "off"] = option(
        "auto", "Z-normalise each series; auto: univariate sets only, as their papers do.")
    variable_length: Literal["resample", "pad"] = option(
        "resample", "Series of different lengths are resampled to the longest training "
                    "series, or zero-padded.")
    epochs: int = option(2000, "Passes over the training set.")
    epoch_steps: int = option(100, "Log, checkpoint and select the weights after groups of "
                                   "about this many steps.")
    batch_size: Optional[int] = option(None, "Series per training step.",
                                       shown="min(16, training series // 10)")
    lr: float = option(1e-3, "Adam's learning rate at the start of the cosine decay (to "
                             "lr / 10 at the end).")
    weight_decay: float = option(0.0, "AdamW's decoupled weight decay.")
    recalibrate_bn: bool = option(False, "Report the test with batch-norm statistics of the "
                                         "whole training set (both are in result.json).")
    epoch_loop: Literal["auto", "python", "scan"] = option(
        "auto", "How fit runs an epoch: a Python loop over the step or one lax.scan (faster "
                "on a GPU); auto picks per backend.")
    workdir: Optional[str] = _cli.run_folder("runs/timeseries/<name>_<model>_seed<seed>")


def resolve(cfg: Config, data: TimeSeriesData) -> Config:
    """``cfg`` with the batch size and run folder filled in for ``data``."""
    return dataclasses.replace(
        cfg, batch_size=cfg.batch_size or max(1, min(16, len(data.x_train) // 10)),
        workdir=cfg.workdir or f"runs/timeseries/{cfg.name}_{cfg.model}_seed{cfg.seed}")


def passes_per_epoch(cfg: Config, n: int) -> int:
    """How many passes over a training set of ``n`` series ``fit`` runs as one epoch: a UCR
    set is so small (ArrowHead: 12 steps per pass) that evaluating and checkpointing after
    every pass would cost more than the training, so ``fit`` sees ``passes`` shuffled
    copies of the set, about ``epoch_steps`` steps."""
    return max(1, min(cfg.epochs, round(cfg.epoch_steps * cfg.batch_size / n)))


# ------------------------------------------------------------------------------- data


def load_data(cfg: Config) -> TimeSeriesData:
    znorm = {"auto": "auto", "on": True, "off": False}[cfg.znorm]
    return load_ucr(cfg.name, cfg.data, znorm=znorm, variable_length=cfg.variable_length)


# ------------------------------------------------------------------------------- train


def make_optimizer(cfg: Config, total_steps: int):
    """Adam(W), cosine decay from ``lr`` to ``lr / 10`` over the run (a smooth stand-in for
    Ismail Fawaz et al.'s reduce-on-plateau from 1e-3 down to 1e-4, which needs the loss
    inside the optimizer)."""
    schedule = optax.cosine_decay_schedule(cfg.lr, total_steps, alpha=FINAL_LR)
    return optax.adamw(schedule, weight_decay=cfg.weight_decay)


def recalibrate_bn(cfg: Config, num_classes: int, params, state, x, chunk=1024):
    """Batch-norm statistics of the trained network on the whole training set ``x``.

    Each chunk goes through the model built with ``bn_momentum=0`` in train mode (every
    layer normalised by the chunk's own statistics, as it was in training) and the chunk
    statistics are averaged, weighted by size. Uses the training set only (Ioffe &
    Szegedy 2015, section 3.1; "precise BN", Wu & Johnson 2021)."""
    if not jax.tree_util.tree_leaves(state):
        return state
    model = get_model(cfg.model, num_classes=num_classes, bn_momentum=0.0)

    def stats(p, s, xb):
        return model.apply(p, s, xb, train=True, key=jax.random.key(0))[1]

    stats = jit(jax.vmap(stats, in_axes=(0, 0, None)) if cfg.ensemble > 1 else stats)
    total, n = None, len(x)
    for i in range(0, n, chunk):
        xb = x[i:i + chunk]
        if 1 < n - i - len(xb) < chunk // 2:  # fold a small remainder into this chunk
            xb = x[i:]
        w = len(xb) / n
        new = jax.tree_util.tree_map(lambda a: w * a, stats(params, state, xb))
        total = new if total is None else jax.tree_util.tree_map(jax.numpy.add, total, new)
        if i + len(xb) >= n:
            break
    return total


def train(cfg: Config, mesh) -> dict:
    """Loads the data, trains, tests (running and recomputed batch-norm statistics), and
    writes the result and the plots."""
    t0, c0 = time.perf_counter(), time.process_time()
    data = load_data(cfg)
    cfg = resolve(cfg, data)
    model_kwargs = {"num_classes": len(data.class_names)}  # saved: load_run rebuilds it
    model = get_model(cfg.model, **model_kwargs)
    passes = passes_per_epoch(cfg, len(data.x_train))
    x_train, y_train = np.tile(data.x_train, (passes, 1, 1)), np.tile(data.y_train, passes)
    epochs = math.ceil(cfg.epochs / passes)
    total_steps = epochs * (len(x_train) // cfg.batch_size)
    # The weights of the lowest training loss (the mean over the epoch's steps, Keras's
    # "loss", as Ismail Fawaz et al.); the test set is not looked at until the end.
    result = fit(model, make_optimizer(cfg, total_steps), (x_train, y_train),
                 test=(data.x_test, data.y_test), epochs=epochs, batch_size=cfg.batch_size,
                 seed=cfg.seed, workdir=cfg.workdir, resume=cfg.resume, ensemble=cfg.ensemble,
                 config={**dataclasses.asdict(cfg), "model_kwargs": model_kwargs},
                 eval_batch_size=256, log_every=100, epoch_loop=cfg.epoch_loop,
                 progress=cfg.progress, monitor="train_loss", keep_best=True, mesh=mesh,
                 loggers=_cli.loggers(cfg))

    # --------------------------------------------------------------------------- report
    params, state = distributed.to_host((result.train_state.params, result.train_state.state))
    recal = recalibrate_bn(cfg, len(data.class_names), params, state, data.x_train)
    test = make_evaluator(model, data.x_test, data.y_test, 256,
                          members=cfg.ensemble > 1)(params, recal)
    test = {f"test_{k}": v for k, v in test.items()}
    running = {f"test_{k}": v for k, v in result.test_metrics.items()}  # as in result.json
    if cfg.recalibrate_bn:
        state = recal
        summary = {**test, **{f"{k}_running_bn": v for k, v in running.items()}}
    else:
        summary = {f"{k}_recalibrated_bn": v for k, v in test.items()}
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    summary.update(wall_time_s=round(wall, 1), cpu_time_s=round(cpu, 1), dataset=data.name,
                   model=cfg.model, num_params=num_params(params) // cfg.ensemble,
                   passes=epochs * passes, train_size=len(data.x_train),
                   test_size=len(data.x_test), series_length=data.x_train.shape[1],
                   channels=data.x_train.shape[2], devices=jax.device_count(),
                   processes=jax.process_count(), backend=jax.default_backend())
    workdir = Path(cfg.workdir)
    if not _cli.is_main_process():
        return summary
    summary = update_result(workdir, summary)
    if cfg.plots:
        save_plots(cfg.name, cfg.model, data, params, state, result.history, workdir,
                   cfg.ensemble)
    print(f"{data.name} {cfg.model} seed {cfg.seed}: test accuracy "
          f"{summary['test_accuracy']:.4f}, wall time {wall:.0f} s -> {workdir}")
    return summary


def main(argv=None) -> dict:
    parser = _cli.parser(Config, __doc__)
    return _cli.run(parser, _cli.parse(parser, Config, argv), train)


if __name__ == "__main__":
    main()
