"""kdtheory.eigen, the entry point of the spectral core split into modules with one job each: it
keeps every name (the same objects as kdtheory.spectrum and kdtheory.filters), the split modules
import numpy and scipy only, and private names stay home. The tests of the names themselves are in
tests/test_spectrum.py and tests/test_filters.py."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from kdtheory import eigen, filters, spectrum
from kdtheory.eigen import (
    Filter,
    Recipe,
    Spectrum,
    flow_filter,
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
