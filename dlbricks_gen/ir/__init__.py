"""The canonical IR: layers, models, bricks and model plans as small frozen values.

A `Layer` is what decides a kernel's cost: op type, domain, schema version, the types of its
inputs and outputs, its normalised attributes and the values of the small constants that decide
its meaning. It carries no names and no weights, so equal layers compare (and hash) equal.
A `Node` places a layer in a model (value names, for wiring and error messages).
A `Brick` is a name-free sequence of layers with its internal wiring; its identity is the sha256
of its canonical text (`canonical.py`), which depends on no `__str__` here: those are display.
A `ModelPlan` says which bricks a model is made of and how they connect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


class Kind(str, Enum):
    """What an input slot of a layer holds; the values are spelled out in the canonical text."""

    ACTIVATION = "activation"  # produced by another layer or a graph input
    WEIGHT = "weight"  # an initializer whose values do not matter: filled at random
    CONSTANT = "constant"  # a small initializer whose values decide semantics: kept
    ABSENT = "absent"  # an omitted optional input


Scalar = int | float | str


@dataclass(frozen=True, slots=True)
class TensorType:
    """A tensor's element type and shape, or (`sequence` set) a sequence of tensors of `dtype`:
    then `sequence` holds each element's shape, as the recorded run saw them, and `shape` is ()."""

    dtype: str  # onnx.TensorProto.DataType name, e.g. "FLOAT"
    shape: tuple[int, ...]
    sequence: tuple[tuple[int, ...], ...] | None = None

    def __str__(self) -> str:
        if self.sequence is not None:
            return f"seq {self.dtype}({', '.join('[' + ','.join(map(str, s)) + ']' for s in self.sequence)})"
        return f"{self.dtype}[{','.join(map(str, self.shape))}]"

    @property
    def numel(self) -> int:
        """Elements it holds (all elements' for a sequence)."""
        shapes = self.sequence if self.sequence is not None else (self.shape,)
        return sum(math.prod(s) for s in shapes)


@dataclass(frozen=True, slots=True)
class Operand:
    """One input slot of a layer."""

    kind: Kind
    type: TensorType | None = None  # None only when ABSENT
    data: tuple[Scalar, ...] | None = None  # flat values, CONSTANT only

    def __str__(self) -> str:
        if self.kind is Kind.ABSENT:
            return "_"
        if self.kind is Kind.CONSTANT:
            return f"const {self.type}={list(self.data or ())}"
        return f"{self.kind.value} {self.type}"


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    type: str  # onnx.AttributeProto.AttributeType name, e.g. "INTS"
    value: Scalar | tuple[Scalar, ...] | Operand  # Operand: a TENSOR attribute

    def __str__(self) -> str:
        return f"{self.name}:{self.type}={self.value}"


@dataclass(frozen=True, slots=True)
class Layer:
    op_type: str
    domain: str
    since_version: int
    inputs: tuple[Operand, ...]
    outputs: tuple[TensorType | None, ...]  # None: an omitted optional output
    attributes: tuple[Attribute, ...]  # sorted by name, schema defaults filled in

    def __str__(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        attrs = ", ".join(map(str, self.attributes))
        outs = ", ".join("_" if o is None else str(o) for o in self.outputs)
        return f"{self.qualified_op}@{self.since_version}({ins}) {{{attrs}}} -> {outs}"

    @property
    def qualified_op(self) -> str:
        return f"{self.domain}.{self.op_type}" if self.domain else self.op_type


@dataclass(frozen=True, slots=True)
class Node:
    """A layer placed in a model: `inputs` holds value names for ACTIVATION operands ("" else)."""

    name: str
    layer: Layer
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def __str__(self) -> str:
        return f"{', '.join(self.outputs)} = {self.layer.op_type}({', '.join(self.inputs)})"


@dataclass(frozen=True, slots=True)
class Model:
    """A model lowered to layers, in the canonical topological order."""

    name: str  # relative path without .onnx: private, never in the suite
    file: str
    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    folded: int = 0  # nodes folded away at session start (constants, shapes), not benchmarked
    assumed: tuple[tuple[str, str], ...] = ()  # (node or "recorded run", what was assumed)

    def __str__(self) -> str:
        lines = [f"model {self.name} ({len(self.nodes)} layers)"]
        lines += [f"  {n}" for n in self.nodes]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True, order=True)
class BrickInput:
    """A reference to input `index` of the brick."""

    index: int


@dataclass(frozen=True, slots=True, order=True)
class LayerOutput:
    """A reference to output `output` of the brick's layer `layer`."""

    layer: int
    output: int


Ref = BrickInput | LayerOutput


@dataclass(frozen=True, slots=True)
class Brick:
    """A name-free sequence of layers: the unit that is benchmarked and deduplicated."""

    inputs: tuple[TensorType, ...]
    layers: tuple[Layer, ...]
    wiring: tuple[tuple[Ref | None, ...], ...]  # per layer, per operand: source of activations
    outputs: tuple[LayerOutput, ...]  # visible outside the brick, sorted
    # Edges the model carries channels-last (NHWC: ONNX Runtime runs 8-bit convolutions and
    # their neighbours so, passes/layout.py): indices into `inputs` and into `outputs`. The
    # brick takes and gives these NHWC, so that it runs the kernels the model runs.
    nhwc_inputs: tuple[int, ...] = ()
    nhwc_outputs: tuple[int, ...] = ()

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(layer.qualified_op for layer in self.layers)


@dataclass(frozen=True, slots=True)
class ModelPlan:
    """The private part: which bricks a model is made of and how they connect.

    Made by the partitioner, written to and read from the plan file, used by the estimator.
    Instance k covers the model's next `layers` of brick k in the canonical order: the spans
    follow from the bricks (`spans`), so they are not stored.
    """

    name: str
    file: str
    layers: int
    instances: tuple[str, ...]  # brick digests in topological order
    edges: tuple[tuple[int, int], ...]  # (producer instance, consumer instance)
    # Per instance: the shares of its input and output edges where the model itself converts
    # between plain and NCHWc layouts (passes/layout.py); empty when not known.
    kept_reorders: tuple[tuple[float, float], ...] = ()
    weight_bytes: int = 0  # the weights its layers read: cold or warm bricks (0: not known)
    # Per instance: whether the model runs all its layers inside a neighbouring NCHWc
    # convolution (passes/layout.py absorbed_nodes); empty when not known.
    absorbed: tuple[bool, ...] = ()

    def spans(self, brick_layers: dict[str, int]) -> tuple[tuple[int, int], ...]:
        """[begin, end) node indices of each instance, given each brick's number of layers."""
        out, begin = [], 0
        for digest in self.instances:
            out.append((begin, begin + brick_layers[digest]))
            begin += brick_layers[digest]
        return tuple(out)
