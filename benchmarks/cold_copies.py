"""Cold-cache copies: every copy a session against the timed copies only, the rest streamed.

A part of a cold round times 5 copies (runtime/core/cold.py `timed_copies`); the copies a span
has beyond those used to be made as sessions only for their first call. This measures, on every
brick of a generated suite that has more copies than that in a span, the cold measurement three
ways in one process, alternated per brick: every copy a session (the old way), the same again
(how much the old way moves against itself), and the timed copies with the rest streamed (the
way `cold_record` measures now); then the time each took and, per brick, the near/warm and
far/warm ratios of the other two against the first (medians and quartiles).

    taskset -c 1 .venv/bin/python benchmarks/cold_copies.py SUITE            # ~1 min on 16 models
    taskset -c 1 .venv/bin/python benchmarks/cold_copies.py SUITE --limit 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from dlbricks_gen.runtime.core import cold
from dlbricks_gen.runtime.core.data import input_feeds
from dlbricks_gen.runtime.core.machine import machine_info
from dlbricks_gen.runtime.core.session import make_session
from dlbricks_gen.runtime.core.settings import Settings
from dlbricks_gen.runtime.core.spec import build_model, load_spec, model_inputs

WAYS = ("sessions", "sessions again", "streamed")


def measure(way: str, model_bytes: bytes, feeds: dict, nbytes: int, near: int, far: int,
            settings: Settings) -> tuple[float, float | None, float | None]:
    """(seconds, near/warm, far/warm) of one cold measurement of a brick, made `way`."""
    start = time.perf_counter()
    copies = max(near, far)
    made = cold.timed_copies(copies) if way == "streamed" else copies
    session = make_session(model_bytes, settings)
    session.run(None, feeds)  # the measured session has run before, as in cold_record
    sessions = [session] + [make_session(model_bytes, settings) for _ in range(made - 1)]
    calls = [call for call, _ in cold.shared_calls(sessions, feeds)]
    warm, near_s, far_s = cold.measure_cold(calls, near, far, (copies - made) * nbytes)
    del calls, sessions, session
    return (time.perf_counter() - start, near_s / warm if near > 1 else None,
            far_s / warm if far > 1 else None)


def bricks(suite: Path, l2: int, limit: int):  # noqa: ANN201 - yields (id, bytes, feeds, nbytes, near, far)
    found = 0
    for path in sorted((suite / "bricks").glob("*.py")):
        model = build_model(load_spec(path))
        nbytes = cold.footprint(model)
        near, far = cold.copies_needed(nbytes, l2), cold.far_copies(nbytes, l2)
        if max(near, far) <= cold.CALLS:
            continue  # every copy is timed: both ways are the same
        data, feeds = model.SerializeToString(), input_feeds(model_inputs(model))
        try:
            make_session(data, Settings()).run(None, feeds)
        except Exception:  # noqa: BLE001 - a brick that does not run here is skipped
            continue
        yield path.stem, data, feeds, nbytes, near, far
        found += 1
        if found >= limit:
            return


def paired(results: dict, way: str, index: int) -> str:
    ratios = [a[index] / b[index] for a, b in zip(results[way], results[WAYS[0]], strict=True)
              if a[index] is not None and b[index] is not None]
    if not ratios:
        return "none measured"
    low, high = np.percentile(ratios, [25, 75])
    return f"{statistics.median(ratios):.3f}x (quartiles {low:.3f}-{high:.3f}, {len(ratios)} bricks)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("suite", type=Path, help="a generated suite (its bricks/ folder)")
    p.add_argument("--limit", type=int, default=10**6, help="at most this many bricks")
    args = p.parse_args(argv)
    l2 = machine_info()["caches"].get("l2", 0)
    settings = Settings()
    results: dict[str, list] = {way: [] for way in WAYS}
    for index, (_, data, feeds, nbytes, near, far) in enumerate(bricks(args.suite, l2, args.limit)):
        order = WAYS[index % 3:] + WAYS[:index % 3]  # each way first as often
        for way in order:
            results[way].append(measure(way, data, feeds, nbytes, near, far, settings))
    count = len(results[WAYS[0]])
    print(f"{count} bricks with more than {cold.CALLS} copies in a span (L2 {l2 >> 10} KiB)")
    for way in WAYS:
        print(f"  {way:<15} {sum(r[0] for r in results[way]):7.2f} s")
    for way in WAYS[1:]:
        print(f"  {way} / sessions, per brick: near/warm {paired(results, way, 1)}; "
              f"far/warm {paired(results, way, 2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
