r"""Spectra of kernels and design matrices: the eigenbasis every closed form of kdtheory works in.

:class:`Spectrum` holds the eigenpairs of a PSD kernel (:meth:`Spectrum.from_kernel`) or the SVD
of a design matrix (:meth:`Spectrum.from_features`), eigenvalues in **descending** order, with the
numerical rank made exact (eigenvalues at or below ``rank_tol`` are exactly 0). This module's one
job is getting that decomposition right: the input judged at the precision it was computed in,
symmetry and positive semi-definiteness checked with stated tolerances, kernels of extreme scale
decomposed after an exact power-of-two rescaling. What training does to each eigendirection is
:mod:`kdtheory.filters`; :mod:`kdtheory.eigen` re-exports both. Imports numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from kdtheory._checks import as_array, as_float_array, positive_scalar

__all__ = ["Spectrum"]

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
          TypeError: ``K`` does not hold real numbers.
          ValueError: ``K`` ragged, not square, not finite, asymmetric or clearly not PSD; a
            tolerance outside ``[0, 1)``; an eigenvalue beyond the float64 range.
        """
        raw = as_array(K, "K")  # a ragged nested list raises here, naming K
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
          TypeError: ``X`` does not hold real numbers.
          ValueError: ``X`` ragged, not 2-D or not finite; ``rank_rtol`` outside ``[0, 1)``; an
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
        n: int = self.U.shape[0]
        return n

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
        s: np.ndarray = np.sqrt(self.evals)
        return s

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

        Raises:
          TypeError: ``y`` not real numbers.
          ValueError: ``y`` ragged, not 1-D or 2-D, not finite, or with a row count other than ``n``.
        """
        y = self.check_labels(y, name=name)
        z: np.ndarray = self.U.T @ y
        return z

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
          ValueError: ``z`` ragged, not 1-D or 2-D, not finite, or with a row count other than ``m``.
        """
        z = as_float_array(z, "z", ndim=(1, 2))
        if z.shape[0] != self.evals.size:
            raise ValueError(f"z has {z.shape[0]} rows but the spectrum has {self.evals.size} modes")
        y: np.ndarray = self.U @ z
        return y

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
          ValueError: ``y`` ragged, not 1-D or 2-D, not finite, or with a row count other than ``n``.
        """
        y = self.check_labels(y, name=name)
        if self.U.shape[1] == self.n:
            return np.zeros_like(y)
        rest: np.ndarray = y - self.U @ (self.U.T @ y)
        return rest

    def kernel(self) -> np.ndarray:
        """The kernel ``U diag(λ) Uᵀ`` rebuilt from the (rank-truncated) spectrum."""
        K: np.ndarray = (self.U * self.evals) @ self.U.T
        return K

    def check_labels(self, y: ArrayLike, *, name: str = "y") -> np.ndarray:
        r"""Labels (or any values on the ``n`` points) as a float64 array, checked against this spectrum.

        What every closed form on this spectrum does first with its labels, targets or
        initial predictions.

        Args:
          y: values on the points, shape ``(n,)`` or ``(n, k)``; finite real numbers.
          name: argument name used in error messages (default ``"y"``).

        Returns:
          ``y`` as a finite float64 array (no copy when it already is one).

        Raises:
          TypeError: ``y`` not real numbers.
          ValueError: ``y`` ragged, not 1-D or 2-D, not finite, or with a row count other than ``n``.
        """
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
