"""Demo: is the distillation gradient closer to the clean expected gradient (claim T2)?

Runs the ``gradient_denoising`` experiment (see ``kdtheory.experiments.gradient_denoising``): per
example and full-batch distances to the clean gradient, where it is defined — the mixture with clean
labels (the truth is the Bayes posterior) and every data set with label noise. ``--quick`` is a
smoke run.

Usage: ``python demos/gradient_denoising.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("gradient_denoising")
