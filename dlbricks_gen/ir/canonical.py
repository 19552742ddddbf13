"""The canonical text of a brick: the input of its sha256, so the name of its suite file.

Every field is formatted here by an explicit rule, independently of the IR's `__str__` (display
only) and of dataclass `repr`, so renaming a field or improving a printout changes no digest.
The text is frozen: changing any rule renames every brick (tests/golden/canonical/ guards it).
One line per brick input and per layer (attributes elided here):

    brick v1
    in0: FLOAT[1,8,16,16]
    %0 = Conv@11(activation FLOAT[1,8,16,16], weight FLOAT[8,8,3,3], _) {group:INT=1, ...}
         -> FLOAT[1,8,16,16] <- (in0, _, _)            (one line in the text)
    %1 = Relu@14(activation FLOAT[1,8,16,16]) {} -> FLOAT[1,8,16,16] <- (%0.0)
    out: %1.0

A brick whose edges the model carries channels-last adds a last line naming them, e.g.
`nhwc: in0, %1.0`.

Scalars are spelled as Python literals (`'text'`, `1.5`, `True`), lists of them as `[a, b]`;
a tensor-valued attribute as `Operand(kind='constant', type=TensorType(dtype='FLOAT',
shape=(1,)), data=(0.0,))`, the form this text had when it was derived from `repr`."""

from __future__ import annotations

import hashlib

from . import Brick, BrickInput, Kind, Layer, LayerOutput, Operand, Ref, Scalar, TensorType

VERSION_LINE = "brick v1"


def brick_digest(brick: Brick) -> str:
    return hashlib.sha256(brick_text(brick).encode("utf-8")).hexdigest()


def brick_text(brick: Brick) -> str:
    lines = [VERSION_LINE]
    lines += [f"in{k}: {type_text(t)}" for k, t in enumerate(brick.inputs)]
    for i, (layer, refs) in enumerate(zip(brick.layers, brick.wiring, strict=True)):
        lines.append(f"%{i} = {layer_text(layer)} <- ({', '.join(ref_text(r) for r in refs)})")
    lines.append("out: " + ", ".join(_output(o) for o in brick.outputs))
    if brick.nhwc_inputs or brick.nhwc_outputs:  # only then: every other digest stays as it was
        edges = [f"in{k}" for k in brick.nhwc_inputs] + [_output(brick.outputs[k]) for k in brick.nhwc_outputs]
        lines.append("nhwc: " + ", ".join(edges))
    return "\n".join(lines) + "\n"


def layer_text(layer: Layer) -> str:
    domain = f"{layer.domain}." if layer.domain else ""
    ins = ", ".join(operand_text(o) for o in layer.inputs)
    attrs = ", ".join(f"{a.name}:{a.type}={_value(a.value)}" for a in layer.attributes)
    outs = ", ".join("_" if t is None else type_text(t) for t in layer.outputs)
    return f"{domain}{layer.op_type}@{layer.since_version}({ins}) {{{attrs}}} -> {outs}"


def operand_text(operand: Operand) -> str:
    if operand.kind is Kind.ABSENT:
        return "_"
    if operand.kind is Kind.CONSTANT:
        return f"const {type_text(_typed(operand))}={_list(operand.data or ())}"
    return f"{operand.kind.value} {type_text(_typed(operand))}"


def type_text(t: TensorType) -> str:
    """`FLOAT[1,8]`; a sequence of tensors as `seq FLOAT([2,3], [1,3])` (its elements' shapes)."""
    if t.sequence is not None:
        return f"seq {t.dtype}({', '.join(_dims(s) for s in t.sequence)})"
    return f"{t.dtype}{_dims(t.shape)}"


def _dims(shape: tuple[int, ...]) -> str:
    return f"[{','.join(str(int(d)) for d in shape)}]"


def ref_text(ref: Ref | None) -> str:
    if ref is None:
        return "_"
    if isinstance(ref, BrickInput):
        return f"in{ref.index}"
    return _output(ref)


def _output(ref: LayerOutput) -> str:
    return f"%{ref.layer}.{ref.output}"


def _typed(operand: Operand) -> TensorType:
    if operand.type is None:
        raise ValueError(f"a {operand.kind.value} operand without a type has no canonical text")
    return operand.type


def _scalar(value: Scalar) -> str:
    """A Python literal: bool before int (bool is an int), float and str as Python spells them."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))  # shortest round-trip digits, 'nan', 'inf'
    if isinstance(value, str):
        return repr(str(value))  # quotes and escapes as in a Python literal
    raise TypeError(f"{type(value).__name__} is not a canonical scalar")


def _list(values: tuple[Scalar, ...]) -> str:
    return "[" + ", ".join(_scalar(v) for v in values) + "]"


def _tuple(values: tuple[Scalar, ...]) -> str:
    """A Python tuple literal: `()`, `(a,)`, `(a, b)`."""
    if len(values) == 1:
        return f"({_scalar(values[0])},)"
    return "(" + ", ".join(_scalar(v) for v in values) + ")"


def _value(value: Scalar | tuple[Scalar, ...] | Operand) -> str:
    if isinstance(value, Operand):
        return _tensor(value)
    if isinstance(value, tuple):
        return _list(value)
    return _scalar(value)


def _tensor(operand: Operand) -> str:
    t = operand.type
    type_ = "None" if t is None else (
        f"TensorType(dtype={_scalar(t.dtype)}, shape={_tuple(t.shape)})")
    data = "None" if operand.data is None else _tuple(operand.data)
    return f"Operand(kind={_scalar(operand.kind.value)}, type={type_}, data={data})"
