"""Losses against numpy references written here; every error message of the loss module."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.train import binary_cross_entropy, mse, softmax_cross_entropy
from jaxcnn.train._losses import resolve_loss

TOL = dict(rtol=2e-5, atol=2e-6)


def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_ce(z, y, eps=0.0, w=None, m=None):
    n, c = z.shape
    logp = np_log_softmax(z.astype(np.float64))
    q = np.full((n, c), eps / c)
    q[np.arange(n), y] += 1.0 - eps
    per = -(q * logp).sum(axis=1)
    weights = np.ones(n) if m is None else m.astype(np.float64)
    if w is not None:
        weights = weights * np.asarray(w, np.float64)[y]
    return (per * weights).sum() / weights.sum()


def np_bce(z, y, eps=0.0, w=None, m=None):
    z = z.astype(np.float64)
    t = y * (1 - eps) + eps / 2
    p = 1 / (1 + np.exp(-z))
    per = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    weights = np.ones(len(z)) if m is None else m.astype(np.float64)
    if w is not None:
        weights = weights * np.asarray(w, np.float64)[y]
    return (per * weights).sum() / weights.sum()


@pytest.mark.parametrize("seed", range(6))
def test_cross_entropy_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 9)), int(rng.integers(2, 7))
    z = (3 * rng.normal(size=(n, c))).astype(np.float32)
    y = rng.integers(0, c, n).astype(np.int32)
    eps = [0.0, 0.1, 0.3][seed % 3]
    w = rng.uniform(0.2, 3.0, c) if seed % 2 else None
    m = (rng.uniform(size=n) < 0.7).astype(np.float32)
    m[0] = 1.0
    got = softmax_cross_entropy(z, y, label_smoothing=eps, class_weights=w, mask=m)
    np.testing.assert_allclose(got, np_ce(z, y, eps, w, m), **TOL)


def test_cross_entropy_hand_case_and_pytorch_weight_semantics():
    # Uniform logits over 4 classes: every example costs log 4, whatever the smoothing.
    z = np.zeros((3, 4), np.float32)
    y = np.array([0, 1, 3], np.int32)
    np.testing.assert_allclose(softmax_cross_entropy(z, y, label_smoothing=0.2), np.log(4), **TOL)
    # Class weights: weighted mean with the weights' sum as denominator (torch's 'mean').
    z = np.array([[2.0, 0.0], [0.0, 1.0]], np.float32)
    y = np.array([0, 1], np.int32)
    l0, l1 = np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0))
    np.testing.assert_allclose(softmax_cross_entropy(z, y, class_weights=[1.0, 3.0]),
                               (l0 + 3 * l1) / 4, **TOL)


def test_cross_entropy_all_masked_is_zero():
    z = np.ones((2, 3), np.float32)
    assert float(softmax_cross_entropy(z, np.zeros(2, np.int32), mask=np.zeros(2))) == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_binary_cross_entropy_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    n = 7
    z = (4 * rng.normal(size=(n, 1))).astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.int32)
    eps = 0.1 if seed % 2 else 0.0
    w = [0.5, 2.0] if seed >= 2 else None
    m = np.array([1, 1, 0, 1, 1, 0, 1], np.float32)
    got = binary_cross_entropy(z, y, label_smoothing=eps, class_weights=w, mask=m)
    np.testing.assert_allclose(got, np_bce(z[:, 0], y, eps, w, m), **TOL)


def test_binary_cross_entropy_is_stable_for_large_logits():
    z = np.array([100.0, -100.0], np.float32)
    np.testing.assert_allclose(binary_cross_entropy(z, np.array([1, 0])), 0.0, atol=1e-6)
    np.testing.assert_allclose(binary_cross_entropy(z, np.array([0, 1])), 100.0, rtol=1e-6)


def test_mse_matches_numpy():
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    m = np.array([1, 0, 1, 1, 0], np.float32)
    ref = (((p - t) ** 2).mean(axis=1) * m).sum() / m.sum()
    np.testing.assert_allclose(mse(p, t, mask=m), ref, **TOL)
    np.testing.assert_allclose(mse(p[:, :1], t[:, 0]), ((p[:, 0] - t[:, 0]) ** 2).mean(), **TOL)


def test_loss_errors():
    z = jnp.zeros((2, 3))
    with pytest.raises(TypeError, match="softmax_cross_entropy: labels must be integer class "
                                        "indices, got 'float32'. Use optax"):
        softmax_cross_entropy(z, jnp.zeros((2,)))
    with pytest.raises(ValueError, match=r"labels shape must be logits.shape\[:-1\] = \(2,\), "
                                         r"got \(3,\)"):
        softmax_cross_entropy(z, jnp.zeros((3,), jnp.int32))
    with pytest.raises(ValueError, match=r"label_smoothing must be a float in \[0, 1\), got 1.0"):
        softmax_cross_entropy(z, jnp.zeros((2,), jnp.int32), label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"class_weights must be a sequence of 3 weights \(one "
                                         r"per class\), got \(2,\)"):
        softmax_cross_entropy(z, jnp.zeros((2,), jnp.int32), class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"binary_cross_entropy: logits shape must be labels.shape"
                                         r" \(2,\) or \(2, 1\), got \(2, 2\). For two output "
                                         r"units use loss='cross_entropy'"):
        binary_cross_entropy(jnp.zeros((2, 2)), jnp.zeros((2,), jnp.int32))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: logits shape must be .*got "
                                         r"\(2, 3\)$"):
        binary_cross_entropy(z, jnp.zeros((2,), jnp.int32))
    with pytest.raises(ValueError, match=r"mse: predictions shape must be the targets shape "
                                         r"\(2, 2\), got \(2, 3\)"):
        mse(z, jnp.zeros((2, 2)))


def test_resolve_loss_errors():
    with pytest.raises(ValueError, match="make_train_step: task must be one of 'multiclass', "
                                         "'binary', 'regression', got 'ranking'"):
        resolve_loss(None, "ranking")
    with pytest.raises(ValueError, match="loss must be a callable or one of 'cross_entropy', "
                                         "'binary_cross_entropy', 'mse', got 'hinge'"):
        resolve_loss("hinge", "multiclass")
    with pytest.raises(ValueError, match="label_smoothing and class_weights must be unset with a "
                                         "callable loss, got .*Apply them inside"):
        resolve_loss(lambda z, y, m: 0.0, "multiclass", label_smoothing=0.1)
    with pytest.raises(ValueError, match="must be unset with loss='mse'"):
        resolve_loss("mse", "regression", class_weights=[1.0])
    with pytest.raises(ValueError, match=r"label_smoothing must be a float in \[0, 1\), got -0.1"):
        resolve_loss(None, "multiclass", label_smoothing=-0.1)
