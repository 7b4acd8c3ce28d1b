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
# # Gradient descent in eigenspace
#
# A linear model (or any kernel machine) trained on the squared loss learns each eigendirection of
# its kernel `K = X Xᵀ` on its own: along eigenvector `u_k` with eigenvalue `λ_k` it has learned a
# fraction `a_k(t)` of the label component `u_kᵀ y` at time `t`. That map `λ ↦ a` is the
# *spectral filter* of the training recipe. This notebook builds a `Spectrum`, watches the filter
# of gradient flow, gradient descent and momentum, turns it into test predictions, looks at the two
# limits `t = ∞` and `λ = 0`, and checks the closed form against kdtheory's JAX training engine.
#
# The last cell compares the closed form with a JAX simulation to round-off, which needs float64
# arithmetic. JAX computes in float32 unless its x64 mode is switched on before any array is made,
# and kdtheory never switches it itself — so we do it here, first.

# %%
# A notebook imports in the cell that first needs a module:
# ruff: noqa: E402
import jax

jax.config.update("jax_enable_x64", True)

import matplotlib.pyplot as plt
import numpy as np

from kdtheory.data import planted_linear
from kdtheory.dynamics import TestPoints, train
from kdtheory.eigen import Recipe, Spectrum, flow_filter

# %% [markdown]
# ## A spectrum from features, and from a kernel
#
# A planted linear regression: 80 training points in 40 dimensions whose covariance decays like
# `1/j`, labels `y = X θ* + noise`, and 1000 noise-free test points from the same population (so
# the test error is the excess risk).

# %%
data = planted_linear(80, 40, exponent=1.0, signal_exponent=0.5, noise=0.5, seed=0)
test = planted_linear(1000, 40, exponent=1.0, signal=data.theta_star, noise=0.0, seed=1)
X, y = data.X, data.y

features = Spectrum.from_features(X)  # thin SVD of X: weights are available
kernel = Spectrum.from_kernel(X @ X.T)  # eigendecomposition of the 80 × 80 Gram matrix
print(features)
print(kernel)
print(
    "largest relative difference of the 40 shared eigenvalues:",
    np.max(np.abs(features.evals - kernel.evals[:40])) / features.evals[0],
)

# %% [markdown]
# Both views give the same eigenvalues, in descending order. The kernel has 80 of them, and the 40
# beyond the rank of `X` are set to exactly 0 (`rank_tol`), not left as round-off.

# %% [markdown]
# ## Each eigendirection is learned on its own clock
#
# `Recipe(...).filter(spectrum, t)` gives the filter at every time. We use the step size
# `η = 1/λ_1` (the largest step at which no gradient-descent mode oscillates) and measure
# gradient flow in the same units (`learning_rate=η`: `t` counts steps of length η), so the three
# recipes share one time axis.

# %% tags=["readme-figure"]
eta = 1.0 / features.evals[0]
steps = np.arange(0, 3001)
recipes = {
    "gradient flow": Recipe("flow", learning_rate=eta),
    "gradient descent": Recipe("gd", learning_rate=eta),
    "momentum β = 0.9": Recipe("momentum", learning_rate=eta, momentum=0.9),
}
filters = {name: r.filter(features, steps).a for name, r in recipes.items()}
shown = [0, 4, 9, 19, 39]  # eigendirections 1, 5, 10, 20, 40

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
for ax, (name, a) in zip(axes, filters.items(), strict=True):
    for k in shown:
        ax.plot(steps[1:], a[1:, k], label=f"k = {k + 1}, ηλ = {eta * features.evals[k]:.3f}")
    ax.set(xscale="log", xlabel="t (steps of η)", title=name)
    ax.axhline(1.0, color="0.6", lw=0.8, ls="--")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("fraction learned a_k(t)")
axes[0].legend(fontsize=8)
fig.suptitle("Every eigendirection is learned on its own clock, ~1/(ηλ_k) steps")
fig.tight_layout()
plt.show()

# %%
for name, a in filters.items():
    half = [int(np.argmax(a[:, k] >= 0.5)) for k in shown]
    print(f"{name:>18}: steps to learn half of directions {[k + 1 for k in shown]}: {half}")
print("momentum's largest a_k on the shown directions:", filters["momentum β = 0.9"][:, shown].max(axis=0).round(3))

# %% [markdown]
# Gradient flow and gradient descent learn half of direction `k` after about `log 2/(ηλ_k)` steps:
# the top direction within a step, the bottom one (`ηλ = 0.005`) after 144. Momentum (β = 0.9)
# reaches half of the lower directions three to seven times sooner, but every shown direction
# overshoots past 1 — from 1.9 on the top direction to 1.03 on the bottom one — and the upper ones
# oscillate before settling: the complex roots of the heavy-ball recursion.

# %% [markdown]
# ## Test predictions, and t = ∞
#
# `kdtheory.dynamics.train` turns the filter into a `Trajectory`: training and test predictions,
# weights, the residual per mode, the loss and the weight norm, at every requested time.
# `t = np.inf` is the exact converged solution, not a large finite time.

# %%
t = np.unique(np.r_[0, np.geomspace(1, 1e5, 60).round()])
run = train(features, y, t, recipe=Recipe("gd", learning_rate=eta), test=TestPoints(features=test.X))
converged = train(features, y, np.inf, recipe=Recipe("gd", learning_rate=eta), test=TestPoints(features=test.X))
print(run)
test_error = np.mean((run.test - test.y) ** 2, axis=1)
best = int(np.argmin(test_error))
print(
    f"test error at t = 0: {test_error[0]:.3f}; best {test_error[best]:.3f} at t = {t[best]:g} steps; "
    f"t = ∞: {np.mean((converged.test - test.y) ** 2):.3f}"
)
w_lstsq = np.linalg.lstsq(X, y, rcond=None)[0]
print("t = ∞ weights against numpy's least squares, max |Δ|:", np.max(np.abs(converged.weights - w_lstsq)))

# %%
on_kernel = train(kernel, y, t, recipe=Recipe("gd", learning_rate=eta), test=TestPoints(kernel=test.X @ X.T))
print(
    "kernel spectrum against features spectrum, test predictions, max |Δ|:", np.max(np.abs(on_kernel.test - run.test))
)

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(t[1:], test_error[1:], label="test error (excess risk)")
ax.plot(t[1:], run.loss[1:] / len(y), label="training loss ½‖f − y‖²/n")
ax.axhline(np.mean((converged.test - test.y) ** 2), color="C0", ls="--", lw=1, label="test error at t = ∞")
ax.axvline(t[best], color="0.5", lw=0.8)
ax.set(xscale="log", yscale="log", xlabel="t (gradient-descent steps)", title="Early stopping regularizes")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# The test error falls, reaches its minimum after about ten steps, and rises again towards the
# least-squares solution at `t = ∞` (which matches `numpy.linalg.lstsq` to round-off), while the
# training loss keeps falling: at ten steps the small-eigenvalue directions are still mostly
# unlearned (the bottom one needs 144 steps to learn half, figure above), and on this problem
# leaving them so is worth more than fitting them. The kernel spectrum and the feature spectrum
# give the same test predictions (the difference above, 1.5e-11, is round-off).

# %% [markdown]
# ## The λ = 0 limit
#
# Test predictions and weights use `a/λ` (`k_x U diag(a/λ) Uᵀ y`). At `λ = 0` that is `0/0` if
# computed as written; its limit for gradient flow is `η t`. A `Filter` stores `a/λ` itself,
# computed stably, so zero and tiny eigenvalues give exact finite answers.

# %%
lam = np.array([1.0, 1e-9, 1e-18, 0.0])
T = np.array([10.0, np.inf])
with np.errstate(divide="ignore", invalid="ignore"):
    naive = (1.0 - np.exp(-lam * T[:, None])) / lam  # a/λ as written
f = flow_filter(lam, T)
print("λ:               ", lam)
print("naive a/λ, t=10: ", naive[0], "  t=∞:", naive[1])
print("Filter a/λ, t=10:", f.a_over_eval[0], "  t=∞:", f.a_over_eval[1])
print("Filter a,   t=∞: ", f.a[1])

# %% [markdown]
# The naive quotient returns NaN at `λ = 0`, 0 for `λ = 1e-18` at `t = 10` (the numerator
# rounds to zero) where the limit is 10, and already loses digits at `λ = 1e-9` (the eighth
# significant digit differs); at `t = ∞` it returns `1/λ` for positive λ
# and NaN at 0. The filter returns 10 for both at `t = 10`, and at `t = ∞`
# `a/λ = 1/λ` for `λ > 0` and `0` at `λ = 0` — the pseudo-inverse, i.e. the minimum-norm
# solution, with `a = 1` on every positive eigenvalue and `a = 0` on the null space.

# %% [markdown]
# ## The closed form against the JAX engine, in three lines
#
# `kdtheory.simulate.train_model` trains any JAX model step by step (one compiled `lax.scan`) and
# returns the same `Trajectory` type. A linear model from zero weights, trained by gradient
# descent on `½‖f − y‖²` (`Loss("mse")`, normalization `"sum"` like the closed form), must follow
# the closed form exactly.

# %%
from kdtheory.simulate import Loss, Optimizer, Run, linear_model, train_model

gd = Run(loss=Loss("mse"), optimizer=Optimizer(learning_rate=eta))
sim = train_model(linear_model(40, 1), X, y[:, None], t=t[:30], run=gd, dtype=jax.numpy.float64)
print("max |closed form − simulation| over 30 times:", np.max(np.abs(sim.train[..., 0] - run.train[:30])))

# %% [markdown]
# The two agree to round-off (about 1e-14) over the first 30 recorded times, up to 515 steps.
