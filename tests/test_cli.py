"""The command line: help texts, one-line errors, exit codes, and the installed entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlbricks_gen.cli import app

runner = CliRunner()
COMMANDS = ["compile", "estimate", "e2e", "zoo", "study", "inspect", "audit"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str):
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Example: dlbricks-gen " + command in " ".join(result.output.split())


def test_compile_reports_broken_models_and_goes_on(models_dir: Path, tmp_path: Path):
    (models_dir / "broken.onnx").write_bytes(b"not a model")
    result = runner.invoke(app, ["compile", str(models_dir), "-o", str(tmp_path / "suite"), "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "broken.onnx: not a valid ONNX file" in result.stderr
    assert "2 models (1 failed)" in result.stdout
    assert (tmp_path / "suite.plan.json").is_file()


def test_compile_fails_when_no_model_compiles(tmp_path: Path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.onnx").write_bytes(b"")
    result = runner.invoke(app, ["compile", str(tmp_path / "m"), "-o", str(tmp_path / "s")])
    assert result.exit_code == 1 and "empty file" in result.stderr
    assert not (tmp_path / "s").exists()


def test_bad_option_values_are_one_line_errors(models_dir: Path, tmp_path: Path):
    result = runner.invoke(app, ["compile", str(models_dir), "-o", str(tmp_path / "s"), "--dim", "oops"])
    assert result.exit_code == 2 and "--dim expects NAME=VALUE" in result.stderr
    result = runner.invoke(app, ["inspect", str(models_dir), "-H", "0..2"])
    assert result.exit_code == 2


def test_shape_options_no_model_uses_or_that_contradict_a_model_are_usage_errors(models_dir: Path, tmp_path: Path):
    out = str(tmp_path / "s")
    for command in (["compile", str(models_dir), "-o", out], ["inspect", str(models_dir)],
                    ["e2e", str(models_dir), "-o", str(tmp_path / "e.json"), "--quick"]):
        dim = runner.invoke(app, [*command, "--dim", "seq=8"])
        assert dim.exit_code == 2 and "--dim seq=8" in dim.stderr and "'seq'" in dim.stderr, dim.output
        assert "named dimensions: N" in dim.stderr and "reading" not in dim.stderr, dim.output
    name = runner.invoke(app, ["compile", str(models_dir), "-o", out, "--input-shape", "y=1x8x16x16"])
    assert name.exit_code == 2 and "no model has an input named 'y' (inputs: x)" in name.stderr, name.output
    rank = runner.invoke(app, ["compile", str(models_dir), "-o", out, "--input-shape", "x=1x8x16"])
    assert rank.exit_code == 2 and "input 'x' has rank 2, not 3" in rank.stderr, rank.output
    fixed = runner.invoke(app, ["inspect", str(models_dir), "--input-shape", "x=2x9x16x16"])
    assert fixed.exit_code == 2 and "dimension 1 of input 'x' is fixed at 8" in fixed.stderr, fixed.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "e.json").exists()
    # a name one model of the folder has applies to that model; the others compile as they are
    used = runner.invoke(app, ["compile", str(models_dir), "-o", out, "--dim", "N=2"])
    assert used.exit_code == 0 and "2 models (0 failed)" in used.stdout, used.output


def test_unresolved_dimensions_name_the_input(models_dir: Path, tmp_path: Path):
    result = runner.invoke(app, ["compile", str(models_dir), "-o", str(tmp_path / "s")])
    assert "confidential_resnet.onnx: unresolved input dimensions: x (N)" in result.stderr


def test_inspect_prints_repetition_per_h_and_json(tiny_zoo: Path):
    result = runner.invoke(app, ["inspect", str(tiny_zoo), "-H", "1..3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["h"] for r in data["by_h"]] == [1, 2, 3]
    assert data["total"]["unique_layers"] < data["total"]["layers"]
    uniques = [r["unique"] for r in data["by_h"]]
    assert all(r["sequences"] >= r["unique"] for r in data["by_h"])
    assert data["by_h"][0]["sequences"] == data["total"]["layers"] and uniques[0] == data["total"]["unique_layers"]


def test_zoo_list_names_the_demo_models():
    result = runner.invoke(app, ["zoo", "--list"])
    assert result.exit_code == 0
    for name in ("resnet18", "resnet50", "mobilenet_v2", "squeezenet1_1", "vgg11", "bert_base"):
        assert name in result.stdout


def test_installed_entry_point_runs(models_dir: Path, tmp_path: Path):
    exe = shutil.which("dlbricks-gen") or str(Path(__file__).parents[1] / ".venv/bin/dlbricks-gen")
    done = subprocess.run([exe, "compile", str(models_dir), "-o", str(tmp_path / "s"), "--batch", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "unique bricks" in done.stdout


def test_a_normal_install_carries_the_templates_and_runtime(tmp_path: Path):
    """The wheel (not only the editable install) must contain templates/ and runtime files."""
    import sys
    import zipfile

    root = Path(__file__).parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(root)],
                   check=True, timeout=300, capture_output=True)
    wheel = next(tmp_path.glob("dlbricks_gen-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (root / "dlbricks_gen" / "codegen" / "templates").glob("*.j2"):
        assert f"dlbricks_gen/codegen/templates/{template.name}" in names
    for runtime in ("__main__.py", "runner.py", "brick.py", "core/results.py", "core/result.schema.json",
                    "backends/__init__.py", "backends/onnxruntime.py", "backends/tvm.py"):
        assert f"dlbricks_gen/runtime/{runtime}" in names


def test_zoo_writes_selected_models_and_dry_run_writes_nothing(tmp_path: Path):
    result = runner.invoke(app, ["zoo", str(tmp_path / "dry"), "--models", "resnet18", "--tiny", "--dry-run"])
    assert result.exit_code == 0 and "would be written" in result.stdout
    assert not (tmp_path / "dry").exists()
    result = runner.invoke(app, ["zoo", str(tmp_path / "m"), "--models", "resnet18,bert_base", "--tiny"])
    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["bert_base.onnx", "resnet18.onnx"]
    result = runner.invoke(app, ["zoo", str(tmp_path / "m"), "--models", "nope"])
    assert result.exit_code == 2 and "unknown zoo model" in result.stderr


def test_output_paths_are_checked_before_any_measurement(models_dir: Path, tmp_path: Path):
    run = runner.invoke(app, ["e2e", str(models_dir), "-o", str(tmp_path / "missing" / "e.json"), "--quick"])
    assert run.exit_code == 2 and "missing" in run.stderr and "measuring" not in run.stderr, run.output
    (tmp_path / "p.json").write_text("{}")
    run = runner.invoke(app, ["estimate", "--plan", str(tmp_path / "p.json"), "--results", str(tmp_path),
                              "--html", str(tmp_path / "missing" / "r.html")])
    assert run.exit_code == 2 and "--html" in run.stderr, run.output


def test_usage_errors_exit_2_and_raw_errors_are_named(models_dir: Path, tmp_path: Path):
    (tmp_path / "p.json").write_text("not json")
    both = runner.invoke(app, ["estimate", "--plan", str(tmp_path / "p.json"), "--results", str(tmp_path), "--json", "--csv"])
    assert both.exit_code == 2 and "--json" in both.stderr and "--csv" in both.stderr, both.output
    plan = runner.invoke(app, ["estimate", "--plan", str(tmp_path / "p.json"), "--results", str(tmp_path)])
    assert plan.exit_code == 1 and "p.json" in plan.stderr and "Traceback" not in plan.output, plan.output
    h = runner.invoke(app, ["inspect", str(models_dir), "-H", "abc"])
    assert h.exit_code == 2 and "-H" in h.stderr and "abc" in h.stderr, h.output


def test_backend_choices_are_usage_errors_in_every_command(models_dir: Path, tmp_path: Path):
    from dlbricks_gen.results.store import Store

    Store.open(tmp_path / "s.db", create=True).close()
    (tmp_path / "p.json").write_text("{}")
    for command in (["compile", str(models_dir), "-o", str(tmp_path / "s")],
                    ["e2e", str(models_dir), "-o", str(tmp_path / "e.json")],
                    ["estimate", "--plan", str(tmp_path / "p.json"), "--results", str(tmp_path)],
                    ["estimate", "--plan", str(tmp_path / "p.json"), "--store", str(tmp_path / "s.db")],
                    ["store", "list", str(tmp_path / "s.db")]):
        run = runner.invoke(app, [*command, "--backend", "cuda"])
        assert run.exit_code == 2 and "--backend must be one of onnxruntime, tvm, all, not 'cuda'" in run.stderr, \
            (command, run.output)
    assert not (tmp_path / "s").exists() and not (tmp_path / "e.json").exists()
    stat = runner.invoke(app, ["estimate", "--plan", str(tmp_path / "p.json"), "--results", str(tmp_path),
                               "--stat", "p99"])
    assert stat.exit_code == 2 and "--stat must be one of best_run, trimmed_mean_20, median, mean, min" in stat.stderr
    import typer

    from dlbricks_gen.results.load import STATISTICS
    options = {p.name: p for p in typer.main.get_command(app).commands["estimate"].params}  # type: ignore[attr-defined]
    assert ", ".join(STATISTICS) in options["statistic"].help and "tvm" in options["backend"].help
    # one vocabulary: the suite's Makefile and runner name the backends as the CLI and the store do
    from dlbricks_gen import backends
    makefile = (Path(__file__).resolve().parents[1] / "generated" / "Makefile").read_text()
    assert f"BACKEND={'|'.join(backends.NAMES)}" in makefile


def test_make_demo_installs_only_the_plain_package_and_has_a_quick_switch(tmp_path: Path):
    root = Path(__file__).resolve().parent.parent
    dry = subprocess.run(["make", "-n", "-B", "-C", str(root), "demo", f"VENV={tmp_path}/venv",
                          f"DEMO={tmp_path}/demo", "QUICK=1", "MAKE=true"], capture_output=True, text=True, check=False)
    assert dry.returncode == 0, dry.stderr
    installs = [line for line in dry.stdout.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all(line.rstrip().endswith("-e .") for line in installs), installs
    assert "QUICK=1" in dry.stdout and "--quick" in dry.stdout


def test_long_work_shows_a_bar_with_counts_and_eta_on_a_terminal_and_lines_elsewhere():
    import io

    from rich.console import Console

    from dlbricks_gen.cli import progress_bar

    screen = io.StringIO()
    lines: list[str] = []
    with progress_bar("compile", 3, lines.append, Console(file=screen, force_terminal=True, width=120)) as step:
        for name in ("a.onnx", "b.onnx", "c.onnx"):
            step(name)
    assert "3/3" in screen.getvalue() and "ETA" in screen.getvalue() and not lines
    with progress_bar("compile", 2, lines.append, Console(file=io.StringIO(), force_terminal=False)) as step:
        step("a.onnx")
    assert lines == ["a.onnx"]
    screen = io.StringIO()  # work whose size is learnt on the way (study): positions and totals
    with progress_bar("study", 2, lines.append, Console(file=screen, force_terminal=True, width=120)) as step:
        step("lowering a.onnx", 0, 2)
        step("H1 brick", 2, 7)
    assert "7/7" in screen.getvalue() and "ETA" in screen.getvalue()


def test_the_suite_description_given_as_the_plan_is_named_as_such(tmp_path: Path):
    suite = Path(__file__).resolve().parent.parent / "generated" / "suite.json"
    result = runner.invoke(app, ["estimate", "--plan", str(suite), "--results", str(tmp_path)])
    assert result.exit_code != 0 and "suite's description (suite.json), not the plan" in result.stderr, result.output
    assert "unknown plan version" not in result.stderr
