r"""Learning-rate schedules: small values that multiply the learning rate at each update.

A :class:`Schedule` is a multiplier ``m(s)`` of the learning rate at update ``s`` (0-based: update
``s`` takes the state after ``s`` updates to the state after ``s + 1``), so
:class:`kdtheory.simulate.Optimizer` uses ``η_s = η · m(s)``. Every schedule is one formula with
five numbers and a step table (``warmup_steps`` W, ``initial`` a, ``decay_steps`` D, ``final`` c,
``boundaries`` b_1 < … < b_m with ``factors`` g_0, …, g_m):

.. math::

   m(s) = g_{i(s)} \cdot \begin{cases}
       a + (1 - a)\, s / W & s < W \ \text{(linear warm-up)} \\
       c + (1 - c)\, \tfrac12 \bigl(1 + \cos(\pi \min(s - W, D)/D)\bigr) & s \ge W,\ D > 0 \\
       1 & s \ge W,\ D = 0
   \end{cases}

with ``i(s)`` the number of boundaries ``b_j ≤ s``. The constructors fix the shape:

* :func:`constant` — ``m(s) = 1`` (exactly 1, so a constant schedule leaves the learning rate
  bit for bit as given);
* :func:`step` — piecewise constant: ``g_0`` before ``b_1``, ``g_j`` from ``b_j`` on;
* :func:`cosine` — ``c + (1 − c) ½(1 + cos(π min(s, D)/D))`` (Loshchilov & Hutter 2017, without
  restarts; optax's ``cosine_decay_schedule`` with ``alpha = c``): 1 at ``s = 0``, ``c`` from
  ``s = D`` on;
* :func:`warmup_cosine` — linear from ``a`` to 1 over ``W`` updates, then the cosine over the rest
  of ``decay_steps`` (which, as in optax's ``warmup_cosine_decay_schedule``, *includes* the
  warm-up).

Because every schedule is the same formula, the training engine traces all five numbers and the
step table (padded to the longest table of a batch): runs with different schedules — any of the
four kinds — share one compiled program (:func:`kdtheory.simulate.train_batch`).

The formula lives in one function, :func:`multiplier`, written against an array namespace, so the
engine evaluates it in JAX and :meth:`Schedule.__call__` in numpy float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import positive_scalar, whole_steps

__all__ = ["Schedule", "constant", "step", "cosine", "warmup_cosine", "multiplier"]

_PAD = np.iinfo(np.int32).max  # a boundary never reached: pads step tables to a common length


@dataclass(frozen=True)
class Schedule:
    r"""A learning-rate multiplier ``m(s)`` (the formula is in the module docstring).

    Build one with :func:`constant`, :func:`step`, :func:`cosine` or :func:`warmup_cosine`.

    Attributes:
      kind: ``"constant"``, ``"step"``, ``"cosine"`` or ``"warmup_cosine"`` (for the record; the
        numbers below define the schedule).
      warmup_steps: W ≥ 0, updates of linear warm-up.
      initial: a ≥ 0, the multiplier at ``s = 0`` during warm-up.
      decay_steps: D ≥ 0, updates of the cosine after the warm-up (0: no cosine).
      final: c ≥ 0, the multiplier the cosine ends at.
      boundaries: strictly increasing non-negative whole steps ``b_1 < … < b_m``.
      factors: ``m + 1`` non-negative numbers ``g_0, …, g_m``.

    Raises:
      ValueError: a negative or non-finite number, steps that are not whole, boundaries not
        strictly increasing, or ``len(factors) != len(boundaries) + 1``.
    """

    kind: str = "constant"
    warmup_steps: int = 0
    initial: float = 1.0
    decay_steps: int = 0
    final: float = 1.0
    boundaries: tuple[int, ...] = ()
    factors: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        for name in ("warmup_steps", "decay_steps"):
            object.__setattr__(self, name, whole_steps(getattr(self, name), name))
        for name in ("initial", "final"):
            object.__setattr__(self, name, positive_scalar(getattr(self, name), name, allow_zero=True))
        b = tuple(whole_steps(v, f"boundaries[{i}]") for i, v in enumerate(self.boundaries))
        if any(x >= y for x, y in zip(b[:-1], b[1:], strict=True)):
            raise ValueError(f"boundaries must be strictly increasing, got {self.boundaries!r}")
        if b and b[-1] >= _PAD:
            raise ValueError(f"boundaries must be below {_PAD}, got {b[-1]}")
        g = tuple(positive_scalar(v, f"factors[{i}]", allow_zero=True) for i, v in enumerate(self.factors))
        if len(g) != len(b) + 1:
            raise ValueError(f"factors needs len(boundaries) + 1 = {len(b) + 1} values, got {len(g)}")
        object.__setattr__(self, "boundaries", b)
        object.__setattr__(self, "factors", g)

    def __call__(self, steps: ArrayLike) -> np.ndarray:
        """The multiplier at updates ``steps`` (numpy, float64).

        Args:
          steps: non-negative whole update indices, any shape.

        Returns:
          ``m(steps)``, float64, the shape of ``steps``.

        Raises:
          ValueError: steps that are negative, not whole, or not finite.
        """
        s = np.asarray(steps)
        bad = not np.issubdtype(s.dtype, np.number) or not np.all(np.isfinite(s))
        if bad or np.any(s < 0) or np.any(s != np.round(s)):
            raise ValueError(f"steps must be non-negative whole numbers, got {steps!r}")
        m: np.ndarray = multiplier(np, self.params(np.float64), s.astype(np.int64))
        return m

    def params(self, dtype: Any = np.float64, table: int | None = None) -> dict[str, np.ndarray]:
        """The schedule's numbers as arrays (what the engine traces).

        Args:
          dtype: the float dtype of ``initial``, ``final`` and ``factors``.
          table: pad the step table to this many boundaries (default: its own length); padding
            boundaries are never reached and repeat the last factor.

        Returns:
          ``{"warmup", "initial", "decay", "final", "boundaries", "factors"}``; steps as int32.

        Raises:
          ValueError: ``table`` shorter than the step table.
        """
        m = len(self.boundaries)
        table = m if table is None else int(table)
        if table < m:
            raise ValueError(f"table={table} is shorter than this schedule's {m} boundaries")
        b = np.full(table, _PAD, np.int32)
        b[:m] = self.boundaries
        g = np.full(table + 1, self.factors[-1], dtype)
        g[: m + 1] = self.factors
        return {
            "warmup": np.asarray(self.warmup_steps, np.int32),
            "initial": np.asarray(self.initial, dtype),
            "decay": np.asarray(self.decay_steps, np.int32),
            "final": np.asarray(self.final, dtype),
            "boundaries": b,
            "factors": g,
        }

    def describe(self) -> dict[str, Any]:
        """The schedule as a JSON-serializable dict (for a trajectory's recipe).

        Returns:
          ``kind`` and the numbers that define it.
        """
        return {
            "kind": self.kind,
            "warmup_steps": self.warmup_steps,
            "initial": self.initial,
            "decay_steps": self.decay_steps,
            "final": self.final,
            "boundaries": list(self.boundaries),
            "factors": list(self.factors),
        }


def multiplier(xp: Any, p: dict[str, Any], s: Any) -> Any:
    r"""The one formula of every schedule (module docstring), in the array namespace ``xp``.

    Args:
      xp: ``numpy`` or ``jax.numpy``.
      p: :meth:`Schedule.params` (arrays of ``xp``, or numpy arrays).
      s: integer update indices (``xp`` array or scalar), broadcast against ``p``'s scalars.

    Returns:
      ``m(s)`` in the dtype of ``p["factors"]``.
    """
    factors = xp.asarray(p["factors"])
    dt = factors.dtype
    s = xp.asarray(s)
    count = xp.sum(xp.asarray(p["boundaries"]) <= s[..., None], axis=-1)
    g = xp.take(factors, count)
    W, D = xp.asarray(p["warmup"]), xp.asarray(p["decay"])
    a, c = xp.asarray(p["initial"], dt), xp.asarray(p["final"], dt)
    sf = s.astype(dt)
    warm = a + (1 - a) * sf / xp.maximum(W, 1).astype(dt)
    frac = xp.minimum(xp.maximum(s - W, 0), D).astype(dt) / xp.maximum(D, 1).astype(dt)
    cos = c + (1 - c) * (0.5 * (1 + xp.cos(math.pi * frac)))
    shape = xp.where(s < W, warm, xp.where(D > 0, cos, xp.ones_like(cos)))
    return g * shape


def constant() -> Schedule:
    """``m(s) = 1``: the learning rate as given.

    Returns:
      A :class:`Schedule`.
    """
    return Schedule("constant")


def step(boundaries: tuple[int, ...] | list[int], factors: tuple[float, ...] | list[float]) -> Schedule:
    r"""Piecewise constant: ``m(s) = factors[j]`` with ``j`` the number of ``boundaries ≤ s``.

    ``step([100, 150], [1.0, 0.1, 0.01])`` is 1 for updates 0–99, 0.1 for 100–149 and 0.01 after.

    Args:
      boundaries: strictly increasing whole update indices.
      factors: ``len(boundaries) + 1`` non-negative multipliers (absolute, not cumulative).

    Returns:
      A :class:`Schedule`.

    Raises:
      ValueError: see :class:`Schedule`.
    """
    return Schedule("step", boundaries=tuple(boundaries), factors=tuple(factors))


def cosine(decay_steps: int, *, final: float = 0.0) -> Schedule:
    r"""Cosine decay ``m(s) = c + (1 − c) ½(1 + cos(π min(s, D)/D))`` from 1 to ``final``.

    Args:
      decay_steps: D ≥ 1, updates over which the multiplier falls from 1 to ``final``.
      final: c ≥ 0, the multiplier from update D on.

    Returns:
      A :class:`Schedule`.

    Raises:
      ValueError: ``decay_steps < 1`` or a negative ``final``.
    """
    if whole_steps(decay_steps, "decay_steps") < 1:
        raise ValueError(f"decay_steps must be at least 1, got {decay_steps!r}")
    return Schedule("cosine", decay_steps=decay_steps, final=final)


def warmup_cosine(warmup_steps: int, decay_steps: int, *, final: float = 0.0, initial: float = 0.0) -> Schedule:
    r"""Linear warm-up from ``initial`` to 1 over W updates, then cosine decay to ``final``.

    ``m(s) = a + (1 − a) s/W`` for ``s < W``; then ``c + (1 − c) ½(1 + cos(π min(s − W, D − W)/(D − W)))``
    with ``D = decay_steps`` the length of the whole schedule, warm-up included (optax's
    ``warmup_cosine_decay_schedule``); ``D = W`` holds 1 after the warm-up.

    Args:
      warmup_steps: W ≥ 0.
      decay_steps: D ≥ W, the total length (warm-up + cosine).
      final: c ≥ 0, the multiplier from update D on.
      initial: a ≥ 0, the multiplier at update 0.

    Returns:
      A :class:`Schedule`.

    Raises:
      ValueError: ``decay_steps < warmup_steps``, or a bad number (see :class:`Schedule`).
    """
    W, D = whole_steps(warmup_steps, "warmup_steps"), whole_steps(decay_steps, "decay_steps")
    if D < W:
        raise ValueError(f"decay_steps ({D}) includes the warm-up and must be >= warmup_steps ({W})")
    return Schedule("warmup_cosine", warmup_steps=W, initial=initial, decay_steps=D - W, final=final)
