"""Activations, saliency and Grad-CAM against hand-derived references; plot smoke tests."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import jaxcnn as jc
from jaxcnn import interpret, viz

NET = jc.serial(jc.conv(4, 3, padding=1), jc.relu(), jc.residual(jc.conv(4, 3, padding=1)),
                jc.flatten(), jc.dense(3))


@pytest.fixture(scope="module")
def model():
    _, params, state = NET.init(jax.random.key(0), (8, 8, 2))
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 2))
    return params, state, x


def test_activations_equal_a_manual_forward(model):
    params, state, x = model
    acts = jax.jit(lambda p, x: interpret.activations(NET, p, state, x, ["relu_1",
                                                                         "residual_2/block"]))(
        params, x)
    conv0 = jc.ops.conv(x, params["conv_0"]["kernel"], params["conv_0"]["bias"], padding=1)
    np.testing.assert_allclose(acts["relu_1"], jax.nn.relu(conv0), rtol=1e-6)
    blk = params["residual_2"]["block"]
    np.testing.assert_allclose(acts["residual_2/block"],
                               jc.ops.conv(jax.nn.relu(conv0), blk["kernel"], blk["bias"],
                                           padding=1), rtol=1e-5, atol=1e-6)


def test_activations_unknown_tap(model):
    params, state, x = model
    with pytest.raises(ValueError, match="activations: taps must be layer paths"):
        interpret.activations(NET, params, state, x, ["nope"])


def test_saliency_of_a_linear_model_is_its_weight_row():
    net = jc.serial(jc.flatten(), jc.dense(3))
    _, params, state = net.init(jax.random.key(0), (4, 4, 1))
    x = jnp.ones((1, 4, 4, 1))
    s = interpret.saliency(net, params, state, x, class_index=2)
    np.testing.assert_allclose(s.reshape(-1), params["dense_1"]["kernel"][:, 2], rtol=1e-6)


def test_grad_cam_equals_cam_for_global_pooling_models():
    # For conv -> global average pool -> dense, Grad-CAM's channel weights are the dense
    # weights of the class divided by the number of positions (Zhou et al. 2016's CAM).
    net = jc.serial(jc.conv(5, 3, padding=1), jc.activation(jnp.abs, "abs"),
                    jc.layer("gap", lambda k, s: ({}, {}),
                             lambda p, s, x, train, key: (x.mean(axis=(1, 2)), s)),
                    jc.dense(3))
    _, params, state = net.init(jax.random.key(0), (6, 6, 1))
    x = jax.random.normal(jax.random.key(2), (1, 6, 6, 1))
    cam = interpret.grad_cam(net, params, state, x, "abs_1", class_index=1)
    a = np.abs(np.asarray(jc.ops.conv(x, params["conv_0"]["kernel"], params["conv_0"]["bias"],
                                      padding=1)))[0]
    w = np.asarray(params["dense_3"]["kernel"])[:, 1] / 36
    expected = np.maximum((a * w).sum(-1), 0)
    np.testing.assert_allclose(cam[0], expected, rtol=1e-5, atol=1e-7)


def test_grad_cam_needs_a_spatial_layer(model):
    params, state, x = model
    with pytest.raises(ValueError,
                       match="grad_cam: the output of layer 'flatten_3' must be spatial"):
        interpret.grad_cam(NET, params, state, x, "flatten_3")


def _png_size(path):
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


def test_plots_write_valid_pngs(tmp_path, model):
    params, state, x = model
    acts = interpret.activations(NET, params, state, x[:1])
    cam = interpret.grad_cam(NET, params, state, x[:1], "relu_1")
    files = {
        "filters2d": lambda p: viz.plot_filters(params["conv_0"]["kernel"], p),
        "filters_rgb": lambda p: viz.plot_filters(np.ones((3, 3, 3, 4)), p),
        "filters1d": lambda p: viz.plot_filters(np.ones((5, 2, 3)), p),
        "filters3d": lambda p: viz.plot_filters(np.ones((3, 3, 3, 1, 2)), p),
        "maps": lambda p: viz.plot_feature_maps(acts, p),
        "maps1d": lambda p: viz.plot_feature_maps({"a": np.ones((1, 20, 3))}, p),
        "maps_input": lambda p: viz.plot_feature_maps(acts, p, image=x[0]),
        "hist": lambda p: viz.plot_activation_histograms(acts, p),
        "cam": lambda p: viz.plot_heatmap(x[0], cam[0], p),
        "voxels": lambda p: viz.plot_voxels(np.ones((2, 4, 4, 4)), ["a", "b"], p),
        "history": lambda p: viz.plot_history([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2},
                                               {"epoch": 2, "train_loss": 0.5,
                                                "val_accuracy": 0.9}], p),
        "confusion": lambda p: viz.plot_confusion_matrix(np.eye(3, dtype=int) * 5, "abc", p),
    }
    for name, plot in files.items():
        path = tmp_path / f"{name}.png"
        fig = plot(path)
        w, h = _png_size(path)
        fw, fh = fig.get_size_inches() * 80
        assert (w, h) == (round(fw), round(fh)), name


def test_viz_errors():
    with pytest.raises(ValueError, match="plot_filters: kernel rank must be 3, 4 or 5"):
        viz.plot_filters(np.ones((3, 3)))
    with pytest.raises(ValueError, match="projections: volume rank must be 3"):
        viz.projections(np.ones((3, 3)))
    with pytest.raises(ValueError, match="plot_feature_maps: acts must be a dict of spatial"):
        viz.plot_feature_maps({"dense": np.ones((1, 3))})


def test_classic_filters_experiment(tmp_path):
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "experiments"))
    import classic_filters as mod
    img = np.tile(np.linspace(0, 1, 12, dtype=np.float32), (10, 1))  # horizontal ramp
    out = mod.apply_kernels(img)
    np.testing.assert_allclose(out["identity"], img, atol=1e-6)
    # Away from the (reflected) border a ramp has constant slope 1/11 per pixel: Sobel x = 8/11,
    # Sobel y = 0, Laplacian = 0, box blur = the ramp itself.
    inner = (slice(2, -2), slice(2, -2))
    np.testing.assert_allclose(out["sobel_x"][inner], 8 / 11, rtol=1e-5)
    np.testing.assert_allclose(out["sobel_y"][inner], 0, atol=1e-6)
    np.testing.assert_allclose(out["laplacian"][inner], 0, atol=1e-6)
    np.testing.assert_allclose(out["box_blur"][inner], img[inner], rtol=1e-5)
    path = tmp_path / "f.png"
    mod.plot(out, path)
    assert _png_size(path)[0] > 100


def test_feature_maps_input_row(model):
    params, state, x = model
    acts = interpret.activations(NET, params, state, x[:1])
    rows = sum(np.ndim(a) >= 3 for a in acts.values())
    without = viz.plot_feature_maps(acts, max_channels=4)
    with_input = viz.plot_feature_maps(acts, max_channels=4, image=x[0])
    assert len(_panels(without)) == 4 * rows
    assert len(_panels(with_input)) == 4 * (rows + 1)
    assert len(with_input.axes[0].images) == 1  # the input is drawn in the first cell
    assert len(_colour_bars(with_input)) == rows  # one per layer, none for the input


def _colour_bars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def test_history_plot_has_labelled_axes_with_ticks_and_both_curves(tmp_path):
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e,
                "train_accuracy": 0.5 + 0.1 * e, "val_accuracy": 0.45 + 0.1 * e}
               for e in (1, 2, 3)]
    fig = viz.plot_history(history, tmp_path / "curves.png", test={"loss": 0.5,
                                                                   "accuracy": 0.7})
    loss, acc = fig.axes
    assert (loss.get_xlabel(), loss.get_ylabel(), acc.get_ylabel()) == ("epoch", "loss",
                                                                         "accuracy")
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["train", "validation",
                                                                     "test (0.5)"]
    np.testing.assert_allclose(loss.lines[1].get_ydata(), [1.2, 0.6, 0.4])
    np.testing.assert_allclose(acc.lines[0].get_xdata(), [1, 2, 3])
    assert all(float(t) == int(t) for t in loss.get_xticks())  # whole epochs
    assert [t.get_text() for t in acc.get_yticklabels() if t.get_text()]  # values shown
    regression = viz.plot_history([{"epoch": 1, "train_loss": 1.0, "val_loss": 2.0}])
    assert len(regression.axes) == 1  # no empty accuracy panel


def test_maps_filters_and_heat_maps_carry_colour_bars_and_labels(model):
    params, state, x = model
    acts = interpret.activations(NET, params, state, x[:1])
    maps = viz.plot_feature_maps(acts, max_channels=4, true_label="cat", predicted_label="dog")
    assert maps.get_suptitle() == "true: cat | predicted: dog"
    kernel = np.asarray(params["conv_0"]["kernel"])
    (bar,) = _colour_bars(viz.plot_filters(kernel))
    bound = np.abs(kernel.mean(axis=2)).max()  # one scale for all filters, centred on 0
    np.testing.assert_allclose(bar.get_ylim(), (-bound, bound), rtol=1e-6)
    heat = viz.plot_heatmap(x[0], np.ones((8, 8)), title="cam", true_label=1,
                            predicted_label=2)
    assert len(_colour_bars(heat)) == 1 and heat.get_suptitle() == "cam | true: 1 | predicted: 2"
    grid = viz.plot_images(np.ones((2, 4, 4, 1)), ["a", "b"], predictions=["a", "c"])
    titles = [(ax.get_title(), ax.title.get_color()) for ax in grid.axes[:2]]
    assert titles == [("true a\npredicted a", "black"), ("true b\npredicted c", "red")]
