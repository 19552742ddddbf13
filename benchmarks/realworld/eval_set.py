"""Link one evaluation set of the corpus into a folder, for `dlbricks-gen study`.
(Named eval_set, not select: a script of this folder named select.py shadows the standard
library's `select` module for make_corpus.py, which then cannot start.)

    python benchmarks/realworld/eval_set.py CORPUS DEST --set fp32|int8|threads2

The sets (eval_sets.json) are the ones the README's accuracy table was measured on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SETS = Path(__file__).resolve().parent / "eval_sets.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("dest", type=Path)
    sets = json.loads(SETS.read_text())
    parser.add_argument("--set", required=True, choices=sorted(sets))
    args = parser.parse_args(argv)
    names = sets[args.set]
    args.dest.mkdir(parents=True, exist_ok=True)
    missing = [n for n in names if not (args.corpus / f"{n}.onnx").is_file()]
    if missing:
        print(f"error: {args.corpus}: missing {', '.join(missing)}", file=sys.stderr)
        return 1
    for name in names:
        link = args.dest / f"{name}.onnx"
        if not link.exists():
            link.symlink_to((args.corpus / f"{name}.onnx").resolve())
    print(f"{args.dest}: {len(names)} models of set {args.set}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
