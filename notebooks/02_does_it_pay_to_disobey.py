# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Does it pay to disobey?
#
# Nagarajan et al. (2023) ask why a self-distilled student, trained on its teacher's outputs, can
# beat the teacher: it must *deviate* from the teacher. For gradient descent on a linear (kernel)
# model the deviation is exact: a student trained for time `t` on the predictions of a teacher
# trained for time `T` learns `a_k(t) · a_k(T)` of each label component — the teacher's filter
# composed with itself, which holds back the small-eigenvalue directions even more than the
# teacher does. This notebook computes that composition, measures whether it helps on a planted
# regression problem, checks the paper-style statements E1–E3, tries a late switch and repeated
# self-distillation, and then asks the same question of a small neural network through its
# empirical NTK.

# %%
# A notebook imports in the cell that first needs a module:
# ruff: noqa: E402
import jax
import matplotlib.pyplot as plt
import numpy as np

from kdtheory.data import gaussian_mixture, planted_linear
from kdtheory.distill import distill, distill_filter, late_switch, rounds
from kdtheory.dynamics import TestPoints, apply_filter, train
from kdtheory.eigen import Filter, Recipe, Spectrum, ridge_filter
from kdtheory.exaggeration import compare, statement_margin
from kdtheory.ridge_family import borup_filters, borup_limit, mobahi_rounds

# %% [markdown]
# ## Teacher → student in closed form
#
# The planted problem of the first notebook: 80 noisy training points in 40 dimensions with a `1/j`
# covariance spectrum, and 1000 noise-free test points (test error = excess risk). All models are
# trained by gradient flow with time measured in steps of `η = 1/λ_1`.

# %%
data = planted_linear(80, 40, exponent=1.0, signal_exponent=0.5, noise=0.5, seed=0)
test = planted_linear(1000, 40, exponent=1.0, signal=data.theta_star, noise=0.0, seed=1)
X, y = data.X, data.y
spec = Spectrum.from_features(X)
flow = Recipe("flow", learning_rate=1.0 / spec.evals[0])


def test_error(trajectory):
    """Mean squared test error per point of the trajectory's axis."""
    return np.mean((trajectory.test - test.y) ** 2, axis=-1)


t = np.geomspace(0.1, 1e4, 121)
onehot = train(spec, y, t, recipe=Recipe(learning_rate=flow.learning_rate), test=TestPoints(features=test.X))
e_onehot = test_error(onehot)
T = t[np.argmin(e_onehot)]  # the teacher: the best early-stopped one-hot model
print(f"best one-hot model (the teacher): test error {e_onehot.min():.4f} at T = {T:.3g}")

students = {
    T_: test_error(distill(spec, y, t, teacher_t=T_, teacher=flow, test=TestPoints(features=test.X)))
    for T_ in (T / 3, T, 3 * T)
}
for T_, e in students.items():
    print(
        f"student of the teacher stopped at T = {T_:6.3g}: best test error {e.min():.4f} at t = {t[np.argmin(e)]:.3g}"
        f" ({e.min() / e_onehot.min() - 1:+.1%} against the best one-hot model)"
    )

# %% [markdown]
# ## The composed filter
#
# Every distillation recipe is one application of `Filter.train_from(start, target)`: train a
# segment with this filter from a start towards a target, both expressed as filters relative to
# the labels. The student starts from zero (`Filter.zero`) and trains towards the teacher's
# predictions, whose filter is the teacher's.

# %%
t_student = float(t[np.argmin(students[T])])
m = spec.evals.size
ZERO = Filter.zero(m)
teacher_filter = flow.filter(spec, T)
student_filter = flow.filter(spec, t_student).train_from(ZERO, teacher_filter)
print(
    "train_from against a(t)·a(T):",
    np.max(np.abs(student_filter.a - flow.filter(spec, t_student).a * teacher_filter.a)),
)
print(
    "train_from against distill_filter:",
    np.max(np.abs(student_filter.a - distill_filter(spec, t_student, teacher_t=T, teacher=flow).a)),
)

# %% [markdown]
# ## The exaggeration diagnostics E1–E3
#
# "Distillation exaggerates the implicit bias of gradient descent" has several precise forms
# (`kdtheory.exaggeration`); each margin is positive (or 0 for E3, its best value) when the
# statement holds:
#
# * **E1**: relative to the teacher, the student's coefficient ratio between a lower and a higher
#   direction shrinks;
# * **E2**: a one-hot run stopped when it matches the student's progress on the top direction is
#   ahead of the student on every lower direction;
# * **E3**: a one-hot run stopped at the student's weight norm (or training loss) crosses the
#   student once — the student ahead on top directions, behind on the bottom ones.

# %%
label_energy = spec.project(y) ** 2  # z_k², so that E3's norm and loss are those of these labels
for statement in ("E1", "E2", "E3_norm", "E3_loss"):
    margin = statement_margin(spec, statement, teacher_t=T, student_t=t_student, recipe=flow, label_energy=label_energy)
    print(f"{statement:8s} margin {margin:+.2e}")
top = compare(spec, teacher_t=T, student_t=t_student, recipe=flow)
norm = compare(spec, teacher_t=T, student_t=t_student, recipe=flow, match="norm", label_energy=label_energy)
print(f"one-hot run matching top progress: t' = {top.onehot_t:.3g}; student behind from direction {top.crossover + 1}")
print(
    f"one-hot run matching the norm:     t' = {norm.onehot_t:.3g}; student behind from direction {norm.crossover + 1}"
)

# %% tags=["readme-figure"]
k = np.arange(1, m + 1)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
ax1.plot(k, top.teacher, "o-", ms=3, label=f"teacher a(T), T = {T:.3g}")
ax1.plot(k, top.student, "o-", ms=3, label=f"student a(t)·a(T), t = {t_student:.3g}")
ax1.plot(k, norm.onehot, "o--", ms=3, label=f"one-hot at matched norm, t' = {norm.onehot_t:.3g}")
ax1.set(
    xlabel="eigendirection k (descending λ)",
    ylabel="fraction learned",
    xscale="log",
    title="The student holds back the bottom directions",
)
ax1.legend(fontsize=8)
ax1.grid(alpha=0.3)
ax2.plot(t, e_onehot, color="k", lw=2, label="one-hot (the teacher's own curve)")
for T_, e in students.items():
    ax2.plot(t, e, label=f"student of the teacher at T = {T_:.3g}")
ax2.set(
    xscale="log",
    yscale="log",
    xlabel="student time t (steps of η)",
    ylabel="test error",
    title="Does it pay? Test error of teachers and students",
    ylim=(0.07, 1.0),
)
ax2.legend(fontsize=8)
ax2.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# The composed filter is exactly the product `a(t)·a(T)` (differences 0). All four statements hold
# here — E1 and E2 with small margins (2e-6), because both runs have learned the top directions
# almost fully. The student learns the top direction fully and falls behind the teacher further
# down; against a one-hot run that has made the same progress on the top direction (here
# `t' ≈ T`, so that run is the teacher itself) it is behind on every lower direction, and against
# the one-hot run of the same weight norm (dashed) it is ahead on the top 14 directions and behind
# on the other 26 — the single crossing of E3.
#
# It pays, a little: the best student of the best teacher reaches a test error 1.6% lower than the
# best one-hot model, and the student of an over-trained teacher (`3T`) 1.8% lower. The student of
# an under-trained teacher (`T/3`) is 58% worse: it cannot learn what its teacher never learned.

# %% [markdown]
# ## A late switch
#
# Nagarajan et al. report that the early part of training need not see the teacher: train on the
# labels until `switch_t`, then on the teacher. `late_switch` composes the two segments
# (`S_t.train_from(S_s, T)`); we report each schedule's best test error over the time after the
# switch and the share of distillation's gain it recovers.

# %%
full_gain = e_onehot.min() - students[T].min()
for switch_t in (0.25 * T, 0.5 * T, 0.75 * T):
    e = test_error(
        late_switch(spec, y, t, teacher_t=T, switch_t=switch_t, recipe=flow, test=TestPoints(features=test.X))
    )
    print(
        f"switch at {switch_t:6.3g}: best test error {e.min():.4f}, "
        f"recovers {(e_onehot.min() - e.min()) / full_gain:.0%} of distillation's gain"
    )

# %% [markdown]
# Switching to the teacher at a quarter or half of the teacher's time recovers all of
# distillation's (small) gain — slightly more, 0.0825 against the student's 0.0826 — and switching
# at three quarters recovers 78%. Switching at `T` itself would recover nothing: the one-hot model
# at `T` *is* the teacher, and training towards it from there leaves it unchanged.

# %% [markdown]
# ## Repeated self-distillation
#
# Three recipes of rounds, each a fold of `train_from`:
#
# * **gradient-flow rounds** (`distill.rounds`): each round trains from zero on the previous
#   round's predictions; from an over-trained teacher (`T = 50`, well past the best time);
# * **Borup & Andersen** (`ridge_family.borup_filters`): kernel ridge with strength `c` on
#   `α y + (1 − α)·(previous round)`, whose limit is kernel ridge with strength `c/α`;
# * **Mobahi, Farajtabar & Bartlett** (`ridge_family.mobahi_rounds`): each round refits the
#   previous one under a fixed training-error budget `ε`, so its ridge strength is amplified
#   round after round until the solution collapses to zero.

# %%
gf = test_error(rounds(spec, y, [50.0] * 8, recipe=flow, test=TestPoints(features=test.X)))
c, alpha = 0.5, 0.2
borup = test_error(
    apply_filter(
        spec, y, borup_filters(spec.evals, ridge=c, truth_weight=alpha, rounds=8), test=TestPoints(features=test.X)
    )
)
limit = borup_limit(spec.evals, ridge=c, truth_weight=alpha)
print("Borup limit against ridge with c/α, max |Δa|:", np.max(np.abs(limit.a - ridge_filter(spec.evals, c / alpha).a)))
e_limit = test_error(apply_filter(spec, y, limit, test=TestPoints(features=test.X)))
print(f"Borup limit (ridge c/α = {c / alpha:g}) test error: {e_limit:.4f}")
mobahi = mobahi_rounds(spec, y, epsilon=0.15, rounds=8)
e_mobahi = test_error(apply_filter(spec, y, mobahi.filters, test=TestPoints(features=test.X)))
print("gradient-flow rounds:", gf.round(4))
print("Borup rounds:        ", borup.round(4))
print("Mobahi ridge c_t:    ", mobahi.ridge.round(4), "collapsed at round", mobahi.collapsed_at)
print("Mobahi rounds:       ", e_mobahi.round(4))

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8))
r = np.arange(8)
ax.plot(r, gf, "o-", label="gradient-flow rounds, teacher at T = 50")
ax.plot(r, borup, "s-", label=f"Borup & Andersen, c = {c}, α = {alpha}")
ax.plot(r, e_mobahi, "^-", label="Mobahi et al., ε = 0.15")
ax.axhline(e_onehot.min(), color="k", ls="--", lw=1, label="best early-stopped one-hot model")
ax.set(xlabel="round (0: the teacher)", ylabel="test error", yscale="log", title="Rounds of self-distillation")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Rounds repair an under-regularized teacher: the gradient-flow rounds (teacher at `T = 50`) and
# Borup's rounds (ridge `c = 0.5`) lower the test error every round, Borup's ending next to the
# error of their limit — kernel ridge with `c/α`, exactly, as the filter comparison shows — but
# neither reaches the best early-stopped one-hot model. Mobahi's rounds
# amplify the ridge strength (about 0.01, 0.3, 3.3) and the test error grows from the first round,
# until round 3 collapses to the zero function (test error 0.949, that of predicting 0).

# %% [markdown]
# ## The same question on a small network, through its empirical NTK
#
# A two-layer ReLU network of width 512 in the NTK parameterization, on 100 points of a 3-class
# Gaussian mixture, trained by full-batch gradient descent on the mean squared error to one-hot
# labels (the *twin*); its state after `T` steps is the teacher, and a student from the **same
# initialization** trains on the teacher's outputs. We project each network's learned function
# onto the eigendirections of its empirical NTK at initialization
# (`ntk.project_residual`), and compare with the closed form on that kernel. (Float32 is enough
# here: the comparison is between a network and its kernel, not to round-off.)

# %%
from kdtheory.ntk import empirical_ntk, project_residual
from kdtheory.simulate import Loss, Optimizer, Run, mlp, train_model

mix = gaussian_mixture(100, 0, d=10, classes=3, seed=0)
net = mlp([10, 512, 3], parameterization="ntk")
params = net.init(jax.random.PRNGKey(0))
ntk = Spectrum.from_kernel(empirical_ntk(net.apply, params, mix.X))
f0 = np.asarray(net.apply(params, mix.X.astype(np.float32)))
n = len(mix.X)
gd = Recipe("gd", learning_rate=1.0, normalization="mean")  # the network's optimizer, as a filter
T_net = student_net = 3 * round(n / ntk.evals[0])  # three time constants of the top direction
steps = np.arange(0, 4 * (T_net + student_net) + 1)
mse, opt = Loss("mse", normalization="mean"), Optimizer(learning_rate=1.0)
twin = train_model(net, mix.X, mix.Y, t=steps, run=Run(loss=mse, optimizer=opt, params=params))
student = train_model(
    net, mix.X, twin.train[T_net], t=[0, student_net], run=Run(loss=mse, optimizer=opt, params=params)
)
print(ntk, f"teacher and student: {T_net} steps each")

# %%
directions = 10
a_twin = project_residual(ntk, twin.train, f0, mix.Y)  # (steps, m): the twin's filter, measured
a_student = project_residual(ntk, student.train[-1], f0, mix.Y)
kernel_twin = gd.filter(ntk, steps).a
kernel_student = distill_filter(ntk, student_net, teacher_t=T_net, teacher=gd).a


def matched(a_run, target):
    """The run's filter at the time its top direction reaches ``target`` (interpolated)."""
    return np.array([np.interp(target, a_run[:, 0], a_run[:, k]) for k in range(directions)])


twin_matched = matched(a_twin, a_student[0])
kernel_matched = matched(kernel_twin, kernel_student[0])
lag = np.mean(twin_matched[1:] - a_student[1:directions])
lag_kernel = np.mean(kernel_matched[1:] - kernel_student[1:directions])
print(f"student lag on directions 2–{directions} at matched top progress: network {lag:.3f}, kernel {lag_kernel:.3f}")

k = np.arange(1, directions + 1)
fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(k, twin_matched, "o", color="C2", label="network: one-hot twin at matched top progress")
ax.plot(k, a_student[:directions], "o", color="C1", label="network: self-distilled student")
ax.plot(k, kernel_matched, "-", color="C2", label="closed form on the NTK: twin")
ax.plot(k, kernel_student[:directions], "-", color="C1", label="closed form on the NTK: student")
ax.set(xlabel="NTK eigendirection k", ylabel="fraction learned", title="A width-512 network follows its kernel")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# The network shows the composed-filter pattern: at equal progress on the top NTK direction, the
# self-distilled student has learned less than its one-hot twin on each of the next nine
# directions, and the measured lag is close to the lag the closed form predicts on the network's
# own kernel.
