"""Statistics of timed values: the median and its distribution-free 95% interval, trimmed mean,
percentiles (the "stats" part of a result)."""

from __future__ import annotations

import functools
import math

# A distribution-free 95% interval of the median needs at least 6 values (2 / 2**6 < 5%).
MIN_VALUES_FOR_CI = 6


@functools.cache
def _ci_rank(n: int) -> int:
    """Largest j with P(B <= j-1) <= 2.5%, B ~ Binomial(n, 1/2); 0 when n is too small."""
    total, cumulative, term, j = 2 ** n, 0, 1, 0
    while j < n and (cumulative + term) * 40 <= total:
        cumulative += term
        term = term * (n - j) // (j + 1)
        j += 1
    return j


def median_ci95(ordered: list[float]) -> tuple[float, float]:
    """Distribution-free 95% interval of the median: order statistics [x_(j), x_(n+1-j)]
    (1-based) with j from the binomial distribution; the whole range below 6 values."""
    n = len(ordered)
    j = _ci_rank(n)
    return (ordered[0], ordered[-1]) if j == 0 else (ordered[j - 1], ordered[n - j])


def ci95_rel(ordered: list[float]) -> float:
    """Half the width of the 95% interval of the median, relative to the median."""
    low, high = median_ci95(ordered)
    median = percentile(ordered, 50)
    return (high - low) / 2 / median if median > 0 else 0.0


def target_halfwidth(median: float, ci_target: float, abs_target_s: float) -> float:
    """The stopping rule's target for the interval half-width, in seconds (core/settings.py)."""
    return max(ci_target * median, abs_target_s)


def percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def trimmed_mean(ordered: list[float], proportion: float = 0.2) -> float:
    """scipy.stats.trim_mean semantics: drop int(proportion * n) values at each end."""
    cut = int(proportion * len(ordered))
    kept = ordered[cut:len(ordered) - cut]
    return math.fsum(kept) / len(kept)


def statistics(values: list[float], loops: int, ci_target: float,
               abs_target_s: float = 0.0) -> dict:
    """The "stats" part of a result, from per-call times in seconds (one process's values)."""
    ordered = sorted(values)
    n = len(ordered)
    median = percentile(ordered, 50)
    mean = math.fsum(ordered) / n
    stdev = math.sqrt(math.fsum((v - mean) ** 2 for v in ordered) / (n - 1)) if n > 1 else 0.0
    ci_rel = ci95_rel(ordered)
    return {
        "unit": "s", "median": median, "trimmed_mean_20": trimmed_mean(ordered, 0.2),
        "mean": mean, "stdev": stdev, "p90": percentile(ordered, 90), "min": ordered[0],
        "n": n, "loops": loops, "ci95_rel": ci_rel, "halfwidth_s": ci_rel * median,
        "target_reached": (n >= MIN_VALUES_FOR_CI
                           and ci_rel * median <= target_halfwidth(median, ci_target, abs_target_s)),
    }


def between_halfwidth(medians: list[float]) -> float:
    """95% half-width of the mean of per-process medians (normal approximation,
    1.96 x stdev / sqrt(k)); 0 for a single process, whose between-run part is unknown."""
    k = len(medians)
    if k < 2:
        return 0.0
    mean = math.fsum(medians) / k
    stdev = math.sqrt(math.fsum((m - mean) ** 2 for m in medians) / (k - 1))
    return 1.96 * stdev / math.sqrt(k)


def pooled(values: list[float], runs: list[dict], ci_target: float,
           abs_target_s: float = 0.0) -> dict:
    """Stats of values pooled over several processes (or sessions): `runs` holds each one's
    {"median", "n", "loops", "halfwidth_s", ...}. The half-width combines the pooled median's
    own interval with the spread between the processes' medians (root sum of squares)."""
    stats = statistics(values, max(r["loops"] for r in runs), ci_target, abs_target_s)
    within = stats["halfwidth_s"]
    between = between_halfwidth([r["median"] for r in runs])
    total = math.hypot(within, between)
    median = stats["median"]
    stats.update({"within_s": within, "between_s": between, "halfwidth_s": total,
                  "processes": len(runs), "runs": runs,
                  "target_reached": stats["target_reached"] and all(
                      r.get("target_reached", True) for r in runs)})
    stats["ci95_rel"] = total / median if median > 0 else 0.0
    return stats
