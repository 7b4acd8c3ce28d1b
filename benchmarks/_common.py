"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import time

import numpy as np


def matmul_peak_flops(size: int = 1024, repeats: int = 5) -> float:
    """The machine's float32 matmul throughput (FLOP/s): best of ``repeats`` numpy ``size³`` products."""
    A = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        A @ A
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best
