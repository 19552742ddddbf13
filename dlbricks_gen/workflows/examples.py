"""The committed example suite (generated/): the demo models at default scale, H=1 in fused
kernels (compile's default), brick ids keyed with the public DEMO_SECRET (codegen/keys.py) so
that anyone can reproduce it byte for byte (a real compile keys with the user's own secret). No
decoys, so that it shows exactly the models' bricks; `example_suite(decoys=True)` adds compile's default budget.

    python -m dlbricks_gen.workflows.examples generated examples/generated.plan.json

Models are built and lowered in memory (nothing written but the suite and its plan), so a test
can regenerate the suite and compare it with the committed one.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..codegen.keys import DEMO_SECRET
from ..frontend import ShapeOptions, lower_proto
from ..passes.decoys import DEFAULT as DEFAULT_DECOYS
from ..passes.decoys import Budget
from ..zoo import DEMO_MODELS, ZooOptions, build_model
from .compile import Assembled, Recipe, assemble, fusion_groups, layout_conversions, write_assembled

GRANULARITY = 1


def example_suite(decoys: bool = False) -> Assembled:
    """The example suite, assembled in memory (with `decoys`: at compile's default budget)."""
    lowered = [lower_proto(build_model(m, ZooOptions()), m, f"{m}.onnx", ShapeOptions(batch=1))
               for m in DEMO_MODELS]
    models, units = fusion_groups(lowered, True)  # compile's default: never cut a fused kernel
    budget = Budget.parse(DEFAULT_DECOYS if decoys else "0")
    recipe = Recipe(GRANULARITY, ShapeOptions(batch=1), budget.count, decoy_share=budget.share, secret=DEMO_SECRET)
    return assemble(models, recipe, units, layouts=layout_conversions(models))


def render_example() -> tuple[dict[str, str], str]:
    """The example suite's files and its plan text."""
    suite = example_suite()
    return suite.files, suite.plan


def main(argv: list[str]) -> int:
    suite_dir, plan_path = Path(argv[0]), Path(argv[1])
    suite = example_suite()
    write_assembled(suite, suite_dir, plan_path)
    print(f"{suite_dir}: {len(suite.info.bricks)} bricks; plan {plan_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
