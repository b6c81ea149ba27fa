"""Graph algorithms the validator and the planner share (pure, iterative, linear time)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence


def topological_order(nodes: Sequence[str], successors: Mapping[str, Sequence[str]]) -> tuple[list[str], list[str]]:
    """Kahn's algorithm, ties broken by ``nodes`` order. Returns (order, nodes left in or behind cycles)."""
    position = {node: i for i, node in enumerate(nodes)}
    indegree = dict.fromkeys(nodes, 0)
    for node in nodes:
        for target in successors.get(node, ()):
            indegree[target] += 1
    ready = [position[node] for node in nodes if indegree[node] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        order.append(node)
        for target in successors.get(node, ()):
            indegree[target] -= 1
            if indegree[target] == 0:
                heapq.heappush(ready, position[target])
    placed = set(order)
    return order, [node for node in nodes if node not in placed]


def cycles(nodes: Iterable[str], successors: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle (as a node path) per strongly connected component that has one (Tarjan, iterative)."""
    members = list(nodes)
    inside = set(members)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in members:
        if root in index:
            continue
        work = [(root, iter(successors.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in inside:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors.get(child, ()))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in successors.get(node, ()):
                    found.append(_cycle_in(set(component), successors, min(component, key=members.index)))
    return found


def _cycle_in(component: set[str], successors: Mapping[str, Sequence[str]], start: str) -> list[str]:
    """A simple cycle through ``start`` inside one strongly connected component (BFS back to it)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in successors.get(node, ()):
                if child not in component:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    return [start, start]


def ancestor_masks(
    order: Sequence[str], predecessors: Mapping[str, Sequence[str]], bit: Mapping[str, int]
) -> dict[str, int]:
    """For each node in topological ``order``, the set of its ancestors as a bit mask."""
    masks: dict[str, int] = {}
    for node in order:
        mask = 0
        for parent in predecessors.get(node, ()):
            if parent in masks:
                mask |= masks[parent] | (1 << bit[parent])
        masks[node] = mask
    return masks
