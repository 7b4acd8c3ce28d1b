"""kdtheory.testing: the Hypothesis strategies draw what they promise (shapes, spectra, edge values,
the valid domain) and refuse what they do not know; relative_error and assert_close measure
norm-wise and refuse non-finite values and mismatched shapes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kdtheory.filters import max_learning_rate
from kdtheory.testing import (
    edge_spectra,
    momenta,
    near_double_root_rates,
    rate_fractions,
    stable_learning_rates,
    step_counts,
    times,
    tiny_positive,
)

TINY = float(np.finfo(np.float64).smallest_subnormal)


@given(st.data())
def test_label_strategy_shapes(data):
    from kdtheory.testing import labels

    y = data.draw(labels(7))
    assert y.shape[0] == 7 and y.ndim in (1, 2) and np.all(np.isfinite(y))
    Y = data.draw(labels(5, outputs=3, one_hot=True))
    assert Y.shape == (5, 3) and np.all(Y.sum(1) == 1) and set(np.unique(Y)) <= {0.0, 1.0}


def test_label_strategy_names_a_bad_outputs():
    from hypothesis import find

    from kdtheory.testing import labels

    with pytest.raises(ValueError, match="outputs must be None, a positive integer or 'any', got 'bogus'"):
        find(labels(3, outputs="bogus"), lambda y: True)
    assert find(labels(3, outputs=2, one_hot=True), lambda y: True).shape == (3, 2)


def test_edge_strategies_reach_their_edges():
    """The strategies of kdtheory.testing draw the edge values they promise (a search finds each)."""
    from hypothesis import find

    assert 0 < find(momenta(), lambda b: 0 < b <= 1e-300) <= 1e-300
    assert find(momenta(), lambda b: b >= 1 - 1e-8) < 1
    assert find(tiny_positive(), lambda x: x < np.finfo(np.float64).tiny) >= TINY  # subnormal
    lam = find(edge_spectra(), lambda v: ((v > 0) & (v < np.finfo(np.float64).tiny)).any())
    assert (np.diff(lam) <= 0).all()
    assert find(step_counts(), lambda s: 1e11 <= s < np.inf) <= 1e12
    assert find(rate_fractions(), lambda f: f <= 1e-11) >= 1e-12
    assert find(rate_fractions(), lambda f: f >= 1 - 1e-8) < 1
    beta, eta = find(
        momenta().filter(lambda b: b > 0).flatmap(lambda b: near_double_root_rates(1.0, b).map(lambda e: (b, e))),
        lambda be: be[0] > 0.5 and be[1] < 1,
    )
    assert eta == pytest.approx(((1 - beta) / (1 + np.sqrt(beta))) ** 2, rel=1e-6)


@given(momenta(), edge_spectra(), step_counts(), rate_fractions(), st.data())
def test_edge_strategies_stay_in_the_valid_domain(beta, lam, s, frac, data):
    assert 0 <= beta < 1
    assert lam.ndim == 1 and (lam >= 0).all() and lam[0] > 0 and (np.diff(lam) <= 0).all()
    assert s == np.inf or (s >= 0 and s == np.floor(s) and s <= 1e12)
    assert 0 < frac < 1
    if beta > 0:
        eta = data.draw(near_double_root_rates(float(lam[0]), beta))
        assert 0 < eta * lam[0] < 2 * (1 + beta)


def test_assert_close_refuses_an_infinite_reference():
    """An infinite ``expected`` made every bound infinite: ``assert_close(1.0, inf)`` used to pass."""
    from kdtheory.testing import assert_close

    with pytest.raises(AssertionError, match="non-finite"):
        assert_close(1.0, np.inf)


def test_spectra_refuses_unknown_kinds():
    """An unknown kind used to fall through silently to ``ill_conditioned``."""
    from hypothesis import find

    from kdtheory.testing import spectra

    with pytest.raises(ValueError, match="kinds"):
        find(spectra(kinds=("power-law",)), lambda v: True)


# ---------------------------------------------------------------------- spectra, matrices, problems
@given(st.integers(0, 12), st.integers(0, 2**32 - 1))
def test_random_orthogonal_is_orthogonal_and_seeded(n, seed):
    from kdtheory.testing import random_orthogonal

    Q = random_orthogonal(n, seed)
    assert Q.shape == (n, n) and Q.dtype == np.float64
    np.testing.assert_allclose(Q.T @ Q, np.eye(n), atol=1e-14)
    assert np.array_equal(random_orthogonal(n, seed), Q)  # the same seed, the same matrix
    if n > 1:
        assert not np.array_equal(random_orthogonal(n, seed + 1), Q)


@given(st.data(), st.sampled_from(["power_law", "gapped", "repeated", "uniform", "ill_conditioned"]), st.booleans())
def test_spectra_are_descending_nonnegative_and_respect_their_arguments(data, kind, zeros):
    from kdtheory.testing import spectra

    lam = data.draw(spectra(min_size=2, max_size=9, kinds=(kind,), zeros=zeros, scale=(0.5, 4.0)))
    assert 2 <= lam.size <= 9 and lam.dtype == np.float64
    assert (np.diff(lam) <= 0).all() and (lam >= 0).all() and lam[0] > 0
    if not zeros:
        assert (lam > 0).all()
    assert 0.5 * 1e-12 * 0.999 <= lam[0] <= 4.0 * 1.1 * 1.001  # before scaling within (0, 1.1]
    assert data.draw(spectra(size=5, kinds=(kind,))).size == 5


@given(st.data())
def test_psd_matrices_are_symmetric_with_the_drawn_spectrum(data):
    from kdtheory.testing import psd_matrices

    K = data.draw(psd_matrices(max_size=8, zeros=True))
    assert K.ndim == 2 and K.shape[0] == K.shape[1] and 1 <= K.shape[0] <= 8
    assert np.array_equal(K, K.T)  # exactly symmetric
    w = np.linalg.eigvalsh(K)
    assert w.min() >= -1e-12 * max(w.max(), 1e-300)  # PSD up to round-off


@given(st.data(), st.integers(0, 3))
def test_kernel_problems_have_consistent_shapes_and_the_stated_spectrum(data, max_outputs):
    from kdtheory.testing import KernelProblem, kernel_problems

    p = data.draw(kernel_problems(max_size=7, max_outputs=max_outputs))
    assert isinstance(p, KernelProblem)
    n, d = p.X.shape
    m = min(n, d)
    assert p.y.shape[0] == n and (p.y.ndim == 1 or 1 <= p.y.shape[1] <= max_outputs)
    if max_outputs == 0:
        assert p.y.ndim == 1
    assert p.X_test.shape[1] == d and 1 <= p.X_test.shape[0] <= 4
    assert p.K.shape == (n, n) and np.array_equal(p.K, p.K.T) and p.K_test.shape == (p.X_test.shape[0], n)
    np.testing.assert_allclose(p.K, p.X @ p.X.T, rtol=1e-15, atol=1e-300)
    # X X^T has the drawn eigenvalues and n - m further zeros
    w = np.sort(np.linalg.eigvalsh(p.K))[::-1]
    np.testing.assert_allclose(w[:m], p.evals, rtol=1e-9, atol=1e-12 * p.evals[0])
    assert np.abs(w[m:]).max(initial=0.0) <= 1e-12 * p.evals[0]
    assert f"X{p.X.shape}" in repr(p)


@given(times(), times(max_time=10.0, allow_inf=False))
def test_times_are_nonnegative_and_finite_when_asked(t, finite):
    assert t >= 0 and not np.isnan(t)
    assert 0 <= finite <= 50 and np.isfinite(finite)  # whole numbers reach 50 even when max_time is 10


@given(st.floats(-1.0, 1e6), st.booleans(), st.floats(0.0, 0.99), st.data())
def test_stable_learning_rates_lie_inside_the_stability_region(lam_max, monotone, beta, data):
    eta = data.draw(stable_learning_rates(lam_max, monotone=monotone, momentum=beta))
    lam = lam_max if lam_max > 0 else 1.0
    assert eta > 0
    assert eta * lam <= (1.0 if monotone else 2 * (1 + beta)) * (1 + 1e-12)
    if not monotone:
        assert eta < max_learning_rate(np.array([lam]), method="momentum", momentum=beta)


# ---------------------------------------------------------------------- relative_error and assert_close
def test_relative_error_and_assert_close_measure_norm_wise():
    from kdtheory.testing import assert_close, relative_error

    expected = np.array([[3.0, 0.0], [0.0, 4.0]])  # ‖expected‖ = 5
    actual = expected + np.array([[0.0, 0.3], [0.4, 0.0]])  # ‖diff‖ = 0.5
    assert relative_error(actual, expected) == pytest.approx(0.1, rel=1e-15)
    assert relative_error(expected, expected) == 0.0
    assert relative_error([1e-300], [0.0]) > 1e7  # floored denominator: huge, not inf or NaN
    assert np.isnan(relative_error([np.nan], [1.0]))
    with pytest.raises(AssertionError, match="shape mismatch"):
        relative_error(np.zeros(2), np.zeros(3))
    assert_close(actual, expected, rtol=0.1 + 1e-15)
    with pytest.raises(AssertionError, match=r"relative error 1\.000e-01"):
        assert_close(actual, expected, rtol=0.099)
    assert_close(actual, expected, rtol=0.0, atol=0.5 + 1e-15)  # atol in the values' units
    with pytest.raises(AssertionError, match="^kernel: shape mismatch"):
        assert_close(np.zeros(2), np.zeros(3), what="kernel")
    with pytest.raises(AssertionError, match="non-finite"):
        assert_close([np.nan], [1.0])


@pytest.mark.parametrize("scale", [1e-200, 1e-160, 1.0, 1e160, 1e200])
def test_norm_wise_errors_neither_underflow_nor_overflow(scale):
    """Squares of entries below ~1e-154 underflow and above ~1e154 overflow: numpy's norm returned 0
    (two different tiny arrays had relative error 0 and passed ``assert_close`` at ``rtol=0``) or
    ``inf`` (relative error 0 against a huge reference)."""
    from kdtheory.testing import assert_close, relative_error

    expected = scale * np.array([3.0, 0.0, 4.0])
    actual = expected + scale * np.array([0.0, 0.5, 0.0])
    assert relative_error(actual, expected) == pytest.approx(0.1, rel=1e-14)
    assert relative_error(2 * expected, expected) == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(AssertionError, match=r"relative error 1\.000e-01"):
        assert_close(actual, expected, rtol=0.05)
    assert_close(actual, expected, rtol=0.1 * (1 + 1e-12))
    with pytest.raises(AssertionError):
        assert_close(actual, expected, rtol=0.0, atol=0.4 * scale)
