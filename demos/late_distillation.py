"""Demo: Switching to distillation in the middle of training recovers much of distillation's gain.

Runs the ``late_distillation``
experiment and writes its figure and numbers (see ``kdtheory.experiments.late_distillation``).

Usage: ``python demos/late_distillation.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("late_distillation")
