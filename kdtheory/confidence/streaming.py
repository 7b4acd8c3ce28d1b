r"""The per-point pass of a confidence analysis, one row block at a time (memory O(n), not O(n·k)).

For each row block of the teacher, the student and (optionally) a control, read in lockstep from
memory or ``.npy`` files (:mod:`kdtheory.confidence.inputs`): the checks of the stated kind, each
model's top-1 class and top-1 probability, the reference class ``c`` (teacher's top-1, the label,
or the control's top-1), each model's logit confidence ``φ = log p_c − log(1 − p_c)`` and ``p_c``,
and ``KL(teacher ‖ student)`` per point; with a control, also each model's φ of the control's
top-1 class (the cross-selected check). Only these ``(n,)`` vectors are kept. Blocks are
processed by a pool of threads (numpy releases the GIL inside its loops), each with its own
reused buffers; the result does not depend on the number of threads.

**Logits** are processed in their own precision: float32 (and float16, widened to float32) in
float32 arithmetic, float64 and integers in float64; sums over classes are numpy's pairwise sums
in that precision (relative error about ``eps · log₂ k``). With ``m = max_j z_j`` and
``e_j = exp(z_j − m)``:

* ``φ = (z_c − m) − log Σ_{j≠c} e_j`` — the sum leaves ``c`` out (no cancellation when ``p_c``
  is near 1). Rows where that sum falls below ``2²⁴ ×`` the smallest normal number of the
  working precision (the other classes underflow) are recomputed exactly in float64 as
  ``z_c − logsumexp_{j≠c} z_j``;
* ``log Z = m + log Σ_j e_j``, ``p_top = 1 / Σ_j e_j``, ``p_c = sigmoid(φ)``;
* ``KL(t ‖ s) = Σ_j p_t,j (z_t,j − z_s,j) − log Z_t + log Z_s`` (``Σ p_t = 1``), which is 0 for
  identical logits and within about ``10 · eps · max |z|`` of the float64 value otherwise
  (float32: ``eps = 6e-8``); tests/test_confidence_streaming.py bounds φ and KL from float32
  against a float64 oracle.

**Probabilities** are widened to float64: ``φ = log max(p_c, ε) − log max(Σ_{j≠c} p_j, ε)``
(clipped where a probability is exactly 0 or 1, and counted), ``KL = Σ rel_entr(p̂_t, p̂_s)`` of
the rows normalized to sum to one.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import threading
from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, logsumexp, rel_entr

from kdtheory._checks import choice
from kdtheory.confidence.inputs import (
    KINDS,
    BlockChecker,
    PredictionSource,
    count,
    integer_labels,
    open_interval,
    open_predictions,
)

__all__ = ["LogitConfidence", "PointConfidences", "logit_confidence", "point_confidences"]

REFERENCES = ("teacher_top1", "label", "control_top1")

READ_ROWS_FACTOR = 8
"""Each thread reads this many compute blocks of rows at once per file (8 × 1 MB of float32): large
reads keep a disk streaming; the compute then runs block by block on data in the cache."""


class LogitConfidence(NamedTuple):
    """Per-point confidence in a reference class, from :func:`logit_confidence`.

    Attributes:
      prob: probability of the reference class, ``(n,)``.
      logit: logit confidence ``φ = log(p_c / (1 − p_c))``, ``(n,)``; finite.
      clipped: ``(n,)`` bool, where φ was clipped because a probability was below ``eps``
        (probability input only; all ``False`` for logits).
    """

    prob: np.ndarray
    logit: np.ndarray
    clipped: np.ndarray


class PointConfidences(NamedTuple):
    """The per-point quantities of :func:`point_confidences`, all ``(n,)``.

    Attributes:
      classes: the reference class of each point.
      teacher: the teacher's :class:`LogitConfidence` of the reference class.
      student: the student's.
      control: the control's (``None`` without a control).
      kl: ``KL(teacher ‖ student)`` per point, nats (``+inf`` where the student gives 0 to a class
        the teacher supports; probabilities only).
      top_teacher: the teacher's top-1 class.
      top_student: the student's top-1 class.
      pmax_teacher: the teacher's top-1 probability.
      pmax_student: the student's top-1 probability.
      cross: with a control, the φ of the **control's** top-1 class for the teacher, the student
        and the control (the cross-selected check of :mod:`kdtheory.deviation`); ``None``
        without a control.
      cross_clipped: the three ``(n,)`` bool masks of where those cross-selected φ were clipped
        (as :attr:`LogitConfidence.clipped`); ``None`` without a control.
    """

    classes: np.ndarray
    teacher: LogitConfidence
    student: LogitConfidence
    control: LogitConfidence | None
    kl: np.ndarray
    top_teacher: np.ndarray
    top_student: np.ndarray
    pmax_teacher: np.ndarray
    pmax_student: np.ndarray
    cross: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    cross_clipped: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


class _Block(NamedTuple):
    """One model's quantities on one row block."""

    top: np.ndarray
    pmax: np.ndarray
    phi: np.ndarray
    prob: np.ndarray
    clipped: np.ndarray
    z: np.ndarray  # logits in working precision, or normalized probabilities (float64)
    e: np.ndarray | None  # exp(z − m), logits only
    total: np.ndarray | None  # Σ_j e_j (float64), logits only
    lse: np.ndarray | None  # log Z (float64), logits only
    rest_top: np.ndarray | None = None  # Σ_{j≠top} e_j (logits) or p_j (probabilities), float64
    m: np.ndarray | None = None  # max_j z_j (float64), logits only
    raw: np.ndarray | None = None  # the probabilities as given (float64), probabilities only


def _working(b: np.ndarray) -> np.ndarray:
    """Logits in their working precision: float32 for float32/float16, float64 otherwise (no copy if already)."""
    if b.dtype in (np.float32, np.float16):
        return b.astype(np.float32, copy=False)
    return b.astype(np.float64, copy=False)


class _Scratch(threading.local):
    """Per-thread reusable block buffers (no page faults from a fresh allocation per block)."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, np.dtype, int], np.ndarray] = {}

    def get(self, key: str, shape: tuple[int, int], dtype: np.dtype | type) -> np.ndarray:
        dt = np.dtype(dtype)
        buf = self.buffers.get((key, dt, shape[1]))
        if buf is None or buf.shape[0] < shape[0]:
            buf = self.buffers[(key, dt, shape[1])] = np.empty(shape, dt)
        return buf[: shape[0]]


def _logit_block(b: np.ndarray, cls: np.ndarray | None, e: np.ndarray | None = None) -> _Block:
    z = _working(b)
    n = z.shape[0]
    rows = np.arange(n)
    top = z.argmax(axis=1)
    m = z[rows, top]
    e = np.subtract(z, m[:, None], out=None if e is None or e.dtype != z.dtype else e)
    np.exp(e, out=e)
    e[rows, top] = 0
    rest_top = e.sum(axis=1).astype(np.float64)  # Σ_{j≠top} e_j: pairwise summation in the working precision
    e[rows, top] = 1  # exp(0)
    total = rest_top + 1.0
    m64 = m.astype(np.float64)
    none = np.zeros(0)
    blk = _Block(top, 1.0 / total, none, none, none, z, e, total, m64 + np.log(total), rest_top, m64, None)
    return _with_class(blk, top if cls is None else cls, "logits", 0.0)


def _prob_block(b: np.ndarray, cls: np.ndarray | None, eps: float) -> _Block:
    p = b.astype(np.float64)  # a private copy
    n = p.shape[0]
    rows = np.arange(n)
    top = p.argmax(axis=1)
    sums = p.sum(axis=1)
    p_top = p[rows, top].copy()
    p[rows, top] = 0.0
    rest_top = p.sum(axis=1)
    p[rows, top] = p_top
    pn = p / sums[:, None]  # rows sum to one within round-off (validated): normalize so that KL >= 0
    none = np.zeros(0)
    blk = _Block(top, pn[rows, top], none, none, none, pn, None, None, None, rest_top, None, p)
    return _with_class(blk, top if cls is None else cls, "probabilities", eps)


def _class_confidence(blk: _Block, c: np.ndarray, kind: str, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(φ, p_c, clipped)`` of class ``c[i]`` per row of a computed block.

    ``Σ_{j≠c}`` is the exact sum without the top class when ``c`` is the top class, and
    ``Σ_{j≠top} + (top − c)`` otherwise — at least the top class's term, so no cancellation.
    """
    rows = np.arange(c.size)
    is_top = c == blk.top
    assert blk.rest_top is not None
    if kind == "logits":
        assert blk.e is not None and blk.m is not None
        ec = blk.e[rows, c].astype(np.float64)
        rest = np.where(is_top, blk.rest_top, blk.rest_top + (1.0 - ec))
        zc = blk.z[rows, c].astype(np.float64)
        floor = float(np.finfo(blk.z.dtype).tiny) * 2.0**24
        with np.errstate(divide="ignore"):
            phi = zc - blk.m - np.log(rest)
        small = rest < floor  # the other classes underflow: exact in float64
        if small.any():
            idx = np.flatnonzero(small)
            exact = blk.z[idx].astype(np.float64)
            exact[np.arange(idx.size), c[idx]] = -np.inf
            phi[idx] = zc[idx] - logsumexp(exact, axis=1)
        return phi, expit(phi), np.zeros(c.size, bool)
    assert blk.raw is not None
    pc = blk.raw[rows, c]
    rest = np.where(is_top, blk.rest_top, blk.rest_top + (blk.raw[rows, blk.top] - pc))
    clipped = (pc < eps) | (rest < eps)
    phi = np.log(np.maximum(pc, eps)) - np.log(np.maximum(rest, eps))
    return phi, pc, clipped


def _with_class(blk: _Block, c: np.ndarray, kind: str, eps: float) -> _Block:
    phi, prob, clipped = _class_confidence(blk, c, kind, eps)
    return blk._replace(phi=phi, prob=prob, clipped=clipped)


def _model_block(b: np.ndarray, cls: np.ndarray | None, kind: str, eps: float, e: np.ndarray | None = None) -> _Block:
    return _logit_block(b, cls, e) if kind == "logits" else _prob_block(b, cls, eps)


def _kl_block(t: _Block, s: _Block, kind: str, d: np.ndarray | None = None) -> np.ndarray:
    if kind == "logits":
        assert t.e is not None and t.total is not None and t.lse is not None and s.lse is not None
        same = d is not None and t.z.dtype == s.z.dtype == d.dtype
        d = np.subtract(t.z, s.z, out=d if same else None)
        weighted = np.einsum("ij,ij->i", t.e, d)  # Σ_j e_j (z_t,j − z_s,j), fused: no temporary
        kl: np.ndarray = weighted.astype(np.float64) / t.total - t.lse + s.lse
        return kl
    kl_probs: np.ndarray = np.sum(rel_entr(t.z, s.z), axis=1)
    return kl_probs


def logit_confidence(
    x: ArrayLike, classes: ArrayLike, *, kind: Literal["logits", "probabilities"], eps: float = 1e-12
) -> LogitConfidence:
    r"""Probability and logit confidence ``φ`` of class ``classes[i]`` in each row of ``x``.

    From logits: ``φ = z_c − logsumexp_{j≠c} z_j`` and ``p_c = sigmoid(φ)`` — exact and finite
    (computed as in the module docstring, in the logits' own precision). From probabilities:
    ``φ = log max(p_c, ε) − log max(Σ_{j≠c} p_j, ε)`` (the rest is summed directly, so no
    cancellation near ``p_c = 1``); ``clipped`` marks the rows where the ``max`` changed a value
    (a probability of exactly 0 or 1 gives φ = ±∞ otherwise).

    Args:
      x: logits or probabilities, ``(n, k)``, an array, a memory map or a ``.npy`` path; checked
        as by :func:`kdtheory.confidence.validate_predictions`.
      classes: the reference class per row, integers in ``[0, k)``, shape ``(n,)``.
      kind: ``"logits"`` or ``"probabilities"``.
      eps: clipping level for probabilities, in ``(0, 0.5)``.

    Returns:
      :class:`LogitConfidence` ``(prob, logit, clipped)``.

    Raises:
      ValueError: malformed ``x``, ``classes`` or ``eps``, naming the argument.
    """
    choice(kind, "kind", KINDS)
    src = open_predictions(x, "x")
    n, k = src.shape
    cls = integer_labels(classes, n, k, "classes")
    eps = open_interval(eps, "eps", 0.0, 0.5)
    checker = BlockChecker(src.name, kind, k, src.dtype)
    prob, phi, clipped = np.empty(n), np.empty(n), np.zeros(n, bool)
    for start, b in src.blocks():
        checker.check(start, b)
        sl = slice(start, start + b.shape[0])
        r = _model_block(b, cls[sl], kind, eps)
        prob[sl], phi[sl], clipped[sl] = r.prob, r.phi, r.clipped
    checker.finish()
    return LogitConfidence(prob, phi, clipped)


def _threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def _run(block: Callable[..., None], start: int, *, readers: list[Callable[..., np.ndarray]]) -> None:
    block(start, readers)


def point_confidences(
    teacher: ArrayLike | PredictionSource,
    student: ArrayLike | PredictionSource,
    control: ArrayLike | PredictionSource | None = None,
    *,
    kind: Literal["logits", "probabilities"],
    labels: np.ndarray | None = None,
    reference: Literal["teacher_top1", "label", "control_top1"] = "teacher_top1",
    eps: float = 1e-12,
    threads: int | None = None,
) -> PointConfidences:
    """One pass over the row blocks of two or three models: checks, φ of the reference class, KL, top-1s.

    The sources are read block by block (module docstring), each block of rows by one thread;
    working memory is a few blocks per thread plus the ``(n,)`` results.

    Args:
      teacher: the teacher's predictions, ``(n, k)``: an array, a memory map, a ``.npy`` path or
        a :class:`~kdtheory.confidence.inputs.PredictionSource` (names its messages).
      student: the student's, same shape and kind.
      control: the control's (e.g. a replica of the teacher's recipe), same shape; ``None`` for none.
      kind: ``"logits"`` or ``"probabilities"``, for all.
      labels: the true classes as int64 ``(n,)`` in ``[0, k)`` (needed for ``reference="label"``).
      reference: the class φ is of: ``"teacher_top1"``, ``"label"`` or ``"control_top1"``.
      eps: the clipping level for probabilities, in ``(0, 0.5)``.
      threads: threads that process blocks at once (numpy releases the GIL in its loops);
        default: the CPUs this process may use, at most 8. The result does not depend on it.

    Returns:
      :class:`PointConfidences`.

    Raises:
      ValueError: malformed predictions (naming the array or file, the row and what was seen),
        shapes that differ, or a reference needing what is missing.
    """
    choice(kind, "kind", KINDS)
    choice(reference, "reference", REFERENCES)
    eps = open_interval(eps, "eps", 0.0, 0.5)
    srcs = [open_predictions(teacher, "teacher"), open_predictions(student, "student")]
    if control is not None:
        srcs.append(open_predictions(control, "control"))
    shape = srcs[0].shape
    for src in srcs[1:]:
        if src.shape != shape:
            raise ValueError(f"{srcs[0].name} has shape {shape} but {src.name} has shape {src.shape}; they must match")
    n, k = shape
    if reference == "label" and labels is None:
        raise ValueError("reference='label' needs labels y")
    if reference == "control_top1" and control is None:
        raise ValueError("reference='control_top1' needs a control")
    if labels is not None:
        labels = integer_labels(labels, n, k, "labels")
    checkers = [BlockChecker(src.name, kind, k, src.dtype) for src in srcs]
    cls, top_t, top_s = (np.empty(n, np.int64) for _ in range(3))
    kl, pmax_t, pmax_s = (np.empty(n) for _ in range(3))
    conf = [(np.empty(n), np.empty(n), np.zeros(n, bool)) for _ in srcs]
    cross = [np.empty(n) for _ in srcs] if len(srcs) == 3 else []
    cross_clip = [np.zeros(n, bool) for _ in cross]
    rows = min(src.rows_per_block for src in srcs)  # rows computed at once (cache-sized)
    span = rows * max(1, READ_ROWS_FACTOR)  # rows read at once per file (one preadv each)

    scratch = _Scratch()
    work = np.float32 if all(src.dtype in (np.float32, np.float16) for src in srcs) else np.float64

    workers = _threads() if threads is None else count(threads, "threads", minimum=1)
    ahead = workers * span  # the next span no thread has asked for yet: its reading starts now

    def block(begin: int, readers: list[Callable[..., np.ndarray]]) -> None:
        end = min(n, begin + span)
        chunks = [read(begin, end, scratch.get(f"in{i}", (span, k), src.dtype), (begin + ahead, end + ahead))
                  for i, (read, src) in enumerate(zip(readers, srcs, strict=True))]  # fmt: skip
        for start in range(begin, end, rows):
            stop = min(end, start + rows)
            data = [chunk[start - begin : stop - begin] for chunk in chunks]
            _compute(start, stop, data)

    def _compute(start: int, stop: int, data: list[np.ndarray]) -> None:
        shape = (rows, k)
        e_bufs = [scratch.get(f"e{i}", shape, work)[: stop - start] for i in range(len(srcs))]
        for chk, blk in zip(checkers, data, strict=True):
            chk.check(start, blk)
        sl = slice(start, stop)
        given = None if labels is None or reference != "label" else labels[sl]
        if reference == "control_top1":
            ctl = _model_block(data[2], None, kind, eps, e_bufs[2])
            c = ctl.top
            t = _model_block(data[0], c, kind, eps, e_bufs[0])
        else:
            t = _model_block(data[0], given, kind, eps, e_bufs[0])
            c = t.top if given is None else given
        s = _model_block(data[1], c, kind, eps, e_bufs[1])
        out = [t, s]
        if len(data) == 3:
            out.append(ctl if reference == "control_top1" else _model_block(data[2], c, kind, eps, e_bufs[2]))
        cls[sl], kl[sl] = c, _kl_block(t, s, kind, scratch.get("d", shape, work)[: stop - start])
        top_t[sl], top_s[sl], pmax_t[sl], pmax_s[sl] = t.top, s.top, t.pmax, s.pmax
        if cross:
            for dest, dclip, r in zip(cross, cross_clip, out, strict=True):
                if reference == "control_top1":
                    dest[sl], dclip[sl] = r.phi, r.clipped
                else:
                    dest[sl], _, dclip[sl] = _class_confidence(r, out[2].top, kind, eps)
        for (prob, phi, clip), r in zip(conf, out, strict=True):
            prob[sl], phi[sl], clip[sl] = r.prob, r.phi, r.clipped

    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(src.reader()) for src in srcs]
        starts = range(0, n, span)
        if workers == 1 or len(starts) == 1:
            for start in starts:
                block(start, readers)
        else:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                # in order: the first failing block (lowest rows) raises first, as in one thread
                for _ in pool.map(functools.partial(_run, block, readers=readers), starts):
                    pass
    for chk in checkers:
        chk.finish()
    lc = [LogitConfidence(*x) for x in conf]
    return PointConfidences(
        cls, lc[0], lc[1], lc[2] if len(lc) == 3 else None, kl, top_t, top_s, pmax_t, pmax_s,
        (cross[0], cross[1], cross[2]) if cross else None,
        (cross_clip[0], cross_clip[1], cross_clip[2]) if cross else None,
    )  # fmt: skip
