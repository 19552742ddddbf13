"""Benchmark once, reuse forever, for real: a measured set of tiny zoo models, one more model
added at the cost of its unseen bricks only, and a model estimated straight from its ONNX file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlbricks_gen.cli import app
from dlbricks_gen.workflows.zoo_files import write_models
from dlbricks_gen.zoo import ZooOptions

runner = CliRunner()


def invoke(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


def run_suite(suite: Path, *args: str) -> None:
    run = subprocess.run([sys.executable, "-B", "-m", "dlbricks_runtime", "--quick", *args], cwd=suite, capture_output=True,
                         text=True, check=False, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr


def bricks_of(plan: Path, model: str | None = None) -> set[str]:
    data = json.loads(plan.read_text())
    return {i["brick"] for m in data["models"] if model in (None, m["name"]) for i in m["instances"]}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("inc_zoo")
    write_models(d, ["resnet18", "vgg11", "resnet34", "vgg13"], ZooOptions(tiny=True), echo=lambda _: None)
    return d


def test_adding_a_model_costs_only_its_unseen_bricks(zoo: Path, tmp_path: Path):
    old, new, store = tmp_path / "old", tmp_path / "new", tmp_path / "store.db"
    old.mkdir()
    for name in ("resnet18", "vgg11"):
        shutil.copy(zoo / f"{name}.onnx", old / f"{name}.onnx")
    # Counts here are of real bricks: no decoys (test_decoys.py covers them with --have). Ids are
    # keyed with the test's own secret (conftest's config home), so reuse goes through keyed ids.
    # H counts layers here (--no-fusion): at H=2 every fused kernel pair of resnet34 is resnet18's.
    invoke("compile", str(old), "-o", str(tmp_path / "s1"), "-H", "2", "--decoys", "0", "--no-fusion")
    shutil.copytree(tmp_path / "s1", tmp_path / "s1b")  # as if shipped to a second, identical machine
    run_suite(tmp_path / "s1", "--shard", "1/2")
    run_suite(tmp_path / "s1b", "--shard", "2/2")
    out = invoke("store", "import", str(store), str(tmp_path / "s1" / "results"), str(tmp_path / "s1b" / "results"))
    assert out.stdout.count("machine ") == 1  # the shards merge into one machine
    assert f"{len(bricks_of(tmp_path / 's1.plan.json'))} bricks with a valid result" in out.stdout

    shutil.copytree(old, new)
    shutil.copy(zoo / "resnet34.onnx", new / "resnet34.onnx")
    out = invoke("compile", str(new), "-o", str(tmp_path / "s2"), "--have", str(store), "-H", "2", "--decoys", "0",
                 "--no-fusion")
    unseen = bricks_of(tmp_path / "s2.plan.json", "resnet34") - bricks_of(tmp_path / "s1.plan.json")
    emitted = set(json.loads((tmp_path / "s2" / "suite.json").read_text())["bricks"])
    assert emitted == unseen and 0 < len(unseen) < len(bricks_of(tmp_path / "s2.plan.json", "resnet34"))
    known = len(bricks_of(tmp_path / "s2.plan.json")) - len(unseen)
    assert f"skipped {known} of {known + len(unseen)} bricks already measured there" in out.stdout
    assert bricks_of(tmp_path / "s2.plan.json") >= bricks_of(tmp_path / "s1.plan.json")  # the plan covers all

    run_suite(tmp_path / "s2")
    invoke("store", "import", str(store), str(tmp_path / "s2"))
    table = json.loads(invoke("estimate", "--store", str(store), "--plan", str(tmp_path / "s2.plan.json"),
                              "--json").stdout)["models"]
    assert {r["model"]: r["status"] for r in table} == dict.fromkeys(("resnet18", "vgg11", "resnet34"),
                                                                     "complete")

    # A model never compiled: estimated straight from its file, the same as through a plan.
    direct = json.loads(invoke("estimate", "--store", str(store), "--model", str(zoo / "resnet34.onnx"),
                               "-H", "2", "--no-fusion", "--json").stdout)["models"]
    assert direct[0]["estimate_ms"] == pytest.approx(next(r for r in table if r["model"] == "resnet34")["estimate_ms"])

    # One with unseen bricks: listed, then emitted as a small suite of exactly those.
    vgg13 = str(zoo / "vgg13.onnx")
    missing = invoke("estimate", "--store", str(store), "--model", vgg13, "-H", "2", "--no-fusion", code=1)
    assert "bricks have no valid result on this machine" in missing.stderr and "(used by vgg13)" in missing.stderr
    invoke("estimate", "--store", str(store), "--model", vgg13, "-H", "2", "--no-fusion", "--emit-missing", str(tmp_path / "s3"))
    vgg = bricks_of(tmp_path / "s3.plan.json", "vgg13")
    emitted = set(json.loads((tmp_path / "s3" / "suite.json").read_text())["bricks"])
    assert emitted == vgg - bricks_of(tmp_path / "s2.plan.json") and 0 < len(emitted) < len(vgg)
