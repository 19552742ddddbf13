"""The partitioner: cut each model into layer sequences of at most H layers, deduplicate.

DLBricks' Algorithm 1, with its off-by-one slips fixed: walk the layers in the canonical
topological order; from `begin`, grow a window over the following layers while the window has
fewer than H layers and the next layer consumes a value produced inside the window (so every
sequence is a connected, runnable network); emit the window and continue after it. Windows do
not overlap and every layer lands in exactly one. Sequences are deduplicated across all models
by the sha256 of their canonical text (`Brick.digest`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import onnx

from ..ir import Brick, BrickInput, Kind, LayerOutput, Model, ModelPlan, Ref, TensorType
from ..ir.canonical import brick_digest


@dataclass(frozen=True, slots=True)
class Partition:
    granularity: int
    bricks: tuple[tuple[str, Brick], ...]  # sorted by digest
    models: tuple[ModelPlan, ...]

    def brick(self, digest: str) -> Brick:
        return dict(self.bricks)[digest]


def windows(model: Model, granularity: int,
            units: tuple[tuple[int, int], ...] | None = None) -> list[tuple[int, int]]:
    """Non-overlapping [begin, end) spans of at most `granularity` connected units.

    A unit is a [begin, end) span of nodes that must not be cut (a group the runtime fuses,
    see fusion.py); by default every layer is its own unit.
    """
    if granularity < 1:
        raise ValueError("granularity must be at least 1")
    units = units or tuple((i, i + 1) for i in range(len(model.nodes)))
    producer = {out: i for i, node in enumerate(model.nodes) for out in node.outputs if out}

    def feeds(begin: int, unit: tuple[int, int]) -> bool:
        first, last = unit
        return any(begin <= producer.get(name, -1) < first
                   for i in range(first, last) for name in model.nodes[i].inputs if name)

    spans, k = [], 0
    while k < len(units):
        end = k + 1
        while end < min(len(units), k + granularity) and feeds(units[k][0], units[end]):
            end += 1
        spans.append((units[k][0], units[end - 1][1]))
        k = end
    return spans


def make_brick(model: Model, begin: int, end: int, consumed_after: dict[str, set[int]],
               nhwc: frozenset[str] = frozenset()) -> Brick:
    """The name-free brick for nodes [begin, end) of `model`; `nhwc`: the model's values that
    it carries channels-last (passes/layout.py), given to and taken from the brick so."""
    local: dict[str, LayerOutput] = {}
    for i in range(begin, end):
        for j, name in enumerate(model.nodes[i].outputs):
            if name:
                local[name] = LayerOutput(i - begin, j)
    external: dict[str, BrickInput] = {}
    input_types: list[TensorType] = []
    wiring = []
    for i in range(begin, end):
        node = model.nodes[i]
        refs: list[Ref | None] = []
        for name, operand in zip(node.inputs, node.layer.inputs, strict=True):
            if operand.kind is not Kind.ACTIVATION:
                refs.append(None)
            elif name in local:
                refs.append(local[name])
            else:
                if name not in external:
                    if operand.type is None:
                        raise ValueError(f"{model.file}: {node.name}: input {name!r} has no type")
                    external[name] = BrickInput(len(external))
                    input_types.append(operand.type)
                refs.append(external[name])
        wiring.append(tuple(refs))
    model_outputs = set(model.outputs)
    outputs = tuple(
        pos
        for name, pos in local.items()
        if name in model_outputs
        or not consumed_after.get(name)
        or any(not begin <= c < end for c in consumed_after[name])
    )
    layers = tuple(model.nodes[i].layer for i in range(begin, end))
    names = {pos: name for name, pos in local.items()}
    outs = tuple(sorted(outputs))
    return Brick(tuple(input_types), layers, tuple(wiring), outs,
                 tuple(ref.index for name, ref in external.items() if name in nhwc),
                 tuple(k for k, pos in enumerate(outs) if names[pos] in nhwc))


def consumers(model: Model) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for i, node in enumerate(model.nodes):
        for name in node.inputs:
            if name:
                found.setdefault(name, set()).add(i)
    return found


def plan_model(model: Model, granularity: int, units: tuple[tuple[int, int], ...] | None = None,
               nhwc: frozenset[str] = frozenset()) -> tuple[ModelPlan, dict[str, Brick]]:
    spans = windows(model, granularity, units)
    used_by = consumers(model)
    bricks = {}
    instances = []
    owner = {}
    for k, (begin, end) in enumerate(spans):
        brick = make_brick(model, begin, end, used_by, nhwc)
        digest = brick_digest(brick)
        bricks[digest] = brick
        instances.append(digest)
        for i in range(begin, end):
            for name in model.nodes[i].outputs:
                owner[name] = k
    edges = set()
    for k, (begin, end) in enumerate(spans):
        for i in range(begin, end):
            for name in model.nodes[i].inputs:
                if name in owner and owner[name] != k:
                    edges.add((owner[name], k))
    plan = ModelPlan(model.name, model.file, len(model.nodes), tuple(instances), tuple(sorted(edges)),
                     weight_bytes=weight_bytes(model))
    return plan, bricks


def weight_bytes(model: Model) -> int:
    """Bytes of the weights the model's layers read (a weight read by two layers counts twice):
    whether they fit in a cache decides whether its bricks are estimated warm or cold."""
    return sum(math.prod(op.type.shape) * itemsize(op.type.dtype)
               for node in model.nodes for op in node.layer.inputs
               if op.kind == Kind.WEIGHT and op.type is not None)


def itemsize(dtype: str) -> int:
    """Bytes per element of an ONNX tensor type name ("FLOAT" -> 4); sub-byte types count 1."""
    return max(1, onnx.helper.tensor_dtype_to_np_dtype(onnx.TensorProto.DataType.Value(dtype)).itemsize)


def partition(models: list[Model], granularity: int,
              units: dict[str, tuple[tuple[int, int], ...]] | None = None,
              nhwc: dict[str, frozenset[str]] | None = None) -> Partition:
    """Cut every model and deduplicate the sequences across all of them.

    `units` (by model name) are spans that must stay whole; H then counts units, not layers.
    `nhwc` (by model name): the values each model carries channels-last (passes/layout.py).
    """
    plans, bricks = [], {}
    for model in models:
        plan, found = plan_model(model, granularity, (units or {}).get(model.name),
                                 (nhwc or {}).get(model.name, frozenset()))
        plans.append(plan)
        bricks.update(found)
    return Partition(granularity, tuple(sorted(bricks.items())), tuple(plans))


def parse_granularities(text: str) -> list[int]:
    """The syntax of -H, defined once: '1..4' -> [1, 2, 3, 4]; '1,2,6' -> [1, 2, 6]; '3' -> [3]."""
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, dots, hi = part.partition("..")
            out.extend(range(int(lo), int(hi) + 1) if dots else [int(lo)])
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise ValueError(f"-H {text!r}: not a granularity (use a whole number of at least 1, "
                         "or for several: 1..4 or 1,2,6)")
    return sorted(set(out))
