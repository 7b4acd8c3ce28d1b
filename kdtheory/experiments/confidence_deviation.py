r"""Confidence deviations of a distilled student from its teacher, against a replica (claim O1).

The paper's comparison (Nagarajan et al. 2023; docs/theory.md §8, §11): per point, the logit
confidence ``φ = z_c − logsumexp_{j≠c} z_j`` of the **teacher's top-1 class** ``c``
(:func:`kdtheory.confidence.logit_confidence`; also reported with the label's class), student
against teacher around the X = Y line, on the **training** and the **test** split, separately.

Control: comparing any model with the teacher on the teacher's own argmax class and its least
confident points has a regression-to-the-mean (winner's-curse) bias — a second network trained
the same way also looks "less confident" there. The **replica** (the teacher's recipe field by
field from another initialization, with the student's minibatch order —
:func:`kdtheory.experiments.arms.replica_spec`) carries that bias and no teacher, so every effect is
``(student − teacher) − (replica − teacher)``. The one-hot **twin** (the student's initialization,
architecture and budget) is reported beside it, not decisive.

Effects per seed and their rules: :mod:`kdtheory.deviation` (the one implementation of the O1
rules, shared with ``kdtheory confidence``; fixed before the registered run). "Low" / "high" = the
10% of points with the lowest / highest teacher φ on that split; paired 95% t intervals over
seeds, in every block (regime × data set × τ) and split:

* **O1-underfit** (ICLR wording, "the student underfits points the teacher finds hard"): mean over
  the low points of ``Δφ(student − teacher) − Δφ(replica − teacher)``. Rule: < −0.1
  (:data:`kdtheory.deviation.TOLERANCE`, in log-odds).
* **O1-exaggerate** (NeurIPS wording, "the student exaggerates the teacher's confidence levels"):
  the least-squares slope of φ_student on φ_teacher minus the replica's (> 0) **and** the mean over
  the high points of ``Δφ(student − teacher) − Δφ(replica − teacher)`` (> 0). Supported when both
  are; not supported when either is not; inconclusive otherwise.
* **Cross-selected check** (reported beside): the groups and the reference class chosen by the
  replica's own φ and top-1 (so the teacher's selection biases do not enter), student against
  teacher directly — the same two rules.

The claim's verdict reads O1-underfit in the ``paper`` regime at τ = 1: *supported* when it is
supported on every data set on both splits; *not supported* when it is not supported on some data
set on either split; *inconclusive* otherwise. Every other cell (τ = 2, 4, ``compression``,
``noisy-labels``, the twin as control, the label's class, the confounder map) is decided by the
same rules and reported in the evidence table and the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from kdtheory import deviation
from kdtheory.experiments.design import QUICK, Suite
from kdtheory.experiments.effects import interval_text, mean_interval, tag
from kdtheory.experiments.harness import Experiment, Progress, finish, pyplot
from kdtheory.experiments.measures import CONTROLS, Block, blocks
from kdtheory.experiments.result import Outcome, Verdict
from kdtheory.stats import Effect, all_hold

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["EXPERIMENT", "figure", "measure", "o1_cells", "TOL"]

CLAIM = "The distilled student underfits the points its teacher finds hard (and exaggerates its confidence)"

#: the tolerance (log-odds) of O1-underfit, :data:`kdtheory.deviation.TOLERANCE`.
TOL = deviation.TOLERANCE
WORDS = {
    "replica": "replica: the teacher's recipe from another initialization, the student's minibatch order "
    "(paired by seed)",
    "twin": "one-hot twin: the student's initialization, architecture, budget and minibatch order (paired by seed)",
}


def _decided(block: Block, key: str, ctrl: str, label: str) -> dict[str, Effect]:
    return deviation.decide_o1([r[key] for r in block.rows], control=WORDS[ctrl], label=label)


def o1_cells(block: Block, ref: str = "top1") -> list[Effect]:
    """The O1 effects of one block: per split and control, O1-underfit and O1-exaggerate.

    Args:
      block: a :class:`~kdtheory.experiments.measures.Block`.
      ref: ``"top1"`` (φ of the teacher's top-1 class, groups by the teacher's φ; decisive),
        ``"label"`` (φ of the label's class) or ``"cross"`` (the cross-selected check: groups and
        class by the replica's own φ, student against teacher directly; replica only).

    Returns:
      Tagged effects (:func:`kdtheory.experiments.effects.tag`), split × control × (underfit,
      exaggerate); O1-exaggerate's estimate and interval are its slope part, the high-group part
      is in ``extra`` (``high_estimate``, ``high_ci``).
    """
    d = block.design
    out = []
    where = f"{block.regime} {d.dataset} τ={d.temperature:g}"
    if block.axis is not None:
        where += f" [map {block.axis}={block.value}]"
    what = {"top1": "", "label": " (label's class)", "cross": " (cross-selected by the control)"}[ref]
    for split in ("train", "test"):
        for ctrl in CONTROLS if ref != "cross" else ("replica",):
            cell = dict(regime=block.regime, dataset=d.dataset, split=split, tau=d.temperature, control_arm=ctrl)
            dec = _decided(block, f"{split}_{ref}_{ctrl}", ctrl, f"{where} {split}{what}: ")
            claim = "" if ref == "top1" else f" [{ref}]"
            out += [tag(dec["underfit"], claim=f"O1-underfit{claim}", **cell),
                    tag(dec["exaggerate"], claim=f"O1-exaggerate{claim}", **cell)]  # fmt: skip
    return out


def _plot_data(block: Block) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split in ("train", "test"):
        bins = {k: np.mean([r[f"{split}_bins"][k] for r in block.rows], axis=0).tolist()
                for k in ("teacher", "student", *CONTROLS)}  # fmt: skip
        lines = {k: np.mean([r[f"{split}_lines"][k] for r in block.rows], axis=0).tolist()
                 for k in ("student", *CONTROLS)}  # fmt: skip
        out[split] = {"bins": bins, "lines": lines}
    return out


def _headline_verdict(effects: list[Effect]) -> Verdict:
    return all_hold(e.verdict for e in effects if e.extra.get("regime") == "paper" and e.extra.get("tau") == 1.0
                    and e.extra.get("claim") == "O1-underfit" and e.extra.get("control_arm") == "replica")  # fmt: skip


def _where(effects: list[Effect], claim: str, verdict: str) -> list[str]:
    return [f"{e.extra['regime']} {e.extra['dataset']} τ={e.extra['tau']:g} {e.extra['split']}" for e in effects
            if e.extra.get("claim") == claim and e.extra.get("control_arm") == "replica"
            and e.verdict == verdict]  # fmt: skip


def measure(cfg: Suite, say: Progress) -> Outcome:
    """Every block of ``cfg``; O1 decided per cell against the replica (the rules above).

    Args: see :class:`~kdtheory.experiments.harness.Measure`.

    Returns:
      The :class:`~kdtheory.experiments.result.Outcome`.
    """
    effects: list[Effect] = []
    label_effects: list[Effect] = []
    plots: dict[str, dict[str, Any]] = {}
    uncontrolled: dict[str, dict[str, list[float]]] = {}
    map_rows: list[str] = []
    for b in blocks(cfg, say):
        eff = o1_cells(b)
        if b.axis is not None:
            u = {e.extra["split"]: e for e in eff if e.extra["claim"] == "O1-underfit"
                 and e.extra["control_arm"] == "replica"}  # fmt: skip
            s = {e.extra["split"]: e for e in eff if e.extra["claim"] == "O1-exaggerate"
                 and e.extra["control_arm"] == "replica"}  # fmt: skip
            map_rows.append(
                f"{b.design.dataset} {b.axis}={b.value} ({len(b.rows)} seeds): " + "; ".join(
                    f"{sp} underfit {interval_text([u[sp].estimate, u[sp].ci_low, u[sp].ci_high])} {u[sp].verdict}, "
                    f"slope − replica's {interval_text([s[sp].estimate, s[sp].ci_low, s[sp].ci_high])}"
                    for sp in ("train", "test")))  # fmt: skip
            continue
        effects += eff
        label_effects += [e for e in o1_cells(b, "label") if e.extra["control_arm"] == "replica"]
        label_effects += o1_cells(b, "cross")
        name = f"{b.regime} {b.design.dataset} τ={b.design.temperature:g}"
        if b.design.temperature == 1.0:
            plots[name] = _plot_data(b)
        uncontrolled[name] = {f"{sp}_{k}": mean_interval([r[f"{sp}_low_{k}_teacher"] for r in b.rows])
                              for sp in ("train", "test") for k in ("student", *CONTROLS)}  # fmt: skip
    verdict = _headline_verdict(effects)
    holds = _where(effects, "O1-underfit", "supported")
    fails = _where(effects, "O1-underfit", "not supported")
    ex_holds = _where(effects, "O1-exaggerate", "supported")
    cross = [f"{e.extra['regime']} {e.extra['dataset']} τ={e.extra['tau']:g} {e.extra['split']} "
             f"{interval_text([e.estimate, e.ci_low, e.ci_high])} → {e.verdict}" for e in label_effects
             if e.extra["claim"] == "O1-underfit [cross]" and e.extra["tau"] == 1.0]  # fmt: skip
    head = [f"{e.extra['dataset']} {e.extra['split']} {interval_text([e.estimate, e.ci_low, e.ci_high])} → {e.verdict}"
            for e in effects if e.extra["regime"] == "paper" and e.extra["tau"] == 1.0
            and e.extra["claim"] == "O1-underfit" and e.extra["control_arm"] == "replica"]  # fmt: skip
    reason = (
        f"Rule: in the paper regime at τ = 1, O1-underfit (low-10% Δφ(s−T) − Δφ(replica−T)) < −{TOL:g} on every data "
        f"set on train and test (95% t over seeds). Paper τ=1: {'; '.join(head)}. O1-underfit holds (against the "
        f"replica) at: {', '.join(holds) or 'no cell'}; is contradicted at: {', '.join(fails) or 'no cell'}. "
        f"O1-exaggerate (slope and top-10% both > replica's) holds at: {', '.join(ex_holds) or 'no cell'}. "
        f"Cross-selected check (replica's own low 10% and top-1 class, student − teacher), τ = 1: {'; '.join(cross)}."
    )
    return Outcome(
        verdict, reason, effects=tuple(effects + label_effects),
        measured={"tolerance": TOL, "uncontrolled_low_minus_teacher": uncontrolled, "map_table": map_rows},
        figure_data={"plots": plots},
    )  # fmt: skip


def figure(outcome: Outcome, cfg: Suite) -> Figure:
    r"""The paper's plot: binned φ_model against φ_teacher, with X = Y and fitted lines (τ = 1).

    One row per regime, one column per data set and split. Dots: mean over seeds of φ per
    teacher-φ decile (teacher's top-1 class) for the student (circles), the replica (squares) and
    the twin (triangles); lines: least-squares fits of φ_model on φ_teacher (mean slope and
    intercept over seeds); dotted: X = Y. A student below the replica at the left end underfits the
    hard points (O1-underfit); a student line steeper than the replica's exaggerates.

    Args:
      outcome: :func:`measure`'s outcome.
      cfg: the :class:`~kdtheory.experiments.design.Suite`.

    Returns:
      A matplotlib Figure.
    """
    plt = pyplot()
    plots = outcome.figure_data["plots"]
    regimes = [r for r in ("paper", "compression", "noisy-labels") if any(k.startswith(r) for k in plots)]
    datasets = [d for d in ("mixture", "digits", "mnist1d") if any(f" {d} " in k for k in plots)]
    ncol = 2 * len(datasets)
    fig, axes = plt.subplots(len(regimes), ncol, figsize=(3.1 * ncol, 3.0 * len(regimes)), squeeze=False)
    style = {"student": ("C0", "o"), "replica": ("C3", "s"), "twin": ("C2", "^")}
    for i, reg in enumerate(regimes):
        for j, ds in enumerate(datasets):
            for k, split in enumerate(("train", "test")):
                ax = axes[i, 2 * j + k]
                key = f"{reg} {ds} τ=1"
                if key not in plots:
                    ax.axis("off")
                    continue
                p = plots[key][split]
                x = np.array(p["bins"]["teacher"])
                lo, hi = float(x.min()), float(x.max())
                ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="X = Y")
                for m, (c, mk) in style.items():
                    ax.plot(x, p["bins"][m], mk, color=c, ms=4, label=m)
                    sl, ic = p["lines"][m]
                    ax.plot([lo, hi], [ic + sl * lo, ic + sl * hi], "-", color=c, lw=1)
                ax.set_title(f"{reg}: {ds}, {split}", fontsize=9)
                ax.tick_params(labelsize=7)
                if i == len(regimes) - 1:
                    ax.set_xlabel("φ teacher (top-1 class)", fontsize=8)
                if j == k == 0:
                    ax.set_ylabel("φ model", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    return finish(fig, "O1 in the paper's form: φ of student, replica and twin against φ of the teacher (τ = 1)")


EXPERIMENT = Experiment(
    "confidence_deviation", "claim", CLAIM, full=Suite(), quick=QUICK, measure=measure, figure=figure
)
