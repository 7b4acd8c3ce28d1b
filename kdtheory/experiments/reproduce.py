"""Run the registered experiments and write ``report.md``, ``results.json`` and the figures.

Files are written atomically: experiments write their figures into a hidden staging directory
inside the output directory, and only when every experiment has finished are the figures moved
into place and the JSON and Markdown written through temporary files and ``os.replace``. A run
that is killed leaves the previous report (if any) intact.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from kdtheory import __version__
from kdtheory._io import write_text_atomic
from kdtheory.experiments import ExperimentResult, load, names

__all__ = ["reproduce", "demo"]


def _versions() -> dict[str, str]:
    out = {"kdtheory": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("numpy", "scipy", "jax", "jaxlib", "sympy", "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def reproduce(
    out_dir: str | os.PathLike = "kdtheory-out",
    *,
    quick: bool = False,
    only: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ExperimentResult]:
    """Run experiments and write the report.

    Args:
      out_dir: output directory (created).
      quick: use each experiment's ``Config.quick()`` (CI size) instead of ``Config()``.
      only: names of the experiments to run (default: all registered).
      progress: called with one-line progress messages (default: print to stderr).

    Returns:
      The results, in report order.
    """
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    selected = list(only) if only else names()
    modules = [load(name) for name in selected]  # unknown names fail before any work
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    results: list[ExperimentResult] = []
    configs = {}
    t_start = time.perf_counter()
    try:
        for i, (name, mod) in enumerate(zip(selected, modules, strict=True), 1):
            cfg = mod.Config.quick() if quick else mod.Config()
            configs[name] = asdict(cfg)
            say(f"[{i}/{len(selected)}] {name}: running ({'quick' if quick else 'full'} size)")
            t0 = time.perf_counter()
            res = mod.run(cfg, staging, progress=lambda msg, name=name: say(f"    {name}: {msg}"))
            results.append(res)
            say(f"[{i}/{len(selected)}] {name}: {res.verdict} ({time.perf_counter() - t0:.1f} s)")
        for res in results:
            for fig in res.figures:
                os.replace(staging / fig, out / fig)
        payload = {
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "quick": quick,
            "seconds": time.perf_counter() - t_start,
            "versions": _versions(),
            "experiments": {r.name: r.to_json() for r in results},
        }
        write_text_atomic(out / "results.json", json.dumps(payload, indent=2, default=_json_default) + "\n")
        write_text_atomic(out / "report.md", _markdown(results, payload))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"wrote {out / 'report.md'} and {out / 'results.json'} ({time.perf_counter() - t_start:.1f} s)")
    return results


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _markdown(results: list[ExperimentResult], payload: dict) -> str:
    v = payload["versions"]
    lines = [
        "# kdtheory reproduce report",
        "",
        f"Created {payload['created']} ({'quick' if payload['quick'] else 'full'} size, "
        f"{payload['seconds']:.1f} s) with kdtheory {v['kdtheory']}, numpy {v['numpy']}, "
        f"scipy {v['scipy']}, jax {v['jax']}, Python {v['python']}.",
        "",
        "| experiment | claim | measured | verdict | figure |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        figs = " ".join(f"[{f}]({f})" for f in r.figures) or "—"
        lines.append(f"| `{r.name}` | {r.claim} | {r.decided_by} | **{r.verdict}** | {figs} |")
    for r in results:
        lines += ["", f"## {r.name}", "", f"*Claim:* {r.claim}", "", f"*Verdict:* **{r.verdict}** — {r.decided_by}", ""]
        lines += [f"- `{k}`: {_fmt(val)}" for k, val in r.measured.items()]
        lines += ["", f"Config: `{json.dumps(r.config, default=_json_default)}`"]
        lines += [f"\n![{f}]({f})" for f in r.figures]
    return "\n".join(lines) + "\n"


def demo(name: str, argv: Sequence[str] | None = None) -> ExperimentResult:
    """Entry point of the scripts in ``demos/``: run one experiment with ``--quick`` / ``--out``."""
    import argparse

    mod = load(name)
    p = argparse.ArgumentParser(description=f"{name}: {mod.CLAIM}")
    p.add_argument("--quick", action="store_true", help="CI size (seconds)")
    p.add_argument("--out", default=f"kdtheory-out/{name}", help="output directory (default: %(default)s)")
    args = p.parse_args(argv)
    (res,) = reproduce(args.out, quick=args.quick, only=[name])
    print(f"{mod.CLAIM}\n-> {res.verdict}: {res.decided_by}")
    for fig in res.figures:
        print(f"figure: {args.out}/{fig}")
    return res
