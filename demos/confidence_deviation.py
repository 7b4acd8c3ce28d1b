"""Demo: does the distilled student underfit the points its teacher finds hard (claim O1)?

Runs the ``confidence_deviation`` experiment (see ``kdtheory.experiments.confidence_deviation``):
φ of the teacher's top-1 class, student against teacher on train and test, minus the same for a
replica of the teacher's recipe from another initialization, in the paper, compression and
noisy-labels regimes; writes the paper-form figure (binned φ against the teacher's φ, X = Y, fitted
lines) and the numbers. The full size trains every regime (minutes); ``--quick`` is a smoke run.

Usage: ``python demos/confidence_deviation.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("confidence_deviation")
