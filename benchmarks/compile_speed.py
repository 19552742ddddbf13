"""Compile speed and peak memory against the floor of plain onnx.load + infer_shapes.

    python benchmarks/compile_speed.py [MODELS_DIR] [--repeat 3]
    python benchmarks/compile_speed.py CORPUS --static 30          # 30 static real models

Without MODELS_DIR it writes the zoo's demo models (default scale) to a temporary folder.
`--static N` takes N of the corpus's static FP32 exports (benchmarks/realworld/manifest.json;
not the detectors, whose shapes depend on data), evenly spread over their sizes. For every
model it prints, side by side in one run, the best-of-N time of the floor (onnx.load without external data, then
onnx.shape_inference.infer_shapes), of dlbricks-gen's frontend (read, bind, infer, fold, lower),
of the frontend with what compile then does per model (the layout pass's ONNX Runtime
optimization of the whole model, the cut) without and with `--fusion` (a second optimization,
of the same whole model built once), and their ratios to the floor; then one compile of every
model without and with `--fusion` (suite rendered and written once: a per-suite cost, no audit)
against the floors' total, the time of one `compile` process, and the peak resident memory of
a process that runs only the floor on the largest model against one that compiles every model
(models are processed one at a time, so the second should stay close to the first).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
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


def with_passes(path: Path, root: Path, fusion: bool) -> None:
    """What compile does per model: the frontend, the layout pass (and the fusion pass), the cut."""
    from dlbricks_gen.passes.partition import partition
    from dlbricks_gen.workflows.compile import runtime_passes

    models, units, _ = runtime_passes([load_model(path, root, OPTIONS)], fusion)
    partition(models, 1, units)


def compile_all(root: Path, fusion: bool) -> float:
    """Seconds of one compile of every model below root (suite and plan written, no audit)."""
    from dlbricks_gen.workflows.compile import compile_models

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        compile_models(root, Path(tmp) / "suite", Path(tmp) / "plan.json", 1, OPTIONS, fusion=fusion)
        return time.perf_counter() - start


def static_models(root: Path, manifest: Path, count: int) -> list[Path]:
    """`count` static FP32 exports of the manifest found below `root` (static inputs, and not
    a detector: static inside too), evenly spread by size."""
    models = json.loads(manifest.read_text(encoding="utf-8"))["models"]
    static = sorted((m["size_bytes"], m["file"]) for m in models
                    if m["status"] == "ok" and m["kind"] == "export" and m["quantization"] == "none"
                    and m["family"] != "detection"  # data-dependent shapes inside: a recorded run
                    and all(isinstance(d, int) for i in m["inputs"] for d in i["shape"])
                    and (root / m["file"]).is_file())
    if len(static) <= count:
        return [root / f for _, f in static]
    picks = sorted({round(k * (len(static) - 1) / (count - 1)) for k in range(count)})
    return [root / static[k][1] for k in picks]


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


def _row(name: str, size: float | None, times: list[float]) -> str:
    t_floor, *ours = times
    cells = "".join(f"{t:>{w}.3f}{t / t_floor:>7.2f}" for t, w in zip(ours, (9, 10, 9), strict=True))
    return f"{name:<36}{'' if size is None else f'{size:.1f}':>7}{t_floor:>9.3f}{cells}"


def _linked(paths: list[Path]) -> Path:
    """A temporary folder of symlinks to `paths`: the models one compile run reads."""
    folder = Path(tempfile.mkdtemp(prefix="compile-speed-"))
    for path in paths:
        (folder / path.name).symlink_to(path.resolve())
    return folder


def peak_mb(mode: str, target: Path) -> tuple[float, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", mode, str(target)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="?", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--static", type=int, metavar="N", help="N static FP32 exports of the corpus")
    parser.add_argument("--manifest", type=Path, default=Path(__file__).parent / "realworld" / "manifest.json")
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
    paths = static_models(root, args.manifest, args.static) if args.static else find_models(root)
    print(f"{'model':<36}{'MB':>7}{'floor s':>9}{'front s':>9}{'ratio':>7}{'+passes s':>10}{'ratio':>7}"
          f"{'+fusion s':>9}{'ratio':>7}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for path in paths:
        try:
            recorded = bool(getattr(load_model(path, root, OPTIONS), "assumed", ()))
        except FrontendError as exc:
            print(f"{path.stem:<36} refused: {exc.message[:80]}")
            continue
        times = [best_of(args.repeat, lambda path=path: floor(path)),
                 best_of(args.repeat, lambda path=path: load_model(path, root, OPTIONS)),
                 best_of(args.repeat, lambda path=path: with_passes(path, root, False)),
                 best_of(args.repeat, lambda path=path: with_passes(path, root, True))]
        totals = [a + b for a, b in zip(totals, times, strict=True)]
        print(_row(path.stem, path.stat().st_size / 1e6, times) + ("  (with a recorded run)" if recorded else ""))
    print(_row("total", None, totals))
    linked = _linked(paths) if args.static else None
    folder = linked or root
    for fusion in (False, True):
        seconds = compile_all(folder, fusion)
        print(f"one compile of all {len(paths)} models{' --fusion' if fusion else ''} (suite written, no audit): "
              f"{seconds:.2f} s, {seconds / totals[0]:.2f}x the floor's total")
    largest = max(paths, key=lambda p: p.stat().st_size)
    floor_peak, _ = peak_mb("floor", largest)
    compile_peak, wall = peak_mb("compile", folder)
    if linked is not None:
        shutil.rmtree(linked)
    print(f"peak RSS: floor on the largest model ({largest.stem}) {floor_peak:.0f} MB; "
          f"compile of all {len(paths)} models {compile_peak:.0f} MB ({compile_peak / floor_peak:.2f}x); "
          f"compile wall time {wall:.2f} s (one process, including imports)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
