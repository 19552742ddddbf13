"""Same models and options give byte-identical suites and plans, whatever PYTHONHASHSEED is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from hostile import write_corpus

COMPILE = "import sys; from dlbricks_gen.cli import app; sys.exit(app())"


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_suites_are_byte_identical_across_runs_and_hash_seeds(tiny_zoo: Path, models_dir: Path,
                                                              tmp_path: Path):
    models = tmp_path / "models"
    shutil.copytree(tiny_zoo, models / "zoo")
    shutil.copytree(models_dir, models / "hand")
    corpus = tmp_path / "corpus"
    for name, error in write_corpus(corpus).items():
        if error is None:  # the hostile but valid models
            shutil.copy(corpus / name, models / name)
    outputs = []
    for seed in ("0", "1", "4242", "random"):
        out = tmp_path / f"suite_{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", COMPILE, "compile", str(models), "-o", str(out),
                               "-H", "2", "--batch", "1", "--decoys", "3"],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        outputs.append((tree(out), (tmp_path / f"suite_{seed}.plan.json").read_bytes()))
    first_tree, first_plan = outputs[0]
    assert len([p for p in first_tree if p.startswith("bricks/")]) > 50
    for other_tree, other_plan in outputs[1:]:
        assert other_tree == first_tree
        assert other_plan == first_plan
