"""compile --backend tvm: every unique brick -> kernels/<digest>.so, compiled with TVM.

The kernels, kernels/tvm.json (target, TVM version, per-brick status) and tvm_backend.py (which
the suite's harness uses to load and time them, and `make tune` to tune them) go into the
suite. A brick TVM cannot import or compile is marked "fallback" with its error: the suite
measures it with ONNX Runtime in the TVM run and records that. Imports tvm: only when asked.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .generate import brick_spec, package_dir
from .partition import Partition
from .runtime import harness, tvm_backend

BACKENDS = {"ort": ("onnxruntime",), "tvm": ("tvm",), "all": ("onnxruntime", "tvm")}
TVM_PACKAGES = ("apache-tvm", "apache-tvm-ffi")
TUNING_PACKAGES = ("psutil", "cloudpickle", "xgboost-cpu")


@dataclass(frozen=True, slots=True)
class KernelReport:
    built: int
    reused: int
    fallback: tuple[tuple[str, str], ...]  # (digest, error)
    compile_s: float


def backends(name: str) -> tuple[str, ...]:
    if name not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, not {name!r}")
    return BACKENDS[name]


def compile_kernels(parts: Partition, suite_dir: Path, target: dict,
                    progress: Callable[[str], None] | None = None) -> KernelReport:
    """Build the kernels that are missing or were built for another target or TVM version;
    kernels already built (or tuned) for the same target and TVM are kept."""
    kernel_dir = suite_dir / "kernels"
    old = tvm_backend.read_info(kernel_dir)
    version = metadata.version("apache-tvm")
    same = old.get("target") == target and old.get("tvm") == version
    info = {"version": tvm_backend.INFO_VERSION, "target": target, "tvm": version, "kernels": {}}
    built, reused, fallback, seconds = 0, 0, [], 0.0
    for index, (digest, brick) in enumerate(parts.bricks, 1):
        path = kernel_dir / f"{digest}.so"
        entry = old.get("kernels", {}).get(digest) if same else None
        if entry and (entry.get("status") != "ok" or path.is_file()):
            info["kernels"][digest] = entry
            reused += 1
            continue
        if progress:
            progress(f"TVM kernel [{index}/{len(parts.bricks)}] {digest[:16]}")
        start = time.perf_counter()
        try:
            tvm_backend.build_brick(brick_spec(digest, brick), target, path)
            info["kernels"][digest] = {"status": "ok", "tuned_trials": 0}
            built += 1
        except Exception as exc:  # noqa: BLE001 - any TVM failure means: ONNX Runtime measures it
            error = harness.one_line(exc)
            info["kernels"][digest] = {"status": "fallback", "error": error}
            fallback.append((digest, error))
            path.unlink(missing_ok=True)
        seconds += time.perf_counter() - start
    for stale in kernel_dir.glob("*.so"):
        if stale.stem not in info["kernels"]:
            stale.unlink()
    tvm_backend.write_info(kernel_dir, info)
    shutil.copyfile(package_dir() / "runtime" / "tvm_backend.py", suite_dir / "tvm_backend.py")
    (suite_dir / "requirements-tvm.txt").write_text(requirements(), encoding="utf-8")
    return KernelReport(built, reused, tuple(fallback), seconds)


def requirements() -> str:
    """What the vendor adds for the TVM bricks: the TVM the kernels were built with."""
    lines = [f"{name}=={metadata.version(name)}" for name in TVM_PACKAGES]
    tuning = []
    for name in TUNING_PACKAGES:
        try:
            tuning.append(f"{name}>={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            tuning.append(name)
    return ("# The TVM runtime the kernels in kernels/ were built with (make run, make check);\n"
            "# apache-tvm-ffi is pinned: 0.1.15.x crashes in meta-schedule tuning (make tune).\n"
            + "\n".join(lines) + "\n# make tune only:\n" + "\n".join(tuning) + "\n")
