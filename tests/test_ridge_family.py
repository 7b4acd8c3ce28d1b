"""The ridge self-distillation family and the planted-model risk, against explicit matrix computations."""

import numpy as np
import pytest
from bad_input import KERNEL3, RAGGED, one_line
from hypothesis import given
from hypothesis import strategies as st

from kdtheory import ridge_family
from kdtheory.distill import Recipe, rounds_filter
from kdtheory.dynamics import TestPoints
from kdtheory.eigen import Filter, Spectrum, ridge_filter
from kdtheory.ridge_family import (
    borup_filters,
    borup_limit,
    das_sanghavi,
    mobahi_rounds,
    pareek_filter,
    pareek_polynomial,
    pareek_weights,
)
from kdtheory.testing import assert_close, psd_matrices, spectra


def _borup_closed_sum(lam, c, alpha, rounds):
    """Borup & Andersen's closed sum ``α A (1 − x^{τ−1})/(1 − x) + x^{τ−1} A``, ``x = (1 − α) A`` (oracle)."""
    A = lam / (lam + c)
    x = (1 - alpha) * A
    tau = np.arange(1, rounds + 1, dtype=float)[:, None]
    xp = x[None, :] ** (tau - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        geom = np.where(x < 1, (1 - xp) / np.where(x < 1, 1 - x, 1.0), tau - 1)  # Σ_{j<τ−1} x^j
    return alpha * A * geom + xp * A


def _kernel(seed=0, n=12):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n))
    return X @ X.T / n + 0.05 * np.eye(n), rng.standard_normal(n)


def test_borup_matches_matrix_recursion():
    K, y = _kernel(0)
    n = K.shape[0]
    c, alpha = 0.3, 0.4
    H = K @ np.linalg.inv(K + c * np.eye(n))
    f = H @ y
    preds = [f]
    for _ in range(5):
        f = H @ (alpha * y + (1 - alpha) * f)
        preds.append(f)
    spec = Spectrum.from_kernel(K)
    B = borup_filters(spec.evals, ridge=c, truth_weight=alpha, rounds=6).a
    for tau in range(6):
        assert_close(spec.U @ (B[tau] * spec.project(y)), preds[tau], rtol=1e-10)


@given(spectra(max_size=10), st.floats(0.01, 10.0), st.floats(0.05, 1.0), st.integers(1, 30))
def test_borup_closed_sum_equals_composed_filter_and_tends_to_ridge(lam, c, alpha, tau):
    # the paper's closed sum (oracle) against the filter composed by Filter.train_from
    B = borup_filters(lam, ridge=c, truth_weight=alpha, rounds=tau)
    assert_close(B.a, _borup_closed_sum(lam, c, alpha, tau), rtol=1e-12, atol=1e-300)
    # B/λ: the a/λ counterpart equals B/λ where λ > 0 and ((1 − α) B_prev + α)/c at λ = 0
    prev = np.vstack([np.ones((1, lam.size)), (1 - alpha) * B.a[:-1] + alpha])
    assert_close(B.a_over_eval, prev / (lam + c), rtol=1e-14)
    far = borup_filters(lam, ridge=c, truth_weight=alpha, rounds=4000)[-1]
    # geometric convergence with ratio (1 − α) max A < 1 − α
    lim = borup_limit(lam, ridge=c, truth_weight=alpha)
    assert_close(far.a, lim.a, rtol=1e-9, atol=1e-12)
    assert_close(far.a_over_eval, lim.a_over_eval, rtol=1e-9, atol=1e-12)
    assert_close(lim.a, lam / (lam + c / alpha), rtol=1e-14)
    assert_close(lim.a_over_eval, 1 / (lam + c / alpha), rtol=1e-14)
    # the limit is the fixed point of one round
    A = ridge_filter(lam, c)
    fixed = A.train_from(Filter.zero(lam.size), (1 - alpha) * lim + alpha * Filter.labels(lam))
    assert_close(fixed.a, lim.a, rtol=1e-12, atol=1e-300)
    assert_close(fixed.a_over_eval, lim.a_over_eval, rtol=1e-12)


@given(psd_matrices(min_size=1, max_size=8), st.floats(0.01, 10.0), st.floats(0.0, 1.0), st.integers(1, 12))
def test_borup_is_rounds_with_a_ridge_recipe(K, c, alpha, tau):
    # issue 9: borup_filters equalled rounds with a ridge recipe to 2e-16 and nothing tied them
    spec = Spectrum.from_kernel(K)
    R = rounds_filter(spec, [c] * tau, recipe=Recipe("ridge"), truth_weight=alpha)
    B = borup_filters(spec.evals, ridge=c, truth_weight=alpha, rounds=tau)
    assert_close(R.a, B.a, rtol=1e-12, atol=1e-300)
    assert_close(R.a_over_eval, B.a_over_eval, rtol=1e-12, atol=1e-300)


def test_borup_alpha_zero_collapses():
    lam = np.array([2.0, 1.0, 0.1])
    assert np.all(borup_filters(lam, ridge=1.0, truth_weight=0.0, rounds=200).a[-1] < 1e-20)
    lim = borup_limit(lam, ridge=1.0, truth_weight=0.0)
    assert np.all(lim.a == 0) and np.all(lim.a_over_eval == 0)


@given(
    psd_matrices(min_size=2, max_size=10, zeros=False, kinds=("power_law", "uniform", "gapped")),
    st.floats(0.01, 0.9),
    st.integers(0, 100),
)
def test_mobahi_constraint_monotone_c_and_collapse(K, frac, seed):
    n = K.shape[0]
    y = np.random.default_rng(seed).standard_normal(n)
    eps = frac * float(y @ y) / n  # a constraint the labels themselves violate
    spec = Spectrum.from_kernel(K, rank_rtol=0.0)
    res = mobahi_rounds(spec, y, epsilon=eps, rounds=8)
    c = res.ridge[np.isfinite(res.ridge)]
    assert np.all(np.diff(c) > 0), "regularization is amplified round after round"
    targets = [y] + list(res.predictions[:-1])
    for t, (target, pred) in enumerate(zip(targets, res.predictions, strict=True)):
        collapsed = res.collapsed_at is not None and t >= res.collapsed_at
        assert collapsed == (
            float(target @ target) <= n * eps or (res.collapsed_at is not None and t > res.collapsed_at)
        )
        if collapsed:
            assert np.all(pred == 0)
        else:  # explicit solve: f = K (K + n c I)⁻¹ y_t meets the constraint with equality
            f = K @ np.linalg.solve(K + n * res.ridge[t] * np.eye(n), target)
            assert_close(pred, f, rtol=1e-8, atol=1e-12)
            assert np.mean((f - target) ** 2) == pytest.approx(eps, rel=1e-8)


def test_mobahi_infeasible_rank_deficient():
    spec = Spectrum.from_kernel(np.diag([1.0, 0.0]))
    with pytest.raises(ValueError, match="constraint cannot be met"):
        mobahi_rounds(spec, np.array([0.0, 1.0]), epsilon=0.1, rounds=3)


def _ds_risk_explicit(X, theta, sigma2, c, xi):
    """E‖θ_S − θ*‖² from the explicit linear map y ↦ θ_S (no eigendecomposition)."""
    d = X.shape[1]
    R = np.linalg.inv(X.T @ X + c * np.eye(d))
    M = R @ X.T @ (xi * X @ R @ X.T + (1 - xi) * np.eye(X.shape[0]))
    bias = (M @ X - np.eye(d)) @ theta
    return float(bias @ bias + sigma2 * np.sum(M * M))


@pytest.mark.parametrize("sigma2", [0.01, 1.0, 25.0])
def test_das_sanghavi_xi_star_matches_explicit_quadratic(sigma2):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 8)) * np.geomspace(1, 0.05, 8)
    theta = rng.standard_normal(8)
    c = 0.5
    spec = Spectrum.from_features(X)
    ds = das_sanghavi(spec.evals, spec.V.T @ theta, noise_var=sigma2, ridge=c)
    xs = np.array([-1.0, 0.0, 1.0])
    r = np.array([_ds_risk_explicit(X, theta, sigma2, c, x) for x in xs])
    coef = np.polyfit(xs, r, 2)  # exact: the risk is a quadratic in ξ
    assert ds.xi_star == pytest.approx(-coef[1] / (2 * coef[0]), rel=1e-8)
    assert ds.risk(0.3) == pytest.approx(_ds_risk_explicit(X, theta, sigma2, c, 0.3), rel=1e-10)
    assert ds.risk_star <= ds.risk_teacher


def test_das_sanghavi_xi_star_exceeds_one_at_high_noise():
    lam = np.geomspace(1, 1e-2, 10)
    theta = np.ones(10)
    assert das_sanghavi(lam, theta, noise_var=100.0, ridge=0.1).xi_star > 1


def test_pareek_filter_matches_explicit_rounds_and_inverse():
    K, y = _kernel(1, n=6)
    spec = Spectrum.from_kernel(K)
    c, xis = 0.2, [0.5, 1.7, -0.4]
    H = K @ np.linalg.inv(K + c * np.eye(6))
    f = H @ y
    for xi in xis:
        f = H @ (xi * f + (1 - xi) * y)
    F = pareek_filter(spec.evals, ridge=c, teacher_weights=xis)
    assert_close(spec.U @ (F.a * spec.project(y)), f, rtol=1e-10)
    assert pareek_polynomial(xis)(1.0) == pytest.approx(1.0)
    target = pareek_filter(spec.evals[:3], ridge=c, teacher_weights=xis).a
    back = pareek_weights(spec.evals[:3], ridge=c, target=target)
    assert_close(pareek_filter(spec.evals[:3], ridge=c, teacher_weights=back).a, target, rtol=1e-8)
    # any filter on 3 distinct eigenvalues is reachable with 3 steps
    want = np.array([0.9, 0.2, 0.6])
    got = pareek_filter(spec.evals[:3], ridge=c, teacher_weights=pareek_weights(spec.evals[:3], ridge=c, target=want))
    assert_close(got.a, want, rtol=1e-8)


@given(spectra(max_size=10), st.floats(0.01, 10.0), st.lists(st.floats(-2.0, 2.0), max_size=6))
def test_pareek_polynomial_equals_composed_filter(lam, c, xis):
    # the paper's polynomial m p_k(m) (oracle) against the filter composed by Filter.train_from
    F = pareek_filter(lam, ridge=c, teacher_weights=xis)
    m = lam / (lam + c)
    p = pareek_polynomial(xis)
    assert_close(F.a, m * p(m), rtol=1e-12, atol=1e-12)
    assert_close(F.a_over_eval, p(m) / (lam + c), rtol=1e-12, atol=1e-12)
    # and it is rounds with a ridge recipe and per-round teacher weights
    spec = Spectrum(evals=lam, U=np.eye(lam.size), V=None, rank_tol=0.0)
    R = rounds_filter(spec, [c] * (len(xis) + 1), recipe=Recipe("ridge"), teacher_weight=[1.0, *xis])[-1]
    assert_close(R.a, F.a, rtol=1e-12, atol=1e-300)
    assert_close(R.a_over_eval, F.a_over_eval, rtol=1e-12, atol=1e-300)


def test_over_eval_filters_give_explicit_test_predictions():
    from kdtheory.dynamics import apply_filter

    rng = np.random.default_rng(3)
    X, Xt = rng.standard_normal((10, 4)), rng.standard_normal((3, 4))
    K, Kx = X @ X.T + 0.1 * np.eye(10), Xt @ X.T
    y = rng.standard_normal(10)
    spec = Spectrum.from_kernel(K)
    c, alpha = 0.5, 0.3
    tr = apply_filter(
        spec, y, borup_filters(spec.evals, ridge=c, truth_weight=alpha, rounds=4), test=TestPoints(kernel=Kx)
    )
    target = y
    for tau in range(4):
        coef = np.linalg.solve(K + c * np.eye(10), target)
        assert_close(tr.train[tau], K @ coef, rtol=1e-10)
        assert_close(tr.test[tau], Kx @ coef, rtol=1e-10)
        target = alpha * y + (1 - alpha) * K @ coef
    res = mobahi_rounds(spec, y, epsilon=0.2 * float(y @ y) / 10, rounds=3)
    tr = apply_filter(spec, y, res.filters, test=TestPoints(kernel=Kx))
    target = y
    for t in range(3):
        if not np.isfinite(res.ridge[t]):
            assert np.all(tr.test[t] == 0)
            continue
        coef = np.linalg.solve(K + 10 * res.ridge[t] * np.eye(10), target)
        assert_close(tr.test[t], Kx @ coef, rtol=1e-9)
        target = K @ coef


# ---------------------------------------------------------------------- bad input, named


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: ridge_family.borup_filters(RAGGED, ridge=1.0, truth_weight=0.5, rounds=2), ValueError, r"^evals"),
        (lambda: ridge_family.mobahi_rounds(KERNEL3, RAGGED, epsilon=0.1, rounds=2), ValueError, r"^y must be a rect"),
        (lambda: ridge_family.das_sanghavi([1.0, 0.5], RAGGED, noise_var=0.1, ridge=1.0), ValueError, r"^theta_star"),
        (lambda: ridge_family.pareek_polynomial(RAGGED), ValueError, r"^teacher_weights must be a rectangular"),
        (lambda: ridge_family.pareek_polynomial(["a"]), TypeError, r"^teacher_weights must be a sequence of real"),
        (lambda: ridge_family.pareek_filter([1.0], ridge=1.0, teacher_weights=[[0.5]]), TypeError, r"^teacher_weig"),
        (lambda: ridge_family.pareek_weights([1.0, 0.5], ridge=1.0, target=RAGGED), ValueError, r"^target must be"),
    ],
)
def test_bad_input_is_named_in_the_modules_built_on_the_core(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    one_line(info)


def test_pareek_weights_as_any_real_sequence_give_the_same_filter():
    ints = ridge_family.pareek_filter([2.0, 0.5], ridge=1.0, teacher_weights=[1, 2])
    floats = ridge_family.pareek_filter([2.0, 0.5], ridge=1.0, teacher_weights=np.array([1.0, 2.0]))
    assert np.array_equal(ints.a, floats.a) and np.array_equal(ints.a_over_eval, floats.a_over_eval)
    assert ridge_family.pareek_polynomial([]) == ridge_family.pareek_polynomial(np.zeros(0))
