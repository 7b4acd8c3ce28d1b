"""kdtheory.eigen split into modules with one job each: the entry point keeps every name, private
names stay home, and bad input (ragged nested lists, wrong dimensions) gets a one-line error naming
the argument at every public entry point of kdtheory.spectrum and kdtheory.filters."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kdtheory import _checks, _filter_numerics, eigen, exaggeration, filters, noise, planted, ridge_family, spectrum
from kdtheory.eigen import (
    Filter,
    Recipe,
    Spectrum,
    flow_filter,
    gd_filter,
    loss_divisor,
    max_learning_rate,
    momentum_filter,
    ridge_filter,
)

ROOT = Path(__file__).resolve().parents[1]

# what kdtheory.eigen exported before the split (0.2.0), and where each name lives now
BEFORE_SPLIT = {
    "Spectrum": spectrum,
    "Filter": filters,
    "Recipe": filters,
    "GRADIENT_FLOW": filters,
    "flow_filter": filters,
    "gd_filter": filters,
    "momentum_filter": filters,
    "ridge_filter": filters,
    "max_learning_rate": filters,
    "Method": filters,
    "Normalization": filters,
    "NORMALIZATIONS": filters,
    "loss_divisor": filters,
}


@pytest.mark.parametrize("name", sorted(BEFORE_SPLIT))
def test_eigen_reexports_each_name_as_the_same_object(name):
    home = BEFORE_SPLIT[name]
    assert name in eigen.__all__ and name in home.__all__
    assert getattr(eigen, name) is getattr(home, name)


def test_eigen_exports_nothing_else_and_classes_name_their_home():
    assert sorted(eigen.__all__) == sorted(BEFORE_SPLIT)
    assert Spectrum.__module__ == "kdtheory.spectrum"
    assert Filter.__module__ == Recipe.__module__ == flow_filter.__module__ == "kdtheory.filters"


def test_split_modules_import_numpy_scipy_only():
    code = (
        "import sys, kdtheory.spectrum, kdtheory.filters, kdtheory._filter_numerics;"
        "heavy = [m for m in ('jax', 'matplotlib', 'sympy', 'hypothesis', 'sklearn') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------------- private names stay home
HOMES = {
    "eigen": "kdtheory/eigen.py",
    "spectrum": "kdtheory/spectrum.py",
    "filters": "kdtheory/filters.py",
    "_filter_numerics": "kdtheory/_filter_numerics.py",
    "_checks": "kdtheory/_checks.py",
}
PRIVATE_METHODS = {"_finish": "kdtheory/spectrum.py", "_lam": "kdtheory/filters.py"}
KNOWN: set[tuple[str, str]] = set()


def _crossings(path: Path, rel: str):
    tree = ast.parse(path.read_text(), filename=rel)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            short = node.module.removeprefix("kdtheory.")
            if short in HOMES and HOMES[short] != rel:
                yield from ((rel, a.name) for a in node.names if a.name.startswith("_") and a.name != "__version__")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value.id if isinstance(node.value, ast.Name) else None
            if base in HOMES and HOMES[base] != rel:
                yield rel, node.attr
            elif node.attr in PRIVATE_METHODS and PRIVATE_METHODS[node.attr] != rel and base not in ("self", "cls"):
                if node.attr == "_finish" and base is None:
                    continue  # krylov's own _finish function is not Spectrum._finish
                yield rel, node.attr


def test_no_private_name_of_the_eigen_modules_crosses_a_module():
    found = set()
    for folder in ("kdtheory", "tests", "notebooks", "derivations", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            found |= set(_crossings(path, rel))
    assert found <= KNOWN, f"private names used outside their module: {sorted(found - KNOWN)}"


# ---------------------------------------------------------------------- bad input, named
RAGGED = [[1.0, 0.0], [0.0]]
SPEC = Spectrum.from_kernel(np.array([[2.0, 1.0], [1.0, 2.0]]))
F2 = Filter(np.ones(2), np.ones(2))


def _one_line(excinfo) -> None:
    assert "\n" not in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        # issue 19 row 11: a ragged nested list named K, not numpy's "inhomogeneous shape"
        (lambda: Spectrum.from_kernel(RAGGED), ValueError, r"^K must be a rectangular array"),
        (lambda: Spectrum.from_kernel(np.ones((2, 2, 2))), ValueError, r"^K must be 2-D, got shape \(2, 2, 2\)"),
        (lambda: Spectrum.from_kernel([[1.0, "a"], ["a", 1.0]]), TypeError, r"^K must hold real numbers"),
        (lambda: Spectrum.from_features(RAGGED), ValueError, r"^X must be a rectangular array"),
        (lambda: Spectrum.from_features(np.ones((2, 2, 1))), ValueError, r"^X must be 2-D"),
        (lambda: SPEC.project(RAGGED), ValueError, r"^y must be a rectangular array"),
        (lambda: SPEC.project(np.ones((2, 1, 1))), ValueError, r"^y must be 1-D or 2-D"),
        (lambda: SPEC.project(RAGGED, name="targets"), ValueError, r"^targets must be a rectangular array"),
        (lambda: SPEC.reconstruct(RAGGED), ValueError, r"^z must be a rectangular array"),
        (lambda: SPEC.reconstruct(np.ones(3)), ValueError, r"^z has 3 rows but the spectrum has 2 modes"),
        (lambda: SPEC.complement(RAGGED), ValueError, r"^y must be a rectangular array"),
        (lambda: SPEC.check_labels(np.ones(3), name="init"), ValueError, r"^init has 3 rows but the spectrum has n=2"),
        (lambda: Filter(RAGGED, np.ones(2)), ValueError, r"^a must be a rectangular array of real numbers"),
        (lambda: Filter(np.ones(2), RAGGED), ValueError, r"^a_over_eval must be a rectangular array"),
        (lambda: Filter(np.ones(2), ["x", "y"]), ValueError, r"^a_over_eval must be a rectangular array"),
        (lambda: Filter(np.ones(2), np.ones(3)), ValueError, r"^a and a_over_eval must share a shape"),
        (lambda: Filter.zero(2.5), ValueError, r"^m must be a whole number of modes"),
        (lambda: Filter.zero(-1), ValueError, r"^m must be a whole number of modes"),
        (lambda: Filter.labels(RAGGED), ValueError, r"^evals must be a rectangular array"),
        (lambda: Filter.labels(np.ones((2, 2))), ValueError, r"^evals must be 0-D or 1-D"),
        (lambda: Filter.stack([]), ValueError, r"^filters must hold at least one Filter"),
        (lambda: Filter.stack([F2, Filter.zero(3)]), ValueError, r"^filters must share one shape"),
        (lambda: Filter.stack([F2, np.ones(2)]), TypeError, r"^filters must hold Filter values"),
        (lambda: Recipe().filter(RAGGED, 1.0), ValueError, r"^evals must be a rectangular array"),
        (lambda: Recipe().filter([1.0, 0.5], RAGGED), ValueError, r"^t must be a rectangular array"),
        (lambda: Recipe("ridge").filter([1.0], RAGGED), ValueError, r"^ridge must be a rectangular array"),
        (lambda: Recipe().log_remaining([1.0], RAGGED), ValueError, r"^t must be a rectangular array"),
        (lambda: flow_filter(RAGGED, 1.0), ValueError, r"^evals must be a rectangular array"),
        (lambda: flow_filter([1.0], RAGGED), ValueError, r"^t must be a rectangular array"),
        (lambda: gd_filter(np.ones((2, 2)), 1, learning_rate=0.5), ValueError, r"^evals must be 0-D or 1-D"),
        (lambda: gd_filter([1.0], RAGGED, learning_rate=0.5), ValueError, r"^t must be a rectangular array"),
        (lambda: momentum_filter(RAGGED, 1, learning_rate=0.5, momentum=0.5), ValueError, r"^evals must be a rect"),
        (lambda: momentum_filter([1.0], 1, learning_rate=0.5, momentum=1.0), ValueError, r"^momentum must lie in"),
        (lambda: ridge_filter([1.0], RAGGED), ValueError, r"^ridge must be a rectangular array"),
        (lambda: ridge_filter(RAGGED, 1.0), ValueError, r"^evals must be a rectangular array"),
        (lambda: max_learning_rate(RAGGED), ValueError, r"^evals must be a rectangular array"),
        (lambda: max_learning_rate(np.ones((2, 2))), ValueError, r"^evals must be 0-D or 1-D"),
        (lambda: loss_divisor("mean", "10"), ValueError, r"^n must be a positive integer, got '10'"),
        (lambda: loss_divisor("mean", None), ValueError, r"^n must be a positive integer, got None"),
        (lambda: loss_divisor("mean", float("nan")), ValueError, r"^n must be a positive integer, got nan"),
        (lambda: loss_divisor("mean", 2.5), ValueError, r"^n must be a positive integer, got 2.5"),
        (lambda: loss_divisor("per_output", 4, [3]), ValueError, r"^outputs must be a positive integer"),
        (lambda: loss_divisor("per_output", 4, True), ValueError, r"^outputs must be a positive integer"),
        (lambda: Recipe(normalization="mean").eigenvalue_scale("4"), ValueError, r"^n must be a positive integer"),
    ],
)
def test_bad_input_names_the_argument_in_one_line(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    _one_line(info)


def test_whole_numbers_of_every_kind_are_accepted_where_counts_are_asked():
    assert loss_divisor("per_output", np.int64(4), np.float64(3.0)) == 12.0
    assert loss_divisor("mean", np.array(5)) == 5.0  # a 0-d array, as numpy reductions return
    assert Filter.zero(np.int64(3)).shape == (3,)
    assert Filter.zero(0).shape == (0,)
    assert Filter.stack(iter([F2, F2])).shape == (2, 2)  # any iterable, read once


def test_as_array_keeps_other_conversion_errors_typed():
    with pytest.raises(ValueError, match=r"^w must be a rectangular array") as info:
        _checks.as_float_array([[1.0], [2.0, 3.0]], "w")
    _one_line(info)
    with pytest.raises(TypeError, match="w must hold real numbers"):
        _checks.as_float_array([object()], "w")
    assert _checks.below_one(0.0, "beta") == 0.0
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\), got 1.0"):
        _checks.below_one(1.0, "beta")


def test_numerics_stability_bound_is_the_one_max_learning_rate_uses():
    lam = np.array([4.0, 1.0, 0.0])
    for beta in (0.0, 0.5, 0.9):
        eta = max_learning_rate(lam, method="momentum", momentum=beta)
        assert eta * lam.max() == _filter_numerics.stability_bound(beta)
        with pytest.raises(ValueError, match="beyond stability"):
            momentum_filter(lam, 3, learning_rate=eta, momentum=beta)
        momentum_filter(lam, 3, learning_rate=np.nextafter(eta, 0), momentum=beta)  # just inside: fine


# the modules built on the spectral core validate through the same checks: a ragged list is named
FEATURES = Spectrum.from_features(np.random.default_rng(0).standard_normal((4, 3)))
KERNEL3 = Spectrum.from_kernel(np.eye(3))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: noise.gradient_statistics(RAGGED), ValueError, r"^per_example must be a rectangular"),
        (lambda: noise.two_batch_estimates(RAGGED, [1.0, 2.0], b_small=1, b_big=2), ValueError, r"^g_small must be"),
        (lambda: noise.decompose(RAGGED, np.ones((2, 2)), np.ones((2, 2))), ValueError, r"^onehot must be a rect"),
        (lambda: noise.least_squares_noise_floor(RAGGED, [1.0, 2.0]), ValueError, r"^X must be a rectangular"),
        (lambda: ridge_family.borup_filters(RAGGED, ridge=1.0, truth_weight=0.5, rounds=2), ValueError, r"^evals"),
        (lambda: ridge_family.mobahi_rounds(KERNEL3, RAGGED, epsilon=0.1, rounds=2), ValueError, r"^y must be a rect"),
        (lambda: ridge_family.das_sanghavi([1.0, 0.5], RAGGED, noise_var=0.1, ridge=1.0), ValueError, r"^theta_star"),
        (lambda: ridge_family.pareek_polynomial(RAGGED), ValueError, r"^teacher_weights must be a rectangular"),
        (lambda: ridge_family.pareek_polynomial(["a"]), TypeError, r"^teacher_weights must be a sequence of real"),
        (lambda: ridge_family.pareek_filter([1.0], ridge=1.0, teacher_weights=[[0.5]]), TypeError, r"^teacher_weig"),
        (lambda: ridge_family.pareek_weights([1.0, 0.5], ridge=1.0, target=RAGGED), ValueError, r"^target must be"),
        (
            lambda: planted.population_risk(FEATURES, np.ones(4), RAGGED, np.ones(3), Recipe().filter(FEATURES, 1.0)),
            ValueError,
            r"^theta_star must be a rectangular",
        ),
        (lambda: exaggeration.compare(KERNEL3, teacher_t=1.0, student_t=2.0, label_energy=RAGGED), ValueError, "^lab"),
        (lambda: exaggeration.informative(KERNEL3, teacher_t=RAGGED, student_t=[1.0]), ValueError, r"^teacher_t must"),
        (lambda: exaggeration.informative(KERNEL3, teacher_t=[1.0], student_t=[-1.0]), ValueError, r"^student_t must"),
    ],
)
def test_bad_input_is_named_in_the_modules_built_on_the_core(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    _one_line(info)


def test_pareek_weights_as_any_real_sequence_give_the_same_filter():
    ints = ridge_family.pareek_filter([2.0, 0.5], ridge=1.0, teacher_weights=[1, 2])
    floats = ridge_family.pareek_filter([2.0, 0.5], ridge=1.0, teacher_weights=np.array([1.0, 2.0]))
    assert np.array_equal(ints.a, floats.a) and np.array_equal(ints.a_over_eval, floats.a_over_eval)
    assert ridge_family.pareek_polynomial([]) == ridge_family.pareek_polynomial(np.zeros(0))


# ---------------------------------------------------------------------- what the annotations showed
def test_trajectory_without_an_axis_says_so():
    from kdtheory.trajectory import Trajectory

    traj = Trajectory(t=None, train=np.zeros((1, 2)), loss=np.zeros(1))
    with pytest.raises(ValueError, match="no axis: both t and ridge are None"):
        _ = traj.axis
    assert "ridge()" in repr(traj)  # the one-line repr still works, as before
    assert Trajectory(t=np.arange(3.0), train=np.zeros((3, 2)), loss=np.zeros(3)).axis.shape == (3,)


def test_filters_scale_by_real_scalars_only():
    assert np.array_equal((np.float64(2.0) * F2).a, 2 * F2.a) and np.array_equal((F2 * 2).a_over_eval, 2 * F2.a)
    for bad in (1j, np.complex128(1.0), True, np.ones(2), float("inf"), "2"):
        with pytest.raises(TypeError):
            F2 * bad


def test_scalars_are_real_numbers_not_strings():
    with pytest.raises(TypeError, match=r"^learning_rate must be a real number, got '1.5'"):
        Recipe(learning_rate="1.5")
    with pytest.raises(TypeError, match=r"^momentum must be a real number"):
        Recipe("momentum", momentum=0.5 + 0j)
    assert Recipe(learning_rate=np.float32(0.5)).learning_rate == 0.5


def test_label_strategy_names_a_bad_outputs():
    from hypothesis import find

    from kdtheory.testing import labels

    with pytest.raises(ValueError, match="outputs must be None, a positive integer or 'any', got 'bogus'"):
        find(labels(3, outputs="bogus"), lambda y: True)
    assert find(labels(3, outputs=2, one_hot=True), lambda y: True).shape == (3, 2)
