"""Padding layers: ``pad`` and ``crop`` (:func:`jaxcnn.ops.pad`, :func:`jaxcnn.ops.crop` as
layers) and ``match_spatial``, which pads or crops the inputs of a tuple to one of them
(the U-Net up-step, where the padding depends on a sibling branch's shape)."""

from __future__ import annotations

from jaxcnn import ops
from jaxcnn._checks import check_choice, fail, is_int
from jaxcnn._window import PAD_MODES
from jaxcnn.layers._base import is_multi, layer, stateless


def pad(padding, mode="zeros", value=0.0):
    """Pads the spatial axes (PyTorch's ``nn.ZeroPad2d``, ``nn.ReflectionPad1d``, ...,
    ``nn.ConstantPad3d``); see :func:`jaxcnn.ops.pad`.

    Args:
      padding: an int, one int per spatial axis, or one ``(low, high)`` pair per axis
        (PyTorch's ``(left, right, top, bottom)`` for 2-d is ``((top, bottom), (left,
        right))`` here).
      mode: ``"zeros"``, ``"constant"`` (with ``value``), ``"reflect"``, ``"replicate"``
        or ``"circular"``.
      value: the fill of ``"constant"``.

    Example:
      >>> import jax
      >>> from jaxcnn import pad
      >>> pad(((0, 1), (2, 2)), "reflect").init(jax.random.key(0), (5, 5, 3))[0]
      (6, 9, 3)
    """
    check_choice("pad", "mode", mode, PAD_MODES)
    return stateless("pad", lambda x: ops.pad(x, padding, mode, value))


def crop(cropping):
    """Removes ``cropping`` elements from the spatial axes (Keras's ``Cropping2D``); see
    :func:`jaxcnn.ops.crop`.

    Example:
      >>> import jax
      >>> from jaxcnn import crop
      >>> crop((1, (0, 2))).init(jax.random.key(0), (8, 8, 3))[0]
      (6, 6, 3)
    """
    return stateless("crop", lambda x: ops.crop(x, cropping))


def _pairs(size, target):
    diff = target - size
    return (diff // 2, diff - diff // 2)


def match_spatial(reference=0, mode="zeros"):
    """Pads (or crops) every input of a tuple to the spatial size of input ``reference``.

    The difference is split as PyTorch U-Nets split it (``F.pad(x1, [diff // 2, diff -
    diff // 2, ...])``): ``diff // 2`` before, the rest after; a negative difference crops
    the same way. Put it between :func:`jaxcnn.parallel` and :func:`jaxcnn.fan_in_concat`
    when a skip connection and an upsampled map differ by one pixel (odd input sizes).

    Args:
      reference: the index of the input whose spatial size the others take.
      mode: the padding mode, as for :func:`pad`.

    Example:
      >>> import jax
      >>> from jaxcnn import match_spatial
      >>> match_spatial().init(jax.random.key(0), ((7, 7, 4), (6, 6, 8), (9, 8, 2)))[0]
      ((7, 7, 4), (7, 7, 8), (7, 7, 2))
    """
    where = "match_spatial"
    if not is_int(reference):
        fail(where, "reference", "an int (the index of an input)", reference, exc=TypeError)
    check_choice(where, "mode", mode, PAD_MODES)

    def init_params(key, in_shape):
        if not is_multi(in_shape):
            fail(where, "in_shape", "a tuple of shapes (the outputs of parallel branches)",
                 in_shape)
        if not -len(in_shape) <= reference < len(in_shape):
            fail(where, "reference", f"an index in [0, {len(in_shape)})", reference)
        if len({len(s) for s in in_shape}) != 1:
            fail(where, "the inputs' ranks", "equal", in_shape)
        return {}, {}

    def forward(params, state, xs, train, key):
        target = xs[reference].shape[1:-1]
        out = []
        for x in xs:
            pairs = [_pairs(n, t) for n, t in zip(x.shape[1:-1], target)]
            grow = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
            shrink = [(max(-lo, 0), max(-hi, 0)) for lo, hi in pairs]
            x = ops.pad(x, grow, mode) if any(map(any, grow)) else x
            out.append(ops.crop(x, shrink) if any(map(any, shrink)) else x)
        return tuple(out), state

    return layer(where, init_params, forward)
