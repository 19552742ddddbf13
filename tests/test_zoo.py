"""The built-in zoo: every model builds, checks, infers static shapes and runs in onnxruntime."""

from __future__ import annotations

import collections
import functools
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from dlbricks_gen.zoo import DEMO_MODELS, ZooOptions, build_model, list_models, node_count

TINY = ZooOptions(tiny=True)
ALL_IDS = [m.id for m in list_models()]
REQUIRED = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "wide_resnet50_2", "vgg11", "vgg16", "vgg19", "vgg11_bn", "vgg16_bn", "vgg19_bn", "alexnet",
    "squeezenet1_0", "squeezenet1_1", "densenet121", "densenet169", "googlenet", "inception_v3",
    "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
    "shufflenet_v2_x1_0", "mnasnet1_0", "efficientnet_b0", "regnet_y_400mf", "convnext_tiny",
    "vit_b_16", "bert_base", "distilbert", "gpt2",
)


@functools.cache
def tiny(model_id: str) -> onnx.ModelProto:
    return build_model(model_id, TINY)


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def feeds(sess: ort.InferenceSession) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {i.name: np.zeros(i.shape, np.int64) if i.type == "tensor(int64)"
            else rng.uniform(-1, 1, i.shape).astype(np.float32) for i in sess.get_inputs()}


def dims(value: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]


def op_counts(model: onnx.ModelProto) -> collections.Counter[str]:
    return collections.Counter(n.op_type for n in model.graph.node)


def test_catalogue_lists_the_required_models_sorted():
    infos = list_models()
    assert [m.id for m in infos] == sorted(m.id for m in infos)
    assert len(infos) >= 30
    assert set(REQUIRED) <= set(ALL_IDS) and set(DEMO_MODELS) <= set(ALL_IDS)
    families = collections.Counter(m.family for m in infos)
    assert set(families) == {"classification", "detection", "segmentation", "language",
                             "generation"}
    assert families["detection"] >= 2 and families["segmentation"] >= 2
    assert all(m.source and m.description for m in infos)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="known: .*resnet50"):
        build_model("resnet5", TINY)


@pytest.mark.parametrize("model_id", ALL_IDS)
def test_tiny_model_checks_infers_static_shapes_and_runs(model_id: str):
    model = tiny(model_id)
    assert (model.ir_version, model.opset_import[0].version) == (8, 18)
    assert model.producer_name == "dlbricks-gen-zoo"
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    values = list(inferred.graph.value_info) + list(inferred.graph.output)
    assert len(inferred.graph.value_info) >= len(model.graph.node) - len(model.graph.output)
    assert all(-1 not in dims(v) and v.type.tensor_type.shape.dim for v in values)
    assert model.graph.input[0].name in ("input", "input_ids")
    assert dims(model.graph.input[0])[0] == 1
    sess = session(model)
    outputs = sess.run(None, feeds(sess))
    for out, declared in zip(outputs, model.graph.output, strict=True):
        assert list(out.shape) == dims(declared)
        assert np.isfinite(out).all()


@pytest.mark.parametrize(("model_id", "op", "count"), [
    ("resnet18", "Conv", 20), ("resnet50", "Conv", 53), ("resnet50", "Gemm", 1),
    ("resnet152", "Conv", 155), ("vgg16", "Conv", 13), ("vgg16", "Gemm", 3),
    ("vgg19_bn", "BatchNormalization", 0), ("mobilenet_v1", "Conv", 27),
    ("mobilenet_v2", "Conv", 52), ("densenet121", "Conv", 120), ("densenet169", "Conv", 168),
    ("googlenet", "Conv", 57), ("inception_v3", "Conv", 94), ("efficientnet_b0", "Conv", 81),
    ("yolov3_tiny", "Conv", 13), ("unet", "ConvTranspose", 4), ("srresnet", "DepthToSpace", 2),
    ("bert_base", "LayerNormalization", 25), ("distilbert", "LayerNormalization", 13),
    ("gpt2", "LayerNormalization", 25), ("vit_b_16", "LayerNormalization", 25),
    ("bert_base", "Softmax", 12), ("bert_base", "Erf", 12), ("convnext_tiny", "Erf", 18),
])
def test_layer_counts_match_the_published_definitions(model_id: str, op: str, count: int):
    assert op_counts(tiny(model_id))[op] == count


def test_graphs_look_exported():
    resnet = op_counts(tiny("resnet18"))
    assert resnet["BatchNormalization"] == 0 and resnet["Flatten"] == 0 and resnet["Reshape"] == 1
    conv = next(n for n in tiny("resnet18").graph.node if n.op_type == "Conv")
    assert len(conv.input) == 3  # the folded BatchNormalization left a bias
    bert = op_counts(tiny("bert_base"))
    assert bert["Gemm"] == 0 and bert["MatMul"] == 12 * 8 + 1 and bert["Gather"] >= 3
    shapes = [i for i in tiny("bert_base").graph.initializer if i.data_type == onnx.TensorProto.INT64]
    assert shapes  # Reshape targets are int64 initializers


def test_same_options_give_the_same_bytes():
    for model_id in ("resnet18", "bert_base"):
        first = build_model(model_id, TINY).SerializeToString()
        assert build_model(model_id, TINY).SerializeToString() == first
    assert tiny("resnet34").graph.initializer[0].raw_data != tiny("resnet50").graph.initializer[0].raw_data


@pytest.mark.parametrize("model_id", ["squeezenet1_1", "mobilenet_v2", "ssd_mobilenet", "t5_encoder"])
def test_tiny_keeps_the_full_scale_structure(model_id: str):
    full = build_model(model_id, ZooOptions())
    assert [n.op_type for n in full.graph.node] == [n.op_type for n in tiny(model_id).graph.node]
    assert node_count(model_id) == len(full.graph.node)


def test_default_input_and_output_shapes():
    ssd = build_model("ssd_mobilenet", ZooOptions())
    assert dims(ssd.graph.input[0]) == [1, 3, 300, 300]
    assert [dims(o) for o in ssd.graph.output] == [[1, 1917, 4], [1, 1917, 91]]  # SSDLite anchors
    assert dims(build_model("inception_v3", TINY).graph.input[0]) == [1, 3, 75, 75]
    assert [dims(i) for i in tiny("bert_base").graph.input] == [[1, 16], [1, 16]]


def test_batch_image_size_and_seq_len_options():
    model = build_model("mobilenet_v3_small", ZooOptions(batch=2, image_size=96, tiny=True))
    assert dims(model.graph.input[0]) == [2, 3, 96, 96] and dims(model.graph.output[0]) == [2, 1000]
    sess = session(model)
    assert sess.run(None, feeds(sess))[0].shape == (2, 1000)
    text = build_model("distilbert", ZooOptions(batch=3, seq_len=8, tiny=True))
    assert dims(text.graph.input[0]) == [3, 8]
    with pytest.raises(ValueError, match="multiple of 16"):
        build_model("unet", ZooOptions(image_size=100, tiny=True))


def test_gpt2_is_causal():
    sess = session(build_model("gpt2", ZooOptions(seq_len=6, tiny=True)))
    ids, mask = np.zeros((1, 6), np.int64), np.ones((1, 6), np.int64)
    before = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    ids[0, -1] = 7
    after = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    np.testing.assert_allclose(before[:, :-1], after[:, :-1], rtol=1e-5, atol=1e-5)
    assert not np.allclose(before[:, -1], after[:, -1])


EXPORTS = json.loads((Path(__file__).parent / "fixtures" / "export_op_counts.json").read_text())
LATENCY_OPS = ("Conv", "MatMul", "Gemm", "BatchNormalization", "LayerNormalization", "Softmax",
               "Add", "Mul", "Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "Tanh",
               "Erf", "Div")


@pytest.mark.parametrize("model_id", sorted(EXPORTS["models"]))
def test_op_counts_match_the_real_export(model_id: str):
    """The zoo model has the op counts of the torch.onnx dynamo export of the same architecture
    (tests/fixtures/export_op_counts.json, from benchmarks/zoo_vs_exports.py). No tolerance: the
    ops that cost time (LATENCY_OPS; BatchNormalization is 0 where exports fold it) must agree
    exactly, and so must every other op type, glue included."""
    entry = EXPORTS["models"][model_id]
    model = build_model(model_id, ZooOptions(tiny=True, image_size=entry["input_size"]))
    zoo, export = op_counts(model), collections.Counter(entry["ops"])
    assert {op: zoo[op] for op in LATENCY_OPS} == {op: export[op] for op in LATENCY_OPS}
    assert zoo == export


def test_distilbert_mask_hides_padding():
    sess = session(build_model("distilbert", ZooOptions(seq_len=6, tiny=True)))
    ids, mask = np.arange(6, dtype=np.int64)[None], np.ones((1, 6), np.int64)
    unmasked = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    mask[0, -1] = 0
    before = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    ids[0, -1] = 9
    after = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    np.testing.assert_allclose(before[:, :-1], after[:, :-1], rtol=1e-5, atol=1e-5)
    assert not np.allclose(unmasked[:, :-1], before[:, :-1])  # the mask does reach attention
