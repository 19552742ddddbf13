"""Op counts of the zoo against real exports of the same architectures.

    python benchmarks/zoo_vs_exports.py EXPORTS_DIR [--write tests/fixtures/export_op_counts.json]

EXPORTS_DIR holds torch.onnx exports named as the real-world corpus names them
(benchmarks/realworld/make_corpus.py: `resnet18.onnx`, `gpt2_small.onnx`, ...). For every
zoo model with an export in EXPORTS_DIR (see EXPORTS below) it prints the op-type histogram of
both, op by op, and with `--write` stores the exports' histograms as the fixture
tests/test_zoo.py checks the zoo against. Both are counted at the same input size and scale
(op counts do not depend on widths, so the zoo is built tiny at the export's input size).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import onnx

from dlbricks_gen.zoo import ZooOptions, build_model

# zoo id -> (export file stem, input size the export was traced at: image side or seq_len)
EXPORTS: dict[str, tuple[str, int]] = {
    "resnet18": ("resnet18", 224),
    "resnet50": ("resnet50", 224),
    "mobilenet_v2": ("mobilenet_v2", 224),
    "mobilenet_v3_large": ("mobilenet_v3_large", 224),
    "mobilenet_v3_small": ("mobilenet_v3_small", 224),
    "squeezenet1_1": ("squeezenet1_1", 224),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", 224),
    "googlenet": ("googlenet", 224),
    "efficientnet_b0": ("efficientnet_b0", 224),
    "mnasnet1_0": ("mnasnet1_0", 224),
    "densenet121": ("densenet121", 224),
    "convnext_tiny": ("convnext_tiny", 224),
    "regnet_y_400mf": ("regnet_y_400mf", 224),
    "fcn_resnet50": ("fcn_resnet50", 160),
    "distilbert": ("distilbert_base", 128),
    "gpt2": ("gpt2_small", 128),
}
NOTE = ("Op counts (Counter of node.op_type) of real exports: torch.onnx.export(dynamo=True, "
        "opset_version=18, optimize=True) of torchvision models and transformers' "
        "DistilBertModel and GPT2LMHeadModel (from their configs) in eval mode, made by the real-world corpus script "
        "(benchmarks/realworld/make_corpus.py; its manifest.json lists the versions) with {versions}. "
        "Regenerate: python benchmarks/zoo_vs_exports.py EXPORTS_DIR --write "
        "tests/fixtures/export_op_counts.json")
VERSIONS = "torch 2.14.1, torchvision 0.29.1, transformers 5.24.0, onnxscript 0.7.2, onnx 1.23.2"


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(sorted(Counter(n.op_type for n in model.graph.node).items()))


def zoo_counts(model_id: str, size: int) -> dict[str, int]:
    return op_counts(build_model(model_id, ZooOptions(tiny=True, image_size=size)))


def export_counts(exports: Path) -> dict[str, dict]:
    found = {}
    for model_id, (stem, size) in EXPORTS.items():
        path = exports / f"{stem}.onnx"
        if path.exists():
            model = onnx.load(str(path), load_external_data=False)
            found[model_id] = {"export": path.name, "input_size": size, "ops": op_counts(model)}
    return found


def compare(export: dict[str, int], zoo: dict[str, int]) -> list[str]:
    """One line per op type whose count differs (empty: the histograms agree)."""
    return [f"  {op:<24} zoo {zoo.get(op, 0):>5}  export {export.get(op, 0):>5}"
            for op in sorted(set(export) | set(zoo)) if zoo.get(op, 0) != export.get(op, 0)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", type=Path)
    parser.add_argument("--write", type=Path, help="store the exports' op counts here (JSON)")
    args = parser.parse_args(argv)
    found = export_counts(args.exports)
    if not found:
        print(f"no known export in {args.exports}", file=sys.stderr)
        return 1
    agree = 0
    for model_id, entry in found.items():
        diff = compare(entry["ops"], zoo_counts(model_id, entry["input_size"]))
        agree += not diff
        print(f"{model_id}: {f'{len(diff)} op types differ' if diff else 'same op counts'}")
        for line in diff:
            print(line)
    print(f"{agree}/{len(found)} zoo models have the export's op counts")
    if args.write:
        data = {"note": NOTE.format(versions=VERSIONS), "models": found}
        args.write.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
