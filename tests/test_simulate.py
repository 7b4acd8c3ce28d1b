"""kdtheory.simulate: the JAX engine against the closed forms, and its conventions."""

import subprocess
import sys

import jax

jax.config.update("jax_enable_x64", True)  # tests compare simulation and closed form to ~1e-9

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kdtheory.dynamics import train  # noqa: E402
from kdtheory.eigen import Spectrum  # noqa: E402
from kdtheory.simulate import (  # noqa: E402
    Loss,
    Optimizer,
    _objective,
    kernel_model,
    linear_model,
    mlp,
    random_features_model,
    teacher_student,
    train_model,
)
from kdtheory.testing import assert_close  # noqa: E402

F64 = jnp.float64


def _data(seed=0, n=24, d=7, k=3, nt=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(1.5, 0.3, d)
    return X, rng.standard_normal((nt, d)), rng.standard_normal((n, k)), rng


@pytest.mark.parametrize("normalization", ["sum", "mean"])
@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_linear_mse_matches_closed_form(normalization, beta):
    X, Xt, Y, _ = _data(1)
    spec = Spectrum.from_features(X)
    lam = spec.evals[0] / (X.shape[0] if normalization == "mean" else 1)
    eta = 0.9 * (1 + beta) / lam
    ck = [0, 1, 3, 30, 400]
    run = train_model(linear_model(7, 3), X, Y, checkpoints=ck, loss=Loss("mse", normalization),
                      optimizer=Optimizer(eta, beta), X_test=Xt, dtype=F64,
                      project=lambda p: jnp.asarray(spec.V.T) @ p["w"])  # fmt: skip
    cf = train(spec, Y, ck, method="momentum" if beta else "gd", learning_rate=eta, momentum=beta,
               loss=normalization, test_features=Xt)  # fmt: skip
    assert_close(run.train_outputs, cf.train, rtol=1e-9)
    assert_close(run.test_outputs, cf.test, rtol=1e-9)
    assert_close(run.projection, np.einsum("dm,tdk->tmk", spec.V, cf.weights), rtol=1e-9)
    assert_close(run.train_loss, cf.loss, rtol=1e-9)
    # the returned parameters are those of the last checkpoint (regression: one update too many)
    assert_close(run.params["w"], cf.weights[-1], rtol=1e-9)


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_kernel_model_matches_closed_form(beta):
    X, Xt, Y, _ = _data(2)
    K, Kx = X @ X.T, Xt @ X.T
    spec = Spectrum.from_kernel(K)
    eta = 0.8 * (1 + beta) / spec.evals[0]
    ck = [0, 2, 17, 250]
    run = train_model(kernel_model(24, 3), K, Y, checkpoints=ck, loss=Loss("mse", "sum"),
                      optimizer=Optimizer(eta, beta), X_test=Kx, dtype=F64)  # fmt: skip
    cf = train(spec, Y, ck, method="momentum" if beta else "gd", learning_rate=eta, momentum=beta, test_kernel=Kx)
    assert_close(run.train_outputs, cf.train, rtol=1e-9)
    assert_close(run.test_outputs, cf.test, rtol=1e-9)


@pytest.mark.parametrize("reverse", [False, True])
def test_loss_switch_matches_two_phase_closed_form(reverse):
    X, Xt, Y, rng = _data(3)
    teacher = rng.standard_normal(Y.shape)
    spec = Spectrum.from_features(X)
    eta = 0.9 / spec.evals[0]
    w0, w1 = (1.0, 0.0) if reverse else (0.0, 1.0)
    loss = Loss("mse", "sum", teacher_weight=w0, teacher_weight_after=w1, switch_step=15)
    run = train_model(linear_model(7, 3), X, Y, checkpoints=[0, 15, 60], loss=loss, optimizer=Optimizer(eta),
                      teacher=teacher, X_test=Xt, dtype=F64)  # fmt: skip
    first, second = (teacher, Y) if reverse else (Y, teacher)
    a = train(spec, first, 15, method="gd", learning_rate=eta)
    b = train(spec, second, 45, method="gd", learning_rate=eta, init_weights=a.weights, test_features=Xt)
    assert_close(run.train_outputs[1], a.train, rtol=1e-9)
    assert_close(run.train_outputs[2], b.train, rtol=1e-9)
    assert_close(run.test_outputs[2], b.test, rtol=1e-9)


def test_float32_close_to_float64():
    X, _, Y, _ = _data(4)
    eta = 0.5 / Spectrum.from_features(X).evals[0]
    kw = dict(checkpoints=[0, 100], loss=Loss("mse", "sum"), optimizer=Optimizer(eta))
    r32 = train_model(linear_model(7, 3), X, Y, **kw)
    r64 = train_model(linear_model(7, 3), X, Y, dtype=F64, **kw)
    assert r32.train_outputs.dtype == np.float32
    assert_close(r32.train_outputs, r64.train_outputs, rtol=1e-4)


def test_full_batch_sgd_equals_gd_and_seeds_are_reproducible():
    X, _, Y, _ = _data(5)
    model = mlp([7, 16, 3], activation="tanh")
    kw = dict(checkpoints=[0, 40], loss=Loss("ce"), dtype=F64, seed=3)
    Yc = np.eye(3)[Y.argmax(1)]
    gd = train_model(model, X, Yc, optimizer=Optimizer(0.2), **kw)
    sgd_all = train_model(model, X, Yc, optimizer=Optimizer(0.2, batch_size=24), **kw)
    assert_close(sgd_all.train_outputs, gd.train_outputs, rtol=1e-12)
    a = train_model(model, X, Yc, optimizer=Optimizer(0.2, batch_size=5), **kw)
    b = train_model(model, X, Yc, optimizer=Optimizer(0.2, batch_size=5), **kw)
    assert np.array_equal(a.train_outputs, b.train_outputs)
    c = train_model(model, X, Yc, optimizer=Optimizer(0.2, batch_size=5), **{**kw, "seed": 4})
    assert not np.array_equal(a.train_outputs, c.train_outputs)


@settings(max_examples=30)
@given(st.floats(0.5, 8.0), st.floats(0.0, 1.0), st.integers(0, 1000))
def test_distillation_gradient_has_tau_scaling(tau, w, seed):
    # ∂/∂f [ (1 − w) CE(f, y) + w τ² CE(f/τ, softmax(z/τ)) ] = ((1 − w)(p − y) + w τ (p_τ − q_τ)) / b
    rng = np.random.default_rng(seed)
    f, z = rng.standard_normal((6, 4)) * 3, rng.standard_normal((6, 4)) * 3
    y = np.eye(4)[rng.integers(0, 4, 6)]
    g = jax.grad(lambda f_: _objective(Loss("ce", temperature=tau), f_, y, z, w))(jnp.asarray(f))

    def sm(a):
        e = np.exp(a - a.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    expected = ((1 - w) * (sm(f) - y) + w * tau * (sm(f / tau) - sm(z / tau))) / 6
    assert_close(np.asarray(g), expected, rtol=1e-10, atol=1e-14)


def test_mlp_and_random_features_train_and_teacher_student():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    Y = np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)]
    t, s = teacher_student(mlp([5, 32, 3]), X, Y, teacher_steps=300, student_steps=300,
                           optimizer=Optimizer(0.5), X_test=X[:10], test_labels=Y[:10], dtype=F64)  # fmt: skip
    assert t.train_loss[-1] < t.train_loss[0] and s.train_loss[-1] < s.train_loss[0]
    assert t.train_accuracy[-1] > 0.8 and s.test_outputs.shape[-2:] == (10, 3)
    rf = train_model(random_features_model(5, 3, 64), X, Y, checkpoints=[0, 200], optimizer=Optimizer(1.0), dtype=F64)
    assert rf.train_loss[-1] < rf.train_loss[0]
    assert "Run(" in repr(t)


def test_bad_inputs():
    X, _, Y, _ = _data(6)
    m = linear_model(7, 3)
    with pytest.raises(ValueError, match="needs teacher outputs"):
        train_model(m, X, Y, checkpoints=[0, 5], loss=Loss("mse", teacher_weight=1.0))
    with pytest.raises(ValueError, match="labels has 2 columns but the model has 3 outputs"):
        train_model(m, X, Y[:, :2], checkpoints=[0, 5])
    with pytest.raises(ValueError, match="checkpoints must be"):
        train_model(m, X, Y, checkpoints=[0, 2.5])
    with pytest.raises(ValueError, match="batch_size must lie in"):
        train_model(m, X, Y, checkpoints=[0, 5], optimizer=Optimizer(0.1, batch_size=100))
    with pytest.raises(ValueError, match="X contains NaN"):
        train_model(m, np.full_like(X, np.nan), Y, checkpoints=[0, 5])
    with pytest.raises(ValueError, match="go together"):
        Loss(teacher_weight_after=1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        mlp([3, 3], activation="swish9")
    with pytest.raises(FloatingPointError, match="diverged"):
        train_model(m, X * 100, Y, checkpoints=[0, 200], loss=Loss("mse", "sum"), optimizer=Optimizer(10.0))


def test_float64_without_x64_is_a_clear_error():
    code = (
        "import jax.numpy as jnp, numpy as np\n"
        "from kdtheory.simulate import linear_model, train_model\n"
        "try:\n"
        "    train_model(linear_model(2, 2), np.ones((3, 2)), np.ones((3, 2)), checkpoints=[0, 1], dtype=jnp.float64)\n"
        "except ValueError as e:\n"
        "    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "ERR" in out.stdout and "x64" in out.stdout, out.stdout + out.stderr
