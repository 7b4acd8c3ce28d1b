"""The experiment harness: what an experiment declares, and the one place that runs it.

An experiment module declares one :class:`Experiment`: its name, its kind (a claim of the paper
or a validation of the mathematics), the claim in one sentence, its configuration at ``full``
and ``quick`` size (seeds included), a ``measure(config, say) -> Outcome`` function that measures
and decides, and optionally a ``figure(outcome, config) -> Figure`` function that draws the
outcome. :func:`run` does the rest — timing, progress lines, the configuration record, saving
the figure, the smoke-run verdict at quick size and the :class:`ExperimentResult`.

Figures: :func:`pyplot` gives matplotlib's ``pyplot``, imported only when a figure is drawn, on
the non-interactive Agg backend unless a notebook or the user chose a backend; :func:`finish`
adds the title and lays the figure out.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kdtheory._mpl import pyplot
from kdtheory.experiments import config
from kdtheory.experiments.result import SMOKE, ExperimentResult, Kind, Outcome

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Experiment", "Measure", "Progress", "finish", "pyplot", "run"]

#: a callable receiving one-line progress messages.
Progress = Callable[[str], None]


class Measure(Protocol):
    """An experiment's ``measure(cfg, say) -> Outcome``: measure at one size and apply the rule.

    Every experiment module defines one; its docstring says what it measures and decides, and
    points here for the arguments (``Args: see``), which are the same for all of them.
    """

    def __call__(self, cfg: Any, say: Progress, /) -> Outcome:
        """Run the measurements and decide.

        Args:
          cfg: the configuration (``EXPERIMENT.full`` or ``EXPERIMENT.quick``, or another
            instance of the same dataclass).
          say: called with one-line progress messages.

        Returns:
          The :class:`~kdtheory.experiments.result.Outcome`: measurements, effects and the verdict.
        """
        ...


@dataclass(frozen=True)
class Experiment:
    """An experiment as the harness sees it.

    Attributes:
      name: registry name; the figure is written as ``<name>.png``.
      kind: ``"claim"`` (decided on effects with intervals) or ``"validation"`` (a check of the
        mathematics).
      claim: the statement checked, in one sentence.
      full: the configuration at full size (a dataclass instance with a ``seed`` or ``seeds`` field).
      quick: the configuration at quick (CI) size, of the same type.
      measure: ``measure(config, say)`` runs the measurements and applies the rule; ``say`` takes
        one-line progress messages.
      figure: ``figure(outcome, config)`` returns a matplotlib ``Figure`` drawn from the outcome,
        or ``None`` for an experiment without a figure.

    Raises:
      ValueError: for an unknown kind, configurations that are not instances of one dataclass, a
        configuration without seeds, or one whose values its declaration
        (:func:`kdtheory.experiments.config.param`) refuses.
    """

    name: str
    kind: Kind
    claim: str
    full: Any
    quick: Any
    measure: Measure
    figure: Callable[[Outcome, Any], Figure] | None = None

    def __post_init__(self) -> None:
        """Refuse an unknown kind."""
        if self.kind not in ("claim", "validation"):
            raise ValueError(f"kind must be 'claim' or 'validation', got {self.kind!r}")
        if not dataclasses.is_dataclass(self.full) or type(self.quick) is not type(self.full):
            raise ValueError(f"{self.name}: full and quick must be instances of one dataclass")
        if not any("seed" in f.name for f in dataclasses.fields(self.full)):
            raise ValueError(f"{self.name}: the configuration must declare its seeds (a field named *seed*)")
        for size, cfg in (("full", self.full), ("quick", self.quick)):
            try:
                config.check(cfg)
            except config.ConfigError as exc:
                raise ValueError(f"{self.name}: its {size} configuration does not meet its declaration: {exc}") from exc

    def config(self, *, quick: bool = False) -> Any:
        """The configuration at quick or full size.

        Args:
          quick: quick (CI) size instead of full size.

        Returns:
          :attr:`quick` or :attr:`full`.
        """
        return self.quick if quick else self.full


def run(
    experiment: Experiment,
    *,
    quick: bool = False,
    config: Any = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ExperimentResult:
    """Run one experiment: measure, decide, draw, time and record.

    Args:
      experiment: the experiment.
      quick: run at quick size; the verdict is then :data:`~kdtheory.experiments.result.SMOKE`
        (what the rule gives is kept in ``rule_verdict``).
      config: a configuration to use instead of the declared one (of the same type).
      out_dir: directory where ``<name>.png`` is written (no figure when ``None``).
      progress: receives the experiment's one-line progress messages.
      overrides: the overrides that made ``config`` (path -> value, recorded as given; see
        :func:`kdtheory.experiments.config.override`).

    Returns:
      The :class:`~kdtheory.experiments.result.ExperimentResult`; its ``registered`` is whether
      the configuration used equals the declared one at this size.

    Raises:
      ValueError: for a configuration of another type, a ``measure`` that returns no
        :class:`~kdtheory.experiments.result.Outcome`, or a claim whose outcome has no effect.
    """
    cfg = experiment.config(quick=quick) if config is None else config
    if type(cfg) is not type(experiment.full):
        raise ValueError(f"config must be a {type(experiment.full).__name__}, got {type(cfg).__name__}")
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    outcome = experiment.measure(cfg, say)
    if not isinstance(outcome, Outcome):
        raise ValueError(f"{experiment.name}: measure must return an Outcome, got {type(outcome).__name__}")
    if experiment.kind == "claim" and not outcome.effects:
        raise ValueError(f"{experiment.name}: a claim must report its effects")
    figures: tuple[str, ...] = ()
    if out_dir is not None and experiment.figure is not None:
        fig = experiment.figure(outcome, cfg)
        name = f"{experiment.name}.png"
        try:
            fig.savefig(Path(out_dir) / name, dpi=130, bbox_inches="tight", format="png")
        finally:
            pyplot().close(fig)
        figures = (name,)
    return ExperimentResult(
        name=experiment.name,
        kind=experiment.kind,
        claim=experiment.claim,
        size="quick" if quick else "full",
        verdict=SMOKE if quick else outcome.verdict,
        reason=outcome.reason,
        effects=tuple(outcome.effects),
        measured=dict(outcome.measured),
        figures=figures,
        config=dataclasses.asdict(cfg),
        seconds=time.perf_counter() - t0,
        rule_verdict=outcome.verdict,
        overrides=dict(overrides or {}),
        registered=cfg == experiment.config(quick=quick),
    )


def finish(fig: Figure, title: str = "") -> Figure:
    """Give ``fig`` its title, axis titles of size 10 and a tight layout.

    Args:
      fig: a matplotlib ``Figure``.
      title: the suptitle (none when empty).

    Returns:
      ``fig``.
    """
    for ax in fig.axes:
        ax.title.set_fontsize(10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
