r"""The one trajectory type of closed forms and simulations, so both compare field by field.

Closed forms (:mod:`kdtheory.dynamics`, :mod:`kdtheory.distill`) and simulations
(:mod:`kdtheory.simulate`) return :class:`Trajectory`.

Shapes: ``S`` is the shape of the axis (``t``, or ``ridge`` for ridge recipes), ``n`` training
points, ``n_test`` test points, ``m`` eigen-modes, ``k`` outputs (absent for 1-D labels in closed
forms; simulations always have ``k``).

This module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Trajectory"]


@dataclass(frozen=True, eq=False)
class Trajectory:
    r"""A training trajectory evaluated along one axis (all arrays, no hidden state).

    Attributes:
      t: the time axis, shape ``S``: whole steps for gradient descent, momentum and simulations;
        learning-rate units (continuous time ``η t``) for gradient flow. ``None`` for ridge recipes.
      train: outputs on the training points, shape ``S + (n[, k])``.
      loss: training loss with the normalization in ``recipe["normalization"]``, shape ``S``.
      test: outputs on the test points, shape ``S + (n_test[, k])``, or ``None``.
      ridge: the ridge strengths ``c`` of a ridge recipe (the axis instead of ``t``), or ``None``.
      filter: closed forms: fraction learned per mode relative to the labels, ``S + (m,)``.
      modes: closed forms: residual coordinates ``u_kᵀ (f − y)``, ``S + (m[, k])``.
      norm: closed forms: ``‖w − w_0‖`` = RKHS norm of ``f − f_0``, shape ``S``.
      weights: closed forms on a features spectrum: ``w``, shape ``S + (d[, k])``.
      train_accuracy, test_accuracy: top-1 accuracy against the labels' argmax, shape ``S``.
      projection: simulations: ``project(params)`` at each point of the axis.
      params: simulations: the parameters at the last point of the axis (numpy pytree).
      recipe: how it was trained, for the record (``method``, ``learning_rate``, ``momentum``,
        ``normalization``, ``seed``, …); JSON-serializable values.
      solver: how it was computed, apart from how it was trained (diffrax's ``Solution.stats``):
        the Lanczos solver's certificate (``converged``, error estimates, iterations, products),
        a simulation's status (``diverged``); ``None`` for exact closed forms. JSON-serializable.
    """

    t: np.ndarray | None
    train: np.ndarray
    loss: np.ndarray
    test: np.ndarray | None = None
    ridge: np.ndarray | None = None
    filter: np.ndarray | None = None
    modes: np.ndarray | None = None
    norm: np.ndarray | None = None
    weights: np.ndarray | None = None
    train_accuracy: np.ndarray | None = None
    test_accuracy: np.ndarray | None = None
    projection: np.ndarray | None = None
    params: Any = None
    recipe: Mapping[str, Any] = field(default_factory=dict[str, Any])
    solver: Mapping[str, Any] | None = None

    @property
    def axis(self) -> np.ndarray:
        """The axis the trajectory is indexed by: ``t``, or ``ridge`` for ridge recipes.

        Raises:
          ValueError: a trajectory built with neither ``t`` nor ``ridge``.
        """
        axis = self.t if self.t is not None else self.ridge
        if axis is None:
            raise ValueError("this Trajectory has no axis: both t and ridge are None")
        return axis

    def __repr__(self) -> str:
        """One line: method, axis, shapes and the final loss."""
        method = self.recipe.get("method", "custom")
        name = "t" if self.t is not None else "ridge"
        extra = "".join(
            f", {f}{getattr(self, f).shape}" for f in ("test", "weights") if isinstance(getattr(self, f), np.ndarray)
        )
        loss = np.ravel(self.loss)
        last = f", final loss={loss[-1]:.4g}" if loss.size else ""
        axis = self.t if self.t is not None else self.ridge
        shape = () if axis is None else axis.shape
        return f"Trajectory(method={method!r}, {name}{shape}, train{self.train.shape}{extra}{last})"
