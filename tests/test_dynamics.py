"""kdtheory.dynamics: closed forms vs explicit loops, matrix exponentials and exact solves."""

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse.linalg
from hypothesis import given
from hypothesis import strategies as st

from kdtheory import eigen
from kdtheory.dynamics import TestPoints, apply_filter, train
from kdtheory.eigen import Filter, Recipe, Spectrum, flow_filter, max_learning_rate, momentum_filter
from kdtheory.testing import assert_close, kernel_problems, random_orthogonal, times


def _problem(seed=0, n=12, d=5, k=3, nt=6):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(2.0, 0.3, d)
    Xt = rng.standard_normal((nt, d))
    y = rng.standard_normal((n, k))
    return X, Xt, y, rng


def _gd_loop(K, Kx, y, f0, ft0, eta, steps, beta=0.0, loss="sum"):
    """Explicit (heavy-ball) GD on dual coefficients: α ← α + v, v ← βv − η ∂L/∂f."""
    n = K.shape[0]
    div = {"sum": 1.0, "mean": n, "per_output": n * y.shape[1]}[loss]
    alpha = np.zeros_like(y)
    v = np.zeros_like(y)
    tr, te = {}, {}
    for s in range(max(steps) + 1):
        if s in steps:
            tr[s] = f0 + K @ alpha
            te[s] = ft0 + Kx @ alpha
        v = beta * v - eta * (f0 + K @ alpha - y) / div
        alpha = alpha + v
    return np.array([tr[s] for s in steps]), np.array([te[s] for s in steps])


def _flow_expm(K, Kx, y, f0, ft0, t, loss="sum"):
    """Gradient flow α' = −(f0 + Kα − y)/div via the exponential of an augmented matrix."""
    n = K.shape[0]
    k = y.shape[1]
    div = {"sum": 1.0, "mean": n, "per_output": n * k}[loss]
    A = np.zeros((n + k, n + k))
    A[:n, :n] = -K / div
    A[:n, n:] = -(f0 - y) / div  # constant forcing, driven by unit states
    E = scipy.linalg.expm(A * t)
    alpha = E[:n, n:]  # α(t) with α(0) = 0 and the extra states fixed at the identity
    return f0 + K @ alpha, ft0 + Kx @ alpha


# ---------------------------------------------------------------------- oracles
@pytest.mark.parametrize("loss", ["sum", "mean", "per_output"])
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_gd_and_momentum_match_explicit_loop(loss, beta):
    X, Xt, y, rng = _problem(1)
    K, Kx = X @ X.T, Xt @ X.T
    f0, ft0 = rng.standard_normal(y.shape), rng.standard_normal((Xt.shape[0], y.shape[1]))
    spec = Spectrum.from_kernel(K)
    lam_max = spec.evals[0] * Recipe(normalization=loss).eigenvalue_scale(K.shape[0], y.shape[1])
    eta = 0.9 * 2 * (1 + beta) / lam_max
    steps = [0, 1, 2, 7, 40, 300]
    method = "momentum" if beta else "gd"
    traj = train(
        spec,
        y,
        steps,
        recipe=Recipe(method, learning_rate=eta, momentum=beta, normalization=loss),
        init=f0,
        test=TestPoints(kernel=Kx, init=ft0),
    )
    tr, te = _gd_loop(K, Kx, y, f0, ft0, eta, steps, beta, loss)
    assert_close(traj.train, tr, rtol=1e-10)
    assert_close(traj.test, te, rtol=1e-10)


@pytest.mark.parametrize("loss", ["sum", "mean", "per_output"])
def test_flow_matches_expm_and_expm_multiply(loss):
    X, Xt, y, rng = _problem(2)
    K, Kx = X @ X.T, Xt @ X.T
    f0, ft0 = rng.standard_normal(y.shape), rng.standard_normal((Xt.shape[0], y.shape[1]))
    spec = Spectrum.from_kernel(K)
    ts = np.array([0.0, 0.01, 0.3, 2.0, 25.0])
    traj = train(spec, y, ts, recipe=Recipe(normalization=loss), init=f0, test=TestPoints(kernel=Kx, init=ft0))
    for i, t in enumerate(ts):
        tr, te = _flow_expm(K, Kx, y, f0, ft0, t, loss)
        assert_close(traj.train[i], tr, rtol=1e-10)
        assert_close(traj.test[i], te, rtol=1e-10)
    # residual r' = −K r/div: expm_multiply over a grid of times
    div = {"sum": 1.0, "mean": K.shape[0], "per_output": y.size}[loss]
    assert_close(traj.loss, 0.5 * np.sum((traj.train - y) ** 2, axis=(1, 2)) / div, rtol=1e-12)
    assert traj.recipe["normalization"] == loss
    grid = train(spec, y, np.linspace(0, 3, 7), recipe=Recipe(normalization=loss), init=f0)
    r = scipy.sparse.linalg.expm_multiply(-K / div, f0 - y, start=0, stop=3, num=7, endpoint=True)
    assert_close(grid.train - y, r, rtol=1e-10)


def test_features_weights_match_loop_and_lstsq():
    X, Xt, y, rng = _problem(3, n=6, d=9)  # d > n: weights have a null space
    w0 = rng.standard_normal((9, 3))
    spec = Spectrum.from_features(X)
    eta = 0.5 / spec.evals[0]
    traj = train(
        spec,
        y,
        [0, 3, 50, np.inf],
        recipe=Recipe("momentum", learning_rate=eta, momentum=0.7),
        init_weights=w0,
        test=TestPoints(features=Xt),
    )
    w, v, W = w0.copy(), np.zeros_like(w0), []
    for _ in range(51):
        W.append(w.copy())
        v = 0.7 * v - eta * X.T @ (X @ w - y)
        w = w + v
    assert_close(traj.weights[:3], np.array(W)[[0, 3, 50]], rtol=1e-10)
    w_inf = w0 + np.linalg.lstsq(X, y - X @ w0, rcond=None)[0]
    assert_close(traj.weights[3], w_inf, rtol=1e-10)
    assert_close(traj.test, np.einsum("id,tdk->tik", Xt, traj.weights), rtol=1e-10)
    assert_close(traj.train, np.einsum("nd,tdk->tnk", X, traj.weights), rtol=1e-10)
    assert_close(traj.norm, np.linalg.norm((traj.weights - w0).reshape(4, -1), axis=1), rtol=1e-10)


def test_tall_features_complement_kept():
    X, Xt, y, rng = _problem(4, n=10, d=3)  # n > d: labels have a part no weight can fit
    spec = Spectrum.from_features(X)
    traj = train(spec, y, [0, np.inf], test=TestPoints(kernel=Xt @ X.T))
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    assert_close(traj.train[1], X @ w, rtol=1e-10)
    assert_close(traj.loss[1], 0.5 * np.sum((X @ w - y) ** 2), rtol=1e-10)
    assert_close(traj.test[1], Xt @ w, rtol=1e-10)
    assert_close(traj.weights[1], w, rtol=1e-10)


def test_one_dimensional_labels_and_scalar_time_shapes():
    X, Xt, y, _ = _problem(5)
    spec = Spectrum.from_features(X)
    tr = train(spec, y[:, 0], 1.5, test=TestPoints(kernel=Xt @ X.T))
    assert tr.train.shape == (12,) and tr.test.shape == (6,) and tr.weights.shape == (5,)
    assert tr.modes.shape == (5,) and tr.loss.shape == () and tr.filter.shape == (5,)
    full = train(spec, y, 1.5, test=TestPoints(kernel=Xt @ X.T))
    assert_close(tr.train, full.train[:, 0], rtol=1e-14)
    assert "Trajectory" in repr(full)


# ---------------------------------------------------------------------- properties
@given(kernel_problems(), times())
def test_t0_returns_initial_output(p, t):
    spec = Spectrum.from_kernel(p.K)
    rng = np.random.default_rng(0)
    f0 = rng.standard_normal(p.y.shape)
    ft0 = rng.standard_normal((p.X_test.shape[0],) + p.y.shape[1:])
    tr = train(spec, p.y, 0.0, init=f0, test=TestPoints(kernel=p.K_test, init=ft0))
    assert np.array_equal(tr.train, f0) or np.abs(tr.train - f0).max() <= 1e-13 * (1 + np.abs(f0).max())
    assert np.array_equal(tr.test, ft0)
    assert tr.norm == 0.0


@given(kernel_problems())
def test_t_inf_equals_exact_solve(p):
    spec = Spectrum.from_kernel(p.K)
    tr = train(spec, p.y, np.inf, test=TestPoints(kernel=p.K_test))
    # generated nonzero eigenvalues are ≥ 1e-12 λ_max, round-off zeros ~ n ε λ_max: 1e-13 separates
    Kp = np.linalg.pinv(p.K, rtol=1e-13, hermitian=True)
    lam = spec.evals[spec.evals > 0]
    Q = scipy.linalg.orth(p.K, rcond=1e-13)  # range of K from an SVD: the exact fit is Q Qᵀ y
    # both go through K's range, which round-off ε‖K‖ tilts by ~ ε λ_max / λ_min⁺ (the gap to the
    # zero eigenvalues) when K is rank deficient; any backward-stable method has that forward error
    kappa = lam[0] / lam[-1] if lam.size else 1.0
    tol = max(1e-10, 1e3 * np.finfo(float).eps * kappa)
    rtol_fit = tol if lam.size < p.K.shape[0] else 1e-10
    assert_close(tr.train, Q @ (Q.T @ p.y), rtol=rtol_fit, atol=1e-12 * np.linalg.norm(p.y))
    # test predictions go through K⁺: forward error ~ ε κ(K) for any backward-stable solver
    assert_close(tr.test, p.K_test @ Kp @ p.y, rtol=tol, atol=tol * np.linalg.norm(p.K_test @ Kp @ p.y) + 1e-300)
    assert np.all(np.isfinite(tr.train)) and np.all(np.isfinite(tr.test))


@given(kernel_problems(), st.lists(times(), min_size=1, max_size=4), st.sampled_from(["flow", "gd", "momentum"]))
def test_array_t_equals_stacked_scalar_t(p, ts, method):
    spec = Spectrum.from_kernel(p.K)
    kw = {} if method == "flow" else {"learning_rate": 0.7 / max(spec.evals[0], 1e-300)}
    if method == "momentum":
        kw["momentum"] = 0.5
    ts = [t if method == "flow" or np.isinf(t) else float(np.floor(t)) for t in ts]
    full = train(spec, p.y, ts, recipe=Recipe(method, **kw), test=TestPoints(kernel=p.K_test))
    g = Recipe(method, **kw).filter(spec.evals, ts).a_over_eval
    for i, t in enumerate(ts):
        one = train(spec, p.y, t, recipe=Recipe(method, **kw), test=TestPoints(kernel=p.K_test))
        # round-off scale: the size of the terms that are summed (test points sum K_test α)
        alpha = np.linalg.norm(g[i][:, None] * spec.project(p.y).reshape(spec.n, -1))
        for name in ("train", "test", "modes", "loss", "norm"):
            scale = (
                np.linalg.norm(p.K_test) * alpha
                if name == "test"
                else np.linalg.norm(p.y) ** (2 if name == "loss" else 1)
            )
            assert_close(getattr(full, name)[i], getattr(one, name), rtol=1e-13, atol=1e-14 * scale)


@given(kernel_problems(), st.floats(0.0, 20.0), st.floats(0.0, 20.0))
def test_flow_semigroup(p, t1, t2):
    spec = Spectrum.from_kernel(p.K)
    scale = 1.0 / max(spec.evals[0], 1e-300)  # times in units of 1/λ_max
    t1, t2 = t1 * scale, t2 * scale
    a = train(spec, p.y, t1, test=TestPoints(kernel=p.K_test))
    b = train(spec, p.y, t2, init=a.train, test=TestPoints(kernel=p.K_test, init=a.test))
    c = train(spec, p.y, t1 + t2, test=TestPoints(kernel=p.K_test))
    ref = np.linalg.norm(p.y)
    assert_close(b.train, c.train, rtol=1e-10, atol=1e-12 * ref)
    assert_close(b.test, c.test, rtol=1e-9, atol=1e-10 * (np.linalg.norm(c.test) + ref))


@given(kernel_problems(), st.floats(0.1, 5.0))
def test_gd_tends_to_flow_as_eta_shrinks(p, tau):
    spec = Spectrum.from_kernel(p.K)
    lam_max = max(spec.evals[0], 1e-300)
    flow = train(spec, p.y, tau / lam_max).train
    errs = []
    for steps in (100, 1000):
        eta = tau / lam_max / steps
        errs.append(np.linalg.norm(train(spec, p.y, steps, recipe=Recipe("gd", learning_rate=eta)).train - flow))
    # first order in η: shrinking η tenfold shrinks the gap about tenfold
    assert errs[1] <= 0.2 * errs[0] + 1e-12 * np.linalg.norm(p.y)
    assert errs[0] <= tau * tau / 100 * np.linalg.norm(p.y) + 1e-12


@given(kernel_problems(), times())
def test_finite_with_zero_eigenvalues(p, t):
    spec = Spectrum.from_features(p.X)  # rank deficient whenever λ has zeros or n ≠ d
    tr = train(spec, p.y, t, test=TestPoints(kernel=p.K_test))
    for name in ("train", "test", "weights", "modes", "loss", "norm", "filter"):
        assert np.all(np.isfinite(getattr(tr, name))), name


@given(kernel_problems(), times(), st.integers(0, 10_000))
def test_predictions_invariant_under_feature_rotation(p, t, seed):
    Q = random_orthogonal(p.X.shape[1], seed)
    a = train(Spectrum.from_features(p.X), p.y, t, test=TestPoints(features=p.X_test))
    b = train(Spectrum.from_features(p.X @ Q), p.y, t, test=TestPoints(features=p.X_test @ Q))
    ref = np.linalg.norm(p.y) + np.linalg.norm(a.test)
    assert_close(b.train, a.train, rtol=1e-9, atol=1e-11 * ref)
    assert_close(b.test, a.test, rtol=1e-9, atol=1e-9 * ref)
    assert_close(
        Q @ b.weights if b.weights.ndim == 1 else Q @ b.weights,
        a.weights,
        rtol=1e-8,
        atol=1e-9 * (np.linalg.norm(a.weights) + 1),
    )


@given(kernel_problems(), st.floats(0.01, 1.0), st.sampled_from(["sum", "mean"]))
def test_mode_residuals_nonincreasing_when_monotone(p, frac, loss):
    spec = Spectrum.from_kernel(p.K)
    eta = frac * max_learning_rate(spec.evals / (spec.n if loss == "mean" else 1), monotone=True)
    if not np.isfinite(eta):
        eta = 1.0
    steps = np.arange(0, 60)
    tr = train(spec, p.y, steps, recipe=Recipe("gd", learning_rate=eta, normalization=loss))
    mags = np.abs(tr.modes)
    assert np.all(np.diff(mags, axis=0) <= 1e-15 * (1 + mags[:-1]))
    assert np.all(np.diff(tr.loss) <= 1e-14 * (1 + tr.loss[:-1]))


@given(kernel_problems(max_size=8), st.floats(0.05, 0.95), st.floats(0.0, 0.95), st.integers(0, 40))
def test_momentum_matches_loop_on_generated_problems(p, frac, beta, s):
    spec = Spectrum.from_kernel(p.K)
    eta = frac * max_learning_rate(spec, method="momentum", momentum=beta)
    if not np.isfinite(eta):
        eta = 1.0
    y2 = p.y.reshape(p.y.shape[0], -1)
    tr = train(
        spec, y2, [s], recipe=Recipe("momentum", learning_rate=eta, momentum=beta), test=TestPoints(kernel=p.K_test)
    )
    ref_tr, ref_te = _gd_loop(
        p.K, p.K_test, y2, np.zeros_like(y2), np.zeros((p.X_test.shape[0], y2.shape[1])), eta, [s], beta
    )
    scale = np.linalg.norm(y2) * (1 + s)
    assert_close(tr.train, ref_tr, rtol=1e-10, atol=1e-12 * scale)
    assert_close(tr.test, ref_te, rtol=1e-9, atol=1e-11 * scale * (1 + np.linalg.norm(p.K_test) * eta * (1 + s)))


def test_ridge_axis_matches_explicit_solve():
    X, Xt, y, rng = _problem(6)
    K, Kx = X @ X.T, Xt @ X.T
    f0 = rng.standard_normal(y.shape)
    spec = Spectrum.from_kernel(K)
    cs = np.array([0.0, 0.3, 4.0])
    tr = train(spec, y, ridge=cs, init=f0, test=TestPoints(kernel=Kx))
    assert tr.t is None and np.array_equal(tr.ridge, cs) and tr.recipe["method"] == "ridge"
    for i, c in enumerate(cs):
        coef = np.linalg.lstsq(K + c * np.eye(K.shape[0]), y - f0, rcond=None)[0]  # min-norm at c = 0
        assert_close(tr.train[i], f0 + K @ coef, rtol=1e-9)
        assert_close(tr.test[i], Kx @ coef, rtol=1e-8)
    # the same regression through the recipe (strengths on the t axis), as a distillation teacher gets it
    by_recipe = train(spec, y, cs, recipe=Recipe("ridge"), init=f0, test=TestPoints(kernel=Kx))
    assert by_recipe.t is None and np.array_equal(by_recipe.ridge, cs)
    assert np.array_equal(by_recipe.train, tr.train) and np.array_equal(by_recipe.test, tr.test)
    # ridge= reads only the recipe's normalization: "mean" scales the strengths by n
    n = K.shape[0]
    mean = train(spec, y, ridge=cs / n, recipe=Recipe(normalization="mean"), init=f0)
    assert_close(mean.train, tr.train, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------- bad input named, edge cases exact
@pytest.fixture
def spec():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3))
    return Spectrum.from_features(X)


@pytest.fixture
def kspec():
    return Spectrum.from_kernel(np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]))


def test_shape_mismatches(spec, kspec):
    with pytest.raises(ValueError, match="y has 4 rows but the spectrum has n=5"):
        train(spec, np.ones(4), 1.0)
    with pytest.raises(ValueError, match="test.kernel has 4 columns"):
        train(spec, np.ones(5), 1.0, test=TestPoints(kernel=np.ones((2, 4))))
    with pytest.raises(ValueError, match="test.features has 2 columns"):
        train(spec, np.ones(5), 1.0, test=TestPoints(features=np.ones((2, 2))))
    with pytest.raises(ValueError, match="init must have the shape of y"):
        train(spec, np.ones((5, 2)), 1.0, init=np.ones(5))
    with pytest.raises(ValueError, match="test.init must have shape"):
        train(spec, np.ones(5), 1.0, test=TestPoints(kernel=np.ones((2, 5)), init=np.ones(3)))
    with pytest.raises(ValueError, match="init_weights must have shape"):
        train(spec, np.ones(5), 1.0, init_weights=np.ones(4))
    with pytest.raises(ValueError, match="init_weights needs a features spectrum"):
        train(kspec, np.ones(3), 1.0, init_weights=np.ones(3))
    with pytest.raises(ValueError, match="test.features needs a features spectrum"):
        train(kspec, np.ones(3), 1.0, test=TestPoints(features=np.ones((2, 3))))
    with pytest.raises(ValueError, match="exactly one"):
        train(spec, np.ones(5), 1.0, test=TestPoints(kernel=np.ones((2, 5)), features=np.ones((2, 3))))
    with pytest.raises(ValueError, match="exactly one"):
        TestPoints()
    with pytest.raises(ValueError, match=r"TestPoints\(init=\) goes with kernel="):
        TestPoints(features=np.ones((2, 3)), init=np.ones(2))
    with pytest.raises(TypeError, match="test must be a kdtheory.dynamics.TestPoints"):
        train(spec, np.ones(5), 1.0, test=np.ones((2, 5)))
    with pytest.raises(TypeError, match="recipe must be a kdtheory.eigen.Recipe"):
        train(spec, np.ones(5), 1.0, recipe="gd")
    with pytest.raises(ValueError, match="a and a_over_eval must share a shape"):
        apply_filter(kspec, np.ones(3), Filter(np.ones((2, 3)), np.ones((2, 2))))
    with pytest.raises(ValueError, match="filter must have shape S"):
        apply_filter(kspec, np.ones(3), Filter(np.ones((2, 2)), np.ones((2, 2))))
    with pytest.raises(TypeError, match="filter must be a kdtheory.eigen.Filter"):
        apply_filter(kspec, np.ones(3), np.ones((2, 3)))


def test_nan_and_inf_in_labels_and_test_kernel(kspec):
    with pytest.raises(ValueError, match="y contains NaN"):
        train(kspec, np.array([1.0, np.nan, 0.0]), 1.0)
    with pytest.raises(ValueError, match="y contains inf"):
        train(kspec, np.array([1.0, np.inf, 0.0]), 1.0)
    with pytest.raises(ValueError, match="test.kernel contains NaN"):
        train(kspec, np.ones(3), 1.0, test=TestPoints(kernel=np.full((1, 3), np.nan)))
    with pytest.raises(ValueError, match="init contains inf"):
        train(kspec, np.ones(3), 1.0, init=np.array([np.inf, 0.0, 0.0]))


def test_times(kspec):
    with pytest.raises(ValueError, match="t must be >= 0"):
        train(kspec, np.ones(3), [-1.0, 2.0])
    with pytest.raises(ValueError, match="t contains NaN"):
        flow_filter([1.0], np.nan)
    with pytest.raises(ValueError, match="t counts steps and must hold whole numbers"):
        train(kspec, np.ones(3), 1.5, recipe=Recipe("gd", learning_rate=0.1))
    with pytest.raises(TypeError, match="t must hold real numbers"):
        flow_filter([1.0], "soon")


def test_unknown_options(kspec):
    with pytest.raises(ValueError, match="unknown method 'adam'"):
        train(kspec, np.ones(3), 1.0, recipe=Recipe("adam"))
    with pytest.raises(ValueError, match="unknown normalization 'mse'"):
        train(kspec, np.ones(3), 1.0, recipe=Recipe(normalization="mse"))
    with pytest.raises(TypeError, match="spectrum must be a kdtheory.eigen.Spectrum"):
        train(np.eye(3), np.ones(3), 1.0)
    with pytest.raises(TypeError, match="momentum must be a real number"):
        momentum_filter([1.0], 1, learning_rate=0.1, momentum="0.5")


def test_legitimate_edge_cases_exact(kspec):
    y = np.array([1.0, -1.0, 2.0])
    tr = train(kspec, y, [0.0, np.inf])
    assert np.array_equal(tr.train[0], np.zeros(3))
    np.testing.assert_allclose(tr.train[1], y, atol=1e-15)
    assert tr.loss[1] < 1e-30
    zero = Spectrum.from_kernel(np.zeros((3, 3)))  # λ = 0 everywhere: nothing is ever learned
    tz = train(zero, y, [0.0, 5.0, np.inf], test=TestPoints(kernel=np.zeros((2, 3))))
    assert np.all(tz.train == 0) and np.all(tz.test == 0) and np.all(np.isfinite(tz.norm))
    assert zero.rank == 0


def test_unstable_overflow_names_the_users_arguments(kspec):
    # row 14: with allow_unstable=True an overflow reported "a contains inf values", an internal name
    lam_max = kspec.evals[0]
    with pytest.raises(ValueError, match=r"allow_unstable=True, learning_rate=.* diverges .* by t=5000 steps"):
        train(kspec, np.ones(3), [1, 5000], recipe=Recipe("gd", learning_rate=3.0 / lam_max, allow_unstable=True))
    with pytest.raises(ValueError, match="learning_rate"):
        Recipe("momentum", learning_rate=6.0 / lam_max, momentum=0.5, allow_unstable=True).filter(kspec, 10**5)
    # finite but diverging values are still returned
    assert np.isfinite(
        train(kspec, np.ones(3), 50, recipe=Recipe("gd", learning_rate=3.0 / lam_max, allow_unstable=True)).loss
    )


# ---------------------------------------------------------------------- regressions
@pytest.mark.parametrize("beta, frac", [(2.3e-25, 0.5), (1e-30, 0.9), (1e-17, 0.999)])
def test_issue14_falsifying_example_dynamics(beta, frac):
    """``dynamics.train(..., method="momentum", momentum=2.3e-25)`` raised 'a contains NaN values';
    β = 1e-30 and 1e-17 at these rates gave NaN in the old closed form. β this small is GD."""
    from kdtheory.dynamics import train

    spec = eigen.Spectrum.from_kernel(np.diag([1.0, 0.5, 0.1]))
    y = np.array([1.0, -2.0, 0.5])
    eta = frac * eigen.max_learning_rate(spec, method="momentum", momentum=beta)
    tr = train(spec, y, [0, 1, 2, 7, 120], recipe=Recipe("momentum", learning_rate=eta, momentum=beta))
    ref = train(spec, y, [0, 1, 2, 7, 120], recipe=Recipe("gd", learning_rate=eta))
    np.testing.assert_allclose(tr.train, ref.train, rtol=1e-13, atol=1e-15)
