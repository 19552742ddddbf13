"""How to run: thread counts, graph optimisation, CPU pinning and the measurement policy.

Measurement policy (numbers in FULL_POLICY / QUICK_POLICY; the loop is core/timing.py):
  1. warm-up: `warmup_s` seconds and at least `warmup_calls` calls (one when it alone lasted
     `warmup_s`: core/timing.py `_warm_up`); the first call pays one-off
     allocations, the later ones calibrate the loop count;
  2. each timed value runs the model `loops` times back to back, loops chosen so that a value
     lasts at least `min_value_s` (far above timer resolution and per-call Python overhead);
  3. values are repeated until at least `min_values` values and `min_runs / processes` timed
     calls are done, then until the half-width of the 95% confidence interval of the median is
     below max(`ci_target` x median, `abs_target_s`), or `max_runs_factor` x those timed
     calls, or `max_time_s` of timed repetitions, or `max_values`; every value is recorded.
     Not reaching the target is a warning in the result, never an error;
  4. all of that is done `processes` times, in separate worker processes (whole models: in
     separate sessions) and in an interleaved order, and the values are pooled (core/stats.py
     `pooled`), so that process-to-process variation and drift over a run enter the interval.

`min_runs` (100, as in the DLBricks paper) gives every benchmark, brick or whole model, the
same number of timed calls, so the time a suite spends measuring is proportional to its
bricks' latencies, just as running every model is proportional to the models' latencies.

Why an absolute target beside the relative one: an estimate is a sum over a model's bricks, so
what must be precise is the sum, and the suite never learns which models use which bricks. A
relative target r on every brick bounds the sum's half-width by r x the sum even when the
bricks' errors are fully correlated, and by about r / sqrt(N) when they are independent; so r
can be looser than the per-model target. Microsecond bricks are dominated by call overhead and
noise that no repetition count removes; an absolute target a lets them stop at `min_runs`: N
such bricks add at most sqrt(N) x a (independent) to a sum of N x latency. With r = 5% and
a = 1 us, a model of 50 bricks of 7 us or more still has a +-2% target on its sum, and a
brick of 37 us (the median brick of the 16-model corpus) stops as soon as it is within +-5%.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict, TypeVar


class Policy(TypedDict):
    warmup_s: float
    warmup_calls: int
    min_value_s: float
    min_values: int
    min_runs: int
    ci_target: float
    abs_target_s: float
    max_time_s: float
    max_values: int
    processes: int
    max_runs_factor: int


# Full runs. Warm-up 1 ms and >= 2 calls (1 when it lasts 1 ms): the runner's worker keeps the
# CPU busy between bricks, so a new session only needs its first call (allocations) and a few
# more (caches). Values of
# >= 0.1 ms: about 1000x perf_counter's resolution and 30x ONNX Runtime's per-call overhead,
# short enough that a 37 us brick's 10 values are not more than its 100 calls. >= 10 values per
# process: the smallest n whose 95% median interval ([x2, x9]) excludes both extremes. >= 100
# timed calls in all (the paper's count), the same for bricks and whole models, split over 2
# processes. Then max(5%, 1 us) (the module docstring), capped at 3x the minimum calls, 0.5 s
# per process or 500 values. Any benchmark then costs 100-300x its own latency, brick or
# model (without the 3x cap a noisy 100 us brick ran on to 0.5 s, 5000x), so the suite's
# measuring time is proportional to its bricks' latency sum, as running the models is to theirs.
FULL_POLICY: Policy = {"warmup_s": 0.001, "warmup_calls": 2, "min_value_s": 0.0001,
                       "min_values": 10, "min_runs": 100, "ci_target": 0.05,
                       "abs_target_s": 1e-6, "max_time_s": 0.5, "max_values": 500,
                       "processes": 2, "max_runs_factor": 3}
# Quick runs (tests, smoke runs): the same procedure with tiny budgets, ~10-40 ms per fast brick.
QUICK_POLICY: Policy = {"warmup_s": 0.002, "warmup_calls": 1, "min_value_s": 0.0002,
                        "min_values": 6, "min_runs": 1, "ci_target": 0.02, "abs_target_s": 0.0,
                        "max_time_s": 0.03, "max_values": 50, "processes": 1,
                        "max_runs_factor": 1000}
# ONNX Runtime's graph optimisation levels, by the names settings and results use.
OPT_LEVEL_NAMES = ("disable", "basic", "extended", "all")

T = TypeVar("T")


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


@dataclass(frozen=True, init=False)
class Settings:
    """How to run: ONNX Runtime session options plus the measurement policy.

    Policy knobs passed as None (or left out) take the FULL_POLICY or QUICK_POLICY value, by
    `quick`; every field of a Settings holds its final value.
    """

    intra_op_threads: int
    inter_op_threads: int
    graph_optimization_level: str
    quick: bool
    taskset: str | None  # CPU list to pin the process to, e.g. "2" or "0-3"; None: no pinning
    warmup_s: float
    warmup_calls: int
    min_value_s: float
    min_values: int
    min_runs: int
    ci_target: float
    abs_target_s: float
    max_time_s: float
    max_values: int
    processes: int
    max_runs_factor: int

    def __init__(self, intra_op_threads: int = 1, inter_op_threads: int = 1,
                 graph_optimization_level: str = "all", quick: bool = False,
                 taskset: str | None = None, *, warmup_s: float | None = None,
                 warmup_calls: int | None = None, min_value_s: float | None = None,
                 min_values: int | None = None, min_runs: int | None = None,
                 ci_target: float | None = None, max_time_s: float | None = None,
                 max_values: int | None = None, abs_target_s: float | None = None,
                 processes: int | None = None, max_runs_factor: int | None = None) -> None:
        p = QUICK_POLICY if quick else FULL_POLICY
        values = {
            "intra_op_threads": intra_op_threads, "inter_op_threads": inter_op_threads,
            "graph_optimization_level": graph_optimization_level, "quick": quick,
            "taskset": taskset, "warmup_s": _or(warmup_s, p["warmup_s"]),
            "warmup_calls": _or(warmup_calls, p["warmup_calls"]),
            "min_value_s": _or(min_value_s, p["min_value_s"]),
            "min_values": _or(min_values, p["min_values"]),
            "min_runs": _or(min_runs, p["min_runs"]), "ci_target": _or(ci_target, p["ci_target"]),
            "max_time_s": _or(max_time_s, p["max_time_s"]),
            "max_values": _or(max_values, p["max_values"]),
            "abs_target_s": _or(abs_target_s, p["abs_target_s"]),
            "processes": _or(processes, p["processes"]),
            "max_runs_factor": _or(max_runs_factor, p["max_runs_factor"]),
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)  # frozen: the dataclass way to fill fields
        self._check()

    def _check(self) -> None:
        if self.graph_optimization_level not in OPT_LEVEL_NAMES:
            names = ", ".join(OPT_LEVEL_NAMES)
            raise ValueError(f"graph_optimization_level must be one of {names}")
        if self.intra_op_threads < 1 or self.inter_op_threads < 1:
            raise ValueError("thread counts must be >= 1")
        if self.min_runs < 1:
            raise ValueError("runs must be >= 1")
        if self.processes < 1:
            raise ValueError("processes must be >= 1")

    def runs_per_process(self) -> int:
        """Timed calls each process (or session) makes at least: min_runs split over them."""
        return -(-self.min_runs // self.processes)

    def policy(self) -> dict:
        return {key: getattr(self, key) for key in FULL_POLICY}


def settings_record(settings: Settings) -> dict:
    """The "settings" part of a result. `taskset` is the pinning asked for, or else the CPU
    affinity the process was started with when it is narrower than the machine."""
    return {
        "intra_op_threads": settings.intra_op_threads,
        "inter_op_threads": settings.inter_op_threads,
        "graph_optimization_level": settings.graph_optimization_level,
        "taskset": settings.taskset or _restricted_affinity(),
        "quick": settings.quick,
        "policy": settings.policy(),
    }


def _restricted_affinity() -> str | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return None if len(cpus) >= (os.cpu_count() or 0) else format_cpus(cpus)


def parse_cpus(text: str) -> set[int]:
    """"0-3,6" -> {0, 1, 2, 3, 6} (taskset -c syntax)."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"bad CPU list {text!r} (expected e.g. 2 or 0-3,6)")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def format_cpus(cpus: Iterable[int]) -> str:
    ranges = []
    for _, group in itertools.groupby(enumerate(sorted(cpus)), lambda p: p[1] - p[0]):
        run = [c for _, c in group]
        ranges.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(ranges)


def pin_cpus(settings: Settings) -> None:
    """Pin this process to settings.taskset (before any session creates its threads)."""
    if settings.taskset:
        if not hasattr(os, "sched_setaffinity"):
            raise OSError("--taskset needs Linux (os.sched_setaffinity)")
        os.sched_setaffinity(0, parse_cpus(settings.taskset))
