r"""Gradient-noise statistics (numpy only): exact statistics, estimators, identities (T2).

The per-example gradients these statistics take are computed in JAX by :mod:`kdtheory.gradients`.
Per-example gradients ``g_i = J_iᵀ ∂ℓ_i/∂f_i`` (``J_i = ∂f(x_i)/∂θ``, ``k × P``) of the
*per-example* loss ``ℓ_i`` (no ``1/n``), so the full-batch gradient is their mean ``G``. For softmax
cross-entropy ``∂ℓ_i/∂f_i = p_i − t_i``; the one-hot and distillation gradients differ by

    ``g_OH − g_KD = (1/n) Σ_i J_iᵀ (q_i − e_{y_i})``                          (docs/theory.md §5)

and if ``y_i ~ Categorical(q_i)`` (a Bayes teacher) ``E[g_OH] = g_KD`` and
``E‖g_OH‖² − ‖g_KD‖² = (1/n²) Σ_i tr(J_iᵀ (diag q_i − q_i q_iᵀ) J_i)``, which in logit space
(``J_i = I``) is ``(1/n²) Σ_i (1 − ‖q_i‖²)``. With temperature τ (and the τ² scaling) ``q`` is
``softmax(z/τ)`` and the identity gains a factor τ².

Statistics of per-example gradients (``Σ`` their covariance): mean ``G``; ``tr Σ`` and
``diag Σ`` (biased ``1/n`` or unbiased ``1/(n − 1)``, stated by ``ddof``); the simple noise scale
``B_simple = tr Σ / ‖G‖²`` (McCandlish et al. 2018); the gradient signal-to-noise ratio per
parameter ``G_j² / Σ_jj`` (Liu et al. 2020); the covariance of a minibatch mean
``Σ/B`` (with replacement) or ``Σ/B · (n − B)/(n − 1)`` (without, ``Σ`` biased).

This module imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, positive_scalar

__all__ = [
    "GradientStats",
    "gradient_statistics",
    "minibatch_trace",
    "TwoBatchEstimates",
    "two_batch_estimates",
    "NoiseDecomposition",
    "decompose",
    "bayes_excess_second_moment",
    "BayesMonteCarlo",
    "bayes_monte_carlo",
    "least_squares_noise_floor",
]


# ---------------------------------------------------------------------- statistics
@dataclass(frozen=True, eq=False)
class GradientStats:
    r"""Exact statistics of ``n`` per-example gradients ``(n, P)``.

    Attributes:
      mean: ``G`` ``(P,)``; mean_sq_norm: ``‖G‖²``.
      trace: ``tr Σ`` with the stated ``ddof``; diag: ``diag Σ`` ``(P,)``.
      b_simple: ``tr Σ / ‖G‖²`` (``inf`` when ``G = 0`` and ``Σ ≠ 0``; 0 when both vanish).
      gsnr: ``G_j² / Σ_jj`` ``(P,)`` (``inf`` where ``Σ_jj = 0 < G_j²``; 0 where both vanish).
      n, ddof: sample size and the covariance normalization (0: ``1/n``, 1: ``1/(n − 1)``).
    """

    mean: np.ndarray
    mean_sq_norm: float
    trace: float
    diag: np.ndarray
    b_simple: float
    gsnr: np.ndarray
    n: int
    ddof: int


def gradient_statistics(per_example: ArrayLike, *, ddof: int = 0) -> GradientStats:
    """:class:`GradientStats` of per-example gradients.

    Args:
      per_example: per-example gradients ``(n, P)``.
      ddof: 0 (biased ``1/n`` covariance) or 1 (unbiased ``1/(n − 1)``).

    Returns:
      :class:`GradientStats`.

    Raises:
      ValueError: ``ddof`` not 0 or 1, too few examples, non-finite gradients.
    """
    g = as_float_array(per_example, "per_example", ndim=(2,))
    n = g.shape[0]
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (1/n) or 1 (1/(n - 1)), got {ddof}")
    if n - ddof < 1:
        raise ValueError(f"need at least {ddof + 1} examples, got {n}")
    G = g.mean(axis=0)
    diag = np.sum((g - G) ** 2, axis=0) / (n - ddof)
    trace = float(diag.sum())
    g2 = float(G @ G)
    b = trace / g2 if g2 > 0 else (float("inf") if trace > 0 else 0.0)
    G2 = G * G
    with np.errstate(divide="ignore", invalid="ignore"):
        gsnr = np.where(diag > 0, G2 / np.where(diag > 0, diag, 1.0), np.where(G2 > 0, np.inf, 0.0))
    return GradientStats(G, g2, trace, diag, b, gsnr, n, ddof)


def minibatch_trace(stats: GradientStats, batch_size: int, *, replacement: bool = True) -> float:
    r"""``tr Cov(g_B)`` of a minibatch mean of size ``B``.

    With replacement ``tr Σ / B``; without, ``tr Σ / B · (n − B)/(n − 1)``; ``Σ`` the biased
    (``1/n``) covariance, converted from ``stats`` whatever its ``ddof``.

    Args:
      stats: the per-example gradient statistics.
      batch_size: ``B``.
      replacement: whether the minibatch is drawn with replacement.

    Returns:
      ``tr Cov(g_B)``.

    Raises:
      ValueError: ``B < 1``, or ``B > n`` without replacement.
    """
    B = int(batch_size)
    n = stats.n
    if not 1 <= B <= (n if not replacement else 10**12):
        raise ValueError(f"batch_size must lie in [1, n={n}] without replacement, got {batch_size}")
    pop = stats.trace * (n - stats.ddof) / n
    return pop / B if replacement else (pop / B * (n - B) / (n - 1) if n > 1 else 0.0)


class TwoBatchEstimates(NamedTuple):
    """Unbiased estimates from two minibatch gradients (:func:`two_batch_estimates`)."""

    mean_sq_norm: float
    trace: float


def two_batch_estimates(g_small: ArrayLike, g_big: ArrayLike, *, b_small: int, b_big: int) -> TwoBatchEstimates:
    r"""Unbiased estimates of ``‖G‖²`` and ``tr Σ`` from two minibatch-mean gradients.

    ``‖G‖² ≈ (B_big ‖g_big‖² − B_small ‖g_small‖²)/(B_big − B_small)``,
    ``tr Σ ≈ (‖g_small‖² − ‖g_big‖²)/(1/B_small − 1/B_big)`` (McCandlish et al. 2018, App. A),
    unbiased when the batches are drawn with replacement (``E‖g_B‖² = ‖G‖² + tr Σ/B``, ``Σ``
    biased).

    Args:
      g_small: mean gradient of a batch of ``b_small`` examples ``(P,)``.
      g_big: mean gradient of a batch of ``b_big`` examples ``(P,)``.
      b_small: the small batch size.
      b_big: the big batch size (``> b_small``).

    Returns:
      :class:`TwoBatchEstimates` ``(mean_sq_norm, trace)``.

    Raises:
      ValueError: shapes differ, or not ``1 ≤ b_small < b_big``.
    """
    a = as_float_array(g_small, "g_small", ndim=(1,))
    b = as_float_array(g_big, "g_big", ndim=(1,))
    if a.shape != b.shape:
        raise ValueError(f"g_small and g_big must have the same shape, got {a.shape} and {b.shape}")
    bs, bb = int(b_small), int(b_big)
    if not 1 <= bs < bb:
        raise ValueError(f"need 1 <= b_small < b_big, got b_small={b_small}, b_big={b_big}")
    s2, l2 = float(a @ a), float(b @ b)
    return TwoBatchEstimates((bb * l2 - bs * s2) / (bb - bs), (s2 - l2) / (1.0 / bs - 1.0 / bb))


# ---------------------------------------------------------------------- one-hot = distillation + noise
@dataclass(frozen=True, eq=False)
class NoiseDecomposition:
    r"""``g_OH = g_KD + ξ`` with each point's contribution ``ξ_i = (1/n) τ J_iᵀ(q_i − e_{y_i})``.

    Attributes:
      g_onehot, g_distill, xi: the three full gradients ``(P,)``.
      contribution: ``‖ξ_i‖²·n²`` per point, i.e. ``‖J_iᵀ(q_i − e_{y_i})‖²τ²`` ``(n,)``.
      teacher_confidence: the teacher's top-1 probability per point ``(n,)``.
      bin_edges, bin_share: teacher-confidence quantile bins and the share of
        ``Σ_i contribution_i`` falling in each (lowest confidence first).
    """

    g_onehot: np.ndarray
    g_distill: np.ndarray
    xi: np.ndarray
    contribution: np.ndarray
    teacher_confidence: np.ndarray
    bin_edges: np.ndarray
    bin_share: np.ndarray


def decompose(onehot: ArrayLike, distill: ArrayLike, teacher: ArrayLike, *, bins: int = 10) -> NoiseDecomposition:
    r"""Split the one-hot gradient into the distillation gradient and the per-point noise.

    ``ξ_i = g_OH,i − g_KD,i``; each point's share of ``Σ_i ‖ξ_i‖²``, by teacher-confidence
    quantile bins.

    Args:
      onehot: per-example one-hot gradients ``(n, P)`` (e.g.
        :func:`kdtheory.gradients.distillation_gradients`).
      distill: per-example distillation gradients ``(n, P)``.
      teacher: the teacher's logits ``(n, k)`` (its confidence is ``max softmax(z)``).
      bins: number of confidence bins (at most ``n`` are used).

    Returns:
      :class:`NoiseDecomposition`.

    Raises:
      ValueError: shapes disagree, or ``bins < 1``.
    """
    oh = as_float_array(onehot, "onehot", ndim=(2,))
    kd = as_float_array(distill, "distill", ndim=(2,))
    z = as_float_array(teacher, "teacher", ndim=(2,))
    if oh.shape != kd.shape or z.shape[0] != oh.shape[0]:
        raise ValueError(f"onehot {oh.shape}, distill {kd.shape} and teacher {z.shape} must share n (and P)")
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive whole number, got {bins!r}")
    n = oh.shape[0]
    xi_i = oh - kd
    conf = _softmax_t(z, 1.0).max(axis=1)
    contrib = np.sum(xi_i * xi_i, axis=1)
    order = np.argsort(conf, kind="stable")
    groups = np.array_split(order, min(int(bins), n))
    total = contrib.sum()
    share = np.array([contrib[g].sum() / total if total > 0 else 0.0 for g in groups])
    edges = np.array([conf[g].min() for g in groups] + [conf[groups[-1]].max()])
    return NoiseDecomposition(oh.mean(0), kd.mean(0), xi_i.mean(0), contrib, conf, edges, share)


# ---------------------------------------------------------------------- Bayes-teacher identities
def _softmax_t(z: np.ndarray, tau: float) -> np.ndarray:
    a = z / tau
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    p: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return p


def bayes_excess_second_moment(
    teacher: ArrayLike, jacobians: ArrayLike | None = None, *, temperature: float = 1.0
) -> float:
    r"""``E‖g_OH‖² − ‖g_KD‖² = (τ²/n²) Σ_i tr(J_iᵀ (diag q_i − q_i q_iᵀ) J_i)``, ``q = softmax(z/τ)``.

    Args:
      teacher: teacher logits ``z`` ``(n, k)``; labels are drawn from ``softmax(z/τ)``.
      jacobians: ``J_i`` ``(n, k, P)``; ``None`` for logit space (``J_i = I``: ``1 − ‖q_i‖²``).
      temperature: τ (the one-hot and distillation terms both carry the τ² scaling).

    Returns:
      The excess second moment.

    Raises:
      ValueError: bad shapes, τ ≤ 0.
    """
    tau = positive_scalar(temperature, "temperature")
    z = as_float_array(teacher, "teacher", ndim=(2,))
    q = _softmax_t(z, tau)
    n = z.shape[0]
    if jacobians is None:
        per = 1.0 - np.sum(q * q, axis=1)
    else:
        J = as_float_array(jacobians, "jacobians", ndim=(3,))
        if J.shape[:2] != z.shape:
            raise ValueError(f"jacobians must have shape {z.shape + ('P',)}, got {J.shape}")
        gram = np.einsum("ncp,ndp->ncd", J, J)  # J_i J_iᵀ, (n, k, k)
        cov = np.einsum("nc,cd->ncd", q, np.eye(q.shape[1])) - q[:, :, None] * q[:, None, :]
        per = np.einsum("ncd,ncd->n", gram, cov)
    return float(tau * tau * per.sum() / n**2)


class BayesMonteCarlo(NamedTuple):
    """A Monte Carlo estimate of the Bayes-teacher excess second moment and its closed form."""

    estimate: float
    standard_error: float
    closed_form: float


def bayes_monte_carlo(
    teacher: ArrayLike,
    student: ArrayLike,
    jacobians: ArrayLike | None = None,
    *,
    draws: int = 20_000,
    temperature: float = 1.0,
    seed: int = 0,
) -> BayesMonteCarlo:
    r"""Monte Carlo check of the Bayes-teacher identity: labels ``y_i ~ softmax(z_i/τ)``.

    For each draw, ``g_OH = (τ/n) Σ_i J_iᵀ(p_τ,i − e_{y_i})`` with ``p_τ = softmax(f/τ)`` from
    ``student_logits``; the estimate is the mean over draws of ``‖g_OH‖² − ‖g_KD‖²`` with
    ``g_KD = (τ/n) Σ_i J_iᵀ(p_τ,i − q_i)``.

    Args:
      teacher: teacher logits ``z`` ``(n, k)``.
      student: student logits ``f`` ``(n, k)``.
      jacobians: ``J_i`` ``(n, k, P)``; ``None`` for logit space.
      draws: number of label draws.
      temperature: τ.
      seed: seed of the draws.

    Returns:
      :class:`BayesMonteCarlo` ``(estimate, standard_error, closed_form)``.

    Raises:
      ValueError: bad shapes, τ ≤ 0, fewer than 2 draws.
    """
    tau = positive_scalar(temperature, "temperature")
    z = as_float_array(teacher, "teacher", ndim=(2,))
    f = as_float_array(student, "student", ndim=(2,))
    if f.shape != z.shape:
        raise ValueError(f"student must have shape {z.shape}, got {f.shape}")
    if int(draws) != draws or draws < 2:
        raise ValueError(f"draws must be a whole number >= 2, got {draws!r}")
    n, k = z.shape
    q, p = _softmax_t(z, tau), _softmax_t(f, tau)
    J = (
        np.broadcast_to(np.eye(k), (n, k, k))
        if jacobians is None
        else as_float_array(jacobians, "jacobians", ndim=(3,))
    )
    rng = np.random.default_rng(seed)
    cum = np.cumsum(q, axis=1)
    cum[:, -1] = 1.0
    base = np.einsum("nc,ncp->p", p, J) * tau / n  # (τ/n) Σ J_iᵀ p_i
    g_kd = base - np.einsum("nc,ncp->p", q, J) * tau / n
    vals = np.empty(draws)
    chunk = max(1, 2_000_000 // max(n * J.shape[2], 1))
    for s in range(0, draws, chunk):
        m = min(chunk, draws - s)
        y = (rng.random((m, n, 1)) > cum[None]).sum(axis=2)  # inverse-CDF sampling, (m, n)
        rows = J[np.arange(n)[None, :], y]  # J_i[y_i], (m, n, P)
        g_oh = base[None] - rows.sum(axis=1) * tau / n
        vals[s : s + m] = np.sum(g_oh * g_oh, axis=1) - g_kd @ g_kd
    closed = bayes_excess_second_moment(z, None if jacobians is None else J, temperature=tau)
    return BayesMonteCarlo(float(vals.mean()), float(vals.std(ddof=1) / np.sqrt(draws)), closed)


# ---------------------------------------------------------------------- least squares
def least_squares_noise_floor(X: ArrayLike, y: ArrayLike, *, ddof: int = 0) -> GradientStats:
    r"""Per-example gradient statistics of ``½(xᵢᵀw − tᵢ)²`` at the least-squares optimum ``w*``.

    ``g_i = x_i (x_iᵀ w* − t_i)``. With noisy labels the residuals — hence ``tr Σ`` — stay
    positive at the optimum (a noise floor); with teacher targets ``t = X w_T`` the optimum fits
    them exactly and every per-example gradient, hence the floor, is zero.

    Args:
      X: design matrix ``(n, d)``.
      y: targets ``(n,)``.
      ddof: 0 or 1, as :func:`gradient_statistics`.

    Returns:
      :class:`GradientStats` at the optimum.

    Raises:
      ValueError: shapes disagree or values are not finite.
    """
    Xn = as_float_array(X, "X", ndim=(2,))
    t = as_float_array(y, "y", ndim=(1,))
    if t.shape[0] != Xn.shape[0]:
        raise ValueError(f"y has {t.shape[0]} entries but X has {Xn.shape[0]} rows")
    w = np.linalg.lstsq(Xn, t, rcond=None)[0]
    r = Xn @ w - t
    return gradient_statistics(Xn * r[:, None], ddof=ddof)
