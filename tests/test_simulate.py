"""kdtheory.simulate: the JAX engine against the closed forms, and its conventions."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdtheory.dynamics import TestPoints, train
from kdtheory.eigen import Recipe, Spectrum
from kdtheory.simulate import (
    Loss,
    Model,
    Optimizer,
    Run,
    as_teacher_logits,
    kernel_model,
    linear_model,
    mlp,
    random_features_model,
    teacher_student,
    train_model,
)
from kdtheory.testing import assert_close
from kdtheory.trajectory import Trajectory

F64 = jnp.float64


def _data(seed=0, n=24, d=7, k=3, nt=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(1.5, 0.3, d)
    return X, rng.standard_normal((nt, d)), rng.standard_normal((n, k)), rng


@pytest.mark.parametrize("normalization", ["sum", "mean", "per_output"])
@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_linear_mse_matches_closed_form_field_by_field(normalization, beta):
    X, Xt, Y, _ = _data(1)
    spec = Spectrum.from_features(X)
    lam = spec.evals[0] / {"sum": 1, "mean": X.shape[0], "per_output": X.shape[0] * Y.shape[1]}[normalization]
    eta = 0.9 * (1 + beta) / lam
    t = [0, 1, 3, 30, 400]
    method = "momentum" if beta else "gd"
    sim = train_model(
        linear_model(7, 3),
        X,
        Y,
        t=t,
        run=Run(loss=Loss("mse", normalization=normalization), optimizer=Optimizer(learning_rate=eta, momentum=beta)),
        X_test=Xt,
        dtype=F64,
        project=lambda p: jnp.asarray(spec.V.T) @ p["w"],
    )
    cf = train(
        spec,
        Y,
        t,
        recipe=Recipe(method, learning_rate=eta, momentum=beta, normalization=normalization),
        test=TestPoints(features=Xt),
    )
    assert isinstance(sim, Trajectory) and isinstance(cf, Trajectory)
    assert np.array_equal(sim.t, cf.t)
    for field in ("train", "test", "loss"):
        assert_close(getattr(sim, field), getattr(cf, field), rtol=1e-9)
    for key in ("method", "learning_rate", "momentum", "normalization"):
        assert sim.recipe[key] == cf.recipe[key], key
    assert_close(sim.projection, np.einsum("dm,tdk->tmk", spec.V, cf.weights), rtol=1e-9)
    # the returned parameters are those of the last step of t (regression: one update too many)
    assert_close(sim.params["w"], cf.weights[-1], rtol=1e-9)


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_kernel_model_matches_closed_form(beta):
    X, Xt, Y, _ = _data(2)
    K, Kx = X @ X.T, Xt @ X.T
    spec = Spectrum.from_kernel(K)
    eta = 0.8 * (1 + beta) / spec.evals[0]
    t = [0, 2, 17, 250]
    sim = train_model(
        kernel_model(24, 3),
        K,
        Y,
        t=t,
        run=Run(loss=Loss("mse"), optimizer=Optimizer(learning_rate=eta, momentum=beta)),
        X_test=Kx,
        dtype=F64,
    )
    cf = train(
        spec,
        Y,
        t,
        recipe=Recipe("momentum" if beta else "gd", learning_rate=eta, momentum=beta),
        test=TestPoints(kernel=Kx),
    )
    assert_close(sim.train, cf.train, rtol=1e-9)
    assert_close(sim.test, cf.test, rtol=1e-9)


@pytest.mark.parametrize("reverse", [False, True])
def test_loss_switch_matches_two_phase_closed_form(reverse):
    X, Xt, Y, rng = _data(3)
    teacher = rng.standard_normal(Y.shape)
    spec = Spectrum.from_features(X)
    eta = 0.9 / spec.evals[0]
    w0, w1 = (1.0, 0.0) if reverse else (0.0, 1.0)
    loss = Loss("mse", teacher_weight=w0, teacher_weight_after=w1, switch_t=15)
    sim = train_model(
        linear_model(7, 3),
        X,
        Y,
        t=[0, 15, 60],
        run=Run(loss=loss, optimizer=Optimizer(learning_rate=eta), teacher=teacher),
        X_test=Xt,
        dtype=F64,
    )
    first, second = (teacher, Y) if reverse else (Y, teacher)
    a = train(spec, first, 15, recipe=Recipe("gd", learning_rate=eta))
    b = train(
        spec, second, 45, recipe=Recipe("gd", learning_rate=eta), init_weights=a.weights, test=TestPoints(features=Xt)
    )
    assert_close(sim.train[1], a.train, rtol=1e-9)
    assert_close(sim.train[2], b.train, rtol=1e-9)
    assert_close(sim.test[2], b.test, rtol=1e-9)


def test_float32_close_to_float64():
    X, _, Y, _ = _data(4)
    eta = 0.5 / Spectrum.from_features(X).evals[0]
    kw = dict(t=[0, 100], run=Run(loss=Loss("mse"), optimizer=Optimizer(learning_rate=eta)))
    r32 = train_model(linear_model(7, 3), X, Y, **kw)
    r64 = train_model(linear_model(7, 3), X, Y, dtype=F64, **kw)
    assert r32.train.dtype == np.float32
    assert_close(r32.train, r64.train, rtol=1e-4)


def test_full_batch_sgd_equals_gd_and_seeds_are_reproducible():
    X, _, Y, _ = _data(5)
    model = mlp([7, 16, 3], activation="tanh")
    kw = dict(t=[0, 40], dtype=F64)
    ce = Loss("ce", normalization="mean")
    Yc = np.eye(3)[Y.argmax(1)]
    gd = train_model(model, X, Yc, run=Run(loss=ce, optimizer=Optimizer(learning_rate=0.2), init_seed=3), **kw)
    sgd_all = train_model(
        model, X, Yc, run=Run(loss=ce, optimizer=Optimizer(learning_rate=0.2, batch_size=24), init_seed=3), **kw
    )
    assert_close(sgd_all.train, gd.train, rtol=1e-12)
    a = train_model(
        model, X, Yc, run=Run(loss=ce, optimizer=Optimizer(learning_rate=0.2, batch_size=5), init_seed=3), **kw
    )
    b = train_model(
        model, X, Yc, run=Run(loss=ce, optimizer=Optimizer(learning_rate=0.2, batch_size=5), init_seed=3), **kw
    )
    assert np.array_equal(a.train, b.train)
    c = train_model(
        model, X, Yc, run=Run(loss=ce, optimizer=Optimizer(learning_rate=0.2, batch_size=5), init_seed=4), **kw
    )
    assert not np.array_equal(a.train, c.train)
    assert gd.recipe["seed"] == 3 and gd.recipe["normalization"] == "mean"


def _softmax(a):
    e = np.exp(a - a.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _numpy_distillation(X, Y, Z, t_max, *, tau, w0, w1, switch, eta, beta, div):
    """Independent oracle: a plain numpy loop of heavy-ball GD on a linear model (W₀ = 0) with the
    distillation gradient ((1 − w)(p − y) + w τ (p_τ − q_τ)) / D and a weight switching at ``switch``."""
    W, V, out = np.zeros((X.shape[1], Y.shape[1])), np.zeros((X.shape[1], Y.shape[1])), [np.zeros(Y.shape)]
    q = _softmax(Z / tau)
    for s in range(t_max):
        f = X @ W
        w = w0 if s < switch else w1
        gf = ((1 - w) * (_softmax(f) - Y) + w * tau * (_softmax(f / tau) - q)) / div
        V = beta * V - eta * X.T @ gf
        W = W + V
        out.append(X @ W)
    return np.array(out)


def test_one_compilation_serves_a_sweep_of_temperatures_weights_switches_and_learning_rates():
    # τ, the weights before/after the switch, the switch step, η and β are traced: a sweep reuses
    # one compiled loop (counted by a Python counter in the model's apply, which runs only when
    # JAX traces), and every run of the sweep still matches an explicit numpy loop
    X, _, Y, rng = _data(12)
    Yc, Z = np.eye(3)[Y.argmax(1)], rng.standard_normal(Y.shape) * 2
    base = linear_model(7, 3)
    traces = []

    def apply(p, x):
        traces.append(1)
        return base.apply(p, x)

    model = Model("counted linear", base.init, apply, 3, input_shape=(7,))
    sweep = [
        dict(tau=1.0, w0=0.0, w1=0.0, switch=99, eta=0.05, beta=0.0),
        dict(tau=2.5, w0=1.0, w1=1.0, switch=99, eta=0.05, beta=0.0),
        dict(tau=4.0, w0=0.3, w1=0.3, switch=99, eta=0.02, beta=0.6),
        dict(tau=2.0, w0=0.0, w1=1.0, switch=4, eta=0.05, beta=0.0),
        dict(tau=3.0, w0=1.0, w1=0.2, switch=7, eta=0.03, beta=0.9),
        dict(tau=0.7, w0=0.5, w1=0.5, switch=0, eta=0.05, beta=0.3),
    ]
    counts, runs = [], []
    for c in sweep:
        sched = {} if c["w0"] == c["w1"] else dict(teacher_weight_after=c["w1"], switch_t=c["switch"])
        loss = Loss("ce", normalization="mean", temperature=c["tau"], teacher_weight=c["w0"], **sched)
        sim = train_model(
            model,
            X,
            Yc,
            t=[0, 3, 12],
            run=Run(loss=loss, optimizer=Optimizer(learning_rate=c["eta"], momentum=c["beta"]), teacher=Z),
            dtype=F64,
        )
        counts.append(len(traces))
        runs.append(sim.train)
        oracle = _numpy_distillation(X, Yc, Z, 12, div=X.shape[0], **c)
        assert_close(sim.train, oracle[[0, 3, 12]], rtol=1e-10, atol=1e-13)
    assert counts[0] > 0 and len(set(counts)) == 1, counts  # traced once, for the first run only
    assert all(not np.array_equal(runs[0], r) for r in runs[1:])
    # the counter does see a recompilation: a new number of steps is a new loop
    train_model(model, X, Yc, t=[0, 13], run=Run(loss=Loss("ce")), dtype=F64)
    assert len(traces) > counts[-1]


@pytest.mark.parametrize("n, batch", [(12, 4), (14, 4), (5, 1)])
def test_minibatches_visit_every_point_once_per_epoch(n, batch):
    # a zero kernel keeps the outputs at 0, so with targets 1 and η = 1 the functional gradient adds
    # exactly 1 to α_i each time point i is in a batch: α counts the visits
    per = n // batch
    opt = Optimizer(learning_rate=1.0, batch_size=batch)
    t = np.array([per, per + 1, 2 * per, 5 * per])
    run = train_model(
        kernel_model(n, 1),
        np.zeros((n, n)),
        np.ones((n, 1)),
        t=t,
        run=Run(loss=Loss("mse"), optimizer=opt, init_seed=7),
        dtype=F64,
        project=lambda p: p["alpha"][:, 0],
    )
    visits = dict(zip(run.t.tolist(), run.projection, strict=True))
    for epochs in (1, 2, 5):
        alpha = visits[epochs * per]
        assert alpha.sum() == epochs * per * batch
        assert alpha.max() <= epochs  # with epochs = 1: no point twice within an epoch
        if n % batch == 0:
            assert np.all(alpha == epochs)  # every point exactly once per epoch
    # one step into the second epoch: a fresh permutation, the counts differ by at most one
    assert visits[per + 1].sum() == (per + 1) * batch and visits[per + 1].max() <= 2


def test_ce_normalizations_rescale_the_learning_rate():
    # "mean" with η equals "sum" with η/n, and "per_output" with η equals "sum" with η/(n·k)
    X, _, Y, _ = _data(7)
    Yc = np.eye(3)[Y.argmax(1)]
    model = mlp([7, 8, 3], activation="tanh")
    n, k = Yc.shape

    def run(norm, eta):
        return train_model(
            model,
            X,
            Yc,
            t=[0, 25],
            run=Run(loss=Loss("ce", normalization=norm), optimizer=Optimizer(learning_rate=eta)),
            dtype=F64,
        ).train

    assert_close(run("mean", 0.3), run("sum", 0.3 / n), rtol=1e-11)
    assert_close(run("per_output", 0.3), run("sum", 0.3 / (n * k)), rtol=1e-11)


@settings(max_examples=30)
@given(st.floats(0.5, 8.0), st.floats(0.0, 1.0), st.integers(0, 1000), st.sampled_from(["sum", "mean", "per_output"]))
def test_distillation_gradient_has_tau_scaling(tau, w, seed, normalization):
    # ∂/∂f [ (1 − w) CE(f, y) + w τ² CE(f/τ, softmax(z/τ)) ] = ((1 − w)(p − y) + w τ (p_τ − q_τ)) / D
    rng = np.random.default_rng(seed)
    f, z = rng.standard_normal((6, 4)) * 3, rng.standard_normal((6, 4)) * 3
    y = np.eye(4)[rng.integers(0, 4, 6)]
    loss = Loss("ce", temperature=tau, teacher_weight=w, normalization=normalization)
    g = jax.grad(lambda f_: loss(f_, y, z))(jnp.asarray(f))

    def sm(a):
        e = np.exp(a - a.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    div = {"sum": 1, "mean": 6, "per_output": 24}[normalization]
    expected = ((1 - w) * (sm(f) - y) + w * tau * (sm(f / tau) - sm(z / tau))) / div
    assert_close(np.asarray(g), expected, rtol=1e-10, atol=1e-14)


def test_loss_value_by_hand():
    rng = np.random.default_rng(11)
    f, y, z = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    target = 0.7 * y + 0.3 * z
    assert_close(float(Loss("mse", teacher_weight=0.3)(f, y, z)), 0.5 * np.sum((f - target) ** 2), rtol=1e-14)
    assert_close(float(Loss("mse", truth_weight=0.7, normalization="per_output")(f, y, z)),
                 0.5 * np.sum((f - target) ** 2) / 15, rtol=1e-14)  # fmt: skip
    p = np.exp(f) / np.exp(f).sum(1, keepdims=True)
    yc = np.eye(3)[[0, 1, 2, 0, 1]]
    assert_close(float(Loss("ce", normalization="mean")(f, yc)), -np.sum(yc * np.log(p)) / 5, rtol=1e-13)


def test_teacher_as_probabilities_is_declared_or_refused():
    # regression (issue 10 item 10): probabilities passed as logits were softmaxed a second time
    X, _, Y, rng = _data(8)
    Yc = np.eye(3)[Y.argmax(1)]
    z = rng.standard_normal(Yc.shape) * 2
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    model = mlp([7, 8, 3], activation="tanh")
    kw = dict(t=[0, 30], dtype=F64)
    recipe = dict(loss=Loss("ce", teacher_weight=1.0, temperature=2.0), optimizer=Optimizer(learning_rate=0.05))
    from_logits = train_model(model, X, Yc, run=Run(teacher=z, **recipe), **kw)
    from_probs = train_model(model, X, Yc, run=Run(teacher=p, **recipe), teacher_kind="probabilities", **kw)
    assert_close(from_probs.train, from_logits.train, rtol=1e-10)
    assert_close(from_probs.loss, from_logits.loss, rtol=1e-10)
    with pytest.raises(ValueError, match="looks like probabilities.*teacher_kind='probabilities'"):
        train_model(model, X, Yc, run=Run(teacher=p, **recipe), **kw)
    with pytest.raises(ValueError, match="declared teacher_kind='probabilities'"):
        train_model(model, X, Yc, run=Run(teacher=z, **recipe), teacher_kind="probabilities", **kw)
    # exact zeros: the target is exactly the one-hot row, finite loss
    hard = as_teacher_logits(Yc, teacher_kind="probabilities")
    assert_close(np.asarray(jax.nn.softmax(hard)), Yc, atol=0)
    hard_run = train_model(model, X, Yc, run=Run(teacher=Yc, **recipe), teacher_kind="probabilities", **kw)
    assert np.all(np.isfinite(hard_run.loss))
    with pytest.raises(ValueError, match="MSE teacher"):
        as_teacher_logits(p, teacher_kind="probabilities", loss_kind="mse")


def test_mlp_and_random_features_train_and_teacher_student():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    Y = np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)]
    t, s = teacher_student(mlp([5, 32, 3]), X, Y, teacher_t=300, student_t=300,
                           teacher=Run(loss=Loss("ce", normalization="mean"), optimizer=Optimizer(learning_rate=0.5)),
                           X_test=X[:10], y_test=Y[:10], dtype=F64)  # fmt: skip
    assert t.loss[-1] < t.loss[0] and s.loss[-1] < s.loss[0]
    assert t.train_accuracy[-1] > 0.8 and s.test.shape[-2:] == (10, 3)
    assert t.t[-1] == 300 and s.recipe["normalization"] == "mean"
    # the default student is the teacher's run with pure distillation and the next init seed
    same = train_model(mlp([5, 32, 3]), X, Y, t=s.t, X_test=X[:10], y_test=Y[:10], dtype=F64,
                       run=Run(loss=Loss("ce", normalization="mean", teacher_weight=1.0),
                               optimizer=Optimizer(learning_rate=0.5), teacher=t.train[-1], init_seed=1))  # fmt: skip
    assert np.array_equal(same.train, s.train)
    with pytest.raises(ValueError, match="teacher_student fills the student's teacher in"):
        teacher_student(mlp([5, 4, 3]), X, Y, teacher_t=1, student_t=1, student=Run(teacher=Y))
    rf = train_model(
        random_features_model(5, 3, 64),
        X,
        Y,
        t=[0, 200],
        run=Run(loss=Loss("ce", normalization="mean"), optimizer=Optimizer(learning_rate=1.0)),
        dtype=F64,
    )
    assert rf.loss[-1] < rf.loss[0]
    assert "Trajectory(" in repr(t)


def test_bad_inputs():
    X, _, Y, _ = _data(6)
    m = linear_model(7, 3)
    with pytest.raises(ValueError, match="needs teacher outputs"):
        train_model(m, X, Y, t=[0, 5], run=Run(loss=Loss("mse", teacher_weight=1.0)))
    with pytest.raises(ValueError, match="y has 2 columns but the model has 3 outputs"):
        train_model(m, X, Y[:, :2], t=[0, 5])
    with pytest.raises(ValueError, match="t must be"):
        train_model(m, X, Y, t=[0, 2.5])
    with pytest.raises(ValueError, match="batch_size must lie in"):
        train_model(m, X, Y, t=[0, 5], run=Run(optimizer=Optimizer(learning_rate=0.1, batch_size=100)))
    with pytest.raises(ValueError, match="X contains NaN"):
        train_model(m, np.full_like(X, np.nan), Y, t=[0, 5])
    with pytest.raises(ValueError, match="go together"):
        Loss(teacher_weight_after=1.0)
    with pytest.raises(ValueError, match=r"teacher_weight must be a number in \[0, 1\], got 1.5"):
        Loss(teacher_weight=1.5)
    with pytest.raises(ValueError, match="not both"):
        Loss(teacher_weight=0.5, truth_weight=0.5)
    with pytest.raises(ValueError, match="normalization"):
        Loss(normalization="avg")
    with pytest.raises(TypeError):
        Optimizer(0.1)  # hyperparameters are keyword-only
    with pytest.raises(ValueError, match="unknown activation"):
        mlp([3, 3], activation="swish9")
    with pytest.raises(FloatingPointError, match="diverged"):
        train_model(m, X * 100, Y, t=[0, 200], run=Run(loss=Loss("mse"), optimizer=Optimizer(learning_rate=10.0)))


@pytest.mark.parametrize(
    "model", [linear_model(7, 3), mlp([7, 5, 3]), random_features_model(7, 3, 8), kernel_model(7, 3)]
)
def test_inputs_of_the_wrong_width_are_named(model):
    # regression (issue 11 row 15): a raw dot_general error from inside JAX
    X, Xt, Y, _ = _data(9)
    with pytest.raises(ValueError, match=r"X has width 6 .* takes inputs of width 7"):
        train_model(model, X[:, :6], Y, t=[0, 1])
    if not model.functional:
        with pytest.raises(ValueError, match="X_test has per-example shape"):
            train_model(model, X, Y, t=[0, 1], X_test=Xt[:, :5])


def test_float64_without_x64_is_a_clear_error():
    code = (
        "import jax.numpy as jnp, numpy as np\n"
        "from kdtheory.simulate import linear_model, train_model\n"
        "try:\n"
        "    train_model(linear_model(2, 2), np.ones((3, 2)), np.ones((3, 2)), t=[0, 1], dtype=jnp.float64)\n"
        "except ValueError as e:\n"
        "    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "ERR" in out.stdout and "x64" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("bad", [np.inf, np.nan, -1, 2.5, "3"])
def test_step_counts_that_are_not_finite_whole_numbers_are_named(bad):
    """``switch_t`` and ``teacher_t`` are refused by name (inf overflowed and NaN failed to convert, unnamed)."""
    with pytest.raises(ValueError, match="switch_t must be a non-negative whole number of steps"):
        Loss(teacher_weight_after=1.0, switch_t=bad)
    X, Y = np.ones((4, 2)), np.eye(2)[[0, 1, 0, 1]]
    with pytest.raises(ValueError, match="teacher_t must be a non-negative whole number of steps"):
        teacher_student(linear_model(2, 2), X, Y, teacher_t=bad, student_t=1)


def test_steps_beyond_int32_are_refused_naming_t():
    """A step the engine's int32 counter cannot hold is refused (t=[0, 3e9] wrapped and returned an untrained
    trajectory labelled 3e9)."""
    X, Y = np.ones((4, 2)), np.eye(2)[[0, 1, 0, 1]]
    with pytest.raises(ValueError, match="t must be below 2"):
        train_model(linear_model(2, 2), X, Y, t=[0, 3e9])
    with pytest.raises(ValueError, match="t must be below 2"):
        train_model(linear_model(2, 2), X, Y, t=[0, 2**31 - 1])


def test_optimizer_momentum_that_is_not_a_number_is_named():
    """A string momentum is refused naming ``momentum`` (it raised an unnamed '<=' TypeError)."""
    with pytest.raises(TypeError, match="momentum must be a real number"):
        Optimizer(momentum="0.5")
    for bad in (1.0, -0.1, np.nan):
        with pytest.raises(ValueError, match="momentum must"):
            Optimizer(momentum=bad)


def test_log_steps_against_an_explicit_set():
    """log_steps = {0} ∪ round(geomspace(1, steps, count - 1)) ∪ {steps}, sorted; bad arguments named."""
    from kdtheory.simulate import log_steps

    for steps, count in [(1, 1), (200, 2), (200, 6), (10, 30)]:
        want = {0, steps} | {int(round(steps ** (i / max(count - 2, 1)))) for i in range(max(count - 1, 1))}
        assert log_steps(steps, count).tolist() == sorted(want), (steps, count)
    assert log_steps(0, 5).tolist() == [0]  # no updates: nothing past the start (was [0, 1])
    with pytest.raises(ValueError, match="budget must be a non-negative whole number"):
        log_steps(np.inf, 3, "budget")
    with pytest.raises(ValueError, match="count must be a positive integer"):
        log_steps(10, 0)
