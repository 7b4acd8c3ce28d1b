"""kdtheory.ntk: empirical NTK methods agree, analytic ReLU kernels, linearized training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cnn_oracle import _cnn_apply, _cnn_init, _explicit_ntk, _rel, _traces

from kdtheory.eigen import Recipe, Spectrum, flow_filter
from kdtheory.ntk import (
    empirical_ntk,
    lag_at_matched_progress,
    linearized,
    project_first_layer,
    project_residual,
    relu_ntk,
)
from kdtheory.simulate import Loss, Optimizer, Run, linear_model, mlp, train_model
from kdtheory.testing import assert_close


def _f64(tree):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), tree)


def test_linear_model_ntk_is_gram_matrix():
    rng = np.random.default_rng(0)
    X, X2 = rng.standard_normal((9, 4)), rng.standard_normal((3, 4))
    m = linear_model(4, 3)
    p = {"w": jnp.asarray(rng.standard_normal((4, 3)))}
    for method in ("jacobian", "ntvp", "per_example"):
        assert_close(empirical_ntk(m.apply, p, X, method=method), X @ X.T, rtol=1e-14)
        assert_close(empirical_ntk(m.apply, p, X, X2, method=method, trace="sum"), 3 * X @ X2.T, rtol=1e-14)
        full = empirical_ntk(m.apply, p, X, X2, method=method, trace=None)
        assert_close(full, np.kron(X @ X2.T, np.eye(3)), rtol=1e-14)


@pytest.mark.parametrize("trace", ["mean", "sum", None])
def test_three_methods_agree_and_blocks_change_nothing(trace):
    rng = np.random.default_rng(1)
    X, X2 = rng.standard_normal((7, 5)), rng.standard_normal((5, 5))
    m = mlp([5, 12, 9, 3], activation="tanh", parameterization="ntk", bias_std=0.4)
    p = _f64(m.init(jax.random.PRNGKey(2)))
    ref = empirical_ntk(m.apply, p, X, X2, method="jacobian", trace=trace)
    for method in ("ntvp", "per_example", "structured"):
        assert_close(empirical_ntk(m, p, X, X2, method=method, trace=trace), ref, rtol=1e-10)
    for method in ("jacobian", "ntvp", "per_example"):
        blocked = empirical_ntk(m.apply, p, X, X2, method=method, trace=trace, block_size=3)
        unblocked = empirical_ntk(m.apply, p, X, X2, method=method, trace=trace)
        assert np.array_equal(blocked, unblocked) or np.abs(blocked - unblocked).max() <= 1e-13 * np.abs(ref).max()
    sym = empirical_ntk(m.apply, p, X, method="jacobian", trace=trace)
    assert_close(sym, sym.T, rtol=1e-14)
    assert np.linalg.eigvalsh(sym).min() > -1e-10 * np.abs(sym).max()


def test_analytic_two_layer_matches_theory_formula():
    # docs/theory.md §6: f = m^{-1/2} Σ a_r relu(w_rᵀx), w ~ N(0, I): our recursion with x scaled by √d
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 4))
    _, T = relu_ntk(X * np.sqrt(4), depth=1)
    nx = np.linalg.norm(X, axis=1)
    G = X @ X.T
    th = np.arctan2(np.sqrt(np.maximum(np.outer(nx, nx) ** 2 - G * G, 0)), G)  # angle between x and x'
    np.fill_diagonal(th, 0.0)
    cos = np.cos(th)
    first = (X @ X.T) * (np.pi - th) / (2 * np.pi)
    second = np.outer(nx, nx) * (np.sin(th) + (np.pi - th) * cos) / (2 * np.pi)
    assert_close(T, first + second, rtol=1e-12)


@pytest.mark.parametrize("depth, method", [(1, "jacobian"), (2, "ntvp")])
def test_analytic_relu_ntk_matches_wide_networks(depth, method):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 4))
    nngp, T = relu_ntk(X, depth=depth, bias_std=0.3)
    emp = []
    for seed in range(2 if depth == 2 else 4):
        w = mlp([4] + [8192] * depth + [1], parameterization="ntk", bias_std=0.3)
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), w.init(jax.random.PRNGKey(seed)))
        emp.append(empirical_ntk(w.apply, p, X, method=method))
    err = np.abs(np.mean(emp, 0) - T).max() / np.abs(T).max()
    assert err < 0.02, f"analytic vs empirical NTK (width 8192, depth {depth}): {err:.3%}"
    assert np.all(np.linalg.eigvalsh(nngp) > -1e-12)


def test_wide_network_tracks_its_linearization():
    rng = np.random.default_rng(5)
    X, Y, Xt = rng.standard_normal((20, 5)), rng.standard_normal((20, 2)), rng.standard_normal((6, 5))
    m = mlp([5, 4096, 2], parameterization="ntk")
    p = _f64(m.init(jax.random.PRNGKey(0)))
    t = [0, 10, 50, 100]
    lin = linearized(m, p, X, Y, t, learning_rate=0.5, X_test=Xt, normalization="mean")
    run = train_model(
        m,
        X,
        Y,
        t=t,
        run=Run(loss=Loss("mse", normalization="mean"), optimizer=Optimizer(learning_rate=0.5), params=p),
        X_test=Xt,
        dtype=jnp.float64,
    )
    assert_close(run.train[0], lin.train[0], rtol=1e-12)
    assert np.array_equal(run.t, lin.t) and lin.recipe["normalization"] == run.recipe["normalization"]
    moved = np.linalg.norm(lin.train[-1] - lin.train[0])
    assert np.linalg.norm(run.train - lin.train) < 0.02 * moved
    assert np.linalg.norm(run.test - lin.test) < 0.02 * np.linalg.norm(lin.test[-1] - lin.test[0])


def test_projections():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((12, 3))
    K = X @ X.T + np.eye(12)
    spec = Spectrum.from_kernel(K)
    Y, f0 = rng.standard_normal((12, 2)), rng.standard_normal((12, 2))
    a = spec.evals / (spec.evals + 2.0)
    F = f0 + spec.U @ (a[:, None] * (spec.U.T @ (Y - f0)))  # a spectral filter applied to y − f0
    assert_close(project_residual(spec, F, f0, Y), a, rtol=1e-12)
    W = rng.standard_normal((3, 7))
    e = project_first_layer(W, X)
    assert e.shape == (3,) and e.sum() == pytest.approx(np.sum(W * W))


def test_lag_measurement_on_the_linearized_network_matches_the_kernel():
    # the ntk_bridge measurement applied to the linearized network must reproduce the kernel's
    # prediction (up to the off-diagonal output blocks the traced kernel drops); a first version
    # saturated the top direction, where matching is degenerate, and reported noise of either sign
    from kdtheory.distill import Recipe, distill_filter
    from kdtheory.ntk import lag_at_matched_progress

    rng = np.random.default_rng(7)
    n = 40
    X, Y = rng.standard_normal((n, 6)), np.eye(3)[rng.integers(0, 3, n)]
    m = mlp([6, 256, 3], parameterization="ntk")
    p = _f64(m.init(jax.random.PRNGKey(1)))
    spec = Spectrum.from_kernel(empirical_ntk(m.apply, p, X))
    f0 = np.asarray(m.apply(p, jnp.asarray(X)))
    T = max(1, round(n / spec.evals[0]))  # one unit of top-direction time at η = 1, mean loss
    ck = np.unique(np.r_[0, T, np.linspace(1, 8 * T, 120).round().astype(int)])
    twin = linearized(m.apply, p, X, Y, ck, learning_rate=1.0, normalization="mean")
    i_T = int(np.searchsorted(ck, T))
    st = linearized(m.apply, p, X, twin.train[i_T], [0, T], learning_rate=1.0, normalization="mean")
    measured = lag_at_matched_progress(
        project_residual(spec, twin.train, f0, Y), project_residual(spec, st.train[-1], f0, Y), directions=10
    )
    rec = Recipe("gd", learning_rate=1.0 / n, allow_unstable=True)
    predicted = lag_at_matched_progress(
        rec.filter(spec, ck).a, distill_filter(spec, T, teacher_t=float(T), teacher=rec).a, directions=10
    )
    assert predicted > 0 and measured == pytest.approx(predicted, rel=0.15)


@pytest.mark.slow
def test_linearized_normalizations_rescale_time():
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((10, 4)), rng.standard_normal((10, 2))
    m = mlp([4, 16, 2], parameterization="ntk")
    p = _f64(m.init(jax.random.PRNGKey(3)))
    base = linearized(m, p, X, Y, [0, 7, 40], learning_rate=0.01)
    per = linearized(m, p, X, Y, [0, 7, 40], learning_rate=0.01 * 20, normalization="per_output")
    assert_close(per.train, base.train, rtol=1e-10)
    assert_close(per.loss * 20, base.loss, rtol=1e-10)
    with pytest.raises(ValueError, match="y has 3 rows but X has 10"):
        linearized(m, p, X, Y[:3], [0, 1], learning_rate=0.1)


# ---------------------------------------------------------------------- any input shape (CNN, oracle: cnn_oracle.py)


@pytest.mark.slow
def test_empirical_ntk_of_a_cnn_on_images_equals_its_jacobian_product():
    # issue 9 item 6: inputs of any shape (n, h, w, c); float64, <= 1e-12
    rng = np.random.default_rng(20)
    X1, X2 = rng.standard_normal((5, 8, 8, 1)), rng.standard_normal((3, 8, 8, 1))
    p = _f64(_cnn_init(jax.random.PRNGKey(0)))
    full = _explicit_ntk(_cnn_apply, p, X1, X2)
    want = _traces(full, 5, 3, 3)
    for method in ("jacobian", "ntvp", "per_example"):
        assert _rel(empirical_ntk(_cnn_apply, p, X1, X2, method=method, trace=None), full) <= 1e-12, method
    for trace in ("mean", "sum"):
        assert _rel(empirical_ntk(_cnn_apply, p, X1, X2, method="per_example", trace=trace), want[trace]) <= 1e-12
    # point-major rows: row i·k + c is output c of image i
    assert_close(empirical_ntk(_cnn_apply, p, X1[1:2], X2[2:3], trace=None), full[3:6, 6:9], rtol=1e-12)
    with pytest.raises(ValueError, match="per-example shape"):
        empirical_ntk(_cnn_apply, p, X1, X2[:, :4])


@pytest.mark.slow
def test_auto_picks_structure_and_falls_back():
    rng = np.random.default_rng(23)
    X = rng.standard_normal((5, 3))
    m = mlp([3, 8, 2], activation="tanh")
    p = _f64(m.init(jax.random.PRNGKey(0)))
    ref = empirical_ntk(m.apply, p, X, method="jacobian")  # a bare function: generic methods only
    assert_close(empirical_ntk(m, p, X), ref, rtol=1e-12)
    assert_close(empirical_ntk(m.apply, p, X), ref, rtol=1e-12)  # a bare function: layers found by tracing
    with pytest.raises(ValueError, match="declares its layers"):
        empirical_ntk(m.apply, p, X, method="structured")


@pytest.mark.slow
def test_linearized_accepts_images():
    from kdtheory.dynamics import train

    rng = np.random.default_rng(24)
    X, Y = rng.standard_normal((6, 8, 8, 1)), rng.standard_normal((6, 3))
    p = _f64(_cnn_init(jax.random.PRNGKey(2)))
    img = linearized(_cnn_apply, p, X, Y, [0, 3, 20], learning_rate=0.01, X_test=X[:2])
    assert img.train.shape == (3, 6, 3) and img.test.shape == (3, 2, 3)
    f0 = np.asarray(_cnn_apply(p, jnp.asarray(X)))
    assert_close(img.train[0], f0, rtol=1e-12)
    assert_close(img.test[0], f0[:2], rtol=1e-12)
    # oracle: the closed form on the explicit Jacobian product (point-major flattening)
    ref = train(
        Spectrum.from_kernel(_explicit_ntk(_cnn_apply, p, X, X)),
        Y.reshape(-1),
        [0, 3, 20],
        recipe=Recipe("gd", learning_rate=0.01),
        init=f0.reshape(-1),
    )
    assert_close(img.train, ref.train.reshape(3, 6, 3), rtol=1e-10)


# ---------------------------------------------------------------------- the lag at matched progress
def _e2_oracle(lam, t, T, K):
    # docs/theory.md §3 E2 in closed form: 1 − e^{−λ_1 t'} = a_1(t) a_1(T), lag_k = a_k(t') − a_k(t) a_k(T)
    student = (1 - np.exp(-lam * t)) * (1 - np.exp(-lam * T))
    t_match = -np.log1p(-student[0]) / lam[0]
    return float(np.mean((1 - np.exp(-lam[1:K] * t_match)) - student[1:K])), student, t_match


@pytest.mark.parametrize("t, T", [(1.0, 1.0), (0.5, 3.0), (2.0, 2.0)])
def test_lag_matches_the_closed_form_of_gradient_flow(t, T):
    lam = np.array([1.0, 0.7, 0.3, 0.1, 0.02])
    expected, student, t_match = _e2_oracle(lam, t, T, 4)
    grid = np.linspace(0.0, 10.0, 4001)
    fine = lag_at_matched_progress(flow_filter(lam, grid).a, student, directions=4)
    assert expected > 0 and fine == pytest.approx(expected, rel=1e-5)
    # t' on the grid: exact, no interpolation
    exact = lag_at_matched_progress(flow_filter(lam, np.sort(np.r_[grid[::100], t_match])).a, student, directions=4)
    assert exact == pytest.approx(expected, rel=1e-12)


def test_a_student_that_is_the_reference_itself_has_no_lag():
    lam = np.array([2.0, 1.0, 0.5])
    ref = flow_filter(lam, np.linspace(0, 5, 51)).a
    assert lag_at_matched_progress(ref, ref[17], directions=3) == pytest.approx(0.0, abs=1e-15)


def test_first_crossing_of_a_non_monotone_reference():
    # a reference that overshoots and comes back: the first crossing is used, not a sorted curve
    ref = np.array([[0.0, 0.0], [0.5, 0.2], [1.2, 0.4], [0.6, 0.9]])
    assert lag_at_matched_progress(ref, np.array([0.85, 0.1]), directions=2) == pytest.approx(0.3 - 0.1)


def test_bad_input_is_refused_with_the_argument_named():
    ref = flow_filter(np.array([1.0, 0.5, 0.1]), np.linspace(0, 1, 11)).a
    with pytest.raises(ValueError, match="never reaches"):
        lag_at_matched_progress(ref, np.array([0.99, 0.5, 0.1]), directions=2)
    with pytest.raises(ValueError, match="starts beyond"):
        lag_at_matched_progress(ref[3:], np.array([0.01, 0.0, 0.0]), directions=2)
    with pytest.raises(ValueError, match="directions"):
        lag_at_matched_progress(ref, ref[5], directions=1)
    with pytest.raises(ValueError, match="directions"):
        lag_at_matched_progress(ref, ref[5], directions=4)
    with pytest.raises(ValueError, match="student has 2"):
        lag_at_matched_progress(ref, ref[5, :2], directions=2)
    with pytest.raises(ValueError, match="reference"):
        lag_at_matched_progress(ref[:, :, None], ref[5], directions=2)
    with pytest.raises(ValueError, match="student"):
        lag_at_matched_progress(ref, np.r_[np.nan, ref[5, 1:]], directions=2)
