"""Demo: does the self-distilled student, chosen on validation data, generalize better than its teacher (T1)?

Runs the ``planted_generalization``
experiment and writes its figure and numbers (see ``kdtheory.experiments.planted_generalization``).

Usage: ``python demos/planted_generalization.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("planted_generalization")
