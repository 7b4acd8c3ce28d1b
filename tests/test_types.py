"""The type checker: mypy, strict, on the modules listed in pyproject.toml (``[tool.mypy] files``).

mypy is in the ``test`` extra, so the README's test command runs it (CI fails on a type error); an
environment installed without it skips the check and says so. Extend the list in pyproject.toml module by module.
"""

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]


def test_the_checked_list_names_existing_package_modules():
    files = CONFIG["files"]
    assert files, "[tool.mypy] files must list the checked modules"
    missing = [f for f in files if not (ROOT / f).is_file() or not f.startswith("kdtheory/")]
    assert not missing, f"[tool.mypy] files lists what is not a package module: {missing}"
    assert CONFIG["strict"] is True
    for module in ("kdtheory/eigen.py", "kdtheory/spectrum.py", "kdtheory/filters.py", "kdtheory/_filter_numerics.py"):
        assert module in files


@pytest.mark.slow
def test_listed_modules_pass_strict_type_checking():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed; it is in the 'test' extra: pip install -e '.[test]'")
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
