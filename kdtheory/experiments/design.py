r"""The paired design's settings: one :class:`Design` per regime and data set, and the :class:`Suite`.

Three **regimes** (``Design.regime``), named in ``results.json`` and the report (docs/theory.md §8, §11):

* ``paper`` — the regime of Nagarajan et al. (2023): clean labels (η = 0), the teacher trained to
  the end of its budget with a cosine learning-rate schedule (``teacher_stop="last"``; it
  interpolates its training labels where the model can — its training accuracy is recorded), every
  student-side arm with the same budget and schedule,
  temperatures τ ∈ {1, 2, 4}. On the Gaussian mixture the "clean" labels are *samples of the
  Bayes posterior* (``y ~ p*(·|x)``), not noise-free classes: the posterior is the truth there.
* ``compression`` — the same, MNIST-1D, teacher 40-256-256-10 → student 40-64-10.
* ``noisy-labels`` — the design of issue 10: flip-to-another-class label noise η > 0 on the
  training and validation labels, the teacher early-stopped on the noisy validation split.

A design's data come from :func:`load` (cached); its runs from :mod:`kdtheory.experiments.arms`.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from kdtheory import data as _data
from kdtheory.experiments import config as _config
from kdtheory.experiments.config import param

__all__ = [
    "DATASETS",
    "REGIMES",
    "Design",
    "Suite",
    "load",
    "MIXTURE",
    "DIGITS",
    "MNIST1D",
    "PAPER",
    "COMPRESSION",
    "QUICK",
    "O2_FRACTION",
]

DATASETS = ("mixture", "digits", "mnist1d")

#: the late-switch fraction ``f`` at which O2 is measured (the share recovered by switching at ``f``).
O2_FRACTION = 0.5

#: the regimes, in the order of the report.
REGIMES = ("paper", "compression", "noisy-labels")


@dataclass(frozen=True)
class Design:
    """One setting of the paired design (hashable: it keys the caches).

    Attributes:
      dataset: ``"mixture"`` (``gaussian_mixture``, d = 20, 3 classes, separation 2),
        ``"digits"`` (scikit-learn 8×8) or ``"mnist1d"`` (Greydanus 2020, ``data_seed=42`` pool).
      n: training points (digits: ``None`` = every image left after the test and validation splits).
      n_test: test points (mixture, mnist1d; digits ignores it and uses its 40% test split).
      validation: validation points (early stopping; noisy when η > 0, with the training labels' noise).
      label_noise: η, the flip-to-another-class rate of training and validation labels.
      hidden: hidden widths of the student-side MLPs (ReLU).
      learning_rate, momentum, batch_size: the optimizer of every run (``None``: full batch).
      teacher_t: the teacher's budget (steps; also the replica's).
      student_t: the budget of every student-side arm (steps).
      teacher_stop: ``"val"`` (argmax of validation accuracy), ``"last"`` or a step (the
        nearest recorded checkpoint at or after it); the replica uses the same rule.
      temperature: τ of the distillation term.
      switch_fractions: the late / reverse switch fractions ``f`` strictly between 0 and 1.
      gradient_points: training points (a fixed random subset) for the T2 gradient statistics.
      points: recorded checkpoints per run (geometric, with 0 and the budget).
      regime: ``"paper"``, ``"compression"`` or ``"noisy-labels"`` (a name; the fields define it).
      teacher_hidden: the teacher's (and replica's) hidden widths; empty: ``hidden``
        (self-distillation).
      reverse: train the reverse switches (teacher first, one-hot after ``f ·`` budget).
      schedule: the learning-rate schedule of every run: ``"constant"`` or ``"cosine"`` (from the
        learning rate to 0 over the run's budget, :func:`kdtheory.schedules.cosine`).
    """

    dataset: str = param("mixture", "data set", choices=DATASETS, key=True)
    n: int | None = param(1000, "training points (digits: none = every image left after the splits)", low=1)
    n_test: int = param(20_000, "test points (mixture, mnist1d; digits uses its 40% test split)", low=0)
    validation: int = param(500, "validation points (early stopping; noisy when η > 0)", low=1)
    label_noise: float = param(
        0.3, "η, the flip-to-another-class rate of training and validation labels", low=0, below=1
    )
    hidden: tuple[int, ...] = param((128,), "hidden widths of the student-side MLPs (ReLU)", low=1)
    learning_rate: float = param(0.1, "learning rate of every run", above=0)
    momentum: float = param(0.0, "momentum of every run", low=0, below=1)
    batch_size: int | None = param(None, "minibatch size (none: full batch)", low=1)
    teacher_t: int = param(2000, "the teacher's and the replica's budget (steps)", low=1)
    student_t: int = param(2000, "the budget of every student-side arm (steps)", low=1)
    teacher_stop: str | int = param(
        "val", "teacher (and replica) checkpoint: val (best validation), last, or a step",
        choices=("val", "last"), low=0,
    )  # fmt: skip
    temperature: float = param(1.0, "τ of the distillation term", above=0)
    switch_fractions: tuple[float, ...] = param(
        (0.25, 0.5, 0.75), "late / reverse switch fractions f (empty: no switch)", above=0, below=1, min_items=0
    )
    gradient_points: int = param(1000, "training points for the T2 gradient statistics", low=1)
    points: int = param(40, "recorded checkpoints per run (geometric, with 0 and the budget)", low=1)
    regime: str = param("noisy-labels", "regime name (paper, compression, noisy-labels)", choices=REGIMES)
    teacher_hidden: tuple[int, ...] = param(
        (), "the teacher's and replica's hidden widths (empty: the student's)", low=1, min_items=0
    )
    reverse: bool = param(True, "train the reverse switches (teacher first, then one-hot)")
    schedule: str = param("constant", "learning-rate schedule of every run (cosine: to 0 over the budget)",
                          choices=("constant", "cosine"))  # fmt: skip

    def __post_init__(self) -> None:
        # every field against its param declaration (ConfigError is a ValueError naming the field)
        _config.check(self)

    @property
    def teacher_widths(self) -> tuple[int, ...]:
        """The teacher's (and the replica's) hidden widths."""
        return self.teacher_hidden or self.hidden

    @property
    def label(self) -> str:
        """A short caption: regime, data set, η, τ, teacher stop, budget (and sizes when compressing)."""
        sizes = "" if not self.teacher_hidden else f" {self.teacher_hidden}→{self.hidden}"
        return (
            f"{self.regime} {self.dataset}{sizes} η={self.label_noise:g} τ={self.temperature:g} "
            f"stop={self.teacher_stop} budget={self.student_t}/{self.teacher_t}"
        )


#: what a design's data depend on: (dataset, n, n_test, validation, label_noise).
_DataKey = tuple[str, int | None, int, int, float]


def _data_key(d: Design) -> _DataKey:
    return (d.dataset, d.n, d.n_test, d.validation, d.label_noise)


@functools.lru_cache(maxsize=64)
def _load(key: _DataKey, seed: int) -> _data.Classification:
    dataset, n, n_test, validation, eta = key
    # the ignores: n=None ("every image") is for digits; gaussian_mixture and mnist1d refuse it naming n
    if dataset == "mixture":
        return _data.gaussian_mixture(n, n_test, label_noise=eta, validation=validation, seed=seed)  # type: ignore[arg-type]
    if dataset == "digits":
        return _data.digits(n, label_noise=eta, validation=validation, seed=seed)
    return _data.mnist1d(n, n_test, label_noise=eta, validation=validation, seed=seed, data_seed=42)  # type: ignore[arg-type]


def load(design: Design, seed: int) -> _data.Classification:
    """The data of ``design`` at ``seed`` (cached).

    Args:
      design: the :class:`Design`.
      seed: the seed of the split and of the label flips.

    Returns:
      A :class:`kdtheory.data.Classification` with a validation split (noisy when η > 0).
    """
    return _load(_data_key(design), int(seed))


#: the mixture of the issue-10 measurements: MLP 20-128-3, full-batch GD lr 0.1 (lr 0.5 oscillates).
MIXTURE = Design()

#: scikit-learn digits, η = 0.3, every image left after the test and 300 validation images (n = 778).
DIGITS = Design(dataset="digits", n=None, n_test=0, validation=300, hidden=(128,), gradient_points=778)

#: MNIST-1D (n = 4000, 10,000 test signals), MLP 40-100-100-10, SGD with momentum 0.9, batch 100,
#: lr 0.01, 6000 steps, η = 0.2 (at η = 0.1 the noisy validation split stops the teacher late).
MNIST1D = Design(
    dataset="mnist1d", n=4000, n_test=10_000, validation=500, label_noise=0.2, hidden=(100, 100),
    learning_rate=0.01, momentum=0.9, batch_size=100, teacher_t=6000, student_t=6000, gradient_points=4000,
)  # fmt: skip

_PAPER: dict[str, Any] = dict(regime="paper", label_noise=0.0, teacher_stop="last", switch_fractions=(O2_FRACTION,),
                              reverse=False, schedule="cosine")  # fmt: skip

#: the ``paper`` regime: the three data sets with clean labels, teachers trained to the end of their
#: budget with a cosine schedule, every arm with that budget and schedule. Learning rates chosen so
#: that the teacher interpolates its training labels (mixture: lr 0.3 — at 0.1 the cosine run ends
#: at 96–97% training accuracy; MNIST-1D: lr 0.05, 3000 steps — at 0.01 it ends at 88%).
PAPER = (
    Design(learning_rate=0.3, **_PAPER),
    Design(dataset="digits", n=None, n_test=0, validation=300, gradient_points=778, **_PAPER),
    Design(dataset="mnist1d", n=4000, n_test=10_000, validation=500, hidden=(100, 100), learning_rate=0.05,
           momentum=0.9, batch_size=100, teacher_t=3000, student_t=3000, gradient_points=4000, **_PAPER),
)  # fmt: skip

#: the ``compression`` regime: MNIST-1D, teacher 40-256-256-10 → student 40-64-10, otherwise ``paper``.
COMPRESSION = (
    Design(dataset="mnist1d", n=4000, n_test=10_000, validation=500, hidden=(64,), teacher_hidden=(256, 256),
           learning_rate=0.05, momentum=0.9, batch_size=100, teacher_t=3000, student_t=3000, gradient_points=4000,
           **{**_PAPER, "regime": "compression"}),
)  # fmt: skip


@dataclass(frozen=True)
class Suite:
    """The configuration shared by the O1, O2 and T2 experiments (identical, so their runs are shared).

    Seeds are ``first_seed … first_seed + count − 1``: the registered run uses seeds no development
    run used (development used seeds from 0).

    Attributes:
      first_seed: the first seed of every design and map cell.
      paper: the ``paper`` regime's designs, one per data set (τ is set by ``temperatures``).
      paper_seeds: seeds of each ``paper`` design (O2 needs ≥ 20).
      temperatures: τ of the ``paper`` regime's students (O1 at each; O2 at ``o2_temperatures``).
      o2_temperatures: τ at which the late switch is trained and O2 decided (``paper``, ``compression``).
      compression: the ``compression`` regime's designs.
      compression_seeds: seeds of each ``compression`` design.
      compression_temperatures: τ of the ``compression`` regime's students.
      seeds: seeds of the ``noisy-labels`` designs.
      designs: the ``noisy-labels`` designs, one per data set (each is a base of the map).
      map_datasets: the data sets whose ``noisy-labels`` design the confounder map varies.
      map_seeds: seeds of each cell of the confounder map.
      map_stop: teacher stop rules of the map (``"val"``, ``"last"`` or a step).
      map_temperature: temperatures τ of the map.
      map_noise: label-noise rates η of the map.
      map_budget: student budgets of the map, as fractions of the base design's ``student_t``.
    """

    first_seed: int = param(100, "the first seed (development runs used seeds from 0)", low=0)
    paper: tuple[Design, ...] = param(PAPER, "the paper regime's designs (clean labels, teacher to the end)")
    paper_seeds: int = param(20, "seeds of each paper-regime design", low=2)
    temperatures: tuple[float, ...] = param((1.0, 2.0, 4.0), "τ of the paper regime's students", above=0)
    o2_temperatures: tuple[float, ...] = param((1.0, 4.0), "τ of the late switch (O2)", above=0)
    compression: tuple[Design, ...] = param(COMPRESSION, "the compression regime's designs")
    compression_seeds: int = param(10, "seeds of each compression design", low=2)
    compression_temperatures: tuple[float, ...] = param((1.0, 4.0), "τ of the compression students", above=0)
    seeds: int = param(10, "seeds of the noisy-labels designs", low=2)
    designs: tuple[Design, ...] = param(
        tuple(
            dataclasses.replace(d, switch_fractions=(O2_FRACTION,), reverse=False) for d in (MIXTURE, DIGITS, MNIST1D)
        ),
        "the noisy-labels designs (the bases of the map)",
    )
    map_datasets: tuple[str, ...] = param(
        DATASETS, "data sets of the confounder map (empty: no map)", choices=DATASETS, min_items=0
    )
    map_seeds: int = param(4, "seeds of each cell of the confounder map", low=2)
    map_stop: tuple[str | int, ...] = param(
        ("last",), "teacher stop rules of the map (the base stops at val)", choices=("val", "last"), low=0
    )
    map_temperature: tuple[float, ...] = param((4.0,), "temperatures τ of the map", above=0)
    map_noise: tuple[float, ...] = param((0.1, 0.45), "label-noise rates η of the map", low=0, below=1)
    map_budget: tuple[float, ...] = param(
        (0.1,), "student budgets of the map (fractions of the base budget)", above=0, high=1
    )

    def __post_init__(self) -> None:
        # O2 is decided in the paper blocks at each o2 temperature, and at f = O2_FRACTION in every block
        if missing := [t for t in self.o2_temperatures if t not in self.temperatures]:
            raise _config.ConfigError(
                f"o2_temperatures must be among temperatures {self.temperatures} (O2 is decided in the paper "
                f"regime), got {self.o2_temperatures} ({', '.join(f'{t:g}' for t in missing)} not trained)"
            )
        for d in self.designs:
            if d.switch_fractions and O2_FRACTION not in d.switch_fractions:
                raise _config.ConfigError(
                    f"designs.{d.dataset}.switch_fractions must contain the O2 fraction {O2_FRACTION:g} "
                    f"(or be empty: no late switch), got {d.switch_fractions}"
                )


#: the quick (smoke) suite: tiny sizes, 2 seeds, paper and compression on the mixture (compression:
#: 20-64-3 → 20-16-3), noisy-labels on the mixture and MNIST-1D, τ = 1, no map — few compiled programs.
_TINY_MIX = Design(n=200, n_test=1000, validation=100, teacher_t=200, student_t=200, gradient_points=200,
                   switch_fractions=(O2_FRACTION,), points=16, reverse=False)  # fmt: skip
_TINY_M1D = Design(dataset="mnist1d", n=300, n_test=500, validation=100, label_noise=0.2, hidden=(32,),
                   learning_rate=0.01, momentum=0.9, batch_size=50, teacher_t=200, student_t=200,
                   gradient_points=100, switch_fractions=(O2_FRACTION,), points=16, reverse=False)  # fmt: skip
QUICK = Suite(
    first_seed=0,
    paper=(Design(**{**_TINY_MIX.__dict__, **_PAPER}),),
    paper_seeds=2,
    temperatures=(1.0,),
    o2_temperatures=(1.0,),
    compression=(
        Design(**{**_TINY_MIX.__dict__, **_PAPER, "regime": "compression", "teacher_hidden": (64,), "hidden": (16,)}),
    ),  # fmt: skip
    compression_seeds=2,
    compression_temperatures=(1.0,),
    seeds=2,
    designs=(_TINY_MIX, _TINY_M1D),
    map_datasets=(),
    map_seeds=2,
    map_stop=("last",),
    map_temperature=(2.0,),
    map_noise=(0.1,),
    map_budget=(0.5,),
)
