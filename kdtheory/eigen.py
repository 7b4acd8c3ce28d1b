r"""The spectral core: spectra of kernels and design matrices, spectral filters and recipes.

Gradient-based training of a linear (kernel) model on the squared loss acts independently on the
eigendirections of the kernel ``K = X Xᵀ``: along eigendirection ``u_k`` (eigenvalue ``λ_k``) it
learns a fraction ``a_k`` of the label component ``z_k = u_kᵀ y``. The map ``λ ↦ a`` is the
*spectral filter* of the training recipe. This module holds

* :class:`Spectrum`, the eigenpairs of a PSD kernel (:meth:`Spectrum.from_kernel`) or the SVD of a
  design matrix (:meth:`Spectrum.from_features`), eigenvalues in **descending** order;
* :class:`Filter`, the filter as a value — ``a`` and the stable ``a/λ`` — with the one
  composition rule :meth:`Filter.train_from` from which every distillation recipe is built;
* :class:`Recipe`, an optimizer (flow, GD, momentum, ridge) with its loss normalization, which
  produces filters (:meth:`Recipe.filter`) and owns the ``λ → λ/n`` (or ``λ/(n·k)``) scaling;
* the filters of one recipe as functions of eigenvalues (:func:`flow_filter`, :func:`gd_filter`,
  :func:`momentum_filter`, :func:`ridge_filter`) and :func:`max_learning_rate`.

Conventions: see the vocabulary in :mod:`kdtheory`. ``t = ∞`` is the exact limit (``a = 1`` for
``λ > 0``, ``0`` for ``λ = 0``; ``a/λ = 1/λ`` or ``0``: the minimum-norm / pseudo-inverse
solution), never a large finite time. This module imports numpy and scipy only.

References:
  Jacot, Gabriel, Hongler (2018), *Neural tangent kernel*; Lee et al. (2019), *Wide neural
  networks of any depth evolve as linear models under gradient descent*, eq. 9;
  Nagarajan et al. (2023), *On student-teacher deviations in distillation*, §5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, as_times, choice, positive_scalar

__all__ = [
    "Spectrum",
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
_EPS = np.finfo(np.float64).eps


@dataclass(frozen=True, eq=False)
class Spectrum:
    r"""Eigenpairs of a PSD kernel ``K = U diag(λ) Uᵀ`` (or of ``X Xᵀ`` via ``X = U S Vᵀ``).

    Attributes:
      evals: eigenvalues ``λ_1 ≥ λ_2 ≥ … ≥ 0``, shape ``(m,)``. Eigenvalues at or below
        ``rank_tol`` are set to exactly 0.
      U: sample-space eigenvectors as columns, shape ``(n, m)``. For a kernel ``m = n``; for a
        design matrix ``m = min(n, d)`` and, when ``n > d``, the complement of ``span(U)`` is the
        rest of the zero-eigenvalue eigenspace of ``X Xᵀ``.
      V: weight-space eigenvectors (right singular vectors), shape ``(d, m)``, or ``None`` for a
        kernel spectrum.
      rank_tol: the absolute threshold below which eigenvalues count as zero.

    Examples:
      >>> import numpy as np
      >>> from kdtheory.eigen import Spectrum
      >>> spec = Spectrum.from_kernel(np.array([[2.0, 1.0], [1.0, 2.0]]))
      >>> spec.evals
      array([3., 1.])
    """

    evals: np.ndarray
    U: np.ndarray
    V: np.ndarray | None
    rank_tol: float

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_kernel(
        cls,
        K: ArrayLike,
        *,
        sym_rtol: float | None = None,
        psd_rtol: float | None = None,
        rank_rtol: float | None = None,
    ) -> Spectrum:
        r"""Eigendecomposition of a symmetric PSD kernel (Gram) matrix.

        Args:
          K: kernel matrix, shape ``(n, n)``.
          sym_rtol: allowed asymmetry ``max|K − Kᵀ| ≤ sym_rtol · max|K|``, in ``[0, 1)``. Default
            ``min(1e4 ε, 0.01)`` where ε is the machine epsilon of ``K``'s dtype: the input is
            judged at the precision it was computed in (float32 and float16 input get their own
            tolerance), while the decomposition always runs in float64.
          psd_rtol: eigenvalues in ``[−psd_rtol · λ_max, 0)`` are round-off and clipped to 0;
            more negative ones raise. In ``[0, 1)``; default ``min(100 · max(n, 100) · ε, 0.01)``.
          rank_rtol: eigenvalues ``≤ rank_rtol · λ_max`` are set to exactly 0 (numerical rank,
            as ``numpy.linalg.matrix_rank`` with a safety factor 10). In ``[0, 1)``; default
            ``min(10 n ε, 0.01)`` with ε of ``K``'s dtype; pass 0 to keep every non-negative
            eigenvalue.

        Returns:
          The spectrum, eigenvalues descending. ``K`` is decomposed divided by a power of two
          near ``max|K|`` when that lies outside ``[2⁻⁵¹², 2⁵¹²]``, so huge or tiny kernels keep
          their exact spectrum.

        Raises:
          ValueError: ``K`` not square, not finite, asymmetric or clearly not PSD; a tolerance
            outside ``[0, 1)``; an eigenvalue beyond the float64 range.
        """
        raw = np.asarray(K)
        eps = _dtype_eps(raw)
        K = as_float_array(raw, "K", ndim=(2,))  # float64 whatever the input precision
        n = K.shape[0]
        if K.shape != (n, n):
            raise ValueError(f"K must be square, got shape {K.shape}")
        if n == 0:
            raise ValueError("K must have at least one row")
        sym_rtol = min(1e4 * eps, _RTOL_CAP) if sym_rtol is None else _rtol(sym_rtol, "sym_rtol")
        psd_rtol = min(100 * max(n, 100) * eps, _RTOL_CAP) if psd_rtol is None else _rtol(psd_rtol, "psd_rtol")
        rank_rtol = min(10 * n * eps, _RTOL_CAP) if rank_rtol is None else _rtol(rank_rtol, "rank_rtol")
        scale = float(max(K.max(), -K.min()))  # max|K| without an n × n temporary
        if scale > 0 and not 2.0**-512 <= scale <= 2.0**512:
            # decompose K / 2^e (exact: a power of two) so that LAPACK neither overflows nor underflows
            p = float(2.0 ** np.round(np.log2(scale)))
            K, unit = K / p, p
        else:
            unit = 1.0
        scale /= unit
        asym = _max_asymmetry(K)
        if asym > sym_rtol * scale:
            raise ValueError(
                f"K is not symmetric: max|K - K.T| = {asym * unit:.3g} > sym_rtol * max|K| = "
                f"{sym_rtol * scale * unit:.3g} (sym_rtol={sym_rtol:.3g}, judged at the precision of {raw.dtype})"
            )
        # eigh (LAPACK syevd) reads the lower triangle; within sym_rtol that is as good as symmetrizing
        evals, U = np.linalg.eigh(K, UPLO="L")
        evals, U = evals[::-1], U[:, ::-1]
        lam_max = max(float(evals[0]), 0.0)
        if evals[-1] < -psd_rtol * max(lam_max, scale):
            raise ValueError(
                f"K is not positive semi-definite: smallest eigenvalue {evals[-1] * unit:.3g} is below "
                f"-psd_rtol * lambda_max = {-psd_rtol * max(lam_max, scale) * unit:.3g} "
                f"(psd_rtol={psd_rtol:.3g}, judged at the precision of {raw.dtype})"
            )
        return cls._finish(_unscale(evals, unit, "K"), np.ascontiguousarray(U), None, rank_rtol)

    @classmethod
    def from_features(cls, X: ArrayLike, *, rank_rtol: float | None = None) -> Spectrum:
        r"""Spectrum of the linear kernel ``K = X Xᵀ`` from the thin SVD ``X = U S Vᵀ``.

        The weight-space eigenvalues of ``XᵀX`` are the same ``λ_k = s_k²``; the minimum-norm
        least-squares solution has coordinates ``w*_k = z_k / s_k`` along ``V``.

        Args:
          X: design matrix, shape ``(n, d)``.
          rank_rtol: eigenvalues ``λ_k = s_k² ≤ rank_rtol · λ_max`` are set to 0, in ``[0, 1)``.
            Default ``10 max(n, d) ε`` applied to the singular values (as ``matrix_rank``, with a
            safety factor 10), i.e. ``(10 max(n, d) ε)²`` on eigenvalues.

        Returns:
          The spectrum with ``U`` of shape ``(n, m)`` and ``V`` of shape ``(d, m)``,
          ``m = min(n, d)``. ``X`` is decomposed divided by a power of two when ``max|X|`` lies
          outside ``[2⁻²⁵⁶, 2²⁵⁶]``.

        Raises:
          ValueError: ``X`` not 2-D or not finite; ``rank_rtol`` outside ``[0, 1)``; an
            eigenvalue ``s_k²`` beyond the float64 range.
        """
        X = as_float_array(X, "X", ndim=(2,))
        n, d = X.shape
        if n == 0 or d == 0:
            raise ValueError(f"X must have at least one row and one column, got shape {X.shape}")
        rank_rtol = (10 * max(n, d) * _EPS) ** 2 if rank_rtol is None else _rtol(rank_rtol, "rank_rtol")
        scale = float(max(X.max(), -X.min()))
        p = float(2.0 ** np.round(np.log2(scale))) if scale > 0 and not 2.0**-256 <= scale <= 2.0**256 else 1.0
        U, s, Vt = scipy.linalg.svd(X / p, full_matrices=False, check_finite=False, lapack_driver="gesdd")
        return cls._finish(_unscale(s, p, "X", power=2), U, np.ascontiguousarray(Vt.T), rank_rtol)

    @classmethod
    def _finish(cls, evals: np.ndarray, U: np.ndarray, V: np.ndarray | None, rank_rtol: float) -> Spectrum:
        evals = np.clip(np.asarray(evals, dtype=np.float64), 0.0, None)
        rank_tol = rank_rtol * float(evals[0]) if evals.size else 0.0
        evals = np.where(evals > rank_tol, evals, 0.0)
        for arr in (evals, U) + ((V,) if V is not None else ()):
            arr.setflags(write=False)
        return cls(evals=evals, U=U, V=V, rank_tol=rank_tol)

    # ------------------------------------------------------------------ properties
    @property
    def n(self) -> int:
        """Number of sample points (rows of ``U``)."""
        return self.U.shape[0]

    @property
    def rank(self) -> int:
        """Numerical rank: the number of eigenvalues above ``rank_tol``."""
        return int(np.count_nonzero(self.evals))

    @property
    def is_features(self) -> bool:
        """True when built from a design matrix (weights available)."""
        return self.V is not None

    @property
    def singular_values(self) -> np.ndarray:
        """``s_k = √λ_k``, the singular values of the design matrix (or kernel square root)."""
        return np.sqrt(self.evals)

    def __repr__(self) -> str:
        """One line: n, kind, rank and the top eigenvalues."""
        kind = f"features d={self.V.shape[0]}" if self.V is not None else "kernel"
        top = np.array2string(self.evals[:3], precision=4)
        return f"Spectrum(n={self.n}, {kind}, rank={self.rank}, top evals={top})"

    # ------------------------------------------------------------------ projections
    def project(self, y: ArrayLike, *, name: str = "y") -> np.ndarray:
        r"""Coordinates ``z = Uᵀ y`` of (multi-output) labels in the eigenbasis.

        Args:
          y: shape ``(n,)`` or ``(n, k)``.
          name: argument name used in error messages.

        Returns:
          Shape ``(m,)`` or ``(m, k)``.
        """
        y = self._labels(y, name)
        return self.U.T @ y

    def reconstruct(self, z: ArrayLike) -> np.ndarray:
        r"""Inverse of :meth:`project` on ``span(U)``: labels ``U z`` from eigen-coordinates ``z``.

        Args:
          z: coordinates along the ``m`` columns of ``U`` (one row per mode, in the order of
            ``evals``), shape ``(m,)`` or ``(m, k)``; finite real numbers.

        Returns:
          ``U z``, shape ``(n,)`` or ``(n, k)``. ``reconstruct(project(y))`` is the orthogonal
          projection of ``y`` onto ``span(U)``, i.e. ``y − complement(y)``.

        Raises:
          TypeError: ``z`` not real numbers.
          ValueError: ``z`` not 1-D or 2-D, not finite, or with a row count other than ``m``.
        """
        z = as_float_array(z, "z", ndim=(1, 2))
        if z.shape[0] != self.evals.size:
            raise ValueError(f"z has {z.shape[0]} rows but the spectrum has {self.evals.size} modes")
        return self.U @ z

    def complement(self, y: ArrayLike, *, name: str = "y") -> np.ndarray:
        r"""The part of ``y`` outside ``span(U)``: ``y − U Uᵀ y``.

        Exactly 0 (no round-off) when ``U`` is square, as for every spectrum from a kernel and for
        features with ``d ≥ n``; nonzero only for features with ``d < n``.

        Args:
          y: labels, shape ``(n,)`` or ``(n, k)``; finite real numbers.
          name: argument name used in error messages (default ``"y"``).

        Returns:
          The residual, same shape as ``y``; orthogonal to every column of ``U`` up to round-off.

        Raises:
          TypeError: ``y`` not real numbers.
          ValueError: ``y`` not 1-D or 2-D, not finite, or with a row count other than ``n``.
        """
        y = self._labels(y, name)
        if self.U.shape[1] == self.n:
            return np.zeros_like(y)
        return y - self.U @ (self.U.T @ y)

    def kernel(self) -> np.ndarray:
        """The kernel ``U diag(λ) Uᵀ`` rebuilt from the (rank-truncated) spectrum."""
        return (self.U * self.evals) @ self.U.T

    def _labels(self, y: ArrayLike, name: str) -> np.ndarray:
        y = as_float_array(y, name, ndim=(1, 2))
        if y.shape[0] != self.n:
            raise ValueError(f"{name} has {y.shape[0]} rows but the spectrum has n={self.n} points")
        return y


def _max_asymmetry(K: np.ndarray, block: int = 256) -> float:
    """``max|K − Kᵀ|`` over the lower triangle in row blocks (cache friendly, no n × n temporaries)."""
    n = K.shape[0]
    out = 0.0
    for i in range(0, n, block):
        j = min(i + block, n)
        out = max(out, float(np.max(np.abs(K[i:j, :j] - K[:j, i:j].T))))
    return out


_RTOL_CAP = 1e-2  # default tolerances of low-precision (float16) input stay meaningful


def _rtol(x: float, name: str) -> float:
    """A relative tolerance in ``[0, 1)``, or a ValueError naming it."""
    x = positive_scalar(x, name, allow_zero=True)
    if x >= 1:
        raise ValueError(f"{name} is relative to the largest value and must lie in [0, 1), got {x!r}")
    return x


def _unscale(values: np.ndarray, unit: float, name: str, power: int = 1) -> np.ndarray:
    """Eigenvalues ``(values · unit)^power`` of the unscaled matrix; a clear error if they leave float64."""
    with np.errstate(over="ignore", under="ignore"):
        out = (values * unit) ** power
    if not np.all(np.isfinite(out)):
        log10 = power * (np.log10(float(np.max(values))) + np.log10(unit))
        raise ValueError(
            f"the largest eigenvalue of {name} is about 1e{log10:.1f}, beyond the float64 range "
            f"(max {np.finfo(np.float64).max:.3g}); divide {name} by a constant first"
        )
    return out


def _dtype_eps(a: np.ndarray) -> float:
    if np.issubdtype(a.dtype, np.floating):
        return float(max(np.finfo(a.dtype).eps, _EPS))
    return float(_EPS)


def _evals(evals: ArrayLike) -> np.ndarray:
    lam = as_float_array(evals, "evals", ndim=(0, 1))
    if (lam < 0).any():
        raise ValueError(f"evals must be >= 0 (got min {lam.min()!r}); clip round-off first")
    return lam


def _pinv(lam: np.ndarray) -> np.ndarray:
    """``1/λ`` on ``λ > 0`` and ``0`` on ``λ = 0`` (the pseudo-inverse of ``diag(λ)``)."""
    pos = lam > 0
    return np.where(pos, 1.0 / np.where(pos, lam, 1.0), 0.0)


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
        a = np.asarray(self.a, dtype=np.float64)
        g = np.asarray(self.a_over_eval, dtype=np.float64)
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
        """
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
        return cls(np.ones_like(lam), _pinv(lam))

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
        if isinstance(w, Filter) or isinstance(w, bool) or not np.isscalar(w) or not np.isfinite(w):
            return NotImplemented
        return Filter(w * self.a, w * self.a_over_eval)

    __rmul__ = __mul__

    def __getitem__(self, index) -> Filter:
        """Index the leading axes ``S`` (the last axis, the modes, is kept)."""
        return Filter(self.a[index], self.a_over_eval[index])

    @staticmethod
    def stack(filters: Sequence[Filter]) -> Filter:
        """Stack filters of equal shape along a new leading axis.

        Args:
          filters: the filters.

        Returns:
          A filter of shape ``(len(filters),) + shape``.
        """
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
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if normalization == "mean":
        return float(n)
    if outputs is None:
        raise ValueError("normalization='per_output' needs outputs (the number k of outputs)")
    if isinstance(outputs, bool) or int(outputs) != outputs or outputs < 1:
        raise ValueError(f"outputs must be a positive integer, got {outputs!r}")
    return float(n) * int(outputs)


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
            object.__setattr__(self, "momentum", _beta(self.momentum))
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
            f = _ridge(lam, at)
        else:
            f = _time_filter(
                lam,
                at,
                method=self.method,
                learning_rate=self.learning_rate,
                momentum=self.momentum,
                allow_unstable=self.allow_unstable,
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
                return np.where(lam > 0, np.log(t) - np.log(lam + t), 0.0) * np.ones_like(t)
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
        return np.exp(self.log_remaining(spectrum, at, outputs=outputs))

    def record(self) -> dict:
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
    return _time_filter(_evals(evals), t, method="flow", learning_rate=learning_rate)


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
    return _time_filter(_evals(evals), t, method="gd", learning_rate=learning_rate, allow_unstable=allow_unstable)


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
    return _time_filter(
        _evals(evals),
        t,
        method="momentum",
        learning_rate=learning_rate,
        momentum=momentum,
        allow_unstable=allow_unstable,
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
    return _ridge(_evals(evals), ridge)


def _ridge(lam: np.ndarray, ridge: ArrayLike) -> Filter:
    c = as_times(ridge, "ridge")[..., None]
    if np.isinf(c).any():
        raise ValueError("ridge must be finite")
    denom = lam + c
    safe = np.where(denom > 0, denom, 1.0)
    a = np.where(lam > 0, lam / safe, 0.0)
    with np.errstate(over="ignore"):  # 1/λ of a subnormal λ at c = 0 is +inf, as the exact value overflows
        g = np.where(denom > 0, 1.0 / safe, 0.0)
    return Filter(a, g)


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
        beta = _beta(momentum)
        return 2.0 * (1.0 + beta) / lam_max
    return (1.0 if monotone else 2.0) / lam_max


def _beta(momentum: float) -> float:
    beta = positive_scalar(momentum, "momentum", allow_zero=True)
    if beta >= 1:
        raise ValueError(f"momentum must lie in [0, 1), got {beta!r}")
    return beta


def _time_filter(
    lam: np.ndarray,
    t: ArrayLike,
    *,
    method: Method,
    learning_rate: float = 1.0,
    momentum: float = 0.0,
    allow_unstable: bool = False,
) -> Filter:
    """The engine behind the flow, gd and momentum filters (``lam`` already validated)."""
    eta = positive_scalar(learning_rate, "learning_rate")
    t = as_times(t, "t", integer=method != "flow")
    beta = _beta(momentum) if method == "momentum" else 0.0
    if method != "momentum" and momentum != 0.0:
        raise ValueError(f"momentum={momentum!r} is only used with method='momentum'")
    q = eta * lam
    q_max = float(q.max()) if q.size else 0.0
    unstable = False
    if method != "flow":
        bound = 2.0 * (1.0 + beta)
        if q_max >= bound:
            unstable = True
            msg = (
                f"learning_rate={eta!r} is beyond stability: learning_rate * lambda_max = "
                f"{q_max:.6g} >= {bound:g}" + (" (2(1 + momentum))" if method == "momentum" else "")
            )
            if not allow_unstable:
                raise ValueError(msg + "; pass allow_unstable=True to compute diverging modes")
            if np.isinf(t).any():
                raise ValueError(msg + ", so t = inf has no limit")
    tt = t[..., None]
    with np.errstate(over="ignore", invalid="ignore"):
        if method == "flow":
            a, h = _flow(q, tt)
        elif method == "gd":
            a, h = _gd(q, tt)
        else:
            a, h = _momentum(q, tt, beta)
        # Exact limits at t = inf: a = 1[λ > 0], a/λ = 1/λ or 0 (pseudo-inverse).
        inf = np.isinf(tt) & np.ones_like(q, dtype=bool)
        a = np.where(inf, np.where(lam > 0, 1.0, 0.0), a)  # λ > 0, even where η λ underflows
        g = np.where(inf, _pinv(lam), eta * h)
    if unstable and not (np.all(np.isfinite(a)) and np.all(np.isfinite(g))):
        bad = np.asarray(t)[~np.all(np.isfinite(a) & np.isfinite(g), axis=-1)]
        raise ValueError(
            f"with allow_unstable=True, learning_rate={eta!r} diverges beyond float64 range by "
            f"t={float(np.min(bad)):g} steps; use fewer steps t or a smaller learning_rate"
        )
    return Filter(a, g)


def _geom(delta: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``(1 − (1 − δ)^m)/δ`` for ``0 ≤ δ ≤ 1`` and finite ``m ≥ 0``, limit ``m`` at δ = 0."""
    delta = np.clip(delta, 0.0, 1.0)  # round-off may push δ past 1, where log1p(−δ) is NaN
    with np.errstate(divide="ignore", invalid="ignore"):
        num = -np.expm1(m * np.log1p(-delta))
        out = np.where(delta > 0, num / np.where(delta > 0, delta, 1.0), m)
    return np.where(m == 0, 0.0, out)


def _flow(q: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tf = np.where(np.isinf(t), 0.0, t)
    a = -np.expm1(-q * tf)
    return a, _geom_exp(q, tf)


def _geom_exp(q: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``(1 − e^{−q t})/q`` with limit ``t`` at q = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(q > 0, -np.expm1(-q * t) / np.where(q > 0, q, 1.0), t)
    return out


def _gd(q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.where(np.isinf(s), 0.0, s)
    mono = q <= 1.0
    qm = np.where(mono, q, 0.0)
    # Monotone modes (q ≤ 1): a = −expm1(s log1p(−q)) and a/q = G_s(q), no cancellation.
    # Oscillating modes (1 < q < 2): a = 1 − (1 − q)^s, a/q has no cancellation since q > 1.
    a_osc = 1.0 - np.power(1.0 - np.where(mono, 2.0, q), s)
    a = np.where(mono, qm * _geom(qm, s), a_osc)
    h = np.where(mono, _geom(qm, s), a_osc / np.where(mono, 1.0, q))
    return a, h


def _momentum(q: np.ndarray, s: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Heavy-ball ``(a, a/q)`` per mode, for every ``β ∈ [0, 1)`` (issue 14: no NaN, no underflow).

    ``e = 1 − a`` comes from :func:`_momentum_remainder`, a closed form without cancellation or
    intermediate under/overflow for every β, including β whose square root or square underflows.
    Where ``1 − e < 1/4`` would cancel, ``a = q · (a/q)`` with ``a/q`` from :func:`_momentum_sum`
    (when it has a cancellation-free form there); elsewhere ``a/q = (1 − e)/q``. β = 0 is
    gradient descent, exactly.

    Args:
      q: ``η λ ≥ 0`` per mode.
      s: whole numbers of steps (``inf`` is a placeholder, replaced by the caller), broadcast
        against ``q``.
      beta: momentum β in ``[0, 1)``.

    Returns:
      ``(a, a/q)``, broadcast shape of ``q`` and ``s``.
    """
    s = np.where(np.isinf(s), 0.0, s)
    q, s = np.broadcast_arrays(q, s)
    if beta == 0.0:
        return _gd(q, s)
    shape = q.shape
    q, s = (np.ravel(x).astype(np.float64) for x in (q, s))
    with np.errstate(all="ignore"):  # branches pick their entries with masks; the rest is discarded
        roots = _momentum_roots(q, beta)
        e = _momentum_remainder(q, s, beta, roots)
        h, ok = _momentum_sum(q, s, beta, roots)
        a_e = 1.0 - e
        use_h = ok & (a_e < 0.25)
        a = np.where(use_h, q * h, a_e)
        h = np.where(use_h, h, a_e / np.where(q > 0, q, 1.0))
    a, h = np.where(s == 0, 0.0, a), np.where(s == 0, 0.0, h)
    return a.reshape(shape), h.reshape(shape)


@dataclass(frozen=True)
class _Roots:
    """Root geometry of ``μ² − b μ + β``, ``b = 1 + β − q`` (see :func:`_momentum_roots`)."""

    r: float  # √β, the modulus of complex roots
    pos: np.ndarray  # b ≥ 0
    b: np.ndarray  # 1 + β − q, as (1 − q) + β
    p: np.ndarray  # δ_1 + δ_2 = 1 − β + q, where δ = 1 − μ
    disc: np.ndarray  # b² − 4β = (q − (1 − r)²)(q − (1 + r)²)
    dev: np.ndarray  # |b|/2 − r: ≥ 0 real roots, < 0 complex roots


def _momentum_roots(q: np.ndarray, beta: float) -> _Roots:
    r"""Root geometry of heavy ball's characteristic polynomial, without cancellation.

    ``(1 − √β)²`` is formed as ``((1 − β)/(1 + √β))²`` (exact as β → 1); the discriminant as the
    product ``(q − (1 − r)²)(q − (1 + r)²)``, so it vanishes exactly at double roots, and
    ``|b|/2 − r`` as ``((1 − r)² − q)/2`` (``b ≥ 0``) or ``(q − (1 + r)²)/2`` (``b < 0``), the
    distance to the double root in the scale of ``q``. ``b = (1 − q) + β`` is exact where it
    is small (Sterbenz).

    Args:
      q: ``η λ ≥ 0``.
      beta: ``β ∈ (0, 1)``.

    Returns:
      The :class:`_Roots`.
    """
    r = float(np.sqrt(beta))
    lo = ((1.0 - beta) / (1.0 + r)) ** 2
    hi = (1.0 + r) ** 2
    pos = q <= 1.0 + beta
    dev = np.where(pos, 0.5 * (lo - q), 0.5 * (q - hi))
    return _Roots(r, pos, (1.0 - q) + beta, (1.0 - beta) + q, (q - lo) * (q - hi), dev)


def _momentum_remainder(q: np.ndarray, s: np.ndarray, beta: float, g: _Roots) -> np.ndarray:
    r"""``e_s = 1 − a_s`` of heavy ball (``β > 0``) in one of three cancellation-free forms.

    * Well-separated real roots ``μ_1`` (larger modulus), ``μ_2``, ``ρ = μ_2/μ_1 ∈ [0, 1)``:
      ``e_s = μ_1^s [1 + (1 − μ_1) ρ (1 − ρ^s)/(1 − ρ)]`` (all terms of one sign), with
      ``log μ_1 = log1p(−δ_1)``, ``δ_1 = q/δ_2``, ``δ_2 = (1 − β + q + √disc)/2`` where ``μ_1 > ½``
      (so ``s`` up to 1e12 keeps relative accuracy) and ``ρ = β/μ_1²`` (no ``√β`` to underflow).
    * Near-double real roots (``disc < 8 β q``), ``μ = ±r e^{±φ}``, ``cosh φ = |b|/2r``:
      ``e_s = r^s [cosh((s + ½)φ)/cosh(φ/2) + (1 − r) sinh(sφ)/sinh φ]`` (``b ≥ 0``) or
      ``(−r)^s [sinh((s + ½)φ)/sinh(φ/2) − (1 − r) sinh(sφ)/sinh φ]`` (``b < 0``), in
      exponentials of ``−φ`` times ``exp(s(log r + φ))``.
    * Complex roots ``±r e^{±iθ}``: the same with ``φ = iθ``; ``θ`` and the phases ``mθ`` are
      formed as ``m π/2 − m ψ``, ``ψ = asin(|b|/2r)``, when ``θ > π/3`` (the phase near a zero
      of ``cos`` keeps its relative accuracy).

    ``φ = 2 asinh(√(u/2))``, ``θ = 2 asin(√(v/2))``, ``u = −v = (|b|/2 − r)/r``: relative accuracy
    as the roots merge. ``1 − r = (1 − β)/(1 + r)``.

    Args:
      q: ``η λ ≥ 0``.
      s: whole numbers of steps, same shape as ``q``.
      beta: ``β ∈ (0, 1)``.
      g: :func:`_momentum_roots` of ``q``.

    Returns:
      ``e_s``, same shape as ``q``.
    """
    real = g.disc >= 0
    near = real & (g.disc < 8.0 * beta * q)
    sign = np.where(~g.pos & (np.mod(s, 2.0) == 1.0), -1.0, 1.0)  # (sign of the roots)^s
    e = np.ones_like(q)
    for form, mask in ((_remainder_separated, real & ~near), (_remainder_near, near), (_remainder_complex, ~real)):
        i = np.flatnonzero(mask & (s > 0))
        if i.size:
            sub = _Roots(g.r, g.pos[i], g.b[i], g.p[i], g.disc[i], g.dev[i])
            e[i] = sign[i] * form(q[i], s[i], beta, sub)
    return e


def _remainder_separated(q: np.ndarray, s: np.ndarray, beta: float, g: _Roots) -> np.ndarray:
    """``e_s`` (up to the sign ``(±1)^s`` of the roots) for well-separated real roots."""
    pos, b, p = g.pos, g.b, g.p
    sq = np.sqrt(g.disc)
    mu1 = np.where(pos, 0.5 * (b + sq), 0.5 * (b - sq))
    d1 = q / (0.5 * (p + sq))  # 1 − μ_1 when b ≥ 0
    close = pos & (mu1 > 0.5)
    log_mu1 = np.where(close, np.log1p(-d1), np.log(np.abs(mu1)))
    one_m_mu1 = np.where(close, d1, 1.0 - mu1)
    one_m_rho = np.clip(sq / np.abs(mu1), 0.0, 1.0)
    rho = np.minimum(beta / mu1**2, 1.0)
    log_rho = np.where(one_m_rho < 0.5, np.log1p(-one_m_rho), np.log(rho))
    geo = np.where(one_m_rho > 0, -np.expm1(s * log_rho) / np.where(one_m_rho > 0, one_m_rho, 1.0), s)
    return np.exp(s * log_mu1) * (1.0 + one_m_mu1 * rho * geo)


def _remainder_near(q: np.ndarray, s: np.ndarray, beta: float, g: _Roots) -> np.ndarray:
    """``e_s`` (up to the sign ``(±1)^s`` of the roots) for near-double real roots (hyperbolic)."""
    r = g.r
    omr = (1.0 - beta) / (1.0 + r)  # 1 − r
    phi = 2.0 * np.arcsinh(np.sqrt(g.dev / r / 2.0))
    pp = np.where(phi > 0, phi, 1.0)
    sinh_ratio = np.where(phi > 0, np.expm1(-2.0 * s * pp) / np.expm1(-2.0 * pp), s)  # e^{−(s−1)φ} sinh sφ/sinh φ
    cosh_half = np.where(phi > 0, (1.0 + np.exp(-(2.0 * s + 1.0) * phi)) / (1.0 + np.exp(-phi)), 1.0)
    sinh_half = np.where(phi > 0, np.expm1(-(2.0 * s + 1.0) * pp) / np.expm1(-pp), 2.0 * s + 1.0)
    tail = omr * np.exp(-phi) * sinh_ratio
    return np.exp(s * (0.5 * np.log(beta) + phi)) * np.where(g.pos, cosh_half + tail, sinh_half - tail)


def _remainder_complex(q: np.ndarray, s: np.ndarray, beta: float, g: _Roots) -> np.ndarray:
    """``e_s`` (up to the sign ``(±1)^s`` of the roots) for complex roots (trigonometric)."""
    r = g.r
    omr = (1.0 - beta) / (1.0 + r)  # 1 − r
    v = np.clip(-g.dev / r, 0.0, 2.0)
    wide = v > 0.5
    th = np.where(wide, 0.0, 2.0 * np.arcsin(np.sqrt(v / 2.0)))
    psi = np.where(wide, np.arcsin(np.clip(np.abs(g.b) / (2.0 * r), 0.0, 1.0)), 0.0)
    cos_s, sin_s = _quarter_turns(np.where(wide, 2.0 * s, 0.0), s * psi, s * th)
    cos_h, sin_h = _quarter_turns(np.where(wide, 2.0 * s + 1.0, 0.0), (s + 0.5) * psi, (s + 0.5) * th)
    cos_1, sin_1 = _quarter_turns(np.where(wide, 1.0, 0.0), 0.5 * psi, 0.5 * th)
    _, sin_th = _quarter_turns(np.where(wide, 2.0, 0.0), psi, th)
    sin_ratio = sin_s / sin_th
    bracket = np.where(g.pos, cos_h / cos_1 + omr * sin_ratio, sin_h / sin_1 - omr * sin_ratio)
    return np.exp(s * 0.5 * np.log(beta)) * bracket


def _momentum_sum(q: np.ndarray, s: np.ndarray, beta: float, g: _Roots) -> tuple[np.ndarray, np.ndarray]:
    r"""``a_s/q = Σ_{m=1}^{s} D_m`` where it has a cancellation-free form, and where that is.

    With ``δ_{1,2} = 1 − μ_{1,2}`` (``δ_1 + δ_2 = 1 − β + q``, ``δ_1 δ_2 = q``) and ``n = s + 1``:

    * ``n · max|δ| ≤ ½``: the series ``Σ_{j≥1} (−1)^{j+1} C(n, j+1) h_{j−1}(δ_1, δ_2)``
      (``h_k`` the complete homogeneous symmetric polynomials, real for complex roots too; terms
      fall by ``n max|δ|/(j + 2)``, 24 terms reach ``1e-30``);
    * real roots in ``[0, 1]`` with ``δ_1 ≤ δ_2/2`` and ``n δ_2 > ½``: the divided difference
      ``[G(δ_1) − G(δ_2)]/(δ_2 − δ_1)``, ``G(δ) = (1 − (1 − δ)^n)/δ``.

    Args:
      q: ``η λ ≥ 0``.
      s: whole numbers of steps, same shape as ``q``.
      beta: ``β ∈ (0, 1)``.
      g: :func:`_momentum_roots` of ``q``.

    Returns:
      ``(h, ok)``: the sum (NaN where ``ok`` is False), and where it is valid.
    """
    pos, p, disc = g.pos, g.p, g.disc
    real = disc >= 0
    n = s + 1.0
    sq = np.sqrt(np.where(real, disc, 0.0))
    d2 = np.where(real, 0.5 * (p + sq), np.sqrt(q))  # max |δ| (b ≥ 0)
    d1 = q / d2
    ser = n * np.where(real & ~pos, np.inf, d2) <= 0.5
    dd = real & pos & ~ser & (d1 <= 0.5 * d2)

    h = np.full_like(q, np.nan)

    # series in units of d = max|δ|: c_j = C(n, j+1) d^{j−1}, hh_k = h_k/d^k
    i = np.flatnonzero(ser)
    d, ni = d2[i], n[i]
    pd, qd = p[i] / d, (q[i] / d) / d
    c = 0.5 * ni * (ni - 1.0)
    hh_prev, hh = np.zeros_like(d), np.ones_like(d)
    total = c * hh
    for j in range(1, 24):
        c = c * np.maximum(ni - j - 1.0, 0.0) / (j + 2.0) * d
        hh_prev, hh = hh, pd * hh - qd * hh_prev
        total = total + (-1.0) ** j * c * hh
    h[i] = total

    # divided difference of G at δ_1 < δ_2 (both roots in [0, 1]); log μ_2 = log(β/μ_1) if μ_2 < ½
    i = np.flatnonzero(dd)
    d1, d2, ni = d1[i], d2[i], n[i]
    l1 = np.log1p(-d1)
    l2 = np.where(d2 < 0.5, np.log1p(-np.minimum(d2, 0.5)), np.log(beta) - l1)
    G1 = np.where(d1 > 0, -np.expm1(ni * l1) / np.where(d1 > 0, d1, 1.0), ni)
    G2 = -np.expm1(ni * l2) / d2
    h[i] = (G1 - G2) / sq[i]
    return h, ser | dd


_HALF_SQRT2 = float(np.sqrt(0.5))
_COS_QUARTER = np.array([1.0, _HALF_SQRT2, 0.0, -_HALF_SQRT2, -1.0, -_HALF_SQRT2, 0.0, _HALF_SQRT2])
_SIN_QUARTER = np.roll(_COS_QUARTER, 2)  # sin(kπ/4) = cos((k − 2)π/4)


def _quarter_turns(n: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cos`` and ``sin`` of ``n π/4 − x + y`` for whole ``n ≥ 0``, with ``n π/4`` reduced exactly.

    Args:
      n: whole numbers of eighth turns.
      x: angle subtracted.
      y: angle added.

    Returns:
      ``(cos, sin)``, broadcast shape.
    """
    k = np.mod(n, 8.0).astype(np.intp)
    c, s = _COS_QUARTER[k], _SIN_QUARTER[k]
    alpha = y - x
    ca, sa = np.cos(alpha), np.sin(alpha)
    return c * ca - s * sa, s * ca + c * sa
