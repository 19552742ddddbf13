"""Attacks on a suite: what a vendor holding it can work out, measured.

The audit proves a suite holds nothing but layer shapes; these attacks use exactly that, as a
vendor would. Each reports what it recovers and, when the private plan says which bricks are
decoys, how well its score tells decoys from real bricks (AUC over every brick, 0.5 = chance;
reported in whichever direction is better for the attacker, so it can only be >= 0.5):
- chaining: a real brick's input is some other brick's output and vice versa; a brick with an
  input nobody produces and an output nobody consumes is suspect. Recovers the chains that link
  unambiguously (one producer, one consumer of a shape);
- entry-and-head: model inputs ([1,3,H,W] images, INT64 [1,L] tokens) and classifier heads
  (a weight with >= 1000 classes, an embedding table of >= 10000 rows) name architectures and
  bound the number of models from below;
- histogram: a brick whose tensor shapes are rare in the suite (few other bricks read or write
  them) is suspect;
- cross-suite: ids and contents two suites have in common;
- membership: a public model, compiled as the suite was, matched by id and by content.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..frontend import FrontendError, ShapeOptions, find_models, load_model
from ..ir.spec import brick_spec
from ..passes.fusion import fusion_units
from ..passes.layout import conversions
from ..passes.partition import partition
from .audit import brick_spec_of, read_suite

IMAGE_CHANNELS = (1, 3)
HEAD_CLASSES = (1000, 1001, 11221, 21841, 21843)  # label sets of public classifiers (ImageNet ...)
VOCAB_ROWS = 10000  # embedding tables


@dataclass(frozen=True, slots=True)
class View:
    """What a vendor sees of one brick: its id, ops and the types it reads and writes."""

    id: str
    ops: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    weights: tuple[tuple[int, ...], ...]  # shapes of weights and constants
    content: str  # sha256 of the SPEC without its id: equal bricks in any suite share it


@dataclass(frozen=True, slots=True)
class Finding:
    attack: str
    recovered: str  # one line: what the attack learns
    auc: float | None = None  # decoy detection, with the plan's ground truth
    precision: float | None = None  # of the attack's own flag
    recall: float | None = None
    flagged: int = 0


def _type(t: dict) -> str:
    return f"{t['dtype']}[{','.join(map(str, t['shape']))}]"


def content_key(spec: dict) -> str:
    body = {k: v for k, v in spec.items() if k != "brick"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def view_of(spec: dict) -> View:
    ops = tuple(f"{n['domain']}.{n['op_type']}" if n["domain"] else n["op_type"] for n in spec["nodes"])
    return View(str(spec["brick"]), ops, tuple(_type(t) for t in spec["inputs"]),
                tuple(_type(t) for t in spec["outputs"]),
                tuple(tuple(t["shape"]) for t in spec["initializers"]), content_key(spec))


def views(files: dict[str, bytes]) -> list[View]:
    """The bricks of a suite (files as `audit.read_suite` returns them), by id."""
    return [view_of(brick_spec_of(data.decode("ascii"))) for rel, data in sorted(files.items())
            if rel.startswith("bricks/") and rel.endswith(".py")]


def auc(scores: dict[str, float], positives: set[str]) -> float | None:
    """Mann-Whitney AUC of telling `positives` apart by score, in the attacker's better direction."""
    pos = [s for k, s in scores.items() if k in positives]
    neg = [s for k, s in scores.items() if k not in positives]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    value = wins / (len(pos) * len(neg))
    return max(value, 1 - value)


def _scored(attack: str, recovered: str, scores: dict[str, float], flagged: set[str],
            decoys: set[str] | None) -> Finding:
    if decoys is None:
        return Finding(attack, recovered, flagged=len(flagged))
    hits = len(flagged & decoys)
    return Finding(attack, recovered, auc(scores, decoys), hits / len(flagged) if flagged else None,
                   hits / len(decoys) if decoys else None, len(flagged))


def chaining(bricks: list[View], decoys: set[str] | None = None) -> Finding:
    produced = Counter(t for b in bricks for t in set(b.outputs))
    consumed = Counter(t for b in bricks for t in set(b.inputs))
    scores, flagged = {}, set()
    for b in bricks:
        orphan_in = any(produced[t] - (t in b.outputs) == 0 for t in b.inputs)
        orphan_out = any(consumed[t] - (t in b.inputs) == 0 for t in b.outputs)
        scores[b.id] = float(orphan_in + orphan_out)
        if orphan_in and orphan_out:
            flagged.add(b.id)
    links = [(t, produced[t] == 1 and consumed[t] == 1) for t in produced]
    unique = sum(1 for _, ok in links if ok)
    return _scored("chaining", f"{unique} shapes link exactly one producer to one consumer "
                   f"({_chains(bricks, produced, consumed)} chains of >= 2 bricks stitched)",
                   scores, flagged, decoys)


def _chains(bricks: list[View], produced: Counter, consumed: Counter) -> int:
    """Chains of >= 2 bricks the unambiguous links (one producer, one consumer) stitch."""
    by_input = {t: b.id for b in bricks for t in b.inputs if produced[t] == 1 and consumed[t] == 1}
    nxt = {b.id: {by_input[t] for t in b.outputs if t in by_input} - {b.id} for b in bricks}
    has_prev = {c for cs in nxt.values() for c in cs}
    return sum(1 for b in bricks if nxt[b.id] and b.id not in has_prev)


def _entry(b: View) -> bool:
    for t in b.inputs:
        dtype, dims = t.split("[", 1)
        shape = [int(d) for d in dims.rstrip("]").split(",") if d]
        if len(shape) == 4 and shape[1] in IMAGE_CHANNELS:
            return True
        if dtype == "INT64" and len(shape) == 2 and b.ops[0] == "Gather":
            return True
    return False


def _head(b: View) -> bool:
    """A classifier (output [N, classes] of a public label set) or an embedding table."""
    if "Gather" in b.ops:
        return any(len(w) == 2 and w[0] >= VOCAB_ROWS for w in b.weights)
    return any(t.count(",") == 1 and int(t.rstrip("]").rsplit(",", 1)[1]) in HEAD_CLASSES for t in b.outputs)


def entry_and_head(bricks: list[View], decoys: set[str] | None = None) -> Finding:
    entries = sorted({b.inputs[0] for b in bricks if _entry(b)})
    heads = sorted({f"{'>'.join(b.ops)} {b.outputs[0]}" for b in bricks if _head(b)})
    flagged = {b.id for b in bricks if _entry(b) or _head(b)}
    scores = {b.id: float(b.id in flagged) for b in bricks}
    bound = max(len(entries), len(heads))
    text = (f"at least {bound} models; {len(entries)} model inputs ({', '.join(entries[:6])}), "
            f"{len(heads)} heads ({', '.join(heads[:6])})")
    return _scored("entry-and-head", text, scores, flagged, decoys)


def histogram(bricks: list[View], decoys: set[str] | None = None) -> Finding:
    seen = Counter(t for b in bricks for t in {*b.inputs, *b.outputs})
    ops = Counter(b.ops for b in bricks)
    scores = {b.id: 1.0 / min((seen[t] for t in b.inputs), default=1) + 1.0 / ops[b.ops] for b in bricks}
    flagged = {b.id for b in bricks if min((seen[t] for t in b.inputs), default=2) == 1}
    distinct = len({(b.ops, b.inputs) for b in bricks})
    return _scored("histogram", f"{len(ops)} op sequences, {len(seen)} tensor shapes, {distinct} "
                   "distinct (ops, input shapes)", scores, flagged, decoys)


def cross_suite(bricks: list[View], other: list[View]) -> Finding:
    ids = {b.id for b in bricks} & {b.id for b in other}
    same = {b.content for b in bricks} & {b.content for b in other}
    return Finding("cross-suite", f"{len(ids)} ids in common; {len(same)} bricks identical in content "
                   f"(of {len(bricks)} and {len(other)})")


@dataclass(frozen=True, slots=True)
class Membership:
    model: str
    bricks: int
    by_id: int  # its bricks whose plain digest is an id of the suite
    by_content: int  # its bricks whose content is in the suite

    @property
    def consistent(self) -> bool:
        return self.bricks > 0 and self.by_content == self.bricks


def membership(bricks: list[View], public: Path, granularity: int,
               options: ShapeOptions | None = None) -> list[Membership]:
    """Each public model below `public`, compiled at `granularity` as compile does by default
    (fused kernels, layouts) but without the user's secret (the vendor has none), matched
    against the suite."""
    ids, contents = {b.id for b in bricks}, {b.content for b in bricks}
    out = []
    for path in find_models(public):
        try:
            model = load_model(path, public if public.is_dir() else public.parent, options or ShapeOptions(batch=1))
        except FrontendError as exc:
            raise ValueError(f"membership: {exc}") from None
        models, units = fusion_units([model])  # cut as compile cuts by default
        found = conversions(models[0])
        parts = partition(models, granularity, units, {model.name: found.nhwc} if found else None)
        keys = {d: content_key(brick_spec(d, b)) for d, b in parts.bricks}
        out.append(Membership(model.name, len(keys), len(set(keys) & ids), sum(k in contents for k in keys.values())))
    return out


def membership_finding(found: list[Membership]) -> Finding:
    lines = "; ".join(f"{m.model}: {m.by_id}/{m.bricks} by id, {m.by_content}/{m.bricks} by content" for m in found)
    consistent = sum(m.consistent for m in found)
    return Finding("membership", f"{consistent} of {len(found)} public models consistent with the suite "
                   f"({lines})")


def attack_suite(files: dict[str, bytes], decoys: set[str] | None = None) -> list[Finding]:
    """The attacks that need only the suite (and, to score them, the decoys' ids)."""
    bricks = views(files)
    return [chaining(bricks, decoys), entry_and_head(bricks, decoys), histogram(bricks, decoys)]


def format_findings(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        score = ""
        if f.auc is not None:
            precision = "-" if f.precision is None else f"{f.precision:.2f}"
            recall = "-" if f.recall is None else f"{f.recall:.2f}"
            score = f"  [decoy AUC {f.auc:.3f}; flags {f.flagged}, precision {precision}, recall {recall}]"
        lines.append(f"attack {f.attack}: {f.recovered}{score}")
    return "\n".join(lines) + "\n"


def run_attacks(suite_dir: Path, plan: Path | None = None, public: Path | None = None,
                against: Path | None = None) -> list[Finding]:
    """Every attack on a suite directory: decoys scored with the plan's ground truth when given,
    membership of the `public` models (compiled at the suite's largest brick size, as a vendor
    would guess H), ids and contents in common with the suite `against`."""
    from ..passes.plan import load_plan

    files = read_suite(suite_dir)
    decoys = set(load_plan(plan).decoys) if plan is not None else None
    findings = attack_suite(files, decoys)
    bricks = views(files)
    if against is not None:
        findings.append(cross_suite(bricks, views(read_suite(against))))
    if public is not None:
        granularity = max((len(b.ops) for b in bricks), default=1)
        findings.append(membership_finding(membership(bricks, public, granularity)))
    return findings
