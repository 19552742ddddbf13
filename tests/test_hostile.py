"""Bad and hostile models: one-line errors per model, the rest compiles, and nothing from a
model ever becomes code in the suite."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import HOSTILE, MARKERS, SENTINEL, write_corpus
from typer.testing import CliRunner

from dlbricks_gen.cli import app
from dlbricks_gen.codegen.audit import audit_suite, format_report

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str | None]]:
    d = tmp_path_factory.mktemp("hostile")
    return d, write_corpus(d)


def compile_cli(models: Path, out: Path, *extra: str):
    return runner.invoke(app, ["compile", str(models), "-o", str(out), "--batch", "1", *extra])


def test_each_bad_model_gets_its_one_line_error_and_the_rest_compile(corpus, models_dir: Path,
                                                                    tmp_path: Path):
    folder, expected = corpus
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    shutil.copytree(models_dir, mixed / "good")
    result = compile_cli(mixed, tmp_path / "suite")
    assert result.exit_code == 0, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    plan = json.loads((tmp_path / "suite.plan.json").read_text())
    compiled = {m["file"] for m in plan["models"]}
    assert {"good/private_mlp.onnx", "good/team_a/confidential_resnet.onnx"} <= compiled
    failed = {f["file"]: f["error"] for f in plan["failed"]}
    for name, error in expected.items():
        if error is None:
            assert name in compiled, (name, failed.get(name))
            continue
        if error == "?" and name in compiled:
            continue
        [message] = [e for f, e in failed.items() if f == str(mixed / name)]
        assert message.startswith(str(mixed / name)), message
        assert "\n" not in message and "internal error" not in message, message
        if error != "?":
            assert error in message, (name, message)
        assert any(message in line for line in errors)


def test_nothing_is_allocated_for_absurd_shapes(corpus, tmp_path: Path):
    """The 4 TiB weight and fill are refused by size, within a normal process (no MemoryError)."""
    folder, _ = corpus
    for name in ("huge_weight.onnx", "huge_constant_of_shape.onnx"):
        result = compile_cli(folder / name, tmp_path / name)
        assert result.exit_code == 1 and "needs 4.0 TiB" in result.stderr
    result = compile_cli(folder / "huge_weight.onnx", tmp_path / "s", "--max-bytes", "10")
    assert result.exit_code == 1 and "limit of 10 B" in result.stderr


def _hostile_suite(corpus, tmp_path: Path, names: list[str]) -> Path:
    folder, _ = corpus
    only = tmp_path / "models"
    only.mkdir()
    for name in names:
        shutil.copy(folder / name, only / name)
    result = compile_cli(only, tmp_path / "suite")
    assert result.exit_code == 0 and "(0 failed)" in result.stdout, result.output
    return tmp_path / "suite"


def _run_every_program(suite: Path, cwd: Path) -> None:
    """Execute every brick file (data: nothing may happen), then run the brick command on each
    and the runner with --help (from the suite folder, as a vendor does)."""
    programs = sorted((suite / "bricks").glob("*.py"))
    importer = ("import runpy, sys\nfor path in sys.argv[1:]:\n"
                "    runpy.run_path(path, run_name='imported')\n")
    done = subprocess.run([sys.executable, "-c", importer, *map(str, programs)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    commands = [["dlbricks_runtime.brick", str(p), "--help"] for p in programs]
    for command in [*commands, ["dlbricks_runtime", "--help"]]:
        done = subprocess.run([sys.executable, "-B", "-m", *command], cwd=suite,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (command, done.stderr)
    assert not list(cwd.rglob(SENTINEL)) and not list(suite.rglob(SENTINEL))


def test_hostile_strings_never_reach_the_suite_and_nothing_runs(corpus, tmp_path: Path):
    names = ["hostile_valid.onnx", "external_missing.onnx",
             next(n for n in corpus[1] if n.startswith("evil"))]
    suite = _hostile_suite(corpus, tmp_path, names)
    texts = {p: p.read_bytes() for p in suite.rglob("*") if p.is_file()}
    assert any(p.parent.name == "bricks" for p in texts)
    for path, data in texts.items():
        for marker in MARKERS + HOSTILE:
            for form in {marker, ascii(marker)[1:-1], json.dumps(marker)[1:-1]}:
                assert form.encode("utf-8", "surrogatepass") not in data, (path, marker)
    _run_every_program(suite, tmp_path)
    report = audit_suite(suite, tmp_path / "models")
    assert report.ok and not report.ambiguous and report.secrets > 50, format_report(report)


def test_strings_that_are_kernel_data_stay_data(corpus, tmp_path: Path):
    """StringNormalizer stopwords decide the kernel's work: they reach the brick as escaped
    literals, read back exactly, and the brick runs without executing any of them."""
    suite = _hostile_suite(corpus, tmp_path, ["hostile_semantic_strings.onnx"])
    [brick] = sorted((suite / "bricks").glob("*.py"))
    tree = ast.parse(brick.read_text(encoding="utf-8"))
    spec = ast.literal_eval([n for n in tree.body if isinstance(n, ast.Assign)][-1].value)
    assert spec["nodes"][0]["attributes"][-1]["value"] == HOSTILE
    _run_every_program(suite, tmp_path)
    done = subprocess.run([sys.executable, "-B", "-m", "dlbricks_runtime.brick", str(brick), "--quick",
                           "-o", str(tmp_path / "r.json")], cwd=suite, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "ok"
    assert not list(tmp_path.rglob(SENTINEL))
