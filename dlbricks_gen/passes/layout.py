"""Where a model converts between ONNX Runtime's plain and blocked (NCHWc) layouts.

At level "all", ONNX Runtime runs convolutions, pools and their neighbours in a blocked NCHWc
layout and converts at the edges of each NCHWc region (ReorderInput into it, ReorderOutput out
of it). A brick measured alone pays a conversion at each of its own edges that touches an
NCHWc kernel; the model pays only those at its regions' edges. This pass asks the runtime
itself: it optimizes the whole model once (random weights, as the suite does) and reads which
values its optimized graph converts. The plan keeps, per brick instance, the share of its input
and output edges that the model converts, so the estimator removes only the other conversions
(measured in the brick's own profile on the target). The regions depend on the CPU's block
size; they are read on the machine that compiles, which is why the estimator still uses the
target's own measured conversion times.

8-bit models are run channels-last instead: ONNX Runtime turns QLinearConv (and the QLinearConv
of a fused QDQ group) into an NHWC kernel, carries its neighbours (pools, QLinearAdd,
QLinearConcat ...) NHWC too and transposes only at the region's edges. A brick alone would run
an NCHW kernel (an 8-bit MaxPool alone costs 20x its NHWC kernel) or pay two transposes, so the
values the model carries NHWC (8-bit 4-D values its optimized graph no longer has) are given
to and taken from the brick NHWC (`Brick.nhwc_inputs`, SPEC "layout"): the brick then runs what
the model runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import onnx

from ..ir import Kind, Model, TensorType
from ..ir.spec import input_name, output_name
from ..runtime.core.calibration import NCHWC_SEEDS
from .optimized import graph_values, optimized_graph
from .partition import Partition, consumers

REORDER_IN, REORDER_OUT = "ReorderInput", "ReorderOutput"
NCHWC_DOMAIN, NCHWC_SUFFIX = "com.microsoft.nchwc", "_nchwc"
NHWC_SEEDS = frozenset({"QLinearConv"})  # besides NCHWC_SEEDS' Conv, which QDQ groups become
CHANNELS_LAST_DTYPES = frozenset({"INT8", "UINT8"})


@dataclass(frozen=True, slots=True)
class Conversions:
    """Value names of one model that its optimized graph converts into and out of NCHWc, and
    the nodes that run inside a neighbouring NCHWc kernel (`absorbed_nodes`)."""

    into: frozenset[str] = frozenset()
    out_of: frozenset[str] = frozenset()
    nhwc: frozenset[str] = frozenset()  # values it carries channels-last (8-bit, 4-D)
    absorbed: frozenset[int] = frozenset()


def conversions(model: Model) -> Conversions | None:
    """The model's layout conversions; None when no layer could start an NCHWc region."""
    seeds = NCHWC_SEEDS | NHWC_SEEDS
    if not any(n.layer.op_type in seeds and not n.layer.domain for n in model.nodes):
        return None
    names = _spec_names(model)
    optimized = optimized_graph(model, "all")
    into = {names[n.input[0]] for n in optimized.node if n.op_type == REORDER_IN and n.input[0] in names}
    out_of = {names[n.output[0]] for n in optimized.node if n.op_type == REORDER_OUT and n.output[0] in names}
    kept = graph_values(optimized)
    nhwc = channels_last_candidates(model) & {name for spec, name in names.items() if spec not in kept}
    extended = graph_values(optimized_graph(model, "extended"))
    return Conversions(frozenset(into), frozenset(out_of), frozenset(nhwc),
                       absorbed_nodes(model, optimized, extended))


def channels_last_candidates(model: Model) -> frozenset[str]:
    """The model's values that ONNX Runtime could carry channels-last: 8-bit and 4-D."""
    types: dict[str, TensorType | None] = {
        name: op.type for node in model.nodes
        for name, op in zip(node.inputs, node.layer.inputs, strict=True) if name}
    types.update({name: t for node in model.nodes for name, t in zip(node.outputs, node.layer.outputs, strict=True)
                  if name})
    return frozenset(name for name, t in types.items()
                     if t is not None and t.dtype in CHANNELS_LAST_DTYPES and len(t.shape) == 4)


def _spec_names(model: Model) -> dict[str, str]:
    """brick_spec's generated value names of the whole-model brick -> the model's names."""
    names: dict[str, str] = {}
    produced = {out for node in model.nodes for out in node.outputs if out}
    external: list[str] = []
    for i, node in enumerate(model.nodes):
        for name, operand in zip(node.inputs, node.layer.inputs, strict=True):
            if operand.kind == Kind.ACTIVATION and name not in produced and name not in external:
                external.append(name)
        names.update({output_name(i, j): out for j, out in enumerate(node.outputs) if out})
    names.update({input_name(k): name for k, name in enumerate(external)})
    return names


def kept_shares(model: Model, spans: tuple[tuple[int, int], ...],
                found: Conversions) -> tuple[tuple[float, float], ...]:
    """Per instance [begin, end): the shares of its input and of its output edges that the
    model itself converts (the conversions the estimator keeps)."""
    used_by = consumers(model)
    outputs = set(model.outputs)
    shares = []
    for begin, end in spans:
        local = {o for i in range(begin, end) for o in model.nodes[i].outputs if o}
        ins = {name for i in range(begin, end)
               for name, op in zip(model.nodes[i].inputs, model.nodes[i].layer.inputs, strict=True)
               if op.kind == Kind.ACTIVATION and name not in local}
        outs = {o for o in local if o in outputs or any(not begin <= c < end for c in used_by.get(o, ()))}
        shares.append((_share(ins, found.into), _share(outs, found.out_of)))
    return tuple(shares)


def _share(edges: set[str], converted: frozenset[str]) -> float:
    return round(len(edges & converted) / len(edges), 6) if edges else 0.0


def with_kept_reorders(parts: Partition, models: list[Model], layouts: dict[str, Conversions]) -> Partition:
    """The partition with each model plan's per-instance kept shares and absorbed flags (models
    without layout conversions keep none: the estimator then removes every brick reorder)."""
    by_name = {m.name: m for m in models}
    layers = {d: len(b.layers) for d, b in parts.bricks}
    plans = []
    for plan in parts.models:
        found = layouts.get(plan.name)
        spans = plan.spans(layers)
        kept = kept_shares(by_name[plan.name], spans, found) if found else ()
        absorbed = tuple(all(i in found.absorbed for i in range(a, b)) for a, b in spans) if found else ()
        plans.append(replace(plan, kept_reorders=kept, absorbed=absorbed))
    return replace(parts, models=tuple(plans))


def absorbed_nodes(model: Model, optimized: onnx.GraphProto, extended: set[str]) -> frozenset[int]:
    """The nodes of `nchwc_fusions`."""
    return frozenset(nchwc_fusions(model, optimized, extended))


def nchwc_fusions(model: Model, optimized: onnx.GraphProto, extended: set[str]) -> dict[int, int]:
    """{node: the node it is fused into} for the nodes of `model` that the optimized graph
    (level "all") runs inside the NCHWc convolution producing their input: an activation such
    as HardSwish, an Add as the convolution's sum input, an activation after that Add. The
    "extended" level, which `--fusion` otherwise groups by, keeps them apart (their outputs
    are in `extended`, its values); only the NCHWc pass of level "all" fuses them.

    A node has its own kernel when an optimized node keeps its name (`n<i>`, as `whole_model`
    names them), is named after one of its outputs with the NCHWc transformer's suffix
    (`t<i>_<j>_nchwc`), or computes one of its outputs: any node but a reorder, or a reorder
    that also transposes to channels-last (it replaces a Transpose node). Of two convolutions
    feeding an absorbed Add, the one whose output goes nowhere else takes it (the other is the
    skip connection, which other layers read too).
    """
    kernels = {n.name for n in optimized.node}
    computed = {out for n in optimized.node if n.op_type != REORDER_IN
                and (n.op_type != REORDER_OUT or _channels_last(n)) for out in n.output}
    convs = {n.name for n in optimized.node if n.domain == NCHWC_DOMAIN and n.op_type == "Conv"}
    producer = {out: i for i, node in enumerate(model.nodes) for out in node.outputs if out}
    used_by = consumers(model)

    def outputs(i: int) -> list[str]:
        return [output_name(i, j) for j, out in enumerate(model.nodes[i].outputs) if out]

    def own_kernel(i: int) -> bool:
        return f"n{i}" in kernels or any(o in computed or f"{o}{NCHWC_SUFFIX}" in kernels for o in outputs(i))

    fused: dict[int, int] = {}
    for i, node in enumerate(model.nodes):  # topological order: an Add, then the Relu after it
        if not set(outputs(i)) <= extended or own_kernel(i):
            continue
        sources = [(len(used_by.get(name, ())) > 1, -producer[name]) for name in node.inputs if name in producer
                   and (producer[name] in fused or any(f"{o}{NCHWC_SUFFIX}" in convs for o in outputs(producer[name])))]
        if sources:
            fused[i] = -min(sources)[1]
    return fused


def _channels_last(node: onnx.NodeProto) -> bool:
    return any(a.name == "channels_last" and a.i for a in node.attribute)
