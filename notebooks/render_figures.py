"""Execute the tutorial notebooks and write the README figure of each to ``notebooks/figures/``.

Usage (from the repository root, with the ``test`` extra installed)::

    python notebooks/render_figures.py            # all notebooks
    python notebooks/render_figures.py 02         # those whose file name starts with 02

The notebooks are plain-text (jupytext percent format, ``NN_name.py``); this converts each with
jupytext, runs it in a fresh IPython kernel of this interpreter with nbclient (the same way
``tests/test_notebooks.py`` does), and saves the PNG shown by the cell tagged ``readme-figure``
as ``figures/NN_name.png``. Outputs are never written back into the notebooks.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIGURE_TAG = "readme-figure"


def notebooks() -> list[Path]:
    """The tutorial notebooks, in order (``NN_*.py`` in this folder)."""
    return sorted(HERE.glob("[0-9][0-9]_*.py"))


def execute(path: Path, *, timeout: int = 300, prelude: str | None = None):
    """Run one notebook top to bottom in a fresh kernel; raises on the first cell that raises.

    The kernel is an IPython kernel of *this* interpreter (``sys.executable``), from a kernel spec
    written for the run — not whatever ``python3`` kernel spec the user's Jupyter finds first
    (a user-level one from another environment would shadow the virtual environment's).

    Args:
      path: the jupytext notebook.
      timeout: seconds allowed per cell.
      prelude: code run in the kernel before the notebook's first cell (not kept in the result).

    Returns:
      The executed ``nbformat`` notebook (outputs filled in) and the wall-clock seconds it took.
    """
    import jupytext
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    if prelude is not None:
        nb.cells.insert(0, nbformat.v4.new_code_cell(prelude))
    with tempfile.TemporaryDirectory() as specs:
        here = Path(specs) / "this-python"
        here.mkdir()
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (here / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "this Python", "language": "python"})
        )
        km = AsyncKernelManager(kernel_name=here.name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[specs]))
        client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        # the kernel draws inline whatever backend the caller's environment names (CI sets MPLBACKEND=Agg)
        # cleanup_kc: shut the kernel down and close its channels although the client did not create km
        client.execute(cleanup_kc=True, env={**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
        seconds = time.perf_counter() - start
    if prelude is not None:
        nb.cells.pop(0)
    return nb, seconds


def images(nb, *, tag: str | None = None) -> list[bytes]:
    """The PNG images a notebook's cells displayed (only cells tagged ``tag`` when given)."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code" or (tag is not None and tag not in cell.metadata.get("tags", [])):
            continue
        for o in cell.get("outputs", []):
            png = o.get("data", {}).get("image/png")
            if png:
                out.append(base64.b64decode(png))
    return out


def main(prefixes: list[str]) -> None:
    """Execute the selected notebooks and write their tagged figure."""
    (HERE / "figures").mkdir(exist_ok=True)
    for path in notebooks():
        if prefixes and not any(path.name.startswith(p) for p in prefixes):
            continue
        nb, seconds = execute(path)
        tagged = images(nb, tag=FIGURE_TAG)
        if len(tagged) != 1:
            raise SystemExit(f"{path.name}: expected one PNG from the cell tagged {FIGURE_TAG!r}, got {len(tagged)}")
        target = HERE / "figures" / f"{path.stem}.png"
        target.write_bytes(tagged[0])
        print(f"{path.name}: {seconds:.1f} s, wrote {target.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main(sys.argv[1:])
