"""Compile speed and peak memory against the floor of plain onnx.load + infer_shapes.

    python benchmarks/compile_speed.py [MODELS_DIR] [--repeat 3]

Without MODELS_DIR it writes the zoo's demo models (default scale) to a temporary folder.
For every model it prints the best-of-N time of the floor (onnx.load without external data,
then onnx.shape_inference.infer_shapes) and of dlbricks-gen's frontend (read, bind, infer,
fold, lower), and their ratio; then the time of a whole `compile` run, and the peak resident
memory of a process that runs only the floor on the largest model against one that compiles
every model (models are processed one at a time, so the second should stay close to the first).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx

from dlbricks_gen.frontend import FrontendError, ShapeOptions, find_models, load_model

# sequence_length: the text models among tests/fixtures
OPTIONS = ShapeOptions(batch=1, dims=(("sequence_length", 8),))


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def floor(path: Path) -> None:
    model = onnx.load_model(str(path), load_external_data=False)
    onnx.shape_inference.infer_shapes(model, data_prop=True)


def child(mode: str, target: str) -> None:
    """Run in a fresh process: the floor on one file, or a full compile of a folder."""
    if mode == "floor":
        floor(Path(target))
    else:
        from dlbricks_gen.workflows.compile import compile_models

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "suite"
            compile_models(Path(target), out, Path(tmp) / "plan.json", 1, OPTIONS)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": peak_kb / 1024}))


def peak_mb(mode: str, target: Path) -> tuple[float, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", mode, str(target)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="?", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    tmp = None
    root = args.models
    if root is None:
        from dlbricks_gen.workflows.zoo_files import write_models
        from dlbricks_gen.zoo import DEMO_MODELS, ZooOptions

        tmp = tempfile.TemporaryDirectory()
        root = Path(tmp.name)
        write_models(root, list(DEMO_MODELS), ZooOptions(), echo=lambda _: None)
    paths = find_models(root)
    print(f"{'model':<28}{'MB':>8}{'floor s':>10}{'compile s':>11}{'ratio':>7}")
    total_floor = total_ours = 0.0
    for path in paths:
        try:
            recorded = bool(getattr(load_model(path, root, OPTIONS), "assumed", ()))
        except FrontendError as exc:
            print(f"{path.stem:<28} refused: {exc.message[:80]}")
            continue
        t_floor = best_of(args.repeat, lambda path=path: floor(path))
        t_ours = best_of(args.repeat, lambda path=path: load_model(path, root, OPTIONS))
        total_floor += t_floor
        total_ours += t_ours
        size = path.stat().st_size / 1e6
        print(f"{path.stem:<28}{size:>8.1f}{t_floor:>10.3f}{t_ours:>11.3f}{t_ours / t_floor:>7.2f}"
              + ("  (with a recorded run)" if recorded else ""))
    print(f"{'total':<28}{'':>8}{total_floor:>10.3f}{total_ours:>11.3f}{total_ours / total_floor:>7.2f}")
    largest = max(paths, key=lambda p: p.stat().st_size)
    floor_peak, _ = peak_mb("floor", largest)
    compile_peak, wall = peak_mb("compile", root)
    print(f"peak RSS: floor on the largest model ({largest.stem}) {floor_peak:.0f} MB; "
          f"compile of all {len(paths)} models {compile_peak:.0f} MB ({compile_peak / floor_peak:.2f}x); "
          f"compile wall time {wall:.2f} s (one process, including imports)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
