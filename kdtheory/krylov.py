r"""Certified block Lanczos for spectral filters of a kernel operator (large n, no eigendecomposition).

Training from an initial output ``f_0`` moves the training predictions by a matrix function of the
kernel applied to the residual ``R = y − f_0`` (docs/theory.md §2, §9, §12):

.. math::

    f = f_0 + F(K)\,R,\qquad f(x) = f_0(x) + k(x, X)\,G(K)\,R,\qquad G = F/λ,

where ``F`` is the spectral filter of a recipe or composite (:class:`kdtheory.filters.Filter`).
This module is the solver behind :func:`kdtheory.dynamics.train`, :func:`kdtheory.dynamics.apply_filter`
and the :mod:`kdtheory.distill` composites when their source is a
:class:`~kdtheory.operators.KernelOperator`; its options are one :class:`Lanczos` value and its
statistics land in ``Trajectory.solver``.

**Method.** Block Lanczos with full reorthogonalization: ``m`` block products build an orthonormal
basis ``V`` of ``span{R, KR, …, K^{m−1}R}`` and ``T = Vᵀ K V = S Θ Sᵀ``; then
``F(K)R ≈ V F(T) Vᵀ R = Σ_i F(θ_i) y_i ĉ_iᵀ`` with Ritz vectors ``y_i = V s_i`` and coordinates
``ĉ_i = s_iᵀ Vᵀ R`` (``R = Σ_i y_i ĉ_iᵀ`` exactly, since ``R`` is the first block).

**Certificate (docs/theory.md §12).** Lanczos satisfies ``K V = V T + Q B E_mᵀ`` with ``Q`` the
next (orthonormal) block, so every Ritz pair has the residual ``(K − θ_i) y_i = Q b_i``,
``b_i = B E_mᵀ s_i``, ``β_i = ‖b_i‖``. For any polynomial ``p`` of degree ``≤ m − 1`` the method is
exact (``p(K)R = V p(T) Vᵀ R``), so with ``g = F − p``

.. math::

    F(K)R − V F(T)Vᵀ R = Σ_i \bigl(g(K) − g(θ_i)\bigr) y_i ĉ_iᵀ = Σ_i Δ_i g(K)\, Q b_i ĉ_iᵀ,
    \qquad Δ_i g(λ) = \frac{g(λ) − g(θ_i)}{λ − θ_i},

and, the spectrum of ``K`` lying in ``Σ = [0, Λ]``,

.. math::

    ‖F(K)R − V F(T)Vᵀ R‖_F ≤ Σ_i ‖ĉ_i‖ \min\Bigl(β_i \max_{λ∈Σ}|Δ_i g(λ)|,\; \max_{λ∈Σ}|g(λ) − g(θ_i)|\Bigr).

This holds for **every** filter the algebra produces (flow, GD, momentum, ridge, distillation
composites, ``t = ∞``), whatever the spectrum, because it uses only the Lanczos relation and
``K ⪰ 0``. We evaluate it for ``p = 0`` and for ``p(λ) = λ h(λ)`` with ``h`` the Chebyshev
interpolant of degree ``m − 2`` of ``G = F/λ`` on ``[0, Λ]`` (GD of ``s ≤ m − 1`` steps is then
certified exact; a smooth filter gets the uniform polynomial error) and keep the smaller. The
maxima are taken on a grid of ``Σ`` (Chebyshev points, a geometric grid towards 0 and the rank
threshold) up to ``tr K`` where the operator knows its diagonal (``λ_max ≤ tr K``, a proof);
``Λ = θ_max + ‖B‖₂`` (an estimate) sets the polynomial's interval and the GD stability check
(without a diagonal, e.g. NTK-vector products, the grid stops at ``Λ``: there the top of the
spectrum is estimated, not proved). Eigenvalues at or below ``rank_rtol · θ_max`` count as exactly
0, as in :meth:`kdtheory.spectrum.Spectrum.from_kernel`, so the filter jumps there at ``t = ∞``
and ``Δ_i F ≈ 1/θ_i``: the pseudo-inverse (or ``λ_min t ≫ 1``) is certified only once the bottom of
the spectrum that ``R`` excites is resolved (small ``β_i/θ_i``) or the Krylov space is invariant
— which is what distinguishes "K has a null space ``y`` lies in" from "K is merely ill-conditioned".
A known lower bound of the nonzero spectrum (``Lanczos(spectrum_floor=…)``, e.g. an added jitter)
removes ``(threshold, floor)`` from ``Σ`` and certifies much earlier.

**Residual bounds of plain recipes.** The pair bound loses the cancellations that make Lanczos
accurate on a discrete spectrum (a triangle inequality over Ritz pairs, a worst case over
``Σ``). For gradient flow, gradient descent and ridge the filter solves a recursion, and the
residual of the Lanczos iterate in it is computable exactly: for flow ``u' = −Ku`` the iterate
``V e^{−σT} c`` has residual ``ρ(σ) = Q B E_mᵀ e^{−σT} c``, so ``‖e(τ)‖ ≤ ∫_0^τ ‖ρ‖`` (``e^{−K}``
contracts); for GD ``‖e_s‖ ≤ η Σ_{j<s} ‖B E_mᵀ (I − ηT)^j c‖`` (``ηλ_max ≤ 2``); for ridge the
residual of ``(K + c)α = R`` bounds both ``f`` and ``c α``; a distillation (zero start) composes
the teacher's bound with the student's started from the teacher's coordinates. Where they apply
the smaller bound is used; measured within 1.2–2× of the actual error (docs/theory.md §12).

**t = ∞ and the rank threshold.** For a projection-like filter (``t = ∞``, ridge 0) the train error
is exactly ``‖P_[0, thr] R‖``; the Gauss–Radau rule with a node at ``thr`` bounds that mass from
``R``'s moments, which the block Lanczos knows to degree ``2m − 1`` (Chebyshev–Markov–Stieltjes).
For filters continuous at 0 the certificate is for ``F(K)`` itself: the dense path's threshold
moves its answer by a round-off amount, reported as ``solver["threshold_effect"]``.

Test predictions use ``G``: ``‖K_x (G(K)R − V G(T)Vᵀ R)‖ ≤ ν ‖G(K)R − V G(T)Vᵀ R‖`` with the same
bound for ``G`` (``p = h``) and ``ν = ‖K_x‖₂`` (exact for a stored array; for an operator the
Frobenius norm estimated with 8 seeded Gaussian probes, times 1.5 — the one estimated factor).

Round-off: the relation holds to the size of the products' own error. We measure it — the
asymmetry of ``Vᵀ K V`` (a symmetric operator computed exactly gives a symmetric ``T``; float32
products do not), the columns dropped by deflation — and add the first-order effect of a
perturbation of that size (the filter's derivative and divided differences on the Ritz values,
Daleckii–Krein) to the bound. This floor is an estimate (the one part that is not a proof); it is
``ε κ`` relative for the pseudo-inverse, as for any backward-stable method.

The call iterates (checkpoints at every block product up to 8, then every ~12.5%) until the
train bound is ``≤ tolerance · ‖R‖`` and the test bound ``≤ tolerance · ‖R‖ · √(n_test/n)`` at
every point of the axis; otherwise, at ``max_iterations``, it raises :class:`ConvergenceError`
(``strict=False``: returns the result with ``solver["converged"] = False`` and the reason). An
invariant Krylov space (``B = 0``) makes the bound exactly 0: only the round-off floor remains.

Refused up front: a tolerance outside ``(0, 1)``, ``rank_rtol ∉ [0, 1)``, a basis of
``max_iterations`` blocks that cannot fit in the available memory (the message names the bytes).
Refused on the way: a Ritz value clearly below 0 (the operator is not PSD — an indefinite matrix
has no gradient-flow fixed point of this form) or a clearly asymmetric operator.

Convergence. Flow at time ``t`` converges once ``m ≳ √(Λ t)``; GD at ``s`` steps is certified at
``m = s + 1`` block products; ``t = ∞`` converges like conjugate gradients, with ``√κ`` — slowly on
an ill-conditioned kernel, which the certificate reports rather than hides.

References:
  Saad (1992); Hochbruck & Lubich (1997); Musco, Musco & Sidford (2018), *Stability of the Lanczos
  method for matrix function approximation*; Chen, Greenbaum, Musco & Musco (2022), *Error bounds
  for Lanczos-based matrix function approximation*; Trefethen (2019), *Approximation Theory and
  Approximation Practice* (Chebyshev interpolation).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import scipy.fft
import scipy.linalg
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, as_times, positive_scalar
from kdtheory.filters import Filter, Recipe
from kdtheory.spectrum import Spectrum
from kdtheory.trajectory import Trajectory

if TYPE_CHECKING:  # the operators need JAX; the closed forms import this module without it
    from kdtheory.operators import KernelOperator

__all__ = [
    "Lanczos",
    "KrylovResult",
    "solve",
    "check",
    "RitzSpectrum",
    "ConvergenceError",
    "is_operator",
    "basis_bytes",
]

_EPS = np.finfo(np.float64).eps
FilterOf = Callable[[Spectrum], Filter]
#: What the filter is, when it is a plain recipe: ``(method, rate, axis)`` with method ``"flow"``
#: (``F = 1 − e^{−rate·t·λ}``), ``"gd"`` (``F = 1 − (1 − rate·λ)^s``) or ``"ridge"``
#: (``F = λ/(λ + c/rate)``), ``rate`` the learning rate times the normalization's eigenvalue scale
#: (1/scale for ridge) and ``axis`` the flat times/steps/strengths. It enables the residual bounds.
#: A distillation is ``("distill", student, teacher, w)`` with the student's structure, the
#: teacher's ``(method, rate, teacher_t)`` and the weight ``w`` on the teacher.
Structure = tuple[Any, ...]


def recipe_structure(recipe: Recipe, axis: ArrayLike, n: int, k: int) -> Structure | None:
    """The :data:`Structure` ``(method, rate, axis)`` of a plain flow / gd / ridge recipe, else ``None``.

    Args:
      recipe: the recipe.
      axis: its times, whole steps or ridge strengths, any shape (flattened).
      n: the kernel's number of training points (for the normalization's eigenvalue scale).
      k: the number of outputs.

    Returns:
      ``(method, learning_rate · scale, flat axis)`` for flow and gd, ``("ridge", scale, flat
      axis)`` for ridge, ``None`` for momentum (no residual bound).
    """
    scale = recipe.eigenvalue_scale(n, k)
    flat = np.ravel(as_times(axis, "ridge" if recipe.method == "ridge" else "t"))
    if recipe.method in ("flow", "gd"):
        return recipe.method, recipe.learning_rate * scale, flat
    if recipe.method == "ridge":
        return "ridge", scale, flat
    return None


class StructuredFilter:
    """A ``Spectrum -> Filter`` function that carries its :data:`Structure` for the residual bounds.

    Args:
      filter_of: the filter as a function of a spectrum (called with the Ritz values).
      structure: its :data:`Structure`, or ``None`` (then only the pair bound applies).
    """

    def __init__(self, filter_of: FilterOf, structure: Structure | None):
        """Bind the function and its structure."""
        self.filter_of, self.structure = filter_of, structure

    def __call__(self, spec: Spectrum) -> Filter:
        """The filter on ``spec``."""
        return self.filter_of(spec)


@dataclass(frozen=True)
class Lanczos:
    r"""Options of the certified block-Lanczos solver (one small value, like diffrax's ``SaveAt``).

    Pass it as ``solver=`` to :func:`kdtheory.dynamics.train` and friends when the source is a
    kernel operator.

    Attributes:
      tolerance: required accuracy relative to ``‖y − f_0‖`` (train; test scaled by
        ``√(n_test/n)``), in ``(0, 1)``.
      max_iterations: the most block products with ``K`` (a positive integer).
      strict: raise :class:`ConvergenceError` when the tolerance is not certified; ``False``
        returns the result marked unconverged (``Trajectory.solver["converged"]``) with the reason.
      rank_rtol: Ritz values ``≤ rank_rtol · θ_max`` count as 0, in ``[0, 1)`` (default
        ``10 n ε``, as :meth:`kdtheory.spectrum.Spectrum.from_kernel`).
      spectrum_floor: a known lower bound (kernel units) on every eigenvalue of ``K`` above the
        rank threshold, e.g. a jitter ``σ²`` added to the kernel; ``None`` assumes nothing.
        A wrong floor voids the certificate.

    Raises:
      ValueError: an option out of range (the message names it).
    """

    tolerance: float = 1e-6
    max_iterations: int = 500
    strict: bool = True
    rank_rtol: float | None = None
    spectrum_floor: float | None = None

    def __post_init__(self) -> None:
        """Validate every option, naming it."""
        tol = positive_scalar(self.tolerance, "tolerance")
        if tol >= 1:
            raise ValueError(f"tolerance must lie in (0, 1), got {tol!r}")
        mi = self.max_iterations
        if isinstance(mi, bool) or not isinstance(mi, (int, np.integer)) or mi < 1:
            raise ValueError(f"max_iterations must be a positive integer, got {mi!r}")
        if not isinstance(self.strict, (bool, np.bool_)):
            raise ValueError(f"strict must be True or False, got {self.strict!r}")
        if self.rank_rtol is not None:
            r = positive_scalar(self.rank_rtol, "rank_rtol", allow_zero=True)
            if r >= 1:
                raise ValueError(f"rank_rtol must lie in [0, 1) (a fraction of the largest Ritz value), got {r!r}")
        if self.spectrum_floor is not None:
            positive_scalar(self.spectrum_floor, "spectrum_floor", allow_zero=True)


@dataclass(frozen=True, eq=False)
class RitzSpectrum(Spectrum):
    r"""The Ritz values ``θ`` of a kernel on a Krylov space, as a :class:`~kdtheory.spectrum.Spectrum`.

    What a filter or composite of the algebra needs from a spectrum: the eigenvalues and the
    number of points ``n`` (for the ``"mean"``/``"per_output"`` normalizations). The Ritz vectors
    are not formed: ``U`` is ``None``, so anything that needs eigenvectors fails loudly.

    Attributes:
      points: the number ``n`` of training points of the kernel.
    """

    points: int = 0

    @property
    def n(self) -> int:
        """Number of training points of the kernel (not of Ritz values)."""
        return self.points

    @classmethod
    def of_values(cls, evals: ArrayLike, n: int, rank_tol: float = 0.0) -> RitzSpectrum:
        """Ritz values ``evals`` of an ``n``-point kernel, without vectors.

        Args:
          evals: the Ritz values, ``(m,)``.
          n: the kernel's number of training points.
          rank_tol: the rank threshold recorded with the values.

        Returns:
          A :class:`RitzSpectrum` whose ``U`` and ``V`` are ``None``.
        """
        return cls(evals=np.asarray(evals, float), U=None, V=None, rank_tol=rank_tol, points=n)  # type: ignore[arg-type]  # values only: U, V are None by design


class ConvergenceError(RuntimeError):
    """The Krylov result could not be certified to its tolerance.

    Either ``max_iterations`` block products were not enough, or the Krylov space is complete and
    the round-off floor itself exceeds the tolerance; the message says which and by how much.

    Attributes:
      trajectory: the uncertified result, its bounds in ``trajectory.solver``.
    """

    def __init__(self, message: str, trajectory: Trajectory):
        """Carry the message and the uncertified trajectory."""
        super().__init__(message)
        self.trajectory = trajectory


@dataclass(frozen=True, eq=False)
class KrylovResult:
    r"""What the solver returns (the callers build the :class:`~kdtheory.trajectory.Trajectory`).

    Attributes:
      change: ``F(K)R`` approximated, shape ``(T, n, k)`` (``T`` points of the axis).
      test_change: ``k(X_test, X) G(K) R`` approximated, ``(T, n_test, k)``, or ``None``.
      filter: the filter on the Ritz values, ``(T, M)``.
      coords: ``R``'s coordinates along the Ritz vectors, ``(M, k)``.
      norm: RKHS norm of ``F(K)R``, ``(T,)``.
      axis_shape: the filter's leading shape ``S`` (``T = prod(S)``).
      stats: the solver record for ``Trajectory.solver`` (JSON values).
    """

    change: np.ndarray
    test_change: np.ndarray | None
    filter: np.ndarray
    coords: np.ndarray
    norm: np.ndarray
    axis_shape: tuple[int, ...]
    stats: dict[str, Any] = field(default_factory=dict)


def is_operator(source: object) -> TypeGuard[KernelOperator]:
    """Whether ``source`` is a kernel operator (the Krylov path) rather than a spectrum.

    Args:
      source: a :class:`~kdtheory.spectrum.Spectrum` or a :class:`~kdtheory.operators.KernelOperator`.

    Returns:
      ``True`` for a kernel operator.
    """
    operators = sys.modules.get("kdtheory.operators")  # no operator exists unless it was imported
    return operators is not None and isinstance(source, operators.KernelOperator)


# ---------------------------------------------------------------------- block Lanczos
class _BlockLanczos:
    """Block Lanczos with full reorthogonalization; variable block widths (deflation).

    After ``products`` block products the basis ``V[:, :M]`` holds one block more than the
    products: ``known`` columns (every block whose product ``K Q_j`` is in ``H``) span the space
    on which ``T = Vᵀ K V`` is exact, and ``B`` holds the coefficients of the newest block in
    ``K Q_m`` (the ``B_{m+1}`` of ``K V_m = V_m T_m + Q_{m+1} B_{m+1} E_mᵀ``). ``dropped`` is the
    Frobenius norm of everything deflation discarded (a perturbation of ``K``).
    """

    def __init__(self, op: KernelOperator, R: np.ndarray, max_cols: int):
        """Start from the block ``R`` (rank-revealing QR)."""
        self.op, self.n = op, R.shape[0]
        self.max_cols = max_cols
        cap = min(max(4 * R.shape[1], 16), max_cols)
        self.V = np.empty((self.n, cap))
        self.H = np.zeros((cap, cap))
        self.M = 0
        self.bounds = [0]  # block j spans columns bounds[j]:bounds[j+1]
        self.knorm = 0.0
        self.products = 0
        self.exhausted = False
        self.dropped = 0.0
        Q, C, _, _ = self._qr(R, tol=max(R.shape) * _EPS * np.abs(R).max())
        self.coef0 = C  # R = Q C
        self._append(Q)
        self.B = np.zeros((0, Q.shape[1]))

    @staticmethod
    def _qr(W: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray, int, float]:
        """Rank-revealing ``W ≈ Q C``; columns with ``|R_ii| ≤ tol`` dropped (their norm returned)."""
        Q, Rr, piv = scipy.linalg.qr(W, mode="economic", pivoting=True, check_finite=False)
        d = np.abs(np.diag(Rr))
        r = int(np.count_nonzero(d > tol))
        C = np.empty((r, W.shape[1]))
        C[:, piv] = Rr[:r]
        return Q[:, :r], C, r, float(np.linalg.norm(Rr[r:]))

    def _append(self, Q: np.ndarray) -> None:
        r = Q.shape[1]
        if self.M + r > self.V.shape[1]:
            cap = min(max(2 * self.V.shape[1], self.M + r), max(self.max_cols, self.M + r))
            V = np.empty((self.n, cap))
            V[:, : self.M] = self.V[:, : self.M]
            H = np.zeros((cap, cap))
            H[: self.H.shape[0], : self.H.shape[1]] = self.H
            self.V, self.H = V, H
        self.V[:, self.M : self.M + r] = Q
        self.M += r
        self.bounds.append(self.M)

    @property
    def known(self) -> int:
        """Basis columns whose kernel products are known (``T`` is exact on them)."""
        return self.M if self.exhausted else self.bounds[-2]

    @property
    def blocks(self) -> int:
        """Number of blocks in the known basis (polynomials of degree ``< blocks`` are exact)."""
        return len(self.bounds) - (1 if self.exhausted else 2)

    def step(self) -> None:
        """One block product ``K Q_m``, orthogonalized against the whole basis twice."""
        lo, hi = self.bounds[-2], self.bounds[-1]
        W = self.op.matmat(self.V[:, lo:hi])
        self.products += 1
        self.knorm = max(self.knorm, float(np.linalg.norm(W)))  # Frobenius: ≥ the 2-norm, cheap
        Vm = self.V[:, : self.M]
        C = Vm.T @ W
        W -= Vm @ C
        C2 = Vm.T @ W
        W -= Vm @ C2
        self.H[: self.M, lo:hi] = C + C2
        Q, B, r, lost = self._qr(W, tol=10 * self.n * _EPS * max(self.knorm, np.finfo(float).tiny))
        if r > self.n - self.M:
            lost = float(np.hypot(lost, np.linalg.norm(B[self.n - self.M :])))
            r = self.n - self.M
        self.dropped = float(np.hypot(self.dropped, lost))
        Q, B = Q[:, :r], B[:r]
        if r:
            # a third pass after the QR, then Cholesky QR of the nearly orthonormal result:
            # V and the new block are orthonormal to round-off
            Q -= Vm @ (Vm.T @ Q)
            L = np.linalg.cholesky(Q.T @ Q)
            Q = scipy.linalg.solve_triangular(L, Q.T, lower=True, check_finite=False).T
            B = L.T @ B
        self.B = B
        if r == 0:
            self.exhausted = True
            return
        self._append(Q)
        self.H[self.bounds[-2] : self.M, lo:hi] = B

    def projected(self, M: int) -> tuple[np.ndarray, float]:
        """``T_M = V_Mᵀ K V_M`` (symmetrized) and the asymmetry ``‖H − Hᵀ‖_F/√2`` of the computed one."""
        H = self.H[:M, :M]
        return 0.5 * (H + H.T), float(np.linalg.norm(H - H.T)) / np.sqrt(2.0)


# ---------------------------------------------------------------------- the certificate
def _filter_on(filter_of: FilterOf, lam: np.ndarray, n: int, rank_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """``(a, a/λ)`` of the filter at the points ``lam`` (any order), each ``(T, len(lam))``."""
    a, g, _ = _filter_shaped(filter_of, lam, n, rank_tol)
    return a, g


def _filter_shaped(
    filter_of: FilterOf, lam: np.ndarray, n: int, rank_tol: float
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """:func:`_filter_on` and the filter's leading shape ``S``."""
    order = np.argsort(-lam, kind="stable")
    ev = lam[order]
    ev.setflags(write=False)
    filt = filter_of(RitzSpectrum.of_values(ev, n, rank_tol))
    if not isinstance(filt, Filter):
        raise TypeError(f"filter must return a kdtheory.filters.Filter, got {type(filt).__name__}")
    a, g = np.asarray(filt.a), np.asarray(filt.a_over_eval)
    if a.shape[-1:] != (lam.size,):
        raise ValueError(f"filter must return a Filter of shape S + (m,) with m={lam.size} values, got {a.shape}")
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return a.reshape(-1, lam.size)[:, inv], g.reshape(-1, lam.size)[:, inv], a.shape[:-1]


def _cheb_nodes(lo: float, hi: float, N: int) -> np.ndarray:
    x = np.cos(np.pi * (np.arange(N) + 0.5) / N)
    return lo + (hi - lo) * (1.0 + x) / 2.0


def _cheb_coeffs(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients ``(N, T)`` of the interpolant through values ``(T, N)`` at first-kind nodes."""
    c = scipy.fft.dct(values, type=2, axis=-1) / values.shape[-1]
    c[..., 0] /= 2.0
    coeffs: np.ndarray = c.T
    return coeffs


def _cheb_eval(c: np.ndarray, lo: float, hi: float, lam: np.ndarray) -> np.ndarray:
    x = 2.0 * (lam - lo) / (hi - lo) - 1.0
    with np.errstate(over="ignore", invalid="ignore"):  # far outside [lo, hi] it may overflow: inf
        out = np.polynomial.chebyshev.chebval(x, c)  # (T, len(lam))
    return np.where(np.isfinite(out), out, np.inf)


def _pair_bound(
    g_grid: np.ndarray, g_theta: np.ndarray, grid: np.ndarray, theta: np.ndarray, beta: np.ndarray, cn: np.ndarray
) -> np.ndarray:
    r"""``Σ_i ‖ĉ_i‖ min(β_i max_λ |Δ_i g|, max_λ |g − g(θ_i)|)`` per time (module docstring)."""
    d = grid[None, :] - theta[:, None]  # (M, G)
    near = np.abs(d) <= 1e-12 * max(float(grid[-1]), np.finfo(float).tiny)
    inv = np.where(near, 0.0, 1.0 / np.where(near, 1.0, np.abs(d)))
    out = np.empty(g_grid.shape[0])
    for t in range(g_grid.shape[0]):
        diff = np.abs(g_grid[t][None, :] - g_theta[t][:, None])  # (M, G)
        osc = diff.max(axis=1)
        slope = (diff * inv).max(axis=1)
        with np.errstate(invalid="ignore", over="ignore"):
            per = np.minimum(beta * slope, osc)
        per = np.where(beta == 0, 0.0, per)
        out[t] = float(np.sum(cn * per))
    return np.where(np.isfinite(out), out, np.inf)


class _Checkpoint:
    """The approximation on the ``known`` basis, its certified bounds and round-off floors."""

    def __init__(
        self,
        lz: _BlockLanczos,
        filter_of: FilterOf,
        opts: Lanczos,
        k: int,
        want_test: bool,
        structure: Structure | None = None,
        upper: float | None = None,
    ):
        """Evaluate the filter on the Ritz values and bound the error (module docstring)."""
        M = lz.known
        T, asym = lz.projected(M)
        theta, S = np.linalg.eigh(T)
        theta, S = theta[::-1], S[:, ::-1]
        top = max(float(theta[0]), 0.0)
        rank_rtol = 10 * lz.n * _EPS if opts.rank_rtol is None else float(opts.rank_rtol)
        # measured size of the perturbation of K behind T: the products' asymmetry, the
        # deflated columns, and the round-off of the reorthogonalized recurrence
        self.delta = asym + lz.dropped + 4 * np.sqrt(M) * _EPS * max(top, lz.knorm / np.sqrt(max(lz.bounds[1], 1)))
        if theta[-1] < -max(rank_rtol * top, 10 * self.delta):
            raise ValueError(
                f"operator is not positive semi-definite: it has a Ritz value {theta[-1]:.4g} < 0 "
                f"(largest {top:.4g}); a training kernel must be symmetric PSD"
            )
        if asym > 1e-3 * max(top, np.finfo(float).tiny):
            raise ValueError(
                f"operator is not symmetric: V^T K V differs from its transpose by {asym:.3g} "
                f"(largest Ritz value {top:.3g}); a training kernel must be symmetric PSD"
            )
        thr = rank_rtol * top
        theta = np.where(theta > thr, theta, 0.0)
        self.M, self.theta, self.S, self.top, self.thr = M, theta, S, top, thr
        c = np.zeros((M, k))
        c[: lz.coef0.shape[0]] = lz.coef0
        self.Tm, self.c = T, c
        self.sc = S.T @ c  # (M, k): coordinates of R along the Ritz vectors
        self.cnorm = float(np.linalg.norm(c))
        a, g, self.S_shape = _filter_shaped(filter_of, theta, lz.n, thr)
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(g))):
            raise ValueError("the filter returned non-finite values on the Ritz values")
        self.a, self.g = a, g
        # Ritz residuals β_i = ‖B E_mᵀ s_i‖
        lo = lz.bounds[lz.bounds.index(M) - 1] if not lz.exhausted else M
        if lz.B.shape[0] and not lz.exhausted:
            b = lz.B @ S[lo:M]  # (r, M)
        else:
            b = np.zeros((0, M))
        self.beta = np.linalg.norm(b, axis=0) if b.size else np.zeros(M)
        # the top of the spectrum: θ_max + ‖B‖₂ (an estimate: Kahan places an eigenvalue within β of
        # each θ, not none above), and tr K where the operator knows it (a proof, λ_max ≤ tr K)
        self.Lam = max(top + (float(np.linalg.norm(b, 2)) if b.size else 0.0), np.finfo(float).tiny)
        self.upper = float(upper) if upper is not None and np.isfinite(upper) else self.Lam
        self.Z = np.einsum("ij,tj,jk->tik", S, a, self.sc, optimize=True)  # train coordinates (T, M, k)
        self.D = np.einsum("ij,tj,jk->tik", S, g, self.sc, optimize=True)  # dual coordinates
        self.norm = np.sqrt(np.maximum(np.einsum("tm,tm,mk->t", a, g, self.sc * self.sc), 0.0))
        self.bound_train, self.bound_dual = self._bounds(lz, filter_of, opts, want_test)
        if structure is not None and b.size:
            axis_of = structure[1][2] if structure[0] == "distill" else structure[2]
            structure = structure if self.a.shape[0] == np.size(axis_of) else None
        if structure is not None and b.size:
            bt, bd = _residual_bounds(structure, theta, b, self.sc, self.Lam, self.jumps)
            self.bound_train = np.minimum(self.bound_train, bt)
            self.bound_dual = np.minimum(self.bound_dual, bd)
        self._sensitivities(filter_of, lz.n)

    def _bounds(
        self, lz: _BlockLanczos, filter_of: FilterOf, opts: Lanczos, want_test: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        nT = self.a.shape[0]
        self.jumps = (np.zeros(nT), np.zeros(nT))
        self.threshold_effect = (np.zeros(nT), np.zeros(nT))
        if not np.any(self.beta > 0):
            z = np.zeros(nT)
            return z, z
        theta, beta, thr = self.theta, self.beta, self.thr
        Lam = self.Lam
        deg = lz.blocks - 2  # h of degree m − 2: p = λ h has degree m − 1 (exact)
        ncheb = int(min(max(2 * deg + 64, 96), 1536))
        lo_geo = max(thr, Lam * 1e-18)
        parts: list[np.ndarray] = [
            np.array([0.0, thr]),
            _cheb_nodes(0.0, Lam, ncheb),
            np.geomspace(lo_geo * (1 + 1e-9), Lam, 160),
            np.array([Lam]),
        ]
        if self.upper > Lam:  # up to the proven upper bound tr K: the polynomial's growth there counts
            parts.append(np.geomspace(Lam, self.upper, 48))
        grid = np.concatenate(parts)
        if opts.spectrum_floor is not None:
            grid = grid[(grid <= thr) | (grid >= float(opts.spectrum_floor))]
        grid = np.unique(grid)
        ev = np.where(grid > thr, grid, 0.0)
        try:
            Fg, Gg = _filter_on(filter_of, ev, lz.n, thr)
        except ValueError:  # e.g. gd beyond stability above θ_max: keep the grid within the Ritz range
            grid = grid[grid <= self.top]
            ev = np.where(grid > thr, grid, 0.0)
            Fg, Gg = _filter_on(filter_of, ev, lz.n, thr)
        # Eigenvalues ≤ thr count as 0. Where the filter is continuous at 0 (finite t, ridge c > 0)
        # the certificate is for F(K) itself: the dense path's threshold moves its answer by at most
        # max_{λ ≤ thr} |F(λ) − F(0)| times R's mass there, round-off size (10 n ε λ_max |F'(0)|),
        # reported in solver["threshold_effect"]; at t = ∞ the jump is the question (null space or
        # not) and the thresholded F is certified.
        jumpF, jumpG = np.zeros(nT), np.zeros(nT)
        small = (grid > 0) & (grid <= thr)
        if np.any(small):
            Fr, Gr = _filter_on(filter_of, grid[small], lz.n, 0.0)
            F0, G0 = Fg[:, :1], Gg[:, :1]
            dF, dG = np.max(np.abs(Fr - F0), axis=1), np.max(np.abs(Gr - G0), axis=1)
            cont = np.isfinite(dF) & np.isfinite(dG) & (dF <= 2 * thr * np.abs(G0[:, 0]) + 1e-300)
            Fg[np.ix_(cont, small)], Gg[np.ix_(cont, small)] = Fr[cont], Gr[cont]
            jumpF, jumpG = np.where(cont, dF, 0.0), np.where(cont, dG, 0.0)
        cn = np.linalg.norm(self.sc, axis=1)
        bt = _pair_bound(Fg, self.a, grid, theta, beta, cn)
        bd = _pair_bound(Gg, self.g, grid, theta, beta, cn) if want_test else np.full(nT, np.inf)
        intervals = [0.0] if opts.spectrum_floor is None else [0.0, min(float(opts.spectrum_floor), Lam / 2)]
        for lo in intervals if deg >= 0 else []:
            # [0, Λ]: h interpolates G (degree m − 2). [floor, Λ] (a known floor leaves G smooth
            # there): h = λ H with H interpolating G/λ (degree m − 3), so h(0) = 0 on the null space
            d = deg if lo == 0.0 else deg - 1
            if d < 0:
                continue
            nodes = _cheb_nodes(lo, Lam, d + 1)
            try:  # the data at the nodes themselves (no rank threshold)
                _, Gn = _filter_on(filter_of, nodes, lz.n, 0.0)
            except ValueError:  # e.g. gd/momentum beyond stability above θ_max: no such candidate
                Gn = np.full((nT, 1), np.inf)
            if np.all(np.isfinite(Gn)):
                coef = _cheb_coeffs(Gn if lo == 0.0 else Gn / nodes)
                h_grid, h_th = _cheb_eval(coef, lo, Lam, grid), _cheb_eval(coef, lo, Lam, theta)
                if lo > 0.0:
                    h_grid, h_th = grid * h_grid.reshape(nT, -1), theta * h_th.reshape(nT, -1)
                h_grid, h_th = h_grid.reshape(nT, -1), h_th.reshape(nT, -1)
                with np.errstate(invalid="ignore", over="ignore"):
                    bt = np.minimum(bt, _pair_bound(Fg - grid * h_grid, self.a - theta * h_th, grid, theta, beta, cn))
                    if want_test:
                        bd = np.minimum(bd, _pair_bound(Gg - h_grid, self.g - h_th, grid, theta, beta, cn))
        # R's mass in [0, thr]: along Ritz vector i at most min(1, β_i / (θ_i − thr)) (since
        # ‖(K − θ_i) y_i‖ = β_i), all of it for a Ritz value at 0
        dist = theta - thr
        share = np.where(dist > 0, np.minimum(1.0, beta / np.where(dist > 0, dist, 1.0)), 1.0)
        low = float(np.sum(cn * share))
        if (np.any(jumpF > 0) or np.any(jumpG > 0)) and lz.blocks >= 2:
            # or, better where the bottom is pinned, the Gauss–Radau bound on R's mass in [0, thr]
            low = min(low, float(np.sqrt(_radau_mass(self.Tm, self.c, lz.blocks, thr))))
        self.jumps = (np.zeros(nT), np.zeros(nT))
        self.threshold_effect = (jumpF * low, jumpG * low)
        # A projection (t = ∞, ridge 0): F = 1 on every Ritz value and on (thr, Λ], F(0) = 0. Then
        # V F(T) Vᵀ R = R and the error is exactly ‖P_[0,thr] R‖: bounded by the Gauss–Radau
        # weight at thr (Chebyshev–Markov–Stieltjes), with R's moments known to degree 2m − 1.
        proj = (
            np.all(theta > thr)
            and lz.blocks >= 2
            and np.all(np.abs(self.a - 1.0) <= 1e-14, axis=1)
            & np.all(np.abs(Fg[:, grid > thr] - 1.0) <= 1e-14, axis=1)
            & (np.abs(Fg[:, 0]) <= 1e-300)
        )
        if np.any(proj):
            mass = _radau_mass(self.Tm, self.c, lz.blocks, thr)
            bt = np.where(proj, np.minimum(bt, np.sqrt(mass)), bt)
        return bt, bd

    def _sensitivities(self, filter_of: FilterOf, n: int) -> None:
        """Per Ritz value, the filter's derivative or divided differences (round-off floor)."""
        theta = self.theta
        bumped = theta * (1.0 + _BUMP)
        ab, gb = _filter_on(filter_of, bumped, n, self.thr)
        pos = theta > 0
        step = np.where(pos, theta * _BUMP, 1.0)
        # a'(0) = (a/λ)(0) for a smooth filter; but a Ritz value at 0 stays at 0 (below the rank
        # threshold) under a perturbation smaller than the threshold
        d0 = self.g if self.delta > self.thr else np.zeros_like(self.g)
        da = np.where(pos, (ab - self.a) / step, d0)
        dg = np.where(pos, (gb - self.g) / step, 0.0)
        dh = np.where(pos, (ab * gb - self.a * self.g) / step, 0.0)
        self.sens_a = _sensitivity(theta, self.a, da)
        self.sens_g = _sensitivity(theta, self.g, dg)
        self.sens_h = _sensitivity(theta, self.a * self.g, dh)
        self.gmax = np.max(np.abs(self.g), axis=1)

    def floor_train(self) -> np.ndarray:
        """Round-off floor of the train predictions per time: ``δ (‖c‖/θ_max + ‖s_a ∘ Sᵀc‖)``."""
        scn = np.linalg.norm(self.sc, axis=1)
        rel = self.delta / max(self.top, np.finfo(float).tiny)
        floor: np.ndarray = rel * self.cnorm + self.delta * np.linalg.norm(self.sens_a * scn, axis=1)
        return floor

    def floor_norm(self) -> np.ndarray:
        """Round-off floor of the norm: ``δ‖f‖²_H ≈ δ Σ_i s_h,i ‖(Sᵀc)_i‖²``, halved over ‖f‖."""
        scn2 = np.sum(self.sc * self.sc, axis=1)
        rel = self.delta / max(self.top, np.finfo(float).tiny)
        d2 = rel * self.norm**2 + self.delta * (self.sens_h @ scn2)
        floor: np.ndarray = np.where(self.norm > 0, d2 / (2 * np.where(self.norm > 0, self.norm, 1.0)), np.sqrt(d2))
        return floor

    def floor_test(self, KxV: np.ndarray) -> np.ndarray:
        r"""First-order effect of a perturbation ``‖δT‖ ≤ δ`` on ``K_xX V G(T) c``, per time.

        Daleckii–Krein: ``δG(T) = S (Γ ∘ Sᵀ δT S) Sᵀ`` with the divided differences
        ``Γ_ij = (g_i − g_j)/(θ_i − θ_j)`` (``|g'(θ_i)|`` on the diagonal); entries of ``Sᵀ δT S``
        of typical size ``δ/√M`` with independent signs.
        """
        w = np.linalg.norm(KxV @ self.S, axis=0)
        scn = np.linalg.norm(self.sc, axis=1)
        th = self.theta
        dth = th[:, None] - th[None, :]
        same = dth == 0
        inv = np.where(same, 0.0, 1.0 / np.where(same, 1.0, np.abs(dth)))
        out = np.empty(self.g.shape[0])
        rel = self.delta / max(self.top, np.finfo(float).tiny)
        for i, g in enumerate(self.g):
            G = np.abs(g[:, None] - g[None, :]) * inv
            G[same] = np.broadcast_to(self.sens_g[i][:, None], G.shape)[same]
            rss = np.sqrt((G * G) @ (scn * scn))
            out[i] = (
                self.delta * np.linalg.norm(w * rss) / np.sqrt(th.size)
                + rel * float(np.sum(np.abs(g) * w * scn))  # each direction's coefficient, through K_x
            )
        return out


def _radau_mass(T: np.ndarray, c: np.ndarray, blocks: int, xi: float) -> float:
    r"""``Σ_j ‖R_j‖² · max μ_j([0, ξ])`` over the measures ``μ_j`` of ``R``'s columns with ``K``.

    ``R_jᵀ K^p R_j = c_jᵀ T^p c_j`` for ``p ≤ 2m − 1`` (block Lanczos, ``m`` blocks), so ``m − 1``
    steps of scalar Lanczos on ``T`` from ``c_j`` give the Jacobi matrix of ``μ_j`` exactly; the
    Gauss–Radau rule with the prescribed node ``ξ`` below its spectrum puts on ``ξ`` the largest
    mass any measure on ``[0, ∞)`` with those moments can have in ``[0, ξ]``
    (Chebyshev–Markov–Stieltjes). Returns ``inf`` when ``ξ`` is not below the Gauss nodes.
    """
    total = 0.0
    steps = blocks - 1
    scale = max(float(np.abs(T).max()), np.finfo(float).tiny)
    for j in range(c.shape[1]):
        v = c[:, j]
        nv = float(np.linalg.norm(v))
        if nv == 0.0:
            continue
        Qs = [v / nv]
        alphas: list[float] = []
        betas: list[float] = []
        for _ in range(steps):
            w = T @ Qs[-1]
            alphas.append(float(Qs[-1] @ w))
            Qm = np.array(Qs).T
            w -= Qm @ (Qm.T @ w)
            w -= Qm @ (Qm.T @ w)
            betas.append(float(np.linalg.norm(w)))
            if betas[-1] <= 1e-13 * scale:
                break
            Qs.append(w / betas[-1])
        s = len(alphas)
        J = np.diag(alphas) + np.diag(betas[: s - 1], 1) + np.diag(betas[: s - 1], -1)
        if betas[-1] <= 1e-13 * scale:  # the measure has s atoms: Gauss is exact
            nodes, vecs = np.linalg.eigh(J)
            total += nv * nv * float(np.sum(vecs[0, nodes <= xi] ** 2))
            continue
        if float(np.linalg.eigvalsh(J)[0]) <= xi:
            return float("inf")
        e = np.linalg.solve(J - xi * np.eye(s), np.eye(s)[:, -1])
        Jr = np.zeros((s + 1, s + 1))
        Jr[:s, :s] = J
        Jr[s - 1, s] = Jr[s, s - 1] = betas[-1]
        Jr[s, s] = xi + betas[-1] ** 2 * e[-1]
        nodes, vecs = np.linalg.eigh(Jr)
        total += nv * nv * float(vecs[0, int(np.argmin(np.abs(nodes - xi)))] ** 2)
    return total


def _residual_bounds(
    structure: Structure,
    theta: np.ndarray,
    b: np.ndarray,
    sc: np.ndarray,
    Lam: float,
    jumps: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    r"""Residual bounds of plain recipes (train, dual) per time; ``inf`` where they do not apply.

    With ``ρ(σ) = B E_mᵀ φ(T) c`` the residual of the Lanczos iterate in the recursion the recipe
    solves (exact, cancellations included), and ``K ⪰ 0`` making the propagator a contraction:

    * flow, ``u' = −K u``: ``‖e(τ)‖ ≤ ∫_0^τ ‖B E_mᵀ e^{−σT} c‖ dσ``; the dual ``α = ∫_0^τ u`` has
      ``‖e_α‖ ≤ ∫_0^τ (τ − σ) ‖ρ(σ)‖ dσ`` (trapezoid on a fine linear+geometric grid of the smooth
      integrand, times 1.1);
    * gd, ``u_{j+1} = (I − ηK) u_j`` with ``η Λ ≤ 2``: ``‖e_s‖ ≤ η Σ_{j<s} ‖B E_mᵀ (I − ηT)^j c‖``
      (0 for ``s ≤ m − 1``: exact), the dual ``η Σ_{j<s} ‖e_j‖``;
    * ridge ``c > 0``: the residual ``r = B E_mᵀ (T + c)^{-1} c`` of ``(K + c) α = R`` gives
      ``‖e_f‖ ≤ ‖r‖`` (``‖K (K + c)^{-1}‖ ≤ 1``) and ``‖e_α‖ ≤ ‖r‖/c``.

    They compare with the unthresholded filter; the rank-threshold ``jumps`` are added.
    """
    if structure[0] == "distill":
        return _distill_bounds(structure, theta, b, sc, Lam, jumps)
    method, rate, axis = structure
    axis = np.asarray(axis, float).ravel()
    nT = axis.size
    inf = np.full(nT, np.inf)
    th = np.maximum(theta, 0.0)
    bt, bd = inf.copy(), inf.copy()
    if method == "flow":
        tau = rate * axis
        fin = np.isfinite(tau)
        if not np.any(fin & (tau > 0)):
            bt[fin], bd[fin] = 0.0, 0.0
            return bt + jumps[0], bd + jumps[1]
        tmax = float(np.max(tau[fin]))
        grid = np.unique(np.concatenate([[0.0], np.linspace(0, tmax, 600), np.geomspace(tmax * 1e-9, tmax, 600)]))
        W = np.exp(-np.outer(grid, th))  # (Ns, M)
        rho = np.linalg.norm(np.einsum("rm,sm,mk->srk", b, W, sc, optimize=True).reshape(grid.size, -1), axis=1)
        d = np.diff(grid)
        E = np.concatenate([[0.0], np.cumsum(0.5 * d * (rho[1:] + rho[:-1]))])  # ∫_0^σ ‖ρ‖
        A = np.concatenate([[0.0], np.cumsum(0.5 * d * (E[1:] + E[:-1]))])  # ∫_0^σ E
        bt[fin] = 1.1 * np.interp(tau[fin], grid, E)
        bd[fin] = 1.1 * np.interp(tau[fin], grid, A)
    elif method == "gd":
        if rate * Lam > 2.0:
            return inf, inf
        steps = axis
        fin = np.isfinite(steps)
        smax = int(np.max(steps[fin])) if np.any(fin) else 0
        if smax > 20000:
            fin &= steps <= 20000
            smax = 20000
        q = 1.0 - rate * th
        rho = np.empty(smax)
        P = sc.copy()
        for j in range(smax):  # ρ_j = η B E_mᵀ (I − ηT)^j c along the Ritz basis
            rho[j] = rate * float(np.linalg.norm(b @ P))
            P *= q[:, None]
        E = np.concatenate([[0.0], np.cumsum(rho)])  # ‖e_s‖ ≤ Σ_{j<s} ρ_j
        A = np.concatenate([[0.0], rate * np.cumsum(E[:-1])])  # ‖e_α,s‖ ≤ η Σ_{j<s} ‖e_j‖
        idx = steps[fin].astype(int)
        bt[fin], bd[fin] = E[idx], A[idx]
    elif method == "ridge":
        c = axis / rate
        pos = c > 0
        for i in np.flatnonzero(pos):
            r = float(np.linalg.norm(b @ (sc / (th + c[i])[:, None])))
            bt[i], bd[i] = r, r / c[i]
    return bt + jumps[0], bd + jumps[1]


def _recipe_filter(method: str, rate: float, at: float, theta: np.ndarray) -> np.ndarray:
    """A plain recipe's ``a`` on the Ritz values (the teacher of a distillation)."""
    th: np.ndarray = np.maximum(theta, 0.0)
    if method == "flow":
        return -np.expm1(-rate * at * th) if np.isfinite(at) else (th > 0).astype(float)
    if method == "gd":
        return 1.0 - (1.0 - rate * th) ** at if np.isfinite(at) else (th > 0).astype(float)
    c = at / rate
    return th / (th + c) if c > 0 else (th > 0).astype(float)


def _distill_bounds(
    structure: Any,
    theta: np.ndarray,
    b: np.ndarray,
    sc: np.ndarray,
    Lam: float,
    jumps: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    r"""Residual bounds of a student ``S`` trained from zero on ``w T(K) R + (1 − w) R``.

    ``f − f_m = S(K)(target − V u) + (S(K) V u − V S(T) u)`` with ``u = (w T(T) + 1 − w) c``: the
    first term is at most ``sup|S| · |w| · E_T`` (the teacher's residual bound at its one time),
    the second the student's residual bound started from ``u`` instead of ``c``; the dual
    likewise with ``sup|G_S| ≤`` the student's ``rate · t``.
    """
    _, student, teacher, w = structure
    tm, trate, tt = teacher
    E_T, _ = _residual_bounds((tm, trate, np.array([tt])), theta, b, sc, Lam, (np.zeros(1), np.zeros(1)))
    u = (w * _recipe_filter(tm, trate, tt, theta) + (1.0 - w))[:, None] * sc
    bs, bds = _residual_bounds(student, theta, b, u, Lam, jumps)
    sm, srate, saxis = student
    saxis = np.asarray(saxis, float).ravel()
    supS = 1.0 if sm == "flow" else 2.0 if sm == "gd" else 1.0
    supG = srate * saxis if sm in ("flow", "gd") else 1.0 / np.maximum(saxis / srate, 1e-300)
    e = abs(w) * float(E_T[0])
    with np.errstate(invalid="ignore", over="ignore"):
        bt = bs + supS * e
        bd = bds + supG * e
    return np.where(np.isfinite(bt), bt, np.inf), np.where(np.isfinite(bd), bd, np.inf)


_BUMP = 1e-7  # relative step of the finite-difference derivatives of the filter


def _sensitivity(theta: np.ndarray, f: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Per Ritz value: ``max(|f'(θ_i)|, |divided differences with the neighbours|)``, shape ``f.shape``."""
    gap = theta[:-1] - theta[1:]
    adj = np.abs(f[:, :-1] - f[:, 1:]) / np.where(gap > 0, gap, np.inf)
    zero = np.zeros((f.shape[0], 1))
    sens: np.ndarray = np.maximum(
        np.abs(df), np.maximum(np.concatenate([adj, zero], 1), np.concatenate([zero, adj], 1))
    )
    return sens


# ---------------------------------------------------------------------- entry point
def _available_bytes() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover - not Linux
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return float("inf")


def basis_bytes(n: int, k: int, max_iterations: int) -> int:
    """Bytes the worst-case basis needs: ``V`` (``n × M``) and ``H`` (``M × M``), float64, ``M ≤ k (m + 1)``.

    Args:
      n: training points.
      k: outputs (block width).
      max_iterations: the most block products.

    Returns:
      ``8 (n M + M²)`` with ``M = min(n, k (max_iterations + 1))``.
    """
    M = min(n, k * (int(max_iterations) + 1))
    return 8 * (n * M + M * M)


def _norm_estimate(Kx: KernelOperator, array: np.ndarray | None) -> float:
    """``ν ≥ ‖K_x‖₂``: exact for an array; 1.5 × a seeded 8-probe estimate of ``‖K_x‖_F`` otherwise."""
    if array is not None:
        if array.size <= 4_000_000:
            return float(np.linalg.norm(array, 2))
        return float(np.linalg.norm(array))
    Z = np.random.default_rng(0).standard_normal((Kx.shape[1], 8))
    return 1.5 * float(np.linalg.norm(Kx.matmat(Z))) / float(np.sqrt(8.0))


def as_test_operator(test_kernel: KernelOperator | ArrayLike, n: int) -> tuple[KernelOperator, np.ndarray | None]:
    """``k(X_test, X)`` as an operator (an array is wrapped), and the array itself if one was given.

    Args:
      test_kernel: an operator (``op.cross(X_test)``) or an array ``(n_test, n)``.
      n: training points.

    Returns:
      ``(operator, array or None)``.

    Raises:
      ValueError: wrong number of columns or non-finite entries (naming ``test_kernel``).
    """
    from kdtheory.operators import KernelOperator, StoredKernel

    if isinstance(test_kernel, KernelOperator):
        Kx, arr = test_kernel, None
    else:
        arr = as_float_array(test_kernel, "test_kernel", ndim=(2,))
        Kx = StoredKernel(arr, check=False)
    if Kx.shape[1] != n:
        raise ValueError(f"test_kernel has {Kx.shape[1]} columns but the operator has n={n}")
    return Kx, arr


def solve(
    operator: KernelOperator,
    R: np.ndarray,
    filter_of: FilterOf,
    options: Lanczos,
    test_kernel: KernelOperator | ArrayLike | None = None,
    structure: Structure | None = None,
) -> KrylovResult:
    r"""``F(K) R`` (and ``K_x G(K) R``) for a filter of the algebra, certified (module docstring).

    Args:
      operator: the training kernel ``K`` (``n × n``, symmetric PSD).
      R: the residual block ``y − f_0``, shape ``(n, k)``, not all zero.
      filter_of: ``Spectrum -> Filter`` (called with :class:`RitzSpectrum` values), e.g.
        ``lambda s: Recipe("gd", learning_rate=0.1).filter(s, t)``.
      options: the :class:`Lanczos` options.
      test_kernel: ``k(X_test, X)`` as an operator or an array ``(n_test, n)``.
      structure: ``(method, rate, axis)`` when the filter is a plain flow / gd / ridge recipe
        (:data:`Structure`): adds the residual bounds of the module docstring, much tighter there.

    Returns:
      A :class:`KrylovResult`; ``stats["converged"]`` says whether the bound met the tolerance
      (the caller raises :class:`ConvergenceError` when ``options.strict``; see :func:`check`).

    Raises:
      ValueError: bad shapes, a basis that cannot fit in memory, an operator that is not
        symmetric PSD.
      TypeError: ``filter_of`` does not return a Filter.
    """
    if not is_operator(operator) or operator.shape[0] != operator.shape[1]:
        raise ValueError(f"operator must be a square KernelOperator, got {operator!r}")
    if not callable(filter_of):
        raise TypeError("filter must be a callable Spectrum -> kdtheory.filters.Filter on an operator")
    n, k = R.shape
    need = basis_bytes(n, k, options.max_iterations)
    avail = _available_bytes()
    if need > avail:
        raise ValueError(
            f"the Krylov basis of up to max_iterations={options.max_iterations} blocks of {k} columns at n={n} "
            f"needs {need / 2**30:.3g} GiB ({need} bytes) but {avail / 2**30:.3g} GiB are available: "
            "lower max_iterations (or the number of outputs)"
        )
    Kx, Kx_arr = (None, None) if test_kernel is None else as_test_operator(test_kernel, n)
    nu = None if Kx is None else _norm_estimate(Kx, Kx_arr)
    ref = float(np.linalg.norm(R))
    tol = float(options.tolerance)
    train_goal = tol * ref
    test_goal = None if Kx is None else tol * ref * np.sqrt(Kx.shape[0] / n)
    try:
        upper = operator.trace()  # λ_max ≤ tr K for K ⪰ 0 (None where the diagonal is not cheap)
    except (NotImplementedError, ValueError):  # pragma: no cover - operators without a diagonal
        upper = None
    lz = _BlockLanczos(operator, R, max_cols=min(n, k * (options.max_iterations + 1)))
    KxV = None if Kx is None else np.zeros((Kx.shape[0], 0))
    prev = None
    next_check = 1
    err_test = None
    while True:
        lz.step()
        final = lz.exhausted or lz.products >= options.max_iterations
        if lz.products < next_check and not final:
            continue
        next_check = lz.products + max(1, -(-lz.products // 8))
        cur = _Checkpoint(lz, filter_of, options, k, want_test=Kx is not None, structure=structure, upper=upper)
        err_train = cur.bound_train + cur.floor_train()
        ok = bool(np.all(err_train <= train_goal))
        if Kx is not None and KxV is not None and nu is not None and test_goal is not None:
            ok = ok and bool(np.all(nu * cur.bound_dual <= test_goal))
            if ok or final:
                KxV = np.concatenate([KxV, Kx.matmat(lz.V[:, KxV.shape[1] : cur.M])], axis=1)
                err_test = nu * cur.bound_dual + cur.floor_test(KxV[:, : cur.M])
                ok = ok and bool(np.all(err_test <= test_goal))
        if ok or final:
            break
        prev = cur
    norm_change = np.zeros_like(cur.norm) if (lz.exhausted or prev is None) else np.abs(cur.norm - prev.norm)
    err_norm = norm_change + cur.floor_norm()
    if prev is None and not lz.exhausted and not ok:
        err_norm = np.full_like(cur.norm, np.inf)
    M = cur.M
    change = np.einsum("nm,tmk->tnk", lz.V[:, :M], cur.Z, optimize=True)
    test_change = None if KxV is None else np.einsum("im,tmk->tik", KxV[:, :M], cur.D, optimize=True)
    stats: dict[str, Any] = dict(
        solver="block_lanczos",
        tolerance=tol,
        converged=bool(ok),
        iterations=lz.products,
        products=lz.products + (0 if Kx is None else 0),
        basis_size=int(M),
        exhausted=bool(lz.exhausted),
        error_train=err_train.tolist(),
        error_test=None if err_test is None else err_test.tolist(),
        error_norm=err_norm.tolist(),
        error_reference=ref,
        ritz_values=cur.theta.tolist(),
        perturbation=float(cur.delta),
        threshold_effect=float(np.max(cur.threshold_effect[0])) if cur.a.shape[0] else 0.0,
        test_norm_bound=nu,
    )
    if not ok:
        stats["reason"] = _reason(lz, cur, err_train, err_test, ref, tol, options)
    return KrylovResult(
        change=change,
        test_change=test_change,
        filter=cur.a,
        coords=cur.sc,
        norm=cur.norm,
        axis_shape=tuple(cur.S_shape),
        stats=stats,
    )


def _reason(
    lz: _BlockLanczos,
    cur: _Checkpoint,
    err_train: np.ndarray,
    err_test: np.ndarray | None,
    ref: float,
    tol: float,
    options: Lanczos,
) -> str:
    worst = float(np.max(err_train)) / ref
    msg = (
        f"block Lanczos could not certify tolerance={tol:g} after {lz.products} block products "
        f"(basis {cur.M}): certified train error bound {worst:.3g} relative to ‖y − init‖"
    )
    if err_test is not None:
        msg += f", test error bound {float(np.max(err_test)) / ref:.3g}"
    if lz.exhausted:
        msg += (
            "; the Krylov space is complete, so this is the round-off floor: the filter is "
            "ill-conditioned on this spectrum at this tolerance (loosen it)"
        )
    else:
        msg += (
            f"; raise max_iterations (now {options.max_iterations}) or loosen tolerance (at t = ∞ or "
            "λ_min·t ≫ 1 the answer depends on the bottom of the spectrum, which is not resolved yet; a "
            "known lower bound of the nonzero eigenvalues, Lanczos(spectrum_floor=...), certifies earlier)"
        )
    return msg


def check(trajectory: Trajectory, options: Lanczos) -> Trajectory:
    """Return ``trajectory``, or raise :class:`ConvergenceError` when it is uncertified and ``options.strict``.

    Args:
      trajectory: a trajectory whose ``solver`` record came from :func:`solve`.
      options: the solver options.

    Returns:
      The trajectory.

    Raises:
      ConvergenceError: ``solver["converged"]`` is false and ``options.strict`` (the message is
        the reason, with ``strict=False`` named as the way to get the result anyway).
    """
    stats = trajectory.solver or {}
    if not stats.get("converged", True) and options.strict:
        raise ConvergenceError(stats["reason"] + " (strict=False returns the result with its bounds)", trajectory)
    return trajectory
