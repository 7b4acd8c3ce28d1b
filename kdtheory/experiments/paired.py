r"""The paired design shared by the claims O1, O2 and T2 (issue 10; THEORY.md §8).

Per seed ``s`` and :class:`Design`:

1. **Data** with flip-to-another-class label noise η on the training labels and on a held-out
   noisy validation split (:mod:`kdtheory.data`; test labels clean).
2. **Teacher**: an MLP trained on the noisy labels from its own initialization (``seed = 1000 +
   s``), recorded at ``points`` geometric steps up to ``teacher_t``; the teacher is the checkpoint
   of highest accuracy on the *noisy* validation split (ties: the earliest) — how practitioners
   early-stop — or, for the confounder map, the last checkpoint or a given step.
3. **Arms from one initialization** ``θ₀ = init(PRNGKey(2000 + s))``, all with the same optimizer,
   budget ``student_t`` and minibatch order (``seed = 3000 + s``): the distilled student
   (teacher weight 1 at temperature τ), its **one-hot twin** (teacher weight 0 — the control),
   the late switches (one-hot until ``f · student_t``, then the teacher) and the reverse switches
   (teacher until ``f · student_t``, then one-hot).

Loss: softmax cross-entropy with ``normalization="mean"``; distillation
``τ² CE(f/τ, softmax(z/τ))`` on the teacher's logits ``z`` (:class:`kdtheory.simulate.Loss`).
Every training run is cached within the process (:func:`functools.lru_cache`, keyed on the
parts of the design it depends on and the seed): the twin is shared by every teacher, τ and
switch of a sweep, the teacher by every stop rule, and O1, O2 and T2 read the same runs.

Per seed, :func:`seed_metrics` returns the numbers the three claims decide on:

* accuracies (clean test set) of the teacher, the arms at the end of the budget, and of the
  student and the twin early-stopped on the noisy validation split;
* O1: logit confidences ``φ`` (reference class: the teacher's top-1,
  :func:`kdtheory.confidence.logit_confidence`) on train and test; the mean of
  ``φ_student − φ_twin`` (and of ``φ_student − φ_teacher``) over the 10% lowest and highest
  teacher-confidence points and over 10 teacher-confidence quantile bins; Theil–Sen slopes of
  ``φ_student`` and ``φ_twin`` on ``φ_teacher`` (:func:`kdtheory.confidence.analyze`); shares of
  the low-confidence points with ``Δφ < −tol``;
* T2 (τ = 1 targets): the target distance ratio ``mean‖q_T − q̃‖² / mean E‖e_ỹ − q̃‖²`` with
  ``q̃`` the expected noisy label (:func:`kdtheory.data.clean_gradient_target`), and the gradient
  distance ratio ``‖g_KD − ḡ‖ / ‖g_OH − ḡ‖`` at the same parameters, for minibatches of size
  ``B = 1`` and ``B = n``, where ``g − ḡ = mean_{i∈batch} J_iᵀ r_i`` with ``r = q̃ − q_T``
  (distillation) or ``q̃ − y`` (one-hot): its expected squared norm over batches drawn without
  replacement is ``‖r̄‖² + S²/B · (n − B)/(n − 1)`` (``r̄`` the mean of ``v_i = J_iᵀ r_i``, ``S²``
  their mean squared deviation) — computed exactly from per-example Jacobians on
  ``gradient_points`` training points, at 4 times along the student's and the twin's
  trajectories.

:func:`mean_effect`, :func:`difference_effect` and :func:`share_effect` turn the per-seed numbers
of seeds ``0 … S−1`` into :class:`kdtheory.stats.Effect` records (paired 95% t intervals; Fieller for a ratio of gains).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.special import softmax

from kdtheory import data as _data
from kdtheory.confidence import analyze, logit_confidence
from kdtheory.experiments.config import param
from kdtheory.stats import Effect, Rule, paired_effect, ratio_effect

__all__ = [
    "DATASETS",
    "Design",
    "Arm",
    "TeacherRun",
    "load",
    "teacher_run",
    "arm_run",
    "teacher_index",
    "seed_metrics",
    "collect",
    "mean_effect",
    "difference_effect",
    "share_effect",
    "bin_intervals",
    "TOL",
    "Suite",
    "Cell",
    "MIXTURE",
    "DIGITS",
    "MNIST1D",
    "QUICK",
    "MAP_AXES",
    "confounder_map",
    "headline",
    "interval_text",
    "BINS",
]

DATASETS = ("mixture", "digits", "mnist1d")

#: tolerance on |Δφ| (nats) for the counts of under/over-confident points.
TOL = 0.05

#: teacher-confidence quantile bins of the binned Δφ curves.
BINS = 10

_QUANT = 0.1  # the low/high teacher-confidence groups: 10% lowest / highest


@dataclass(frozen=True)
class Design:
    """One setting of the paired design (hashable: it keys the cache).

    Attributes:
      dataset: ``"mixture"`` (``gaussian_mixture``, d = 20, 3 classes, separation 2),
        ``"digits"`` (scikit-learn 8×8) or ``"mnist1d"`` (Greydanus 2020, ``data_seed=42`` pool).
      n: training points (digits: ``None`` = every image left after the test and validation splits).
      n_test: test points (mixture, mnist1d; digits ignores it and uses its 40% test split).
      validation: noisy validation points (teacher and twin early stopping).
      label_noise: η, the flip-to-another-class rate of training and validation labels.
      hidden: hidden widths of the MLP (ReLU).
      learning_rate, momentum, batch_size: the optimizer of every run (``None``: full batch).
      teacher_t: the teacher's budget (steps).
      student_t: the budget of every arm (steps).
      teacher_stop: ``"val"`` (argmax of noisy validation accuracy), ``"last"`` or a step (the
        nearest recorded checkpoint at or after it).
      temperature: τ of the distillation term.
      switch_fractions: the late / reverse switch fractions ``f`` strictly between 0 and 1.
      gradient_points: training points (a fixed random subset) for the T2 gradient statistics.
      points: recorded checkpoints per run (geometric, with 0 and the budget).
    """

    dataset: str = param("mixture", "data set", choices=DATASETS, key=True)
    n: int | None = param(1000, "training points (digits: none = every image left after the splits)", low=1)
    n_test: int = param(20_000, "test points (mixture, mnist1d; digits uses its 40% test split)", low=0)
    validation: int = param(500, "noisy validation points (teacher and twin early stopping)", low=1)
    label_noise: float = param(
        0.3, "η, the flip-to-another-class rate of training and validation labels", low=0, below=1
    )
    hidden: tuple[int, ...] = param((128,), "hidden widths of the MLP (ReLU)", low=1)
    learning_rate: float = param(0.1, "learning rate of every run", above=0)
    momentum: float = param(0.0, "momentum of every run", low=0, below=1)
    batch_size: int | None = param(None, "minibatch size (none: full batch)", low=1)
    teacher_t: int = param(2000, "the teacher's budget (steps)", low=1)
    student_t: int = param(2000, "the budget of every arm (steps)", low=1)
    teacher_stop: str | int = param(
        "val", "teacher checkpoint: val (best noisy validation), last, or a step", choices=("val", "last"), low=0
    )
    temperature: float = param(1.0, "τ of the distillation term", above=0)
    switch_fractions: tuple[float, ...] = param(
        (0.25, 0.5, 0.75), "late / reverse switch fractions f", above=0, below=1
    )
    gradient_points: int = param(1000, "training points for the T2 gradient statistics", low=1)
    points: int = param(40, "recorded checkpoints per run (geometric, with 0 and the budget)", low=1)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if not (
            self.teacher_stop in ("val", "last") or (isinstance(self.teacher_stop, int) and self.teacher_stop >= 0)
        ):
            raise ValueError(f"teacher_stop must be 'val', 'last' or a step >= 0, got {self.teacher_stop!r}")
        if any(not 0 < f < 1 for f in self.switch_fractions):
            raise ValueError(f"switch_fractions must lie strictly between 0 and 1, got {self.switch_fractions}")
        for name in ("teacher_t", "student_t", "validation", "gradient_points", "points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")

    @property
    def label(self) -> str:
        """A short caption: data set, η, τ, teacher stop and budget."""
        return (
            f"{self.dataset} η={self.label_noise:g} τ={self.temperature:g} stop={self.teacher_stop} "
            f"budget={self.student_t}/{self.teacher_t}"
        )


class TeacherRun(NamedTuple):
    """The teacher's recorded trajectory (compact).

    Attributes:
      t: recorded steps ``(C,)``.
      train: training logits at each step ``(C, n, k)``.
      test: test logits at each step ``(C, n_test, k)``.
      val_accuracy: accuracy on the noisy validation labels ``(C,)``.
      test_accuracy: clean test accuracy ``(C,)``.
    """

    t: np.ndarray
    train: np.ndarray
    test: np.ndarray
    val_accuracy: np.ndarray
    test_accuracy: np.ndarray


class Arm(NamedTuple):
    """One student-side run (compact).

    Attributes:
      t: recorded steps ``(C,)``.
      train: final training logits ``(n, k)``.
      test: final test logits ``(n_test, k)``.
      val_accuracy: accuracy on the noisy validation labels at each step ``(C,)``.
      test_accuracy: clean test accuracy at each step ``(C,)``.
      params: flat parameters at each step ``(C, P)`` (student and twin only; else ``None``).
    """

    t: np.ndarray
    train: np.ndarray
    test: np.ndarray
    val_accuracy: np.ndarray
    test_accuracy: np.ndarray
    params: np.ndarray | None


def _data_key(d: Design) -> tuple:
    return (d.dataset, d.n, d.n_test, d.validation, d.label_noise)


def _train_key(d: Design) -> tuple:
    return (d.hidden, d.learning_rate, d.momentum, d.batch_size)


@functools.lru_cache(maxsize=64)
def _load(key: tuple, seed: int) -> _data.Classification:
    dataset, n, n_test, validation, eta = key
    if dataset == "mixture":
        return _data.gaussian_mixture(n, n_test, label_noise=eta, validation=validation, seed=seed)
    if dataset == "digits":
        return _data.digits(n, label_noise=eta, validation=validation, seed=seed)
    return _data.mnist1d(n, n_test, label_noise=eta, validation=validation, seed=seed, data_seed=42)


def load(design: Design, seed: int) -> _data.Classification:
    """The data of ``design`` at ``seed`` (cached).

    Args:
      design: the :class:`Design`.
      seed: the seed of the split and of the label flips.

    Returns:
      A :class:`kdtheory.data.Classification` with a noisy validation split.
    """
    return _load(_data_key(design), int(seed))


@functools.lru_cache(maxsize=8)
def _model(sizes: tuple[int, ...]):
    from kdtheory.simulate import mlp

    return mlp(list(sizes))  # one object per architecture: the engine's compiled loops are reused


def _flat(params):
    from jax.flatten_util import ravel_pytree

    return ravel_pytree(params)[0]


def _sizes(design: Design, data: _data.Classification) -> tuple[int, ...]:
    return (data.X.shape[1], *design.hidden, data.Y.shape[1])


def _steps(budget: int, points: int) -> np.ndarray:
    # the same number of checkpoints for every budget keeps one compiled loop per budget
    g = np.geomspace(1, budget, points - 1)
    return np.r_[0, g].round().astype(np.int64)


def _optimizer(design: Design):
    from kdtheory.simulate import Optimizer

    return Optimizer(learning_rate=design.learning_rate, momentum=design.momentum, batch_size=design.batch_size)


def _accuracies(outputs: np.ndarray, m: int, data: _data.Classification) -> tuple[np.ndarray, np.ndarray]:
    pred = outputs.argmax(-1)
    val = np.mean(pred[:, :m] == data.Y_val.argmax(1), axis=1)
    test = np.mean(pred[:, m:] == data.Y_test.argmax(1), axis=1)
    return val, test


@functools.lru_cache(maxsize=64)
def _teacher(dkey: tuple, tkey: tuple, teacher_t: int, points: int, seed: int) -> TeacherRun:
    from kdtheory.simulate import Loss, train_model

    design = Design(*dkey, hidden=tkey[0], learning_rate=tkey[1], momentum=tkey[2], batch_size=tkey[3])
    data = _load(dkey, seed)
    m = data.X_val.shape[0]
    run = train_model(
        _model(_sizes(design, data)), data.X, data.Y, t=_steps(teacher_t, points),
        loss=Loss("ce", normalization="mean"), optimizer=_optimizer(design),
        X_test=np.r_[data.X_val, data.X_test], seed=1000 + seed, project=_flat,
    )  # fmt: skip
    val, test = _accuracies(run.test, m, data)
    return TeacherRun(run.t, run.train, run.test[:, m:].copy(), val, test)  # copies: free the full buffers


def teacher_run(design: Design, seed: int) -> TeacherRun:
    """The teacher of ``design`` at ``seed``, trained on the noisy labels (cached).

    Args:
      design: the :class:`Design` (only the data, optimizer, ``teacher_t`` and ``points`` matter).
      seed: the seed (data; the teacher's initialization and batches use ``1000 + seed``).

    Returns:
      The :class:`TeacherRun`.
    """
    return _teacher(_data_key(design), _train_key(design), design.teacher_t, design.points, int(seed))


def teacher_index(design: Design, teacher: TeacherRun) -> int:
    """The checkpoint used as the teacher: noisy-validation argmax (earliest), last, or a step.

    Args:
      design: the :class:`Design` (its ``teacher_stop``).
      teacher: the :class:`TeacherRun`.

    Returns:
      An index into ``teacher.t``.
    """
    if design.teacher_stop == "val":
        return int(np.argmax(teacher.val_accuracy))  # argmax returns the first maximum: the earliest
    if design.teacher_stop == "last":
        return len(teacher.t) - 1
    return int(min(np.searchsorted(teacher.t, design.teacher_stop), len(teacher.t) - 1))


def _arm_loss(design: Design, arm: str):
    from kdtheory.simulate import Loss

    tau = design.temperature
    if arm == "twin":
        return Loss("ce", normalization="mean")
    if arm == "student":
        return Loss("ce", normalization="mean", temperature=tau, teacher_weight=1.0)
    kind, f = arm.split(":")
    s = int(round(float(f) * design.student_t))
    w0, w1 = (0.0, 1.0) if kind == "late" else (1.0, 0.0)
    return Loss("ce", normalization="mean", temperature=tau, teacher_weight=w0, teacher_weight_after=w1, switch_t=s)


@functools.lru_cache(maxsize=512)
def _arm(design: Design, arm: str, seed: int) -> Arm:
    import jax

    from kdtheory.simulate import train_model

    data = load(design, seed)
    m = data.X_val.shape[0]
    model = _model(_sizes(design, data))
    teacher = None
    if arm != "twin":
        tr = teacher_run(design, seed)
        teacher = tr.train[teacher_index(design, tr)]
    run = train_model(
        model, data.X, data.Y, t=_steps(design.student_t, design.points), loss=_arm_loss(design, arm),
        optimizer=_optimizer(design), teacher=teacher, X_test=np.r_[data.X_val, data.X_test],
        params=model.init(jax.random.PRNGKey(2000 + seed)), seed=3000 + seed, project=_flat,
    )  # fmt: skip
    val, test = _accuracies(run.test, m, data)
    keep = arm in ("student", "twin")
    return Arm(run.t, run.train[-1].copy(), run.test[-1, m:].copy(), val, test, run.projection if keep else None)


def arm_run(design: Design, arm: str, seed: int) -> Arm:
    """One arm of the paired design (cached; the twin is shared by every teacher, τ and switch).

    Args:
      design: the :class:`Design`.
      arm: ``"student"``, ``"twin"``, ``"late:f"`` or ``"reverse:f"`` (``f`` a switch fraction).
      seed: the seed (init ``PRNGKey(2000 + seed)``, minibatches ``3000 + seed``).

    Returns:
      The :class:`Arm`.

    Raises:
      ValueError: an unknown arm.
    """
    if arm not in ("student", "twin") and not (arm.split(":")[0] in ("late", "reverse") and ":" in arm):
        raise ValueError(f"arm must be 'student', 'twin', 'late:f' or 'reverse:f', got {arm!r}")
    if arm == "twin":  # independent of the teacher, τ and switches: one run per data/optimizer/budget
        design = dataclasses.replace(
            design, teacher_stop="val", temperature=1.0, switch_fractions=(), gradient_points=1
        )
    else:
        design = dataclasses.replace(design, switch_fractions=(), gradient_points=1)
    return _arm(design, arm, int(seed))


def _early(arm: Arm) -> float:
    return float(arm.test_accuracy[int(np.argmax(arm.val_accuracy))])


def _phi(logits: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return logit_confidence(logits, ref, kind="logits").logit


def _confidence(teacher: np.ndarray, student: np.ndarray, twin: np.ndarray, split: str) -> dict[str, Any]:
    ref = teacher.argmax(1)
    pt, ps, po = _phi(teacher, ref), _phi(student, ref), _phi(twin, ref)
    lo, hi = np.quantile(pt, [_QUANT, 1 - _QUANT])
    low, high = pt <= lo, pt >= hi
    order = np.argsort(pt, kind="stable")
    bins = np.array_split(order, BINS)
    rs = analyze(teacher, student, kind="logits", bootstrap=0, tol=TOL, quantile=_QUANT)
    ro = analyze(teacher, twin, kind="logits", bootstrap=0, tol=TOL, quantile=_QUANT)
    return {
        f"{split}_low_student_twin": float(np.mean(ps[low] - po[low])),
        f"{split}_high_student_twin": float(np.mean(ps[high] - po[high])),
        f"{split}_low_student_teacher": float(np.mean(ps[low] - pt[low])),
        f"{split}_high_student_teacher": float(np.mean(ps[high] - pt[high])),
        f"{split}_low_twin_teacher": float(np.mean(po[low] - pt[low])),
        f"{split}_slope_student": float(rs.robust_slope),
        f"{split}_slope_twin": float(ro.robust_slope),
        f"{split}_underfit_share_student": float(rs.low_underfit),
        f"{split}_underfit_share_twin": float(ro.low_underfit),
        f"{split}_bins_teacher": [float(np.mean(pt[b])) for b in bins],
        f"{split}_bins_student_twin": [float(np.mean(ps[b] - po[b])) for b in bins],
        f"{split}_bins_student_teacher": [float(np.mean(ps[b] - pt[b])) for b in bins],
    }


@functools.lru_cache(maxsize=4)
def _moments_fn(sizes: tuple[int, ...]):
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    model = _model(sizes)
    _, unravel = ravel_pytree(model.init(jax.random.PRNGKey(0)))

    @jax.jit
    def outputs(flat, X):
        return model.apply(unravel(flat), X)

    @jax.jit
    def moments(flat, X, R):
        # Per-example gradients of a dense layer are outer products (Goodfellow 2015): for the scalar
        # Σ_i f(x_i)·r_i, example i's gradient on W_l is h_li ⊗ δ_li and on b_l it is s_l δ_li, with h
        # the layer's input and δ the error at its pre-activation (obtained through the model's taps).
        params = unravel(flat)
        _, shapes = jax.eval_shape(lambda: model.structure(params, X, None))
        taps0 = [jnp.zeros(lay.preactivation.shape, lay.preactivation.dtype) for lay in shapes]
        _, vjp_fn, layers = jax.vjp(lambda taps: model.structure(params, X, taps), taps0, has_aux=True)
        (deltas,) = jax.vmap(vjp_fn)(R)  # per layer (m, n, w)
        sq, mean2 = 0.0, 0.0
        for lay, d in zip(layers, deltas, strict=True):
            s2 = float(lay.bias_scale) ** 2
            h2 = jnp.sum(lay.inputs * lay.inputs, axis=1) + s2  # (n,)
            sq = sq + jnp.sum(d * d, axis=2) * h2
            G = jnp.einsum("nd,mnw->mdw", lay.inputs, d)
            mean2 = mean2 + jnp.sum(G * G, axis=(1, 2)) + s2 * jnp.sum(jnp.sum(d, axis=1) ** 2, axis=1)
        n = X.shape[0]
        return mean2 / (n * n), jnp.mean(sq, axis=1)

    return outputs, moments


def _gradient_moments(sizes, flat: np.ndarray, X: np.ndarray, residuals: np.ndarray):
    """For residual sets ``r`` (m, n, k): ``‖mean_i J_iᵀ r_i‖²`` (m,) and ``mean_i ‖J_iᵀ r_i‖²`` (m,)."""
    import jax.numpy as jnp

    _, moments = _moments_fn(sizes)
    flat = jnp.asarray(flat)
    m2, e2 = moments(flat, jnp.asarray(X, flat.dtype), jnp.asarray(residuals, flat.dtype))
    return np.asarray(m2, np.float64), np.asarray(e2, np.float64)


def _batch_sq(m2: np.ndarray, e2: np.ndarray, B: int, n: int) -> np.ndarray:
    """E‖mean over a batch of B drawn without replacement‖² from ‖mean‖² and the mean squared norm."""
    s2 = np.maximum(e2 - m2, 0.0)
    return m2 + s2 / B * (n - B) / max(n - 1, 1)


def _gradients(design: Design, seed: int, teacher_probs: np.ndarray) -> dict[str, Any]:
    data = load(design, seed)
    sizes = _sizes(design, data)
    n_all = data.X.shape[0]
    sub = np.sort(np.random.default_rng(seed).permutation(n_all)[: min(design.gradient_points, n_all)])
    q = _data.clean_gradient_target(data)[sub]
    X, Y, T = data.X[sub], data.Y[sub], teacher_probs[sub]
    n = sub.size
    out: dict[str, Any] = {
        "gradient_t": [],
        "gradient_b1": [],
        "gradient_bn": [],
        "gradient_arm": [],
        "trace_ratio": [],
    }
    import jax.numpy as jnp

    outputs, _ = _moments_fn(sizes)
    for which in ("student", "twin"):
        arm = arm_run(design, which, seed)
        C = len(arm.t)
        for j in sorted({0, C // 4, C // 2, 3 * C // 4, C - 1} - {C // 4}):
            flat = arm.params[j]
            p = softmax(np.asarray(outputs(jnp.asarray(flat), jnp.asarray(X, flat.dtype)), np.float64), axis=1)
            # residual sets: distillation q̃ − q_T, one-hot q̃ − y, clean p − q̃; then p − q_T, p − y (tr Σ)
            m2, e2 = _gradient_moments(sizes, flat, X, np.stack([q - T, q - Y, p - q, p - T, p - Y]))
            g2 = max(float(m2[2]), 1e-300)
            # secondary: tr Σ of the per-example distillation and one-hot gradients (not denoising by itself)
            out["trace_ratio"].append(float((e2[3] - m2[3]) / max(e2[4] - m2[4], 1e-300)))
            b1 = np.sqrt(_batch_sq(m2[:2], e2[:2], 1, n) / g2)
            bn = np.sqrt(m2[:2] / g2)
            out["gradient_t"].append(int(arm.t[j]))
            out["gradient_arm"].append(which)
            out["gradient_b1"].append([float(b1[0]), float(b1[1])])
            out["gradient_bn"].append([float(bn[0]), float(bn[1])])
    b1 = np.array(out["gradient_b1"])
    bn = np.array(out["gradient_bn"])
    out["gradient_ratio_b1"] = float(np.mean(b1[:, 0] / b1[:, 1]))
    out["gradient_ratio_bn"] = float(np.mean(bn[:, 0] / bn[:, 1]))
    out["trace_ratio_mean"] = float(np.mean(out["trace_ratio"]))
    return out


@functools.lru_cache(maxsize=1024)
def _seed_metrics(design: Design, seed: int, gradients: bool) -> dict[str, Any]:
    data = load(design, seed)
    tr = teacher_run(design, seed)
    it = teacher_index(design, tr)
    T_train, T_test = tr.train[it], tr.test[it]
    ytest = data.Y_test.argmax(1)
    student, twin = arm_run(design, "student", seed), arm_run(design, "twin", seed)
    rec: dict[str, Any] = {
        "seed": seed,
        "flip_rate": data.flip_rate,
        "teacher_stop": int(tr.t[it]),
        "teacher_val": float(tr.val_accuracy[it]),
        "teacher_train_agree": float(np.mean(T_train.argmax(1) == data.Y.argmax(1))),
        "teacher_train_clean": float(np.mean(T_train.argmax(1) == data.clean)),
        "teacher_test": float(np.mean(T_test.argmax(1) == ytest)),
        "teacher_test_last": float(tr.test_accuracy[-1]),
        "acc_student": float(student.test_accuracy[-1]),
        "acc_twin": float(twin.test_accuracy[-1]),
        "acc_student_es": _early(student),
        "acc_twin_es": _early(twin),
        "twin_train_agree": float(np.mean(twin.train.argmax(1) == data.Y.argmax(1))),
    }
    if data.means is not None:
        post = _data.mixture_posterior(data.X_test, data.means, sigma=data.sigma or 1.0)
        rec["bayes_test"] = float(np.mean(post.argmax(1) == ytest))
    for f in design.switch_fractions:
        rec[f"acc_late_{f:g}"] = float(arm_run(design, f"late:{f:g}", seed).test_accuracy[-1])
        rec[f"acc_reverse_{f:g}"] = float(arm_run(design, f"reverse:{f:g}", seed).test_accuracy[-1])
    rec.update(_confidence(T_test, student.test, twin.test, "test"))
    rec.update(_confidence(T_train, student.train, twin.train, "train"))
    q = _data.clean_gradient_target(data)
    qT = softmax(T_train, axis=1)
    rec["target_teacher"] = float(np.mean(np.sum((qT - q) ** 2, 1)))
    rec["target_onehot"] = float(np.mean(1.0 - np.sum(q * q, 1)))  # E‖e_ỹ − q̃‖² under ỹ ~ q̃
    rec["target_ratio"] = rec["target_teacher"] / rec["target_onehot"]
    rec["target_ratio_along_t"] = [
        float(np.mean(np.sum((softmax(z, axis=1) - q) ** 2, 1)) / rec["target_onehot"]) for z in tr.train
    ]
    rec["teacher_t"] = tr.t.tolist()
    if gradients:
        rec.update(_gradients(design, seed, qT))
    return rec


def seed_metrics(design: Design, seed: int, *, gradients: bool = True) -> dict[str, Any]:
    """Every per-seed number of the paired design (cached; see the module docstring).

    Args:
      design: the :class:`Design`.
      seed: the seed.
      gradients: compute the T2 gradient statistics (the costliest part after training).

    Returns:
      A dict of floats and lists keyed by name.
    """
    return _seed_metrics(design, int(seed), bool(gradients))


def collect(design: Design, seeds: int, say=None, *, gradients: bool = True) -> list[dict[str, Any]]:
    """:func:`seed_metrics` for seeds ``0 … seeds − 1``.

    Args:
      design: the :class:`Design`.
      seeds: the number of seeds (≥ 2 for an interval).
      say: optional progress callback (one line per seed).
      gradients: as :func:`seed_metrics`.

    Returns:
      One dict per seed.
    """
    out = []
    for s in range(seeds):
        rec = seed_metrics(design, s, gradients=gradients)
        if say is not None:
            say(
                f"{design.label} seed {s}: teacher stop {rec['teacher_stop']} test {rec['teacher_test']:.3f}, "
                f"student {rec['acc_student']:.3f}, twin {rec['acc_twin']:.3f}"
            )
        out.append(rec)
    return out


def _col(rows: list[dict], key: str) -> np.ndarray:
    return np.array([r[key] for r in rows], dtype=float)


def difference_effect(name: str, rows: list[dict], a: str, b: str, rule: Rule, control: str) -> Effect:
    """Paired effect ``rows[a] − rows[b]`` over seeds with a t interval, decided by ``rule``.

    Args:
      name: what is measured.
      rows: per-seed dicts.
      a: treatment key.
      b: control key.
      rule: the rule fixed before the run.
      control: the control arm in words.

    Returns:
      The :class:`Effect`.
    """
    return paired_effect(name, _col(rows, a), _col(rows, b), control=control, rule=rule)


def mean_effect(name: str, rows: list[dict], key: str, rule: Rule, control: str) -> Effect:
    """Effect of a per-seed value that is already a paired contrast or a ratio (t interval of its mean).

    Args:
      name: what is measured.
      rows: per-seed dicts.
      key: the per-seed value.
      rule: the rule fixed before the run.
      control: the control arm (or the fixed reference) in words.

    Returns:
      The :class:`Effect`.
    """
    v = _col(rows, key)
    return paired_effect(name, v, np.zeros_like(v), control=control, rule=rule)


def share_effect(name: str, rows: list[dict], f: float, rule: Rule, control: str) -> Effect:
    """Recovered share at switch ``f``: (late − twin) / (student − twin), Fieller over seeds.

    Args:
      name: what is measured.
      rows: per-seed dicts.
      f: the switch fraction.
      rule: the rule fixed before the run.
      control: the control arm in words.

    Returns:
      The :class:`Effect` (inconclusive when the gain's interval contains 0).
    """
    num = _col(rows, f"acc_late_{f:g}") - _col(rows, "acc_twin")
    den = _col(rows, "acc_student") - _col(rows, "acc_twin")
    return ratio_effect(name, num, den, control=control, rule=rule)


def bin_intervals(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and paired 95% t interval over seeds of a per-seed list (e.g. a binned Δφ curve).

    Args:
      rows: per-seed dicts.
      key: a key whose value is a list of equal length in every row.

    Returns:
      ``(mean, low, high)`` arrays.
    """
    from kdtheory.stats import t_interval

    A = np.array([r[key] for r in rows], dtype=float)
    ivs = [t_interval(A[:, j]) for j in range(A.shape[1])]
    return (np.array([i.estimate for i in ivs]), np.array([i.low for i in ivs]), np.array([i.high for i in ivs]))


#: the mixture of the issue-10 measurements: MLP 20-128-3, full-batch GD lr 0.1 (lr 0.5 oscillates).
MIXTURE = Design()

#: scikit-learn digits, η = 0.3, every image left after the test and 300 validation images (n = 778).
DIGITS = Design(dataset="digits", n=None, n_test=0, validation=300, hidden=(128,), gradient_points=778)

#: MNIST-1D (n = 4000, 10,000 test signals), MLP 40-100-100-10, SGD with momentum 0.9, batch 100,
#: lr 0.01, 6000 steps, η = 0.2 (at η = 0.1 the noisy validation split stops the teacher late).
MNIST1D = Design(
    dataset="mnist1d", n=4000, n_test=10_000, validation=500, label_noise=0.2, hidden=(100, 100),
    learning_rate=0.01, momentum=0.9, batch_size=100, teacher_t=6000, student_t=6000, gradient_points=4000,
)  # fmt: skip


@dataclass(frozen=True)
class Suite:
    """The configuration shared by the O1, O2 and T2 experiments (identical, so their runs are shared).

    Attributes:
      seeds: seeds ``0 … seeds − 1`` of the headline designs.
      designs: the headline designs, one per data set (the first is the base of the map).
      map_seeds: seeds of each cell of the confounder map (the first ``map_seeds`` seeds).
      map_stop: teacher stop rules of the map (``"val"``, ``"last"`` or a step).
      map_temperature: temperatures τ of the map.
      map_noise: label-noise rates η of the map.
      map_budget: student budgets of the map (the teacher keeps ``teacher_t``).
    """

    seeds: int = param(10, "seeds 0 … seeds − 1 of the headline designs", low=2)
    designs: tuple[Design, ...] = param(
        (MIXTURE, DIGITS, MNIST1D), "the headline designs (the first is the map's base)"
    )
    map_seeds: int = param(5, "seeds of each cell of the confounder map", low=2)
    map_stop: tuple[str | int, ...] = param(
        ("val", 200, 500, "last"), "teacher stop rules of the map", choices=("val", "last"), low=0
    )
    map_temperature: tuple[float, ...] = param((1.0, 2.0, 4.0), "temperatures τ of the map", above=0)
    map_noise: tuple[float, ...] = param((0.1, 0.3, 0.45), "label-noise rates η of the map", low=0, below=1)
    map_budget: tuple[int, ...] = param((200, 600, 2000), "student budgets of the map (steps)", low=1)


#: the quick (smoke) suite: tiny sizes, 2 seeds, two data sets, a two-value map.
QUICK = Suite(
    seeds=2,
    designs=(
        Design(n=200, n_test=1000, validation=100, teacher_t=200, student_t=200, gradient_points=200,
               switch_fractions=(0.5,), points=16),
        Design(dataset="mnist1d", n=300, n_test=500, validation=100, label_noise=0.2, hidden=(32,),
               learning_rate=0.01, momentum=0.9, batch_size=50, teacher_t=200, student_t=200,
               gradient_points=100, switch_fractions=(0.5,), points=16),
    ),
    map_seeds=2,
    map_stop=("val", "last"),
    map_temperature=(1.0, 2.0),
    map_noise=(0.3,),
    map_budget=(100, 200),
)  # fmt: skip

MAP_AXES = ("teacher_stop", "temperature", "label_noise", "student_t")


class Cell(NamedTuple):
    """One cell of the confounder map.

    Attributes:
      axis: the design field varied (``teacher_stop``, ``temperature``, ``label_noise``, ``student_t``).
      value: its value in this cell.
      design: the cell's :class:`Design` (the base design with that one field changed, switch 0.5).
      rows: per-seed :func:`seed_metrics`.
    """

    axis: str
    value: Any
    design: Design
    rows: list[dict]


def confounder_map(suite: Suite, say=None) -> list[Cell]:
    """The map: the base design with one confounder changed at a time, ``map_seeds`` seeds each.

    Args:
      suite: the :class:`Suite` (its first design is the base).
      say: optional progress callback.

    Returns:
      One :class:`Cell` per (axis, value).
    """
    base = dataclasses.replace(suite.designs[0], switch_fractions=(0.5,))
    values = dict(
        zip(MAP_AXES, (suite.map_stop, suite.map_temperature, suite.map_noise, suite.map_budget), strict=True)
    )
    cells = []
    for axis, vals in values.items():
        for v in vals:
            d = dataclasses.replace(base, **{axis: v})
            cells.append(Cell(axis, v, d, collect(d, suite.map_seeds, say)))
    return cells


def interval_text(values, scale: float = 1.0, digits: int = 3) -> str:
    """``"estimate [low, high]"`` of a ``[estimate, low, high]`` triple (``—`` for a missing end).

    Args:
      values: ``[estimate, low, high]`` (ends may be ``None``).
      scale: factor applied to all three (e.g. 100 for percentage points).
      digits: decimals.

    Returns:
      The text.
    """

    def one(v):
        return "—" if v is None or not np.isfinite(v) else f"{scale * v:+.{digits}f}"

    est, lo, hi = values
    return f"{one(est)} [{one(lo)}, {one(hi)}]"


def headline(suite: Suite, say=None) -> list[tuple[Design, list[dict]]]:
    """The headline designs of ``suite``, ``seeds`` seeds each: ``[(design, rows), …]``.

    Args:
      suite: the :class:`Suite`.
      say: optional progress callback.

    Returns:
      One ``(design, per-seed rows)`` pair per data set.
    """
    return [(d, collect(d, suite.seeds, say)) for d in suite.designs]
