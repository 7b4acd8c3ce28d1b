r"""The arms of the paired design: what each training run is (:class:`RunSpec`) and its record.

Per seed ``s`` and :class:`~kdtheory.experiments.design.Design` (docs/theory.md §8; the replica: §11):

* **teacher** — one-hot labels, the teacher's architecture (``teacher_hidden``), budget
  ``teacher_t`` and stop rule ``teacher_stop``; initialization and minibatch order ``1000 + s``;
* **replica** — the teacher's recipe field by field (architecture, loss, optimizer, budget, stop
  rule, recorded checkpoints) from *another* initialization (``4000 + s``) with the student's
  minibatch order (``3000 + s``): the control of every student-vs-teacher comparison (it has the
  teacher's regression-to-the-mean bias, the student's randomness, and no teacher);
* from one initialization ``2000 + s``, the student's architecture, budget ``student_t``, stop at
  the end of the budget, minibatch order ``3000 + s``: the distilled **student** (teacher weight 1
  at τ), its one-hot **twin** (weight 0 — a second control), the **late** switches (one-hot until
  ``f · student_t``, then the teacher) and the **reverse** switches (teacher first).

Loss: softmax cross-entropy with ``normalization="mean"``; distillation ``τ² CE(f/τ, softmax(z/τ))``
on the teacher's logits ``z`` at its stop checkpoint (:class:`kdtheory.simulate.Loss`).

Every run is cached within the process, keyed on its :class:`RunSpec` and the data it sees: the
teacher, the replica and the twin are shared by every τ and switch of a design, and O1, O2 and T2
read the same runs. :func:`fetch_many` trains the missing runs of a seed in as few batched programs as
possible (:func:`kdtheory.simulate.train_batch`, through :func:`_train`, the one place the engine
is called).
"""

from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np

from kdtheory import data as _data
from kdtheory.experiments.design import Design, _data_key, load

if TYPE_CHECKING:
    import jax

    from kdtheory.simulate import Loss, Model, Optimizer

__all__ = ["RunSpec", "OneHotRun", "Arm", "teacher_spec", "replica_spec", "arm_spec", "teacher_run",
           "replica_run", "arm_run", "fetch", "fetch_many", "clear_cache", "stop_index", "gradient_checkpoints",
           "CACHE_RUNS"]  # fmt: skip

#: the seed offsets of the runs (per seed ``s``): teacher, student-side initialization, the
#: student's minibatch order, the replica's initialization.
TEACHER_SEED, STUDENT_INIT, STUDENT_ORDER, REPLICA_INIT = 1000, 2000, 3000, 4000


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one training run given its data (hashable: it keys the run cache).

    Attributes:
      sizes: the MLP's layer widths ``(d, h_1, …, k)``.
      learning_rate, momentum, batch_size: the optimizer (``batch_size=None``: full batch).
      schedule: the learning-rate schedule, ``"constant"`` or ``"cosine"`` (decay to 0 over ``budget``).
      budget: the number of updates.
      points: recorded checkpoints (geometric, with 0 and the budget).
      stop: which checkpoint is the run's model: ``"val"`` (first maximum of validation accuracy),
        ``"last"`` or a step (the first recorded checkpoint at or after it).
      temperature: τ of the distillation term.
      teacher_weight: the teacher's weight at the start (0: one-hot labels).
      teacher_weight_after: the teacher's weight from ``switch_t`` on (``None``: no switch).
      switch_t: the step of the switch (``None``: no switch).
      init_seed: the initialization's PRNG seed.
      order_seed: the seed of the per-epoch minibatch permutations.
    """

    sizes: tuple[int, ...]
    learning_rate: float
    momentum: float
    batch_size: int | None
    schedule: str
    budget: int
    points: int
    stop: str | int
    temperature: float = 1.0
    teacher_weight: float = 0.0
    teacher_weight_after: float | None = None
    switch_t: int | None = None
    init_seed: int = 0
    order_seed: int = 0


class OneHotRun(NamedTuple):
    """A one-hot run that plays the teacher or the replica.

    Attributes:
      t: recorded steps ``(C,)``.
      stop: index of the checkpoint that is the model (its spec's stop rule).
      train: training logits at the stop ``(n, k)``.
      test: test logits at the stop ``(n_test, k)``.
      val_accuracy: validation accuracy (against the validation labels, noisy when η > 0) ``(C,)``.
      test_accuracy: clean test accuracy ``(C,)``.
      train_accuracy: accuracy on the training labels ``(C,)``.
      train_path: training logits at every checkpoint ``(C, n, k)`` (teachers only; else ``None``).
    """

    t: np.ndarray
    stop: int
    train: np.ndarray
    test: np.ndarray
    val_accuracy: np.ndarray
    test_accuracy: np.ndarray
    train_accuracy: np.ndarray
    train_path: np.ndarray | None


class Arm(NamedTuple):
    """One student-side run (compact).

    Attributes:
      t: recorded steps ``(C,)``.
      train: final training logits ``(n, k)``.
      test: final test logits ``(n_test, k)``.
      val_accuracy: validation accuracy at each step ``(C,)``.
      test_accuracy: clean test accuracy at each step ``(C,)``.
      params: flat parameters at the checkpoints :func:`gradient_checkpoints` picks ``(4, P)``.
      params_t: the steps of ``params`` ``(4,)``.
    """

    t: np.ndarray
    train: np.ndarray
    test: np.ndarray
    val_accuracy: np.ndarray
    test_accuracy: np.ndarray
    params: np.ndarray
    params_t: np.ndarray


def gradient_checkpoints(C: int) -> list[int]:
    """The checkpoints (of ``C``) whose parameters an arm keeps for T2: 0, C/2, 3C/4 and the last.

    Args:
      C: the number of recorded checkpoints.

    Returns:
      Sorted distinct indices.
    """
    return sorted({0, C // 2, 3 * C // 4, C - 1})


def _dims(design: Design, seed: int) -> tuple[int, int]:
    data = load(design, seed)
    return data.X.shape[1], data.Y.shape[1]


def teacher_spec(design: Design, seed: int) -> RunSpec:
    """The teacher's run: one-hot, the teacher's architecture, budget and stop rule.

    Args:
      design: the :class:`~kdtheory.experiments.design.Design`.
      seed: the seed ``s`` (initialization and minibatch order ``1000 + s``).

    Returns:
      The :class:`RunSpec`.
    """
    d, k = _dims(design, seed)
    return RunSpec(
        (d, *design.teacher_widths, k), design.learning_rate, design.momentum, design.batch_size, design.schedule,
        design.teacher_t, design.points, design.teacher_stop, init_seed=TEACHER_SEED + seed,
        order_seed=TEACHER_SEED + seed,
    )  # fmt: skip


def replica_spec(design: Design, seed: int) -> RunSpec:
    """The replica: the teacher's spec with another initialization and the student's minibatch order.

    Args:
      design: the :class:`~kdtheory.experiments.design.Design`.
      seed: the seed ``s`` (initialization ``4000 + s``, minibatch order ``3000 + s``).

    Returns:
      The :class:`RunSpec` (equal to :func:`teacher_spec`'s but for the two seeds).
    """
    return dataclasses.replace(
        teacher_spec(design, seed), init_seed=REPLICA_INIT + seed, order_seed=STUDENT_ORDER + seed
    )


def arm_spec(design: Design, arm: str, seed: int) -> RunSpec:
    """A student-side arm: the student's architecture and budget, stopped at the end of the budget.

    Args:
      design: the :class:`~kdtheory.experiments.design.Design`.
      arm: ``"student"``, ``"twin"``, ``"late:f"`` or ``"reverse:f"``.
      seed: the seed ``s`` (initialization ``2000 + s``, minibatch order ``3000 + s``).

    Returns:
      The :class:`RunSpec`.

    Raises:
      ValueError: an unknown arm.
    """
    d, k = _dims(design, seed)
    base = RunSpec(
        (d, *design.hidden, k), design.learning_rate, design.momentum, design.batch_size, design.schedule,
        design.student_t, design.points, "last", init_seed=STUDENT_INIT + seed, order_seed=STUDENT_ORDER + seed,
    )  # fmt: skip
    if arm == "twin":
        return base
    if arm == "student":
        return dataclasses.replace(base, temperature=design.temperature, teacher_weight=1.0)
    kind, _, f = arm.partition(":")
    if kind not in ("late", "reverse") or not f:
        raise ValueError(f"arm must be 'student', 'twin', 'replica', 'late:f' or 'reverse:f', got {arm!r}")
    s = int(round(float(f) * design.student_t))
    w0, w1 = (0.0, 1.0) if kind == "late" else (1.0, 0.0)
    return dataclasses.replace(
        base, temperature=design.temperature, teacher_weight=w0, teacher_weight_after=w1, switch_t=s
    )


@functools.lru_cache(maxsize=8)
def _model(sizes: tuple[int, ...]) -> Model:
    from kdtheory.simulate import mlp

    return mlp(list(sizes))  # one object per architecture: the engine's compiled loops are reused


def _flat(params: Any) -> jax.Array:
    from jax.flatten_util import ravel_pytree

    return ravel_pytree(params)[0]


def _steps(budget: int, points: int) -> np.ndarray:
    # simulate.log_steps: the same checkpoints as before for points >= 3, and the whole budget for any points
    from kdtheory.simulate import log_steps

    return log_steps(budget, points, "budget")


def stop_index(stop: str | int, t: np.ndarray, val_accuracy: np.ndarray) -> int:
    """The checkpoint a stop rule picks: validation argmax (the earliest), the last, or a step.

    Args:
      stop: ``"val"``, ``"last"`` or a step.
      t: recorded steps ``(C,)``.
      val_accuracy: validation accuracy at each checkpoint ``(C,)``.

    Returns:
      An index into ``t``.
    """
    if stop == "val":
        return int(np.argmax(val_accuracy))  # argmax returns the first maximum: the earliest
    if stop == "last":
        return len(t) - 1
    return int(min(int(np.searchsorted(t, stop)), len(t) - 1))


def _optimizer(spec: RunSpec) -> Optimizer:
    from kdtheory import schedules
    from kdtheory.simulate import Optimizer

    sched = schedules.cosine(spec.budget) if spec.schedule == "cosine" else schedules.constant()
    return Optimizer(learning_rate=spec.learning_rate, momentum=spec.momentum, batch_size=spec.batch_size,
                     schedule=sched)  # fmt: skip


def _loss(spec: RunSpec) -> Loss:
    from kdtheory.simulate import Loss

    return Loss(
        "ce", normalization="mean", temperature=spec.temperature, teacher_weight=spec.teacher_weight,
        teacher_weight_after=spec.teacher_weight_after, switch_t=spec.switch_t,
    )  # fmt: skip


def _batchable(spec: RunSpec) -> tuple[tuple[int, ...], int, int, int | None]:
    """Runs with equal keys train in one compiled batch: architecture, budget, checkpoints, batch size."""
    return (spec.sizes, spec.budget, spec.points, spec.batch_size)


#: one trained run as :func:`_train` returns it: ``(t, outputs on [val; test], train outputs, flat parameters)``.
_Result = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _recorded(a: np.ndarray | None, what: str) -> np.ndarray:
    """``a``, which :func:`_train` always asks the engine to record (t, X_test and project are given)."""
    if a is None:
        raise RuntimeError(f"train_batch recorded no {what}")
    return a


def _train(specs: list[RunSpec], data: _data.Classification, teachers: list[np.ndarray | None]) -> list[_Result]:
    """The one place runs meet the engine: one batch of runs that share :func:`_batchable`'s key.

    Returns per run ``(t, outputs on [val; test] (C, m + n_test, k), train outputs (C, n, k),
    flat parameters (C, P))``.
    """
    import jax

    from kdtheory.simulate import Run, train_batch

    model = _model(specs[0].sizes)
    runs = [
        Run(init_seed=s.init_seed, order_seed=s.order_seed, loss=_loss(s), optimizer=_optimizer(s), teacher=tt,
            params=model.init(jax.random.PRNGKey(s.init_seed)))
        for s, tt in zip(specs, teachers, strict=True)
    ]  # fmt: skip
    trajs = train_batch(
        model, data.X, data.Y, runs, t=_steps(specs[0].budget, specs[0].points),
        X_test=np.r_[data.X_val, data.X_test], project=_flat,
    )  # fmt: skip
    for s, tr in zip(specs, trajs, strict=True):
        if (tr.solver or {}).get("status", "ok") != "ok":
            raise FloatingPointError(f"run {s} diverged: {tr.solver}")
    return [
        (_recorded(tr.t, "steps"), _recorded(tr.test, "test outputs"), tr.train, _recorded(tr.projection, "parameters"))
        for tr in trajs
    ]


def _validation(data: _data.Classification) -> tuple[np.ndarray, np.ndarray]:
    """``(X_val, Y_val)``, which every loader of a design sets (``m = 0`` rows when none was asked for)."""
    if data.X_val is None or data.Y_val is None:
        raise ValueError("a design's data must have a validation split")
    return data.X_val, data.Y_val


def _accuracies(outputs: np.ndarray, data: _data.Classification) -> tuple[np.ndarray, np.ndarray]:
    X_val, Y_val = _validation(data)
    m = X_val.shape[0]
    pred = outputs.argmax(-1)
    return np.mean(pred[:, :m] == Y_val.argmax(1), axis=1), np.mean(pred[:, m:] == data.Y_test.argmax(1), axis=1)


#: the most runs kept in memory (least recently used dropped first; a run is at most a few MB).
CACHE_RUNS = 1500

#: a run's cache key: ``("one-hot", spec, data key, seed)`` or ``("arm", spec, data key, seed, teacher spec)``.
_Key = tuple[Any, ...]

#: a request of :func:`fetch_many`: ``(cache key, spec, teacher spec or None, role)``.
_Request = tuple[_Key, RunSpec, RunSpec | None, str]

_RUNS: OrderedDict[_Key, OneHotRun | Arm] = OrderedDict()


def _remember(key: _Key, run: OneHotRun | Arm) -> None:
    _RUNS[key] = run
    _RUNS.move_to_end(key)
    while len(_RUNS) > CACHE_RUNS:
        _RUNS.popitem(last=False)


def clear_cache() -> None:
    """Forget every cached run (the next request trains again)."""
    _RUNS.clear()


def _one_hot_record(spec: RunSpec, data: _data.Classification, result: _Result, path: bool) -> OneHotRun:
    t, out, train, _ = result
    val, test = _accuracies(out, data)
    i = stop_index(spec.stop, t, val)
    m = _validation(data)[0].shape[0]
    train_acc = np.mean(train.argmax(-1) == data.Y.argmax(1), axis=1)
    return OneHotRun(t, i, train[i].copy(), out[i, m:].copy(), val, test, train_acc, train.copy() if path else None)


def _arm_record(data: _data.Classification, result: _Result) -> Arm:
    t, out, train, proj = result
    val, test = _accuracies(out, data)
    keep = gradient_checkpoints(len(t))
    m = _validation(data)[0].shape[0]
    return Arm(t, train[-1].copy(), out[-1, m:].copy(), val, test, np.asarray(proj)[keep].copy(), t[keep].copy())


def _request(design: Design, name: str, seed: int) -> _Request:
    """``(cache key, spec, teacher spec or None, role)`` of run ``name`` of ``design`` at ``seed``."""
    dkey = _data_key(design)
    if name in ("teacher", "replica"):
        spec = teacher_spec(design, seed) if name == "teacher" else replica_spec(design, seed)
        return ("one-hot", spec, dkey, seed), spec, None, name
    spec = arm_spec(design, name, seed)
    tspec = None if spec.teacher_weight == 0 and spec.teacher_weight_after is None else teacher_spec(design, seed)
    return ("arm", spec, dkey, seed, tspec), spec, tspec, "arm"


def fetch(design: Design, seed: int, names: list[str]) -> dict[str, OneHotRun | Arm]:
    """The runs ``names`` of ``design`` at ``seed``, training the missing ones in as few batches as possible.

    Args:
      design: the :class:`~kdtheory.experiments.design.Design`.
      seed: the seed.
      names: ``"teacher"``, ``"replica"``, ``"twin"``, ``"student"``, ``"late:f"``, ``"reverse:f"``.

    Returns:
      name -> :class:`OneHotRun` (teacher, replica) or :class:`Arm`.

    Raises:
      ValueError: an unknown name.
    """
    return {n: run for (_, n), run in zip([(design, n) for n in names], fetch_many(seed, [(design, n) for n in names]),
                                         strict=True)}  # fmt: skip


def fetch_many(seed: int, wanted: list[tuple[Design, str]]) -> list[OneHotRun | Arm]:
    """Runs of several designs at one seed (e.g. one design at several τ), batched together.

    Runs that do not need a teacher (teacher, replica, twin) train first, then those that do;
    within each phase, runs on the same data with equal architecture, budget, checkpoints and
    minibatch size share one batched program (:func:`kdtheory.simulate.train_batch`). Cached by
    spec and data.

    Args:
      seed: the seed.
      wanted: ``(design, name)`` pairs, names as :func:`fetch`.

    Returns:
      The runs, in the order of ``wanted``.

    Raises:
      ValueError: an unknown name.
    """
    seed = int(seed)
    reqs = [(d, _request(d, n, seed)) for d, n in wanted]
    for phase in (False, True):  # without the teacher, then with it
        todo = {r[0]: (d, r) for d, r in reqs if r[0] not in _RUNS and (r[2] is not None) == phase}
        if phase:  # their teachers first
            need = {(d, "teacher") for d, r in todo.values() if ("one-hot", r[2], r[0][2], seed) not in _RUNS}
            if need:
                fetch_many(seed, sorted(need, key=str))
        groups: dict[tuple[Any, ...], list[tuple[Design, _Request]]] = {}
        for d, r in todo.values():
            groups.setdefault((r[0][2], _batchable(r[1])), []).append((d, r))
        for group in groups.values():
            data = load(group[0][0], seed)
            teachers = [None if r[2] is None else _RUNS[("one-hot", r[2], r[0][2], seed)].train for _, r in group]
            results = _train([r[1] for _, r in group], data, teachers)
            for (_, r), res in zip(group, results, strict=True):
                rec = _arm_record(data, res) if r[3] == "arm" else _one_hot_record(r[1], data, res, r[3] == "teacher")
                _remember(r[0], rec)
    out = []
    for _, r in reqs:
        _RUNS.move_to_end(r[0])
        out.append(_RUNS[r[0]])
    return out


def teacher_run(design: Design, seed: int) -> OneHotRun:
    """The teacher of ``design`` at ``seed`` (cached; its training logits kept at every checkpoint).

    Args:
      design: the :class:`~kdtheory.experiments.design.Design`.
      seed: the seed.

    Returns:
      The :class:`OneHotRun`.
    """
    return cast(OneHotRun, fetch(design, seed, ["teacher"])["teacher"])


def replica_run(design: Design, seed: int) -> OneHotRun:
    """The replica of ``design``'s teacher at ``seed`` (cached).

    Args:
      design: the :class:`~kdtheory.experiments.design.Design`.
      seed: the seed.

    Returns:
      The :class:`OneHotRun` (no training path).
    """
    return cast(OneHotRun, fetch(design, seed, ["replica"])["replica"])


def arm_run(design: Design, arm: str, seed: int) -> Arm:
    """One student-side arm (cached: the twin is shared by every teacher, τ and switch).

    Args:
      design: the :class:`~kdtheory.experiments.design.Design`.
      arm: ``"student"``, ``"twin"``, ``"late:f"`` or ``"reverse:f"`` (``f`` a switch fraction).
      seed: the seed.

    Returns:
      The :class:`Arm`.

    Raises:
      ValueError: an unknown arm.
    """
    if arm in ("teacher", "replica"):
        raise ValueError(f"arm must be 'student', 'twin', 'late:f' or 'reverse:f', got {arm!r}")
    return cast(Arm, fetch(design, seed, [arm])[arm])
