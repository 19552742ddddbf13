"""What the partitioner did: layer repetition and unique sequences per H (DLBricks Fig. 9)."""

from __future__ import annotations

from collections import Counter

from ..ir import Model
from ..passes.partition import partition


def inspect_models(models: list[Model], granularities: list[int]) -> dict:
    """Plain data: per model and in total, layers, unique layers, op-type repetition, and how
    the number of unique sequences (the benchmarks to run) changes with H."""
    per_h: dict[int, dict] = {}
    for h in granularities:
        parts = partition(models, h)
        per_model = {m.name: {"sequences": len(m.instances), "unique": len(set(m.instances))}
                     for m in parts.models}
        total = sum(len(m.instances) for m in parts.models)
        per_h[h] = {"sequences": total, "unique": len(parts.bricks),
                    "repetition": total / len(parts.bricks) if parts.bricks else 0.0,
                    "models": per_model}
    ops_total: Counter[str] = Counter()
    ops_unique: Counter[str] = Counter()
    for layer in {n.layer for m in models for n in m.nodes}:
        ops_unique[layer.qualified_op] += 1
    for m in models:
        ops_total.update(n.layer.qualified_op for n in m.nodes)
    layers = sum(len(m.nodes) for m in models)
    unique = len({n.layer for m in models for n in m.nodes})
    return {
        "models": [
            {"name": m.name, "layers": len(m.nodes), "unique_layers": len({n.layer for n in m.nodes}),
             "folded": m.folded,
             "by_h": {h: per_h[h]["models"][m.name] for h in granularities}}
            for m in models
        ],
        "total": {"models": len(models), "layers": layers, "unique_layers": unique,
                  "unique_share": unique / layers if layers else 0.0},
        "ops": [{"op": op, "layers": ops_total[op], "unique": ops_unique[op]}
                for op in sorted(ops_total, key=lambda o: (-ops_total[o], o))],
        "by_h": [{"h": h, **{k: v for k, v in per_h[h].items() if k != "models"}} for h in granularities],
    }


def format_inspection(data: dict) -> str:
    from ..estimate.report import text_table

    hs = [row["h"] for row in data["by_h"]]
    models = text_table(["model", "layers", "unique", "folded", *(f"uniq@H{h}" for h in hs)],
                        [[m["name"], str(m["layers"]), str(m["unique_layers"]), str(m["folded"]),
                          *(str(m["by_h"][h]["unique"]) for h in hs)] for m in data["models"]])
    t = data["total"]
    total = (f"total: {t['models']} models, {t['layers']} layers, {t['unique_layers']} unique "
             f"({t['unique_share'] * 100:.1f}%)")
    per_h = text_table(["H", "sequences", "unique", "repetition"],
                       [[str(r["h"]), str(r["sequences"]), str(r["unique"]), f"{r['repetition']:.2f}x"]
                        for r in data["by_h"]])
    ops = text_table(["op type", "layers", "unique"],
                     [[o["op"], str(o["layers"]), str(o["unique"])] for o in data["ops"]])
    return "\n".join([models, total, "", per_h, ops])
