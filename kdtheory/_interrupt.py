"""Ctrl-C that always stops a run: SIGINT raised only where Python can deliver it (issue 19 row 9).

Python's default SIGINT handler raises ``KeyboardInterrupt`` in whatever Python code runs when the
signal is handled. When that code is a garbage-collection callback (JAX registers one,
``_xla_gc_callback``), a ``__del__`` method or a weakref callback, the interpreter *ignores* the
exception ("Exception ignored in: <function _xla_gc_callback>") and the run carries on as if
nothing had happened.

:class:`Interrupts`, used as a context manager in the main thread, replaces the handler for its
duration:

* a SIGINT is recorded (:attr:`Interrupts.pending`); if no frame on the stack is a gc callback,
  a ``__del__`` or a weakref callback, ``KeyboardInterrupt`` is raised at once, as before;
* otherwise it is re-delivered every 10 ms (``signal.pthread_kill`` from a timer thread) until the
  main thread has left that code, and raised then;
* :meth:`Interrupts.check` is a safe point: it raises while an interrupt is pending — so an
  interrupt that some library swallowed (``except BaseException``) still stops the run at the
  next safe point (the harness calls it between experiments, in progress messages and before
  committing the output folder);
* inside :meth:`Interrupts.critical` an interrupt is only recorded (the commit of a run's folder
  is not cut in half); the next safe point raises it.

Nested use shares one state: ``with Interrupts() as intr`` inside an active one gives the outer
instance (the command installs it for its whole run, :func:`kdtheory.experiments.reproduce.reproduce`
uses the same). Outside the main thread, or when another handler than Python's default is
installed (a notebook kernel's, a user's), the context manager changes nothing.
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import signal
import threading
import weakref
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

__all__ = ["Interrupts"]

_RECHECK_S = 0.01

#: the installed instance (nested ``with Interrupts()`` blocks share it).
_active: Interrupts | None = None
_UNSAFE_FILES = {weakref.__file__, getattr(__import__("_weakrefset"), "__file__", "")}


def _deliverable(frame: FrameType | None) -> bool:
    """Whether a ``KeyboardInterrupt`` raised in ``frame`` propagates (is not ignored by Python)."""
    gc_codes = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    while frame is not None:
        code = frame.f_code
        if code in gc_codes or code.co_name == "__del__" or code.co_filename in _UNSAFE_FILES:
            return False
        frame = frame.f_back
    return True


class Interrupts:
    """SIGINT handling that never loses a Ctrl-C (see the module docstring).

    Attributes:
      pending: an interrupt was requested and has not stopped the run yet (it stays set after a
        ``KeyboardInterrupt`` is raised, until the ``with`` block ends, so that a swallowed one is
        raised again at the next safe point).
      installed: whether the handler is installed (main thread, default handler before).
    """

    def __init__(self) -> None:
        self.pending = False
        self.installed = False
        self._nested = False
        self._critical = 0
        self._previous: Any = None  # the SIGINT handler to restore (callable, int or None)
        self._lock = threading.Lock()
        self._armed = False
        self._resent = False
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Interrupts:
        global _active
        if _active is not None and threading.current_thread() is threading.main_thread():
            self._nested = True
            return _active
        if threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self.installed = True
            _active = self
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        global _active
        if self._nested:
            self._nested = False
            return
        if self.installed:
            _active = None
            with self._lock:
                self.installed = False
                timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()
                timer.join()
            signal.signal(signal.SIGINT, self._previous)
        if self.pending and exc_type is None:
            self.pending = False
            raise KeyboardInterrupt

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._resent:
            self._resent = False  # our own re-delivery, not a new Ctrl-C
        else:
            self.pending = True
        if not self.pending or self._critical:
            return
        if _deliverable(frame):
            raise KeyboardInterrupt
        self._arm()

    def _arm(self) -> None:
        with self._lock:
            if not self.installed or self._armed:
                return
            self._armed = True
            self._timer = threading.Timer(_RECHECK_S, self._resend)
            self._timer.daemon = True
            self._timer.start()

    def _resend(self) -> None:
        with self._lock:
            self._armed = False
            if self.installed:
                self._resent = True
                if hasattr(signal, "pthread_kill"):  # a real signal: it also wakes a blocking call
                    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                else:  # pragma: no cover - Windows
                    _thread.interrupt_main(signal.SIGINT)

    def check(self) -> None:
        """A safe point: raise ``KeyboardInterrupt`` if an interrupt is pending (outside a critical section).

        Raises:
          KeyboardInterrupt: an interrupt was requested.
        """
        if self.pending and not self._critical:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """A section an interrupt does not cut: it is recorded, and raised by the next :meth:`check`.

        Yields:
          Nothing.
        """
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
