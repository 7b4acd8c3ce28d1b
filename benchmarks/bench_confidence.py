"""Benchmark: ``kdtheory confidence`` at a million points, time and peak memory (issue 11 row 12).

Teacher and student float32 logits of ``--points`` × ``--classes`` (default 1,000,000 × 10) and
integer labels are written as ``.npy`` files; then, each in a fresh subprocess so that its peak
resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own:

* **analysis**: the ``kdtheory confidence`` command in-process (``kdtheory.cli.main``: load the
  files, validate, φ and Δφ, slope with ``--bootstrap`` resamples, Theil–Sen on a 1000-point
  subsample, bins, KL, ECE; no figure);
* the same with ``--bootstrap 0`` (the bootstrap's share of the time);
* **baseline**: load the same files and compute ``scipy.special.log_softmax`` of both arrays in
  float64 — the least any analysis of these logits must do.

Prints seconds and peak RSS of each and their ratios. Target (issue 11): analysis peak RSS
within 2 GB at 1,000,000 × 10.

Run: ``python benchmarks/bench_confidence.py [--points 1000000] [--classes 10] [--bootstrap 1000]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
import numpy as np
mode, t, s, y, bootstrap = sys.argv[1:6]
import contextlib, io
from scipy.special import log_softmax
if mode == "analysis":
    import kdtheory.confidence, kdtheory._io
    from kdtheory import cli
t0 = time.perf_counter()  # imports are not timed
if mode == "analysis":
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["confidence", t, s, "--logits", "--labels", y, "--bootstrap", bootstrap])
    assert code == 0, code
    slope = next(float(ln.split()[1]) for ln in buf.getvalue().splitlines() if ln.startswith("slope "))
else:
    a, b = np.load(t), np.load(s)
    lt, ls = log_softmax(a.astype(np.float64), axis=1), log_softmax(b.astype(np.float64), axis=1)
    slope = float(lt[0, 0] + ls[0, 0])
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
print(json.dumps({"seconds": seconds, "peak_bytes": peak, "value": slope}))
"""


def _child(mode: str, paths: list[str], bootstrap: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, *paths, str(bootstrap)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Write the inputs, run the baseline and the analysis in subprocesses, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=1_000_000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--bootstrap", type=int, default=1000)
    args = p.parse_args()
    n, k = args.points, args.classes
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(Path(tmp) / f) for f in ("teacher.npy", "student.npy", "labels.npy")]
        t = (3 * rng.standard_normal((n, k), dtype=np.float32)).astype(np.float32)
        np.save(paths[0], t)
        np.save(paths[1], (1.2 * t + rng.standard_normal((n, k), dtype=np.float32)).astype(np.float32))
        np.save(paths[2], rng.integers(0, k, n))
        del t
        base = _child("baseline", paths, args.bootstrap)
        ana = _child("analysis", paths, args.bootstrap)
        ana0 = _child("analysis", paths, 0)
    gb = 1e9
    print(f"kdtheory confidence: {n:,} points x {k} classes, float32 logits, {args.bootstrap} bootstrap resamples")
    print(f"  baseline (load + log_softmax): {base['seconds']:7.2f} s   peak RSS {base['peak_bytes'] / gb:.3f} GB")
    print(f"  analysis (kdtheory confidence):{ana['seconds']:7.2f} s   peak RSS {ana['peak_bytes'] / gb:.3f} GB")
    print(f"  the same without bootstrap:     {ana0['seconds']:7.2f} s   peak RSS {ana0['peak_bytes'] / gb:.3f} GB")
    print(
        f"  ratio analysis / baseline: time {ana['seconds'] / base['seconds']:.1f}x, "
        f"peak RSS {ana['peak_bytes'] / base['peak_bytes']:.2f}x; slope {ana['value']:.4f}"
    )
    print(f"  within 2 GB: {'yes' if ana['peak_bytes'] <= 2 * gb else 'NO'}")


if __name__ == "__main__":
    main()
