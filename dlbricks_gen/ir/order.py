"""The canonical topological order, defined once: depth first, smallest index first.

The frontend orders a model's layers with it, and the fusion pass orders groups of fused layers
with it, so a regrouped model reads like the frontend's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def depth_first_order(preds: Sequence[Iterable[int]]) -> list[int] | None:
    """A deterministic topological order of items 0..n-1 that keeps chains together.

    `preds[j]` are the items j depends on. Among the ready items the smallest index goes first,
    and after an item its successors that became ready come next (smallest first), so a chain
    such as Conv -> BatchNormalization -> Relu stays contiguous. None if there is a cycle.
    """
    succ: list[list[int]] = [[] for _ in preds]
    indegree = [0] * len(preds)
    for j, ps in enumerate(preds):
        distinct = set(ps)
        for p in distinct:
            succ[p].append(j)  # j ascending: every successor list is sorted
        indegree[j] = len(distinct)
    stack = [i for i in reversed(range(len(preds))) if indegree[i] == 0]
    order: list[int] = []
    while stack:
        i = stack.pop()
        order.append(i)
        ready = []
        for j in succ[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                ready.append(j)
        stack.extend(reversed(ready))
    return order if len(order) == len(preds) else None
