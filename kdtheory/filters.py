r"""The filter algebra: what a training recipe does to each eigendirection, as a value.

Gradient-based training of a linear (kernel) model on the squared loss acts independently on the
eigendirections of the kernel (:class:`kdtheory.spectrum.Spectrum`): along eigendirection ``u_k``
(eigenvalue ``λ_k``) it learns a fraction ``a_k`` of the label component ``z_k = u_kᵀ y``. The
map ``λ ↦ a`` is the *spectral filter* of the recipe. This module holds

* :class:`Filter`, the filter as a value — ``a`` and the stable ``a/λ`` — with the one
  composition rule :meth:`Filter.train_from` from which every distillation recipe is built;
* :class:`Recipe`, an optimizer (flow, GD, momentum, ridge) with its loss normalization, which
  produces filters (:meth:`Recipe.filter`) and owns the ``λ → λ/D`` scaling, and
  :func:`loss_divisor`, the one place the divisor ``D`` (1, ``n`` or ``n·k``) is defined;
* the filters of one recipe as functions of eigenvalues (:func:`flow_filter`, :func:`gd_filter`,
  :func:`momentum_filter`, :func:`ridge_filter`) and :func:`max_learning_rate`. Their numerics
  (heavy ball's cancellation-free closed forms among them) live in the private
  ``kdtheory._filter_numerics``, below this module.

Conventions: see the vocabulary in :mod:`kdtheory`. ``t = ∞`` is the exact limit (``a = 1`` for
``λ > 0``, ``0`` for ``λ = 0``; ``a/λ = 1/λ`` or ``0``: the minimum-norm / pseudo-inverse
solution), never a large finite time. :mod:`kdtheory.eigen` re-exports every public name here.
Imports numpy only (and :mod:`kdtheory.spectrum`, numpy and scipy).

References:
  Jacot, Gabriel, Hongler (2018), *Neural tangent kernel*; Lee et al. (2019), *Wide neural
  networks of any depth evolve as linear models under gradient descent*, eq. 9;
  Nagarajan et al. (2023), *On student-teacher deviations in distillation*, §5.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, as_times, choice, positive_integer, positive_scalar
from kdtheory._filter_numerics import momentum_coefficient, pinv, ridge_pair, stability_bound, time_pair
from kdtheory.spectrum import Spectrum

__all__ = [
    "Filter",
    "Recipe",
    "GRADIENT_FLOW",
    "flow_filter",
    "gd_filter",
    "momentum_filter",
    "ridge_filter",
    "max_learning_rate",
    "Method",
    "Normalization",
    "NORMALIZATIONS",
    "loss_divisor",
]

Method = Literal["flow", "gd", "momentum"]


def _finite_real(w: object) -> bool:
    """A finite real scalar (Python's or numpy's; not a bool, complex, array or Filter)."""
    return not isinstance(w, bool) and isinstance(w, numbers.Real) and bool(np.isfinite(float(w)))


def _float64(x: ArrayLike, name: str) -> np.ndarray:
    """``np.asarray(x, dtype=float64)``, or a one-line error naming ``name``."""
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # ragged rows, strings, objects
        raise ValueError(f"{name} must be a rectangular array of real numbers ({exc.__class__.__name__})") from exc


def _evals(evals: ArrayLike) -> np.ndarray:
    lam = as_float_array(evals, "evals", ndim=(0, 1))
    if (lam < 0).any():
        raise ValueError(f"evals must be >= 0 (got min {lam.min()!r}); clip round-off first")
    return lam


# ---------------------------------------------------------------------- the filter value
@dataclass(frozen=True, eq=False)
class Filter:
    r"""A spectral filter relative to the labels: what a recipe does to each eigendirection.

    A model whose training predictions are ``U diag(a) Uᵀ y`` and whose dual coefficients are
    ``α = U diag(a/λ) Uᵀ y`` (test predictions ``k_x α``; weights ``V diag(s · a/λ) Uᵀ y``) *has
    filter* ``(a, a/λ)``. Both are kept because each is exact where the other is not: ``a`` at
    ``t = ∞`` (``a = 1`` for ``λ > 0``), ``a/λ`` at ``λ = 0`` (e.g. ``η t`` for gradient flow).

    **The one composition rule** (:meth:`train_from`): training a segment with filter ``F`` from a
    start with filter ``s`` towards targets with filter ``g`` (both relative to ``y``) multiplies
    the residual ``s − g`` by ``1 − F.a`` (each segment starts with fresh optimizer state, so a
    momentum segment continued mid-run, velocity carried over, is not such a segment):

    .. math::

        a = s.a + F.a\,(g.a − s.a), \qquad a/λ = s.(a/λ) + F.(a/λ)\,(g.a − s.a).

    Only ``g.a`` enters: a target is a set of values on the training points. Constants:
    :meth:`zero` (the zero function: a training start) and :meth:`labels` (``y`` itself: ``a = 1``
    in every direction, including ``λ = 0`` where the labels have a component no kernel model
    reproduces; its ``a/λ`` is the pseudo-inverse ``1/λ`` or 0, the minimum-norm interpolant).
    Filters combine affinely (``w * T + (1 - w) * Filter.labels(evals)``), which is how mixed
    targets are written.

    Examples (the composites of :mod:`kdtheory.distill` are one line each)::

        ZERO, ONE = Filter.zero(m), Filter.labels(evals)
        student = S.train_from(ZERO, w * T + (1 - w) * ONE)    # distillation, teacher weight w
        late = S_t.train_from(S_s, T)                          # late switch to the teacher
        B = A.train_from(ZERO, (1 - alpha) * B + alpha * ONE)  # one Borup round (a fold)

    Attributes:
      a: fraction of each label component learned, shape ``S + (m,)``.
      a_over_eval: ``a/λ`` in the units of the spectrum's eigenvalues (exact at ``λ = 0``),
        shape ``S + (m,)``.
    """

    a: np.ndarray
    a_over_eval: np.ndarray

    __array_ufunc__ = None  # numpy scalars defer to Filter's own arithmetic (w * F stays a Filter)

    def __post_init__(self) -> None:
        """Store ``a`` and ``a/λ`` as float64 arrays of one shape ``S + (m,)``."""
        a, g = _float64(self.a, "a"), _float64(self.a_over_eval, "a_over_eval")
        if a.ndim == 0 or a.shape != g.shape:
            raise ValueError(f"a and a_over_eval must share a shape S + (m,), got {a.shape} and {g.shape}")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "a_over_eval", g)

    @classmethod
    def zero(cls, m: int) -> Filter:
        """The zero function (a model that has learned nothing): ``a = a/λ = 0``.

        Args:
          m: number of eigen-modes.

        Returns:
          A filter of shape ``(m,)``.

        Raises:
          ValueError: ``m`` not a whole number ``≥ 0``.
        """
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 0:
            raise ValueError(f"m must be a whole number of modes >= 0, got {m!r}")
        return cls(np.zeros(m), np.zeros(m))

    @classmethod
    def labels(cls, evals: ArrayLike) -> Filter:
        """The labels ``y`` themselves: ``a = 1`` everywhere, ``a/λ = 1/λ`` (0 at ``λ = 0``).

        Args:
          evals: eigenvalues ``λ ≥ 0``, shape ``(m,)``, in the units of the filters it meets.

        Returns:
          A filter of shape ``(m,)``.
        """
        lam = _evals(evals)
        return cls(np.ones_like(lam), pinv(lam))

    @property
    def shape(self) -> tuple[int, ...]:
        """``S + (m,)``."""
        return self.a.shape

    def train_from(self, start: Filter, target: Filter) -> Filter:
        r"""Train this segment from ``start`` towards ``target`` (the one composition rule).

        ``a = start.a + self.a (target.a − start.a)``,
        ``a/λ = start.a_over_eval + self.a_over_eval (target.a − start.a)``.

        Args:
          start: filter of the model the segment starts from (:meth:`zero` from scratch).
          target: filter of the targets the segment trains towards (:meth:`labels` for ``y``).

        Returns:
          The composed filter, shapes broadcast (``self``'s leading axes first).
        """
        for f, name in ((start, "start"), (target, "target")):
            if not isinstance(f, Filter):
                raise TypeError(f"{name} must be a Filter, got {type(f).__name__}")
        gap = target.a - start.a
        return Filter(start.a + self.a * gap, start.a_over_eval + self.a_over_eval * gap)

    def __add__(self, other: Filter) -> Filter:
        """Sum of two filters (of two targets' values), for affine combinations."""
        if not isinstance(other, Filter):
            return NotImplemented
        return Filter(self.a + other.a, self.a_over_eval + other.a_over_eval)

    def __mul__(self, w: float) -> Filter:
        """A filter scaled by a finite number ``w``."""
        if not _finite_real(w):
            return NotImplemented
        w = float(w)  # numpy's or Python's real scalar: the same float64 product
        return Filter(w * self.a, w * self.a_over_eval)

    __rmul__ = __mul__

    def __getitem__(self, index: Any) -> Filter:
        """Index the leading axes ``S`` (the last axis, the modes, is kept)."""
        return Filter(self.a[index], self.a_over_eval[index])

    @staticmethod
    def stack(filters: Sequence[Filter]) -> Filter:
        """Stack filters of equal shape along a new leading axis.

        Args:
          filters: the filters.

        Returns:
          A filter of shape ``(len(filters),) + shape``.

        Raises:
          TypeError: an element is not a :class:`Filter`.
          ValueError: no filters, or filters of different shapes.
        """
        filters = list(filters)
        if not filters:
            raise ValueError("filters must hold at least one Filter")
        for f in filters:
            if not isinstance(f, Filter):
                raise TypeError(f"filters must hold Filter values, got {type(f).__name__}")
        if len({f.shape for f in filters}) > 1:
            raise ValueError(f"filters must share one shape, got {sorted({f.shape for f in filters})}")
        return Filter(np.stack([f.a for f in filters]), np.stack([f.a_over_eval for f in filters]))


# ---------------------------------------------------------------------- recipes
Normalization = Literal["sum", "mean", "per_output"]
NORMALIZATIONS = ("sum", "mean", "per_output")


def loss_divisor(normalization: Normalization, n: int, outputs: int | None = None) -> float:
    r"""The divisor ``D`` of the loss ``½‖f − y‖² / D`` under a normalization: the one place it is defined.

    ``"sum"``: ``D = 1``; ``"mean"``: ``D = n`` (points, or the examples of a minibatch);
    ``"per_output"``: ``D = n·k`` (neural-tangents' convention). Gradient descent on the
    normalized loss sees the kernel's eigenvalues divided by ``D``
    (:meth:`Recipe.eigenvalue_scale` is ``1/D``); the JAX engine's losses
    (:class:`kdtheory.simulate.Loss`), the Krylov solver and the linearized network divide by it.

    Args:
      normalization: ``"sum"``, ``"mean"`` or ``"per_output"``.
      n: number of points ``n ≥ 1``.
      outputs: number of outputs ``k`` (needed, and only used, by ``"per_output"``).

    Returns:
      ``D`` as a float.

    Raises:
      ValueError: an unknown normalization, ``n < 1``, or ``"per_output"`` without a positive
        integer ``outputs``.

    Examples:
      >>> loss_divisor("mean", 10), loss_divisor("per_output", 10, 3)
      (10.0, 30.0)
    """
    choice(normalization, "normalization", NORMALIZATIONS)
    if normalization == "sum":
        return 1.0
    positive_integer(n, "n")
    if normalization == "mean":
        return float(n)
    if outputs is None:
        raise ValueError("normalization='per_output' needs outputs (the number k of outputs)")
    return float(n) * positive_integer(outputs, "outputs")


@dataclass(frozen=True)
class Recipe:
    r"""How a model is trained: optimizer, step size, loss normalization — and its filter.

    The one place where the loss normalization meets the eigenvalues: ``"sum"`` trains on
    ``½‖f − y‖²`` (eigenvalues ``λ``), ``"mean"`` on ``½‖f − y‖²/n`` (``λ/n``, ``n`` points),
    ``"per_output"`` on ``½‖f − y‖²/(n·k)`` (``λ/(n·k)``, ``k`` outputs; neural-tangents'
    convention, so its learning rates and times carry over unchanged).

    Attributes:
      method: ``"flow"`` (gradient flow; time in units of ``learning_rate``), ``"gd"`` (gradient
        descent; whole steps), ``"momentum"`` (heavy ball; whole steps) or ``"ridge"`` (kernel
        ridge ``min ½‖f − y‖² + ½ c‖f‖²_H``; its axis is the ridge strength ``c``, not a time;
        close to gradient flow at time ``1/c``, Ali, Kolter, Tibshirani 2019).
      learning_rate: η > 0 (unused by ridge).
      momentum: β in ``[0, 1)``, ``"momentum"`` only.
      normalization: ``"sum"``, ``"mean"`` or ``"per_output"``.
      allow_unstable: permit learning rates beyond stability at finite steps.

    Examples:
      >>> import numpy as np
      >>> from kdtheory.eigen import Recipe
      >>> Recipe("gd", learning_rate=0.5).filter(np.array([1.0, 0.0]), 2).a
      array([0.75, 0.  ])
    """

    method: Literal["flow", "gd", "momentum", "ridge"] = "flow"
    learning_rate: float = 1.0
    momentum: float = 0.0
    normalization: Normalization = "sum"
    allow_unstable: bool = False

    def __post_init__(self) -> None:
        """Validate the recipe (unknown methods, bad learning rates or momenta raise)."""
        choice(self.method, "method", ("flow", "gd", "momentum", "ridge"))
        choice(self.normalization, "normalization", NORMALIZATIONS)
        object.__setattr__(self, "learning_rate", positive_scalar(self.learning_rate, "learning_rate"))
        if self.method == "momentum":
            object.__setattr__(self, "momentum", momentum_coefficient(self.momentum))
        elif self.momentum != 0.0:
            raise ValueError(f"momentum={self.momentum!r} is only used with method='momentum'")

    def eigenvalue_scale(self, n: int, outputs: int | None = None) -> float:
        """The factor the normalization puts on the eigenvalues: 1, ``1/n`` or ``1/(n·k)``.

        Args:
          n: number of training points.
          outputs: number of outputs ``k`` (needed, and only used, by ``"per_output"``).

        Returns:
          The factor.

        Raises:
          ValueError: ``"per_output"`` without ``outputs``, or ``outputs < 1``.
        """
        return 1.0 / loss_divisor(self.normalization, n, outputs)

    def _lam(self, spectrum: Spectrum | ArrayLike, outputs: int | None) -> tuple[np.ndarray, float]:
        if isinstance(spectrum, Spectrum):
            scale = self.eigenvalue_scale(spectrum.n, outputs)
            return spectrum.evals * scale, scale
        if self.normalization != "sum":
            raise ValueError(f"normalization={self.normalization!r} needs a Spectrum (to know n), got eigenvalues")
        return _evals(spectrum), 1.0

    def filter(self, spectrum: Spectrum | ArrayLike, at: ArrayLike, *, outputs: int | None = None) -> Filter:
        r"""The filter of this recipe at each point ``at`` of its axis.

        Args:
          spectrum: a :class:`Spectrum`, or eigenvalues ``(m,)`` (``"sum"`` normalization only).
          at: time (``"flow"``, learning-rate units), whole steps (``"gd"``, ``"momentum"``) or
            ridge strength ``c ≥ 0`` (``"ridge"``); any shape; ``np.inf`` is the converged limit
            (not for ridge).
          outputs: number of outputs ``k`` (``"per_output"`` only).

        Returns:
          A :class:`Filter` of shape ``at.shape + (m,)``, ``a/λ`` in units of the spectrum's
          eigenvalues (the normalization is undone).

        Raises:
          ValueError: bad times, unstable learning rates, or (``allow_unstable``) a filter that
            overflows float64.
        """
        lam, scale = self._lam(spectrum, outputs)
        if self.method == "ridge":
            f = Filter(*ridge_pair(lam, at))
        else:
            f = Filter(
                *time_pair(
                    lam,
                    at,
                    method=self.method,
                    learning_rate=self.learning_rate,
                    momentum=self.momentum,
                    allow_unstable=self.allow_unstable,
                )
            )
        return Filter(f.a, f.a_over_eval * scale) if scale != 1.0 else f

    def log_remaining(self, spectrum: Spectrum | ArrayLike, at: ArrayLike, *, outputs: int | None = None) -> np.ndarray:
        r"""``log(1 − a)``, exact where ``1 − a`` itself would underflow.

        flow: ``−ηλt``; gd (``ηλ ≤ 1``): ``s log1p(−ηλ)``; ridge: ``log c − log(λ + c)``. ``−inf``
        where nothing remains (t = ∞ with λ > 0, or ηλ = 1 after a step).

        Args:
          spectrum: a :class:`Spectrum` or eigenvalues.
          at: times, steps or ridge strengths, any shape.
          outputs: number of outputs (``"per_output"`` only).

        Returns:
          Shape ``at.shape + (m,)``.

        Raises:
          ValueError: momentum recipes, and GD modes with ``ηλ > 1`` (whose remaining fraction
            changes sign).
        """
        lam, _ = self._lam(spectrum, outputs)
        if self.method == "momentum":
            raise ValueError("log_remaining() supports flow, gd and ridge recipes")
        name = "ridge" if self.method == "ridge" else "t"
        t = as_times(at, name, integer=self.method == "gd")[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.method == "ridge":
                if np.isinf(t).any():
                    raise ValueError("ridge must be finite")
                le: np.ndarray = np.where(lam > 0, np.log(t) - np.log(lam + t), 0.0) * np.ones_like(t)
                return le
            q = self.learning_rate * lam
            if self.method == "gd" and np.any(q > 1):
                raise ValueError("log_remaining() for gd needs learning_rate * lambda_max <= 1 (monotone modes)")
            rate = q if self.method == "flow" else -np.log1p(-q)  # per unit of t, ≥ 0 (inf at q = 1)
            out = -rate * np.where(np.isfinite(t), t, 1.0)
            out = np.where(np.isinf(t), np.where(rate > 0, -np.inf, 0.0), out)
            return np.where(t == 0, 0.0, out)

    def remaining(self, spectrum: Spectrum | ArrayLike, at: ArrayLike, *, outputs: int | None = None) -> np.ndarray:
        """``1 − a = exp(log_remaining)`` (see :meth:`log_remaining`).

        Args:
          spectrum: a :class:`Spectrum` or eigenvalues.
          at: times, steps or ridge strengths.
          outputs: number of outputs (``"per_output"`` only).

        Returns:
          Shape ``at.shape + (m,)``.
        """
        e: np.ndarray = np.exp(self.log_remaining(spectrum, at, outputs=outputs))
        return e

    def record(self) -> dict[str, Any]:
        """The recipe as JSON-serializable metadata (``Trajectory.recipe``).

        Returns:
          ``{"method", "learning_rate", "momentum", "normalization"}``.
        """
        return {
            "method": self.method,
            "learning_rate": float(self.learning_rate),
            "momentum": float(self.momentum),
            "normalization": self.normalization,
        }


GRADIENT_FLOW = Recipe()
"""The default recipe: gradient flow on ``½‖f − y‖²``, time in units of ``learning_rate=1``."""


# ---------------------------------------------------------------------- filters of one recipe
def flow_filter(evals: ArrayLike, t: ArrayLike, *, learning_rate: float = 1.0) -> Filter:
    r"""Filter of gradient flow on ``½‖f − y‖²``: ``a_k(t) = 1 − exp(−η λ_k t)``.

    Computed as ``−expm1(−η λ t)`` so small ``η λ t`` keeps full relative precision; ``a/λ`` has
    the limit ``η t`` at λ = 0. ``t = ∞`` gives ``a = 1`` for λ > 0 and ``0`` for λ = 0 exactly;
    ``a/λ = 1/λ`` or ``0`` (the pseudo-inverse).

    Args:
      evals: eigenvalues ``λ_k ≥ 0``, shape ``(m,)``.
      t: times in units of ``learning_rate`` (continuous time ``η t``), any shape, ``≥ 0``,
        ``np.inf`` allowed.
      learning_rate: η > 0.

    Returns:
      A :class:`Filter` of shape ``t.shape + (m,)``.

    References:
      Jacot, Gabriel, Hongler (2018); Lee et al. (2019), eq. 9.
    """
    return Filter(*time_pair(_evals(evals), t, method="flow", learning_rate=learning_rate))


def gd_filter(evals: ArrayLike, t: ArrayLike, *, learning_rate: float, allow_unstable: bool = False) -> Filter:
    r"""Filter of ``t`` steps of gradient descent on ``½‖f − y‖²``: ``a_k = 1 − (1 − η λ_k)^t``.

    For ``η λ ≤ 1`` computed as ``−expm1(t log1p(−η λ))``; ``a/λ`` has the limit ``η t`` at λ = 0.

    Args:
      evals: eigenvalues ``λ_k ≥ 0``, shape ``(m,)``.
      t: whole numbers of steps ``≥ 0`` (``np.inf`` allowed), any shape.
      learning_rate: η > 0. Stable iff ``η λ_max < 2``; every mode is monotone iff
        ``η λ_max ≤ 1``.
      allow_unstable: permit ``η λ_max ≥ 2`` (diverging modes) at finite steps.

    Returns:
      A :class:`Filter` of shape ``t.shape + (m,)``.

    Raises:
      ValueError: ``η λ_max ≥ 2`` unless ``allow_unstable``; ``t = ∞`` with an unstable η; a
        diverging filter that overflows float64.
    """
    lam = _evals(evals)
    return Filter(*time_pair(lam, t, method="gd", learning_rate=learning_rate, allow_unstable=allow_unstable))


def momentum_filter(
    evals: ArrayLike, t: ArrayLike, *, learning_rate: float, momentum: float, allow_unstable: bool = False
) -> Filter:
    r"""Filter of heavy-ball momentum on ``½‖f − y‖²``.

    Update ``v_{s+1} = β v_s − η ∇L(w_s)``, ``w_{s+1} = w_s + v_{s+1}``, ``v_0 = 0``. Per mode the
    remaining fraction ``e_s = 1 − a_s`` obeys ``e_{s+1} = (1 + β − ηλ) e_s − β e_{s−1}`` with
    ``e_0 = 1``, ``e_1 = 1 − ηλ``. With roots ``μ_{1,2}`` of ``μ² − (1 + β − ηλ) μ + β`` and
    ``D_m = (μ_1^m − μ_2^m)/(μ_1 − μ_2)``, the closed form is ``e_s = e_1 D_s − β D_{s−1}``, and
    ``a_s/λ = η [G_{s+1}(μ_1) − G_{s+1}(μ_2)]/(μ_1 − μ_2)`` with ``G_m(μ) = (1 − μ^m)/(1 − μ)``
    (limit at λ = 0: ``η [s − β(1 − β^s)/(1 − β)]/(1 − β)``).

    Args:
      evals: eigenvalues ``λ_k ≥ 0``, shape ``(m,)``.
      t: whole numbers of steps ``≥ 0`` (``np.inf`` allowed), any shape.
      learning_rate: η > 0. Stable iff ``η λ_max < 2 (1 + β)``.
      momentum: β in ``[0, 1)``; β = 0 is gradient descent.
      allow_unstable: permit ``η λ_max ≥ 2(1 + β)`` at finite steps.

    Returns:
      A :class:`Filter` of shape ``t.shape + (m,)``.

    Raises:
      ValueError: as :func:`gd_filter`.

    References:
      Polyak (1964); Goh (2017), *Why momentum really works*, Distill.
    """
    lam = _evals(evals)
    return Filter(
        *time_pair(
            lam, t, method="momentum", learning_rate=learning_rate, momentum=momentum, allow_unstable=allow_unstable
        )
    )


def ridge_filter(evals: ArrayLike, ridge: ArrayLike) -> Filter:
    r"""Kernel ridge regression filter ``a_k = λ_k/(λ_k + c)``, ``a_k/λ_k = 1/(λ_k + c)``.

    Kernel ridge with strength ``c`` (``min ½‖f − y‖² + ½ c‖f‖²_H``) predicts
    ``U diag(a) Uᵀ y`` on the training points.

    Args:
      evals: eigenvalues ``λ_k ≥ 0``, shape ``(m,)``.
      ridge: ridge strength ``c ≥ 0``, any shape. ``c = 0`` is the interpolating (pseudo-inverse)
        limit: ``a = 1`` for λ > 0 and ``0`` for λ = 0; ``a/λ = 1/λ`` or ``0``.

    Returns:
      A :class:`Filter` of shape ``ridge.shape + (m,)``.

    References:
      Ali, Kolter, Tibshirani (2019): gradient flow at time t ≈ ridge with c = 1/t.
    """
    return Filter(*ridge_pair(_evals(evals), ridge))


def max_learning_rate(
    evals: ArrayLike | Spectrum,
    *,
    method: Method = "gd",
    momentum: float = 0.0,
    monotone: bool = False,
) -> float:
    r"""Supremum of stable learning rates for ``½‖f − y‖²`` on this spectrum.

    Gradient descent is stable iff ``η < 2/λ_max`` (monotone in every mode iff ``η ≤ 1/λ_max``);
    heavy-ball momentum iff ``η < 2(1 + β)/λ_max``. Gradient flow is stable for every η
    (returns ``inf``). For a normalized loss pass the scaled eigenvalues (``λ/n``).

    Args:
      evals: eigenvalues (or a :class:`Spectrum`).
      method: ``"gd"``, ``"momentum"`` or ``"flow"``.
      momentum: β for ``"momentum"``.
      monotone: for ``"gd"``, return the bound ``1/λ_max`` under which no mode oscillates.

    Returns:
      The bound (``inf`` when ``λ_max = 0`` or for flow).
    """
    lam = evals.evals if isinstance(evals, Spectrum) else _evals(evals)
    choice(method, "method", ("flow", "gd", "momentum"))
    lam_max = float(np.max(lam)) if lam.size else 0.0
    if method == "flow" or lam_max == 0:
        return float("inf")
    if method == "momentum":
        return stability_bound(momentum_coefficient(momentum)) / lam_max
    return (1.0 if monotone else stability_bound(0.0)) / lam_max
