"""``jaxcnn.jit``: ``jax.jit`` with the XLA compiler options jaxcnn measured to pay.

On CPU, jaxlib hands convolutions to YNNPACK fusions by default; for most float32 CNN
shapes those run slower than XLA's own convolution, while YNNPACK's matrix products stay
faster, so on CPU :func:`compiler_options` keeps YNNPACK for dots only (``python
benchmarks/ops.py`` measures the convolutions, ``python benchmarks/train_step.py`` whole
steps; see ``benchmarks/README.md``). For arguments of the dtypes in
:data:`XLA_DEFAULT_DTYPES` the option makes grouped and depthwise convolutions slower than
XLA's defaults (``python benchmarks/jit_dtypes.py``), so :func:`jit` compiles a function
called with any such argument with XLA's defaults. The option is per compiled function
(``jax.jit(..., compiler_options=...)``), so it changes nothing outside the functions
jaxcnn compiles, or that you compile with it.

``$JAXCNN_XLA_OPTIONS=none`` turns the options off (XLA's defaults), for comparison.

:func:`enable_compilation_cache` keeps compiled programs on disk between runs (JAX's
persistent compilation cache); the experiments turn it on (``--no-compile-cache`` off).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax
import numpy as np
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

from jaxcnn._checks import check_choice, fail

ENV_VAR = "JAXCNN_XLA_OPTIONS"
CACHE_ENV_VAR = "JAXCNN_CACHE_DIR"
_CPU = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
# Argument dtypes whose programs keep XLA's defaults: with YNNPACK on dots only, their
# grouped and depthwise convolutions ran slower (benchmarks/results/jit_dtypes.md).
XLA_DEFAULT_DTYPES = ("float64", "float16")


def compiler_options(backend=None, dtypes=None):
    """The XLA compiler options jaxcnn compiles with on ``backend`` (default: JAX's default
    backend) for a function whose array arguments have ``dtypes`` (``None``: not known): a
    dict for ``jax.jit(f, compiler_options=...)``; empty off CPU, when one of ``dtypes`` is
    in :data:`XLA_DEFAULT_DTYPES`, or when ``$JAXCNN_XLA_OPTIONS=none``.

    Example:
      >>> import jax, jaxcnn
      >>> f = jax.jit(lambda x: x + 1, compiler_options=jaxcnn.compiler_options())
      >>> jaxcnn.compiler_options("cpu", dtypes=["float64"])
      {}
    """
    value = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    check_choice("jaxcnn XLA options", f"${ENV_VAR}", value, ("auto", "none"))
    backend = jax.default_backend() if backend is None else backend
    if value == "none" or backend != "cpu":
        return {}
    if dtypes is not None and any(_name(d) in XLA_DEFAULT_DTYPES for d in dtypes):
        return {}
    return dict(_CPU)


def _name(dtype):
    try:
        return np.dtype(dtype).name
    except TypeError:  # JAX's extended dtypes (PRNG keys)
        return str(dtype)


def _dtypes(args, kwargs):
    """The dtypes of the array leaves of a call's arguments."""
    return {getattr(leaf, "dtype", None) for leaf in jax.tree.leaves((args, kwargs))} - {None}


class _Jitted:
    """``jax.jit(fun, **kwargs)`` compiled with the options for the arguments' dtypes: one
    ``jax.jit`` per set of options, chosen on each call from the arguments (a dtype change
    retraces under ``jax.jit`` anyway)."""

    def __init__(self, fun, options, kwargs):
        functools.update_wrapper(self, fun)
        self._fun, self._options, self._kwargs = fun, options, kwargs
        self._jits, self._by_dtypes = {}, {}

    def _jit_for(self, args, kwargs):
        dtypes = frozenset(_dtypes(args, kwargs))
        known = (dtypes, os.environ.get(ENV_VAR))  # options worked out once per dtype set
        jitted = self._by_dtypes.get(known)
        if jitted is None:
            options = {**compiler_options(dtypes=dtypes), **self._options}
            key = tuple(sorted(options.items()))
            if key not in self._jits:
                self._jits[key] = jax.jit(self._fun, compiler_options=options or None,
                                          **self._kwargs)
            jitted = self._by_dtypes[known] = self._jits[key]
        return jitted

    def __call__(self, *args, **kwargs):
        return self._jit_for(args, kwargs)(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self._jit_for(args, kwargs).lower(*args, **kwargs)

    def trace(self, *args, **kwargs):
        return self._jit_for(args, kwargs).trace(*args, **kwargs)

    def eval_shape(self, *args, **kwargs):
        return self._jit_for(args, kwargs).eval_shape(*args, **kwargs)

    def _cache_size(self):
        return sum(j._cache_size() for j in self._jits.values())

    def clear_cache(self):
        for j in self._jits.values():
            j.clear_cache()

    def __get__(self, obj, objtype=None):  # a method: bind like a function
        return self if obj is None else functools.partial(self, obj)


def jit(fun, **kwargs):
    """``jax.jit(fun, **kwargs)`` with :func:`compiler_options` for the arguments' dtypes
    merged under any ``compiler_options`` given (yours win). Every function jaxcnn's
    training engine compiles goes through it; use it for your own steps to get the same
    code generation. The result is called, lowered and traced like ``jax.jit``'s.

    Example:
      >>> import jax.numpy as jnp, jaxcnn
      >>> double = jaxcnn.jit(lambda x: 2 * x)
      >>> double(jnp.ones(2))
      Array([2., 2.], dtype=float32)
    """
    return _Jitted(fun, kwargs.pop("compiler_options", None) or {}, kwargs)


def enable_compilation_cache(path=None, *, min_compile_time_s=0.0):
    """Keep every compiled program on disk and reuse it in later runs (JAX's persistent
    compilation cache, ``jax_compilation_cache_dir``), so a rerun of the same experiment
    skips XLA's compile. Returns the cache folder: ``path``, else ``$JAXCNN_CACHE_DIR``,
    else ``~/.cache/jaxcnn/xla``. Programs that compiled in less than
    ``min_compile_time_s`` are not written (JAX's default is 1 s; 0 keeps the many small
    programs of eager initialisation too).

    This sets process-wide JAX configuration, so a library does not call it on import; the
    experiments call it first thing (``--no-compile-cache`` to skip): on CPU, compiling is
    much of a short run's wall time. As JAX warns, a cache folder is trusted code: do not
    point it at a folder others can write. The folder only grows (a few hundred KB per
    model); deleting it at any time is safe.

    Example (not run as a doctest: it changes the configuration of the whole process)::

        import jaxcnn
        jaxcnn.enable_compilation_cache()    # -> PosixPath('~/.cache/jaxcnn/xla'), expanded
    """
    where = "enable_compilation_cache"
    if not isinstance(min_compile_time_s, (int, float)) or isinstance(min_compile_time_s, bool) \
            or not min_compile_time_s >= 0:
        fail(where, "min_compile_time_s", "a number >= 0 (seconds)", min_compile_time_s)
    if path is None:
        path = os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "jaxcnn" / "xla"
    if not isinstance(path, (str, os.PathLike)):
        fail(where, "path", "a folder path (str or os.PathLike)", path, exc=TypeError)
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        fail(where, "path", "a folder (or a path to create one at)", str(folder),
             "It is an existing file")
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    _jax_cache.set_cache_dir(str(folder))
    _jax_cache.reset_cache()  # a cache JAX already opened (or found unset) is re-read
    return folder


__all__ = ["CACHE_ENV_VAR", "ENV_VAR", "XLA_DEFAULT_DTYPES", "compiler_options",
           "enable_compilation_cache", "jit"]
