"""Checks of a parsed graph before anything is inferred, folded or allocated.

A model from outside may be malformed on purpose: two nodes writing one tensor, a node reading
a tensor nobody writes, a cycle, impossible dimensions, or tensors far too large to ever build
a benchmark of. Each is one FrontendError naming the file and the node (or input).
"""

from __future__ import annotations

import onnx

from ..ir import TensorType
from .errors import FrontendError


def check_graph(graph: onnx.GraphProto, display: str) -> None:
    """Structure: unique producers and outputs, every input provided, no cycle, sane dims."""
    provided = {t.name: "initializer" for t in graph.initializer}
    for value in graph.input:
        provided.setdefault(value.name, "graph input")
        _check_dims(value, display)
    producer: dict[str, str] = {}
    for index, node in enumerate(graph.node):
        name = node.name or f"#{index}"
        for out in filter(None, node.output):
            if out in producer or out in provided:
                first = f"node {producer[out]!r}" if out in producer else f"the {provided[out]}"
                raise _error(display, node, index, f"writes tensor {out!r}, which {first} also writes")
            producer[out] = name
    outputs = [v.name for v in graph.output]
    duplicates = sorted({n for n in outputs if outputs.count(n) > 1})
    if duplicates:
        raise FrontendError(display, f"graph outputs listed more than once: {duplicates}")
    for index, node in enumerate(graph.node):
        for name in filter(None, node.input):
            if name not in producer and name not in provided:
                raise _error(display, node, index,
                             f"reads tensor {name!r}, which no node, input or initializer provides")
    for name in outputs:
        if name not in producer and name not in provided:
            raise FrontendError(display, f"graph output {name!r} is produced by no node")
    _check_acyclic(graph, display)


def _error(display: str, node: onnx.NodeProto, index: int, message: str) -> FrontendError:
    return FrontendError(display, message, node=node.name or f"#{index}", op=node.op_type)


def _check_dims(value: onnx.ValueInfoProto, display: str) -> None:
    for index, dim in enumerate(value.type.tensor_type.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value < -1:  # -1: symbolic (Paddle exports)
            raise FrontendError(display, f"input {value.name!r} has a negative dimension "
                                f"{dim.dim_value} (dim {index})")


def _check_acyclic(graph: onnx.GraphProto, display: str) -> None:
    """Kahn's algorithm; on a cycle, name a node on it."""
    producer = {out: i for i, n in enumerate(graph.node) for out in n.output if out}
    waiting = [0] * len(graph.node)
    consumers: dict[int, list[int]] = {}
    for j, node in enumerate(graph.node):
        for i in {producer[p] for p in node.input if p in producer}:
            consumers.setdefault(i, []).append(j)
            waiting[j] += 1
    ready = [i for i, w in enumerate(waiting) if w == 0]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        for j in consumers.get(i, ()):
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if done != len(graph.node):
        index = next(i for i, w in enumerate(waiting) if w > 0)
        raise _error(display, graph.node[index], index, "is on a cycle: the graph is not a DAG")


def initializer_dims(graph: onnx.GraphProto, display: str) -> None:
    """Negative initializer dimensions, named by the first node that reads the initializer."""
    bad = {t.name: list(t.dims) for t in graph.initializer if any(d < 0 for d in t.dims)}
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name in bad:
                raise _error(display, node, index, f"initializer {name!r} has negative dims {bad[name]}")
    if bad:
        raise FrontendError(display, f"initializer {min(bad)!r} has negative dimensions")


def tensor_bytes(t: TensorType) -> int:
    dtype = onnx.TensorProto.DataType.Value(t.dtype)
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(dtype).itemsize or 8
    except (KeyError, ValueError, TypeError):
        itemsize = 8
    return t.numel * itemsize


def check_sizes(nodes: list[onnx.NodeProto], types: dict[str, TensorType], max_bytes: int,
                display: str) -> None:
    """Refuse, before any value is computed or allocated, a node whose tensors exceed the limit."""
    for index, node in enumerate(nodes):
        names = dict.fromkeys(n for n in [*node.input, *node.output] if n in types)
        total = sum(tensor_bytes(types[n]) for n in names)
        if total > max_bytes:
            raise _error(display, node, index,
                         f"needs {_human(total)} of tensors (inputs, weights, outputs), more than "
                         f"the limit of {_human(max_bytes)} per layer (--max-bytes)")


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} PiB"
