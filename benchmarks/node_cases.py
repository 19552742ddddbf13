"""ONNX's node test cases through dlbricks-gen: how many ONNX Runtime runs, compile, compute the
original's outputs, are folded, or are refused (by reason); and how long it takes.

    python benchmarks/node_cases.py

The same check as tests/test_onnx_node_cases.py (whose helpers it uses), as figures.
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from node_cases import all_cases, check_case, ort_outputs  # noqa: E402


def main() -> None:
    start = time.perf_counter()
    cases = all_cases()
    outcomes = []
    for case in cases:
        expected = ort_outputs(case)
        if expected is not None:
            outcomes.append(check_case(case, expected))
    seconds = time.perf_counter() - start
    status = collections.Counter(o.status for o in outcomes)
    reasons = collections.Counter(o.detail.split(": ")[-1] for o in outcomes if o.status == "refused")
    print(f"cases {len(cases)}, ONNX Runtime runs {len(outcomes)}, in {seconds:.1f} s")
    for name in ("equal", "folded", "refused", "mismatch", "load failure"):
        print(f"  {name:<13}{status.get(name, 0):>6}")
    for reason, count in reasons.most_common():
        print(f"    refused {count:>3}: {reason}")
    for o in outcomes:
        if o.status in ("mismatch", "load failure"):
            print(f"  {o.status}: {o.case}: {o.detail}")


if __name__ == "__main__":
    main()
