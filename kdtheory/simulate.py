r"""The JAX training engine: models × losses × optimizers × schedules, recorded at checkpoints.

Training runs as one ``jax.jit``-compiled ``lax.scan`` over steps (no Python loop per step); the
state at each requested checkpoint (training outputs, test outputs, loss, optionally a projection
of the parameters) is written into preallocated buffers. Checkpoint ``s`` is the state *after*
``s`` updates, the convention of :mod:`kdtheory.dynamics` (``s = 0`` is the initialization).

Conventions:
  * **Losses** are means over the examples of a (mini)batch: MSE ``½‖f − t‖²/b`` (or ``"sum"``
    normalization ``½‖f − t‖²``) and softmax cross-entropy ``−(1/b) Σ_i Σ_c t_ic log softmax(f_i)_c``.
  * **Distillation** with teacher weight ``w`` and temperature ``τ``:
    ``(1 − w) CE(f, y) + w τ² CE(f/τ, softmax(z_teacher/τ))`` (Hinton et al. 2015; the ``τ²``
    keeps gradient magnitudes comparable across τ). For MSE the target is ``(1 − w) y + w f_teacher``.
  * **Schedules**: the teacher weight may switch at ``switch_step`` (late distillation: 0 → 1; the
    reverse: 1 → 0).
  * **Optimizers**: ``v ← β v − η g``, ``θ ← θ + v`` (β = 0: gradient descent); minibatches are
    drawn without replacement within a step from an explicit seed.
  * **Kernel models** hold dual coefficients α (``f = K α``) and are updated with the functional
    gradient ``α ← α − η ∂L/∂f`` — gradient descent in the RKHS, the dynamics of
    :mod:`kdtheory.dynamics`.
  * **Precision**: float32 by default; float64 needs JAX's x64 mode, which kdtheory never switches
    on itself (``jax.config.update("jax_enable_x64", True)``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, choice, positive_scalar

__all__ = [
    "Model",
    "linear_model",
    "kernel_model",
    "random_features_model",
    "mlp",
    "Loss",
    "Optimizer",
    "Run",
    "train_model",
    "teacher_student",
]

_ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "erf": jax.scipy.special.erf,
    "identity": lambda x: x,
}


@dataclass(frozen=True, eq=False)
class Model:
    """A model: ``init(key) -> params`` (a pytree) and ``apply(params, inputs) -> outputs (b, k)``.

    ``functional=True`` marks a kernel model (inputs are kernel rows, params the dual
    coefficients), updated with the functional gradient. Models compare by identity, so reuse one
    object across seeds to reuse its compiled training loop.
    """

    name: str
    init: Callable[[jax.Array], Any]
    apply: Callable[[Any, jax.Array], jax.Array]
    outputs: int
    functional: bool = False

    def __repr__(self) -> str:
        return f"Model({self.name})"


def linear_model(d: int, k: int, *, init_scale: float = 0.0, bias: bool = False) -> Model:
    r"""``f(x) = xᵀ W (+ b)``; ``W_ij ~ N(0, init_scale²/d)`` (default: exactly zero, as in theory)."""

    def init(key):
        p = {"w": init_scale * jax.random.normal(key, (d, k)) / np.sqrt(d)}
        if bias:
            p["b"] = jnp.zeros((k,))
        return p

    def apply(p, x):
        out = x @ p["w"]
        return out + p["b"] if bias else out

    return Model(f"linear(d={d}, k={k})", init, apply, k)


def kernel_model(n_train: int, k: int) -> Model:
    r"""Kernel machine ``f(x) = Σ_i α_i k(x_i, x)``: inputs are kernel rows ``k(x, X_train)``.

    Dual coefficients start at zero; training uses the functional gradient (RKHS gradient descent),
    so on the MSE loss the training outputs follow ``f ← f − η K (f − y)`` exactly.
    """

    def init(key):
        return {"alpha": jnp.zeros((n_train, k))}

    def apply(p, krows):
        return krows @ p["alpha"]

    return Model(f"kernel(n={n_train}, k={k})", init, apply, k, functional=True)


def random_features_model(
    d: int, k: int, width: int, *, activation: str = "relu", feature_seed: int = 0, init_scale: float = 0.0
) -> Model:
    r"""Random features ``f(x) = φ(x)ᵀ w``, ``φ(x) = σ(W₀ x)/√width`` with fixed ``W₀ ~ N(0, 1/d)``.

    Only the readout ``w`` is trained (init ``N(0, init_scale²/width)``, default zero).
    """
    act = _ACTIVATIONS[choice(activation, "activation", tuple(_ACTIVATIONS))]
    W0 = np.random.default_rng(feature_seed).standard_normal((d, width)) / np.sqrt(d)

    def init(key):
        return {"w": init_scale * jax.random.normal(key, (width, k)) / np.sqrt(width)}

    def apply(p, x):
        return act(x @ jnp.asarray(W0, dtype=x.dtype)) / np.sqrt(width) @ p["w"]

    return Model(f"random_features(d={d}, width={width}, k={k}, {activation})", init, apply, k)


def mlp(
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    init_scale: float = 1.0,
    bias: bool = True,
    parameterization: Literal["standard", "ntk"] = "standard",
    weight_std: float = 1.0,
    bias_std: float = 0.0,
) -> Model:
    r"""Fully connected network with layer sizes ``(d, h_1, …, k)``; outputs are logits.

    ``parameterization="standard"``: ``W_l ~ N(0, init_scale² · g/fan_in)`` with gain ``g = 2`` for
    ReLU hidden layers and 1 otherwise (He / LeCun), biases zero, ``h_{l+1} = h_l W_l + b_l``.

    ``parameterization="ntk"`` (Jacot et al. 2018; the convention of neural-tangents and of
    :func:`kdtheory.ntk.relu_ntk`): ``W_l, b_l ~ N(0, 1)`` and
    ``h_{l+1} = (weight_std/√fan_in) h_l W_l + bias_std · b_l``; as the widths grow the network
    trained by gradient descent stays close to its linearization.
    """
    act_name = choice(activation, "activation", tuple(_ACTIVATIONS))
    act = _ACTIVATIONS[act_name]
    choice(parameterization, "parameterization", ("standard", "ntk"))
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must hold at least two positive layer sizes, got {sizes}")
    gain = 2.0 if act_name == "relu" else 1.0
    ntk = parameterization == "ntk"
    has_bias = bias and (not ntk or bias_std != 0.0)

    def init(key):
        keys = jax.random.split(key, 2 * (len(sizes) - 1))
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            g = gain if i < len(sizes) - 2 else 1.0
            scale = 1.0 if ntk else init_scale * np.sqrt(g / a)
            layer = {"w": scale * jax.random.normal(keys[2 * i], (a, b))}
            if has_bias:
                layer["b"] = jax.random.normal(keys[2 * i + 1], (b,)) if ntk else jnp.zeros((b,))
            layers.append(layer)
        return layers

    def apply(p, x):
        h = x
        for i, layer in enumerate(p):
            if ntk:
                h = (weight_std / np.sqrt(h.shape[-1])) * (h @ layer["w"]) + (
                    bias_std * layer["b"] if has_bias else 0.0
                )
            else:
                h = h @ layer["w"] + (layer["b"] if has_bias else 0.0)
            if i < len(p) - 1:
                h = act(h)
        return h

    tag = f", ntk σw={weight_std:g} σb={bias_std:g}" if ntk else ""
    return Model(f"mlp({'-'.join(map(str, sizes))}, {act_name}{tag})", init, apply, sizes[-1])


@dataclass(frozen=True)
class Loss:
    """The training objective and its schedule (see the module docstring for the formulas).

    Attributes:
      kind: ``"mse"`` or ``"ce"`` (softmax cross-entropy).
      normalization: for MSE, ``"mean"`` (``½‖f − t‖²/b``) or ``"sum"`` (``½‖f − t‖²``).
      temperature: τ > 0 of the distillation term (CE only).
      teacher_weight: weight on the teacher's targets (0: one-hot / plain labels).
      teacher_weight_after: weight after ``switch_step`` (``None``: no switch).
      switch_step: the step at which the weight switches (late distillation).
    """

    kind: Literal["mse", "ce"] = "ce"
    normalization: Literal["mean", "sum"] = "mean"
    temperature: float = 1.0
    teacher_weight: float = 0.0
    teacher_weight_after: float | None = None
    switch_step: int | None = None

    def __post_init__(self) -> None:
        choice(self.kind, "kind", ("mse", "ce"))
        choice(self.normalization, "normalization", ("mean", "sum"))
        positive_scalar(self.temperature, "temperature")
        if (self.teacher_weight_after is None) != (self.switch_step is None):
            raise ValueError("teacher_weight_after and switch_step go together")


@dataclass(frozen=True)
class Optimizer:
    """Full-batch or minibatch (heavy-ball) gradient descent.

    Attributes:
      learning_rate: η > 0.
      momentum: β in [0, 1).
      batch_size: minibatch size (``None``: full batch).
    """

    learning_rate: float = 0.1
    momentum: float = 0.0
    batch_size: int | None = None

    def __post_init__(self) -> None:
        positive_scalar(self.learning_rate, "learning_rate")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")


@dataclass(frozen=True, eq=False)
class Run:
    r"""A recorded training run (numpy arrays; ``C`` checkpoints).

    Attributes:
      steps: checkpoint steps ``(C,)``.
      train_outputs: outputs (logits) on the training inputs, ``(C, n, k)``.
      test_outputs: outputs on the test inputs ``(C, n_test, k)`` or ``None``.
      train_loss: the training objective at each checkpoint, ``(C,)``.
      train_accuracy, test_accuracy: top-1 accuracy against the labels' argmax (``None`` without
        labels).
      projection: ``project(params)`` at each checkpoint, if a projection was given.
      params: the final parameters (numpy pytree).
      seed: the seed used.
    """

    steps: np.ndarray
    train_outputs: np.ndarray
    test_outputs: np.ndarray | None
    train_loss: np.ndarray
    train_accuracy: np.ndarray | None
    test_accuracy: np.ndarray | None
    projection: np.ndarray | None
    params: Any
    seed: int

    def __repr__(self) -> str:
        acc = "" if self.test_accuracy is None else f", final test accuracy={self.test_accuracy[-1]:.4f}"
        last = int(self.steps[-1])
        return f"Run({self.steps.size} checkpoints up to step {last}, final loss={self.train_loss[-1]:.4g}{acc})"


def _objective(loss: Loss, f, y, teacher, w):
    if loss.kind == "mse":
        r = f - ((1.0 - w) * y + w * teacher)
        div = f.shape[0] if loss.normalization == "mean" else 1.0
        return 0.5 * jnp.sum(r * r) / div
    logp = jax.nn.log_softmax(f, axis=-1)
    ce_y = -jnp.mean(jnp.sum(y * logp, axis=-1))
    tau = float(loss.temperature)
    q = jax.nn.softmax(teacher / tau, axis=-1)
    ce_q = -jnp.mean(jnp.sum(q * jax.nn.log_softmax(f / tau, axis=-1), axis=-1)) * tau * tau
    return (1.0 - w) * ce_y + w * ce_q


@functools.lru_cache(maxsize=64)
def _compiled(model: Model, loss: Loss, opt: Optimizer, num_steps: int, n: int, has_test: bool, project):
    """Build (and cache) the jitted training loop for one configuration."""
    w0 = float(loss.teacher_weight)
    w1 = float(loss.teacher_weight if loss.teacher_weight_after is None else loss.teacher_weight_after)
    switch = int(loss.switch_step) if loss.switch_step is not None else num_steps + 1
    B = opt.batch_size
    lr, beta = float(opt.learning_rate), float(opt.momentum)  # Python floats: weakly typed, keep the dtype

    def grads_at(params, X, Y, Tt, w, key):
        if B is not None:
            idx = jax.random.choice(key, n, (B,), replace=False)
            Xb, Yb, Tb = X[idx], Y[idx], Tt[idx]
        else:
            Xb, Yb, Tb = X, Y, Tt
        if model.functional:
            f = model.apply(params, Xb)
            gf = jax.grad(lambda f_: _objective(loss, f_, Yb, Tb, w))(f)
            if B is not None:
                gf = jnp.zeros_like(params["alpha"]).at[idx].set(gf)
            return {"alpha": gf}
        return jax.grad(lambda p: _objective(loss, model.apply(p, Xb), Yb, Tb, w))(params)

    def run(params, X, Y, Tt, Xt, ckpts, key):
        C = ckpts.shape[0]
        f0 = model.apply(params, X)
        rec = {
            "train": jnp.zeros((C,) + f0.shape, f0.dtype),
            "loss": jnp.zeros((C,), f0.dtype),
        }
        if has_test:
            rec["test"] = jnp.zeros((C, Xt.shape[0], f0.shape[1]), f0.dtype)
        if project is not None:
            p0 = project(params)
            rec["proj"] = jnp.zeros((C,) + p0.shape, p0.dtype)
        vel = jax.tree_util.tree_map(jnp.zeros_like, params)

        def write(rec, params, idx, w):
            f = model.apply(params, X)
            new = dict(rec)
            new["train"] = rec["train"].at[idx].set(f)
            new["loss"] = rec["loss"].at[idx].set(_objective(loss, f, Y, Tt, w))
            if has_test:
                new["test"] = rec["test"].at[idx].set(model.apply(params, Xt))
            if project is not None:
                new["proj"] = rec["proj"].at[idx].set(project(params))
            return new

        def weight(step):
            return jnp.where(step < switch, w0, w1).astype(X.dtype)

        def body(carry, step):
            params, vel, key, idx, rec = carry
            w = weight(step)
            hit = step == ckpts[jnp.minimum(idx, C - 1)]
            rec = lax.cond(hit, lambda r: write(r, params, idx, w), lambda r: r, rec)
            idx = idx + hit.astype(idx.dtype)
            key, sub = jax.random.split(key)
            g = grads_at(params, X, Y, Tt, w, sub)
            vel = jax.tree_util.tree_map(lambda v, g_: beta * v - lr * g_, vel, g)
            params = jax.tree_util.tree_map(lambda p, v: p + v, params, vel)
            return (params, vel, key, idx, rec), None

        init = (params, vel, key, jnp.zeros((), jnp.int32), rec)
        (params, _, _, idx, rec), _ = lax.scan(body, init, jnp.arange(num_steps))
        # the last checkpoint is the state after num_steps updates
        rec = write(rec, params, idx, weight(num_steps))
        return rec, params

    return jax.jit(run)


def train_model(
    model: Model,
    X: ArrayLike,
    labels: ArrayLike,
    *,
    checkpoints: ArrayLike,
    loss: Loss = Loss(),
    optimizer: Optimizer = Optimizer(),
    teacher: ArrayLike | None = None,
    X_test: ArrayLike | None = None,
    test_labels: ArrayLike | None = None,
    params: Any = None,
    seed: int = 0,
    dtype: Any = jnp.float32,
    project: Callable[[Any], jax.Array] | None = None,
) -> Run:
    r"""Train ``model`` and record it at ``checkpoints``.

    Args:
      model: a :class:`Model`.
      X: training inputs ``(n, d)`` (kernel models: the training kernel ``(n, n)``).
      labels: targets ``(n, k)`` — one-hot (CE) or regression values (MSE).
      checkpoints: steps at which to record, non-negative integers (sorted, unique; the run
        lasts ``max(checkpoints)`` updates).
      loss, optimizer: see :class:`Loss`, :class:`Optimizer`.
      teacher: the teacher's logits (CE) or outputs (MSE) on the training inputs, ``(n, k)``;
        needed when any teacher weight is nonzero.
      X_test: test inputs (kernel models: cross-kernel rows ``(n_test, n)``).
      test_labels: test targets ``(n_test, k)`` (for accuracy).
      params: initial parameters (default ``model.init(PRNGKey(seed))``).
      seed: the seed of initialization and minibatch sampling.
      dtype: ``jnp.float32`` (default) or ``jnp.float64`` (needs x64 mode).
      project: ``params -> array`` recorded at each checkpoint (e.g. weights onto a basis).

    Returns:
      A :class:`Run`.

    Raises:
      ValueError: shape mismatches, non-finite inputs, float64 without x64 mode, a teacher weight
        without a teacher, bad checkpoints.
    """
    dtype = jnp.dtype(dtype)
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:
        raise ValueError(
            f"dtype {dtype} needs JAX's x64 mode: call jax.config.update('jax_enable_x64', True) first "
            "(kdtheory never switches it on itself)"
        )
    Xn = as_float_array(X, "X", ndim=(2,))
    Yn = as_float_array(labels, "labels", ndim=(2,))
    n = Xn.shape[0]
    if Yn.shape[0] != n:
        raise ValueError(f"labels has {Yn.shape[0]} rows but X has {n}")
    if Yn.shape[1] != model.outputs:
        raise ValueError(f"labels has {Yn.shape[1]} columns but the model has {model.outputs} outputs")
    uses_teacher = loss.teacher_weight != 0 or (loss.teacher_weight_after not in (None, 0))
    if teacher is None:
        if uses_teacher:
            raise ValueError("a nonzero teacher weight needs teacher outputs (teacher=...)")
        Tn = np.zeros_like(Yn)
    else:
        Tn = as_float_array(teacher, "teacher", ndim=(2,))
        if Tn.shape != Yn.shape:
            raise ValueError(f"teacher must have the shape of labels {Yn.shape}, got {Tn.shape}")
    ck = np.asarray(checkpoints)
    if (
        ck.ndim != 1
        or ck.size == 0
        or not np.issubdtype(ck.dtype, np.number)
        or np.any(ck < 0)
        or np.any(ck != np.round(ck))
    ):
        raise ValueError("checkpoints must be a non-empty 1-D array of non-negative whole numbers")
    ck = np.unique(ck.astype(np.int64))
    if optimizer.batch_size is not None and not 1 <= optimizer.batch_size <= n:
        raise ValueError(f"batch_size must lie in [1, n={n}], got {optimizer.batch_size}")
    has_test = X_test is not None
    Xt = as_float_array(X_test, "X_test", ndim=(2,)) if has_test else np.zeros((1, Xn.shape[1]))
    if has_test and Xt.shape[1] != Xn.shape[1]:
        raise ValueError(f"X_test has {Xt.shape[1]} columns but X has {Xn.shape[1]}")
    key = jax.random.PRNGKey(seed)
    k_init, k_run = jax.random.split(key)
    p0 = model.init(k_init) if params is None else params
    p0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), p0)
    fn = _compiled(model, loss, optimizer, int(ck[-1]), n, has_test, project)
    cast = functools.partial(jnp.asarray, dtype=dtype)
    rec, final = fn(p0, cast(Xn), cast(Yn), cast(Tn), cast(Xt), jnp.asarray(ck, jnp.int32), k_run)
    rec = jax.tree_util.tree_map(np.asarray, rec)
    train_acc = _accuracy(rec["train"], Yn)
    test_out = rec.get("test")
    test_acc = None
    if has_test and test_labels is not None:
        Ytn = as_float_array(test_labels, "test_labels", ndim=(2,))
        if Ytn.shape != (Xt.shape[0], model.outputs):
            raise ValueError(f"test_labels must have shape {(Xt.shape[0], model.outputs)}, got {Ytn.shape}")
        test_acc = _accuracy(test_out, Ytn)
    if not np.all(np.isfinite(rec["train"])):
        raise FloatingPointError("training diverged (non-finite outputs); lower the learning rate")
    return Run(
        steps=ck,
        train_outputs=rec["train"],
        test_outputs=test_out,
        train_loss=rec["loss"],
        train_accuracy=train_acc,
        test_accuracy=test_acc,
        projection=rec.get("proj"),
        params=jax.tree_util.tree_map(np.asarray, final),
        seed=seed,
    )


def _accuracy(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    if labels.shape[1] < 2:
        return None
    return np.mean(outputs.argmax(-1) == labels.argmax(-1)[None], axis=-1)


def teacher_student(
    teacher_model: Model,
    X: ArrayLike,
    labels: ArrayLike,
    *,
    teacher_steps: int,
    student_steps: int,
    student_model: Model | None = None,
    loss: Loss = Loss(),
    student_loss: Loss | None = None,
    optimizer: Optimizer = Optimizer(),
    checkpoints: int = 20,
    X_test: ArrayLike | None = None,
    test_labels: ArrayLike | None = None,
    seed: int = 0,
    student_seed: int | None = None,
    dtype: Any = jnp.float32,
) -> tuple[Run, Run]:
    r"""Train a teacher on the labels, then a student on the teacher's training outputs.

    The teacher trains with ``loss`` for ``teacher_steps``; its final training outputs (logits for
    CE) become the student's teacher targets; the student (``student_model``, default the same
    architecture, initialized from ``student_seed``, default ``seed + 1``) trains with
    ``student_loss`` (default: pure distillation, ``teacher_weight = 1`` at ``loss.temperature``).

    Returns:
      ``(teacher_run, student_run)``, each recorded at ``checkpoints`` log-spaced steps.
    """
    t_ck = _log_checkpoints(teacher_steps, checkpoints)
    teacher = train_model(
        teacher_model, X, labels, checkpoints=t_ck, loss=loss, optimizer=optimizer,
        X_test=X_test, test_labels=test_labels, seed=seed, dtype=dtype,
    )  # fmt: skip
    s_loss = student_loss or Loss(
        kind=loss.kind, normalization=loss.normalization, temperature=loss.temperature, teacher_weight=1.0
    )
    student = train_model(
        student_model or teacher_model, X, labels, checkpoints=_log_checkpoints(student_steps, checkpoints),
        loss=s_loss, optimizer=optimizer, teacher=teacher.train_outputs[-1], X_test=X_test,
        test_labels=test_labels, seed=seed + 1 if student_seed is None else student_seed, dtype=dtype,
    )  # fmt: skip
    return teacher, student


def _log_checkpoints(steps: int, count: int) -> np.ndarray:
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    return np.unique(np.r_[0, np.geomspace(1, max(steps, 1), max(count - 1, 1)).round().astype(int), steps])
