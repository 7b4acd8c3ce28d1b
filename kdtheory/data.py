"""Synthetic data with chosen spectra.

Kernels are built as ``K = Q diag(λ) Qᵀ`` with a seeded Haar-random orthogonal ``Q``, so the
eigenbasis and the spectrum are known exactly; labels are planted on chosen eigendirections.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kdtheory._checks import positive_scalar

__all__ = [
    "SyntheticKernel",
    "power_law_kernel",
    "one_hot_labels",
    "PlantedLinear",
    "planted_linear",
    "Classification",
    "gaussian_mixture",
    "digits",
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
    rng = np.random.default_rng(seed)
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
    rng = np.random.default_rng(seed)
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
    rng = np.random.default_rng(seed)
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
    """A classification split: inputs and one-hot labels for training and test points."""

    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    name: str


def gaussian_mixture(
    n: int,
    n_test: int,
    *,
    d: int = 20,
    classes: int = 3,
    separation: float = 2.0,
    label_noise: float = 0.1,
    seed: int = 0,
) -> Classification:
    r"""Overlapping Gaussian classes with label noise: a task with hard points.

    Class means are ``separation · e_c``-scaled random unit vectors; inputs are
    ``x = μ_c + N(0, I_d)``, so neighbouring classes overlap; a fraction ``label_noise`` of the
    *training* labels is replaced by a uniformly random class (test labels stay clean).
    """
    if classes < 2:
        raise ValueError(f"classes must be >= 2, got {classes}")
    if not 0 <= label_noise < 1:
        raise ValueError(f"label_noise must lie in [0, 1), got {label_noise}")
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, d))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)

    def sample(m):
        c = rng.integers(0, classes, m)
        return means[c] + rng.standard_normal((m, d)), c

    X, c = sample(n)
    Xt, ct = sample(n_test)
    flip = rng.random(n) < label_noise
    c = np.where(flip, rng.integers(0, classes, n), c)
    eye = np.eye(classes)
    return Classification(X, eye[c], Xt, eye[ct], f"gaussian mixture (d={d}, {classes} classes, noise {label_noise:g})")


def digits(*, test_fraction: float = 0.4, seed: int = 0) -> Classification:
    """The 8×8 digits bundled with scikit-learn (1797 images, 10 classes), standardized, split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    X = data.data.astype(float)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(X.shape[0])
    n_test = int(round(test_fraction * X.shape[0]))
    te, tr = perm[:n_test], perm[n_test:]
    mu, sd = X[tr].mean(0), X[tr].std(0)
    sd = np.where(sd > 0, sd, 1.0)
    X = (X - mu) / sd
    Y = np.eye(10)[data.target]
    return Classification(X[tr], Y[tr], X[te], Y[te], "digits (8x8, scikit-learn)")
