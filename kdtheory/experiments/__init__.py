"""Experiments: one module per claim or validation, each declaring an :class:`Experiment`.

The registry maps an experiment's name to the module that declares it (its ``EXPERIMENT``);
:func:`run` runs one through the harness, :mod:`kdtheory.experiments.reproduce` runs several and
writes the report. Modules are imported only when loaded, so listing is cheap.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from kdtheory.experiments.harness import Experiment
from kdtheory.experiments.result import Effect, ExperimentResult, Outcome, Verdict

__all__ = [
    "REGISTRY",
    "Effect",
    "Experiment",
    "ExperimentResult",
    "Outcome",
    "Verdict",
    "load",
    "names",
    "register",
    "run",
]

#: experiment name -> module path (declaring ``EXPERIMENT``) or an :class:`Experiment`; report order.
REGISTRY: dict[str, str | Experiment] = {
    "eigen_dynamics": "kdtheory.experiments.eigen_dynamics",
    "eigenspace_exaggeration": "kdtheory.experiments.eigenspace_exaggeration",
    "planted_generalization": "kdtheory.experiments.planted_generalization",
    "repeated_self_distillation": "kdtheory.experiments.repeated_self_distillation",
    "confidence_deviation": "kdtheory.experiments.confidence_deviation",
    "late_distillation": "kdtheory.experiments.late_distillation",
    "gradient_denoising": "kdtheory.experiments.gradient_denoising",
    "ntk_bridge": "kdtheory.experiments.ntk_bridge",
}


def names() -> list[str]:
    """Names of the registered experiments, in report order.

    Returns:
      The names.
    """
    return list(REGISTRY)


def register(experiment: Experiment) -> None:
    """Add an experiment defined outside kdtheory (or replace one of the same name).

    Args:
      experiment: the experiment; it runs with ``kdtheory reproduce`` after the built-in ones.

    Raises:
      ValueError: when ``experiment`` is not an :class:`Experiment`.
    """
    if not isinstance(experiment, Experiment):
        raise ValueError(f"experiment must be an Experiment, got {type(experiment).__name__}")
    REGISTRY[experiment.name] = experiment


def load(name: str) -> Experiment:
    """The experiment registered as ``name``.

    Args:
      name: a registered name.

    Returns:
      Its :class:`Experiment`.

    Raises:
      ValueError: for an unknown name.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; registered: {', '.join(REGISTRY)}")
    entry = REGISTRY[name]
    return entry if isinstance(entry, Experiment) else importlib.import_module(entry).EXPERIMENT


def run(
    name: str,
    *,
    quick: bool = False,
    out_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Run the experiment ``name`` once (see :func:`kdtheory.experiments.harness.run`).

    Args:
      name: a registered name.
      quick: quick (CI) size; the verdict is then the smoke-run marker.
      out_dir: where to write its figure (none when ``None``).
      progress: receives one-line progress messages.

    Returns:
      The :class:`ExperimentResult`.
    """
    from kdtheory.experiments import harness

    return harness.run(load(name), quick=quick, out_dir=out_dir, progress=progress)
