"""The workflow draft as a Yjs document (pycrdt), converted losslessly to and from ``gorax/graph@1``.

The layout is shared with the editor (``web/src/graph/ydoc.ts``; keep both in step)::

    meta   Map  every top-level graph key except nodes/edges (format, name, settings, ...)
    nodes  Map  node id -> Map of the node's keys (without ``id``); ``config`` is a nested Map so
                concurrent edits of different fields of one node both survive; ``__i`` is the
                node's place in the list
    edges  Map  edge key -> plain edge dict plus ``__i``; the key is the edge id, or
                ``source>target#handle`` for an edge without one (repeats get ``~2``, ``~3``)
    pins   Map  node id -> plain dict ``{output, source: "run"|"manual", run_id?, pinned_by,
                pinned_at}``: pinned outputs test runs use instead of running the node; not
                part of the graph (publishing never sees them)

Numbers come back from Yjs as floats; integral ones are returned as ints, as JSON has it.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Map

from api.jsonsafe import unstorable

GRAPH_FORMAT = "gorax/graph@1"
ORDER_KEY = "__i"


def _maps(doc: Doc) -> tuple[Map, Map, Map]:
    return doc.get("meta", type=Map), doc.get("nodes", type=Map), doc.get("edges", type=Map)


def _json(value: Any) -> Any:
    """Plain JSON value of a stored value: nested Maps to dicts, integral floats to ints."""
    if isinstance(value, Map):
        value = value.to_py()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


def same_json(a: Any, b: Any) -> bool:
    """JSON equality (1 == 1.0, but True is not 1; key order does not matter)."""
    a, b = _json(a), _json(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def is_initialized(doc: Doc) -> bool:
    """Whether the document has ever held a graph (an emptied graph keeps ``meta.format``)."""
    return "format" in _maps(doc)[0]


def edge_base_key(edge: dict[str, Any]) -> str:
    """The key of an edge: its id, else ``source>target`` plus ``#handle``."""
    edge_id = edge.get("id")
    if isinstance(edge_id, str) and edge_id:
        return edge_id
    handle = edge.get("sourceHandle")
    return f"{edge.get('source')}>{edge.get('target')}" + (f"#{handle}" if handle is not None else "")


def edge_keys(edges: list[dict[str, Any]]) -> list[str]:
    """Keys for a list of edges, suffixing repeats so every edge keeps its own entry."""
    seen: set[str] = set()
    keys = []
    for edge in edges:
        base = key = edge_base_key(edge)
        n = 2
        while key in seen:
            key = f"{base}~{n}"
            n += 1
        seen.add(key)
        keys.append(key)
    return keys


def _order(value: Any) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else float("inf")


def doc_to_graph(doc: Doc) -> dict[str, Any]:
    """The draft as ``gorax/graph@1`` JSON, nodes and edges in their stored order."""
    meta, nodes, edges = _maps(doc)
    graph: dict[str, Any] = {key: _json(value) for key, value in meta.items()}
    graph.setdefault("format", GRAPH_FORMAT)
    node_list = []
    for node_id, node_map in sorted(nodes.items(), key=lambda kv: (_order(kv[1].get(ORDER_KEY)), kv[0])):
        node: dict[str, Any] = {"id": node_id}
        for key, value in node_map.items():
            if key != ORDER_KEY:
                node[key] = _json(value)
        node_list.append(node)
    edge_list = []
    for _key, value in sorted(edges.items(), key=lambda kv: (_order(_json(kv[1]).get(ORDER_KEY)), kv[0])):
        edge = _json(value)
        edge.pop(ORDER_KEY, None)
        edge_list.append(edge)
    graph["nodes"] = node_list
    graph["edges"] = edge_list
    return graph


def _set_config(node_map: Map, config: Any) -> None:
    current = node_map.get("config")
    if not isinstance(config, dict):
        # Not an object: kept as it is so validation can name it instead of losing it.
        if not same_json(current, config):
            node_map["config"] = config
        return
    if isinstance(current, Map):
        cfg = current
    else:
        cfg = Map()
        node_map["config"] = cfg
    for key in list(cfg.keys()):
        if key not in config:
            del cfg[key]
    for key, value in config.items():
        if key not in cfg or not same_json(cfg[key], value):
            cfg[key] = value


def _write_node(node_map: Map, node: dict[str, Any], index: int) -> None:
    wanted = {k: v for k, v in node.items() if k != "id"}
    for key in list(node_map.keys()):
        if key != ORDER_KEY and key not in wanted:
            del node_map[key]
    for key, value in wanted.items():
        if key == "config":
            _set_config(node_map, value)
        elif key not in node_map or not same_json(node_map[key], value):
            node_map[key] = value
    if node_map.get(ORDER_KEY) != index:
        node_map[ORDER_KEY] = index


def pins_of(doc: Doc) -> dict[str, dict[str, Any]]:
    """The draft's pins by node id (plain JSON)."""
    pins = doc.get("pins", type=Map)
    return {node_id: _json(value) for node_id, value in pins.items() if isinstance(_json(value), dict)}


def set_pin(doc: Doc, node_id: str, pin: dict[str, Any] | None, origin: Any = None) -> None:
    """Pin ``node_id``'s output (``pin``), or unpin it (None), in one transaction."""
    if pin is not None and (problem := unstorable(pin, f"pins.{node_id}")) is not None:
        raise ValueError(problem)
    pins = doc.get("pins", type=Map)
    with doc.transaction(origin=origin):
        if pin is None:
            if node_id in pins:
                del pins[node_id]
        else:
            pins[node_id] = pin


def apply_graph(doc: Doc, graph: dict[str, Any], origin: Any = None) -> None:
    """Make the document hold ``graph``, changing only what differs, in one transaction.

    Raises ``ValueError`` naming the problem when ``graph`` lacks node ids or edge ends, since
    those are the document's keys.
    """
    nodes_in = graph.get("nodes") or []
    edges_in = graph.get("edges") or []
    if not isinstance(nodes_in, list) or not isinstance(edges_in, list):
        raise ValueError("graph 'nodes' and 'edges' must be lists")
    for i, node in enumerate(nodes_in):
        if not isinstance(node, dict) or not isinstance(node.get("id"), str) or not node["id"]:
            raise ValueError(f"nodes[{i}] needs a string 'id'")
    for i, edge in enumerate(edges_in):
        if not isinstance(edge, dict) or "source" not in edge or "target" not in edge:
            raise ValueError(f"edges[{i}] needs 'source' and 'target'")
    if (problem := unstorable(graph, "graph")) is not None:
        raise ValueError(problem)
    meta, nodes, edges = _maps(doc)
    with doc.transaction(origin=origin):
        top = {k: v for k, v in graph.items() if k not in ("nodes", "edges")}
        top.setdefault("format", GRAPH_FORMAT)
        for key in list(meta.keys()):
            if key not in top:
                del meta[key]
        for key, value in top.items():
            if key not in meta or not same_json(meta[key], value):
                meta[key] = value

        wanted_nodes = {node["id"]: (node, i) for i, node in enumerate(nodes_in)}
        for node_id in list(nodes.keys()):
            if node_id not in wanted_nodes:
                del nodes[node_id]
        for node_id, (node, index) in wanted_nodes.items():
            node_map = nodes.get(node_id)
            if not isinstance(node_map, Map):
                node_map = Map()
                nodes[node_id] = node_map
            _write_node(node_map, node, index)

        wanted_edges = {
            key: {**edge, ORDER_KEY: i} for i, (key, edge) in enumerate(zip(edge_keys(edges_in), edges_in, strict=True))
        }
        for key in list(edges.keys()):
            if key not in wanted_edges:
                del edges[key]
        for key, value in wanted_edges.items():
            if key not in edges or not same_json(edges[key], value):
                edges[key] = value
