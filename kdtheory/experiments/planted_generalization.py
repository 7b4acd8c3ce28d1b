r"""Distillation as a regularizer (claim T1, generalization): does the self-distilled student beat its teacher?

docs/theory.md §3: with gradient descent on linear regression the student's filter is GD's filter
composed with itself, a stronger bias towards the top eigendirections — the paper's prediction is
that this acts as a regularizer, so that in a planted model with a decaying spectrum the best
student generalizes better than the best early-stopped teacher. Asked as a practitioner would
ask it, it is an empirical question, not an identity:

**Design (fixed before the run).** Per seed ``s`` (``seeds`` seeds, training seed
``first_seed + s``): a planted linear model ``y = Xθ* + σε`` (:func:`kdtheory.data.planted_linear`,
``n`` training points in ``d`` dimensions, covariance ``j^{−exponent}``, ``θ*_j ∝
j^{−signal_exponent}`` with ``θ*ᵀΣθ* = 1``) and a held-out **validation sample** of ``n_val``
points from the same model with the same noise σ (seed ``10⁶ + first_seed + s``). Gradient flow
on ``½‖Xw − y‖²/n`` (``normalization="mean"``), times on a log grid of ``grid`` points in
``[10⁻², 10⁵]``.

* **Control**: the early-stopped one-hot model — the teacher time ``T̂`` with the smallest
  validation error.
* **Treatment**: the self-distilled student trained from zero on ``w ŷ_T + (1 − w) y`` for time
  ``t`` — ``(T, t, w)`` with the smallest validation error over the ``T`` grid, the ``t`` grid
  plus ``t = ∞``, and ``w ∈ teacher_weights``
  (:func:`kdtheory.planted.select_on_validation`).
* **Effect**: per seed, the excess-population-risk gain ``R(teacher) − R(student)`` (closed form,
  :func:`kdtheory.planted.population_risk`; positive: the student generalizes better); 95%
  Student-t interval over the seeds (:func:`kdtheory.stats.paired_effect`).
* **Rule** (threshold 0, side "greater"): *supported* when the interval lies above 0,
  *not supported* when it lies below 0, *inconclusive* otherwise. The claim's verdict is the
  rule's on the headline cell ``σ = noise``, ``n_val = n_val``.
* **Map** of the confounders (each cell decided by the same rule, reported apart from the
  verdict): label-noise level σ ∈ ``noise_levels`` × validation size ``n_val`` ∈ ``val_sizes``
  (the winner's curse of selecting among 40·41·4 students instead of 40 teachers shrinks as the
  validation sample grows), on the same seeds. Each cell is a 95% interval with no correction for
  the number of cells: one cell out of ten on either side is weak evidence on its own.
* **Ceiling** (not evidence): both chosen by their *population* risk
  (:func:`kdtheory.planted.search_best`); ``≥ 0`` by construction because the student's grid
  contains the teacher. It shows how much distillation could give if the population were known.

The headline cell (σ = 0.5, ``n_val = n/2``) and the map were fixed after a 16-seed prototype on
training seeds 0–15; the run uses fresh seeds from ``first_seed = 100``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from kdtheory.data import planted_linear
from kdtheory.eigen import Recipe, Spectrum
from kdtheory.experiments.config import param
from kdtheory.experiments.harness import Experiment, Progress, finish, pyplot
from kdtheory.experiments.result import Outcome
from kdtheory.planted import ValidationSelection, search_best, select_on_validation
from kdtheory.stats import Effect, Rule, paired_effect, t_interval

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["EXPERIMENT", "Config", "figure", "measure"]

CLAIM = (
    "Distillation acts as a regularizer (T1): in a planted linear model, the self-distilled student chosen on "
    "validation data has lower population risk than the early-stopped teacher chosen on the same data"
)

#: the rule, fixed before the run: the gain R(teacher) − R(student) must be > 0 (95% t interval).
RULE = Rule(threshold=0.0, side="greater")
CONTROL = "validation-selected early-stopped one-hot teacher, same training and validation samples"
RECIPE = Recipe(normalization="mean")


@dataclass(frozen=True)
class Config:
    """Configuration of :func:`measure` (gradient flow on ``½‖Xw − y‖²/n``).

    Attributes:
      n, d: training size and dimension.
      exponent: population covariance eigenvalues ``j^{−exponent}``.
      signal_exponent: ``θ*_j ∝ j^{−signal_exponent}``.
      noise: the headline label-noise standard deviation σ (``θ*ᵀΣθ* = 1``).
      n_val: the headline validation size.
      seeds: number of seeds (training samples), ≥ 10 at full size.
      first_seed: training seed of the first seed.
      grid: number of log-spaced times in ``[1e-2, 1e5]`` for ``T`` and ``t``.
      teacher_weights: weights on the teacher searched for the student.
      noise_levels: σ values of the map (must contain ``noise``).
      val_sizes: validation sizes of the map (must contain ``n_val``).
    """

    n: int = param(100, "training size", low=2)
    d: int = param(200, "dimension", low=1)
    exponent: float = param(1.5, "population covariance eigenvalues j^(−exponent)", above=0)
    signal_exponent: float = param(0.5, "signal θ*_j ∝ j^(−signal_exponent)", low=0)
    noise: float = param(0.5, "the headline label-noise standard deviation σ (θ*ᵀΣθ* = 1)", low=0)
    n_val: int = param(50, "the headline validation size", low=1)
    seeds: int = param(20, "seeds (training samples); ≥ 10 at full size", low=2)
    first_seed: int = param(100, "training seed of the first seed", low=0)
    grid: int = param(40, "log-spaced times in [1e-2, 1e5] for T and t", low=2)
    teacher_weights: tuple[float, ...] = param(
        (0.25, 0.5, 0.75, 1.0), "weights on the teacher searched for the student", low=0, high=1
    )
    noise_levels: tuple[float, ...] = param((0.1, 0.25, 0.5, 1.0, 2.0), "σ values of the map (contain noise)", low=0)
    val_sizes: tuple[int, ...] = param((50, 200), "validation sizes of the map (contain n_val)", low=1)

    def __post_init__(self) -> None:
        if self.noise not in self.noise_levels or self.n_val not in self.val_sizes:
            raise ValueError("noise_levels must contain noise, and val_sizes must contain n_val (the headline cell)")


class _Grid(TypedDict):
    """The search grid and recipe shared by the validation selection and the ceiling."""

    teacher_t: np.ndarray
    student_t: np.ndarray
    teacher_weight: tuple[float, ...]
    recipe: Recipe


class _Cell(TypedDict):
    """One cell of the map (σ, n_val): its effect over the seeds and what was selected per seed."""

    noise: float
    n_val: int
    effect: Effect
    teacher_risk_mean: float
    student_risk_mean: float
    student_wins: int
    student_is_teacher: int
    selections: list[ValidationSelection]


def _seed(
    cfg: Config, sigma: float, seed: int, Ts: np.ndarray, ts: np.ndarray
) -> tuple[list[ValidationSelection], float]:
    """One training sample: the validation selection for each validation size, and the population-selected ceiling."""
    s = cfg.first_seed + seed
    p = planted_linear(cfg.n, cfg.d, exponent=cfg.exponent, signal_exponent=cfg.signal_exponent, noise=sigma, seed=s)
    spec = Spectrum.from_features(p.X)
    grid = _Grid(teacher_t=Ts, student_t=ts, teacher_weight=cfg.teacher_weights, recipe=RECIPE)
    sels = []
    for n_val in cfg.val_sizes:
        v = planted_linear(n_val, cfg.d, exponent=cfg.exponent, signal=p.theta_star, noise=sigma, seed=10**6 + s)
        sels.append(select_on_validation(spec, p.y, v.X, v.y, p.theta_star, p.cov_evals, **grid))
    return sels, search_best(spec, p.y, p.theta_star, p.cov_evals, **grid).gain


def measure(cfg: Config, say: Progress) -> Outcome:
    """The validation-selected teacher and student per seed and map cell; the rule of the module docstring.

    Args: see :class:`~kdtheory.experiments.harness.Measure`.

    Returns:
      The :class:`~kdtheory.experiments.result.Outcome`: measurements, effects and the verdict.
    """
    if cfg.noise not in cfg.noise_levels or cfg.n_val not in cfg.val_sizes:
        raise ValueError("noise_levels must contain noise, and val_sizes must contain n_val (the headline cell)")
    Ts = np.geomspace(1e-2, 1e5, cfg.grid)
    ts = np.r_[Ts, np.inf]
    cells: list[_Cell] = []
    ceiling = {}
    headline: _Cell | None = None
    for sigma in cfg.noise_levels:
        per_seed = [_seed(cfg, sigma, seed, Ts, ts) for seed in range(cfg.seeds)]
        ceiling[sigma] = np.array([gain for _, gain in per_seed])
        for k, n_val in enumerate(cfg.val_sizes):
            sels = [chosen[k] for chosen, _ in per_seed]
            r_t = np.array([s.teacher_risk for s in sels])
            r_s = np.array([s.student_risk for s in sels])
            # the metric is −risk (higher is better), so treatment − control is the gain R(teacher) − R(student)
            eff = paired_effect(
                f"σ = {sigma:g}, n_val = {n_val}: population-risk gain R(teacher) − R(student)",
                -r_s,
                -r_t,
                control=CONTROL,
                rule=RULE,
            )
            cell: _Cell = {
                "noise": sigma, "n_val": n_val, "effect": eff, "teacher_risk_mean": float(r_t.mean()),
                "student_risk_mean": float(r_s.mean()), "student_wins": int(np.sum(r_s < r_t)),
                "student_is_teacher": int(sum(s.student_is_teacher for s in sels)), "selections": sels,
            }  # fmt: skip
            cells.append(cell)
            if sigma == cfg.noise and n_val == cfg.n_val:
                headline = cell
            say(
                f"σ = {sigma:g}, n_val = {n_val}: gain {eff.estimate:.3g} [{eff.ci_low:.3g}, {eff.ci_high:.3g}] "
                f"({100 * eff.estimate / r_t.mean():.1f}% of the teacher's risk) -> {eff.verdict}"
            )

    if headline is None:  # Config checks that the headline cell is in the map
        raise ValueError("noise_levels must contain noise, and val_sizes must contain n_val (the headline cell)")
    h = headline["effect"]
    rel = h.estimate / headline["teacher_risk_mean"]
    where = {v: ", ".join(f"σ={c['noise']:g}/n_val={c['n_val']}" for c in cells if c["effect"].verdict == v) for v in
             ("supported", "not supported", "inconclusive")}  # fmt: skip
    reason = (
        f"headline σ = {cfg.noise:g}, n_val = {cfg.n_val}, {cfg.seeds} seeds: gain R(teacher) − R(student) = "
        f"{h.estimate:.3g}, 95% t interval [{h.ci_low:.3g}, {h.ci_high:.3g}] ({100 * rel:.1f}% of the teacher's mean "
        f"risk {headline['teacher_risk_mean']:.3g}; student better in {headline['student_wins']}/{cfg.seeds} seeds): "
        f"{h.reason}. Map (same rule per cell): supported at {where['supported'] or 'none'}; not supported at "
        f"{where['not supported'] or 'none'}; inconclusive at {where['inconclusive'] or 'none'} ({len(cells)} cells, "
        f"each at 95%, no multiplicity correction). Ceiling with "
        f"population-selected hyperparameters (≥ 0 by construction, not evidence): mean relative gain "
        + ", ".join(f"σ={s:g}: {100 * c.mean():.1f}%" for s, c in ceiling.items())
    )
    others = tuple(c["effect"] for c in cells if c is not headline)
    return Outcome(
        h.verdict,
        reason,
        measured={
            "headline": {
                "noise": cfg.noise,
                "n_val": cfg.n_val,
                "gain": h.estimate,
                "ci": [h.ci_low, h.ci_high],
                "relative_gain": rel,
                "student_wins": headline["student_wins"],
            },
            "map": [
                {
                    "noise": c["noise"],
                    "n_val": c["n_val"],
                    "gain": c["effect"].estimate,
                    "ci": [c["effect"].ci_low, c["effect"].ci_high],
                    "verdict": c["effect"].verdict,
                    "teacher_risk_mean": c["teacher_risk_mean"],
                    "student_risk_mean": c["student_risk_mean"],
                    "student_wins": c["student_wins"],
                    "student_is_teacher": c["student_is_teacher"],
                }
                for c in cells
            ],
            "ceiling_relative_gain_mean": {f"{s:g}": float(c.mean()) for s, c in ceiling.items()},
            "headline_selections": [
                {
                    "teacher_t": s.teacher_t,
                    "student_teacher_t": s.student_teacher_t,
                    "student_t": s.student_t,
                    "student_teacher_weight": s.student_teacher_weight,
                }
                for s in headline["selections"]
            ],
        },  # fmt: skip
        effects=(h, *others),
        figure_data={"cells": cells, "ceiling": ceiling},
    )


def figure(outcome: Outcome, cfg: Config) -> Figure:
    r"""Two panels: the headline's paired gains per seed with their interval; the map over σ and n_val.

    Args:
      outcome: :func:`measure`'s outcome; ``figure_data`` holds the map's cells (effects and
        selections) and the population-selected ceilings.
      cfg: the configuration (the headline cell, seeds).

    Returns:
      The figure.
    """
    cells, ceiling = outcome.figure_data["cells"], outcome.figure_data["ceiling"]
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    head = next(c for c in cells if c["noise"] == cfg.noise and c["n_val"] == cfg.n_val)
    e = head["effect"]
    per_seed = np.asarray(e.extra["per_seed"])
    ax = axes[0]
    ax.plot(np.arange(per_seed.size), per_seed, "o", color="C0", label="per seed: R(teacher) − R(student)")
    ax.axhspan(e.ci_low, e.ci_high, color="C3", alpha=0.25, label=f"mean, 95% t interval: {e.verdict}")
    ax.axhline(e.estimate, color="C3", lw=2)
    ax.axhline(0.0, color="0.3", lw=1, ls="--")
    ax.set(xlabel=f"seed (training sample; first_seed = {cfg.first_seed})", ylabel="population-risk gain")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(
        f"headline cell σ = {cfg.noise:g}, n = {cfg.n}, n_val = {cfg.n_val}: both chosen on validation\n"
        "(> 0: the student generalizes better than the teacher)"
    )
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    ax = axes[1]
    sig = np.array(cfg.noise_levels)
    for k, n_val in enumerate(cfg.val_sizes):
        row = [c for c in cells if c["n_val"] == n_val]
        scale = np.array([c["teacher_risk_mean"] for c in row])
        est = np.array([c["effect"].estimate for c in row]) / scale
        lo = np.array([c["effect"].ci_low for c in row]) / scale
        hi = np.array([c["effect"].ci_high for c in row]) / scale
        x = sig * (1 + 0.06 * (k - (len(cfg.val_sizes) - 1) / 2))
        ax.errorbar(x, 100 * est, yerr=100 * np.array([est - lo, hi - est]), fmt="o-", capsize=3, color=f"C{k}",
                    label=f"chosen on n_val = {n_val} validation points (95% t interval)")  # fmt: skip
    ceil = np.array([ceiling[s] for s in cfg.noise_levels])
    cm = ceil.mean(axis=1)
    ci = np.array([t_interval(c) for c in ceil]) if ceil.shape[1] > 1 else None
    yerr = None if ci is None else 100 * np.array([cm - [c.low for c in ci], [c.high for c in ci] - cm])
    ax.errorbar(sig, 100 * cm, yerr=yerr, fmt="s:", color="0.5", capsize=3,
                label="chosen on the population: mean relative gain (ceiling, ≥ 0 by construction)")  # fmt: skip
    ax.axhline(0.0, color="0.3", lw=1, ls="--")
    ax.set(xscale="log", xlabel="label-noise standard deviation σ (signal variance θ*ᵀΣθ* = 1)",
           ylabel="gain, % of the teacher's mean population risk")  # fmt: skip
    ax.set_title("map: paired gain R(teacher) − R(student) with its interval,\nscaled by the cell's mean teacher risk")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return finish(
        fig, f"Planted linear model (d = {cfg.d}, spectrum j^-{cfg.exponent:g}): does self-distillation generalize "
        f"better? {cfg.seeds} seeds, gradient flow"
    )  # fmt: skip


EXPERIMENT = Experiment(
    "planted_generalization", "claim", CLAIM, full=Config(),
    quick=Config(n=40, d=80, n_val=20, seeds=3, grid=12, noise_levels=(0.5, 2.0), val_sizes=(20,)),
    measure=measure, figure=figure,
)  # fmt: skip
