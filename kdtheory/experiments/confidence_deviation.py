r"""Confidence deviations of a distilled student, against its one-hot twin (claim O1).

Design (:mod:`kdtheory.experiments.paired`): per seed, a teacher trained on noisy labels and
early-stopped on a noisy validation split; from one initialization, with one optimizer, budget and
minibatch order, the distilled student (τ = 1) and its one-hot twin (the control: the same
network trained without the teacher, which already differs from the teacher — the reference class
being the teacher's own top-1, a winner's curse). Logit confidence ``φ = z_c − logsumexp_{j≠c} z_j``
of the teacher's top-1 class ``c`` (:func:`kdtheory.confidence.logit_confidence`), on the clean
test set and on the training points. Data sets: Gaussian mixture (η = 0.3), digits (η = 0.3),
MNIST-1D (η = 0.2); seeds ``0 … 9``; paired 95% t intervals over seeds.

Effects and rules, fixed before the run (per data set; "low"/"high" = the 10% lowest/highest
teacher-confidence points):

* **O1-a** low-confidence underfitting: mean over the low points of ``φ_student − φ_twin``, on test
  and on train. Rule: < −0.05 nats (the tolerance).
* **O1-b** pattern, not a level shift: (low mean) − (high mean) of ``φ_student − φ_twin`` (test).
  Rule: < 0 (a student less confident *everywhere* gives ≥ 0).
* **O1-c** exaggeration (the paper's stronger wording): Theil–Sen slope of ``φ_student`` on
  ``φ_teacher`` (test). Rule: > 1; the slope difference student − twin. Rule: > 0; and the
  other form of THEORY.md §8, the mean of ``φ_student − φ_teacher`` over the high points (test):
  more confident than the teacher where the teacher is confident. Rule: > 0.

The claim (low-confidence underfitting) is *supported* when O1-a (test) and O1-b are supported on
every data set; *not supported* when either is not supported on at least one; *inconclusive*
otherwise. O1-c is decided and stated beside it. Reported: binned ``Δφ`` curves (10
teacher-confidence quantile bins, student − twin and student − teacher, paired intervals), the
uncontrolled student − teacher differences, and counts with a stated tolerance: the share of low
points with ``Δφ < −0.05`` (student vs teacher; twin vs teacher). The confounder map (mixture,
``map_seeds`` seeds per cell) redoes O1-a, O1-b and the slopes over teacher stop, τ, η and budget.
"""

from __future__ import annotations

import numpy as np

from kdtheory.experiments import paired
from kdtheory.experiments.harness import Experiment, finish, pyplot
from kdtheory.experiments.result import Outcome
from kdtheory.stats import Rule, t_interval

__all__ = ["EXPERIMENT", "figure", "measure"]

CLAIM = "Where the teacher is unsure, the distilled student is even less sure (low-confidence underfitting)"

UNDERFIT = Rule(-paired.TOL, "less")
CONTRAST = Rule(0.0, "less")
EXAGGERATE = Rule(1.0, "greater")
STEEPER = Rule(0.0, "greater")
EXAGGERATE_TOP = Rule(0.0, "greater")
CONTROL = "one-hot twin: same initialization, optimizer, budget and minibatch order (paired by seed)"


def _effects(rows: list[dict], tag: str):
    return (
        paired.difference_effect(f"{tag}: O1-a test Δφ student − twin, 10% lowest teacher confidence", rows,
                                 "test_low_student_twin", "zero", UNDERFIT, CONTROL),
        paired.difference_effect(f"{tag}: O1-a train Δφ student − twin, 10% lowest teacher confidence", rows,
                                 "train_low_student_twin", "zero", UNDERFIT, CONTROL),
        paired.difference_effect(f"{tag}: O1-b test contrast low − high of Δφ student − twin", rows,
                                 "test_low_student_twin", "test_high_student_twin", CONTRAST, CONTROL),
        paired.difference_effect(f"{tag}: O1-c test Theil–Sen slope of φ_student on φ_teacher", rows,
                                 "test_slope_student", "zero", EXAGGERATE, "fixed reference: slope 1"),
        paired.difference_effect(f"{tag}: O1-c test Δφ student − teacher, 10% highest teacher confidence", rows,
                                 "test_high_student_teacher", "zero", EXAGGERATE_TOP, "the teacher itself"),
        paired.difference_effect(f"{tag}: O1-c test slope student − twin", rows, "test_slope_student",
                                 "test_slope_twin", STEEPER, CONTROL),
    )  # fmt: skip


def _iv(values) -> list[float]:
    iv = t_interval(np.asarray(values, dtype=float))
    return [iv.estimate, iv.low, iv.high]


def _summary(rows: list[dict]) -> dict:
    out = {}
    for split in ("test", "train"):
        for key in ("bins_student_twin", "bins_student_teacher"):
            m, lo, hi = paired.bin_intervals(rows, f"{split}_{key}")
            out[f"{split}_{key}"] = np.c_[m, lo, hi].tolist()
        out[f"{split}_bins_teacher"] = np.mean([r[f"{split}_bins_teacher"] for r in rows], axis=0).tolist()
        for key in (
            "low_student_teacher",
            "high_student_teacher",
            "low_twin_teacher",
            "slope_student",
            "slope_twin",
            "underfit_share_student",
            "underfit_share_twin",
        ):
            out[f"{split}_{key}"] = _iv([r[f"{split}_{key}"] for r in rows])
    return out


def measure(cfg: paired.Suite, say) -> Outcome:
    """Headline designs over ``cfg.seeds`` seeds and the map over ``cfg.map_seeds``; the rule above.

    Args:
      cfg: the configuration (``EXPERIMENT.full`` or ``EXPERIMENT.quick``).
      say: called with one-line progress messages.

    Returns:
      The :class:`~kdtheory.experiments.result.Outcome`: measurements, effects and the verdict.
    """
    heads = paired.headline(cfg, say)
    effects, per_set, decisive = [], {}, []
    for design, rows in heads:
        rows = [{**r, "zero": 0.0} for r in rows]
        tag = f"{design.dataset} (η={design.label_noise:g})"
        eff = _effects(rows, tag)
        effects.extend(eff)
        decisive.append((tag, eff))
        per_set[design.dataset] = {"design": design.label, "tolerance": paired.TOL, **_summary(rows)}
    say("confounder map (mixture)")
    table = []
    for c in paired.confounder_map(cfg, say):
        rows = [{**r, "zero": 0.0} for r in c.rows]
        a, _, b, s, top, d = _effects(rows, f"{c.axis}={c.value}")
        table.append({"axis": c.axis, "value": str(c.value), "seeds": len(rows),
                      **{k: [e.estimate, e.ci_low, e.ci_high] for k, e in
                         (("low", a), ("contrast", b), ("slope", s), ("slope_diff", d), ("top", top))},
                      "low_verdict": a.verdict, "contrast_verdict": b.verdict, "slope_verdict": s.verdict,
                      "top_verdict": top.verdict})  # fmt: skip
    va = [e[0].verdict for _, e in decisive] + [e[2].verdict for _, e in decisive]
    verdict = (
        "supported"
        if all(x == "supported" for x in va)
        else "not supported"
        if "not supported" in va
        else "inconclusive"
    )
    parts = [
        f"{tag}: low Δφ(s − twin) test {e[0].estimate:+.3f} [{e[0].ci_low:+.3f}, {e[0].ci_high:+.3f}] → "
        f"{e[0].verdict}, train {e[1].estimate:+.3f} [{e[1].ci_low:+.3f}, {e[1].ci_high:+.3f}]; contrast "
        f"{e[2].estimate:+.3f} [{e[2].ci_low:+.3f}, {e[2].ci_high:+.3f}] → {e[2].verdict}; slope "
        f"{e[3].estimate:.3f} [{e[3].ci_low:.3f}, {e[3].ci_high:.3f}] (student − twin {e[5].estimate:+.3f}); "
        f"high-point Δφ student − teacher {e[4].estimate:+.3f} [{e[4].ci_low:+.3f}, {e[4].ci_high:+.3f}]"
        for tag, e in decisive
    ]
    exaggerates = [f"{r['axis']}={r['value']}" for r in table if "supported" in (r["slope_verdict"], r["top_verdict"])]
    exaggerates += [tag for tag, e in decisive if "supported" in (e[3].verdict, e[4].verdict)]
    underfits = [f"{r['axis']}={r['value']}" for r in table
                 if r["low_verdict"] == "supported" and r["contrast_verdict"] == "supported"]  # fmt: skip
    reason = (
        f"Rule: O1-a (test) < −{paired.TOL:g} and O1-b < 0 on every data set (95% t intervals). {'; '.join(parts)}. "
        f"Map (mixture, {cfg.map_seeds} seeds/cell): low-confidence underfitting as a pattern (O1-a and O1-b "
        f"supported) at {', '.join(underfits) or 'no cell'}; exaggeration (Theil–Sen slope > 1, or Δφ student "
        "− teacher > 0 on the high points) holds "
        + (f"at {', '.join(exaggerates)}" if exaggerates else "nowhere: not on any data set and in no cell of the map")
    )
    return Outcome(
        verdict, reason, effects=tuple(effects),
        measured={"datasets": per_set, "map": table, "map_table": [
            f"{r['axis']}={r['value']} ({r['seeds']} seeds): low Δφ(s − twin) {paired.interval_text(r['low'])} "
            f"{r['low_verdict']}; contrast {paired.interval_text(r['contrast'])} {r['contrast_verdict']}; slope "
            f"{paired.interval_text(r['slope'])} {r['slope_verdict']} (vs twin "
            f"{paired.interval_text(r['slope_diff'])}); high-point Δφ s − teacher "
            f"{paired.interval_text(r['top'])} {r['top_verdict']}"
            for r in table]},
        figure_data={"datasets": per_set, "map": table},
    )  # fmt: skip


def figure(outcome: Outcome, cfg: paired.Suite):
    r"""Binned paired Δφ curves, the student's and twin's slopes, and the map.

    Left: mean ``φ_student − φ_twin`` per teacher-confidence decile (paired 95% t interval over
    seeds), test solid, train dashed; the dotted line is the −0.05 tolerance. Middle: the same with
    the teacher as reference (``φ_student − φ_teacher``, no control). Right: the map on the mixture —
    O1-a (low), O1-b (contrast), the student's Theil–Sen slope minus 1 and the high-point
    ``φ_student − φ_teacher`` per cell (exaggeration would put the last two above 0).

    Args:
      outcome: :func:`measure`'s outcome.
      cfg: the :class:`~kdtheory.experiments.paired.Suite`.

    Returns:
      A matplotlib Figure.
    """
    plt = pyplot()
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.6))
    for i, (name, d) in enumerate(outcome.figure_data["datasets"].items()):
        for k, key in enumerate(("bins_student_twin", "bins_student_teacher")):
            for split, ls in (("test", "-"), ("train", "--")):
                v = np.array(d[f"{split}_{key}"])
                x = np.arange(1, v.shape[0] + 1) + 0.06 * i
                ax[k].errorbar(x, v[:, 0], yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], color=f"C{i}", ls=ls,
                               marker="o", ms=3, capsize=2, label=f"{name} {split}")  # fmt: skip
    for a, what in zip(
        ax[:2], ("student − one-hot twin (paired control)", "student − teacher (no control)"), strict=True
    ):
        a.axhline(0, color="k", lw=0.8)
        a.axhline(-paired.TOL, color="k", ls=":", lw=1)
        a.set(xlabel="teacher-confidence decile (1 = least confident)", ylabel="mean Δφ (nats)",
              title=f"Δφ = {what}")  # fmt: skip
        a.legend(fontsize=7, ncol=2)
    rows = outcome.figure_data["map"]
    x = np.arange(len(rows))
    for k, (key, lab, shift) in enumerate((("low", "O1-a low Δφ (s − twin)", 0.0), ("contrast", "O1-b contrast", 0.0),
                                           ("slope", "O1-c slope − 1", 1.0),
                                           ("top", "O1-c high-point Δφ (s − teacher)", 0.0))):  # fmt: skip
        v = np.array([r[key] for r in rows], dtype=float) - shift
        ax[2].errorbar(x + 0.1 * (k - 1.5), v[:, 0], yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], fmt="os^D"[k],
                       capsize=3, label=lab)  # fmt: skip
    ax[2].axhline(0, color="k", lw=0.8)
    ax[2].set_xticks(x, [f"{r['axis'].replace('teacher_', '').replace('student_t', 'budget')}={r['value']}"
                         for r in rows], rotation=60, fontsize=7)  # fmt: skip
    ax[2].set(
        title=f"map, mixture ({cfg.map_seeds} seeds/cell): claim low < −0.05, contrast < 0;\n"
        "exaggeration: slope − 1 > 0 or high-point Δφ (s − teacher) > 0"
    )
    ax[2].set_yscale("symlog", linthresh=0.1)
    ax[2].legend(fontsize=7)
    return finish(fig, f"Confidence deviations (O1): paired against the one-hot twin, {cfg.seeds} seeds per data set")


EXPERIMENT = Experiment(
    "confidence_deviation", "claim", CLAIM, full=paired.Suite(), quick=paired.QUICK, measure=measure, figure=figure
)
