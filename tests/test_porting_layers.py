"""The pieces that porting ShuffleNet, U-Net and PyTorch classifier heads needs: channel_split,
channel_shuffle, pad, crop, match_spatial and flatten(channels_first=True), against numpy
references written in PyTorch's NCHW terms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn as jc
from jaxcnn.convert import from_torch


def _apply(layer, x):
    x = tuple(map(jnp.asarray, x)) if isinstance(x, tuple) else jnp.asarray(x)
    return layer.apply({}, {}, x, train=False)[0]


def _rand(rng, *shape):
    return rng.normal(size=shape).astype(np.float32)


def test_channel_split(rng):
    x = _rand(rng, 2, 3, 4, 6)
    a, b = _apply(jc.channel_split(2), x)
    np.testing.assert_array_equal(a, x[..., :3])
    np.testing.assert_array_equal(b, x[..., 3:])
    parts = _apply(jc.channel_split((1, 2, 3)), x)
    np.testing.assert_array_equal(np.concatenate(parts, axis=-1), x)
    assert [p.shape[-1] for p in parts] == [1, 2, 3]
    with pytest.raises(ValueError, match=r"channel_split: sections must be a positive int"):
        jc.channel_split(0)
    with pytest.raises(TypeError, match=r"channel_split: sections must be a positive int or a "
                       r"tuple of positive ints, got \(2, 0\)"):
        jc.channel_split((2, 0))
    with pytest.raises(ValueError, match=r"channel_split: the channel count must be divisible "
                       r"by sections=4, got 6. Pass a tuple of sizes"):
        jc.channel_split(4).init(jax.random.key(0), (3, 6))
    with pytest.raises(ValueError, match=r"channel_split: sum\(sections\) must be the channel "
                       r"count 6, got 5"):
        jc.channel_split((2, 3)).init(jax.random.key(0), (3, 6))
    with pytest.raises(ValueError, match=r"channel_split: in_shape must be one shape"):
        jc.channel_split(2).init(jax.random.key(0), ((3, 6), (3, 6)))


def test_channel_shuffle_is_torchs(rng):
    x = _rand(rng, 2, 3, 4, 12)
    nchw = x.transpose(0, 3, 1, 2)  # torch: view(N, g, C/g, H, W).transpose(1, 2)
    ref = nchw.reshape(2, 3, 4, 3, 4).transpose(0, 2, 1, 3, 4).reshape(2, 12, 3, 4)
    np.testing.assert_array_equal(_apply(jc.channel_shuffle(3), x), ref.transpose(0, 2, 3, 1))
    torch = pytest.importorskip("torch")
    expected = torch.nn.ChannelShuffle(4)(torch.from_numpy(nchw)).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(_apply(jc.channel_shuffle(4), x), expected)


def test_channel_shuffle_errors():
    with pytest.raises(ValueError, match=r"channel_shuffle: groups must be a positive int"):
        jc.channel_shuffle(0)
    with pytest.raises(ValueError, match=r"channel_shuffle: the channel count must be divisible "
                       r"by groups=4, got 6"):
        jc.channel_shuffle(4).init(jax.random.key(0), (5, 6))


def test_shufflenet_v2_unit_from_public_layers(rng):
    branch = jc.serial(jc.conv(4, 1, use_bias=False), jc.batch_norm(), jc.relu(),
                       jc.depthwise_conv(3, padding=1, use_bias=False), jc.batch_norm(),
                       jc.conv(4, 1, use_bias=False), jc.batch_norm(), jc.relu())
    unit = jc.serial(jc.channel_split(2), jc.parallel(jc.identity(), branch),
                     jc.fan_in_concat(), jc.channel_shuffle(2))
    out_shape, params, state = unit.init(jax.random.key(0), (6, 6, 8))
    x = _rand(rng, 2, 6, 6, 8)
    y, _ = unit.apply(params, state, jnp.asarray(x), train=False)
    assert out_shape == (6, 6, 8) and y.shape == (2, 6, 6, 8)
    np.testing.assert_array_equal(y[..., 0::2], x[..., :4])  # the identity half, interleaved


@pytest.mark.parametrize("mode, np_mode", [("zeros", "constant"), ("reflect", "reflect"),
                                           ("replicate", "edge"), ("circular", "wrap")])
def test_pad_layer_is_numpys(mode, np_mode, rng):
    x = _rand(rng, 2, 5, 6, 3)
    y = _apply(jc.pad(((1, 2), (0, 3)), mode), x)
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (1, 2), (0, 3), (0, 0)), np_mode))


def test_pad_and_crop_layers(rng):
    x = _rand(rng, 1, 7, 3)
    np.testing.assert_array_equal(_apply(jc.pad(2, "constant", value=-1.0), x)[0, :2], -1.0)
    np.testing.assert_array_equal(_apply(jc.crop(((2, 1),)), x), x[:, 2:6])
    with pytest.raises(ValueError, match=r"pad: mode must be one of 'zeros', 'constant'"):
        jc.pad(1, "mirror")
    with pytest.raises(ValueError, match=r"pad: reflect padding along spatial axis 0 must be "
                       r"smaller than the input size 7"):
        jc.pad(7, "reflect").init(jax.random.key(0), (7, 3))
    with pytest.raises(ValueError, match=r"crop: cropping along spatial axis 0 must be less "
                       r"than the size 7"):
        jc.crop(4).init(jax.random.key(0), (7, 3))


def test_match_spatial_splits_like_a_torch_unet(rng):
    skip, up = _rand(rng, 2, 7, 5, 3), _rand(rng, 2, 4, 8, 2)
    a, b = _apply(jc.match_spatial(), (skip, up))
    np.testing.assert_array_equal(a, skip)
    # torch: F.pad(up, [diff_w // 2, diff_w - diff_w // 2, diff_h // 2, diff_h - diff_h // 2])
    # with diff_h = 3 (pad 1, 2) and diff_w = -3 (crop 2 before, 1 after)
    expected = np.pad(up, ((0, 0), (1, 2), (0, 0), (0, 0)))[:, :, 2:7]
    np.testing.assert_array_equal(b, expected)
    # a U-Net up-step on an odd size: pool, transposed conv back, match, concatenate
    step = jc.serial(jc.fan_out(2), jc.parallel(
        jc.serial(jc.max_pool(2), jc.conv_transpose(4, 2, stride=2)), jc.identity()),
        jc.match_spatial(reference=1), jc.fan_in_concat())
    assert step.init(jax.random.key(0), (7, 7, 3))[0] == (7, 7, 7)


def test_match_spatial_errors():
    with pytest.raises(TypeError, match=r"match_spatial: reference must be an int"):
        jc.match_spatial("first")
    with pytest.raises(ValueError, match=r"match_spatial: mode must be one of"):
        jc.match_spatial(mode="mirror")
    with pytest.raises(ValueError, match=r"match_spatial: in_shape must be a tuple of shapes"):
        jc.match_spatial().init(jax.random.key(0), (7, 7, 3))
    with pytest.raises(ValueError, match=r"match_spatial: reference must be an index in \[0, 2\)"):
        jc.match_spatial(2).init(jax.random.key(0), ((7, 3), (6, 3)))
    with pytest.raises(ValueError, match=r"match_spatial: the inputs' ranks must be equal"):
        jc.match_spatial().init(jax.random.key(0), ((7, 3), (6, 6, 3)))


def test_flatten_channels_first_takes_torch_linear_weights_as_they_are(rng):
    x = _rand(rng, 2, 3, 4, 5)
    np.testing.assert_array_equal(_apply(jc.flatten(channels_first=True), x),
                                  x.transpose(0, 3, 1, 2).reshape(2, -1))
    w, b = _rand(rng, 2, 60), _rand(rng, 2)
    net = jc.serial(jc.flatten(channels_first=True), jc.dense(2))
    params, state = from_torch(net, {"fc.weight": w, "fc.bias": b}, (3, 4, 5))
    np.testing.assert_array_equal(params["dense_1"]["kernel"], w.T)  # no permutation
    y, _ = net.apply(params, state, jnp.asarray(x), train=False)
    np.testing.assert_allclose(y, x.transpose(0, 3, 1, 2).reshape(2, -1) @ w.T + b,
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match=r"flatten: channels_first must be a bool"):
        jc.flatten(channels_first="yes")
