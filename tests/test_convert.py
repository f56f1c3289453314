"""from_torch: PyTorch state dicts onto jaxcnn models. Layouts are checked index by index on
hand-made state dicts (no torch needed) and, where torch is installed, logits against
torch-built models in eval mode (LeNet-5, a CIFAR ResNet-20, torchvision's ResNet-18
architecture, a 1-d and a 3-d net with grouped, depthwise and transposed convolutions)."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn as jc
from jaxcnn.convert import from_torch
from jaxcnn.models import lenet5, resnet18, resnet20

sys.path.insert(0, str(Path(__file__).parent))


def _rand(rng, *shape):
    return rng.normal(size=shape).astype(np.float32)


def test_conv_kernels_become_spatial_first(rng):
    net = jc.serial(jc.conv(6, (3, 2), groups=2), jc.conv_transpose(4, 2, groups=2),
                    jc.depthwise_conv(3, depth_multiplier=2))
    w_conv, w_t = _rand(rng, 6, 2, 3, 2), _rand(rng, 6, 2, 2, 2)  # (O, I/g, kh, kw), (I, O/g,..)
    w_dw = _rand(rng, 8, 1, 3, 3)
    sd = {"a.weight": w_conv, "a.bias": _rand(rng, 6), "b.weight": w_t, "b.bias": _rand(rng, 4),
          "c.weight": w_dw, "c.bias": _rand(rng, 8)}
    params, _ = from_torch(net, sd, (9, 9, 4))
    k = np.asarray(params["conv_0"]["kernel"])
    assert k.shape == (3, 2, 2, 6)
    for o, i, h, w in np.ndindex(*w_conv.shape):
        assert k[h, w, i, o] == w_conv[o, i, h, w]
    kt = np.asarray(params["conv_transpose_1"]["kernel"])
    assert kt.shape == (2, 2, 6, 2)
    for i, o, h, w in np.ndindex(*w_t.shape):
        assert kt[h, w, i, o] == w_t[i, o, h, w]
    kd = np.asarray(params["depthwise_conv_2"]["kernel"])
    for o, _, h, w in np.ndindex(*w_dw.shape):
        assert kd[h, w, 0, o] == w_dw[o, 0, h, w]
    np.testing.assert_array_equal(params["conv_0"]["bias"], sd["a.bias"])


def test_dense_after_flatten_uses_torch_order_and_batch_norm_goes_to_state(rng):
    net = jc.serial(jc.batch_norm(), jc.flatten(), jc.dropout(0.5), jc.dense(3))
    bn = {"bn.weight": _rand(rng, 2), "bn.bias": _rand(rng, 2), "bn.running_mean": _rand(rng, 2),
          "bn.running_var": np.abs(_rand(rng, 2)) + 0.5, "bn.num_batches_tracked": np.int64(7)}
    w, b = _rand(rng, 3, 2 * 4 * 5), _rand(rng, 3)
    params, state = from_torch(net, {**bn, "fc.weight": w, "fc.bias": b}, (4, 5, 2))
    np.testing.assert_array_equal(params["batch_norm_0"]["scale"], bn["bn.weight"])
    np.testing.assert_array_equal(state["batch_norm_0"]["mean"], bn["bn.running_mean"])
    np.testing.assert_array_equal(state["batch_norm_0"]["var"], bn["bn.running_var"])
    x = _rand(rng, 2, 4, 5, 2)  # NHWC
    # the torch model's computation in numpy: normalise, flatten NCHW, x @ w.T + b
    z = (x - bn["bn.running_mean"]) / np.sqrt(bn["bn.running_var"] + 1e-5) * bn["bn.weight"]
    z = z + bn["bn.bias"]
    expected = z.transpose(0, 3, 1, 2).reshape(2, -1) @ w.T + b
    y, _ = net.apply(params, state, jnp.asarray(x), train=False)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_a_square_transposed_kernel_is_read_by_the_layer_kind(rng):
    # (C_in, C_out, k) = (4, 4, 3): both layouts fit the shape; the layer's kind decides
    w = _rand(rng, 4, 4, 3)
    for net, expected in ((jc.conv_transpose(4, 3), w.transpose(2, 0, 1)),
                          (jc.conv(4, 3), w.transpose(2, 1, 0))):
        params, _ = from_torch(jc.serial(net), {"0.weight": w, "0.bias": _rand(rng, 4)}, (6, 4))
        np.testing.assert_array_equal(next(iter(params.values()))["kernel"], expected)


def test_errors_name_the_first_misfit_and_the_counts(rng):
    net = jc.serial(jc.conv(4, 3), jc.batch_norm(), jc.flatten(), jc.dense(2))
    sd = {"c.weight": _rand(rng, 4, 1, 3, 3), "c.bias": _rand(rng, 4), "bn.weight": _rand(rng, 4),
          "bn.bias": _rand(rng, 4), "bn.running_mean": _rand(rng, 4),
          "bn.running_var": _rand(rng, 4), "fc.weight": _rand(rng, 2, 36), "fc.bias": _rand(rng, 2)}
    from_torch(net, sd, (5, 5, 1))  # fits
    with pytest.raises(ValueError, match=r"from_torch: state_dict\['c.weight'\] must be of shape "
                       r"\(4, 1, 3, 3\) to fit jaxcnn's conv_0/kernel \(3, 3, 1, 4\), got "
                       r"\(4, 1, 5, 5\). The jaxcnn model has 8 arrays \(params and state\), "
                       r"the state dict 8"):
        from_torch(net, {**sd, "c.weight": _rand(rng, 4, 1, 5, 5)}, (5, 5, 1))
    with pytest.raises(ValueError, match=r"state_dict\['fc.weight'\] must be of shape \(2, 36\) "
                       r"to fit jaxcnn's dense_3/kernel \(36, 2\), got \(2, 30\)"):
        from_torch(net, {**sd, "fc.weight": _rand(rng, 2, 30)}, (5, 5, 1))
    with pytest.raises(ValueError, match=r"from_torch: the number of arrays must be equal on both "
                       r"sides, got \"torch's 'extra.weight' has no partner\". The jaxcnn model "
                       r"has 8 arrays \(params and state\), the state dict 9"):
        from_torch(net, {**sd, "extra.weight": _rand(rng, 3)}, (5, 5, 1))
    short = {k: v for k, v in sd.items() if not k.startswith("fc")}
    with pytest.raises(ValueError, match=r"got \"jaxcnn's dense_3/kernel has no partner\""):
        from_torch(net, short, (5, 5, 1))
    with pytest.raises(TypeError, match=r"from_torch: state_dict must be a mapping"):
        from_torch(net, list(sd.values()), (5, 5, 1))
    with pytest.raises(TypeError, match=r"from_torch: state_dict\['c.bias'\] must be a torch "
                       r"tensor or a numpy array, got 'str'"):
        from_torch(net, {**sd, "c.bias": "zeros"}, (5, 5, 1))
    with pytest.raises(TypeError, match=r"from_torch: model must be a jaxcnn Layer"):
        from_torch(jc.conv, sd, (5, 5, 1))


# ------------------------------------------------------------ against torch-built models
def _torch_nets():
    torch = pytest.importorskip("torch")
    from torch import nn

    import _torch_models as tm

    conv1d = (nn.Sequential(
        nn.Conv1d(3, 8, 5, padding=2), nn.BatchNorm1d(8), nn.ReLU(),
        nn.Conv1d(8, 8, 3, groups=4), nn.Conv1d(8, 8, 3, padding=1, groups=8),
        nn.ConvTranspose1d(8, 4, 4, stride=2, padding=1), nn.ReLU(), nn.MaxPool1d(2),
        nn.Flatten(), nn.Linear(4 * 10, 5)),
        jc.serial(jc.conv(8, 5, padding=2), jc.batch_norm(), jc.relu(),
                  jc.conv(8, 3, groups=4), jc.depthwise_conv(3, padding=1),
                  jc.conv_transpose(4, 4, stride=2, padding=1), jc.relu(), jc.max_pool(2),
                  jc.flatten(), jc.dense(5)), (12, 3))
    conv3d = (nn.Sequential(
        nn.Conv3d(2, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(),
        nn.ConvTranspose3d(4, 4, 2, stride=2, groups=2), nn.ConvTranspose3d(4, 4, 3, padding=1),
        nn.MaxPool3d(2), nn.Conv3d(4, 6, 1), nn.Flatten(), nn.Linear(6 * 4 * 4 * 4, 3)),
        jc.serial(jc.conv(4, 3, padding=1), jc.batch_norm(), jc.relu(),
                  jc.conv_transpose(4, 2, stride=2, groups=2), jc.conv_transpose(4, 3, padding=1),
                  jc.max_pool(2), jc.conv(6, 1), jc.flatten(), jc.dense(3)), (4, 4, 4, 2))
    return torch, {
        "lenet5": (tm.lenet5(), lenet5(), (28, 28, 1)),
        "resnet20": (tm.resnet20(), resnet20(), (16, 16, 3)),
        "resnet18_torchvision": (tm.resnet18(), resnet18(1000, small_input=False), (64, 64, 3)),
        "conv1d": conv1d, "conv3d": conv3d}


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "resnet18_torchvision", "conv1d",
                                  "conv3d"])
def test_logits_equal_torch(name):
    torch, nets = _torch_nets()
    import _torch_models as tm

    torch.manual_seed(0)
    module, model, in_shape = nets[name]
    tm.randomize_batch_norm(module)
    params, state = from_torch(model, module.state_dict(), in_shape)
    x = torch.randn(2, in_shape[-1], *in_shape[:-1])
    with torch.no_grad():
        expected = module(x).numpy()
    x_last = jnp.asarray(np.moveaxis(x.numpy(), 1, -1))  # NC... -> N...C
    y = jax.jit(lambda p, s, x: model.apply(p, s, x, train=False)[0])(params, state, x_last)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
