r"""Confidence deviations of a self-distilled student from its teacher (claim O1).

For each data set — a Gaussian mixture with overlapping classes and label noise (hard points),
and the 8×8 digits of scikit-learn — and each seed, an MLP teacher is trained on one-hot labels by
full-batch gradient descent on softmax cross-entropy, and a student of the same architecture, from
a fresh initialization, is trained for as many steps on the teacher's training logits (pure
distillation, τ = 1). A linear softmax model (convex, trained from zero) is treated the same way.
:func:`kdtheory.confidence.analyze` compares the two on training and test points (reference class:
the teacher's top-1).

Verdict rule: *supported* when, for the MLP on both data sets, the mean over seeds of the share of
the lowest-10% teacher-confidence **test** points on which the student is less confident than the
teacher exceeds 1/2 by more than two standard errors. Slopes (the "exaggeration" form) are
reported for all models with their spread; for linear models the reference expects slopes below 1
with low-confidence underfitting intact — reported, not required.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdtheory.confidence import analyze
from kdtheory.data import digits, gaussian_mixture
from kdtheory.experiments.harness import Experiment
from kdtheory.experiments.result import JOINT, Effect, Outcome

__all__ = ["EXPERIMENT", "Config", "figure", "measure"]

CLAIM = "Where the teacher is unsure, the self-distilled student is even less sure (low-confidence underfitting)"


@dataclass(frozen=True)
class Config:
    """Configuration of :func:`measure`.

    Attributes:
      seeds: number of seeds (data split / initializations).
      hidden: MLP hidden width.
      steps: full-batch GD steps for teacher and student.
      learning_rate: GD step size (MLP); linear_learning_rate for the linear model.
      mixture_n, mixture_test: Gaussian-mixture sizes.
      bootstrap: bootstrap resamples for the slope interval.
    """

    seeds: int = 5
    hidden: int = 256
    steps: int = 1500
    learning_rate: float = 0.5
    linear_learning_rate: float = 0.5
    mixture_n: int = 600
    mixture_test: int = 1000
    bootstrap: int = 500


def measure(cfg: Config, say) -> Outcome:
    """Teacher and student MLP/linear models on two data sets over seeds; confidence statistics and rule."""
    from kdtheory.simulate import Loss, Optimizer, linear_model, mlp, teacher_student

    results: dict[str, dict[str, list]] = {}
    figure_reports = {}
    for seed in range(cfg.seeds):
        sets = {
            "mixture": gaussian_mixture(cfg.mixture_n, cfg.mixture_test, seed=seed),
            "digits": digits(seed=seed),
        }
        for dname, data in sets.items():
            d, k = data.X.shape[1], data.Y.shape[1]
            models = {
                "mlp": (mlp([d, cfg.hidden, k]), cfg.learning_rate),
                "linear": (linear_model(d, k), cfg.linear_learning_rate),
            }
            for mname, (model, lr) in models.items():
                teacher, student = teacher_student(
                    model, data.X, data.Y, teacher_t=cfg.steps, student_t=cfg.steps, points=2,
                    loss=Loss("ce", normalization="mean"), optimizer=Optimizer(learning_rate=lr),
                    X_test=data.X_test, y_test=data.Y_test, seed=2 * seed, student_seed=2 * seed + 1,
                )  # fmt: skip
                key = f"{mname}/{dname}"
                for split, (zt, zs) in {
                    "train": (teacher.train[-1], student.train[-1]),
                    "test": (teacher.test[-1], student.test[-1]),
                }.items():
                    rep = analyze(
                        zt,
                        zs,
                        kind="logits",
                        y=data.Y if split == "train" else data.Y_test,
                        bootstrap=cfg.bootstrap,
                        seed=seed,
                    )
                    acc = results.setdefault(key, {})
                    for stat, val in rep.summary().items():
                        acc.setdefault(f"{split}_{stat}", []).append(val)
                    if seed == 0 and key == "mlp/digits":
                        figure_reports[f"MLP on digits, {split}"] = rep
                    if seed == 0 and key == "linear/mixture":
                        figure_reports[f"linear on mixture, {split}"] = rep
                acc["teacher_test_accuracy"] = acc.get("teacher_test_accuracy", []) + [float(teacher.test_accuracy[-1])]
                acc["student_test_accuracy"] = acc.get("student_test_accuracy", []) + [float(student.test_accuracy[-1])]
                say(
                    f"seed {seed} {key}: test low-confidence underfit "
                    f"{acc['test_low_confidence_underfit'][-1]:.2f}, slope {acc['test_slope'][-1]:.3f}"
                )

    def ms(xs):
        a = np.asarray([x for x in xs if x is not None], dtype=float)
        return (float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0, int(a.size))

    summary = {key: {stat: ms(vals) for stat, vals in d.items()} for key, d in results.items()}
    decisive = {}
    for dname in ("mixture", "digits"):
        m, sd, cnt = summary[f"mlp/{dname}"]["test_low_confidence_underfit"]
        se = sd / np.sqrt(cnt) if cnt > 1 else float("inf")
        decisive[dname] = (m, se, m - 2 * se > 0.5)
    verdict = (
        "supported"
        if all(v[2] for v in decisive.values())
        else ("not supported" if all(v[0] <= 0.5 for v in decisive.values()) else "inconclusive")
    )

    def fmt(key, stat):
        m, sd, _ = summary[key][stat]
        return f"{m:.3f} ± {sd:.3f}"

    parts = [f"MLP {d}: test low-conf. underfit {v[0]:.2f} ± {v[1]:.2f} (se)" for d, v in decisive.items()]
    slopes = "; ".join(
        f"{key} test slope {fmt(key, 'test_slope')}, train slope {fmt(key, 'train_slope')}" for key in summary
    )
    effects = tuple(
        Effect(
            f"MLP on {d}: share of the lowest-10% teacher-confidence test points where the student is less confident",
            m, m - 2 * se, m + 2 * se, cfg.seeds, "the fixed value 1/2 (no one-hot control arm yet)",
            "supported when mean − 2 se > 1/2 on both data sets", "mean ± 2 se over seeds", verdict,
            JOINT,
        )
        for d, (m, se, _) in decisive.items()
    )  # fmt: skip
    return Outcome(
        verdict,
        (
            f"{'; '.join(parts)} over {cfg.seeds} seeds (mean − 2 se > 0.5 required on both). "
            f"Slopes (reported): {slopes}"
        ),
        measured={key: {stat: list(v) for stat, v in d.items()} for key, d in summary.items()},
        effects=effects,
        figure_data={"reports": figure_reports},
    )


def figure(outcome: Outcome, cfg: Config):
    """Student against teacher logit confidence, seed 0 (see :func:`kdtheory.confidence_figure.confidence_figure`).

    Args:
      outcome: :func:`measure`'s outcome; ``figure_data["reports"]`` maps a panel title to a
        :class:`~kdtheory.confidence.ConfidenceReport` of seed 0.
      cfg: the configuration (unused: the title names the models drawn).

    Returns:
      One row of two panels per report.
    """
    from kdtheory.confidence_figure import confidence_figure

    title = "Student vs teacher logit confidence (seed 0): MLP on digits, linear on the Gaussian mixture"
    return confidence_figure(outcome.figure_data["reports"], title=title)


EXPERIMENT = Experiment(
    "confidence_deviation", "claim", CLAIM, full=Config(),
    quick=Config(seeds=2, hidden=64, steps=300, mixture_n=300, mixture_test=300, bootstrap=100),
    measure=measure, figure=figure,
)  # fmt: skip
