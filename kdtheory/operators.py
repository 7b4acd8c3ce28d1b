r"""Kernels as operators: ``K @ V`` for a block ``V`` without forming ``K`` unless asked.

A :class:`KernelOperator` gives the products a Krylov method needs (:mod:`kdtheory.krylov`):

* :meth:`KernelOperator.matmat` — ``K V`` for a block ``V`` of shape ``(n, b)``;
* :meth:`KernelOperator.cross` — the rectangular operator ``k(X_test, X)`` for test predictions;
* :meth:`KernelOperator.diagonal` / :meth:`KernelOperator.trace` where they are cheap;
* :meth:`KernelOperator.dense` — the matrix itself, formed only on request;
* :meth:`KernelOperator.as_linear_operator` — a ``scipy.sparse.linalg.LinearOperator``.

Four kinds:

* :class:`FeatureKernel` — ``K = Φ Φᵀ`` from features ``Φ`` (``n × p``): ``K V = Φ (Φᵀ V)``,
  cost ``2 n p b`` per product, memory ``n p``.
* :class:`FunctionKernel` — ``K_ij = k(x_i, x_j)`` evaluated tile by tile (cache-sized square
  tiles, each tile of the symmetric kernel once): ``n²/2 · (d + 2b)`` multiply-adds and ``n²/2``
  kernel evaluations per product, memory ``n (d + b)`` plus a tile per device. Kernels:
  :class:`RBF`, and the infinite-width ReLU :class:`ReluNNGP` / :class:`ReluNTK` (the arc-cosine
  recursion of :func:`kdtheory.ntk.relu_ntk` written for blocks in JAX).
* :class:`StoredKernel` — a stored matrix (``numpy.memmap`` is fine, float32 allowed); the
  operator is the stored values exactly, products are computed in float64.
* :class:`NTKOperator` — the empirical NTK ``Θ = J Jᵀ`` of a JAX network through NTK-vector
  products (``jax.vjp`` then ``jax.jvp``); ``J`` is never formed.

Precision: products are computed in ``dtype`` (default float64, inside a scoped
``jax.enable_x64(True)``; the library never flips JAX's global flag). Inputs and outputs of
:meth:`~KernelOperator.matmat` are float64 numpy arrays.

Sharding over several devices. Every product runs as one ``jax.shard_map`` over a one-axis mesh
``Mesh(devices, ("rows",))`` (:func:`device_mesh`) with ``PartitionSpec("rows")``: stored
matrices, features and NTKs split the rows of the kernel (the data points, padded to a whole
number of row blocks per device), and ``Φᵀ V`` / ``Jᵀ V`` are summed over devices with
``jax.lax.psum``; kernel functions split the list of square tiles ``k(X_I, X_J)`` (each device sums
its tiles into the output, then one ``psum``). The block ``V`` is replicated. The result is the
same on one device and on several, up to the order of floating-point sums (round-off, ~1e-16). By default every device
JAX sees is used (``jax.devices()``); pass ``devices=`` to choose. To run on several GPUs, install
JAX with CUDA (``pip install "jax[cuda12]"``) on a machine with them; nothing else changes::

    op = FunctionKernel(X, RBF(lengthscale=3.0))          # uses all GPUs JAX sees
    traj = kdtheory.dynamics.train(op, y, t, test=kdtheory.dynamics.TestPoints(kernel=op.cross(X_test)))

On a CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before JAX is imported)
gives four host devices, which is how the tests check that sharding does not change the numbers.

References:
  Gardner et al. (2018), *GPyTorch: blackbox matrix-matrix Gaussian process inference*;
  Wang et al. (2019), *Exact Gaussian processes on a million data points*;
  Cho & Saul (2009); Jacot, Gabriel, Hongler (2018); Arora et al. (2019) for the ReLU kernels.
"""

from __future__ import annotations

import abc
import functools
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse.linalg
from jax.sharding import Mesh
from jax.typing import DTypeLike
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, positive_integer, positive_scalar
from kdtheory._layers import network_outputs
from kdtheory._sharding import _ENTRIES_PER_BLOCK, _TILE, _pad_rows, _Precision, _Rows, _Tiles, device_mesh

KernelFn = Callable[[jax.Array, jax.Array, jax.Array | None], jax.Array]
"""A kernel function ``kernel(A, B, same) -> (|A|, |B|)`` in ``jax.numpy`` (see :class:`FunctionKernel`)."""

__all__ = [
    "KernelOperator",
    "FeatureKernel",
    "FunctionKernel",
    "StoredKernel",
    "NTKOperator",
    "RBF",
    "ReluNNGP",
    "ReluNTK",
    "relu_kernels",
    "ntk_vector_product",
    "device_mesh",
]


# ---------------------------------------------------------------------- the interface
class KernelOperator(abc.ABC):
    r"""A (possibly rectangular) kernel matrix ``K`` given by its products ``K V``.

    Subclasses implement :meth:`_matmat`; the public methods validate shapes and return float64.
    ``shape`` is ``(rows, columns)``; a training kernel is square and symmetric PSD.
    """

    shape: tuple[int, int]

    @property
    def n(self) -> int:
        """Number of rows (training points, or ``n·k`` for a full NTK)."""
        return self.shape[0]

    def matmat(self, V: ArrayLike) -> np.ndarray:
        r"""The product ``K V``.

        Args:
          V: shape ``(columns,)`` or ``(columns, b)``.

        Returns:
          float64 array of shape ``(rows,)`` or ``(rows, b)``.

        Raises:
          ValueError: ``V`` has the wrong number of rows or non-finite values.
        """
        V = as_float_array(V, "V", ndim=(1, 2))
        if V.shape[0] != self.shape[1]:
            raise ValueError(f"V has {V.shape[0]} rows but the operator has {self.shape[1]} columns")
        vec = V.ndim == 1
        V2 = V[:, None] if vec else V
        if V2.shape[1] == 0:
            return np.zeros((self.shape[0], 0))
        out = np.array(self._matmat(V2), dtype=np.float64)  # a writable copy (JAX buffers are read-only)
        return out[:, 0] if vec else out

    def __matmul__(self, V: ArrayLike) -> np.ndarray:
        """``K @ V``, the same as :meth:`matmat`."""
        return self.matmat(V)

    @abc.abstractmethod
    def _matmat(self, V: np.ndarray) -> np.ndarray: ...

    def diagonal(self) -> np.ndarray | None:
        """The diagonal of a square operator (float64), or ``None`` where it is not cheap."""
        return None

    def trace(self) -> float | None:
        """``tr K`` from :meth:`diagonal`, or ``None`` where it is not cheap."""
        d = self.diagonal()
        return None if d is None else float(np.sum(d))

    def cross(self, test: ArrayLike) -> KernelOperator:
        """The rectangular operator ``k(test, X)`` (``n_test × n``) for test predictions.

        Args:
          test: test data of the kind the operator was built from (features, inputs, or a stored
            ``(n_test, n)`` cross-kernel).

        Returns:
          A :class:`KernelOperator` of shape ``(n_test, n)``.
        """
        raise NotImplementedError(f"{type(self).__name__} has no cross-kernel")

    def dense(self, *, block_size: int = 1024) -> np.ndarray:
        """Form the matrix (``rows × columns``, float64) from products with identity blocks.

        Args:
          block_size: columns of the identity per product.

        Returns:
          The dense matrix.
        """
        bs = positive_integer(block_size, "block_size")
        cols = [self.matmat(np.eye(self.shape[1])[:, j : j + bs]) for j in range(0, self.shape[1], bs)]
        return np.concatenate(cols, axis=1)

    def as_linear_operator(self) -> scipy.sparse.linalg.LinearOperator:
        """The operator as a ``scipy.sparse.linalg.LinearOperator`` (for ``eigsh``, ``cg``, …)."""
        return scipy.sparse.linalg.LinearOperator(
            self.shape, matvec=self.matmat, matmat=self.matmat, rmatvec=self._rmat, dtype=np.float64
        )

    def _rmat(self, v: np.ndarray) -> np.ndarray:
        if self.shape[0] != self.shape[1]:
            raise NotImplementedError("transpose products of a rectangular operator")
        return self.matmat(v)  # symmetric

    def __repr__(self) -> str:
        """The class and the shape."""
        return f"{type(self).__name__}(shape={self.shape})"


def _mesh_arg(devices: Sequence[Any] | None) -> Mesh:
    return device_mesh(devices)


def _block_arg(block_size: int | None) -> int | None:
    return None if block_size is None else positive_integer(block_size, "block_size")


def _test_points(test: ArrayLike, width: int, have: str) -> np.ndarray:
    """``test`` as a finite 2-D float array of ``width`` columns, or a ValueError saying what the operator ``have``s."""
    T = as_float_array(test, "test", ndim=(2,))
    if T.shape[1] != width:
        raise ValueError(f"test has {T.shape[1]} features but {have}={width}")
    return T


# ---------------------------------------------------------------------- features
class FeatureKernel(KernelOperator):
    r"""The linear kernel ``K = Φ Φᵀ`` of features ``Φ`` (``n × p``), never formed.

    ``K V = Φ (Φᵀ V)``: ``Φᵀ V`` is summed over the row shards (``psum``), then each shard
    multiplies its rows. Cost ``4 n p b`` flops per product.

    Args:
      features: ``Φ``, shape ``(n, p)``.
      block_size: rows per block on each device (``None``: automatic).
      devices: JAX devices to shard the rows over (``None``: all).
      dtype: ``float64`` (default) or ``float32`` arithmetic.

    Raises:
      ValueError: ``features`` not 2-D, empty or not finite.
    """

    def __init__(
        self,
        features: ArrayLike,
        *,
        block_size: int | None = None,
        devices: Sequence[Any] | None = None,
        dtype: DTypeLike = np.float64,
    ):
        """Build the operator (arguments: see the class docstring)."""
        Phi = as_float_array(features, "features", ndim=(2,))
        if Phi.size == 0:
            raise ValueError(f"features must be non-empty, got shape {Phi.shape}")
        self.shape = (Phi.shape[0], Phi.shape[0])
        self._prec = _Precision(dtype)
        self._mesh = _mesh_arg(devices)
        self._block = _block_arg(block_size)
        self._diag: np.ndarray = np.sum(Phi * Phi, axis=1)
        self._rows = _Rows(Phi.shape[0], self._block, Phi.shape[1], self._mesh)
        with self._prec:
            self._phi = self._rows.put(Phi.astype(self._prec.dtype), split=True)
            self._reduce = self._rows.sum(lambda rv: rv[0].T @ rv[1], 0)
            self._apply = self._rows.map(lambda r, W: r @ W, 1)

    def _weights(self, V: np.ndarray) -> jax.Array:
        Vd = self._rows.put(V.astype(self._prec.dtype), split=True)
        weights: jax.Array = self._reduce((self._phi, Vd))
        return weights

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        with self._prec:
            return np.asarray(self._apply(self._phi, self._weights(V)))[: self.n]

    def diagonal(self) -> np.ndarray:
        """``K_ii = ‖φ_i‖²``."""
        return self._diag.copy()

    def cross(self, test: ArrayLike) -> KernelOperator:
        """``Φ_test Φᵀ`` for test features.

        Args:
          test: test features ``Φ_test``, shape ``(n_test, p)``.

        Returns:
          The ``(n_test, n)`` cross-kernel operator.

        Raises:
          ValueError: ``test`` not 2-D with ``p`` columns.
        """
        return _FeatureCross(self, _test_points(test, self._phi.shape[1], "the operator has p"))


class _FeatureCross(KernelOperator):
    def __init__(self, train: FeatureKernel, T: np.ndarray):
        """The cross-kernel of ``train`` at test features ``T``."""
        self.shape = (T.shape[0], train.n)
        self._train = train
        self._rows = _Rows(T.shape[0], train._block, T.shape[1], train._mesh)
        with train._prec:
            self._t = self._rows.put(T.astype(train._prec.dtype), split=True)
            self._apply = self._rows.map(lambda r, W: r @ W, 1)

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        with self._train._prec:
            return np.asarray(self._apply(self._t, self._train._weights(V)))[: self.shape[0]]


# ---------------------------------------------------------------------- kernel functions
@dataclass(frozen=True)
class RBF:
    r"""Gaussian kernel ``k(x, x') = variance · exp(−‖x − x'‖² / (2 ℓ²))``.

    Attributes:
      lengthscale: ℓ > 0.
      variance: the value at ``x = x'`` (> 0).
    """

    lengthscale: float = 1.0
    variance: float = 1.0

    def __post_init__(self) -> None:
        """Validate the parameters (a clear ValueError naming the bad one)."""
        positive_scalar(self.lengthscale, "lengthscale")
        positive_scalar(self.variance, "variance")

    def __call__(self, A: jax.Array, B: jax.Array, same: jax.Array | None = None) -> jax.Array:
        """The block ``k(A, B)``.

        Args:
          A: points ``(a, d)``.
          B: points ``(b, d)``.
          same: boolean ``(a, b)``, true where ``A_i`` and ``B_j`` are the same point (the
            diagonal of a training kernel, made exact), or ``None``.

        Returns:
          The ``(a, b)`` kernel block (``jax.numpy``).
        """
        sq = jnp.sum(A * A, 1)[:, None] + jnp.sum(B * B, 1)[None, :] - 2.0 * (A @ B.T)
        sq = jnp.maximum(sq, 0.0)
        if same is not None:
            sq = jnp.where(same, 0.0, sq)
        return self.variance * jnp.exp(sq * (-0.5 / self.lengthscale**2))

    def diag(self, A: np.ndarray) -> np.ndarray:
        """``k(x_i, x_i) = variance`` on the diagonal.

        Args:
          A: points ``(n, d)`` (numpy).

        Returns:
          ``(n,)`` float64.
        """
        return np.full(A.shape[0], float(self.variance))


def check_relu_parameters(depth: object, weight_std: float, bias_std: float) -> int:
    """Validate the parameters of the ReLU kernels (one check for :func:`kdtheory.ntk.relu_ntk` and the operators).

    Args:
      depth: hidden layers, a whole number ``≥ 0`` (not a bool).
      weight_std: σ_w > 0.
      bias_std: σ_b ≥ 0.

    Returns:
      ``depth`` as an ``int``.

    Raises:
      ValueError: a bool, fractional or negative depth, or bad standard deviations (each named).
    """
    d = float("nan") if isinstance(depth, bool) or not isinstance(depth, numbers.Real) else float(depth)
    if not (0 <= d < np.inf and d == int(d)):  # NaN (a bool, a non-number) and inf fail too
        raise ValueError(f"depth must be a non-negative integer, got {depth!r}")
    positive_scalar(weight_std, "weight_std")
    positive_scalar(bias_std, "bias_std", allow_zero=True)
    return int(d)


def relu_kernels(
    A: Any,
    B: Any,
    *,
    depth: int,
    weight_std: float = 1.0,
    bias_std: float = 0.0,
    same: Any = None,
    pairwise: bool = False,
    xp: Any = jnp,
) -> tuple[Any, Any]:
    r"""The arc-cosine recursion of a ReLU MLP (NTK parameterization): ``(Σ, Θ)`` — the one place it is written.

    With ``σ_w² = weight_std²``, ``σ_b² = bias_std²`` and ``d`` input features,
    ``Σ¹ = σ_w² x·x'/d + σ_b²``, ``Θ¹ = Σ¹``, and per hidden layer (neural-tangents' ``ABRelu(0, 1)``;
    Cho & Saul 2009, Jacot et al. 2018, Arora et al. 2019), θ the angle of ``Σ^l`` between ``x`` and ``x'``:

        ``Σ^{l+1} = σ_w² √(Σ_xx Σ_x'x') (sin θ + (π − θ) cos θ)/(2π) + σ_b²``,
        ``Σ̇^{l+1} = σ_w² (π − θ)/(2π)``,  ``Θ^{l+1} = Θ^l Σ̇^{l+1} + Σ^{l+1}``,

    and ``Σ_xx^{l+1} = σ_w² Σ_xx^l / 2 + σ_b²`` (θ = 0). θ comes from ``atan2`` (exact 0 on the
    diagonal, where ``arccos(1 − δ)`` loses half the digits), and pairs flagged ``same`` get θ = 0
    exactly. Written against an array namespace ``xp`` so that :func:`kdtheory.ntk.relu_ntk`
    (numpy) and :class:`ReluNNGP` / :class:`ReluNTK` (``jax.numpy``, on blocks) share it.

    Args:
      A: points ``(a, d)``.
      B: points ``(b, d)`` (``(a, d)`` with ``pairwise``).
      depth: hidden layers (≥ 0; 0 gives the linear kernel ``Σ¹``).
      weight_std: σ_w.
      bias_std: σ_b.
      same: boolean ``(a, b)`` (or a scalar), true where ``A_i`` and ``B_j`` are the same point;
        ``None``: none flagged.
      pairwise: the kernels of the pairs ``(A_i, B_i)``, shape ``(a,)``, instead of all pairs.
      xp: the array namespace, ``numpy`` or ``jax.numpy``.

    Returns:
      ``(Σ, Θ)``, each ``(a, b)`` (or ``(a,)`` with ``pairwise``).
    """
    sw2, sb2 = float(weight_std) ** 2, float(bias_std) ** 2
    d = A.shape[1]
    cross = sw2 * (xp.sum(A * B, 1) if pairwise else A @ B.T) / d + sb2
    d1 = sw2 * xp.sum(A * A, 1) / d + sb2
    d2 = sw2 * xp.sum(B * B, 1) / d + sb2
    theta = cross
    for _ in range(int(depth)):
        prod = d1 * d2 if pairwise else d1[:, None] * d2[None, :]
        norm = xp.sqrt(prod)
        pos = norm > 0
        cos = xp.clip(xp.where(pos, cross / xp.where(pos, norm, 1.0), 1.0), -1.0, 1.0)
        ang = xp.arctan2(xp.sqrt(xp.maximum(prod - cross * cross, 0.0)), cross)
        if same is not None:  # a point with itself: angle 0 exactly
            ang = xp.where(same, 0.0, ang)
            cos = xp.where(same, 1.0, cos)
        nxt = sw2 * norm * (xp.sin(ang) + (xp.pi - ang) * cos) / (2 * xp.pi) + sb2
        theta = theta * (sw2 * (xp.pi - ang) / (2 * xp.pi)) + nxt
        cross = nxt
        d1 = sw2 * d1 / 2 + sb2  # E[relu(u)²] = Σ_xx / 2
        d2 = sw2 * d2 / 2 + sb2
    return cross, theta


@dataclass(frozen=True)
class _ReluKernel:
    """The kernels of :func:`relu_kernels` on blocks; a subclass picks ``Σ`` (``_which = 0``) or ``Θ`` (1)."""

    depth: int = 1
    weight_std: float = 1.0
    bias_std: float = 0.0
    _which: ClassVar[int] = 0

    def __post_init__(self) -> None:
        """Validate the parameters (a clear ValueError naming the bad one)."""
        check_relu_parameters(self.depth, self.weight_std, self.bias_std)

    def __call__(self, A: jax.Array, B: jax.Array, same: jax.Array | None = None) -> jax.Array:
        """The ``(a, b)`` block ``Σ(A, B)`` (:class:`ReluNNGP`) or ``Θ(A, B)`` (:class:`ReluNTK`), in ``jax.numpy``.

        Args: see :meth:`~kdtheory.operators.RBF.__call__`
        """
        kernels = relu_kernels(A, B, depth=self.depth, weight_std=self.weight_std, bias_std=self.bias_std, same=same)
        block: jax.Array = kernels[self._which]
        return block

    def diag(self, A: np.ndarray) -> np.ndarray:
        """``Σ(x_i, x_i)`` (:class:`ReluNNGP`) or ``Θ(x_i, x_i)`` (:class:`ReluNTK`) on the diagonal, ``(n,)`` float64.

        Args: see :meth:`~kdtheory.operators.RBF.diag`
        """
        A = np.asarray(A, dtype=np.float64)
        kernels = relu_kernels(
            A, A, depth=self.depth, weight_std=self.weight_std, bias_std=self.bias_std, same=True, pairwise=True, xp=np
        )
        diagonal: np.ndarray = kernels[self._which]
        return diagonal


@dataclass(frozen=True)
class ReluNNGP(_ReluKernel):
    r"""Infinite-width NNGP kernel ``Σ`` of a ReLU MLP with ``depth`` hidden layers.

    The NTK parameterization of :func:`kdtheory.ntk.relu_ntk` (same recursion, evaluated on blocks
    in JAX): ``Σ¹ = σ_w² x·x'/d + σ_b²``,
    ``Σ^{l+1} = σ_w² √(Σ_xx Σ_x'x') (sin θ + (π − θ) cos θ)/(2π) + σ_b²``. Called as
    ``kernel(A, B, same=None)`` it gives the block ``Σ(A, B)``; ``diag(A)`` the diagonal.

    Attributes:
      depth: hidden layers (≥ 0).
      weight_std: σ_w > 0.
      bias_std: σ_b ≥ 0.
    """

    _which: ClassVar[int] = 0


@dataclass(frozen=True)
class ReluNTK(_ReluKernel):
    r"""Infinite-width NTK ``Θ`` of a ReLU MLP with ``depth`` hidden layers (see :class:`ReluNNGP`).

    ``Θ¹ = Σ¹``, ``Θ^{l+1} = Θ^l Σ̇^{l+1} + Σ^{l+1}``, ``Σ̇^{l+1} = σ_w² (π − θ)/(2π)``. Called as
    ``kernel(A, B, same=None)`` it gives the block ``Θ(A, B)``; ``diag(A)`` the diagonal.

    Attributes:
      depth: hidden layers (≥ 0).
      weight_std: σ_w > 0.
      bias_std: σ_b ≥ 0.
    """

    _which: ClassVar[int] = 1


class FunctionKernel(KernelOperator):
    r"""``K_ij = k(x_i, x_j)`` of a JAX kernel function, evaluated one row block at a time.

    The kernel is never stored. With ``symmetric=True`` (default) the products run over square
    tiles ``K_IJ``, ``I ≤ J`` (edge ``block_size``, default 512), each evaluated once and used for
    both ``K_IJ V_J`` and ``K_IJᵀ V_I``: half the kernel evaluations; the tiles are split over the
    devices and their outputs summed (``psum``). With ``symmetric=False`` a row block ``I`` is
    evaluated as ``k(X_I, X)`` (``|I| × n``) and multiplied by ``V`` (no cross-device sum, so one
    device and several give bit-identical products). Diagonal entries are flagged to the kernel
    (``same``) so that ``k(x, x)`` is exact (e.g. the ReLU angle is 0, not the square root of
    round-off). Cross-kernels (:meth:`cross`) run over all tiles of ``k(X_test, X)``.

    Args:
      X: inputs, shape ``(n, d)``.
      kernel: a callable ``kernel(A, B, same=None) -> (|A|, |B|)`` in ``jax.numpy`` (for example
        :class:`RBF`, :class:`ReluNNGP`, :class:`ReluNTK`); a ``diag(X)`` method, when present,
        gives :meth:`diagonal`.
      block_size: tile edge (``None``: 512, cache-sized for CPUs; on a GPU larger tiles, e.g.
        4096, keep it busy); with ``symmetric=False``, rows per block (``None``: about 2²⁴ kernel
        entries per row block).
      symmetric: evaluate each tile of the symmetric kernel once (see above).
      devices: JAX devices to shard the tiles or rows over (``None``: all).
      dtype: ``float64`` (default) or ``float32`` arithmetic.

    Raises:
      ValueError: ``X`` not 2-D or not finite; ``kernel`` not callable.
    """

    def __init__(
        self,
        X: ArrayLike,
        kernel: KernelFn,
        *,
        block_size: int | None = None,
        symmetric: bool = True,
        devices: Sequence[Any] | None = None,
        dtype: DTypeLike = np.float64,
    ):
        """Build the operator (arguments: see the class docstring)."""
        if not callable(kernel):
            raise ValueError(f"kernel must be callable kernel(A, B, same=None), got {kernel!r}")
        Xn = as_float_array(X, "X", ndim=(2,))
        if Xn.shape[0] == 0:
            raise ValueError("X must have at least one row")
        self.shape = (Xn.shape[0], Xn.shape[0])
        self.kernel = kernel
        self._X = Xn
        self._prec = _Precision(dtype)
        self._mesh = _mesh_arg(devices)
        self._block = _block_arg(block_size)
        self._rows = _Rows(Xn.shape[0], self._block, Xn.shape[0], self._mesh)
        idx = np.arange(Xn.shape[0])
        with self._prec:
            xd = Xn.astype(self._prec.dtype)
            self._xrows = self._rows.put(xd, split=True)
            self._idx = self._rows.put(idx, split=True)
            self._xall = self._rows.put(xd, split=False)
            self._iall = self._rows.put(idx, split=False)

            def block(r: tuple[jax.Array, jax.Array], X: jax.Array, i: jax.Array, V: jax.Array) -> jax.Array:
                return kernel(r[0], X, r[1][:, None] == i[None, :]) @ V

            self._apply = self._rows.map(block, 3)
            self._tiles = _Tiles(self.n, self.n, self._block or _TILE, self._mesh, symmetric=True)
            self._xpad = self._rows.put(_pad_rows(xd, self._tiles.cols_pad), split=False)
            self._apply_sym = self._tiles.matmat(kernel) if symmetric else None

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        with self._prec:
            if self._apply_sym is not None:  # symmetric
                Vd = self._rows.put(_pad_rows(V.astype(self._prec.dtype), self._tiles.cols_pad), split=False)
                return np.asarray(self._apply_sym(self._tiles.pairs, self._xpad, self._xpad, Vd))[: self.n]
            Vd = self._rows.put(V.astype(self._prec.dtype), split=False)
            return np.asarray(self._apply((self._xrows, self._idx), self._xall, self._iall, Vd))[: self.n]

    def diagonal(self) -> np.ndarray | None:
        """``k(x_i, x_i)`` from the kernel's ``diag`` method, else ``None``."""
        diag = getattr(self.kernel, "diag", None)
        return None if diag is None else np.asarray(diag(self._X), dtype=np.float64)

    def cross(self, test: ArrayLike) -> KernelOperator:
        """``k(X_test, X)`` for test inputs.

        Args:
          test: test inputs ``X_test``, shape ``(n_test, d)``.

        Returns:
          The ``(n_test, n)`` cross-kernel operator (tiled, sharded like the training products).

        Raises:
          ValueError: ``test`` not 2-D with ``d`` columns.
        """
        return _FunctionCross(self, _test_points(test, self._X.shape[1], "X has d"))


class _FunctionCross(KernelOperator):
    def __init__(self, train: FunctionKernel, T: np.ndarray):
        """The cross-kernel of ``train`` at test inputs ``T``."""
        self.shape = (T.shape[0], train.n)
        self._train = train
        self._tiles = _Tiles(T.shape[0], train.n, train._tiles.tile, train._mesh, symmetric=False)
        with train._prec:
            self._t = train._rows.put(_pad_rows(T.astype(train._prec.dtype), self._tiles.rows_pad), split=False)
            self._apply = self._tiles.matmat(train.kernel)

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        tr = self._train
        with tr._prec:
            Vd = tr._rows.put(_pad_rows(V.astype(tr._prec.dtype), self._tiles.cols_pad), split=False)
            return np.asarray(self._apply(self._tiles.pairs, self._t, tr._xpad, Vd))[: self.shape[0]]


# ---------------------------------------------------------------------- stored matrices
class StoredKernel(KernelOperator):
    r"""A stored kernel matrix (``numpy.ndarray`` or ``numpy.memmap``, float32 or float64).

    The operator is the stored values exactly; products are accumulated in float64. With
    ``on_device=False`` (default) row blocks are read from host memory (a memory map is read once
    per product, never held whole) and multiplied with numpy; with ``on_device=True`` the matrix is
    placed once on the devices, rows split over them (``NamedSharding(mesh, P("rows"))``), in its
    stored dtype, and products run there.

    Args:
      K: the matrix, shape ``(n_rows, n_cols)``; a training kernel must be square and symmetric.
      block_size: rows per block (``None``: automatic).
      on_device: keep the matrix on the JAX devices (see above).
      devices: JAX devices for ``on_device`` (``None``: all).
      check: verify that a square matrix is finite and symmetric (one pass in row blocks).

    Raises:
      ValueError: not 2-D, not a float dtype, not finite or not symmetric (when checked).
    """

    def __init__(
        self,
        K: np.ndarray,
        *,
        block_size: int | None = None,
        on_device: bool = False,
        devices: Sequence[Any] | None = None,
        check: bool = True,
    ):
        """Build the operator (arguments: see the class docstring)."""
        if not isinstance(K, np.ndarray) or K.ndim != 2:
            raise ValueError(f"K must be a 2-D numpy array or memmap, got {type(K).__name__} {np.shape(K)}")
        if K.dtype not in (np.float32, np.float64):
            raise ValueError(f"K must be float32 or float64, got {K.dtype}")
        self.shape = K.shape
        self._K = K
        self._block = _block_arg(block_size)
        self._bs = self._block or max(1, _ENTRIES_PER_BLOCK // max(K.shape[1], 1))
        if check:
            self._check()
        self._on_device = bool(on_device)
        if self._on_device:
            self._prec = _Precision(np.float64)
            self._rows = _Rows(K.shape[0], self._block, K.shape[1], _mesh_arg(devices))
            with self._prec:
                self._dev = self._rows.put(np.asarray(K), split=True)
                self._apply = self._rows.map(lambda r, V: r.astype(V.dtype) @ V, 1)

    def _check(self, symmetric: bool = True, name: str = "K") -> None:
        n, m = self.shape
        for i in range(0, n, self._bs):
            blk = np.asarray(self._K[i : i + self._bs])
            if not np.all(np.isfinite(blk)):
                raise ValueError(f"{name} contains non-finite values in rows {i}..{i + blk.shape[0] - 1}")
            if symmetric and n == m:
                j = min(i + self._bs, n)
                asym = np.max(np.abs(blk[:, :j].astype(np.float64) - np.asarray(self._K[:j, i:j]).T))
                scale = float(np.max(np.abs(blk))) if blk.size else 0.0
                if asym > 1e4 * np.finfo(self._K.dtype).eps * max(scale, np.finfo(float).tiny):
                    raise ValueError(f"K is not symmetric: max|K - K.T| = {asym:.3g} in rows {i}..{j - 1}")

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        if self._on_device:
            with self._prec:
                return np.asarray(self._apply(self._dev, self._rows.put(V, split=False)))[: self.shape[0]]
        out = np.empty((self.shape[0], V.shape[1]))
        for i in range(0, self.shape[0], self._bs):
            out[i : i + self._bs] = np.asarray(self._K[i : i + self._bs], dtype=np.float64) @ V
        return out

    def diagonal(self) -> np.ndarray | None:
        """The stored diagonal (square matrices), as float64."""
        return np.asarray(np.diagonal(self._K), dtype=np.float64).copy() if self.shape[0] == self.shape[1] else None

    def cross(self, test: ArrayLike) -> KernelOperator:
        """A stored cross-kernel as an operator (read by row blocks; checked finite, not symmetric).

        Args:
          test: the stored matrix ``k(X_test, X)``, shape ``(n_test, n)`` (array or memory map).

        Returns:
          A :class:`StoredKernel` of shape ``(n_test, n)``.

        Raises:
          ValueError: ``test`` is not a 2-D float array with ``n`` columns, or has NaN or inf entries.
        """
        if not isinstance(test, np.ndarray) or test.ndim != 2 or test.shape[1] != self.shape[1]:
            raise ValueError(f"test must be a stored (n_test, {self.shape[1]}) matrix, got shape {np.shape(test)}")
        op = StoredKernel(test, block_size=self._block, check=False)
        op._check(symmetric=False, name="test")
        return op


# ---------------------------------------------------------------------- empirical NTK
def _pullback(apply: Callable[..., Any], params: Any, x: Any, Vb: Any, trace: str | None) -> Any:
    r"""``Jᵀ V`` on a block of inputs: one ``jax.vjp``, pulled back once per cotangent (vmapped).

    ``Vb`` is ``(blk, b)`` (traced: column ``j`` is put on every output ``c`` in turn, ``b·k``
    cotangents) or ``(blk, k, b)`` (full kernel). Returns a pytree like ``params`` with a leading
    axis of the cotangents.
    """
    out, pull = jax.vjp(lambda p: apply(p, x), params)
    k = out.shape[1]
    if trace is None:  # (blk, k, b) -> (b, blk, k)
        cot = jnp.moveaxis(Vb, -1, 0)
    else:  # (blk, b) -> (b·k, blk, k): column j on output c
        eye = jnp.eye(k, dtype=Vb.dtype)
        cot = (Vb.T[:, None, :, None] * eye[None, :, None, :]).reshape(-1, Vb.shape[0], k)
    return jax.vmap(lambda c: pull(c)[0])(cot.astype(out.dtype))


def _pushforward(apply: Callable[..., Any], params: Any, x: Any, U: Any, trace: str | None) -> jax.Array:
    r"""``J u`` on a block of inputs for every tangent of :func:`_pullback`, contracted to ``Θ V``."""
    outs = jax.vmap(lambda u: jax.jvp(lambda p: apply(p, x), (params,), (u,))[1])(U)
    if trace is None:  # (b, blk, k) -> (blk, k, b)
        return jnp.moveaxis(outs, 0, -1)
    k = outs.shape[-1]
    outs = outs.reshape(-1, k, x.shape[0], k)  # (b, c, blk, k'): keep c == k'
    diag = jnp.einsum("jcac->aj", outs)
    return diag / k if trace == "mean" else diag


@functools.partial(jax.jit, static_argnums=(0, 5))
def _ntvp(apply: Callable[..., Any], params: Any, X_rows: Any, X_cols: Any, V: Any, trace: str | None) -> jax.Array:
    return _pushforward(apply, params, X_rows, _pullback(apply, params, X_cols, V, trace), trace)


def ntk_vector_product(
    apply: Callable[..., Any],
    params: Any,
    X_rows: ArrayLike,
    X_cols: ArrayLike,
    V: ArrayLike,
    *,
    trace: Literal["mean", "sum"] | None = "mean",
) -> jax.Array:
    r"""``Θ(X_rows, X_cols) V`` for the empirical NTK ``Θ = J Jᵀ`` of ``apply``, never forming ``J``.

    ``Jᵀ V`` by one ``jax.vjp`` (pulled back once per column and output), then ``J (Jᵀ V)`` by
    ``jax.jvp`` — the NTK-vector product of :class:`NTKOperator` (which runs the same two halves
    sharded over row blocks and devices), here on one block, compiled once per network.

    Args:
      apply: the network ``apply(params, x) -> (batch, k)`` (hashable: it is a static argument).
      params: a pytree of parameters.
      X_rows: inputs ``(n1, …)``.
      X_cols: inputs ``(n2, …)``.
      V: ``(n2, b)`` for a traced kernel, ``(n2, k, b)`` for the full one.
      trace: ``"mean"`` (``(1/k) Σ_c``), ``"sum"`` or ``None`` (full kernel, point-major).

    Returns:
      ``(n1, b)`` (traced) or ``(n1, k, b)`` (full), a JAX array in the computation's dtype.
    """
    product: jax.Array = _ntvp(apply, params, X_rows, X_cols, V, trace)  # a jitted call is typed Any
    return product


class NTKOperator(KernelOperator):
    r"""Empirical NTK ``Θ(X, X) = J Jᵀ``, ``J = ∂f(X)/∂θ``, through NTK-vector products.

    ``Θ V = J (Jᵀ V)``: ``Jᵀ V`` is one ``jax.vjp`` per column (summed over row blocks and devices),
    ``J u`` one ``jax.jvp`` per block. ``trace="mean"`` is the ``n × n`` kernel averaged over the
    ``k`` outputs, ``Θ_ab = (1/k) Σ_c J_ac · J_bc`` (``"sum"``: without ``1/k``), which costs ``k``
    vjp/jvp pairs per column; ``trace=None`` is the full ``(n·k) × (n·k)`` kernel with row index
    ``i·k + c`` (as :func:`kdtheory.ntk.empirical_ntk`).

    Args:
      apply: the network ``apply(params, x) -> (batch, k)``.
      params: a pytree of parameters (cast to ``dtype``).
      X: training inputs, shape ``(n, …)``.
      trace: ``"mean"``, ``"sum"`` or ``None``.
      block_size: inputs per block on each device (``None``: 256).
      devices: JAX devices to shard the inputs over (``None``: all).
      dtype: ``float64`` (default) or ``float32`` arithmetic.

    Raises:
      ValueError: unknown ``trace``; ``X`` empty or not finite; ``params`` or ``X`` do not fit
        ``apply`` (the message names them and the parameter shapes); ``apply`` does not return
        ``(batch, k)``.
    """

    def __init__(
        self,
        apply: Callable[..., Any],
        params: Any,
        X: ArrayLike,
        *,
        trace: Literal["mean", "sum"] | None = "mean",
        block_size: int | None = None,
        devices: Sequence[Any] | None = None,
        dtype: DTypeLike = np.float64,
    ):
        """Build the operator (arguments: see the class docstring)."""
        if trace not in ("mean", "sum", None):
            raise ValueError(f"unknown trace {trace!r}; expected 'mean', 'sum' or None")
        Xn = as_float_array(X, "X")
        if Xn.ndim < 1 or Xn.shape[0] == 0:
            raise ValueError(f"X must hold at least one input along axis 0, got shape {Xn.shape}")
        self._prec = _Precision(dtype)
        self._mesh = _mesh_arg(devices)
        self._block = _block_arg(block_size) or 256
        self._apply_fn, self._trace = apply, trace
        with self._prec:
            dt = self._prec.dtype
            self._params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, dt), params)
            out = network_outputs(apply, self._params, jnp.zeros((1,) + Xn.shape[1:], dt), x_name="X")
        self._n_in, self._k = Xn.shape[0], int(out.shape[1])
        n = self._n_in * (self._k if trace is None else 1)
        self.shape = (n, n)
        self._rows = _Rows(self._n_in, self._block, 1, self._mesh)
        with self._prec:
            self._x = self._rows.put(Xn.astype(dt), split=True)
            self._reduce = self._rows.sum(self._vjp_block, 1)
            self._map = self._rows.map(self._jvp_block, 2)

    @property
    def outputs(self) -> int:
        """``k``, the network's outputs per input."""
        return self._k

    def _vjp_block(self, rv: tuple[jax.Array, jax.Array], params: Any) -> Any:
        x, Vb = rv
        # Parameters are replicated; marked device-varying here, the vjp is this shard's own sum
        # (otherwise shard_map's transpose would psum it, and the explicit psum would count it twice).
        params = jax.tree_util.tree_map(lambda p: jax.lax.pcast(p, "rows", to="varying"), params)
        return _pullback(self._apply_fn, params, x, Vb, self._trace)

    def _jvp_block(self, x: jax.Array, params: Any, U: Any) -> jax.Array:
        return _pushforward(self._apply_fn, params, x, U, self._trace)

    def _tangents(self, V: np.ndarray) -> Any:
        Vr = V.reshape(self._n_in, self._k, -1) if self._trace is None else V
        return self._reduce((self._x, self._rows.put(Vr.astype(self._prec.dtype), split=True)), self._params)

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        with self._prec:
            out = np.asarray(self._map(self._x, self._params, self._tangents(V)))[: self._n_in]
        return out.reshape(self.shape[0], V.shape[1])

    def cross(self, test: ArrayLike) -> KernelOperator:
        """``Θ(X_test, X)``, traced like the operator, through NTK-vector products.

        Args:
          test: test inputs, shape ``(n_test, …)`` with the per-point shape of ``X``.

        Returns:
          The ``(n_test, n)`` (traced) or ``(n_test·k, n·k)`` (full) cross-kernel operator.

        Raises:
          ValueError: the per-point shape differs from ``X``'s.
        """
        T = as_float_array(test, "test")
        if T.shape[1:] != tuple(self._x.shape[1:]):
            raise ValueError(f"test inputs have shape {T.shape[1:]} per point, expected {tuple(self._x.shape[1:])}")
        return _NTKCross(self, T)


class _NTKCross(KernelOperator):
    def __init__(self, train: NTKOperator, T: np.ndarray):
        """The cross-kernel of ``train`` at test inputs ``T``."""
        self._train = train
        nt = T.shape[0] * (train._k if train._trace is None else 1)
        self.shape = (nt, train.n)
        self._nt_in = T.shape[0]
        self._rows = _Rows(T.shape[0], train._block, 1, train._mesh)
        with train._prec:
            self._t = self._rows.put(T.astype(train._prec.dtype), split=True)
            self._map = self._rows.map(train._jvp_block, 2)

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        tr = self._train
        with tr._prec:
            out = np.asarray(self._map(self._t, tr._params, tr._tangents(V)))[: self._nt_in]
        return out.reshape(self.shape[0], V.shape[1])
