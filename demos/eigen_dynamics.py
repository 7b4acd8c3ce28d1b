"""Demo: how gradient descent learns a kernel's eigen-modes, top first.

Runs the ``eigen_dynamics`` experiment (closed form vs an explicit GD loop on a kernel with a
power-law spectrum) and writes its figure and numbers.

Usage: ``python demos/eigen_dynamics.py [--quick] [--out DIR]``
"""

import argparse

from kdtheory.experiments import eigen_dynamics
from kdtheory.experiments.reproduce import reproduce


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small size (seconds)")
    p.add_argument("--out", default="kdtheory-out/eigen_dynamics", help="output directory")
    args = p.parse_args()
    (res,) = reproduce(args.out, quick=args.quick, only=["eigen_dynamics"])
    print(f"{eigen_dynamics.CLAIM}\n-> {res.verdict}: {res.decided_by}\nfigure: {args.out}/{res.figures[0]}")


if __name__ == "__main__":
    main()
