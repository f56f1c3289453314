"""The size arithmetic every CNN introduction teaches, with PyTorch's conventions.

.. math::
   out = \\left\\lfloor \\frac{W + P_{lo} + P_{hi} - D (K - 1) - 1}{S} \\right\\rfloor + 1

(``ceil`` instead of ``floor`` with ``ceil_mode``, where the last window must start
inside the input or the left padding, as in PyTorch's pooling). These are the formulas
that :mod:`jaxcnn.ops` and the layers compute with (``jaxcnn/_window.py``), here with
checked arguments.
"""

from __future__ import annotations

from jaxcnn import _window
from jaxcnn._checks import check_positive_int, fail, is_int


def _pair(p):
    return (p, p) if is_int(p) else tuple(p)


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding=0, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """Output length along one axis of a convolution or pooling window.

    ``padding`` is an int (both sides) or a ``(low, high)`` pair.

    Example:
      >>> from jaxcnn.geometry import conv_output_size
      >>> conv_output_size(32, 5), conv_output_size(28, 5, padding=2)
      (28, 28)
      >>> conv_output_size(5, 2, 2, ceil_mode=True)
      3
    """
    for name, v in (("size", size), ("kernel_size", kernel_size), ("stride", stride),
                    ("dilation", dilation)):
        check_positive_int("conv_output_size", name, v, "an int >= 1")
    lo, hi = _pair(padding)
    window = dilation * (kernel_size - 1) + 1
    if size + lo + hi < window:
        fail("conv_output_size", "the padded size", f">= the dilated kernel size {window}",
             size + lo + hi)
    return _window.output_size(size, kernel_size, stride, (lo, hi), dilation, ceil_mode)


def same_padding(size: int, kernel_size: int, stride: int = 1, dilation: int = 1):
    """The ``(low, high)`` padding giving ``ceil(size / stride)`` outputs (``"SAME"``);
    the extra element, if any, goes at the end, as in TensorFlow and ``lax``.

    Example:
      >>> from jaxcnn.geometry import same_padding
      >>> same_padding(28, 5), same_padding(32, 3, stride=2), same_padding(10, 3, dilation=2)
      ((2, 2), (0, 1), (2, 2))
    """
    return _window.same_padding(size, kernel_size, stride, dilation)


def conv_transpose_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """``(size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1``.

    Example:
      >>> from jaxcnn.geometry import conv_transpose_output_size
      >>> conv_transpose_output_size(7, 3, stride=2, padding=1, output_padding=1)
      14
    """
    return _window.transpose_output_size(size, kernel_size, stride, (padding, padding),
                                         dilation, output_padding)


def conv_transpose_padding(size: int, target: int, kernel_size: int, stride: int = 1,
                           dilation: int = 1):
    """The ``(padding, output_padding)`` that make a transposed convolution map ``size``
    to ``target``, with the smallest symmetric padding.

    Example:
      >>> from jaxcnn.geometry import conv_transpose_padding
      >>> conv_transpose_padding(7, 14, kernel_size=3, stride=2)
      (1, 1)
      >>> conv_transpose_padding(16, 32, kernel_size=4, stride=2)
      (1, 0)
    """
    base = _window.transpose_output_size(size, kernel_size, stride, (0, 0), dilation)
    limit = max(stride, dilation)
    for padding in range(0, dilation * (kernel_size - 1) + 1):
        output_padding = target - (base - 2 * padding)
        if 0 <= output_padding < limit:
            return padding, output_padding
    fail("conv_transpose_padding", "target", f"reachable from size {size} with kernel_size "
         f"{kernel_size}, stride {stride} and dilation {dilation} (between "
         f"{max(base - 2 * dilation * (kernel_size - 1), 1)} and {base + limit - 1})", target,
         "Change the kernel size or stride")


def receptive_field_of_stack(layers):
    """Receptive field, jump and start of a plain stack of windows.

    ``layers`` is a sequence of ``(kernel_size, stride, padding, dilation)`` along one axis;
    returns ``(r, j, start)``: each output sees ``r`` inputs, neighbouring outputs are ``j``
    inputs apart, and the first output's window is centred at input coordinate ``start``.

    .. math::
       r_{l} = r_{l-1} + d_l (k_l - 1) j_{l-1}, \\quad j_l = j_{l-1} s_l, \\quad
       start_l = start_{l-1} + \\left(\\tfrac{d_l (k_l - 1)}{2} - p_l\\right) j_{l-1}

    Example:
      >>> from jaxcnn.geometry import receptive_field_of_stack
      >>> receptive_field_of_stack([(3, 1, 1, 1)] * 3)[0]
      7
    """
    field = (1, 1, 0.5)
    for k, s, p, d in layers:
        field = _window.receptive_step(field, k, s, _pair(p)[0], d)
    return field


__all__ = ["conv_output_size", "same_padding", "conv_transpose_output_size",
           "conv_transpose_padding", "receptive_field_of_stack"]
