"""Graph traversal shared by the tape (autodiff.py) and by graph nodes (symbolic.py, graph.py)."""
from __future__ import annotations

from typing import Callable, Iterable


def topological(roots: list, parents: Callable[[object], Iterable]) -> list:
    """Every node reachable from `roots` through `parents(node)`, each after all of its
    parents. An iterative depth-first search: a 10,000-node chain needs no recursion."""
    order, seen = [], set()
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for parent in parents(node):
            if id(parent) not in seen:
                stack.append((parent, False))
    return order
