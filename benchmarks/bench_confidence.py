"""Benchmark: ``kdtheory confidence`` at a million points and at ImageNet size, time and peak memory.

Default section (issue 11 row 12): teacher and student float32 logits of ``--points`` × ``--classes``
(default 1,000,000 × 10) and integer labels are written as ``.npy`` files; then, each in a fresh
subprocess so that its peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its
own:

* **analysis**: the ``kdtheory confidence`` command in-process (``kdtheory.cli.main``: read the
  files in row blocks, check them, φ and Δφ, slope with ``--bootstrap`` resamples, Theil–Sen on a
  1000-point subsample, bins, KL, ECE; no figure);
* the same with ``--bootstrap 0`` (the bootstrap's share of the time);
* **baseline**: load the same files and compute ``scipy.special.log_softmax`` of both arrays in
  float64 — the least an in-memory analysis of these logits must do.

``--imagenet`` section (issue 19 row 10): teacher, student and control float32 logits of
1,281,167 × 1000 (the ImageNet training set; 5.1 GB per file, 15.4 GB in all) and labels are
generated into a temporary folder (``--dir``; 3 processes, blocks of rows, never a whole array in
memory). When the folder's disk has less free space than the files need (plus 10%), the number of
points is scaled down to fit and the output says so. Then, each in a fresh subprocess:

* **read**: read each file once, in 8 MB chunks (``readinto``), nothing computed;
* **analysis**: ``kdtheory confidence TEACHER STUDENT --control CONTROL --logits --labels LABELS``
  (1000 bootstrap resamples).

Both are timed *cold* (each file's cached pages dropped first with
``posix_fadvise(POSIX_FADV_DONTNEED)`` after an ``fsync``; the read then comes from the disk) and
*warm* (the files read once just before, so they come from the page cache when memory allows).
Printed: seconds and peak RSS of each, the ratio analysis / read (target ≤ 2) and whether the
analysis stayed within 2 GB (target).

Run: ``python benchmarks/bench_confidence.py [--points 1000000] [--classes 10] [--bootstrap 1000]``
or ``python benchmarks/bench_confidence.py --imagenet [--points 1281167] [--classes 1000] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
import numpy as np
mode, t, s, y, bootstrap, c = sys.argv[1:7]
import contextlib, io
from scipy.special import log_softmax
if mode == "analysis":
    import kdtheory.confidence, kdtheory._io
    from kdtheory import cli
t0 = time.perf_counter()  # imports are not timed
value = 0.0
if mode == "analysis":
    buf = io.StringIO()
    args = ["confidence", t, s, "--logits", "--labels", y, "--bootstrap", bootstrap]
    if c != "-":
        args += ["--control", c]
    with contextlib.redirect_stdout(buf):
        code = cli.main(args)
    assert code == 0, code
    value = next(float(ln.split()[1]) for ln in buf.getvalue().splitlines() if ln.startswith("slope "))
elif mode == "read":
    chunk = bytearray(8 << 20)
    for path in (t, s, c):
        with open(path, "rb", buffering=0) as fh:
            while fh.readinto(chunk):
                pass
else:
    a, b = np.load(t), np.load(s)
    lt, ls = log_softmax(a.astype(np.float64), axis=1), log_softmax(b.astype(np.float64), axis=1)
    value = float(lt[0, 0] + ls[0, 0])
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
print(json.dumps({"seconds": seconds, "peak_bytes": peak, "value": value}))
"""

GB = 1e9
IMAGENET_POINTS = 1_281_167


def _child(mode: str, paths: list[str], bootstrap: int, control: str = "-") -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, *paths, str(bootstrap), control],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def small(args: argparse.Namespace) -> None:
    """The 1,000,000 × 10 section: analysis against load + log_softmax."""
    n, k = args.points or 1_000_000, args.classes or 10
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        paths = [str(Path(tmp) / f) for f in ("teacher.npy", "student.npy", "labels.npy")]
        t = (3 * rng.standard_normal((n, k), dtype=np.float32)).astype(np.float32)
        np.save(paths[0], t)
        np.save(paths[1], (1.2 * t + rng.standard_normal((n, k), dtype=np.float32)).astype(np.float32))
        np.save(paths[2], rng.integers(0, k, n))
        del t
        base = _child("baseline", paths, args.bootstrap)
        ana = _child("analysis", paths, args.bootstrap)
        ana0 = _child("analysis", paths, 0)
    print(f"kdtheory confidence: {n:,} points x {k} classes, float32 logits, {args.bootstrap} bootstrap resamples")
    print(f"  baseline (load + log_softmax): {base['seconds']:7.2f} s   peak RSS {base['peak_bytes'] / GB:.3f} GB")
    print(f"  analysis (kdtheory confidence):{ana['seconds']:7.2f} s   peak RSS {ana['peak_bytes'] / GB:.3f} GB")
    print(f"  the same without bootstrap:     {ana0['seconds']:7.2f} s   peak RSS {ana0['peak_bytes'] / GB:.3f} GB")
    print(
        f"  ratio analysis / baseline: time {ana['seconds'] / base['seconds']:.2f}x, "
        f"peak RSS {ana['peak_bytes'] / base['peak_bytes']:.2f}x; slope {ana['value']:.4f}"
    )
    print(f"  within 2 GB: {'yes' if ana['peak_bytes'] <= 2 * GB else 'NO'}")


_ROWS = 4096  # rows generated and written at once (16 MB of float32 at 1000 classes)


def _write(path: str, role: str, n: int, k: int) -> str:
    """Write one (n, k) float32 .npy file block by block; teacher 3·N(0,1), student 1.2·t + N, control t + N."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": (n, k)}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for b, start in enumerate(range(0, n, _ROWS)):
            m = min(_ROWS, n - start)
            t = 3 * np.random.default_rng([0, b]).standard_normal((m, k), dtype=np.float32)
            if role != "teacher":
                noise = np.random.default_rng([1 if role == "student" else 2, b]).standard_normal((m, k), np.float32)
                t = (1.2 * t if role == "student" else t) + noise
            fh.write(np.ascontiguousarray(t, dtype=np.float32).tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    return path


def _drop_cache(paths: list[str]) -> None:
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def imagenet(args: argparse.Namespace) -> None:
    """The ImageNet-sized section: analysis against reading the files once, cold and warm."""
    n, k = args.points or IMAGENET_POINTS, args.classes or 1000
    base = Path(args.dir or tempfile.gettempdir())
    free = shutil.disk_usage(base).free
    need = lambda m: 3 * m * k * 4 + m * 8  # noqa: E731
    note = ""
    if need(n) * 1.1 > free:
        wanted = n
        n = int(free / 1.1 / (3 * k * 4 + 8))
        note = (
            f"SCALED DOWN: {need(wanted) / GB:.1f} GB needed for {wanted:,} points, {free / GB:.1f} GB free in {base}; "
            f"running {n:,} points"
        )
        if n < 10_000:
            raise SystemExit(f"not enough disk space in {base}: {free / GB:.1f} GB free")
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        paths = [str(Path(tmp) / f"{r}.npy") for r in ("teacher", "student", "control")]
        labels = str(Path(tmp) / "labels.npy")
        print(f"writing 3 files of {n:,} x {k} float32 ({n * k * 4 / GB:.2f} GB each) into {tmp} ...", flush=True)
        with concurrent.futures.ProcessPoolExecutor(3) as pool:
            list(pool.map(_write, paths, ("teacher", "student", "control"), [n] * 3, [k] * 3))
        np.save(labels, np.random.default_rng(3).integers(0, k, n))
        order = [paths[0], paths[1], labels]
        _drop_cache(paths)
        read_cold = _child("read", [paths[0], paths[1], "-"], args.bootstrap, paths[2])
        _drop_cache(paths)
        ana_cold = _child("analysis", order, args.bootstrap, paths[2])
        _child("read", [paths[0], paths[1], "-"], args.bootstrap, paths[2])  # warm the page cache
        read_warm = _child("read", [paths[0], paths[1], "-"], args.bootstrap, paths[2])
        ana_warm = _child("analysis", order, args.bootstrap, paths[2])
    total = 3 * n * k * 4
    print(
        f"kdtheory confidence --control: {n:,} points x {k} classes, float32 logits, 3 files "
        f"({total / GB:.1f} GB), {args.bootstrap} bootstrap resamples, {os.cpu_count()} CPUs"
    )
    if note:
        print(f"  {note}")
    for label, rd, an in (("cold", read_cold, ana_cold), ("warm", read_warm, ana_warm)):
        print(f"  {label}: read once {rd['seconds']:7.2f} s ({total / rd['seconds'] / GB:5.2f} GB/s)   "
              f"analysis {an['seconds']:7.2f} s   ratio {an['seconds'] / rd['seconds']:5.2f}x (target <= 2)   "
              f"peak RSS {an['peak_bytes'] / GB:.3f} GB")  # fmt: skip
    peak = max(ana_cold["peak_bytes"], ana_warm["peak_bytes"])
    print(f"  within 2 GB: {'yes' if peak <= 2 * GB else 'NO'} ({peak / GB:.3f} GB); slope {ana_warm['value']:.4f}")


def main() -> None:
    """Parse the options and run the chosen section."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--imagenet", action="store_true", help="the 1,281,167 x 1000 section (needs ~15.5 GB of disk)")
    p.add_argument("--points", type=int, default=None, help="points (default 1,000,000; --imagenet 1,281,167)")
    p.add_argument("--classes", type=int, default=None, help="classes (default 10; --imagenet 1000)")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--dir", default=None, help="folder for the generated files (default: the temporary folder)")
    args = p.parse_args()
    (imagenet if args.imagenet else small)(args)


if __name__ == "__main__":
    main()
