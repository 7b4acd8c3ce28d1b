"""The ``kdtheory`` command.

Subcommands:
  ``kdtheory reproduce [--quick] [--out DIR] [--only NAME ...]`` — run the registered
  experiments and write ``report.md``, ``results.json`` and the figures into DIR.
  ``kdtheory list`` — the registered experiments and the claims they check.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kdtheory import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kdtheory", description="The theory of knowledge distillation, made computable.")
    p.add_argument("--version", action="version", version=f"kdtheory {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reproduce", help="run the experiments and write the report")
    r.add_argument("--quick", action="store_true", help="small sizes (about a minute in all)")
    r.add_argument("--out", default="kdtheory-out", help="output directory (default: %(default)s)")
    r.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments")
    sub.add_parser("list", help="list the registered experiments")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kdtheory`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    from kdtheory import experiments

    if args.command == "list":
        for name in experiments.names():
            print(f"{name}: {experiments.load(name).CLAIM}")
        return 0
    from kdtheory.experiments.reproduce import reproduce

    try:
        results = reproduce(args.out, quick=args.quick, only=args.only)
    except ValueError as exc:
        print(f"kdtheory reproduce: error: {exc}", file=sys.stderr)
        return 2
    width = max(len(r.name) for r in results)
    for r in results:
        print(f"{r.name:<{width}}  {r.verdict:<14} {r.decided_by}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
