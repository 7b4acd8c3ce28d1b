"""Demo: repeated self-distillation amplifies regularization (Mobahi et al.; Borup & Andersen).

Runs the ``repeated_self_distillation``
experiment and writes its figure and numbers (see ``kdtheory.experiments.repeated_self_distillation``).

Usage: ``python demos/repeated_self_distillation.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("repeated_self_distillation")
