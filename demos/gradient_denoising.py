"""Demo: distillation as a gradient denoiser (Bayes-teacher identity, noise by teacher confidence).

Runs the ``gradient_denoising``
experiment and writes its figure and numbers (see ``kdtheory.experiments.gradient_denoising``).

Usage: ``python demos/gradient_denoising.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("gradient_denoising")
