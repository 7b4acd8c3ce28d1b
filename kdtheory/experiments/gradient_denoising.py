r"""Distillation as a gradient denoiser (claim T2).

On a Gaussian mixture with overlapping classes and label noise (hard points), a teacher MLP is
trained on one-hot labels. A student (its own initialization) is trained on one-hot labels and
recorded along the way (an MLP of the teacher's architecture, and a linear softmax model with the
same MLP teacher); at each checkpoint the per-example gradients of the *same parameters*
are computed twice — against the one-hot labels and against the teacher's soft targets — giving
``tr Σ`` and ``B_simple`` for both. At the end:

* the decomposition ``g_OH = g_KD + ξ`` and the share of ``Σ‖ξ_i‖²`` in each teacher-confidence
  decile (where does the removed noise come from?);
* the Monte-Carlo check of the Bayes-teacher identity, labels resampled from the teacher's
  probabilities (20,000 draws): in logit space for the MLP, in parameter space (exact Jacobians)
  for the linear model;
* the checkpoint where the noise gap ``tr Σ_OH − tr Σ_KD`` (relative to ``tr Σ_OH``) is largest,
  to relate to ``late_distillation``.

Verdict rule: *supported* when the teacher's targets give a smaller ``tr Σ`` than one-hot labels
at every checkpoint after initialization for both models, both Monte-Carlo checks agree with the
closed form within 3 standard errors, and the least confident 20% of points carry more than 20%
of the removed noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdtheory.data import gaussian_mixture
from kdtheory.experiments.harness import Experiment, finish, pyplot
from kdtheory.experiments.result import JOINT, Effect, Outcome

__all__ = ["EXPERIMENT", "Config", "figure", "measure"]

CLAIM = "The distillation gradient is the one-hot gradient minus noise concentrated on low-confidence points"


@dataclass(frozen=True)
class Config:
    """Configuration of :func:`measure`.

    Attributes:
      n: training points; label_noise: fraction of flipped training labels.
      hidden: MLP width; steps: training steps; learning_rate: GD step size.
      checkpoints: number of (log-spaced) checkpoints.
      draws: Monte-Carlo label draws.
      seed: data and initialization seed.
    """

    n: int = 400
    label_noise: float = 0.2
    hidden: int = 64
    steps: int = 2000
    learning_rate: float = 0.5
    checkpoints: int = 12
    draws: int = 20_000
    seed: int = 0


def measure(cfg: Config, say) -> Outcome:
    """Gradient-noise statistics along one-hot training, their decomposition and the Bayes identity."""
    import jax
    from jax.flatten_util import ravel_pytree

    from kdtheory.gradients import distillation_gradients, per_example_jacobians, statistics_along
    from kdtheory.noise import bayes_monte_carlo, decompose
    from kdtheory.simulate import Loss, Optimizer, linear_model, mlp, train_model

    data = gaussian_mixture(cfg.n, 10, label_noise=cfg.label_noise, seed=cfg.seed)
    d, k = data.X.shape[1], data.Y.shape[1]
    ck = np.unique(np.r_[0, np.geomspace(1, cfg.steps, cfg.checkpoints - 1).round().astype(int)])
    opt = Optimizer(learning_rate=cfg.learning_rate)
    ce = Loss("ce", normalization="mean")
    out: dict = {}
    final = {}
    net = mlp([d, cfg.hidden, k])
    teacher = train_model(net, data.X, data.Y, t=[0, cfg.steps], loss=ce, optimizer=opt, seed=cfg.seed + 100)
    z = teacher.train[-1]  # one teacher (the MLP) for both students
    for name, model in {"MLP": net, "linear": linear_model(d, k)}.items():
        template = model.init(jax.random.PRNGKey(0))
        _, unravel = ravel_pytree(template)
        student = train_model(
            model, data.X, data.Y, t=ck, loss=ce, optimizer=opt, seed=cfg.seed, project=lambda p: ravel_pytree(p)[0]
        )
        s_oh = statistics_along(model, template, student.projection, data.X, data.Y)
        s_kd = statistics_along(
            model, template, student.projection, data.X, data.Y, loss=Loss("ce", teacher_weight=1.0), teacher=z
        )
        tr_oh, tr_kd = [s.trace for s in s_oh], [s.trace for s in s_kd]
        b_oh, b_kd = [s.b_simple for s in s_oh], [s.b_simple for s in s_kd]
        out[name] = {k_: np.array(v) for k_, v in (("oh", tr_oh), ("kd", tr_kd), ("b_oh", b_oh), ("b_kd", b_kd))}
        final[name] = (unravel(student.projection[-1]), z, student.train[-1], model)
        gap = (out[name]["oh"] - out[name]["kd"]) / out[name]["oh"]
        out[name]["gap"] = gap
        say(f"{name}: tr Σ one-hot {tr_oh[-1]:.4g} vs teacher {tr_kd[-1]:.4g} at step {ck[-1]}")

    # where the removed noise comes from (MLP, last checkpoint)
    params, z, f, model = final["MLP"]
    dec = decompose(*distillation_gradients(model, params, data.X, data.Y, z), z)
    low20 = float(dec.bin_share[:2].sum())
    # Monte-Carlo checks of the Bayes identity
    mc_logit = bayes_monte_carlo(z, f, draws=cfg.draws, seed=cfg.seed)
    lp, lz, lf, lmodel = final["linear"]
    J = per_example_jacobians(lmodel.apply, lp, data.X)

    mc_param = bayes_monte_carlo(lz, lf, J, draws=cfg.draws, seed=cfg.seed + 1)
    z_scores = [(m - c) / s for m, s, c in (mc_logit, mc_param)]
    lower_everywhere = {name: bool(np.all(v["kd"][1:] < v["oh"][1:])) for name, v in out.items()}
    mc_ok = all(abs(zs) < 3 for zs in z_scores)
    concentrated = low20 > 0.2
    verdict = "supported" if all(lower_everywhere.values()) and mc_ok and concentrated else "not supported"
    peak = {name: int(ck[1:][np.argmax(v["gap"][1:])]) for name, v in out.items()}

    control = "the one-hot gradient at the same parameters"
    none = "none: one seed, no interval computed"
    ratio_rule = "tr Σ_KD < tr Σ_OH at every checkpoint after initialization, for both models"
    effects = tuple(
        Effect(f"{m}: final tr Σ_KD / tr Σ_OH", float(out[m]["kd"][-1] / out[m]["oh"][-1]), None, None, 1, control,
               ratio_rule, none, verdict, JOINT)
        for m in out
    ) + (
        Effect("share of the removed noise on the lowest-20% teacher-confidence points", low20, None, None, 1,
               "the uniform share 0.2", "> 0.2", none, verdict, JOINT),
        Effect("Bayes identity, Monte Carlo z-score (MLP, logit space)", float(z_scores[0]), None, None, 1,
               "the closed form", "|z| < 3", f"none: {cfg.draws} Monte Carlo draws give the z-score itself",
               verdict, JOINT),
    )  # fmt: skip
    return Outcome(
        verdict,
        (
            f"tr Σ with teacher targets below one-hot at every checkpoint: {lower_everywhere}; "
            f"final ratio tr Σ_KD/tr Σ_OH MLP {out['MLP']['kd'][-1] / out['MLP']['oh'][-1]:.3f}, linear "
            f"{out['linear']['kd'][-1] / out['linear']['oh'][-1]:.3f}; Bayes identity Monte Carlo "
            f"({cfg.draws} draws) z-scores {z_scores[0]:.2f} (MLP, logit space), {z_scores[1]:.2f} (linear, parameter "
            f"space), |z| < 3 required; lowest-20% teacher-confidence points carry {100 * low20:.1f}% of the removed "
            f"noise (> 20% required). Relative noise gap largest at step {peak['MLP']} (MLP) / {peak['linear']} "
            f"(linear) of {cfg.steps}"
        ),
        measured={
            "steps": ck.tolist(),
            **{f"{name}_trace_onehot": v["oh"].tolist() for name, v in out.items()},
            **{f"{name}_trace_teacher": v["kd"].tolist() for name, v in out.items()},
            **{f"{name}_b_simple_onehot": v["b_oh"].tolist() for name, v in out.items()},
            **{f"{name}_b_simple_teacher": v["b_kd"].tolist() for name, v in out.items()},
            **{f"{name}_relative_gap": v["gap"].tolist() for name, v in out.items()},
            "removed_noise_share_by_confidence_decile": dec.bin_share.tolist(),
            "bayes_mc_logit": list(mc_logit),
            "bayes_mc_linear_parameters": list(mc_param),
            "peak_gap_step": peak,
        },
        effects=effects,
        figure_data={"t": ck, "stats": out, "bin_share": dec.bin_share, "bayes_logit": tuple(mc_logit)},
    )


def figure(outcome: Outcome, cfg: Config):
    r"""Gradient noise along training, one-hot against teacher targets, and where the removed noise sits.

    Args:
      outcome: :func:`measure`'s outcome; ``figure_data`` holds the checkpoints ``t``, the noise
        statistics per model, the removed-noise share per decile and the Bayes Monte Carlo.
      cfg: the configuration (label noise, for the title).

    Returns:
      Three panels: tr Σ and B_simple along training; the removed noise per confidence decile.
    """
    d = outcome.figure_data
    bin_share = d["bin_share"]
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    x = np.maximum(d["t"], 0.8)
    for k, (name, v) in enumerate(d["stats"].items()):
        axes[0].plot(x, v["oh"], color=f"C{k}", lw=2, label=f"{name}: one-hot targets")
        axes[0].plot(x, v["kd"], color=f"C{k}", lw=2, ls="--", label=f"{name}: teacher targets")
        axes[1].plot(x, v["b_oh"], color=f"C{k}", lw=2, label=f"{name}: one-hot")
        axes[1].plot(x, v["b_kd"], color=f"C{k}", lw=2, ls="--", label=f"{name}: teacher")
    for ax, ylabel in ((axes[0], "tr Σ of per-example gradients"), (axes[1], "B_simple = tr Σ / ‖G‖²")):
        ax.set(xscale="log", yscale="log", xlabel="training step (one-hot run)", ylabel=ylabel)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_title("gradient noise at the same parameters", fontsize=10)
    axes[1].set_title("simple noise scale", fontsize=10)
    axes[2].bar(np.arange(1, bin_share.size + 1), bin_share, color="C3")
    axes[2].axhline(1 / bin_share.size, color="0.4", ls="--", lw=1, label="uniform share")
    axes[2].set(xlabel="teacher-confidence decile (1 = least confident)", ylabel="share of the removed noise Σ‖ξ_i‖²")
    axes[2].set_title("where the noise that distillation removes comes from")
    axes[2].legend(fontsize=8)
    axes[2].grid(alpha=0.3, axis="y")
    mean, se, closed = d["bayes_logit"][:3]
    return finish(
        fig,
        f"Gradient denoising on a Gaussian mixture with {100 * cfg.label_noise:.0f}% label noise; "
        f"Bayes identity (MC, logit space): {mean:.4g} ± {se:.2g} vs {closed:.4g}",
    )


EXPERIMENT = Experiment(
    "gradient_denoising", "claim", CLAIM, full=Config(),
    quick=Config(n=200, hidden=16, steps=300, checkpoints=6, draws=20_000), measure=measure, figure=figure,
)  # fmt: skip
