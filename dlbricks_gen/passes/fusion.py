"""Fusion-aware units: groups of layers that ONNX Runtime fuses into one kernel.

The groups are learned from the runtime itself rather than from a hand-kept table: the whole
model is built with random weights (the suite's data policy), ONNX Runtime optimizes it at the
"extended" level (all its fusions, without the NCHWc layout pass) and saves the optimized graph.
A value of the original graph that no longer exists there was fused away, so its producer and
its consumers are one kernel. The partitioner never cuts inside such a group.
"""

from __future__ import annotations

from ..ir import Model, Node
from ..ir.order import depth_first_order
from ..ir.spec import output_name
from .optimized import graph_values, optimized_graph
from .partition import consumers

Units = tuple[tuple[int, int], ...]


def fused_groups(model: Model) -> list[int]:
    """A group id (its smallest node index) for every node of `model`."""
    n = len(model.nodes)
    if n == 0:
        return []
    used_by = consumers(model)
    surviving = _optimized_values(model)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, node in enumerate(model.nodes):
        for j, name in enumerate(node.outputs):
            if name and output_name(i, j) not in surviving:
                for c in used_by.get(name, ()):
                    a, b = find(i), find(c)
                    parent[max(a, b)] = min(a, b)
    return convex_groups(model, [find(i) for i in range(n)], used_by)


def convex_groups(model: Model, groups: list[int], used_by: dict[str, set[int]]) -> list[int]:
    """`groups` with every group that is not convex (a path leaves it and comes back) split into
    single layers: such a group cannot be one brick. It happens where ONNX Runtime drops a value
    that feeds several far-apart layers, e.g. an attention mask's Expand, which its Where in every
    encoder layer broadcasts instead, joining all of them into one "group"."""
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    out = list(groups)
    for nodes in members.values():
        if len(nodes) > 1 and _leaves_and_returns(model, set(nodes), used_by):
            for i in nodes:
                out[i] = i
    return out


def _leaves_and_returns(model: Model, group: set[int], used_by: dict[str, set[int]]) -> bool:
    """Whether a path from a member of `group` through a layer outside it reaches the group."""
    last = max(group)  # layers are in topological order: a path back ends at or before `last`
    stack = [c for i in group for name in model.nodes[i].outputs if name
             for c in used_by.get(name, ()) if c not in group]
    seen = set(stack)
    while stack:
        i = stack.pop()
        for name in model.nodes[i].outputs:
            for c in used_by.get(name, ()) if name else ():
                if c in group:
                    return True
                if c not in seen and c < last:
                    seen.add(c)
                    stack.append(c)
    return False


def _optimized_values(model: Model) -> set[str]:
    return graph_values(optimized_graph(model, "extended"))


def group_model(model: Model, groups: list[int]) -> tuple[Model, Units]:
    """Reorder `model` so that every group is contiguous; return it with the group spans.

    Groups are ordered depth first, as the frontend orders layers (`depth_first_order`);
    members keep their order. Falls back to one unit per layer if the groups are not convex
    (a cycle between groups).
    """
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    ids = sorted(members)
    position = {g: k for k, g in enumerate(ids)}
    producer = {out: position[groups[i]] for i, node in enumerate(model.nodes)
                for out in node.outputs if out}
    preds = [{producer[name] for i in members[g] for name in model.nodes[i].inputs
              if name in producer and producer[name] != position[g]} for g in ids]
    order = depth_first_order(preds)
    if order is None:
        return model, tuple((i, i + 1) for i in range(len(model.nodes)))
    nodes: list[Node] = []
    units = []
    for k in order:
        group = members[ids[k]]
        units.append((len(nodes), len(nodes) + len(group)))
        nodes.extend(model.nodes[i] for i in group)
    reordered = Model(model.name, model.file, tuple(nodes), model.inputs, model.outputs, model.folded,
                      model.assumed)
    return reordered, tuple(units)


def fusion_units(models: list[Model]) -> tuple[list[Model], dict[str, Units]]:
    """Every model reordered by its fused groups, with the units for `partition`."""
    out, units = [], {}
    for model in models:
        reordered, spans = group_model(model, fused_groups(model))
        out.append(reordered)
        units[model.name] = spans
    return out, units
