"""assemble, the one assembly of a suite: the models' order changes no shipped byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlbricks_gen.frontend import ShapeOptions, find_models, load_model
from dlbricks_gen.workflows.compile import Recipe, assemble

B1 = ShapeOptions(batch=1)


@pytest.mark.parametrize("granularity", [1, 3])
def test_suite_does_not_depend_on_the_models_order(tiny_zoo: Path, models_dir: Path, granularity: int):
    models = [load_model(p, root, B1) for root in (tiny_zoo, models_dir) for p in find_models(root)]
    assert len(models) > 3
    first = assemble(models, Recipe(granularity, B1, decoys=3))
    exclude = frozenset(d for d, _ in first.partition.bricks[::4])  # some already measured
    recipe = Recipe(granularity, B1, decoys=3, exclude=exclude)
    forward, backward = assemble(models, recipe), assemble(models[::-1], recipe)
    assert forward.files == backward.files
    assert forward.decoys == backward.decoys
    # the plan lists the models in the order they came; each model's entry is the same
    plans = [json.loads(s.plan) for s in (forward, backward)]
    assert plans[0]["models"] == plans[1]["models"][::-1]
    assert {k: v for k, v in plans[0].items() if k != "models"} == \
        {k: v for k, v in plans[1].items() if k != "models"}
