"""`make pack`: results/*.json, suite.json, the TVM tuning database and machine.json in one
tar.gz, to send back."""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import time
from pathlib import Path

from .core.machine import machine_info, quiet_warnings
from .core.results import validate_result
from .suite import read_suite


def _count(results: list[Path]) -> dict[str, int]:
    counts = {"ok": 0, "error": 0, "invalid": 0, "quick": 0}
    for path in results:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            counts["invalid" if validate_result(data) else data["status"]] += 1
            counts["quick"] += data.get("settings", {}).get("quick") is True
        except (OSError, ValueError, AttributeError):
            counts["invalid"] += 1
    return counts


def pack(args: argparse.Namespace) -> int:
    suite = read_suite(args.suite_dir)
    results = sorted((args.suite_dir / "results").glob("*.json"))
    counts = _count(results)
    missing = len(set(suite["bricks"]) - {p.stem for p in results})
    output = args.output or args.suite_dir / f"results-{suite['suite']}.tar.gz"
    machine = {"version": 1, "suite": suite["suite"], "machine": machine_info(),
               "warnings": quiet_warnings(args.threads)}
    root = f"results-{suite['suite']}"
    with tarfile.open(output, "w:gz") as tar:
        tar.add(args.suite_dir / "suite.json", f"{root}/suite.json")
        for path in results:
            tar.add(path, f"{root}/results/{path.name}")
        tuning = args.suite_dir / "results" / "tuning"  # TVM suites: the tuning database
        for path in sorted(tuning.glob("*.json")) if tuning.is_dir() else []:
            tar.add(path, f"{root}/results/tuning/{path.name}")
        kernels = args.suite_dir / "kernels" / "tvm.json"
        if kernels.is_file():
            tar.add(kernels, f"{root}/kernels/tvm.json")
        data = (json.dumps(machine, indent=2, sort_keys=True) + "\n").encode()
        info = tarfile.TarInfo(f"{root}/machine.json")
        info.size, info.mtime = len(data), int(time.time())
        tar.addfile(info, io.BytesIO(data))
    print(f"wrote {output}: {counts['ok']} ok, {counts['error']} failed, {counts['invalid']} "
          f"invalid result files; {missing} of {len(suite['bricks'])} bricks have no result")
    if counts["quick"]:
        print(f"warning: {counts['quick']} of them QUICK (make run QUICK=1: smoke-test timings, "
              "not measurements; run `make run` without QUICK before sending)")
    return 0
