"""IR -> SPEC: the plain-data description of a brick that the suite runtime builds and times.

The SPEC is the contract between the compiler and the runtime shipped in suites (format in
docs/FORMATS.md): generated tensor names only, weights as shapes and dtypes, small constants
as values.
"""

from __future__ import annotations

from . import Attribute, Brick, BrickInput, Kind, LayerOutput, Operand, Ref, TensorType

MIN_AI_ONNX_OPSET = 7


def input_name(k: int) -> str:
    """The SPEC's name of brick input k (the one naming rule; passes map names back with it)."""
    return f"in{k}"


def output_name(i: int, j: int) -> str:
    """The SPEC's name of output j of the brick's layer i."""
    return f"t{i}_{j}"


def brick_spec(digest: str, brick: Brick) -> dict:
    """The SPEC literal of a brick program (format in docs/FORMATS.md)."""
    names: dict[Ref, str] = {LayerOutput(i, j): output_name(i, j) for i, layer in enumerate(brick.layers)
                             for j, out in enumerate(layer.outputs) if out is not None}
    names.update({BrickInput(k): input_name(k) for k in range(len(brick.inputs))})
    initializers, nodes = [], []
    for i, (layer, refs) in enumerate(zip(brick.layers, brick.wiring, strict=True)):
        inputs = []
        for slot, (operand, ref) in enumerate(zip(layer.inputs, refs, strict=True)):
            if operand.kind is Kind.ACTIVATION:
                if ref is None:
                    raise ValueError(f"brick {digest}: layer {i} input {slot} is not wired")
                inputs.append(names[ref])
            elif operand.kind is Kind.ABSENT:
                inputs.append("")
            else:
                name = f"{'w' if operand.kind is Kind.WEIGHT else 'c'}{i}_{slot}"
                initializers.append({"name": name, **_tensor(operand)})
                inputs.append(name)
        nodes.append({
            "op_type": layer.op_type,
            "domain": layer.domain,
            "inputs": inputs,
            "outputs": [names.get(LayerOutput(i, j), "") for j in range(len(layer.outputs))],
            "attributes": [_attribute(a) for a in layer.attributes],
        })
    outputs = [{"name": names[o], **_edge(brick.layers[o.layer].outputs[o.output], k in brick.nhwc_outputs)}
               for k, o in enumerate(brick.outputs)]
    return {
        "format": 1,
        "brick": digest,
        "layers": len(brick.layers),
        "opset_imports": _opsets(brick),
        "inputs": [{"name": input_name(k), **_edge(t, k in brick.nhwc_inputs)} for k, t in enumerate(brick.inputs)],
        "outputs": outputs,
        "initializers": initializers,
        "nodes": nodes,
    }


def weightless(spec: dict) -> dict:
    """The SPEC with its random weights turned into typed graph inputs: a graph to infer
    shapes on, or to rebuild a brick from, without allocating any weight."""
    weights = [t for t in spec["initializers"] if t["data"] == "random"]
    return {**spec, "inputs": spec["inputs"] + [{k: t[k] for k in ("name", "dtype", "shape")} for t in weights],
            "initializers": [t for t in spec["initializers"] if t["data"] != "random"]}


def _opsets(brick: Brick) -> dict[str, int]:
    """Per domain, the newest schema version used: every op resolves to the same schema."""
    opsets = {"": MIN_AI_ONNX_OPSET}
    for layer in brick.layers:
        opsets[layer.domain] = max(opsets.get(layer.domain, 1), layer.since_version)
    return dict(sorted(opsets.items()))


def _type(t: TensorType | None) -> dict:
    if t is None:
        raise ValueError("a value without a type has no SPEC")
    if t.sequence is not None:  # a sequence of tensors: each element's shape
        return {"dtype": t.dtype, "shape": [], "sequence": [list(s) for s in t.sequence]}
    return {"dtype": t.dtype, "shape": list(t.shape)}


def _edge(t: TensorType | None, nhwc: bool) -> dict:
    """A brick input or output; channels-last ones are given NHWC (the nodes see NCHW)."""
    if not nhwc:
        return _type(t)
    if t is None or len(t.shape) != 4:
        raise ValueError(f"only 4-D values are carried channels-last, not {t}")
    n, c, h, w = t.shape
    return {"dtype": t.dtype, "shape": [n, h, w, c], "layout": "NHWC"}


def _tensor(operand: Operand) -> dict:
    data: list | str = list(operand.data or ()) if operand.kind is Kind.CONSTANT else "random"
    return {**_type(operand.type), "data": data}


def _attribute(attr: Attribute) -> dict:
    value: object = attr.value
    if isinstance(attr.value, Operand):
        value = _tensor(attr.value)
    elif isinstance(attr.value, tuple):
        value = list(attr.value)
    return {"name": attr.name, "type": attr.type, "value": value}
