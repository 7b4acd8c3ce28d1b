"""Input validation shared by the closed-form modules.

Every public function validates its inputs with these helpers so that bad input fails early
with a ``ValueError``/``TypeError`` that names the offending argument, instead of a NaN or a
traceback from deep inside numpy.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike


def as_array(x: ArrayLike, name: str) -> np.ndarray:
    """Return ``np.asarray(x)``, or a one-line error naming ``name`` when numpy cannot make an array of it.

    Args:
      x: array-like input.
      name: argument name for messages.

    Returns:
      The array (no copy when ``x`` already is one).

    Raises:
      ValueError: ``x`` is a ragged nested sequence (rows of different lengths have no shape).
      TypeError: numpy cannot convert ``x`` for another reason.
    """
    try:
        return np.asarray(x)
    except ValueError as exc:  # numpy: "setting an array element with a sequence ... inhomogeneous shape"
        raise ValueError(
            f"{name} must be a rectangular array of numbers, got a ragged nested sequence (rows of different lengths)"
        ) from exc
    except Exception as exc:  # pragma: no cover - numpy raises many types here
        raise TypeError(f"{name} must be array-like of numbers, got {type(x).__name__}") from exc


def as_float_array(x: ArrayLike, name: str, *, ndim: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``x`` as a finite float64 array, or raise naming ``name``.

    Args:
      x: array-like of real numbers.
      name: argument name for messages.
      ndim: the allowed numbers of dimensions (any when ``None``).

    Returns:
      A finite float64 array (no copy when ``x`` already is one).

    Raises:
      TypeError: ``x`` does not hold real numbers.
      ValueError: ``x`` is ragged, has a number of dimensions outside ``ndim``, or holds NaN or inf.
    """
    arr = as_array(x, name)
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

    Returns:
      The times as float64, same shape as ``t``.

    Raises:
      TypeError: ``t`` does not hold real numbers.
      ValueError: ``t`` is ragged, holds NaN or negative values, or (``integer``) fractional steps.
    """
    arr = as_array(t, name)
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


def positive_scalar(x: object, name: str, *, allow_zero: bool = False) -> float:
    """Return ``x`` as a finite positive float, or raise naming ``name``.

    Args:
      x: a real number.
      name: argument name for messages.
      allow_zero: accept ``x = 0``.

    Returns:
      ``float(x)``.

    Raises:
      TypeError: ``x`` is not a real number (a bool is not).
      ValueError: ``x`` is not finite, negative, or zero without ``allow_zero``.
    """
    if isinstance(x, bool) or not isinstance(x, numbers.Real):  # numpy's scalars are Real; str, complex are not
        raise TypeError(f"{name} must be a real number, got {x!r}")
    value = float(x)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return value


def below_one(x: object, name: str) -> float:
    """Return ``x`` as a float in ``[0, 1)`` (a momentum β, a fraction), or raise naming ``name``.

    Args:
      x: a real number.
      name: argument name for messages.

    Returns:
      ``float(x)``.

    Raises:
      TypeError: ``x`` is not a real number.
      ValueError: ``x`` outside ``[0, 1)``.
    """
    x = positive_scalar(x, name, allow_zero=True)
    if x >= 1:
        raise ValueError(f"{name} must lie in [0, 1), got {x!r}")
    return x


def positive_integer(x: object, name: str) -> int:
    """Return ``x`` as an int ``≥ 1`` (whole floats accepted), or raise naming ``name``.

    Args:
      x: a whole number.
      name: argument name for messages.

    Returns:
      ``int(x)``.

    Raises:
      ValueError: ``x`` is not a whole number ``≥ 1`` (bools, strings and ``None`` are not).
    """
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x.item()  # a 0-d array, as numpy reductions return
    value = 0  # refused below unless x is a whole number
    if isinstance(x, int | np.integer) and not isinstance(x, bool):
        value = int(x)
    elif isinstance(x, float | np.floating) and float(x).is_integer():
        value = int(x)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {x!r}")
    return value


def whole_steps(x: object, name: str) -> int:
    """Return ``x`` as a non-negative int number of steps (whole floats accepted), or raise naming ``name``.

    Args:
      x: a whole number ``≥ 0``.
      name: argument name for messages.

    Returns:
      ``int(x)``.

    Raises:
      ValueError: ``x`` is not a finite whole number ``≥ 0`` (bools, strings, ``None``, NaN and inf are not).
    """
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a non-negative whole number of steps, got {x!r}")
    if not np.isfinite(float(x)) or float(x) < 0 or float(x) != int(x):
        raise ValueError(f"{name} must be a non-negative whole number of steps, got {x!r}")
    return int(x)


def choice(value: str, name: str, options: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``options``, else raise listing them.

    Args:
      value: the value given.
      name: argument name for messages.
      options: the allowed values.

    Returns:
      ``value``.

    Raises:
      ValueError: ``value`` is not one of ``options``.
    """
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, options))}")
    return value
