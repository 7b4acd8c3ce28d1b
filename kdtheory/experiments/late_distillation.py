r"""Late distillation: switching from one-hot labels to the teacher mid-training (claim O2).

MLP part (simulated): on a Gaussian mixture with overlapping classes and 20% label noise, a teacher
is trained on one-hot labels; students of the same architecture (one shared initialization per
seed) are trained for the same number of steps with the teacher weight switching from 0 to 1 at a
fraction ``f`` of training: ``f = 1`` is one-hot training, ``f = 0`` distillation from the start.
Test accuracy is reported as mean ± std over seeds.

Linear part (closed form, :mod:`kdtheory.distill`): in a planted linear regression model the
same question is answered exactly with gradient flow — population risk of one-hot training,
distillation from the start and the late switch at each ``f`` (the teacher: one-hot flow for the
same time budget).

The recovered share of distillation's gain at a switch ``f`` is
``(score(f) − score(one-hot)) / (score(distillation) − score(one-hot))``.

Verdict rule (MLP): *supported* when distillation beats one-hot by more than two standard errors
(paired over seeds) and switching at ``f = 0.5`` recovers at least half of that gain on average;
*not supported* when the gain is significant but less than half is recovered; *inconclusive* when
distillation's gain itself is not significant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdtheory.data import gaussian_mixture, planted_linear
from kdtheory.distill import Recipe, distill_filter, late_switch_filter
from kdtheory.eigen import Spectrum
from kdtheory.experiments.harness import Experiment, finish, pyplot
from kdtheory.experiments.result import JOINT, Effect, Outcome
from kdtheory.planted import population_risk

__all__ = ["EXPERIMENT", "Config", "figure", "measure"]

CLAIM = "Switching to distillation in the middle of training recovers much of distillation's gain"


@dataclass(frozen=True)
class Config:
    """Configuration of :func:`measure`.

    Attributes:
      seeds: seeds of the MLP part (data and initializations).
      switch_fractions: fractions of training spent on one-hot labels before switching.
      steps, hidden, learning_rate: MLP training.
      n, n_test, label_noise: Gaussian mixture.
      planted_n, planted_d, planted_noise, planted_seeds: linear part.
      budget_factor: the linear part's time budget, in multiples of the best early-stopping time.
    """

    seeds: int = 5
    switch_fractions: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    steps: int = 1500
    hidden: int = 128
    learning_rate: float = 0.5
    n: int = 500
    n_test: int = 2000
    label_noise: float = 0.2
    planted_n: int = 100
    planted_d: int = 200
    planted_noise: float = 0.5
    planted_seeds: int = 8
    budget_factor: float = 4.0


def _mlp_part(cfg: Config, say) -> dict:
    from kdtheory.simulate import Loss, Optimizer, mlp, train_model

    fr = cfg.switch_fractions
    acc = np.zeros((cfg.seeds, len(fr)))
    for seed in range(cfg.seeds):
        data = gaussian_mixture(cfg.n, cfg.n_test, label_noise=cfg.label_noise, seed=seed)
        model = mlp([data.X.shape[1], cfg.hidden, data.Y.shape[1]])
        kw = dict(X_test=data.X_test, y_test=data.Y_test, t=[0, cfg.steps])
        opt = Optimizer(learning_rate=cfg.learning_rate)
        teacher = train_model(
            model, data.X, data.Y, loss=Loss("ce", normalization="mean"), optimizer=opt, seed=1000 + seed, **kw
        )
        for j, f in enumerate(fr):
            s = int(round(f * cfg.steps))
            if s >= cfg.steps:
                loss = Loss("ce", normalization="mean")
            elif s == 0:
                loss = Loss("ce", normalization="mean", teacher_weight=1.0)
            else:
                loss = Loss("ce", normalization="mean", teacher_weight=0.0, teacher_weight_after=1.0, switch_t=s)
            run = train_model(
                model, data.X, data.Y, loss=loss, optimizer=opt, teacher=teacher.train[-1], seed=seed, **kw
            )
            acc[seed, j] = run.test_accuracy[-1]
        say(f"seed {seed}: test accuracy by switch fraction {np.array2string(acc[seed], precision=3)}")
    return {"accuracy": acc}


def _linear_part(cfg: Config) -> dict:
    fr = np.asarray(cfg.switch_fractions, dtype=float)
    rec = Recipe(normalization="mean")
    risks = np.zeros((cfg.planted_seeds, fr.size))
    for seed in range(cfg.planted_seeds):
        p = planted_linear(
            cfg.planted_n, cfg.planted_d, exponent=1.5, signal_exponent=0.5, noise=cfg.planted_noise, seed=seed
        )
        spec = Spectrum.from_features(p.X)
        grid = np.geomspace(1e-2, 1e5, 300)
        r_oh = population_risk(spec, p.y, p.theta_star, p.cov_evals, rec.filter(spec, grid))
        S = cfg.budget_factor * grid[int(np.argmin(r_oh))]  # a budget past the best early stopping
        for j, f in enumerate(fr):
            if f >= 1:
                g = rec.filter(spec, S)
            elif f <= 0:
                g = distill_filter(spec, S, teacher_t=S, teacher=rec)
            else:
                g = late_switch_filter(spec, (1 - f) * S, teacher_t=S, switch_t=f * S, recipe=rec)
            risks[seed, j] = population_risk(spec, p.y, p.theta_star, p.cov_evals, g)
    return {"risk": risks}


def _recovered(score: np.ndarray, fr: tuple[float, ...]) -> np.ndarray:
    """Share of the distillation gain recovered at each fraction, from seed means."""
    m = score.mean(axis=0)
    oh, kd = m[list(fr).index(1.0)], m[list(fr).index(0.0)]
    return (m - oh) / (kd - oh) if kd != oh else np.full_like(m, np.nan)


def measure(cfg: Config, say) -> Outcome:
    """MLP switch fractions over seeds and the planted linear model in closed form; the rule above."""
    if 0.0 not in cfg.switch_fractions or 1.0 not in cfg.switch_fractions or 0.5 not in cfg.switch_fractions:
        raise ValueError("switch_fractions must include 0 (distillation), 0.5 and 1 (one-hot)")
    fr = cfg.switch_fractions
    mlp_res = _mlp_part(cfg, say)
    lin = _linear_part(cfg)
    acc = mlp_res["accuracy"]
    i_oh, i_kd, i_half = fr.index(1.0), fr.index(0.0), fr.index(0.5)
    diff = acc[:, i_kd] - acc[:, i_oh]
    se = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else float("inf")
    rec_mlp = _recovered(acc, fr)
    rec_lin = _recovered(-lin["risk"], fr)
    significant = diff.mean() > 2 * se
    if not significant:
        verdict = "inconclusive"
    else:
        verdict = "supported" if rec_mlp[i_half] >= 0.5 else "not supported"

    m, sd = acc.mean(axis=0), acc.std(axis=0, ddof=1) if cfg.seeds > 1 else np.zeros(len(fr))
    lr_m = lin["risk"].mean(axis=0)
    control = "one-hot training from the same initialization (f = 1), paired by seed"
    effects = (
        Effect(
            "MLP test accuracy gain of distillation from the start (f = 0) over one-hot", float(diff.mean()),
            float(diff.mean() - 2 * se), float(diff.mean() + 2 * se), cfg.seeds, control,
            "the gain must exceed 2 se (else inconclusive)", "mean ± 2 se of the paired differences over seeds",
            verdict, JOINT,
        ),
        Effect(
            "share of that gain recovered by switching at f = 0.5", float(rec_mlp[i_half]), None, None, cfg.seeds,
            control, "supported when ≥ 0.5 (on the point estimate), given a significant gain",
            "none: a ratio of seed means, no interval computed", verdict, JOINT,
        ),
    )  # fmt: skip
    return Outcome(
        verdict,
        (
            f"MLP test accuracy one-hot {m[i_oh]:.4f} ± {sd[i_oh]:.4f}, distillation {m[i_kd]:.4f} ± {sd[i_kd]:.4f} "
            f"(paired gain {diff.mean():.4f} ± {se:.4f} se, > 2 se required: {bool(significant)}); switching at "
            f"half-time recovers {rec_mlp[i_half]:.2f} of the gain (≥ 0.5 required). Linear closed form "
            f"(reported): risk one-hot {lr_m[i_oh]:.4g}, distillation {lr_m[i_kd]:.4g}, switch at 0.5 "
            f"{lr_m[i_half]:.4g} (recovers {rec_lin[i_half]:.2f})"
        ),
        measured={
            "switch_fractions": list(fr),
            "mlp_test_accuracy_mean": m.tolist(),
            "mlp_test_accuracy_sd": sd.tolist(),
            "mlp_test_accuracy_per_seed": acc.tolist(),
            "mlp_recovered_share": rec_mlp.tolist(),
            "linear_risk_mean": lr_m.tolist(),
            "linear_risk_per_seed": lin["risk"].tolist(),
            "linear_recovered_share": rec_lin.tolist(),
        },
        effects=effects,
        figure_data={"accuracy": acc, "linear_risk": lin["risk"]},
    )


def figure(outcome: Outcome, cfg: Config):
    r"""Outcome against the fraction of training spent on one-hot labels before the switch.

    Left: MLP test accuracy (mean ± sd over seeds, thin lines per seed). Right: population risk of
    the linear model in closed form (mean ± sd over planted seeds). ``f = 0`` is distillation from
    the start, ``f = 1`` one-hot training throughout.

    Args:
      outcome: :func:`measure`'s outcome; ``figure_data`` holds the MLP test accuracies and the
        linear model's risks, each ``(seeds, fractions)``.
      cfg: the configuration (switch fractions for the x axis, seeds for the title).

    Returns:
      Two panels: MLP accuracy and linear risk against the switch fraction.
    """
    fractions = np.asarray(cfg.switch_fractions)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for row in outcome.figure_data["accuracy"]:
        axes[0].plot(fractions, row, color="C0", alpha=0.25, lw=1)
    for ax, key, color in ((axes[0], "accuracy", "C0"), (axes[1], "linear_risk", "C3")):
        v = outcome.figure_data[key]
        sd = v.std(axis=0, ddof=1) if v.shape[0] > 1 else np.zeros(fractions.size)
        ax.errorbar(fractions, v.mean(axis=0), yerr=sd, color=color, lw=2, marker="o", capsize=3)
        ax.set_xlabel("fraction of training on one-hot labels before switching to the teacher")
        ax.grid(alpha=0.3)
    axes[0].set(ylabel="test accuracy", title="MLP: 0 = distillation throughout, 1 = one-hot throughout")
    axes[1].set(ylabel="excess population risk", title="planted linear model, gradient flow, closed form")
    title = f"Late distillation: MLP on a noisy Gaussian mixture ({cfg.seeds} seeds) | linear model, closed form"
    return finish(fig, title)


EXPERIMENT = Experiment(
    "late_distillation", "claim", CLAIM, full=Config(),
    quick=Config(seeds=2, steps=300, hidden=32, n=300, n_test=500, planted_n=40, planted_d=80, planted_seeds=3),
    measure=measure, figure=figure,
)  # fmt: skip
