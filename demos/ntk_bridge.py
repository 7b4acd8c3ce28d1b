"""Demo: the NTK bridge — linearization gap vs width, and the student's lag on a real network.

Runs the ``ntk_bridge``
experiment and writes its figure and numbers (see ``kdtheory.experiments.ntk_bridge``).

Usage: ``python demos/ntk_bridge.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("ntk_bridge")
