"""Demo: does switching to distillation mid-training recover much of its gain (claim O2)?

Runs the ``late_distillation`` experiment (see ``kdtheory.experiments.late_distillation``): the
student's gain over its budget-matched one-hot twin and the share a switch at half-time recovers,
at the end of the budget and early-stopped, by regime (paper, compression, noisy-labels — where the
gain is mostly the twin overfitting flipped labels). ``--quick`` is a smoke run.

Usage: ``python demos/late_distillation.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("late_distillation")
