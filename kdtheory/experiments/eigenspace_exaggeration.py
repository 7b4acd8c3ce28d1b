r"""Distillation as a regularizer in eigenspace (T1, the mathematics): the student exaggerates GD's bias.

A validation: it checks identities and numerically established statements of docs/theory.md §3, not
an empirical claim (the empirical question — does the student generalize better? — is
:mod:`kdtheory.experiments.planted_generalization`). On a kernel with power-law spectrum
``λ_j = j^{−a}`` a teacher is trained by gradient flow for time ``T`` and a student on the
teacher's predictions for ``t``. The experiment measures

(i)   the trajectories, in the plane of a top and a bottom eigendirection, of one-hot training,
      the teacher (a point on the one-hot path) and the student: the student's path runs *below*
      the one-hot path and ends at the teacher's point (E2 along the whole path);
(ii)  per direction, student/teacher (= ``a_k(t)``) and student/one-hot at matched weight norm,
      with the crossover direction (E3);
(iii) the margins of E1, E2, E3 (norm and loss, unit label energy ``z_k² = 1``) at every point
      of a ``grid × grid`` of ``(T, t)`` in ``[1e-2, 1e4]/λ_1``, and how many points are
      **informative** (:func:`kdtheory.exaggeration.informative`): neither the teacher
      (``1 − a_1(T) > ε``) nor the student's own segment (``1 − a_1(t) > ε``) has learned the top
      direction to within round-off, ``ε = 2⁻⁵²`` (flow: ``λ_1 T, λ_1 t < 52 log 2 ≈ 36.04``).
      At those points every remaining fraction that E1–E3 compare exceeds ``ε``, so each margin
      is a difference of resolved numbers. At the other, *saturated* points the true margins are
      of order ``e^{−λ t}`` below float64's resolution and E1/E2 margins round to exactly 0: they
      are counted, not judged;
      E3's margin (minus its largest violation) is 0 at best, so the number of informative points
      with a *resolved* crossing (the student ahead on some direction and behind on another by more
      than ``ε``) is reported too;
(iv)  E3 again with the labels' own energy: on the spectrum of ``seeds`` planted linear samples
      (:func:`kdtheory.data.planted_linear`), ``z_k² = (u_kᵀ y)²`` of their noisy labels, over the
      same grid in units of ``1/λ_1``, informative points only.

Rule: *supported* when there are informative points and at every one of them E1 and E2 hold
strictly (margin ``> 0``: a resolved strict inequality), E3 holds (margin ``≥ −1e-12``; E3's
margin is minus its largest violation of a single crossing, so 0 is its best value) for unit and
for planted label energy, and the student's path never rises above the one-hot path; *not
supported* otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kdtheory.data import planted_linear, power_law_kernel
from kdtheory.distill import distill_filter, distill_log_remaining
from kdtheory.eigen import Recipe, Spectrum
from kdtheory.exaggeration import RESOLUTION, STATEMENTS, compare, informative, statement_margin, worst_case
from kdtheory.experiments.config import param
from kdtheory.experiments.harness import Experiment, Progress, finish, pyplot
from kdtheory.experiments.result import Outcome, Verdict

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["EXPERIMENT", "Config", "figure", "measure"]

CLAIM = (
    "Distillation composes GD's filter with itself: the student lags the one-hot run on bottom "
    "eigendirections (E1, E2, E3), checked at the grid points float64 resolves"
)


@dataclass(frozen=True)
class Config:
    """Configuration of :func:`measure` (times in units of ``1/λ_1``; gradient flow on ``½‖f − y‖²``).

    Attributes:
      n: kernel size (eigenvalues ``j^{−exponent}``).
      exponent: spectral decay.
      teacher_time, student_time: ``T`` and ``t`` of the plotted pair.
      directions: 0-based indices of the top and bottom directions plotted.
      grid: number of log-spaced ``T`` and ``t`` values in ``[1e-2, 1e4]``.
      planted_n, planted_d, planted_exponent, planted_signal_exponent, planted_noise: the planted
        linear samples whose labels give E3's label energy.
      seeds: number of planted samples (seeds ``0 … seeds − 1``).
    """

    n: int = param(200, "kernel size (eigenvalues j^(−exponent))", low=2)
    exponent: float = param(1.5, "spectral decay", above=0)
    teacher_time: float = param(3.0, "teacher time T of the plotted pair (units of 1/λ_1)", above=0)
    student_time: float = param(3.0, "student time t of the plotted pair (units of 1/λ_1)", above=0)
    directions: tuple[int, int] = param((0, 4), "0-based indices of the top and bottom directions plotted", low=0)
    grid: int = param(25, "log-spaced T and t values in [1e-2, 1e4]", low=2)
    planted_n: int = param(100, "training size of the planted samples (E3's label energy)", low=2)
    planted_d: int = param(200, "dimension of the planted samples", low=1)
    planted_exponent: float = param(1.5, "covariance decay of the planted samples", above=0)
    planted_signal_exponent: float = param(0.5, "signal decay θ*_j ∝ j^(−signal_exponent)", low=0)
    planted_noise: float = param(0.5, "label-noise standard deviation of the planted samples", low=0)
    seeds: int = param(3, "planted samples (seeds 0 … seeds − 1)", low=1)

    def __post_init__(self) -> None:
        i, j = self.directions
        if not i < j < self.n:
            raise ValueError(f"directions must be two indices i < j < n = {self.n}, got {self.directions}")


def _grid_margins(spec: Spectrum, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Margins of every statement at every ``(T, t)`` of the grid (rows T, columns t)."""
    return {
        st: np.array([[statement_margin(spec, st, teacher_t=T, student_t=t) for t in grid] for T in grid])
        for st in STATEMENTS
    }


def measure(cfg: Config, say: Progress) -> Outcome:
    """Paths, per-direction ratios, margins of E1–E3 at the informative grid points, E3 with label energy; the rule.

    Args: see :class:`~kdtheory.experiments.harness.Measure`.

    Returns:
      The :class:`~kdtheory.experiments.result.Outcome`: measurements, effects and the verdict.
    """
    kern = power_law_kernel(cfg.n, exponent=cfg.exponent, seed=0)
    # the spectrum is known exactly; the basis does not matter for filters
    spec = Spectrum(evals=kern.evals, U=np.eye(cfg.n), V=None, rank_tol=0.0)
    rec = Recipe()
    T, t = cfg.teacher_time, cfg.student_time
    i, j = cfg.directions

    # (i) paths in the (top, bottom) plane
    s_grid = np.r_[0.0, np.geomspace(1e-3, 1e5, 600), np.inf]
    onehot_path = rec.filter(spec, s_grid).a[:, [i, j]]
    student_path = distill_filter(spec, s_grid, teacher_t=T).a[:, [i, j]]
    teacher_point = rec.filter(spec, T).a[[i, j]]
    # height of the one-hot path at the student's top-direction progress, from remaining fractions
    # 1 − a (no cancellation): the one-hot time matching e_i is −log(e_i)/λ_i (flow)
    le_st = distill_log_remaining(spec, s_grid, teacher_t=T, recipe=rec)[:, [i, j]]
    inner = slice(1, -1)  # t = 0 and t = ∞ are the endpoints (0 and the teacher's point)
    s_match = -le_st[inner, 0] / spec.evals[i]
    e_oh_j = np.exp(-spec.evals[j] * s_match)
    above = float(np.max(e_oh_j - np.exp(le_st[inner, 1])))  # = a_student,j − a_onehot,j

    # (ii) per-direction ratios at matched norm
    cmp = compare(spec, teacher_t=T, student_t=t, match="norm")

    # (iii) margins over the grid; informative points only are judged
    grid = np.geomspace(1e-2, 1e4, cfg.grid) / spec.evals[0]
    mask = informative(spec, teacher_t=grid, student_t=grid)
    margins = _grid_margins(spec, grid)
    n_inf = int(mask.sum())
    worst, worst_all, zeros = {}, {}, {}
    for st, m in margins.items():
        worst_all[st] = float(m.min())
        zeros[st] = {"informative": int(np.sum(m[mask] == 0)), "saturated": int(np.sum(m[~mask] == 0))}
        worst[st] = float(m[mask].min()) if n_inf else float("nan")
        say(f"{st}: worst margin {worst[st]:.3g} over {n_inf} informative of {m.size} (T, t); all points {m.min():.3g}")
    # E3's margin is 0 at best; that it tests something shows in a resolved crossing (ahead and behind by > ε)
    crossings = {}
    for match in ("norm", "loss"):
        count = 0
        for a, b in zip(*np.nonzero(mask), strict=True):
            c = compare(spec, teacher_t=grid[a], student_t=grid[b], match=match)
            gap = c.onehot_remaining - c.student_remaining  # a_student − a_onehot
            count += bool(gap.max() > RESOLUTION and gap.min() < -RESOLUTION)
        crossings[f"E3_{match}"] = count

    # (iv) E3 with the planted labels' own energy
    worst_planted: dict[str, list[float]] = {"E3_norm": [], "E3_loss": []}
    informative_planted = []
    for seed in range(cfg.seeds):
        p = planted_linear(
            cfg.planted_n, cfg.planted_d, exponent=cfg.planted_exponent,
            signal_exponent=cfg.planted_signal_exponent, noise=cfg.planted_noise, seed=seed,
        )  # fmt: skip
        ps = Spectrum.from_features(p.X)
        z2 = ps.project(p.y) ** 2
        pgrid = np.geomspace(1e-2, 1e4, cfg.grid) / ps.evals[0]
        for st in worst_planted:
            w = worst_case(ps, st, teacher_t=pgrid, student_t=pgrid, label_energy=z2, informative_only=True)
            worst_planted[st].append(w.margin)
        informative_planted.append(w.informative)
        say(f"planted labels, seed {seed}: E3 worst margins {[v[-1] for v in worst_planted.values()]}")

    strict = {st: n_inf > 0 and worst[st] > 0 for st in ("E1", "E2")}
    e3 = {st: n_inf > 0 and worst[st] >= -1e-12 for st in ("E3_norm", "E3_loss")}
    e3_planted = {st: min(v) >= -1e-12 for st, v in worst_planted.items()}
    below = above <= 1e-12
    ok = all(strict.values()) and all(e3.values()) and all(e3_planted.values()) and below
    verdict: Verdict = "supported" if ok else "not supported"

    margins_txt = ", ".join(f"{st} {w:.2g}" for st, w in worst.items())
    planted_txt = ", ".join(f"{st} {min(v):.2g}" for st, v in worst_planted.items())
    return Outcome(
        verdict,
        (
            f"{n_inf} of {cfg.grid ** 2} grid points (T, t) in [1e-2, 1e4]/λ_1 are informative (λ_1 T, λ_1 t < "
            f"52 log 2: neither run has learned the top direction to round-off); worst margins there: {margins_txt} "
            f"(E1, E2 > 0 and E3 ≥ −1e-12 required; E3's margin is 0 at best, and the student is resolvably ahead "
            f"on top and behind on bottom directions at {crossings['E3_norm']} (norm) and {crossings['E3_loss']} "
            f"(loss) of the {n_inf}). The {cfg.grid ** 2 - n_inf} saturated points are not judged: "
            f"E2's margin is exactly 0 at {zeros['E2']['saturated']} of them. E3 with the planted labels' own energy "
            f"z_k² (planted samples: {cfg.seeds}; informative points only): worst {planted_txt}. Student path above "
            f"the one-hot path by at most {above:.2g} (≤ 0 required)"
        ),
        measured={
            "grid_points": cfg.grid**2,
            "informative_points": n_inf,
            "worst_margin_informative": worst,
            "worst_margin_all_points": worst_all,
            "margins_exactly_zero": zeros,
            "E3_resolved_crossings": crossings,
            "worst_margin_planted_label_energy": {st: list(v) for st, v in worst_planted.items()},
            "planted_informative_points": informative_planted,
            "student_path_max_height_above_onehot": above,
            "matched_norm_onehot_time": cmp.onehot_t,
            "matched_norm_crossover_index": cmp.crossover,
            "matched_norm_crossover_eigenvalue": float(spec.evals[min(cmp.crossover, cfg.n - 1)]),
        },
        figure_data={
            "onehot_path": onehot_path, "student_path": student_path, "teacher_point": teacher_point,
            "evals": spec.evals, "comparison": cmp, "grid": grid * spec.evals[0], "e2": margins["E2"],
            "informative": mask,
        },
    )  # fmt: skip


def figure(outcome: Outcome, cfg: Config) -> Figure:
    r"""Three panels: the paths in the (top, bottom) plane; per-direction ratios; E2's margin over the grid.

    Args:
      outcome: :func:`measure`'s outcome; ``figure_data`` holds the two paths, the teacher's point,
        the eigenvalues, the matched-norm comparison, the grid, E2's margins and the informative mask.
      cfg: the configuration (the two directions plotted, exponent and times for the title).

    Returns:
      The figure.
    """
    d = outcome.figure_data
    evals, cmp = d["evals"], d["comparison"]
    i, j = cfg.directions
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15.5, 4.6))
    ax = axes[0]
    ax.plot(d["onehot_path"][:, 0], d["onehot_path"][:, 1], color="0.3", lw=2, label="one-hot GD (flow)")
    ax.plot(d["student_path"][:, 0], d["student_path"][:, 1], color="C3", lw=2, label="student on the teacher")
    ax.plot(*d["teacher_point"], "o", color="C0", ms=9, label="teacher (one-hot stopped at T)")
    ax.set(
        xlabel=f"fraction learned along u_{i + 1} (λ = {evals[i]:.2g})",
        ylabel=f"fraction learned along u_{j + 1} (λ = {evals[j]:.2g})",
        title="the student reaches the teacher's point\nbelow the one-hot path (top direction first)",
    )
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    ax = axes[1]
    keep = evals > 0
    ax.plot(evals[keep], cmp.student_over_teacher[keep], color="C0", lw=2, label="student / teacher  (= a_k(t))")
    ax.plot(evals[keep], cmp.student_over_onehot[keep], color="C3", lw=2, label="student / one-hot at matched norm")
    ax.axhline(1.0, color="0.5", lw=1, ls="--")
    if 0 < cmp.crossover < evals.size:
        lam = evals[cmp.crossover]
        ax.axvline(lam, color="C3", lw=1, ls=":", label=f"first direction behind: λ = {lam:.2g}")
    ax.set(xscale="log", xlabel="eigenvalue λ_k", ylabel="ratio of coefficients")
    ax.set_title("per direction: ahead on top directions,\nbehind on bottom ones")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    ax = axes[2]
    g, e2, mask = d["grid"], d["e2"], d["informative"]
    with np.errstate(divide="ignore"):
        shown = np.where(mask, np.log10(np.where(e2 > 0, e2, np.nan)), np.nan)
    ax.set_facecolor("0.75")
    mesh = ax.pcolormesh(g, g, shown, cmap="viridis", shading="nearest")
    fig.colorbar(mesh, ax=ax, label="log10 E2 margin (informative points)")
    ax.set(xscale="log", yscale="log", xlabel="student time t · λ_1", ylabel="teacher time T · λ_1")
    ax.set_title(
        f"E2 margin: {int(mask.sum())} of {mask.size} points informative;\n"
        f"grey: saturated (λ_1 T or λ_1 t ≥ 36; margins round to 0), not judged"
    )
    T = cfg.teacher_time
    return finish(fig, f"Self-distillation in eigenspace: λ_j = j^-{cfg.exponent:g}, T = t = {T:g}/λ_1 (gradient flow)")


EXPERIMENT = Experiment(
    "eigenspace_exaggeration", "validation", CLAIM, full=Config(),
    quick=Config(n=60, grid=8, planted_n=40, planted_d=80, seeds=1), measure=measure, figure=figure,
)  # fmt: skip
