"""The canonical text of a brick (the input of its digest, so of every suite file name) is frozen.

Hand-built bricks cover every operand kind, constant data of every scalar type, absent inputs
and outputs, every attribute type (a tensor-valued one too) and wiring across layers; their
texts and digests are golden files (refresh: pytest --update-golden). The committed example
suite's file names must be the digests computed today.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from dlbricks_gen.ir import (
    Attribute,
    Brick,
    BrickInput,
    Kind,
    Layer,
    LayerOutput,
    Operand,
    TensorType,
)
from dlbricks_gen.ir.canonical import brick_digest, brick_text

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "canonical"

F4 = TensorType("FLOAT", (1, 8, 16, 16))
_ = Operand(Kind.ABSENT)


def act(t: TensorType) -> Operand:
    return Operand(Kind.ACTIVATION, t)


def weight(*shape: int, dtype: str = "FLOAT") -> Operand:
    return Operand(Kind.WEIGHT, TensorType(dtype, shape))


def conv_bn_relu() -> Brick:
    """Three layers wired in a chain, weights, an absent bias, absent BN outputs."""
    conv = Layer("Conv", "", 11, (act(F4), weight(8, 8, 3, 3), _), (F4,), (
        Attribute("auto_pad", "STRING", "NOTSET"),
        Attribute("dilations", "INTS", (1, 1)),
        Attribute("group", "INT", 1),
        Attribute("kernel_shape", "INTS", (3, 3)),
        Attribute("pads", "INTS", (1, 1, 1, 1)),
        Attribute("strides", "INTS", (1, 1)),
    ))
    bn = Layer("BatchNormalization", "", 15, (act(F4), *[weight(8)] * 4), (F4, None, None), (
        Attribute("epsilon", "FLOAT", 9.999999747378752e-06),
        Attribute("momentum", "FLOAT", 0.8999999761581421),
        Attribute("training_mode", "INT", 0),
    ))
    relu = Layer("Relu", "", 14, (act(F4),), (F4,), ())
    wiring = ((BrickInput(0), None, None), (LayerOutput(0, 0), None, None, None, None),
              (LayerOutput(1, 0),))
    return Brick((F4,), (conv, bn, relu), wiring, (LayerOutput(2, 0),))


def constants() -> Brick:
    """Constant data (int, float incl. nan/inf, bool), a tensor attribute, a scalar shape,
    a weight-valued tensor attribute, two brick inputs, a value used twice and inside outputs."""
    x = TensorType("FLOAT", (2, 6))
    shape = Operand(Kind.CONSTANT, TensorType("INT64", (2,)), (3, -1))
    reshape = Layer("Reshape", "", 14, (act(x), shape), (TensorType("FLOAT", (3, 4)),),
                    (Attribute("allowzero", "INT", 0),))
    fill = Layer("ConstantOfShape", "", 9, (Operand(Kind.CONSTANT, TensorType("INT64", (1,)), (4,)),),
                 (TensorType("FLOAT", (4,)),),
                 (Attribute("value", "TENSOR", Operand(Kind.CONSTANT, TensorType("FLOAT", (1,)), (0.5,))),))
    clip = Layer("Clip", "", 13, (act(TensorType("FLOAT", (3, 4))),
                                  Operand(Kind.CONSTANT, TensorType("FLOAT", ()), (float("-inf"),)),
                                  Operand(Kind.CONSTANT, TensorType("FLOAT", ()), (float("nan"),))),
                 (TensorType("FLOAT", (3, 4)),), ())
    where = Layer("Where", "", 16, (Operand(Kind.CONSTANT, TensorType("BOOL", (2,)), (True, False)),
                                    act(TensorType("FLOAT", (3, 4))), act(TensorType("FLOAT", (3, 4)))),
                  (TensorType("FLOAT", (3, 4)),), ())
    empty = Layer("Identity", "", 16, (act(TensorType("INT64", (0,))),), (TensorType("INT64", (0,)),),
                  (Attribute("blank", "TENSOR", Operand(Kind.CONSTANT, TensorType("INT64", (0,)), ())),
                   Attribute("weights", "TENSOR", Operand(Kind.WEIGHT, TensorType("FLOAT16", (2, 3))))))
    wiring = ((BrickInput(0), None), (None,), (LayerOutput(0, 0), None, None),
              (None, LayerOutput(2, 0), LayerOutput(0, 0)), (BrickInput(1),))
    return Brick((x, TensorType("INT64", (0,))), (reshape, fill, clip, where, empty), wiring,
                 (LayerOutput(1, 0), LayerOutput(3, 0), LayerOutput(4, 0)))


def attribute_types() -> Brick:
    """Every plain attribute type, text needing escapes, another domain, two outputs."""
    x = TensorType("FLOAT", (1, 3))
    op = Layer("TreeEnsembleClassifier", "ai.onnx.ml", 3, (act(x),),
               (TensorType("INT64", (1,)), TensorType("FLOAT", (1, 2))), (
        Attribute("base_values", "FLOATS", (0.1, -2.5, 1e-30, 3.0)),
        Attribute("class_ids", "INTS", (0, 1, -7)),
        Attribute("classlabels_strings", "STRINGS", ("cat", "it's", 'say "hi"', "tab\tnew\nline", "é")),
        Attribute("empty_ints", "INTS", ()),
        Attribute("nodes_hitrates", "FLOAT", 1.0),
        Attribute("post_transform", "STRING", "NONE"),
        Attribute("count", "INT", -3),
    ))
    gelu = Layer("FastGelu", "com.microsoft", 1, (act(TensorType("FLOAT", (1, 2))), _),
                 (TensorType("FLOAT", (1, 2)),), ())
    wiring = ((BrickInput(0),), (LayerOutput(0, 1), None))
    return Brick((x,), (op, gelu), wiring, (LayerOutput(0, 0), LayerOutput(1, 0)))


BRICKS = {"conv_bn_relu": conv_bn_relu, "constants": constants, "attribute_types": attribute_types}


def check_golden(request, path: Path, text: str) -> None:
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                        "golden", "canonical"))
    assert not diff, (f"the canonical text changed: every digest would change "
                      f"(refresh only on purpose: pytest --update-golden):\n{diff}")


@pytest.mark.parametrize("name", sorted(BRICKS))
def test_canonical_text_matches_its_golden_file(request, name: str):
    check_golden(request, GOLDEN / f"{name}.txt", brick_text(BRICKS[name]()))


def test_digests_match_their_golden_file(request):
    lines = "".join(f"{brick_digest(BRICKS[n]())}  {n}\n" for n in sorted(BRICKS))
    check_golden(request, GOLDEN / "digests.txt", lines)


def test_digest_is_the_sha256_of_the_canonical_text():
    brick = constants()
    assert len(brick_digest(brick)) == 64


def test_committed_example_suite_is_named_by_todays_digests():
    from dlbricks_gen.workflows.examples import example_suite

    computed = {d for d, _ in example_suite().partition.bricks}
    committed = {p.stem for p in (ROOT / "generated" / "bricks").glob("*.py")}
    assert committed == computed


@pytest.mark.parametrize("cls", [TensorType, Operand, Attribute, Layer])
def test_display_does_not_change_the_digest(monkeypatch, cls):
    """The digest input goes through no __str__ or __repr__: display may change freely."""
    before = {name: brick_digest(make()) for name, make in BRICKS.items()}
    monkeypatch.setattr(cls, "__str__", lambda self: "changed")
    monkeypatch.setattr(cls, "__repr__", lambda self: "changed")
    assert {name: brick_digest(make()) for name, make in BRICKS.items()} == before
