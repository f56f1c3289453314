"""Build of jaxcnn's optional native convolution backend (everything else is in pyproject.toml).

``jaxcnn/ops/native/dnnl_conv.cc`` becomes ``jaxcnn/ops/_dnnl_conv*.so``: XLA FFI handlers on
oneDNN, compiled against the headers of the ``onednn-devel-cpu-gomp`` wheel and jaxlib's FFI
headers (both build requirements on x86-64 Linux) and linked to ``libdnnl.so.3`` of the
``onednn-cpu-gomp`` wheel (a runtime dependency there). The extension is optional: without a
C++ compiler or the wheels the install still succeeds and jaxcnn uses its ``lax`` lowerings.
"""

import importlib.metadata
import importlib.util
import os
import platform
import sys
from pathlib import Path

from setuptools import Extension, setup


def _wheel_dir(dist, filename, up):
    """The folder ``up`` levels above ``filename`` inside the installed ``dist``, or None."""
    try:
        files = importlib.metadata.distribution(dist).files or ()
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).replace("\\", "/").endswith(filename):
            path = Path(f.locate()).resolve()
            for _ in range(up):
                path = path.parent
            return str(path)
    return None


def _ffi_include():
    spec = importlib.util.find_spec("jaxlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    include = Path(list(spec.submodule_search_locations)[0]) / "include"
    return str(include) if (include / "xla" / "ffi" / "api" / "ffi.h").exists() else None


def native_extensions():
    """The oneDNN extension when its headers and library are installed, else nothing."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return []
    if os.environ.get("JAXCNN_NATIVE", "").strip().lower() in ("0", "off", "false", "no"):
        return []
    dnnl_include = _wheel_dir("onednn-devel-cpu-gomp", "oneapi/dnnl/dnnl.hpp", 3)
    dnnl_lib = _wheel_dir("onednn-cpu-gomp", "libdnnl.so.3", 1)
    ffi_include = _ffi_include()
    if not (dnnl_include and dnnl_lib and ffi_include):
        print("jaxcnn: oneDNN headers, libdnnl.so.3 or jaxlib's FFI headers not found; "
              "building without the native convolution backend", file=sys.stderr)
        return []
    return [Extension(
        "jaxcnn.ops._dnnl_conv", sources=["jaxcnn/ops/native/dnnl_conv.cc",
                                          "jaxcnn/ops/native/pool.cc",
                                          "jaxcnn/ops/native/norm.cc"],
        include_dirs=[dnnl_include, ffi_include], library_dirs=[dnnl_lib],
        libraries=[":libdnnl.so.3"], extra_compile_args=["-std=c++17", "-O3", "-fno-trapping-math",
                                                        "-Wno-return-type"],
        language="c++", optional=True)]


setup(ext_modules=native_extensions())
