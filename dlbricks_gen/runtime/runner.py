"""The suite's command line (`make run|check|tune|pack`), run from the suite folder:

    python -m dlbricks_runtime                   # every brick, resumable: run again to continue
    python -m dlbricks_runtime --threads 1 --shard 2/4 --timeout 300 --only 3f2a,9bc0
    python -m dlbricks_runtime check             # Python and the libraries; writes nothing
    python -m dlbricks_runtime pack              # results/ + suite.json + machine.json -> .tar.gz
    python -m dlbricks_runtime tune --trials 64  # TVM suites: tune the kernels
    python -m dlbricks_runtime clean             # delete what the runs wrote (refused during a run)

`run` is runloop.py (one long-lived worker process, worker.py), `check` check.py, `pack`
pack.py, `clean` clean.py, `tune` the TVM backend's tuner in a child process. This module and suite.py import
only the standard library, so a missing library is reported in one line, not a traceback.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .backends import NAMES, TVM
from .core.child import package_root, python_module
from .suite import RunBroken, parse_policy, parse_shard, positive_int, read_suite, require_libraries

DEFAULT_TIMEOUT_S = 600.0
EXIT_OK, EXIT_BROKEN, EXIT_INTERRUPTED = 0, 2, 130
MODULE = __spec__.name if __spec__ is not None else __name__
PACKAGE = MODULE.rpartition(".")[0]
SUITE_DIR = Path(__file__).resolve().parent.parent  # in a suite: the folder holding this package


def run(args: argparse.Namespace) -> int:
    require_libraries()
    from .runloop import run as run_bricks

    return run_bricks(args)


def check(args: argparse.Namespace) -> int:
    from .check import check as check_machine

    return check_machine(args)


def pack(args: argparse.Namespace) -> int:
    require_libraries()
    from .pack import pack as pack_results

    return pack_results(args)


def clean(args: argparse.Namespace) -> int:
    from .clean import clean as clean_results

    return clean_results(args)


def worker(args: argparse.Namespace) -> int:
    from .worker import worker_main

    return worker_main(args)


def tune(args: argparse.Namespace) -> int:
    """`make tune`: the TVM backend's meta-schedule tuner (needs the full TVM and a C compiler),
    in a child process so that it can skip TVM's GPU imports before tvm is first imported."""
    if TVM not in read_suite(args.suite_dir)["backends"]:
        raise RunBroken("this suite has no TVM kernels: compile it with --backend tvm or all")
    command = python_module(f"{PACKAGE}.backends.tvm", "tune", "--trials", str(args.trials),
                            "--suite-dir", str(args.suite_dir.resolve()))
    command += ["--total", str(args.total)] if args.total else []
    command += ["--only", args.only] if args.only else []
    command += ["--population", str(args.population)] if args.population else []
    return subprocess.run(command, cwd=package_root(MODULE, __file__), check=False).returncode


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": run, "check": check, "pack": pack, "tune": tune, "clean": clean, "worker": worker}


def parser() -> argparse.ArgumentParser:
    prog = f"python -m {PACKAGE}"
    p = argparse.ArgumentParser(
        prog=prog, description="Measure the bricks of this suite into results/ (resumable).",
        epilog=f"examples: {prog} --threads 1 | {prog} --shard 1/2 | {prog} check | {prog} pack")
    p.add_argument("command", nargs="?", default="run", choices=list(COMMANDS),
                   help="run (default), check the machine, pack the results, tune the TVM "
                        "kernels, clean the results the runs wrote; worker is internal")
    p.add_argument("--backend", choices=NAMES,
                   help="measure only this backend (default: every backend of the suite)")
    p.add_argument("--trials", type=int, default=64, help="tune: trials per brick (64)")
    p.add_argument("--total", type=int, help="tune: trials in this run at most")
    p.add_argument("--population", type=int, help=argparse.SUPPRESS)  # tune: for smoke tests
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="ONNX Runtime intra-op threads (1)")
    p.add_argument("--quick", action="store_true", help="tiny time budget per brick (smoke test)")
    p.add_argument("--runs", type=positive_int, metavar="N",
                   help="timed calls per brick at least (default 100; 1 with --quick)")
    p.add_argument("--processes", type=positive_int, metavar="N",
                   help="measure every brick in N worker processes, in interleaved orders, and "
                        "pool the values (default 2; 1 with --quick)")
    p.add_argument("--policy", type=parse_policy, default={}, metavar="KEY=VALUE,...",
                   help="override measurement policy knobs, e.g. ci_target=0.02,processes=1 "
                        "(recorded in every result's settings.policy)")
    p.add_argument("--pass", dest="pass_index", type=int, metavar="K", help=argparse.SUPPRESS)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                   help=f"per-brick time limit, then the brick is an error ({DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--shard", type=parse_shard, metavar="K/N", help="run only shard K of N")
    p.add_argument("--only", metavar="ID,...", help="run only these bricks (ids or prefixes)")
    p.add_argument("--retry-errors", action="store_true",
                   help="redo bricks whose result is an error")
    p.add_argument("--taskset", metavar="CPUS",
                   help="pin the measuring process to CPUs, e.g. 2 or 0-3")
    p.add_argument("-o", "--output", type=Path, help="pack: the archive to write")
    p.add_argument("--suite-dir", type=Path, default=SUITE_DIR, help=argparse.SUPPRESS)
    p.add_argument("--suite", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads < 1 or args.timeout <= 0:
        print("error: --threads must be >= 1 and --timeout > 0", file=sys.stderr)
        return EXIT_BROKEN
    try:
        return COMMANDS[args.command](args)
    except (RunBroken, OSError) as exc:  # e.g. a full disk: the run cannot go on
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BROKEN
