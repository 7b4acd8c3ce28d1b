r"""The spectral core: eigendecompositions of kernels and design matrices, and spectral filters.

Gradient-based training of a linear (kernel) model on the squared loss acts independently on the
eigendirections of the kernel ``K = X Xᵀ``: along eigendirection ``u_k`` (eigenvalue ``λ_k``) it
learns a fraction ``a_k(t)`` of the label component ``z_k = u_kᵀ y``. The map ``λ ↦ a(t)`` is the
*spectral filter* of the training recipe. This module computes

* :class:`Spectrum`, the eigenpairs of a PSD kernel (:meth:`Spectrum.from_kernel`) or the SVD of a
  design matrix (:meth:`Spectrum.from_features`), eigenvalues in **descending** order;
* spectral filters as plain functions of eigenvalues: gradient flow (:func:`flow_filter`), gradient
  descent (:func:`gd_filter`), heavy-ball momentum (:func:`momentum_filter`) and kernel ridge
  (:func:`ridge_filter`), each with an ``over_eval=True`` form returning ``a_k/λ_k`` with its exact
  finite limit at ``λ_k = 0`` (needed for test-point predictions and weights);
* :func:`max_learning_rate`, the stability bound of gradient descent and momentum.

Conventions (stated once, used everywhere):
  * Loss ``½‖f − y‖²`` ("sum" normalization). For ``½‖f − y‖²/n`` use eigenvalues ``λ/n``
    (:mod:`kdtheory.dynamics` does this for you with ``loss="mean"``).
  * Gradient flow time ``t`` is measured in units of ``learning_rate``: continuous time ``η t``.
    With the default ``learning_rate=1`` it is plain continuous time.
  * Gradient descent and momentum count whole steps; ``np.inf`` means the converged limit.
  * ``t = ∞`` is the exact limit (``a = 1`` for ``λ > 0``, ``0`` for ``λ = 0``; ``a/λ = 1/λ`` or
    ``0``: the minimum-norm / pseudo-inverse solution), never a large finite time.

This module imports numpy and scipy only.

References:
  Jacot, Gabriel, Hongler (2018), *Neural tangent kernel*; Lee et al. (2019), *Wide neural
  networks of any depth evolve as linear models under gradient descent*, eq. 9;
  Nagarajan et al. (2023), *On student-teacher deviations in distillation*, §5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, as_times, choice, positive_scalar

__all__ = [
    "Spectrum",
    "flow_filter",
    "gd_filter",
    "momentum_filter",
    "ridge_filter",
    "filter_pair",
    "max_learning_rate",
    "Method",
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
          sym_rtol: allowed asymmetry ``max|K − Kᵀ| ≤ sym_rtol · max|K|``. Default ``1e4 ε`` where
            ε is the machine epsilon of ``K``'s dtype (float32 input gets float32 tolerance).
          psd_rtol: eigenvalues in ``[−psd_rtol · λ_max, 0)`` are round-off and clipped to 0;
            more negative ones raise. Default ``100 · max(n, 100) · ε``.
          rank_rtol: eigenvalues ``≤ rank_rtol · λ_max`` are set to exactly 0 (numerical rank,
            as ``numpy.linalg.matrix_rank`` with a safety factor 10). Default ``10 n ε`` with ε of
            ``K``'s dtype; pass 0 to keep every non-negative eigenvalue.

        Returns:
          The spectrum, eigenvalues descending.

        Raises:
          ValueError: ``K`` not square, not finite, asymmetric or clearly not PSD.
        """
        raw = np.asarray(K)
        eps = _dtype_eps(raw)
        K = as_float_array(raw, "K", ndim=(2,))
        n = K.shape[0]
        if K.shape != (n, n):
            raise ValueError(f"K must be square, got shape {K.shape}")
        if n == 0:
            raise ValueError("K must have at least one row")
        scale = float(max(K.max(), -K.min()))  # max|K| without an n × n temporary
        sym_rtol = 1e4 * eps if sym_rtol is None else positive_scalar(sym_rtol, "sym_rtol", allow_zero=True)
        asym = _max_asymmetry(K)
        if asym > sym_rtol * scale:
            raise ValueError(
                f"K is not symmetric: max|K - K.T| = {asym:.3g} > sym_rtol * max|K| = {sym_rtol * scale:.3g}"
            )
        # eigh (LAPACK syevd) reads the lower triangle; within sym_rtol that is as good as symmetrizing
        evals, U = np.linalg.eigh(K, UPLO="L")
        evals, U = evals[::-1], U[:, ::-1]
        lam_max = max(float(evals[0]), 0.0)
        psd_rtol = (
            100 * max(n, 100) * eps if psd_rtol is None else positive_scalar(psd_rtol, "psd_rtol", allow_zero=True)
        )
        if evals[-1] < -psd_rtol * max(lam_max, scale):
            raise ValueError(
                f"K is not positive semi-definite: smallest eigenvalue {evals[-1]:.3g} is below "
                f"-psd_rtol * lambda_max = {-psd_rtol * max(lam_max, scale):.3g}"
            )
        rank_rtol = 10 * n * eps if rank_rtol is None else rank_rtol
        return cls._finish(evals, np.ascontiguousarray(U), None, rank_rtol, n)

    @classmethod
    def from_features(cls, X: ArrayLike, *, rank_rtol: float | None = None) -> Spectrum:
        r"""Spectrum of the linear kernel ``K = X Xᵀ`` from the thin SVD ``X = U S Vᵀ``.

        The weight-space eigenvalues of ``XᵀX`` are the same ``λ_k = s_k²``; the minimum-norm
        least-squares solution has coordinates ``w*_k = z_k / s_k`` along ``V``.

        Args:
          X: design matrix, shape ``(n, d)``.
          rank_rtol: eigenvalues ``λ_k = s_k² ≤ rank_rtol · λ_max`` are set to 0. Default
            ``10 max(n, d) ε`` applied to the singular values (as ``matrix_rank``, with a safety
            factor 10), i.e. ``(10 max(n, d) ε)²`` on eigenvalues.

        Returns:
          The spectrum with ``U`` of shape ``(n, m)`` and ``V`` of shape ``(d, m)``,
          ``m = min(n, d)``.

        Raises:
          ValueError: ``X`` not 2-D or not finite.
        """
        X = as_float_array(X, "X", ndim=(2,))
        n, d = X.shape
        if n == 0 or d == 0:
            raise ValueError(f"X must have at least one row and one column, got shape {X.shape}")
        U, s, Vt = scipy.linalg.svd(X, full_matrices=False, check_finite=False, lapack_driver="gesdd")
        if rank_rtol is None:
            rank_rtol = (10 * max(n, d) * _EPS) ** 2
        return cls._finish(s**2, U, np.ascontiguousarray(Vt.T), rank_rtol, n)

    @classmethod
    def _finish(cls, evals: np.ndarray, U: np.ndarray, V: np.ndarray | None, rank_rtol: float, n: int) -> Spectrum:
        evals = np.clip(np.asarray(evals, dtype=np.float64), 0.0, None)
        rank_rtol = positive_scalar(rank_rtol, "rank_rtol", allow_zero=True)
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
        """Inverse of :meth:`project` on ``span(U)``: ``U z``, shape ``(n,)`` or ``(n, k)``."""
        z = as_float_array(z, "z", ndim=(1, 2))
        if z.shape[0] != self.evals.size:
            raise ValueError(f"z has {z.shape[0]} rows but the spectrum has {self.evals.size} modes")
        return self.U @ z

    def complement(self, y: ArrayLike, *, name: str = "y") -> np.ndarray:
        """The part of ``y`` outside ``span(U)``: ``y − U Uᵀ y`` (exactly 0 for a kernel spectrum)."""
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


def _dtype_eps(a: np.ndarray) -> float:
    if np.issubdtype(a.dtype, np.floating):
        return float(max(np.finfo(a.dtype).eps, _EPS))
    return float(_EPS)


def _evals(evals: ArrayLike) -> np.ndarray:
    lam = as_float_array(evals, "evals", ndim=(0, 1))
    if (lam < 0).any():
        raise ValueError(f"evals must be >= 0 (got min {lam.min()!r}); clip round-off first")
    return lam


# ---------------------------------------------------------------------- filters
def flow_filter(evals: ArrayLike, t: ArrayLike, *, learning_rate: float = 1.0, over_eval: bool = False) -> np.ndarray:
    r"""Fraction of each eigen-mode learned by gradient flow on ``½‖f − y‖²``.

    Implements ``a_k(t) = 1 − exp(−η λ_k t)``, computed as ``−expm1(−η λ t)`` so that small
    ``η λ t`` keeps full relative precision. With ``over_eval=True`` returns ``a_k/λ_k``, whose
    ``λ → 0`` limit is ``η t``.

    Args:
      evals: eigenvalues ``λ_k ≥ 0``, shape ``(m,)``.
      t: times in units of ``learning_rate`` (continuous time ``η t``), any shape, ``≥ 0``,
        ``np.inf`` allowed.
      learning_rate: η > 0.
      over_eval: return ``a_k/λ_k`` instead of ``a_k``.

    Returns:
      Array of shape ``t.shape + (m,)``; values of ``a`` lie in [0, 1].

    Note:
      ``t = ∞`` gives ``a = 1`` for λ > 0 and ``0`` for λ = 0 exactly; ``a/λ = 1/λ`` or ``0``
      (the pseudo-inverse), although ``a/λ → ∞`` as ``t → ∞`` at λ = 0.

    References:
      Jacot, Gabriel, Hongler (2018); Lee et al. (2019), eq. 9.
    """
    a, g = filter_pair(evals, t, method="flow", learning_rate=learning_rate)
    return g if over_eval else a


def gd_filter(
    evals: ArrayLike,
    steps: ArrayLike,
    *,
    learning_rate: float,
    over_eval: bool = False,
    allow_unstable: bool = False,
) -> np.ndarray:
    r"""Fraction of each eigen-mode learned by ``s`` steps of gradient descent on ``½‖f − y‖²``.

    Implements ``a_k(s) = 1 − (1 − η λ_k)^s``; for ``η λ ≤ 1`` as ``−expm1(s log1p(−η λ))``.
    With ``over_eval=True`` returns ``a_k/λ_k`` (limit ``η s`` at λ = 0).

    Args:
      evals: eigenvalues ``λ_k ≥ 0``, shape ``(m,)``.
      steps: whole numbers of steps ``s ≥ 0`` (``np.inf`` allowed), any shape.
      learning_rate: η > 0. Stable iff ``η λ_max < 2``; every mode is monotone iff
        ``η λ_max ≤ 1``.
      over_eval: return ``a_k/λ_k`` instead of ``a_k``.
      allow_unstable: permit ``η λ_max ≥ 2`` (diverging modes) at finite steps.

    Returns:
      Array of shape ``steps.shape + (m,)``.

    Raises:
      ValueError: ``η λ_max ≥ 2`` unless ``allow_unstable``; ``steps = ∞`` with an unstable η.
    """
    a, g = filter_pair(evals, steps, method="gd", learning_rate=learning_rate, allow_unstable=allow_unstable)
    return g if over_eval else a


def momentum_filter(
    evals: ArrayLike,
    steps: ArrayLike,
    *,
    learning_rate: float,
    momentum: float,
    over_eval: bool = False,
    allow_unstable: bool = False,
) -> np.ndarray:
    r"""Fraction of each eigen-mode learned by heavy-ball momentum on ``½‖f − y‖²``.

    Update ``v_{s+1} = β v_s − η ∇L(w_s)``, ``w_{s+1} = w_s + v_{s+1}``, ``v_0 = 0``. Per mode the
    remaining fraction ``e_s = 1 − a_s`` obeys ``e_{s+1} = (1 + β − ηλ) e_s − β e_{s−1}`` with
    ``e_0 = 1``, ``e_1 = 1 − ηλ``. With roots ``μ_{1,2}`` of ``μ² − (1 + β − ηλ) μ + β`` and
    ``D_m = (μ_1^m − μ_2^m)/(μ_1 − μ_2)``, the closed form is ``e_s = e_1 D_s − β D_{s−1}``, and
    ``a_s/λ = η [G_{s+1}(μ_1) − G_{s+1}(μ_2)]/(μ_1 − μ_2)`` with ``G_m(μ) = (1 − μ^m)/(1 − μ)``.
    ``D_m`` is evaluated without cancellation: as ``r^{m−1} sin(mθ)/sin θ`` for complex roots
    ``r e^{±iθ}``, as ``μ_1^{m−1} (1 − ρ^m)/(1 − ρ)``, ``ρ = μ_2/μ_1``, for real ones, and as
    ``m μ^{m−1}`` for a double root.

    Args:
      evals: eigenvalues ``λ_k ≥ 0``, shape ``(m,)``.
      steps: whole numbers of steps ``s ≥ 0`` (``np.inf`` allowed), any shape.
      learning_rate: η > 0. Stable iff ``η λ_max < 2 (1 + β)``.
      momentum: β in ``[0, 1)``; β = 0 is gradient descent.
      over_eval: return ``a_k/λ_k`` (limit at λ = 0: ``η [s − β(1 − β^s)/(1 − β)]/(1 − β)``).
      allow_unstable: permit ``η λ_max ≥ 2(1 + β)`` at finite steps.

    Returns:
      Array of shape ``steps.shape + (m,)``.

    References:
      Polyak (1964); Goh (2017), *Why momentum really works*, Distill.
    """
    a, g = filter_pair(
        evals,
        steps,
        method="momentum",
        learning_rate=learning_rate,
        momentum=momentum,
        allow_unstable=allow_unstable,
    )
    return g if over_eval else a


def ridge_filter(evals: ArrayLike, reg: ArrayLike, *, over_eval: bool = False) -> np.ndarray:
    r"""Kernel ridge regression filter ``a_k = λ_k/(λ_k + c)``.

    Kernel ridge with regularization ``c`` (``min ½‖f − y‖² + ½ c‖f‖²_H``) predicts
    ``U diag(a) Uᵀ y`` on the training points. With ``over_eval=True`` returns ``1/(λ_k + c)``.

    Args:
      evals: eigenvalues ``λ_k ≥ 0``, shape ``(m,)``.
      reg: regularization ``c ≥ 0``, any shape. ``c = 0`` is the interpolating (pseudo-inverse)
        limit: ``a = 1`` for λ > 0 and ``0`` for λ = 0; ``a/λ = 1/λ`` or ``0``.
      over_eval: return ``a_k/λ_k``.

    Returns:
      Array of shape ``reg.shape + (m,)``.

    References:
      Ali, Kolter, Tibshirani (2019): gradient flow at time t ≈ ridge with c = 1/t.
    """
    lam = _evals(evals)
    c = as_times(reg, "reg")[..., None]
    if np.isinf(c).any():
        raise ValueError("reg must be finite")
    pos = lam > 0
    denom = lam + c
    safe = np.where(denom > 0, denom, 1.0)
    a = np.where(pos, lam / safe, 0.0)
    g = np.where(denom > 0, 1.0 / safe, 0.0)
    return g if over_eval else a


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
    (returns ``inf``).

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


def filter_pair(
    evals: ArrayLike,
    t: ArrayLike,
    *,
    method: Method,
    learning_rate: float = 1.0,
    momentum: float = 0.0,
    allow_unstable: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Both ``a_k(t)`` and the stable ``a_k(t)/λ_k`` of a training recipe, computed once.

    This is the engine behind :func:`flow_filter`, :func:`gd_filter` and :func:`momentum_filter`
    (see them for the formulas and conventions).

    Args:
      evals: eigenvalues ``λ_k ≥ 0``, shape ``(m,)``.
      t: times (flow, in units of η) or whole steps (gd, momentum); ``≥ 0``; ``np.inf`` allowed.
      method: ``"flow"``, ``"gd"`` or ``"momentum"``.
      learning_rate: η > 0.
      momentum: β in [0, 1) (``"momentum"`` only).
      allow_unstable: permit learning rates beyond stability at finite times.

    Returns:
      ``(a, a_over_eval)``, each of shape ``t.shape + (m,)``.
    """
    choice(method, "method", ("flow", "gd", "momentum"))
    lam = _evals(evals)
    eta = positive_scalar(learning_rate, "learning_rate")
    t = as_times(t, "t" if method == "flow" else "steps", integer=method != "flow")
    beta = _beta(momentum) if method == "momentum" else 0.0
    if method != "momentum" and momentum != 0.0:
        raise ValueError(f"momentum={momentum!r} is only used with method='momentum'")
    q = eta * lam
    q_max = float(q.max()) if q.size else 0.0
    if method != "flow":
        bound = 2.0 * (1.0 + beta)
        if q_max >= bound:
            msg = (
                f"learning_rate={eta!r} is beyond stability: learning_rate * lambda_max = "
                f"{q_max:.6g} >= {bound:g}" + (" (2(1 + momentum))" if method == "momentum" else "")
            )
            if not allow_unstable:
                raise ValueError(msg + "; pass allow_unstable=True to compute diverging modes")
            if np.isinf(t).any():
                raise ValueError(msg + ", so t = inf has no limit")
    tt = t[..., None]
    if method == "flow":
        a, h = _flow(q, tt)
    elif method == "gd":
        a, h = _gd(q, tt)
    else:
        a, h = _momentum(q, tt, beta)
    # Exact limits at t = inf: a = 1[λ > 0], a/λ = 1/λ or 0 (pseudo-inverse).
    inf = np.isinf(tt) & np.ones_like(q, dtype=bool)
    pos = q > 0
    with np.errstate(divide="ignore"):
        inv = np.where(pos, 1.0 / np.where(pos, lam, 1.0), 0.0)
    a = np.where(inf, np.where(pos, 1.0, 0.0), a)
    g = np.where(inf, inv, eta * h)
    return a, g


def _geom(delta: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``(1 − (1 − δ)^m)/δ`` for ``0 ≤ δ ≤ 1`` and finite ``m ≥ 0``, limit ``m`` at δ = 0."""
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
    s = np.where(np.isinf(s), 0.0, s) * np.ones_like(q)
    qb = q * np.ones_like(s)
    b = 1.0 + beta - qb
    rb = np.sqrt(beta)
    disc = (qb - (1.0 - rb) ** 2) * (qb - (1.0 + rb) ** 2)  # b² − 4β without cancellation
    e1 = 1.0 - qb
    sm1 = np.maximum(s - 1.0, 0.0)

    real = disc > 0
    cplx = disc < 0
    dbl = disc == 0
    D_s = np.zeros_like(s)
    D_sm1 = np.zeros_like(s)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # real distinct roots: μ1 the larger in magnitude, ρ = μ2/μ1 in [0, 1)
        sb = np.where(b >= 0, 1.0, -1.0)
        sq = np.sqrt(np.where(real, disc, 0.0))
        mu1 = np.where(real, 0.5 * (b + sb * sq), 1.0)
        one_m_rho = np.where(real, sb * sq / mu1, 1.0)
        for m, out in ((s, D_s), (sm1, D_sm1)):
            val = np.power(mu1, np.maximum(m - 1.0, 0.0)) * _geom(one_m_rho, m)
            out[...] = np.where(real & (m > 0), val, out)
        # complex roots ±r e^{iθ} (times sign of b)
        theta = np.arctan2(np.sqrt(np.where(cplx, -disc, 0.0)), np.abs(b))
        r = rb
        sin_t = np.where(cplx, np.sin(theta), 1.0)
        for m, out in ((s, D_s), (sm1, D_sm1)):
            sign = np.where((sb < 0) & (np.mod(m - 1.0, 2.0) == 1.0), -1.0, 1.0)
            val = sign * np.power(r, np.maximum(m - 1.0, 0.0)) * np.sin(m * theta) / sin_t
            out[...] = np.where(cplx & (m > 0), val, out)
        # double root μ = b/2
        mu = 0.5 * b
        for m, out in ((s, D_s), (sm1, D_sm1)):
            val = m * np.power(mu, np.maximum(m - 1.0, 0.0))
            out[...] = np.where(dbl & (m > 0), val, out)

        e = np.where(s == 0, 1.0, e1 * D_s - beta * D_sm1)
        a = 1.0 - e
        # a/q: the divided difference of G_{s+1} when both roots are real, positive and a is small
        # (no cancellation in 1 − e), else (1 − e)/q.
        use_dd = real & (b > 0) & (a < 0.5)
        mu2 = np.where(use_dd, beta / mu1, 0.0)
        delta2 = 1.0 - mu2
        delta1 = np.where(use_dd, qb / np.where(use_dd, delta2, 1.0), 0.0)
        dd = (_geom(delta1, s + 1.0) - _geom(np.where(use_dd, delta2, 0.0), s + 1.0)) / np.where(use_dd, mu1 - mu2, 1.0)
        h = np.where(s == 0, 0.0, np.where(use_dd, dd, a / np.where(qb > 0, qb, 1.0)))
    return a, h
