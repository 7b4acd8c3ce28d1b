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

The output folder may only hold a previous run's files (those listed in its ``results.json``,
plus ``report.md`` and ``results.json``): a folder with other files is refused rather than
replaced, so a mistyped ``--out`` cannot delete a user's files.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX; without it (Windows) runs are not protected against each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = ["StagedFolder", "run_files"]

_OWNER = ".owner.lock"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def run_files(folder: Path) -> set[str] | None:
    """Names of the files a kdtheory run wrote into ``folder``, from its ``results.json``.

    Args:
      folder: an output folder.

    Returns:
      ``report.md``, ``results.json`` and the figures listed in ``results.json``; ``None`` when
      ``folder`` holds no readable ``results.json``.
    """
    try:
        payload = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        figures = set(payload.get("files", {}))
        for res in payload.get("experiments", {}).values():  # reports written before "files" existed
            figures.update(res.get("figures", []))
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return {"report.md", "results.json"} | {str(f) for f in figures}


def _foreign(folder: Path) -> list[str]:
    """Entries of ``folder`` that no kdtheory run wrote (empty when it is absent or empty)."""
    if not folder.exists():
        return []
    entries = sorted(os.listdir(folder))
    ours = run_files(folder) or set()
    # hidden staging folders and temporary files of the in-folder scheme of kdtheory <= 0.1
    return [e for e in entries if e not in ours and not e.startswith((".staging-", ".report-", ".results-"))]


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
        or a folder holding files that no kdtheory run wrote.
    """

    def __init__(self, out: str | os.PathLike) -> None:
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
        foreign = _foreign(self.out)
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise ValueError(
                f"out_dir {str(self.out)!r} holds files that are not from a kdtheory run ({shown}); "
                "give a new or empty folder, or one holding only a previous report"
            )

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

    def commit(self) -> None:
        """Swap the staging folder in as the output folder and delete the previous run's files.

        Raises:
          ValueError: when files that no kdtheory run wrote appeared in the output folder meanwhile.
          RuntimeError: when called outside the ``with`` block or twice.
        """
        if self.path is None or self._owner_fd is None:
            raise RuntimeError("commit() must be called once, inside the with block")
        with _locked(self.out.parent):
            self._refuse_foreign()
            os.unlink(self.path / _OWNER)  # the lock file stays open (and locked) until __exit__
            if not self.out.exists():
                try:
                    os.rename(self.path, self.out)
                    self.path = None
                    return
                except OSError as exc:  # created meanwhile by someone else
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            if not _exchange(self.path, self.out):
                old = self.path.with_name(self.path.name + "-old")
                os.rename(self.out, old)
                try:
                    os.rename(self.path, self.out)
                except BaseException:
                    os.rename(old, self.out)
                    raise
                os.rename(old, self.path)
            shutil.rmtree(self.path)  # now the previous run's files
            self.path = None

    def __exit__(self, *exc) -> None:
        try:
            if self.path is not None:
                shutil.rmtree(self.path, ignore_errors=True)
                self.path = None
        finally:
            if self._owner_fd is not None:
                os.close(self._owner_fd)
                self._owner_fd = None
