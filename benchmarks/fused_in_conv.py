"""What a layer ONNX Runtime fuses into an NCHWc convolution costs there, against its own brick.

    taskset -c 1 python benchmarks/fused_in_conv.py [--calls 200] [--json OUT]

At level "all" ONNX Runtime's NCHWc pass runs a HardSwish, a residual Add and a Relu after it
inside the convolution before them, but only where the result stays in the NCHWc layout: a
one-layer brick of such a layer runs it apart. The runtime measures, once per process, the
share of its brick's time such a layer costs inside a convolution, with one probe (a 1x1
convolution, 64 channels at 56x56: runtime/core/fused.py), and the estimator counts absorbed
instances at that share. This prints the same measurement for three convolutions (depthwise
3x3, 1x1, full 3x3; 64 channels at 56x56), so that one can see how far one probe speaks for
all: per convolution and layer, what the layer adds to the convolution's kernels (each call
times the convolution with and without it, so that the machine's speed changes hit both; "Relu"
is a Relu after a fused Add, what it adds to the Add), the layer's own brick's kernels (in short
loops, as a brick runs), and the share, as the runtime records it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dlbricks_gen.runtime.core.fused import CHANNELS, shares
from dlbricks_gen.runtime.core.settings import Settings

SETTINGS = Settings(intra_op_threads=1, inter_op_threads=1, graph_optimization_level="all")
CONVS = {"depthwise 3x3": (3, CHANNELS), "1x1 (the runtime's probe)": (1, 1), "3x3": (3, 1)}  # kernel, group


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    found: dict[str, dict[str, dict[str, float]]] = {}
    print(f"{'convolution':28s} {'layer':10s} {'inside us':>10s} {'apart us':>9s} {'share':>6s}")
    for conv, (kernel, group) in CONVS.items():
        measured, figures = shares(SETTINGS, args.calls, kernel, group)
        for name, share in measured.items():
            extra, apart = figures[name]
            found.setdefault(conv, {})[name] = {"inside_s": extra, "apart_s": apart, "share": share}
            print(f"{conv:28s} {name:10s} {extra * 1e6:10.1f} {apart * 1e6:9.1f} {share:6.2f}")
    if args.json:
        args.json.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
