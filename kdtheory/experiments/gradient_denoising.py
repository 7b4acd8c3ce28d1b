r"""Distillation as a gradient denoiser, against a known clean gradient (claim T2).

Design (:mod:`kdtheory.experiments.paired`): per seed, a teacher trained on noisy labels and
early-stopped on a noisy validation split (τ = 1 targets), its distilled student and the one-hot
twin from one initialization. The truth is known: the expected noisy label ``q̃_i`` of each training
point (:func:`kdtheory.data.clean_gradient_target` — from the Bayes posterior on the Gaussian
mixture, from the clean labels on digits and MNIST-1D), hence the clean expected gradient
``ḡ = (1/n) Σ J_iᵀ (p_i − q̃_i)`` at any parameters (THEORY.md §8). At 4 times along the student's
and 4 along the twin's trajectory (the same parameters for both gradients), with per-example
Jacobians on a fixed subset of training points:

* **T2-a** target distance ratio ``mean‖q_T − q̃‖² / mean(1 − ‖q̃‖²)`` (the denominator is
  ``E‖e_ỹ − q̃‖²`` under ``ỹ ~ q̃``). Rule: < 1.
* **T2-b (B = 1)** gradient distance ratio ``‖g_KD − ḡ‖ / ‖g_OH − ḡ‖`` for single-example batches
  (root of the expected squared distance, exact over batches; the variance statement of the paper),
  averaged over the 8 evaluation points. Rule: < 1.
* **T2-b (B = n)** the same for the full batch (systematic error of the teacher vs the label
  noise that averages out over ``n``). Rule: < 1.

Per-seed values, then paired 95% t intervals of their means over seeds ``0 … 9``. The claim's
verdict is T2-b at ``B = 1``: *supported* when supported on every data set, *not supported* when
not supported on at least one, *inconclusive* otherwise; T2-a and ``B = n`` are decided and
reported beside it. Secondary (no verdict): ``tr Σ`` of the per-example distillation gradients
over that of the one-hot gradients (a lower ``tr Σ`` is not denoising: targets equal to the
model's own outputs give ``tr Σ = 0``). The teacher's stop time: T2-a along every checkpoint of
the teacher (all seeds), and T2-a, T2-b over the map's stop times (``map_seeds`` seeds).
"""

from __future__ import annotations

import numpy as np

from kdtheory.experiments import paired
from kdtheory.experiments.harness import Experiment, finish, pyplot
from kdtheory.experiments.result import Outcome
from kdtheory.stats import Rule, t_interval

__all__ = ["EXPERIMENT", "figure", "measure"]

CLAIM = "The distillation gradient is closer to the clean expected gradient than the one-hot gradient"

LESS = Rule(1.0, "less")
CONTROL_T = "one-hot labels: expected distance E‖e_ỹ − q̃‖² = 1 − ‖q̃‖² (ratio 1 = no denoising)"
CONTROL_G = "one-hot gradient at the same parameters (ratio 1 = no denoising)"


def _effects(rows: list[dict], tag: str):
    return (
        paired.mean_effect(f"{tag}: T2-a target distance ratio, teacher / one-hot", rows, "target_ratio", LESS,
                           CONTROL_T),
        paired.mean_effect(f"{tag}: T2-b gradient distance ratio KD / one-hot, B = 1", rows, "gradient_ratio_b1",
                           LESS, CONTROL_G),
        paired.mean_effect(f"{tag}: T2-b gradient distance ratio KD / one-hot, B = n", rows, "gradient_ratio_bn",
                           LESS, CONTROL_G),
    )  # fmt: skip


def _iv(values) -> list[float]:
    iv = t_interval(np.asarray(values, dtype=float))
    return [iv.estimate, iv.low, iv.high]


def measure(cfg: paired.Suite, say) -> Outcome:
    """Headline designs over ``cfg.seeds`` seeds and the map's stop times; the rule above.

    Args:
      cfg: the configuration (``EXPERIMENT.full`` or ``EXPERIMENT.quick``).
      say: called with one-line progress messages.

    Returns:
      The :class:`~kdtheory.experiments.result.Outcome`: measurements, effects and the verdict.
    """
    heads = paired.headline(cfg, say)
    effects, per_set, decisive = [], {}, []
    for design, rows in heads:
        tag = f"{design.dataset} (η={design.label_noise:g})"
        eff = _effects(rows, tag)
        effects.extend(eff)
        decisive.append((tag, eff))
        ratio_t = np.array([r["target_ratio_along_t"] for r in rows])
        b1 = np.array([[a / b for a, b in r["gradient_b1"]] for r in rows])
        bn = np.array([[a / b for a, b in r["gradient_bn"]] for r in rows])
        per_set[design.dataset] = {
            "design": design.label,
            "teacher_t": rows[0]["teacher_t"],
            "target_ratio_along_teacher_t": [_iv(ratio_t[:, j]) for j in range(ratio_t.shape[1])],
            "teacher_stop": [r["teacher_stop"] for r in rows],
            "gradient_t": rows[0]["gradient_t"],
            "gradient_arm": rows[0]["gradient_arm"],
            "gradient_ratio_b1_along_t": [_iv(b1[:, j]) for j in range(b1.shape[1])],
            "gradient_ratio_bn_along_t": [_iv(bn[:, j]) for j in range(bn.shape[1])],
            "trace_ratio": _iv([r["trace_ratio_mean"] for r in rows]),
            "target_teacher": float(np.mean([r["target_teacher"] for r in rows])),
            "target_onehot": float(np.mean([r["target_onehot"] for r in rows])),
        }
    say("confounder map (mixture)")
    table = []
    for c in paired.confounder_map(cfg, say):
        a, b, n = _effects(c.rows, f"{c.axis}={c.value}")
        table.append({"axis": c.axis, "value": str(c.value), "seeds": len(c.rows),
                      "teacher_stop": float(np.mean([r["teacher_stop"] for r in c.rows])),
                      "target_ratio": [a.estimate, a.ci_low, a.ci_high], "target_verdict": a.verdict,
                      "b1": [b.estimate, b.ci_low, b.ci_high], "b1_verdict": b.verdict,
                      "bn": [n.estimate, n.ci_low, n.ci_high], "bn_verdict": n.verdict})  # fmt: skip
    v = [eff[1].verdict for _, eff in decisive]
    verdict = (
        "supported" if all(x == "supported" for x in v) else "not supported" if "not supported" in v else "inconclusive"
    )
    parts = [
        f"{tag}: B=1 {e[1].estimate:.3f} [{e[1].ci_low:.3f}, {e[1].ci_high:.3f}] → {e[1].verdict}; B=n "
        f"{e[2].estimate:.3f} [{e[2].ci_low:.3f}, {e[2].ci_high:.3f}] → {e[2].verdict}; targets "
        f"{e[0].estimate:.3f} [{e[0].ci_low:.3f}, {e[0].ci_high:.3f}] → {e[0].verdict}"
        for tag, e in decisive
    ]
    fails = [f"{r['axis']}={r['value']} (B=1 {r['b1_verdict']}, B=n {r['bn_verdict']})" for r in table
             if r["b1_verdict"] != "supported" or r["bn_verdict"] != "supported"]  # fmt: skip
    reason = (
        f"T2-b at B = 1 decides (95% t interval of the mean ratio < 1 on every data set): {'; '.join(parts)}. "
        f"Map (mixture, {cfg.map_seeds} seeds/cell): cells where B=1 or B=n is not supported: "
        f"{', '.join(fails) or 'none'} (T2 uses the τ = 1 targets: the τ cells differ only through the evaluation "
        "parameters, the budget cells share the teacher)"
    )
    return Outcome(
        verdict, reason, effects=tuple(effects),
        measured={"datasets": per_set, "map": table, "map_table": [
            f"{r['axis']}={r['value']} ({r['seeds']} seeds; teacher stop {r['teacher_stop']:.0f}): targets "
            f"{paired.interval_text(r['target_ratio'])} {r['target_verdict']}; B=1 {paired.interval_text(r['b1'])} "
            f"{r['b1_verdict']}; B=n {paired.interval_text(r['bn'])} {r['bn_verdict']}" for r in table]},
        figure_data={"datasets": per_set, "map": table},
    )  # fmt: skip


def figure(outcome: Outcome, cfg: paired.Suite):
    r"""T2-a over the teacher's stop time, T2-b along training, and the map.

    Left: target distance ratio teacher / one-hot (mean and paired 95% t interval over seeds) for a
    teacher taken at each recorded step; triangles mark the noisy-validation stops. Middle: gradient
    distance ratio ``‖g_KD − ḡ‖ / ‖g_OH − ḡ‖`` at ``B = 1`` (solid) and ``B = n`` (dashed) along the
    student's (circles) and the twin's (squares) trajectories. Right: the map on the mixture (T2-a,
    B = 1, B = n per cell). Below 1 (dotted): distillation is closer to the clean gradient.

    Args:
      outcome: :func:`measure`'s outcome.
      cfg: the :class:`~kdtheory.experiments.paired.Suite`.

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
    rows = outcome.figure_data["map"]
    x = np.arange(len(rows))
    for k, (key, lab) in enumerate((("target_ratio", "T2-a targets"), ("b1", "T2-b B=1"), ("bn", "T2-b B=n"))):
        v = np.array([r[key] for r in rows], dtype=float)
        ax[2].errorbar(x + 0.12 * (k - 1), v[:, 0], yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], fmt="os^"[k],
                       capsize=3, label=lab)  # fmt: skip
    ax[2].axhline(1, color="k", ls=":", lw=1)
    ax[2].set_xticks(x, [f"{r['axis'].replace('teacher_', '').replace('student_t', 'budget')}={r['value']}"
                         for r in rows], rotation=60, fontsize=7)  # fmt: skip
    ax[2].set(title=f"map on the mixture ({cfg.map_seeds} seeds per cell; < 1 = denoising)")
    ax[2].legend(fontsize=7)
    return finish(fig, f"Gradient denoising (T2) against the clean expected gradient, {cfg.seeds} seeds per data set")


EXPERIMENT = Experiment(
    "gradient_denoising", "claim", CLAIM, full=paired.Suite(), quick=paired.QUICK, measure=measure, figure=figure
)
