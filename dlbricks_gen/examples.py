"""The committed example suite (generated/): the demo models at default scale, H=1.

    python -m dlbricks_gen.examples generated examples/generated.plan.json

Models are built and lowered in memory (nothing written but the suite and its plan), so a test
can regenerate the suite and compare it with the committed one.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .frontend import ShapeOptions, lower_proto
from .generate import render_suite, write_suite
from .partition import partition
from .plan import plan_json
from .zoo import DEMO_MODELS, ZooOptions, build_model

GRANULARITY = 1


def render_example() -> tuple[dict[str, str], str]:
    """The example suite's files and its plan text."""
    models = []
    for model_id in DEMO_MODELS:
        proto = build_model(model_id, ZooOptions())
        models.append(lower_proto(proto, model_id, f"{model_id}.onnx", ShapeOptions(batch=1)))
    parts = partition(models, GRANULARITY)
    info, files = render_suite(parts)
    return files, plan_json(parts, info.suite, [], ShapeOptions(batch=1))


def main(argv: list[str]) -> int:
    suite_dir, plan_path = Path(argv[0]), Path(argv[1])
    files, plan = render_example()
    write_suite(files, suite_dir)
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(plan, encoding="utf-8")
    print(f"{suite_dir}: {sum(r.startswith('bricks/') for r in files)} bricks; plan {plan_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
