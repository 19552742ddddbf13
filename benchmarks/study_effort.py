"""Where a study's benchmarking time went (issue 16), from the results it already holds.

For each `dlbricks-gen study` folder (H=1 by default): the wall-time / latency-sum speedup
ratio that `study` reports (goal >= 0.8), and each result's `timing`, summed over the suite's
bricks and over the whole models, as multiples of their own latency sums: the bricks' wall,
timed calls, calibration (of which the cold-cache copies, the profile and the rest: call costs
and the fused-layer probe), session and input data, graph build, warm-up; the whole models'
wall and timed calls. Nothing is run: the figures are those of the study's own measurements.

    python benchmarks/study_effort.py STUDY [STUDY ...] [-H 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlbricks_gen.results.files import read_json_file

BRICK_PARTS = (("wall", "wall_s"), ("timed", "measure_s"), ("calibration", "calibration_s"),
               ("cold copies", "cold_copies_s"), ("profile", "profile_s"), ("session", "setup_s"),
               ("build", "build_s"), ("warm-up", "warmup_s"))


def _sums(results: list[dict]) -> tuple[float, dict[str, float]]:
    """(latency sum of the ok results, {timing key: seconds summed over all results})."""
    latency = sum(r["stats"]["median"] for r in results if r.get("status") == "ok")
    totals: dict[str, float] = {}
    for result in results:
        for key, value in (result.get("timing") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0.0) + value
    return latency, totals


def study_effort(study: Path, h: int = 1) -> dict:
    """The figures of one study: {"ratio", "bricks": {part: x latency}, "models": {...}}."""
    row = next(r for r in read_json_file(study / "study.json", "study")["by_h"] if r["h"] == h)
    results = [read_json_file(p, "result") for p in sorted((study / f"H{h}" / "suite" / "results").glob("*.json"))]
    latency, totals = _sums(results)
    bricks = {name: totals.get(key, 0.0) / latency for name, key in BRICK_PARTS}
    bricks["call costs + fused probe"] = bricks["calibration"] - bricks["cold copies"] - bricks["profile"]
    models = list(read_json_file(study / "e2e.json", "e2e file")["models"].values())
    m_latency, m_totals = _sums(models)
    ratio = row["speedup_wall"] / row["speedup_latency"] if row.get("speedup_latency") else None
    return {"study": study.name, "bricks_count": len(results), "ratio": ratio,
            "suite_wall_s": row["suite_wall_s"], "e2e_wall_s": row["e2e_wall_s"], "bricks": bricks,
            "models": {"wall": m_totals.get("wall_s", 0.0) / m_latency,
                       "timed": m_totals.get("measure_s", 0.0) / m_latency}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", type=Path)
    parser.add_argument("-H", type=int, default=1)
    args = parser.parse_args(argv)
    for study in args.studies:
        f = study_effort(study, args.H)
        parts = ", ".join(f"{name} {value:.0f}x" for name, value in f["bricks"].items())
        ratio = "-" if f["ratio"] is None else f"{f['ratio']:.2f}"
        print(f"{f['study']}: wall/latency speedup ratio {ratio} (suite {f['suite_wall_s']:.1f} s, "
              f"models {f['e2e_wall_s']:.1f} s); {f['bricks_count']} bricks: {parts}; whole models: "
              f"wall {f['models']['wall']:.0f}x, timed {f['models']['timed']:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
