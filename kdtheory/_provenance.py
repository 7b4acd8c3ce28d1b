"""Where a result comes from: package and dependency versions, the machine's devices, the git commit.

Used by ``kdtheory --version`` and recorded as ``versions`` in ``results.json`` (issue 21 item 4).
:func:`versions` imports JAX (to ask for its devices) only when ``with_devices=True``; :func:`git`
runs ``git`` only when the package is imported from a kdtheory checkout (a folder holding
``pyproject.toml`` and ``.git`` next to the package), so an installed package inside some other
repository never reports that repository's commit, and no error arises outside a checkout or
without ``git``.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from kdtheory import __version__

__all__ = ["DEPENDENCIES", "describe", "device_text", "devices", "git", "versions"]

#: the distributions whose versions are recorded, in order.
DEPENDENCIES = ("numpy", "scipy", "jax", "jaxlib", "sympy", "matplotlib", "scikit-learn", "mnist1d")


def git() -> dict[str, Any] | None:
    """The commit of the kdtheory checkout the package is imported from.

    Returns:
      ``{"commit": sha, "dirty": bool, "path": checkout}`` (``dirty``: tracked files differ from the
      commit), or ``None`` when the package does not sit in a kdtheory checkout or ``git`` is
      unavailable or fails.
    """
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists() or not (root / "pyproject.toml").is_file():
        return None
    try:
        pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    if 'name = "kdtheory"' not in pyproject:
        return None

    def run(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()

    try:
        commit = run("rev-parse", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty, "path": str(root)}


def devices() -> list[dict[str, Any]]:
    """JAX's devices, grouped: platform, device kind and count.

    Returns:
      ``[{"platform": "cpu", "kind": "cpu", "count": 1}, …]``; one entry with the error's text as
      ``"error"`` when JAX cannot list its devices.
    """
    try:
        import jax

        found: dict[tuple[str, str], int] = {}
        for d in jax.devices():
            key = (str(d.platform), str(getattr(d, "device_kind", d.platform)))
            found[key] = found.get(key, 0) + 1
    except Exception as exc:  # a broken accelerator setup must not stop a report from being written
        return [{"error": " ".join(str(exc).split())[:200]}]
    return [{"platform": p, "kind": k, "count": n} for (p, k), n in found.items()]


def versions(*, with_devices: bool = True) -> dict[str, Any]:
    """Versions of kdtheory, Python and the dependencies; the devices; the git commit.

    Args:
      with_devices: also list JAX's devices (imports JAX).

    Returns:
      A dict with the keys ``kdtheory``, ``python``, ``platform``, one per entry of
      :data:`DEPENDENCIES` (its version, or ``"not installed"``), ``devices`` (when asked) and
      ``git`` (a dict, or ``None``).
    """
    out: dict[str, Any] = {
        "kdtheory": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for pkg in DEPENDENCIES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    if with_devices:
        out["devices"] = devices()
    out["git"] = git()
    return out


def describe(info: dict[str, Any]) -> str:
    """``kdtheory --version``'s text for a :func:`versions` record.

    Args:
      info: the record.

    Returns:
      Lines: ``kdtheory X``, the dependencies, the devices, the git commit.
    """
    deps = ", ".join(f"{k} {info[k]}" for k in ("python", *DEPENDENCIES) if k in info)
    lines = [f"kdtheory {info['kdtheory']}", f"  {deps}", f"  platform: {info['platform']}"]
    if "devices" in info:
        lines.append(f"  devices: {device_text(info['devices'])}")
    g = info.get("git")
    lines.append(f"  git: {g['commit']}{' (uncommitted changes)' if g['dirty'] else ''} in {g['path']}" if g else
                 "  git: not run from a kdtheory checkout")  # fmt: skip
    return "\n".join(lines)


def device_text(devs: list[dict[str, Any]]) -> str:
    """The devices in a few words: ``cpu (1 × cpu)``, ``gpu (8 × NVIDIA H100)``.

    Args:
      devs: :func:`devices`' record.

    Returns:
      The text.
    """
    if devs and "error" in devs[0]:
        return f"unavailable ({devs[0]['error']})"
    return ", ".join(f"{d['platform']} ({d['count']} × {d['kind']})" for d in devs) or "none"
