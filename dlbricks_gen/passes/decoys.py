"""Decoy bricks: plausible dummy bricks so that the set of bricks does not identify the models.

DLBricks suggests hiding the model set among dummy models. A decoy is a real brick of the suite
rebuilt at a spatial size (rank-4 inputs: height and width) or sequence length (rank-3 inputs)
that real bricks starting with the same op have, with an input no larger than theirs, lowered
by the frontend like any model, so it is a
valid layer sequence with the shapes of a real one. Decoys are drawn with a generator seeded by
the real bricks' digests: the same models give the same decoys, byte for byte. Only the private
plan says which bricks are decoys; the suite treats them like the others.
"""

from __future__ import annotations

import hashlib
import math
import random

import onnx
from onnx import TensorProto, helper

from ..frontend import ShapeOptions, lower_proto
from ..ir import Brick
from ..ir.spec import brick_spec, weightless
from ..runtime.core.spec import build_model
from .partition import Partition, plan_model

ATTEMPTS_PER_DECOY = 20


def add_decoys(partition: Partition, count: int) -> tuple[Partition, tuple[str, ...]]:
    """The partition with up to `count` decoy bricks added, and the decoys' digests."""
    if count <= 0 or not partition.bricks:
        return partition, ()
    real = dict(partition.bricks)
    seed_text = "dlbricks-gen decoys v1\n" + f"{count}\n" + "\n".join(sorted(real)) + "\n"
    rng = random.Random(int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big"))
    pools = _size_pools(real.values())
    decoys: dict[str, Brick] = {}
    templates = sorted(real)
    for _ in range(count * ATTEMPTS_PER_DECOY):
        if len(decoys) == count:
            break
        digest = rng.choice(templates)
        made = _variant(brick_spec(digest, real[digest]), pools, rng)
        if made is not None and made[0] not in real and made[0] not in decoys:
            decoys[made[0]] = made[1]
    bricks = tuple(sorted({**real, **decoys}.items()))
    return Partition(partition.granularity, bricks, partition.models), tuple(sorted(decoys))


def _size_pools(bricks) -> dict[tuple[str, int], tuple[list[tuple[int, ...]], int]]:
    """Per first op and input rank (3, 4): the sizes real bricks starting with that op have,
    with their multiplicity (so a classifier head is never drawn at a feature-map size), and the
    largest such input's element count."""
    pools: dict[tuple[str, int], list[tuple[int, ...]]] = {}
    largest: dict[tuple[str, int], int] = {}
    for brick in bricks:
        for t in brick.inputs:
            if len(t.shape) in RANKS:
                key = (brick.ops[0], len(t.shape))
                pools.setdefault(key, []).append(_sizes(t.shape))
                largest[key] = max(largest.get(key, 0), math.prod(t.shape))
    return {key: (sizes, largest[key]) for key, sizes in pools.items()}


RANKS = (3, 4)


def _sizes(shape) -> tuple[int, ...]:
    return tuple(shape[2:]) if len(shape) == 4 else (shape[1],)


def _variant(spec: dict, pools: dict, rng: random.Random) -> tuple[str, Brick] | None:
    """The brick of `spec` with its first rank-3/4 input's sizes replaced, or None."""
    first = next((t for t in spec["inputs"] if len(t["shape"]) in RANKS), None)
    if first is None:
        return None
    old = _sizes(first["shape"])
    op = spec["nodes"][0]["op_type"]
    op = f"{spec['nodes'][0]['domain']}.{op}" if spec["nodes"][0]["domain"] else op
    sizes, largest = pools.get((op, len(first["shape"])), ([], 0))
    per_size = math.prod(first["shape"]) // max(math.prod(old), 1)  # batch x channels (x width)
    # no input larger than the largest real one for this op: decoys cost what real bricks cost
    choices = [s for s in sizes if s != old and per_size * math.prod(s) <= largest]
    if not choices:
        return None
    new = rng.choice(choices)
    inputs = []
    for t in spec["inputs"]:
        shape = list(t["shape"])
        if len(shape) == len(first["shape"]) and _sizes(shape) == old:
            shape = shape[:2] + list(new) if len(shape) == 4 else [shape[0], new[0], *shape[2:]]
        inputs.append({**t, "shape": shape})
    try:
        model = lower_proto(_proto({**spec, "inputs": inputs}), "decoy", "decoy.onnx", ShapeOptions())
    except Exception:  # noqa: BLE001 - mostly FrontendError; a failed decoy never stops compile
        return None
    if len(model.nodes) != spec["layers"]:
        return None
    plan, bricks = plan_model(model, len(model.nodes))
    if len(plan.instances) != 1:
        return None
    return plan.instances[0], bricks[plan.instances[0]]


def _proto(spec: dict) -> onnx.ModelProto:
    """The SPEC as a model whose weights are declared but not stored (external data that does
    not exist: the frontend reads weights by shape only), outputs left for inference."""
    weights = {t["name"]: t for t in spec["initializers"] if t["data"] == "random"}
    model = build_model({**weightless(spec), "outputs": []})
    kept = [v for v in model.graph.input if v.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    for name, t in weights.items():
        tensor = TensorProto(name=name, data_type=TensorProto.DataType.Value(t["dtype"]), dims=t["shape"])
        tensor.data_location = TensorProto.EXTERNAL
        tensor.external_data.add(key="location", value="decoy-weights-are-never-read")
        model.graph.initializer.append(tensor)
    model.graph.output.extend(helper.make_empty_tensor_value_info(t["name"]) for t in spec["outputs"])
    return model
