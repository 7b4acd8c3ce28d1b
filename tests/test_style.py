"""House style, enforced: ruff (its pydocstyle rules, Google convention, on the package; see
pyproject.toml) and an ``Args:`` entry for every argument of every public function and method of ``kdtheory``.

Where an entry would be a copy, the argument may be documented in one other place:

* a ``__call__`` by its class: an argument of ``__call__`` that its own ``Args:`` lacks counts as
  documented when the class docstring lists it under ``Args:`` or ``Attributes:`` (a call that
  overrides an attribute of the same name, e.g. ``Loss.__call__(..., temperature=)``);
* by a pointer, a docstring line ``Args: see :class:`~module.Name``` (or ``:func:``, ``:meth:``,
  ``:obj:``): the arguments are those documented by the target (its ``Args:``, for a class also
  its ``Attributes:`` and its ``__call__``'s ``Args:``). One hop: the target must document them
  itself, and a pointer that does not resolve is an error. This is how every experiment's
  ``measure(cfg, say)`` points to :class:`kdtheory.experiments.harness.Measure`. (``Args: see``
  on one line is deliberately not a pydocstyle section, so ruff's D417 does not ask for entries.)
"""

import ast
import importlib
import inspect
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kdtheory

ROOT = Path(__file__).resolve().parents[1]

POINTER = re.compile(r"^\s*Args: see :(?:class|func|meth|obj):`~?([\w.]+)`", re.M)


def _ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed: it is part of the test extra (pip install -e '.[test]')")
    return [exe]


def test_ruff_lint_and_docstrings():
    base = _ruff() + ["check", "--no-cache", "--output-format", "concise"]
    out = subprocess.run(base + ["."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _public_callables():
    """``(qualified name, function, owning class or None)`` for every public function and method."""
    for info in pkgutil.walk_packages(kdtheory.__path__, "kdtheory."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        mod = importlib.import_module(info.name)
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name)
            if getattr(obj, "__module__", None) != mod.__name__:
                continue  # re-exported: checked where it is defined
            if inspect.isfunction(obj):
                yield f"{mod.__name__}.{name}", obj, None
            elif inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith("_") and attr != "__call__":
                        continue
                    fn = value.__func__ if isinstance(value, classmethod | staticmethod) else value
                    if inspect.isfunction(fn):
                        yield f"{mod.__name__}.{name}.{attr}", fn, obj


def _entries(doc: str, *headers: str) -> str:
    """The text after the first of ``headers`` found in ``doc`` (to its end), or ``""``.

    As lenient as the rule has always been: an entry is any indented ``name ...:`` line after the header.
    """
    for header in headers:
        if re.search(rf"^\s*{header}:\s*$", doc, re.M):
            return re.split(rf"^\s*{header}:\s*$", doc, maxsplit=1, flags=re.M)[1]
    return ""


def _documents(text: str, param: str) -> bool:
    return re.search(rf"^\s+\*{{0,2}}{re.escape(param)}\b.*:", text, re.M) is not None


def _resolve(target: str):
    """The object a dotted name points to: the longest importable module prefix, then attributes."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
        return obj
    return None


def _target_docs(obj) -> str:
    """The argument documentation a pointer's target offers (its own text only: one hop)."""
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj):
        text = _entries(doc, "Args") + "\n" + _entries(doc, "Attributes")
        call = vars(obj).get("__call__")
        if inspect.isfunction(call):
            text += "\n" + _entries(inspect.getdoc(call) or "", "Args")
        return text
    return _entries(doc, "Args")


def undocumented(fn, owner=None) -> list[str]:
    """The arguments of ``fn`` (a method of ``owner`` when given) that no allowed place documents.

    Raises:
      AssertionError: a pointer whose target does not resolve.
    """
    params = [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]
    doc = inspect.getdoc(fn) or ""
    text = _entries(doc, "Args")
    if owner is not None and fn.__name__ == "__call__":
        cls_doc = inspect.getdoc(owner) or ""
        text += "\n" + _entries(cls_doc, "Args") + "\n" + _entries(cls_doc, "Attributes")
    for target in POINTER.findall(doc):
        obj = _resolve(target)
        assert obj is not None, f"{fn.__qualname__}: 'Args: see' points to {target!r}, which does not resolve"
        text += "\n" + _target_docs(obj)
    return [p for p in params if not _documents(text, p)]


def test_every_public_argument_is_documented():
    missing = []
    for qualname, fn, owner in _public_callables():
        gaps = undocumented(fn, owner)
        if gaps:
            missing.append(f"{qualname}: {', '.join(gaps)}")
    assert not missing, "public arguments without an Args: entry:\n" + "\n".join(missing)


# ---------------------------------------------------------------------- the checker itself
def _missing_entry(x, y):
    """Add.

    Args:
      x: the first.

    Returns:
      The sum.
    """
    return x + y


def _documented(x, *, y=1, **options):
    """Add.

    Args:
      x: the first.
      y: the second.
      **options: ignored.
    """
    return x + y


def _no_docstring(x):
    return x


def _points_to_measure(cfg, say):
    """Measure.

    Args: see :class:`~kdtheory.experiments.harness.Measure`.
    """


def _points_but_extra(cfg, say, extra):
    """Measure, with an argument the target does not document.

    Args: see :class:`~kdtheory.experiments.harness.Measure`.
    """


def _dangling_pointer(cfg):
    """Measure.

    Args: see :class:`~kdtheory.experiments.harness.NoSuchThing`.
    """


def _pointer_to_undocumented(x):
    """Points to a target that documents nothing.

    Args: see :func:`tests.test_style._no_docstring`.
    """


def _mentions_without_pointing(cfg, say):
    """Says cfg: and say: only in prose, before any Args section, which is not documentation.

    cfg: the configuration.
    """


class _Kernel:
    """A kernel whose call is documented by the class.

    Args:
      A: points.

    Attributes:
      scale: the scale; ``__call__`` may override it.
    """

    def __call__(self, A, scale=None):
        """The block."""

    def other(self, A):
        """Not a call: the class docstring does not count here."""


class _BadKernel:
    """A kernel whose class documents only part of its call.

    Attributes:
      scale: the scale.
    """

    def __call__(self, A, B, scale=None):
        """The block.

        Args:
          A: points.
        """


def test_checker_catches_a_missing_entry():
    assert undocumented(_missing_entry) == ["y"]
    assert undocumented(_no_docstring) == ["x"]
    assert undocumented(_mentions_without_pointing) == ["cfg", "say"]
    assert undocumented(_documented) == []


def test_checker_follows_one_pointer_and_still_catches_gaps():
    assert undocumented(_points_to_measure) == []
    assert undocumented(_points_but_extra) == ["extra"]
    assert undocumented(_pointer_to_undocumented) == ["x"]
    with pytest.raises(AssertionError, match="does not resolve"):
        undocumented(_dangling_pointer)


def test_checker_lets_a_class_document_its_call_only():
    assert undocumented(_Kernel.__call__, _Kernel) == []
    assert undocumented(_Kernel.other, _Kernel) == ["A"]  # only __call__ may lean on the class
    assert undocumented(_Kernel.__call__) == ["A", "scale"]  # without its class, nothing documents it
    assert undocumented(_BadKernel.__call__, _BadKernel) == ["B"]


MAX_PARAMETERS = 12


def _parameter_counts() -> list[tuple[int, str]]:
    """Every function and method defined in the package (private ones too), with its parameter count."""
    import ast

    out = []
    for path in sorted((ROOT / "kdtheory").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                a = node.args
                names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
                count = len(names) + (a.vararg is not None) + (a.kwarg is not None)
                if names[:1] in (["self"], ["cls"]):
                    count -= 1
                out.append((count, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return out


def test_no_function_takes_more_than_twelve_parameters():
    """Options travel as small values (Recipe, Run, TestPoints, Lanczos, Options), not long argument lists."""
    counts = _parameter_counts()
    assert len(counts) > 300  # the walk sees the package
    too_many = [f"{where} ({n})" for n, where in counts if n > MAX_PARAMETERS]
    assert not too_many, f"functions with more than {MAX_PARAMETERS} parameters: {too_many}"


# ---------------------------------------------------------------------- tests mirror modules
#: modules of the subpackages whose tests live in another file than ``tests/test_<package>_<m>.py``;
#: that file must import the module or its package (tests/README.md says why each is there).
ELSEWHERE = {
    "confidence.analyses": "test_confidence.py",
    "confidence.inputs": "test_confidence.py",
    "confidence.report": "test_confidence.py",
    "experiments.eigen_dynamics": "test_pipeline.py",
    "experiments.gradient_denoising": "test_experiments_effects.py",
    "experiments.late_distillation": "test_experiments_effects.py",
    "experiments.repeated_self_distillation": "test_pipeline.py",
}


def untested_modules(package: Path, tests: Path, elsewhere: dict[str, str] | None = None) -> list[str]:
    """The public modules of ``package`` without a test file of their own that imports them.

    A top-level module ``<m>.py`` needs ``tests/test_<m>.py``; a module ``<sub>/<m>.py`` of a public
    subpackage needs ``tests/test_<sub>_<m>.py``, or an entry ``"<sub>.<m>": file`` in ``elsewhere``
    naming a file that imports the module or its subpackage. An entry whose module has a file of its
    own, or no longer exists, is reported too (``"<sub>.<m> (stale entry)"``), so the list stays true.
    Private modules (``_<m>.py``) are tested through the public modules that use them (the table in
    tests/README.md).
    """
    elsewhere = dict(elsewhere or {})
    modules = [(p.stem, f"test_{p.stem}.py") for p in sorted(package.glob("*.py"))]
    for sub in sorted(d for d in package.iterdir() if (d / "__init__.py").is_file() and not d.name.startswith("_")):
        modules += [(f"{sub.name}.{p.stem}", f"test_{sub.name}_{p.stem}.py") for p in sorted(sub.glob("*.py"))]
    missing = []
    for name, file in modules:
        if name.rsplit(".", 1)[-1].startswith("_"):
            continue
        own = tests / file
        if own.is_file() and name in _imported_modules(own.read_text(), package.name):
            if elsewhere.pop(name, None) is not None:
                missing.append(f"{name} (stale entry)")
            continue
        other = tests / elsewhere.pop(name, file)
        wanted = {name, name.rsplit(".", 1)[0]} if "." in name else {name}
        if not other.is_file() or not wanted & _imported_modules(other.read_text(), package.name):
            missing.append(name)
    return missing + [f"{name} (stale entry)" for name in elsewhere]


def _imported_modules(source: str, package: str) -> set[str]:
    """Modules of ``package`` that ``source`` imports, dotted below the package (``"experiments.arms"``)
    with every parent (``"experiments"``), by any spelling of the import."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            parts = n.split(".")
            if parts[0] == package:
                found |= {".".join(parts[1:i]) for i in range(2, len(parts) + 1)}
    return found


def test_every_public_module_has_a_test_file_of_its_own():
    missing = untested_modules(ROOT / "kdtheory", ROOT / "tests", ELSEWHERE)
    assert not missing, "public modules without a tests/test_<m>.py that imports them: " + ", ".join(missing)


def test_mirror_checker_catches_a_missing_or_unrelated_test_file(tmp_path):
    pkg, tests = tmp_path / "pkg", tmp_path / "tests"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "_private").mkdir()
    tests.mkdir()
    for m in ("__init__", "_private", "alpha", "beta", "gamma", "delta"):
        (pkg / f"{m}.py").write_text("")
    for m in ("__init__", "_hidden", "one", "two", "three"):
        (pkg / "sub" / f"{m}.py").write_text("")
    (pkg / "_private" / "__init__.py").write_text("")
    (pkg / "_private" / "inner.py").write_text("")  # a private subpackage: not checked
    (tests / "test_alpha.py").write_text("from pkg import alpha\n")
    (tests / "test_beta.py").write_text("from pkg.beta import thing\n")
    (tests / "test_gamma.py").write_text("import pkg.alpha\n")  # a file of the name, about another module
    (tests / "test_sub_one.py").write_text("from pkg.sub import one\n")
    (tests / "test_sub.py").write_text("from pkg.sub.two import x\n")
    (tests / "test_other.py").write_text("import pkg.alpha\n")
    assert untested_modules(pkg, tests) == ["delta", "gamma", "sub.three", "sub.two"]
    elsewhere = {"sub.two": "test_sub.py", "sub.three": "test_other.py", "sub.one": "test_sub.py"}
    elsewhere["sub.gone"] = "test_sub.py"
    assert untested_modules(pkg, tests, elsewhere) == [
        "delta", "gamma", "sub.one (stale entry)", "sub.three", "sub.gone (stale entry)",
    ]  # fmt: skip
    (tests / "test_gamma.py").write_text("import pkg.gamma as g\n")
    (tests / "test_delta.py").write_text("from pkg import (\n    alpha,\n    delta,\n)\n")
    (tests / "test_other.py").write_text("from pkg import sub\n")  # the subpackage counts for its modules
    assert untested_modules(pkg, tests, {"sub.two": "test_sub.py", "sub.three": "test_other.py"}) == []
