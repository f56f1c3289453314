"""1-d classifiers for time series: FCN, ResNet1D, a dilated causal TCN and a small
CNN for MNIST-1D. Inputs are ``(N, L, C)``; each factory returns a :class:`jaxcnn.Layer`.

Every classifier is ``serial(features, pool, head)``: the parameters read
``params["features_0"]``, ``params["pool_1"]``, ``params["head_2"]["kernel"]``, so the
class activation map along time (Zhou et al. 2016; Wang et al. 2017) of a model ending
in global average pooling is ``features(x) @ head_kernel``:

.. math::

   \\mathrm{CAM}_k(t) = \\sum_c A_{t,c}\\, W_{c,k}

with :math:`A` the ``features`` output and :math:`W` the head's kernel. With
``num_classes=None`` a factory returns the ``features`` part alone, ``(N, L', C')``.
"""

from __future__ import annotations

from jaxcnn._checks import check_choice, check_positive_int, check_rate, fail, is_int
from jaxcnn.layers import (batch_norm, conv, dense, dropout, flatten, global_avg_pool, identity,
                           layer_norm, max_pool, named, relu, residual, serial, with_rank)


def _check_ints(where, what, values, minimum=1):
    if (not isinstance(values, (tuple, list)) or not values
            or not all(is_int(v) and v >= minimum for v in values)):
        fail(where, what, f"a non-empty tuple of ints >= {minimum}", values)
    return tuple(values)


def _classifier(where, features, num_classes, pool=None):
    if num_classes is None:
        return with_rank(features, 1, where)
    check_positive_int(where, "num_classes", num_classes,
                       "a positive int (or None for the features alone)")
    return with_rank(serial(named("features", features), named("pool", pool or global_avg_pool()),
                            named("head", dense(num_classes))), 1, where)


def conv_bn_relu(out_channels, kernel_size, dilation=1, padding="SAME", momentum=0.9):
    """``conv`` (no bias) -> ``batch_norm(momentum)`` -> ``relu``: the unit of FCN and ResNet1D."""
    return serial(conv(out_channels, kernel_size, padding=padding, dilation=dilation,
                       use_bias=False), batch_norm(momentum), relu())


def fcn(num_classes=None, channels=(128, 256, 128), kernel_sizes=(8, 5, 3), bn_momentum=0.9):
    """Fully convolutional network of Wang et al. (2017) for time-series classification.

    Three ``conv -> batch_norm -> relu`` blocks (128, 256, 128 filters of sizes 8, 5, 3,
    ``"SAME"`` padding, stride 1), global average pooling over time and a dense layer.

    Args:
      num_classes: number of classes; ``None`` returns the convolutional part alone.
      channels: filters per block.
      kernel_sizes: kernel size per block (same length as ``channels``).
      bn_momentum: batch-norm momentum, ``new = momentum * old + (1 - momentum) * batch``
        (``0``: the statistics of the last batch, used to recompute them on a whole set).

    Example:
      >>> import jax
      >>> from jaxcnn.models import fcn
      >>> out, params, state = fcn(3).init(jax.random.key(0), (150, 1))
      >>> out, params["features_0"]["serial_0"]["conv_0"]["kernel"].shape
      ((3,), (8, 1, 128))
    """
    where = "fcn"
    channels = _check_ints(where, "channels", channels)
    kernel_sizes = _check_ints(where, "kernel_sizes", kernel_sizes)
    if len(channels) != len(kernel_sizes):
        fail(where, "len(kernel_sizes)", f"len(channels) = {len(channels)}", len(kernel_sizes))
    features = serial(*(conv_bn_relu(c, k, momentum=bn_momentum)
                        for c, k in zip(channels, kernel_sizes)))
    return _classifier(where, features, num_classes)


def _resnet_block(in_channels, out_channels, kernel_sizes, momentum):
    body = [conv_bn_relu(out_channels, k, momentum=momentum) for k in kernel_sizes[:-1]]
    body.append(serial(conv(out_channels, kernel_sizes[-1], padding="SAME", use_bias=False),
                       batch_norm(momentum)))
    if in_channels == out_channels:
        shortcut = batch_norm(momentum)
    else:
        shortcut = serial(conv(out_channels, 1, use_bias=False), batch_norm(momentum))
    return serial(residual(serial(*body), shortcut), relu())


def resnet1d(num_classes=None, channels=(64, 128, 128), kernel_sizes=(8, 5, 3),
             bn_momentum=0.9):
    """Residual network for time series (Wang et al. 2017; Ismail Fawaz et al. 2019).

    Three residual blocks of ``channels`` filters, each three convolutions of sizes
    ``kernel_sizes`` with batch norm (ReLU after the first two); the shortcut is a
    ``1``-wide convolution with batch norm where the channel count changes and batch norm
    alone where it does not (as in Ismail Fawaz et al.'s code); ReLU after the sum;
    global average pooling and a dense layer.

    Args:
      num_classes: number of classes; ``None`` returns the residual blocks alone.
      channels: filters per residual block.
      kernel_sizes: the kernel sizes of the convolutions inside each block.
      bn_momentum: batch-norm momentum (as :func:`fcn`).

    Example:
      >>> import jax
      >>> from jaxcnn.models import resnet1d
      >>> resnet1d(5).init(jax.random.key(0), (64, 2))[0]
      (5,)
    """
    where = "resnet1d"
    channels = _check_ints(where, "channels", channels)
    kernel_sizes = _check_ints(where, "kernel_sizes", kernel_sizes)
    blocks, c_in = [], None
    for c in channels:
        blocks.append(_resnet_block(c_in, c, kernel_sizes, bn_momentum))
        c_in = c
    return _classifier(where, serial(*blocks), num_classes)


def _tcn_norm(norm, momentum):
    if norm == "batch":
        return batch_norm(momentum)
    return layer_norm() if norm == "layer" else identity()


def _tcn_block(in_channels, out_channels, kernel_size, dilation, rate, norm, momentum):
    def unit():
        return [conv(out_channels, kernel_size, padding="CAUSAL", dilation=dilation),
                _tcn_norm(norm, momentum), relu()] + ([dropout(rate)] if rate else [])

    shortcut = None if in_channels == out_channels else conv(out_channels, 1)
    return serial(residual(serial(*unit(), *unit()), shortcut), relu())


def tcn(num_classes=None, channels=64, kernel_size=3, dilations=(1, 2, 4, 8, 16, 32),
        rate=0.1, norm="layer", pool="avg", bn_momentum=0.9):
    """Temporal convolutional network: stacks of dilated causal convolutions with
    residual connections (WaveNet, van den Oord et al. 2016; Bai et al. 2018).

    Block ``i`` holds two ``conv(padding="CAUSAL", dilation=dilations[i]) -> norm ->
    relu -> dropout`` units, a residual connection (a ``1``-wide convolution where the
    channel count changes) and a ReLU. The output at time ``t`` depends on inputs at
    times ``<= t`` only; the receptive field is

    .. math::

       R = 1 + 2 (k - 1) \\sum_i d_i

    with :math:`k` = ``kernel_size`` and :math:`d_i` = ``dilations``. The default norm,
    a layer norm over channels at each time step, keeps training causal too (batch norm
    mixes times through its batch statistics while training).

    Args:
      num_classes: number of classes; ``None`` returns the causal stack alone.
      channels: filters of every convolution.
      kernel_size: the kernel size of every convolution.
      dilations: one dilation per residual block.
      rate: dropout probability after each unit (0 for none).
      norm: ``"layer"``, ``"batch"`` or ``"none"``.
      pool: ``"avg"`` (global average over time) or ``"last"`` (the last time step, the
        only one that has seen the whole series).
      bn_momentum: batch-norm momentum where ``norm="batch"``.

    Example:
      >>> import jax
      >>> from jaxcnn.models import tcn
      >>> tcn(num_classes=None, channels=8).init(jax.random.key(0), (100, 1))[0]
      (100, 8)
    """
    where = "tcn"
    check_positive_int(where, "channels", channels)
    check_positive_int(where, "kernel_size", kernel_size)
    dilations = _check_ints(where, "dilations", dilations)
    rate = check_rate(where, rate)
    check_choice(where, "norm", norm, ("layer", "batch", "none"))
    check_choice(where, "pool", pool, ("avg", "last"))
    blocks, c_in = [], None
    for d in dilations:
        blocks.append(_tcn_block(c_in, channels, kernel_size, d, rate, norm, bn_momentum))
        c_in = channels
    last = serial(_take_last(), flatten()) if pool == "last" else None
    return _classifier(where, serial(*blocks), num_classes, pool=last)


def _take_last():
    from jaxcnn.layers import stateless

    return stateless("last_step", lambda x: x[:, -1:, :])


def mnist1d_cnn(num_classes=10, channels=(64, 128, 256), rate=0.1, bn_momentum=0.9):
    """A small CNN for MNIST-1D (Greydanus 2020): length-40 series, ten classes.

    Stage ``i`` is two ``conv(channels[i], 3) -> batch_norm -> relu`` units; stages are
    separated by ``max_pool(2)``; then global average pooling, dropout and a dense layer.
    For ``(40, 1)`` inputs the stages see lengths 40, 20 and 10.

    Args:
      num_classes: number of classes; ``None`` returns the convolutional part alone.
      channels: filters per stage.
      rate: dropout probability before the head.
      bn_momentum: batch-norm momentum (batches of 128 here: 0.9 is enough).

    Example:
      >>> import jax
      >>> from jaxcnn.models import mnist1d_cnn
      >>> mnist1d_cnn().init(jax.random.key(0), (40, 1))[0]
      (10,)
    """
    where = "mnist1d_cnn"
    channels = _check_ints(where, "channels", channels)
    rate = check_rate(where, rate)
    layers = []
    for i, c in enumerate(channels):
        if i:
            layers.append(max_pool(2))
        layers += [conv_bn_relu(c, 3, momentum=bn_momentum),
                   conv_bn_relu(c, 3, momentum=bn_momentum)]
    pool = serial(global_avg_pool(), dropout(rate)) if rate else None
    return _classifier(where, serial(*layers), num_classes, pool=pool)
