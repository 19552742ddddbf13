"""The partitioner: exact covers of the layers by connected sequences of at most H layers."""

from __future__ import annotations

import pytest
from conftest import branchy_mlp, residual_cnn

from dlbricks_gen.frontend import ShapeOptions, find_models, load_model, lower_proto
from dlbricks_gen.ir import LayerOutput, Model
from dlbricks_gen.passes.partition import consumers, make_brick, partition, windows


def lower(model) -> Model:
    return lower_proto(model, "m", "m.onnx", ShapeOptions(batch=1))


def assert_exact_connected_cover(model: Model, granularity: int) -> None:
    spans = windows(model, granularity)
    covered = [i for begin, end in spans for i in range(begin, end)]
    assert covered == list(range(len(model.nodes)))  # every layer exactly once, in order
    producer = {o: i for i, n in enumerate(model.nodes) for o in n.outputs}
    for begin, end in spans:
        assert 1 <= end - begin <= granularity
        for k in range(begin + 1, end):  # each later layer consumes something of the window
            assert any(begin <= producer.get(name, -1) < k for name in model.nodes[k].inputs if name)


@pytest.mark.parametrize("granularity", [1, 2, 3, 4])
def test_hand_models_are_covered_exactly(granularity: int):
    for model in (lower(residual_cnn()), lower(branchy_mlp())):
        assert_exact_connected_cover(model, granularity)


@pytest.mark.parametrize("granularity", [1, 2, 3, 4])
def test_zoo_models_are_covered_exactly_and_dedup_shrinks(tiny_zoo, granularity: int):
    models = [load_model(p, tiny_zoo, ShapeOptions(batch=1)) for p in find_models(tiny_zoo)]
    for model in models:
        assert_exact_connected_cover(model, granularity)
    parts = partition(models, granularity)
    instances = sum(len(m.instances) for m in parts.models)
    assert len(parts.bricks) < instances
    layers = {d: len(b.layers) for d, b in parts.bricks}
    for model, plan in zip(models, parts.models, strict=True):
        spans = plan.spans(layers)
        assert list(spans) == windows(model, granularity)
        for digest, (begin, end) in zip(plan.instances, spans, strict=True):
            assert make_brick(model, begin, end, consumers(model)) == parts.brick(digest)


def test_branches_are_not_joined_into_one_sequence():
    model = lower(branchy_mlp())
    assert [n.layer.op_type for n in model.nodes] == ["MatMul", "Relu", "MatMul", "Relu", "Concat"]
    assert windows(model, 4) == [(0, 2), (2, 5)]
    plan = partition([model], 4).models[0]
    assert plan.edges == ((0, 1),)
    plan1 = partition([model], 1).models[0]
    assert plan1.edges == ((0, 1), (1, 4), (2, 3), (3, 4))


def test_brick_outputs_include_values_used_outside_the_window():
    model = lower(residual_cnn())
    # H=2 cuts [Conv, BN] [Relu, Conv] [Add, Reshape] [Relu]; the model input feeds Add later.
    parts = partition([model], 2)
    first = parts.brick(parts.models[0].instances[0])
    assert first.outputs == (LayerOutput(1, 0),)
    add_brick = parts.brick(parts.models[0].instances[2])
    assert len(add_brick.inputs) == 2  # Conv output and the skip connection


def test_granularity_must_be_positive():
    with pytest.raises(ValueError):
        windows(lower(branchy_mlp()), 0)


def test_depth_first_order_keeps_chains_together_and_finds_cycles():
    from dlbricks_gen.ir.order import depth_first_order

    # 0 -> 1 -> 3 and 0 -> 2 -> 4: after 0, its chain through 1 comes first, then 2's
    assert depth_first_order([[], [0], [0], [1], [2]]) == [0, 1, 3, 2, 4]
    assert depth_first_order([[], [], [0, 1], [0, 0]]) == [0, 3, 1, 2]  # repeated preds count once
    assert depth_first_order([[1], [0]]) is None
