r"""Late distillation: switching from one-hot labels to the teacher mid-training (claim O2).

Design (:mod:`kdtheory.experiments.paired`): per seed, a teacher trained on noisy labels and
early-stopped on a noisy validation split; from one initialization, with one optimizer, budget and
minibatch order, the distilled student (``f = 0``), its one-hot twin (``f = 1``, the control) and
the late switches ``f ∈ {0.25, 0.5, 0.75}`` (one-hot labels for ``f ·`` budget steps, then the
teacher), plus the reverse switches (teacher first, one-hot after ``f ·`` budget). Data sets: the
Gaussian mixture (η = 0.3, 20,000 test points), scikit-learn digits (η = 0.3) and MNIST-1D
(η = 0.2). Seeds ``0 … 9``; paired 95% t intervals over seeds; the ratio by Fieller's interval.

Effects and rules, fixed before the run (per data set):

* **O2-a** gain = test accuracy(student) − accuracy(twin) at the end of the budget.
  Rule: > 0.
* **O2-b** recovered share at ``f = 0.5`` = [acc(late 0.5) − acc(twin)] / [acc(student) − acc(twin)]
  (ratio of mean gains, Fieller). Rule: > 0.5 ("recovers much of the gain"); inconclusive
  whenever the interval of the gain (the denominator) contains 0.
* **O2-c** (honesty check) gain of the student over the twin when *both* are early-stopped on the
  noisy validation split (how much of O2-a is the twin's overfitting). Rule: > 0.

The claim's verdict is O2-b's: *supported* when O2-b is supported on every data set; *not
supported* when it is not supported on at least one; *inconclusive* otherwise. Shares at
``f = 0.25, 0.75``, the reverse switches and the student's gain over its own teacher are reported.

The confounder map (base: the mixture; ``map_seeds`` seeds per cell, fewer than the headline) redoes
O2-a and O2-b with one of teacher stop time, τ, label-noise rate or student budget changed.

Linear side (closed form, :mod:`kdtheory.distill`, reported, not decided): in a planted linear
regression model, the population risk of one-hot gradient flow run to a budget of 4× its best
stopping time, distillation from that teacher, the late switch at ``f = 0.5`` — and the *best
early-stopped one-hot model* (the minimum of the one-hot risk over time), the fair baseline.
"""

from __future__ import annotations

import numpy as np

from kdtheory.data import planted_linear
from kdtheory.distill import Recipe, distill_filter, late_switch_filter
from kdtheory.eigen import Spectrum
from kdtheory.experiments import paired
from kdtheory.experiments.harness import Experiment, finish, pyplot
from kdtheory.experiments.result import Outcome
from kdtheory.planted import population_risk
from kdtheory.stats import Rule, t_interval

__all__ = ["EXPERIMENT", "figure", "measure"]

CLAIM = "Switching to distillation in the middle of training recovers much of distillation's gain"

GAIN = Rule(0.0, "greater")
SHARE = Rule(0.5, "greater")
CONTROL = "one-hot twin: same initialization, optimizer, budget and minibatch order (paired by seed)"
CONTROL_ES = "one-hot twin early-stopped on the noisy validation split (student early-stopped the same way)"

_PLANTED = {"n": 100, "d": 200, "noise": 0.5, "seeds": 8, "budget_factor": 4.0}


def _linear_part(seeds: int) -> dict:
    rec = Recipe(normalization="mean")
    out = {k: [] for k in ("one_hot", "best_one_hot", "distill", "late_0.5")}
    for seed in range(seeds):
        p = planted_linear(
            _PLANTED["n"], _PLANTED["d"], exponent=1.5, signal_exponent=0.5, noise=_PLANTED["noise"], seed=seed
        )
        spec = Spectrum.from_features(p.X)
        grid = np.geomspace(1e-2, 1e5, 300)
        r_oh = population_risk(spec, p.y, p.theta_star, p.cov_evals, rec.filter(spec, grid))
        S = _PLANTED["budget_factor"] * grid[int(np.argmin(r_oh))]

        def risk(g, spec=spec, p=p):
            return float(np.ravel(population_risk(spec, p.y, p.theta_star, p.cov_evals, g))[0])

        out["one_hot"].append(risk(rec.filter(spec, S)))
        out["best_one_hot"].append(float(np.min(r_oh)))
        out["distill"].append(risk(distill_filter(spec, S, teacher_t=S, teacher=rec)))
        out["late_0.5"].append(risk(late_switch_filter(spec, 0.5 * S, teacher_t=S, switch_t=0.5 * S, recipe=rec)))
    return {k: np.array(v) for k, v in out.items()}


def _effects(design: paired.Design, rows: list[dict], tag: str):
    name = f"{tag}: "
    return (
        paired.difference_effect(name + "O2-a test accuracy gain, student − one-hot twin", rows,
                                 "acc_student", "acc_twin", GAIN, CONTROL),
        paired.share_effect(name + "O2-b share of the gain recovered by switching at f = 0.5", rows, 0.5, SHARE,
                            CONTROL),
        paired.difference_effect(name + "O2-c gain with both early-stopped on the noisy validation split", rows,
                                 "acc_student_es", "acc_twin_es", GAIN, CONTROL_ES),
    )  # fmt: skip


def _curves(design: paired.Design, rows: list[dict]) -> dict:
    """Paired gain over the twin at each switch fraction (late and reverse), mean and t interval."""
    twin = np.array([r["acc_twin"] for r in rows])
    fr = [0.0, *design.switch_fractions, 1.0]
    late, rev = [], []
    for f in fr:
        key_l = "acc_student" if f == 0 else "acc_twin" if f == 1 else f"acc_late_{f:g}"
        key_r = "acc_twin" if f == 0 else "acc_student" if f == 1 else f"acc_reverse_{f:g}"
        for key, store in ((key_l, late), (key_r, rev)):
            d = np.array([r[key] for r in rows]) - twin
            iv = t_interval(d)
            store.append([iv.estimate, iv.low, iv.high])
    shares = {
        f"{f:g}": paired.share_effect(f"share at f = {f:g}", rows, f, SHARE, CONTROL).to_json()
        for f in design.switch_fractions
    }
    gain_t = t_interval(np.array([r["acc_student"] - r["teacher_test"] for r in rows]))
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k.startswith(("acc_", "teacher_", "bayes"))
            and not isinstance(rows[0][k], list)}  # fmt: skip
    return {
        "fractions": fr,
        "late_gain": late,
        "reverse_gain": rev,
        "shares": shares,
        "student_minus_teacher": [gain_t.estimate, gain_t.low, gain_t.high],
        "means": mean,
    }


def measure(cfg: paired.Suite, say) -> Outcome:
    """Headline designs over ``cfg.seeds`` seeds, the map over ``cfg.map_seeds``, the linear side; rule above.

    Args:
      cfg: the configuration (``EXPERIMENT.full`` or ``EXPERIMENT.quick``).
      say: called with one-line progress messages.

    Returns:
      The :class:`~kdtheory.experiments.result.Outcome`: measurements, effects and the verdict.
    """
    heads = paired.headline(cfg, say)
    effects, per_set, verdicts = [], {}, []
    for design, rows in heads:
        tag = f"{design.dataset} (η={design.label_noise:g})"
        eff = _effects(design, rows, tag)
        effects.extend(eff)
        verdicts.append((tag, eff[1]))
        per_set[design.dataset] = {"design": design.label, **_curves(design, rows)}
    say("confounder map (mixture)")
    cells = paired.confounder_map(cfg, say)
    table = []
    for c in cells:
        a, b, _ = _effects(c.design, c.rows, f"{c.axis}={c.value}")
        table.append({"axis": c.axis, "value": str(c.value), "seeds": len(c.rows),
                      "teacher_stop": float(np.mean([r["teacher_stop"] for r in c.rows])),
                      "teacher_train_agree": float(np.mean([r["teacher_train_agree"] for r in c.rows])),
                      "gain": [a.estimate, a.ci_low, a.ci_high], "gain_verdict": a.verdict,
                      "share": [b.estimate, b.ci_low, b.ci_high], "share_verdict": b.verdict})  # fmt: skip
    lin = _linear_part(min(cfg.seeds, _PLANTED["seeds"]))
    lin_mean = {k: float(v.mean()) for k, v in lin.items()}
    v = [e.verdict for _, e in verdicts]
    verdict = (
        "supported" if all(x == "supported" for x in v) else "not supported" if "not supported" in v else "inconclusive"
    )
    parts = [f"{tag}: share {e.estimate:.3f} [{_f(e.ci_low)}, {_f(e.ci_high)}] → {e.verdict}" for tag, e in verdicts]
    gains = [f"{e.name.split(':')[0]} {100 * e.estimate:+.1f} pts [{100 * e.ci_low:+.1f}, {100 * e.ci_high:+.1f}]"
             for e in effects if "O2-a" in e.name]  # fmt: skip
    holds = [f"{r['axis']}={r['value']}" for r in table if r["share_verdict"] == "supported"]
    fails = [f"{r['axis']}={r['value']}" for r in table if r["share_verdict"] != "supported"]
    reason = (
        f"O2-b (rule: 95% Fieller interval of the share at f = 0.5 > 0.5 on every data set): {'; '.join(parts)}. "
        f"O2-a gains: {'; '.join(gains)}. Map (mixture, {cfg.map_seeds} seeds/cell): share > 0.5 supported at "
        f"{', '.join(holds) or 'no cell'}; not at {', '.join(fails) or 'no cell'}. Linear closed form: risk one-hot "
        f"(4× best stop) {lin_mean['one_hot']:.4g}, best early-stopped one-hot {lin_mean['best_one_hot']:.4g}, "
        f"distillation {lin_mean['distill']:.4g}, late switch 0.5 {lin_mean['late_0.5']:.4g}"
    )
    return Outcome(
        verdict, reason,
        measured={"datasets": per_set, "map": table, "map_table": [
                      f"{r['axis']}={r['value']} ({r['seeds']} seeds; teacher stop {r['teacher_stop']:.0f}, train "
                      f"agreement {r['teacher_train_agree']:.2f}): gain {paired.interval_text(r['gain'], 100, 1)} pts "
                      f"{r['gain_verdict']}; share f=0.5 {paired.interval_text(r['share'])} {r['share_verdict']}"
                      for r in table], "linear_risk_mean": lin_mean,
                  "linear_risk_per_seed": {k: v.tolist() for k, v in lin.items()}},
        effects=tuple(effects),
        figure_data={"datasets": per_set, "map": table, "effects": effects},
    )  # fmt: skip


def _f(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def figure(outcome: Outcome, cfg: paired.Suite):
    r"""Paired gain curves over the switch fraction, the recovered shares, and the map.

    Left: test-accuracy gain over the one-hot twin (percentage points, mean and paired 95% t
    interval over seeds) against the switch fraction ``f`` — solid: late switch (one-hot first;
    ``f = 0`` is distillation throughout, ``f = 1`` the twin itself, 0 by construction); dashed:
    reverse switch (teacher first); stars: O2-c (both early-stopped on the noisy validation split).
    Middle: the recovered share at each switch fraction with its Fieller interval (no interval
    where the gain's interval contains 0). Right: the map on the mixture — O2-a gain and O2-b share
    per cell, each with its 95% interval.

    Args:
      outcome: :func:`measure`'s outcome.
      cfg: the :class:`~kdtheory.experiments.paired.Suite`.

    Returns:
      A matplotlib Figure.
    """
    plt = pyplot()
    fig, ax = plt.subplots(1, 4, figsize=(21, 4.8))
    data = outcome.figure_data["datasets"]
    for i, (name, d) in enumerate(data.items()):
        fr = np.array(d["fractions"])
        for key, ls in (("late_gain", "-"), ("reverse_gain", "--")):
            g = 100 * np.array(d[key])
            ax[0].errorbar(fr + 0.01 * i, g[:, 0], yerr=[g[:, 0] - g[:, 1], g[:, 2] - g[:, 0]], color=f"C{i}",
                           ls=ls, marker="o", capsize=3, label=f"{name} {key.split('_')[0]}")  # fmt: skip
    effs = outcome.figure_data["effects"]
    for i, e in enumerate(e for e in effs if "O2-c" in e.name):
        ax[0].errorbar([-0.08 + 0.01 * i], [100 * e.estimate], yerr=[[100 * (e.estimate - e.ci_low)],
                       [100 * (e.ci_high - e.estimate)]], color=f"C{i}", marker="*", ms=9, capsize=3,
                       label="O2-c: both early-stopped" if i == 0 else None)  # fmt: skip
    ax[0].axhline(0, color="k", lw=0.8)
    ax[0].set(xlabel="switch fraction f (late: one-hot first; reverse: teacher first); * = O2-c",
              ylabel="test accuracy − twin's (points)", title="paired gain over the one-hot twin (95% t)")  # fmt: skip
    ax[0].legend(fontsize=7)
    for i, (name, d) in enumerate(data.items()):
        fr = sorted(float(f) for f in d["shares"])
        sh = [d["shares"][f"{f:g}"] for f in fr]
        est = np.array([s_["estimate"] for s_ in sh], dtype=float)
        lo = np.array([np.nan if s_["ci_low"] is None else s_["ci_low"] for s_ in sh], dtype=float)
        hi = np.array([np.nan if s_["ci_high"] is None else s_["ci_high"] for s_ in sh], dtype=float)
        x = np.array(fr) + 0.01 * i
        ax[1].plot(x, est, "o-", color=f"C{i}", label=name)
        ax[1].errorbar(x, est, yerr=[est - lo, hi - est], color=f"C{i}", fmt="none", capsize=3)
    ax[1].axhline(0.5, color="k", ls=":", lw=1)
    ax[1].axhline(0, color="k", lw=0.8)
    ax[1].axhline(1, color="k", lw=0.5)
    ax[1].set(xlabel="switch fraction f", ylabel="recovered share of the gain",
              title="share (late − twin)/(student − twin), Fieller 95%; rule at f=0.5: > 0.5")  # fmt: skip
    ax[1].legend(fontsize=7)
    rows = outcome.figure_data["map"]
    labels = [f"{r['axis'].replace('teacher_', '').replace('student_t', 'budget')}={r['value']}" for r in rows]
    x = np.arange(len(rows))
    g = 100 * np.array([r["gain"] for r in rows], dtype=float)
    s = np.array([[np.nan if v is None else v for v in r["share"]] for r in rows], dtype=float)
    ax[2].errorbar(x, g[:, 0], yerr=[g[:, 0] - g[:, 1], g[:, 2] - g[:, 0]], fmt="s", color="C3", capsize=3)
    ax[2].axhline(0, color="k", lw=0.8)
    ax[2].set(ylabel="test accuracy − twin's (points)", title=f"map (mixture, {cfg.map_seeds} seeds/cell): O2-a gain")
    ax[3].errorbar(x, s[:, 0], yerr=[s[:, 0] - s[:, 1], s[:, 2] - s[:, 0]], fmt="o", color="C0", capsize=3)
    ax[3].axhline(0.5, color="k", ls=":", lw=1)
    ax[3].axhline(0, color="k", lw=0.8)
    ax[3].set(ylabel="recovered share at f = 0.5", title="map: O2-b share (rule > 0.5, dotted)")
    for a in ax[2:]:
        a.set_xticks(x, labels, rotation=60, fontsize=7)
    return finish(fig, f"Late distillation (O2): paired design, {cfg.seeds} seeds per data set")


EXPERIMENT = Experiment(
    "late_distillation", "claim", CLAIM, full=paired.Suite(), quick=paired.QUICK, measure=measure, figure=figure
)
