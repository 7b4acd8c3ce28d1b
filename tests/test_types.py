"""The type checker: mypy, strict, on the whole package (pyproject.toml ``[tool.mypy] files = ["kdtheory"]``).

mypy is in the ``test`` extra, so the README's test command runs it (CI fails on a type error); an
environment installed without it skips the check and says so.
"""

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]


def test_the_whole_package_is_checked_strictly():
    assert CONFIG["files"] == ["kdtheory"], "[tool.mypy] files must be the whole package"
    assert CONFIG["strict"] is True
    assert not any("ignore_errors" in o for o in CONFIG.get("overrides", [])), "no module may be exempted"


@pytest.mark.slow
def test_listed_modules_pass_strict_type_checking():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed; it is in the 'test' extra: pip install -e '.[test]'")
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
