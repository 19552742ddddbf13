"""The TVM backend end to end, with real TVM: compile a tiny suite with --backend all, run it
with the suite's own runtime, fall back to ONNX Runtime where TVM cannot import an op, tune one
brick with a few meta-schedule trials and measure the rebuilt kernel, compile and measure a
whole model with `e2e --backend tvm`. Skipped only when tvm is not importable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from conftest import make_model, weight
from onnx import TensorProto, helper

from dlbricks_gen.frontend import ShapeOptions
from dlbricks_gen.runtime.core.results import validate_result
from dlbricks_gen.runtime.core.settings import Settings

tvm = pytest.importorskip("tvm")

from dlbricks_gen.runtime.backends import tvm as tvm_backend  # noqa: E402
from dlbricks_gen.workflows.compile import compile_models  # noqa: E402

TARGET = {"kind": "llvm", "num-cores": 1}  # generic x86-64: any CI machine runs it


def tiny_model() -> onnx.ModelProto:
    """MatMul -> Relu -> Celu: Celu has no converter in TVM 0.27's ONNX frontend (fallback)."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Relu", ["m"], ["r"], name="relu"),
             helper.make_node("Celu", ["r"], ["y"], name="celu")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    return make_model(nodes, [x], [y], [weight("w", (16, 8))], opset=13)


def run_py(suite: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-B", "-m", "dlbricks_runtime", *args], cwd=suite, text=True,
                          capture_output=True, timeout=timeout, check=False)


def results(suite: Path) -> dict[tuple[str, str], dict]:
    """{(op, run backend): result} of a suite's results/."""
    ops = {}
    for path in (suite / "bricks").glob("*.py"):
        ops[path.stem] = harness_spec(path)["nodes"][0]["op_type"]
    out = {}
    for path in (suite / "results").glob("*.json"):
        data = json.loads(path.read_text())
        assert validate_result(data) == [], path
        run = data.get("backend_requested", data["backend"])
        out[(ops[data["id"]], run)] = data
    return out


def harness_spec(path: Path) -> dict:
    from dlbricks_gen.runtime.core.spec import load_spec

    return load_spec(path)


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tvm")
    (root / "models").mkdir()
    onnx.save(tiny_model(), str(root / "models" / "tiny.onnx"))
    compile_models(root / "models", root / "suite", root / "suite.plan.json", 1, ShapeOptions(),
                   backends=("onnxruntime", "tvm"), tvm_target=TARGET)
    return root / "suite"


def test_suite_runs_tvm_kernels_and_falls_back_to_onnxruntime(suite: Path):
    info = json.loads((suite / "kernels" / "tvm.json").read_text())
    assert info["target"] == TARGET
    assert json.loads((suite / "suite.json").read_text())["backends"] == ["onnxruntime", "tvm"]
    check = run_py(suite, "check")
    assert "kernels load and run" in check.stdout, check.stdout + check.stderr
    done = run_py(suite, "--quick")
    assert done.returncode == 0, done.stderr
    assert "6 measured, 0 failed" in done.stdout
    found = results(suite)
    for op in ("MatMul", "Relu"):
        measured = found[(op, "tvm")]
        assert measured["backend"] == "tvm" and measured["status"] == "ok"
        assert measured["tvm"]["tuned_trials"] == 0 and measured["tvm"]["target"] == TARGET
        assert found[(op, "onnxruntime")]["backend"] == "onnxruntime"
    celu = found[("Celu", "tvm")]
    assert celu["backend"] == "onnxruntime" and celu["status"] == "ok"
    assert "Celu" in celu["fallback"]


def test_tuning_a_brick_rebuilds_its_kernel_and_resumes(suite: Path):
    spec = next(s for s in map(harness_spec, (suite / "bricks").glob("*.py"))
                if s["nodes"][0]["op_type"] == "MatMul")
    brick = spec["brick"]
    before = tvm_backend.sha256_file(suite / "kernels" / f"{brick}.so")
    args = ("tune", "--trials", "2", "--only", brick[:12], "--population", "16")
    tuned = run_py(suite, *args)
    assert tuned.returncode == 0, tuned.stdout + tuned.stderr
    assert "[1/1]" in tuned.stdout and "kernel rebuilt" in tuned.stdout
    tuning = suite / "results" / "tuning"
    assert (tuning / "database_tuning_record.json").stat().st_size > 0
    assert json.loads((tuning / "progress.json").read_text())[brick]["trials"] == 2
    assert tvm_backend.read_info(suite / "kernels")["kernels"][brick]["tuned_trials"] == 2
    assert tvm_backend.sha256_file(suite / "kernels" / f"{brick}.so") != before
    again = run_py(suite, *args)
    assert "done (2 trials)" in again.stdout
    measured = run_py(suite, "--quick", "--backend", "tvm")
    assert "1 measured" in measured.stdout, measured.stdout  # only the retuned brick is redone
    result = json.loads((suite / "results" / f"{brick}.tvm.json").read_text())
    assert result["status"] == "ok" and result["tvm"]["tuned_trials"] == 2


def test_e2e_and_estimate_per_backend_side_by_side(suite: Path):
    """After the suite has run (test above): e2e --backend tvm on the same model, then one
    estimate per backend and the side-by-side table."""
    from typer.testing import CliRunner

    from dlbricks_gen.cli import app

    models, root = suite.parent / "models", suite.parent
    cli = CliRunner()
    target = json.dumps(TARGET)
    done = cli.invoke(app, ["e2e", str(models), "-o", str(root / "e2e_tvm.json"), "--quick",
                            "--backend", "tvm", "--tvm-target", target])
    assert done.exit_code == 0, done.output
    tiny = json.loads((root / "e2e_tvm.json").read_text())["models"]["tiny"]
    assert tiny["backend"] == "onnxruntime" and tiny["backend_requested"] == "tvm"  # Celu
    assert "Celu" in tiny["fallback"]
    done = cli.invoke(app, ["e2e", str(models), "-o", str(root / "e2e_ort.json"), "--quick"])
    assert done.exit_code == 0, done.output
    done = cli.invoke(app, ["estimate", "--plan", str(root / "suite.plan.json"), "--results",
                            str(suite / "results"), "--e2e", str(root / "e2e_ort.json"),
                            "--e2e", str(root / "e2e_tvm.json")])
    assert done.exit_code == 0, done.output
    assert "== backend onnxruntime" in done.output and "== backend tvm" in done.output
    side = done.output.split("== side by side")[1].splitlines()
    assert "tvm est/meas" in side[1] and side[3].startswith("tiny")
    assert side[3].count("-") == 0  # both backends estimated and measured


def test_a_whole_model_uses_the_tuning_database(suite: Path):
    """e2e builds with the records of a database: a model that is the MatMul brick tuned
    above (a task of the same shapes, other names) has its 1 task tuned."""
    from dlbricks_gen.backends.tvm import measure_model

    database = suite / "results" / "tuning"
    assert (database / "database_tuning_record.json").is_file()  # from the tuning test
    x = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    model = make_model([helper.make_node("MatMul", ["input.1", "fc.weight"], ["y"])], [x], [y],
                       [weight("fc.weight", (16, 8))])
    settings = Settings(quick=True)
    result = measure_model(model, settings, kind="model", id="mm", target=TARGET,
                           database_dir=database)
    assert result["status"] == "ok" and result["backend"] == "tvm"
    assert (result["tvm"]["tasks"], result["tvm"]["tuned_tasks"]) == (1, 1)
    untuned = measure_model(model, settings, kind="model", id="mm", target=TARGET)
    assert untuned["tvm"]["tuned_tasks"] == 0


def test_compile_rejects_a_bad_backend_or_target(tmp_path: Path):
    from typer.testing import CliRunner

    from dlbricks_gen.cli import app

    onnx.save(tiny_model(), str(tmp_path / "tiny.onnx"))
    cli = CliRunner()
    base = ["compile", str(tmp_path / "tiny.onnx"), "-o", str(tmp_path / "suite")]
    done = cli.invoke(app, [*base, "--backend", "cuda"])
    assert done.exit_code == 2 and "--backend must be one of onnxruntime, tvm, all" in done.output
    done = cli.invoke(app, [*base, "--backend", "tvm", "--tvm-target", '{"mcpu": "znver4"}'])
    assert done.exit_code == 1 and 'must be a JSON object with a "kind"' in done.output
    assert not (tmp_path / "suite").exists()


def test_e2e_tunes_the_tasks_the_bricks_did_not_cover(suite: Path, tmp_path: Path):
    """MatMul -> Relu fuses into one task no brick has: --tune-trials tunes it (and only it)
    into the given database, then the whole model builds with every task tuned."""
    import shutil

    database = tmp_path / "db"
    records = suite / "results" / "tuning"  # the bricks' records, when the tuning test ran first
    shutil.copytree(records, database) if records.is_dir() else database.mkdir()
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["m"]),
                        helper.make_node("Relu", ["m"], ["y"])], [x], [y], [weight("w", (16, 8))])
    onnx.save(model, str(tmp_path / "mlp.onnx"))
    done = subprocess.run(
        [sys.executable, "-m", "dlbricks_gen.cli", "e2e", str(tmp_path / "mlp.onnx"), "-o",
         str(tmp_path / "e2e.json"), "--quick", "--backend", "tvm", "--tvm-target",
         json.dumps(TARGET), "--tuning-db", str(database), "--tune-trials", "2"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((tmp_path / "e2e.json").read_text())["models"]["mlp"]["tvm"]
    assert info["tuned_here"] == 1 and info["tasks"] == info["tuned_tasks"] == 1
