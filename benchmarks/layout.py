"""The shape of the code: lines per stage, the import graph between modules and stages.

    python benchmarks/layout.py            # this checkout
    python benchmarks/layout.py --json

Prints, per stage folder, its modules and lines; every import between the package's modules
(function-level imports included); cycles among modules; and imports that point up the stage
order (tests/test_layout.py asserts there are none). The stage order is `STAGES` below: a
module may import only from its own stage and the stages before it.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dlbricks_gen"
# Lowest first. `runtime` is shipped in suites and imports nothing of the rest.
STAGES = ("runtime", "zoo", "ir", "frontend", "passes", "codegen", "results", "estimate",
          "backends", "workflows", "cli")


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(package)"


def imports_of(path: Path, root: Path, modules: set[str]) -> set[str]:
    """The package modules `path` imports, anywhere in the file (`from pkg import submodule`
    counts as importing the submodule)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            candidates = subs if len(subs) == len(node.names) else [target, *subs]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found.update(c for c in candidates if c.split(".")[0] == root.name)
    return found


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    return {m: {t for t in imports_of(p, root, set(files)) if t in files and t != m}
            for m, p in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports from a lower stage (or the runtime) to a higher one: (importer, imported)."""
    rank = {s: i for i, s in enumerate(STAGES)}
    bad = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            a, b = stage_of(source), stage_of(target)
            if a in rank and b in rank and rank[b] > rank[a]:
                bad.append((source, target))
    return bad


def lines_per_stage(root: Path = PACKAGE) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        out.setdefault(stage_of(module), {})[module] = len(path.read_text(encoding="utf-8").splitlines())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--root", type=Path, default=PACKAGE, help="the package folder (e.g. of another checkout)")
    args = parser.parse_args(argv)
    edges = graph(args.root)
    data = {"lines": lines_per_stage(args.root), "cycles": cycles(edges), "upward": upward(edges),
            "imports": {k: sorted(v) for k, v in sorted(edges.items())}}
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    for stage, modules in sorted(data["lines"].items(), key=lambda kv: STAGES.index(kv[0]) if kv[0] in STAGES else -1):
        print(f"{stage:10s} {sum(modules.values()):6d} lines in {len(modules):2d} modules")
    print(f"{'total':10s} {sum(sum(m.values()) for m in data['lines'].values()):6d} lines")
    print(f"module import cycles: {len(data['cycles'])}" + "".join(f"\n  {' <-> '.join(c)}" for c in data["cycles"]))
    print(f"imports up the stage order: {len(data['upward'])}"
          + "".join(f"\n  {a} -> {b}" for a, b in data["upward"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
