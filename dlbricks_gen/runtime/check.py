"""`make check`: is this machine ready to run the suite? Prints versions and problems and
writes nothing (TVM suites: one kernel is loaded and run in a child process). It imports
numpy, onnx and onnxruntime only once they are known to be there."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .backends import TVM
from .core.child import package_root, python_module
from .suite import LIBRARIES, RunBroken, read_suite

MODULE = __spec__.name if __spec__ is not None else __name__
TVM_MODULE = f"{MODULE.rpartition('.')[0]}.backends.tvm"


def next_command(threads: int) -> str:
    """The exact `make run` to type next, with the Python that passed the check."""
    return f"make run{f' THREADS={threads}' if threads != 1 else ''} PYTHON={shlex.quote(sys.executable)}"


def check(args: argparse.Namespace) -> int:
    problems = _check_python() + _check_libraries(args.suite_dir / "requirements.txt")
    problems += _check_suite(args.suite_dir)
    if not problems:
        from .core.machine import machine_info, quiet_warnings  # the libraries are there

        info = machine_info()
        cpu_id = f" ({info['cpu_id']})" if info["cpu_id"] else ""
        print(f"cpu          {info['cpu_model']}{cpu_id}, {info['cores']} cores / {info['logical_cores']} "
              f"threads, flags {' '.join(info['cpu_flags']) or '-'}")
        print(f"governor     {info['governor'] or 'unknown'}, turbo {info['turbo'] or 'unknown'}")
        for warning in quiet_warnings(args.threads):
            print(f"warning: {warning}")
    for problem in problems:
        print(f"problem: {problem}")
    print(f"ready: run `{next_command(args.threads)}`" if not problems else
          f"not ready: fix the problems above "
          f"({sys.executable} -m pip install -r requirements.txt)")
    return 0 if not problems else 1


def _check_python() -> list[str]:
    print(f"python       {sys.version.split()[0]} ({sys.executable})")
    if sys.version_info < (3, 10):  # noqa: UP036 - the vendor's Python, not ours
        return ["Python 3.10 or newer is needed"]
    return []


def _check_libraries(requirements: Path) -> list[str]:
    problems = []
    pins = _pins(requirements)
    for name in LIBRARIES:
        try:
            version = _version(name)
        except Exception as exc:  # noqa: BLE001 - a broken install is a finding, not a crash
            print(f"{name:<12} MISSING ({type(exc).__name__}: {exc})")
            problems.append(f"{name} is not importable")
            continue
        pinned = pins.get(name)
        note = ""
        if pinned and pinned != version:
            note = f" (requirements.txt pins {pinned}: results will not compare)"
        print(f"{name:<12} {version}{note}")
    return problems


def _version(name: str) -> str:
    """The version of an importable library: its distribution's (jsonschema deprecates its
    __version__), else its __version__ (onnxruntime-gpu and the like install `onnxruntime`)."""
    module = importlib.import_module(name)
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return str(module.__version__)


def _check_suite(suite_dir: Path) -> list[str]:
    problems = []
    try:
        suite = read_suite(suite_dir)
        bricks = suite_dir / "bricks"
        missing = [b for b in suite["bricks"] if not (bricks / f"{b}.py").is_file()]
        print(f"suite        {suite['suite']}: {len(suite['bricks'])} bricks")
        if missing:
            problems.append(f"{len(missing)} brick files are missing, e.g. bricks/{missing[0]}.py")
        if TVM in suite["backends"]:
            problems += _check_tvm(suite_dir)
    except RunBroken as exc:
        problems.append(str(exc))
    return problems


def _check_tvm(suite_dir: Path) -> list[str]:
    """The TVM runtime is importable and one kernel loads and runs on this CPU (in a child:
    a kernel built for a newer CPU dies with SIGILL)."""
    kernels = suite_dir / "kernels" / "tvm.json"
    try:
        target = json.loads(kernels.read_text(encoding="utf-8")).get("target")
    except (OSError, ValueError) as exc:
        return [f"{kernels}: cannot read the TVM kernel list: {exc}"]
    command = python_module(TVM_MODULE, "probe", "--suite-dir", str(suite_dir.resolve()))
    done = subprocess.run(command, cwd=package_root(MODULE, __file__), capture_output=True,
                          text=True, check=False, env={**os.environ, "TVM_USE_RUNTIME_LIB": "1"})
    print(f"{'tvm':<12} target {json.dumps(target)}: "
          f"{'kernels load and run' if done.returncode == 0 else 'NOT USABLE'}")
    if done.returncode == 0:
        return []
    lines = [ln.removeprefix("problem: ") for ln in done.stdout.splitlines() if ln.strip()]
    tail = (done.stderr.strip().splitlines() or ["?"])[-1]
    return lines or [(f"the TVM runtime does not work here ({tail[:200]}): "
                     f"{sys.executable} -m pip install -r requirements-tvm.txt")]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, version = line.split("#")[0].strip().partition("==")
            if sep:
                pins[name.strip().lower()] = version.strip()
    except OSError:
        pass
    return pins
