"""The tutorial notebooks run top to bottom, warn nothing, and show their figures.

Each ``notebooks/NN_*.py`` (jupytext percent format) is converted with jupytext and executed in a
fresh IPython kernel of the test's own interpreter by nbclient, through the same ``execute`` that
``notebooks/render_figures.py`` uses to render the README figures. A cell that raises fails the
test; so does a warning raised by the notebook's code (a first cell turns warnings into errors in
the kernel, as ``filterwarnings = error`` does for the test suite). Each notebook must display at
least one figure, and exactly one from the cell tagged ``readme-figure``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _render_module():
    spec = importlib.util.spec_from_file_location("render_figures", NOTEBOOKS / "render_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _render_module()
# Warnings are errors in the kernel, as in the test suite; one narrow exception: ipykernel 7 warns
# (PendingDeprecationWarning) about its own do_shutdown when the kernel stops — not our code.
WARNINGS_ARE_ERRORS = """\
import warnings
warnings.simplefilter("error")
warnings.filterwarnings("ignore", "For consistency across implementations", PendingDeprecationWarning)
"""


def test_the_three_tutorials_are_there():
    assert [p.name[:3] for p in render.notebooks()] == ["01_", "02_", "03_"]


@pytest.mark.slow
@pytest.mark.parametrize("path", render.notebooks(), ids=lambda p: p.stem)
def test_notebook_runs(path):
    nb, seconds = render.execute(path, prelude=WARNINGS_ARE_ERRORS)
    print(f"{path.name}: {seconds:.1f} s wall clock", file=sys.stderr)
    assert render.images(nb), f"{path.name} displays no figure"
    assert len(render.images(nb, tag=render.FIGURE_TAG)) == 1, f"{path.name}: one PNG from the {render.FIGURE_TAG} cell"
