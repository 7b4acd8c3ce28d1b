"""empirical_ntk(method="auto") on networks as people write them (Flax nnx/linen, Equinox, plain JAX).

Oracle: the explicit Jacobian product ``J Jᵀ`` (``jax.jacfwd`` one example at a time, float64),
independent of every kdtheory method. Flax and Equinox are test-only dependencies: their tests
skip, saying so, where they are not installed.
"""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

from kdtheory.ntk import empirical_ntk

LOG = "kdtheory.ntk"


def _explicit(apply, params, X1, X2):
    """Full kernel (n1·k, n2·k), point-major, from per-example forward-mode Jacobians."""
    flat, unravel = ravel_pytree(params)
    jac = jax.jit(lambda x: jax.jacfwd(lambda fl: apply(unravel(fl), x[None])[0])(flat))
    J1 = np.stack([np.asarray(jac(x)) for x in X1])
    J2 = np.stack([np.asarray(jac(x)) for x in X2])
    return np.einsum("icp,jdp->icjd", J1, J2).reshape(J1.shape[0] * J1.shape[1], -1)


def _want(full, n1, n2, trace):
    k = full.shape[0] // n1
    s = np.einsum("icjc->ij", full.reshape(n1, k, n2, k))
    return {None: full, "sum": s, "mean": s / k}[trace]


def _rel(a, b):
    return float(np.abs(np.asarray(a) - b).max() / np.abs(b).max())


def _assert_auto_exact(apply, params, X1, X2, caplog, *, layers, traces=("mean", "sum", None)):
    """Auto equals J Jᵀ to 1e-12 for every trace, and the debug log says it used `layers` structured layers."""
    full = _explicit(apply, params, X1, X2)
    for trace in traces:
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger=LOG):
            got = empirical_ntk(apply, params, X1, X2, trace=trace)
        assert got.shape == _want(full, len(X1), len(X2), trace).shape
        assert _rel(got, _want(full, len(X1), len(X2), trace)) <= 1e-12, trace
        assert f"structured on {layers} layers" in caplog.text, caplog.text
        assert "generic Jacobian method" not in caplog.text, caplog.text
    sym = empirical_ntk(apply, params, X1, trace=None, block_size=2)  # blocks and the symmetric case
    assert _rel(sym, _explicit(apply, params, X1, X1)) <= 1e-12


def _f64(tree):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64) if hasattr(a, "dtype") else a, tree)


# ---------------------------------------------------------------------- plain JAX
def _dense_init(key, sizes, bias):
    params = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        key, k1, k2 = jax.random.split(key, 3)
        layer = {"w": jax.random.normal(k1, (a, b)) / np.sqrt(a)}
        if bias:
            layer["b"] = 0.3 * jax.random.normal(k2, (b,))
        params.append(layer)
    return _f64(params)


def _dense_apply(params, x):
    h = x.reshape(x.shape[0], -1)
    for i, layer in enumerate(params):
        h = h @ layer["w"] * 1.5 + layer.get("b", 0.0)  # a scale after the product
        if i < len(params) - 1:
            h = jnp.tanh(h)
    return h


# caplog is cleared before every call it is read for
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    widths=st.lists(st.integers(1, 9), min_size=0, max_size=3),
    k=st.sampled_from([1, 3, 10]),
    shape=st.sampled_from([(4,), (2, 3), (3, 2, 2)]),
    bias=st.booleans(),
    n1=st.integers(1, 5),
    n2=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_plain_jax_mlps_of_any_width_depth_and_input_shape(widths, k, shape, bias, n1, n2, seed, caplog):
    rng = np.random.default_rng(seed)
    sizes = [int(np.prod(shape)), *widths, k]
    params = _dense_init(jax.random.PRNGKey(seed), sizes, bias)
    X1, X2 = rng.standard_normal((n1, *shape)), rng.standard_normal((n2, *shape))
    _assert_auto_exact(_dense_apply, params, X1, X2, caplog, layers=len(sizes) - 1, traces=("mean", None))


def _scaled_weight_apply(params, x):
    # NTK parameterization with the scale on the weight: (c·W) for a constant c; transposed weight
    w1 = params["w1"] * (1.3 / np.sqrt(x.shape[-1]))
    h = jax.nn.relu(x @ w1)
    return jax.lax.dot_general(params["w2"], h, (((1,), (1,)), ((), ()))).T / np.sqrt(h.shape[-1])


def test_scaled_and_transposed_weights(caplog):
    rng = np.random.default_rng(1)
    params = _f64({"w1": rng.standard_normal((5, 7)), "w2": rng.standard_normal((3, 7))})
    X1, X2 = rng.standard_normal((4, 5)), rng.standard_normal((3, 5))
    _assert_auto_exact(_scaled_weight_apply, params, X1, X2, caplog, layers=2)


def _sequence_apply(params, x):  # (n, T, d): a dense layer shared over positions, then mean over T
    h = jnp.tanh(x @ params["w"] + params["b"])
    return jnp.mean(h, axis=1) @ params["v"]


def test_dense_layer_over_sequence_positions(caplog):
    rng = np.random.default_rng(2)
    params = _f64({"w": rng.standard_normal((3, 6)), "b": rng.standard_normal(6), "v": rng.standard_normal((6, 2))})
    X1, X2 = rng.standard_normal((4, 5, 3)), rng.standard_normal((3, 5, 3))
    _assert_auto_exact(_sequence_apply, params, X1, X2, caplog, layers=2)


# ---------------------------------------------------------------------- fallbacks
def _tied_apply(params, x):  # the same weight twice (tied): not a layer of one input
    h = jnp.tanh(x @ params["w"])
    return h @ params["w"].T @ params["v"]


def _weightnorm_apply(params, x):  # W / ‖W‖: not a constant scale
    w = params["w"] / jnp.linalg.norm(params["w"])
    return jnp.tanh(x @ w) @ params["v"]


def _batchmix_apply(params, x):  # examples not independent: centred over the batch
    h = jnp.tanh(x @ params["w"])
    return (h - h.mean(axis=0)) @ params["v"]


@pytest.mark.parametrize(
    "apply, structured",
    [(_tied_apply, "structured on 1 layers"), (_weightnorm_apply, "structured on 1 layers"), (_batchmix_apply, None)],
)
def test_unrecognizable_layers_are_still_exact(apply, structured, caplog):
    rng = np.random.default_rng(3)
    params = _f64({"w": rng.standard_normal((4, 4)), "v": rng.standard_normal((4, 2))})
    X1, X2 = rng.standard_normal((5, 4)), rng.standard_normal((3, 4))
    flat, unravel = ravel_pytree(params)
    J1 = np.asarray(jax.jacrev(lambda f: apply(unravel(f), jnp.asarray(X1)))(flat))  # batched: the network as is
    J2 = np.asarray(jax.jacrev(lambda f: apply(unravel(f), jnp.asarray(X2)))(flat))
    want = np.einsum("icp,jcp->ij", J1, J2) / 2
    with caplog.at_level(logging.DEBUG, logger=LOG):
        got = empirical_ntk(apply, params, X1, X2)
    assert _rel(got, want) <= 1e-12
    if structured:
        assert structured in caplog.text and "generic on 1 other leaves" in caplog.text, caplog.text
    else:  # the per-example structure does not describe a batch-mixing network: the check catches it
        assert "the found structure is off" in caplog.text, caplog.text


def test_no_layer_at_all_falls_back_with_a_reason(caplog):
    rng = np.random.default_rng(4)
    params = {"a": jnp.asarray(rng.standard_normal(3))}

    def elementwise(p, x):
        return jnp.sin(x * p["a"])

    X = rng.standard_normal((4, 3))
    with caplog.at_level(logging.DEBUG, logger=LOG):
        got = empirical_ntk(elementwise, params, X, trace=None)
    assert "generic Jacobian method: no dense or convolutional layer" in caplog.text
    assert _rel(got, _explicit(elementwise, params, X, X)) <= 1e-12


# ---------------------------------------------------------------------- Flax nnx / linen
@pytest.mark.slow
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("k", [1, 10])
def test_flax_nnx_mlp_with_layer_norm_and_residual(bias, k, caplog):
    nnx = pytest.importorskip("flax.nnx", reason="Flax is a test-only dependency (pip install flax)")

    class MLP(nnx.Module):
        def __init__(self, rngs):
            kw = dict(use_bias=bias, rngs=rngs, param_dtype=jnp.float64)
            self.l1 = nnx.Linear(5, 8, **kw)
            self.l2 = nnx.Linear(8, 8, **kw)
            self.ln = nnx.LayerNorm(8, rngs=rngs, param_dtype=jnp.float64)
            self.out = nnx.Linear(8, k, **kw)

        def __call__(self, x):
            h = jax.nn.gelu(self.l1(x))
            h = h + jax.nn.relu(self.l2(self.ln(h)))  # a residual block with layer norm
            return self.out(h)

    graphdef, params = nnx.split(MLP(nnx.Rngs(0)), nnx.Param)

    def apply(p, x):
        return nnx.merge(graphdef, p)(x)

    rng = np.random.default_rng(5)
    _assert_auto_exact(apply, params, rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), caplog, layers=3)


@pytest.mark.slow
def test_flax_nnx_cnn_with_pooling(caplog):
    nnx = pytest.importorskip("flax.nnx", reason="Flax is a test-only dependency (pip install flax)")

    class CNN(nnx.Module):
        def __init__(self, rngs):
            kw = dict(rngs=rngs, param_dtype=jnp.float64)
            self.c1 = nnx.Conv(1, 4, (3, 3), **kw)
            self.c2 = nnx.Conv(4, 3, (3, 3), strides=2, padding="VALID", use_bias=False, **kw)
            self.out = nnx.Linear(3 * 1 * 1, 4, **kw)

        def __call__(self, x):
            h = nnx.avg_pool(jax.nn.relu(self.c1(x)), (2, 2), strides=(2, 2))
            h = jax.nn.relu(self.c2(h))
            return self.out(h.reshape(h.shape[0], -1))

    graphdef, params = nnx.split(CNN(nnx.Rngs(1)), nnx.Param)

    def apply(p, x):
        return nnx.merge(graphdef, p)(x)

    rng = np.random.default_rng(6)
    X1, X2 = rng.standard_normal((3, 8, 8, 1)), rng.standard_normal((2, 8, 8, 1))
    _assert_auto_exact(apply, params, X1, X2, caplog, layers=3)


@pytest.mark.slow
def test_flax_linen_cnn_and_mlp(caplog):
    nn = pytest.importorskip("flax.linen", reason="Flax is a test-only dependency (pip install flax)")

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.Conv(3, (3, 3), param_dtype=jnp.float64)(x)
            h = nn.max_pool(nn.relu(h), (2, 2), strides=(2, 2))
            h = h.reshape(h.shape[0], -1)
            h = nn.relu(nn.Dense(6, param_dtype=jnp.float64)(h))
            return nn.Dense(2, use_bias=False, param_dtype=jnp.float64)(h)

    net = Net()
    rng = np.random.default_rng(7)
    X1, X2 = rng.standard_normal((3, 6, 6, 2)), rng.standard_normal((2, 6, 6, 2))
    variables = net.init(jax.random.PRNGKey(0), jnp.asarray(X1))
    _assert_auto_exact(net.apply, variables, X1, X2, caplog, layers=3)


# ---------------------------------------------------------------------- Equinox
@pytest.mark.slow
@pytest.mark.parametrize("bias", [True, False])
def test_equinox_mlp(bias, caplog):
    eqx = pytest.importorskip("equinox", reason="Equinox is a test-only dependency (pip install equinox)")
    model = eqx.nn.MLP(4, 10, 6, 2, use_bias=bias, use_final_bias=bias, key=jax.random.PRNGKey(0))
    params, static = eqx.partition(_f64(model), eqx.is_array)

    def apply(p, x):
        return jax.vmap(eqx.combine(p, static))(x)

    rng = np.random.default_rng(8)
    _assert_auto_exact(apply, params, rng.standard_normal((4, 4)), rng.standard_normal((3, 4)), caplog, layers=3)


@pytest.mark.slow
def test_equinox_cnn_with_pooling(caplog):
    eqx = pytest.importorskip("equinox", reason="Equinox is a test-only dependency (pip install equinox)")
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    model = eqx.nn.Sequential(
        [
            eqx.nn.Conv2d(1, 3, 3, padding=1, key=keys[0]),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.AvgPool2d(2, stride=2),
            eqx.nn.Conv2d(3, 2, 3, key=keys[1]),
            eqx.nn.Lambda(jnp.ravel),
            eqx.nn.Linear(2 * 2 * 2, 3, key=keys[2]),
        ]
    )
    params, static = eqx.partition(_f64(model), eqx.is_array)

    def apply(p, x):
        return jax.vmap(eqx.combine(p, static))(x)

    rng = np.random.default_rng(9)
    X1, X2 = rng.standard_normal((3, 1, 8, 8)), rng.standard_normal((2, 1, 8, 8))
    _assert_auto_exact(apply, params, X1, X2, caplog, layers=3)
