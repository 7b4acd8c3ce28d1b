"""kdtheory.distill: closed forms vs explicit loops, stopping rules, properties, and bad weights named."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kdtheory.distill import Recipe, distill, late_switch, rounds, student_time, teacher_predictions
from kdtheory.dynamics import TestPoints, train
from kdtheory.eigen import Spectrum
from kdtheory.testing import assert_close, kernel_problems


def _setup(seed=0, n=10, d=6, k=2, nt=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(1.5, 0.2, d)
    Xt = rng.standard_normal((nt, d))
    y = rng.standard_normal((n, k))
    return X, Xt, y, X @ X.T, Xt @ X.T


def _loop(K, target, steps, eta, f0=None, alpha0=None, beta=0.0):
    """Explicit (heavy-ball) GD on dual coefficients towards ``target``; returns (f, α)."""
    alpha = np.zeros_like(target) if alpha0 is None else alpha0.copy()
    base = np.zeros_like(target) if f0 is None else f0 - K @ alpha
    v = np.zeros_like(alpha)
    for _ in range(steps):
        v = beta * v - eta * (base + K @ alpha - target)
        alpha = alpha + v
    return base + K @ alpha, alpha


@pytest.mark.parametrize("beta", [0.0, 0.6])
def test_distill_and_mixing_match_loops(beta):
    X, Xt, y, K, Kx = _setup(1)
    spec = Spectrum.from_kernel(K)
    eta = 0.8 / spec.evals[0]
    method = "momentum" if beta else "gd"
    rec = Recipe(method, learning_rate=eta, momentum=beta)
    yhat, _ = _loop(K, y, 25, eta, beta=beta)
    for w in (1.0, 0.4):
        tr = distill(spec, y, [0, 3, 40], teacher_t=25, teacher=rec, teacher_weight=w, test=TestPoints(kernel=Kx))
        for i, s in enumerate([0, 3, 40]):
            f, alpha = _loop(K, w * yhat + (1 - w) * y, s, eta, beta=beta)
            assert_close(tr.train[i], f, rtol=1e-10, atol=1e-14)
            assert_close(tr.test[i], Kx @ alpha, rtol=1e-10, atol=1e-14)
    # truth_weight is 1 − teacher_weight (Borup & Andersen's α)
    a = distill(spec, y, 7, teacher_t=25, teacher=rec, truth_weight=0.6).train
    b = distill(spec, y, 7, teacher_t=25, teacher=rec, teacher_weight=0.4).train
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="not both"):
        distill(spec, y, 7, teacher_t=25, teacher_weight=0.4, truth_weight=0.6)


def test_ridge_teacher_gd_student_and_init():
    X, Xt, y, K, Kx = _setup(2)
    spec = Spectrum.from_kernel(K)
    c = 0.7
    yhat = K @ np.linalg.solve(K + c * np.eye(K.shape[0]), y)
    eta = 0.5 / spec.evals[0]
    tr = distill(spec, y, 30, teacher_t=c, teacher=Recipe("ridge"), student=Recipe("gd", learning_rate=eta))
    assert_close(tr.train, _loop(K, yhat, 30, eta)[0], rtol=1e-10)
    assert_close(teacher_predictions(spec, y, teacher_t=c, teacher=Recipe("ridge")), yhat, rtol=1e-10)
    f0 = np.random.default_rng(0).standard_normal(y.shape)
    tr = distill(spec, y, 12, teacher_t=c, teacher=Recipe("ridge"), student=Recipe("gd", learning_rate=eta), init=f0)
    assert_close(tr.train, _loop(K, yhat, 12, eta, f0=f0)[0], rtol=1e-10)


def test_rounds_and_late_switch_match_loops():
    X, Xt, y, K, Kx = _setup(3)
    spec = Spectrum.from_kernel(K)
    eta = 0.9 / spec.evals[0]
    rec = Recipe("gd", learning_rate=eta)
    f1, _ = _loop(K, y, 10, eta)
    f2, _ = _loop(K, 0.7 * f1 + 0.3 * y, 20, eta)
    f3, a3 = _loop(K, f2, 5, eta)
    tr = rounds(spec, y, [10, 20, 5], recipe=rec, teacher_weight=[1.0, 0.7, 1.0], test=TestPoints(kernel=Kx))
    assert_close(tr.train, np.array([f1, f2, f3]), rtol=1e-10)
    assert_close(tr.test[2], Kx @ a3, rtol=1e-10)
    yhat, _ = _loop(K, y, 30, eta)
    fs, als = _loop(K, y, 12, eta)
    f, alpha = _loop(K, yhat, 9, eta, f0=fs, alpha0=als)
    tr = late_switch(spec, y, [9], teacher_t=30, switch_t=12, recipe=rec, test=TestPoints(kernel=Kx))
    assert_close(tr.train[0], f, rtol=1e-10)
    assert_close(tr.test[0], Kx @ alpha, rtol=1e-10)
    fs, als = _loop(K, yhat, 12, eta)
    f, alpha = _loop(K, y, 9, eta, f0=fs, alpha0=als)
    tr = late_switch(spec, y, [9], teacher_t=30, switch_t=12, recipe=rec, reverse=True, test=TestPoints(kernel=Kx))
    assert_close(tr.train[0], f, rtol=1e-10)
    assert_close(tr.test[0], Kx @ alpha, rtol=1e-10)
    with pytest.raises(ValueError, match="late switching supports"):
        late_switch(spec, y, [9], teacher_t=30, switch_t=12, recipe=Recipe("momentum", learning_rate=eta, momentum=0.5))


def test_features_student_weights_match_loop():
    X, Xt, y, K, Kx = _setup(4, n=6, d=9)
    spec = Spectrum.from_features(X)
    eta = 0.5 / spec.evals[0]
    rec = Recipe("gd", learning_rate=eta)
    w = np.zeros((9, 2))
    for _ in range(15):
        w -= eta * X.T @ (X @ w - y)
    yhat = X @ w
    ws = np.zeros((9, 2))
    for _ in range(11):
        ws -= eta * X.T @ (X @ ws - yhat)
    tr = distill(spec, y, 11, teacher_t=15, teacher=rec, test=TestPoints(features=Xt))
    assert_close(tr.weights, ws, rtol=1e-10)
    assert_close(tr.test, Xt @ ws, rtol=1e-10)


# ---------------------------------------------------------------------- stopping rules
def test_stopping_rules_reach_their_targets_and_refuse_the_unreachable():
    X, Xt, y, K, Kx = _setup(5)
    spec = Spectrum.from_kernel(K)
    T = 2.0
    conv = distill(spec, y, np.inf, teacher_t=T)
    t = student_time(spec, y, teacher_t=T, rule="norm", value=0.6 * float(conv.norm))
    assert_close(distill(spec, y, t, teacher_t=T).norm, 0.6 * conv.norm, rtol=1e-10)
    loss_target = 0.5 * (distill(spec, y, 0.0, teacher_t=T).loss + conv.loss)
    t = student_time(spec, y, teacher_t=T, rule="loss", value=float(loss_target))
    assert_close(distill(spec, y, t, teacher_t=T).loss, loss_target, rtol=1e-10)
    t = student_time(spec, y, teacher_t=T, rule="top_progress", value=0.5)
    assert_close(distill(spec, y, t, teacher_t=T).filter[0], 0.5, rtol=1e-10)
    yhat = teacher_predictions(spec, y, teacher_t=T)
    t = student_time(spec, y, teacher_t=T, rule="fidelity", value=0.1 * float(np.linalg.norm(yhat)))
    assert_close(np.linalg.norm(distill(spec, y, t, teacher_t=T).train - yhat), 0.1 * np.linalg.norm(yhat), rtol=1e-9)
    assert student_time(spec, y, teacher_t=T, rule="converged") == np.inf
    assert student_time(spec, y, teacher_t=T, rule="time", value=3.0) == 3.0
    teacher_norm = float(train(spec, y, T).norm)
    with pytest.raises(ValueError, match="cannot be reached"):
        student_time(spec, y, teacher_t=T, rule="norm", value=1.01 * teacher_norm)  # above the teacher's own norm
    with pytest.raises(ValueError, match="cannot be reached"):
        student_time(spec, y, teacher_t=T, rule="top_progress", value=1.5)
    with pytest.raises(ValueError, match="unknown rule"):
        student_time(spec, y, teacher_t=T, rule="vibes", value=1.0)
    with pytest.raises(ValueError, match="needs a value"):
        student_time(spec, y, teacher_t=T, rule="norm")
    # gradient descent: the first whole step reaching the target
    rec = Recipe("gd", learning_rate=0.5 / spec.evals[0])
    s = student_time(spec, y, teacher_t=20, rule="top_progress", value=0.5, teacher=rec)
    a_prev, a_now = (distill(spec, y, k, teacher_t=20, teacher=rec).filter[0] for k in (s - 1, s))
    assert a_prev < 0.5 <= a_now
    with pytest.raises(ValueError, match="monotone learning rate"):
        student_time(
            spec, y, teacher_t=20, rule="norm", value=0.1, teacher=Recipe("gd", learning_rate=1.5 / spec.evals[0])
        )


# ---------------------------------------------------------------------- properties
@given(kernel_problems(max_size=8), st.floats(0.0, 30.0), st.floats(0.0, 30.0))
def test_student_tends_to_teacher_and_interpolating_teacher_is_one_hot(p, T, t):
    spec = Spectrum.from_kernel(p.K)
    unit = 1.0 / max(spec.evals[0], 1e-300)
    T, t = T * unit, t * unit
    teacher = train(spec, p.y, T, test=TestPoints(kernel=p.K_test))
    student_inf = distill(spec, p.y, np.inf, teacher_t=T, test=TestPoints(kernel=p.K_test))
    ref = np.linalg.norm(p.y)
    assert_close(student_inf.train, teacher.train, rtol=1e-10, atol=1e-12 * ref)
    # an interpolating (converged, full-rank) teacher changes nothing: the student is the one-hot run
    if spec.rank == spec.n:
        a = distill(spec, p.y, t, teacher_t=np.inf, test=TestPoints(kernel=p.K_test))
        b = train(spec, p.y, t, test=TestPoints(kernel=p.K_test))
        assert np.array_equal(a.filter, b.filter)
        assert_close(a.train, b.train, rtol=1e-12, atol=1e-14 * ref)


def test_last_round_times_equal_stacked_rounds():
    X, Xt, y, K, Kx = _setup(6)
    spec = Spectrum.from_kernel(K)
    full = rounds(spec, y, [1.0, 2.0, 0.0], teacher_weight=[1.0, 0.5, 0.8], last_round_t=[0.5, 3.0])
    for i, t in enumerate([0.5, 3.0]):
        one = rounds(spec, y, [1.0, 2.0, t], teacher_weight=[1.0, 0.5, 0.8])
        assert_close(full.train[i], one.train[2], rtol=1e-13)
    only = rounds(spec, y, [9.0], last_round_t=[0.5, 3.0])
    assert_close(only.train, train(spec, y, [0.5, 3.0]).train, rtol=1e-14)


def test_distill_log_remaining_and_ridge_axis():
    from kdtheory.distill import distill_filter, distill_log_remaining

    lam = np.array([3.0, 1.0, 0.01, 0.0])
    spec = Spectrum(evals=lam, U=np.eye(4), V=None, rank_tol=0.0)
    ts = np.array([0.0, 0.5, 4.0, 400.0])
    le = distill_log_remaining(spec, ts, teacher_t=2.0)
    a = distill_filter(spec, ts, teacher_t=2.0).a
    ok = a < 0.9
    assert_close(np.exp(le)[ok], (1 - a)[ok], rtol=1e-13)
    # where 1 − a_t a_T underflows: e_t = e_T = e^{−1200} gives log(2 e^{−1200} − e^{−2400}) = −1200 + log 2
    deep = distill_log_remaining(spec, 400.0, teacher_t=400.0)
    assert deep[0] == pytest.approx(-1200.0 + np.log(2.0), rel=1e-15)
    assert deep[-1] == 0.0  # λ = 0: nothing is ever learned
    # ridge recipes put their axis in `ridge`, never in `t`
    y = np.arange(4.0)
    tr = distill(spec, y, [0.1, 1.0], teacher_t=0.5, teacher=Recipe("ridge"))
    assert tr.t is None and np.array_equal(tr.ridge, [0.1, 1.0]) and tr.recipe["method"] == "ridge"
    tr = distill(spec, y, [0.1, 1.0], teacher_t=0.5, teacher=Recipe("ridge"), student=Recipe())
    assert tr.ridge is None and np.array_equal(tr.t, [0.1, 1.0])


def test_per_output_normalization_is_mean_over_n_times_k():
    X, Xt, y, K, Kx = _setup(7, k=3)
    spec = Spectrum.from_kernel(K)
    per = distill(spec, y, [1.0, 5.0], teacher_t=2.0, teacher=Recipe(normalization="per_output"))
    # per_output on (n, k) labels is the "sum" recipe at time t/(n k)
    n, k = y.shape
    ref = distill(spec, y, [1.0 / (n * k), 5.0 / (n * k)], teacher_t=2.0 / (n * k))
    assert_close(per.train, ref.train, rtol=1e-12)
    assert_close(per.loss, ref.loss / (n * k), rtol=1e-12)
    assert per.recipe["normalization"] == "per_output"


# ---------------------------------------------------------------------- mixing weights, named
@pytest.fixture
def kspec():
    return Spectrum.from_kernel(np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]))


def test_truth_weight_reaches_rounds_and_no_hidden_kwargs(kspec):
    # rounds(**outputs) forwarded truth_weight= to apply_filter, which failed with an unrelated TypeError
    from kdtheory.distill import rounds

    y = np.array([1.0, -1.0, 2.0])
    a = rounds(kspec, y, [1.0, 2.0], truth_weight=0.3)
    b = rounds(kspec, y, [1.0, 2.0], teacher_weight=0.7)
    assert np.array_equal(a.train, b.train)
    with pytest.raises(ValueError, match="not both"):
        rounds(kspec, y, [1.0, 2.0], truth_weight=0.3, teacher_weight=0.7)
    with pytest.raises(ValueError, match="one weight per round"):
        rounds(kspec, y, [1.0, 2.0], truth_weight=[0.3, 0.2, 0.1])
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        rounds(kspec, y, [1.0, 2.0], bogus=1)


def test_mixing_weights_name_the_argument(kspec):
    from kdtheory.distill import distill, mixing_weights

    y = np.array([1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="truth_weight must be finite"):
        distill(kspec, y, 1.0, teacher_t=1.0, truth_weight=np.nan)
    with pytest.raises(ValueError, match="teacher_weight must be a finite number"):
        distill(kspec, y, 1.0, teacher_t=1.0, teacher_weight="half")
    with pytest.raises(ValueError, match="teacher_weight must be a scalar here"):
        distill(kspec, y, 1.0, teacher_t=1.0, teacher_weight=[0.5, 0.5])
    assert float(mixing_weights()) == 1.0 and float(mixing_weights(truth_weight=0.25)) == 0.75
    with pytest.raises(TypeError):
        distill(kspec, y, 1.0, 2.0)  # the teacher's time is keyword-only: teacher_t=
    with pytest.raises(ValueError, match="exactly one"):
        train(kspec, y)
    with pytest.raises(ValueError, match="ridge= is kernel ridge regression"):
        train(kspec, y, ridge=1.0, recipe=Recipe("gd"))
