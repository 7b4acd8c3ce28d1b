"""Data: synthetic kernels with chosen spectra, and classification sets with honest label noise.

Kernels are built as ``K = Q diag(λ) Qᵀ`` with a seeded Haar-random orthogonal ``Q``, so the
eigenbasis and the spectrum are known exactly; labels are planted on chosen eigendirections.

Classification sets (:func:`gaussian_mixture`, :func:`digits`, :func:`mnist1d`) share one value,
:class:`Classification`, and one label-noise model (docs/theory.md §8): each *training* (and
validation) label is flipped, independently with probability η, to a class drawn uniformly from
the **other** classes,

    P(ỹ = j | y) = (1 − η)·1[j = y] + η/(K − 1)·1[j ≠ y],

so η is the actual corruption rate; the realised rate is returned in ``flip_rate``. Test labels
stay clean. A held-out *noisy* validation split (``validation=m``) is drawn from the training
distribution with the same noise, for choosing a teacher's stopping time the way a practitioner
would (without clean labels).

For the Gaussian mixture the clean-label posterior is known in closed form
(:func:`mixture_posterior`), and with it the distribution of the noisy label
(:func:`noisy_label_distribution`), the target of the clean expected gradient of claim T2.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from kdtheory._checks import as_float_array, positive_scalar

__all__ = [
    "SyntheticKernel",
    "power_law_kernel",
    "one_hot_labels",
    "PlantedLinear",
    "planted_linear",
    "Classification",
    "FlippedLabels",
    "flip_labels",
    "gaussian_mixture",
    "mixture_posterior",
    "noisy_label_distribution",
    "clean_gradient_target",
    "digits",
    "mnist1d",
]


class SyntheticKernel(NamedTuple):
    """A kernel with a known eigendecomposition ``K = basis diag(evals) basisᵀ``."""

    K: np.ndarray
    evals: np.ndarray
    basis: np.ndarray


def power_law_kernel(n: int, *, exponent: float = 1.5, scale: float = 1.0, seed: int = 0) -> SyntheticKernel:
    r"""PSD kernel with power-law spectrum ``λ_j = scale · j^{−exponent}``, ``j = 1..n``.

    Args:
      n: size.
      exponent: decay exponent ``a > 0``.
      scale: ``λ_1``.
      seed: seed of the random orthogonal eigenbasis.

    Returns:
      :class:`SyntheticKernel` with exactly symmetric ``K``, descending ``evals`` and the basis.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    a = positive_scalar(exponent, "exponent")
    s = positive_scalar(scale, "scale")
    rng = np.random.default_rng(_seed(seed, "seed"))
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    Q = q * np.sign(np.diag(r))
    lam = s * np.arange(1, n + 1, dtype=float) ** -a
    K = (Q * lam) @ Q.T
    return SyntheticKernel(0.5 * (K + K.T), lam, Q)


def one_hot_labels(
    basis: np.ndarray,
    num_classes: int,
    *,
    signal_modes: int = 5,
    noise: float = 0.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""One-hot labels planted on the top eigendirections, with hard (noisy) points.

    Class scores ``S = √n · basis[:, :signal_modes] W + noise · ε`` with Gaussian ``W`` and ``ε``;
    the class is ``argmax`` of the scores. Larger ``noise`` makes more points hard.

    Args:
      basis: eigenvectors as columns, shape ``(n, m)``, descending eigenvalue order.
      num_classes: number of classes ``k ≥ 2``.
      signal_modes: how many top eigendirections carry the signal.
      noise: standard deviation of the score noise.
      seed: random seed.

    Returns:
      ``(Y, classes)``: one-hot matrix ``(n, k)`` and integer classes ``(n,)``.
    """
    n = basis.shape[0]
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    rng = np.random.default_rng(_seed(seed, "seed"))
    W = rng.standard_normal((signal_modes, num_classes))
    scores = np.sqrt(n) * basis[:, :signal_modes] @ W + noise * rng.standard_normal((n, num_classes))
    classes = scores.argmax(axis=1)
    return np.eye(num_classes)[classes], classes


class PlantedLinear(NamedTuple):
    r"""A planted linear regression sample ``y = X θ* + σ ε``, rows of X ~ N(0, diag(cov_evals)).

    Coordinates are those of the population eigenbasis, so the population covariance is
    ``diag(cov_evals)`` and the excess population risk of ``θ`` is
    ``(θ − θ*)ᵀ diag(cov_evals) (θ − θ*)``.
    """

    X: np.ndarray
    y: np.ndarray
    theta_star: np.ndarray
    cov_evals: np.ndarray
    noise: float


def planted_linear(
    n: int,
    d: int,
    *,
    exponent: float = 1.0,
    signal: str | np.ndarray = "decay",
    signal_exponent: float = 0.0,
    noise: float = 0.5,
    seed: int = 0,
) -> PlantedLinear:
    r"""Sample a planted linear regression problem with a power-law population spectrum.

    Args:
      n: sample size.
      d: dimension.
      exponent: population covariance eigenvalues ``j^{−exponent}``.
      signal: ``"decay"`` for ``θ*_j ∝ j^{−signal_exponent}`` (normalized so that
        ``θ*ᵀ Σ θ* = 1``), or explicit coefficients of shape ``(d,)``.
      signal_exponent: decay of θ* for ``"decay"``.
      noise: label noise standard deviation σ.
      seed: random seed.

    Returns:
      :class:`PlantedLinear`.
    """
    if int(n) != n or n < 1 or int(d) != d or d < 1:
        raise ValueError(f"n and d must be positive integers, got {n!r}, {d!r}")
    a = positive_scalar(exponent, "exponent", allow_zero=True)
    sigma = positive_scalar(noise, "noise", allow_zero=True)
    rng = np.random.default_rng(_seed(seed, "seed"))
    cov = np.arange(1, d + 1, dtype=float) ** -a
    if isinstance(signal, str):
        if signal != "decay":
            raise ValueError(f"unknown signal {signal!r}; expected 'decay' or an array")
        theta = np.arange(1, d + 1, dtype=float) ** -float(signal_exponent)
        theta = theta / np.sqrt(np.sum(cov * theta**2))
    else:
        theta = np.asarray(signal, dtype=float)
        if theta.shape != (d,):
            raise ValueError(f"signal must have shape ({d},), got {theta.shape}")
    X = rng.standard_normal((n, d)) * np.sqrt(cov)
    y = X @ theta + sigma * rng.standard_normal(n)
    return PlantedLinear(X, y, theta, cov, sigma)


class Classification(NamedTuple):
    r"""A classification split: inputs and one-hot labels for training, test and validation points.

    Attributes:
      X: training inputs ``(n, d)``.
      Y: one-hot training labels ``(n, K)`` — the *noisy* labels when ``label_noise > 0``.
      X_test: test inputs ``(n_test, d)``.
      Y_test: one-hot clean test labels ``(n_test, K)``.
      name: a caption naming the data set, its size and the noise rate.
      X_val: held-out validation inputs ``(m, d)`` (``m = 0`` when none was asked for).
      Y_val: one-hot *noisy* validation labels ``(m, K)`` (same noise model as training).
      clean: clean training classes ``(n,)`` (integers), before the noise.
      clean_val: clean validation classes ``(m,)``.
      label_noise: the nominal corruption rate η.
      flip_rate: the realised corruption rate on the training labels, ``mean(Y.argmax(1) != clean)``.
      means: class means ``(K, d)`` of a Gaussian mixture (``None`` for real data sets).
      sigma: the mixture's per-coordinate standard deviation σ (``None`` for real data sets).
    """

    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    name: str
    X_val: np.ndarray | None = None
    Y_val: np.ndarray | None = None
    clean: np.ndarray | None = None
    clean_val: np.ndarray | None = None
    label_noise: float = 0.0
    flip_rate: float = 0.0
    means: np.ndarray | None = None
    sigma: float | None = None

    @property
    def num_classes(self) -> int:
        """The number of classes ``K``."""
        return int(self.Y.shape[1])


class FlippedLabels(NamedTuple):
    """Labels after flip-to-another-class noise.

    Attributes:
      labels: the noisy classes ``(n,)`` (integers).
      flipped: boolean mask ``(n,)`` of the corrupted points (``labels != clean``).
      rate: the realised corruption rate ``flipped.mean()`` (0 for ``n = 0``).
    """

    labels: np.ndarray
    flipped: np.ndarray
    rate: float


def _noise_rate(label_noise: float) -> float:
    eta = positive_scalar(label_noise, "label_noise", allow_zero=True)
    if eta >= 1:
        raise ValueError(f"label_noise must lie in [0, 1), got {label_noise!r}")
    return eta


def _seed(x: int, name: str, *, maximum: int | None = None) -> int:
    """A seed: an integer >= 0 (and <= ``maximum``), or raise naming ``name``."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 0 or (maximum is not None and x > maximum):
        bound = f"in [0, {maximum}]" if maximum is not None else ">= 0"
        raise ValueError(f"{name} must be an integer {bound}, got {x!r}")
    return int(x)


def _count(x: int, name: str, *, minimum: int = 0) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {x!r}")
    return int(x)


def flip_labels(
    labels: np.ndarray, num_classes: int, *, label_noise: float, rng: np.random.Generator | int = 0
) -> FlippedLabels:
    r"""Corrupt class labels: each flips with probability η to a uniformly drawn *other* class.

    Implements P(ỹ = j | y) = (1 − η)·1[j = y] + η/(K − 1)·1[j ≠ y] (docs/theory.md §8) by drawing a
    Bernoulli(η) flip per point and, for flipped points, ``ỹ = (y + u) mod K`` with ``u`` uniform on
    ``{1, …, K − 1}``; a flipped label never equals the clean one, so η is the corruption rate.

    Args:
      labels: clean classes, integers in ``[0, num_classes)``, shape ``(n,)``.
      num_classes: ``K ≥ 2``.
      label_noise: the corruption rate η in ``[0, 1)``.
      rng: a numpy ``Generator`` (advanced in place) or an integer seed.

    Returns:
      :class:`FlippedLabels` with the noisy labels, the flip mask and the realised rate.

    Raises:
      ValueError: ``num_classes < 2``, labels outside ``[0, num_classes)`` or not whole numbers,
        ``label_noise`` outside ``[0, 1)``.

    Examples:
      >>> f = flip_labels(np.zeros(10_000, dtype=int), 3, label_noise=0.2, rng=0)
      >>> bool(np.all(f.labels[f.flipped] != 0)), abs(f.rate - 0.2) < 0.02
      (True, True)
    """
    K = _count(num_classes, "num_classes", minimum=2)
    eta = _noise_rate(label_noise)
    y = np.asarray(labels)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or (y.size == 0)):
        raise ValueError(f"labels must be a 1-D array of integer classes, got dtype {y.dtype}, shape {y.shape}")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= K):
        raise ValueError(f"labels must lie in [0, {K}), got range [{y.min()}, {y.max()}]")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(_seed(rng, "rng"))
    flip = gen.random(y.size) < eta
    shift = gen.integers(1, K, y.size)
    noisy = np.where(flip, (y + shift) % K, y)
    return FlippedLabels(noisy, flip, float(flip.mean()) if y.size else 0.0)


def mixture_posterior(X: np.ndarray, means: np.ndarray, *, sigma: float = 1.0) -> np.ndarray:
    r"""Bayes posterior of the clean class under an equal-prior Gaussian mixture ``N(μ_k, σ² I)``.

    p*(k | x) = softmax_k(μ_kᵀx/σ² − ‖μ_k‖²/(2σ²))  (docs/theory.md §8), computed with a stable softmax.
    Its argmax is the Bayes classifier; ``mean_i max_k p*(k|x_i)`` over test points estimates the
    Bayes accuracy.

    Args:
      X: inputs ``(n, d)``.
      means: class means ``(K, d)``.
      sigma: per-coordinate standard deviation σ > 0.

    Returns:
      Probabilities ``(n, K)``, rows summing to one.

    Raises:
      ValueError: non-finite inputs, mismatched dimensions, ``sigma <= 0``.
    """
    from scipy.special import softmax

    Xn = as_float_array(X, "X", ndim=(2,))
    M = as_float_array(means, "means", ndim=(2,))
    if M.shape[1] != Xn.shape[1]:
        raise ValueError(f"means has dimension {M.shape[1]} but X has {Xn.shape[1]}")
    s2 = positive_scalar(sigma, "sigma") ** 2
    posterior: np.ndarray = softmax(Xn @ M.T / s2 - 0.5 * np.sum(M * M, axis=1) / s2, axis=1)
    return posterior


def noisy_label_distribution(p: np.ndarray, *, label_noise: float) -> np.ndarray:
    r"""Distribution of the noisy label given the clean-label distribution ``p`` (docs/theory.md §8).

    q̃_j = (1 − η) p_j + η/(K − 1) (1 − p_j). With ``p`` the Bayes posterior p*(·|x) this is the
    noisy-label posterior P(ỹ = j | x); with ``p`` the one-hot clean label (data sets with known
    clean labels) it is (1 − η) e_y + η/(K − 1)(1 − e_y). The expected one-hot gradient over the
    label noise, ḡ = (1/n) Σ J_iᵀ(p_i − q̃_i), is the "clean" gradient of claim T2.

    Args:
      p: clean-label probabilities ``(n, K)`` (rows sum to one; one-hot allowed), ``K ≥ 2``.
      label_noise: the corruption rate η in ``[0, 1)``.

    Returns:
      Probabilities ``(n, K)``, rows summing to one.

    Raises:
      ValueError: ``p`` not a 2-D array of probabilities with ``K ≥ 2``, η outside ``[0, 1)``.
    """
    P = as_float_array(p, "p", ndim=(2,))
    K = P.shape[1]
    if K < 2:
        raise ValueError(f"p must have at least two classes (columns), got {K}")
    if (P < 0).any() or (P > 1).any() or not np.allclose(P.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("p must hold probabilities: entries in [0, 1], rows summing to one")
    eta = _noise_rate(label_noise)
    noisy: np.ndarray = (1.0 - eta) * P + eta / (K - 1) * (1.0 - P)
    return noisy


def clean_gradient_target(data: Classification) -> np.ndarray:
    r"""The expected noisy label q̃_i of each training point: the target of the clean gradient (T2).

    ḡ = (1/n) Σ_i J_iᵀ (p_i − q̃_i) is the one-hot gradient averaged over the label noise
    (docs/theory.md §8). For a Gaussian mixture (``data.means`` set) the clean label is itself random
    given x, and q̃_i = :func:`noisy_label_distribution` of the Bayes posterior
    :func:`mixture_posterior` ``(x_i)``; for a data set with known clean labels it is that of
    the one-hot clean label, (1 − η) e_{y_i} + η/(K − 1)(1 − e_{y_i}).

    Args:
      data: a :class:`Classification` with ``clean`` labels (every loader here sets them).

    Returns:
      ``(n, K)`` probabilities for the training points.

    Raises:
      ValueError: ``data.clean`` is missing.
    """
    if data.means is not None:
        p = mixture_posterior(data.X, data.means, sigma=data.sigma if data.sigma is not None else 1.0)
    elif data.clean is not None:
        p = np.eye(data.num_classes)[data.clean]
    else:
        raise ValueError("data has neither mixture means nor clean labels: the clean target is unknown")
    return noisy_label_distribution(p, label_noise=data.label_noise)


def _split_noise(c: np.ndarray, n: int, K: int, eta: float, rng: np.random.Generator) -> tuple[Any, Any]:
    """Flip the first ``n`` labels (training) and the rest (validation) independently."""
    tr = flip_labels(c[:n], K, label_noise=eta, rng=rng)
    va = flip_labels(c[n:], K, label_noise=eta, rng=rng)
    return tr, va


def _assemble(
    name: str,
    K: int,
    X: np.ndarray,
    c: np.ndarray,
    X_test: np.ndarray,
    c_test: np.ndarray,
    X_val: np.ndarray,
    c_val: np.ndarray,
    eta: float,
    rng: np.random.Generator,
    **extra: Any,
) -> Classification:
    tr, va = _split_noise(np.r_[c, c_val], c.size, K, eta, rng)
    eye = np.eye(K)
    return Classification(
        X=X, Y=eye[tr.labels], X_test=X_test, Y_test=eye[c_test], name=name,
        X_val=X_val, Y_val=eye[va.labels], clean=c, clean_val=c_val,
        label_noise=eta, flip_rate=tr.rate, **extra,
    )  # fmt: skip


def gaussian_mixture(
    n: int,
    n_test: int,
    *,
    d: int = 20,
    classes: int = 3,
    separation: float = 2.0,
    label_noise: float = 0.1,
    validation: int = 0,
    seed: int = 0,
) -> Classification:
    r"""Equal-prior Gaussian classes ``x ~ N(μ_y, I_d)`` with flip-to-another-class label noise.

    Class means are random directions scaled to norm ``separation`` (σ = 1), so neighbouring
    classes overlap and some points are hard. A fraction η = ``label_noise`` of the training and
    validation labels is flipped to another class (module docstring); test labels stay clean. The
    Bayes posterior is :func:`mixture_posterior` ``(X, data.means)``.

    Args:
      n: training points (≥ 1).
      n_test: test points (≥ 0; ≥ 20,000 makes the accuracy standard error ≤ 0.35 points).
      d: input dimension.
      classes: number of classes ``K ≥ 2``.
      separation: norm of each class mean, > 0.
      label_noise: corruption rate η in ``[0, 1)`` of training and validation labels.
      validation: held-out noisy validation points (≥ 0).
      seed: random seed (means, inputs, clean classes and flips).

    Returns:
      :class:`Classification` with ``means`` and ``sigma = 1`` set.

    Raises:
      ValueError: sizes not non-negative integers, ``classes < 2``, η outside ``[0, 1)``.
    """
    n = _count(n, "n", minimum=1)
    n_test = _count(n_test, "n_test")
    m = _count(validation, "validation")
    d = _count(d, "d", minimum=1)
    K = _count(classes, "classes", minimum=2)
    sep = positive_scalar(separation, "separation")
    eta = _noise_rate(label_noise)
    rng = np.random.default_rng(_seed(seed, "seed"))
    means = rng.standard_normal((K, d))
    means *= sep / np.linalg.norm(means, axis=1, keepdims=True)

    def sample(size: int) -> tuple[np.ndarray, np.ndarray]:
        c = rng.integers(0, K, size)
        return means[c] + rng.standard_normal((size, d)), c

    X, c = sample(n)
    Xt, ct = sample(n_test)
    Xv, cv = sample(m)
    name = f"gaussian mixture (d={d}, {K} classes, separation {sep:g}, label noise {eta:g})"
    return _assemble(name, K, X, c, Xt, ct, Xv, cv, eta, rng, means=means, sigma=1.0)


def digits(
    n: int | None = None,
    *,
    test_fraction: float = 0.4,
    label_noise: float = 0.0,
    validation: int = 0,
    seed: int = 0,
) -> Classification:
    r"""The 8×8 digits bundled with scikit-learn (1797 images, 10 classes), split and standardized.

    A random ``test_fraction`` of the images is the (clean) test set; ``validation`` images of the
    rest form a held-out noisy validation split; ``n`` of the remaining images (default: all) are
    the training set. Features are standardized with the training set's mean and standard
    deviation (constant pixels keep unit scale). Training and validation labels are flipped to
    another class with rate η = ``label_noise`` (module docstring).

    Args:
      n: training points (default: every image not in the test or validation split).
      test_fraction: share of the 1797 images held out as the test set, in ``(0, 1)``.
      label_noise: corruption rate η in ``[0, 1)``.
      validation: held-out noisy validation points (≥ 0).
      seed: seed of the split and the flips.

    Returns:
      :class:`Classification` (``means``/``sigma`` are ``None``: the posterior is unknown; use
      :func:`noisy_label_distribution` of the one-hot ``clean`` labels).

    Raises:
      ValueError: sizes that do not fit in 1797 images, ``test_fraction`` outside ``(0, 1)``, η
        outside ``[0, 1)``.
    """
    from sklearn.datasets import load_digits

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    eta = _noise_rate(label_noise)
    m = _count(validation, "validation")
    data = load_digits()
    X = data.data.astype(float)
    total = X.shape[0]
    rng = np.random.default_rng(_seed(seed, "seed"))
    perm = rng.permutation(total)
    n_test = int(round(test_fraction * total))
    available = total - n_test - m
    if available < 1:
        raise ValueError(f"validation={m} leaves no training images (test set {n_test} of {total})")
    n = available if n is None else _count(n, "n", minimum=1)
    if n > available:
        raise ValueError(f"n must be <= {available} (images left after test and validation splits), got {n}")
    te, va, tr = perm[:n_test], perm[n_test : n_test + m], perm[n_test + m : n_test + m + n]
    mu, sd = X[tr].mean(0), X[tr].std(0)
    sd = np.where(sd > 0, sd, 1.0)
    X = (X - mu) / sd
    c = data.target.astype(np.int64)
    name = f"digits (8x8, scikit-learn; n={n}, label noise {eta:g})"
    return _assemble(name, 10, X[tr], c[tr], X[te], c[te], X[va], c[va], eta, rng)


@functools.lru_cache(maxsize=8)
def _mnist1d_pool(num_samples: int, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``num_samples`` MNIST-1D signals with the package's defaults (offline).

    ``mnist1d.data.make_dataset`` is the procedural generator (``get_dataset`` is the function
    that downloads a pickle; it is never called). It seeds numpy's and Python's *global* random
    state, which is saved and restored here so that loading data has no side effect.
    """
    import random

    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.train_split = 1.0
    args.seed = data_seed
    args.url = None  # never used by make_dataset; set so nothing could fetch it
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        ds = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = np.asarray(ds["x"], dtype=float)
    y = np.asarray(ds["y"], dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def mnist1d(
    n: int = 4000,
    n_test: int = 1000,
    *,
    label_noise: float = 0.0,
    validation: int = 0,
    seed: int = 0,
    data_seed: int | None = None,
) -> Classification:
    r"""MNIST-1D (Greydanus 2020): 40-sample 1-D signals of 10 digit templates, generated offline.

    The package's procedural generator (``mnist1d.data.make_dataset`` with
    ``get_dataset_args()`` defaults: template length 12, padding 36–60, max translation 48,
    correlated noise 0.25, i.i.d. noise 0.02, shear 0.75, standardized by the package) produces a
    pool of ``n + validation + n_test`` signals (rounded up to a multiple of 10, equal classes),
    seeded by ``data_seed``; it never downloads. The pool is split at random by ``seed`` into
    training, validation and test points, and training/validation labels are flipped to another
    class with rate η (module docstring). The published split is ``n=4000, n_test=1000``
    (``data_seed=42``, the package's default), where logistic regression reaches ≈32% test
    accuracy and an MLP ≈68% (Greydanus 2020). Generation takes ≈0.25 ms per signal; the pool is
    cached per ``(size, data_seed)``.

    Args:
      n: training points (≥ 1).
      n_test: clean test points (≥ 0).
      label_noise: corruption rate η in ``[0, 1)``.
      validation: held-out noisy validation points (≥ 0).
      seed: seed of the split and the flips.
      data_seed: seed of the generator (default: ``seed``, a fresh sample per seed; fix it to
        share one pool across seeds).

    Returns:
      :class:`Classification` with 40 features and 10 classes.

    Raises:
      ValueError: sizes not non-negative integers, η outside ``[0, 1)``.
    """
    n = _count(n, "n", minimum=1)
    n_test = _count(n_test, "n_test")
    m = _count(validation, "validation")
    eta = _noise_rate(label_noise)
    total = n + m + n_test
    seed = _seed(seed, "seed")
    pool_seed = seed if data_seed is None else _seed(data_seed, "data_seed", maximum=2**32 - 1)
    if pool_seed > 2**32 - 1:
        raise ValueError(f"seed must be <= {2**32 - 1} when it seeds the generator (data_seed=None), got {seed}")
    x, c = _mnist1d_pool(-(-total // 10) * 10, pool_seed)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(x.shape[0])[:total]
    tr, va, te = perm[:n], perm[n : n + m], perm[n + m :]
    name = f"MNIST-1D (n={n}, label noise {eta:g})"
    return _assemble(name, 10, x[tr], c[tr], x[te], c[te], x[va], c[va], eta, rng)
