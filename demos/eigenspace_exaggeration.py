"""Demo: distillation as a regularizer in eigenspace (E1, E2, E3) and the planted-model student gain.

Runs the ``eigenspace_exaggeration``
experiment and writes its figure and numbers (see ``kdtheory.experiments.eigenspace_exaggeration``).

Usage: ``python demos/eigenspace_exaggeration.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("eigenspace_exaggeration")
