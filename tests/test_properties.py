"""Property-based tests (hypothesis) of the frontend and the generator, on a bounded budget.

The frontend on random small graphs (valid or not, with random names, doc strings and
attribute text) either lowers them or raises FrontendError with one line, never anything else.
The generator writes any plain data as a literal that ast.literal_eval reads back, and a brick
program built around any SPEC holds no code but its fixed lines.
"""

from __future__ import annotations

import ast
import math

import onnx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from dlbricks_gen.codegen.render import environment, pyliteral, render_brick, render_suite
from dlbricks_gen.frontend import FrontendError, ShapeOptions, lower_proto
from dlbricks_gen.passes.partition import partition

BUDGET = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
SMALL = settings(max_examples=120, deadline=None, derandomize=True, database=None)

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
UNARY = ["Relu", "Neg", "Sigmoid", "Abs", "Tanh", "Exp", "Softmax", "Transpose", "ReduceMean", "Flatten",
         "Identity", "Dropout", "Shape", "Frobnicate"]
BINARY = ["Add", "Mul", "MatMul", "Concat", "Sub"]


@st.composite
def graphs(draw) -> onnx.ModelProto:
    rank = draw(st.integers(1, 4))
    shape = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    if draw(st.integers(0, 9)) == 0:  # now and then an impossible dimension
        shape[0] = draw(st.sampled_from([-1, 0, 1 << 40]))
    nodes, inits, current, names = [], [], "x", ["x"]
    for i in range(draw(st.integers(1, 6))):
        out = draw(st.one_of(st.just(f"v{i}"), st.just(f"v{i}"), text))
        if draw(st.booleans()):
            op = draw(st.sampled_from(UNARY))
            attrs = {}
            if op in ("Softmax", "Flatten"):
                attrs["axis"] = draw(st.integers(-5, 5))
            if op == "ReduceMean":
                attrs["axes"] = draw(st.lists(st.integers(-5, 5), min_size=1, max_size=3))
            if op == "Transpose":
                attrs["perm"] = draw(st.permutations(list(range(rank))))
            node = helper.make_node(op, [current], [out], name=draw(text), **attrs)
        else:
            op = draw(st.sampled_from(BINARY))
            other = draw(st.sampled_from(names + ["w"] * 3 + ["nobody"]))
            node = helper.make_node(op, [current, other], [out], name=draw(text),
                                    **({"axis": draw(st.integers(-3, 3))} if op == "Concat" else {}))
        node.doc_string = draw(text)
        if draw(st.booleans()):
            node.attribute.append(helper.make_attribute(draw(text) or "a", draw(text)))
        nodes.append(node)
        names.append(out)
        current = out
    w_shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=rank))
    inits.append(helper.make_tensor("w", TensorProto.FLOAT, w_shape, [0.5] * math.prod(w_shape)))
    graph = helper.make_graph(nodes, draw(text), [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(current, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", draw(st.sampled_from([7, 11, 13, 18, 21])))])
    model.ir_version = 8
    model.doc_string, model.producer_name = draw(text), draw(text)
    return model


@BUDGET
@given(graphs())
def test_the_frontend_lowers_or_raises_one_line_frontend_errors(model: onnx.ModelProto):
    try:
        lowered = lower_proto(model, "m", "m.onnx", ShapeOptions(batch=1))
    except FrontendError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("m.onnx")
        event(f"refused: {exc.message.split(':')[0][:40]}")
        return
    event("lowered")
    _, files = render_suite(partition([lowered], 2))
    for rel, content in files.items():
        if rel.startswith("bricks/"):
            _check_brick_program(content)


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


def normalised(value):
    """What a literal of `value` reads back as: non-finite floats as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    return value


@SMALL
@given(plain)
def test_pyliteral_round_trips_any_plain_data(value):
    for indent in (0, 4):
        assert ast.literal_eval(pyliteral(value, indent)) == normalised(value)
    assert ast.literal_eval(pyliteral({"k": value})) == {"k": normalised(value)}


@st.composite
def specs(draw) -> dict:
    tensor = st.fixed_dictionaries({"name": text, "dtype": text, "shape": st.lists(st.integers(), max_size=3)})
    attribute = st.fixed_dictionaries({"name": text, "type": text, "value": plain})
    node = st.fixed_dictionaries({"op_type": text, "domain": text, "inputs": st.lists(text, max_size=3),
                                  "outputs": st.lists(text, max_size=2), "attributes": st.lists(attribute, max_size=3)})
    nodes = draw(st.lists(node, min_size=1, max_size=3))
    return {"format": 1, "brick": draw(st.text("0123456789abcdef", min_size=64, max_size=64)), "layers": len(nodes),
            "opset_imports": draw(st.dictionaries(text, st.integers(), max_size=2)),
            "inputs": draw(st.lists(tensor, max_size=2)), "outputs": draw(st.lists(tensor, max_size=2)),
            "initializers": draw(st.lists(st.fixed_dictionaries({"name": text, "dtype": text, "shape": st.lists(st.integers(), max_size=2), "data": plain}), max_size=2)),
            "nodes": nodes}


@SMALL
@given(specs())
def test_a_brick_program_around_any_spec_runs_no_code_from_it(spec: dict):
    program = render_brick(environment(), spec)
    assert _check_brick_program(program) == normalised(spec)


@SMALL
@given(specs(), text, st.one_of(text, st.booleans(), st.none()))
def test_brick_ids_and_layer_counts_outside_the_docstring_rules_are_refused(spec: dict, brick, layers):
    """Found by the test above: the docstring shows the digest and layer count as they are."""
    with pytest.raises(ValueError, match="sha256 hex digest"):
        render_brick(environment(), {**spec, "brick": brick + "\x00"})
    with pytest.raises(ValueError, match="an int as 'layers'"):
        render_brick(environment(), {**spec, "layers": layers})


ALLOWED_CALLS = {"sys.path.insert", "os.path.join", "os.path.dirname", "os.path.abspath", "sys.exit",
                 "brick_main"}


def _check_brick_program(program: str) -> dict:
    """The file's statements are the template's own (a docstring, then SPEC = a pure literal:
    a brick file is data). Returns SPEC."""
    tree = ast.parse(program)
    kinds = [type(node).__name__ for node in tree.body]
    assert kinds == ["Expr", "Assign"], kinds
    assert isinstance(tree.body[0].value, ast.Constant)  # the docstring, a plain string
    calls = {ast.unparse(c.func) for c in ast.walk(tree) if isinstance(c, ast.Call)}
    assert calls <= ALLOWED_CALLS, calls
    return ast.literal_eval(tree.body[1].value)
