"""Benchmark once, reuse forever: what a results store already covers.

Pure functions over a partition and the store's latest results of one machine: which bricks
need measuring, what skipping the others saves, and a plan for models that were never
compiled into a suite (so they can be estimated straight from their ONNX files).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..passes.partition import Partition
from ..passes.plan import BrickInfo, Plan


@dataclass(frozen=True, slots=True)
class Coverage:
    known: frozenset[str]  # bricks of the partition with a valid stored result
    unknown: tuple[str, ...]  # bricks still to measure, sorted
    wall_s: float  # measuring time the known bricks took (their recorded wall time)
    latency_s: float  # sum of the known bricks' latencies (trimmed mean), each brick once

    @property
    def total(self) -> int:
        return len(self.known) + len(self.unknown)


def coverage(parts: Partition, latest: dict[str, dict]) -> Coverage:
    """Split the partition's bricks into those with a valid result in `latest` and the rest."""
    known = {d for d, _ in parts.bricks if latest.get(d, {}).get("status") == "ok"}
    wall = sum((latest[d].get("timing") or {}).get("wall_s") or 0.0 for d in known)
    latency = sum(latest[d]["stats"]["trimmed_mean_20"] for d in known)
    unknown = tuple(d for d, _ in parts.bricks if d not in known)
    return Coverage(frozenset(known), unknown, wall, latency)


def plan_of(parts: Partition, suite: str = "", batch: int | None = None,
            failed: tuple[tuple[str, str], ...] = ()) -> Plan:
    """The in-memory plan of a partition (what `compile` writes to the plan file)."""
    bricks = {d: BrickInfo(len(b.layers), tuple(b.ops)) for d, b in parts.bricks}
    return Plan(suite, parts.granularity, bricks, parts.models, failed, batch)


def missing_lines(parts: Partition, unknown: tuple[str, ...]) -> list[str]:
    """One line per brick without a result: digest, layers, ops and the models using it."""
    users: dict[str, list[str]] = {}
    for model in parts.models:
        for digest in dict.fromkeys(model.instances):
            users.setdefault(digest, []).append(model.name)
    bricks = dict(parts.bricks)
    return [f"{d[:16]}  {'>'.join(bricks[d].ops)}  (used by {', '.join(users.get(d, []))})"
            for d in unknown]


def format_seconds(seconds: float) -> str:
    if seconds >= 60:
        return f"{int(seconds // 60)} min {seconds % 60:.0f} s"
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1e3:.1f} ms"
