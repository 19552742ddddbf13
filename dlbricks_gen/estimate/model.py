"""The estimator: result files + the private plan -> per-model latency estimates.

Sequential estimate: the sum of the latencies of the model's brick instances (what a runtime
that executes one node after another costs). Critical-path estimate: the longest path through
the brick DAG weighted by latency (what a runtime that runs independent branches in parallel
could reach). A model with unmeasured bricks is incomplete: its sums are lower bounds.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace

from ..ir import ModelPlan
from ..passes.plan import Plan
from ..results.load import BrickResult, brick_result, run_medians
from ..runtime.core.cold import FAR_MODEL_L2
from ..runtime.core.stats import between_halfwidth


@dataclass(frozen=True, slots=True)
class ModelEstimate:
    name: str
    layers: int
    instances: int
    measured_instances: int
    covered_layers: int
    sequential: float  # seconds; a lower bound when incomplete
    critical_path: float
    calibrated: float | None = None  # sequential, less per-brick call and boundary costs
    failed: tuple[tuple[str, str], ...] = ()  # (brick, error)
    missing: tuple[str, ...] = ()
    halfwidth: float | None = None  # 95% half-width of the sums, seconds (`sum_halfwidth`)

    @property
    def complete(self) -> bool:
        return self.measured_instances == self.instances


def critical_path(count: int, edges: tuple[tuple[int, int], ...], weights: list[float]) -> float:
    """Longest path through the instance DAG; instances are in topological order."""
    preds: list[list[int]] = [[] for _ in range(count)]
    for a, b in edges:
        if not a < b:
            raise ValueError(f"plan edge {a}->{b} goes backwards: not a topological order")
        preds[b].append(a)
    finish = [0.0] * count
    for i in range(count):
        finish[i] = weights[i] + max((finish[p] for p in preds[i]), default=0.0)
    return max(finish, default=0.0)


def estimate_model(model: ModelPlan, plan: Plan, results: dict[str, BrickResult],
                   kernels: bool = False) -> ModelEstimate:
    weights: list[float] = []
    calibrated: list[float | None] = []
    covered = measured = 0
    failed: dict[str, str] = {}
    missing: dict[str, bool] = {}
    cold = cold_level(model, results)
    for k, digest in enumerate(model.instances):
        result = results.get(digest)
        if result is not None and result.ok:
            weights.append(result.latency)
            calibrated.append(calibrated_instance(model, k, result, cold, kernels))
            covered += plan.bricks[digest].layers
            measured += 1
        else:
            weights.append(0.0)
            if result is None:
                missing[digest] = True
            else:
                failed[digest] = result.error or "unknown error"
    whole = None
    parts = [c for c in calibrated if c is not None]
    if parts and len(parts) == len(calibrated):  # every brick calibrated, so each has a null call
        whole = sum(parts) + model_call(model, results)
    return ModelEstimate(
        model.name, model.layers, len(model.instances), measured, covered,
        sum(weights), critical_path(len(weights), model.edges, weights), whole,
        tuple(sorted(failed.items())), tuple(sorted(missing)),
    )


def calibrated_instance(model: ModelPlan, k: int, result: BrickResult, cold: int,
                        kernels: bool = False) -> float | None:
    """The calibrated latency of instance k (None when its result carries no calibration). Where
    the model runs it inside a neighbouring NCHWc convolution (`absorbed`, passes/layout.py),
    only the share of it that such a layer costs there, measured on the target (`fused_share`,
    runtime/core/fused.py). With `kernels`, a profiled brick counts only its kernels' share of
    its run (`kernel_time`)."""
    kept = model.kept_reorders[k] if model.kept_reorders else None
    value = result.calibrated_for(kept, cold)
    if value is not None and kernels:
        value = kernel_time(result, kept, cold) or value
    if value is not None and model.absorbed and model.absorbed[k]:
        return value * result.fused_share
    return value


def kernel_time(result: BrickResult, kept: tuple[float, float] | None, cold: int) -> float | None:
    """What a profiled brick spends in its kernels, less the reorders the model does not do,
    plus the per-node cost a model pays between kernels (calibration `node_s`): its latency
    times the kernels' share of its profiled run (ONNX Runtime's profiler, the same result).
    The rest of a brick's call (allocating and binding its outputs, the executor's setup) is
    what the null call measures only in part: a brick's profile shows 3-16 us of it where the
    null call is 2 us (benchmarks/kernel_gap.py). None when the brick was not profiled."""
    profile = (result.data.get("calibration") or {}).get("profile") or {}
    if not (profile.get("calls") and profile.get("run_s", 0) > 0) or result.boundary is None:
        return None
    share = min(sum(profile.get("kernels_s", {}).values()) / profile["run_s"], 1.0)
    removed = result.boundary if kept is None else (
        result.reorder_in * (1.0 - kept[0]) + result.reorder_out * (1.0 - kept[1]))
    node = float(result.data["calibration"].get("node_s", 0.0))
    return max(result.latency * share - removed, 0.0) * result.cold_scale(cold) + node


def instance_seconds(model: ModelPlan, k: int, results: dict[str, BrickResult], calibrated: bool,
                     cold: int) -> float:
    """What instance k of a model adds to its headline estimate (0 when not measured); `cold`:
    `cold_level(model, results)`, decided once per model."""
    result = results.get(model.instances[k])
    if result is None or not result.ok:
        return 0.0
    value = calibrated_instance(model, k, result, cold) if calibrated else None
    return result.latency if value is None else value


def model_call(model: ModelPlan, results: dict[str, BrickResult]) -> float:
    """The call a whole calibrated model pays once: the median null call of its bricks."""
    calls = sorted(n for d in model.instances if d in results and results[d].ok
                   for n in [results[d].null_call] if n is not None)
    return calls[len(calls) // 2] if calls else 0.0


def headline_critical_path(model: ModelPlan, results: dict[str, BrickResult], calibrated: bool) -> float:
    """The critical path in the same terms as the headline estimate (calibrated bricks and one
    call of the model, or plain latencies), so it is never longer than the estimate."""
    cold = cold_level(model, results)
    weights = [instance_seconds(model, k, results, calibrated, cold) for k in range(len(model.instances))]
    return critical_path(len(weights), model.edges, weights) + (model_call(model, results) if calibrated else 0.0)


def cold_level(model: ModelPlan, results: dict[str, BrickResult]) -> int:
    """Where a model's bricks read their weights from, by the model's weight bytes against the
    L2 cache of the machine its results were measured on: 0 within the L2 (the loop's warm
    time holds), 1 beyond it (the near cold measurement: copies over twice the L2), 2 beyond
    FAR_MODEL_L2 times it (the far one). runtime/core/cold.py measures both spans."""
    l2 = next((r.l2_bytes for d in model.instances if (r := results.get(d)) is not None and r.ok), 0)
    if not l2 or model.weight_bytes <= l2:
        return 0
    return 2 if model.weight_bytes > FAR_MODEL_L2 * l2 else 1


def sum_halfwidth(model: ModelPlan, results: dict[str, BrickResult]) -> float | None:
    """95% half-width of a model's sum of brick latencies, from its bricks' statistics, in two
    parts. Repetition (each brick's within-process half-width, stats.within_s): the instances
    of one brick share its error (count x half-width), distinct bricks are independent (root sum
    of squares). Between runs: the model's sum in each worker process (each brick's run median,
    stats.runs), whose spread is the between-run half-width of the sum (stats.between_halfwidth):
    a process that ran while the machine was slower was slower for all of its bricks, so this
    part is not divided among them as independent errors would be. Results without per-process
    statistics add their whole half-width to the first part. None when a measured brick has no
    interval. The machine's drift within a run is in it only as far as the processes differ:
    the reference benchmark shows the rest (results/drift.py)."""
    independent: list[float] = []
    by_run: list[list[float]] = []
    for digest, count in sorted(Counter(model.instances).items()):
        result = results.get(digest)
        if result is None or not result.ok:
            continue
        width = result.halfwidth
        if width is None:
            return None
        split = _run_parts(result)
        if split is None:
            independent.append(count * width)
            continue
        within, medians = split
        independent.append(count * within)
        by_run.append([count * m for m in medians])
    between = 0.0
    if by_run and len({len(r) for r in by_run}) == 1:
        between = between_halfwidth([math.fsum(run) for run in zip(*by_run, strict=True)])
    elif by_run:  # processes that do not line up: each brick's own between part, independently
        independent.extend(between_halfwidth(r) for r in by_run)
    return math.hypot(math.sqrt(math.fsum(p * p for p in independent)), between)


def _run_parts(result: BrickResult) -> tuple[float, list[float]] | None:
    """(within-process half-width, each process's median from its values), at the chosen
    statistic's scale; None for a result of one process or without those fields."""
    stats = result.data.get("stats") or {}
    within, median = stats.get("within_s"), stats.get("median", 0)
    medians = run_medians(result.data)
    if not medians or not isinstance(within, (int, float)) or not isinstance(median, (int, float)) or median <= 0:
        return None
    scale = result.latency / median
    return within * scale, [m * scale for m in medians]


def estimate(plan: Plan, results: dict[str, BrickResult], kernels: bool = False) -> list[ModelEstimate]:
    """Every model's estimate; `kernels`: profiled bricks at their kernel time (`kernel_time`).
    With results of the statistic "best_run", each model's is its estimate from the worker pass
    where that is smallest, every brick at its median of that pass (`pass_results`): the least
    disturbed pass for this model, as a whole model's best_run is its least disturbed process.
    Taking each brick's own best pass instead would bias a sum of many bricks low (the smaller
    of two noisy values is below both on average, once per brick)."""
    passes = pass_results(results)
    return [replace(estimate_model(m, plan, model_results(m, plan, results, passes, kernels), kernels),
                    halfwidth=sum_halfwidth(m, results)) for m in plan.models]


def model_results(model: ModelPlan, plan: Plan, results: dict[str, BrickResult],
                  passes: list[dict[str, BrickResult]], kernels: bool = False) -> dict[str, BrickResult]:
    """The results a model's estimate is made of: `results`, or with `passes` (`pass_results`)
    the pass whose estimate of this model is smallest. Every view of the model (critical path,
    breakdown) reads the same."""
    if not passes:
        return results

    def headline(chosen: dict[str, BrickResult]) -> float:
        est = estimate_model(model, plan, chosen, kernels)
        return est.sequential if est.calibrated is None else est.calibrated

    return min(passes, key=headline)


def pass_results(results: dict[str, BrickResult]) -> list[dict[str, BrickResult]]:
    """For results of the statistic "best_run": the same results once per worker pass, each at
    its median of that pass ("run<k>"); [] for any other statistic or a single pass."""
    ok = [r for r in results.values() if r.ok]
    if not ok or any(r.statistic != "best_run" for r in ok):
        return []
    count = max(len(run_medians(r.data)) for r in ok)
    if count < 2:
        return []
    return [{d: brick_result(r.data, f"run{k}") if r.ok else r for d, r in results.items()} for k in range(count)]


def ratio_halfwidth(est: float, est_hw: float | None, measured: float,
                    measured_hw: float | None) -> float | None:
    """95% half-width of est/measured (first-order propagation of both relative widths)."""
    if est_hw is None or measured_hw is None or est <= 0 or measured <= 0:
        return None
    return est / measured * math.hypot(est_hw / est, measured_hw / measured)


HIT, MISS, NOISE = "hit", "miss", "undecided (noise)"


def verdict(ratio: float | None, width: float | None, tolerance: float = 0.10) -> str | None:
    """Hit only when the ratio's whole interval is within the tolerance, miss only when all of
    it is outside; otherwise the measurements cannot tell (the miss, or hit, may be noise)."""
    if ratio is None:
        return None
    distance, width = abs(ratio - 1), width or 0.0
    if distance + width <= tolerance:
        return HIT
    if distance - width > tolerance:
        return MISS
    return NOISE


def geometric_mean(values: list[float]) -> float | None:
    values = [v for v in values if v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


MODEL_CALL = "(one call of the model)"


def breakdown(model: ModelPlan, plan: Plan, results: dict[str, BrickResult], top: int = 5,
              calibrated: bool = False) -> dict:
    """Where a model's estimated time goes: by op type (a multi-layer brick counts under its
    op sequence, e.g. "Conv>Relu") and the bricks with the largest share; `calibrated`: in the
    terms of the calibrated estimate (its bars add up to it, the model's one call included)."""
    by_op: dict[str, float] = {}
    by_brick: dict[str, list] = {}
    cold = cold_level(model, results)
    for k, digest in enumerate(model.instances):
        result = results.get(digest)
        if result is None or not result.ok:
            continue
        label = ">".join(plan.bricks[digest].ops)
        seconds = instance_seconds(model, k, results, calibrated, cold)
        by_op[label] = by_op.get(label, 0.0) + seconds
        entry = by_brick.setdefault(digest, [label, 0, 0.0])
        entry[1] += 1
        entry[2] += seconds
    if calibrated and by_op:
        by_op[MODEL_CALL] = model_call(model, results)
    total = sum(by_op.values()) or 1.0
    ranked = sorted(by_brick.items(), key=lambda kv: (-kv[1][2], kv[0]))[:top]
    return {
        "by_op": {k: v for k, v in sorted(by_op.items(), key=lambda kv: (-kv[1], kv[0]))},
        "top_bricks": [{"brick": d, "ops": label, "count": n, "seconds": s, "share": s / total}
                       for d, (label, n, s) in ranked],
    }
