"""MNIST-1D classification (Greydanus 2020): 4000 train / 1000 test series of length 40.

Commands (from the repository root; ``--help`` lists every option with its default):

    python experiments/mnist1d_classification.py                    # mnist1d_cnn
    python experiments/mnist1d_classification.py --model tcn --ensemble 3

Measured: test accuracy 99.07 +- 0.21 % (mean +- sample std over seeds 0, 1, 2, the first
command with ``--seed S``; published: CNN 94 %, GRU 91 %), wall time 601-736 s per run on
a 2-core Intel Xeon VM (AVX-512, jax 0.10.2) shared with other jobs.

The data is generated offline (the ``mnist1d`` package, seed 42: the published set). The
model (``mnist1d_cnn``: three stages of two convolutions with batch norm, 64, 128 and 256
channels, global average pooling, dropout) trains with AdamW (weight decay
1e-4) on a one-cycle cosine schedule peaking at 3e-3, batch 128, 30 epochs; the last epoch
is tested.

The run folder (``--workdir``) holds ``config.json``, ``run.json`` (git commit),
``metrics.jsonl``, ``checkpoints/``, ``result.json`` (``test_accuracy``, wall time) and the
plots ``series.png``, ``filters.png``, ``cam.png`` (class activation along time for one
test series) and ``curves.png``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Literal, Optional

import jax
import optax

import _cli
from _cli import option
from _series_plots import save_plots
from jaxcnn import distributed
from jaxcnn.data.timeseries import load_mnist1d
from jaxcnn.models import get_model
from jaxcnn.train import fit, num_params, update_result

# ------------------------------------------------------------------------------- config


@dataclasses.dataclass
class Config(_cli.RunOptions):
    """Train a 1-d CNN on MNIST-1D."""

    num_samples: int = option(5000, "Series generated in all; 80 % train, 20 % test (5000: "
                                    "the standard benchmark).")
    model: Literal["mnist1d_cnn", "fcn", "resnet1d", "tcn"] = option(
        "mnist1d_cnn", "The network, by its name in jaxcnn.models.")
    epochs: int = option(30, "Passes over the training set.")
    batch_size: int = option(128, "Series per training step.")
    lr: float = option(3e-3, "Peak learning rate of the one-cycle cosine schedule (AdamW).")
    weight_decay: float = option(1e-4, "AdamW's decoupled weight decay.")
    epoch_loop: Literal["auto", "python", "scan"] = option(
        "auto", "How fit runs an epoch: a Python loop over the step or one lax.scan (faster "
                "on a GPU); auto picks per backend.")
    workdir: Optional[str] = _cli.run_folder("runs/timeseries/mnist1d_<model>_seed<seed>")


# ------------------------------------------------------------------------------- train


def train(cfg: Config, mesh) -> dict:
    """Generates the data, trains, tests, and writes the result and the plots."""
    t0, c0 = time.perf_counter(), time.process_time()
    data = load_mnist1d(num_samples=cfg.num_samples)
    model_kwargs = {"num_classes": len(data.class_names)}  # saved: load_run rebuilds it
    model = get_model(cfg.model, **model_kwargs)
    steps = cfg.epochs * (len(data.x_train) // cfg.batch_size)
    optimizer = optax.adamw(optax.cosine_onecycle_schedule(steps, cfg.lr),
                            weight_decay=cfg.weight_decay)
    workdir = Path(cfg.workdir or f"runs/timeseries/mnist1d_{cfg.model}_seed{cfg.seed}")
    result = fit(model, optimizer, (data.x_train, data.y_train),
                 test=(data.x_test, data.y_test), epochs=cfg.epochs, batch_size=cfg.batch_size,
                 seed=cfg.seed, workdir=workdir, resume=cfg.resume, ensemble=cfg.ensemble,
                 config={**dataclasses.asdict(cfg), "workdir": str(workdir),
                         "model_kwargs": model_kwargs},
                 eval_batch_size=256, log_every=100, epoch_loop=cfg.epoch_loop,
                 progress=cfg.progress, mesh=mesh, loggers=_cli.loggers(cfg))

    # --------------------------------------------------------------------------- report
    params, state = distributed.to_host((result.train_state.params, result.train_state.state))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    summary = dict(test_accuracy=result.test_metrics["accuracy"], wall_time_s=round(wall, 1),
                   cpu_time_s=round(cpu, 1), dataset="mnist1d", model=cfg.model,
                   num_params=num_params(params) // cfg.ensemble,
                   train_size=len(data.x_train), test_size=len(data.x_test),
                   devices=jax.device_count(), processes=jax.process_count(),
                   backend=jax.default_backend())
    if not _cli.is_main_process():
        return summary
    summary = update_result(workdir, summary)
    if cfg.plots:
        save_plots("MNIST-1D", cfg.model, data, params, state, result.history, workdir,
                   cfg.ensemble)
    print(f"MNIST-1D {cfg.model} seed {cfg.seed}: test accuracy "
          f"{summary['test_accuracy']:.4f}, wall time {wall:.0f} s -> {workdir}")
    return summary


def main(argv=None) -> dict:
    parser = _cli.parser(Config, __doc__)
    return _cli.run(parser, _cli.parse(parser, Config, argv), train)


if __name__ == "__main__":
    main()
