"""kdtheory.noise: gradient-noise statistics in numpy (kdtheory.gradients has its own test file)."""

import subprocess
import sys

import numpy as np
import pytest
from bad_input import RAGGED, one_line
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax

from kdtheory import noise
from kdtheory.noise import (
    bayes_excess_second_moment,
    bayes_monte_carlo,
    gradient_statistics,
    least_squares_noise_floor,
    minibatch_trace,
    two_batch_estimates,
)
from kdtheory.testing import assert_close


def test_statistics_match_numpy():
    rng = np.random.default_rng(1)
    g = rng.standard_normal((30, 7)) + rng.standard_normal(7)
    for ddof in (0, 1):
        s = gradient_statistics(g, ddof=ddof)
        C = np.cov(g.T, ddof=ddof)
        assert s.trace == pytest.approx(np.trace(C), rel=1e-13)
        assert_close(s.diag, np.diag(C), rtol=1e-13)
        assert s.b_simple == pytest.approx(np.trace(C) / (g.mean(0) @ g.mean(0)), rel=1e-13)
        assert_close(s.gsnr, g.mean(0) ** 2 / np.diag(C), rtol=1e-13)
    s0 = gradient_statistics(np.zeros((4, 3)))
    assert s0.b_simple == 0.0 and np.all(s0.gsnr == 0) and np.all(np.isfinite(s0.gsnr))


def test_minibatch_covariance_monte_carlo():
    rng = np.random.default_rng(2)
    g = rng.standard_normal((12, 4)) * np.arange(1, 5) + 1.0
    s = gradient_statistics(g)
    G = g.mean(0)
    for replace in (True, False):
        idx = np.array([rng.choice(12, 5, replace=replace) for _ in range(40_000)])
        means = g[idx].mean(axis=1)
        mc = np.mean(np.sum((means - G) ** 2, axis=1))
        assert mc == pytest.approx(minibatch_trace(s, 5, replacement=replace), rel=0.03)


def test_two_batch_estimators_are_unbiased():
    rng = np.random.default_rng(3)
    g = rng.standard_normal((50, 6)) * 2 + 0.7
    s = gradient_statistics(g)  # biased Σ: E‖g_B‖² = ‖G‖² + tr Σ / B with replacement
    est = np.array([
        two_batch_estimates(g[rng.integers(0, 50, 4)].mean(0), g[rng.integers(0, 50, 32)].mean(0), b_small=4, b_big=32)
        for _ in range(60_000)
    ])  # fmt: skip
    m, se = est.mean(0), est.std(0, ddof=1) / np.sqrt(est.shape[0])
    assert abs(m[0] - s.mean_sq_norm) < 3 * se[0]
    assert abs(m[1] - s.trace) < 3 * se[1]


@pytest.mark.parametrize("k", [2, 3, 10])
@pytest.mark.parametrize("tau", [1.0, 3.0])
def test_bayes_identity_monte_carlo_logit_space(k, tau):
    rng = np.random.default_rng(k)
    z, f = rng.standard_normal((25, k)) * 1.5, rng.standard_normal((25, k))
    est, se, closed = bayes_monte_carlo(z, f, draws=20_000, temperature=tau, seed=k + 1)
    assert abs(est - closed) < 3 * se
    q = softmax(z / tau, axis=1)
    assert closed == pytest.approx(tau**2 * np.sum(1 - np.sum(q * q, 1)) / 25**2, rel=1e-12)


@pytest.mark.parametrize("k", [2, 3, 10])
def test_bayes_identity_monte_carlo_parameter_space(k):
    rng = np.random.default_rng(10 + k)
    J = rng.standard_normal((20, k, 6))
    z, f = rng.standard_normal((20, k)), rng.standard_normal((20, k))
    est, se, closed = bayes_monte_carlo(z, f, J, draws=20_000, seed=k)
    assert abs(est - closed) < 3 * se


@settings(max_examples=40)
@given(st.integers(0, 1000), st.floats(1e-3, 1e3))
def test_noise_invariant_to_permutation_and_b_simple_scale_invariant(seed, scale):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((15, 4)) + rng.standard_normal(4)
    a, b = gradient_statistics(g), gradient_statistics(g[rng.permutation(15)])
    assert a.trace == pytest.approx(b.trace, rel=1e-12) and a.b_simple == pytest.approx(b.b_simple, rel=1e-12)
    c = gradient_statistics(scale * g)  # scaling the loss scales every gradient
    assert c.b_simple == pytest.approx(a.b_simple, rel=1e-10)
    assert c.trace == pytest.approx(scale**2 * a.trace, rel=1e-10)


def test_least_squares_noise_floor():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((60, 4))
    w_teacher = rng.standard_normal(4)
    assert least_squares_noise_floor(X, X @ w_teacher).trace < 1e-25  # teacher targets: no floor
    noisy = X @ w_teacher + 0.5 * rng.standard_normal(60)
    floor = least_squares_noise_floor(X, noisy)
    r = X @ np.linalg.lstsq(X, noisy, rcond=None)[0] - noisy
    assert floor.trace == pytest.approx(np.trace(np.cov((X * r[:, None]).T, bias=True)), rel=1e-12)
    assert floor.trace > 0.1 and floor.mean_sq_norm < 1e-25  # the mean gradient vanishes at the optimum


def test_bad_inputs():
    with pytest.raises(ValueError, match="b_small < b_big"):
        two_batch_estimates(np.ones(3), np.ones(3), b_small=8, b_big=4)
    with pytest.raises(ValueError, match="jacobians must have shape"):
        bayes_excess_second_moment(np.zeros((4, 3)), np.zeros((4, 2, 5)))


def test_named_results():
    rng = np.random.default_rng(12)
    z, f = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    mc = bayes_monte_carlo(z, f, draws=200)
    assert mc.closed_form == bayes_excess_second_moment(z) and mc.standard_error > 0
    est = two_batch_estimates(np.ones(2), np.ones(2), b_small=1, b_big=2)
    assert est.mean_sq_norm == pytest.approx(2.0) and est.trace == pytest.approx(0.0)


def test_noise_module_imports_numpy_only():
    code = "import sys, kdtheory.noise; print('jax' in sys.modules, 'kdtheory.simulate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr


# ---------------------------------------------------------------------- bad input, named


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: noise.gradient_statistics(RAGGED), ValueError, r"^per_example must be a rectangular"),
        (lambda: noise.two_batch_estimates(RAGGED, [1.0, 2.0], b_small=1, b_big=2), ValueError, r"^g_small must be"),
        (lambda: noise.decompose(RAGGED, np.ones((2, 2)), np.ones((2, 2))), ValueError, r"^onehot must be a rect"),
        (lambda: noise.least_squares_noise_floor(RAGGED, [1.0, 2.0]), ValueError, r"^X must be a rectangular"),
    ],
)
def test_bad_input_is_named_in_the_modules_built_on_the_core(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    one_line(info)
