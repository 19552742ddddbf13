"""How much of two studies' difference is the runtime's call costs, measured once per run.

    python benchmarks/call_costs.py STUDY_A STUDY_B

Every brick result carries the call costs its process measured (`calibration.null_call_s`,
`node_s`: runtime/core/calibration.py `call_costs`), and the calibrated estimate subtracts them
per brick. On a VM whose speed moves in phases one such measurement can land in a slow phase
(session 8, AMD EPYC Zen 3: 3.50 us in one FP32 study, 6.77 us in the next). This recomputes the
default estimate of each study (H=1, the default statistic) with its own costs, with the other study's, and
with the smaller of the two in both, and prints how far the two studies' estimates are apart.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from accuracy import load_study  # noqa: E402

from dlbricks_gen.estimate.model import estimate, geometric_mean  # noqa: E402
from dlbricks_gen.results.load import (  # noqa: E402
    DEFAULT_STATISTIC,
    BrickResult,
    recorded_call_costs,
    with_call_costs,
)


def with_costs(results: dict[str, BrickResult], null: float, node: float) -> dict[str, BrickResult]:
    """The results with these call costs (results that record none are left as they are)."""
    return {key: r if recorded_call_costs(r) is None else with_call_costs(r, null, node)
            for key, r in results.items()}


def costs(results: dict[str, BrickResult]) -> tuple[float, float]:
    """The fastest (null call, node) costs any result of the study recorded."""
    return min(c for r in results.values() if (c := recorded_call_costs(r)) is not None)


def main(argv: list[str]) -> int:
    studies = [Path(a) for a in argv]
    if len(studies) != 2:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    loaded = [load_study(s, 1, DEFAULT_STATISTIC) for s in studies]
    own = [costs(results) for _, results, _ in loaded]
    estimates = {}
    for i, (plan, results, measured) in enumerate(loaded):
        for label, (null, node) in (("own", own[i]), ("other", own[1 - i]), ("min", min(own))):
            est = {e.name: e.calibrated for e in estimate(plan, with_costs(results, null, node))
                   if e.complete and e.calibrated is not None}
            r = [est[n] / measured[n].latency for n in est if n in measured and measured[n].ok]
            estimates[i, label] = est
            print(f"{studies[i].name}: {label:5s} costs, null call {null * 1e6:.2f} us, node "
                  f"{node * 1e6:.3f} us: {sum(abs(x - 1) <= 0.1 for x in r)}/{len(r)} within 10%, "
                  f"geomean {geometric_mean(r):.3f}")
    for label in ("own", "min"):
        a, b = estimates[0, label], estimates[1, label]
        d = [abs(a[n] / b[n] - 1) for n in a if n in b]
        print(f"{label} costs: the two studies' estimates differ by a median "
              f"{statistics.median(d) * 100:.1f}%, {sum(x < 0.02 for x in d)}/{len(d)} within 2%, "
              f"largest {max(d) * 100:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
