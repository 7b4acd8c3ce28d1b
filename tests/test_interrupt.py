"""Issue 19 row 9: Ctrl-C during ``kdtheory reproduce`` always stops it.

Old: when SIGINT landed while JAX's garbage-collection callback ran, Python ignored the
KeyboardInterrupt ("Exception ignored in: <function _xla_gc_callback>") and the run carried on
and exited 0 (2 of 29 trials); twice the process segfaulted (exit 139) after "interrupted".
"""

import gc
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import fake_experiments
import pytest

from kdtheory import _interrupt
from kdtheory._interrupt import Interrupts
from kdtheory.experiments.folder import MARKER

FAKE = str(Path(fake_experiments.__file__).resolve())


def _frame_inside_gc_callback():
    seen = []

    def callback(phase, info):
        if phase == "start" and not seen:
            seen.append(sys._getframe())

    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    return seen[0], callback


def test_frames_where_python_ignores_exceptions_are_recognized():
    assert _interrupt._deliverable(sys._getframe())
    frame, callback = _frame_inside_gc_callback()
    gc.callbacks.append(callback)  # the frame's code is a registered gc callback's
    try:
        assert not _interrupt._deliverable(frame)
    finally:
        gc.callbacks.remove(callback)

    class Finalized:
        def __del__(self):
            Finalized.frame = sys._getframe()

    Finalized()
    assert not _interrupt._deliverable(Finalized.frame)


def test_sigint_inside_a_gc_callback_is_raised_after_it_returns():
    # a SIGINT handled inside a gc callback: the default handler's KeyboardInterrupt would be
    # ignored there; Interrupts raises it as soon as the main thread has left the callback
    state = {"armed": False, "in_callback_done": False}

    def callback(phase, info):
        if phase == "start" and state["armed"]:
            state["armed"] = False
            signal.raise_signal(signal.SIGINT)
            for _ in range(1000):  # Python code inside the callback: the handler runs here
                pass
            state["in_callback_done"] = True

    gc.callbacks.append(callback)
    try:
        with pytest.raises(KeyboardInterrupt):
            with Interrupts() as intr:
                assert intr.installed
                state["armed"] = True
                gc.collect()
                assert state["in_callback_done"]
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:  # the re-delivery raises within ~10 ms
                    time.sleep(0.001)
                pytest.fail("the interrupt was lost")
    finally:
        gc.callbacks.remove(callback)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_safe_points_critical_sections_and_nesting():
    with pytest.raises(KeyboardInterrupt):
        with Interrupts() as intr:
            with intr.critical():
                signal.raise_signal(signal.SIGINT)  # recorded, not raised, inside a critical section
                time.sleep(0.05)
                assert intr.pending
            with Interrupts() as inner:  # nested: the same state
                assert inner is intr
            intr.check()  # the safe point raises it
    # pending at the end of the block (no safe point met): raised on leaving
    with pytest.raises(KeyboardInterrupt):
        with Interrupts() as intr:
            intr.pending = True
    # a swallowed interrupt is raised again at the next safe point
    with pytest.raises(KeyboardInterrupt):
        with Interrupts() as intr:
            try:
                signal.raise_signal(signal.SIGINT)
                time.sleep(1)
            except KeyboardInterrupt:
                pass  # a library that swallows it
            intr.check()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_outside_the_main_thread_nothing_is_installed():
    seen = []

    def worker():
        with Interrupts() as intr:
            seen.append(intr.installed)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [False]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.slow
def test_sigint_at_random_moments_of_a_real_quick_run(tmp_path):
    """SIGINT at random moments of ``reproduce --quick --only late_distillation`` (JAX training).

    Each trial waits until the experiment runs, then interrupts it after a random delay. Every
    trial must end with status 130, "interrupted" as the last line, no ignored exception, and
    the previous run untouched.
    """
    out = tmp_path / "out"
    env = {**os.environ, "FAKE_SYNC": ""}
    prev = subprocess.run(
        [sys.executable, FAKE, "reproduce", "--quick", "--out", str(out), "--only", "fake_claim"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert prev.returncode == 0, prev.stderr
    before = _snapshot(out)
    assert MARKER in before
    rng = random.Random(int(os.environ.get("KDTHEORY_SIGINT_SEED", "0")))
    cmd = [sys.executable, "-m", "kdtheory.cli", "reproduce", "--quick", "--only", "late_distillation"]
    for trial in range(4):
        with subprocess.Popen(
            [*cmd, "--out", str(out)], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as proc:
            lines = []
            for line in proc.stderr:  # wait until the experiment runs (past the imports)
                lines.append(line)
                if "late_distillation: running" in line:
                    break
            time.sleep(rng.uniform(0.0, 2.0))
            proc.send_signal(signal.SIGINT)
            _, rest_err = proc.communicate(timeout=120)
        err = "".join(lines) + rest_err
        assert proc.returncode == 130, (trial, proc.returncode, err[-2000:])
        assert err.strip().splitlines()[-1] == "kdtheory reproduce: interrupted", (trial, err[-2000:])
        assert "Exception ignored" not in err and "Traceback" not in err, (trial, err[-2000:])
        assert _snapshot(out) == before, trial
        assert not list(tmp_path.glob(".out.staging-*")), trial
