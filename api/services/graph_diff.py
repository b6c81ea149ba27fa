"""A structural diff of two ``gorax/graph@1`` documents: nodes and edges added, removed, changed.

Nodes are matched by id, edges by id (or ``source>target#handle`` when they have none). A changed
node lists every differing leaf as a dotted path (``config.url``, ``retry.attempts``,
``config.headers.X-Token``); list values are compared whole. Editor-only ``position`` changes
are reported separately as ``moved`` so a reviewer can ignore them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

_MISSING = object()


class FieldChange(BaseModel):
    """One differing value inside a node, an edge or the graph settings."""

    path: str = Field(description="Dotted path, e.g. config.url.")
    before: Any = None
    after: Any = None


class ItemChange(BaseModel):
    """A node or edge present in both graphs whose content differs."""

    id: str
    changes: list[FieldChange]


class GraphDiff(BaseModel):
    """What changed from graph ``a`` to graph ``b``."""

    nodes_added: list[str] = Field(default_factory=list)
    nodes_removed: list[str] = Field(default_factory=list)
    nodes_changed: list[ItemChange] = Field(default_factory=list)
    nodes_moved: list[str] = Field(default_factory=list, description="Only the position changed.")
    edges_added: list[str] = Field(default_factory=list)
    edges_removed: list[str] = Field(default_factory=list)
    edges_changed: list[ItemChange] = Field(default_factory=list)
    graph_changes: list[FieldChange] = Field(
        default_factory=list, description="Top-level keys (name, description, settings)."
    )

    @property
    def empty(self) -> bool:
        """Whether the graphs are the same apart from node positions."""
        return not any(
            (
                self.nodes_added,
                self.nodes_removed,
                self.nodes_changed,
                self.edges_added,
                self.edges_removed,
                self.edges_changed,
                self.graph_changes,
            )
        )


def _leaf_changes(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[FieldChange] = []
        for key in list(before) + [k for k in after if k not in before]:
            sub = f"{path}.{key}" if path else str(key)
            changes += _leaf_changes(before.get(key, _MISSING), after.get(key, _MISSING), sub)
        return changes
    if before is _MISSING and after is _MISSING or before == after:
        return []
    return [
        FieldChange(
            path=path, before=None if before is _MISSING else before, after=None if after is _MISSING else after
        )
    ]


def edge_key(edge: dict[str, Any]) -> str:
    """An edge's identity: its id, else ``source>target`` plus ``#handle``."""
    if edge.get("id"):
        return str(edge["id"])
    handle = edge.get("sourceHandle")
    return f"{edge.get('source')}>{edge.get('target')}" + (f"#{handle}" if handle else "")


def _keyed(items: Any, key: Any) -> dict[str, dict[str, Any]]:
    return {key(item): item for item in items or [] if isinstance(item, dict)}


def diff_graphs(a: dict[str, Any], b: dict[str, Any]) -> GraphDiff:
    """The structural diff from ``a`` to ``b``."""
    result = GraphDiff()
    nodes_a = _keyed(a.get("nodes"), lambda n: str(n.get("id")))
    nodes_b = _keyed(b.get("nodes"), lambda n: str(n.get("id")))
    result.nodes_added = [i for i in nodes_b if i not in nodes_a]
    result.nodes_removed = [i for i in nodes_a if i not in nodes_b]
    for node_id in (i for i in nodes_a if i in nodes_b):
        changes = _leaf_changes(nodes_a[node_id], nodes_b[node_id])
        real = [c for c in changes if not c.path.startswith("position")]
        if real:
            result.nodes_changed.append(ItemChange(id=node_id, changes=real))
        elif changes:
            result.nodes_moved.append(node_id)
    edges_a = _keyed(a.get("edges"), edge_key)
    edges_b = _keyed(b.get("edges"), edge_key)
    result.edges_added = [k for k in edges_b if k not in edges_a]
    result.edges_removed = [k for k in edges_a if k not in edges_b]
    for key in (k for k in edges_a if k in edges_b):
        changes = _leaf_changes(edges_a[key], edges_b[key])
        if changes:
            result.edges_changed.append(ItemChange(id=key, changes=changes))
    top_a = {k: v for k, v in a.items() if k not in ("nodes", "edges")}
    top_b = {k: v for k, v in b.items() if k not in ("nodes", "edges")}
    result.graph_changes = _leaf_changes(top_a, top_b)
    return result
