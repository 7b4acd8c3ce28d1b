"""Input validation shared by the closed-form modules.

Every public function validates its inputs with these helpers so that bad input fails early
with a ``ValueError``/``TypeError`` that names the offending argument, instead of a NaN or a
traceback from deep inside numpy.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_float_array(x: ArrayLike, name: str, *, ndim: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``x`` as a finite float64 array, or raise naming ``name``."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - numpy raises many types here
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if ndim is not None and arr.ndim not in ndim:
        allowed = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name} must be {allowed}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise ValueError(f"{name} contains {bad} values")
    return arr


def as_times(t: ArrayLike, name: str = "t", *, integer: bool = False) -> np.ndarray:
    """Return non-negative times (``np.inf`` allowed) as a float64 array, or raise.

    Args:
      t: times of any shape.
      name: argument name for messages.
      integer: require whole numbers of steps (gradient descent, momentum).
    """
    arr = np.asarray(t)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if (arr < 0).any():
        raise ValueError(f"{name} must be >= 0 (got min {arr.min()!r}); training runs forward")
    if integer:
        finite = arr[np.isfinite(arr)]
        if np.any(finite != np.floor(finite)):
            raise ValueError(f"{name} counts steps and must hold whole numbers (or np.inf)")
    return arr


def positive_scalar(x: float, name: str, *, allow_zero: bool = False) -> float:
    """Return ``x`` as a finite positive float, or raise naming ``name``."""
    if isinstance(x, bool) or not np.isscalar(x) or not np.isreal(x):
        raise TypeError(f"{name} must be a real number, got {x!r}")
    x = float(x)
    if not np.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {x!r}")
    return x


def choice(value: str, name: str, options: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``options``, else raise listing them."""
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, options))}")
    return value
