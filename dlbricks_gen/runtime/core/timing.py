"""The timing loop every backend uses: warm-up, loop-count calibration, repetition until the
confidence target (the policy in core/settings.py), on any no-argument call."""

from __future__ import annotations

import gc
import itertools
import math
import time
from collections.abc import Callable

from .settings import Settings
from .stats import MIN_VALUES_FOR_CI, median_ci95, percentile, statistics, target_halfwidth


def _warm_up(call: Callable[[], object], settings: Settings) -> list[float]:
    """Per-call times of the warm-up calls: `warmup_s` of calls, and at least `warmup_calls`
    unless the first call alone lasted `warmup_s` (bounded by time, not count, for slow graphs).
    The first call pays the one-off allocations; one that lasts `warmup_s` (10x `min_value_s`)
    gives a loop count of 1, which a second call would almost always confirm (at worst, after a
    first call 10x slower than the rest, values are single calls shorter than `min_value_s`),
    so the second call would only cost one more call of the slowest bricks and models."""
    timer = time.perf_counter
    times: list[float] = []
    start = timer()
    while True:
        t0 = timer()
        call()
        times.append(timer() - t0)
        slow = 0 < settings.warmup_s <= times[0]
        if timer() - start >= settings.warmup_s and (len(times) >= settings.warmup_calls or slow):
            return times


def _reached(ordered: list[float], settings: Settings) -> bool:
    """The stopping rule: the median's 95% half-width is below max(relative x median, absolute)."""
    low, high = median_ci95(ordered)
    median = percentile(ordered, 50)
    return (high - low) / 2 <= target_halfwidth(median, settings.ci_target, settings.abs_target_s)


def _repeat(call: Callable[[], object], loops: int, settings: Settings) -> list[float]:
    """Timed values (seconds per call) until the target, the time cap or max_values."""
    timer = time.perf_counter
    values: list[float] = []
    next_check = settings.min_values
    start = timer()
    min_values = max(settings.min_values, math.ceil(settings.runs_per_process() / loops))
    most = max(min_values, math.ceil(settings.max_runs_factor * settings.runs_per_process() / loops))
    while len(values) < min(settings.max_values, most):
        t0 = timer()
        for _ in itertools.repeat(None, loops):
            call()
        values.append((timer() - t0) / loops)
        n = len(values)
        if n < min_values:
            continue
        if n >= next_check:  # sorting is cheap, but not worth doing after every value
            if n >= MIN_VALUES_FOR_CI and _reached(sorted(values), settings):
                break
            next_check = n + max(1, n // 10)
        if timer() - start >= settings.max_time_s:
            break
    return values


def measure_call(call: Callable[[], object], settings: Settings) -> dict:
    """Time any no-argument call (an ONNX Runtime binding, a TVM closure) by the policy."""
    gc_enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection inside a timed value is not the model's cost
    try:
        start = time.perf_counter()
        warm = _warm_up(call, settings)
        warmup_s = time.perf_counter() - start
        per_call = min(warm[1:] or warm)  # the first call pays one-off allocations
        loops = max(1, math.ceil(settings.min_value_s / per_call)) if per_call > 0 else 1000
        start = time.perf_counter()
        values = _repeat(call, loops, settings)
        measure_s = time.perf_counter() - start
    finally:
        if gc_enabled:
            gc.enable()
    stats = statistics(values, loops, settings.ci_target, settings.abs_target_s)
    warnings = []
    if not stats["target_reached"]:
        warnings.append(
            f"95% confidence interval of the median is +-{stats['ci95_rel']:.1%}, above the "
            f"max({settings.ci_target:.0%}, {settings.abs_target_s * 1e6:g} us) target after "
            f"{stats['n']} values in {measure_s:.2f} s: the machine is noisy or the time cap "
            f"too small")
    return {"stats": stats, "values": values, "warnings": warnings,
            "timing": {"warmup_s": warmup_s, "measure_s": measure_s}}
