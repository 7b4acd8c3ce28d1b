r"""Sharding machinery of :mod:`kdtheory.operators` (private): meshes, row blocks, tiles, precision.

Every operator product runs as one ``jax.shard_map`` over a one-axis mesh ``Mesh(devices,
("rows",))`` with ``PartitionSpec("rows")``: :class:`_Rows` splits the rows of a kernel (the data
points, padded to a whole number of row blocks per device) and sums reductions over devices with
``jax.lax.psum``; :class:`_Tiles` splits a list of square kernel tiles ``k(X_I, X_J)``.
:class:`_Precision` scopes float64 arithmetic (``jax.enable_x64``) to one product, so the library
never flips JAX's global flag.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["device_mesh"]

PyTree = Any  # a JAX pytree of arrays

# jax's ``PartitionSpec.__new__`` is unannotated, so each spec is built once here
_SPLIT: P = P("rows")  # type: ignore[no-untyped-call]  # unannotated in jax
_WHOLE: P = P()  # type: ignore[no-untyped-call]  # unannotated in jax

_ENTRIES_PER_BLOCK = 2**24  # default row block: about 128 MB of float64 kernel entries
_TILE = 512  # default tile edge: 2 MB of float64 kernel entries, cache-sized


def _pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    extra = rows - a.shape[0]
    return np.concatenate([a, np.zeros((extra,) + a.shape[1:], a.dtype)]) if extra else a


def device_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """A one-axis mesh named ``"rows"`` over ``devices`` (default: every device JAX sees).

    Args:
      devices: JAX devices, e.g. ``jax.devices("gpu")[:2]``; ``None`` for ``jax.devices()``.

    Returns:
      ``jax.sharding.Mesh(np.array(devices), ("rows",))``.

    Raises:
      ValueError: ``devices`` is empty.
    """
    devs = list(jax.devices() if devices is None else devices)
    if not devs:
        raise ValueError("devices must name at least one JAX device")
    return Mesh(np.array(devs), ("rows",))


# ---------------------------------------------------------------------- the sharded row engine
class _Rows:
    """Rows ``0..n-1`` padded to ``ndev × blocks × block`` and split over a mesh axis ``"rows"``."""

    def __init__(self, n: int, block_size: int | None, n_cols: int, mesh: Mesh):
        """Lay out ``n`` rows in blocks over the mesh."""
        self.n, self.mesh = n, mesh
        ndev = mesh.devices.size
        per = -(-n // ndev)
        want = max(1, _ENTRIES_PER_BLOCK // max(n_cols, 1)) if block_size is None else block_size
        self.block = max(1, min(int(want), per))
        self.blocks = -(-per // self.block)
        self.n_pad = self.blocks * self.block * ndev
        self.sharded = NamedSharding(mesh, _SPLIT)
        self.replicated = NamedSharding(mesh, _WHOLE)

    def pad(self, a: np.ndarray) -> np.ndarray:
        """Zero rows appended up to ``n_pad``."""
        extra = self.n_pad - a.shape[0]
        return np.concatenate([a, np.zeros((extra,) + a.shape[1:], a.dtype)]) if extra else a

    def put(self, a: np.ndarray, *, split: bool) -> jax.Array:
        """Pad (when split) and place on the mesh, rows split or replicated."""
        placed: jax.Array = jax.device_put(self.pad(a) if split else a, self.sharded if split else self.replicated)
        return placed

    def _blocks(self, tree: PyTree) -> PyTree:
        return jax.tree_util.tree_map(lambda x: x.reshape((-1, self.block) + x.shape[1:]), tree)

    def map(self, fn: Callable[..., jax.Array], n_shared: int) -> Callable[..., jax.Array]:
        """``jit(shard_map)`` of ``rows, *shared -> concat_blocks fn(block, *shared)`` (rows split)."""

        def local(rows: PyTree, *shared: PyTree) -> jax.Array:
            out: jax.Array = jax.lax.map(lambda r: fn(r, *shared), self._blocks(rows))
            return out.reshape((-1,) + out.shape[2:])

        specs = (_SPLIT,) + (_WHOLE,) * n_shared
        return jax.jit(jax.shard_map(local, mesh=self.mesh, in_specs=specs, out_specs=_SPLIT))

    def sum(self, fn: Callable[..., PyTree], n_shared: int) -> Callable[..., PyTree]:
        """``jit(shard_map)`` of ``Σ_blocks fn(block, *shared)`` over all rows (``psum``, replicated out)."""

        def local(rows: PyTree, *shared: PyTree) -> PyTree:
            blocks = self._blocks(rows)
            first = fn(jax.tree_util.tree_map(lambda x: x[0], blocks), *shared)

            def step(acc: PyTree, r: PyTree) -> tuple[PyTree, None]:
                return jax.tree_util.tree_map(jnp.add, acc, fn(r, *shared)), None

            total, _ = jax.lax.scan(step, first, jax.tree_util.tree_map(lambda x: x[1:], blocks))
            return jax.lax.psum(total, "rows")  # type: ignore[no-untyped-call]  # unannotated in jax

        specs = (_SPLIT,) + (_WHOLE,) * n_shared
        return jax.jit(jax.shard_map(local, mesh=self.mesh, in_specs=specs, out_specs=_WHOLE))


class _Tiles:
    """Square tiles ``(I, J)`` of a kernel block ``k(A, B)``, the list of tiles split over the mesh.

    Symmetric (``A = B``): tiles ``I ≤ J`` only, each evaluated once and used twice,
    ``out_I += K_IJ V_J`` and ``out_J += K_IJᵀ V_I`` — half the kernel evaluations of a row-block
    product. Rectangular: every tile, ``out_I += K_IJ V_J``. Tiles small enough to stay in cache
    (default edge 512) make the evaluation several times faster than long row blocks on a CPU.
    Each device sums its tiles into a full-size output; one ``psum`` adds the devices' outputs.
    """

    def __init__(self, n_rows: int, n_cols: int, tile: int, mesh: Mesh, *, symmetric: bool):
        """List the tiles and split the list over the mesh."""
        self.tile = max(1, min(int(tile), max(n_rows, n_cols)))
        self.rows_pad = -(-n_rows // self.tile) * self.tile
        self.cols_pad = -(-n_cols // self.tile) * self.tile
        nr, nc = self.rows_pad // self.tile, self.cols_pad // self.tile
        if symmetric:
            I, J = np.triu_indices(nr)
        else:
            I, J = (g.ravel() for g in np.meshgrid(np.arange(nr), np.arange(nc), indexing="ij"))
        ndev = mesh.devices.size
        total = -(-I.size // ndev) * ndev
        pairs = np.zeros((total, 3), dtype=np.int32)  # (I, J, weight); padding tiles weigh 0
        pairs[: I.size] = np.stack([I, J, np.ones_like(I)], axis=1)
        self.mesh, self.symmetric = mesh, symmetric
        self.pairs = jax.device_put(pairs, NamedSharding(mesh, _SPLIT))

    def matmat(self, kernel: Callable[[jax.Array, jax.Array, jax.Array | None], jax.Array]) -> Callable[..., jax.Array]:
        """``jit(shard_map)`` of ``(pairs, A, B, V) -> k(A, B) V`` (``A``, ``B``, ``V`` padded, replicated)."""
        tile, symmetric = self.tile, self.symmetric

        def local(pairs: jax.Array, A: jax.Array, B: jax.Array, V: jax.Array) -> jax.Array:
            def step(out: jax.Array, p: jax.Array) -> tuple[jax.Array, None]:
                i0, j0 = p[0] * tile, p[1] * tile
                Ai = jax.lax.dynamic_slice_in_dim(A, i0, tile)
                Bj = jax.lax.dynamic_slice_in_dim(B, j0, tile)
                r = jnp.arange(tile)
                same = (i0 + r)[:, None] == (j0 + r)[None, :] if symmetric else None
                Kb = kernel(Ai, Bj, same) * p[2].astype(V.dtype)
                oi = jax.lax.dynamic_slice_in_dim(out, i0, tile) + Kb @ jax.lax.dynamic_slice_in_dim(V, j0, tile)
                out = jax.lax.dynamic_update_slice_in_dim(out, oi, i0, 0)
                if symmetric:
                    off = (p[0] != p[1]).astype(V.dtype)  # a diagonal tile counts once
                    Vi = jax.lax.dynamic_slice_in_dim(V, i0, tile)
                    oj = jax.lax.dynamic_slice_in_dim(out, j0, tile) + off * (Kb.T @ Vi)
                    out = jax.lax.dynamic_update_slice_in_dim(out, oj, j0, 0)
                return out, None

            out0 = jax.lax.pcast(jnp.zeros((A.shape[0], V.shape[1]), V.dtype), "rows", to="varying")
            out, _ = jax.lax.scan(step, out0, pairs)
            summed: jax.Array = jax.lax.psum(out, "rows")  # type: ignore[no-untyped-call]  # unannotated in jax
            return summed

        specs = (_SPLIT, _WHOLE, _WHOLE, _WHOLE)
        return jax.jit(jax.shard_map(local, mesh=self.mesh, in_specs=specs, out_specs=_WHOLE))


class _Precision:
    """Scoped JAX precision: float64 products inside ``jax.enable_x64(True)``, float32 as is."""

    def __init__(self, dtype: Any):
        """Choose float32 or float64 (anything else raises)."""
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")

    def __enter__(self) -> None:
        self._ctx = jax.enable_x64(True) if self.dtype == np.float64 else None
        if self._ctx is not None:
            self._ctx.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
