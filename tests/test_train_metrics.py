"""Metrics against numpy (and scikit-learn) references; evaluation counts every example once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn as jc
from jaxcnn.train import (accuracy, confusion_matrix, evaluate, make_eval_step, roc_auc,
                          top_k_accuracy)
from jaxcnn.train._evaluate import combine_members


def np_auc_mann_whitney(scores, labels):
    """Rank-based AUC: average ranks over all examples (ties share their mean rank)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


ROC_AUC = jax.jit(roc_auc)  # one compile for every case below (same shapes)


@pytest.mark.parametrize("seed", range(8))
def test_roc_auc_matches_mann_whitney_and_sklearn(seed):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    n = 40
    labels = rng.integers(0, 2, n).astype(np.int32)
    labels[:2] = [0, 1]
    # Rounded scores make ties, which count one half.
    scores = np.round(rng.normal(size=n) + labels, 1).astype(np.float32)
    ref = np_auc_mann_whitney(scores.astype(np.float64), labels)
    ones = np.ones(n, np.float32)
    np.testing.assert_allclose(ROC_AUC(scores, labels, mask=ones), ref, rtol=1e-6)
    np.testing.assert_allclose(ROC_AUC(scores, labels, mask=ones), roc_auc_score(labels, scores),
                               rtol=1e-6)
    # A mask removes examples as if they were not there (here, with +inf scores).
    keep = rng.uniform(size=n) < 0.7
    keep[:2] = True
    masked = np.where(keep, scores, np.inf).astype(np.float32)
    np.testing.assert_allclose(ROC_AUC(masked, labels, mask=keep.astype(np.float32)),
                               np_auc_mann_whitney(scores[keep].astype(np.float64), labels[keep]),
                               rtol=1e-6)


def test_roc_auc_hand_cases():
    assert float(roc_auc(jnp.array([0.0, 1.0]), jnp.array([0, 1]))) == 1.0
    assert float(roc_auc(jnp.array([1.0, 0.0]), jnp.array([0, 1]))) == 0.0
    assert float(roc_auc(jnp.array([0.5, 0.5]), jnp.array([0, 1]))) == 0.5
    assert np.isnan(float(roc_auc(jnp.array([0.5, 0.7]), jnp.array([1, 1]))))
    # Two output units: the score is logit_1 - logit_0.
    two = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    assert float(roc_auc(two, jnp.array([0, 1]))) == 1.0


def test_accuracy_top_k_confusion_match_numpy(rng):
    n, c = 37, 6
    z = rng.normal(size=(n, c)).astype(np.float32)
    y = rng.integers(0, c, n).astype(np.int32)
    m = (rng.uniform(size=n) < 0.8).astype(np.float32)
    pred = z.argmax(axis=1)
    np.testing.assert_allclose(accuracy(z, y, mask=m), ((pred == y) * m).sum() / m.sum(),
                               rtol=1e-6)
    for k in (1, 2, 5):
        topk = np.argsort(-z, axis=1)[:, :k]
        ref = (((topk == y[:, None]).any(axis=1)) * m).sum() / m.sum()
        np.testing.assert_allclose(top_k_accuracy(z, y, k, mask=m), ref, rtol=1e-6)
    ref = np.zeros((c, c), np.int64)
    for t, p, keep in zip(y, pred, m):
        ref[t, p] += int(keep)
    np.testing.assert_array_equal(confusion_matrix(y, pred, c, mask=m), ref)
    # Binary accuracy thresholds the logit at 0.
    np.testing.assert_allclose(accuracy(jnp.array([[-1.0], [2.0]]), jnp.array([0, 0]),
                                        task="binary"), 0.5)


def test_metric_errors():
    with pytest.raises(ValueError, match="top_k_accuracy: k must be a positive int, got 0"):
        top_k_accuracy(jnp.zeros((2, 3)), jnp.zeros((2,), jnp.int32), 0)
    with pytest.raises(ValueError, match="confusion_matrix: num_classes must be a positive int, "
                                         "got 0"):
        confusion_matrix(jnp.zeros((2,), jnp.int32), jnp.zeros((2,), jnp.int32), 0)
    with pytest.raises(ValueError, match=r"roc_auc: scores shape must be one score per label "
                                         r"\(3\), got \(2,\)"):
        roc_auc(jnp.zeros((2,)), jnp.zeros((3,), jnp.int32))


NET = jc.serial(jc.flatten(), jc.dense(4))


@pytest.fixture(scope="module")
def net_params():
    _, params, state = NET.init(jax.random.key(0), (3,))
    return params, state


def test_evaluate_counts_every_example_once(net_params):
    params, state = net_params
    rng = np.random.default_rng(1)
    n = 23  # batches of 5: the last one holds 3 real examples and 2 padded ones
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = rng.integers(0, 4, n).astype(np.int32)
    out = evaluate(NET, params, state, x, y, batch_size=5, top_k=(2,))
    z = x.astype(np.float64) @ np.asarray(params["dense_1"]["kernel"], np.float64)
    z += np.asarray(params["dense_1"]["bias"], np.float64)
    pred = z.argmax(axis=1)
    assert out["count"] == n
    np.testing.assert_allclose(out["accuracy"], (pred == y).mean(), rtol=1e-6)
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(out["loss"], -logp[np.arange(n), y].mean(), rtol=1e-5)
    top2 = np.argsort(-z, axis=1)[:, :2]
    np.testing.assert_allclose(out["top2_accuracy"], (top2 == y[:, None]).any(axis=1).mean(),
                               rtol=1e-6)
    ref = np.zeros((4, 4), int)
    np.add.at(ref, (y, pred), 1)
    np.testing.assert_array_equal(out["confusion_matrix"], ref)


def test_evaluate_binary_auc_and_batch_size_larger_than_data():
    net = jc.serial(jc.flatten(), jc.dense(1))
    _, params, state = net.init(jax.random.key(2), (2,))
    rng = np.random.default_rng(2)
    x = rng.normal(size=(11, 2)).astype(np.float32)
    y = rng.integers(0, 2, 11).astype(np.int32)
    y[:2] = [0, 1]
    out = evaluate(net, params, state, x, y, batch_size=4, task="binary")
    scores = x @ np.asarray(params["dense_1"]["kernel"])[:, 0] + float(params["dense_1"]["bias"][0])
    np.testing.assert_allclose(out["auc"], np_auc_mann_whitney(scores.astype(np.float64), y),
                               rtol=1e-6)
    np.testing.assert_allclose(out["accuracy"], ((scores > 0) == y).mean(), rtol=1e-6)
    assert out["count"] == 11
    assert evaluate(net, params, state, x, y, batch_size=64, task="binary")["count"] == 11


def test_eval_step_masked_sums(net_params):
    params, state = net_params
    step = jax.jit(make_eval_step(NET))
    x = jnp.ones((4, 3))
    full = step(params, state, {"x": x[:2], "y": jnp.zeros((2,), jnp.int32)})
    padded = step(params, state, {"x": x, "y": jnp.zeros((4,), jnp.int32),
                                  "mask": jnp.array([1.0, 1.0, 0.0, 0.0])})
    for name in ("count", "loss", "correct"):
        np.testing.assert_allclose(padded[name], full[name], rtol=1e-6)
    np.testing.assert_array_equal(padded["confusion"], full["confusion"])


def test_eval_and_evaluate_errors(net_params):
    params, state = net_params
    step = make_eval_step(NET)
    with pytest.raises(TypeError, match="eval_step: batch must be a dict with keys 'x', 'y' and "
                                        "optionally 'mask', got 'tuple'"):
        step(params, state, (jnp.ones((2, 3)), jnp.zeros((2,), jnp.int32)))
    with pytest.raises(ValueError, match=r"eval_step: batch\['mask'\] shape must be \(batch "
                                         r"size,\) = \(2,\), got \(3,\)"):
        step(params, state, {"x": jnp.ones((2, 3)), "y": jnp.zeros((2,), jnp.int32),
                             "mask": jnp.ones((3,))})
    with pytest.raises(ValueError, match=r"make_eval_step: top_k must be a tuple of positive "
                                         r"ints, got \(0,\)"):
        make_eval_step(NET, top_k=(0,))
    x, y = np.ones((3, 3), np.float32), np.zeros((3,), np.int32)
    with pytest.raises(ValueError, match="evaluate: batch_size must be a positive int, got 0"):
        evaluate(NET, params, state, x, y, batch_size=0)
    with pytest.raises(ValueError, match=r"evaluate: len\(y\) must be len\(x\) = 3, got 2"):
        evaluate(NET, params, state, x, y[:2], batch_size=2)
    with pytest.raises(ValueError, match=r"evaluate: x must be a non-empty array of examples, "
                                         r"got \(0, 3\)"):
        evaluate(NET, params, state, x[:0], y[:0], batch_size=2)
    # each names the function that was called, not the helper under it
    with pytest.raises(TypeError, match="evaluate: model must be a jaxcnn Layer"):
        evaluate(jc.relu, params, state, x, y, batch_size=2)
    with pytest.raises(TypeError, match="make_eval_step: model must be a jaxcnn Layer"):
        make_eval_step(jc.relu)


def test_combine_members_is_log_mean_probability(rng):
    z = rng.normal(size=(3, 5, 4)).astype(np.float32)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(np.exp(combine_members(jnp.asarray(z))), p.mean(axis=0),
                               rtol=1e-5)
    s = rng.normal(size=(3, 5)).astype(np.float32)
    mean = (1 / (1 + np.exp(-s))).mean(axis=0)
    np.testing.assert_allclose(combine_members(jnp.asarray(s)), np.log(mean / (1 - mean)),
                               rtol=1e-4, atol=1e-5)
