"""kdtheory.spectrum: the eigendecomposition of a kernel or design matrix, its precision judgement
(symmetry, positive semi-definiteness and rank at the input's precision) and its refusals."""

import numpy as np
import pytest
from bad_input import RAGGED, one_line
from hypothesis import given
from hypothesis import strategies as st

from kdtheory.spectrum import Spectrum
from kdtheory.testing import assert_close, psd_matrices, random_orthogonal


# ---------------------------------------------------------------------- decomposition
def test_from_kernel_descending_and_reconstructs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 3))
    spec = Spectrum.from_kernel(X @ X.T)
    assert np.all(np.diff(spec.evals) <= 0)
    assert spec.rank == 3
    assert np.count_nonzero(spec.evals == 0.0) == 5  # exact zeros below the rank tolerance
    assert_close(spec.kernel(), X @ X.T, rtol=1e-13)
    assert spec.V is None and not spec.is_features


def test_from_features_matches_kernel_spectrum():
    rng = np.random.default_rng(1)
    for shape in [(9, 4), (4, 9), (5, 5)]:
        X = rng.standard_normal(shape)
        sf = Spectrum.from_features(X)
        sk = Spectrum.from_kernel(X @ X.T)
        m = min(shape)
        assert sf.U.shape == (shape[0], m) and sf.V.shape == (shape[1], m)
        assert_close(sf.evals, sk.evals[:m], rtol=1e-12)
        assert_close((sf.U * sf.singular_values) @ sf.V.T, X, rtol=1e-13)


def test_projection_roundtrip_and_complement():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((7, 3))
    y = rng.standard_normal((7, 2))
    sf = Spectrum.from_features(X)
    z = sf.project(y)
    assert_close(sf.reconstruct(z) + sf.complement(y), y, rtol=1e-14)
    assert_close(sf.U.T @ sf.complement(y), np.zeros((3, 2)), atol=1e-12)
    sk = Spectrum.from_kernel(X @ X.T)
    assert_close(sk.reconstruct(sk.project(y)), y, rtol=1e-13)
    assert np.all(sk.complement(y) == 0)


def test_roundoff_negative_eigenvalues_clipped_and_float32_tolerance():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 5)).astype(np.float32)
    K32 = X @ X.T  # float32 round-off: asymmetry and negative eigenvalues ~1e-6 relative
    spec = Spectrum.from_kernel(K32)
    assert spec.evals.min() >= 0
    assert spec.rank == 5


@given(psd_matrices(max_size=10))
def test_generated_kernels_accepted_and_rebuilt(K):
    spec = Spectrum.from_kernel(K)
    assert np.all(spec.evals >= 0) and np.all(np.diff(spec.evals) <= 0)
    assert_close(spec.kernel(), K, rtol=1e-12, atol=1e-300)
    assert_close(spec.U.T @ spec.U, np.eye(K.shape[0]), rtol=1e-12)


@given(psd_matrices(max_size=8), st.integers(0, 1000))
def test_spectrum_invariant_under_rotation(K, seed):
    Q = random_orthogonal(K.shape[0], seed)
    a = Spectrum.from_kernel(K).evals
    b = Spectrum.from_kernel(Q @ K @ Q.T).evals
    assert_close(b, a, rtol=1e-11, atol=1e-300)


# ---------------------------------------------------------------------- bad kernels and features
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


# ---------------------------------------------------------------------- bad input, named


SPEC = Spectrum.from_kernel(np.array([[2.0, 1.0], [1.0, 2.0]]))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        # issue 19 row 11: a ragged nested list named K, not numpy's "inhomogeneous shape"
        (lambda: Spectrum.from_kernel(RAGGED), ValueError, r"^K must be a rectangular array"),
        (lambda: Spectrum.from_kernel(np.ones((2, 2, 2))), ValueError, r"^K must be 2-D, got shape \(2, 2, 2\)"),
        (lambda: Spectrum.from_kernel([[1.0, "a"], ["a", 1.0]]), TypeError, r"^K must hold real numbers"),
        (lambda: Spectrum.from_features(RAGGED), ValueError, r"^X must be a rectangular array"),
        (lambda: Spectrum.from_features(np.ones((2, 2, 1))), ValueError, r"^X must be 2-D"),
        (lambda: SPEC.project(RAGGED), ValueError, r"^y must be a rectangular array"),
        (lambda: SPEC.project(np.ones((2, 1, 1))), ValueError, r"^y must be 1-D or 2-D"),
        (lambda: SPEC.project(RAGGED, name="targets"), ValueError, r"^targets must be a rectangular array"),
        (lambda: SPEC.reconstruct(RAGGED), ValueError, r"^z must be a rectangular array"),
        (lambda: SPEC.reconstruct(np.ones(3)), ValueError, r"^z has 3 rows but the spectrum has 2 modes"),
        (lambda: SPEC.complement(RAGGED), ValueError, r"^y must be a rectangular array"),
        (lambda: SPEC.check_labels(np.ones(3), name="init"), ValueError, r"^init has 3 rows but the spectrum has n=2"),
    ],
)
def test_bad_input_names_the_argument_in_one_line(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    one_line(info)
