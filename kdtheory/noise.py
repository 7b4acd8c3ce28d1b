r"""Gradient noise: one-hot vs distillation targets, exact statistics, estimators, identities (T2).

Per-example gradients ``g_i = J_iᵀ ∂ℓ_i/∂f_i`` (``J_i = ∂f(x_i)/∂θ``, ``k × P``) of the
*per-example* loss ``ℓ_i`` (no ``1/n``), so the full-batch gradient is their mean ``G``. For softmax
cross-entropy ``∂ℓ_i/∂f_i = p_i − t_i``; the one-hot and distillation gradients differ by

    ``g_OH − g_KD = (1/n) Σ_i J_iᵀ (q_i − e_{y_i})``                          (THEORY.md §5)

and if ``y_i ~ Categorical(q_i)`` (a Bayes teacher) ``E[g_OH] = g_KD`` and
``E‖g_OH‖² − ‖g_KD‖² = (1/n²) Σ_i tr(J_iᵀ (diag q_i − q_i q_iᵀ) J_i)``, which in logit space
(``J_i = I``) is ``(1/n²) Σ_i (1 − ‖q_i‖²)``. With temperature τ (and the τ² scaling) ``q`` is
``softmax(z/τ)`` and the identity gains a factor τ².

Statistics of per-example gradients (``Σ`` their covariance): mean ``G``; ``tr Σ`` and
``diag Σ`` (biased ``1/n`` or unbiased ``1/(n − 1)``, stated by ``ddof``); the simple noise scale
``B_simple = tr Σ / ‖G‖²`` (McCandlish et al. 2018); the gradient signal-to-noise ratio per
parameter ``G_j² / Σ_jj`` (Liu et al. 2020); the covariance of a minibatch mean
``Σ/B`` (with replacement) or ``Σ/B · (n − B)/(n − 1)`` (without, ``Σ`` biased).

JAX is imported here (``per_example_gradients``, ``logit_jacobians``); the statistics are numpy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, positive_scalar
from kdtheory.simulate import Loss, Model, _objective

__all__ = [
    "per_example_gradients",
    "statistics_along",
    "logit_jacobians",
    "GradientStats",
    "gradient_statistics",
    "minibatch_trace",
    "two_batch_estimates",
    "NoiseDecomposition",
    "decompose",
    "bayes_excess_second_moment",
    "bayes_monte_carlo",
    "least_squares_noise_floor",
]


# ---------------------------------------------------------------------- per-example gradients
def per_example_gradients(
    model: Model,
    params: Any,
    X: ArrayLike,
    labels: ArrayLike,
    *,
    loss: Loss = Loss("ce"),
    teacher: ArrayLike | None = None,
    dtype: Any = None,
) -> np.ndarray:
    r"""Per-example gradients of ``ℓ_i`` w.r.t. the flattened parameters, shape ``(n, P)``.

    ``jax.vmap(jax.grad(ℓ))`` over the examples; ``ℓ_i`` is :class:`~kdtheory.simulate.Loss`
    evaluated on one example (one-hot ``teacher_weight = 0``, distillation ``1``, or a mixture;
    for MSE ``ℓ_i = ½‖f_i − t_i‖²``). Parameters are flattened with
    ``jax.flatten_util.ravel_pytree`` (its order).

    Args:
      model: a non-kernel :class:`~kdtheory.simulate.Model`.
      params: parameters (pytree) or an already flattened vector.
      X: inputs ``(n, d)``; labels: ``(n, k)``; teacher: teacher logits/outputs ``(n, k)``.
      loss: the per-example objective (its ``switch_step`` is ignored).
      dtype: computation dtype (default: that of ``params``).
    """
    if model.functional:
        raise ValueError("per-example gradients of kernel models are not defined here; use linear_model on features")
    if loss.switch_step is not None:
        raise ValueError("per-example gradients take a loss without a switch; pass the phase's Loss")
    Xn = as_float_array(X, "X", ndim=(2,))
    Yn = as_float_array(labels, "labels", ndim=(2,))
    if Yn.shape[0] != Xn.shape[0]:
        raise ValueError(f"labels has {Yn.shape[0]} rows but X has {Xn.shape[0]}")
    if loss.teacher_weight != 0 and teacher is None:
        raise ValueError("a nonzero teacher weight needs teacher outputs (teacher=...)")
    Tn = np.zeros_like(Yn) if teacher is None else as_float_array(teacher, "teacher", ndim=(2,))
    if Tn.shape != Yn.shape:
        raise ValueError(f"teacher must have shape {Yn.shape}, got {Tn.shape}")
    flat, struct = _flatten(params)
    dt = flat.dtype if dtype is None else jnp.dtype(dtype)
    fn = _per_example_fn(model, loss, struct)
    out = fn(flat.astype(dt), jnp.asarray(Xn, dt), jnp.asarray(Yn, dt), jnp.asarray(Tn, dt))
    return np.asarray(out)


def _flatten(params):
    """Flat parameter vector and a hashable description of the pytree (for compiled-function reuse)."""
    if isinstance(params, (np.ndarray, jax.Array)) and np.ndim(params) == 1:
        raise ValueError("pass the parameter pytree (its structure is needed), not a flat vector")
    leaves, treedef = jax.tree_util.tree_flatten(params)
    flat, _ = ravel_pytree(params)
    struct = (treedef, tuple(np.shape(x) for x in leaves), str(jnp.asarray(flat).dtype))
    return jnp.asarray(flat), struct


def _unravel(struct):
    treedef, shapes, dtype = struct
    template = jax.tree_util.tree_unflatten(treedef, [jnp.zeros(s, dtype) for s in shapes])
    return ravel_pytree(template)[1]


@functools.lru_cache(maxsize=32)
def _per_example_fn(model: Model, loss: Loss, struct):
    w = float(loss.teacher_weight)
    unravel = _unravel(struct)
    per_example_loss = Loss(loss.kind, "sum", loss.temperature)

    def single(flat, x, y, t):
        f = model.apply(unravel(flat), x[None])
        return _objective(per_example_loss, f, y[None], t[None], w)

    return jax.jit(jax.vmap(jax.grad(single), in_axes=(None, 0, 0, 0)))


def statistics_along(
    model: Model,
    params_template: Any,
    flat_params: ArrayLike,
    X: ArrayLike,
    labels: ArrayLike,
    *,
    loss: Loss = Loss("ce"),
    teacher: ArrayLike | None = None,
    ddof: int = 0,
) -> list[GradientStats]:
    r"""Gradient statistics along a recorded trajectory.

    ``flat_params`` holds one flattened parameter vector per checkpoint, as recorded by
    ``train_model(..., project=lambda p: jax.flatten_util.ravel_pytree(p)[0])`` (``Run.projection``);
    ``params_template`` is any pytree of the model's structure (e.g. ``model.init(key)``).
    """
    F = np.asarray(flat_params)
    if F.ndim != 2:
        raise ValueError(f"flat_params must be (checkpoints, P), got shape {F.shape}")
    _, unravel = ravel_pytree(params_template)
    return [
        gradient_statistics(
            per_example_gradients(model, unravel(jnp.asarray(f)), X, labels, loss=loss, teacher=teacher), ddof=ddof
        )
        for f in F
    ]


def logit_jacobians(model: Model, params: Any, X: ArrayLike) -> np.ndarray:
    r"""Per-example Jacobians ``J_i = ∂f(x_i)/∂θ`` of the outputs, shape ``(n, k, P)``."""
    Xn = as_float_array(X, "X", ndim=(2,))
    flat, struct = _flatten(params)
    unravel = _unravel(struct)

    def f_single(fl, x):
        return model.apply(unravel(fl), x[None])[0]

    J = jax.jit(jax.vmap(jax.jacrev(f_single), in_axes=(None, 0)))(flat, jnp.asarray(Xn, flat.dtype))
    return np.asarray(J)


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
    """:class:`GradientStats` of per-example gradients ``(n, P)`` (``ddof`` 0: biased, 1: unbiased)."""
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
    """
    B = int(batch_size)
    n = stats.n
    if not 1 <= B <= (n if not replacement else 10**12):
        raise ValueError(f"batch_size must lie in [1, n={n}] without replacement, got {batch_size}")
    pop = stats.trace * (n - stats.ddof) / n
    return pop / B if replacement else (pop / B * (n - B) / (n - 1) if n > 1 else 0.0)


def two_batch_estimates(g_small: ArrayLike, g_big: ArrayLike, b_small: int, b_big: int) -> tuple[float, float]:
    r"""Unbiased estimates of ``‖G‖²`` and ``tr Σ`` from two minibatch-mean gradients.

    ``‖G‖² ≈ (B_big ‖g_big‖² − B_small ‖g_small‖²)/(B_big − B_small)``,
    ``tr Σ ≈ (‖g_small‖² − ‖g_big‖²)/(1/B_small − 1/B_big)`` (McCandlish et al. 2018, App. A),
    unbiased when the batches are drawn with replacement (``E‖g_B‖² = ‖G‖² + tr Σ/B``, ``Σ``
    biased).
    """
    a = as_float_array(g_small, "g_small", ndim=(1,))
    b = as_float_array(g_big, "g_big", ndim=(1,))
    if a.shape != b.shape:
        raise ValueError(f"g_small and g_big must have the same shape, got {a.shape} and {b.shape}")
    bs, bb = int(b_small), int(b_big)
    if not 1 <= bs < bb:
        raise ValueError(f"need 1 <= b_small < b_big, got {b_small}, {b_big}")
    s2, l2 = float(a @ a), float(b @ b)
    return (bb * l2 - bs * s2) / (bb - bs), (s2 - l2) / (1.0 / bs - 1.0 / bb)


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


def decompose(
    model: Model,
    params: Any,
    X: ArrayLike,
    labels: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float = 1.0,
    bins: int = 10,
) -> NoiseDecomposition:
    """Split the one-hot gradient into the distillation gradient and the per-point noise."""
    tau = positive_scalar(temperature, "temperature")
    # the one-hot term in the distillation convention, τ² CE(f/τ, e_y): gradient τ J(p_τ − e_y)
    if tau == 1.0:
        oh = per_example_gradients(model, params, X, labels, loss=Loss("ce"))
    else:
        oh = _onehot_at_temperature(model, params, X, labels, tau)
    kd = per_example_gradients(
        model, params, X, labels, loss=Loss("ce", temperature=tau, teacher_weight=1.0), teacher=teacher_logits
    )
    n = oh.shape[0]
    xi_i = oh - kd
    z = np.asarray(teacher_logits, dtype=float)
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    conf = q.max(axis=1)
    contrib = np.sum(xi_i * xi_i, axis=1)
    order = np.argsort(conf, kind="stable")
    groups = np.array_split(order, min(bins, n))
    total = contrib.sum()
    share = np.array([contrib[g].sum() / total if total > 0 else 0.0 for g in groups])
    edges = np.array([conf[g].min() for g in groups] + [conf[groups[-1]].max()])
    return NoiseDecomposition(oh.mean(0), kd.mean(0), xi_i.mean(0), contrib, conf, edges, share)


def _onehot_at_temperature(model, params, X, labels, tau):
    """Per-example gradients of τ² CE(f/τ, e_y): the distillation term with the label as 'teacher'."""
    Y = np.asarray(labels, dtype=float)
    big = np.where(Y > 0, 0.0, -1e4) * tau  # softmax(big/τ) is exactly the one-hot label (e^{-1e4} = 0)
    return per_example_gradients(model, params, X, Y, loss=Loss("ce", temperature=tau, teacher_weight=1.0), teacher=big)


# ---------------------------------------------------------------------- Bayes-teacher identities
def _softmax_t(z: np.ndarray, tau: float) -> np.ndarray:
    a = z / tau
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def bayes_excess_second_moment(
    teacher_logits: ArrayLike, jacobians: ArrayLike | None = None, *, temperature: float = 1.0
) -> float:
    r"""``E‖g_OH‖² − ‖g_KD‖² = (τ²/n²) Σ_i tr(J_iᵀ (diag q_i − q_i q_iᵀ) J_i)``, ``q = softmax(z/τ)``.

    Args:
      teacher_logits: ``z`` ``(n, k)``; labels are drawn from ``softmax(z/τ)``.
      jacobians: ``J_i`` ``(n, k, P)``; ``None`` for logit space (``J_i = I``: ``1 − ‖q_i‖²``).
      temperature: τ (the one-hot and distillation terms both carry the τ² scaling).
    """
    tau = positive_scalar(temperature, "temperature")
    z = as_float_array(teacher_logits, "teacher_logits", ndim=(2,))
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


def bayes_monte_carlo(
    teacher_logits: ArrayLike,
    student_logits: ArrayLike,
    jacobians: ArrayLike | None = None,
    *,
    draws: int = 20_000,
    temperature: float = 1.0,
    seed: int = 0,
) -> tuple[float, float, float]:
    r"""Monte Carlo check of the Bayes-teacher identity: labels ``y_i ~ softmax(z_i/τ)``.

    For each draw, ``g_OH = (τ/n) Σ_i J_iᵀ(p_τ,i − e_{y_i})`` with ``p_τ = softmax(f/τ)`` from
    ``student_logits``; the estimate is the mean over draws of ``‖g_OH‖² − ‖g_KD‖²`` with
    ``g_KD = (τ/n) Σ_i J_iᵀ(p_τ,i − q_i)``.

    Returns:
      ``(estimate, standard error, closed form)``.
    """
    tau = positive_scalar(temperature, "temperature")
    z = as_float_array(teacher_logits, "teacher_logits", ndim=(2,))
    f = as_float_array(student_logits, "student_logits", ndim=(2,))
    if f.shape != z.shape:
        raise ValueError(f"student_logits must have shape {z.shape}, got {f.shape}")
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
    return float(vals.mean()), float(vals.std(ddof=1) / np.sqrt(draws)), closed


# ---------------------------------------------------------------------- least squares
def least_squares_noise_floor(X: ArrayLike, targets: ArrayLike, *, ddof: int = 0) -> GradientStats:
    r"""Per-example gradient statistics of ``½(xᵢᵀw − tᵢ)²`` at the least-squares optimum ``w*``.

    ``g_i = x_i (x_iᵀ w* − t_i)``. With noisy labels the residuals — hence ``tr Σ`` — stay
    positive at the optimum (a noise floor); with teacher targets ``t = X w_T`` the optimum fits
    them exactly and every per-example gradient, hence the floor, is zero.
    """
    Xn = as_float_array(X, "X", ndim=(2,))
    t = as_float_array(targets, "targets", ndim=(1,))
    if t.shape[0] != Xn.shape[0]:
        raise ValueError(f"targets has {t.shape[0]} entries but X has {Xn.shape[0]} rows")
    w = np.linalg.lstsq(Xn, t, rcond=None)[0]
    r = Xn @ w - t
    return gradient_statistics(Xn * r[:, None], ddof=ddof)
