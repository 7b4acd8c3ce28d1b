r"""The per-seed numbers of the paired design: what O1, O2 and T2 decide on (docs/theory.md §8).

Per seed, :func:`seed_metrics` reads the runs of :mod:`kdtheory.experiments.arms` and returns:

* **accuracies** (clean test set) of the teacher and the replica at their stop, of every
  student-side arm at the end of the budget, and of the student and the twin early-stopped on the
  validation split (clean in the ``paper`` and ``compression`` regimes, noisy in ``noisy-labels``);
  the teacher's accuracy on its training labels at its stop (interpolation: 1.0);
* **O1** on the training and the test split: logit confidences ``φ`` (reference class: the
  teacher's top-1, and separately the label) of teacher, student, replica and twin, and the
  per-seed effects of :func:`kdtheory.deviation.o1_from_phi` against each control (``replica``, ``twin``), plus the
  uncontrolled student − teacher and replica − teacher means over the 10% least teacher-confident
  points, and the paper's plot data (φ of every model per teacher-φ quantile bin, and least-squares
  lines of φ_model on φ_teacher);
* **T2** (τ = 1 targets): the target distance ratio ``mean‖q_T − q̃‖² / mean E‖e_ỹ − q̃‖²`` with
  ``q̃`` the expected label (:func:`kdtheory.data.clean_gradient_target`: the noisy-label
  distribution of the clean class, or on the mixture of the Bayes posterior), and the gradient
  distance ratio ``‖g_KD − ḡ‖ / ‖g_OH − ḡ‖`` at the same parameters for ``B = 1`` and ``B = n``,
  where ``g − ḡ = mean_{i∈batch} J_iᵀ r_i`` with ``r = q̃ − q_T`` (distillation) or ``q̃ − y``
  (one-hot): its expected squared norm over batches drawn without replacement is
  ``‖r̄‖² + S²/B · (n − B)/(n − 1)`` — computed exactly from per-example Jacobians on
  ``gradient_points`` training points at 4 checkpoints of the student and of the twin.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
from scipy.special import softmax

from kdtheory import data as _data
from kdtheory import deviation
from kdtheory.confidence import confidence_groups, least_squares_slope
from kdtheory.experiments.arms import Arm, OneHotRun, _model, arm_run, fetch, fetch_many
from kdtheory.experiments.design import O2_FRACTION, Design, Suite, load

if TYPE_CHECKING:
    import jax

#: a jitted function of the flat parameters (:func:`_moments_fn`).
_Jitted = Callable[..., Any]

__all__ = ["seed_metrics", "collect", "blocks", "Block", "BINS", "FRACTION", "CONTROLS", "MAP_AXES"]

#: teacher-confidence quantile bins of the paper's plot.
BINS = 10

#: the low / high teacher-confidence groups: the 10% least / most confident points.
FRACTION = deviation.FRACTION

#: the controls of every student-vs-teacher comparison (the first decides).
CONTROLS = ("replica", "twin")


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    fit = least_squares_slope(x, y)
    return (float("nan"), float("nan")) if fit is None else (float(fit[0]), float(fit[1]))


def _confidence(models: dict[str, np.ndarray], labels: np.ndarray, split: str) -> dict[str, Any]:
    """O1 numbers of one split; ``models`` maps teacher/student/replica/twin to logits.

    Keys: ``{split}_{ref}_{control}`` the :class:`kdtheory.deviation.O1Effects` of the student against
    each control with φ of the teacher's top-1 class (``top1``) or the label (``label``), groups by the
    teacher's φ; ``{split}_cross_{control}`` the cross-selected check (groups and class by the
    control's own φ and top-1, student against teacher directly); the uncontrolled low-group means
    ``{split}_low_{model}_teacher``; the plot data ``{split}_bins`` and ``{split}_lines``.
    """
    out: dict[str, Any] = {}
    for ref, cls, name in (("top1", models["teacher"].argmax(1), "teacher_top1"), ("label", labels, "label")):
        phi = {k: deviation.phi(v, cls, kind="logits") for k, v in models.items()}
        for ctrl in CONTROLS:
            out[f"{split}_{ref}_{ctrl}"] = deviation.o1_from_phi(
                phi["teacher"], phi["student"], phi[ctrl], fraction=FRACTION, reference=name
            )
        if ref == "top1":
            pt = phi["teacher"]
            low, _ = confidence_groups(pt, FRACTION)
            for k in ("student", *CONTROLS):
                out[f"{split}_low_{k}_teacher"] = float(np.mean(phi[k][low] - pt[low]))  # uncontrolled
            bins = np.array_split(np.argsort(pt, kind="stable"), BINS)
            out[f"{split}_bins"] = {k: [float(np.mean(v[b])) for b in bins] for k, v in phi.items()}
            out[f"{split}_lines"] = {k: _ols(pt, phi[k]) for k in ("student", *CONTROLS)}
    for ctrl in CONTROLS:
        cls = models[ctrl].argmax(1)
        phi = {k: deviation.phi(models[k], cls, kind="logits") for k in ("teacher", "student", ctrl)}
        out[f"{split}_cross_{ctrl}"] = deviation.o1_from_phi(
            phi["teacher"], phi["student"], phi[ctrl], fraction=FRACTION, select="control", reference="control_top1"
        )
    return out


@functools.lru_cache(maxsize=4)
def _moments_fn(sizes: tuple[int, ...]) -> tuple[_Jitted, _Jitted]:
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    model = _model(sizes)
    structure = model.structure
    if structure is None:  # an mlp always has one
        raise ValueError(f"{model} has no layer structure: per-example gradients need one")
    _, unravel = ravel_pytree(model.init(jax.random.PRNGKey(0)))

    @jax.jit
    def outputs(flat: jax.Array, X: jax.Array) -> jax.Array:
        return model.apply(unravel(flat), X)

    @jax.jit
    def moments(flat: jax.Array, X: jax.Array, R: jax.Array) -> tuple[jax.Array, jax.Array]:
        # Per-example gradients of a dense layer are outer products (Goodfellow 2015): for the scalar
        # Σ_i f(x_i)·r_i, example i's gradient on W_l is h_li ⊗ δ_li and on b_l it is s_l δ_li, with h
        # the layer's input and δ the error at its pre-activation (obtained through the model's taps).
        params = unravel(flat)
        _, shapes = jax.eval_shape(lambda: structure(params, X, None))
        taps0 = [jnp.zeros(lay.preactivation.shape, lay.preactivation.dtype) for lay in shapes]
        _, vjp_fn, layers = jax.vjp(lambda taps: structure(params, X, taps), taps0, has_aux=True)
        (deltas,) = jax.vmap(vjp_fn)(R)  # per layer (m, n, w)
        sq: float | jax.Array = 0.0
        mean2: float | jax.Array = 0.0
        for lay, d in zip(layers, deltas, strict=True):
            s2 = float(lay.bias_scale) ** 2
            h2 = jnp.sum(lay.inputs * lay.inputs, axis=1) + s2  # (n,)
            sq = sq + jnp.sum(d * d, axis=2) * h2
            G = jnp.einsum("nd,mnw->mdw", lay.inputs, d)
            mean2 = mean2 + jnp.sum(G * G, axis=(1, 2)) + s2 * jnp.sum(jnp.sum(d, axis=1) ** 2, axis=1)
        n = X.shape[0]
        return jnp.asarray(mean2 / (n * n)), jnp.mean(sq, axis=1)

    return outputs, moments


def _gradient_moments(
    sizes: tuple[int, ...], flat: np.ndarray, X: np.ndarray, residuals: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For residual sets ``r`` (m, n, k): ``‖mean_i J_iᵀ r_i‖²`` (m,) and ``mean_i ‖J_iᵀ r_i‖²`` (m,)."""
    import jax.numpy as jnp

    _, moments = _moments_fn(sizes)
    w = jnp.asarray(flat)
    m2, e2 = moments(w, jnp.asarray(X, w.dtype), jnp.asarray(residuals, w.dtype))
    return np.asarray(m2, np.float64), np.asarray(e2, np.float64)


def _batch_sq(m2: np.ndarray, e2: np.ndarray, B: int, n: int) -> np.ndarray:
    """E‖mean over a batch of B drawn without replacement‖² from ‖mean‖² and the mean squared norm."""
    s2 = np.maximum(e2 - m2, 0.0)
    sq: np.ndarray = m2 + s2 / B * (n - B) / max(n - 1, 1)
    return sq


def _gradients(design: Design, seed: int, teacher_probs: np.ndarray) -> dict[str, Any]:
    import jax.numpy as jnp

    data = load(design, seed)
    n_all = data.X.shape[0]
    sub = np.sort(np.random.default_rng(seed).permutation(n_all)[: min(design.gradient_points, n_all)])
    q = _data.clean_gradient_target(data)[sub]
    X, Y, T = data.X[sub], data.Y[sub], teacher_probs[sub]
    n = sub.size
    out: dict[str, Any] = {k: [] for k in ("gradient_t", "gradient_b1", "gradient_bn", "gradient_arm", "trace_ratio")}
    for which in ("student", "twin"):
        arm = arm_run(design, which, seed)
        sizes = (data.X.shape[1], *design.hidden, data.Y.shape[1])
        outputs, _ = _moments_fn(sizes)
        for flat, t in zip(arm.params, arm.params_t, strict=True):
            p = softmax(np.asarray(outputs(jnp.asarray(flat), jnp.asarray(X, flat.dtype)), np.float64), axis=1)
            # residual sets: distillation q̃ − q_T, one-hot q̃ − y, clean p − q̃; then p − q_T, p − y (tr Σ)
            m2, e2 = _gradient_moments(sizes, flat, X, np.stack([q - T, q - Y, p - q, p - T, p - Y]))
            g2 = max(float(m2[2]), 1e-300)
            # secondary: tr Σ of the per-example distillation and one-hot gradients (not denoising by itself)
            out["trace_ratio"].append(float((e2[3] - m2[3]) / max(e2[4] - m2[4], 1e-300)))
            b1 = np.sqrt(_batch_sq(m2[:2], e2[:2], 1, n) / g2)
            bn = np.sqrt(m2[:2] / g2)
            out["gradient_t"].append(int(t))
            out["gradient_arm"].append(which)
            out["gradient_b1"].append([float(b1[0]), float(b1[1])])
            out["gradient_bn"].append([float(bn[0]), float(bn[1])])
    b1 = np.array(out["gradient_b1"])
    bn = np.array(out["gradient_bn"])
    out["gradient_ratio_b1"] = float(np.mean(b1[:, 0] / b1[:, 1]))
    out["gradient_ratio_bn"] = float(np.mean(bn[:, 0] / bn[:, 1]))
    out["trace_ratio_mean"] = float(np.mean(out["trace_ratio"]))
    return out


def run_names(design: Design) -> list[str]:
    """The runs :func:`seed_metrics` reads: teacher, replica, twin, student and the switches.

    Args:
      design: the :class:`~kdtheory.experiments.design.Design`.

    Returns:
      Names for :func:`kdtheory.experiments.arms.fetch`.
    """
    names = ["teacher", "replica", "twin", "student"] + [f"late:{f:g}" for f in design.switch_fractions]
    return names + ([f"reverse:{f:g}" for f in design.switch_fractions] if design.reverse else [])


def _early(val: np.ndarray, test: np.ndarray) -> float:
    return float(test[int(np.argmax(val))])


@functools.lru_cache(maxsize=2048)
def _seed_metrics(design: Design, seed: int, gradients: bool) -> dict[str, Any]:
    data = load(design, seed)
    runs = fetch(design, seed, run_names(design))
    tr, rp = cast(OneHotRun, runs["teacher"]), cast(OneHotRun, runs["replica"])
    student, twin = cast(Arm, runs["student"]), cast(Arm, runs["twin"])
    if tr.train_path is None:  # a teacher's run keeps its path (arms.fetch)
        raise RuntimeError("the teacher's run kept no training path")
    ytest = data.Y_test.argmax(1)
    rec: dict[str, Any] = {
        "seed": seed,
        "regime": design.regime,
        "dataset": design.dataset,
        "temperature": design.temperature,
        "flip_rate": data.flip_rate,
        "teacher_stop": int(tr.t[tr.stop]),
        "replica_stop": int(rp.t[rp.stop]),
        "teacher_val": float(tr.val_accuracy[tr.stop]),
        "teacher_train_agree": float(tr.train_accuracy[tr.stop]),
        "teacher_train_clean": float(np.mean(tr.train.argmax(1) == data.clean)),
        "teacher_test": float(tr.test_accuracy[tr.stop]),
        "teacher_test_last": float(tr.test_accuracy[-1]),
        "acc_replica": float(rp.test_accuracy[rp.stop]),
        "acc_student": float(student.test_accuracy[-1]),
        "acc_twin": float(twin.test_accuracy[-1]),
        "acc_student_es": _early(student.val_accuracy, student.test_accuracy),
        "acc_twin_es": _early(twin.val_accuracy, twin.test_accuracy),
        "twin_train_agree": float(np.mean(twin.train.argmax(1) == data.Y.argmax(1))),
    }
    if data.means is not None:
        post = _data.mixture_posterior(data.X_test, data.means, sigma=data.sigma or 1.0)
        rec["bayes_test"] = float(np.mean(post.argmax(1) == ytest))
    for f in design.switch_fractions:
        late = runs[f"late:{f:g}"]
        rec[f"acc_late_{f:g}"] = float(late.test_accuracy[-1])
        rec[f"acc_late_{f:g}_es"] = _early(late.val_accuracy, late.test_accuracy)
        if design.reverse:
            rec[f"acc_reverse_{f:g}"] = float(runs[f"reverse:{f:g}"].test_accuracy[-1])
    for split, labels, ms in (
        ("test", ytest, {"teacher": tr.test, "student": student.test, "replica": rp.test, "twin": twin.test}),
        ("train", data.Y.argmax(1), {"teacher": tr.train, "student": student.train, "replica": rp.train,
                                     "twin": twin.train}),
    ):  # fmt: skip
        rec.update(_confidence(ms, labels, split))
    q = _data.clean_gradient_target(data)
    qT = softmax(tr.train, axis=1)
    rec["target_teacher"] = float(np.mean(np.sum((qT - q) ** 2, 1)))
    rec["target_onehot"] = float(np.mean(1.0 - np.sum(q * q, 1)))  # E‖e_ỹ − q̃‖² under ỹ ~ q̃
    rec["target_ratio"] = rec["target_teacher"] / max(rec["target_onehot"], 1e-300)
    rec["target_ratio_along_t"] = [
        float(np.mean(np.sum((softmax(z, axis=1) - q) ** 2, 1)) / max(rec["target_onehot"], 1e-300))
        for z in tr.train_path
    ]
    rec["teacher_t"] = tr.t.tolist()
    if gradients:
        rec.update(_gradients(design, seed, qT))
    return rec


def seed_metrics(design: Design, seed: int, *, gradients: bool = False) -> dict[str, Any]:
    """Every per-seed number of the paired design (cached; see the module docstring).

    Args:
      design: the :class:`~kdtheory.experiments.design.Design`.
      seed: the seed.
      gradients: compute the T2 gradient statistics (the costliest part after training; defined
        only where the expected label is not the one-hot label itself, i.e. η > 0 or the mixture).

    Returns:
      A dict keyed by name: floats, lists, and :class:`kdtheory.deviation.O1Effects` records.
    """
    return _seed_metrics(design, int(seed), bool(gradients))


def collect(
    design: Design, seeds: range, say: Callable[[str], None] | None = None, *, gradients: bool = False
) -> list[dict[str, Any]]:
    """:func:`seed_metrics` over ``seeds``.

    Args:
      design: the :class:`~kdtheory.experiments.design.Design`.
      seeds: the seeds.
      say: optional progress callback (one line per seed).
      gradients: as :func:`seed_metrics`.

    Returns:
      One dict per seed.
    """
    out = []
    for s in seeds:
        rec = seed_metrics(design, s, gradients=gradients)
        if say is not None:
            say(
                f"{design.label} seed {s}: teacher stop {rec['teacher_stop']} test {rec['teacher_test']:.3f} "
                f"(train {rec['teacher_train_agree']:.3f}), replica {rec['acc_replica']:.3f}, student "
                f"{rec['acc_student']:.3f}, twin {rec['acc_twin']:.3f}"
            )
        out.append(rec)
    return out


class Block(NamedTuple):
    """The runs of one design at one τ: a block of the evidence table.

    Attributes:
      regime: ``"paper"``, ``"compression"`` or ``"noisy-labels"``.
      design: the :class:`~kdtheory.experiments.design.Design` (its ``temperature`` is the block's τ).
      rows: per-seed :func:`seed_metrics`.
      o2: whether the late switch was trained (O2 is decided on this block).
      t2: whether the T2 gradient statistics were computed (T2 is decided on this block).
      axis: the confounder-map axis this block varies (``None``: a headline block).
      value: the value of ``axis`` in this block.
    """

    regime: str
    design: Design
    rows: list[dict[str, Any]]
    o2: bool
    t2: bool
    axis: str | None = None
    value: Any = None


MAP_AXES = ("teacher_stop", "temperature", "label_noise", "student_t")


def _t2_defined(design: Design) -> bool:
    # the expected label differs from the one-hot label only with label noise or a posterior (the mixture)
    return design.temperature == 1.0 and (design.label_noise > 0 or design.dataset == "mixture")


def blocks(suite: Suite, say: Callable[[str], None] | None = None, *, map_cells: bool = True) -> list[Block]:
    """Every block of the suite: ``paper`` (each τ), ``compression`` (each τ), ``noisy-labels``, the map.

    The runs are cached, so O1, O2 and T2 calling this with one suite train each run once.

    Args:
      suite: the :class:`~kdtheory.experiments.design.Suite`.
      say: optional progress callback.
      map_cells: include the confounder map's cells (``noisy-labels`` bases, ``map_seeds`` seeds).

    Returns:
      The blocks, headline first.
    """
    import dataclasses

    out: list[Block] = []
    s0 = suite.first_seed
    for regime, bases, temps, n in (
        ("paper", suite.paper, suite.temperatures, suite.paper_seeds),
        ("compression", suite.compression, suite.compression_temperatures, suite.compression_seeds),
    ):
        for base in bases:
            ds = [dataclasses.replace(base, regime=regime, temperature=tau, reverse=False,
                                      switch_fractions=(O2_FRACTION,) if tau in suite.o2_temperatures else ())
                  for tau in temps]  # fmt: skip
            for s in range(s0, s0 + n):  # every τ's runs of a seed in one batch per phase
                if say is not None:
                    say(f"{regime} {base.dataset}: training seed {s} (τ = {', '.join(f'{t:g}' for t in temps)})")
                fetch_many(s, [(d, name) for d in ds for name in run_names(d)])
            for d in ds:
                t2 = _t2_defined(d)
                out.append(Block(regime, d, collect(d, range(s0, s0 + n), say, gradients=t2), bool(d.switch_fractions),
                                 t2))  # fmt: skip
    for d in suite.designs:
        d = dataclasses.replace(d, regime="noisy-labels")
        t2 = _t2_defined(d)  # η = 0 off the mixture: q − Y = 0, no ratio to take
        out.append(Block("noisy-labels", d, collect(d, range(s0, s0 + suite.seeds), say, gradients=t2),
                         bool(d.switch_fractions), t2))  # fmt: skip
    if not map_cells:
        return out
    # axis -> its values: stop rules (str | int), temperatures, noise rates, budget fractions (float)
    values: dict[str, tuple[Any, ...]] = dict(zip(
        MAP_AXES, (suite.map_stop, suite.map_temperature, suite.map_noise, suite.map_budget), strict=True
    ))  # fmt: skip
    for base in suite.designs:
        if base.dataset not in suite.map_datasets:
            continue
        base = dataclasses.replace(base, regime="noisy-labels", switch_fractions=(O2_FRACTION,), reverse=False)
        for axis, vals in values.items():
            for value in vals:
                v: Any = max(1, int(round(value * base.student_t))) if axis == "student_t" else value
                d = dataclasses.replace(base, **{axis: v})
                rows = collect(d, range(s0, s0 + suite.map_seeds), say)
                out.append(Block("noisy-labels", d, rows, True, False, axis, v))
    return out
