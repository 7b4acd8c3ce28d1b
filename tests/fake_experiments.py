"""Tiny experiments for the pipeline's own tests: they run in milliseconds and can be told to wait.

Used in-process (:func:`experiments`) and as a script run by the SIGKILL and concurrency tests::

    python tests/fake_experiments.py reproduce --out DIR --only fake_claim fake_check

Environment, read when an experiment runs:
  ``FAKE_TAG``: a string recorded in every measurement and drawn in every figure (default ``"-"``).
  ``FAKE_SYNC``: a folder; each run writes ``<tag>.started`` there, then waits until
  ``FAKE_WAIT_FOR`` (a comma-separated list of tags) have all started, or sleeps ``FAKE_SLEEP``
  seconds — so a test can catch a run mid-way.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kdtheory.experiments import Effect, Experiment, Outcome
from kdtheory.experiments.harness import finish, pyplot


@dataclass(frozen=True)
class Config:
    """Sizes of a fake experiment."""

    seed: int = 0
    n: int = 3
    value: float = 1.0


def _wait() -> None:
    sync = os.environ.get("FAKE_SYNC")
    if not sync:
        return
    tag = os.environ.get("FAKE_TAG", "-")
    Path(sync, f"{tag}.started").write_text(str(os.getpid()))
    others = [t for t in os.environ.get("FAKE_WAIT_FOR", "").split(",") if t]
    deadline = time.monotonic() + 30
    while others and not all(Path(sync, f"{t}.started").exists() for t in others):
        if time.monotonic() > deadline:
            raise RuntimeError(f"fake experiment {tag}: the others never started")
        time.sleep(0.05)
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))


def _measure(cfg: Config, say) -> Outcome:
    _wait()
    say(f"measured n = {cfg.n}")
    tag = os.environ.get("FAKE_TAG", "-")
    effect = Effect(
        "a difference", cfg.value, cfg.value - 1, cfg.value + 1, cfg.n, "a twin", "ci_low > 0", "fake", "supported",
        "its interval lies above 0",
    )  # fmt: skip
    return Outcome(
        "supported",
        f"value {cfg.value}",
        measured={"tag": tag, "value": cfg.value, "nan": float("nan"), "inf": float("inf")},
        effects=(effect,),
    )


def _figure(outcome: Outcome, cfg: Config):
    fig, ax = pyplot().subplots(figsize=(2, 2))
    ax.plot(range(cfg.n), [outcome.measured["value"]] * cfg.n)
    return finish(fig, f"run {outcome.measured['tag']}")


def experiments() -> list[Experiment]:
    """A claim (with a figure) and a validation (with a figure), tiny.

    Returns:
      The two experiments.
    """
    claim = Experiment("fake_claim", "claim", "a fake claim", Config(n=5), Config(), _measure, _figure)
    check = Experiment("fake_check", "validation", "a fake identity", Config(n=4), Config(), _measure, _figure)
    return [claim, check]


def main(argv: list[str]) -> int:
    """Register the fake experiments and run the ``kdtheory`` command with ``argv``.

    Args:
      argv: the command's arguments.

    Returns:
      Its exit status.
    """
    from kdtheory import cli
    from kdtheory import experiments as registry

    for exp in experiments():
        registry.register(exp)
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
