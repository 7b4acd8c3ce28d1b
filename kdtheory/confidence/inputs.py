"""Inputs of a confidence analysis: predictions (arrays or ``.npy`` files read block by block), labels, checks.

A *source* of predictions is an in-memory array, a memory-mapped array (``np.load(...,
mmap_mode="r")``), or the path of a ``.npy`` file. Files and memory maps are read in row blocks
with ``os.preadv`` into block-sized arrays, never mapped whole: the pages a memory map touches
count as the process's resident memory until they are unmapped, so a 5 GB file read through a
map holds 5 GB of resident memory by its end; read block by block it holds a few blocks (the
operating system's page cache still serves repeated reads).

Every check names the argument (or file) it refuses, what it expected and what it saw.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import numbers
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import choice

__all__ = [
    "BLOCK_ELEMENTS",
    "KINDS",
    "PredictionSource",
    "class_indices",
    "open_predictions",
    "validate_predictions",
]

KINDS = ("logits", "probabilities")
"""The input kinds: the caller states which one its arrays are (no default)."""

BLOCK_ELEMENTS = 1 << 18
"""Entries per row block (``rows = max(1, BLOCK_ELEMENTS // k)``): 1 MB of float32, cache-sized."""

Kind = Literal["logits", "probabilities"]


@dataclass
class PredictionSource:
    """An ``(n, k)`` array of predictions read in row blocks, from memory or from a ``.npy`` file.

    Made by :func:`open_predictions`. Read with :meth:`reader` (random access, threads) or
    :meth:`blocks` (in order).

    Attributes:
      name: how messages name it (an argument or a file name).
      shape: ``(n, k)``.
      dtype: the stored dtype.
      array: the array, for in-memory sources (``None`` for files).
      path: the ``.npy`` file, for file sources (``None`` in memory).
      offset: byte offset of the data in ``path``.
    """

    name: str
    shape: tuple[int, int]
    dtype: np.dtype
    array: np.ndarray | None = None
    path: Path | None = None
    offset: int = 0
    _rows: int = field(default=0, repr=False)

    @property
    def rows_per_block(self) -> int:
        """Rows per block: ``max(1, BLOCK_ELEMENTS // k)``."""
        return self._rows or max(1, BLOCK_ELEMENTS // self.shape[1])

    @contextlib.contextmanager
    def reader(self) -> Iterator[Callable[..., np.ndarray]]:
        """A function ``read(start, stop, out=None, prefetch=None)`` returning rows ``start:stop`` (thread-safe).

        In memory: a view of the array (``out`` and ``prefetch`` unused). From a file:
        ``out[: stop − start]`` (or a fresh array) filled by ``os.preadv`` at the rows' offset — no
        shared file position, so threads may read at once; ``out`` must be C-contiguous, of the
        stored dtype, ``k`` wide. ``prefetch=(a, b)`` asks the kernel to start reading rows
        ``a:b`` in the background (``POSIX_FADV_WILLNEED``), so the disk works while the caller
        computes.

        Yields:
          The function ``read(start, stop, out=None, prefetch=None) -> (stop − start, k) array`` in
          the stored dtype.

        Raises:
          ValueError: the file cannot be opened or ends early, naming the file.
        """
        if self.array is not None:
            arr = self.array
            yield lambda a, b, out=None, prefetch=None: arr[a:b]
            return
        assert self.path is not None
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise ValueError(f"{self.name}: cannot read ({exc.strerror or exc})") from exc
        if hasattr(os, "posix_fadvise"):  # a hint: read ahead generously, the file is read front to back
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        try:
            yield functools.partial(self._pread, fd)
        finally:
            os.close(fd)

    def _pread(
        self, fd: int, start: int, stop: int, out: np.ndarray | None = None, prefetch: tuple[int, int] | None = None
    ) -> np.ndarray:
        k = self.shape[1]
        row_bytes = k * self.dtype.itemsize
        if prefetch is not None and hasattr(os, "posix_fadvise"):
            a, b = max(0, prefetch[0]), min(self.shape[0], prefetch[1])
            if b > a:
                with contextlib.suppress(OSError):
                    os.posix_fadvise(fd, self.offset + a * row_bytes, (b - a) * row_bytes, os.POSIX_FADV_WILLNEED)
        out = np.empty((stop - start, k), dtype=self.dtype) if out is None else out[: stop - start]
        # ndarray has the buffer protocol; numpy's stubs declare __buffer__ for Python >= 3.12 only
        view = memoryview(out).cast("B")  # type: ignore[arg-type]
        offset = self.offset + start * row_bytes
        got = 0
        try:
            while got < view.nbytes:
                r = os.preadv(fd, [view[got:]], offset + got)
                if not r:
                    raise ValueError(f"{self.name}: the file ends at row {start + got // row_bytes} of {self.shape[0]} "
                                     "(truncated?)")  # fmt: skip
                got += r
        except OSError as exc:
            raise ValueError(f"{self.name}: cannot read ({exc.strerror or exc})") from exc
        return out

    def blocks(self, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, block)`` over consecutive row blocks, in the stored dtype.

        Args:
          rows: rows per block (default :attr:`rows_per_block`).

        Yields:
          The first row's index and the ``(rows, k)`` block (the last may be shorter); a view of
          an in-memory array (read-only use).

        Raises:
          ValueError: the file ends early or cannot be read, naming the file.
        """
        n = self.shape[0]
        step = rows or self.rows_per_block
        with self.reader() as read:
            for start in range(0, n, step):
                yield start, read(start, min(n, start + step))


def _npy_header(path: Path, name: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Shape, dtype, Fortran order and data offset of a ``.npy`` file (header only; never unpickles)."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            offset = fh.tell()
    except OSError as exc:
        raise ValueError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ValueError(f"{name}: not a readable .npy file ({exc})") from exc
    return shape, dtype, fortran, offset


def _check_layout(shape: tuple[int, ...], dtype: np.dtype, name: str) -> tuple[int, int]:
    if dtype.hasobject:
        raise ValueError(f"{name}: holds Python objects (dtype object), not numbers")
    if dtype.kind == "b" or not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"{name}: expected real numbers, got dtype {dtype}")
    if len(shape) != 2:
        raise ValueError(f"{name}: expected a 2-D array (points x classes), got shape {tuple(shape)}")
    if shape[1] < 2:
        raise ValueError(f"{name}: needs at least 2 classes (columns), got shape {tuple(shape)}")
    if shape[0] < 1:
        raise ValueError(f"{name}: no points (shape {tuple(shape)})")
    return int(shape[0]), int(shape[1])


def _as_predictions(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a real 2-D array in its own float dtype (ints become float64); errors name ``name``."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: expected an (n, k) array of numbers; rows of different lengths? ({exc})") from exc
    if arr.dtype == object:
        raise ValueError(f"{name}: expected an (n, k) array of numbers; got ragged rows or Python objects")
    _check_layout(arr.shape, arr.dtype, name)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def open_predictions(x: ArrayLike | str | os.PathLike[str] | PredictionSource, name: str) -> PredictionSource:
    """A :class:`PredictionSource` for an array, a memory map or a ``.npy`` path (header checked, data not read).

    A ``str``/path names a ``.npy`` file (C or Fortran order; a Fortran-order file is loaded
    whole, being column-major). A C-contiguous ``np.memmap`` over a ``.npy`` file (``np.load(...,
    mmap_mode="r")``) is read from its file. Integer and float16 data keep their dtype; the
    analysis computes in float32 or float64 (:mod:`kdtheory.confidence.streaming`).

    Args:
      x: the predictions, ``(n, k)``, or a path, or a source (returned as is).
      name: how messages name it.

    Returns:
      The source.

    Raises:
      ValueError: not 2-D, fewer than 2 classes, no points, not real numbers, or an unreadable
        file, naming ``name``.
    """
    if isinstance(x, PredictionSource):
        return x
    if isinstance(x, (str, os.PathLike)):
        path = Path(x)
        if not path.is_file():
            raise ValueError(f"{name}: no such file")
        shape, dtype, fortran, offset = _npy_header(path, name)
        _check_layout(shape, dtype, name)
        if fortran:
            arr = _as_predictions(np.load(path, allow_pickle=False), name)
            return PredictionSource(name, (int(arr.shape[0]), int(arr.shape[1])), arr.dtype, array=arr)
        return PredictionSource(name, (int(shape[0]), int(shape[1])), dtype, path=path, offset=offset)
    if _whole_file_map(x):
        assert isinstance(x, np.memmap)
        n, k = _check_layout(x.shape, x.dtype, name)
        return PredictionSource(name, (n, k), x.dtype, path=Path(str(x.filename)), offset=int(x.offset))
    arr = _as_predictions(x, name)
    return PredictionSource(name, (int(arr.shape[0]), int(arr.shape[1])), arr.dtype, array=arr)


def _whole_file_map(x: object) -> bool:
    """Whether ``x`` is a memory map made over a file as a whole (not a slice or view of one).

    A slice of an ``np.memmap`` keeps the parent's ``filename`` and ``offset`` while its data start
    elsewhere: only a map whose buffer is the ``mmap`` itself is read from its file.
    """
    return (
        isinstance(x, np.memmap)
        and isinstance(getattr(x, "base", None), mmap.mmap)
        and x.ndim == 2
        and x.flags.c_contiguous
        and bool(getattr(x, "filename", None))
    )


def _sum_tolerance(dtype: np.dtype, k: int) -> float:
    """Tolerance on ``|Σ_j p_j − 1|`` for probabilities stored in ``dtype`` with ``k`` classes.

    ``max(base, k · eps(dtype))``: a softmax evaluated and rounded in ``dtype`` sums to one within a
    few ``k · eps``; ``base`` is ``1e-6`` for float64 and ``1e-4`` for narrower floats (float16 with
    10 classes: 9.8e-3). Integer data are checked as float64.
    """
    eps = float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else float(np.finfo(np.float64).eps)
    base = 1e-6 if eps < 1e-10 else 1e-4
    return max(base, k * eps)


@dataclass
class BlockChecker:
    """Checks row blocks of one predictions array against its stated kind, as they stream past.

    Both kinds: finite. Probabilities: non-negative, rows summing to one within
    ``max(base, k · eps(dtype))`` (``base`` 1e-6 for float64, 1e-4 for narrower floats).
    Logits: refused at :meth:`finish` when *every* row was non-negative and summed to one
    (those are probabilities).

    Attributes:
      name: how messages name the array.
      kind: the stated kind.
      k: the number of classes.
      dtype: the stored dtype (sets the tolerance).
    """

    name: str
    kind: str
    k: int
    dtype: np.dtype
    _prob_like: bool = True

    def check(self, start: int, b: np.ndarray) -> None:
        """Check one block.

        Args:
          start: index of the block's first row.
          b: the block, ``(m, k)``.

        Raises:
          ValueError: a non-finite entry, or rows that cannot be probabilities when that is the
            stated kind, naming the array, the row and what was seen.
        """
        # one summing pass: NaN and ±inf make the sum non-finite; only then (or when a huge finite
        # sum overflows) look entry by entry
        if not np.isfinite(b.sum()) and not np.isfinite(b).all():
            finite = np.isfinite(b)
            i, j = (int(v) for v in np.argwhere(~finite)[0])
            raise ValueError(
                f"{self.name}: contains {b[i, j]} at row {start + i}, column {j}; {self.kind} must be finite"
            )
        if self.kind == "logits" and not self._prob_like:
            return
        tol = _sum_tolerance(self.dtype, self.k)
        negative = b.min(axis=1) < 0
        sums = b.sum(axis=1, dtype=np.float64)
        off = np.abs(sums - 1.0) > tol
        if self.kind == "probabilities":
            if negative.any():
                i = int(np.argmax(negative))
                raise ValueError(
                    f"{self.name}: kind='probabilities' but row {start + i} has a negative entry ({b[i].min():.6g}); "
                    "these look like logits: state kind='logits' (--logits)"
                )
            if off.any():
                i = int(np.argmax(off))
                raise ValueError(
                    f"{self.name}: kind='probabilities' but row {start + i} sums to {sums[i]:.6g} "
                    f"(allowed: 1 ± {tol:.2g}); these look like logits: state kind='logits' (--logits)"
                )
        elif negative.any() or off.any():
            self._prob_like = False

    def finish(self) -> None:
        """Refuse logits whose every row looked like probabilities.

        Raises:
          ValueError: naming the array and the kind to state instead.
        """
        if self.kind == "logits" and self._prob_like:
            tol = _sum_tolerance(self.dtype, self.k)
            raise ValueError(
                f"{self.name}: kind='logits' but every row is non-negative and sums to 1 (within {tol:.2g}): "
                "these are probabilities; state kind='probabilities' (--probabilities)"
            )


def validate_predictions(x: ArrayLike, *, kind: Kind, name: str = "predictions") -> np.ndarray:
    """Check a predictions array against its stated kind; return it as a 2-D float array.

    Both kinds: real, finite, 2-D ``(n, k)`` with ``n ≥ 1``, ``k ≥ 2``. Logits: refused when
    *every* row is non-negative and sums to one (those are probabilities). Probabilities:
    non-negative, each row summing to one within ``max(base, k · eps(dtype))`` (``base`` = 1e-6
    for float64, 1e-4 for float32/float16), so float16 softmax outputs are accepted. The checks
    run in row blocks (:class:`BlockChecker`).

    Args:
      x: the predictions, ``(n, k)``.
      kind: ``"logits"`` or ``"probabilities"`` — what the caller states ``x`` is.
      name: the name used in error messages (an argument or a file name).

    Returns:
      ``x`` as an array in its own floating dtype (integer input becomes float64); no copy is
      made of a floating array.

    Raises:
      ValueError: naming ``name``, what was expected and what was seen.
    """
    choice(kind, "kind", KINDS)
    arr = _as_predictions(x, name)
    n, k = arr.shape
    checker = BlockChecker(name, kind, k, arr.dtype)
    step = max(1, BLOCK_ELEMENTS // k)
    for start in range(0, n, step):
        checker.check(start, arr[start : start + step])
    checker.finish()
    return arr


def class_indices(
    y: ArrayLike, *, n: int, k: int, class_names: Sequence[str] | None = None, name: str = "y"
) -> np.ndarray:
    """Labels as class indices ``(n,)`` in ``[0, k)``.

    Accepted: integers (or whole floats) ``(n,)``; one-hot ``(n, k)`` (exactly one 1 per row);
    strings ``(n,)``. Strings map to columns by ``class_names`` (the name of each column, in
    order) when given; otherwise strings that are all integers are read as integers, and other
    strings map by their sorted order (``sorted(set(y))[j]`` → column ``j``), which requires
    exactly ``k`` distinct strings.

    Args:
      y: the labels.
      n: number of points.
      k: number of classes.
      class_names: names of the ``k`` columns, for string labels.
      name: the name used in error messages.

    Returns:
      int64 class indices, ``(n,)``.

    Raises:
      ValueError: labels that do not map to the ``k`` classes, naming ``name``.
    """
    try:
        arr = np.asarray(y)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: expected {n} labels; rows of different lengths? ({exc})") from exc
    if arr.dtype.kind in "US" or (arr.dtype == object and arr.size and all(isinstance(v, str) for v in arr.flat)):
        return _string_labels(arr.astype(str), n, k, class_names, name)
    if class_names is not None:
        raise ValueError(f"class_names is for string labels; {name} holds {arr.dtype} values")
    if arr.ndim == 2:
        if arr.shape != (n, k):
            raise ValueError(f"{name}: one-hot labels must have shape {(n, k)} (points x classes), got {arr.shape}")
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{name}: expected numbers, got dtype {arr.dtype}")
        ok = np.all((arr == 0) | (arr == 1), axis=1) & (np.count_nonzero(arr, axis=1) == 1)
        if not ok.all():
            i = int(np.argmin(ok))
            raise ValueError(f"{name}: (n, k) labels must be one-hot; row {i} is {arr[i].tolist()[:8]}")
        classes: np.ndarray = arr.argmax(axis=1).astype(np.int64)
        return classes
    return integer_labels(arr, n, k, name)


def integer_labels(y: ArrayLike, n: int, k: int, name: str) -> np.ndarray:
    """Integer class labels ``(n,)`` in ``[0, k)`` as int64, or a ``ValueError`` naming ``name``."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per point, shape ({n},)), got shape {arr.shape}")
    if arr.dtype == object or arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name}: class labels must be whole numbers in [0, {k - 1}]")
    if arr.min() < 0 or arr.max() >= k:
        raise ValueError(f"{name}: class labels must lie in [0, {k - 1}], got range [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def _string_labels(arr: np.ndarray, n: int, k: int, class_names: Sequence[str] | None, name: str) -> np.ndarray:
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per point, shape ({n},)), got shape {arr.shape}")
    if class_names is not None:
        names = [str(c) for c in class_names]
        if len(names) != k or len(set(names)) != k:
            raise ValueError(f"class_names: expected {k} distinct names (one per column), got {len(names)}")
        lookup = {c: j for j, c in enumerate(names)}
        unknown = sorted(set(arr.tolist()) - lookup.keys())
        if unknown:
            raise ValueError(f"{name}: labels {unknown[:5]} are not among the class names {names[:10]}")
        return np.array([lookup[v] for v in arr.tolist()], dtype=np.int64)
    try:
        as_int = np.array([int(v) for v in arr.tolist()], dtype=np.int64)
    except ValueError:
        as_int = None
    if as_int is not None:
        return integer_labels(as_int, n, k, name)
    distinct, idx = np.unique(arr, return_inverse=True)
    if distinct.size != k:
        raise ValueError(
            f"{name}: {distinct.size} distinct string labels for {k} classes; cannot tell which column is which: "
            "give the class names in column order (class_names, --classes)"
        )
    return idx.astype(np.int64).reshape(n)


def count(x: object, name: str, *, minimum: int) -> int:
    """``x`` as an int ``≥ minimum``, or a ``ValueError`` naming ``name`` (bools refused)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {x!r}")
    if x < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {x}")
    return int(x)


def real(x: object, name: str, *, minimum: float) -> float:
    """``x`` as a finite float ``≥ minimum``, or a ``ValueError`` naming ``name``."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not np.isfinite(float(x)) or x < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {x!r}")
    return float(x)


def open_interval(x: object, name: str, low: float, high: float, *, closed_high: bool = False) -> float:
    """``x`` as a float in ``(low, high)`` (or ``(low, high]``), or a ``ValueError`` naming ``name``."""
    bad = isinstance(x, bool) or not isinstance(x, numbers.Real) or not np.isfinite(float(x))
    # the ignores: x is a finite Real once not bad (mypy does not narrow through `bad`; typeshed's Real has no
    # reflected comparison with float)
    if bad or not (low < x < high or (closed_high and x == high)):  # type: ignore[operator]
        rng = f"({low:g}, {high:g}{']' if closed_high else ')'}"
        raise ValueError(f"{name} must lie in {rng}, got {x!r}")
    return float(x)  # type: ignore[arg-type]
