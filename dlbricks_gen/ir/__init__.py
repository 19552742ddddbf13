"""The canonical IR: layers, models and bricks as small frozen values.

A `Layer` is what decides a kernel's cost: op type, domain, schema version, the types of its
inputs and outputs, its normalised attributes and the values of the small constants that decide
its meaning. It carries no names and no weights, so equal layers compare (and hash) equal.
A `Node` places a layer in a model (value names, for wiring and error messages).
A `Brick` is a name-free sequence of layers with its internal wiring; its identity is the sha256
of its canonical text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Union

ACTIVATION = "activation"  # produced by another layer or a graph input
WEIGHT = "weight"  # an initializer whose values do not matter: filled at random
CONSTANT = "constant"  # a small initializer whose values decide semantics: kept
ABSENT = "absent"  # an omitted optional input

Scalar = Union[int, float, str]


@dataclass(frozen=True, slots=True)
class TensorType:
    dtype: str  # onnx.TensorProto.DataType name, e.g. "FLOAT"
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(map(str, self.shape))}]"


@dataclass(frozen=True, slots=True)
class Operand:
    """One input slot of a layer."""

    kind: str  # ACTIVATION | WEIGHT | CONSTANT | ABSENT
    type: TensorType | None = None
    data: tuple[Scalar, ...] | None = None  # flat values, CONSTANT only

    def __str__(self) -> str:
        if self.kind == ABSENT:
            return "_"
        if self.kind == CONSTANT:
            return f"const {self.type}={list(self.data or ())}"
        return f"{self.kind} {self.type}"


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    type: str  # onnx.AttributeProto.AttributeType name, e.g. "INTS"
    value: Scalar | tuple[Scalar, ...] | Operand

    def __str__(self) -> str:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return f"{self.name}:{self.type}={value!r}"


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
        outs = ", ".join(str(o) if o else "_" for o in self.outputs)
        domain = f"{self.domain}." if self.domain else ""
        return f"{domain}{self.op_type}@{self.since_version}({ins}) {{{attrs}}} -> {outs}"

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

    def __str__(self) -> str:
        lines = [f"model {self.name} ({len(self.nodes)} layers)"]
        lines += [f"  {n}" for n in self.nodes]
        return "\n".join(lines)


# A reference from inside a brick to a value: ("in", k) is brick input k,
# ("out", i, j) is output j of the brick's layer i.
Ref = tuple


@dataclass(frozen=True, slots=True)
class Brick:
    """A name-free sequence of layers: the unit that is benchmarked and deduplicated."""

    inputs: tuple[TensorType, ...]
    layers: tuple[Layer, ...]
    wiring: tuple[tuple[Ref | None, ...], ...]  # per layer, per operand: source of activations
    outputs: tuple[tuple[int, int], ...]  # (layer, output) pairs visible outside the brick

    def text(self) -> str:
        lines = ["brick v1"]
        lines += [f"in{k}: {t}" for k, t in enumerate(self.inputs)]
        for i, (layer, refs) in enumerate(zip(self.layers, self.wiring)):
            src = ", ".join(_ref_text(r) for r in refs)
            lines.append(f"%{i} = {layer} <- ({src})")
        lines.append("out: " + ", ".join(f"%{i}.{j}" for i, j in self.outputs))
        return "\n".join(lines) + "\n"

    def digest(self) -> str:
        return hashlib.sha256(self.text().encode("utf-8")).hexdigest()

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(layer.qualified_op for layer in self.layers)


def _ref_text(ref: Ref | None) -> str:
    if ref is None:
        return "_"
    if ref[0] == "in":
        return f"in{ref[1]}"
    return f"%{ref[1]}.{ref[2]}"
