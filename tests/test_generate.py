"""The generator: deterministic, name-free suites whose bricks are valid, runnable programs."""

from __future__ import annotations

import ast
import difflib
import json
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from conftest import make_model, residual_cnn
from onnx import TensorProto, helper

from dlbricks_gen.codegen.render import pyliteral, render_suite
from dlbricks_gen.frontend import ShapeOptions, find_models, load_model, lower_proto
from dlbricks_gen.ir.spec import brick_spec
from dlbricks_gen.passes.partition import partition
from dlbricks_gen.runtime.core.spec import build_model
from dlbricks_gen.workflows.compile import compile_models

GOLDEN = Path(__file__).parent / "golden"
B1 = ShapeOptions(batch=1)


def compile_to(models: Path, out: Path, granularity: int = 1):
    return compile_models(models, out, out.parent / f"{out.name}.plan.json", granularity, B1)


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_compiling_twice_gives_byte_identical_suites(models_dir: Path, tmp_path: Path):
    compile_to(models_dir, tmp_path / "one", 2)
    compile_to(models_dir, tmp_path / "two", 2)
    assert tree(tmp_path / "one") == tree(tmp_path / "two")
    assert (tmp_path / "one.plan.json").read_bytes() == (tmp_path / "two.plan.json").read_bytes()


@pytest.mark.parametrize("granularity", [1, 3])
def test_no_model_name_file_name_doc_or_producer_in_the_suite(models_dir: Path, tmp_path: Path,
                                                              granularity: int):
    result = compile_to(models_dir, tmp_path / "suite", granularity)
    secrets = ["confidential", "secret", "team_a", "private_mlp", "SECRET DOC", "secret-exporter"]
    for rel, content in tree(tmp_path / "suite").items():
        text = content.decode("utf-8").lower()
        for word in secrets:
            assert word.lower() not in rel.lower() and word.lower() not in text, (rel, word)
    plan = json.loads(result.plan_path.read_text())
    assert {m["name"] for m in plan["models"]} == {"team_a/confidential_resnet", "private_mlp"}


def test_brick_order_is_sorted_and_the_plan_stays_outside(models_dir: Path, tmp_path: Path):
    result = compile_to(models_dir, tmp_path / "suite")
    suite = json.loads((tmp_path / "suite" / "suite.json").read_text())
    assert suite["bricks"] == sorted(suite["bricks"]) and suite["suite"] == result.suite
    assert sorted(p.stem for p in (tmp_path / "suite" / "bricks").glob("*.py")) == suite["bricks"]
    with pytest.raises(ValueError, match="must not be inside"):
        compile_models(models_dir, tmp_path / "s2", tmp_path / "s2" / "plan.json", 1, B1)


def test_every_brick_of_every_test_model_is_a_valid_onnx_graph_ort_loads(tiny_zoo: Path,
                                                                         models_dir: Path):
    models = [load_model(p, root, B1) for root in (tiny_zoo, models_dir) for p in find_models(root)]
    for granularity in (1, 3):
        for digest, brick in partition(models, granularity).bricks:
            model = build_model(brick_spec(digest, brick))
            onnx.checker.check_model(model, full_check=True)
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_model_strings_cannot_become_code():
    hostile = 'x"""\'\'\'\n__import__("os").system("echo pwned")  # \\'
    node = helper.make_node("StringNormalizer", ["x"], ["y"], stopwords=[hostile], name=hostile)
    node.attribute.append(helper.make_attribute("junk", hostile))  # unknown attributes are dropped
    x = helper.make_tensor_value_info("x", TensorProto.STRING, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.STRING, [1, 4])
    model = lower_proto(make_model([node], [x], [y]), "m", "m.onnx", B1)
    _, files = render_suite(partition([model], 1))
    for rel, text in files.items():
        if rel.startswith("bricks/"):
            tree_ = ast.parse(text)
            assigns = [n for n in tree_.body if isinstance(n, ast.Assign)]
            spec = ast.literal_eval(assigns[-1].value)
            attributes = {a["name"]: a["value"] for a in spec["nodes"][0]["attributes"]}
            assert attributes["stopwords"] == [hostile] and "junk" not in attributes
            calls = [n for n in ast.walk(tree_) if isinstance(n, ast.Call)]
            assert all(ast.unparse(c.func) in {"sys.path.insert", "os.path.join", "os.path.dirname",
                                               "os.path.abspath", "sys.exit", "brick_main"}
                       for c in calls)


def test_pyliteral_round_trips_plain_data():
    data = {"a": [1, 2.5, float("inf"), -0.0], "b": [{"c": "d\n'\""}], "e": None, "f": True}
    back = ast.literal_eval(pyliteral(data))
    assert back["a"][:2] == [1, 2.5] and back["a"][2] == "inf" and back["b"] == data["b"]


def test_brick_program_matches_its_golden_file(request):
    model = lower_proto(residual_cnn(), "m", "m.onnx", B1)
    _, files = render_suite(partition([model], 3))
    bricks = sorted(rel for rel in files if rel.startswith("bricks/"))
    golden = GOLDEN / "residual_cnn_h3_first_brick.py"
    text = files[bricks[0]]
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    expected = golden.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                        "golden", "generated"))
    assert not diff, f"generated brick changed (refresh: pytest --update-golden):\n{diff}"


def _files(suite_id: str, bricks: dict[str, str]) -> dict[str, str]:
    """A minimal file set as render_suite returns it."""
    meta = {"version": 2, "suite": suite_id, "bricks": sorted(bricks)}
    return {"suite.json": json.dumps(meta) + "\n", **{f"bricks/{d}.py": t for d, t in bricks.items()}}


def test_recompiling_removes_only_what_dlbricks_gen_wrote_and_sets_stale_results_aside(tmp_path: Path):
    from dlbricks_gen.codegen.render import write_suite

    out = tmp_path / "suite"
    write_suite(_files("1" * 16, {"a" * 64: "A\n", "b" * 64: "B\n"}), out)
    (out / "bricks" / "mine.py").write_text("a user's file\n")
    (out / "results").mkdir()
    (out / "results" / f"{'a' * 64}.json").write_text("{}")
    write_suite(_files("1" * 16, {"a" * 64: "A\n"}), out)  # same suite id: results stay
    assert (out / "results" / f"{'a' * 64}.json").exists()
    write_suite(_files("2" * 16, {"c" * 64: "C\n"}), out)
    assert sorted(p.name for p in (out / "bricks").iterdir()) == [f"{'c' * 64}.py", "mine.py"]
    assert not list((out / "results").glob("*.json"))  # another suite's results are not this one's
    assert (out / "results" / f"previous-{'1' * 16}" / f"{'a' * 64}.json").exists()


def test_an_interrupted_write_leaves_a_folder_that_says_it_is_incomplete(tmp_path: Path):
    from dlbricks_gen.codegen.render import write_suite
    from dlbricks_gen.runtime.suite import RunBroken, read_suite

    out = tmp_path / "suite"
    write_suite(_files("1" * 16, {"a" * 64: "A\n"}), out)
    (out / "bricks" / f"{'c' * 64}.py").mkdir()  # the new brick cannot be written
    with pytest.raises(OSError):
        write_suite(_files("2" * 16, {"b" * 64: "B\n", "c" * 64: "C\n"}), out)
    assert not (out / "suite.json").exists()
    with pytest.raises(RunBroken, match="incomplete"):
        read_suite(out)
