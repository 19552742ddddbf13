"""Control flow lowered the way it ran on the sample input.

An If becomes the nodes of the branch it took; a Loop or Scan becomes its body repeated the
recorded number of times (iteration i's nodes renamed with a suffix), with the per-iteration
scan outputs stacked by Unsqueeze + Concat as ONNX Runtime copies them into the output. We
unroll rather than keep one brick of the whole loop because each iteration is then made of
ordinary bricks: they deduplicate with the same layers elsewhere, are measured by the same
runtime, and a nested If or Loop inside the body is lowered by the same code on the next round.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .errors import FrontendError

# A Loop or Scan unrolled to more nodes than this is refused (name the node and the count).
MAX_UNROLLED_NODES = 20000
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
# Control flow nested deeper than this (an If in a Loop in an If ...) is not expanded.
MAX_NESTING = 4
TRIPS = "::trips"  # suffix of the extra Loop output that counts iterations in the recorded run
IDENTITY_OF_SEQUENCES = 14  # the first opset whose Identity copies a sequence


def has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def instrument(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose main-graph Loops also output their iteration numbers (as a scan output)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for node in copy.graph.node:
        if node.op_type == "Loop" and node.domain in ("", "ai.onnx"):
            body = _graph(node, "body")
            counter = body.input[0].name + TRIPS
            body.node.append(helper.make_node("Identity", [body.input[0].name], [counter]))
            body.output.append(helper.make_tensor_value_info(counter, onnx.TensorProto.INT64, []))
            node.output.append(node.output[0] + TRIPS)
    return copy


def expand(model: onnx.ModelProto, values: dict[str, np.ndarray], shapes: dict,
           display: str) -> list[tuple[str, str]]:
    """Replace, in place, each main-graph If/Loop/Scan by what ran; the assumptions made."""
    nodes: list[onnx.NodeProto] = []
    assumed: list[tuple[str, str]] = []
    for index, node in enumerate(model.graph.node):
        if node.op_type not in CONTROL_FLOW or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        where = node.name or f"#{index}"
        if node.op_type == "If":
            taken = _condition(node, values, model, display, where)
            branch = "then_branch" if taken else "else_branch"
            new, inits = inline(_graph(node, branch), [], list(node.output), f"@{where}")
            assumed.append((where, f"If took {branch}"))
        elif node.op_type == "Loop":
            trips = _trips(node, shapes, display, where)
            new, inits = _unroll_loop(node, trips, model, where, display)
            assumed.append((where, f"Loop ran {trips} times"))
        else:
            new, inits, trips = _unroll_scan(node, shapes, model, where, display)
            assumed.append((where, f"Scan ran {trips} times"))
        nodes.extend(new)
        model.graph.initializer.extend(inits)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return assumed


def _graph(node: onnx.NodeProto, name: str) -> onnx.GraphProto:
    return next(a.g for a in node.attribute if a.name == name)


def _condition(node, values, model, display: str, where: str) -> bool:
    name = node.input[0]
    inits = {t.name: t for t in model.graph.initializer}
    if name in values:
        value = values[name]
    elif name in inits:
        value = numpy_helper.to_array(inits[name])
    else:
        raise FrontendError(display, f"the condition {name!r} was not recorded", node=where, op="If")
    return bool(np.asarray(value).reshape(-1)[0])


def inline(graph: onnx.GraphProto, input_names: list[str], output_names: list[str],
           suffix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The nodes of `graph` in the enclosing graph: its inputs read `input_names`, its outputs
    are written as `output_names`, its other values renamed with `suffix`."""
    rename = {v.name: n for v, n in zip(graph.input, input_names, strict=False)}
    local = [o for n in graph.node for o in n.output if o] + [t.name for t in graph.initializer]
    rename.update({n: n + suffix for n in local if n not in rename})
    produced = {o for n in graph.node for o in n.output}
    extra, mapped = [], set()
    for value, name in zip(graph.output, output_names, strict=True):
        if value.name in produced and value.name not in mapped:
            rename[value.name] = name
            mapped.add(value.name)
        else:  # the output is an input, an initializer, an outer value or listed twice: copied
            extra.append((value.name, name))
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = (node.name or f"#{len(nodes)}") + suffix  # unique in the expanded graph
        _rename(copy, rename)
        nodes.append(copy)
    nodes += [helper.make_node("Identity", [rename.get(src, src)], [dst]) for src, dst in extra]
    inits = []
    for tensor in graph.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(tensor)
        copy.name = rename[tensor.name]
        inits.append(copy)
    return nodes, inits


def _rename(node: onnx.NodeProto, rename: dict[str, str], rename_outputs: bool = True) -> None:
    for i, name in enumerate(node.input):
        node.input[i] = rename.get(name, name)
    if rename_outputs:
        for i, name in enumerate(node.output):
            node.output[i] = rename.get(name, name)
    for attr in node.attribute:  # nested graphs read outer values by name
        for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
            inner = {o for n in sub.node for o in n.output} | {v.name for v in sub.input}
            for n in sub.node:
                _rename(n, {k: v for k, v in rename.items() if k not in inner}, rename_outputs=False)


def _trips(node, shapes: dict, display: str, where: str) -> int:
    counted = shapes.get(node.output[0] + TRIPS) if node.output else None
    if counted is None:
        raise FrontendError(display, "the Loop's trip count was not recorded", node=where, op="Loop")
    return int(counted.shape[0])


def _check_size(trips: int, body: onnx.GraphProto, display: str, where: str, op: str) -> None:
    if trips * len(body.node) > MAX_UNROLLED_NODES:
        raise FrontendError(display, f"runs {trips} times on the sample input: {trips * len(body.node)} "
                            f"nodes unrolled, more than the limit of {MAX_UNROLLED_NODES}", node=where, op=op)


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _unroll_loop(node, trips: int, model, where: str, display: str):
    body = _graph(node, "body")
    _check_size(trips, body, display, where, "Loop")
    if _opset(model) < IDENTITY_OF_SEQUENCES and any(v.type.HasField("sequence_type") for v in body.output):
        raise FrontendError(display, f"a Loop carrying a sequence at opset {_opset(model)} is not supported "
                            f"(unrolled, its copies need Identity of opset {IDENTITY_OF_SEQUENCES})",
                            node=where, op="Loop")
    carried = list(node.input[2:])
    n_carried = len(carried)
    outputs = [o for o in node.output if not o.endswith(TRIPS)]
    scans: list[list[str]] = [[] for _ in outputs[n_carried:]]
    nodes, inits = [], []
    true_name = f"{where}@true"
    inits.append(numpy_helper.from_array(np.array(True), true_name))
    for i in range(trips):
        suffix = f"@{where}.{i}"
        iteration = f"{where}@iter{i}"
        inits.append(numpy_helper.from_array(np.array(i, dtype=np.int64), iteration))
        outs = [f"cond{suffix}"] + [f"{o.name}{suffix}" for o in body.output[1:]]
        new, new_inits = inline(body, [iteration, true_name, *carried], outs, suffix)
        nodes += new
        inits += new_inits
        carried = outs[1:1 + n_carried]
        for k, name in enumerate(outs[1 + n_carried:]):
            scans[k].append(name)
    nodes += [helper.make_node("Identity", [src], [dst]) for src, dst in zip(carried, outputs, strict=False)]
    for k, names in enumerate(scans):
        nodes += _stack(names, outputs[n_carried + k], 0, model, inits, display, where, "Loop")
    return nodes, inits


def _stack(names: list[str], output: str, axis: int, model, inits: list, display: str, where: str,
           op: str):
    """Per-iteration values stacked along `axis` (a new dimension), as Loop and Scan do."""
    if not names:
        raise FrontendError(display, "ran 0 times on the sample input: its scan outputs have no "
                            "known shape (give --inputs that run it at least once)", node=where, op=op)
    axes = f"{output}@axes"
    unsqueezed = [f"{n}@unsqueezed" for n in names]
    nodes = []
    if _opset(model) >= 13:
        inits.append(numpy_helper.from_array(np.array([axis], dtype=np.int64), axes))
        nodes += [helper.make_node("Unsqueeze", [n, axes], [u]) for n, u in zip(names, unsqueezed, strict=True)]
    else:
        nodes += [helper.make_node("Unsqueeze", [n], [u], axes=[axis]) for n, u in zip(names, unsqueezed, strict=True)]
    nodes.append(helper.make_node("Concat", unsqueezed, [output], axis=axis))
    return nodes


def _unroll_scan(node, shapes: dict, model, where: str, display: str):
    if _opset(model) < 9:
        raise FrontendError(display, "Scan before opset 9 (with a batch axis) is not supported", node=where,
                            op="Scan")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    body = attrs["body"]
    n_scan = attrs["num_scan_inputs"]
    n_state = len(node.input) - n_scan
    in_axes = list(attrs.get("scan_input_axes", [0] * n_scan))
    in_dirs = list(attrs.get("scan_input_directions", [0] * n_scan))
    n_out = len(node.output) - n_state
    out_axes = list(attrs.get("scan_output_axes", [0] * n_out))
    out_dirs = list(attrs.get("scan_output_directions", [0] * n_out))
    first = node.input[n_state]
    if first not in shapes:
        raise FrontendError(display, f"the shape of scan input {first!r} is unknown", node=where, op="Scan")
    rank = len(shapes[first].shape)
    trips = int(shapes[first].shape[in_axes[0] % rank])
    _check_size(trips, body, display, where, "Scan")
    state = list(node.input[:n_state])
    scans: list[list[str]] = [[] for _ in range(n_out)]
    nodes, inits = [], []
    for t in range(trips):
        suffix = f"@{where}.{t}"
        slices = []
        for k, name in enumerate(node.input[n_state:]):
            index = f"{where}@index{k}.{t}"
            position = trips - 1 - t if in_dirs[k] else t
            inits.append(numpy_helper.from_array(np.array(position, dtype=np.int64), index))
            axis = in_axes[k] % len(shapes[name].shape) if name in shapes else in_axes[k]
            slices.append(f"{name}@slice{suffix}")
            nodes.append(helper.make_node("Gather", [name, index], [slices[-1]], axis=axis))
        outs = [f"{o.name}{suffix}" for o in body.output]
        new, new_inits = inline(body, [*state, *slices], outs, suffix)
        nodes += new
        inits += new_inits
        state = outs[:n_state]
        for k, name in enumerate(outs[n_state:]):
            scans[k].append(name)
    nodes += [helper.make_node("Identity", [src], [dst]) for src, dst in zip(state, node.output, strict=False)]
    for k, names in enumerate(scans):
        ordered = names[::-1] if out_dirs[k] else names
        nodes += _stack(ordered, node.output[n_state + k], out_axes[k], model, inits, display, where, "Scan")
    return nodes, inits, trips
