r"""The NTK bridge: do real networks follow the kernel picture of distillation?

(i)  Width sweep. MLPs in the NTK parameterization are trained by full-batch gradient descent on
     the MSE loss, on one-hot labels and on a teacher's outputs (the teacher: the same network
     trained on the labels), and compared with their linearization at initialization
     (:func:`kdtheory.ntk.linearized`). The relative gap ``‖f_net − f_lin‖ / ‖f_lin − f_0‖`` at the
     end of training is expected to shrink roughly like ``1/√width``; the fitted log-log slope is
     reported.
(ii) The exaggerated bias on a real network. On a Gaussian mixture and on the digits, a network
     (NTK parameterization) is trained on one-hot labels (the "twin"); its state at ``T`` is the
     teacher; a student from the same initialization is trained on the teacher's outputs. Their
     training outputs are projected on the eigendirections of the empirical NTK at
     initialization; at the twin's time ``t'`` matching the student's progress along the top
     direction, the *lag* ``mean_{k=2..K} (a_k^twin(t') − a_k^student)`` is measured (positive: the
     student lags on the lower directions, as the composed filter predicts) and set next to the
     kernel's closed-form prediction for the same network.

Verdict rule: *supported* when the measured lag is positive on both data sets with mean − 2 se > 0
over seeds; *not supported* when it is negative with mean + 2 se < 0 on either; else
*inconclusive*. The width-sweep slope is reported (expected near −0.5), not part of the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdtheory.data import digits, gaussian_mixture
from kdtheory.experiments.harness import Experiment, finish, pyplot
from kdtheory.experiments.result import JOINT, Effect, Outcome

__all__ = ["EXPERIMENT", "Config", "figure", "measure"]

CLAIM = "Self-distilled networks show the composed-filter pattern along their NTK eigendirections"


@dataclass(frozen=True)
class Config:
    """Configuration of :func:`measure`.

    Attributes:
      widths: hidden widths of the sweep; sweep_n: training points; sweep_steps: GD steps.
      width: hidden width of part (ii); n: training points of part (ii).
      teacher_time, student_time: part (ii) training lengths in units of ``1/(η λ_1/n)``, the time
        scale of the top NTK direction (so the top direction is neither untouched nor saturated).
      learning_rate: GD step (mean MSE).
      directions: K, the number of top NTK directions compared.
      seeds: seeds per setting.
    """

    widths: tuple[int, ...] = (64, 256, 1024, 4096)
    sweep_n: int = 40
    sweep_steps: int = 200
    width: int = 512
    n: int = 200
    teacher_time: float = 1.0
    student_time: float = 1.0
    learning_rate: float = 1.0
    directions: int = 10
    seeds: int = 3


def _f32(tree):
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), tree)


def _sweep(cfg: Config, say) -> dict:
    import jax

    from kdtheory.ntk import linearized
    from kdtheory.simulate import Loss, Optimizer, mlp, train_model

    gaps = {"one-hot": np.zeros((cfg.seeds, len(cfg.widths))), "distillation": np.zeros((cfg.seeds, len(cfg.widths)))}
    for seed in range(cfg.seeds):
        data = gaussian_mixture(cfg.sweep_n, 10, d=10, seed=seed, label_noise=0.0)
        for j, w in enumerate(cfg.widths):
            m = mlp([10, w, data.Y.shape[1]], parameterization="ntk")
            p = _f32(m.init(jax.random.PRNGKey(seed)))
            opt = Optimizer(learning_rate=cfg.learning_rate)
            kw = dict(loss=Loss("mse", normalization="mean"), optimizer=opt, params=p)
            teacher = train_model(m, data.X, data.Y, t=[0, cfg.sweep_steps], **kw)
            for name, target in (("one-hot", data.Y), ("distillation", teacher.train[-1])):
                run = train_model(m, data.X, target, t=[0, cfg.sweep_steps], **kw)
                lin = linearized(
                    m.apply, p, data.X, target, [0, cfg.sweep_steps],
                    learning_rate=cfg.learning_rate, normalization="mean",
                )  # fmt: skip

                moved = np.linalg.norm(lin.train[-1] - lin.train[0])
                gaps[name][seed, j] = np.linalg.norm(run.train[-1] - lin.train[-1]) / moved
        say(f"width sweep seed {seed}: one-hot gaps {np.array2string(gaps['one-hot'][seed], precision=4)}")
    return gaps


def _lag(a_twin: np.ndarray, a_student: np.ndarray, K: int) -> float:
    """Lag of the student on directions 2..K at the twin's time matching the top direction."""
    top = a_twin[:, 0]
    target = a_student[-1, 0]
    order = np.argsort(top, kind="stable")
    # a_1 of the twin increases with time; interpolate every direction at the matching a_1
    matched = np.array([np.interp(target, top[order], a_twin[order, k]) for k in range(K)])
    return float(np.mean(matched[1:K] - a_student[-1, 1:K]))


def _exaggeration(cfg: Config, say) -> dict:
    import jax

    from kdtheory.distill import Recipe, distill_filter
    from kdtheory.eigen import Spectrum
    from kdtheory.ntk import empirical_ntk, project_residual
    from kdtheory.simulate import Loss, Optimizer, mlp, train_model

    out = {}
    for dname in ("mixture", "digits"):
        measured, predicted = [], []
        for seed in range(cfg.seeds):
            data = gaussian_mixture(cfg.n, 10, seed=seed) if dname == "mixture" else digits(seed=seed)
            X, Y = data.X[: cfg.n], data.Y[: cfg.n]
            m = mlp([X.shape[1], cfg.width, Y.shape[1]], parameterization="ntk")
            p = _f32(m.init(jax.random.PRNGKey(seed)))
            spec = Spectrum.from_kernel(empirical_ntk(m.apply, p, X))
            f0 = np.asarray(m.apply(p, X.astype(np.float32)))
            opt = Optimizer(learning_rate=cfg.learning_rate)
            unit = 1.0 / (cfg.learning_rate * spec.evals[0] / X.shape[0])  # steps per unit of top-direction time
            T = max(1, int(round(cfg.teacher_time * unit)))
            s_steps = max(1, int(round(cfg.student_time * unit)))
            ck = np.unique(np.r_[0, T, np.linspace(1, 4 * (T + s_steps), 200).round().astype(int)])
            mse = Loss("mse", normalization="mean")
            twin = train_model(m, X, Y, t=ck, loss=mse, optimizer=opt, params=p)
            i_T = int(np.searchsorted(ck, T))
            teacher_out = twin.train[i_T]
            student = train_model(m, X, teacher_out, t=[0, s_steps], loss=mse, optimizer=opt, params=p)
            a_twin = project_residual(spec, twin.train, f0, Y)
            a_st = project_residual(spec, student.train, f0, Y)

            measured.append(_lag(a_twin, a_st, cfg.directions))
            # the kernel's prediction: GD with the (traced) NTK and step η/n, composed filter
            rec = Recipe("gd", learning_rate=cfg.learning_rate / X.shape[0], allow_unstable=True)
            a_k_twin = rec.filter(spec, ck).a
            a_k_st = distill_filter(spec, [0, s_steps], teacher_t=float(T), teacher=rec).a
            predicted.append(_lag(a_k_twin, a_k_st, cfg.directions))
            say(f"{dname} seed {seed}: lag measured {measured[-1]:.4f}, kernel prediction {predicted[-1]:.4f}")
        out[dname] = (np.array(measured), np.array(predicted))
    return out


def measure(cfg: Config, say) -> Outcome:
    """The width sweep and the measured against predicted lag on two data sets over seeds; the rule above."""
    gaps = _sweep(cfg, say)
    lags = _exaggeration(cfg, say)
    widths = np.asarray(cfg.widths, float)
    slopes = {name: float(np.polyfit(np.log(widths), np.log(g.mean(0)), 1)[0]) for name, g in gaps.items()}

    def stats(x):
        return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("inf")

    decided = {d: stats(meas) for d, (meas, _) in lags.items()}
    if all(m - 2 * se > 0 for m, se in decided.values()):
        verdict = "supported"
    elif any(m + 2 * se < 0 for m, se in decided.values()):
        verdict = "not supported"
    else:
        verdict = "inconclusive"

    parts = "; ".join(
        f"{d}: measured lag {m:.4f} ± {se:.4f} (se), kernel prediction {lags[d][1].mean():.4f}"
        for d, (m, se) in decided.items()
    )
    effects = tuple(
        Effect(
            f"{d}: student lag on NTK directions 2..{cfg.directions} at matched top progress (kernel predicts "
            f"{lags[d][1].mean():.4g})", m, m - 2 * se, m + 2 * se, cfg.seeds,
            "the one-hot twin from the same initialization", "supported when mean − 2 se > 0 on both data sets; "
            "not supported when mean + 2 se < 0 on either", "mean ± 2 se over seeds", verdict, JOINT,
        )
        for d, (m, se) in decided.items()
    )  # fmt: skip
    return Outcome(
        verdict,
        (
            f"{parts} over {cfg.seeds} seeds (mean − 2 se > 0 on both required). Width sweep (reported): "
            f"log-log slope of the linearization gap {slopes['one-hot']:.2f} (one-hot), {slopes['distillation']:.2f} "
            f"(distillation), −0.5 expected"
        ),
        measured={
            "widths": list(cfg.widths),
            "gap_onehot_mean": gaps["one-hot"].mean(0).tolist(),
            "gap_distillation_mean": gaps["distillation"].mean(0).tolist(),
            "gap_slope": slopes,
            **{f"lag_measured_{d}": meas.tolist() for d, (meas, _) in lags.items()},
            **{f"lag_kernel_{d}": pred.tolist() for d, (_, pred) in lags.items()},
        },
        effects=effects,
        figure_data={"gaps": gaps, "lags": lags},
    )


def figure(outcome: Outcome, cfg: Config):
    r"""Left: linearization gap against width (log-log, with a ``1/√width`` guide). Right: measured
    against kernel-predicted student lag, per data set and seed.

    Args:
      outcome: :func:`measure`'s outcome; ``figure_data`` holds the linearization gaps per seed and
        width, and the measured and kernel-predicted lags per data set.
      cfg: the configuration (the widths, for the x axis).

    Returns:
      Two panels: gap against width; measured against predicted lag.
    """
    gaps, lags = outcome.figure_data["gaps"], outcome.figure_data["lags"]
    widths = np.asarray(cfg.widths, float)
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.3))
    for k, (name, g) in enumerate(gaps.items()):
        sd = g.std(0, ddof=1) if g.shape[0] > 1 else np.zeros(widths.size)
        ax1.errorbar(widths, g.mean(0), yerr=sd, marker="o", color=f"C{k}", capsize=3, label=name)
    ax1.plot(widths, gaps["one-hot"].mean(0)[0] * np.sqrt(widths[0] / widths), "--", color="0.5", label="∝ 1/√width")
    ax1.set(xscale="log", yscale="log", xlabel="hidden width", ylabel="‖f_net − f_lin‖ / ‖f_lin − f_0‖")
    ax1.set_title("trained network vs its linearization")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    for k, (name, (meas, pred)) in enumerate(lags.items()):
        ax2.scatter(pred, meas, color=f"C{k + 2}", label=name, s=30)
    allv = np.concatenate([np.r_[m, p] for m, p in lags.values()])
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.1 * (hi - lo + 1e-12)
    ax2.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="0.5", lw=1, label="y = x")
    ax2.axhline(0, color="0.3", lw=0.8)
    ax2.axvline(0, color="0.3", lw=0.8)
    ax2.set(xlabel="lag predicted by the kernel (closed form)", ylabel="lag measured on the network")
    ax2.set_title("student lag on lower NTK directions at matched top progress")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    return finish(fig, "NTK bridge: linearization gap vs width | student lag at matched top progress")


EXPERIMENT = Experiment(
    "ntk_bridge", "claim", CLAIM, full=Config(),
    quick=Config(widths=(64, 256, 512), sweep_n=20, sweep_steps=60, width=128, n=60, seeds=2),
    measure=measure, figure=figure,
)  # fmt: skip
