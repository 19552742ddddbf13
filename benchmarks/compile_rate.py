"""How many real models `compile` takes: one `dlbricks-gen compile` process per model of the
corpus, inputs bound to the manifest's validation shapes, and why each refused one was refused.

    python benchmarks/compile_rate.py CORPUS [CORPUS ...] [--manifest M] [-o out.json]

CORPUS folders hold the models the manifest names (its `file`, relative to one of them); a model
of the manifest found in none is listed as missing. Inputs whose valid values the manifest names
(`low`: a sample rate, byte values) are given with --inputs, as a user gives a real sample.
Prints one line per model and the tally.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "realworld"
TIMEOUT_S = 1800


def shape_args(model: dict) -> list[str]:
    """--input-shape for every input of rank >= 1 (scalars are static already)."""
    args = []
    for value in model.get("validation_inputs", []):
        if value["shape"]:
            args += ["--input-shape", f"{value['name']}={'x'.join(str(d) for d in value['shape'])}"]
    return args


def sample_inputs(model: dict, folder: Path) -> list[str]:
    """--inputs for the inputs whose valid values the manifest names (a sample rate, byte
    values): what a user gives from a real sample; the other inputs stay seeded random."""
    given = {v["name"]: np.full(v["shape"], v["low"], dtype=v["dtype"])
             for v in model.get("validation_inputs", []) if "low" in v}
    if not given:
        return []
    np.savez(folder / "inputs.npz", **given)
    return ["--inputs", str(folder / "inputs.npz")]


def compile_one(path: Path, model: dict, extra: list[str]) -> tuple[str, str, float]:
    """(status, why, seconds): "compiled", or "refused" with the error's one line."""
    exe = Path(sys.executable).with_name("dlbricks-gen")
    with tempfile.TemporaryDirectory() as tmp:
        extra = [*extra, *sample_inputs(model, Path(tmp))]
        start = time.perf_counter()
        try:
            done = subprocess.run([str(exe), "compile", str(path), "-o", f"{tmp}/suite", *shape_args(model),
                                   *extra], capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return "refused", f"timed out after {TIMEOUT_S} s", time.perf_counter() - start
        seconds = time.perf_counter() - start
    if done.returncode == 0:
        return "compiled", "", seconds
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    named = [line for line in lines if path.name in line]  # the one line naming the model
    return "refused", ((named or lines or [f"exit {done.returncode}"])[-1])[:300], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="+", type=Path)
    parser.add_argument("--manifest", type=Path, action="append",
                        help="manifest.json (repeatable; default: benchmarks/realworld/manifest.json)")
    parser.add_argument("--only", help="comma-separated model names")
    parser.add_argument("--fusion", action="store_true", help="compile with --fusion")
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()
    models = [m for path in (args.manifest or [HERE / "manifest.json"])
              for m in json.loads(path.read_text(encoding="utf-8"))["models"] if m["status"] == "ok"]
    if args.only:
        models = [m for m in models if m["name"] in set(args.only.split(","))]
    rows, tally = [], collections.Counter()
    for model in models:
        path = next((root / model["file"] for root in args.corpus if (root / model["file"]).is_file()), None)
        if path is None:
            status, why, seconds = "missing", "not in the corpus folders", 0.0
        else:
            status, why, seconds = compile_one(path, model, ["--fusion"] if args.fusion else [])
        tally[status] += 1
        rows.append({"model": model["name"], "quantization": model["quantization"], "kind": model["kind"],
                     "status": status, "why": why, "seconds": round(seconds, 2)})
        print(f"{model['name']:<44}{status:<10}{seconds:>8.1f} s  {why}", flush=True)
    print(f"models {len(rows)}: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    for why, count in collections.Counter(r["why"].split(": ", 1)[-1][:120] for r in rows
                                          if r["status"] == "refused").most_common():
        print(f"  refused {count:>3}: {why}")
    if args.output:
        args.output.write_text(json.dumps({"rows": rows, "tally": dict(tally)}, indent=1, sort_keys=True) + "\n",
                               encoding="utf-8")


if __name__ == "__main__":
    main()
