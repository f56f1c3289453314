"""Image-to-image networks for 1-d, 2-d and 3-d inputs: a convolutional autoencoder and U-Net.

Both are built from the public layers and combinators; the rank comes from ``in_shape``
as for every layer. Both pool by 2 per level, so the spatial sizes are padded up to a
multiple of ``2 ** levels`` inside the model (zeros, split as evenly as possible between
the low and the high side) and the output is cropped back to the input's size: odd sizes
such as 28 with three levels, or 7, work and give an output of the input's size.

``conv_autoencoder`` (Masci et al. 2011; the Keras tutorial's layout): per level a
``conv 3 + relu`` and a 2x2 max pooling, a dense bottleneck of ``code_size`` units (linear,
so it can be plotted), and a mirrored decoder whose up-sampling is one of

* ``"transpose"``: a learned 2x2 stride-2 transposed convolution;
* ``"upsample"``: nearest-neighbour up-sampling (the next ``conv 3`` does the learning,
  Odena et al. 2016's resize-convolution);
* ``"unpool"``: max-unpooling with the encoder's pooling indices (SegNet, Badrinarayanan
  et al. 2017), which puts each value back where its maximum came from.

``unet`` (Ronneberger et al. 2015; Cicek et al. 2016 in 3-d): per level two ``conv 3 + norm
+ relu``, max pooling down, transposed convolution (or up-sampling + ``conv 3``) up, the
encoder's features concatenated to the decoder's at each level (``skip=False`` drops them,
leaving a plain encoder-decoder of the same depth), a ``1x1`` convolution to the class
logits. Convolutions use ``padding=1``, so no cropping of skip connections is needed.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxcnn import (Layer, batch_norm, concat, conv, conv_transpose, dense, flatten, group_norm,
                    identity, max_pool, parallel, relu, reshape, serial, stateless, upsample)
from jaxcnn import ops
from jaxcnn._checks import check_bool, check_choice, check_positive_int, fail, is_int
from jaxcnn.layers._base import (NOT_GIVEN, check_shape, check_spatial_shape, check_train,
                                 with_rank)

AE_UPS = ("transpose", "upsample", "unpool")
UNET_UPS = ("transpose", "upsample")
NORMS = ("batch", "group", "none")


def _check_widths(where, widths):
    if (not isinstance(widths, (tuple, list)) or not widths
            or not all(is_int(w) and w > 0 for w in widths)):
        fail(where, "widths", "a non-empty tuple of positive ints", widths)
    return tuple(int(w) for w in widths)


def _padding(size, multiple):
    extra = -size % multiple
    return extra // 2, extra - extra // 2


def pad_to_multiple(net: Layer, multiple: int, name: str) -> Layer:
    """``net`` applied to its input zero-padded up to a multiple of ``multiple`` along every
    spatial axis, its output cropped back to the input's spatial size (channels from
    ``net``). The params are ``net``'s own (no extra level in their paths).

    Example:
      >>> import jax
      >>> from jaxcnn import conv, max_pool, serial, upsample
      >>> net = serial(max_pool(2), upsample(scale_factor=2), conv(3, 1))
      >>> pad_to_multiple(net, 2, "net").init(jax.random.key(0), (7, 5, 1))[0]
      (7, 5, 3)
    """
    check_positive_int(name, "multiple", multiple)

    def init(key, in_shape):
        in_shape = check_shape(name, in_shape)
        check_spatial_shape(name, in_shape)
        padded = tuple(s + sum(_padding(s, multiple)) for s in in_shape[:-1]) + in_shape[-1:]
        out, params, state = net.init(key, padded)
        return tuple(in_shape[:-1]) + tuple(out[-1:]), params, state

    def apply(params, state, x, *, train=NOT_GIVEN, key=None):
        check_train(name, train)
        pads = [_padding(s, multiple) for s in x.shape[1:-1]]
        y, state = net.apply(params, state, jnp.pad(x, [(0, 0)] + pads + [(0, 0)]),
                             train=train, key=key)
        crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, x.shape[1:-1]))
        return y[(slice(None),) + crop], state

    return Layer(init, apply, name)


def _max_pool_indices():
    """2x2 max pooling returning ``(values, indices)`` for :func:`_max_unpool`."""
    return stateless("max_pool_indices", lambda x: ops.max_pool(x, 2, return_indices=True))


def _max_unpool():
    """``(values, indices) -> `` the 2x up-sampled map holding each value at its index."""
    where = "max_unpool"

    def init(key, in_shape):
        values, indices = check_shape(where, in_shape)
        if values != indices:
            fail(where, "the (values, indices) shapes", "equal", in_shape)
        return tuple(2 * s for s in values[:-1]) + values[-1:], {}, {}

    def apply(params, state, xs, *, train=NOT_GIVEN, key=None):
        check_train(where, train)
        return ops.max_unpool(xs[0], xs[1], 2), state

    return Layer(init, apply, where)


def _bottleneck(code_size):
    """``flatten -> dense(code_size) -> dense -> relu -> reshape`` back to the input's shape
    (built from the input shape, which ``init`` and ``apply`` both know)."""

    def net(shape):
        return serial(flatten(), dense(code_size), dense(math.prod(shape)), relu(),
                      reshape(shape))

    def init(key, in_shape):
        return net(check_shape("bottleneck", in_shape)).init(key, in_shape)

    def apply(params, state, x, *, train=NOT_GIVEN, key=None):
        return net(tuple(x.shape[1:])).apply(params, state, x, train=train, key=key)

    return Layer(init, apply, "bottleneck")


def conv_autoencoder(code_size: int = 32, *, out_channels: int = 1, widths=(16, 32),
                     up: str = "transpose") -> Layer:
    """A convolutional autoencoder; ``apply`` returns reconstruction logits.

    Train with :func:`jaxcnn.train.pixel_binary_cross_entropy` on images in ``[0, 1]``
    (``sigmoid`` of the output is the reconstruction) or with ``mse``. The code is the
    output of the bottleneck's first ``dense`` (path ``.../bottleneck/dense_1``; read it with
    :func:`jaxcnn.interpret.activations`).

    Args:
      code_size: units in the bottleneck.
      out_channels: channels of the reconstruction (the input's, for an autoencoder).
      widths: convolution channels per level, top to bottom; each level pools by 2.
      up: ``"transpose"``, ``"upsample"`` or ``"unpool"`` (see the module docstring).

    Params (2-d, ``in_shape`` ``(H, W, C)``, ``L = len(widths)``, ``s = H W / 4^L`` after
    padding): encoder ``9 C w_0 + w_0 + sum_i (9 w_{i-1} w_i + w_i)``; bottleneck
    ``(s w_L + 1) k + (k + 1) s w_L``; decoder per level ``i`` a ``conv 3`` from ``w_i`` to
    ``w_{i-1}`` (``C`` at the top) and for ``"transpose"`` a ``2x2`` transposed conv
    ``4 w_i^2 + w_i``. For ``(28, 28, 1)``, ``code_size=32``: 111,521 (``"upsample"`` and
    ``"unpool"``), 116,689 (``"transpose"``).

    Example:
      >>> import jax
      >>> from jaxcnn.models import conv_autoencoder
      >>> from jaxcnn.train import num_params
      >>> ae = conv_autoencoder(32, up="unpool")
      >>> out_shape, params, _ = ae.init(jax.random.key(0), (28, 28, 1))
      >>> out_shape, num_params(params)
      ((28, 28, 1), 111521)
    """
    where = "conv_autoencoder"
    check_positive_int(where, "code_size", code_size)
    check_positive_int(where, "out_channels", out_channels)
    widths = _check_widths(where, widths)
    check_choice(where, "up", up, AE_UPS)

    def level(i, out_c, top):
        w = widths[i]
        inner = _bottleneck(code_size) if i == len(widths) - 1 else level(i + 1, w, False)
        if up == "unpool":
            middle = [_max_pool_indices(), parallel(inner, identity()), _max_unpool()]
        else:
            lift = (conv_transpose(w, 2, stride=2) if up == "transpose"
                    else upsample(scale_factor=2))
            middle = [max_pool(2), inner, lift]
        tail = [conv(out_c, 3, padding=1)] + ([] if top else [relu()])
        return serial(conv(w, 3, padding=1), relu(), *middle, *tail)

    return pad_to_multiple(level(0, out_channels, True), 2 ** len(widths), where)


def _norm(norm, groups):
    if norm == "batch":
        return [batch_norm()]
    if norm == "group":
        return [group_norm(groups)]
    return []


def conv_block(width: int, norm: str = "batch", groups: int = 8) -> Layer:
    """U-Net's double convolution: ``(conv 3 -> norm -> relu) x 2`` with ``padding=1``
    (convolutions before a norm have no bias).

    Example:
      >>> import jax
      >>> from jaxcnn.models import conv_block
      >>> conv_block(16, "group", groups=4).init(jax.random.key(0), (9, 9, 9, 2))[0]
      (9, 9, 9, 16)
    """
    where = "conv_block"
    check_positive_int(where, "width", width)
    check_choice(where, "norm", norm, NORMS)
    check_positive_int(where, "groups", groups)
    if norm == "group" and width % groups:
        fail(where, "width", f"divisible by groups={groups} for group norm", width,
             "Choose a base width that is a multiple of groups, or pass groups=")
    bias = norm == "none"
    one = lambda: [conv(width, 3, padding=1, use_bias=bias), *_norm(norm, groups), relu()]  # noqa
    return serial(*one(), *one())


def unet(num_classes: int = 2, *, depth: int = 3, base_width: int = 16, norm: str = "batch",
         groups: int = 8, up: str = "transpose", skip: bool = True,
         ndim: int | None = None) -> Layer:
    """U-Net for 1-d, 2-d or 3-d inputs; ``apply`` returns per-pixel (per-voxel) logits
    ``(N, *spatial, num_classes)`` of the input's spatial size.

    Args:
      num_classes: output channels (class logits).
      depth: number of poolings; the widths are ``base_width * 2**d`` for ``d = 0..depth``.
      base_width: channels at the top level.
      norm: ``"batch"``, ``"group"`` (``groups`` groups) or ``"none"``.
      groups: for group norm; must divide every width.
      up: ``"transpose"`` (``2x2`` stride-2 transposed conv to the level's width) or
        ``"upsample"`` (nearest up-sampling then ``conv 3`` to the level's width).
      skip: concatenate the encoder's features to the decoder's at each level.
      ndim: ``1``, ``2`` or ``3`` fixes the number of spatial axes, and ``init`` then refuses
        an ``in_shape`` of another rank (the batch axis passed along is the usual mistake);
        ``None`` (the default) takes the rank from ``in_shape``.

    Params: with ``k = 3^n`` (``n`` spatial axes), ``w_d = base_width * 2^d`` and ``C`` input
    channels, level ``d``'s encoder block has ``k (c_in w_d + w_d^2)`` kernel weights
    (``c_in`` = ``C`` or ``w_{d-1}``), each decoder block ``k ((1 + skip) w_d w_d + w_d^2)``,
    each ``"transpose"`` up-step ``2^n w_{d+1} w_d + w_d``, batch/group norms ``2 w_d`` per
    convolution, and the head ``w_0 num_classes + num_classes``. For ``(64, 64, 1)`` with the
    defaults: 482,466 parameters (2-d), and 1,401,282 for ``(16, 16, 16, 1)`` (3-d).

    Example:
      >>> import jax
      >>> from jaxcnn.models import unet
      >>> from jaxcnn.train import num_params
      >>> net = unet(3, depth=2, base_width=8)
      >>> out_shape, params, _ = net.init(jax.random.key(0), (30, 27, 1))
      >>> out_shape, num_params(params)
      ((30, 27, 3), 29499)
    """
    where = "unet"
    check_positive_int(where, "num_classes", num_classes)
    check_positive_int(where, "depth", depth)
    check_positive_int(where, "base_width", base_width)
    check_choice(where, "up", up, UNET_UPS)
    skip = check_bool(where, "skip", skip)
    conv_block(base_width * 2 ** depth, norm, groups)  # checks norm and groups for every width
    if ndim is not None and (not is_int(ndim) or ndim not in (1, 2, 3)):
        fail(where, "ndim", "1, 2, 3 or None", ndim)

    def level(d):
        w = base_width * 2 ** d
        if d == depth:
            return conv_block(w, norm, groups)
        lift = (conv_transpose(w, 2, stride=2) if up == "transpose"
                else serial(upsample(scale_factor=2), conv(w, 3, padding=1)))
        down_up = serial(max_pool(2), level(d + 1), lift)
        middle = concat(identity(), down_up) if skip else down_up
        return serial(conv_block(w, norm, groups), middle, conv_block(w, norm, groups))

    net = pad_to_multiple(serial(level(0), conv(num_classes, 1)), 2 ** depth, where)
    return net if ndim is None else with_rank(net, ndim, where)

