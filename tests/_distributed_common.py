"""The model, optimizer and batches shared by the data-parallel tests and their workers."""

import numpy as np
import optax

from jaxcnn import batch_norm, conv, dense, flatten, relu, serial

STEPS = 3
BATCH = 16


def model_and_optimizer():
    """A CNN with batch norm (global batch statistics are what sharding must keep) and SGD
    with momentum (Adam would turn the zero gradient of the bias before the batch norm
    into rounding noise of full step size)."""
    net = serial(conv(4, 3), batch_norm(), relu(), flatten(), dense(3))
    return net, optax.sgd(0.1, momentum=0.9)


def batches(steps=STEPS, batch=BATCH):
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x = rng.normal(size=(batch, 6, 6, 1)).astype(np.float32)
        yield {"x": x, "y": rng.integers(0, 3, batch).astype(np.int32)}


KILL_AT = 2  # the killed multi-process run loses process 1 after this step (mid-run)


def fit_data(n=16):
    """``(train, test)`` for the ``fit`` runs: 16 training examples (2 steps of 8 per epoch)
    and 20 test examples."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n + 8, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, n + 8).astype(np.int32)
    return (x[:n], y[:n]), (x[4:], y[4:])


def fit_options():
    """Every step checkpointed and logged; the best epoch by training loss kept (``best/``)."""
    return dict(epochs=2, batch_size=8, progress=False, checkpoint_every=1, log_every=1,
                monitor="train_loss")
