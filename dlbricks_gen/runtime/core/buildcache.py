"""A run's cache of built brick graphs, so that later worker passes reuse the first pass's bytes.

Building a brick (its seeded weights, the ONNX model, serialised) is the same work in every
pass and gives the same bytes. The first pass writes them to `results/.build-cache/`, later
passes read them instead of building (and so never import onnx), the last pass removes each
file once it has used it, and the runner removes the folder at the end of the run
(runloop.py). Clearing it removes only the names this module writes (`b-<brick>.onnx`,
`reference.onnx`, `fused-shares-*.json` and their temp files), then the folder if it is empty. Bounded: at most
MAX_BYTES in all, and never more than half the disk's free space; bricks beyond that are
simply built again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

DIRECTORY = ".build-cache"  # inside results/
MAX_BYTES = 2 << 30
REFERENCE = "reference"  # the reference benchmark's graph (core/reference.py)
SHARES = "fused-shares"  # names of the run's fused shares, JSON (core/fused.py `fused_shares`)


class BuildCache:
    """Built graphs by name: `b-<brick id>` for bricks, REFERENCE for the reference graph; and
    the run's fused shares (names starting with SHARES, JSON files)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.budget: int | None = None  # bytes this process may still write; set on first put

    def path(self, name: str) -> Path:
        return self.directory / f"{name}{'.json' if name.startswith(SHARES) else '.onnx'}"

    def get(self, name: str, limit: int = MAX_BYTES) -> bytes | None:
        """The cached bytes, or None (absent, unreadable or larger than `limit`)."""
        path = self.path(name)
        try:
            if path.stat().st_size > limit:
                return None
            return path.read_bytes()
        except OSError:
            return None

    def put(self, name: str, data: bytes) -> bool:
        """Write atomically (temp file + rename) when it fits the budget; False when not."""
        if self.budget is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            used = sum(p.stat().st_size for p in self.directory.glob("*.onnx"))  # earlier rounds
            self.budget = min(MAX_BYTES - used, shutil.disk_usage(self.directory).free // 2)
        if len(data) > self.budget:
            return False
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, self.path(name))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            return False
        self.budget -= len(data)
        return True

    def drop(self, name: str) -> None:
        with contextlib.suppress(OSError):
            self.path(name).unlink()


def brick_key(brick: str) -> str:
    return f"b-{brick}"


def clear(directory: Path) -> None:
    """Remove a build cache: the files this module writes, then the folder if it is empty."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    patterns = ("b-*.onnx", f"{REFERENCE}.onnx", f"{SHARES}*.json", ".b-*.tmp", f".{REFERENCE}.*.tmp",
                f".{SHARES}*.tmp")
    for path in [p for pattern in patterns for p in directory.glob(pattern)]:
        with contextlib.suppress(OSError):
            path.unlink()
    with contextlib.suppress(OSError):
        directory.rmdir()
