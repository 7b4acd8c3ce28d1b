"""The ``kdtheory`` command.

Subcommands:
  ``kdtheory reproduce [--quick] [--out DIR] [--only NAME ...]`` — run the registered
  experiments and write ``report.md``, ``results.json`` and the figures into DIR.
  ``kdtheory list`` — the registered experiments and the claims they check.
  ``kdtheory confidence TEACHER STUDENT [--labels LABELS] [--logits] [--out DIR]`` — confidence
  deviations between any teacher's and student's predictions stored as ``.npy``/``.npz``.
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
    c = sub.add_parser("confidence", help="confidence deviations of a student from its teacher (O1)")
    c.add_argument("teacher", help="teacher predictions, .npy or .npz (FILE.npz:KEY), shape (n, k)")
    c.add_argument("student", help="student predictions on the same points, same format")
    c.add_argument("--labels", help="labels: integers (n,) or one-hot (n, k), .npy/.npz")
    c.add_argument("--logits", action="store_true", help="the predictions are logits (default: probabilities)")
    c.add_argument("--reference", choices=["teacher_top1", "label"], default="teacher_top1")
    c.add_argument("--out", help="write confidence.png and summary.json here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kdtheory`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    from kdtheory import experiments

    if args.command == "confidence":
        from kdtheory.confidence import compare_files

        try:
            report = compare_files(
                args.teacher,
                args.student,
                labels_path=args.labels,
                logits=args.logits,
                reference=args.reference,
                out_dir=args.out,
            )
        except ValueError as exc:
            print(f"kdtheory confidence: error: {exc}", file=sys.stderr)
            return 2
        print(report.table())
        if args.out:
            print(f"figure: {args.out}/confidence.png")
        return 0
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
