"""Which initializers are weights: the one rule, used by lowering and by whole-model runs.

A weight is an initializer whose values do not change what a kernel does, only what it
computes: the suite fills it with seeded random data (and so does `e2e`, for a fair
comparison). A semantic constant keeps its values: small integer tensors (Reshape shapes,
axes, indices), scalars, and the few float inputs that decide a kernel's work (Resize scales,
Clip bounds, Pad values).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import onnx

INT_DTYPES = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BOOL"}
)
SMALL_INT_NUMEL = 4096
# Operators that make or read sequences (of tensors) and optionals: never folded nor probed
# (their values are lists), typed by the recorded run.
SEQUENCE_OPS = frozenset({
    "SequenceConstruct", "SequenceEmpty", "SequenceAt", "SequenceInsert", "SequenceErase",
    "SequenceLength", "SequenceMap", "SplitToSequence", "ConcatFromSequence", "Optional",
    "OptionalGetElement", "OptionalHasElement"})
# Of those, the ones no brick holds (reasons in lower.py).
OPTIONAL_OPS = frozenset({"Optional", "OptionalGetElement", "OptionalHasElement"})
# Float inputs whose (few) values decide what the kernel does, not just what it computes.
FLOAT_SEMANTIC_SLOTS = frozenset(
    {("Resize", 1), ("Resize", 2), ("Upsample", 1), ("Clip", 1), ("Clip", 2), ("Pad", 2)}
)
FLOAT_SEMANTIC_NUMEL = 64


def is_semantic(dtype: str, size: int, slots: Iterable[tuple[str, int]]) -> bool:
    """Whether a constant of `dtype` and `size` elements, read by the (op type, input slot)
    pairs `slots`, keeps its values (else it is a weight)."""
    return ((dtype in INT_DTYPES and size <= SMALL_INT_NUMEL) or size <= 1
            or (size <= FLOAT_SEMANTIC_NUMEL and any(s in FLOAT_SEMANTIC_SLOTS for s in slots)))


def weight_names(model: onnx.ModelProto) -> list[str]:
    """The initializers of a model's main graph that are weights, in file order."""
    readers: dict[str, set[tuple[str, int]]] = {}
    for node in model.graph.node:
        for slot, name in enumerate(node.input):
            readers.setdefault(name, set()).add((node.op_type, slot))
    names = []
    for tensor in model.graph.initializer:
        dtype = onnx.TensorProto.DataType.Name(tensor.data_type)
        if not is_semantic(dtype, math.prod(tensor.dims), readers.get(tensor.name, ())):
            names.append(tensor.name)
    return names
