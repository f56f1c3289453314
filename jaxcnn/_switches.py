"""The environment switches jaxcnn reads at import (``$JAXCNN_NATIVE``,
``$JAXCNN_HOST_MALLOC``, ``$JAXCNN_HOST_THREADS``) and whether JAX's backend has started;
imports nothing but ``os``, so the modules that must run before JAX starts can use it."""

from __future__ import annotations

import os

OFF = ("0", "off", "false", "no")


def switched_on(var, environ=None):
    """False when ``$var`` is ``0``, ``off``, ``false`` or ``no`` (any case, spaces ignored).

    Example:
      >>> switched_on("X", {"X": " Off "}), switched_on("X", {})
      (False, True)
    """
    environ = os.environ if environ is None else environ
    return environ.get(var, "").strip().lower() not in OFF


def backend_started():
    """True when a JAX backend (and so XLA's thread pool) exists already."""
    try:
        from jax._src import xla_bridge
        return bool(getattr(xla_bridge, "_backends", {}))
    except ImportError:
        return False
