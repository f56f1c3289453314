"""The native (oneDNN) convolution backend and the conv passes as primitives: equal to the
lax reference, every JAX transformation on small 1-d, 2-d and 3-d models, vmap, a batch
sharded over several devices, and the fallback when the backend is off or missing."""

import functools
import itertools
import logging
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn as jc
from jaxcnn import ops
from jaxcnn.ops import _native
from jaxcnn.ops._lowering import conv_plan, lowering

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIVE = _native.available() and jax.default_backend() == "cpu"
needs_native = pytest.mark.skipif(not NATIVE, reason="native backend not built here")
NATIVE_BF16 = NATIVE and _native.bf16_available()
# float32 sums in a different order: relative to the largest magnitude of each result.
RTOL = 2e-5


def _close(got, want, rtol=RTOL):
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert g.shape == w.shape and g.dtype == w.dtype
        scale = max(1.0, float(jnp.max(jnp.abs(w))))
        np.testing.assert_allclose(np.asarray(g) / scale, np.asarray(w) / scale,
                                   rtol=rtol, atol=rtol)


def _hlo(f, *args):
    return jax.jit(f).lower(*args).compile().as_text()


GROUPED = [  # x shape, kernel shape, stride, padding, dilation, groups
    ((2, 9, 6), (3, 3, 4), 2, 1, 1, 2),
    ((2, 7, 8, 6), (3, 3, 1, 6), 1, 1, 2, 6),  # depthwise
    ((2, 6, 5, 4, 4), (3, 2, 3, 2, 6), (1, 2, 1), (1, 0, 1), 1, 2),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", GROUPED)
def test_grouped_conv_and_transpose_equal_lax(x_shape, w_shape, stride, padding, dilation,
                                              groups):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=x_shape), jnp.float32)
    w = jnp.asarray(rng.normal(size=w_shape), jnp.float32)
    wt = jnp.asarray(rng.normal(size=w_shape[:-2] + (x_shape[-1], 3)), jnp.float32)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)

    def make_run():  # a new function per mode: jit caches traces by function
        def run(x, w, wt):
            f = lambda x, w: jnp.sum(jnp.sin(ops.conv(x, w, **kw)))  # noqa: E731
            g = lambda x, w: jnp.sum(jnp.sin(ops.conv_transpose(x, w, **kw)))  # noqa: E731
            return (ops.conv(x, w, **kw), jax.grad(f, (0, 1))(x, w),
                    ops.conv_transpose(x, wt, **kw), jax.grad(g, (0, 1))(x, wt))
        return run

    with lowering("lax"):
        want = jax.jit(make_run())(x, w, wt)
    compiled = jax.jit(make_run()).lower(x, w, wt).compile()
    _close(compiled(x, w, wt), want)
    if NATIVE:
        assert compiled.as_text().count("jaxcnn_dnnl_conv") >= 6


def _net(k):
    """A small model: conv (strided, padded), pool, a second conv, dense."""
    return jc.serial(jc.conv(3, k, stride=2, padding=1), jc.relu(), jc.max_pool(2),
                     jc.conv(4, k, padding="SAME"), jc.tanh(), jc.flatten(), jc.dense(2))


# Every pass of every rank runs under jit, grad (reverse), jvp and linearize (forward) and
# checkpoint; the batching rules and higher orders, which do not depend on the rank, run on
# the 2-d model only (jacfwd and the Hessian are the slowest to compile).
RANK_CASES = [((12, 2), 3, ("jit", "grad", "vmap", "jvp", "linearize", "checkpoint")),
              ((8, 8, 2), 3, ("jit", "grad", "vmap", "per_example", "ensemble", "jvp",
                              "jacfwd", "hessian", "linearize", "checkpoint")),
              ((6, 6, 6, 1), 2, ("jit", "grad", "vmap", "jvp", "linearize", "checkpoint"))]


@pytest.mark.parametrize("in_shape, k, names", RANK_CASES, ids=["1d", "2d", "3d"])
def test_every_transformation_on_conv_models(in_shape, k, names):
    """jit, grad, vmap, jvp, jacfwd, hessian, linearize, checkpoint and eval_shape run
    by default and agree with the lax reference."""
    model = _net(k)
    _, params, state = model.init(jax.random.key(0), in_shape)
    x = jax.random.normal(jax.random.key(1), (2,) + in_shape)

    def f(p, x):
        return model.apply(p, state, x, train=False)[0]

    def loss(p, x):
        return jnp.sum(f(p, x) ** 2)

    def with_kernel(kernel, x):  # loss as a function of the first conv's kernel
        leaves, tree = jax.tree.flatten(params)
        leaves[1] = kernel
        return loss(jax.tree.unflatten(tree, leaves), x)

    def linearized(params, x):
        y, lin = jax.linearize(lambda x: f(params, x), x)
        return y, lin(jnp.ones_like(x))

    transforms = {
        "jit": lambda p, x: jax.jit(f)(p, x),
        "grad": jax.grad(loss),
        "vmap": lambda p, x: jax.vmap(lambda x: f(p, x[None]))(x),
        "per_example": lambda p, x: jax.vmap(jax.grad(loss), (None, 0))(p, x[:, None]),
        "ensemble": lambda p, x: jax.vmap(loss, (0, None))(
            jax.tree.map(lambda a: jnp.stack([a, 2 * a]), p), x),
        "jvp": lambda p, x: jax.jvp(lambda p: loss(p, x), (p,),
                                    (jax.tree.map(jnp.ones_like, p),)),
        "jacfwd": lambda p, x: jax.jacfwd(lambda x: f(p, x))(x),
        "hessian": lambda p, x: jax.hessian(with_kernel)(jax.tree.leaves(p)[1], x),
        "linearize": linearized,
        "checkpoint": jax.grad(jax.checkpoint(loss)),
    }

    def make_run():  # a new function per mode: jit caches traces by function
        return lambda p, x: {name: transforms[name](p, x) for name in names}

    if not NATIVE:
        # Without the native backend the 2-d model's first conv takes the `direct` lowering
        # and its pool the reshape: their second derivatives equal lax's exactly when XLA
        # optimises (the default), but come out NaN at the suite's
        # --xla_backend_optimization_level=0 (an XLA:CPU code generation difference).
        names = tuple(n for n in names if n not in ("jacfwd", "hessian"))
    compiled = jax.jit(make_run()).lower(params, x).compile()
    got = compiled(params, x)
    assert ("jaxcnn_dnnl_conv" in compiled.as_text()) == NATIVE
    with lowering("lax"):
        want = jax.jit(make_run())(params, x)
    for name in names:
        _close(got[name], want[name], 1e-4)
    shape = jax.eval_shape(f, params, x)
    assert shape.shape == got["jit"].shape and shape.dtype == jnp.float32


def _run_python(code, xla_flags=""):
    """Runs ``code`` in a fresh process; ``xla_flags`` are added to this one's (conftest's
    optimisation level included: it makes the process's compiles several times cheaper)."""
    full = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " " + xla_flags).strip())
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, cwd=ROOT, env=full, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_sharded_batch_equals_single_device_without_gathering():
    """A jit step with the batch sharded over 8 host devices: native calls are not
    partitioned by XLA, so they give way to lax there; the result equals one device's and
    no activation is gathered."""
    out = _run_python("""
        import jax, jax.numpy as jnp, numpy as np, optax
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        import jaxcnn as jc
        net = jc.serial(jc.conv(8, 3, padding=1), jc.batch_norm(), jc.relu(), jc.max_pool(2),
                        jc.conv(8, 3, stride=2), jc.relu(), jc.flatten(), jc.dense(10))
        _, params, state = net.init(jax.random.key(0), (12, 12, 3))
        opt = optax.sgd(0.1)
        def step(params, x, y):
            def loss(p):
                logits = net.apply(p, state, x, train=True)[0]
                return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            g = jax.grad(loss)(params)
            return optax.apply_updates(params, opt.update(g, opt.init(params))[0])
        x = jax.random.normal(jax.random.key(1), (16, 12, 12, 3))
        y = jnp.arange(16) % 10
        single_step = jax.jit(step).lower(params, x, y).compile()
        single, single_hlo = single_step(params, x, y), single_step.as_text()
        mesh = Mesh(np.array(jax.devices()), ("batch",))
        xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
        ys = jax.device_put(y, NamedSharding(mesh, P("batch")))
        sharded_step = jax.jit(step).lower(params, xs, ys).compile()
        sharded, hlo = sharded_step(params, xs, ys), sharded_step.as_text()
        err = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                  zip(jax.tree.leaves(single), jax.tree.leaves(sharded)))
        print(len(jax.devices()), "all-gather" in hlo, 'custom_call_target="jaxcnn' in hlo,
              "jaxcnn_dnnl_conv" in single_hlo, "jaxcnn_native_pool" in single_hlo,
              "jaxcnn_native_norm" in single_hlo, err)
    """, "--xla_force_host_platform_device_count=8")
    devices, gathers, native_sharded, conv_single, pool_single, norm_single, err = out.split()
    assert devices == "8" and gathers == "False" and native_sharded == "False"
    assert conv_single == pool_single == norm_single == str(NATIVE) and float(err) < 1e-5


def test_backend_off_by_environment_falls_back_to_lax(monkeypatch):
    monkeypatch.setenv(_native.ENV_VAR, "0")
    assert not _native.available()
    x, w = jnp.ones((2, 6, 6, 3)), jnp.ones((3, 3, 3, 4))
    f = lambda x, w: jnp.sum(ops.conv(x, w, padding=1) ** 2)  # noqa: E731
    assert "custom_call" not in jax.jit(jax.grad(f, (0, 1))).lower(x, w).as_text()
    assert float(f(x, w)) == 2 * (16 * 27.0 ** 2 + 16 * 18.0 ** 2 + 4 * 12.0 ** 2) * 4


def test_broken_library_logs_once_and_falls_back(tmp_path, monkeypatch, caplog):
    """A library that does not load: one warning, lax lowerings, no exception."""
    monkeypatch.setenv(_native.ENV_VAR, "1")  # also where CI turns the backend off
    monkeypatch.setattr(_native, "extension_path", lambda: str(tmp_path / "broken.so"))
    monkeypatch.setattr(_native, "_load", functools.lru_cache(_native._load.__wrapped__))
    with caplog.at_level(logging.WARNING, logger="jaxcnn"):
        y = ops.conv(jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 1)))
        y = ops.conv(y, jnp.ones((1, 1, 1, 1)))
        assert not _native.available()
    assert float(y.sum()) == 36.0
    assert len(caplog.records) == 1 and "could not be loaded" in caplog.text


@needs_native
def test_readme_step_under_plain_jit_calls_the_native_passes():
    net = jc.serial(jc.conv(4, 3, padding=1), jc.relu(), jc.max_pool(2), jc.conv(4, 3),
                    jc.batch_norm(), jc.relu(), jc.flatten(), jc.dense(2))
    _, params, state = net.init(jax.random.key(0), (8, 8, 1))
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))

    def loss(p):
        return jnp.sum(net.apply(p, state, x, train=True)[0])

    hlo = _hlo(jax.grad(loss), params)
    for target in (*_native.TARGETS.values(), *_native.POOL_TARGETS.values(),
                   *_native.NORM_TARGETS.values()):
        assert target in hlo
    assert _native.set_threads(1) is not None and _native.set_threads(0) == 1


@needs_native
def test_passes_on_one_thread_or_a_team_equal_lax():
    # every pass of these convs is far below the AVX-512 threshold: with it they run on the
    # calling thread alone, with the threshold at 0 with the OpenMP team
    big = _native._serial_below({"avx512f"})
    assert big > 2 * 64 * 9 * 4 * 8 * 9
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 4))
    w = jax.random.normal(jax.random.key(1), (3, 3, 4, 8))

    def loss(x, w):
        return jnp.sum(jnp.sin(ops.conv(x, w, padding=1, stride=(1, 2))))

    grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    with lowering("lax"):
        want = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(x, w)
    results = []
    try:
        for macs in (0, big):  # grads' compiled code calls the library on each call
            _native.set_serial_below(macs)
            results.append(grads(x, w))
    finally:
        assert _native.set_serial_below(_native.SERIAL_BELOW_MACS) == big
    for got in results:
        _close(got, want)


FEW_CHANNELS = [  # x shape, kernel shape, stride, padding: fewer than 8 input channels
    ((2, 12, 11, 10, 1), (5, 5, 5, 1, 8), 2, 0),
    ((3, 14, 13, 6), (5, 5, 6, 16), 1, 0),
    ((2, 9, 10, 3), (3, 3, 3, 8), (2, 1), 1),
]


@needs_native
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", FEW_CHANNELS)
def test_few_channel_passes_equal_lax_with_either_kernel_choice(x_shape, w_shape, stride,
                                                                padding):
    x = jax.random.normal(jax.random.key(0), x_shape)
    w = jax.random.normal(jax.random.key(1), w_shape)

    def loss(x, w):
        return jnp.sum(jnp.sin(ops.conv(x, w, stride=stride, padding=padding)))

    grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    with lowering("lax"):
        want = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(x, w)
    results = []
    try:
        for prefer in (True, False):  # primitives are cached per setting
            _native.set_prefer_jit_avx2(prefer)
            results.append(grads(x, w))
    finally:
        assert _native.set_prefer_jit_avx2(True) is False
    for got in results:
        _close(got, want)


@needs_native
@pytest.mark.skipif(sys.platform != "linux" or _native.HAS_AVX512,
                    reason="the jit:avx2 preference applies to CPUs without AVX-512")
def test_few_channel_forward_takes_jit_avx2_kernels_on_avx2():
    script = textwrap.dedent("""
        import sys, jax, jax.numpy as jnp
        from jaxcnn import ops
        from jaxcnn.ops import _native
        _native.set_prefer_jit_avx2(sys.argv[1] == "1")
        x, w = jnp.ones((2, 12, 12, 12, 1)), jnp.ones((5, 5, 5, 1, 8))
        jax.block_until_ready(jax.jit(lambda x, w: ops.conv(x, w, stride=2))(x, w))
    """)

    def kernels(prefer):
        out = subprocess.run([sys.executable, "-c", script, prefer], capture_output=True,
                             text=True, check=True, env={**os.environ, "ONEDNN_VERBOSE": "1"})
        return [line.split(",")[4] for line in out.stdout.splitlines()
                if ",exec," in line and ",convolution," in line]

    assert kernels("1") == ["jit:avx2"]
    assert kernels("0")[0].startswith("brg")


def test_the_one_thread_threshold_follows_the_cpu(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n"
                       "processor\t: 1\nflags\t\t: fpu\n")
    assert _native._cpu_flags(cpuinfo) == {"fpu", "sse", "avx2", "avx512f", "avx512bw"}
    assert _native._serial_below(_native._cpu_flags(cpuinfo)) == 50_000_000
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n")
    assert _native._serial_below(_native._cpu_flags(cpuinfo)) == 0
    assert _native._cpu_flags(tmp_path / "missing") == frozenset()


# ----------------------------------------------------------------------------- bfloat16

# bfloat16 unit roundoff. oneDNN and XLA both multiply bfloat16 operands exactly in float32,
# accumulate in float32 and round each result to bfloat16 once, so two results differ by at
# most two roundings, 2u of the result's magnitude, plus float32 accumulation error (far
# below u); 3u leaves room for that. Relative to the largest magnitude of the lax result.
U_BF16 = 2.0 ** -9
BF16_TOL = 3 * U_BF16


def _bf16_cases():
    """A seeded grid per rank: stride, (low, high) padding, dilation, and groups 1, 2 and
    depthwise (groups = C_in)."""
    rng = np.random.default_rng(23)
    cases = []
    for n in (1, 2, 3):
        for i in range(3):
            c_in = int(rng.integers(2, 5)) * 2
            groups = (1, 2, c_in)[i]
            c_out = groups * int(rng.integers(1, 3)) * (2 if groups == 1 else 1)
            size = tuple(int(v) for v in rng.integers(6, 12 if n < 3 else 8, size=n))
            k = tuple(int(v) for v in rng.integers(1, 4, size=n))
            stride = tuple(int(v) for v in rng.integers(1, 3, size=n))
            dilation = tuple(int(v) for v in rng.integers(1, 3, size=n))
            pads = tuple((int(a), int(b)) for a, b in rng.integers(0, 3, size=(n, 2)))
            cases.append(((3,) + size + (c_in,), k + (c_in // groups, c_out), stride, pads,
                          dilation, groups))
    return cases


def _bf16_error(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype == jnp.bfloat16
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


@pytest.mark.skipif(not NATIVE_BF16, reason="no oneDNN bfloat16 convolutions on this CPU")
@pytest.mark.parametrize("x_shape, w_shape, stride, pads, dilation, groups", _bf16_cases(),
                         ids=lambda v: str(v).replace(" ", ""))
def test_bfloat16_passes_equal_lax(x_shape, w_shape, stride, pads, dilation, groups):
    """Forward, input gradient and kernel gradient (a VJP with a fixed bfloat16 cotangent)
    of bfloat16 convolutions on oneDNN against lax in bfloat16, within 3u; all in bfloat16."""
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=x_shape), jnp.bfloat16)
    w = jnp.asarray(rng.normal(size=w_shape), jnp.bfloat16)
    kw = dict(stride=stride, padding=pads, dilation=dilation, groups=groups)
    y_shape = jax.eval_shape(lambda x, w: ops.conv(x, w, **kw), x, w).shape
    g = jnp.asarray(rng.normal(size=y_shape), jnp.bfloat16)

    def make_run():  # a new function per mode: jit caches traces by function
        def run(x, w, g):
            y, vjp = jax.vjp(lambda x, w: ops.conv(x, w, **kw), x, w)
            return (y,) + vjp(g)
        return run

    compiled = jax.jit(make_run()).lower(x, w, g).compile()
    hlo = compiled.as_text()
    for target in _native.TARGETS.values():
        assert target in hlo
    got = compiled(x, w, g)
    with lowering("lax"):
        want = jax.jit(make_run())(x, w, g)
    for name, a, b in zip(("output", "input gradient", "kernel gradient"), got, want):
        assert _bf16_error(a, b) <= BF16_TOL, (name, _bf16_error(a, b))


def test_bfloat16_falls_back_to_lax_without_bfloat16_instructions(monkeypatch):
    """Where oneDNN reports no bfloat16 instructions, bfloat16 convolutions take no oneDNN
    call (float32 ones keep theirs) and equal the lax reference."""
    monkeypatch.setattr(_native, "bf16_available", lambda: False)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 6, 4)), jnp.bfloat16)
    w = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, 2, 4)), jnp.bfloat16)

    def make_run():
        return jax.grad(lambda x, w: jnp.sum(ops.conv(x, w, padding=1, groups=2)
                                             .astype(jnp.float32) ** 2), (0, 1))

    plan = conv_plan(x.shape, w.shape, (1, 1), ((1, 1),) * 2, (1, 1), 2, jnp.bfloat16,
                     backend="cpu")
    assert "native" not in plan
    got = jax.jit(make_run()).lower(x, w)
    assert "jaxcnn_dnnl_conv" not in got.as_text()
    f32 = jax.jit(make_run()).lower(x.astype(jnp.float32), w.astype(jnp.float32))
    assert ("jaxcnn_dnnl_conv" in f32.as_text()) == NATIVE
    with lowering("lax"):
        want = jax.jit(make_run())(x, w)
    for a, b in zip(got.compile()(x, w), want):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


@pytest.mark.skipif(not (NATIVE and sys.platform == "linux"), reason="needs /proc/cpuinfo")
def test_bfloat16_capability_matches_the_cpu_flags():
    """oneDNN's ISA query agrees with the kernel's CPU flags (unless the environment caps
    oneDNN's instruction set)."""
    if os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA"):
        pytest.skip("oneDNN's instruction set is capped by the environment")
    if not hasattr(_native._load(), "JaxcnnHasBf16"):
        pytest.skip("the native library was built without bfloat16 support: rebuild it")
    with open("/proc/cpuinfo") as f:
        flags = next(line for line in f if line.startswith("flags")).split()
    assert _native.bf16_available() == ("avx512_bf16" in flags)


# ----------------------------------------------------------------------------- pooling

def _naive_arg_extreme(x, window, lo, largest):
    """y and the first extreme's row-major window offset by loops; windows tile the input
    from ``-lo`` (padding and the part past the input count as the identity)."""
    n = x.ndim - 2
    ident = -np.inf if largest else np.inf
    out = [(s + l) // k for s, k, l in zip(x.shape[1:-1], window, lo)]
    y = np.empty((x.shape[0], *out, x.shape[-1]), np.float32)
    first = np.empty(y.shape, np.int32)
    for index in np.ndindex(*y.shape):
        b, o, c = index[0], index[1:-1], index[-1]
        values = []
        for k in np.ndindex(*window):
            pos = [oi * wi + ki - li for oi, wi, ki, li in zip(o, window, k, lo)]
            inside = all(0 <= p < s for p, s in zip(pos, x.shape[1:-1]))
            values.append(x[(b, *pos, c)] if inside else ident)
        values = np.asarray(values, np.float32)
        if np.isnan(values).any():
            y[index], first[index] = np.nan, -1
        else:
            y[index] = values.max() if largest else values.min()
            first[index] = int(np.flatnonzero(values == y[index])[0])
    assert n == len(window)
    return y, first


def _naive_scatter(g, first, window, lo, spatial):
    dx = np.zeros((g.shape[0], *spatial, g.shape[-1]), np.float32)
    for index in np.ndindex(*g.shape):
        if first[index] < 0:
            continue
        b, o, c = index[0], index[1:-1], index[-1]
        k = np.unravel_index(first[index], window)
        pos = [oi * wi + ki - li for oi, wi, ki, li in zip(o, window, k, lo)]
        if all(0 <= p < s for p, s in zip(pos, spatial)):
            dx[(b, *pos, c)] = g[index]
    return dx


POOL_PASS_CASES = [  # x shape, window, (low, high) pads
    ((3, 9, 5), (2,), ((0, 0),)),  # a cut tail
    ((2, 7, 6, 3), (2, 3), ((1, 1), (0, 0))),  # low and high padding
    ((2, 5, 4, 3, 2), (2, 2, 3), ((1, 0), (0, 0), (0, 0))),
    ((700, 4, 4, 2), (2, 2), ((0, 0), (0, 0))),  # large enough to split over threads
]


@pytest.mark.parametrize("shape, window, pads", POOL_PASS_CASES)
def test_pool_passes_equal_naive_loops(shape, window, pads):
    """arg_extreme and window_scatter, native and reshape, against loops: ties, -inf and +inf
    values, padding chosen as the first extreme; natively also NaN windows (NaN, no
    gradient; XLA's vectorised max and min reductions skip NaNs, so lax's may not)."""
    from jaxcnn.ops import _pool_passes
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, size=shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 6, replace=False)] = -np.inf
    flat[rng.choice(flat.size, 6, replace=False)] = np.inf
    with_nan = x.copy()
    with_nan.reshape(-1)[rng.choice(flat.size, 6, replace=False)] = np.nan
    lo = [p[0] for p in pads]
    spatial = shape[1:-1]
    runs = [(x, "reshape")] + ([(x, "native"), (with_nan, "native")] if NATIVE else [])
    for (x, impl), largest in itertools.product(runs, (True, False)):
        want_y, want_first = _naive_arg_extreme(x, window, lo, largest)
        g = rng.normal(size=want_y.shape).astype(np.float32)
        want_dx = _naive_scatter(g, want_first, window, lo, spatial)

        def passes(x, g, impl=impl, largest=largest):
            y, first = _pool_passes.arg_extreme(x, window, pads, largest, impl)
            return y, first, _pool_passes.window_scatter(g, first, window, pads, spatial, impl)

        compiled = jax.jit(passes).lower(x, g).compile()
        assert ("jaxcnn_native_pool" in compiled.as_text()) == (impl == "native")
        y, first, dx = compiled(x, g)
        np.testing.assert_array_equal(np.asarray(y), want_y)
        np.testing.assert_array_equal(np.asarray(first), want_first)
        np.testing.assert_array_equal(np.asarray(dx), want_dx)


@needs_native
def test_native_pool_under_vmap_jvp_and_second_order():
    """Batched offsets (per-example gradients), forward mode and a gradient of a gradient
    through the native pool equal the lax reference."""
    x = jnp.asarray(np.random.default_rng(4).integers(-2, 3, size=(3, 6, 6, 2)), jnp.float32)

    def f(x):
        y = ops.max_pool(x, 2)
        return jnp.sum(jnp.sin(y) * jnp.arange(y.size, dtype=y.dtype).reshape(y.shape))

    def make_run():
        return lambda x: (jax.vmap(jax.grad(f))(x[:, None]),
                          jax.jvp(f, (x,), (jnp.cos(x),)),
                          jax.grad(lambda x: jnp.sum(jax.grad(f)(x) ** 2))(x))

    compiled = jax.jit(make_run()).lower(x).compile()
    assert "jaxcnn_native_pool_scatter" in compiled.as_text()
    with lowering("lax"):
        want = jax.jit(make_run())(x)
    _close(compiled(x), want, 1e-6)


ROWS_CASES = [  # x shape, kernel size, padding, dilation (outputs as long as inputs)
    ((3, 16, 8), 5, 2, 1),
    ((2, 9, 4), 3, 2, 2),
    ((4, 6, 3), 4, ((1, 2),), 1),  # even kernel, uneven padding
    ((3, 2, 5), 5, 2, 1),  # taps reaching past the whole example
    ((2, 7, 1), 1, 0, 1),
]


@needs_native
@pytest.mark.parametrize("x_shape, k, padding, dilation", ROWS_CASES)
def test_rows_kernel_grad_equals_lax(x_shape, k, padding, dilation):
    """The 1-d kernel gradient as matrix products over the batch's rows equals lax's, with
    the rows that cross into a neighbouring example taken out."""
    from jaxcnn.ops._lowering import RULES, Rule
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=x_shape), jnp.float32)
    w = jnp.asarray(rng.normal(size=(k, x_shape[-1], 6)), jnp.float32)

    def loss(x, w):
        return jnp.sum(jnp.sin(ops.conv(x, w, padding=padding, dilation=dilation)))

    rows = (Rule("conv.kernel_grad", "native_rows", lambda f: True, lambda f: True),) + RULES
    with lowering("auto", rows):
        compiled = jax.jit(jax.grad(loss, (0, 1))).lower(x, w).compile()
    assert _native.ROWS_TARGET in compiled.as_text()
    with lowering("lax"):
        want = jax.jit(jax.grad(loss, (0, 1)))(x, w)
    got = compiled(x, w)
    _close(got, want)
    for a, b in zip(got, compiled(x, w)):  # run to run, bit for bit
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_rows_kernel_grad_rule():
    """Taken for float32 1-d, stride-1, same-length, ungrouped convolutions with 16 or more
    input channels, with the native library and without AVX-512; otherwise oneDNN's
    backward-weights convolution."""
    def plan(x_shape, w_shape, stride=(1,), pads=((1, 1),), groups=1, dtype=jnp.float32):
        return conv_plan(x_shape, w_shape, stride, pads, (1,), groups, dtype,
                         backend="cpu").kernel_grad

    from jaxcnn.ops._lowering import _rows_kernel_grad_pays as pays
    assert pays({"avx512": False, "c_in": 16}) and not pays({"avx512": False, "c_in": 8})
    assert not pays({"avx512": True, "c_in": 64})
    if not NATIVE:  # without the library neither native choice is planned
        assert not plan((4, 16, 16), (3, 16, 8)).startswith("native")
        return
    want = "native" if _native.HAS_AVX512 else "native_rows"
    assert plan((4, 16, 16), (3, 16, 8)) == want
    assert plan((4, 16, 8), (3, 8, 8)) == "native"
    assert plan((4, 16, 16), (3, 16, 8), stride=(2,)) == "native"
    assert plan((4, 16, 16), (3, 16, 8), pads=((0, 0),)) == "native"
    assert plan((4, 16, 16), (3, 8, 8), groups=2) == "native"
    assert conv_plan((4, 16, 16, 8), (3, 3, 8, 8), (1, 1), ((1, 1),) * 2, (1, 1), 1,
                     jnp.float32, backend="cpu").kernel_grad == "native"


NORM_SHAPES = [
    (7, 3),
    (2, 5, 4),
    (5, 131, 3),  # 655 rows: blocks of 256, the last one short, split over threads
    (4, 9, 700),  # many channels: blocks of 23 rows
    (3, 4, 4, 2, 16),
]


@pytest.mark.parametrize("shape", NORM_SHAPES)
def test_batch_norm_sums_equal_numpy(shape):
    """moments and dual_sums, native and by matrix products, against float64 numpy on
    values far from zero (a one-pass float32 variance would lose most digits there); the
    same bits on a second run (the native blocks are merged in a fixed order, whatever
    thread summed them)."""
    from jaxcnn.ops import _norm_passes
    rng = np.random.default_rng(6)
    x = (rng.normal(size=shape) * 2 + 50).astype(np.float32)
    g = rng.normal(size=shape).astype(np.float32)
    x64, g64 = (a.astype(np.float64).reshape(-1, shape[-1]) for a in (x, g))
    mean = x64.mean(0).astype(np.float32)
    terms = g64 * (x64 - mean)
    want = (x64.mean(0), x64.var(0), g64.sum(0), terms.sum(0))
    scales = (50.0, 4.0, np.abs(g64).sum(0).max(), np.abs(terms).sum(0).max())
    for impl in ("native", "matmul") if NATIVE else ("matmul",):
        def sums(x, g, mean, impl=impl):
            return (*_norm_passes.moments(x, impl), *_norm_passes.dual_sums(g, x, mean, impl))

        compiled = jax.jit(sums).lower(x, g, mean).compile()
        assert ("jaxcnn_native_norm" in compiled.as_text()) == (impl == "native")
        got_all = compiled(x, g, mean)
        for a, b in zip(got_all, compiled(x, g, mean)):  # run to run, bit for bit
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        for got, w, scale in zip(got_all, want, scales):
            assert got.shape == (shape[-1],) and got.dtype == jnp.float32
            np.testing.assert_allclose(np.asarray(got, np.float64) / scale, w / scale,
                                       atol=2e-6, err_msg=impl)


@needs_native
def test_native_batch_norm_under_vmap_jvp_and_second_order():
    """Per-example gradients, forward mode and a gradient of a gradient through the native
    batch norm equal the lax reference; the plain gradient calls both native sums."""
    x = jax.random.normal(jax.random.key(2), (3, 5, 5, 4)) * 3 + 1
    scale = jnp.linspace(0.5, 1.5, 4)

    def f(x, scale):
        y = ops.batch_norm(x, scale, train=True)[0]
        return jnp.sum(jnp.sin(y) * jnp.arange(y.size, dtype=y.dtype).reshape(y.shape))

    def make_run():
        return lambda x, s: (jax.grad(f, (0, 1))(x, s),
                             jax.vmap(jax.grad(f), (0, None))(x[:, None], s),
                             jax.jvp(f, (x, s), (jnp.cos(x), s)),
                             jax.grad(lambda x: jnp.sum(jax.grad(f)(x, scale) ** 2))(x))

    compiled = jax.jit(make_run()).lower(x, scale).compile()
    text = compiled.as_text()
    assert _native.NORM_TARGETS["moments"] in text and _native.NORM_TARGETS["dual_sums"] in text
    with lowering("lax"):
        want = jax.jit(make_run())(x, scale)
    _close(compiled(x, scale), want, 1e-5)
