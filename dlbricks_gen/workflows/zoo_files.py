"""Writing zoo models to disk for the `zoo` command: selection, listing, sizes, files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx

from ..zoo import DEMO_MODELS, ZooOptions, build_model, list_models, node_count

# Beyond this a model is saved with its weights in a separate file (protobuf's 2 GB limit).
EXTERNAL_DATA_BYTES = 1 << 30


def select(models: str | None) -> list[str]:
    known = [m.id for m in list_models()]
    if models is None:
        return list(DEMO_MODELS)
    if models.strip() == "all":
        return known
    ids = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in ids if m not in known]
    if unknown:
        raise ValueError(f"unknown zoo model(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return ids


def listing() -> str:
    infos = list_models()
    width = max(len(m.id) for m in infos)
    lines = [f"{'id'.ljust(width)}  {'family'.ljust(14)}  {'nodes':>5}  source"]
    lines += [f"{m.id.ljust(width)}  {m.family.ljust(14)}  {node_count(m.id):>5}  {m.source}" for m in infos]
    return "\n".join(lines)


def write_models(directory: Path, ids: list[str], options: ZooOptions,
                 echo: Callable[[str], None] = print, dry_run: bool = False) -> int:
    """Build and save each model; print each size before it is written (with `dry_run`, only
    print). Returns the total bytes."""
    if not dry_run:
        directory.mkdir(parents=True, exist_ok=True)
    total = 0
    for model_id in ids:
        model = build_model(model_id, options)
        size = model.ByteSize()
        total += size
        echo(f"{model_id}: {len(model.graph.node)} nodes, {size / 1e6:.1f} MB -> {directory / model_id}.onnx")
        if dry_run:
            continue
        path = directory / f"{model_id}.onnx"
        if size > EXTERNAL_DATA_BYTES:
            onnx.save_model(model, str(path), save_as_external_data=True,
                            location=f"{model_id}.onnx.data", size_threshold=1024)
        else:
            onnx.save_model(model, str(path))
    echo(f"{len(ids)} models, {total / 1e6:.1f} MB " + ("would be written (dry run)" if dry_run
                                                       else f"written to {directory}"))
    return total
