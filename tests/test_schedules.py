"""kdtheory.schedules: closed forms, the engine's use of them, and bad input."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdtheory import schedules
from kdtheory.eigen import Spectrum
from kdtheory.schedules import Schedule, constant, cosine, step, warmup_cosine
from kdtheory.simulate import Loss, Optimizer, Run, linear_model, train_model
from kdtheory.testing import assert_close


def _step_oracle(s, boundaries, factors):
    j = 0
    while j < len(boundaries) and boundaries[j] <= s:
        j += 1
    return factors[j]


def _cosine_oracle(s, D, final):  # optax.cosine_decay_schedule(1, D, alpha=final)
    return (1 - final) * 0.5 * (1 + math.cos(math.pi * min(s, D) / D)) + final


def _warmup_cosine_oracle(s, W, D, final, initial):  # optax.warmup_cosine_decay_schedule(initial, 1, W, D, final)
    if s < W:
        return initial + (1 - initial) * s / W
    if D == W:
        return 1.0
    return _cosine_oracle(s - W, D - W, final)


STEPS = np.arange(0, 260)


def test_constant_is_exactly_one():
    assert np.array_equal(constant()(STEPS), np.ones(STEPS.shape))
    assert Optimizer().schedule == constant()


@settings(max_examples=60)
@given(
    st.lists(st.integers(0, 250), min_size=0, max_size=4, unique=True),
    st.lists(st.floats(0.0, 3.0), min_size=5, max_size=5),
)
def test_step_matches_piecewise_constant(boundaries, factors):
    b = sorted(boundaries)
    g = factors[: len(b) + 1]
    got = step(b, g)(STEPS)
    want = [_step_oracle(s, b, g) for s in STEPS]
    assert np.array_equal(got, want)  # piecewise constant: exact
    # at each boundary the new factor is already in force (b ≤ s)
    for j, bj in enumerate(b):
        assert step(b, g)(bj) == g[j + 1]


@settings(max_examples=60)
@given(st.integers(1, 300), st.floats(0.0, 1.0))
def test_cosine_matches_closed_form(D, final):
    got = cosine(D, final=final)(STEPS)
    assert_close(got, [_cosine_oracle(s, D, final) for s in STEPS], rtol=1e-14, atol=1e-15)
    assert got[0] == 1.0
    assert np.all(got[STEPS >= D] == final)  # exactly final from D on
    assert np.all(np.diff(got) <= 1e-15)  # non-increasing


@settings(max_examples=60)
@given(st.integers(0, 100), st.integers(0, 200), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_warmup_cosine_matches_closed_form(W, extra, final, initial):
    D = W + extra
    sched = warmup_cosine(W, D, final=final, initial=initial)
    got = sched(STEPS)
    assert_close(got, [_warmup_cosine_oracle(s, W, D, final, initial) for s in STEPS], rtol=1e-14, atol=1e-15)
    assert got[W] == 1.0  # the peak, exactly, at the end of the warm-up
    if W:
        assert got[0] == initial


def test_engine_formula_in_jax_equals_numpy():
    # one formula, two namespaces: the engine's jnp evaluation at every step equals the numpy one
    for sched in (constant(), step([3, 40], [1.0, 0.3, 0.01]), cosine(50, final=0.2), warmup_cosine(10, 90)):
        p = {k: jnp.asarray(v) for k, v in sched.params(np.float64, table=3).items()}
        got = np.array([float(schedules.multiplier(jnp, p, jnp.asarray(s, jnp.int32))) for s in range(0, 120, 7)])
        assert_close(got, sched(np.arange(0, 120, 7)), rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "sched",
    [constant(), step([4, 11], [1.0, 0.5, 0.05]), cosine(17, final=0.1), warmup_cosine(5, 20, final=0.0, initial=0.1)],
)
@pytest.mark.parametrize("beta", [0.0, 0.6])
def test_gd_with_a_schedule_equals_an_explicit_numpy_loop(sched, beta):
    # independent oracle: heavy-ball GD on ½‖XW − Y‖² with η_s = η · m(s) from the closed forms above
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((20, 6)), rng.standard_normal((20, 2))
    eta = 0.5 / Spectrum.from_features(X).evals[0]
    kind = sched.kind
    oracle = {
        "constant": lambda s: 1.0,
        "step": lambda s: _step_oracle(s, [4, 11], [1.0, 0.5, 0.05]),
        "cosine": lambda s: _cosine_oracle(s, 17, 0.1),
        "warmup_cosine": lambda s: _warmup_cosine_oracle(s, 5, 20, 0.0, 0.1),
    }[kind]
    W, V, out = np.zeros((6, 2)), np.zeros((6, 2)), [np.zeros((20, 2))]
    for s in range(30):
        V = beta * V - eta * oracle(s) * (X.T @ (X @ W - Y))
        W = W + V
        out.append(X @ W)
    t = [0, 4, 5, 11, 12, 17, 30]
    opt = Optimizer(learning_rate=eta, momentum=beta, schedule=sched)
    sim = train_model(linear_model(6, 2), X, Y, t=t, run=Run(loss=Loss("mse"), optimizer=opt), dtype=jnp.float64)
    assert_close(sim.train, np.array(out)[t], rtol=1e-11, atol=1e-13)
    assert sim.recipe["schedule"]["kind"] == kind


def test_schedule_changes_the_run():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((20, 6)), rng.standard_normal((20, 2))
    kw = dict(t=[0, 30], dtype=jnp.float64)
    mse = Loss("mse")
    a = train_model(linear_model(6, 2), X, Y, run=Run(loss=mse, optimizer=Optimizer(learning_rate=0.01)), **kw)
    b = train_model(
        linear_model(6, 2), X, Y, run=Run(loss=mse, optimizer=Optimizer(learning_rate=0.01, schedule=cosine(30))), **kw
    )
    assert not np.allclose(a.train[-1], b.train[-1])


def test_bad_schedules_are_named():
    with pytest.raises(ValueError, match="strictly increasing"):
        step([5, 5], [1, 1, 1])
    with pytest.raises(ValueError, match=r"factors needs len\(boundaries\) \+ 1 = 3"):
        step([1, 2], [1.0])
    with pytest.raises(ValueError, match="factors\\[1\\] must be finite and >= 0"):
        step([1], [1.0, -0.5])
    with pytest.raises(ValueError, match="boundaries\\[0\\] must be a non-negative whole number"):
        step([2.5], [1.0, 0.1])
    with pytest.raises(ValueError, match="decay_steps must be at least 1"):
        cosine(0)
    with pytest.raises(ValueError, match="final must be finite and >= 0"):
        cosine(10, final=float("nan"))
    with pytest.raises(ValueError, match="includes the warm-up"):
        warmup_cosine(10, 5)
    with pytest.raises(ValueError, match="warmup_steps must be a non-negative whole number"):
        warmup_cosine(-1, 5)
    with pytest.raises(ValueError, match="steps must be non-negative whole numbers"):
        cosine(10)([0.5])
    with pytest.raises(ValueError, match="schedule must be a kdtheory.schedules.Schedule"):
        Optimizer(schedule="cosine")
    with pytest.raises(ValueError, match="table=0 is shorter"):
        step([1], [1, 2]).params(table=0)
    assert Schedule().describe()["kind"] == "constant"


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_schedule_call_refuses_non_finite_steps(bad):
    """A non-finite step is refused naming ``steps`` (inf passed the whole-number test and cast to garbage)."""
    with pytest.raises(ValueError, match="steps must be non-negative whole numbers"):
        step([10], [1.0, 0.1])(np.array([bad]))
