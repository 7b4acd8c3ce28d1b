r"""Training trajectories from Krylov subspaces: closed forms at large n without an eigendecomposition.

Training from an initial output ``f_0`` moves the training predictions by a matrix function of the
kernel applied to the residual ``R = y − f_0`` (THEORY.md §2, §9):

.. math::

    f(t) = f_0 + F_t(K)\,R,\qquad f(x, t) = f_0(x) + k(x, X)\,G_t(K)\,R,\qquad G_t = F_t/λ,

where ``F_t`` is the spectral filter of the recipe (gradient flow, gradient descent, momentum, or a
distillation composite — any vectorised function of λ) and ``G_t = F_t/λ`` is entire (no pole at 0).

**Method: block Lanczos with full reorthogonalization.** Starting from the block ``R`` (``n × k``,
one column per output), ``m`` products with ``K`` build an orthonormal basis ``V`` of the block
Krylov space ``span{R, K R, …, K^{m−1} R}`` and the projected matrix ``T = Vᵀ K V``; then

.. math::

    F_t(K)\,R ≈ V\,F_t(T)\,Vᵀ R,\qquad k(x, X)\,G_t(K)\,R ≈ (k(x, X) V)\,G_t(T)\,Vᵀ R.

**One basis serves every time and every filter**: ``T`` is diagonalized once (``T = S diag(θ) Sᵀ``,
``θ`` the Ritz values) and each filter is evaluated on ``θ``. Each new block is orthogonalized
against the whole basis twice (classical Gram–Schmidt, twice is enough; Giraud et al. 2005) and
once more after its QR, so ``V`` stays orthonormal to round-off and ``T`` is the exact projection
(Musco, Musco & Sidford 2018 show why this makes Lanczos for ``f(A)b`` stable). Columns whose
norm after orthogonalization falls below ``10 n ε ‖K‖`` are dropped (deflation); when none is
left the Krylov space is invariant and the result is exact.

Why Lanczos rather than a partial top-``r`` spectrum plus an exact treatment of the rest: the
filters of training are smooth in λ and the labels are one small block, so the Krylov space adapts
to what ``R`` excites; a top-``r`` spectrum needs ``r`` converged eigenvectors (many more products
for the same accuracy on a slowly decaying spectrum) and the rest cannot be treated exactly
without knowing it.

**Error estimate.** The result is evaluated at checkpoints ``m_1 < m_2 < …`` (every block
product up to 8, then ``m_{j+1} ≈ 1.125 m_j``); the estimate at ``m_j`` is

    ``max(‖f_j − f_{j−1}‖, ‖f_{j−1} − f_{j−2}‖) + ‖B_{m+1} E_mᵀ F_t(T) Vᵀ R‖ + round-off``

per time (Frobenius norms over points and outputs): the larger of the last two changes between
checkpoints, plus the residual term of Saad (1992), plus a round-off floor. When the error
decreases monotonically, a change bounds the error at the earlier checkpoint and hence at the
later one; taking two changes guards against one accidentally small step (CG-like convergence at
``t = ∞`` is erratic). The residual term is zero exactly when the filter is a polynomial of degree
below ``m − 1`` (``s`` steps of GD with ``s ≤ m − 2``), where Lanczos is exact. The round-off floor
is ``10 √n ε θ_max`` (``10 n ε`` once the space is declared invariant) times the filter's
sensitivity per Ritz value — its derivative (by a relative finite difference of 1e-7) or its
divided differences with the neighbouring Ritz values, the larger (Daleckii–Krein) — weighted by
``R``'s coordinates: the accuracy to which *any* method that perturbs ``K`` by round-off can apply
the filter (``ε κ`` relative for the pseudo-inverse). Test predictions get the same from
``k(x, X) V G_t(T) Vᵀ R``. This is an estimate, not a proof: it assumes convergence that does not
stagnate for two checkpoints. The call iterates until every time meets

    train: ``estimate ≤ tolerance · ‖R‖``;  test: ``estimate ≤ tolerance · ‖R‖ · √(n_test/n)``

(the same root-mean-square accuracy per point), and raises :class:`ConvergenceError` when
``max_iterations`` is reached first, or when the space is complete and the round-off floor itself
exceeds the tolerance (``strict=False`` returns the result marked unconverged).
Every result carries its estimates in ``Trajectory.recipe`` (``error_train``, ``error_test``,
``error_loss``, ``error_norm``, ``converged``, ``iterations``, ``basis_size``, ``ritz_values``).

Convergence. Flow at time ``t`` converges once ``m ≳ √(η λ_max t) · log(1/ε)`` (Hochbruck &
Lubich 1997); GD at ``s`` steps is exact at ``m = s + 2``; ``t = ∞`` (the pseudo-inverse, needed
for test predictions and the norm) converges like conjugate gradients, with ``√κ`` — slowly on an
ill-conditioned kernel, which the estimate reports rather than hides. On a rank-deficient kernel,
Ritz values at or below ``rank_rtol · θ_max`` count as exactly 0 (as :class:`kdtheory.eigen.Spectrum`).

Per-direction summaries are along the Ritz vectors ``V s_i`` (which approximate the kernel's top
eigenvectors first): ``Trajectory.filter`` is the fraction learned ``F_t(θ_i)`` and
``Trajectory.modes`` the residual coordinates ``(V s_i)ᵀ (f − y)``, Ritz values descending.

References:
  Saad (1992), *Analysis of some Krylov subspace approximations to the matrix exponential
  operator*; Hochbruck & Lubich (1997); Musco, Musco & Sidford (2018), *Stability of the Lanczos
  method for matrix function approximation*; Gardner et al. (2018), GPyTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, as_times, choice, positive_scalar
from kdtheory.distill import distill_filter
from kdtheory.eigen import GRADIENT_FLOW, NORMALIZATIONS, Filter, Method, Normalization, Recipe, Spectrum, loss_divisor
from kdtheory.operators import KernelOperator, StoredKernel
from kdtheory.trajectory import Trajectory

__all__ = ["train", "distill", "apply_filter", "RitzSpectrum", "ConvergenceError"]

_EPS = np.finfo(np.float64).eps
FilterOf = Callable[[Spectrum], Filter]


@dataclass(frozen=True, eq=False)
class RitzSpectrum(Spectrum):
    r"""The Ritz values ``θ`` of a kernel on a Krylov space, as a :class:`~kdtheory.eigen.Spectrum`.

    What a filter or composite of the algebra (:meth:`kdtheory.eigen.Recipe.filter`,
    :func:`kdtheory.distill.distill_filter`, …) needs from a spectrum: the eigenvalues and the
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


class ConvergenceError(RuntimeError):
    """The Krylov trajectory did not meet its tolerance.

    Either ``max_iterations`` block products were not enough, or the Krylov space is complete and
    the round-off floor itself exceeds the tolerance (an ill-conditioned filter, e.g. the
    pseudo-inverse at ``t = ∞`` on a kernel with ``ε κ`` above the tolerance); the message says which.

    Attributes:
      trajectory: the unconverged result, its estimates in ``trajectory.recipe``.
    """

    def __init__(self, message: str, trajectory: Trajectory):
        """Carry the message and the unconverged trajectory."""
        super().__init__(message)
        self.trajectory = trajectory


# ---------------------------------------------------------------------- block Lanczos
class _BlockLanczos:
    """Block Lanczos with full reorthogonalization; variable block widths (deflation).

    After ``products`` block products the basis ``V[:, :M]`` holds one block more than the
    products: ``known`` columns (every block whose product ``K Q_j`` is in ``H``) span the space
    on which ``T = Vᵀ K V`` is exact, and ``B`` holds the coefficients of the newest block in
    ``K Q_m`` (the ``B_{m+1}`` of ``K V_m = V_m T_m + Q_{m+1} B_{m+1} E_mᵀ``).
    """

    def __init__(self, op: KernelOperator, R: np.ndarray):
        """Carry the message and the unconverged trajectory."""
        self.op, self.n = op, R.shape[0]
        self.V = np.empty((self.n, max(4 * R.shape[1], 16)))
        self.H = np.zeros((self.V.shape[1], self.V.shape[1]))
        self.M = 0
        self.bounds = [0]  # block j spans columns bounds[j]:bounds[j+1]
        self.knorm = 0.0
        self.products = 0
        self.exhausted = False
        Q, C, _ = self._qr(R, tol=max(R.shape) * _EPS * np.abs(R).max())
        self.coef0 = C  # R = Q C
        self._append(Q)
        self.B = np.zeros((0, Q.shape[1]))

    @staticmethod
    def _qr(W: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray, int]:
        """Rank-revealing ``W ≈ Q C``; columns of ``Q`` with ``|R_ii| ≤ tol`` are dropped."""
        Q, Rr, piv = scipy.linalg.qr(W, mode="economic", pivoting=True, check_finite=False)
        d = np.abs(np.diag(Rr))
        r = int(np.count_nonzero(d > tol))
        C = np.empty((r, W.shape[1]))
        C[:, piv] = Rr[:r]
        return Q[:, :r], C, r

    def _append(self, Q: np.ndarray) -> None:
        r = Q.shape[1]
        if self.M + r > self.V.shape[1]:
            cap = max(2 * self.V.shape[1], self.M + r)
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
        Q, B, r = self._qr(W, tol=10 * self.n * _EPS * max(self.knorm, np.finfo(float).tiny))
        r = min(r, self.n - self.M)
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

    def projected(self, M: int) -> np.ndarray:
        """``T_M = V_Mᵀ K V_M`` for ``M ≤ known`` (symmetrized coefficients)."""
        H = self.H[:M, :M]
        return 0.5 * (H + H.T)


# ---------------------------------------------------------------------- filters on Ritz values
class _Checkpoint:
    """The approximation on the ``known`` basis: coordinates in ``V`` for every time."""

    def __init__(self, lz: _BlockLanczos, filter_of: FilterOf, rank_rtol: float, k: int):
        """Carry the message and the unconverged trajectory."""
        M = lz.known
        theta, S = np.linalg.eigh(lz.projected(M))
        theta, S = theta[::-1], S[:, ::-1]
        top = max(float(theta[0]), 0.0)
        theta = np.where(theta > rank_rtol * top, theta, 0.0)
        self.M, self.theta, self.S = M, theta, S
        c = np.zeros((M, k))
        c[: lz.coef0.shape[0]] = lz.coef0
        self.sc = S.T @ c  # (M, k): coordinates of R along the Ritz vectors
        theta.setflags(write=False)
        filt = filter_of(RitzSpectrum(evals=theta, U=None, V=None, rank_tol=rank_rtol * top, points=lz.n))
        if not isinstance(filt, Filter):
            raise TypeError(f"filter must return a kdtheory.eigen.Filter, got {type(filt).__name__}")
        # the filter at θ(1 + h): derivatives by finite differences, for the round-off floor
        bumped = theta * (1.0 + _BUMP)
        bumped.setflags(write=False)
        fb = filter_of(RitzSpectrum(evals=bumped, U=None, V=None, rank_tol=rank_rtol * top, points=lz.n))
        a, g = filt.a, filt.a_over_eval
        if a.shape[-1:] != (M,):
            raise ValueError(f"filter must return a Filter of shape S + (m,) with m={M} Ritz values, got {a.shape}")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(g))):
            raise ValueError("the filter returned non-finite values on the Ritz values")
        self.a, self.g = a.reshape(-1, M), g.reshape(-1, M)
        # Round-off: T is K's projection to ~ε‖K‖, which moves F(T) by ~ε‖K‖ times F's largest
        # divided difference on the spectrum (Daleckii–Krein), the max over adjacent Ritz values.
        pos = theta > 0
        step = np.where(pos, theta * _BUMP, 1.0)
        ab, gb = fb.a.reshape(self.a.shape), fb.a_over_eval.reshape(self.g.shape)
        da = np.where(pos, (ab - self.a) / step, self.g)  # a'(0) = (a/λ)(0) for a smooth filter
        dg = np.where(pos, (gb - self.g) / step, 0.0)
        dh = np.where(pos, (ab * gb - self.a * self.g) / step, 0.0)
        self.sens_a = _sensitivity(theta, self.a, da)  # (T, M): |f'| or the adjacent slopes, the larger
        self.sens_g = _sensitivity(theta, self.g, dg)
        self.sens_h = _sensitivity(theta, self.a * self.g, dh)
        self.top = top
        self.gmax = np.max(np.abs(self.g), axis=1)
        self.cnorm = float(np.linalg.norm(c))
        self.S_shape = a.shape[:-1]
        self.Z = np.einsum("ij,tj,jk->tik", S, self.a, self.sc, optimize=True)  # train coordinates (T, M, k)
        self.D = np.einsum("ij,tj,jk->tik", S, self.g, self.sc, optimize=True)  # dual coordinates
        # RKHS norm of f − f_0: ‖f − f_0‖²_H = Σ_i a_i (a/λ)_i ‖(Sᵀc)_i‖²
        self.norm = np.sqrt(np.maximum(np.einsum("tm,tm,mk->t", self.a, self.g, self.sc * self.sc), 0.0))
        # Saad's residual term ‖B_{m+1} E_mᵀ F(T) c‖: the last known block's rows of Z times B
        lo = lz.bounds[lz.bounds.index(M) - 1]
        if lz.B.shape[0]:
            last = np.einsum("rb,tbk->trk", lz.B, self.Z[:, lo:M])
            self.resid = np.linalg.norm(last.reshape(last.shape[0], -1), axis=1)
        else:
            self.resid = np.zeros(self.a.shape[0])

    def floor_train(self, rel: float) -> np.ndarray:
        """Round-off floor of the train predictions per time: ``rel (‖c‖ + θ_max ‖s_a ∘ Sᵀc‖)``."""
        scn = np.linalg.norm(self.sc, axis=1)
        return rel * (self.cnorm + self.top * np.linalg.norm(self.sens_a * scn, axis=1))

    def floor_norm(self, rel: float) -> np.ndarray:
        """Round-off floor of the norm: ``δ‖f‖²_H ≈ rel θ_max Σ_i s_h,i ‖(Sᵀc)_i‖²``, halved over ‖f‖."""
        scn2 = np.sum(self.sc * self.sc, axis=1)
        d2 = rel * (self.norm**2 + self.top * (self.sens_h @ scn2))
        return np.where(self.norm > 0, d2 / (2 * np.where(self.norm > 0, self.norm, 1.0)), np.sqrt(d2))


_BUMP = 1e-7  # relative step of the finite-difference derivatives of the filter


def _sensitivity(theta: np.ndarray, f: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Per Ritz value: ``max(|f'(θ_i)|, |divided differences with the neighbours|)``, shape ``f.shape``.

    The diagonal and the nearest off-diagonal entries of the Daleckii–Krein matrix
    ``Γ_ij = (f_i − f_j)/(θ_i − θ_j)``: how much ``f(T)`` moves, along Ritz vector ``i``, when ``T``
    is perturbed by round-off.
    """
    gap = theta[:-1] - theta[1:]
    adj = np.abs(f[:, :-1] - f[:, 1:]) / np.where(gap > 0, gap, np.inf)
    zero = np.zeros((f.shape[0], 1))
    return np.maximum(np.abs(df), np.maximum(np.concatenate([adj, zero], 1), np.concatenate([zero, adj], 1)))


def _test_roundoff(KxV: np.ndarray, cp: _Checkpoint) -> np.ndarray:
    r"""First-order effect of a perturbation ``‖δT‖ ≤ θ_max`` on ``K_xX V G(T) c``, per time.

    Daleckii–Krein: ``δG(T) = S (Γ ∘ Sᵀ δT S) Sᵀ`` with the divided differences
    ``Γ_ij = (g_i − g_j)/(θ_i − θ_j)`` (the adjacent slope where ``θ_i = θ_j``). With the entries of
    ``Sᵀ δT S`` of typical size ``θ_max/√M`` and independent signs, the typical size is
    ``θ_max ‖ w ∘ (Γ² (Sᵀc)²)^{1/2} ‖/√M + max|g| ‖K_xX V‖ ‖c‖`` with ``w_i = ‖K_xX V s_i‖``.
    Multiplied by ``ε`` (and a safety factor) it is the round-off floor of the test predictions:
    ``ε κ`` relative for the pseudo-inverse, as for any backward-stable method.
    """
    w = np.linalg.norm(KxV @ cp.S, axis=0)
    scn = np.linalg.norm(cp.sc, axis=1)
    th = cp.theta
    dth = th[:, None] - th[None, :]
    same = dth == 0
    inv = np.where(same, 0.0, 1.0 / np.where(same, 1.0, np.abs(dth)))
    out = np.empty(cp.g.shape[0])
    for i, g in enumerate(cp.g):
        G = np.abs(g[:, None] - g[None, :]) * inv
        G[same] = np.broadcast_to(cp.sens_g[i][:, None], G.shape)[same]  # |g'(θ_i)| on the diagonal
        rss = np.sqrt((G * G) @ (scn * scn))
        out[i] = cp.top * np.linalg.norm(w * rss) / np.sqrt(th.size) + cp.gmax[i] * np.linalg.norm(KxV) * cp.cnorm
    return out


def _diff(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``‖X[t] − pad(Y[t])‖_F`` per time for coordinate arrays ``(T, M, k)`` with ``M_Y ≤ M_X``."""
    d = X.copy()
    d[:, : Y.shape[1]] -= Y
    return np.linalg.norm(d.reshape(d.shape[0], -1), axis=1)


# ---------------------------------------------------------------------- entry points
def train(
    operator: KernelOperator,
    y: ArrayLike,
    t: ArrayLike | None = None,
    *,
    ridge: ArrayLike | None = None,
    method: Method = "flow",
    learning_rate: float = 1.0,
    momentum: float = 0.0,
    normalization: Normalization = "sum",
    init: ArrayLike | None = None,
    test_kernel: KernelOperator | ArrayLike | None = None,
    test_init: ArrayLike | None = None,
    allow_unstable: bool = False,
    tolerance: float = 1e-6,
    max_iterations: int = 500,
    strict: bool = True,
    rank_rtol: float | None = None,
) -> Trajectory:
    r"""Closed-form training of a kernel model on the squared loss, by block Lanczos on an operator.

    The large-n counterpart of :func:`kdtheory.dynamics.train`: the same recipe
    (:class:`kdtheory.eigen.Recipe`), the same conventions, the same
    :class:`~kdtheory.trajectory.Trajectory`, from a kernel operator instead of a spectrum.
    ``f(t) = f_0 + F_t(K)(y − f_0)`` with ``F_t`` the recipe's filter evaluated on the Ritz values
    (module docstring); with ``ridge``, kernel ridge regression at each strength ``c``.

    Args:
      operator: the training kernel ``K`` (``n × n``, symmetric PSD) as a
        :class:`~kdtheory.operators.KernelOperator`.
      y: labels, shape ``(n,)`` or ``(n, k)``.
      t: times (flow: learning-rate units; gd, momentum: whole steps), any shape; ``np.inf`` is the
        converged (minimum-norm) solution.
      ridge: ridge strengths ``c ≥ 0`` instead of ``t`` (then ``method``, ``learning_rate`` and
        ``momentum`` keep their defaults).
      method: ``"flow"``, ``"gd"`` or ``"momentum"``.
      learning_rate: η > 0.
      momentum: β in [0, 1) for ``"momentum"``.
      normalization: ``"sum"`` (``½‖f − y‖²``), ``"mean"`` (``/n``) or ``"per_output"`` (``/(n k)``).
      init: initial training output ``f_0`` (default 0), shape of ``y``.
      test_kernel: ``k(X_test, X)`` as an operator (``operator.cross(X_test)``) or an array
        ``(n_test, n)``.
      test_init: initial test output (default 0), ``(n_test[, k])``.
      allow_unstable: permit learning rates beyond stability at finite steps.
      tolerance: required accuracy relative to ``‖y − f_0‖`` (module docstring), in (0, 1).
      max_iterations: the most block products with ``K``.
      strict: raise :class:`ConvergenceError` when the tolerance is not met; ``False`` returns the
        result with ``recipe["converged"] = False``.
      rank_rtol: Ritz values ``≤ rank_rtol · θ_max`` count as 0 (default ``10 n ε``, as
        :meth:`kdtheory.eigen.Spectrum.from_kernel`).

    Returns:
      A :class:`~kdtheory.trajectory.Trajectory` (see :func:`apply_filter` for the solver record
      in ``recipe`` and the Ritz-vector ``filter``/``modes``).

    Raises:
      ValueError: bad shapes, values or options (naming the argument).
      ConvergenceError: the tolerance was not met within ``max_iterations`` (``strict=True``).

    Examples:
      >>> import numpy as np
      >>> from kdtheory.operators import FeatureKernel
      >>> from kdtheory.krylov import train
      >>> X = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
      >>> traj = train(FeatureKernel(X), np.array([1.0, -1.0, 0.5]), [0.0, np.inf])
      >>> np.round(traj.train, 6)  # y lies in the range of K: the converged fit interpolates it
      array([[ 0. ,  0. ,  0. ],
             [ 1. , -1. ,  0.5]])
      >>> traj.recipe["converged"], traj.recipe["exhausted"]
      (True, True)
    """
    if (t is None) == (ridge is None):
        raise ValueError("give the time axis t or the ridge strengths ridge (exactly one)")
    if ridge is not None:
        if (method, learning_rate, momentum) != ("flow", 1.0, 0.0):
            raise ValueError("ridge regression has no method, learning_rate or momentum; leave them at their defaults")
        recipe = Recipe("ridge", normalization=normalization)
    else:
        choice(method, "method", ("flow", "gd", "momentum"))
        recipe = Recipe(
            method,
            learning_rate=learning_rate,
            momentum=momentum,
            normalization=normalization,
            allow_unstable=allow_unstable,
        )
    at = t if ridge is None else ridge
    k = _outputs(y)
    # validate the recipe and the axis before any kernel product
    recipe.filter(RitzSpectrum(np.zeros(1), None, None, 0.0, points=_rows(operator)), at, outputs=k)
    return apply_filter(
        operator,
        y,
        lambda spec: recipe.filter(spec, at, outputs=k),
        t=t,
        ridge=ridge,
        normalization=normalization,
        init=init,
        test_kernel=test_kernel,
        test_init=test_init,
        tolerance=tolerance,
        max_iterations=max_iterations,
        strict=strict,
        rank_rtol=rank_rtol,
        recipe=recipe.record(),
    )


def distill(
    operator: KernelOperator,
    y: ArrayLike,
    t: ArrayLike,
    *,
    teacher_t: float,
    teacher: Recipe = GRADIENT_FLOW,
    student: Recipe | None = None,
    teacher_weight: float | None = None,
    truth_weight: float | None = None,
    test_kernel: KernelOperator | ArrayLike | None = None,
    tolerance: float = 1e-6,
    max_iterations: int = 500,
    strict: bool = True,
    rank_rtol: float | None = None,
) -> Trajectory:
    r"""A student trained from zero on its teacher's predictions, by block Lanczos.

    The large-n counterpart of :func:`kdtheory.distill.distill` (zero start): the effective filter
    :func:`kdtheory.distill.distill_filter` (``a = a_t (w a_T + 1 − w)``, the one composition rule
    ``S_t.train_from(ZERO, w T + (1 − w) ONE)``) evaluated on the Ritz values, relative to ``y``.

    Args:
      operator: the training kernel (``n × n``).
      y: labels ``(n[, k])``.
      t: the student's axis (times, steps, or ridge strengths for a ridge student), any shape.
      teacher_t: the teacher's time/steps/ridge strength (scalar; ``np.inf`` allowed for times).
      teacher: the teacher's :class:`~kdtheory.eigen.Recipe`.
      student: the student's recipe (default: the teacher's).
      teacher_weight: weight ``w`` on the teacher (default 1).
      truth_weight: weight ``1 − w`` on the labels instead.
      test_kernel: ``k(X_test, X)`` as an operator or an array ``(n_test, n)``.
      tolerance: required accuracy relative to ``‖y − f_0‖`` (module docstring), in (0, 1).
      max_iterations: the most block products with ``K``.
      strict: raise :class:`ConvergenceError` when the tolerance is not met; ``False`` returns the
        result with ``recipe["converged"] = False``.
      rank_rtol: Ritz values ``≤ rank_rtol · θ_max`` count as 0 (default ``10 n ε``, as
        :meth:`kdtheory.eigen.Spectrum.from_kernel`).

    Returns:
      The student's :class:`~kdtheory.trajectory.Trajectory` (solver record in ``recipe``).

    Raises:
      ValueError: bad options; ConvergenceError: tolerance not met (``strict=True``).
    """
    student = student or teacher
    k = _outputs(y)

    def filter_of(spec: Spectrum) -> Filter:
        return distill_filter(
            spec,
            t,
            teacher_t=teacher_t,
            teacher=teacher,
            student=student,
            teacher_weight=teacher_weight,
            truth_weight=truth_weight,
            outputs=k,
        )

    is_ridge = student.method == "ridge"
    return apply_filter(
        operator,
        y,
        filter_of,
        t=None if is_ridge else t,
        ridge=t if is_ridge else None,
        normalization=student.normalization,
        test_kernel=test_kernel,
        tolerance=tolerance,
        max_iterations=max_iterations,
        strict=strict,
        rank_rtol=rank_rtol,
        recipe=student.record(),
    )


def apply_filter(
    operator: KernelOperator,
    y: ArrayLike,
    filter: FilterOf,
    *,
    t: ArrayLike | None = None,
    ridge: ArrayLike | None = None,
    normalization: Normalization = "sum",
    init: ArrayLike | None = None,
    test_kernel: KernelOperator | ArrayLike | None = None,
    test_init: ArrayLike | None = None,
    tolerance: float = 1e-6,
    max_iterations: int = 500,
    strict: bool = True,
    rank_rtol: float | None = None,
    recipe: Mapping[str, Any] | None = None,
) -> Trajectory:
    r"""A trajectory of any spectral filter, by block Lanczos: ``f = f_0 + F(K)(y − f_0)``.

    ``filter`` maps a spectrum to a :class:`~kdtheory.eigen.Filter`: it is called with the
    :class:`RitzSpectrum` of each checkpoint, so every recipe and composite of the filter algebra
    works unchanged, e.g. ``lambda spec: Recipe("gd", learning_rate=0.1).filter(spec, t)`` or
    ``lambda spec: distill_filter(spec, t, teacher_t=5.0)``. Its ``a/λ`` must be in the units of
    the spectrum's eigenvalues, as :meth:`~kdtheory.eigen.Recipe.filter` returns it.

    Args:
      operator: the training kernel (``n × n``, symmetric PSD).
      y: targets, ``(n,)`` or ``(n, k)``.
      filter: ``Spectrum -> Filter`` as above.
      t: the time axis stored in the trajectory (shape ``S``).
      ridge: the ridge strengths stored instead of ``t`` (ridge recipes).
      normalization: normalization of the reported loss, ``"sum"``, ``"mean"`` or ``"per_output"``.
      init: initial training output ``f_0`` (default 0), shape of ``y``.
      test_kernel: ``k(X_test, X)`` as an operator or an array ``(n_test, n)``.
      test_init: initial test output (default 0), ``(n_test[, k])``.
      tolerance: required accuracy relative to ``‖y − f_0‖`` (module docstring), in (0, 1).
      max_iterations: the most block products with ``K``.
      strict: raise :class:`ConvergenceError` when the tolerance is not met; ``False`` returns the
        result with ``recipe["converged"] = False``.
      rank_rtol: Ritz values ``≤ rank_rtol · θ_max`` count as 0 (default ``10 n ε``, as
        :meth:`kdtheory.eigen.Spectrum.from_kernel`).
      recipe: metadata stored in ``Trajectory.recipe`` (``method``, ``learning_rate``, …).

    Returns:
      A :class:`~kdtheory.trajectory.Trajectory` with ``train`` ``S + (n[, k])``, ``loss``, ``norm``
      (RKHS norm of ``f − f_0``), ``test``, ``filter`` ``S + (M,)`` and ``modes`` ``S + (M[, k])``
      along the ``M`` Ritz vectors (``(V s_i)ᵀ (f − y)``), and ``recipe`` holding, besides the
      recipe: ``solver`` (``"block_lanczos"``), ``tolerance``, ``converged``, ``iterations`` (block
      products with ``K``), ``basis_size`` ``M``, ``exhausted`` (the Krylov space became invariant:
      exact), ``error_train`` and ``error_test`` (estimates per point of the axis, absolute,
      Frobenius over points and outputs; the tolerance applies to these), ``error_loss`` and
      ``error_norm`` (estimates for ``loss`` and ``norm``, reported, not iterated on),
      ``error_reference`` (``‖y − f_0‖``) and ``ritz_values`` (descending, in the kernel's units).

    Raises:
      ValueError: bad shapes or options.
      TypeError: ``filter`` does not return a Filter.
      ConvergenceError: tolerance not met within ``max_iterations`` (``strict=True``).
    """
    _rows(operator)
    if not callable(filter):
        raise TypeError("filter must be a callable Spectrum -> kdtheory.eigen.Filter")
    choice(normalization, "normalization", NORMALIZATIONS)
    if t is not None and ridge is not None:
        raise ValueError("a trajectory is indexed by t or by ridge, not both")
    tol = positive_scalar(tolerance, "tolerance")
    if tol >= 1:
        raise ValueError(f"tolerance must lie in (0, 1), got {tol!r}")
    if isinstance(max_iterations, bool) or int(max_iterations) != max_iterations or max_iterations < 1:
        raise ValueError(f"max_iterations must be a positive integer, got {max_iterations!r}")
    n = operator.n
    rank_rtol = 10 * n * _EPS if rank_rtol is None else positive_scalar(rank_rtol, "rank_rtol", allow_zero=True)
    Y = as_float_array(y, "y", ndim=(1, 2))
    if Y.shape[0] != n:
        raise ValueError(f"y has {Y.shape[0]} rows but the operator has n={n}")
    squeeze = Y.ndim == 1
    Y2 = Y[:, None] if squeeze else Y
    k = Y2.shape[1]
    f0 = np.zeros_like(Y2)
    if init is not None:
        f0 = as_float_array(init, "init", ndim=(1, 2))
        if f0.shape != Y.shape:
            raise ValueError(f"init must have the shape of y {Y.shape}, got {f0.shape}")
        f0 = f0.reshape(Y2.shape)
    Kx, ft0 = _test_args(test_kernel, test_init, n, k, squeeze)
    axis = None if t is None else as_times(t, "t")
    ridge_axis = None if ridge is None else as_times(ridge, "ridge")

    R = Y2 - f0
    ref = float(np.linalg.norm(R))
    if ref == 0.0:
        raise ValueError("y − init is zero: there is nothing to train (every filter leaves f = init)")
    lz = _BlockLanczos(operator, R)
    train_goal = tol * ref
    test_goal = tol * ref * np.sqrt(Kx.shape[0] / n) if Kx is not None else None
    KxV = np.zeros((Kx.shape[0], 0)) if Kx is not None else None
    err_test = None
    prev = prev2 = None
    next_check = 1
    last_change = last_norm_change = np.inf
    while True:
        lz.step()
        final = lz.exhausted or lz.products >= max_iterations
        if lz.products < next_check and not final:
            continue
        next_check = lz.products + max(1, -(-lz.products // 8))
        cur = _Checkpoint(lz, filter, rank_rtol, k)
        # relative size of the perturbation of K behind T: round-off, or, once the space is
        # declared invariant, the dropped residual (below 10 n ε ‖K‖)
        rel = 10 * (n if lz.exhausted else np.sqrt(n)) * _EPS
        floor = cur.floor_train(rel)
        if lz.exhausted:  # invariant Krylov space: exact up to round-off
            err_train = cur.resid + floor
            err_norm = np.zeros_like(err_train)
        elif prev is None:
            err_train = err_norm = np.full(cur.a.shape[0], np.inf)
        else:
            change = _diff(cur.Z, prev.Z)
            err_train = np.maximum(change, last_change) + cur.resid + floor
            last_change = change
            norm_change = np.abs(cur.norm - prev.norm)
            err_norm = np.maximum(norm_change, last_norm_change)
            last_norm_change = norm_change
        ok = bool(np.all(err_train <= train_goal))
        if Kx is not None and (ok or final):
            KxV = np.concatenate([KxV, Kx.matmat(lz.V[:, KxV.shape[1] : cur.M])], axis=1)
            P = np.einsum("im,tmk->tik", KxV[:, : cur.M], cur.D, optimize=True)
            floor = rel / np.sqrt(n) * _test_roundoff(KxV[:, : cur.M], cur)
            if lz.exhausted:
                err_test = floor
            elif prev is None:
                err_test = np.full(cur.a.shape[0], np.inf)
            else:
                P -= np.einsum("im,tmk->tik", KxV[:, : prev.M], prev.D, optimize=True)
                change = np.linalg.norm(P.reshape(P.shape[0], -1), axis=1)
                if prev2 is not None and prev2.M > 0:  # the change before, as for the train estimate
                    P = np.einsum("im,tmk->tik", KxV[:, : prev.M], prev.D, optimize=True)
                    P -= np.einsum("im,tmk->tik", KxV[:, : prev2.M], prev2.D, optimize=True)
                    change = np.maximum(change, np.linalg.norm(P.reshape(P.shape[0], -1), axis=1))
                else:
                    change = np.full_like(change, np.inf)
                err_test = change + floor
            ok = ok and bool(np.all(err_test <= test_goal))
        if ok or final:
            break
        prev2, prev = prev, cur
    for arr, name in ((axis, "t"), (ridge_axis, "ridge")):
        if arr is not None and arr.shape != cur.S_shape:
            raise ValueError(f"{name} has shape {arr.shape} but the filter's leading shape is {cur.S_shape}")
    if axis is None and ridge_axis is None:
        axis = np.arange(cur.a.shape[0], dtype=float).reshape(cur.S_shape)
    return _finish(
        lz,
        cur,
        f0,
        Y2,
        squeeze,
        KxV,
        ft0,
        axis,
        ridge_axis,
        normalization,
        ok,
        tol,
        err_train,
        err_test,
        err_norm,
        ref,
        recipe,
        strict,
    )


def _outputs(y: ArrayLike) -> int:
    shape = np.shape(y)
    return int(shape[1]) if len(shape) == 2 else 1


def _rows(operator: object) -> int:
    if not isinstance(operator, KernelOperator) or operator.shape[0] != operator.shape[1]:
        raise ValueError(f"operator must be a square KernelOperator, got {operator!r}")
    return operator.n


def _test_args(test_kernel, test_init, n: int, k: int, squeeze: bool):
    if test_kernel is None:
        if test_init is not None:
            raise ValueError("test_init needs test_kernel")
        return None, None
    if isinstance(test_kernel, KernelOperator):
        Kx = test_kernel
    else:
        Kx = StoredKernel(as_float_array(test_kernel, "test_kernel", ndim=(2,)), check=False)
    if Kx.shape[1] != n:
        raise ValueError(f"test_kernel has {Kx.shape[1]} columns but the operator has n={n}")
    nt = Kx.shape[0]
    if test_init is None:
        return Kx, np.zeros((nt, k))
    f = as_float_array(test_init, "test_init", ndim=(1, 2))
    want = (nt,) if squeeze else (nt, k)
    if f.shape != want:
        raise ValueError(f"test_init must have shape {want}, got {f.shape}")
    return Kx, f.reshape(nt, k)


def _finish(
    lz,
    cur,
    f0,
    Y2,
    squeeze,
    KxV,
    ft0,
    axis,
    ridge_axis,
    normalization,
    ok,
    tol,
    err_train,
    err_test,
    err_norm,
    ref,
    recipe,
    strict,
):
    n, k = Y2.shape
    S = cur.S_shape
    M = cur.M
    Vm = lz.V[:, :M]
    train = f0[None] + np.einsum("nm,tmk->tnk", Vm, cur.Z, optimize=True)
    test = None if KxV is None else ft0[None] + np.einsum("im,tmk->tik", KxV[:, :M], cur.D, optimize=True)
    res = (1.0 - cur.a)[:, :, None] * cur.sc[None]  # (T, M, k): coordinates of y − f along the Ritz vectors
    div = loss_divisor(normalization, n, k)
    loss = 0.5 * np.einsum("tmk,tmk->t", res, res) / div
    # |½‖r + δ‖² − ½‖r‖²| ≤ ‖δ‖ (‖r‖ + ‖δ‖): the loss estimate follows from the train estimate
    err_loss = err_train * (np.sqrt(2 * div * loss) + err_train) / div
    err_norm = err_norm + cur.floor_norm(10 * (n if lz.exhausted else np.sqrt(n)) * _EPS)

    def shape(x):
        if x is None:
            return None
        x = x.reshape(S + x.shape[1:])
        return x[..., 0] if squeeze else x

    rec: dict[str, Any] = {"method": "custom", "learning_rate": float("nan"), "momentum": 0.0, **(recipe or {})}
    rec.update(
        normalization=normalization,
        solver="block_lanczos",
        tolerance=float(tol),
        converged=bool(ok),
        iterations=lz.products,
        basis_size=int(M),
        exhausted=bool(lz.exhausted),
        error_train=err_train.reshape(S).tolist(),
        error_test=None if err_test is None else err_test.reshape(S).tolist(),
        error_loss=err_loss.reshape(S).tolist(),
        error_norm=err_norm.reshape(S).tolist(),
        error_reference=ref,
        ritz_values=cur.theta.tolist(),
    )
    traj = Trajectory(
        t=axis,
        ridge=ridge_axis,
        train=shape(train),
        loss=loss.reshape(S),
        test=shape(test),
        filter=cur.a.reshape(S + (M,)),
        modes=shape(-res),
        norm=cur.norm.reshape(S),
        recipe=rec,
    )
    if not ok and strict:
        worst = float(np.max(err_train)) / ref
        msg = (
            f"block Lanczos did not meet tolerance={tol:g} after {rec['iterations']} block products "
            f"(basis {M}): estimated train error {worst:.3g} relative to ‖y − init‖"
        )
        if err_test is not None:
            msg += f", test error {float(np.max(err_test)) / ref:.3g}"
        if lz.exhausted:
            msg += (
                "; the Krylov space is complete (exact up to round-off), so this is the round-off floor: "
                "the filter is ill-conditioned on this spectrum at this tolerance (loosen it)"
            )
        else:
            msg += "; raise max_iterations or loosen tolerance"
        raise ConvergenceError(msg + " (strict=False returns the result with its estimate)", traj)
    return traj
