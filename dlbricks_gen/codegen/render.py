"""The generator: a partition -> the files of a standalone benchmark suite.

`render_suite` returns `{relative_path: text}` and writes nothing; `write_suite` puts the files
on disk. Every value reaches a template already computed; model-derived data reaches the brick
programs only as a Python literal made by `pyliteral` (plain data, never code).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import jinja2

from .. import __version__
from ..ir.spec import brick_spec
from ..passes.partition import Partition
from ..runtime.suite import BRICK_ID, INCOMPLETE, SUITE_VERSION  # suite.json: the version the runtime reads

DIGEST = re.compile(r"[0-9a-f]{64}")


TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"  # the package shipped in suites
RUNTIME_PACKAGE = "dlbricks_runtime"  # its name in a suite: never the name of a home package
# The runtime of suite format 1, top-level scripts: removed when a suite is written again.
OLD_RUNTIME_FILES = ("harness.py", "run.py", "result.schema.json", "tvm_backend.py")


def suite_command(*args: str) -> list[str]:
    """`make run`'s command (run it with cwd = the suite folder): this Python, no bytecode."""
    return [sys.executable, "-B", "-m", RUNTIME_PACKAGE, *args]


def suite_id(digests: list[str]) -> str:
    text = "dlbricks-gen suite v1\n" + __version__ + "\n" + "\n".join(sorted(digests)) + "\n"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- brick programs -------------------------------------------------------------------------

def pyliteral(value, indent: int = 0) -> str:
    """A Python literal of plain data (dict/list/str/int/float/bool/None), readable.

    Strings go through ascii(), so no text read from a model can end a literal or become code;
    non-finite floats become the strings "inf", "-inf", "nan" (docs/FORMATS.md).
    """
    pad = " " * indent
    if isinstance(value, dict) and indent == 0:
        items = [f"    {ascii(str(k))}: {pyliteral(v, 4)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n}"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        items = [f"{pad}    {pyliteral(v, indent + 4)}," for v in value]
        return "[\n" + "\n".join(items) + f"\n{pad}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{ascii(str(k))}: {pyliteral(v, indent)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(pyliteral(v, indent) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ascii(str(value))
    if isinstance(value, str):
        return ascii(value)
    raise TypeError(f"not plain data: {type(value).__name__}")


def _ops_summary(ops: tuple[str, ...]) -> str:
    """Op names for a docstring: only characters that cannot end the docstring."""
    text = " -> ".join(op if op.replace(".", "").replace("_", "").isalnum() else "?" for op in ops)
    return text if len(text) <= 200 else text[:197] + "..."


# --- the suite ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SuiteInfo:
    suite: str
    bricks: tuple[str, ...]


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pyliteral"] = pyliteral
    return env


def render_suite(partition: Partition, backends: tuple[str, ...] = ("onnxruntime",)
                 ) -> tuple[SuiteInfo, dict[str, str]]:
    """All files of the suite as {relative path: text}. Deterministic, name-free."""
    digests = [d for d, _ in partition.bricks]
    info = SuiteInfo(suite_id(digests), tuple(digests))
    env = environment()
    files = {f"bricks/{digest}.py": render_brick(env, brick_spec(digest, brick))
             for digest, brick in partition.bricks}
    files.update(fixed_files(env, info, backends))
    return info, dict(sorted(files.items()))


def render_brick(env: jinja2.Environment, spec: dict) -> str:
    """A brick program: the template around its SPEC literal, and nothing else. The docstring
    shows the digest and layer count, so they must be exactly a digest and an int."""
    if not (isinstance(spec["brick"], str) and DIGEST.fullmatch(spec["brick"])) or type(spec["layers"]) is not int:
        raise ValueError("a brick SPEC needs a sha256 hex digest as 'brick' and an int as 'layers'")
    ops = tuple(f"{n['domain']}.{n['op_type']}" if n["domain"] else n["op_type"] for n in spec["nodes"])
    return env.get_template("brick.py.j2").render(
        brick_id=spec["brick"], layers=spec["layers"], ops_summary=_ops_summary(ops),
        generator_version=__version__, spec=spec,
    )


def fixed_files(env: jinja2.Environment, info: SuiteInfo,
                backends: tuple[str, ...] = ("onnxruntime",)) -> dict[str, str]:
    """The files that depend only on the suite id and brick list (and dlbricks-gen itself)."""
    context = {"suite_id": info.suite, "generator_version": __version__, "brick_count": len(info.bricks)}
    files = {name: env.get_template(f"{name}.j2").render(**context) for name in ("Makefile", "README.md")}
    files["requirements.txt"] = requirements()
    suite = {"version": SUITE_VERSION, "suite": info.suite, "generator": __version__, "bricks": list(info.bricks)}
    if backends != ("onnxruntime",):  # the backends `make run` measures (default: ORT only)
        suite["backends"] = list(backends)
    files["suite.json"] = json.dumps(suite, indent=2, sort_keys=True) + "\n"
    files.update(runtime_files())
    return files


def runtime_files() -> dict[str, str]:
    """The runtime package, verbatim, as dlbricks_runtime/...: its .py and .json files in
    sorted order (no __pycache__ or other local files)."""
    files = {}
    for path in sorted(RUNTIME_DIR.rglob("*")):
        rel = path.relative_to(RUNTIME_DIR)
        if path.is_file() and path.suffix in (".py", ".json") and "__pycache__" not in rel.parts:
            files[f"{RUNTIME_PACKAGE}/{rel.as_posix()}"] = path.read_text(encoding="utf-8")
    return files


def requirements() -> str:
    """What the vendor installs: the ONNX Runtime that the user measures with, pinned."""
    ort = metadata.version("onnxruntime")
    onnx_version = metadata.version("onnx")
    jsonschema = metadata.version("jsonschema")
    return (
        "# Pinned to the versions dlbricks-gen generated this suite with, so that results\n"
        "# compare with the user's own end-to-end measurements.\n"
        f"onnxruntime=={ort}\nonnx=={onnx_version}\nnumpy>=1.24\njsonschema=={jsonschema}\n"
    )


def write_suite(files: dict[str, str], out_dir: Path) -> None:
    """Write the files so that the folder holds a complete suite or says it does not.

    An INCOMPLETE marker stands in for suite.json while the other files are written, and goes
    once suite.json is written last. Of the old suite, only what dlbricks-gen wrote goes: brick
    programs its suite.json listed and runtime files (also those of the suite format 1 layout);
    anything else (a user's file) stays, and the audit reports it. Results of another suite id
    are set aside in results/previous-<id>/. Unchanged files are not rewritten.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    old_id, old_bricks = _old_suite(out_dir)
    (out_dir / INCOMPLETE).write_text("compile is writing this suite, or was interrupted: compile again\n")
    (out_dir / "suite.json").unlink(missing_ok=True)
    runtime = out_dir / RUNTIME_PACKAGE
    ours = [out_dir / "bricks" / f"{d}.py" for d in old_bricks] + [out_dir / n for n in OLD_RUNTIME_FILES]
    for stale in ours + sorted(runtime.rglob("*.py")) + sorted(runtime.rglob("*.json")):
        if stale.is_file() and stale.relative_to(out_dir).as_posix() not in files:
            stale.unlink()
    for rel, text in sorted(files.items(), key=lambda kv: kv[0] == "suite.json"):
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
    new_id = json.loads(files["suite.json"]).get("suite") if "suite.json" in files else None
    if old_id and old_id != new_id:
        _set_results_aside(out_dir / "results", old_id)
    (out_dir / INCOMPLETE).unlink()


def _old_suite(out_dir: Path) -> tuple[str | None, list[str]]:
    """(suite id, brick ids) of the suite.json a folder holds (none: (None, []))."""
    try:
        meta = json.loads((out_dir / "suite.json").read_text(encoding="utf-8"))
        bricks = [b for b in meta["bricks"] if isinstance(b, str) and BRICK_ID.match(b)]
        return str(meta["suite"]), bricks
    except (OSError, ValueError, KeyError, TypeError):
        return None, []


def _set_results_aside(results: Path, old_id: str) -> None:
    """Move another suite's result files into results/previous-<id>/ (never read as this
    suite's; nothing is lost)."""
    old = sorted(results.glob("*.json")) if results.is_dir() else []
    if not old or not BRICK_ID.match(old_id):
        return
    aside = results / f"previous-{old_id}"
    aside.mkdir(exist_ok=True)
    for path in old:
        path.replace(aside / path.name)
