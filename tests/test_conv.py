"""ops.conv / conv_transpose / separable_conv against naive numpy loops, hand-computed cases,
flax, the adjoint identity and numerical gradients."""

import itertools

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxcnn import ops

F32 = dict(rtol=1e-4, atol=1e-4)  # float32 sums of ~100 products vs a float64 reference
NP_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# ----------------------------------------------------------------------------- references
def explicit_pads(padding, spatial, kernel, stride, dilation):
    """(lo, hi) per axis, worked out here from the definitions (independent of jaxcnn)."""
    n = len(spatial)
    eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if padding == "VALID":
        return [(0, 0)] * n
    if padding == "CAUSAL":
        return [(e - 1, 0) for e in eff]
    if padding == "SAME":  # lax: out = ceil(in / s), the extra element goes to the end
        pads = []
        for size, e, s in zip(spatial, eff, stride):
            total = max((-(-size // s) - 1) * s + e - size, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, int):
        return [(padding, padding)] * n
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def naive_conv(x, w, stride, dilation, groups, pads, mode="zeros"):
    """Cross-correlation by explicit loops over kernel offsets and groups, in float64."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n = x.ndim - 2
    kernel = w.shape[:n]
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)], mode=NP_MODE[mode])
    out = [(xp.shape[1 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(n)]
    c_in_g, c_out = w.shape[-2], w.shape[-1]
    c_out_g = c_out // groups
    y = np.zeros((x.shape[0], *out, c_out))
    for offset in itertools.product(*[range(k) for k in kernel]):
        index = tuple(slice(d * k, d * k + s * (o - 1) + 1, s)
                      for k, d, s, o in zip(offset, dilation, stride, out))
        patch = xp[(slice(None),) + index]  # (N, *out, C_in)
        for g in range(groups):
            xs = patch[..., g * c_in_g:(g + 1) * c_in_g]
            ws = w[offset][:, g * c_out_g:(g + 1) * c_out_g]
            y[..., g * c_out_g:(g + 1) * c_out_g] += xs @ ws
    return y


def naive_conv_transpose(x, w, stride, pads, output_padding, dilation, groups):
    """PyTorch's definition: input element i times the kernel is added at s*i - lo + d*k;
    the full result is cropped by the padding; output_padding extends the end."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n = x.ndim - 2
    spatial, kernel = x.shape[1:-1], w.shape[:n]
    c_in, c_out_g = w.shape[-2], w.shape[-1]
    c_in_g = c_in // groups
    full = [(i - 1) * s + d * (k - 1) + 1 + op
            for i, s, d, k, op in zip(spatial, stride, dilation, kernel, output_padding)]
    y = np.zeros((x.shape[0], *full, groups * c_out_g))
    for pos in itertools.product(*[range(i) for i in spatial]):
        for offset in itertools.product(*[range(k) for k in kernel]):
            target = tuple(s * p + d * k for s, p, d, k in zip(stride, pos, dilation, offset))
            for g in range(groups):
                xs = x[(slice(None),) + pos + (slice(g * c_in_g, (g + 1) * c_in_g),)]
                ws = w[offset][g * c_in_g:(g + 1) * c_in_g]
                y[(slice(None),) + target + (slice(g * c_out_g, (g + 1) * c_out_g),)] += xs @ ws
    crop = tuple(slice(lo, f - hi) for (lo, hi), f in zip(pads, full))
    return y[(slice(None),) + crop]


def x64():
    return jax.enable_x64(True) if hasattr(jax, "enable_x64") else jax.experimental.enable_x64()


# ----------------------------------------------------------------------------- conv grid
def _conv_configs(count=24, seed=0):
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        n = int(rng.integers(1, 4))
        spatial = tuple(int(v) for v in rng.integers(3, 7 if n < 3 else 5, n))
        kernel = tuple(int(v) for v in rng.integers(1, 4, n))
        stride = tuple(int(v) for v in rng.integers(1, 3, n))
        dilation = tuple(int(v) for v in rng.integers(1, 3, n))
        kind = rng.choice(["plain", "grouped", "depthwise"])
        c_in = {"plain": int(rng.integers(1, 4)), "grouped": 4, "depthwise": 3}[kind]
        groups = {"plain": 1, "grouped": 2, "depthwise": c_in}[kind]
        c_out = {"plain": int(rng.integers(1, 4)), "grouped": 2 * int(rng.integers(1, 3)),
                 "depthwise": c_in * int(rng.integers(1, 3))}[kind]
        style = rng.choice(["int", "tuple", "pairs", "SAME", "VALID", "CAUSAL"])
        if style == "int":
            padding = int(rng.integers(0, 3))
        elif style == "tuple":
            padding = tuple(int(v) for v in rng.integers(0, 3, n))
        elif style == "pairs":
            padding = tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (n, 2)))
        else:
            padding = str(style)
        mode = str(rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"]))
        pads = explicit_pads(padding, spatial, kernel, stride, dilation)
        if mode == "reflect" and any(max(p) >= s for p, s in zip(pads, spatial)):
            continue
        if mode == "circular" and any(max(p) > s for p, s in zip(pads, spatial)):
            continue
        if any(s + lo + hi < d * (k - 1) + 1
               for s, (lo, hi), k, d in zip(spatial, pads, kernel, dilation)):
            continue
        configs.append(dict(spatial=spatial, kernel=kernel, stride=stride, dilation=dilation,
                            groups=groups, c_in=c_in, c_out=c_out, padding=padding, mode=mode))
    return configs


def _conv_id(c):
    return "{spatial}-k{kernel}-s{stride}-d{dilation}-g{groups}-{padding}-{mode}".format(
        **c).replace(" ", "")


@pytest.mark.parametrize("cfg", _conv_configs(), ids=_conv_id)
def test_conv_matches_naive_loops(cfg):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *cfg["spatial"], cfg["c_in"])).astype(np.float32)
    w = rng.standard_normal((*cfg["kernel"], cfg["c_in"] // cfg["groups"], cfg["c_out"]))
    w = w.astype(np.float32)
    b = rng.standard_normal(cfg["c_out"]).astype(np.float32)
    # int/tuple arguments in the op where the reference needs tuples
    stride = cfg["stride"][0] if len(set(cfg["stride"])) == 1 else cfg["stride"]
    y = ops.conv(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b), stride=stride,
                 padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"],
                 padding_mode=cfg["mode"])
    pads = explicit_pads(cfg["padding"], cfg["spatial"], cfg["kernel"], cfg["stride"],
                         cfg["dilation"])
    ref = naive_conv(x, w, cfg["stride"], cfg["dilation"], cfg["groups"], pads, cfg["mode"])
    ref = ref + b
    assert y.dtype == jnp.float32
    assert y.shape == ref.shape
    np.testing.assert_allclose(np.asarray(y), ref, **F32)


def test_conv_padding_strings_lower_case_and_same_output_size():
    x = jnp.ones((1, 7, 5, 2))
    w = jnp.ones((3, 2, 2, 4))
    assert ops.conv(x, w, padding="same", stride=2).shape == (1, 4, 3, 4)  # ceil(in / s)
    assert ops.conv(x, w, padding="valid").shape == (1, 5, 4, 4)
    assert ops.conv(x, w, padding="causal", dilation=2).shape == (1, 7, 5, 4)


# ----------------------------------------------------------------------------- hand-computed
def test_conv_1d_hand_computed():
    x = jnp.asarray([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
    w = jnp.asarray([1.0, 0.0, -1.0]).reshape(3, 1, 1)
    # cross-correlation: y[o] = x[o] - x[o + 2]
    np.testing.assert_array_equal(ops.conv(x, w)[0, :, 0], [-2.0, -2.0])
    np.testing.assert_array_equal(ops.conv(x, w, padding=1)[0, :, 0], [-2.0, -2.0, -2.0, 3.0])
    np.testing.assert_array_equal(ops.conv(x, w, padding=1, stride=2)[0, :, 0], [-2.0, -2.0])
    np.testing.assert_array_equal(ops.conv(x, w, padding="CAUSAL")[0, :, 0],
                                  [-1.0, -2.0, -2.0, -2.0])
    np.testing.assert_array_equal(ops.conv(x, w, padding=((2, 0),))[0, :, 0],
                                  [-1.0, -2.0, -2.0, -2.0])
    x6 = jnp.arange(1.0, 7.0).reshape(1, 6, 1)
    np.testing.assert_array_equal(ops.conv(x6, w, dilation=2)[0, :, 0], [-4.0, -4.0])
    # reflect: [3, 2, 1, 2, 3, 4, 3, 2] -> y[o] = xp[o] - xp[o+2]
    np.testing.assert_array_equal(ops.conv(x, w, padding=2, padding_mode="reflect")[0, :, 0],
                                  [2.0, 0.0, -2.0, -2.0, 0.0, 2.0])
    # circular: [4, 1, 2, 3, 4, 1]
    np.testing.assert_array_equal(ops.conv(x, w, padding=1, padding_mode="circular")[0, :, 0],
                                  [2.0, -2.0, -2.0, 2.0])
    # replicate: [1, 1, 2, 3, 4, 4]
    np.testing.assert_array_equal(ops.conv(x, w, padding=1, padding_mode="replicate")[0, :, 0],
                                  [-1.0, -2.0, -2.0, -1.0])


def test_conv_2d_ones_kernel_counts_neighbours():
    y = ops.conv(jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 1)), padding=1)[0, :, :, 0]
    expected = np.full((5, 5), 9.0)
    expected[[0, -1], :] = 6.0
    expected[:, [0, -1]] = 6.0
    expected[[0, 0, -1, -1], [0, -1, 0, -1]] = 4.0
    np.testing.assert_array_equal(y, expected)
    y = ops.conv(jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 1)), jnp.asarray([0.5]), stride=2)
    np.testing.assert_array_equal(y[0, :, :, 0], np.full((2, 2), 9.5))


def test_conv_transpose_1d_hand_computed():
    x = jnp.asarray([1.0, 2.0]).reshape(1, 2, 1)
    w = jnp.ones((3, 1, 1))
    # scatter: 1 * [1, 1, 1] at 0, 2 * [1, 1, 1] at 2 -> [1, 1, 3, 2, 2]
    np.testing.assert_array_equal(ops.conv_transpose(x, w, stride=2)[0, :, 0], [1, 1, 3, 2, 2])
    np.testing.assert_array_equal(ops.conv_transpose(x, w, stride=2, padding=1)[0, :, 0],
                                  [1, 3, 2])
    np.testing.assert_array_equal(
        ops.conv_transpose(x, w, stride=2, padding=1, output_padding=1)[0, :, 0], [1, 3, 2, 2])
    w2 = jnp.asarray([1.0, 10.0]).reshape(2, 1, 1)
    # not flipped: element i lands at 2i (weight 1) and 2i + 1 (weight 10)
    np.testing.assert_array_equal(ops.conv_transpose(x, w2, stride=2)[0, :, 0], [1, 10, 2, 20])
    # padding larger than d * (k - 1) crops into the scattered values (PyTorch allows it):
    # stride 3 scatters [1, 10, 0, 2, 20]
    np.testing.assert_array_equal(
        ops.conv_transpose(x, w2, stride=3, padding=((2, 1),))[0, :, 0], [0.0, 2.0])
    np.testing.assert_array_equal(
        ops.conv_transpose(x, w2, stride=3, padding=((1, 2),))[0, :, 0], [10.0, 0.0])
    np.testing.assert_array_equal(ops.conv_transpose(x, w2, stride=3, padding=2)[0, :, 0], [0.0])


# ----------------------------------------------------------------------------- conv_transpose grid
def _transpose_configs(count=16, seed=3):
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        n = int(rng.integers(1, 4))
        spatial = tuple(int(v) for v in rng.integers(1, 5 if n < 3 else 3, n))
        kernel = tuple(int(v) for v in rng.integers(1, 4, n))
        stride = tuple(int(v) for v in rng.integers(1, 4, n))
        dilation = tuple(int(v) for v in rng.integers(1, 3, n))
        groups = int(rng.choice([1, 2]))
        c_in, c_out_g = groups * int(rng.integers(1, 3)), int(rng.integers(1, 3))
        if rng.random() < 0.3:
            pads = [tuple(int(v) for v in rng.integers(0, 4, 2)) for _ in range(n)]
            padding = tuple(pads)
        else:
            padding = int(rng.integers(0, 4))
            pads = [(padding, padding)] * n
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        out = [(i - 1) * s - lo - hi + d * (k - 1) + op + 1 for i, s, (lo, hi), d, k, op in
               zip(spatial, stride, pads, dilation, kernel, output_padding)]
        if min(out) < 1:
            continue
        configs.append(dict(spatial=spatial, kernel=kernel, stride=stride, dilation=dilation,
                            groups=groups, c_in=c_in, c_out_g=c_out_g, padding=padding, pads=pads,
                            output_padding=output_padding))
    return configs


@pytest.mark.parametrize("cfg", _transpose_configs(), ids=lambda c: "{spatial}-k{kernel}-s{stride}"
                         "-d{dilation}-g{groups}-p{padding}-op{output_padding}".format(**c)
                         .replace(" ", ""))
def test_conv_transpose_matches_scatter_add(cfg):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, *cfg["spatial"], cfg["c_in"])).astype(np.float32)
    w = rng.standard_normal((*cfg["kernel"], cfg["c_in"], cfg["c_out_g"])).astype(np.float32)
    b = rng.standard_normal(cfg["groups"] * cfg["c_out_g"]).astype(np.float32)
    y = ops.conv_transpose(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b), stride=cfg["stride"],
                           padding=cfg["padding"], output_padding=cfg["output_padding"],
                           dilation=cfg["dilation"], groups=cfg["groups"])
    ref = naive_conv_transpose(x, w, cfg["stride"], cfg["pads"], cfg["output_padding"],
                               cfg["dilation"], cfg["groups"]) + b
    assert y.shape == ref.shape
    np.testing.assert_allclose(np.asarray(y), ref, **F32)


def test_conv_transpose_valid_is_zero_padding():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 3, 3, 2)), jnp.float32)
    w = jnp.asarray(np.random.default_rng(1).standard_normal((2, 2, 2, 3)), jnp.float32)
    np.testing.assert_array_equal(ops.conv_transpose(x, w, stride=2, padding="valid"),
                                  ops.conv_transpose(x, w, stride=2, padding=0))


@pytest.mark.parametrize("cfg", _conv_configs(6, seed=5), ids=lambda c: str(c["spatial"]))
def test_adjoint_identity(cfg):
    """<conv(x, w), y> == <x, conv_transpose(y, w^T)> with the same padding."""
    rng = np.random.default_rng(4)
    g, spatial = cfg["groups"], cfg["spatial"]
    pads = explicit_pads(cfg["padding"], spatial, cfg["kernel"], cfg["stride"], cfg["dilation"])
    x = rng.standard_normal((2, *spatial, cfg["c_in"])).astype(np.float32)
    w = rng.standard_normal((*cfg["kernel"], cfg["c_in"] // g, cfg["c_out"])).astype(np.float32)
    fx = ops.conv(jnp.asarray(x), jnp.asarray(w), stride=cfg["stride"], padding=tuple(pads),
                  dilation=cfg["dilation"], groups=g)
    y = rng.standard_normal(fx.shape).astype(np.float32)
    op = tuple((s_in + lo + hi - d * (k - 1) - 1) % s for s_in, (lo, hi), k, d, s in
               zip(spatial, pads, cfg["kernel"], cfg["dilation"], cfg["stride"]))
    aty = ops.conv_transpose(jnp.asarray(y), jnp.swapaxes(jnp.asarray(w), -1, -2),
                             stride=cfg["stride"], padding=tuple(pads), output_padding=op,
                             dilation=cfg["dilation"], groups=g)
    assert aty.shape == x.shape
    lhs = np.sum(np.asarray(fx, np.float64) * y)
    rhs = np.sum(x * np.asarray(aty, np.float64))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4, atol=1e-3)


# ----------------------------------------------------------------------------- flax
@pytest.mark.parametrize("n,padding,mode,flax_padding", [
    (1, "CAUSAL", "zeros", "CAUSAL"),
    (2, "SAME", "zeros", "SAME"),
    (2, ((1, 0), (2, 1)), "zeros", ((1, 0), (2, 1))),
    (3, "VALID", "zeros", "VALID"),
    (2, None, "circular", "CIRCULAR"),
    (1, None, "reflect", "REFLECT"),
])
def test_conv_matches_flax(n, padding, mode, flax_padding):
    rng = np.random.default_rng(6)
    kernel, stride, dilation = (3, 2, 2)[:n], (2, 1, 1)[:n], (1, 2, 1)[:n]
    if padding is None:  # flax pads ((e - 1) // 2, e // 2) before a VALID conv
        padding = tuple(((d * (k - 1)) // 2, (d * (k - 1) + 1) // 2)
                        for k, d in zip(kernel, dilation))
    x = rng.standard_normal((2, *(5, 6, 4)[:n], 4)).astype(np.float32)
    w = rng.standard_normal((*kernel, 2, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    module = fnn.Conv(6, kernel, strides=stride, padding=flax_padding, kernel_dilation=dilation,
                      feature_group_count=2)
    ref = module.apply({"params": {"kernel": w, "bias": b}}, x)
    y = ops.conv(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b), stride=stride, padding=padding,
                 dilation=dilation, groups=2, padding_mode=mode)
    np.testing.assert_allclose(y, ref, **F32)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_conv_transpose_matches_flax(n):
    """flax ConvTranspose(transpose_kernel=True) with explicit pairs pads the stride-dilated
    input directly: PyTorch's padding p is flax's (d(k-1) - p, d(k-1) - p + output_padding)."""
    rng = np.random.default_rng(7)
    kernel, stride, dilation, p, op = (3, 4, 2)[:n], (2, 3, 1)[:n], (1, 1, 2)[:n], 1, (1, 2, 1)[:n]
    x = rng.standard_normal((2, *(3, 2, 3)[:n], 3)).astype(np.float32)
    w = rng.standard_normal((*kernel, 3, 5)).astype(np.float32)  # ours: (*k, C_in, C_out)
    flax_pad = tuple((d * (k - 1) - p, d * (k - 1) - p + o)
                     for k, d, o in zip(kernel, dilation, op))
    module = fnn.ConvTranspose(5, kernel, strides=stride, padding=flax_pad,
                               kernel_dilation=dilation, transpose_kernel=True, use_bias=False)
    ref = module.apply({"params": {"kernel": np.swapaxes(w, -1, -2)}}, x)  # flax: (*k, out, in)
    y = ops.conv_transpose(jnp.asarray(x), jnp.asarray(w), stride=stride, padding=p,
                           output_padding=op, dilation=dilation)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, **F32)


# ----------------------------------------------------------------------------- separable
@pytest.mark.parametrize("n,mult,mode", [(1, 1, "zeros"), (2, 2, "reflect"), (3, 1, "replicate")])
def test_separable_conv_is_depthwise_then_pointwise(n, mult, mode):
    rng = np.random.default_rng(8)
    c = 3
    x = rng.standard_normal((2, *(6, 5, 4)[:n], c)).astype(np.float32)
    dw = rng.standard_normal((*(3,) * n, 1, c * mult)).astype(np.float32)
    pw = rng.standard_normal((*(1,) * n, c * mult, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    y = ops.separable_conv(jnp.asarray(x), jnp.asarray(dw), jnp.asarray(pw), jnp.asarray(b),
                           stride=2, padding=1, padding_mode=mode)
    # depthwise: group j has input channel j and middle channels [j * mult, (j + 1) * mult)
    mid = naive_conv(x, dw, (2,) * n, (1,) * n, c, [(1, 1)] * n, mode)
    ref = np.einsum("...c,cd->...d", mid, pw.reshape(c * mult, 4)) + b
    np.testing.assert_allclose(y, ref, **F32)


# ----------------------------------------------------------------- gradients, jit, dtypes
def test_gradients_float64():
    rng = np.random.default_rng(9)
    with x64():
        x = jnp.asarray(rng.standard_normal((1, 5, 4, 2)))
        w = jnp.asarray(rng.standard_normal((3, 2, 1, 4)))
        b = jnp.asarray(rng.standard_normal(4))
        assert x.dtype == jnp.float64
        f = lambda x, w, b: ops.conv(x, w, b, stride=(2, 1), padding=((1, 0), 1), dilation=(1, 2),
                                     groups=2, padding_mode="reflect")
        check_grads(jax.jit(f), (x, w, b), order=1, modes=["rev"])
        wt = jnp.asarray(rng.standard_normal((2, 3, 2, 3)))
        g = lambda x, w: ops.conv_transpose(x, w, stride=2, padding=1, output_padding=1,
                                            groups=2)
        check_grads(jax.jit(g), (x, wt), order=1, modes=["rev"])
        dw = jnp.asarray(rng.standard_normal((3, 3, 1, 4)))
        pw = jnp.asarray(rng.standard_normal((1, 1, 4, 3)))
        h = lambda x, dw, pw: ops.separable_conv(x, dw, pw, stride=2, padding="SAME")
        check_grads(jax.jit(h), (x, dw, pw), order=1, modes=["rev"])


def test_jit_equals_eager():
    rng = np.random.default_rng(10)
    x = jnp.asarray(rng.standard_normal((2, 6, 3)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 3, 4)), jnp.float32)
    f = lambda x, w: ops.conv(x, w, stride=2, padding="SAME", padding_mode="circular")
    np.testing.assert_allclose(jax.jit(f)(x, w), f(x, w), rtol=1e-6, atol=1e-6)
    g = lambda x, w: ops.conv_transpose(x, w, stride=2, padding=1, output_padding=1)
    np.testing.assert_allclose(jax.jit(g)(x, w), g(x, w), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_inputs_keep_dtype(dtype):
    rng = np.random.default_rng(11)
    x = jnp.asarray(rng.standard_normal((1, 5, 5, 2)), dtype)
    w = jnp.asarray(rng.standard_normal((3, 3, 2, 2)), jnp.float32)  # params stay float32
    b = jnp.zeros(2, jnp.float32)
    y = ops.conv(x, w, b, padding=1)
    assert y.dtype == dtype
    ref = naive_conv(np.asarray(x, np.float32), w, (1, 1), (1, 1), 1, [(1, 1)] * 2)
    np.testing.assert_allclose(np.asarray(y, np.float32), ref, rtol=5e-2, atol=1e-1)
    assert ops.conv_transpose(x, w, b, stride=2).dtype == dtype
    assert ops.separable_conv(x, w[:, :, :1], w[:1, :1], b).dtype == dtype


# ----------------------------------------------------------------------------- errors
X2 = jnp.ones((1, 5, 5, 4))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: ops.conv(jnp.ones((5, 4)), jnp.ones((3, 4, 2))), ValueError,
     r"conv: x rank must be 3, 4 or 5 .*got 2\. Add a batch axis"),
    (lambda: ops.conv(jnp.ones((1, 5, 5, 4), jnp.int32), jnp.ones((3, 3, 4, 2))), TypeError,
     r"conv: x dtype must be a floating dtype, got 'int32'\. Cast it first"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 4, 2), jnp.int32)), TypeError,
     r"conv: kernel dtype must be a floating dtype"),
    (lambda: ops.conv(X2, jnp.ones((3, 4, 2))), ValueError,
     r"conv: kernel rank must be 4 \(\*kernel_size, in, out\) for a 2-d input, got 3"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 4, 2)), groups=0), ValueError,
     r"conv: groups must be a positive int, got 0"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 1, 3)), groups=3), ValueError,
     r"conv: input channels must be divisible by groups=3, got 4"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 3, 2))), ValueError,
     r"conv: kernel.shape\[-2\] \(input channels of the kernel\) must be 4 for an input with 4 "
     r"channels and groups=1, got 3\. Check the input's channel count"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 2, 3)), groups=2), ValueError,
     r"conv: output channels \(kernel.shape\[-1\]\) must be divisible by groups=2, got 3"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 4, 2)), jnp.ones(3)), ValueError,
     r"conv: bias shape must be \(2,\), got \(3,\)"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 4, 2)), padding_mode="mirror"), ValueError,
     r"conv: padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', "
     r"got 'mirror'"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 4, 2)), stride=(1, 2, 1)), ValueError,
     r"conv: stride must be an int or a sequence of 2 ints \(one per spatial dimension\)"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 4, 2)), dilation=0), ValueError,
     r"conv: dilation must be >= 1, got 0"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 4, 2)), padding="FULL"), ValueError,
     r"conv: padding must be an int, a tuple, \(low, high\) pairs or one of 'SAME', 'VALID', "
     r"'CAUSAL', got 'FULL'"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 4, 2)), padding=-1), ValueError,
     r"conv: padding must be non-negative, got -1"),
    (lambda: ops.conv(X2, jnp.ones((7, 3, 4, 2))), ValueError,
     r"conv: padded input size along spatial axis 0 must be >= the dilated kernel size 7, got 5\. "
     r"The input is too small"),
    (lambda: ops.conv(X2, jnp.ones((3, 3, 4, 2)), padding=5, padding_mode="reflect"), ValueError,
     r"conv: reflect padding along spatial axis 0 must be smaller than the input size 5"),
    (lambda: ops.conv(jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 4)), groups=4), ValueError,
     r"conv: input channels must be divisible by groups=4, got 1"),
    (lambda: ops.conv_transpose(X2, jnp.ones((3, 3, 2, 2))), ValueError,
     r"conv_transpose: kernel.shape\[-2\] \(input channels of the kernel\) must be 4"),
    (lambda: ops.conv_transpose(X2, jnp.ones((3, 3, 4, 2)), stride=2, output_padding=2),
     ValueError, r"conv_transpose: output_padding must be smaller than stride or dilation \(2\), "
     r"got \(2, 2\)\. output_padding only resolves"),
    (lambda: ops.conv_transpose(X2, jnp.ones((3, 3, 4, 2)), output_padding=-1), ValueError,
     r"conv_transpose: output_padding must be >= 0, got -1"),
    (lambda: ops.conv_transpose(X2, jnp.ones((3, 3, 4, 2)), padding="SAME"), ValueError,
     r"conv_transpose: padding must be .* or one of 'VALID', got 'SAME'"),
    (lambda: ops.conv_transpose(jnp.ones((1, 2, 1)), jnp.ones((2, 1, 1)), padding=2), ValueError,
     r"conv_transpose: output size along spatial axis 0 must be positive, got -1\. The padding "
     r"removes more"),
])
def test_error_messages(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
