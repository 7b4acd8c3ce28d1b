r"""Late distillation: switching from one-hot labels to the teacher mid-training (claim O2).

Design (:mod:`kdtheory.experiments.arms`): per seed, a teacher; from one initialization, with one
optimizer, budget and minibatch order, the distilled student (``f = 0``), its one-hot twin
(``f = 1``, the budget-matched control) and the late switch at ``f = 0.5`` (one-hot labels for half
the budget, then the teacher). Regimes (:mod:`kdtheory.experiments.design`): ``paper`` (clean labels,
teacher trained to the end of its budget, τ ∈ {1, 4}, 20 seeds; the mixture's labels are samples of
the Bayes posterior), ``compression`` (MNIST-1D 40-256-256-10 → 40-64-10) and ``noisy-labels``
(η > 0, teacher early-stopped on the noisy validation split — there the twin memorizes flipped
labels, so its gain is a **confound**, not the evidence). Paired 95% t intervals over seeds; the
ratio by Fieller's interval.

Effects and rules, fixed before the registered run (per block: regime × data set × τ):

* **O2-a** gain = test accuracy(student) − accuracy(twin) at the end of the budget. Rule: > 0.
* **O2-b** recovered share at ``f = 0.5`` = [acc(late) − acc(twin)] / [acc(student) − acc(twin)]
  (ratio of mean gains, Fieller). Rule: > 0.5 ("recovers much of the gain"); inconclusive
  whenever the gain's interval contains 0 (no gain to recover).
* **O2-c** the gain and **O2-d** the share with every arm early-stopped on the validation split
  (clean in ``paper`` and ``compression``). Rules: > 0 and > 0.5.

The claim's verdict reads O2-b in the ``paper`` regime on the mixture and MNIST-1D at every τ of
``o2_temperatures``: *supported* when supported in all those blocks, *not supported* when not
supported in one, *inconclusive* otherwise. Digits (teachers near 96% accuracy: little gain to
recover), ``compression`` and ``noisy-labels`` are decided by the same rules and reported.

Linear side (closed form, :mod:`kdtheory.distill`, reported, not decided): in a planted linear
regression model, the population risk of one-hot gradient flow run to a budget of 4× its best
stopping time, distillation from that teacher, the late switch at ``f = 0.5`` — and the *best
early-stopped one-hot model* (the minimum of the one-hot risk over time), the fair baseline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import numpy as np

from kdtheory.data import PlantedLinear, planted_linear
from kdtheory.distill import distill_filter, late_switch_filter
from kdtheory.eigen import Filter, Recipe, Spectrum
from kdtheory.experiments.design import O2_FRACTION, QUICK, Suite
from kdtheory.experiments.effects import difference_effect, interval_text, share_effect, tag
from kdtheory.experiments.harness import Experiment, Progress, finish, pyplot
from kdtheory.experiments.measures import Block, blocks
from kdtheory.experiments.result import Outcome
from kdtheory.planted import population_risk
from kdtheory.stats import Effect, Rule, all_hold

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["EXPERIMENT", "figure", "measure", "o2_cells"]

CLAIM = "Switching to distillation in the middle of training recovers much of distillation's gain"

GAIN = Rule(0.0, "greater")
SHARE = Rule(0.5, "greater")
CONTROL = "one-hot twin: same initialization, optimizer, budget and minibatch order (paired by seed)"
CONTROL_ES = "one-hot twin early-stopped on the validation split (every arm early-stopped the same way)"

#: the blocks whose O2-b decides the claim: (regime, data set).
DECISIVE = (("paper", "mixture"), ("paper", "mnist1d"))


class _PlantedSetup(TypedDict):
    """The linear closed-form check: planted model sizes, noise, seeds and the budget over the best stop."""

    n: int
    d: int
    noise: float
    seeds: int
    budget_factor: float


_PLANTED: _PlantedSetup = {"n": 100, "d": 200, "noise": 0.5, "seeds": 8, "budget_factor": 4.0}


def _linear_part(seeds: int) -> dict[str, np.ndarray]:
    rec = Recipe(normalization="mean")
    out: dict[str, list[float]] = {k: [] for k in ("one_hot", "best_one_hot", "distill", "late_0.5")}
    for seed in range(seeds):
        p = planted_linear(
            _PLANTED["n"], _PLANTED["d"], exponent=1.5, signal_exponent=0.5, noise=_PLANTED["noise"], seed=seed
        )
        spec = Spectrum.from_features(p.X)
        grid = np.geomspace(1e-2, 1e5, 300)
        r_oh = population_risk(spec, p.y, p.theta_star, p.cov_evals, rec.filter(spec, grid))
        S = _PLANTED["budget_factor"] * grid[int(np.argmin(r_oh))]

        def risk(g: Filter, spec: Spectrum = spec, p: PlantedLinear = p) -> float:
            return float(np.ravel(population_risk(spec, p.y, p.theta_star, p.cov_evals, g))[0])

        out["one_hot"].append(risk(rec.filter(spec, S)))
        out["best_one_hot"].append(float(np.min(r_oh)))
        out["distill"].append(risk(distill_filter(spec, S, teacher_t=S, teacher=rec)))
        out["late_0.5"].append(risk(late_switch_filter(spec, 0.5 * S, teacher_t=S, switch_t=0.5 * S, recipe=rec)))
    return {k: np.array(v) for k, v in out.items()}


def o2_cells(block: Block) -> list[Effect]:
    """The O2 effects of one block (``block.o2``): gain, share, and both early-stopped.

    Args:
      block: a :class:`~kdtheory.experiments.measures.Block` with the late switch trained.

    Returns:
      Tagged effects O2-a, O2-b, O2-c, O2-d (split ``test``, control ``twin``).
    """
    d, rows = block.design, block.rows
    where = f"{block.regime} {d.dataset} τ={d.temperature:g}"
    if block.axis is not None:
        where += f" [map {block.axis}={block.value}]"
    cell = dict(regime=block.regime, dataset=d.dataset, split="test", tau=d.temperature, control_arm="twin")
    return [
        tag(difference_effect(f"{where}: O2-a test accuracy gain, student − twin", rows, "acc_student", "acc_twin",
                              GAIN, CONTROL), claim="O2-a gain", **cell),
        tag(share_effect(f"{where}: O2-b share of the gain recovered by switching at f = {O2_FRACTION:g}", rows,
                         O2_FRACTION, SHARE, CONTROL), claim="O2-b share", **cell),
        tag(difference_effect(f"{where}: O2-c gain, every arm early-stopped on the validation split", rows,
                              "acc_student_es", "acc_twin_es", GAIN, CONTROL_ES), claim="O2-c gain (early-stopped)",
            **cell),
        tag(share_effect(f"{where}: O2-d share at f = {O2_FRACTION:g}, every arm early-stopped", rows, O2_FRACTION,
                         SHARE, CONTROL_ES, suffix="_es"), claim="O2-d share (early-stopped)", **cell),
    ]  # fmt: skip


def _means(block: Block) -> dict[str, float]:
    keys = [k for k in block.rows[0] if k.startswith(("acc_", "teacher_", "bayes")) and not isinstance(
        block.rows[0][k], list)]  # fmt: skip
    return {k: float(np.mean([r[k] for r in block.rows])) for k in keys}


def measure(cfg: Suite, say: Progress) -> Outcome:
    """Every block of ``cfg`` with a late switch; O2 decided per block (the rules above).

    Args: see :class:`~kdtheory.experiments.harness.Measure`.

    Returns:
      The :class:`~kdtheory.experiments.result.Outcome`.
    """
    effects: list[Effect] = []
    means: dict[str, dict[str, float]] = {}
    map_rows: list[str] = []
    for b in blocks(cfg, say):
        if not b.o2:
            continue
        eff = o2_cells(b)
        name = f"{b.regime} {b.design.dataset} τ={b.design.temperature:g}"
        if b.axis is not None:
            a, s = eff[0], eff[1]
            map_rows.append(f"{b.design.dataset} {b.axis}={b.value} ({len(b.rows)} seeds): gain "
                            f"{interval_text([a.estimate, a.ci_low, a.ci_high], 100, 1)} pts {a.verdict}; share "
                            f"{interval_text([s.estimate, s.ci_low, s.ci_high])} {s.verdict}")  # fmt: skip
            continue
        effects += eff
        means[name] = _means(b)
    decisive = [e for e in effects if e.extra["claim"] == "O2-b share"
                and (e.extra["regime"], e.extra["dataset"]) in DECISIVE]  # fmt: skip
    verdict = all_hold(e.verdict for e in decisive)

    def line(e: Effect, scale: float = 1.0) -> str:
        return (
            f"{e.extra['regime']} {e.extra['dataset']} τ={e.extra['tau']:g} "
            f"{interval_text([e.estimate, e.ci_low, e.ci_high], scale, 1 if scale != 1 else 3)} → {e.verdict}"
        )

    lin = _linear_part(min(cfg.paper_seeds, _PLANTED["seeds"]))
    lin_mean = {k: float(v.mean()) for k, v in lin.items()}
    reason = (
        "O2-b (rule: Fieller 95% interval of the share at f = 0.5 > 0.5) in the paper regime on the mixture and "
        f"MNIST-1D: {'; '.join(line(e) for e in decisive)}. Gains O2-a (points): "
        f"{'; '.join(line(e, 100) for e in effects if e.extra['claim'] == 'O2-a gain')}. Both early-stopped O2-c: "
        f"{'; '.join(line(e, 100) for e in effects if e.extra['claim'] == 'O2-c gain (early-stopped)')}. "
        "noisy-labels gains are a confound (the twin memorizes flipped labels). Linear closed form: risk one-hot "
        f"(4× best stop) {lin_mean['one_hot']:.4g}, best early-stopped one-hot {lin_mean['best_one_hot']:.4g}, "
        f"distillation {lin_mean['distill']:.4g}, late switch 0.5 {lin_mean['late_0.5']:.4g}"
    )
    return Outcome(
        verdict, reason, effects=tuple(effects),
        measured={"means": means, "map_table": map_rows, "linear_risk_mean": lin_mean,
                  "linear_risk_per_seed": {k: v.tolist() for k, v in lin.items()}},
        figure_data={"effects": effects},
    )  # fmt: skip


def figure(outcome: Outcome, cfg: Suite) -> Figure:
    r"""O2 per block: the gain (end of budget and early-stopped) and the recovered share at f = 0.5.

    Left: paired test-accuracy gain of the student over the twin (points, 95% t), at the end of the
    budget (circles) and with every arm early-stopped (stars), per block. Right: the recovered share
    at ``f = 0.5`` with its Fieller interval; where the gain's interval contains 0 the share has no
    interval and is drawn hollow (clipped to the axis, −1 to 2); the dotted line is the rule's 0.5.

    Args:
      outcome: :func:`measure`'s outcome.
      cfg: the :class:`~kdtheory.experiments.design.Suite`.

    Returns:
      A matplotlib Figure.
    """
    plt = pyplot()
    eff = outcome.figure_data["effects"]
    names = list(dict.fromkeys(f"{e.extra['regime']} {e.extra['dataset']} τ={e.extra['tau']:g}" for e in eff))
    x = np.arange(len(names))
    fig, ax = plt.subplots(1, 2, figsize=(max(10, 1.1 * len(names) + 4), 4.8))

    def pick(claim: str) -> np.ndarray:
        out = []
        for n in names:
            e = next(e for e in eff if e.extra["claim"] == claim
                     and f"{e.extra['regime']} {e.extra['dataset']} τ={e.extra['tau']:g}" == n)  # fmt: skip
            out.append([np.nan if v is None else v for v in (e.estimate, e.ci_low, e.ci_high)])
        return np.array(out, dtype=float)

    for k, (claim, mk, shift, scale, a) in enumerate((("O2-a gain", "o", -0.1, 100, 0),
                                                      ("O2-c gain (early-stopped)", "*", 0.1, 100, 0),
                                                      ("O2-b share", "o", -0.1, 1, 1),
                                                      ("O2-d share (early-stopped)", "*", 0.1, 1, 1))):  # fmt: skip
        v = scale * pick(claim)
        ax[a].errorbar(x + shift, v[:, 0], yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], fmt=mk, color=f"C{k}",
                       capsize=3, label=claim)  # fmt: skip
        none = np.isnan(v[:, 1])
        if a == 1 and none.any():
            ax[a].plot(x[none] + shift, np.clip(v[none, 0], -1.0, 2.0), mk, mfc="white", color=f"C{k}", ms=8)
    ax[0].axhline(0, color="k", lw=0.8)
    ax[0].set(ylabel="test accuracy − twin's (points)", title="gain of the student over the budget-matched twin")
    ax[1].axhline(0.5, color="k", ls=":", lw=1)
    ax[1].axhline(0, color="k", lw=0.8)
    ax[1].axhline(1, color="k", lw=0.5)
    ax[1].set_ylim(-1.0, 2.0)  # a share whose gain's interval contains 0 has no interval (hollow, clipped)
    ax[1].set(ylabel="recovered share at f = 0.5", title="share (late − twin)/(student − twin), Fieller 95%; "
              "hollow: gain not established, no interval")  # fmt: skip
    for a in ax:
        a.set_xticks(x, names, rotation=60, fontsize=7)
        a.legend(fontsize=7)
    return finish(fig, "Late distillation (O2) by regime: noisy-labels gains are the twin's overfitting (a confound)")


EXPERIMENT = Experiment("late_distillation", "claim", CLAIM, full=Suite(), quick=QUICK, measure=measure, figure=figure)
