"""A corpus of bad and hostile models, written into a folder by `write_corpus`.

Each entry: file name -> what compile must do with it: a substring of its one-line error, or
None when the model is valid (hostile strings inside) and must compile. Run as a script to
write the corpus somewhere: python tests/hostile.py DIR
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import onnx
from conftest import branchy_mlp, const, make_model, residual_cnn
from onnx import TensorProto, helper, numpy_helper

# Strings that must never appear in a generated file, nor run if they did.
SENTINEL = "dlbricks_pwned"
PAYLOAD = f"__import__('os').system('touch {SENTINEL}')"
HOSTILE = [
    f'"; {PAYLOAD}; "',
    f'""" + {PAYLOAD} + """',
    f"''' {PAYLOAD} '''",
    "back\\slash\\' \\\" \\n",
    f"new\nline\r\n{PAYLOAD}\n",
    "{{ 7*7 }}{% for x in range(3) %}{# jinja #}",
    f"${{{PAYLOAD}}} `touch {SENTINEL}` $(touch {SENTINEL})",
    "non-ascii \u202e\u0000\ufeff\U0001f600 \u00e9",
]
# Distinctive substrings of the hostile strings, searched for in the suite.
MARKERS = ["__import__", SENTINEL, "{{ 7*7 }}", "{% for", "back\\slash", "\u202e", "jinja"]


def vi(name: str, shape, dtype=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def relu_chain(nodes, inputs=None, outputs=None, inits=()) -> onnx.ModelProto:
    return make_model(nodes, inputs or [vi("x", [1, 4])], outputs or [vi("y", [1, 4])], inits)


def bytes_of(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString()


def flipped(data: bytes, where: float, bit: int = 0x5A) -> bytes:
    out = bytearray(data)
    out[int(len(out) * where)] ^= bit
    return bytes(out)


def with_bad_utf8(model: onnx.ModelProto, placeholder: str) -> bytes:
    """The serialized model with a same-length invalid UTF-8 sequence in place of `placeholder`."""
    data = bytes_of(model)
    bad = (b"\xff\xfe\xc3(\xed\xa0\x80" * 8)[: len(placeholder.encode())]
    return data.replace(placeholder.encode(), bad)


def hostile_valid() -> onnx.ModelProto:
    """A valid model whose every free-text field is hostile: names, docs, metadata, attributes."""
    model = residual_cnn(seed=3, batch=1)
    h = itertools.cycle(HOSTILE)
    model.graph.name = next(h)
    model.doc_string, model.graph.doc_string = next(h), next(h)
    model.producer_name, model.producer_version, model.domain = next(h), next(h), next(h)
    for key, value in zip(HOSTILE, reversed(HOSTILE), strict=True):
        model.metadata_props.add(key=key, value=value)
    renames = {}
    for node in model.graph.node:
        node.name, node.doc_string = next(h) + node.name, next(h)
        node.attribute.append(helper.make_attribute("note", next(h)))  # unknown: dropped
    for value in [*model.graph.input, *model.graph.output, *model.graph.initializer]:
        renames[value.name] = value.name + next(h)
    for node in model.graph.node:  # rename every tensor, consistently
        for i, name in enumerate(node.input):
            renames.setdefault(name, name + next(h))
            node.input[i] = renames[name]
        for i, name in enumerate(node.output):
            renames.setdefault(name, name + next(h))
            node.output[i] = renames[name]
    for value in [*model.graph.input, *model.graph.output, *model.graph.initializer]:
        value.name = renames[value.name]
    return model


def hostile_semantic_strings() -> onnx.ModelProto:
    """Strings that decide a kernel's work (StringNormalizer stopwords) are data: they reach
    the brick, escaped inside its SPEC literal, and must not run."""
    node = helper.make_node("StringNormalizer", ["x"], ["y"], stopwords=HOSTILE, locale="C",
                            name="norm")
    return make_model([node], [vi("x", [1, 4], TensorProto.STRING)], [vi("y", [1, 4], TensorProto.STRING)])


def huge_weight() -> onnx.ModelProto:
    """A MatMul whose weight would need 4 TiB: declared with external data that does not exist."""
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="nowhere.bin")
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="giant_matmul")
    return make_model([node], [vi("x", [1, 1 << 20])], [vi("y", [1, 1 << 20])], [w])


def huge_constant_of_shape() -> onnx.ModelProto:
    """Folding this would allocate 4 TiB at compile time."""
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["big"], name="giant_fill"),
             helper.make_node("Add", ["x", "big"], ["y"], name="add")]
    return make_model(nodes, [vi("x", [1 << 20, 1 << 20])], [vi("y", [1 << 20, 1 << 20])],
                      [const("shape", [1 << 20, 1 << 20])])


def nested_subgraph() -> onnx.ModelProto:
    inner = helper.make_graph([helper.make_node("Relu", ["x"], ["t"], name="deep_relu")], "inner", [],
                              [vi("t", [1, 4])])
    if_node = helper.make_node("If", ["c"], ["u"], then_branch=inner, else_branch=inner, name="inner_if")
    body = helper.make_graph([if_node, helper.make_node("Identity", ["cond"], ["cond_out"])], "body",
                             [vi("i", [], TensorProto.INT64), vi("cond", [], TensorProto.BOOL)],
                             [vi("cond_out", [], TensorProto.BOOL), vi("u", [1, 4])])
    loop = helper.make_node("Loop", ["n", "c"], ["y"], body=body, name="outer_loop")
    return make_model([loop], [vi("n", [], TensorProto.INT64), vi("c", [], TensorProto.BOOL), vi("x", [1, 4])],
                      [vi("y", [3, 1, 4])])


def external_missing(directory: Path) -> None:
    """Weights in a data file that is gone: compiles (weights are shapes only)."""
    onnx.save_model(branchy_mlp(seed=5), str(directory / "external_missing.onnx"),
                    save_as_external_data=True, location="external_missing.data", size_threshold=0)
    (directory / "external_missing.data").unlink()


def external_escape(directory: Path) -> None:
    """A small integer constant whose external data points outside the folder: never read."""
    model = residual_cnn(seed=4, batch=1)
    for tensor in model.graph.initializer:
        if tensor.name == "m1":  # the Reshape's shape tail
            tensor.ClearField("int64_data")
            tensor.ClearField("raw_data")
            tensor.data_location = TensorProto.EXTERNAL
            tensor.external_data.add(key="location", value="../../../../../../etc/passwd")
    onnx.save(model, str(directory / "external_escape.onnx"))


def cases() -> dict[str, tuple[object, str | None]]:
    """file name -> (content: bytes or ModelProto, expected error substring or None)."""
    good = bytes_of(residual_cnn(seed=7, batch=1))
    relu = helper.make_node
    return {
        "empty.onnx": (b"", "empty file"),
        "truncated.onnx": (good[: len(good) // 2], "not a valid ONNX file"),
        "bitflip_header.onnx": (flipped(good, 0.01), "not a valid ONNX file"),
        "text.onnx": (b"this is a text file, not a model\n" * 5, "not a valid ONNX file"),
        "json.onnx": (b'{"graph": {"node": []}}', "not a valid ONNX file"),
        "tensor_not_model.onnx": (numpy_helper.from_array(np.ones(8, np.float32), "t").SerializeToString(),
                                  "not a valid ONNX file"),
        "cycle.onnx": (relu_chain([relu("Add", ["x", "b"], ["a"], name="loop_a"),
                                   relu("Relu", ["a"], ["b"], name="loop_b"),
                                   relu("Relu", ["a"], ["y"], name="out")]),
                       "node 'loop_a' (Add): is on a cycle"),
        "duplicate_output.onnx": (relu_chain([relu("Relu", ["x"], ["y"], name="first"),
                                              relu("Neg", ["x"], ["y"], name="second")]),
                                  "node 'second' (Neg): writes tensor 'y', which node 'first' also writes"),
        "duplicate_graph_output.onnx": (relu_chain([relu("Relu", ["x"], ["y"], name="r")],
                                                   outputs=[vi("y", [1, 4]), vi("y", [1, 4])]),
                                        "graph outputs listed more than once: ['y']"),
        "dangling_input.onnx": (relu_chain([relu("Add", ["x", "ghost"], ["y"], name="haunted")]),
                                "node 'haunted' (Add): reads tensor 'ghost', which no node"),
        "zero_dim.onnx": (relu_chain([relu("Relu", ["x"], ["y"], name="r")], inputs=[vi("x", [1, 0])]),
                          None),  # zero-size dimensions are static: compiles
        "zero_size_weight.onnx": (make_model([relu("MatMul", ["x", "w"], ["y"], name="empty_mm")],
                                             [vi("x", [1, 4])], [vi("y", [1, 0])],
                                             [numpy_helper.from_array(np.zeros((4, 0), np.float32), "w")]),
                                  None),  # an empty output is valid ONNX: compiles and runs
        "negative_dim.onnx": (relu_chain([relu("Relu", ["x"], ["y"], name="r")], inputs=[vi("x", [1, -3])]),
                              "input 'x' has a negative dimension -3"),
        "huge_weight.onnx": (huge_weight(), "node 'giant_matmul' (MatMul): needs 4.0 TiB"),
        "huge_constant_of_shape.onnx": (huge_constant_of_shape(), "node 'giant_fill' (ConstantOfShape): needs"),
        "unknown_op.onnx": (relu_chain([relu("Frobnicate", ["x"], ["y"], name="frob")]),
                            "unknown operator ai.onnx.Frobnicate"),
        "unknown_domain.onnx": (_with_domain(relu_chain([relu("Relu", ["x"], ["y"], name="evil",
                                                               domain="com.evil")]), "com.evil"),
                                "node 'evil' (Relu): custom domain 'com.evil'"),
        "nested_subgraph.onnx": (nested_subgraph(), "node 'outer_loop' (Loop): ran 0 times on the sample input"),
        "bad_utf8_name.onnx": (with_bad_utf8(_named_relu("PLACEHOLDER_NODE_NAME"), "PLACEHOLDER_NODE_NAME"),
                               "holds text (a name, doc string or metadata) that is not UTF-8"),
        "bad_utf8_doc.onnx": (with_bad_utf8(_doc_relu("PLACEHOLDER_DOC_STRING"), "PLACEHOLDER_DOC_STRING"),
                              "not a valid ONNX file"),
        "bad_utf8_attribute.onnx": (_bad_attribute(), "node 'pad' (Pad): attribute 'mode' holds bytes that are not UTF-8"),
        "hostile_valid.onnx": (hostile_valid(), None),
        "hostile_semantic_strings.onnx": (hostile_semantic_strings(), None),
        "external_missing.onnx": (external_missing, None),
        "external_escape.onnx": (external_escape, "not available: it is computed at session start from 'm1', whose external data file is missing or outside"),
    }


def _with_domain(model: onnx.ModelProto, domain: str) -> onnx.ModelProto:
    model.opset_import.append(helper.make_opsetid(domain, 1))
    return model


def _named_relu(name: str) -> onnx.ModelProto:
    return relu_chain([helper.make_node("Relu", ["x"], ["y"], name=name)])


def _doc_relu(doc: str) -> onnx.ModelProto:
    model = _named_relu("r")
    model.doc_string = doc
    return model


def _bad_attribute() -> onnx.ModelProto:
    node = helper.make_node("Pad", ["x", "pads"], ["y"], mode="PLACEHOLDER", name="pad")
    model = make_model([node], [vi("x", [1, 4])], [vi("y", [1, 6])], [const("pads", [0, 1, 0, 1])])
    node = model.graph.node[0]
    node.attribute[0].s = b"\xff\xfe\xc3("
    return model


def write_corpus(directory: Path) -> dict[str, str | None]:
    """Write every case into `directory`; return file name -> expected error (None: compiles)."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (content, error) in cases().items():
        if callable(content):
            content(directory)
        elif isinstance(content, bytes):
            (directory / name).write_bytes(content)
        else:
            (directory / name).write_bytes(bytes_of(content))
        expected[name] = error
    hostile_file = "evil'\"{{ 7*7 }}\n__import__('os').onnx"  # the name reaches the plan only
    (directory / hostile_file).write_bytes(bytes_of(branchy_mlp(seed=9)))
    expected[hostile_file] = None
    for where in (0.3, 0.6, 0.9):  # bit flips deep inside: any one-line outcome, never a crash
        (directory / f"bitflip_{int(where * 100)}.onnx").write_bytes(
            flipped(bytes_of(residual_cnn(seed=7, batch=1)), where))
        expected[f"bitflip_{int(where * 100)}.onnx"] = "?"
    return expected


if __name__ == "__main__":
    for file, error in write_corpus(Path(sys.argv[1])).items():
        print(f"{file}: {error or 'compiles'}")
