"""Demo: the NTK bridge — a self-distilled network's measured lag against its kernel's prediction.

Lazy (width 512) and narrow (width 8, the power check) networks, and the linearization gap against
width. Runs the ``ntk_bridge`` experiment and writes its figure and numbers (see ``kdtheory.experiments.ntk_bridge``).

Usage: ``python demos/ntk_bridge.py [--quick] [--out DIR]``
"""

from kdtheory.experiments.reproduce import demo

if __name__ == "__main__":
    demo("ntk_bridge")
