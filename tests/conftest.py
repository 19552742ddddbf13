"""Shared test helpers: tiny hand-built ONNX models and the tiny zoo on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def weight(name: str, shape, seed: int = 0, dtype=np.float32) -> onnx.TensorProto:
    rng = np.random.default_rng(abs(hash((name, seed))) % (1 << 32))
    return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)


def const(name: str, values, dtype=np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=dtype), name)


def make_model(nodes, inputs, outputs, initializers=(), opset: int = 13, **kw) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kw)
    model.ir_version = min(model.ir_version, 8)
    return model


def residual_cnn(seed: int = 0, channels: int = 8, batch="N") -> onnx.ModelProto:
    """Conv-BN-Relu-Conv + skip, then exporter-style shape arithmetic into a Reshape."""
    c = channels
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], ["b1"], name="bn1"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Add", ["c2", "x"], ["a"], name="add"),
        helper.make_node("Shape", ["a"], ["sh"], name="shape"),
        helper.make_node("Gather", ["sh", "zero"], ["bs"], axis=0, name="gather"),
        helper.make_node("Unsqueeze", ["bs", "ax"], ["bsu"], name="unsqueeze"),
        helper.make_node("Concat", ["bsu", "m1"], ["newshape"], axis=0, name="concat"),
        helper.make_node("Reshape", ["a", "newshape"], ["flat"], name="reshape"),
        helper.make_node("Dropout", ["flat"], ["drop"], name="dropout"),
        helper.make_node("Relu", ["drop"], ["out"], name="relu_out"),
    ]
    inits = [weight("w1", (c, c, 3, 3), seed), weight("w2", (c, c, 3, 3), seed),
             weight("s", (c,), seed), weight("b", (c,), seed), weight("m", (c,), seed),
             numpy_helper.from_array(np.abs(np.random.default_rng(seed).standard_normal(c)).astype(np.float32), "v"),
             const("zero", 0), const("ax", [0]), const("m1", [-1])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, c, 16, 16])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, "F"])
    return make_model(nodes, [x], [out], inits, producer_name="secret-exporter", doc_string="SECRET DOC")


def branchy_mlp(seed: int = 0) -> onnx.ModelProto:
    """Two parallel MatMul+Relu branches joined by Concat: a DAG for critical paths."""
    nodes = [
        helper.make_node("MatMul", ["x", "wa"], ["a1"], name="mm_a"),
        helper.make_node("Relu", ["a1"], ["a2"], name="relu_a"),
        helper.make_node("MatMul", ["x", "wb"], ["b1"], name="mm_b"),
        helper.make_node("Relu", ["b1"], ["b2"], name="relu_b"),
        helper.make_node("Concat", ["a2", "b2"], ["y"], axis=1, name="concat"),
    ]
    inits = [weight("wa", (16, 32), seed), weight("wb", (16, 32), seed)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])
    return make_model(nodes, [x], [y], inits)


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A folder with the hand-built models, one of them in a subfolder."""
    d = tmp_path / "secret_models"
    (d / "team_a").mkdir(parents=True)
    onnx.save(residual_cnn(seed=1), str(d / "team_a" / "confidential_resnet.onnx"))
    onnx.save(branchy_mlp(seed=2), str(d / "private_mlp.onnx"))
    return d


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory) -> Path:
    """The demo models at --tiny scale, written once per test session."""
    from dlbricks_gen.workflows.zoo_files import write_models
    from dlbricks_gen.zoo import DEMO_MODELS, ZooOptions

    d = tmp_path_factory.mktemp("zoo")
    write_models(d, list(DEMO_MODELS), ZooOptions(tiny=True), echo=lambda _: None)
    return d


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="Rewrite tests/golden/ from the current generator output.")


@pytest.fixture(autouse=True)
def user_config(tmp_path_factory, monkeypatch) -> Path:
    """Every test's config home (the brick-id secret lives there): a temp dir, never the real home."""
    home = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home
