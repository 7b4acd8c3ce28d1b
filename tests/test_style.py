"""House style, enforced: ruff (its pydocstyle rules, Google convention, on the package; see
pyproject.toml) and an ``Args:`` entry for every argument of every public function and method of ``kdtheory``."""

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
    for info in pkgutil.walk_packages(kdtheory.__path__, "kdtheory."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        mod = importlib.import_module(info.name)
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name)
            if getattr(obj, "__module__", None) != mod.__name__:
                continue  # re-exported: checked where it is defined
            if inspect.isfunction(obj):
                yield f"{mod.__name__}.{name}", obj
            elif inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith("_") and attr != "__call__":
                        continue
                    fn = value.__func__ if isinstance(value, classmethod | staticmethod) else value
                    if inspect.isfunction(fn):
                        yield f"{mod.__name__}.{name}.{attr}", fn


def test_every_public_argument_is_documented():
    missing = []
    for qualname, fn in _public_callables():
        params = [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]
        if not params:
            continue
        doc = inspect.getdoc(fn) or ""
        args = doc.split("Args:", 1)[1] if "Args:" in doc else ""
        undocumented = [p for p in params if not re.search(rf"^\s+\*{{0,2}}{re.escape(p)}\b.*:", args, re.M)]
        if undocumented:
            missing.append(f"{qualname}: {', '.join(undocumented)}")
    assert not missing, "public arguments without an Args: entry:\n" + "\n".join(missing)
