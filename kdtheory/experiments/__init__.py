"""Experiments: one module per claim, each a function ``run(config, out_dir) -> ExperimentResult``.

The registry maps an experiment's name to its module; :mod:`kdtheory.experiments.reproduce`
runs them and writes the report. Modules are imported only when run, so listing is cheap.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from kdtheory.experiments.result import ExperimentResult, Verdict

__all__ = ["REGISTRY", "ExperimentResult", "Verdict", "load", "names"]

#: experiment name -> module path; order is the order of the report.
REGISTRY: dict[str, str] = {
    "eigen_dynamics": "kdtheory.experiments.eigen_dynamics",
    "eigenspace_exaggeration": "kdtheory.experiments.eigenspace_exaggeration",
    "repeated_self_distillation": "kdtheory.experiments.repeated_self_distillation",
    "confidence_deviation": "kdtheory.experiments.confidence_deviation",
    "late_distillation": "kdtheory.experiments.late_distillation",
    "gradient_denoising": "kdtheory.experiments.gradient_denoising",
    "ntk_bridge": "kdtheory.experiments.ntk_bridge",
}


def names() -> list[str]:
    """Names of the registered experiments, in report order."""
    return list(REGISTRY)


def load(name: str) -> ModuleType:
    """Import the module of experiment ``name`` (it defines ``CLAIM``, ``Config`` and ``run``)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; registered: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name])
