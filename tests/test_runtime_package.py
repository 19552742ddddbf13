"""The runtime package (dlbricks_gen/runtime, dlbricks_runtime/ in a suite): one copy loaded,
imports that never leave the package, layers that import one way, no import cycle."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from dlbricks_gen.codegen.render import RUNTIME_DIR, RUNTIME_PACKAGE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from suite_overhead import relu_spec, write_suite

THIRD_PARTY = {"numpy", "onnx", "onnxruntime", "jsonschema"}
LAZY_ONLY = {"tvm", "tvm_ffi", "cloudpickle"}  # the TVM backend's, inside its functions only

# Run in a fresh interpreter: which runtime modules are loaded, from where, and do the runner's
# and the backends' Settings agree (one copy of the package, not two)?
PROBE = """
import json, sys
pkg = sys.argv[1]
import importlib
runner = importlib.import_module(pkg + ".runner")
runloop = importlib.import_module(pkg + ".runloop")
worker = importlib.import_module(pkg + ".worker")
ort = importlib.import_module(pkg + ".backends.onnxruntime")
tvm = importlib.import_module(pkg + ".backends.tvm")
settings = importlib.import_module(pkg + ".core.settings")
results = importlib.import_module(pkg + ".core.results")
same = (runloop.Settings is worker.Settings is settings.Settings
        and tvm.error_result is ort.error_result is results.error_result)
mods = {n: getattr(m, "__file__", None) for n, m in sys.modules.items()
        if n.split(".")[0] in ("dlbricks_runtime", "dlbricks_gen", "harness", "run", "runner",
                               "tvm_backend", "suite", "worker", "brick", "core", "backends")}
print(json.dumps({"same": same, "modules": mods, "tvm": "tvm" in sys.modules}))
"""


def probe(cwd: Path, package: str) -> dict:
    done = subprocess.run([sys.executable, "-B", "-c", PROBE, package], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_a_suite_loads_exactly_one_copy_of_its_own_runtime(tmp_path: Path):
    suite = write_suite(tmp_path / "suite", [relu_spec([1, 3])])
    found = probe(suite, RUNTIME_PACKAGE)
    assert found["same"] and not found["tvm"]  # tvm is imported only when a kernel is used
    assert found["modules"] and all(n.startswith(RUNTIME_PACKAGE) for n in found["modules"])
    for name, file in found["modules"].items():
        assert Path(file).resolve().is_relative_to(suite.resolve()), (name, file)


def test_home_imports_the_runtime_as_part_of_dlbricks_gen_only(tmp_path: Path):
    found = probe(tmp_path, "dlbricks_gen.runtime")
    assert found["same"] and not found["tvm"]
    assert all(n.split(".")[0] == "dlbricks_gen" for n in found["modules"]), found["modules"]
    for name, file in found["modules"].items():
        assert Path(file).resolve().is_relative_to(RUNTIME_DIR.parent), (name, file)


# --- the import graph, from the source ------------------------------------------------------

def modules() -> dict[str, Path]:
    """{dotted name inside the package ("" is the package itself): file}."""
    found = {}
    for path in sorted(RUNTIME_DIR.rglob("*.py")):
        parts = list(path.relative_to(RUNTIME_DIR).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _package_of(name: str, path: Path) -> list[str]:
    parts = name.split(".") if name else []
    return parts if path.name == "__init__.py" else parts[:-1]


def imports(name: str, path: Path) -> list[tuple[str | None, str, bool]]:
    """(target module inside the package or None, absolute top-level name, inside a function)
    for every import statement of one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
    known = modules()
    out = []
    for node in ast.walk(tree):
        lazy = id(node) in in_function
        if isinstance(node, ast.Import):
            out += [(None, alias.name.split(".")[0], lazy) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out.append((None, (node.module or "").split(".")[0], lazy))
        elif isinstance(node, ast.ImportFrom):
            base = _package_of(name, path)
            assert node.level - 1 <= len(base), f"{path}: import leaves the package"
            base = base[:len(base) - (node.level - 1)]
            target = ".".join(base + (node.module.split(".") if node.module else []))
            assert target in known, f"{path}: imports {target!r}, not a module of the package"
            out.append((target, "", lazy))
            for alias in node.names:  # `from . import tvm`: the submodule itself
                sub = f"{target}.{alias.name}" if target else alias.name
                if sub in known:
                    out.append((sub, "", lazy))
    return out


def test_the_runtime_imports_nothing_outside_the_package_but_its_libraries():
    for name, path in modules().items():
        for target, top, lazy in imports(name, path):
            if target is not None:
                continue
            if top in LAZY_ONLY:
                assert lazy and name == "backends.tvm", f"{path}: imports {top} at module level"
            else:
                assert top in sys.stdlib_module_names or top in THIRD_PARTY, f"{path}: imports {top}"


def test_layers_import_one_way_and_the_graph_has_no_cycle():
    graph = {name: {t for t, _, _ in imports(name, path) if t is not None and t != name}
             for name, path in modules().items()}
    for name, targets in graph.items():
        if name.startswith("core"):
            assert all(t.startswith("core") for t in targets), (name, targets)
        if name.startswith("backends"):
            assert all(t.startswith(("core", "backends")) for t in targets), (name, targets)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            assert state.get(target) != 1, f"import cycle: {' -> '.join([*path, node, target])}"
            if target not in state:
                visit(target, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_suite_holds_the_package_verbatim(tmp_path: Path):
    suite = write_suite(tmp_path / "suite", [relu_spec([1, 3])])
    copied = sorted(p.relative_to(suite / RUNTIME_PACKAGE).as_posix()
                    for p in (suite / RUNTIME_PACKAGE).rglob("*") if p.is_file())
    home = sorted(p.relative_to(RUNTIME_DIR).as_posix() for p in RUNTIME_DIR.rglob("*")
                  if p.is_file() and p.suffix in (".py", ".json") and "__pycache__" not in p.parts)
    assert copied == home and "core/result.schema.json" in copied
    for rel in home:
        assert (suite / RUNTIME_PACKAGE / rel).read_bytes() == (RUNTIME_DIR / rel).read_bytes()
    assert json.loads((suite / "suite.json").read_text())["version"] == 2
    assert "jsonschema==" in (suite / "requirements.txt").read_text()
