"""Decoy bricks: whole plausible paths of dummy bricks, so the brick set does not identify the models.

DLBricks suggests hiding the model set among dummy models; Proteus (MLSys 2024) shows decoys
must survive an attacker who knows how they are made. A single rebuilt brick stands out: real
bricks chain (one's output shape is another's input shape) and a lone decoy does not. So a
decoy here is a *path*: a run of consecutive layers of a real model, rebuilt with every spatial
size (or sequence length) scaled by one ratio that maps its first input onto a size real bricks
with the same first op have, lowered by the frontend like any model and cut at the suite's H.
Inside a path the bricks chain exactly as real ones do, their shapes are the suite's own
(every decoy input size is a size some real brick has, never larger than the largest real input
for its first op), and only the path's ends can fail to chain, as a real model's ends do.

The budget is a number of bricks or a share of the suite's latency, guessed from FLOPs and
bytes (cost.py). Decoys are drawn by a generator seeded with the user's secret and the real
bricks' digests: the same models, budget and secret give the same decoys, byte for byte, and
an attacker who knows this code and the models cannot redraw them without the secret. Only the
private plan says which bricks are decoys; the suite treats them like the others.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from fractions import Fraction

import onnx
from onnx import TensorProto, helper

from ..frontend import ShapeOptions, lower_proto
from ..ir import Brick, Layer, Model, TensorType
from ..ir.spec import brick_spec, weightless
from ..runtime.core.spec import build_model
from .cost import brick_cost
from .layout import channels_last_candidates
from .partition import Partition, consumers, make_brick, plan_model

ATTEMPTS_PER_PATH = 8  # spans tried per path wanted before giving up
PATH_LAYERS = (4, 24)  # layers per decoy path, drawn uniformly
RANKS = (3, 4)
IMAGE_CHANNELS = (1, 3)  # a decoy never reads an image of a size no real model reads
MAX_SHARE = 10.0  # decoys costing 10x the real bricks: beyond that, a typo
DEFAULT = "40%"  # compile's default budget: every attack of codegen/attacks.py at AUC <= 0.6 (benchmarks/privacy.py)


@dataclass(frozen=True, slots=True)
class Budget:
    """How many decoys: up to `count` bricks, or bricks until their guessed latency reaches
    `share` of the real bricks' (both 0: none)."""

    count: int = 0
    share: float = 0.0

    @property
    def empty(self) -> bool:
        return self.count <= 0 and self.share <= 0

    @classmethod
    def parse(cls, text: str) -> Budget:
        """`--decoys`: "20%" or "0.2" (a share of the suite's guessed latency), "40" (bricks)."""
        try:
            if text.endswith("%"):
                budget = cls(share=float(text[:-1]) / 100)
            elif "." in text:
                budget = cls(share=float(text))
            else:
                budget = cls(count=int(text))
        except ValueError:
            budget = cls(count=-1)
        if budget.count < 0 or not 0 <= budget.share <= MAX_SHARE:
            raise ValueError(f"--decoys {text!r}: give a share of the suite's latency (20% or 0.2, at most "
                             f"{MAX_SHARE:.0%}) or a number of bricks (40)")
        return budget


def add_decoys(parts: Partition, models: list[Model], budget: Budget, secret: bytes = b""
               ) -> tuple[Partition, tuple[str, ...]]:
    """The partition with decoy paths added within the budget, and the decoys' digests."""
    if budget.empty or not parts.bricks:
        return parts, ()
    real = dict(parts.bricks)
    rng = _generator(real, budget, secret)
    limit = budget.share * sum(brick_cost(b) for b in real.values())
    pools, sizes = _size_pools(real.values()), (_real_sizes(real.values()), _types(real.values()))
    # Models in a name-free order (by their bricks): decoys depend neither on names nor on order.
    order = sorted(range(len(models)), key=lambda i: parts.models[i].instances)
    sources = [models[i] for i in order if models[i].nodes]
    # A model run channels-last (8-bit, passes/layout.py) has bricks with NHWC edges: its decoys too.
    nhwc = {models[i].name for i in order
            if any(real[d].nhwc_inputs or real[d].nhwc_outputs for d in parts.models[i].instances)}
    decoys: dict[str, Brick] = {}
    spent = 0.0

    def full() -> bool:
        return (budget.count > 0 and len(decoys) >= budget.count) or (budget.share > 0 and spent >= limit)

    for _ in range(ATTEMPTS_PER_PATH * max(budget.count, 8) * 4):
        if full() or not sources:
            break
        source = rng.choice(sources)
        for digest, brick in _path(source, rng, pools, sizes, parts.granularity, source.name in nhwc):
            if full():
                break
            if digest not in real and digest not in decoys:
                decoys[digest] = brick
                spent += brick_cost(brick)
    bricks = tuple(sorted({**real, **decoys}.items()))
    return Partition(parts.granularity, bricks, parts.models), tuple(sorted(decoys))


def _generator(real: dict[str, Brick], budget: Budget, secret: bytes) -> random.Random:
    text = f"dlbricks-gen decoys v2\n{budget.count}\n{budget.share!r}\n" + "\n".join(sorted(real)) + "\n"
    seed = hashlib.sha256(secret + b"\n" + text.encode()).digest()[:8]
    return random.Random(int.from_bytes(seed, "big"))


Pools = dict[tuple[str, int], tuple[list[tuple[int, ...]], int]]


def _size_pools(bricks) -> Pools:
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


def _real_sizes(bricks) -> set[tuple[int, tuple[int, ...]]]:
    return {(len(t.shape), _sizes(t.shape)) for b in bricks for t in b.inputs if len(t.shape) in RANKS}


def _types(bricks) -> set[TensorType]:
    """The rank-3/4 tensor types real bricks read or write."""
    found = set()
    for b in bricks:
        found |= {t for t in b.inputs if len(t.shape) in RANKS}
        found |= {t for o in b.outputs for t in [b.layers[o.layer].outputs[o.output]]
                  if t is not None and len(t.shape) in RANKS}
    return found


def _sizes(shape) -> tuple[int, ...]:
    return tuple(shape[2:]) if len(shape) == 4 else (shape[1],)


def _path(model: Model, rng: random.Random, pools: Pools, sizes: tuple[set, set], granularity: int,
          channels_last: bool = False) -> list[tuple[str, Brick]]:
    """A random span of `model` rebuilt at another of the suite's sizes, cut into bricks, in
    order; truncated before the first brick that has a size no real brick has (or a larger
    input than real bricks of its op). Empty when the span cannot be rebuilt. With
    `channels_last`, its 8-bit 4-D values are NHWC edges, as in the model's real bricks."""
    length = rng.randint(*PATH_LAYERS)
    begin = rng.randrange(len(model.nodes))
    end = min(len(model.nodes), begin + length)
    spec = brick_spec("0" * 64, make_brick(model, begin, end, consumers(model)))
    ratio = _ratio(spec, pools, sizes[1], rng)
    if ratio is None:
        return []
    try:
        lowered = lower_proto(_proto(_fit_reshapes(_scaled(spec, ratio))), "decoy", "decoy.onnx", ShapeOptions())
        nhwc = channels_last_candidates(lowered) if channels_last else frozenset()
        plan, bricks = plan_model(lowered, granularity, nhwc=nhwc)
    except Exception:  # noqa: BLE001 - mostly FrontendError (a Reshape to a fixed shape); never fatal
        return []
    out = []
    for digest in plan.instances:
        if not _plausible(bricks[digest], pools, *sizes):
            break
        out.append((digest, bricks[digest]))
    return out


def _ratio(spec: dict, pools: Pools, types: set[TensorType], rng: random.Random) -> Fraction | None:
    """new size / old size of the span's first rank-3/4 input, drawn from the sizes real bricks
    with the same first op have; preferably one where that input becomes a tensor real bricks
    read or write, so the path attaches to them."""
    first = next((t for t in spec["inputs"] if len(t["shape"]) in RANKS), None)
    if first is None:
        return None
    node = spec["nodes"][0]
    op = f"{node['domain']}.{node['op_type']}" if node["domain"] else node["op_type"]
    old = _sizes(first["shape"])
    choices = [s for s in pools.get((op, len(first["shape"])), ([], 0))[0] if s != old and len(s) == len(old)]
    if not choices or 0 in old:
        return None
    shape = first["shape"]
    attached = [c for c in choices if TensorType(first["dtype"], tuple(
        shape[:2] + list(c) if len(shape) == 4 else [shape[0], c[0], *shape[2:]])) in types]
    return Fraction(rng.choice(attached or choices)[0], old[0])


# Ops whose inputs after the first are weights (and bias): their sizes are the kernel's, not the
# image's, also where the weights are a value of the graph (an 8-bit model's DequantizeLinear).
WEIGHTED = frozenset({"Conv", "ConvTranspose"})


def _scaled(spec: dict, ratio: Fraction) -> dict:
    """The SPEC with every rank-3/4 input's sizes times `ratio` (the first's ratio for all: a
    skip connection entering the span keeps matching the path), but a convolution's weights."""
    weights = {name for n in spec["nodes"] if n["op_type"] in WEIGHTED and not n["domain"]
               for name in n["inputs"][1:]}
    inputs = []
    for t in spec["inputs"]:
        shape = list(t["shape"])
        if len(shape) == 4 and t["name"] not in weights:
            shape = shape[:2] + [_scale(d, ratio) for d in shape[2:]]
        elif len(shape) == 3 and t["name"] not in weights:
            shape = [shape[0], _scale(shape[1], ratio), shape[2]]
        inputs.append({**t, "shape": shape})
    return {**spec, "inputs": inputs}


def _fit_reshapes(spec: dict, rounds: int = 4) -> dict:
    """The literal target shapes of the span's Reshapes refitted to their rescaled inputs (the
    largest dimension takes the change of element count, when that stays whole): a Reshape to
    {1,256} of what became {1,64,1,1} reshapes to {1,64}. Targets with -1 or 0 fit themselves;
    a Reshape that cannot be refitted is left, and `_runs` cuts the path before it."""
    literal = {t["name"]: i for i, t in enumerate(spec["initializers"]) if isinstance(t.get("data"), list)}
    for _ in range(rounds):  # a refitted Reshape changes the shapes after it
        inferred = onnx.shape_inference.infer_shapes(_proto(spec)).graph
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                  for v in [*inferred.input, *inferred.value_info]}
        inits, changed = list(spec["initializers"]), False
        for n in spec["nodes"]:
            if n["op_type"] != "Reshape" or len(n["inputs"]) < 2 or n["inputs"][1] not in literal:
                continue
            k = literal[n["inputs"][1]]
            target, data = inits[k]["data"], shapes.get(n["inputs"][0])
            if not data or not target or min(data) <= 0 or min(target) <= 0:
                continue
            have, want, j = math.prod(data), math.prod(target), target.index(max(target))
            if have != want and (target[j] * have) % want == 0:
                inits[k] = {**inits[k], "data": [*target[:j], target[j] * have // want, *target[j + 1:]]}
                changed = True
        spec = {**spec, "initializers": inits}
        if not changed:
            break
    return spec


def _scale(size: int, ratio: Fraction) -> int:
    return max(1, round(size * ratio))


# Ops that keep their data input's element count: rebuilt at another size with a literal target
# shape (a Reshape to {1,256}), shape inference accepts them and every run fails.
SAME_COUNT = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})


def _runs(brick: Brick) -> bool:
    """No layer of the brick keeps a literal shape its rebuilt input no longer fills, and no
    convolution reads other channels than its weights have (ONNX shape inference checks neither):
    a decoy failing on every run would tell the vendor it is one."""
    for layer in brick.layers:
        data, out = layer.inputs[0].type if layer.inputs else None, layer.outputs[0] if layer.outputs else None
        if layer.op_type in SAME_COUNT and data and out and math.prod(data.shape) != math.prod(out.shape):
            return False
        if layer.op_type == "Conv" and not layer.domain and not _weights_fit(layer):
            return False
    return True


def _weights_fit(layer: Layer) -> bool:
    """A Conv's input channels are its weights' channels times its groups, its output channels
    a multiple of the groups, and its `kernel_shape` (when given) its weights' spatial sizes."""
    data, weight = layer.inputs[0].type, layer.inputs[1].type if len(layer.inputs) > 1 else None
    attributes = {a.name: a.value for a in layer.attributes}
    group, kernel = attributes.get("group", 1), attributes.get("kernel_shape")
    if data is None or weight is None or len(data.shape) < 2 or len(weight.shape) < 2 or not isinstance(group, int):
        return True
    if isinstance(kernel, tuple | list) and tuple(kernel) != tuple(weight.shape[2:]):
        return False
    return data.shape[1] == weight.shape[1] * group and weight.shape[0] % max(group, 1) == 0


def _plausible(brick: Brick, pools: Pools, sizes: set, types: set[TensorType]) -> bool:
    """Every input has a size real bricks have (an image input: a type real bricks read), is no
    larger than real inputs of the brick's first op, and the brick runs (`_runs`)."""
    if not _runs(brick):
        return False
    for t in brick.inputs:
        if len(t.shape) not in RANKS:
            continue
        if (len(t.shape), _sizes(t.shape)) not in sizes:
            return False
        if len(t.shape) == 4 and t.shape[1] in IMAGE_CHANNELS and t not in types:
            return False
        largest = pools.get((brick.ops[0], len(t.shape)), ([], 0))[1]
        if math.prod(t.shape) > largest:
            return False
    return True


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
