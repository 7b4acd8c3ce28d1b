r"""Per-example gradients and Jacobians in JAX (the numpy statistics of them are in :mod:`kdtheory.noise`).

* :func:`per_example_jacobians` — ``J_i = ∂f(x_i)/∂θ`` (``n × k × P``, parameters flattened by
  ``jax.flatten_util.ravel_pytree``) as one compiled ``vmap`` of a single-input ``jacrev``; the one
  implementation in the package (:func:`kdtheory.ntk.empirical_ntk`'s ``"per_example"`` method
  uses it).
* :func:`per_example_gradients` — ``g_i = J_iᵀ ∂ℓ_i/∂f_i`` of the *per-example* loss ``ℓ_i``
  (a :class:`kdtheory.simulate.Loss` on one example, ``"sum"`` normalization, no ``1/n``), so the
  full-batch gradient of the ``"mean"`` loss is their mean.
* :func:`distillation_gradients` — the per-example one-hot and distillation gradients in the
  distillation convention ``τ² CE(f/τ, ·)`` (docs/theory.md §5), the input of
  :func:`kdtheory.noise.decompose`.
* :func:`statistics_along` — :func:`kdtheory.noise.gradient_statistics` at every recorded step
  of a trajectory.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.typing import DTypeLike
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, positive_scalar
from kdtheory.noise import GradientStats, gradient_statistics
from kdtheory.simulate import Loss, Model, as_teacher_logits

__all__ = [
    "per_example_jacobians",
    "per_example_gradients",
    "GradientPair",
    "distillation_gradients",
    "statistics_along",
]


@functools.partial(jax.jit, static_argnums=0)
def _jacobians(apply: Callable[[Any, jax.Array], jax.Array], params: Any, X: jax.Array) -> jax.Array:
    flat, unravel = ravel_pytree(params)

    def single(x: jax.Array) -> jax.Array:
        jac: jax.Array = jax.jacrev(lambda fl: apply(unravel(fl), x[None])[0])(flat)
        return jac

    return jax.vmap(single)(X)


def per_example_jacobians(apply: Any, params: Any, X: ArrayLike) -> np.ndarray:
    r"""Per-example Jacobians ``J_i = ∂f(x_i)/∂θ`` of a batched function, shape ``(n, k, P)``.

    Args:
      apply: ``apply(params, x) -> (b, k)`` on a batch of any per-example shape (or a
        :class:`~kdtheory.simulate.Model`, whose ``apply`` is used).
      params: a parameter pytree; the computation runs in its dtype; ``P`` counts its entries in
        ``ravel_pytree`` order.
      X: inputs ``(n, …)``.

    Returns:
      ``(n, k, P)`` numpy array.

    Raises:
      ValueError: ``X`` is not finite or has no batch axis.
    """
    f = apply.apply if isinstance(apply, Model) else apply
    Xn = as_float_array(X, "X")
    if Xn.ndim < 1:
        raise ValueError(f"X must have a leading axis of examples, got shape {Xn.shape}")
    dt = ravel_pytree(params)[0].dtype
    return np.asarray(_jacobians(f, params, jnp.asarray(Xn, dt)))


def per_example_gradients(
    model: Model,
    params: Any,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: Loss = Loss("ce"),
    teacher: ArrayLike | None = None,
    teacher_kind: Literal["logits", "probabilities"] = "logits",
    dtype: DTypeLike | None = None,
) -> np.ndarray:
    r"""Per-example gradients of ``ℓ_i`` w.r.t. the flattened parameters, shape ``(n, P)``.

    ``jax.vmap(jax.grad(ℓ))`` over the examples; ``ℓ_i`` is ``loss`` evaluated on one example
    with ``"sum"`` normalization (one-hot ``teacher_weight = 0``, distillation ``1``, or a mixture;
    for MSE ``ℓ_i = ½‖f_i − t_i‖²``). Parameters are flattened with ``ravel_pytree`` (its order).

    Args:
      model: a non-kernel :class:`~kdtheory.simulate.Model`.
      params: the parameter pytree.
      X: inputs ``(n, …)``.
      y: labels ``(n, k)``.
      loss: the objective (no switch; its normalization is replaced by ``"sum"``).
      teacher: teacher logits (CE) or outputs (MSE) ``(n, k)``.
      teacher_kind: ``"logits"`` or ``"probabilities"`` (:func:`kdtheory.simulate.as_teacher_logits`).
      dtype: computation dtype (default: that of ``params``).

    Returns:
      ``(n, P)`` numpy array.

    Raises:
      ValueError: a kernel model, a loss with a switch, shape mismatches, a flat parameter vector,
        a nonzero teacher weight without a teacher, a teacher of the wrong kind.
    """
    if model.functional:
        raise ValueError("per-example gradients of kernel models are not defined here; use linear_model on features")
    if loss.switch_t is not None:
        raise ValueError("per-example gradients take a loss without a switch; pass the phase's Loss")
    Xn = as_float_array(X, "X")
    Yn = as_float_array(y, "y", ndim=(2,))
    if Yn.shape[0] != Xn.shape[0]:
        raise ValueError(f"y has {Yn.shape[0]} rows but X has {Xn.shape[0]}")
    if loss.teacher_weight != 0 and teacher is None:
        raise ValueError("a nonzero teacher weight needs teacher outputs (teacher=...)")
    if teacher is None:
        Tn = np.zeros_like(Yn)
    else:
        Tn = as_teacher_logits(teacher, teacher_kind=teacher_kind, loss_kind=loss.kind)
    if Tn.shape != Yn.shape:
        raise ValueError(f"teacher must have shape {Yn.shape}, got {Tn.shape}")
    if isinstance(params, (np.ndarray, jax.Array)) and np.ndim(params) == 1:
        raise ValueError("pass the parameter pytree (its structure is needed), not a flat vector")
    params = jax.tree_util.tree_map(jnp.asarray, params)
    dt = ravel_pytree(params)[0].dtype if dtype is None else jnp.dtype(dtype)
    params = jax.tree_util.tree_map(lambda a: a.astype(dt), params)
    single = dataclasses.replace(loss, normalization="sum")
    out = _gradients(model.apply, single, params, jnp.asarray(Xn, dt), jnp.asarray(Yn, dt), jnp.asarray(Tn, dt))
    return np.asarray(out)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _gradients(
    apply: Callable[[Any, jax.Array], jax.Array], loss: Any, params: Any, X: jax.Array, Y: jax.Array, T: jax.Array
) -> jax.Array:
    flat, unravel = ravel_pytree(params)

    def single(fl: jax.Array, x: jax.Array, y: jax.Array, t: jax.Array) -> jax.Array:
        value: jax.Array = loss(apply(unravel(fl), x[None]), y[None], t[None])
        return value

    grads: jax.Array = jax.vmap(jax.grad(single), in_axes=(None, 0, 0, 0))(flat, X, Y, T)
    return grads


class GradientPair(NamedTuple):
    """Per-example one-hot and distillation gradients, each ``(n, P)``."""

    onehot: np.ndarray
    distill: np.ndarray


def distillation_gradients(
    model: Model,
    params: Any,
    X: ArrayLike,
    y: ArrayLike,
    teacher: ArrayLike,
    *,
    temperature: float = 1.0,
    teacher_kind: Literal["logits", "probabilities"] = "logits",
) -> GradientPair:
    r"""Per-example gradients of ``τ² CE(f/τ, e_y)`` (one-hot) and ``τ² CE(f/τ, softmax(z/τ))``.

    Both in the distillation convention, so they differ by ``τ J_iᵀ (q_i − e_{y_i})``
    (``q = softmax(z/τ)``): the noise one-hot labels add (docs/theory.md §5).

    Args:
      model: a non-kernel :class:`~kdtheory.simulate.Model`.
      params: the parameter pytree.
      X: inputs ``(n, …)``.
      y: one-hot labels ``(n, k)``.
      teacher: the teacher ``(n, k)``, of kind ``teacher_kind``.
      temperature: τ > 0.
      teacher_kind: ``"logits"`` or ``"probabilities"``.

    Returns:
      :class:`GradientPair` ``(onehot, distill)``.

    Raises:
      ValueError: as :func:`per_example_gradients`, or τ ≤ 0.
    """
    tau = positive_scalar(temperature, "temperature")
    z = as_teacher_logits(teacher, teacher_kind=teacher_kind)
    Y = as_float_array(y, "y", ndim=(2,))
    kd = Loss("ce", temperature=tau, teacher_weight=1.0)
    if tau == 1.0:
        oh = per_example_gradients(model, params, X, Y, loss=Loss("ce"))
    else:  # softmax(log e_y / τ) is exactly the one-hot label: the distillation term with the label as teacher
        oh = per_example_gradients(model, params, X, Y, loss=kd, teacher=Y, teacher_kind="probabilities")
    return GradientPair(oh, per_example_gradients(model, params, X, Y, loss=kd, teacher=z))


def statistics_along(
    model: Model,
    params_template: Any,
    flat_params: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: Loss = Loss("ce"),
    teacher: ArrayLike | None = None,
    teacher_kind: Literal["logits", "probabilities"] = "logits",
    ddof: int = 0,
) -> list[GradientStats]:
    r"""Gradient statistics (:class:`kdtheory.noise.GradientStats`) along a recorded trajectory.

    Args:
      model: the :class:`~kdtheory.simulate.Model`.
      params_template: any pytree of the model's structure (e.g. ``model.init(key)``).
      flat_params: one flattened parameter vector per recorded step, ``(T, P)``, as recorded by
        ``train_model(..., project=lambda p: jax.flatten_util.ravel_pytree(p)[0])``
        (``Trajectory.projection``).
      X: inputs ``(n, …)``.
      y: labels ``(n, k)``.
      loss: the per-example objective.
      teacher: teacher logits/outputs ``(n, k)``.
      teacher_kind: ``"logits"`` or ``"probabilities"``.
      ddof: 0 (``1/n`` covariance) or 1 (``1/(n − 1)``).

    Returns:
      One :class:`~kdtheory.noise.GradientStats` per recorded step.

    Raises:
      ValueError: ``flat_params`` is not ``(T, P)``, or as :func:`per_example_gradients`.
    """
    F = np.asarray(flat_params)
    if F.ndim != 2:
        raise ValueError(f"flat_params must be (steps, P), got shape {F.shape}")
    _, unravel = ravel_pytree(params_template)
    return [
        gradient_statistics(
            per_example_gradients(
                model, unravel(jnp.asarray(f)), X, y, loss=loss, teacher=teacher, teacher_kind=teacher_kind
            ),
            ddof=ddof,
        )
        for f in F
    ]
