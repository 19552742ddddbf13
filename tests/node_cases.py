"""ONNX's own operator test cases (`onnx.backend.test.case.node`) compiled and run as bricks.

Shared by tests/test_onnx_node_cases.py and benchmarks/node_cases.py: which cases ONNX Runtime
runs, and for one case, whether its bricks compute what the original model computes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from dlbricks_gen.frontend import FrontendError, ShapeOptions, lower_proto
from dlbricks_gen.ir.spec import brick_spec
from dlbricks_gen.passes.partition import consumers, make_brick, windows
from dlbricks_gen.runtime.core.spec import build_model

GRANULARITY = 4


@dataclass(frozen=True)
class Outcome:
    case: str
    status: str  # "equal", "refused", "mismatch", "load failure"
    detail: str = ""


def all_cases() -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case import node

        return sorted(node.collect_testcases(None), key=lambda c: c.name)


def _session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.intra_op_num_threads = 1
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def feeds_of(case) -> dict[str, np.ndarray]:
    inputs, _ = case.data_sets[0]
    names = [v.name for v in case.model.graph.input
             if v.name not in {t.name for t in case.model.graph.initializer}]
    return {n: v for n, v in zip(names, inputs, strict=False)}


def ort_outputs(case) -> list | None:
    """The original's outputs in ONNX Runtime, or None when ONNX Runtime cannot run the case."""
    try:
        return _session(case.model).run(None, feeds_of(case))
    except Exception:  # noqa: BLE001 - any failure means: not a case ONNX Runtime runs
        return None


def check_case(case, expected: list) -> Outcome:
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    feeds = feeds_of(case)
    try:
        lowered = lower_proto(model, case.name, case.name + ".onnx", ShapeOptions(), inputs=feeds)
    except FrontendError as exc:
        return Outcome(case.name, "refused", exc.message)
    truth = every_value(model, feeds)  # the model as lowered: control flow expanded, nodes named
    values = dict(feeds)
    originals = {n.name: n for n in model.graph.node}  # named by the frontend (#index if unnamed)
    used_by = consumers(lowered)
    for begin, end in windows(lowered, GRANULARITY):
        brick = make_brick(lowered, begin, end, used_by)
        built = build_model(brick_spec("x", brick))
        _real_weights(built, list(lowered.nodes[begin:end]), originals, truth)
        try:
            session = _session(built)
        except Exception as exc:  # noqa: BLE001
            return Outcome(case.name, "load failure", f"{type(exc).__name__}: {exc}"[:300])
        run = session.run(None, dict(zip((i.name for i in session.get_inputs()),
                                         _brick_inputs(lowered, begin, end, values), strict=True)))
        for ref, value in zip(brick.outputs, run, strict=True):
            values[lowered.nodes[begin + ref.layer].outputs[ref.output]] = value
    for name, want in zip(lowered.outputs, expected, strict=True):
        if name not in values:
            return Outcome(case.name, "folded")
        if not _close(values[name], want, case):
            return Outcome(case.name, "mismatch", name)
    return Outcome(case.name, "equal")


def every_value(model: onnx.ModelProto, feeds: dict) -> dict[str, np.ndarray]:
    """Every tensor value of the original (initializers, folded constants, intermediates)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = list(dict.fromkeys(o for n in probe.graph.node for o in n.output if o))
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    values = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    values.update(zip(names, session.run(None, feeds), strict=True))
    return values


def _real_weights(brick_model: onnx.ModelProto, nodes: list, originals: dict, values: dict) -> None:
    """The brick's random weights replaced by the original's values, so that it can be
    compared with the original (the suite times them with random values)."""
    for tensor in brick_model.graph.initializer:
        if not tensor.name.startswith("w"):
            continue
        layer, slot = (int(x) for x in tensor.name[1:].split("_"))
        source = originals.get(nodes[layer].name)
        if source is not None and source.input[slot] in values:
            value = np.asarray(values[source.input[slot]])
            tensor.CopyFrom(onnx.numpy_helper.from_array(value.astype(onnx.helper.tensor_dtype_to_np_dtype(
                tensor.data_type)).reshape(tuple(tensor.dims)), tensor.name))


def _brick_inputs(model, begin: int, end: int, values: dict) -> list:
    """The values of a brick's inputs, in the order make_brick numbers them."""
    local = {name for i in range(begin, end) for name in model.nodes[i].outputs}
    order: dict[str, None] = {}
    for i in range(begin, end):
        node = model.nodes[i]
        for name, operand in zip(node.inputs, node.layer.inputs, strict=True):
            if operand.kind.value == "activation" and name not in local:
                order.setdefault(name)
    return [values[n] for n in order]


def _close(got, want, case) -> bool:
    if isinstance(want, list) or isinstance(got, list):  # a sequence: element by element
        return (isinstance(want, list) and isinstance(got, list) and len(got) == len(want)
                and all(_close(g, w, case) for g, w in zip(got, want, strict=True)))
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    if want.dtype.kind in "fc":
        return np.allclose(got, want, rtol=max(case.rtol, 1e-4), atol=max(case.atol, 1e-7), equal_nan=True)
    return np.array_equal(got, want)
