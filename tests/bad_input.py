"""Shared pieces of the bad-input tests: each module's file names its own cases; these are common to them."""

import numpy as np

from kdtheory.eigen import Spectrum

#: A ragged nested list: not a rectangular array of numbers.
RAGGED = [[1.0, 0.0], [0.0]]
#: The 3-point identity kernel's spectrum.
KERNEL3 = Spectrum.from_kernel(np.eye(3))


def one_line(excinfo) -> None:
    """The error message is one line (what a CLI user sees, without a traceback)."""
    assert "\n" not in str(excinfo.value), str(excinfo.value)
