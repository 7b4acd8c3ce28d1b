"""An output folder replaced as a whole: a run is written into a staging folder, then swapped in.

:class:`StagedFolder` guarantees that the output folder always holds exactly one complete run:

* every file of a run is written into a staging folder beside the output folder
  (``<parent>/.<name>.staging-<pid>-<random>``), on the same file system;
* :meth:`StagedFolder.commit` swaps the staging folder and the output folder in one atomic
  ``renameat2(RENAME_EXCHANGE)`` (Linux), so a reader, a crash or a ``SIGKILL`` sees either the
  previous run or the new one, never a mix; the previous run's files (now in the staging path)
  are then deleted. Where the exchange is not available the swap is two renames, during which the
  output folder is briefly absent;
* a run that fails or is interrupted removes its staging folder and leaves the output folder as
  it was;
* staging folders are owned: each holds a lock file locked (``flock``) by its process for its
  lifetime; at start-up a run removes only staging folders whose lock is free (their owner is
  gone, even after ``SIGKILL``), never a live concurrent run's. Creation, commit and the sweep are
  serialized by a lock on the parent directory, so two runs into one folder leave the later
  commit's complete run.

Ownership (issue 19 row 8): every committed run carries a marker file, :data:`MARKER`
(``.kdtheory-output.json``), holding a kdtheory signature and the SHA-256 of every file of the
run. A non-empty output folder is replaced only when its marker is valid and every other entry is
a file the marker lists, with the content kdtheory wrote. Anything else is refused before any work
is done, and again, under the lock, just before the swap:

* files the marker does not list (a user's ``notes.txt``, a user's own ``results.json`` and
  ``report.md`` in a folder without a marker — a file *name* proves nothing);
* a listed file whose content changed since kdtheory wrote it (an edited ``report.md``);
* a folder without a marker (including one written by kdtheory 0.2 or earlier, which wrote
  none): the message says how to proceed — delete the folder or give a new one; kdtheory never
  guesses that an unmarked folder is its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

fcntl: ModuleType | None
try:  # POSIX; without it (Windows) runs are not protected against each other
    import fcntl as _posix_fcntl

    fcntl = _posix_fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = ["MARKER", "SIGNATURE", "StagedFolder", "foreign", "run_files", "write_marker"]

_OWNER = ".owner.lock"

#: the marker file every committed run holds.
MARKER = ".kdtheory-output.json"

#: the marker's signature field: what the folder is.
SIGNATURE = "kdtheory reproduce output folder: every file listed here was written by kdtheory"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_marker(folder: Path, **info: Any) -> None:
    """Write :data:`MARKER` into ``folder``, listing every file in it with its SHA-256.

    Args:
      folder: a run's (staging) folder, every file written.
      **info: further JSON values recorded in the marker (e.g. the kdtheory version).

    Raises:
      ValueError: ``folder`` holds something other than plain files (a run writes files only).
    """
    files = {}
    for entry in sorted(os.listdir(folder)):
        if entry in (MARKER, _OWNER):
            continue
        path = folder / entry
        if path.is_symlink() or not path.is_file():
            raise ValueError(f"a run writes plain files only; {path} is not one")
        files[entry] = _sha256(path)
    payload = {"signature": SIGNATURE, "format": 1, **info, "files": files}
    (folder / MARKER).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def run_files(folder: Path) -> dict[str, str] | None:
    """The files a kdtheory run wrote into ``folder``, from its marker.

    Args:
      folder: an output folder.

    Returns:
      File name -> SHA-256 as written; ``None`` when ``folder`` holds no valid :data:`MARKER`.
    """
    try:
        payload = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        if payload.get("signature") != SIGNATURE:
            return None
        files = payload["files"]
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            return None
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return None
    return files


def foreign(folder: Path) -> str | None:
    """Why ``folder`` may not be replaced by a run, or ``None`` when it may.

    It may when it is absent or empty, or when it holds a valid :data:`MARKER` and otherwise only
    the files the marker lists, unchanged.

    Args:
      folder: an output folder.

    Returns:
      ``None``, or the reason in words (naming up to five entries).
    """
    if not folder.exists():
        return None
    entries = sorted(os.listdir(folder))
    if not entries:
        return None

    def shown(names: list[str]) -> str:
        return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")

    ours = run_files(folder)
    if ours is None:
        old = _written_by_old_kdtheory(folder, entries)
        if old:
            return (
                f"holds a report written by kdtheory {old} or earlier, without the marker {MARKER} that "
                "kdtheory now requires before replacing a folder; delete the folder (or move it) and run again, "
                "or give a new --out folder"
            )
        return (
            f"holds files that are not from a kdtheory run ({shown(entries)}): it has no {MARKER} marker; "
            "give a new or empty folder"
        )
    others = [e for e in entries if e != MARKER and e not in ours]
    if others:
        return f"holds files that are not from a kdtheory run ({shown(others)}); give a new or empty folder"
    changed = [e for e in entries if e in ours and (not (folder / e).is_file() or _sha256(folder / e) != ours[e])]
    if changed:
        return (
            f"holds files changed since kdtheory wrote them ({shown(changed)}); move them out of the folder "
            "or give a new one"
        )
    return None


def _written_by_old_kdtheory(folder: Path, entries: list[str]) -> str | None:
    """The kdtheory version that wrote an unmarked folder, when its results.json says one did (else None)."""
    try:
        payload = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        version = payload["versions"]["kdtheory"]
        listed = {"report.md", "results.json"} | set(payload.get("files", {}))
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return None
    return str(version) if isinstance(version, str) and set(entries) <= listed else None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` (a no-op without ``fcntl``)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` atomically; ``False`` where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


class StagedFolder:
    """Write a run into a staging folder and swap it in as the output folder.

    Use as a context manager; write into :attr:`path`; call :meth:`commit` when every file is
    written. Leaving the block without a commit (an error, ``KeyboardInterrupt``) removes the
    staging folder and leaves the output folder untouched.

    Args:
      out: the output folder (created by the commit if absent).

    Raises:
      ValueError: when ``out`` is an existing file, the current directory or one of its parents,
        or a folder that :func:`foreign` refuses (not marked as a kdtheory run's, or holding files
        kdtheory did not write or that changed since).
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out).resolve()
        self.path: Path | None = None
        self._owner_fd: int | None = None
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"out_dir {str(out)!r} is an existing file, not a folder")
        cwd = Path.cwd().resolve()
        if self.out == cwd or self.out in cwd.parents:
            raise ValueError(f"out_dir {str(out)!r} is the current directory or contains it; name a folder inside it")
        self._refuse_foreign()

    def _refuse_foreign(self) -> None:
        why = foreign(self.out)
        if why:
            raise ValueError(f"out_dir {str(self.out)!r} {why}")

    @property
    def _prefix(self) -> str:
        return f".{self.out.name}.staging-"

    def __enter__(self) -> StagedFolder:
        parent = self.out.parent
        parent.mkdir(parents=True, exist_ok=True)
        with _locked(parent):
            self._sweep()
            self.path = Path(tempfile.mkdtemp(prefix=f"{self._prefix}{os.getpid()}-", dir=parent))
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.path, 0o777 & ~umask)  # the folder the user gets, not mkdtemp's 0o700
            self._owner_fd = os.open(self.path / _OWNER, os.O_CREAT | os.O_RDWR, 0o600)
            if fcntl is not None:
                fcntl.flock(self._owner_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self

    def _sweep(self) -> None:
        """Remove staging folders of this output whose owner is gone (caller holds the parent lock)."""
        if fcntl is None:  # pragma: no cover - without locks a live run cannot be told from a dead one
            return
        for stale in self.out.parent.glob(f"{self._prefix}*"):
            if stale == self.path or not stale.is_dir():
                continue
            if (stale / _OWNER).exists():
                try:
                    fd = os.open(stale / _OWNER, os.O_RDWR)
                except FileNotFoundError:  # its live owner is removing it right now
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live run holds it
                finally:
                    os.close(fd)
            # no lock file: its owner died between a swap and the removal of the old run
            shutil.rmtree(stale, ignore_errors=True)

    def commit(self, **info: Any) -> None:
        """Mark the run (:func:`write_marker`), swap it in as the output folder, delete the previous run.

        Args:
          **info: JSON values recorded in the marker besides the files (e.g. the kdtheory version).

        Raises:
          ValueError: when files that no kdtheory run wrote appeared in the output folder meanwhile.
          RuntimeError: when called outside the ``with`` block or twice.
        """
        staging = self.path
        if staging is None or self._owner_fd is None:
            raise RuntimeError("commit() must be called once, inside the with block")
        write_marker(staging, **info)
        with _locked(self.out.parent):
            self._refuse_foreign()
            os.unlink(staging / _OWNER)  # the lock file stays open (and locked) until __exit__
            if not self.out.exists():
                try:
                    os.rename(staging, self.out)
                    self.path = None
                    return
                except OSError as exc:  # created meanwhile by someone else
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            if not _exchange(staging, self.out):
                old = staging.with_name(staging.name + "-old")
                os.rename(self.out, old)
                try:
                    os.rename(staging, self.out)
                except BaseException:
                    os.rename(old, self.out)
                    raise
                os.rename(old, staging)
            shutil.rmtree(staging)  # now the previous run's files
            self.path = None

    def __exit__(self, *exc: object) -> None:
        try:
            if self.path is not None:
                shutil.rmtree(self.path, ignore_errors=True)
                self.path = None
        finally:
            if self._owner_fd is not None:
                os.close(self._owner_fd)
                self._owner_fd = None
