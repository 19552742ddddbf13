"""What a vendor holding a suite can learn, measured: the attacks of codegen/attacks.py on the
demo models' suite (default scale, H=1, batch 1) at several decoy budgets.

Per budget: decoy bricks made, their guessed share of the suite's latency (FLOPs/bytes roofline,
passes/cost.py: nothing is measured at compile time) and the measuring time they add under the
suite's policy, then each attack's decoy-detection AUC (0.5 = chance), precision and recall.
Then the id attacks: two users' suites of the same models (different secrets) and membership of
a public model (ResNet-18 as an ONNX file) matched by id and by content.

    .venv/bin/python benchmarks/privacy.py                 # budgets 0, 10%, 20%, 40%; 5 secrets each
    .venv/bin/python benchmarks/privacy.py --budgets 0.2 -H 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import onnx

from dlbricks_gen.codegen import attacks
from dlbricks_gen.codegen.keys import DEMO_SECRET
from dlbricks_gen.frontend import ShapeOptions, lower_proto
from dlbricks_gen.passes.cost import brick_cost, measuring_s
from dlbricks_gen.workflows.compile import Recipe, assemble
from dlbricks_gen.zoo import DEMO_MODELS, ZooOptions, build_model


def suite_files(models, h: int, share: float, secret: bytes):
    suite = assemble(models, Recipe(h, ShapeOptions(batch=1), decoy_share=share, secret=secret))
    return suite, {rel: text.encode() for rel, text in suite.files.items()}


def budget_row(models, h: int, share: float, secrets: int) -> None:
    """One budget, drawn with `secrets` different secrets (decoys depend on the secret): the
    decoys' cost, then per attack the mean and worst decoy AUC over the draws."""
    aucs: dict[str, list[float]] = {}
    counts, fakes, extras = [], [], []
    for k in range(secrets if share > 0 else 1):
        suite, files = suite_files(models, h, share, DEMO_SECRET if k == 0 else f"secret {k}".encode())
        bricks, decoys = dict(suite.partition.bricks), set(suite.decoys)
        real = sum(brick_cost(b) for d, b in bricks.items() if d not in decoys)
        counts.append(len(decoys))
        fakes.append(sum(brick_cost(bricks[d]) for d in decoys) / real)
        extras.append(sum(measuring_s(brick_cost(bricks[d])) for d in decoys))
        base = sum(measuring_s(brick_cost(b)) for d, b in bricks.items() if d not in decoys)
        for finding in attacks.attack_suite(files, decoys or None):
            if finding.auc is not None:
                aucs.setdefault(finding.attack, []).append(finding.auc)
        if k == 0:
            recovered = attacks.format_findings(attacks.attack_suite(files))
    draws = len(counts)
    print(f"== budget {share:.0%} ({draws} secrets): {len(bricks) - len(decoys)} real bricks + "
          f"{min(counts)}..{max(counts)} decoys; guessed latency +{sum(fakes) / draws:.1%}; "
          f"measuring time +{sum(extras) / draws:.1f} s on {base:.1f} s (guessed)")
    print(recovered, end="")
    for attack, values in aucs.items():
        print(f"  {attack:15s} decoy AUC mean {sum(values) / len(values):.3f}, worst {max(values):.3f}")


def id_attacks(models, h: int) -> None:
    _, mine = suite_files(models, h, 0.0, b"user one's secret")
    _, theirs = suite_files(models, h, 0.0, b"user two's secret")
    _, plain = suite_files(models, h, 0.0, None)
    print("== ids")
    print(attacks.format_findings([attacks.cross_suite(attacks.views(mine), attacks.views(theirs))]), end="")
    print("  (unkeyed digests, as before: "
          + attacks.cross_suite(attacks.views(plain), attacks.views(plain)).recovered + ")")
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(build_model("resnet18", ZooOptions()), str(Path(tmp) / "resnet18.onnx"))
        onnx.save(build_model("resnet34", ZooOptions()), str(Path(tmp) / "resnet34.onnx"))
        for label, files in (("keyed suite", mine), ("unkeyed suite", plain)):
            found = attacks.membership(attacks.views(files), Path(tmp), h)
            print(f"{label}: " + attacks.format_findings([attacks.membership_finding(found)]), end="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="0,0.1,0.2,0.4", help="decoy shares of the suite's latency")
    parser.add_argument("-H", type=int, default=1)
    parser.add_argument("--secrets", type=int, default=5, help="draws per budget (decoys depend on the secret)")
    args = parser.parse_args()
    models = [lower_proto(build_model(m, ZooOptions()), m, f"{m}.onnx", ShapeOptions(batch=1)) for m in DEMO_MODELS]
    for share in (float(s) for s in args.budgets.split(",")):
        budget_row(models, args.H, share, args.secrets)
    id_attacks(models, args.H)


if __name__ == "__main__":
    main()
