"""The package's shape: stage folders whose imports point one way, and no import cycles.

The stage order and the import graph come from benchmarks/layout.py, which prints them.
"""

from __future__ import annotations

from layout import PACKAGE, STAGES, cycles, graph, stage_of, upward


def test_every_module_sits_in_a_stage_folder():
    stages = {stage_of(m) for m in graph()} - {"(package)"}
    assert stages <= set(STAGES), f"modules outside the stage folders: {sorted(stages - set(STAGES))}"


def test_no_module_imports_a_stage_above_its_own():
    assert upward(graph()) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_layering_check_can_fail(tmp_path):
    """A runtime module importing the frontend, and two modules importing each other, are found."""
    root = tmp_path / PACKAGE.name
    for rel, text in {"__init__.py": "", "runtime/__init__.py": "", "frontend/__init__.py": "",
                      "runtime/a.py": "from ..frontend import b\n", "frontend/b.py": "from ..runtime import a\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    edges = graph(root)
    assert ("dlbricks_gen.runtime.a", "dlbricks_gen.frontend.b") in upward(edges)
    assert cycles(edges) == [["dlbricks_gen.frontend.b", "dlbricks_gen.runtime.a"]]
