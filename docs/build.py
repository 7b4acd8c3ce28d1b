"""Build the kdtheory documentation site into a folder, in strict mode.

Usage (from the repository root, with the ``docs`` extra's tools installed)::

    python docs/build.py                          # -> build/docs/index.html
    python docs/build.py --out site/ --results kdtheory-out/results.json
    python docs/build.py --skip-notebooks         # quick check of the other pages

Steps, in a fresh staging folder (nothing is written into ``docs/`` or ``notebooks/``):

1. copy the hand-written pages of ``docs/`` (``index.md``, ``theory.md``, ``conf.py``);
2. write one API page per public module of ``kdtheory`` (found by walking the package, so a new
   module gets its page without an edit here);
3. execute the tutorial notebooks of ``notebooks/`` top to bottom in a fresh kernel of this
   interpreter (``notebooks/render_figures.py``'s ``execute``, the one the test suite uses) and
   store them with their outputs as ``.ipynb``;
4. write the evidence page from a ``kdtheory reproduce`` ``results.json`` (``--results``), or from
   a ``kdtheory reproduce --quick`` run into a temporary folder when none is given;
5. write the benchmarks page from the docstrings of ``benchmarks/bench_*.py`` and the README's
   "Speed and scale" section (the measured numbers);
6. ``sphinx-build -W -n --keep-going -b html``: every warning is an error and every unresolved
   reference to a kdtheory object fails (``nitpicky``; see ``docs/conf.py`` for the one exception,
   other libraries' objects).

Exit status 0 when the site was built, 1 when Sphinx failed (its warnings are printed), 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import math
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ("conf.py", "index.md", "theory.md")


def _say(msg: str) -> None:
    print(f"docs: {msg}", flush=True)


# --------------------------------------------------------------------------------------------- API


def public_modules() -> list[str]:
    """Every importable public module of the package, ``kdtheory`` first, in dotted order."""
    import kdtheory

    names = ["kdtheory"]
    for info in pkgutil.walk_packages(kdtheory.__path__, prefix="kdtheory."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        names.append(info.name)
    return sorted(names, key=lambda n: (n != "kdtheory", n.count(".") > 1, n))


# The entry-point modules document the names they re-export in full, under their own name (a user
# reads ``kdtheory.eigen.Filter``); every other module documents what it defines and links the rest.
FACADES = ("kdtheory.eigen",)


def _members(module: str) -> tuple[list[str] | None, list[tuple[str, str]]]:
    """The names a module's page documents (``None``: autodoc's default) and its re-exports."""
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    if names is None or module in FACADES:
        return names, []
    own, reexports = [], []
    for name in names:
        obj = getattr(mod, name)
        home = getattr(obj, "__module__", module)
        if home != module and (isinstance(obj, type) or inspect.isfunction(obj)) and home.startswith("kdtheory."):
            reexports.append((name, f"{home}.{getattr(obj, '__qualname__', name)}"))
        else:
            own.append(name)
    return own, reexports


def _first_sentence(module: str) -> str:
    """The first sentence of a module's docstring, as markdown (roles become code spans)."""
    doc = importlib.import_module(module).__doc__ or ""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    sentence = re.split(r"(?<=\.)(?<! al\.)(?<!e\.g\.)(?<!i\.e\.)\s", para, maxsplit=1)[0] if para else ""
    if len(sentence) > 160:
        sentence = sentence[:160].rsplit(" ", 1)[0] + " …"
    sentence = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", sentence)
    return re.sub(r"``([^`]+)``", r"`\1`", sentence)


def write_api(stage: Path) -> list[str]:
    """One page per public module under ``api/``, and ``api/index.md`` listing them."""
    api = stage / "api"
    api.mkdir()
    modules = public_modules()
    rows = []
    for mod in modules:
        own, reexports = _members(mod)
        members = "   :members:" + (" " + ", ".join(own) if own is not None else "") + "\n" if own != [] else ""
        text = f"# `{mod}`\n\n```{{eval-rst}}\n.. automodule:: {mod}\n{members}   :show-inheritance:\n```\n"
        if reexports:
            links = ", ".join(f"{{py:obj}}`{name} <{home}>`" for name, home in reexports)
            text += f"\nAlso importable from here (documented where they are defined): {links}.\n"
        (api / f"{mod}.md").write_text(text)
        summary = _first_sentence(mod).replace("|", "\\|")
        rows.append(f"| [`{mod}`]({mod}.md) | {summary} |")
    toc = "\n".join(modules)
    (api / "index.md").write_text(
        "# API reference\n\n"
        "Generated from the docstrings (Google style). `kdtheory.eigen` is the entry point: it re-exports "
        "`Spectrum`, `Filter`, `Recipe` and the filters of `kdtheory.spectrum` and `kdtheory.filters` "
        "(the same objects, documented under both names).\n\n"
        "| module | what it does |\n|---|---|\n" + "\n".join(rows) + "\n\n"
        f"```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{toc}\n```\n"
    )
    return modules


# --------------------------------------------------------------------------------------- notebooks


def _render_module():
    spec = importlib.util.spec_from_file_location("render_figures", ROOT / "notebooks" / "render_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_notebooks(stage: Path, *, skip: bool) -> list[str]:
    """Execute each tutorial and store it with its outputs as ``notebooks/NN_name.ipynb``."""
    import nbformat

    render = _render_module()
    folder = stage / "notebooks"
    folder.mkdir()
    names = []
    for path in render.notebooks():
        if skip:
            continue
        nb, seconds = render.execute(path)
        if not render.images(nb):
            raise SystemExit(f"docs: {path.name} displayed no figure")
        nbformat.write(nb, folder / f"{path.stem}.ipynb")
        names.append(path.stem)
        _say(f"executed {path.name} in {seconds:.1f} s")
    if skip:
        (folder / "index.md").write_text("# Tutorials\n\nNot built (`--skip-notebooks`).\n")
        return []
    toc = "\n".join(names)
    (folder / "index.md").write_text(
        "# Tutorials\n\nThree short notebooks, executed when this site was built (the outputs below are "
        "that run's). Their sources are plain-text notebooks (jupytext percent format) in `notebooks/`.\n\n"
        f"```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n"
    )
    return names


# ---------------------------------------------------------------------------------------- evidence


def _cell(x) -> str:
    """A markdown table cell: pipes escaped, newlines folded."""
    return str(x).replace("|", "\\|").replace("\n", " ")


def _num(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):  # results.json writes non-finite numbers as strings
        return {"inf": "∞", "-inf": "−∞", "nan": "nan"}.get(x, x)
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    if x == 0 or not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"


def _interval(effect: dict) -> str:
    lo, hi = effect.get("ci_low"), effect.get("ci_high")
    if lo is None and hi is None:
        return "—"
    return f"[{_num(lo)}, {_num(hi)}]"


def run_quick(out: Path) -> Path:
    """``kdtheory reproduce --quick`` into ``out``; the path of its ``results.json``."""
    cmd = [sys.executable, "-m", "kdtheory.cli", "reproduce", "--quick", "--out", str(out)]
    _say("no --results given: running " + " ".join(cmd[2:]))
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"docs: kdtheory reproduce --quick failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return out / "results.json"


def write_evidence(stage: Path, results: Path) -> None:
    """The evidence page: where each claim holds, every effect with its interval, the figures."""
    data = json.loads(results.read_text())
    experiments = data.get("experiments")
    if not isinstance(experiments, dict) or not experiments:
        raise SystemExit(f"docs: {results} has no experiments (is it a kdtheory results.json?)")
    figures = stage / "evidence"
    figures.mkdir()
    versions = data.get("versions") or {}
    git = versions.get("git") or {}
    lines = ["# Evidence", ""]
    lines += [
        "What `kdtheory reproduce` measured, generated from its `results.json` when this site was built. "
        "Every claim of the paper is measured against a paired control over seeds with a 95% interval; the "
        "rule each verdict applies is fixed in the experiment module's docstring (see the API pages under "
        "`kdtheory.experiments`) and stated in each row. The design is [§8 of the theory](theory.md#theory-s8) "
        "and [§11](theory.md#theory-s11).",
        "",
    ]
    size = data.get("size", "?")
    meta = f"Run of {data.get('created', '?')}, size **{size}**, {_num(data.get('seconds'))} s"
    if versions:
        meta += f", kdtheory {versions.get('kdtheory', '?')}, Python {versions.get('python', '?')}"
    if git.get("commit"):
        meta += f", git commit `{str(git['commit'])[:12]}`" + (" (uncommitted changes)" if git.get("dirty") else "")
    lines += [meta + ".", ""]
    if size == "quick":
        lines += [
            ":::{note}\nThis page was built from a **quick** run: a smoke run of the pipeline, too small to "
            "decide anything, so it shows no verdicts. Build with `--results` pointing at a full run's "
            "`results.json` for the evidence.\n:::",
            "",
        ]
    if data.get("overrides") or data.get("registered") is False:
        lines += [
            ":::{warning}\nThis run used configuration overrides "
            f"(`{_cell(json.dumps(data.get('overrides')))}`): it is not the registered evidence.\n:::",
            "",
        ]

    def verdict(entry: dict) -> str:
        # at quick size every verdict is the same smoke-run sentence (the note above says why): short in tables
        return "smoke run" if size == "quick" else str(entry.get("verdict", ""))

    cells = data.get("evidence_table") or []
    if cells:
        lines += [
            "## Where each claim holds",
            "",
            "One row per cell of the evidence (claim × regime × data set × split × τ × control), from "
            "`results.json`'s `evidence_table`; `report.md` opens with the rows of each claim's deciding control.",
            "",
            "| claim | regime | data set | split | τ | control | estimate | 95% interval | seeds | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in cells:
            row = (c.get("claim"), c.get("regime"), c.get("dataset"), c.get("split"), _num(c.get("tau")),
                   c.get("control_arm"), _num(c.get("estimate")), _interval(c), c.get("seeds"))  # fmt: skip
            lines.append(
                "| " + " | ".join(_cell("—" if v is None else v) for v in row) + f" | **{_cell(verdict(c))}** |"
            )
        lines.append("")
    lines += ["## The experiments", "", "| experiment | kind | claim | verdict |", "|---|---|---|---|"]
    for name, e in experiments.items():
        lines.append(
            f"| [{name}](#{name.replace('_', '-')}) | {_cell(e.get('kind', ''))} | "
            f"{_cell(e.get('claim', ''))} | **{_cell(verdict(e))}** |"
        )
    lines.append("")
    for name, e in experiments.items():
        lines += [f"## {name}", "", f"*{_cell(e.get('kind', ''))}*: {e.get('claim', '')}", ""]
        lines += [f"**Verdict: {e.get('verdict', '')}.** {e.get('reason', '')}", ""]
        effects = e.get("effects") or []
        if effects:
            lines += [
                "| effect | estimate | 95% interval | seeds | control | rule | verdict |",
                "|---|---|---|---|---|---|---|",
            ]
            for f in effects:
                lines.append(
                    f"| {_cell(f.get('name', ''))} | {_num(f.get('estimate'))} | {_interval(f)} | "
                    f"{_cell(f.get('seeds', ''))} | {_cell(f.get('control', ''))} | {_cell(f.get('rule', ''))} | "
                    f"{_cell(verdict(f))} |"
                )
            lines.append("")
        for fig in e.get("figures") or []:
            src = results.parent / fig
            if not src.is_file():
                raise SystemExit(f"docs: figure {fig} named in {results} is missing beside it")
            shutil.copy2(src, figures / Path(fig).name)
            lines += [f"```{{figure}} evidence/{Path(fig).name}\n:alt: {name}: {Path(fig).stem}\n:width: 100%\n```", ""]
        if e.get("config"):
            config = json.dumps(e["config"], indent=2, ensure_ascii=False)
            lines += ["Configuration:", "", f"```json\n{config}\n```", ""]
    (stage / "evidence.md").write_text("\n".join(lines))


# -------------------------------------------------------------------------------------- benchmarks


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    if m is None:
        raise SystemExit(f"docs: README.md has no '## {title}' section for the benchmarks page")
    return m.group(1).strip()


def write_benchmarks(stage: Path) -> None:
    """The benchmarks page: what each script times, how to run it, and the README's measured numbers."""
    import ast

    lines = [
        "# Benchmarks",
        "",
        "Each script in `benchmarks/` times kdtheory and a baseline **in the same process** and prints the "
        "ratio; absolute times on a shared machine mean little. They are scripts, not tests: run them on a "
        "quiet machine.",
        "",
        "## Measured",
        "",
        _readme_section("Speed and scale"),
        "",
        "## The scripts",
        "",
    ]
    for path in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or "(no docstring)"
        lines += [f"### `{path.name}`", "", "```{eval-rst}", doc, "```", ""]
        if "Run:" not in doc:
            lines += [f"```bash\npython benchmarks/{path.name}\n```", ""]
    (stage / "benchmarks.md").write_text("\n".join(lines))


# ------------------------------------------------------------------------------------------- build


def _this_checkout_first() -> None:
    """Document the code of this checkout, not another installed copy of kdtheory.

    The repository root goes first on ``sys.path`` here and on ``PYTHONPATH`` for what this script
    starts (the notebook kernels, ``kdtheory reproduce``, Sphinx).
    """
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    for name in [m for m in sys.modules if m == "kdtheory" or m.startswith("kdtheory.")]:
        del sys.modules[name]


def build(out: Path, *, results: Path | None, skip_notebooks: bool, keep_stage: bool = False) -> int:
    """Assemble the sources in a staging folder and run Sphinx on them; Sphinx's exit status."""
    start = time.perf_counter()
    _this_checkout_first()
    import kdtheory

    _say(f"documenting kdtheory {kdtheory.__version__} from {Path(kdtheory.__file__).parent}")
    with tempfile.TemporaryDirectory(prefix="kdtheory-docs-") as tmp:
        stage = Path(tmp) / "src"
        stage.mkdir()
        for page in PAGES:
            shutil.copy2(DOCS / page, stage / page)
        modules = write_api(stage)
        _say(f"API pages for {len(modules)} modules")
        write_notebooks(stage, skip=skip_notebooks)
        if results is None:
            results = run_quick(Path(tmp) / "reproduce")
        write_evidence(stage, results)
        write_benchmarks(stage)
        if out.exists():
            shutil.rmtree(out)
        cmd = [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "-n",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(Path(tmp) / "doctrees"),
            str(stage),
            str(out),
        ]
        _say("sphinx-build -W -n --keep-going -b html (strict)")
        code = subprocess.run(cmd, cwd=ROOT).returncode
        if keep_stage:
            shutil.copytree(stage, out.parent / (out.name + "-src"), dirs_exist_ok=True)
    if code == 0:
        _say(f"built {out / 'index.html'} in {time.perf_counter() - start:.0f} s")
    else:
        _say(f"FAILED: sphinx-build exited {code} (warnings are errors; see above)")
    return code


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and build."""
    parser = argparse.ArgumentParser(description="Build the kdtheory documentation site (strict).")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "docs", help="output folder (replaced)")
    parser.add_argument("--results", type=Path, help="a kdtheory reproduce results.json (default: run --quick)")
    parser.add_argument("--skip-notebooks", action="store_true", help="do not execute or render the tutorials")
    parser.add_argument("--keep-stage", action="store_true", help="keep the assembled sources beside --out")
    args = parser.parse_args(argv)
    if args.results is not None and not args.results.is_file():
        parser.error(f"--results: no such file: {args.results}")
    return build(
        args.out.resolve(), results=args.results, skip_notebooks=args.skip_notebooks, keep_stage=args.keep_stage
    )


if __name__ == "__main__":
    sys.exit(main())
