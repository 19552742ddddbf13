"""The audit: prove a suite holds nothing but layer shapes before it is shipped.

Checks, each a one-line finding:
- structure: the expected files only, suite.json consistent, bricks sorted by digest and each
  file named by its SPEC's digest (so brick order cannot depend on model order);
- the fixed files (the runtime package dlbricks_runtime/, Makefile, README, requirements,
  suite.json) are byte-identical to what dlbricks-gen writes for this suite id and brick list;
- every brick program is byte-identical to the template rendered around its own SPEC, and the
  SPEC names its tensors only in the generated pattern: a brick holds its SPEC and nothing else;
- with the models: no file name, graph name, doc string, producer, metadata, node or tensor name,
  or sample of initializer bytes occurs in any file (searched all at once, Aho-Corasick).
Then it lists what the suite does reveal: the multiset of layer signatures (op and shapes).
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import ahocorasick
import onnx

from ..frontend import find_models
from ..frontend.private import Secret, model_secrets
from ..ir.spec import weightless
from .render import TEMPLATES_DIR, SuiteInfo, environment, fixed_files, render_brick

TENSOR_NAME = re.compile(r"(in\d+|t\d+_\d+|[wc]\d+_\d+)")
SHOWN_LEAKS = 20
WORD = re.compile(r"\w", re.ASCII)
# A name this short, or a plain number (TorchScript exports name values '1001'), is in every
# suite's shapes and digests by chance: it identifies nothing, so it counts as ambiguous.
MIN_NAME_CHARS = 3
BYTE_SAMPLES = "initializer data"  # raw bytes, not text: no token boundaries
# What compile --backend tvm|all adds (backends/tvm.py writes them; the audit cannot import it).
TVM_FIXED = ("kernels/tvm.json", "requirements-tvm.txt")


@dataclass(frozen=True, slots=True)
class Leak:
    file: str  # suite file
    kind: str
    source: str  # model file
    text: str  # escaped preview

    def __str__(self) -> str:
        return f"{self.file}: contains a {self.kind} of {self.source}: {self.text}"


@dataclass(frozen=True, slots=True)
class AuditReport:
    suite: str
    bricks: int
    layers: int
    signatures: tuple[tuple[str, int], ...]  # (signature, count), most frequent first
    problems: tuple[str, ...]  # structural findings
    leaks: tuple[Leak, ...]
    secrets: int  # private strings and byte samples searched for (0: no models given)
    ambiguous: tuple[str, ...]  # private strings that are also revealed vocabulary (op names ...)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.leaks


def read_suite(suite_dir: Path) -> dict[str, bytes]:
    """Every file a vendor would receive (results/ comes back from the vendor: left out)."""
    return {p.relative_to(suite_dir).as_posix(): p.read_bytes() for p in sorted(suite_dir.rglob("*"))
            if p.is_file() and p.relative_to(suite_dir).parts[0] != "results"}


def brick_spec_of(text: str) -> dict:
    """The SPEC literal of a brick program, read without executing anything."""
    tree = ast.parse(text)
    for node in tree.body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["SPEC"]:
            return ast.literal_eval(node.value)
    raise ValueError("no SPEC literal")


def audit_suite(suite_dir: Path, models: Path | None = None) -> AuditReport:
    files = read_suite(suite_dir)
    problems: list[str] = []
    specs = _specs(files, problems)
    suite = _check_fixed(files, specs, problems)
    secrets = _secrets(models) if models is not None else []
    vocabulary = _vocabulary(specs)
    leaks, ambiguous = find_leaks(files, secrets, vocabulary)
    signatures = Counter(sig for spec in specs.values() for sig in layer_signatures(spec))
    ranked = tuple(sorted(signatures.items(), key=lambda kv: (-kv[1], kv[0])))
    layers = sum(len(spec["nodes"]) for spec in specs.values())
    return AuditReport(suite, len(specs), layers, ranked, tuple(problems), tuple(leaks),
                       len(secrets), tuple(sorted(ambiguous)))


def _specs(files: dict[str, bytes], problems: list[str]) -> dict[str, dict]:
    specs = {}
    env = environment()
    for rel, data in files.items():
        if not rel.startswith("bricks/"):
            continue
        try:
            text = data.decode("ascii")
            spec = brick_spec_of(text)
            digest = rel.removeprefix("bricks/").removesuffix(".py")
            if spec.get("brick") != digest:
                problems.append(f"{rel}: its SPEC is brick {str(spec.get('brick'))[:70]!r}, not {digest}")
            if render_brick(env, spec) != text:
                problems.append(f"{rel}: holds more than its SPEC (differs from the brick template)")
            names = [t["name"] for t in [*spec["inputs"], *spec["outputs"], *spec["initializers"]]]
            names += [n for node in spec["nodes"] for n in [*node["inputs"], *node["outputs"]] if n]
            odd = [n for n in names if not TENSOR_NAME.fullmatch(n)]
            if odd:
                problems.append(f"{rel}: tensor name {odd[0][:40]!r} is not a generated name")
            specs[digest] = spec
        except (UnicodeDecodeError, SyntaxError, ValueError, KeyError, TypeError, AttributeError,
                RecursionError) as exc:
            problems.append(f"{rel}: not a brick program dlbricks-gen writes: {type(exc).__name__}")
    return specs


def _check_fixed(files: dict[str, bytes], specs: dict[str, dict], problems: list[str]) -> str:
    try:
        meta = json.loads(files.get("suite.json", b"{}"))
        suite, listed = str(meta["suite"]), list(meta["bricks"])
    except (ValueError, KeyError, TypeError):
        problems.append("suite.json: missing or not a suite description")
        return "?"
    if listed != sorted(listed):
        problems.append("suite.json: bricks are not sorted by digest (order could follow the models)")
    if set(listed) != set(specs):
        problems.append(f"suite.json lists {len(listed)} bricks, bricks/ holds {len(specs)} programs")
    backends = tuple(map(str, meta.get("backends") or ("onnxruntime",)))
    expected = fixed_files(environment(), SuiteInfo(suite, tuple(listed)), backends)
    for rel, text in expected.items():
        if files.get(rel) != text.encode("utf-8"):
            problems.append(f"{rel}: differs from what dlbricks-gen writes for suite {suite}")
    known = set(expected) | {f"bricks/{d}.py" for d in specs}
    if "tvm" in backends:
        known |= {*TVM_FIXED, *(f"kernels/{d}.so" for d in listed)}
    extra = sorted(set(files) - known)
    problems += [f"{rel}: unexpected file (dlbricks-gen did not write it)" for rel in extra[:SHOWN_LEAKS]]
    if len(extra) > SHOWN_LEAKS:
        problems.append(f"... and {len(extra) - SHOWN_LEAKS} more unexpected files")
    return suite


def _secrets(models: Path) -> list[Secret]:
    return sorted({s for path in find_models(models) for s in model_secrets(path, models)},
                  key=lambda s: (s.source, s.kind, s.data))


def _vocabulary(specs: dict[str, dict]) -> set[str]:
    """Text the suite is meant to show: op types, domains, attribute names and string values,
    dtype names, plus dlbricks-gen's own templates and runtime."""
    words = set()
    for spec in specs.values():
        for node in spec["nodes"]:
            words |= {node["op_type"], node["domain"]}
            for attr in node["attributes"]:
                words.add(attr["name"])
                values = attr["value"] if isinstance(attr["value"], list) else [attr["value"]]
                words |= {v for v in values if isinstance(v, str)}
        words |= {t["dtype"] for t in [*spec["inputs"], *spec["outputs"], *spec["initializers"]]}
    return words


def _reference_text(vocabulary: set[str]) -> str:
    own = [p.read_text(encoding="utf-8") for p in sorted(TEMPLATES_DIR.glob("*.j2"))]
    own += list(fixed_files(environment(), SuiteInfo("0" * 16, ())).values())
    text = "\n".join(own + sorted(vocabulary))
    return text.encode("utf-8", "surrogatepass").decode("latin-1")  # the view secrets are in


def find_leaks(files: dict[str, bytes], secrets: list[Secret], vocabulary: set[str]
               ) -> tuple[list[Leak], set[str]]:
    """Every (file, secret) occurrence, in one pass per file. A secret that is also in the
    reference text (dlbricks-gen's own text, the revealed vocabulary) cannot be told apart
    from it: returned as ambiguous, not as a leak."""
    if not secrets:
        return [], set()
    reference = _reference_text(vocabulary)
    automaton = ahocorasick.Automaton()
    ambiguous = set()
    for secret in secrets:
        if _identifies_nothing(secret):
            ambiguous.add(secret.data.decode("utf-8", "replace"))
            continue
        for form in _forms(secret.data):
            if form in reference:
                ambiguous.add(secret.data.decode("utf-8", "replace"))
                break
        else:
            for form in _forms(secret.data):
                automaton.add_word(form, (secret, form))
    if not len(automaton):
        return [], ambiguous
    automaton.make_automaton()
    leaks: dict[tuple[str, Secret], Leak] = {}
    for rel, data in files.items():
        text = data.decode("latin-1")
        for end, (secret, form) in automaton.iter(text):
            if not _whole_token(text, end, form, secret):
                continue
            leaks.setdefault((rel, secret), Leak(rel, secret.kind, secret.source, _preview(secret.data)))
    return sorted(leaks.values(), key=lambda leak: (leak.file, leak.kind, leak.text)), ambiguous


def _identifies_nothing(secret: Secret) -> bool:
    if secret.kind == BYTE_SAMPLES:
        return False
    text = secret.data.decode("utf-8", "replace").strip()
    return len(text) < MIN_NAME_CHARS or text.isdigit()


def _whole_token(text: str, end: int, form: str, secret: Secret) -> bool:
    """The match at text[..end] (inclusive) is not part of a longer word: a name '1001' inside
    a hex digest, or 'conv_1' inside 'conv_1_weight', is not that name."""
    if secret.kind == BYTE_SAMPLES:
        return True
    start = end - len(form) + 1
    before = start > 0 and WORD.match(form[0]) and WORD.match(text[start - 1])
    after = end + 1 < len(text) and WORD.match(form[-1]) and WORD.match(text[end + 1])
    return not (before or after)


def _forms(data: bytes) -> set[str]:
    """The secret as raw bytes and as Python/JSON escapes would write it (latin-1 view)."""
    forms = {data.decode("latin-1")}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return forms
    escaped = {ascii(text)[1:-1], json.dumps(text)[1:-1], repr(text)[1:-1]}
    forms |= {f.encode("utf-8", "surrogatepass").decode("latin-1") for f in escaped}
    return {f for f in forms if f}


def _preview(data: bytes) -> str:
    text = data.decode("utf-8", "backslashreplace")
    return ascii(text[:60] + ("..." if len(text) > 60 else ""))


def layer_signatures(spec: dict) -> list[str]:
    """One "Op(in types) -> out types" per layer; weights marked w:, constants c:."""
    types = {t["name"]: f"{t['dtype']}[{','.join(map(str, t['shape']))}]"
             for t in [*spec["inputs"], *spec["outputs"], *spec["initializers"]]}
    types.update(_inferred_types(spec, types))
    out = []
    for node in spec["nodes"]:
        op = f"{node['domain']}.{node['op_type']}" if node["domain"] else node["op_type"]
        ins = ", ".join(_typed(n, types) for n in node["inputs"])
        outs = ", ".join(_typed(n, types) for n in node["outputs"])
        out.append(f"{op}({ins}) -> {outs}")
    return out


def _typed(name: str, types: dict[str, str]) -> str:
    if not name:
        return "_"
    prefix = {"w": "w:", "c": "c:"}.get(name[0], "")
    return prefix + types.get(name, "?")


def _inferred_types(spec: dict, known: dict[str, str]) -> dict[str, str]:
    """Shapes of values inside a multi-layer brick, by ONNX shape inference on the SPEC's graph
    with weights as typed inputs (no weight is ever allocated)."""
    inner = {n for node in spec["nodes"] for n in node["outputs"] if n and n not in known}
    if not inner:
        return {}
    from ..runtime.core.spec import build_model

    try:
        graph = onnx.shape_inference.infer_shapes(build_model(weightless(spec)), data_prop=True).graph
    except Exception:  # contrib ops: onnx cannot infer them
        return {}
    found = {}
    for value in graph.value_info:
        tt = value.type.tensor_type
        if value.name in inner and tt.elem_type and tt.HasField("shape"):
            dims = [str(d.dim_value) if d.HasField("dim_value") else "?" for d in tt.shape.dim]
            found[value.name] = f"{onnx.TensorProto.DataType.Name(tt.elem_type)}[{','.join(dims)}]"
    return found


def format_report(report: AuditReport, top: int = 30) -> str:
    lines = [f"suite {report.suite}: {report.bricks} bricks, {report.layers} layers, "
             f"{len(report.signatures)} distinct layer signatures"]
    if report.secrets:
        lines.append(f"searched every file for {report.secrets} private strings and weight samples "
                     f"of the models: {len(report.leaks)} found"
                     + (f"; {len(report.ambiguous)} are also op/attribute/dtype names or "
                        f"dlbricks-gen's own text and were not counted" if report.ambiguous else ""))
    else:
        lines.append("no --models given: structure checked, model strings not searched")
    lines.append("what the suite reveals (count x layer signature; w: weight, c: constant):")
    lines += [f"  {count:4d} x {sig}" for sig, count in report.signatures[:top]]
    if len(report.signatures) > top:
        rest = sum(c for _, c in report.signatures[top:])
        lines.append(f"  ... {len(report.signatures) - top} more signatures ({rest} layers)")
    ops: Counter[str] = Counter()
    for sig, count in report.signatures:
        ops[sig.split("(", 1)[0]] += count
    by_count = sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))
    lines.append("layers by op: " + ", ".join(f"{op} {n}" for op, n in by_count))
    lines += [f"PROBLEM: {p}" for p in report.problems]
    lines += [f"LEAK: {leak}" for leak in report.leaks[:SHOWN_LEAKS]]
    if len(report.leaks) > SHOWN_LEAKS:
        lines.append(f"LEAK: ... and {len(report.leaks) - SHOWN_LEAKS} more")
    lines.append("audit: " + ("passed" if report.ok else "FAILED"))
    return "\n".join(lines) + "\n"
