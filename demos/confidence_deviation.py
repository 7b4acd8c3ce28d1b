"""Demo: Where the teacher is unsure, the self-distilled student is even less sure (low-confidence underfitting).

Runs the ``confidence_deviation``
experiment and writes its figure and numbers (see ``kdtheory.experiments.confidence_deviation``).

Usage: ``python demos/confidence_deviation.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("confidence_deviation")
