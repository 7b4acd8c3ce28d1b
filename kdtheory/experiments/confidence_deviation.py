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

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kdtheory.confidence import analyze
from kdtheory.data import Classification, digits, gaussian_mixture
from kdtheory.experiments.result import ExperimentResult

__all__ = ["CLAIM", "Config", "run", "distill_pair"]

CLAIM = "Where the teacher is unsure, the self-distilled student is even less sure (low-confidence underfitting)"


@dataclass(frozen=True)
class Config:
    """Configuration of :func:`run`.

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

    @classmethod
    def quick(cls) -> Config:
        """CI size: two seeds, short training."""
        return cls(seeds=2, hidden=64, steps=300, mixture_n=300, mixture_test=300, bootstrap=100)


def distill_pair(data: Classification, model, *, steps: int, learning_rate: float, seed: int):
    """Teacher on one-hot labels, then a student (fresh init) on the teacher's logits; final outputs."""
    from kdtheory.simulate import Loss, Optimizer, train_model

    opt = Optimizer(learning_rate)
    kw = dict(X_test=data.X_test, test_labels=data.Y_test, checkpoints=[0, steps], optimizer=opt)
    teacher = train_model(model, data.X, data.Y, loss=Loss("ce"), seed=2 * seed, **kw)
    student = train_model(
        model,
        data.X,
        data.Y,
        loss=Loss("ce", teacher_weight=1.0),
        teacher=teacher.train_outputs[-1],
        seed=2 * seed + 1,
        **kw,
    )
    return teacher, student


def run(
    config: Config | None = None,
    out_dir: str | Path | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Run the experiment; write ``confidence_deviation.png`` into ``out_dir`` when given."""
    from kdtheory import plotting
    from kdtheory.simulate import linear_model, mlp

    cfg = config or Config()
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
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
                teacher, student = distill_pair(data, model, steps=cfg.steps, learning_rate=lr, seed=seed)
                key = f"{mname}/{dname}"
                for split, (zt, zs) in {
                    "train": (teacher.train_outputs[-1], student.train_outputs[-1]),
                    "test": (teacher.test_outputs[-1], student.test_outputs[-1]),
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

    figures: tuple[str, ...] = ()
    if out_dir is not None:
        plotting.confidence_figure(
            figure_reports,
            title="Student vs teacher logit confidence (seed 0): MLP on digits, linear on the Gaussian mixture",
            path=Path(out_dir) / "confidence_deviation.png",
        )
        figures = ("confidence_deviation.png",)

    def fmt(key, stat):
        m, sd, _ = summary[key][stat]
        return f"{m:.3f} ± {sd:.3f}"

    parts = [f"MLP {d}: test low-conf. underfit {v[0]:.2f} ± {v[1]:.2f} (se)" for d, v in decisive.items()]
    slopes = "; ".join(
        f"{key} test slope {fmt(key, 'test_slope')}, train slope {fmt(key, 'train_slope')}" for key in summary
    )
    return ExperimentResult(
        name="confidence_deviation",
        claim=CLAIM,
        verdict=verdict,
        decided_by=(
            f"{'; '.join(parts)} over {cfg.seeds} seeds (mean − 2 se > 0.5 required on both). "
            f"Slopes (reported): {slopes}"
        ),
        measured={key: {stat: list(v) for stat, v in d.items()} for key, d in summary.items()},
        figures=figures,
        config=asdict(cfg),
        seconds=time.perf_counter() - t0,
    )
