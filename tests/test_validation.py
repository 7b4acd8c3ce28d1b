"""Bad input gets a clear error naming the argument; legitimate edge cases get exact answers."""

import numpy as np
import pytest

from kdtheory.dynamics import TestPoints, apply_filter, train
from kdtheory.eigen import (
    Filter,
    Recipe,
    Spectrum,
    flow_filter,
    gd_filter,
    momentum_filter,
    ridge_filter,
)


def _pair(evals, t, **recipe):
    """``(a, a/λ)`` of a recipe (the former ``filter_pair``)."""
    f = Recipe(**recipe).filter(evals, t)
    return f.a, f.a_over_eval


@pytest.fixture
def spec():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3))
    return Spectrum.from_features(X)


@pytest.fixture
def kspec():
    return Spectrum.from_kernel(np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]))


@pytest.mark.parametrize(
    "K, match",
    [
        (np.array([[1.0, 0.5], [0.0, 1.0]]), "not symmetric"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), "not positive semi-definite"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "K contains NaN"),
        (np.array([[np.inf, 0.0], [0.0, 1.0]]), "K contains inf"),
        (np.ones((2, 3)), "K must be square"),
        (np.ones(3), "K must be 2-D"),
        (np.array([["a", "b"], ["c", "d"]]), "K must hold real numbers"),
    ],
)
def test_bad_kernels(K, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Spectrum.from_kernel(K)


def test_complex_kernel_rejected():
    with pytest.raises(TypeError, match="K must be real"):
        Spectrum.from_kernel(np.eye(2) * (1 + 1j))


def test_bad_features():
    with pytest.raises(ValueError, match="X contains NaN"):
        Spectrum.from_features(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="X must be 2-D"):
        Spectrum.from_features(np.ones(3))
    with pytest.raises(ValueError, match="rank_rtol"):
        Spectrum.from_features(np.ones((2, 2)), rank_rtol=-1.0)


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


def test_learning_rates(kspec):
    lam_max = kspec.evals[0]
    with pytest.raises(ValueError, match=r"learning_rate=.* is beyond stability.*allow_unstable=True"):
        train(kspec, np.ones(3), 10, recipe=Recipe("gd", learning_rate=2.0 / lam_max))
    with pytest.raises(ValueError, match="beyond stability"):
        momentum_filter(kspec.evals, 3, learning_rate=2 * 1.5 / lam_max, momentum=0.5)
    # explicitly allowed: diverging modes at finite steps, computed exactly
    a = gd_filter(kspec.evals, 3, learning_rate=2.5 / lam_max, allow_unstable=True).a
    assert a[0] == pytest.approx(1 - (1 - 2.5) ** 3)
    with pytest.raises(ValueError, match="t = inf has no limit"):
        gd_filter(kspec.evals, np.inf, learning_rate=2.5 / lam_max, allow_unstable=True)
    with pytest.raises(ValueError, match="learning_rate must be finite and > 0"):
        gd_filter(kspec.evals, 3, learning_rate=0.0)
    with pytest.raises(ValueError, match="learning_rate must be finite and > 0"):
        gd_filter(kspec.evals, 3, learning_rate=np.nan)
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\)"):
        momentum_filter(kspec.evals, 3, learning_rate=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="only used with method='momentum'"):
        _pair(kspec.evals, 3, method="gd", learning_rate=0.1, momentum=0.5)
    # the "mean" loss divides eigenvalues by n, so the stable range grows by n
    train(kspec, np.ones(3), 5, recipe=Recipe("gd", learning_rate=1.9 * 3 / lam_max, normalization="mean"))


def test_unknown_options(kspec):
    with pytest.raises(ValueError, match="unknown method 'adam'"):
        train(kspec, np.ones(3), 1.0, recipe=Recipe("adam"))
    with pytest.raises(ValueError, match="unknown normalization 'mse'"):
        train(kspec, np.ones(3), 1.0, recipe=Recipe(normalization="mse"))
    with pytest.raises(TypeError, match="spectrum must be a kdtheory.eigen.Spectrum"):
        train(np.eye(3), np.ones(3), 1.0)
    with pytest.raises(TypeError, match="momentum must be a real number"):
        momentum_filter([1.0], 1, learning_rate=0.1, momentum="0.5")


def test_bad_eigenvalues():
    with pytest.raises(ValueError, match="evals must be >= 0"):
        flow_filter([1.0, -0.5], 1.0)
    with pytest.raises(ValueError, match="ridge must be >= 0"):
        ridge_filter([1.0], -1.0)
    with pytest.raises(ValueError, match="ridge must be finite"):
        ridge_filter([1.0], np.inf)


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


# ---------------------------------------------------------------------- issue 11, rows 3, 4 and 14
def test_huge_kernels_and_features_keep_their_spectrum_or_refuse():
    # row 3: these returned rank 0 and all-zero eigenvalues (overflow inside LAPACK)
    with pytest.raises(ValueError, match="largest eigenvalue of K is about 1e308.6, beyond the float64 range"):
        Spectrum.from_kernel(1e308 * np.ones((4, 4)))
    with pytest.raises(ValueError, match="largest eigenvalue of X is about 1e320.0, beyond the float64 range"):
        Spectrum.from_features(1e160 * np.eye(2))
    # representable spectra of huge or tiny matrices are exact (rescaled by a power of two)
    np.testing.assert_allclose(Spectrum.from_kernel(1e307 * np.ones((4, 4))).evals, [4e307, 0, 0, 0], rtol=1e-15)
    np.testing.assert_allclose(Spectrum.from_features(1e150 * np.eye(2)).evals, [1e300, 1e300], rtol=1e-15)
    np.testing.assert_allclose(Spectrum.from_kernel(1e-300 * np.diag([2.0, 1.0])).evals, [2e-300, 1e-300], rtol=1e-15)


def test_low_precision_kernels_are_judged_at_their_precision():
    # row 4: float16 tolerances (1e4 eps16 ~ 10) accepted these and returned [6, 0] and [3, 0]
    with pytest.raises(ValueError, match="K is not symmetric.*float16"):
        Spectrum.from_kernel(np.array([[1, 0], [5, 1]], dtype=np.float16))
    with pytest.raises(ValueError, match="K is not positive semi-definite.*float16"):
        Spectrum.from_kernel(np.array([[1, 2], [2, 1]], dtype=np.float16))
    # a valid float16 kernel with float16 round-off is accepted and decomposed in float64
    K = np.array([[1.0, 0.3333], [0.3333, 1.0]], dtype=np.float16)
    spec = Spectrum.from_kernel(K)
    assert spec.evals.dtype == np.float64
    np.testing.assert_allclose(spec.evals, np.linalg.eigvalsh(K.astype(np.float64))[::-1], rtol=1e-15)


@pytest.mark.parametrize("name", ["rank_rtol", "sym_rtol", "psd_rtol"])
@pytest.mark.parametrize("value", [2.0, 1.0, -0.5])
def test_out_of_range_tolerances_are_refused(name, value):
    # row 14: rank_rtol=2 was accepted (and zeroed every eigenvalue)
    with pytest.raises(ValueError, match=name):
        Spectrum.from_kernel(np.eye(2), **{name: value})
    if name == "rank_rtol":
        with pytest.raises(ValueError, match=name):
            Spectrum.from_features(np.eye(2), rank_rtol=value)


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
