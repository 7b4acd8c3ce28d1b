"""kdtheory.gradients: per-example gradients and Jacobians against hand formulas and recorded runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdtheory.gradients import distillation_gradients, per_example_gradients, per_example_jacobians, statistics_along
from kdtheory.noise import decompose, gradient_statistics
from kdtheory.simulate import Loss, Run, linear_model, mlp
from kdtheory.testing import assert_close


def _softmax(a):
    e = np.exp(a - a.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _linear(seed=0, n=40, d=5, k=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = np.eye(k)[rng.integers(0, k, n)]
    W = rng.standard_normal((d, k))
    return X, Y, W, rng


def test_linear_per_example_gradients_match_hand_formula():
    X, Y, W, rng = _linear()
    Z = rng.standard_normal(Y.shape) * 2
    m = linear_model(5, 3)
    P = _softmax(X @ W)
    for loss, target in [
        (Loss("ce"), Y),
        (Loss("ce", teacher_weight=1.0), _softmax(Z)),
        (Loss("ce", teacher_weight=0.3), 0.7 * Y + 0.3 * _softmax(Z)),
    ]:
        g = per_example_gradients(m, {"w": jnp.asarray(W)}, X, Y, loss=loss, teacher=Z)
        hand = np.einsum("nd,nk->ndk", X, P - target).reshape(40, -1)
        assert np.abs(g - hand).max() < 1e-14
    g = per_example_gradients(m, {"w": jnp.asarray(W)}, X, Y, loss=Loss("mse"))
    assert np.abs(g - np.einsum("nd,nk->ndk", X, X @ W - Y).reshape(40, -1)).max() < 1e-13


def test_mean_one_hot_gradient_is_distillation_gradient():
    # E[g_OH] = g_KD exactly: average the per-example one-hot gradients over all labels weighted by q
    X, Y, W, rng = _linear(4, k=4)
    Z = rng.standard_normal((40, 4))
    m, params = linear_model(5, 4), {"w": jnp.asarray(rng.standard_normal((5, 4)))}
    q = _softmax(Z)
    g_kd = per_example_gradients(m, params, X, Y, loss=Loss("ce", teacher_weight=1.0), teacher=Z).mean(0)
    expect = sum(
        (q[:, c : c + 1] * per_example_gradients(m, params, X, np.tile(np.eye(4)[c], (40, 1)))).mean(0)
        for c in range(4)
    )
    assert_close(expect, g_kd, rtol=1e-12)


def test_decomposition_and_jacobian_identity():
    X, Y, W, rng = _linear(5)
    Z = rng.standard_normal(Y.shape) * 2
    model = mlp([5, 8, 3], activation="tanh")
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), model.init(jax.random.PRNGKey(1)))
    dec = decompose(*distillation_gradients(model, params, X, Y, Z), Z)
    assert_close(dec.g_onehot, dec.g_distill + dec.xi, rtol=1e-12)
    assert dec.bin_share.sum() == pytest.approx(1.0)
    J = per_example_jacobians(model.apply, params, X)
    q = _softmax(Z)
    hand = np.einsum("nkp,nk->np", J, q - Y)  # ξ_i n = J_iᵀ (q_i − e_{y_i})
    assert_close(dec.contribution, np.sum(hand * hand, 1), rtol=1e-10)
    # temperature: the one-hot and distillation terms both τ J(p_τ − ·)
    dec3 = decompose(*distillation_gradients(model, params, X, Y, Z, temperature=3.0), Z)
    hand3 = 3.0 * np.einsum("nkp,nk->np", J, _softmax(Z / 3.0) - Y)
    assert_close(dec3.contribution, np.sum(hand3 * hand3, 1), rtol=1e-9)


@settings(max_examples=40)
@given(st.integers(0, 1000), st.sampled_from(["ce", "mse"]))
def test_zero_noise_when_targets_are_the_models_own_predictions(seed, kind):
    X, Y, W, rng = _linear(seed % 7)
    m, params = linear_model(5, 3), {"w": jnp.asarray(rng.standard_normal((5, 3)))}
    own = np.asarray(X @ np.asarray(params["w"]))  # logits (CE) or outputs (MSE)
    g = per_example_gradients(m, params, X, Y, loss=Loss(kind, teacher_weight=1.0), teacher=own)
    assert np.abs(g).max() < 1e-12
    s = gradient_statistics(g)
    assert s.trace < 1e-24  # (B_simple is a ratio of round-off here, not tested)


def test_statistics_along_a_recorded_trajectory():
    from jax.flatten_util import ravel_pytree

    from kdtheory.simulate import Optimizer, train_model

    X, Y, _, _ = _linear(8)
    m = linear_model(5, 3)
    run = train_model(
        m,
        X,
        Y,
        t=[0, 5, 30],
        run=Run(loss=Loss("ce", normalization="mean"), optimizer=Optimizer(learning_rate=0.3)),
        dtype=jnp.float64,
        project=lambda p: ravel_pytree(p)[0],
    )
    stats = statistics_along(m, m.init(jax.random.PRNGKey(0)), run.projection, X, Y)
    last = gradient_statistics(per_example_gradients(m, {"w": jnp.asarray(run.params["w"])}, X, Y))
    assert len(stats) == 3 and stats[-1].trace == pytest.approx(last.trace, rel=1e-12)
    assert stats[0].trace > 0


def test_teacher_probabilities_declared_or_refused():
    X, Y, W, rng = _linear(9)
    Z = rng.standard_normal(Y.shape)
    m, params = linear_model(5, 3), {"w": jnp.asarray(W)}
    loss = Loss("ce", teacher_weight=1.0, temperature=2.0)
    g = per_example_gradients(m, params, X, Y, loss=loss, teacher=Z)
    g_p = per_example_gradients(m, params, X, Y, loss=loss, teacher=_softmax(Z), teacher_kind="probabilities")
    assert_close(g_p, g, rtol=1e-10, atol=1e-14)
    with pytest.raises(ValueError, match="looks like probabilities"):
        per_example_gradients(m, params, X, Y, loss=loss, teacher=_softmax(Z))


def test_bad_inputs():
    X, Y, W, _ = _linear()
    m = linear_model(5, 3)
    with pytest.raises(ValueError, match="needs teacher outputs"):
        per_example_gradients(m, {"w": jnp.asarray(W)}, X, Y, loss=Loss("ce", teacher_weight=1.0))
    with pytest.raises(ValueError, match="parameter pytree"):
        per_example_gradients(m, jnp.zeros(15), X, Y)
