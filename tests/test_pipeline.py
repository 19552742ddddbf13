"""The whole path, for real: compile -> make run (in a venv with only the suite's requirements)
-> estimate, and e2e -> estimate --e2e. No mocks: real files, real ONNX Runtime sessions."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import ROOT, venv_python
from typer.testing import CliRunner

from dlbricks_gen.cli import app
from dlbricks_gen.runtime.core.results import validate_result

runner = CliRunner()


def invoke(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def suite_venv(tmp_path_factory) -> Path:
    """A virtual environment with ONLY the suite's requirements (no dlbricks-gen, no jinja2)."""
    d = tmp_path_factory.mktemp("suite_venv")
    venv.create(d, with_pip=True)
    from dlbricks_gen.codegen.render import requirements

    (d / "requirements.txt").write_text(requirements())
    subprocess.run([str(venv_python(d)), "-m", "pip", "install", "--quiet", "-r", str(d / "requirements.txt")],
                   check=True, timeout=600)
    return d


def test_compile_run_in_a_bare_venv_and_estimate(models_dir: Path, tmp_path: Path, suite_venv: Path):
    suite = tmp_path / "suite"
    invoke("compile", str(models_dir), "-o", str(suite), "-H", "2", "--batch", "1")
    python = venv_python(suite_venv)
    bare = subprocess.run([str(python), "-c", "import dlbricks_gen"], capture_output=True, cwd=tmp_path)
    assert bare.returncode != 0  # the vendor's environment does not have the tool
    run = subprocess.run(["make", "-C", str(suite), "run", "QUICK=1", f"PYTHON={python}"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    bricks = json.loads((suite / "suite.json").read_text())["bricks"]
    results = sorted(p.stem for p in (suite / "results").glob("*.json"))
    assert results == sorted(bricks)
    for brick in bricks:
        data = json.loads((suite / "results" / f"{brick}.json").read_text())
        assert data["status"] == "ok" and data["stats"]["median"] > 0
        assert data["settings"]["intra_op_threads"] == 1 and data["machine"]["onnxruntime"]
    again = subprocess.run(["make", "-C", str(suite), "run", "QUICK=1", f"PYTHON={python}"],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "skipped" in again.stdout + again.stderr

    out = invoke("estimate", "--plan", str(tmp_path / "suite.plan.json"), "--results",
                 str(suite / "results"), "--json")
    table = json.loads(out.stdout)["models"]
    assert {r["model"] for r in table} == {"team_a/confidential_resnet", "private_mlp"}
    assert all(r["status"] == "complete" and r["sequential_ms"] > 0 for r in table)


def test_e2e_and_estimate_show_ratios_and_an_html_report(tiny_zoo: Path, tmp_path: Path):
    suite = tmp_path / "suite"
    invoke("compile", str(tiny_zoo), "-o", str(suite))
    run = subprocess.run([sys.executable, "-B", "-m", "dlbricks_runtime", "--quick"], cwd=suite, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr
    measured = invoke("e2e", str(tiny_zoo), "-o", str(tmp_path / "e2e.json"), "--quick")
    e2e = json.loads((tmp_path / "e2e.json").read_text())
    assert all(r["status"] == "ok" for r in e2e["models"].values())
    about = e2e["about"]  # what it describes, in the file and the first line printed
    assert about["machine"] and "QUICK" in about["machine"] and about["statistic"] == "trimmed_mean_20"
    assert measured.stdout.splitlines()[0] == (f"# machine {about['machine']}; statistic trimmed_mean_20 (what "
                                               f"estimate compares with); dlbricks-gen {about['dlbricks_gen']}, "
                                               f"{about['date']}")
    for name, result in e2e["models"].items():  # each model at the statistic estimate reads
        assert f"{name}: {result['stats']['trimmed_mean_20'] * 1e3:.3f} ms" in measured.stdout
    html = tmp_path / "report.html"
    out = invoke("estimate", "--plan", str(tmp_path / "suite.plan.json"), "--results", str(suite / "results"),
                 "--e2e", str(tmp_path / "e2e.json"), "--html", str(html))
    assert "geometric mean" in out.stdout
    for name in ("resnet18", "bert_base", "vgg11"):
        assert name in out.stdout
    text = html.read_text()
    assert text.count("data:image/png;base64,") >= 3 and "http" not in text.replace("http-equiv", "")


def test_missing_results_are_reported_as_incomplete(models_dir: Path, tmp_path: Path):
    suite = tmp_path / "suite"
    invoke("compile", str(models_dir), "-o", str(suite), "--batch", "1")
    (suite / "results").mkdir()
    out = runner.invoke(app, ["estimate", "--plan", str(tmp_path / "suite.plan.json"), "--results", str(suite / "results")])
    assert "incomplete" not in out.stdout  # the table says it with >= and a note
    assert ">=0.000" in out.stdout and "without results" in out.stdout
    assert out.exit_code == 1 and "nothing could be estimated" in out.stderr  # no result at all


def test_the_committed_example_suite_is_fresh():
    """generated/ must equal what `make generate` writes today (refresh: make generate)."""
    from dlbricks_gen.workflows.examples import render_example

    files, plan = render_example()
    committed = ROOT / "generated"
    stale = [rel for rel, text in files.items()
             if not (committed / rel).is_file() or (committed / rel).read_text() != text]
    extra = [p.relative_to(committed).as_posix() for p in committed.rglob("*")
             if p.is_file() and "results" not in p.parts
             and p.relative_to(committed).as_posix() not in files]
    assert not stale and not extra, f"generated/ is stale ({stale[:3]}, {extra[:3]}): run make generate"
    assert (ROOT / "examples" / "generated.plan.json").read_text() == plan


def test_estimates_per_batch_size_from_two_plans(models_dir: Path, tmp_path: Path):
    for batch in ("1", "2"):
        invoke("compile", str(models_dir / "team_a"), "-o", str(tmp_path / f"b{batch}"), "--batch", batch)
        run = subprocess.run([sys.executable, "-B", "-m", "dlbricks_runtime", "--quick"], cwd=tmp_path / f"b{batch}",
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
    merged = tmp_path / "all_results"
    merged.mkdir()
    for batch in ("1", "2"):
        for f in (tmp_path / f"b{batch}" / "results").glob("*.json"):
            (merged / f"{batch}-{f.name}").write_bytes(f.read_bytes())
    out = invoke("estimate", "--plan", str(tmp_path / "b1.plan.json"), "--plan", str(tmp_path / "b2.plan.json"),
                 "--results", str(merged), "--json")
    tables = [json.loads(part) for part in out.stdout.split("== ")[1:] for part in [part.split("\n", 1)[1]]]
    one, two = (t["models"][0] for t in tables)
    assert (one["batch"], two["batch"]) == (1, 2)
    assert one["status"] == two["status"] == "complete"
    # Each plan is estimated from its own suite's results only (timing order is not asserted:
    # quick measurements of tiny models may put batch 2 below batch 1).
    for batch, table in (("1", one), ("2", two)):
        alone = invoke("estimate", "--plan", str(tmp_path / f"b{batch}.plan.json"),
                       "--results", str(tmp_path / f"b{batch}" / "results"), "--json")
        assert json.loads(alone.stdout)["models"][0]["sequential_ms"] == table["sequential_ms"]


def test_study_reports_per_h_and_resumes(models_dir: Path, tmp_path: Path):
    out = tmp_path / "study"
    first = invoke("study", str(models_dir), "-o", str(out), "-H", "1..2", "--batch", "1", "--quick")
    data = json.loads((out / "study.json").read_text())
    assert [r["h"] for r in data["by_h"]] == [1, 2]
    for row in data["by_h"]:
        assert row["compared"] == 2 and row["speedup_latency"] > 0 and row["speedup_wall"] > 0
        assert set(row["models"]) == {"team_a/confidential_resnet", "private_mlp"}
    assert "| H | unique bricks" in first.stdout
    assert (out / "study.html").read_text().count("data:image/png;base64,") == 2
    # progress: one step per model lowered, per whole model measured and per brick run
    steps = first.stderr.splitlines()
    assert sum(line.startswith("lowering ") for line in steps) == 2, first.stderr
    assert sum(line.startswith("e2e ") for line in steps) == 2, first.stderr
    for h in (1, 2):
        bricks = len(json.loads((out / f"H{h}" / "suite" / "suite.json").read_text())["bricks"])
        assert sum(line.startswith(f"H{h} ") for line in steps) == bricks, first.stderr
    # what it describes: machine, the suite of each H, statistic, version, date
    about = data["about"]
    assert about["suites"] == {str(r["h"]): r["suite"] for r in data["by_h"]} and about["H"] == [1, 2]
    assert about["machine"] and about["statistic"] == "trimmed_mean_20" and about["date"]
    for text in (first.stdout.splitlines()[0], (out / "study.html").read_text(), (out / "study.md").read_text()):
        for part in (about["machine"], data["by_h"][0]["suite"], data["by_h"][1]["suite"], "trimmed_mean_20",
                     about["dlbricks_gen"], about["date"]):
            assert part in text, (part, text[:300])
    runs = {h: (out / f"H{h}" / "run.json").read_text() for h in (1, 2)}
    e2e = (out / "e2e.json").read_text()
    invoke("study", str(models_dir), "-o", str(out), "-H", "1..2", "--batch", "1", "--quick")
    assert {h: (out / f"H{h}" / "run.json").read_text() for h in (1, 2)} == runs  # not re-run
    assert (out / "e2e.json").read_text() == e2e  # measured models kept


def test_study_rounds_alternate_models_and_suites(models_dir: Path, tmp_path: Path):
    """ABBA order: round 1 measures models then bricks, round 2 bricks then models."""
    result = invoke("study", str(models_dir), "-o", str(tmp_path / "s"), "-H", "1", "--batch", "1",
                    "--quick", "--processes", "2")
    steps = [("suite" if line.startswith("running ") else "models")
             for line in result.output.splitlines() if line.startswith(("running ", "e2e "))]
    collapsed = [s for i, s in enumerate(steps) if i == 0 or steps[i - 1] != s]
    assert collapsed == ["models", "suite", "models"]  # models, suite, suite, models


def test_study_slices_rounds_between_suite_shards(models_dir: Path, tmp_path: Path):
    """--slices 2: each round's whole models in 2 slices, each beside a shard of the suite's
    pass (ABBA over slices); a model's round is one run entry of 2 slices, and each brick is
    measured once per pass, in the shard that holds it."""
    out = tmp_path / "s"
    result = invoke("study", str(models_dir), "-o", str(out), "-H", "1", "--batch", "1",
                    "--quick", "--processes", "2", "--slices", "2")
    steps = [("suite" if line.startswith("running ") else "models")
             for line in result.output.splitlines() if line.startswith(("running ", "e2e "))]
    collapsed = [s for i, s in enumerate(steps) if i == 0 or steps[i - 1] != s]
    assert collapsed == ["models", "suite", "models", "suite", "models"]  # M S S M M S S M
    assert sum(line.startswith("e2e ") for line in result.stderr.splitlines()) == 2 * 2 * 2
    e2e = json.loads((out / "e2e.json").read_text())["models"]
    for model in e2e.values():
        assert validate_result(model) == [] and model["status"] == "ok"
        runs = model["stats"]["runs"]
        assert [r["slices"] for r in runs] == [2, 2] and sum(r["n"] for r in runs) == len(model["values"])
        assert model["timing"]["slices_s"] > 0 and model["reference_s"] and len(model["reference_s"]) == 4
    passes = json.loads((out / "H1" / "run.json").read_text())["passes"]
    assert sorted(passes) == ["0:1/2", "0:2/2", "1:1/2", "1:2/2"]
    results = sorted((out / "H1" / "suite" / "results").glob("*.json"))
    bricks = json.loads((out / "H1" / "suite" / "suite.json").read_text())["bricks"]
    assert len(results) == len(bricks)
    for path in results:
        assert len(json.loads(path.read_text())["stats"]["runs"]) == 2, path
    assert not (out / "H1" / "suite" / "results" / ".build-cache").exists()  # the run's own, removed
    data = json.loads((out / "study.json").read_text())
    assert data["by_h"][0]["compared"] == 2 and data["by_h"][0]["speedup_wall"] > 0
    # benchmarks/accuracy.py --repeat: a run against itself differs by nothing, intervals cover it
    repeat = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), str(out), str(out),
                             "--repeat"], capture_output=True, text=True, check=True).stdout
    assert "default estimate   median difference 0.0%, within 2%: 2/2" in repeat
    assert repeat.count("intervals cover the difference: 2/2") == 2
    effort = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "study_effort.py"), str(out)],
                            capture_output=True, text=True, check=True).stdout
    assert f"{len(bricks)} bricks: wall " in effort and "cold copies" in effort and "whole models: wall" in effort
    # resumed with other slices, it would pool slices of other sizes: refused before any work
    before = (out / "e2e.json").read_bytes()
    refused = invoke("study", str(models_dir), "-o", str(out), "-H", "1", "--batch", "1",
                     "--quick", "--processes", "2", "--slices", "3", code=2)
    assert "started with --slices 2" in refused.stderr and (out / "e2e.json").read_bytes() == before
    (out / "e2e.json").unlink()  # an older study, without `slices`: its run.json says 2
    assert "started with --slices 2" in invoke("study", str(models_dir), "-o", str(out), "-H", "1",
                                               "--quick", "--slices", "1", code=2).stderr
