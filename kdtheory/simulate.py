r"""The JAX training engine: models × losses × optimizers × schedules, recorded along a time axis.

Training runs as one ``jax.jit``-compiled loop over steps (no Python loop per step), for a whole
batch of runs at once (:func:`train_batch`, one :class:`Run` per member, ``jax.vmap`` over the
runs, sharded over all JAX devices; :func:`train_model` is the batch of one); the
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
    the reverse: 1 → 0); the learning rate follows a :mod:`kdtheory.schedules` schedule ``m(s)``.
  * **Optimizers**: ``v ← β v − η m(s) g``, ``θ ← θ + v`` (β = 0: gradient descent; ``s`` the
    0-based update). Minibatches of
    ``B`` points are sampled without replacement within each epoch (the usual SGD): each epoch is
    a fresh random permutation of the ``n`` points, drawn from the run's seed, cut into ``⌊n/B⌋``
    batches; the ``n mod B`` points left over are skipped in that epoch.
  * **Compilation**: one compiled loop per model (by identity), loss kind and normalization, batch
    size, number of steps, ``n``, test set and projection (and per array shape: the number of runs
    in a batch and of recorded steps); the learning rate, momentum, schedule, temperature, teacher
    weights and switch step are traced, so a sweep over them compiles once — and the runs of a
    sweep can share one batch.
  * **Seeds**: a run's initialization uses ``split(PRNGKey(init_seed))[0]``, its minibatch order
    ``split(PRNGKey(order_seed))[1]`` (``order_seed`` defaults to ``init_seed``; ``train_model``'s
    ``seed`` is both).
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
from jax.typing import DTypeLike
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, below_one, choice, positive_integer, positive_scalar, whole_steps
from kdtheory.eigen import NORMALIZATIONS, Normalization, loss_divisor
from kdtheory.schedules import Schedule
from kdtheory.structured_ntk import Layer, Structure, Taps
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
    "Run",
    "train_model",
    "train_batch",
    "MEMORY_BYTES",
    "TeacherStudent",
    "teacher_student",
    "log_steps",
]

Params = Any  # a pytree of parameter arrays

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
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
    structure: Structure | None = None

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

    def init(key: jax.Array) -> Params:
        p = {"w": init_scale * jax.random.normal(key, (d, k)) / np.sqrt(d)}
        if bias:
            p["b"] = jnp.zeros((k,))
        return p

    def structure(p: Params, x: jax.Array, taps: Taps) -> tuple[jax.Array, tuple[Layer, ...]]:
        z = x @ p["w"] + (p["b"] if bias else 0.0)
        z = z if taps is None else z + taps[0]
        return z, (Layer(x, z, 1.0 if bias else 0.0),)

    def apply(p: Params, x: jax.Array) -> jax.Array:
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

    def init(key: jax.Array) -> Params:
        return {"alpha": jnp.zeros((n_train, k))}

    def apply(p: Params, krows: jax.Array) -> jax.Array:
        out: jax.Array = krows @ p["alpha"]
        return out

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

    def init(key: jax.Array) -> Params:
        return {"w": init_scale * jax.random.normal(key, (width, k)) / np.sqrt(width)}

    def structure(p: Params, x: jax.Array, taps: Taps) -> tuple[jax.Array, tuple[Layer, ...]]:
        phi = act(x @ jnp.asarray(W0, dtype=x.dtype)) / np.sqrt(width)
        z = phi @ p["w"]
        z = z if taps is None else z + taps[0]
        return z, (Layer(phi, z, 0.0),)

    def apply(p: Params, x: jax.Array) -> jax.Array:
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
    :func:`kdtheory.ntk.empirical_ntk` computes its NTK by the structured method (docs/theory.md §10).

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

    def init(key: jax.Array) -> Params:
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

    def structure(p: Params, x: jax.Array, taps: Taps) -> tuple[jax.Array, tuple[Layer, ...]]:
        h = x
        records: list[Layer] = []
        for i, layer in enumerate(p):
            inp = (weight_std / np.sqrt(h.shape[-1])) * h if ntk else h  # ∂z/∂W = inp (the scale folded in)
            z = inp @ layer["w"] + (b_scale * layer["b"] if has_bias else 0.0)
            if taps is not None:
                z = z + taps[i]
            records.append(Layer(inp, z, b_scale))
            h = act(z) if i < len(p) - 1 else z
        return h, tuple(records)

    def apply(p: Params, x: jax.Array) -> jax.Array:
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
        if self.teacher_weight_after is not None and self.switch_t is not None:  # both or neither (above)
            _unit(self.teacher_weight_after, "teacher_weight_after")
            whole_steps(self.switch_t, "switch_t")

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
        assert w is not None  # __post_init__ sets teacher_weight to a number
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


def _unit(x: Any, name: str) -> float:
    scalar = np.isscalar(x)  # a bool, not a narrowing of x's type
    if isinstance(x, bool) or not scalar or not np.isfinite(x) or not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {x!r}")
    return float(x)


@dataclass(frozen=True)
class Optimizer:
    """Full-batch or minibatch (heavy-ball) gradient descent: ``v ← β v − η m(s) g``, ``θ ← θ + v``.

    ``m(s)`` is the learning-rate schedule's multiplier at update ``s`` (:mod:`kdtheory.schedules`;
    the default constant schedule is exactly 1).

    Attributes:
      learning_rate: η > 0, the base learning rate.
      momentum: β in [0, 1).
      batch_size: minibatch size ``B`` (``None``: full batch), a positive whole number. Sampled
        without replacement within each epoch: a random permutation of the ``n`` points per epoch,
        cut into ``⌊n/B⌋`` batches (the last ``n mod B`` points of each permutation sit that epoch
        out).
      schedule: a :class:`kdtheory.schedules.Schedule` (default :func:`~kdtheory.schedules.constant`).

    Raises:
      TypeError: a momentum β that is not a real number.
      ValueError: η ≤ 0, β outside [0, 1), a batch size that is not a positive whole number, or a
        schedule that is not a :class:`~kdtheory.schedules.Schedule`.
    """

    _: KW_ONLY
    learning_rate: float = 0.1
    momentum: float = 0.0
    batch_size: int | None = None
    schedule: Schedule = Schedule()

    def __post_init__(self) -> None:
        positive_scalar(self.learning_rate, "learning_rate")
        below_one(self.momentum, "momentum")
        if self.batch_size is not None:
            object.__setattr__(self, "batch_size", positive_integer(self.batch_size, "batch_size"))
        if not isinstance(self.schedule, Schedule):
            raise ValueError(
                f"schedule must be a kdtheory.schedules.Schedule (constant(), step(...), cosine(...), "
                f"warmup_cosine(...)), got {self.schedule!r}"
            )


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
            logits: np.ndarray = np.log(T / T.sum(1, keepdims=True))
            return logits
    if loss_kind == "ce" and looks_prob:
        raise ValueError(
            "teacher looks like probabilities (every row non-negative and summing to 1) but the engine "
            "takes logits: pass teacher_kind='probabilities', or the teacher's logits"
        )
    return T


def _check_inputs(model: Model, params: Any, X: np.ndarray, name: str) -> None:
    """Refuse inputs whose per-example shape the model cannot take, naming them and the expected shape."""
    if model.input_shape is not None:
        if X.shape[1:] != tuple(model.input_shape):
            want = model.input_shape[0] if len(model.input_shape) == 1 else model.input_shape
            got = X.shape[1] if X.ndim == 2 and len(model.input_shape) == 1 else X.shape[1:]
            raise ValueError(f"{name} has width {got} (shape {X.shape}) but {model!r} takes inputs of width {want}")
        return
    try:
        one = jax.ShapeDtypeStruct((1,) + X.shape[1:], jnp.float32)  # type: ignore[no-untyped-call]  # unannotated in jax
        jax.eval_shape(model.apply, params, one)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} of shape {X.shape} does not fit {model!r}: {exc}") from exc


MEMORY_BYTES = 2**30
"""Default ``memory_bytes`` of :func:`train_batch`: 1 GiB of recorded outputs and state per chunk."""


@dataclass(frozen=True, eq=False)
class Run:
    r"""What may differ between the runs of one :func:`train_batch` batch.

    Runs compare by identity (they may hold arrays: a teacher, parameters).

    Attributes:
      init_seed: seed of the initialization ``model.init(split(PRNGKey(init_seed))[0])``
        (ignored when ``params`` is given); a non-negative whole number.
      order_seed: seed of the minibatch order (key ``split(PRNGKey(order_seed))[1]``);
        ``None``: ``init_seed``. With both equal this is :func:`train_model`'s ``seed``.
      loss: the :class:`Loss`; its temperature, weights and switch step are traced, its ``kind``
        and ``normalization`` must be the same across a batch.
      optimizer: the :class:`Optimizer`; learning rate, momentum and schedule are traced, its
        ``batch_size`` must be the same across a batch.
      teacher: this run's teacher on the training inputs ``(n, k)`` (logits for CE), or ``None``.
      params: initial parameters (a pytree shaped like ``model.init``'s), or ``None``.

    Raises:
      ValueError: a seed that is not a non-negative whole number, or a loss / optimizer of the
        wrong type.
    """

    init_seed: int = 0
    order_seed: int | None = None
    loss: Loss = Loss()
    optimizer: Optimizer = Optimizer()
    teacher: ArrayLike | None = None
    params: Any = None

    def __post_init__(self) -> None:
        for name in ("init_seed", "order_seed"):
            v = getattr(self, name)
            if v is None and name == "order_seed":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be a non-negative whole number, got {v!r}")
            object.__setattr__(self, name, int(v))
        if not isinstance(self.loss, Loss):
            raise ValueError(f"loss must be a kdtheory.simulate.Loss, got {self.loss!r}")
        if not isinstance(self.optimizer, Optimizer):
            raise ValueError(f"optimizer must be a kdtheory.simulate.Optimizer, got {self.optimizer!r}")


def train_model(
    model: Model,
    X: ArrayLike,
    y: ArrayLike,
    *,
    t: ArrayLike,
    run: Run = Run(),
    teacher_kind: Literal["logits", "probabilities"] = "logits",
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    dtype: DTypeLike = jnp.float32,
    project: Callable[[Any], jax.Array] | None = None,
) -> Trajectory:
    r"""Train ``model`` by (minibatch, momentum) gradient descent and record it along ``t``.

    The one-run case of :func:`train_batch` (the same compiled program with a batch of one), except
    that a diverging run raises instead of being reported.

    Args:
      model: a :class:`Model`.
      X: training inputs ``(n, …)`` (kernel models: the training kernel ``(n, n)``).
      y: targets ``(n, k)`` — one-hot or soft labels (CE) or regression values (MSE).
      t: the steps at which to record, non-negative whole numbers (sorted and made unique; the run
        lasts ``max(t)`` updates, the budget).
      run: how this model trains, a :class:`Run`: its ``loss`` (:class:`Loss`, normalization
        ``"sum"`` by default), ``optimizer`` (:class:`Optimizer`, with its learning-rate
        schedule), ``teacher`` on the training inputs ``(n, k)`` (logits for CE, outputs for MSE;
        needed when any teacher weight is nonzero), initial ``params`` (default
        ``model.init(split(PRNGKey(init_seed))[0])``) and seeds: ``init_seed`` seeds the
        initialization and, unless ``order_seed`` is given, the per-epoch minibatch permutations
        (the same run gives the same trajectory). Default ``Run()``.
      teacher_kind: ``"logits"`` or ``"probabilities"`` (see :func:`as_teacher_logits`).
      X_test: test inputs (kernel models: cross-kernel rows ``(n_test, n)``).
      y_test: test targets ``(n_test, k)`` (for accuracy).
      dtype: ``jnp.float32`` (default) or ``jnp.float64`` (needs x64 mode).
      project: ``params -> array`` recorded at each step of ``t`` (e.g. weights onto a basis).

    Returns:
      A :class:`~kdtheory.trajectory.Trajectory` with ``t``, ``train`` ``(T, n, k)``, ``loss``
      ``(T,)`` (the objective, with the teacher weight in force at that step), ``test``,
      ``train_accuracy``/``test_accuracy`` (top-1 against the labels' argmax; ``None`` for one
      output), ``projection``, the final ``params``, ``recipe`` (``method`` ``"gd"`` or
      ``"momentum"``, ``learning_rate``, ``momentum``, ``normalization``, ``seed``,
      ``order_seed``, ``batch_size``, ``loss``, ``temperature``, ``schedule``) and ``solver``
      (``{"status": "ok"}``).

    Raises:
      ValueError: inputs of the wrong width, parameters that do not fit the model, shape
        mismatches, non-finite inputs, float64 without x64 mode, a teacher weight without a
        teacher, a teacher of the wrong kind, a bad ``t``.
      FloatingPointError: the run diverged.
    """
    if not isinstance(run, Run):
        raise TypeError(f"run must be a kdtheory.simulate.Run, got {type(run).__name__}")
    (traj,) = train_batch(
        model, X, y, [run], t=t, teacher_kind=teacher_kind, X_test=X_test, y_test=y_test, dtype=dtype,
        project=project,
    )  # fmt: skip
    assert traj.solver is not None  # train_batch reports every run's status
    if traj.solver["status"] != "ok":
        raise FloatingPointError(
            f"training diverged (non-finite outputs from t={traj.solver['first_nonfinite_t']}); lower the learning rate"
        )
    return traj


def train_batch(
    model: Model,
    X: ArrayLike,
    y: ArrayLike,
    runs: Sequence[Run],
    *,
    t: ArrayLike,
    teacher_kind: Literal["logits", "probabilities"] = "logits",
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    dtype: DTypeLike = jnp.float32,
    project: Callable[[Any], jax.Array] | None = None,
    memory_bytes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Trajectory]:
    r"""Train a batch of runs of one model on one data set in one compiled program (``jax.vmap``).

    Each run is the training of :func:`train_model` — heavy-ball (minibatch) gradient descent,
    ``v ← β v − η m(s) ∇L``, ``θ ← θ + v``, recorded at the steps ``t`` — with its own
    initialization, minibatch order, loss weights and temperature, learning rate, momentum,
    schedule, teacher and initial parameters (:class:`Run`). The runs train side by side: one
    update of all of them is one batched computation, so small networks fill the machine's matrix
    units, and with several JAX devices the run axis is sharded over all of them
    (``NamedSharding`` on a mesh axis ``"runs"``, the batch padded to a multiple of the device
    count). Runs never interact: a run equals the same run trained alone up to the order of
    floating-point sums inside a batched matrix product.

    Memory: the batch is cut into chunks of at most ``memory_bytes`` of recorded outputs and state
    per chunk (``itemsize × [C·(n + n_test)·k + C·(1 + projection size) + 3·params + n·k]`` per run,
    ``C = len(t)``); equal chunks reuse one compiled program.

    Args:
      model: the :class:`Model` every run trains (one architecture per batch).
      X: training inputs ``(n, …)`` (kernel models: the training kernel ``(n, n)``).
      y: targets ``(n, k)``.
      runs: the runs, a non-empty sequence of :class:`Run`; the losses must share ``kind`` and
        ``normalization``, the optimizers ``batch_size``.
      t: the steps at which to record, shared by every run (see :func:`train_model`).
      teacher_kind: how every run's teacher is given, ``"logits"`` or ``"probabilities"``.
      X_test: test inputs, shared.
      y_test: test targets ``(n_test, k)``, shared.
      dtype: ``jnp.float32`` (default) or ``jnp.float64`` (needs x64 mode).
      project: ``params -> array`` recorded at each step of ``t``.
      memory_bytes: the chunk budget in bytes (default :data:`MEMORY_BYTES`, 1 GiB); a chunk holds
        at least one run.
      progress: called as ``progress(done, total)`` (runs) after each chunk.

    Returns:
      One :class:`~kdtheory.trajectory.Trajectory` per run, in order (fields as
      :func:`train_model`). ``solver`` is ``{"status": "ok"}``, or for a run whose outputs became
      non-finite ``{"status": "diverged", "first_nonfinite_t": s}`` (its NaN stays in its own
      trajectory; the other runs are unaffected). ``recipe["seed"]`` is the run's ``init_seed``.

    Raises:
      ValueError: as :func:`train_model`; runs that cannot share a batch (different loss kinds,
        normalizations or batch sizes, parameters of another architecture), naming the run and
        what differs; an empty ``runs``; a bad ``memory_bytes``.
    """
    from kdtheory import _engine

    dtype = jnp.dtype(dtype)
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:
        raise ValueError(
            f"dtype {dtype} needs JAX's x64 mode: call jax.config.update('jax_enable_x64', True) first "
            "(kdtheory never switches it on itself)"
        )
    runs = _check_runs(runs)
    first = runs[0]
    Xn = as_float_array(X, "X")
    if Xn.ndim < 2:
        raise ValueError(f"X must have a leading axis of examples and at least one more, got shape {Xn.shape}")
    Yn = as_float_array(y, "y", ndim=(2,))
    n = Xn.shape[0]
    if Yn.shape[0] != n:
        raise ValueError(f"y has {Yn.shape[0]} rows but X has {n}")
    if Yn.shape[1] != model.outputs:
        raise ValueError(f"y has {Yn.shape[1]} columns but the model has {model.outputs} outputs")
    template = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    _check_inputs(model, template, Xn, "X")
    ck = _as_steps(t)
    B = first.optimizer.batch_size
    if B is not None and not 1 <= B <= n:
        raise ValueError(f"batch_size must lie in [1, n={n}], got {B}")
    has_test = X_test is not None
    if X_test is not None:
        Xt = as_float_array(X_test, "X_test")
        if Xt.shape[1:] != Xn.shape[1:]:
            raise ValueError(f"X_test has per-example shape {Xt.shape[1:]} but X has {Xn.shape[1:]}")
    else:
        Xt = np.zeros((1,) + Xn.shape[1:])
    Ytn = None
    if has_test and y_test is not None:
        Ytn = as_float_array(y_test, "y_test", ndim=(2,))
        if Ytn.shape != (Xt.shape[0], model.outputs):
            raise ValueError(f"y_test must have shape {(Xt.shape[0], model.outputs)}, got {Ytn.shape}")
    teachers = []
    for i, r in enumerate(runs):
        if r.teacher is None:
            if r.loss.uses_teacher:
                raise ValueError(f"runs[{i}]: a nonzero teacher weight needs teacher outputs (teacher=...)")
            teachers.append(np.zeros_like(Yn))
            continue
        Tn = as_teacher_logits(r.teacher, teacher_kind=teacher_kind, loss_kind=r.loss.kind)
        if Tn.shape != Yn.shape:
            raise ValueError(f"runs[{i}].teacher must have the shape of y {Yn.shape}, got {Tn.shape}")
        teachers.append(Tn)
    for i, r in enumerate(runs):
        if r.params is not None:
            _check_params(r.params, template, f"runs[{i}].params" if len(runs) > 1 else "params", model)
    num_steps = int(ck[-1])
    table = max(len(r.optimizer.schedule.boundaries) for r in runs)
    fn = _engine.compiled(model, Loss(first.loss.kind, normalization=first.loss.normalization), B, num_steps, n,
                          has_test, project)  # fmt: skip
    per_run = _run_bytes(model, template, project, len(ck), n, Xt.shape[0] if has_test else 0, dtype)
    budget = MEMORY_BYTES if memory_bytes is None else positive_integer(memory_bytes, "memory_bytes")
    chunk = max(1, min(len(runs), budget // per_run))
    size, put_batched, put_shared = _engine.placement(chunk)

    def cast(a: ArrayLike) -> np.ndarray:  # cast on the host: one transfer, no eager device op per array
        return np.asarray(a, dtype)

    shared = put_shared((cast(Xn), cast(Yn), cast(Xt), np.asarray(ck, np.int32)))
    out: list[Trajectory] = []
    for start in range(0, len(runs), chunk):
        members = list(range(start, min(start + chunk, len(runs))))
        padded = members + [members[0]] * (size - len(members))  # padding runs repeat a member; dropped
        params, keys, hyper = _stack(model, [runs[i] for i in padded], dtype, num_steps, table)
        T = np.stack([teachers[i] for i in padded])
        args = put_batched((params, cast(T), keys, hyper))
        rec, final = fn(args[0], shared[0], shared[1], args[1], shared[2], shared[3], args[2], args[3])
        rec = jax.tree_util.tree_map(np.asarray, rec)
        final = jax.tree_util.tree_map(np.asarray, final)
        for j, i in enumerate(members):
            out.append(_trajectory(runs[i], j, rec, final, ck, Yn, Ytn, has_test))
        if progress is not None:
            progress(len(out), len(runs))
    return out


def _check_runs(runs: Sequence[Run]) -> list[Run]:
    """The runs as a list, refusing a batch that cannot be formed (naming the run and the field)."""
    if isinstance(runs, Run) or not isinstance(runs, Sequence) or len(runs) == 0:
        raise ValueError(f"runs must be a non-empty sequence of kdtheory.simulate.Run, got {runs!r}")
    runs = list(runs)
    for i, r in enumerate(runs):
        if not isinstance(r, Run):
            raise ValueError(f"runs[{i}] must be a kdtheory.simulate.Run, got {r!r}")
    first = runs[0]
    for i, r in enumerate(runs[1:], 1):
        for what, a, b in (
            ("loss.kind", first.loss.kind, r.loss.kind),
            ("loss.normalization", first.loss.normalization, r.loss.normalization),
            ("optimizer.batch_size", first.optimizer.batch_size, r.optimizer.batch_size),
        ):
            if a != b:
                raise ValueError(
                    f"runs[{i}].{what} is {b!r} but runs[0].{what} is {a!r}: one batch shares the loss kind, "
                    "normalization and batch size (they fix the compiled program); train them in separate batches"
                )
    return runs


def _check_params(params: Any, template: Any, name: str, model: Model) -> None:
    """Refuse initial parameters whose tree or leaf shapes differ from ``model.init``'s."""
    got, want = jax.tree_util.tree_structure(params), jax.tree_util.tree_structure(template)
    if got != want:  # type: ignore[operator]  # jaxlib has no PyTreeDef stub
        raise ValueError(f"{name} do not have the structure of {model!r}'s parameters: got {got}, expected {want}")
    paths = jax.tree_util.tree_flatten_with_path(template)[0]
    for (path, leaf), value in zip(paths, jax.tree_util.tree_leaves(params), strict=True):
        shape = np.shape(value)
        if shape != tuple(leaf.shape):
            where = jax.tree_util.keystr(path)
            raise ValueError(
                f"{name}{where} has shape {shape} but {model!r} has {tuple(leaf.shape)} there "
                "(parameters of another architecture?)"
            )
        if not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
            raise ValueError(f"{name}{jax.tree_util.keystr(path)} contains NaN or infinite values")


def _run_bytes(
    model: Model,
    template: Any,
    project: Callable[[Any], jax.Array] | None,
    C: int,
    n: int,
    n_test: int,
    dtype: DTypeLike,
) -> int:
    """Bytes of recorded outputs and state one run holds (the chunking estimate of train_batch)."""
    k = model.outputs
    P = sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(template))
    proj = 0
    if project is not None:
        proj = int(np.prod(jax.eval_shape(project, template).shape))
    return int(jnp.dtype(dtype).itemsize) * (C * (n + n_test) * k + C * (1 + proj) + 3 * P + n * k)


_split = jax.jit(jax.random.split)


@functools.lru_cache(maxsize=16)
def _init_many(model: Model) -> Callable[[Any], Params]:
    """``model.init`` over a batch of keys, compiled once per model."""
    return jax.jit(jax.vmap(model.init))


def _stack(
    model: Model, runs: list[Run], dtype: DTypeLike, num_steps: int, table: int
) -> tuple[Params, np.ndarray, dict[str, Any]]:
    """The batched inputs of a chunk: parameters, sampling keys and traced hyperparameters."""
    seeds = [(r.init_seed, r.init_seed if r.order_seed is None else r.order_seed) for r in runs]
    init_keys = np.stack([_split(jax.random.PRNGKey(a))[0] for a, _ in seeds])
    order_keys = np.stack([_split(jax.random.PRNGKey(b))[1] for _, b in seeds])
    need = [i for i, r in enumerate(runs) if r.params is None]
    drawn = _init_many(model)(init_keys[np.array(need)]) if need else None
    leaves = []
    for i, r in enumerate(runs):
        if r.params is None:
            j = need.index(i)
            leaves.append(jax.tree_util.tree_map(lambda a, j=j: a[j], drawn))
        else:
            leaves.append(r.params)
    params = jax.tree_util.tree_map(lambda *a: np.stack([np.asarray(x, dtype) for x in a]), *leaves)

    def col(values: list[Any]) -> np.ndarray:
        return np.asarray(values, dtype)

    hyper = {
        "learning_rate": col([r.optimizer.learning_rate for r in runs]),
        "momentum": col([r.optimizer.momentum for r in runs]),
        "temperature": col([r.loss.temperature for r in runs]),
        "weight_before": col([r.loss.teacher_weight for r in runs]),
        "weight_after": col([
            r.loss.teacher_weight if r.loss.teacher_weight_after is None else r.loss.teacher_weight_after for r in runs
        ]),
        "switch_t": np.asarray([
            num_steps + 1 if r.loss.switch_t is None else min(r.loss.switch_t, num_steps + 1) for r in runs
        ], np.int32),
        "schedule": jax.tree_util.tree_map(
            lambda *a: np.stack(a), *[r.optimizer.schedule.params(dtype, table) for r in runs]
        ),
    }  # fmt: skip
    return params, order_keys, hyper


def _trajectory(
    run: Run,
    j: int,
    rec: dict[str, np.ndarray],
    final: Any,
    ck: np.ndarray,
    Yn: np.ndarray,
    Ytn: np.ndarray | None,
    has_test: bool,
) -> Trajectory:
    """Run ``j`` of a chunk's records as a Trajectory, with its status."""
    train = rec["train"][j].copy()  # copies: a kept run must not hold its whole chunk alive
    bad = ~np.all(np.isfinite(train.reshape(len(ck), -1)), axis=1)
    solver: dict[str, Any] = {"status": "ok"}
    if bad.any():
        solver = {"status": "diverged", "first_nonfinite_t": int(ck[int(np.argmax(bad))])}
    test = rec["test"][j].copy() if has_test else None
    opt, loss = run.optimizer, run.loss
    recipe = {
        "method": "momentum" if opt.momentum else "gd",
        "learning_rate": float(opt.learning_rate),
        "momentum": float(opt.momentum),
        "normalization": loss.normalization,
        "seed": run.init_seed,
        "order_seed": run.init_seed if run.order_seed is None else run.order_seed,
        "batch_size": opt.batch_size,
        "loss": loss.kind,
        "temperature": float(loss.temperature),
        "schedule": opt.schedule.describe(),
    }
    return Trajectory(
        t=ck.copy(),
        train=train,
        loss=rec["loss"][j].copy(),
        test=test,
        train_accuracy=_accuracy(train, Yn),
        test_accuracy=None if Ytn is None or test is None else _accuracy(test, Ytn),
        projection=rec["proj"][j].copy() if "proj" in rec else None,
        params=jax.tree_util.tree_map(lambda a: a[j].copy(), final),
        recipe=recipe,
        solver=solver,
    )


_MAX_STEP = 2**31 - 1


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
    if np.max(ck) >= _MAX_STEP:  # the engine counts steps in int32
        raise ValueError(
            f"t must be below 2**31 - 1 = {_MAX_STEP} steps (the engine counts in int32), got max {np.max(ck)!r}"
        )
    return np.unique(ck.astype(np.int64))


def _accuracy(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    if labels.shape[1] < 2:
        return None
    correct: np.ndarray = np.mean(outputs.argmax(-1) == labels.argmax(-1)[None], axis=-1)
    return correct


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
    teacher: Run = Run(),
    student: Run | None = None,
    points: int = 20,
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    dtype: DTypeLike = jnp.float32,
) -> TeacherStudent:
    r"""Train a teacher on the labels, then a student on the teacher's training outputs.

    The teacher trains as ``teacher`` says for ``teacher_t`` steps; its final training outputs
    (logits for CE) become the student's teacher; the student (``student_model``, default the same
    architecture) trains as ``student`` says for ``student_t`` steps. By default the student is
    the teacher's run with pure distillation (``teacher_weight = 1`` at the teacher loss's
    temperature and normalization) and ``init_seed`` one more than the teacher's.

    Args:
      teacher_model: the teacher's :class:`Model`.
      X: training inputs ``(n, …)``.
      y: labels ``(n, k)``.
      teacher_t: the teacher's budget in steps.
      student_t: the student's budget in steps.
      student_model: the student's model (default: ``teacher_model``).
      teacher: the teacher's :class:`Run` (loss, optimizer, seeds, initial parameters; its
        ``teacher`` must be ``None``).
      student: the student's :class:`Run` (its ``teacher`` must be ``None``: the teacher's
        outputs are filled in). Default: see above.
      points: how many log-spaced steps (with 0 and the budget) each trajectory records.
      X_test: test inputs.
      y_test: test labels.
      dtype: computation dtype.

    Returns:
      :class:`TeacherStudent` ``(teacher, student)`` trajectories.

    Raises:
      ValueError: as :func:`train_model`, a budget that is not a non-negative whole number, a
        ``points`` that is not a positive integer, or a run that already holds a teacher.
    """
    positive_integer(points, "points")
    for r, name in ((teacher, "teacher"), (student, "student")):
        if r is not None and not isinstance(r, Run):
            raise TypeError(f"{name} must be a kdtheory.simulate.Run, got {type(r).__name__}")
        if r is not None and r.teacher is not None:
            raise ValueError(f"{name} is a Run with a teacher; teacher_student fills the student's teacher in")
    if student is None:
        loss = dataclasses.replace(teacher.loss, teacher_weight=1.0, teacher_weight_after=None, switch_t=None)
        student = dataclasses.replace(teacher, loss=loss, init_seed=teacher.init_seed + 1, order_seed=None, params=None)
    taught = train_model(
        teacher_model, X, y, t=log_steps(teacher_t, points, "teacher_t"), run=teacher,
        X_test=X_test, y_test=y_test, dtype=dtype,
    )  # fmt: skip
    learner = train_model(
        student_model or teacher_model, X, y, t=log_steps(student_t, points, "student_t"),
        run=dataclasses.replace(student, teacher=taught.train[-1]), X_test=X_test, y_test=y_test, dtype=dtype,
    )  # fmt: skip
    return TeacherStudent(taught, learner)


def log_steps(steps: int, count: int, name: str = "steps") -> np.ndarray:
    """Log-spaced checkpoints of a budget: ``{0} ∪ round(geomspace(1, steps, count - 1)) ∪ {steps}``.

    The ``count - 1`` geometric points run from step 1 to the budget (one point, step 1, when
    ``count ≤ 2``); step 0 and the budget itself are always included, so the last checkpoint is the
    whole budget for every ``count``. Rounded points that coincide are kept once.

    Args:
      steps: the budget, a non-negative whole number of updates.
      count: how many checkpoints to aim for, a positive integer (fewer when rounding merges some).
      name: the budget's argument name in error messages.

    Returns:
      Sorted unique int steps, starting at 0 and ending at ``steps`` (just ``[0]`` for ``steps = 0``).

    Raises:
      ValueError: ``steps`` is not a non-negative whole number (naming ``name``) or ``count`` is
        not a positive integer.
    """
    steps = whole_steps(steps, name)
    count = positive_integer(count, "count")
    if steps == 0:  # a budget of no updates records the start only (geomspace from 1 would add step 1)
        return np.zeros(1, dtype=int)
    return np.unique(np.r_[0, np.geomspace(1, steps, max(count - 1, 1)).round().astype(int), steps])
