"""The machine a result was measured on, and reasons it is visibly not quiet."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

# CPU flags that decide which kernels ONNX Runtime uses (x86 and Arm spellings).
KERNEL_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16",
                "amx_int8", "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


# /proc/cpuinfo keys that name the CPU's family and model where the brand string does not (a
# VM often reports only "AMD EPYC", for Zen 3 and Zen 5 alike): x86 first, then Arm.
ID_KEYS = (("vendor_id", ""), ("cpu family", "family"), ("model", "model"), ("stepping", "stepping"),
           ("CPU implementer", "implementer"), ("CPU part", "part"), ("CPU variant", "variant"),
           ("CPU revision", "revision"))
ID_LABELS = dict(ID_KEYS)


def _cpuinfo(text: str | None = None) -> dict:
    """model, its family/model id, flags and physical core count from /proc/cpuinfo (Linux),
    else what is known."""
    text = (_read("/proc/cpuinfo") or "") if text is None else text
    model, flags, cores, ids = None, set(), set(), {}
    physical = core = None
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in ("model name", "Hardware", "cpu model") and not model:
            model = value
        elif key in ("flags", "Features"):
            flags.update(value.split())
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
            cores.add((physical, core))
        if key in ID_LABELS and key not in ids and value:
            ids[key] = value
    if not model and sys.platform == "darwin":
        import subprocess

        try:
            model = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], check=False,
                                   capture_output=True, text=True, timeout=5).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            model = None
    cpu_id = " ".join(f"{label} {ids[key]}".strip() for key, label in ID_KEYS if key in ids)
    return {"model": model or platform.processor() or platform.machine() or "unknown",
            "id": cpu_id or None,
            "flags": [f for f in KERNEL_FLAGS if f in flags],
            "physical_cores": len(cores) or None}


def _governors() -> list[str]:
    found = set()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    for cpu in cpus:
        value = _read(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor")
        if value:
            found.add(value)
    return sorted(found)


def _turbo() -> str | None:
    """"on"/"off" when the kernel says (intel_pstate or the generic cpufreq boost switch)."""
    no_turbo = _read("/sys/devices/system/cpu/intel_pstate/no_turbo")
    if no_turbo in ("0", "1"):
        return "off" if no_turbo == "1" else "on"
    boost = _read("/sys/devices/system/cpu/cpufreq/boost")
    if boost in ("0", "1"):
        return "on" if boost == "1" else "off"
    return None


def _memory_bytes() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")


def _size(text: str) -> int:
    """'2048K' -> 2097152 (sysfs cache sizes)."""
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("KMG") or 0) * scale


def cache_sizes(root: Path = CACHE_DIR) -> dict[str, int]:
    """Data and unified caches of CPU 0 by level, in bytes, e.g. {"l1d": ..., "l2": ..., "l3": ...}."""
    sizes: dict[str, int] = {}
    for index in sorted(root.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = _size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified"):
            sizes[f"l{level}{'d' if kind == 'Data' else ''}"] = size
    return sizes


def _onnx_version() -> str:
    """onnx's version without importing it (about a second: core/spec.py)."""
    onnx = sys.modules.get("onnx")
    return onnx.__version__ if onnx is not None else importlib.metadata.version("onnx")


@functools.lru_cache(maxsize=1)
def machine_info() -> dict:
    """What the results depend on: CPU, its kernel-relevant flags, cores, frequency policy,
    memory, OS and the versions of Python and the libraries. Cached: it does not change."""
    cpu = _cpuinfo()
    governors = _governors()
    return {
        "cpu_model": cpu["model"],
        "cpu_id": cpu["id"],
        "cpu_flags": cpu["flags"],
        "cores": cpu["physical_cores"] or os.cpu_count() or 1,
        "logical_cores": os.cpu_count() or 1,
        "governor": ",".join(governors) or None,
        "turbo": _turbo(),
        "memory_bytes": _memory_bytes(),
        "caches": cache_sizes(),
        "os": platform.platform(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "onnx": _onnx_version(),
        "numpy": np.__version__,
    }


def quiet_warnings(threads: int = 1) -> list[str]:
    """Reasons the machine is visibly not quiet, one line each (empty when it looks quiet).

    Load: the 1-minute load average minus the `threads` this process itself keeps busy; more
    than half a CPU (or 10% of the CPUs on big machines) of other work is a warning.
    """
    warnings = []
    info = machine_info()
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        limit = max(0.5, 0.1 * info["logical_cores"])
        if load - threads > limit:
            warnings.append(f"load average {load:.2f} on {info['logical_cores']} CPUs: other "
                            f"programs are running and may disturb the timings")
    governors = _governors()
    if governors and governors != ["performance"]:
        warnings.append(f"CPU frequency governor is {','.join(governors)}, not performance")
    if _turbo() == "on":
        warnings.append("turbo boost is on: the clock speed depends on temperature and load")
    return warnings
