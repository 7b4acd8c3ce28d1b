"""Demo: GD learns each eigen-mode independently, top eigendirections first; closed form = simulation.

Runs the ``eigen_dynamics``
experiment and writes its figure and numbers (see ``kdtheory.experiments.eigen_dynamics``).

Usage: ``python demos/eigen_dynamics.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("eigen_dynamics")
