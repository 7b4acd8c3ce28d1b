"""File input and output for the command line: numpy arrays in, atomic writes and strict JSON out.

Writes are atomic: a temporary file in the target's directory, then ``os.replace``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_path", "load_array", "strict_json", "write_json_atomic", "write_text_atomic"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The file gets the usual permissions (``0o666`` less the umask), not ``mkstemp``'s ``0o600``.
    On error the temporary file is removed and ``path`` is left as it was.

    Args:
      path: the file to write; its directory is created if missing.

    Yields:
      The temporary path to write to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Args:
      path: the file to write.
      text: its content.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_START = (b"\x80",)


def load_array(spec: str, *, what: str = "array") -> np.ndarray:
    """Load a ``.npy`` file, or one array of a ``.npz`` file (``FILE.npz`` if it holds one, else ``FILE.npz:KEY``).

    Pickles are never loaded (``allow_pickle=False``): a pickle, an array of Python objects or a
    file of another format is refused with a message saying what the file holds.

    Args:
      spec: the path, optionally ``PATH:KEY`` for an ``.npz`` file.
      what: what the array is (e.g. ``"teacher predictions"``), for messages.

    Returns:
      The array.

    Raises:
      ValueError: the file is missing, unreadable or not a numpy array file; every message
        starts with ``spec``.
    """
    path, key = spec, None
    if not Path(spec).exists() and ":" in spec:
        path, key = spec.rsplit(":", 1)
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{spec}: no such file ({what})")
    if p.is_dir():
        raise ValueError(f"{spec}: is a directory, expected a .npy or .npz file ({what})")
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ValueError(f"{spec}: cannot read ({exc.strerror or exc})") from exc
    if not head.startswith(_NPY_MAGIC) and not head.startswith(_ZIP_MAGIC):
        if head.startswith(_PICKLE_START):
            seen = "a Python pickle, which kdtheory does not load (unsafe)"
        elif not head:
            seen = "nothing (empty file)"
        else:
            seen = f"bytes {head!r}, not a numpy file"
        raise ValueError(f"{spec}: expected a .npy or .npz file ({what}) saved by numpy.save/savez; it holds {seen}")
    try:
        data = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ValueError(f"{spec}: holds Python objects (dtype object), not numbers ({what})") from exc
        raise ValueError(f"{spec}: cannot read as .npy/.npz ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise ValueError(f"{spec}: cannot read as .npy/.npz ({type(exc).__name__}: {exc})") from exc
    if isinstance(data, np.ndarray):
        if key is not None:
            raise ValueError(f"{spec}: {path} is a .npy file; ':{key}' selects arrays of .npz files only")
        return data
    with data:
        keys = list(data.keys())
        if key is None:
            if len(keys) != 1:
                raise ValueError(f"{spec}: holds arrays {keys}; choose one as {path}:KEY")
            key = keys[0]
        if key not in keys:
            raise ValueError(f"{spec}: no array named {key!r} (has {keys})")
        try:
            return np.asarray(data[key])
        except ValueError as exc:
            raise ValueError(f"{spec}: array {key!r} holds Python objects (dtype object), not numbers") from exc


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by a string, for strict JSON.

    ``inf`` → ``"inf"``, ``-inf`` → ``"-inf"``, NaN → ``"nan"`` (``json.dumps(..., allow_nan=False)``
    then accepts it; JavaScript's ``JSON.parse`` rejects bare ``Infinity``/``NaN``). Numpy scalars
    become Python numbers; dicts, lists and tuples are converted recursively.

    Args:
      value: a JSON-like value (dict, list, tuple, str, number, bool, ``None``, numpy scalar).

    Returns:
      The converted value.
    """
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_json_atomic(path: str | os.PathLike[str], value: Any) -> None:
    """Write ``value`` as strict, indented JSON (see :func:`strict_json`) to ``path`` atomically.

    Args:
      path: the file to write.
      value: a JSON-like value.
    """
    write_text_atomic(path, json.dumps(strict_json(value), indent=2, allow_nan=False) + "\n")
