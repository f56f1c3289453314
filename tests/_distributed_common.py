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
