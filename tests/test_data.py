"""Tests of kdtheory.data's classification sets: flip-to-another-class label noise (realised rate
within binomial error, never to the same class, uniform over the others), the mixture's Bayes
posterior against scipy densities and Monte Carlo class frequencies, the noisy-label distribution
by Monte Carlo, the digits / MNIST-1D loaders (sizes, determinism, no download), and bad seeds
refused naming the argument."""

import random

import numpy as np
import pytest
from scipy import stats as sps

from kdtheory import data
from kdtheory import data as D


def _binomial_ok(rate, eta, n, z=4.5):
    return abs(rate - eta) <= z * np.sqrt(eta * (1 - eta) / n) + 1e-12


# ---------------------------------------------------------------- flip_labels


@pytest.mark.parametrize(("K", "eta"), [(2, 0.1), (3, 0.3), (10, 0.45), (10, 0.95)])
def test_flip_rate_is_eta_and_never_the_same_class(K, eta):
    rng = np.random.default_rng(K)
    y = rng.integers(0, K, 100_000)
    f = D.flip_labels(y, K, label_noise=eta, rng=1)
    assert np.array_equal(f.flipped, f.labels != y)  # a flip always changes the class
    assert f.rate == pytest.approx(f.flipped.mean())
    assert _binomial_ok(f.rate, eta, y.size)
    # the new class is uniform over the K - 1 others: (ỹ - y) mod K uniform on {1..K-1}
    shift = (f.labels[f.flipped] - y[f.flipped]) % K
    counts = np.bincount(shift, minlength=K)
    assert counts[0] == 0
    if K > 2:
        assert sps.chisquare(counts[1:]).pvalue > 1e-4


def test_flip_labels_zero_noise_and_empty():
    y = np.array([0, 1, 2, 1])
    f = D.flip_labels(y, 3, label_noise=0.0)
    assert np.array_equal(f.labels, y) and f.rate == 0.0
    e = D.flip_labels(np.array([], dtype=int), 3, label_noise=0.5)
    assert e.labels.size == 0 and e.rate == 0.0


def test_flip_labels_bad_input():
    with pytest.raises(ValueError, match="label_noise"):
        D.flip_labels(np.array([0, 1]), 2, label_noise=1.0)
    with pytest.raises(ValueError, match="label_noise"):
        D.flip_labels(np.array([0, 1]), 2, label_noise=-0.1)
    with pytest.raises(ValueError, match="labels must lie in"):
        D.flip_labels(np.array([0, 3]), 3, label_noise=0.1)
    with pytest.raises(ValueError, match="num_classes"):
        D.flip_labels(np.array([0, 0]), 1, label_noise=0.1)
    with pytest.raises(ValueError, match="integer classes"):
        D.flip_labels(np.array([0.0, 1.0]), 2, label_noise=0.1)


# ---------------------------------------------------------------- Gaussian mixture


def test_mixture_noise_rate_and_clean_test_labels():
    data = D.gaussian_mixture(20_000, 500, classes=4, label_noise=0.3, validation=10_000, seed=2)
    noisy = data.Y.argmax(1)
    assert data.flip_rate == pytest.approx(np.mean(noisy != data.clean))
    assert _binomial_ok(data.flip_rate, 0.3, 20_000)
    assert _binomial_ok(np.mean(data.Y_val.argmax(1) != data.clean_val), 0.3, 10_000)
    assert data.X_val.shape == (10_000, 20) and data.label_noise == 0.3 and data.num_classes == 4
    # test labels are the clean classes: the Bayes classifier's accuracy on them is its accuracy
    post = D.mixture_posterior(data.X_test, data.means)
    acc = np.mean(post.argmax(1) == data.Y_test.argmax(1))
    assert acc > 0.7


def test_mixture_is_deterministic_and_noise_does_not_move_inputs():
    a = D.gaussian_mixture(50, 20, label_noise=0.2, seed=3)
    b = D.gaussian_mixture(50, 20, label_noise=0.2, seed=3)
    c = D.gaussian_mixture(50, 20, label_noise=0.0, seed=3)
    for x, y in zip(a[:4], b[:4], strict=True):
        assert np.array_equal(x, y)
    assert np.array_equal(a.X, c.X) and np.array_equal(a.clean, c.clean) and c.flip_rate == 0.0


def test_mixture_posterior_against_scipy_densities():
    data = D.gaussian_mixture(200, 0, d=5, classes=3, seed=4)
    for sigma in (1.0, 0.7):
        lik = np.stack([sps.multivariate_normal(m, sigma**2 * np.eye(5)).pdf(data.X) for m in data.means], axis=1)
        np.testing.assert_allclose(
            D.mixture_posterior(data.X, data.means, sigma=sigma), lik / lik.sum(1, keepdims=True), rtol=1e-10
        )


def test_mixture_posterior_matches_class_frequencies():
    """Monte Carlo: among sampled points whose posterior of class k falls in a bin, the share of
    class k equals the bin's mean posterior (calibration of the Bayes posterior)."""
    data = D.gaussian_mixture(200_000, 0, d=4, classes=3, separation=2.0, label_noise=0.0, seed=5)
    post = D.mixture_posterior(data.X, data.means)
    for k in range(3):
        pk = post[:, k]
        bins = np.minimum((pk * 10).astype(int), 9)
        for b in range(10):
            sel = bins == b
            if sel.sum() < 2000:
                continue
            freq = np.mean(data.clean[sel] == k)
            se = np.sqrt(freq * (1 - freq) / sel.sum()) + 1e-3
            assert abs(freq - pk[sel].mean()) < 4.5 * se, (k, b, freq, pk[sel].mean())


def test_noisy_label_distribution_matches_noisy_label_frequencies():
    eta = 0.3
    data = D.gaussian_mixture(200_000, 0, d=4, classes=3, label_noise=eta, seed=6)
    qt = D.noisy_label_distribution(D.mixture_posterior(data.X, data.means), label_noise=eta)
    noisy = data.Y.argmax(1)
    for k in range(3):
        bins = np.minimum((qt[:, k] * 10).astype(int), 9)
        for b in range(10):
            sel = bins == b
            if sel.sum() < 2000:
                continue
            freq = np.mean(noisy[sel] == k)
            se = np.sqrt(freq * (1 - freq) / sel.sum()) + 1e-3
            assert abs(freq - qt[sel, k].mean()) < 4.5 * se


def test_noisy_label_distribution_of_one_hot_labels():
    P = np.eye(4)[[0, 3]]
    q = D.noisy_label_distribution(P, label_noise=0.3)
    np.testing.assert_allclose(q[0], [0.7, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(q.sum(1), 1.0)
    np.testing.assert_array_equal(D.noisy_label_distribution(P, label_noise=0.0), P)
    # expected squared distance of a noisy one-hot label from q̃ is 1 - ||q̃||² (THEORY §8)
    expected = sum(q[0, j] * np.sum((np.eye(4)[j] - q[0]) ** 2) for j in range(4))  # explicit expectation
    assert 1 - np.sum(q[0] ** 2) == pytest.approx(expected)
    with pytest.raises(ValueError, match="probabilities"):
        D.noisy_label_distribution(np.array([[0.5, 0.6]]), label_noise=0.1)


def test_clean_gradient_target_for_mixture_and_known_labels():
    mix = D.gaussian_mixture(300, 0, label_noise=0.2, seed=1)
    np.testing.assert_array_equal(
        D.clean_gradient_target(mix),
        D.noisy_label_distribution(D.mixture_posterior(mix.X, mix.means), label_noise=0.2),
    )
    dig = D.digits(100, label_noise=0.3, seed=2)
    q = D.clean_gradient_target(dig)
    np.testing.assert_allclose(q[np.arange(100), dig.clean], 0.7)
    np.testing.assert_allclose(q.sum(1), 1.0)
    with pytest.raises(ValueError, match="clean target is unknown"):
        D.clean_gradient_target(D.Classification(dig.X, dig.Y, dig.X_test, dig.Y_test, "x"))


def test_mixture_bad_input():
    with pytest.raises(ValueError, match="classes"):
        D.gaussian_mixture(10, 10, classes=1)
    with pytest.raises(ValueError, match="label_noise"):
        D.gaussian_mixture(10, 10, label_noise=1.5)
    with pytest.raises(ValueError, match="validation"):
        D.gaussian_mixture(10, 10, validation=-1)
    with pytest.raises(ValueError, match="dimension"):
        D.mixture_posterior(np.zeros((2, 3)), np.zeros((2, 4)))


# ---------------------------------------------------------------- digits


def test_digits_sizes_noise_and_standardization():
    data = D.digits(400, label_noise=0.2, validation=200, seed=1)
    assert data.X.shape == (400, 64) and data.X_val.shape == (200, 64) and data.X_test.shape == (719, 64)
    assert data.flip_rate == pytest.approx(np.mean(data.Y.argmax(1) != data.clean))
    assert np.all(data.Y.argmax(1)[data.Y.argmax(1) != data.clean] != data.clean[data.Y.argmax(1) != data.clean])
    assert _binomial_ok(data.flip_rate, 0.2, 400)
    np.testing.assert_allclose(data.X.mean(0), 0.0, atol=1e-12)
    full = D.digits(seed=1)
    assert full.X.shape == (1078, 64) and full.flip_rate == 0.0
    again = D.digits(400, label_noise=0.2, validation=200, seed=1)
    assert np.array_equal(again.Y, data.Y) and np.array_equal(again.X_test, data.X_test)
    with pytest.raises(ValueError, match="n must be <="):
        D.digits(2000)


# ---------------------------------------------------------------- MNIST-1D


def test_mnist1d_shapes_classes_determinism_and_no_side_effects(monkeypatch, tmp_path):
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError("mnist1d tried to download")

    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.chdir(tmp_path)
    np.random.seed(123)
    random.seed(123)
    before = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    data = D.mnist1d(300, 200, label_noise=0.25, validation=50, seed=3, data_seed=9)
    assert (np.random.random(), random.random()) == before  # global random state untouched
    assert list(tmp_path.iterdir()) == []  # nothing cached on disk
    assert data.X.shape == (300, 40) and data.X_test.shape == (200, 40) and data.X_val.shape == (50, 40)
    assert data.Y.shape == (300, 10) and set(np.unique(data.clean)) <= set(range(10))
    assert len(np.unique(data.Y_test.argmax(1))) == 10
    assert data.flip_rate == pytest.approx(np.mean(data.Y.argmax(1) != data.clean))
    again = D.mnist1d(300, 200, label_noise=0.25, validation=50, seed=3, data_seed=9)
    for x, y in zip(data[:4], again[:4], strict=True):
        assert np.array_equal(x, y)
    other = D.mnist1d(300, 200, label_noise=0.25, validation=50, seed=4, data_seed=9)
    assert not np.array_equal(other.X, data.X)
    # train, validation and test points are distinct signals of one pool
    rows = np.r_[data.X, data.X_val, data.X_test]
    assert np.unique(rows, axis=0).shape[0] == rows.shape[0]


@pytest.mark.slow
def test_mnist1d_default_pool_is_the_published_generator():
    """With the package's seed 42 and 5000 samples our pool is the package's own data set."""
    from mnist1d.data import get_dataset_args, make_dataset

    state = np.random.get_state()
    ref = make_dataset(get_dataset_args())
    np.random.set_state(state)
    data = D.mnist1d(4000, 1000, seed=0, data_seed=42)
    pool = np.r_[ref["x"], ref["x_test"]]
    ours = np.r_[data.X, data.X_test]
    assert {r.tobytes() for r in ours} == {r.tobytes() for r in pool}


def test_mnist1d_bad_input():
    with pytest.raises(ValueError, match="label_noise"):
        D.mnist1d(10, 10, label_noise=1.0)
    with pytest.raises(ValueError, match="n must be"):
        D.mnist1d(0, 10)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: data.power_law_kernel(5, seed=-1), "seed must be an integer >= 0, got -1"),
        (lambda: data.gaussian_mixture(10, 5, seed=-2), "seed must be an integer >= 0, got -2"),
        (lambda: data.planted_linear(10, 5, seed=-3), "seed must be an integer >= 0, got -3"),
        (lambda: data.one_hot_labels(np.eye(4), 2, seed=-1), "seed must be an integer >= 0"),
        (lambda: data.digits(seed=-1), "seed must be an integer >= 0"),
        (lambda: data.mnist1d(10, 10, seed=-4), "seed must be an integer >= 0, got -4"),
        (lambda: data.mnist1d(10, 10, data_seed=-5), "data_seed must be an integer in [0, 4294967295], got -5"),
        (lambda: data.mnist1d(10, 10, seed=2**40), "seed must be <= 4294967295 when it seeds the generator"),
        (lambda: data.mnist1d(10, 10, seed=1.5), "seed must be an integer >= 0, got 1.5"),
        (lambda: data.flip_labels(np.zeros(5, int), 3, label_noise=0.1, rng=-1), "rng must be an integer >= 0"),
    ],
)
def test_negative_seeds_are_refused_naming_the_argument(call, message):
    # old: numpy's "expected non-negative integer", naming nothing
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
