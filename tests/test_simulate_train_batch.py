"""kdtheory.simulate.train_batch: a batch of runs equals the same runs one at a time."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdtheory import schedules
from kdtheory.simulate import Loss, Model, Optimizer, Run, kernel_model, linear_model, mlp, train_batch, train_model
from kdtheory.testing import assert_close

F64 = jnp.float64
MODEL = mlp([5, 12, 3], activation="tanh")
T = [0, 2, 9, 24]


def _data(seed=0, n=21):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5)) * np.linspace(1.5, 0.5, 5)
    Y = np.eye(3)[rng.integers(0, 3, n)]
    return X, Y, rng


SCHEDULES = [
    schedules.constant(),
    schedules.cosine(20, final=0.1),
    schedules.step([3, 15], [1.0, 0.4, 0.05]),
    schedules.warmup_cosine(4, 24, initial=0.2),
]


@st.composite
def _run(draw):
    w = draw(st.sampled_from([0.0, 0.5, 1.0]))
    switch = draw(st.one_of(st.none(), st.integers(0, 30)))
    sched = {} if switch is None else dict(teacher_weight_after=1.0 - w, switch_t=switch)
    return Run(
        init_seed=draw(st.integers(0, 2**31 - 1)),
        order_seed=draw(st.one_of(st.none(), st.integers(0, 2**31 - 1))),
        loss=Loss("ce", normalization="mean", teacher_weight=w, temperature=draw(st.floats(0.5, 6.0)), **sched),
        optimizer=Optimizer(
            learning_rate=draw(st.floats(0.01, 1.0)),
            momentum=draw(st.sampled_from([0.0, 0.5, 0.9])),
            batch_size=6,
            schedule=draw(st.sampled_from(SCHEDULES)),
        ),
        teacher=draw(st.integers(0, 3)),  # replaced by a teacher array below
    )


def _with_teachers(runs, rng_seed, shape):
    rng = np.random.default_rng(rng_seed)
    return [Run(**{**r.__dict__, "teacher": rng.standard_normal(shape) * (1 + r.teacher)}) for r in runs]


@pytest.mark.slow
@settings(max_examples=25)
@given(st.lists(_run(), min_size=1, max_size=5), st.integers(0, 100))
def test_batch_equals_one_at_a_time_float64(runs, seed):
    X, Y, _ = _data(seed)
    runs = _with_teachers(runs, seed, Y.shape)
    batch = train_batch(MODEL, X, Y, runs, t=T, X_test=X[:4], y_test=Y[:4], dtype=F64)
    assert len(batch) == len(runs)
    for r, b in zip(runs, batch, strict=True):
        one = Run(loss=r.loss, optimizer=r.optimizer, teacher=r.teacher, init_seed=r.init_seed)
        kw = dict(X_test=X[:4], y_test=Y[:4], dtype=F64)
        alone = train_model(MODEL, X, Y, t=T, run=one, **kw) if r.order_seed is None else \
            train_batch(MODEL, X, Y, [r], t=T, X_test=X[:4], y_test=Y[:4], dtype=F64)[0]  # fmt: skip
        for field in ("train", "test", "loss"):
            assert_close(getattr(b, field), getattr(alone, field), rtol=1e-12, atol=1e-13)
        jax.tree_util.tree_map(lambda p, q: assert_close(p, q, rtol=1e-12, atol=1e-13), b.params, alone.params)
        assert b.recipe == alone.recipe and b.solver == {"status": "ok"}
        assert np.array_equal(b.train_accuracy, alone.train_accuracy)


@pytest.mark.slow
def test_batch_equals_one_at_a_time_float32_within_its_precision():
    # float32: batching may reorder the sums of a product; the tolerance is the float32 round-off
    # of the run itself, measured as its distance to the same run in float64 (batching must not
    # cost more than working in float32 does)
    X, Y, rng = _data(1)
    runs = [
        Run(init_seed=s, loss=Loss("ce", normalization="mean", teacher_weight=0.5, temperature=2.0),
            optimizer=Optimizer(learning_rate=0.3, momentum=0.5, batch_size=6, schedule=SCHEDULES[s % 4]),
            teacher=rng.standard_normal(Y.shape))
        for s in range(6)
    ]  # fmt: skip
    batch = train_batch(MODEL, X, Y, runs, t=T)
    for r, b in zip(runs, batch, strict=True):
        one32 = train_batch(MODEL, X, Y, [r], t=T)[0]
        one64 = train_batch(MODEL, X, Y, [r], t=T, dtype=F64)[0]
        assert b.train.dtype == np.float32
        precision = np.max(np.abs(one32.train - one64.train))
        assert precision > 0
        assert np.max(np.abs(b.train - one32.train)) <= 4 * precision


def test_a_diverging_member_stays_in_its_own_run():
    X, Y, rng = _data(2)
    X = X * 30
    good = [Run(init_seed=s, loss=Loss("mse"), optimizer=Optimizer(learning_rate=1e-4)) for s in range(3)]
    bad = Run(init_seed=7, loss=Loss("mse"), optimizer=Optimizer(learning_rate=50.0))
    runs = [good[0], bad, good[1], good[2]]
    out = train_batch(MODEL, X, Y, runs, t=[0, 5, 200], dtype=F64)
    assert out[1].solver["status"] == "diverged" and out[1].solver["first_nonfinite_t"] in (5, 200)
    assert not np.all(np.isfinite(out[1].train[-1]))
    for r, o in zip(runs[::2] + [runs[3]], [out[0], out[2], out[3]], strict=True):
        alone = train_model(
            MODEL, X, Y, t=[0, 5, 200], run=Run(loss=r.loss, optimizer=r.optimizer, init_seed=r.init_seed), dtype=F64
        )
        assert o.solver == {"status": "ok"} and np.all(np.isfinite(o.train))
        assert_close(o.train, alone.train, rtol=1e-12, atol=1e-13)
    with pytest.raises(FloatingPointError, match="diverged"):
        train_model(MODEL, X, Y, t=[0, 5, 200], run=Run(loss=bad.loss, optimizer=bad.optimizer, init_seed=7), dtype=F64)


def test_one_compilation_serves_a_batch_of_different_runs():
    X, Y, rng = _data(3)
    traces = []

    def apply(p, x):
        traces.append(1)
        return MODEL.apply(p, x)

    model = Model("counted", MODEL.init, apply, 3, input_shape=(5,))
    runs = [
        Run(init_seed=s, loss=Loss("ce", temperature=1 + s, teacher_weight=s / 4),
            optimizer=Optimizer(learning_rate=0.1 * (s + 1), momentum=0.2 * s, schedule=SCHEDULES[s]),
            teacher=rng.standard_normal(Y.shape))
        for s in range(4)
    ]  # fmt: skip
    train_batch(model, X, Y, runs, t=[0, 7], dtype=F64)
    first = len(traces)
    assert first > 0
    runs2 = [Run(**{**r.__dict__, "init_seed": r.init_seed + 10}) for r in runs[::-1]]
    train_batch(model, X, Y, runs2, t=[0, 7], dtype=F64)
    assert len(traces) == first  # new seeds, hyperparameters and schedules: no new trace


def test_seeds_order_seed_and_params():
    X, Y, _ = _data(4)
    opt = Optimizer(learning_rate=0.3, batch_size=5)
    a, b, c = train_batch(MODEL, X, Y, [Run(init_seed=3, optimizer=opt), Run(init_seed=3, order_seed=9, optimizer=opt),
                                        Run(init_seed=9, optimizer=opt)], t=[0, 12], dtype=F64)  # fmt: skip
    assert np.array_equal(a.train[0], b.train[0])  # same initialization
    assert not np.allclose(a.train[1], b.train[1])  # different minibatch order
    assert not np.array_equal(b.train[0], c.train[0])
    assert b.recipe["seed"] == 3 and b.recipe["order_seed"] == 9 and a.recipe["order_seed"] == 3
    # params given: init_seed does not matter, the order still comes from the seeds
    p = MODEL.init(jax.random.PRNGKey(42))
    given = [Run(init_seed=i, order_seed=5, params=p, optimizer=opt) for i in (1, 2)]
    d, e = train_batch(MODEL, X, Y, given, t=[0, 12], dtype=F64)
    assert np.array_equal(d.train, e.train)
    f = train_model(MODEL, X, Y, t=[0, 12], run=Run(optimizer=opt, params=p, init_seed=5), dtype=F64)
    assert_close(d.train, f.train, rtol=1e-12)


def test_chunks_and_progress():
    X, Y, _ = _data(5)
    runs = [Run(init_seed=s, optimizer=Optimizer(learning_rate=0.2, batch_size=7)) for s in range(5)]
    whole = train_batch(MODEL, X, Y, runs, t=T, dtype=F64)
    seen = []
    # the documented estimate per run: 8 bytes × [C·n·k + C + 3·params + n·k], params 5·12 + 12 + 12·3 + 3
    per_run = 8 * (4 * 21 * 3 + 4 + 3 * 111 + 21 * 3)
    chunked = train_batch(MODEL, X, Y, runs, t=T, dtype=F64, memory_bytes=2 * per_run + 100,
                          progress=lambda d, n: seen.append((d, n)))  # fmt: skip
    assert seen == [(2, 5), (4, 5), (5, 5)]
    # a run owns its arrays: keeping one trajectory does not keep its chunk's buffers alive
    assert all(a.base is None for a in (chunked[0].train, chunked[0].loss, chunked[0].t, chunked[0].params[0]["w"]))
    for a, b in zip(whole, chunked, strict=True):
        assert_close(a.train, b.train, rtol=1e-12, atol=1e-13)
    one = []
    train_batch(MODEL, X, Y, runs, t=T, dtype=F64, memory_bytes=1, progress=lambda d, n: one.append(d))
    assert one == [1, 2, 3, 4, 5]  # a chunk holds at least one run
    with pytest.raises(ValueError, match="memory_bytes must be a positive integer"):
        train_batch(MODEL, X, Y, runs, t=T, memory_bytes=0)


def test_kernel_and_linear_models_batch():
    X, Y, rng = _data(6)
    K = X @ X.T
    for model, inputs in ((kernel_model(21, 3), K), (linear_model(5, 3), X)):
        runs = [Run(init_seed=s, loss=Loss("mse"), optimizer=Optimizer(learning_rate=0.002 * (s + 1), batch_size=4))
                for s in range(3)]  # fmt: skip
        batch = train_batch(model, inputs, Y, runs, t=[0, 10, 30], dtype=F64)
        for r, b in zip(runs, batch, strict=True):
            alone = train_model(
                model,
                inputs,
                Y,
                t=[0, 10, 30],
                run=Run(loss=r.loss, optimizer=r.optimizer, init_seed=r.init_seed),
                dtype=F64,
            )
            assert_close(b.train, alone.train, rtol=1e-12, atol=1e-13)


def test_batches_that_cannot_be_formed_are_named():
    X, Y, _ = _data(7)
    with pytest.raises(ValueError, match=r"runs\[1\].loss.kind is 'mse' but runs\[0\].loss.kind is 'ce'"):
        train_batch(MODEL, X, Y, [Run(), Run(loss=Loss("mse"))], t=[0, 1])
    with pytest.raises(ValueError, match=r"runs\[2\].loss.normalization is 'mean'"):
        train_batch(MODEL, X, Y, [Run(), Run(), Run(loss=Loss(normalization="mean"))], t=[0, 1])
    with pytest.raises(
        ValueError, match=r"runs\[1\].optimizer.batch_size is 4 but runs\[0\].optimizer.batch_size is None"
    ):
        train_batch(MODEL, X, Y, [Run(), Run(optimizer=Optimizer(batch_size=4))], t=[0, 1])
    other = mlp([5, 7, 3], activation="tanh").init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"runs\[1\].params\[0\]\['b'\] has shape \(7,\) but .* has \(12,\)"):
        train_batch(MODEL, X, Y, [Run(), Run(params=other)], t=[0, 1])
    with pytest.raises(ValueError, match="do not have the structure"):
        train_batch(MODEL, X, Y, [Run(params={"w": np.zeros((5, 3))})], t=[0, 1])
    with pytest.raises(ValueError, match="non-empty sequence"):
        train_batch(MODEL, X, Y, [], t=[0, 1])
    with pytest.raises(ValueError, match="non-empty sequence"):
        train_batch(MODEL, X, Y, Run(), t=[0, 1])
    with pytest.raises(ValueError, match=r"runs\[1\] must be a kdtheory.simulate.Run"):
        train_batch(MODEL, X, Y, [Run(), {"init_seed": 1}], t=[0, 1])
    with pytest.raises(ValueError, match=r"runs\[1\]: a nonzero teacher weight needs teacher outputs"):
        train_batch(MODEL, X, Y, [Run(), Run(loss=Loss(teacher_weight=1.0))], t=[0, 1])
    with pytest.raises(ValueError, match=r"runs\[0\].teacher must have the shape of y"):
        train_batch(MODEL, X, Y, [Run(teacher=np.zeros((3, 3)), loss=Loss(teacher_weight=1.0))], t=[0, 1])
    with pytest.raises(ValueError, match="init_seed must be a non-negative whole number"):
        Run(init_seed=-1)
    with pytest.raises(ValueError, match="order_seed must be a non-negative whole number"):
        Run(order_seed=1.5)
    with pytest.raises(ValueError, match="loss must be a kdtheory.simulate.Loss"):
        Run(loss="ce")


def test_train_model_refuses_bad_params_and_batch_sizes():
    # issue 19 row 11
    X, Y, _ = _data(8)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 2.5"):
        Optimizer(batch_size=2.5)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        Optimizer(batch_size=0)
    assert Optimizer(batch_size=4.0).batch_size == 4
    p = MODEL.init(jax.random.PRNGKey(0))
    p[1]["w"] = np.zeros((11, 3))
    with pytest.raises(ValueError, match=r"params\[1\]\['w'\] has shape \(11, 3\) but .* has \(12, 3\)"):
        train_model(MODEL, X, Y, t=[0, 1], run=Run(params=p))
    p = MODEL.init(jax.random.PRNGKey(0))
    p[0]["b"] = np.full(12, np.nan)
    with pytest.raises(ValueError, match=r"params\[0\]\['b'\] contains NaN"):
        train_model(MODEL, X, Y, t=[0, 1], run=Run(params=p))
    with pytest.raises(ValueError, match=r"X has width 4 .* takes inputs of width 5"):
        train_model(MODEL, X[:, :4], Y, t=[0, 1])


CHILD = textwrap.dedent(
    """
    import json
    import jax
    import jax.numpy as jnp
    import numpy as np
    from kdtheory import _engine, schedules
    from kdtheory.simulate import Loss, Optimizer, Run, mlp, train_batch

    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 5))
    Y = np.eye(3)[rng.integers(0, 3, 30)]
    model = mlp([5, 16, 3], activation="tanh")
    runs = [
        Run(init_seed=s, loss=Loss("ce", normalization="mean", teacher_weight=0.5, temperature=1 + s),
            optimizer=Optimizer(learning_rate=0.1 + 0.05 * s, momentum=0.5, batch_size=6,
                                schedule=schedules.cosine(20, final=0.1 * s)),
            teacher=rng.standard_normal(Y.shape))
        for s in range(6)
    ]
    many = train_batch(model, X, Y, runs, t=[0, 3, 20], X_test=X[:5], dtype=jnp.float64)
    with jax.default_device(jax.devices()[0]):
        one_device = [train_batch(model, X, Y, [r], t=[0, 3, 20], X_test=X[:5], dtype=jnp.float64)[0] for r in runs]
    size, put, _ = _engine.placement(len(runs))
    shards = len(put(jnp.zeros((size, 2))).sharding.device_set)
    rel = max(float(np.max(np.abs(a.train - b.train)) / np.max(np.abs(b.train))) for a, b in zip(many, one_device))
    print(json.dumps({"size": size, "shards": shards, "rel": rel}))
    """
)


@pytest.mark.slow
def test_runs_sharded_over_four_host_devices_equal_one_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["JAX_ENABLE_X64"] = "1"
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["size"] == 8 and out["shards"] == 4  # 6 runs padded to 8, split over four devices
    assert out["rel"] <= 1e-12
