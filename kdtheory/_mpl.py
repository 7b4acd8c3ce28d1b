"""``matplotlib.pyplot``, imported on first use, on the Agg backend unless the user chose one."""

from __future__ import annotations

import os
import sys
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot``, switched to the non-interactive Agg backend only when nothing chose one.

    A notebook (inline backend), a user who imported ``pyplot`` first, or ``MPLBACKEND`` keep their
    backend: switching it would silently blank every later figure of a notebook.

    Returns:
      The ``matplotlib.pyplot`` module.
    """
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
