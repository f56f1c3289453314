"""Looking inside a trained network: activations by layer path, saliency, Grad-CAM.

All functions are pure JAX (jit-able); :mod:`jaxcnn.viz` plots their results.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcnn._checks import fail
from jaxcnn.layers._base import check_model
from jaxcnn.layers._scope import capture, inject


def activations(model, params, state, x, taps=None):
    """Outputs of the layers at ``taps`` (paths; ``None``: every layer) for input ``x``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import jaxcnn as jc
      >>> net = jc.serial(jc.conv(4, 3), jc.relu(), jc.flatten(), jc.dense(2))
      >>> _, params, state = net.init(jax.random.key(0), (6, 6, 1))
      >>> acts = jc.interpret.activations(net, params, state, jnp.ones((1, 6, 6, 1)), ["relu_1"])
      >>> acts["relu_1"].shape
      (1, 4, 4, 4)
    """
    check_model("activations", model)
    with capture(taps) as acts:
        model.apply(params, state, x, train=False)
    if taps is not None:
        missing = [t for t in taps if t not in acts]
        if missing:
            fail("activations", "taps", "layer paths of the model (see jaxcnn.summary(...).rows)",
                 missing)
    return dict(acts)


def _class_score(logits, class_index):
    if class_index is None:
        class_index = jnp.argmax(logits, axis=-1)
    class_index = jnp.broadcast_to(jnp.asarray(class_index), logits.shape[:1])
    return jnp.take_along_axis(logits, class_index[:, None], axis=-1).sum()


def saliency(model, params, state, x, class_index=None):
    """Gradient of the class score (the predicted class by default) with respect to the
    input (Simonyan et al. 2014); same shape as ``x``."""
    check_model("saliency", model)
    return jax.grad(lambda x: _class_score(model.apply(params, state, x, train=False)[0],
                                           class_index))(x)


def grad_cam(model, params, state, x, layer, class_index=None):
    """Grad-CAM (Selvaraju et al. 2017) for the conv layer at path ``layer``.

    .. math::
       \\alpha_k = \\frac{1}{Z} \\sum_{u} \\frac{\\partial y^c}{\\partial A^k_u}, \\qquad
       L = \\mathrm{ReLU}\\Big(\\sum_k \\alpha_k A^k\\Big)

    with :math:`A^k` channel :math:`k` of the layer's output, :math:`u` its spatial
    positions (:math:`Z` of them) and :math:`y^c` the score of class ``class_index``
    (the predicted class by default). Works for 1, 2 and 3 spatial axes.

    Returns:
      ``(N, *layer_spatial)``, the map at the layer's resolution; resize it to the input
      with ``jaxcnn.ops.upsample`` or ``jax.image.resize`` to overlay.
    """
    check_model("grad_cam", model)
    act_shape = jax.eval_shape(lambda: activations(model, params, state, x, [layer])[layer])
    if len(act_shape.shape) < 3:
        fail("grad_cam", f"the output of layer {layer!r}", "spatial (N, *spatial, C)",
             act_shape.shape, "Pick a conv layer before flatten/global pooling")

    def score(delta):
        with inject({layer: delta}), capture([layer]) as acts:
            logits, _ = model.apply(params, state, x, train=False)
        return _class_score(logits, class_index), acts[layer]

    grads, acts = jax.grad(score, has_aux=True)(jnp.zeros(act_shape.shape, act_shape.dtype))
    spatial = tuple(range(1, grads.ndim - 1))
    weights = grads.mean(axis=spatial, keepdims=True)
    return jax.nn.relu((weights * acts).sum(axis=-1))
