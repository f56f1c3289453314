"""The optional native CPU convolution backend: oneDNN through the XLA FFI.

``jaxcnn/ops/native/dnnl_conv.cc`` is built at install time into ``jaxcnn/ops/_dnnl_conv*.so``
when a C++ compiler and the ``onednn-devel-cpu-gomp`` wheel are there (x86-64 Linux); it
links ``libdnnl.so.3`` from the ``onednn-cpu-gomp`` wheel. Nothing is loaded at
``import jaxcnn``: the library is loaded, and its handlers registered as FFI targets (a
convolution's forward, input gradient and kernel gradient; max and min pooling's training
passes, ``jaxcnn/ops/native/pool.cc``; batch norm's sums, ``jaxcnn/ops/native/norm.cc``),
the first time an op asks :func:`available`. A
missing library means the ``lax`` lowerings; a broken one logs one warning and means the
same. The handlers take float32, and bfloat16 where
:func:`bf16_available` (oneDNN has bfloat16 instructions for this CPU: AVX-512 BF16 or AMX).
In bfloat16 every pass accumulates in float32 and returns bfloat16, as ``lax`` does: the
kernel gradient too, accumulated into a float32 buffer and rounded once.

``$JAXCNN_NATIVE=0`` (or ``off``) turns the backend off; ``$JAXCNN_NATIVE_THREADS=k`` sets
the number of OpenMP threads each oneDNN call uses (default: the OpenMP runtime's). A pass
with fewer than :data:`SERIAL_BELOW_MACS` multiply-adds runs on its calling thread alone
(:func:`set_serial_below` changes the threshold).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import importlib.metadata
import logging
import os
from pathlib import Path

import jax
from jax._src.sharding_impls import ShardingContext

from jaxcnn._switches import switched_on

ENV_VAR = "JAXCNN_NATIVE"
THREADS_ENV_VAR = "JAXCNN_NATIVE_THREADS"


def _cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


# A pass with fewer multiply-adds runs on the calling thread alone where that measured faster:
# with AVX-512 kernels a small convolution ends before an OpenMP team pays for itself; with
# AVX2 kernels (about half the speed per core) the team pays even for LeNet-5's convolutions
# (`python benchmarks/native_threads.py`, benchmarks/results/native_threads*.md).
def _serial_below(flags):
    return 50_000_000 if "avx512f" in flags else 0


_FLAGS = _cpu_flags()
SERIAL_BELOW_MACS = _serial_below(_FLAGS)
HAS_AVX512 = "avx512f" in _FLAGS  # oneDNN's kernels differ by ISA (see _lowering.RULES)
TARGETS = {"forward": "jaxcnn_dnnl_conv_forward", "input_grad": "jaxcnn_dnnl_conv_input_grad",
           "kernel_grad": "jaxcnn_dnnl_conv_kernel_grad"}
# The kernel gradient of a 1-d, stride-1, ungrouped float32 convolution as matrix products.
ROWS_TARGET = "jaxcnn_dnnl_conv_kernel_grad_rows"
POOL_TARGETS = {"arg_extreme": "jaxcnn_native_pool_arg_extreme",
                "scatter": "jaxcnn_native_pool_scatter"}
NORM_TARGETS = {"moments": "jaxcnn_native_norm_moments",
                "dual_sums": "jaxcnn_native_norm_dual_sums"}
_SYMBOLS = {"forward": "JaxcnnConvForward", "input_grad": "JaxcnnConvInputGrad",
            "kernel_grad": "JaxcnnConvKernelGrad", "kernel_grad_rows": "JaxcnnConvKernelGradRows",
            "arg_extreme": "JaxcnnPoolArgExtreme",
            "scatter": "JaxcnnPoolScatter", "moments": "JaxcnnNormMoments",
            "dual_sums": "JaxcnnNormDualSums"}
_log = logging.getLogger("jaxcnn")


def enabled_by_environment():
    """False when ``$JAXCNN_NATIVE`` is ``0``, ``off``, ``false`` or ``no``."""
    return switched_on(ENV_VAR)


def extension_path():
    """The built library inside the package, or ``None``."""
    found = sorted(glob.glob(str(Path(__file__).with_name("_dnnl_conv")) + "*.so"))
    return found[0] if found else None


def _preload_dnnl():
    """Load ``libdnnl.so.3`` (from the ``onednn-cpu-gomp`` wheel, else the system's)
    process-wide, so the extension's dependency resolves wherever the wheel put it."""
    try:
        files = importlib.metadata.distribution("onednn-cpu-gomp").files or ()
        for f in files:
            if f.name == "libdnnl.so.3":
                return ctypes.CDLL(str(f.locate()), mode=ctypes.RTLD_GLOBAL)
    except importlib.metadata.PackageNotFoundError:
        pass
    return ctypes.CDLL("libdnnl.so.3", mode=ctypes.RTLD_GLOBAL)


@functools.lru_cache(maxsize=None)
def _load():
    """The loaded library with its FFI targets registered, or ``None``."""
    path = extension_path()
    if path is None:
        return None
    try:
        _preload_dnnl()
        lib = ctypes.CDLL(path)
        for pass_, target in {**TARGETS, "kernel_grad_rows": ROWS_TARGET,
                              **POOL_TARGETS, **NORM_TARGETS}.items():
            jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, _SYMBOLS[pass_])),
                                        platform="cpu")
        lib.JaxcnnSetThreads.restype = ctypes.c_int
        lib.JaxcnnSetThreads.argtypes = [ctypes.c_int]
        lib.JaxcnnSetSerialBelow.restype = ctypes.c_int64
        lib.JaxcnnSetSerialBelow.argtypes = [ctypes.c_int64]
        lib.JaxcnnSetSerialBelow(SERIAL_BELOW_MACS)
        lib.JaxcnnSetPreferJitAvx2.restype = ctypes.c_int
        lib.JaxcnnSetPreferJitAvx2.argtypes = [ctypes.c_int]
        threads = os.environ.get(THREADS_ENV_VAR, "").strip()
        if threads:
            lib.JaxcnnSetThreads(int(threads))
        return lib
    except (OSError, AttributeError, ValueError) as err:
        _log.warning("jaxcnn: the native convolution library %s could not be loaded (%s); "
                     "convolutions use lax", path, err)
        return None


def available():
    """True when the native backend is built, loads, and is not turned off by
    ``$JAXCNN_NATIVE``.

    Example:
      >>> from jaxcnn.ops import _native
      >>> isinstance(_native.available(), bool)
      True
    """
    return enabled_by_environment() and _load() is not None


@functools.lru_cache(maxsize=None)
def _has_bf16(lib):
    query = getattr(lib, "JaxcnnHasBf16", None)  # None: a library built before bfloat16
    if query is None:
        return False
    query.restype, query.argtypes = ctypes.c_int, []
    return bool(query())


def bf16_available():
    """True when :func:`available` and oneDNN runs bfloat16 convolutions with this CPU's
    bfloat16 instructions (its effective ISA includes AVX-512 BF16; ``$ONEDNN_MAX_CPU_ISA``
    can lower it). Without them bfloat16 convolutions keep their ``lax`` lowerings.

    Example:
      >>> from jaxcnn.ops import _native
      >>> isinstance(_native.bf16_available(), bool)
      True
    """
    return available() and _has_bf16(_load())


def call_runs_in(ctx):
    """True when a lowering rule's context ``ctx`` may emit a call to the library: a CPU
    program, the library loaded, not partitioned over several devices (XLA does not
    partition custom calls). Each caller adds its own dtype and shape conditions."""
    if tuple(ctx.module_context.platforms) != ("cpu",) or not available():
        return False
    axes = ctx.module_context.axis_context
    return not (isinstance(axes, ShardingContext) and axes.num_devices > 1)


def set_threads(n):
    """Make every later oneDNN call use ``n`` OpenMP threads (0: the OpenMP default);
    returns the previous setting, or ``None`` without the library."""
    lib = _load()
    return None if lib is None else lib.JaxcnnSetThreads(int(n))


def set_serial_below(macs):
    """Make every later oneDNN pass with fewer than ``macs`` multiply-adds run on one thread
    (0: none); returns the previous setting, or ``None`` without the library."""
    lib = _load()
    return None if lib is None else lib.JaxcnnSetSerialBelow(int(macs))


def set_prefer_jit_avx2(on):
    """Let later float32 oneDNN passes with fewer than 8 input channels (forward and input
    gradient, ungrouped) take oneDNN's ``jit:avx2`` kernels over its brgemm ones on CPUs
    without AVX-512 (``True``, the default: up to 1.9x faster there, ``benchmarks/README.md``),
    or oneDNN's first choice (``False``); returns the previous setting, or ``None`` without
    the library."""
    lib = _load()
    return None if lib is None else bool(lib.JaxcnnSetPreferJitAvx2(int(bool(on))))


__all__ = ["ENV_VAR", "THREADS_ENV_VAR", "TARGETS", "POOL_TARGETS", "NORM_TARGETS", "ROWS_TARGET",
           "available", "call_runs_in", "bf16_available",
           "enabled_by_environment", "extension_path", "set_prefer_jit_avx2", "set_serial_below",
           "set_threads"]
