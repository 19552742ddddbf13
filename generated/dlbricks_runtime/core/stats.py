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


def statistics(values: list[float], loops: int, ci_target: float) -> dict:
    """The "stats" part of a result, from per-call times in seconds."""
    ordered = sorted(values)
    n = len(ordered)
    median = percentile(ordered, 50)
    mean = math.fsum(ordered) / n
    stdev = math.sqrt(math.fsum((v - mean) ** 2 for v in ordered) / (n - 1)) if n > 1 else 0.0
    ci_rel = ci95_rel(ordered)
    return {
        "unit": "s", "median": median, "trimmed_mean_20": trimmed_mean(ordered, 0.2),
        "mean": mean, "stdev": stdev, "p90": percentile(ordered, 90), "min": ordered[0],
        "n": n, "loops": loops, "ci95_rel": ci_rel,
        "target_reached": n >= MIN_VALUES_FOR_CI and ci_rel <= ci_target,
    }
