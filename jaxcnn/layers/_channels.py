"""Channel plumbing for porting architectures: ``channel_split`` (ShuffleNetV2's split,
PyTorch's ``torch.split``/``chunk`` over channels) and ``channel_shuffle``
(``nn.ChannelShuffle``), both channels-last and without parameters."""

from __future__ import annotations

from jaxcnn._checks import check_positive_int, fail, is_int
from jaxcnn.layers._base import is_multi, layer, stateless


def _sizes(where, sections, channels):
    if is_int(sections):
        if channels % sections:
            fail(where, "the channel count", f"divisible by sections={sections}", channels,
                 "Pass a tuple of sizes for unequal parts")
        return (channels // sections,) * sections
    if sum(sections) != channels:
        fail(where, "sum(sections)", f"the channel count {channels}", sum(sections))
    return tuple(sections)


def channel_split(sections):
    """Splits the channels into a tuple of inputs (for :func:`jaxcnn.parallel`).

    Args:
      sections: an int ``k`` (``k`` equal parts, as ``torch.chunk(x, k, dim=1)``) or a
        tuple of part sizes summing to the channel count (as ``torch.split(x, sizes, 1)``).

    Example:
      >>> import jax
      >>> from jaxcnn import channel_split
      >>> channel_split(2).init(jax.random.key(0), (8, 8, 6))[0]
      ((8, 8, 3), (8, 8, 3))
      >>> channel_split((1, 5)).init(jax.random.key(0), (4, 6))[0]
      ((4, 1), (4, 5))
    """
    where = "channel_split"
    if is_int(sections):
        if sections < 1:
            fail(where, "sections", "a positive int or a tuple of positive ints", sections)
    elif not (isinstance(sections, (tuple, list)) and sections
              and all(is_int(s) and s > 0 for s in sections)):
        fail(where, "sections", "a positive int or a tuple of positive ints", sections,
             exc=TypeError)

    def init_params(key, in_shape):
        if is_multi(in_shape):
            fail(where, "in_shape", "one shape (*spatial, C)", in_shape)
        _sizes(where, sections, in_shape[-1])
        return {}, {}

    def forward(params, state, x, train, key):
        ends, out = 0, []
        for size in _sizes(where, sections, x.shape[-1]):
            out.append(x[..., ends:ends + size])
            ends += size
        return tuple(out), state

    return layer(where, init_params, forward)


def channel_shuffle(groups):
    """ShuffleNet's channel shuffle (PyTorch's ``nn.ChannelShuffle(groups)``): channel
    ``i * (C / g) + j`` moves to ``j * g + i``, so the next grouped convolution sees
    channels from every group.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import channel_shuffle
      >>> y, _ = channel_shuffle(2).apply({}, {}, jnp.arange(6.0).reshape(1, 6), train=False)
      >>> y[0].tolist()
      [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    """
    where = "channel_shuffle"
    check_positive_int(where, "groups", groups)

    def shuffle(x):
        c = x.shape[-1]
        if c % groups:
            fail(where, "the channel count", f"divisible by groups={groups}", c)
        y = x.reshape(x.shape[:-1] + (groups, c // groups))
        return y.swapaxes(-1, -2).reshape(x.shape)

    return stateless(where, shuffle)
