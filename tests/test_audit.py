"""The audit: a suite holds its bricks' SPECs and dlbricks-gen's own files, nothing of the models."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from conftest import branchy_mlp, residual_cnn
from typer.testing import CliRunner

from dlbricks_gen.cli import app
from dlbricks_gen.codegen.audit import audit_suite, format_report
from dlbricks_gen.workflows import compile as pipeline

runner = CliRunner()


def compiled(models: Path, out: Path, *extra: str) -> Path:
    result = runner.invoke(app, ["compile", str(models), "-o", str(out), "--batch", "1", *extra])
    assert result.exit_code == 0, result.output
    return out


def test_a_compiled_suite_passes_and_the_report_lists_layer_signatures(models_dir: Path, tmp_path: Path):
    suite = compiled(models_dir, tmp_path / "suite", "-H", "2")
    result = runner.invoke(app, ["audit", str(suite), "--models", str(models_dir)])
    assert result.exit_code == 0, result.output
    assert "audit: passed" in result.stdout and "0 found" in result.stdout
    assert "x Conv(FLOAT[1,8,16,16], w:FLOAT[8,8,3,3]) -> FLOAT[1,8,16,16]" in result.stdout
    assert "x MatMul(FLOAT[1,16], w:FLOAT[16,32]) -> FLOAT[1,32]" in result.stdout
    report = audit_suite(suite, models_dir)
    assert report.ok and report.secrets > 20 and report.layers == sum(c for _, c in report.signatures)


@pytest.mark.parametrize("tamper, finding", [
    (lambda s: _append(s / "README.md", "trained by team_a on confidential_resnet"), "LEAK: README.md"),
    (lambda s: _append(_first_brick(s), "# secret-exporter"), "holds more than its SPEC"),
    (lambda s: _append(_first_brick(s), "# secret-exporter"), "a producer name of team_a/confidential_resnet.onnx"),
    (lambda s: (s / "notes.txt").write_text("SECRET DOC"), "notes.txt: unexpected file (dlbricks-gen did not write it)"),
    (lambda s: (s / "w.bin").write_bytes(_weight_bytes()), "initializer data of private_mlp.onnx"),
    (lambda s: _append(s / "dlbricks_runtime" / "core" / "results.py", "# x"),
     "dlbricks_runtime/core/results.py: differs from what dlbricks-gen writes"),
    (lambda s: _reverse_suite_json(s), "bricks are not sorted by digest"),
])
def test_tampered_suites_fail_with_the_finding(models_dir: Path, tmp_path: Path, tamper, finding: str):
    suite = compiled(models_dir, tmp_path / "suite")
    tamper(suite)
    result = runner.invoke(app, ["audit", str(suite), "--models", str(models_dir)])
    assert result.exit_code == 1 and "audit: FAILED" in result.output
    assert finding in result.output, result.output


def test_compile_fails_loudly_when_the_suite_leaks(models_dir: Path, tmp_path: Path, monkeypatch):
    render = pipeline.render_suite

    def leaky(partition, *args):
        info, files = render(partition, *args)
        return info, {**files, "README.md": files["README.md"] + "models: private_mlp\n"}

    monkeypatch.setattr(pipeline, "render_suite", leaky)
    result = runner.invoke(app, ["compile", str(models_dir), "-o", str(tmp_path / "s"), "--batch", "1"])
    assert result.exit_code == 1 and "LEAK: README.md: contains a file name of private_mlp.onnx" in result.stderr
    assert "do not ship it" in result.stderr and "(ship this)" not in result.stdout
    result = runner.invoke(app, ["compile", str(models_dir), "-o", str(tmp_path / "s"), "--batch", "1", "--no-audit"])
    assert result.exit_code == 0 and "audit" not in result.output


def test_brick_order_does_not_depend_on_model_order_or_names(tmp_path: Path):
    for folder, names in (("a", ["alpha", "beta"]), ("b", ["zulu", "yankee"])):
        (tmp_path / folder).mkdir()
        onnx.save(residual_cnn(seed=1, batch=1), str(tmp_path / folder / f"{names[0]}.onnx"))
        onnx.save(branchy_mlp(seed=2), str(tmp_path / folder / f"{names[1]}.onnx"))
        compiled(tmp_path / folder, tmp_path / f"suite_{folder}", "-H", "2")
    tree = [{p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob("*") if p.is_file()}
            for d in (tmp_path / "suite_a", tmp_path / "suite_b")]
    assert tree[0] == tree[1]


def test_the_audit_reads_nothing_it_runs(tmp_path: Path, models_dir: Path):
    """A brick whose SPEC is replaced by code is refused, and the code never runs."""
    suite = compiled(models_dir, tmp_path / "suite")
    brick = _first_brick(suite)
    brick.write_text(brick.read_text().replace("SPEC = {", "SPEC = __import__('os').system('touch pwned') or {", 1))
    report = audit_suite(suite)
    assert not report.ok and "not a brick program" in " ".join(report.problems)
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()
    assert "audit: FAILED" in format_report(report)


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text + "\n")


def _first_brick(suite: Path) -> Path:
    return sorted((suite / "bricks").glob("*.py"))[0]


def _weight_bytes() -> bytes:
    return b"padding" + branchy_mlp(seed=2).graph.initializer[0].raw_data[:200]


def _reverse_suite_json(suite: Path) -> None:
    meta = json.loads((suite / "suite.json").read_text())
    meta["bricks"].reverse()
    (suite / "suite.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def test_the_committed_example_suite_passes_the_audit():
    report = audit_suite(Path(__file__).resolve().parents[1] / "generated")
    assert report.ok, format_report(report)
    assert report.bricks == 162 and report.layers == sum(c for _, c in report.signatures)


def test_weight_bytes_in_external_data_files_are_searched_too(tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    onnx.save_model(residual_cnn(seed=1, batch=1, channels=16), str(models / "ext.onnx"),
                    save_as_external_data=True, location="ext.data")
    suite = compiled(models, tmp_path / "suite")
    data = (models / "ext.data").read_bytes()
    (suite / "bricks" / "stolen.bin").write_bytes(data[: len(data) // 3])
    report = audit_suite(suite, models)
    assert any(leak.kind == "initializer data" and leak.file == "bricks/stolen.bin" for leak in report.leaks)


def _as_tvm_suite(suite: Path) -> None:
    """The files compile --backend all adds: kernels, their info, the TVM requirements."""
    meta = json.loads((suite / "suite.json").read_text())
    meta["backends"] = ["onnxruntime", "tvm"]
    (suite / "suite.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    (suite / "kernels").mkdir()
    for digest in meta["bricks"]:
        (suite / "kernels" / f"{digest}.so").write_bytes(b"\x7fELF kernel")
    (suite / "kernels" / "tvm.json").write_text('{"version": 1}\n')
    (suite / "requirements-tvm.txt").write_text("apache-tvm==0.0\n")


def test_a_tvm_suite_passes_and_stray_files_are_unexpected_not_model_data(models_dir: Path, tmp_path: Path):
    suite = compiled(models_dir, tmp_path / "suite")
    _as_tvm_suite(suite)
    result = runner.invoke(app, ["audit", str(suite), "--models", str(models_dir)])
    assert result.exit_code == 0 and "audit: passed" in result.output, result.output
    (suite / ".venv" / "bin").mkdir(parents=True)
    (suite / ".venv" / "bin" / "python").write_text("#!/bin/sh\n")
    (suite / "kernels" / "other.so").write_bytes(b"x")
    result = runner.invoke(app, ["audit", str(suite), "--models", str(models_dir)])
    assert result.exit_code == 1, result.output
    assert ".venv/bin/python: unexpected file" in result.output and "kernels/other.so: unexpected file" in result.output
    assert "model data" not in result.output and "not as dlbricks-gen wrote it" in result.output


def test_names_match_whole_tokens_and_numbers_identify_nothing():
    from dlbricks_gen.codegen.audit import find_leaks
    from dlbricks_gen.frontend.private import Secret

    files = {"bricks/ab1001cd.py": b"SPEC = {'brick': 'ab1001cd', 'shape': [1, 1032], 'x': 'conv_1_weight'}\n"}
    secrets = [Secret("tensor name", b"1001", "m.onnx"), Secret("tensor name", b"1032", "m.onnx"),
               Secret("node name", b"conv_1", "m.onnx"), Secret("node name", b"onv_1_weigh", "m.onnx"),
               Secret("tensor name", b"conv_1_weight", "m.onnx")]
    leaks, ambiguous = find_leaks(files, secrets, set())
    assert [leak.text for leak in leaks] == ["'conv_1_weight'"]
    assert {"1001", "1032"} <= ambiguous
