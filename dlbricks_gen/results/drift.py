"""The machine's own speed over a run, from the reference benchmark every result records
(`reference_s`, runtime/core/reference.py): flag it, and optionally correct for it.

The reference is a fixed graph, so its time changes only when the machine does (turbo,
thermal limits, neighbours). `reference_spread` is how far apart the slowest and fastest
reference times of a set of results are; above DRIFT_WARNING the results were taken on a
machine whose speed moved that much, and estimates or ratios inside that band are not
trustworthy. `corrected` rescales a latency to the set's median reference (latency x
median reference / this result's reference): a first-order correction that assumes a slower
machine slows every benchmark in proportion; benchmarks/measurement_policy.py prints the ratios
with and without it (it did not help reliably: README, docs/ACCURACY-LOG.md), so it is not applied
by default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .load import BrickResult

DRIFT_WARNING = 0.05


def reference_times(results: Iterable[BrickResult]) -> list[float]:
    return sorted(t for r in results if r.ok for t in r.data.get("reference_s") or [])


def reference_spread(results: Iterable[BrickResult]) -> float | None:
    """max / min - 1 of the reference times recorded in `results` (None: none recorded)."""
    times = reference_times(results)
    return times[-1] / times[0] - 1 if times and times[0] > 0 else None


def drift_warning(results: Iterable[BrickResult], label: str) -> str | None:
    spread = reference_spread(results)
    if spread is None or spread <= DRIFT_WARNING:
        return None
    return (f"{label}: the reference benchmark moved by {spread:.0%} during the run (more than "
            f"{DRIFT_WARNING:.0%}): the machine's own speed changed, so differences of that size "
            f"are not the models'")


def corrected(result: BrickResult, baseline: float) -> BrickResult:
    """The result with its latency (and the reorder times calibration removes) rescaled to a
    machine whose reference takes `baseline` seconds; unchanged without a reference."""
    if not result.ok or result.reference is None or result.reference <= 0:
        return result
    factor = baseline / result.reference
    boundary = None if result.boundary is None else result.boundary * factor
    return replace(result, value=result.latency * factor, boundary=boundary,
                   reorder_in=result.reorder_in * factor, reorder_out=result.reorder_out * factor)


def corrected_all(results: dict[str, BrickResult], baseline: float) -> dict[str, BrickResult]:
    return {key: corrected(r, baseline) for key, r in results.items()}


def median_reference(results: Iterable[BrickResult]) -> float | None:
    times = reference_times(results)
    return times[len(times) // 2] if times else None
