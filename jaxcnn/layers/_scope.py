"""Layer paths at trace time: named scopes for profiles and jaxprs, and activation taps.

Combinators run each child inside :func:`child`, which pushes the child's key
(``"conv_0"``) onto a path and opens a ``jax.named_scope`` of the same name, so
every primitive of a traced network carries its layer path (``"block/conv_0"``);
:mod:`jaxcnn.summary` reads the paths back from the jaxpr. :func:`capture` records
the outputs of chosen layers during one forward pass; it is a trace-time Python
side effect, so it works the same under ``jax.jit``.
"""

from __future__ import annotations

import contextlib
import threading

import jax

_local = threading.local()


def _stack():
    if not hasattr(_local, "path"):
        _local.path, _local.taps, _local.entered, _local.inject = [], [], None, []
    return _local


def current_path() -> str:
    return "/".join(_stack().path)


@contextlib.contextmanager
def child(name: str, kind: str = ""):
    """Runs a child layer under ``name``: extends the path and the ``jax.named_scope``.

    ``kind`` (the child's ``Layer.name``) is reported to :func:`trace_paths`.
    """
    st = _stack()
    st.path.append(name)
    if st.entered is not None:
        st.entered.append((current_path(), kind or name))
    try:
        with jax.named_scope(name):
            yield
    finally:
        st.path.pop()


def record(y):
    """Adds any :func:`inject`-ed perturbation for the current path to ``y``, stores the
    result in every active :func:`capture`, and returns it."""
    st = _stack()
    if not st.taps and not st.inject:
        return y
    path = current_path()
    for perturbations in st.inject:
        if path in perturbations:
            y = y + perturbations[path]
    for wanted, found in st.taps:
        if wanted is None or path in wanted:
            found[path] = y
    return y


@contextlib.contextmanager
def inject(perturbations):
    """Adds ``perturbations[path]`` to the output of the layer at ``path`` during the
    forward passes inside the block. With zeros, the gradient with respect to the
    perturbation is the gradient with respect to that layer's output (Grad-CAM)."""
    st = _stack()
    st.inject.append(dict(perturbations))
    try:
        yield
    finally:
        st.inject.pop()


@contextlib.contextmanager
def capture(taps=None):
    """Collects the outputs of layers by path during the forward passes inside the block.

    Args:
      taps: layer paths to keep (e.g. ``["conv_0", "block/conv_1"]``), or ``None`` for all.

    Yields:
      A dict, filled as the forward pass runs, from path to output array.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import jaxcnn as jc
      >>> net = jc.serial(jc.conv(4, 3), jc.relu(), jc.flatten(), jc.dense(2))
      >>> _, params, state = net.init(jax.random.key(0), (6, 6, 1))
      >>> @jax.jit
      ... def features(params, x):
      ...     with jc.capture(["conv_0", "relu_1"]) as acts:
      ...         net.apply(params, state, x, train=False)
      ...     return acts
      >>> {k: v.shape for k, v in features(params, jnp.ones((1, 6, 6, 1))).items()}
      {'conv_0': (1, 4, 4, 4), 'relu_1': (1, 4, 4, 4)}
    """
    found: dict = {}
    entry = (None if taps is None else set(taps), found)
    st = _stack()
    st.taps.append(entry)
    try:
        yield found
    finally:
        st.taps.remove(entry)


@contextlib.contextmanager
def trace_paths():
    """Yields the list of ``(path, kind)`` in the order the forward pass enters layers."""
    st = _stack()
    previous, st.entered = st.entered, []
    try:
        yield st.entered
    finally:
        st.entered = previous
