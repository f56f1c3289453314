"""``jaxcnn.jit``: ``jax.jit`` with the XLA compiler options jaxcnn measured to pay.

On CPU, jaxlib 0.10 hands convolutions to YNNPACK fusions by default; on the 2-core
AVX-512 machine of ``benchmarks/README.md`` those ran 2-6x slower than XLA's own
convolution for most CNN shapes (a 2-d 3x3 32->96 convolution on 448x14x14: 95 ms with
YNNPACK, 21 ms without), while YNNPACK's matrix products stay faster (patches @ kernel:
5.9 ms vs 8.4 ms). So on CPU :func:`compiler_options` keeps YNNPACK for dots only. The
option is per compiled function (``jax.jit(..., compiler_options=...)``), so it changes
nothing outside the functions jaxcnn compiles, or that you compile with it.

``$JAXCNN_XLA_OPTIONS=none`` turns the options off (XLA's defaults), for comparison.
"""

from __future__ import annotations

import os

import jax

from jaxcnn._checks import check_choice

ENV_VAR = "JAXCNN_XLA_OPTIONS"
_CPU = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


def compiler_options(backend=None):
    """The XLA compiler options jaxcnn compiles with on ``backend`` (default: JAX's default
    backend): a dict for ``jax.jit(f, compiler_options=...)``; empty off CPU or when
    ``$JAXCNN_XLA_OPTIONS=none``.

    Example:
      >>> import jax, jaxcnn
      >>> f = jax.jit(lambda x: x + 1, compiler_options=jaxcnn.compiler_options())
    """
    value = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    check_choice(value, ("auto", "none"), "jaxcnn XLA options", f"${ENV_VAR}")
    backend = jax.default_backend() if backend is None else backend
    if value == "none" or backend != "cpu":
        return {}
    return dict(_CPU)


def jit(fun, **kwargs):
    """``jax.jit(fun, **kwargs)`` with :func:`compiler_options` merged under any
    ``compiler_options`` given (yours win). Every function jaxcnn's training engine compiles
    goes through it; use it for your own steps to get the same code generation.

    Example:
      >>> import jax.numpy as jnp, jaxcnn
      >>> double = jaxcnn.jit(lambda x: 2 * x)
      >>> double(jnp.ones(2))
      Array([2., 2.], dtype=float32)
    """
    options = {**compiler_options(), **(kwargs.pop("compiler_options", None) or {})}
    return jax.jit(fun, compiler_options=options or None, **kwargs)


__all__ = ["ENV_VAR", "compiler_options", "jit"]
