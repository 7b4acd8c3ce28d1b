"""The value every experiment returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["ExperimentResult", "Verdict"]

Verdict = Literal["supported", "not supported", "inconclusive"]


@dataclass(frozen=True)
class ExperimentResult:
    """What one experiment measured and what it concludes.

    Attributes:
      name: registry name of the experiment.
      claim: the statement checked, in one sentence.
      verdict: ``"supported"``, ``"not supported"`` or ``"inconclusive"``.
      decided_by: the measured values that decide the verdict and the rule applied, in words.
      measured: numbers (floats, ints, lists) keyed by name; JSON-serializable.
      figures: file names of the figures written, relative to the output directory.
      config: the configuration used (JSON-serializable), seeds included.
      seconds: wall time of the run.
    """

    name: str
    claim: str
    verdict: Verdict
    decided_by: str
    measured: dict[str, Any] = field(default_factory=dict)
    figures: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``results.json``."""
        d = asdict(self)
        d["figures"] = list(self.figures)
        return d
