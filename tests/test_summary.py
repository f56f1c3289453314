"""summary / receptive_field / geometry against independent references:
hand-counted cases, XLA's own cost analysis, a brute-force gradient probe, and the shapes
that the ops actually produce."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn as jc
from jaxcnn import geometry, initializers


def test_three_stacked_3x3_convs_see_7x7():
    net = jc.serial(*[jc.conv(8, 3, padding=1) for _ in range(3)])
    s = jc.summary(net, (32, 32, 3))
    assert s.receptive_field == (7, 7)
    assert [r.receptive_field for r in s.rows] == [(3, 3), (5, 5), (7, 7)]
    assert [r.jump for r in s.rows] == [(1, 1)] * 3


def test_conv_weight_count_by_hand():
    s = jc.summary(jc.conv(8, 3), (10, 10, 3))
    row, = s.rows if s.rows else [None]
    assert s.total_params == 3 * 3 * 3 * 8 + 8  # 216 weights + 8 biases
    assert row is None or row.params == 224


def test_rows_paths_kinds_and_shapes():
    net = jc.serial(jc.conv(4, 3, stride=2), jc.relu(),
                    jc.residual(jc.serial(jc.conv(4, 3, padding=1), jc.relu())),
                    jc.flatten(), jc.dense(3))
    s = jc.summary(net, (9, 9, 2))
    rows = {r.path: r for r in s.rows}
    assert list(rows) == ["conv_0", "relu_1", "residual_2", "residual_2/block",
                          "residual_2/block/conv_0", "residual_2/block/relu_1",
                          "residual_2/shortcut", "flatten_3", "dense_4"]
    assert rows["residual_2/shortcut"].kind == "identity"
    assert rows["conv_0"].out_shape == (4, 4, 4)
    assert rows["flatten_3"].out_shape == (64,)
    assert rows["residual_2"].params == 3 * 3 * 4 * 4 + 4
    assert s.out_shape == (3,)
    assert s.total_params == (3 * 3 * 2 * 4 + 4) + (3 * 3 * 4 * 4 + 4) + (64 * 3 + 3)
    assert s.param_bytes == 4 * s.total_params
    # conv FLOPs by hand: 2 * outputs * (k*k*C_in), plus one add per output for the bias.
    assert rows["conv_0"].flops == 2 * 4 * 4 * 4 * (3 * 3 * 2) + 4 * 4 * 4
    assert rows["dense_4"].flops == 2 * 3 * 64 + 3
    text = str(s)
    assert "residual_2" in text and "Total params: 419" in text


def test_merge_takes_the_largest_branch():
    big = jc.serial(jc.conv(2, 5, padding=2), jc.conv(2, 5, padding=2))
    small = jc.conv(2, 1)
    assert jc.receptive_field(jc.concat(big, small), (16, 16, 2)) == (9, 9)
    assert jc.receptive_field(jc.residual(big), (16, 16, 2)) == (9, 9)


def test_flops_agree_with_xla_cost_analysis():
    net = jc.serial(jc.conv(8, 3, padding=1), jc.relu(), jc.conv(16, 3, stride=2), jc.relu(),
                    jc.conv(16, 3, dilation=2, groups=4), jc.flatten(), jc.dense(10))
    s = jc.summary(net, (16, 16, 3))
    _, params, state = net.init(jax.random.key(0), (16, 16, 3))
    f = jax.jit(lambda p, x: net.apply(p, state, x, train=False)[0])
    with jc.ops.lowering("lax"):  # XLA's count of the reference lowering (as summary's)
        cost = f.lower(params, jnp.ones((1, 16, 16, 3))).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    # Convolutions and matmuls dominate; XLA counts elementwise work a little differently.
    assert s.flops == pytest.approx(cost["flops"], rel=0.10)


def _probe(net, in_shape, out_index):
    """Input positions whose gradient is non-zero for one output (all weights positive)."""
    _, params, state = net.init(jax.random.key(0), in_shape)
    params = jax.tree.map(lambda p: jnp.abs(p) + 0.1, params)

    def out(x):
        y, _ = net.apply(params, state, x, train=False)
        return y[(0,) + out_index + (0,)]

    g = np.asarray(jax.grad(out)(jnp.ones((1,) + in_shape)))[0, ..., 0]
    return np.nonzero(np.abs(g) > 0)


@pytest.mark.parametrize("seed", range(6))
def test_receptive_field_matches_gradient_probe(seed):
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(rng.integers(2, 5)):
        k, s, d = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
        if rng.random() < 0.3:
            layers.append(jc.avg_pool(k, stride=s))
        else:
            layers.append(jc.conv(1, k, stride=s, dilation=d, padding=int(rng.integers(0, 2)),
                                  kernel_init=initializers.ones))
        layers.append(jc.relu())
    net = jc.serial(*layers)
    size = 64
    s = jc.summary(net, (size, 1))
    r, j, start = s.rows[-1].receptive_field[0], s.rows[-1].jump[0], s.rows[-1].start[0]
    n_out = s.out_shape[0]
    o = n_out // 2
    lo_pos, hi_pos = start + o * j - r / 2, start + o * j + r / 2
    if lo_pos < 0 or hi_pos > size:  # window reaches into padding: the probe would clip it
        pytest.skip("central output's window is not inside the input")
    nz, = _probe(net, (size, 1), (o,))
    assert nz.max() - nz.min() + 1 == r
    assert (nz.min() + nz.max() + 1) / 2 == pytest.approx(start + o * j)


def test_receptive_field_2d_probe_with_stride_and_dilation():
    net = jc.serial(jc.conv(2, 3, stride=2, kernel_init=initializers.ones), jc.relu(),
                    jc.conv(2, (3, 1), dilation=(2, 1), kernel_init=initializers.ones))
    s = jc.summary(net, (24, 24, 1))
    assert s.receptive_field == (3 + 2 * 2 * 2, 3)
    rows, cols = _probe(net, (24, 24, 1), (5, 5))
    assert rows.max() - rows.min() + 1 == 11 and cols.max() - cols.min() + 1 == 3


def test_summary_does_not_materialise_parameters(monkeypatch):
    # A model too large to allocate comfortably is still summarised from shapes.
    net = jc.serial(jc.flatten(), jc.dense(200_000), jc.dense(200_000))
    s = jc.summary(net, (8,))
    assert s.total_params == 8 * 200_000 + 200_000 + 200_000 * 200_000 + 200_000


# ---------------------------------------------------------------- geometry
@pytest.mark.parametrize("seed", range(12))
def test_conv_output_size_matches_ops(seed):
    rng = np.random.default_rng(seed)
    size, k = int(rng.integers(5, 20)), int(rng.integers(1, 5))
    s, d, p = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 3))
    if size + 2 * p < d * (k - 1) + 1:
        pytest.skip("window larger than the padded input")
    y = jc.ops.conv(jnp.ones((1, size, 1)), jnp.ones((k, 1, 1)), stride=s, padding=p, dilation=d)
    assert geometry.conv_output_size(size, k, s, p, d) == y.shape[1]


def test_conv_output_size_ceil_mode_by_hand():
    # PyTorch: MaxPool1d(2, 2, ceil_mode=True) on length 5 gives 3; on (5, k=3, s=2, p=1) gives 3
    # because a fourth window would start in the right padding.
    assert geometry.conv_output_size(5, 2, 2, ceil_mode=True) == 3
    assert geometry.conv_output_size(5, 3, 2, 1, ceil_mode=True) == 3
    assert geometry.conv_output_size(6, 3, 2, 1, ceil_mode=True) == 4


@pytest.mark.parametrize("size,k,s,d", [(28, 5, 1, 1), (32, 3, 2, 1), (10, 3, 1, 2), (7, 4, 3, 1)])
def test_same_padding_keeps_ceil_size(size, k, s, d):
    lo, hi = geometry.same_padding(size, k, s, d)
    y = jc.ops.conv(jnp.ones((1, size, 1)), jnp.ones((k, 1, 1)), stride=s, padding=((lo, hi),),
                    dilation=d)
    assert y.shape[1] == -(-size // s)
    assert (lo, hi) == tuple(jax.lax.padtype_to_pads((size,), (d * (k - 1) + 1,), (s,), "SAME")[0])


@pytest.mark.parametrize("size,target,k,s", [(7, 14, 3, 2), (16, 32, 4, 2), (5, 15, 3, 3),
                                             (4, 9, 3, 2)])
def test_conv_transpose_padding_reaches_target(size, target, k, s):
    p, op = geometry.conv_transpose_padding(size, target, k, s)
    y = jc.ops.conv_transpose(jnp.ones((1, size, 1)), jnp.ones((k, 1, 1)), stride=s, padding=p,
                              output_padding=op)
    assert y.shape[1] == target
    assert geometry.conv_transpose_output_size(size, k, s, p, op) == target


def test_geometry_errors():
    with pytest.raises(ValueError, match="conv_transpose_padding: target must be reachable"):
        geometry.conv_transpose_padding(4, 100, 3, 2)
    with pytest.raises(ValueError, match="conv_output_size: kernel_size must be an int >= 1"):
        geometry.conv_output_size(5, 0)
    with pytest.raises(ValueError, match="conv_output_size: the padded size must be >="):
        geometry.conv_output_size(2, 5)


def test_summary_bad_in_shape():
    with pytest.raises(TypeError, match="summary: in_shape must be a tuple of ints"):
        jc.summary(jc.relu(), "28x28")


# ---------------------------------------------------------------- the zoo
# ResNet-20 (ratio 1.087 measured by hand) is left out to keep the suite's compile time down.
ZOO = [("lenet5", (28, 28, 1)), ("fcn", (64, 3)), ("voxnet", (32, 32, 32, 1)), ("tcn", (64, 2))]


def test_lenet5_counts_by_hand():
    from jaxcnn.models import lenet5
    s = jc.summary(lenet5(), (28, 28, 1))
    conv1, conv2 = 5 * 5 * 1 * 6 + 6, 5 * 5 * 6 * 16 + 16
    fc = (16 * 5 * 5) * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10
    assert s.total_params == conv1 + conv2 + fc == 61_706
    convs = [r for r in s.rows if r.kind == "conv"]
    assert [r.params for r in convs] == [conv1, conv2]
    assert [r.out_shape for r in convs] == [(28, 28, 6), (10, 10, 16)]
    # conv FLOPs by hand (2 per multiply-add, plus the bias add).
    assert convs[0].flops == 28 * 28 * 6 * (2 * 25 + 1)
    assert convs[1].flops == 10 * 10 * 16 * (2 * 150 + 1)


@pytest.mark.parametrize("name,shape", ZOO)
def test_zoo_flops_agree_with_xla_and_params_with_init(name, shape):
    # Stated tolerance: 20%. Ours counts every multiply of the kernel window, padding zeros
    # included (as fvcore and ptflops do); XLA's cost analysis skips taps that fall in the
    # padding, which matters most for the TCN's long causal (left) padding (17% there,
    # <= 9% on the others).
    from jaxcnn.models import get_model
    net = get_model(name, num_classes=10)
    s = jc.summary(net, shape)
    _, params, state = net.init(jax.random.key(0), shape)
    assert s.total_params == sum(p.size for p in jax.tree.leaves(params))
    f = jax.jit(lambda p, x: net.apply(p, state, x, train=False)[0])
    with jc.ops.lowering("lax"):
        cost = f.lower(params, jnp.ones((1,) + shape)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    assert s.flops == pytest.approx(cost["flops"], rel=0.20)
