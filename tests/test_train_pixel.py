"""Dense-prediction losses and metrics against numpy references on hand-made cases:
pixel cross-entropy with an ignore label, soft Dice, reconstruction BCE, the pixel
confusion matrix and its scores, PSNR, and the whole-set evaluators (batch-size free)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn as jc
from jaxcnn.train import (evaluate_reconstruction, evaluate_segmentation,
                          pixel_binary_cross_entropy, pixel_cross_entropy, predict, psnr,
                          segmentation_confusion, segmentation_scores, soft_dice_loss)

RNG = np.random.default_rng(0)


def log_softmax_np(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_pixel_cross_entropy_matches_a_loop_with_ignore_weights_and_mask():
    z = RNG.normal(size=(3, 4, 5, 3)).astype(np.float32)
    y = RNG.integers(0, 3, size=(3, 4, 5)).astype(np.int32)
    y[0, 0, :3] = 255
    w = np.array([0.5, 1.0, 2.0], np.float32)
    m = np.array([1.0, 0.0, 1.0], np.float32)
    num = den = 0.0
    lp = log_softmax_np(z.astype(np.float64))
    for n in range(3):
        for i in range(4):
            for j in range(5):
                if y[n, i, j] == 255 or m[n] == 0:
                    continue
                num += -lp[n, i, j, y[n, i, j]] * w[y[n, i, j]]
                den += w[y[n, i, j]]
    got = pixel_cross_entropy(z, y, ignore_index=255, class_weights=w, mask=m)
    np.testing.assert_allclose(float(got), num / den, rtol=1e-5)
    torch = pytest.importorskip("torch")
    ref = torch.nn.functional.cross_entropy(torch.tensor(z).permute(0, 3, 1, 2),
                                            torch.tensor(y).long(), ignore_index=255)
    np.testing.assert_allclose(float(pixel_cross_entropy(z, y, ignore_index=255)), float(ref),
                               rtol=1e-5)


def test_pixel_cross_entropy_all_ignored_is_zero_and_3d_works():
    y = np.full((2, 3, 3, 3), 7, np.int32)
    assert float(pixel_cross_entropy(np.zeros((2, 3, 3, 3, 2), np.float32), y,
                                     ignore_index=7)) == 0.0
    got = pixel_cross_entropy(np.zeros((2, 3, 3, 3, 4), np.float32), y % 4)
    np.testing.assert_allclose(float(got), math.log(4), rtol=1e-6)


def test_soft_dice_matches_numpy():
    z = RNG.normal(size=(2, 6, 3)).astype(np.float32)
    y = RNG.integers(0, 3, size=(2, 6)).astype(np.int32)
    y[1, 0] = 9
    p = np.exp(log_softmax_np(z.astype(np.float64)))
    valid = (y != 9)[..., None]
    t = np.eye(3)[np.where(y == 9, 0, y)]
    inter = (valid * p * t).sum((0, 1))
    denom = (valid * (p + t)).sum((0, 1))
    ref = 1 - np.mean((2 * inter + 1.0) / (denom + 1.0))
    np.testing.assert_allclose(float(soft_dice_loss(z, y, ignore_index=9)), ref, rtol=1e-5)
    # a perfect hard prediction scores 0, the exact opposite 1 (smooth=0)
    y2 = np.array([[0, 1, 1, 0]])
    assert float(soft_dice_loss(50.0 * np.eye(2)[y2], y2, smooth=0.0)) < 1e-6
    assert float(soft_dice_loss(50.0 * np.eye(2)[1 - y2], y2, smooth=0.0)) > 1 - 1e-6


def test_pixel_binary_cross_entropy_matches_numpy():
    z = RNG.normal(size=(3, 4, 4, 1)).astype(np.float32)
    t = RNG.uniform(size=(3, 4, 4, 1)).astype(np.float32)
    p = 1 / (1 + np.exp(-z.astype(np.float64)))
    per = -(t * np.log(p) + (1 - t) * np.log(1 - p)).reshape(3, -1).mean(1)
    m = np.array([1.0, 1.0, 0.0], np.float32)
    np.testing.assert_allclose(float(pixel_binary_cross_entropy(z, t, mask=m)),
                               per[:2].mean(), rtol=1e-5)


def test_confusion_and_scores_hand_made():
    labels = np.array([[[0, 0, 1], [1, 2, 255]]])
    preds = np.array([[[0, 1, 1], [1, 0, 2]]])
    c = np.asarray(segmentation_confusion(labels, preds, 3, ignore_index=255))
    assert c.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    s = segmentation_scores(c)
    assert s["pixel_accuracy"] == pytest.approx(3 / 5)
    # IoU: class 0 = 1 / (2 + 2 - 1), class 1 = 2 / (2 + 3 - 2), class 2 = 0 / 1
    assert s["iou"] == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert s["mean_iou"] == pytest.approx(1 / 3)
    assert s["dice"] == pytest.approx([2 / 4, 4 / 5, 0.0])
    # a class absent from labels and predictions is left out of the means
    s = segmentation_scores([[2, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert s["iou"] == [1.0, 1.0, None] and s["mean_iou"] == 1.0
    masked = segmentation_confusion(np.zeros((2, 3), int), np.zeros((2, 3), int), 2,
                                    mask=np.array([1.0, 0.0]))
    assert np.asarray(masked).tolist() == [[3, 0], [0, 0]]


def test_psnr_matches_numpy():
    p = RNG.uniform(size=(4, 5, 5, 1)).astype(np.float32)
    t = RNG.uniform(size=(4, 5, 5, 1)).astype(np.float32)
    ref = 10 * np.log10(1.0 / np.mean((p[:3].astype(np.float64) - t[:3]) ** 2))
    got = psnr(p, t, mask=np.array([1.0, 1.0, 1.0, 0.0]))
    np.testing.assert_allclose(float(got), ref, rtol=1e-5)
    np.testing.assert_allclose(float(psnr(p * 255, t * 255, max_value=255.0)),
                               10 * np.log10(1.0 / np.mean((p - t) ** 2.0)), rtol=1e-4)


def test_evaluators_count_every_pixel_once_whatever_the_batch():
    net = jc.conv(3, 1)
    _, params, state = net.init(jax.random.key(1), (5, 4, 2))
    x = RNG.normal(size=(7, 5, 4, 2)).astype(np.float32)
    y = RNG.integers(0, 3, size=(7, 5, 4)).astype(np.int32)
    preds = np.asarray(predict(net, params, state, x, batch_size=3)).argmax(-1)
    ref = np.zeros((3, 3), int)
    np.add.at(ref, (y.ravel(), preds.ravel()), 1)
    for bs in (1, 3, 7, 100):
        r = evaluate_segmentation(net, params, state, x, y, bs, num_classes=3)
        assert r["confusion_matrix"] == ref.tolist() and r["count"] == 7
        assert r["mean_iou"] == pytest.approx(segmentation_scores(ref)["mean_iou"])
    t = RNG.uniform(size=(7, 5, 4, 3)).astype(np.float32)
    out = np.asarray(predict(net, params, state, x))
    mse = np.mean((1 / (1 + np.exp(-out.astype(np.float64))) - t) ** 2)
    for bs in (2, 7):
        r = evaluate_reconstruction(net, params, state, x, t, bs)
        assert r["mse"] == pytest.approx(mse, rel=1e-5) and r["count"] == 7
        assert r["psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda: pixel_cross_entropy(np.zeros((2, 3, 3)), np.zeros((2, 4), np.int32)),
     "pixel_cross_entropy: labels shape must be logits.shape"),
    (lambda: pixel_cross_entropy(np.zeros((2, 3, 3)), np.zeros((2, 3))),
     "pixel_cross_entropy: labels must be integer class indices per pixel"),
    (lambda: pixel_cross_entropy(np.zeros((3,)), np.zeros((), np.int32)),
     "pixel_cross_entropy: logits rank must be >= 2"),
    (lambda: pixel_cross_entropy(np.zeros((2, 3, 3)), np.zeros((2, 3), np.int32),
                                 ignore_index=1.5),
     "pixel_cross_entropy: ignore_index must be None or an int"),
    (lambda: pixel_cross_entropy(np.zeros((2, 3, 3)), np.zeros((2, 3), np.int32),
                                 mask=np.ones(3)),
     "pixel_cross_entropy: mask shape must be"),
    (lambda: soft_dice_loss(np.zeros((2, 3, 3)), np.zeros((2, 3), np.int32), smooth=-1.0),
     "soft_dice_loss: smooth must be >= 0"),
    (lambda: pixel_binary_cross_entropy(np.zeros((2, 3)), np.zeros((2, 4))),
     "pixel_binary_cross_entropy: logits shape must be the targets' shape"),
    (lambda: segmentation_confusion(np.zeros((2, 3), int), np.zeros((2, 4), int), 2),
     "segmentation_confusion: preds shape must be the labels' shape"),
    (lambda: segmentation_confusion(np.zeros((2, 3), int), np.zeros((2, 3), int), 0),
     "segmentation_confusion: num_classes must be a positive int"),
    (lambda: segmentation_scores(np.zeros((2, 3))), "segmentation_scores: confusion must be"),
    (lambda: psnr(np.zeros((2, 3)), np.zeros((2, 3)), max_value=0.0),
     "psnr: max_value must be > 0"),
    (lambda: psnr(np.zeros((2, 3)), np.zeros((2, 2))), "psnr: predictions shape must be"),
    (lambda: evaluate_segmentation(jc.conv(2, 1), {}, {}, np.zeros((2, 3, 3, 1)),
                                   np.zeros((2, 3), int), 2, num_classes=2),
     "evaluate_segmentation: y shape must be x.shape"),
    (lambda: evaluate_reconstruction(jc.identity(), {}, {}, np.zeros((2, 3, 1)), None, 2,
                                     output="tanh"),
     "evaluate_reconstruction: output must be 'sigmoid' or 'identity'"),
    (lambda: evaluate_reconstruction(jc.identity(), {}, {}, np.zeros((2, 3, 1)),
                                     np.zeros((2, 4, 1)), 2),
     "evaluate_reconstruction: targets shape must be \\(N, \\*the model"),
    (lambda: evaluate_reconstruction(jc.identity(), {}, {}, np.zeros((2, 3, 1)), None, 0),
     "evaluate_reconstruction: batch_size must be a positive int"),
])
def test_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
