"""The values an experiment produces: effects, the outcome of its rule, and the recorded result.

An experiment's ``measure`` function returns an :class:`Outcome` (its verdict, the reason, the
measured numbers and, for a claim, its effects: :class:`kdtheory.stats.Effect` records, each with
its interval, control, rule, verdict and reason); the harness
(:mod:`kdtheory.experiments.harness`) wraps it with the experiment's identity, configuration,
timing and figures into an :class:`ExperimentResult`, the record written to ``results.json``.

Strict JSON: :func:`jsonable` turns numpy values into Python ones and non-finite floats into the
strings ``"inf"``, ``"-inf"`` and ``"nan"`` (as ``kdtheory confidence``'s ``summary.json`` does,
:func:`kdtheory._io.strict_json`), so ``results.json`` parses with any strict JSON reader
(JavaScript's ``JSON.parse`` included); :func:`dumps` checks it with ``allow_nan=False``. An
effect is written by :meth:`kdtheory.stats.Effect.to_json`, where a non-finite estimate or
interval end is ``null`` (no interval).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kdtheory._io import strict_json
from kdtheory.stats import Effect

__all__ = [
    "JOINT",
    "Effect",
    "ExperimentResult",
    "Kind",
    "Outcome",
    "SMOKE",
    "VERDICTS",
    "Verdict",
    "dumps",
    "jsonable",
]

Verdict = Literal["supported", "not supported", "inconclusive"]
Kind = Literal["claim", "validation"]

#: the three outcomes of a rule.
VERDICTS: tuple[str, ...] = ("supported", "not supported", "inconclusive")

#: the reason of an effect decided by its claim's joint rule rather than on its own interval.
JOINT = "decided jointly with the claim's other effects (see its reason)"

#: what a quick-size run reports instead of a verdict (too few seeds and too small sizes to decide).
SMOKE = "smoke run (quick size): no verdict"


@dataclass(frozen=True)
class Outcome:
    """What an experiment's ``measure`` function returns: its measurements and its decision.

    Attributes:
      verdict: the rule's decision, ``"supported"``, ``"not supported"`` or ``"inconclusive"``.
      reason: why, in words, with the numbers that decide it.
      measured: the recorded numbers keyed by name (floats, ints, lists, nested dicts).
      effects: the claim's effects, :class:`kdtheory.stats.Effect` records (empty for a validation).
      figure_data: arrays the experiment's figure draws that are not recorded in ``measured``.
    """

    verdict: Verdict
    reason: str
    measured: Mapping[str, Any] = field(default_factory=dict)
    effects: tuple[Effect, ...] = ()
    figure_data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if not all(isinstance(e, Effect) for e in self.effects):
            raise ValueError("effects must be a tuple of Effect")


@dataclass(frozen=True)
class ExperimentResult:
    """The record of one experiment's run, as written to ``results.json``.

    Attributes:
      name: registry name of the experiment.
      kind: ``"claim"`` (a claim of the paper, decided on measured effects) or ``"validation"``
        (an identity or an anchor of the mathematics, checked numerically).
      claim: the statement checked, in one sentence.
      size: ``"full"`` or ``"quick"``.
      verdict: the rule's verdict at full size; :data:`SMOKE` at quick size.
      reason: the numbers that decide the rule and the rule, in words.
      effects: the claim's effects with their intervals.
      measured: numbers keyed by name.
      figures: file names of the figures written, relative to the output directory.
      config: the configuration used, seeds included.
      seconds: wall time of the run (measurement and figure).
      rule_verdict: what the rule gives on these numbers (equal to ``verdict`` at full size; at
        quick size kept for tests only, not written to ``results.json``).
      overrides: the user's overrides of the declared configuration, path -> value as given
        (``kdtheory reproduce --set`` / ``--config``; empty when none).
      registered: ``True`` when the configuration used is the experiment's declared one at this
        size — the registered evidence; ``False`` for a run with overrides.
    """

    name: str
    kind: Kind
    claim: str
    size: Literal["full", "quick"]
    verdict: str
    reason: str
    effects: tuple[Effect, ...] = ()
    measured: Mapping[str, Any] = field(default_factory=dict)
    figures: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    rule_verdict: Verdict = "inconclusive"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    registered: bool = True

    def to_json(self) -> dict[str, Any]:
        """A strict-JSON-ready dict for ``results.json`` (see :func:`jsonable`).

        Returns:
          The record; at quick size every effect's verdict is :data:`SMOKE` too.
        """
        smoke = {"verdict": SMOKE} if self.size == "quick" else {}
        record: dict[str, Any] = jsonable(
            {
                "name": self.name,
                "kind": self.kind,
                "claim": self.claim,
                "size": self.size,
                "verdict": self.verdict,
                "reason": self.reason,
                "effects": [{**e.to_json(), **smoke} for e in self.effects],
                "measured": self.measured,
                "figures": list(self.figures),
                "config": self.config,
                "overrides": self.overrides,
                "registered": self.registered,
                "seconds": self.seconds,
            }
        )
        return record


def jsonable(obj: Any) -> Any:
    """``obj`` as plain, strict JSON values (the convention of :func:`kdtheory._io.strict_json`).

    Args:
      obj: nested mappings and sequences of str, numbers, bools, ``None``, numpy arrays and scalars.

    Returns:
      The same structure with tuples and arrays as lists, numpy scalars as Python scalars and
      non-finite floats as the strings ``"inf"``, ``"-inf"`` and ``"nan"``.

    Raises:
      TypeError: for a value that has no JSON form.
    """
    return strict_json(json.loads(json.dumps(obj, default=_numpy)))  # NaN and ±∞ survive the round trip


def _numpy(value: Any) -> Any:
    """Numpy arrays and scalars as Python values (``json.dumps``'s ``default``)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(obj: Any) -> str:
    """Strict JSON text of ``obj`` (through :func:`jsonable`; ``allow_nan=False`` as the last guard).

    Args:
      obj: any value :func:`jsonable` accepts.

    Returns:
      Indented JSON text ending in a newline.
    """
    return json.dumps(jsonable(obj), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
