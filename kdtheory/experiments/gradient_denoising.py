r"""Distillation as a gradient denoiser, against a known clean gradient (claim T2).

The truth is known where the labels are random given the input: the expected label ``q̃_i`` of
each training point (:func:`kdtheory.data.clean_gradient_target`), hence the clean expected gradient
``ḡ = (1/n) Σ J_iᵀ (p_i − q̃_i)`` at any parameters (docs/theory.md §8). By regime:

* ``paper`` — the **mixture only**: its labels are samples of the Bayes posterior (``y ~ p*(·|x)``,
  η = 0), so ``q̃ = p*(·|x)`` and denoising is measurable without injected noise. On digits and
  MNIST-1D with clean labels ``q̃`` is the one-hot label itself (the one-hot gradient *is* the
  clean one): T2 is not defined there, and not run.
* ``noisy-labels`` — all three data sets: ``q̃`` is the noisy-label distribution of the clean class
  (of the posterior on the mixture); teacher early-stopped on the noisy validation split.

Per seed (τ = 1 targets; the teacher at its stop), at 4 checkpoints of the student's and 4 of the
twin's trajectory, with per-example Jacobians on a fixed subset of training points:

* **T2-a** target distance ratio ``mean‖q_T − q̃‖² / mean(1 − ‖q̃‖²)`` (the denominator is
  ``E‖e_ỹ − q̃‖²`` under ``ỹ ~ q̃``). Rule: < 1.
* **T2-b (B = 1)** gradient distance ratio ``‖g_KD − ḡ‖ / ‖g_OH − ḡ‖`` for single-example batches
  (root of the expected squared distance, exact over batches), averaged over the 8 evaluation
  points. Rule: < 1.
* **T2-b (B = n)** the same for the full batch. Rule: < 1.

Paired 95% t intervals of the per-seed means. The claim's verdict is T2-b at ``B = 1`` over every
block where T2 is defined: *supported* when supported in all, *not supported* when not supported
in one, *inconclusive* otherwise. Secondary (no verdict): ``tr Σ`` of the per-example distillation
gradients over that of the one-hot gradients, and T2-a along every checkpoint of the teacher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from kdtheory.experiments.design import QUICK, Suite
from kdtheory.experiments.effects import interval_text, mean_effect, mean_interval, tag
from kdtheory.experiments.harness import Experiment, Progress, finish, pyplot
from kdtheory.experiments.measures import Block, blocks
from kdtheory.experiments.result import Outcome
from kdtheory.stats import Effect, Rule, all_hold

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["EXPERIMENT", "figure", "measure", "t2_cells"]

CLAIM = "The distillation gradient is closer to the clean expected gradient than the one-hot gradient"

LESS = Rule(1.0, "less")
CONTROL_T = "one-hot labels: expected distance E‖e_ỹ − q̃‖² = 1 − ‖q̃‖² (ratio 1 = no denoising)"
CONTROL_G = "one-hot gradient at the same parameters (ratio 1 = no denoising)"


def t2_cells(block: Block) -> list[Effect]:
    """The T2 effects of one block (``block.t2``): T2-a, T2-b at B = 1 and at B = n.

    Args:
      block: a :class:`~kdtheory.experiments.measures.Block` with the gradient statistics.

    Returns:
      Tagged effects (split ``train``: the gradients are training gradients; control ``one-hot``).
    """
    d, rows = block.design, block.rows
    where = f"{block.regime} {d.dataset}"
    cell = dict(regime=block.regime, dataset=d.dataset, split="train", tau=d.temperature, control_arm="one-hot")
    return [
        tag(mean_effect(f"{where}: T2-a target distance ratio, teacher / one-hot", rows, "target_ratio", LESS,
                        CONTROL_T), claim="T2-a targets", **cell),
        tag(mean_effect(f"{where}: T2-b gradient distance ratio KD / one-hot, B = 1", rows, "gradient_ratio_b1",
                        LESS, CONTROL_G), claim="T2-b gradient B=1", **cell),
        tag(mean_effect(f"{where}: T2-b gradient distance ratio KD / one-hot, B = n", rows, "gradient_ratio_bn",
                        LESS, CONTROL_G), claim="T2-b gradient B=n", **cell),
    ]  # fmt: skip


def measure(cfg: Suite, say: Progress) -> Outcome:
    """Every block of ``cfg`` where T2 is defined; the rule above.

    Args: see :class:`~kdtheory.experiments.harness.Measure`.

    Returns:
      The :class:`~kdtheory.experiments.result.Outcome`.
    """
    effects: list[Effect] = []
    per_set: dict[str, dict[str, Any]] = {}
    for b in blocks(cfg, say, map_cells=False):  # the map's cells take no gradient statistics
        if not b.t2:
            continue
        eff = t2_cells(b)
        effects += eff
        rows = b.rows
        ratio_t = np.array([r["target_ratio_along_t"] for r in rows])
        b1 = np.array([[a / c for a, c in r["gradient_b1"]] for r in rows])
        bn = np.array([[a / c for a, c in r["gradient_bn"]] for r in rows])
        per_set[f"{b.regime} {b.design.dataset}"] = {
            "design": b.design.label,
            "teacher_t": rows[0]["teacher_t"],
            "target_ratio_along_teacher_t": [mean_interval(ratio_t[:, j]) for j in range(ratio_t.shape[1])],
            "teacher_stop": [r["teacher_stop"] for r in rows],
            "gradient_t": rows[0]["gradient_t"],
            "gradient_arm": rows[0]["gradient_arm"],
            "gradient_ratio_b1_along_t": [mean_interval(b1[:, j]) for j in range(b1.shape[1])],
            "gradient_ratio_bn_along_t": [mean_interval(bn[:, j]) for j in range(bn.shape[1])],
            "trace_ratio": mean_interval([r["trace_ratio_mean"] for r in rows]),
        }
    decisive = [e for e in effects if e.extra["claim"] == "T2-b gradient B=1"]
    verdict = all_hold(e.verdict for e in decisive)
    parts = [f"{e.name.split(':')[0]}: " + ", ".join(
        f"{x.extra['claim'].split()[0]}{'' if 'B=' not in x.extra['claim'] else ' ' + x.extra['claim'][-3:]} "
        f"{interval_text([x.estimate, x.ci_low, x.ci_high])} → {x.verdict}"
        for x in effects if x.name.split(':')[0] == e.name.split(':')[0]) for e in decisive]  # fmt: skip
    reason = (
        f"T2-b at B = 1 decides (95% t interval of the mean ratio < 1 in every block where T2 is defined): "
        f"{'; '.join(parts)}. Defined: the paper regime on the mixture (labels are samples of the Bayes posterior, "
        "the truth) and the noisy-labels regime; with clean labels on digits and MNIST-1D the one-hot gradient is "
        "the clean gradient, so T2 is not defined there."
    )
    return Outcome(
        verdict, reason, effects=tuple(effects), measured={"datasets": per_set},
        figure_data={"datasets": per_set, "effects": effects},
    )  # fmt: skip


def figure(outcome: Outcome, cfg: Suite) -> Figure:
    r"""T2-a over the teacher's stop time, T2-b along training, and the decided effects per block.

    Left: target distance ratio teacher / one-hot (mean and paired 95% t interval over seeds) for a
    teacher taken at each recorded step; triangles mark the noisy-validation stops. Middle: gradient
    distance ratio ``‖g_KD − ḡ‖ / ‖g_OH − ḡ‖`` at ``B = 1`` (solid) and ``B = n`` (dashed) along the
    student's (circles) and the twin's (squares) trajectories. Right: T2-a, B = 1 and B = n per block
    (regime and data set) with their 95% t intervals. Below 1 (dotted): distillation is closer to the clean gradient.

    Args:
      outcome: :func:`measure`'s outcome.
      cfg: the :class:`~kdtheory.experiments.design.Suite`.

    Returns:
      A matplotlib Figure.
    """
    plt = pyplot()
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.6))
    for i, (name, d) in enumerate(outcome.figure_data["datasets"].items()):
        t = np.maximum(np.array(d["teacher_t"], dtype=float), 0.5)
        r = np.array(d["target_ratio_along_teacher_t"])
        ax[0].plot(t, r[:, 0], color=f"C{i}", label=name)
        ax[0].fill_between(t, r[:, 1], r[:, 2], color=f"C{i}", alpha=0.25)
        stops = np.array(d["teacher_stop"], dtype=float)
        ax[0].plot(np.maximum(stops, 0.5), np.interp(np.maximum(stops, 0.5), t, r[:, 0]), "v", color=f"C{i}", ms=4)
        gt = np.maximum(np.array(d["gradient_t"], dtype=float), 0.5)
        arms = np.array(d["gradient_arm"])
        for key, ls in (("gradient_ratio_b1_along_t", "-"), ("gradient_ratio_bn_along_t", "--")):
            g = np.array(d[key])
            for arm, mk in (("student", "o"), ("twin", "s")):
                s = arms == arm
                ax[1].errorbar(gt[s], g[s, 0], yerr=[g[s, 0] - g[s, 1], g[s, 2] - g[s, 0]], color=f"C{i}", ls=ls,
                               marker=mk, ms=4, capsize=2,
                               label=f"{name} {key[15:17]} {arm}")  # fmt: skip
    for a in ax[:2]:
        a.set_xscale("log")
        a.axhline(1, color="k", ls=":", lw=1)
    ax[0].set(xlabel="teacher's stop step", ylabel="mean‖q_T − q̃‖² / (1 − ‖q̃‖²)",
              title="T2-a: teacher targets vs one-hot, by teacher stop (95% t)")  # fmt: skip
    ax[0].legend(fontsize=7)
    ax[1].set(xlabel="training step of the evaluation parameters", ylabel="‖g_KD − ḡ‖ / ‖g_OH − ḡ‖",
              title="T2-b along training (solid B=1, dashed B=n; o student, □ twin)")  # fmt: skip
    ax[1].legend(fontsize=6, ncol=2)
    eff = outcome.figure_data["effects"]
    names = list(dict.fromkeys(e.name.split(":")[0] for e in eff))
    x = np.arange(len(names))
    for k, claim in enumerate(("T2-a targets", "T2-b gradient B=1", "T2-b gradient B=n")):
        picked = [next(e for e in eff if e.name.split(":")[0] == n and e.extra["claim"] == claim) for n in names]
        v = np.array([[e.estimate, e.ci_low, e.ci_high] for e in picked], dtype=float)
        ax[2].errorbar(x + 0.12 * (k - 1), v[:, 0], yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], fmt="os^"[k],
                       capsize=3, label=claim)  # fmt: skip
    ax[2].axhline(1, color="k", ls=":", lw=1)
    ax[2].set_xticks(x, names, rotation=30, fontsize=7)
    ax[2].set(title="decided effects per block (< 1 = denoising)")
    ax[2].legend(fontsize=7)
    return finish(fig, "Gradient denoising (T2) against the clean expected gradient, by regime")


EXPERIMENT = Experiment("gradient_denoising", "claim", CLAIM, full=Suite(), quick=QUICK, measure=measure, figure=figure)
