"""Is this machine quiet enough to judge a 10% estimate? Its own speed over time.

    taskset -c 1 python benchmarks/machine_phases.py [--seconds 12] [--windows 24]

Times, back to back for the given seconds, a fixed piece of work of about 4 ms (a pure-Python
integer loop, no memory traffic) and prints, per time window, the fastest and the median time:
on a quiet core every window looks alike; on a shared one (neighbours on the host's cores,
turbo budgets) the same work runs at different speeds in phases. It then prints the ratio of
the slowest to the fastest window median and the share of the time spent more than 25% slower
than the fastest window. A whole model timed for about a second falls into one phase while a
suite's sum of many bricks averages over them, so where the ratio is far above 1.1 a +-10%
accuracy figure says more about the machine than the estimator.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def work(n: int = 200_000) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def timeline(seconds: float) -> list[tuple[float, float]]:
    """(start, duration) of each timed piece of work, seconds from the first."""
    work()
    out, t0 = [], time.perf_counter()
    while (now := time.perf_counter()) - t0 < seconds:
        work()
        out.append((now - t0, time.perf_counter() - now))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--windows", type=int, default=24)
    args = parser.parse_args(argv)
    samples = timeline(args.seconds)
    size = max(1, len(samples) // args.windows)
    medians = []
    for i in range(0, len(samples) - size + 1, size):
        chunk = [d for _, d in samples[i:i + size]]
        medians.append(statistics.median(chunk))
        print(f"t={samples[i][0]:5.1f} s  fastest {min(chunk) * 1e3:6.2f} ms  median {medians[-1] * 1e3:6.2f} ms")
    fastest = min(medians)
    slow = sum(m > 1.25 * fastest for m in medians) / len(medians)
    print(f"slowest / fastest window median: {max(medians) / fastest:.2f}; "
          f"time more than 25% slower than the fastest window: {slow:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
