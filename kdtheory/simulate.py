r"""The JAX training engine: models × losses × optimizers × schedules, recorded along a time axis.

Training runs as one ``jax.jit``-compiled ``lax.scan`` over steps (no Python loop per step); the
state at each requested step of the time axis ``t`` (training outputs, test outputs, loss,
optionally a projection of the parameters) is written into preallocated buffers. ``t = s`` is the
state *after* ``s`` updates, the convention of :mod:`kdtheory.dynamics` (``t = 0`` is the
initialization); the run lasts ``max(t)`` updates. The result is a
:class:`kdtheory.trajectory.Trajectory`, the type the closed forms return, so a simulation and a
closed form compare field by field.

Conventions (the vocabulary of the package docstring):
  * **Losses** (:class:`Loss`, callable) over a (mini)batch of ``b`` examples and ``k`` outputs:
    MSE ``½‖f − y‖²`` and softmax cross-entropy ``−Σ_i Σ_c y_ic log softmax(f_i)_c``, with
    ``normalization`` ``"sum"`` (as written; the default, that of the closed forms), ``"mean"``
    (divided by ``b``) or ``"per_output"`` (divided by ``b·k``, neural-tangents' convention).
  * **Distillation** with teacher weight ``w`` and temperature ``τ``:
    ``(1 − w) CE(f, y) + w τ² CE(f/τ, softmax(z/τ))`` with ``z`` the teacher's logits
    (Hinton et al. 2015; the ``τ²`` keeps gradient magnitudes comparable across τ). For MSE the
    target is ``(1 − w) y + w f_teacher``. A teacher given as probabilities ``p`` must be declared
    (``teacher_kind="probabilities"``) and is used as the logits ``log p``
    (``softmax(log p / τ) = p^{1/τ}/Σ p^{1/τ}``); undeclared probabilities are refused, never
    softmaxed twice.
  * **Schedules**: the teacher weight may switch at step ``switch_t`` (late distillation: 0 → 1;
    the reverse: 1 → 0).
  * **Optimizers**: ``v ← β v − η g``, ``θ ← θ + v`` (β = 0: gradient descent). Minibatches of
    ``B`` points are sampled without replacement within each epoch (the usual SGD): each epoch is
    a fresh random permutation of the ``n`` points, drawn from the run's seed, cut into ``⌊n/B⌋``
    batches; the ``n mod B`` points left over are skipped in that epoch.
  * **Compilation**: one compiled loop per model (by identity), loss kind and normalization, batch
    size, number of steps, ``n``, test set and projection; the learning rate, momentum,
    temperature, teacher weights and switch step are traced, so a sweep over them compiles once.
  * **Kernel models** hold dual coefficients α (``f = K α``) and are updated with the functional
    gradient ``α ← α − η ∂L/∂f`` — gradient descent in the RKHS, the dynamics of
    :mod:`kdtheory.dynamics`.
  * **Precision**: float32 by default; float64 needs JAX's x64 mode, which kdtheory never switches
    on itself (``jax.config.update("jax_enable_x64", True)``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, choice, positive_scalar
from kdtheory.eigen import NORMALIZATIONS, Normalization, loss_divisor
from kdtheory.structured_ntk import Layer
from kdtheory.trajectory import Trajectory

__all__ = [
    "Model",
    "linear_model",
    "kernel_model",
    "random_features_model",
    "mlp",
    "Loss",
    "Optimizer",
    "as_teacher_logits",
    "train_model",
    "TeacherStudent",
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

    Models compare by identity, so reuse one object across seeds (and across sweeps of the loss's
    temperature, weights and switch step, or of the learning rate) to reuse its compiled training
    loop.

    Attributes:
      name: a label for reports.
      init: ``key -> params``.
      apply: ``(params, inputs) -> outputs`` on a batch, outputs ``(b, k)``.
      outputs: ``k``.
      functional: a kernel model (inputs are kernel rows, params the dual coefficients), updated
        with the functional gradient.
      input_shape: the shape of one input (``(d,)``; kernel models ``(n_train,)``), checked
        against the data; ``None``: not declared.
      structure: for :func:`kdtheory.structured_ntk.structured_ntk`:
        ``structure(params, x, taps) -> (outputs, layers)``, the forward pass that adds
        ``taps[l]`` to layer ``l``'s pre-activation and returns its
        :class:`~kdtheory.structured_ntk.Layer` records; ``None`` for models without one.
    """

    name: str
    init: Callable[[jax.Array], Any]
    apply: Callable[[Any, jax.Array], jax.Array]
    outputs: int
    functional: bool = False
    input_shape: tuple[int, ...] | None = None
    structure: Callable | None = None

    def __repr__(self) -> str:
        return f"Model({self.name})"


def linear_model(d: int, k: int, *, init_scale: float = 0.0, bias: bool = False) -> Model:
    r"""``f(x) = xᵀ W (+ b)``; ``W_ij ~ N(0, init_scale²/d)`` (default: exactly zero, as in theory).

    Args:
      d: input width.
      k: number of outputs.
      init_scale: standard deviation scale of the initial weights (0: start from zero).
      bias: add a bias (initialized to zero).

    Returns:
      A :class:`Model` with a declared structure (one dense layer).
    """

    def init(key):
        p = {"w": init_scale * jax.random.normal(key, (d, k)) / np.sqrt(d)}
        if bias:
            p["b"] = jnp.zeros((k,))
        return p

    def structure(p, x, taps):
        z = x @ p["w"] + (p["b"] if bias else 0.0)
        z = z if taps is None else z + taps[0]
        return z, (Layer(x, z, 1.0 if bias else 0.0),)

    def apply(p, x):
        return structure(p, x, None)[0]

    return Model(f"linear(d={d}, k={k})", init, apply, k, input_shape=(int(d),), structure=structure)


def kernel_model(n_train: int, k: int) -> Model:
    r"""Kernel machine ``f(x) = Σ_i α_i k(x_i, x)``: inputs are kernel rows ``k(x, X_train)``.

    Dual coefficients start at zero; training uses the functional gradient (RKHS gradient descent),
    so on the MSE loss the training outputs follow ``f ← f − η K (f − y)`` exactly.

    Args:
      n_train: number of training points (the width of a kernel row).
      k: number of outputs.

    Returns:
      A functional :class:`Model`.
    """

    def init(key):
        return {"alpha": jnp.zeros((n_train, k))}

    def apply(p, krows):
        return krows @ p["alpha"]

    return Model(f"kernel(n={n_train}, k={k})", init, apply, k, functional=True, input_shape=(int(n_train),))


def random_features_model(
    d: int, k: int, width: int, *, activation: str = "relu", feature_seed: int = 0, init_scale: float = 0.0
) -> Model:
    r"""Random features ``f(x) = φ(x)ᵀ w``, ``φ(x) = σ(W₀ x)/√width`` with fixed ``W₀ ~ N(0, 1/d)``.

    Only the readout ``w`` is trained (init ``N(0, init_scale²/width)``, default zero).

    Args:
      d: input width.
      k: number of outputs.
      width: number of random features.
      activation: one of ``relu``, ``tanh``, ``gelu``, ``erf``, ``identity``.
      feature_seed: seed of the fixed first layer ``W₀``.
      init_scale: scale of the initial readout.

    Returns:
      A :class:`Model`.
    """
    act = _ACTIVATIONS[choice(activation, "activation", tuple(_ACTIVATIONS))]
    W0 = np.random.default_rng(feature_seed).standard_normal((d, width)) / np.sqrt(d)

    def init(key):
        return {"w": init_scale * jax.random.normal(key, (width, k)) / np.sqrt(width)}

    def structure(p, x, taps):
        phi = act(x @ jnp.asarray(W0, dtype=x.dtype)) / np.sqrt(width)
        z = phi @ p["w"]
        z = z if taps is None else z + taps[0]
        return z, (Layer(phi, z, 0.0),)

    def apply(p, x):
        return structure(p, x, None)[0]

    name = f"random_features(d={d}, width={width}, k={k}, {activation})"
    return Model(name, init, apply, k, input_shape=(int(d),), structure=structure)


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

    The model declares its layers (``Model.structure``), so
    :func:`kdtheory.ntk.empirical_ntk` computes its NTK by the structured method (THEORY.md §10).

    Args:
      sizes: layer widths ``(d, h_1, …, k)``, at least two, all positive.
      activation: one of ``relu``, ``tanh``, ``gelu``, ``erf``, ``identity``.
      init_scale: standard parameterization: scale of the initial weights.
      bias: add biases (NTK parameterization: only if ``bias_std ≠ 0``).
      parameterization: ``"standard"`` or ``"ntk"``.
      weight_std: σ_w of the NTK parameterization.
      bias_std: σ_b of the NTK parameterization.

    Returns:
      A :class:`Model`.

    Raises:
      ValueError: unknown activation or parameterization, or bad sizes.
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
    b_scale = (float(bias_std) if ntk else 1.0) if has_bias else 0.0

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

    def structure(p, x, taps):
        h, records = x, []
        for i, layer in enumerate(p):
            inp = (weight_std / np.sqrt(h.shape[-1])) * h if ntk else h  # ∂z/∂W = inp (the scale folded in)
            z = inp @ layer["w"] + (b_scale * layer["b"] if has_bias else 0.0)
            if taps is not None:
                z = z + taps[i]
            records.append(Layer(inp, z, b_scale))
            h = act(z) if i < len(p) - 1 else z
        return h, tuple(records)

    def apply(p, x):
        return structure(p, x, None)[0]

    tag = f", ntk σw={weight_std:g} σb={bias_std:g}" if ntk else ""
    name = f"mlp({'-'.join(map(str, sizes))}, {act_name}{tag})"
    return Model(name, init, apply, sizes[-1], input_shape=(sizes[0],), structure=structure)


@dataclass(frozen=True)
class Loss:
    r"""The training objective and its schedule; calling it evaluates the objective.

    ``loss(outputs, y, teacher)`` is, for a batch of ``b`` examples and ``k`` outputs, with ``w``
    the teacher weight and ``D`` the normalization's divisor (``"sum"``: 1, ``"mean"``: ``b``,
    ``"per_output"``: ``b·k``):

    * MSE: ``½‖f − ((1 − w) y + w teacher)‖² / D``;
    * CE: ``[(1 − w) CE(f, y) + w τ² CE(f/τ, softmax(teacher/τ))] / D`` with
      ``CE(f, q) = −Σ_i Σ_c q_ic log softmax(f_i)_c`` and ``teacher`` the teacher's logits.

    Attributes:
      kind: ``"mse"`` or ``"ce"`` (softmax cross-entropy).
      normalization: ``"sum"`` (default), ``"mean"`` or ``"per_output"`` (see above).
      temperature: τ > 0 of the distillation term (CE only).
      teacher_weight: weight on the teacher's targets in [0, 1] (0: plain labels).
      truth_weight: the same mixture weighed on the labels (Borup & Andersen's α,
        ``teacher_weight = 1 − truth_weight``); give at most one of the two.
      teacher_weight_after: weight after ``switch_t`` (``None``: no switch).
      switch_t: the step at which the weight switches (late distillation).

    Raises:
      ValueError: unknown kind or normalization, τ ≤ 0, a weight outside [0, 1], both weights,
        or only one of ``teacher_weight_after`` and ``switch_t``.
    """

    kind: Literal["mse", "ce"] = "ce"
    _: KW_ONLY
    normalization: Normalization = "sum"
    temperature: float = 1.0
    teacher_weight: float | None = None
    truth_weight: float | None = None
    teacher_weight_after: float | None = None
    switch_t: int | None = None

    def __post_init__(self) -> None:
        choice(self.kind, "kind", ("mse", "ce"))
        choice(self.normalization, "normalization", NORMALIZATIONS)
        positive_scalar(self.temperature, "temperature")
        if self.teacher_weight is not None and self.truth_weight is not None:
            raise ValueError("give teacher_weight or truth_weight (= 1 - teacher_weight), not both")
        w = 0.0 if self.teacher_weight is None and self.truth_weight is None else None
        if self.truth_weight is not None:
            w = 1.0 - _unit(self.truth_weight, "truth_weight")
        object.__setattr__(self, "teacher_weight", _unit(self.teacher_weight if w is None else w, "teacher_weight"))
        object.__setattr__(self, "truth_weight", None)
        if (self.teacher_weight_after is None) != (self.switch_t is None):
            raise ValueError("teacher_weight_after and switch_t go together")
        if self.teacher_weight_after is not None:
            _unit(self.teacher_weight_after, "teacher_weight_after")
            if int(self.switch_t) != self.switch_t or self.switch_t < 0:
                raise ValueError(f"switch_t must be a non-negative whole number of steps, got {self.switch_t!r}")

    @property
    def uses_teacher(self) -> bool:
        """Whether any phase of the schedule gives the teacher a nonzero weight."""
        return self.teacher_weight != 0 or self.teacher_weight_after not in (None, 0)

    def __call__(self, outputs: jax.Array, y: jax.Array, teacher: jax.Array | None = None, *,
                 teacher_weight: float | jax.Array | None = None,
                 temperature: float | jax.Array | None = None) -> jax.Array:  # fmt: skip
        """The objective on a batch (differentiable with JAX).

        Args:
          outputs: the model's outputs (logits for CE) ``(b, k)``.
          y: labels / targets ``(b, k)`` (one-hot or soft for CE).
          teacher: the teacher's logits (CE) or outputs (MSE) ``(b, k)``; needed when the
            weight is nonzero.
          teacher_weight: overrides ``self.teacher_weight`` (e.g. a traced schedule value).
          temperature: overrides ``self.temperature`` (e.g. a traced value, so that one compiled
            training loop serves a sweep over τ).

        Returns:
          A scalar.

        Raises:
          ValueError: a nonzero teacher weight without a teacher.
        """
        w = self.teacher_weight if teacher_weight is None else teacher_weight
        if teacher is None:
            if not isinstance(w, (int, float)) or w != 0:
                raise ValueError("a nonzero teacher weight needs teacher outputs (teacher=...)")
            teacher = jnp.zeros_like(outputs)
        b, k = outputs.shape
        div = loss_divisor(self.normalization, b, k)
        if self.kind == "mse":
            r = outputs - ((1.0 - w) * y + w * teacher)
            return 0.5 * jnp.sum(r * r) / div
        ce_y = -jnp.sum(y * jax.nn.log_softmax(outputs, axis=-1))
        tau = float(self.temperature) if temperature is None else temperature
        q = jax.nn.softmax(teacher / tau, axis=-1)
        ce_q = -jnp.sum(q * jax.nn.log_softmax(outputs / tau, axis=-1)) * tau * tau
        return ((1.0 - w) * ce_y + w * ce_q) / div


def _unit(x: float, name: str) -> float:
    if isinstance(x, bool) or not np.isscalar(x) or not np.isfinite(x) or not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {x!r}")
    return float(x)


@dataclass(frozen=True)
class Optimizer:
    """Full-batch or minibatch (heavy-ball) gradient descent: ``v ← β v − η g``, ``θ ← θ + v``.

    Attributes:
      learning_rate: η > 0.
      momentum: β in [0, 1).
      batch_size: minibatch size ``B`` (``None``: full batch). Sampled without replacement
        within each epoch: a random permutation of the ``n`` points per epoch, cut into ``⌊n/B⌋``
        batches (the last ``n mod B`` points of each permutation sit that epoch out).

    Raises:
      ValueError: η ≤ 0 or β outside [0, 1).
    """

    _: KW_ONLY
    learning_rate: float = 0.1
    momentum: float = 0.0
    batch_size: int | None = None

    def __post_init__(self) -> None:
        positive_scalar(self.learning_rate, "learning_rate")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")


def as_teacher_logits(
    teacher: ArrayLike, *, teacher_kind: Literal["logits", "probabilities"] = "logits", loss_kind: str = "ce"
) -> np.ndarray:
    r"""The teacher as the logits the engine takes, checked against its declared kind.

    Probabilities ``p`` become ``log p`` (``-inf`` where ``p = 0``, so the distillation target
    ``softmax(log p / τ)`` is exactly ``p`` at τ = 1 and 0 where ``p`` is 0).

    Args:
      teacher: ``(n, k)`` teacher outputs.
      teacher_kind: ``"logits"`` (default) or ``"probabilities"`` (rows non-negative, summing to 1
        within the round-off of their dtype; cross-entropy only).
      loss_kind: ``"ce"`` or ``"mse"`` (an MSE teacher is its raw outputs: ``"logits"`` only).

    Returns:
      float64 ``(n, k)`` logits.

    Raises:
      ValueError: probabilities declared for MSE; rows that are not probabilities declared as
        such; rows that are probabilities (non-negative, summing to 1) passed as logits to a
        cross-entropy loss — refused rather than softmaxed twice.
    """
    choice(teacher_kind, "teacher_kind", ("logits", "probabilities"))
    tol = 1e-6 if np.asarray(teacher).dtype.itemsize >= 4 else 4e-3
    T = as_float_array(teacher, "teacher", ndim=(2,))
    looks_prob = T.shape[1] > 1 and bool(np.all(T >= 0) and np.all(np.abs(T.sum(1) - 1.0) <= tol * T.shape[1]))
    if teacher_kind == "probabilities":
        if loss_kind != "ce":
            raise ValueError("teacher_kind='probabilities' applies to cross-entropy; an MSE teacher is its outputs")
        if not looks_prob:
            raise ValueError(
                "teacher was declared teacher_kind='probabilities' but its rows are not non-negative "
                "and summing to 1; pass teacher_kind='logits' for logits"
            )
        with np.errstate(divide="ignore"):
            return np.log(T / T.sum(1, keepdims=True))
    if loss_kind == "ce" and looks_prob:
        raise ValueError(
            "teacher looks like probabilities (every row non-negative and summing to 1) but the engine "
            "takes logits: pass teacher_kind='probabilities', or the teacher's logits"
        )
    return T


def _epoch_batches(key: jax.Array, n: int, batch_size: int, num_steps: int) -> jax.Array:
    r"""The minibatch indices of every step: sampling without replacement within each epoch.

    Epoch ``e`` is a uniform random permutation of the ``n`` training points (key ``e`` of
    ``jax.random.split(key, epochs)``), cut into ``⌊n/B⌋`` consecutive batches of ``B`` points; the
    last ``n mod B`` points of each permutation are left out of that epoch (a different random
    subset each epoch, "drop last"). Step ``s`` uses batch ``s`` of the concatenated epochs, so every
    point appears at most once per epoch, and exactly once when ``B`` divides ``n``.

    Args:
      key: the run's sampling key.
      n: number of training points.
      batch_size: ``B`` in ``[1, n]``.
      num_steps: number of updates (at least one row is returned, so a run of 0 steps still traces).

    Returns:
      int32 indices of shape ``(max(num_steps, 1), B)``.
    """
    per = n // batch_size
    rows = max(num_steps, 1)
    epochs = -(-rows // per)
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, epochs))
    return perms[:, : per * batch_size].reshape(epochs * per, batch_size)[:rows]


@functools.lru_cache(maxsize=64)
def _compiled(
    model: Model,
    kind: str,
    normalization: str,
    batch_size: int | None,
    num_steps: int,
    n: int,
    has_test: bool,
    project,
):
    """Build (and cache) the jitted training loop for one configuration.

    Only what fixes the computation's structure is static (the model, the loss's kind and
    normalization, the batch size, the number of steps, ``n``, a test set, the projection); the
    learning rate, momentum, temperature, the teacher weights before and after the switch and the
    switch step are traced arguments (``hyper``), so one compilation serves a whole sweep over them.
    """
    objective = Loss(kind, normalization=normalization)
    B = batch_size

    def grads_at(params, X, Y, Tt, w, tau, idx):
        if B is not None:
            Xb, Yb, Tb = X[idx], Y[idx], Tt[idx]
        else:
            Xb, Yb, Tb = X, Y, Tt

        def obj(f):
            return objective(f, Yb, Tb, teacher_weight=w, temperature=tau)

        if model.functional:
            f = model.apply(params, Xb)
            gf = jax.grad(obj)(f)
            if B is not None:
                gf = jnp.zeros_like(params["alpha"]).at[idx].set(gf)
            return {"alpha": gf}
        return jax.grad(lambda p: obj(model.apply(p, Xb)))(params)

    def run(params, X, Y, Tt, Xt, ckpts, key, hyper):
        C = ckpts.shape[0]
        lr, beta, tau = hyper["learning_rate"], hyper["momentum"], hyper["temperature"]
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
            new["loss"] = rec["loss"].at[idx].set(objective(f, Y, Tt, teacher_weight=w, temperature=tau))
            if has_test:
                new["test"] = rec["test"].at[idx].set(model.apply(params, Xt))
            if project is not None:
                new["proj"] = rec["proj"].at[idx].set(project(params))
            return new

        def weight(step):
            return jnp.where(step < hyper["switch_t"], hyper["weight_before"], hyper["weight_after"])

        def body(carry, xs):
            step, batch = xs
            params, vel, idx, rec = carry
            w = weight(step)
            hit = step == ckpts[jnp.minimum(idx, C - 1)]
            rec = lax.cond(hit, lambda r: write(r, params, idx, w), lambda r: r, rec)
            idx = idx + hit.astype(idx.dtype)
            g = grads_at(params, X, Y, Tt, w, tau, batch)
            vel = jax.tree_util.tree_map(lambda v, g_: beta * v - lr * g_, vel, g)
            params = jax.tree_util.tree_map(lambda p, v: p + v, params, vel)
            return (params, vel, idx, rec), None

        steps = jnp.arange(num_steps)
        batches = _epoch_batches(key, n, B, num_steps)[:num_steps] if B is not None else steps
        init = (params, vel, jnp.zeros((), jnp.int32), rec)
        (params, _, idx, rec), _ = lax.scan(body, init, (steps, batches))
        # the last point of t is the state after num_steps updates
        rec = write(rec, params, idx, weight(num_steps))
        return rec, params

    return jax.jit(run)


def _check_inputs(model: Model, params: Any, X: np.ndarray, name: str) -> None:
    """Refuse inputs whose per-example shape the model cannot take, naming them and the expected shape."""
    if model.input_shape is not None:
        if X.shape[1:] != tuple(model.input_shape):
            want = model.input_shape[0] if len(model.input_shape) == 1 else model.input_shape
            got = X.shape[1] if X.ndim == 2 and len(model.input_shape) == 1 else X.shape[1:]
            raise ValueError(f"{name} has width {got} (shape {X.shape}) but {model!r} takes inputs of width {want}")
        return
    try:
        jax.eval_shape(model.apply, params, jax.ShapeDtypeStruct((1,) + X.shape[1:], jnp.float32))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} of shape {X.shape} does not fit {model!r}: {exc}") from exc


def train_model(
    model: Model,
    X: ArrayLike,
    y: ArrayLike,
    *,
    t: ArrayLike,
    loss: Loss = Loss(),
    optimizer: Optimizer = Optimizer(),
    teacher: ArrayLike | None = None,
    teacher_kind: Literal["logits", "probabilities"] = "logits",
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    params: Any = None,
    seed: int = 0,
    dtype: Any = jnp.float32,
    project: Callable[[Any], jax.Array] | None = None,
) -> Trajectory:
    r"""Train ``model`` by (minibatch, momentum) gradient descent and record it along ``t``.

    Args:
      model: a :class:`Model`.
      X: training inputs ``(n, …)`` (kernel models: the training kernel ``(n, n)``).
      y: targets ``(n, k)`` — one-hot or soft labels (CE) or regression values (MSE).
      t: the steps at which to record, non-negative whole numbers (sorted and made unique; the run
        lasts ``max(t)`` updates, the budget).
      loss: the objective, :class:`Loss` (normalization ``"sum"`` by default).
      optimizer: :class:`Optimizer`.
      teacher: the teacher on the training inputs, ``(n, k)``: logits (CE) or outputs (MSE);
        needed when any teacher weight is nonzero.
      teacher_kind: ``"logits"`` or ``"probabilities"`` (see :func:`as_teacher_logits`).
      X_test: test inputs (kernel models: cross-kernel rows ``(n_test, n)``).
      y_test: test targets ``(n_test, k)`` (for accuracy).
      params: initial parameters (default ``model.init(PRNGKey(seed))``).
      seed: the seed of initialization and of the per-epoch minibatch permutations (the same seed
        gives the same run).
      dtype: ``jnp.float32`` (default) or ``jnp.float64`` (needs x64 mode).
      project: ``params -> array`` recorded at each step of ``t`` (e.g. weights onto a basis).

    Returns:
      A :class:`~kdtheory.trajectory.Trajectory` with ``t``, ``train`` ``(T, n, k)``, ``loss``
      ``(T,)`` (the objective, with the teacher weight in force at that step), ``test``,
      ``train_accuracy``/``test_accuracy`` (top-1 against the labels' argmax; ``None`` for one
      output), ``projection``, the final ``params`` and ``recipe`` (``method`` ``"gd"`` or
      ``"momentum"``, ``learning_rate``, ``momentum``, ``normalization``, ``seed``,
      ``batch_size``, ``loss``, ``temperature``).

    Raises:
      ValueError: inputs of the wrong width, shape mismatches, non-finite inputs, float64 without
        x64 mode, a teacher weight without a teacher, a teacher of the wrong kind, a bad ``t``.
      FloatingPointError: the run diverged.
    """
    dtype = jnp.dtype(dtype)
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:
        raise ValueError(
            f"dtype {dtype} needs JAX's x64 mode: call jax.config.update('jax_enable_x64', True) first "
            "(kdtheory never switches it on itself)"
        )
    Xn = as_float_array(X, "X")
    if Xn.ndim < 2:
        raise ValueError(f"X must have a leading axis of examples and at least one more, got shape {Xn.shape}")
    Yn = as_float_array(y, "y", ndim=(2,))
    n = Xn.shape[0]
    if Yn.shape[0] != n:
        raise ValueError(f"y has {Yn.shape[0]} rows but X has {n}")
    if Yn.shape[1] != model.outputs:
        raise ValueError(f"y has {Yn.shape[1]} columns but the model has {model.outputs} outputs")
    key = jax.random.PRNGKey(seed)
    k_init, k_run = jax.random.split(key)
    p0 = model.init(k_init) if params is None else params
    _check_inputs(model, p0, Xn, "X")
    if teacher is None:
        if loss.uses_teacher:
            raise ValueError("a nonzero teacher weight needs teacher outputs (teacher=...)")
        Tn = np.zeros_like(Yn)
    else:
        Tn = as_teacher_logits(teacher, teacher_kind=teacher_kind, loss_kind=loss.kind)
        if Tn.shape != Yn.shape:
            raise ValueError(f"teacher must have the shape of y {Yn.shape}, got {Tn.shape}")
    ck = _as_steps(t)
    if optimizer.batch_size is not None and not 1 <= optimizer.batch_size <= n:
        raise ValueError(f"batch_size must lie in [1, n={n}], got {optimizer.batch_size}")
    has_test = X_test is not None
    if has_test:
        Xt = as_float_array(X_test, "X_test")
        if Xt.shape[1:] != Xn.shape[1:]:
            raise ValueError(f"X_test has per-example shape {Xt.shape[1:]} but X has {Xn.shape[1:]}")
    else:
        Xt = np.zeros((1,) + Xn.shape[1:])
    p0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), p0)
    num_steps = int(ck[-1])
    fn = _compiled(model, loss.kind, loss.normalization, optimizer.batch_size, num_steps, n, has_test, project)
    cast = functools.partial(jnp.asarray, dtype=dtype)
    switched = loss.teacher_weight_after is not None
    hyper = {
        "learning_rate": cast(optimizer.learning_rate),
        "momentum": cast(optimizer.momentum),
        "temperature": cast(loss.temperature),
        "weight_before": cast(loss.teacher_weight),
        "weight_after": cast(loss.teacher_weight_after if switched else loss.teacher_weight),
        "switch_t": jnp.asarray(min(loss.switch_t, num_steps + 1) if switched else num_steps + 1, jnp.int32),
    }
    rec, final = fn(p0, cast(Xn), cast(Yn), cast(Tn), cast(Xt), jnp.asarray(ck, jnp.int32), k_run, hyper)
    rec = jax.tree_util.tree_map(np.asarray, rec)
    if not np.all(np.isfinite(rec["train"])):
        raise FloatingPointError("training diverged (non-finite outputs); lower the learning rate")
    test_out = rec.get("test")
    test_acc = None
    if has_test and y_test is not None:
        Ytn = as_float_array(y_test, "y_test", ndim=(2,))
        if Ytn.shape != (Xt.shape[0], model.outputs):
            raise ValueError(f"y_test must have shape {(Xt.shape[0], model.outputs)}, got {Ytn.shape}")
        test_acc = _accuracy(test_out, Ytn)
    recipe = {
        "method": "momentum" if optimizer.momentum else "gd",
        "learning_rate": float(optimizer.learning_rate),
        "momentum": float(optimizer.momentum),
        "normalization": loss.normalization,
        "seed": int(seed),
        "batch_size": optimizer.batch_size,
        "loss": loss.kind,
        "temperature": float(loss.temperature),
    }
    return Trajectory(
        t=ck,
        train=rec["train"],
        loss=rec["loss"],
        test=test_out,
        train_accuracy=_accuracy(rec["train"], Yn),
        test_accuracy=test_acc,
        projection=rec.get("proj"),
        params=jax.tree_util.tree_map(np.asarray, final),
        recipe=recipe,
    )


def _as_steps(t: ArrayLike) -> np.ndarray:
    ck = np.asarray(t)
    if (
        ck.ndim != 1
        or ck.size == 0
        or not np.issubdtype(ck.dtype, np.number)
        or not np.all(np.isfinite(ck))
        or np.any(ck < 0)
        or np.any(ck != np.round(ck))
    ):
        raise ValueError(f"t must be a non-empty 1-D array of non-negative whole numbers of steps, got {t!r}")
    return np.unique(ck.astype(np.int64))


def _accuracy(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    if labels.shape[1] < 2:
        return None
    return np.mean(outputs.argmax(-1) == labels.argmax(-1)[None], axis=-1)


class TeacherStudent(NamedTuple):
    """The two trajectories of :func:`teacher_student`."""

    teacher: Trajectory
    student: Trajectory


def teacher_student(
    teacher_model: Model,
    X: ArrayLike,
    y: ArrayLike,
    *,
    teacher_t: int,
    student_t: int,
    student_model: Model | None = None,
    loss: Loss = Loss(),
    student_loss: Loss | None = None,
    optimizer: Optimizer = Optimizer(),
    points: int = 20,
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    seed: int = 0,
    student_seed: int | None = None,
    dtype: Any = jnp.float32,
) -> TeacherStudent:
    r"""Train a teacher on the labels, then a student on the teacher's training outputs.

    The teacher trains with ``loss`` for ``teacher_t`` steps; its final training outputs (logits
    for CE) become the student's teacher; the student (``student_model``, default the same
    architecture, initialized from ``student_seed``, default ``seed + 1``) trains with
    ``student_loss`` (default: pure distillation, ``teacher_weight = 1``, at ``loss``'s
    temperature and normalization) for ``student_t`` steps.

    Args:
      teacher_model: the teacher's :class:`Model`.
      X: training inputs ``(n, …)``.
      y: labels ``(n, k)``.
      teacher_t: the teacher's budget in steps.
      student_t: the student's budget in steps.
      student_model: the student's model (default: ``teacher_model``).
      loss: the teacher's objective.
      student_loss: the student's objective (default: pure distillation).
      optimizer: used by both.
      points: how many log-spaced steps (with 0 and the budget) each trajectory records.
      X_test: test inputs.
      y_test: test labels.
      seed: the teacher's seed.
      student_seed: the student's seed (default ``seed + 1``).
      dtype: computation dtype.

    Returns:
      :class:`TeacherStudent` ``(teacher, student)`` trajectories.

    Raises:
      ValueError: as :func:`train_model`, or a budget that is not a non-negative whole number.
    """
    teacher = train_model(
        teacher_model, X, y, t=_log_steps(teacher_t, points, "teacher_t"), loss=loss, optimizer=optimizer,
        X_test=X_test, y_test=y_test, seed=seed, dtype=dtype,
    )  # fmt: skip
    s_loss = student_loss or dataclasses.replace(loss, teacher_weight=1.0, teacher_weight_after=None, switch_t=None)
    student = train_model(
        student_model or teacher_model, X, y, t=_log_steps(student_t, points, "student_t"),
        loss=s_loss, optimizer=optimizer, teacher=teacher.train[-1], X_test=X_test,
        y_test=y_test, seed=seed + 1 if student_seed is None else student_seed, dtype=dtype,
    )  # fmt: skip
    return TeacherStudent(teacher, student)


def _log_steps(steps: int, count: int, name: str) -> np.ndarray:
    if int(steps) != steps or steps < 0:
        raise ValueError(f"{name} must be a non-negative whole number of steps, got {steps!r}")
    return np.unique(np.r_[0, np.geomspace(1, max(steps, 1), max(count - 1, 1)).round().astype(int), steps])
