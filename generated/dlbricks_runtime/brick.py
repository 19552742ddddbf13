"""One brick on its own: `python -m dlbricks_runtime.brick bricks/<digest>.py [-o out.json]`.

A brick file is data: a docstring and a `SPEC = {...}` literal, read with ast.literal_eval
(core/spec.py) and never executed. This measures its SPEC, prints one line and optionally
writes the result file; the runner measures many bricks in one process the same way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .backends import DEFAULT, NAMES, TVM, onnxruntime, summary_line
from .core.buildcache import BuildCache
from .core.results import one_line, write_result
from .core.settings import Settings, pin_cpus
from .core.spec import load_spec

PROG = f"python -m {__spec__.name if __spec__ is not None else __name__}"


def measure(spec: dict, settings: Settings, *, backend: str = DEFAULT, suite: str | None = None,
            kernel_dir: Path | None = None, profile: bool = True,
            cache: BuildCache | None = None) -> dict:
    """A brick's result with `backend`; tvm: its kernel in kernel_dir (<suite>/kernels).
    `profile` false: no ONNX Runtime profile (a later worker pass keeps the first one's);
    `cache`: the run's built graphs (core/buildcache.py), for ONNX Runtime."""
    if backend == TVM:
        from .backends import tvm  # tvm's own imports wait until a kernel is loaded

        return tvm.measure_brick(spec, settings, kernel_dir or Path("kernels"), suite=suite)
    return onnxruntime.measure_spec(spec, settings, suite=suite, profile=profile, cache=cache)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Time one brick of this suite on the CPU (ONNX Runtime by "
                               "default) and print its statistics.",
        epilog=f"example: {PROG} bricks/<digest>.py --threads 1 -o results/<digest>.json "
               f"(from the suite folder)")
    p.add_argument("brick", type=Path, help="the brick file, bricks/<digest>.py")
    p.add_argument("-o", "--output", type=Path, help="write the result JSON to this file")
    p.add_argument("--quick", action="store_true", help="tiny time budget (smoke tests)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="ONNX Runtime intra-op threads (default 1)")
    p.add_argument("--taskset", metavar="CPUS", help="pin to these CPUs, e.g. 2 or 0-3")
    p.add_argument("--runs", type=int, metavar="N", help="timed calls at least (default 100)")
    p.add_argument("--suite", metavar="ID", help="suite id recorded in the result")
    p.add_argument("--backend", choices=NAMES, default=DEFAULT,
                   help="onnxruntime (default) or tvm (the kernel in kernels/)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit code 0 when measured, 1 on error (the error result is still written), 2 on bad
    arguments or a brick file without a SPEC literal."""
    p = parser()
    args = p.parse_args(argv)
    try:
        settings = Settings(intra_op_threads=args.threads, quick=args.quick, taskset=args.taskset,
                            min_runs=args.runs)
        pin_cpus(settings)
    except (ValueError, OSError) as exc:
        p.error(str(exc))
    try:
        spec = load_spec(args.brick)
    except (OSError, SyntaxError, ValueError) as exc:
        p.error(f"{args.brick}: cannot read the SPEC: {one_line(exc)}")
    kernel_dir = args.brick.resolve().parent.parent / "kernels"  # bricks/ and kernels/ are siblings
    result = measure(spec, settings, backend=args.backend, suite=args.suite, kernel_dir=kernel_dir)
    if args.output:
        write_result(result, args.output)
    print(summary_line(result))
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
