/**
 * The workflow draft as a Yjs document, and its lossless conversion to and from `gorax/graph@1`.
 *
 * Layout (mirrored by api/collab/graphdoc.py; keep both in step):
 *   meta:  Y.Map   every top-level graph key except nodes/edges (format, name, settings, ...)
 *   nodes: Y.Map   node id -> Y.Map of the node's keys (without `id`); `config` is a nested Y.Map
 *                  so two people editing different fields of one node both keep their change;
 *                  `__i` holds the node's place in the list.
 *   edges: Y.Map   edge key -> plain edge object plus `__i`; the key is the edge id, or
 *                  `source>target#handle` for edges without one, so two clients that seed the
 *                  same graph at once write the same keys and converge.
 *   pins:  Y.Map   node id -> {output, source, run_id?, pinned_by, pinned_at}: pinned outputs that
 *                  test runs use instead of running the node; not part of the graph (written
 *                  through the API, which checks them; see editor/testloop.ts).
 */
import * as Y from "yjs";
import { GRAPH_FORMAT, type Graph, type GraphEdge, type GraphNode, type Json } from "./types";

export const ORDER_KEY = "__i";

export interface DraftMaps {
  meta: Y.Map<unknown>;
  nodes: Y.Map<Y.Map<unknown>>;
  edges: Y.Map<Record<string, unknown>>;
}

export function draftMaps(doc: Y.Doc): DraftMaps {
  return {
    meta: doc.getMap("meta"),
    nodes: doc.getMap("nodes") as Y.Map<Y.Map<unknown>>,
    edges: doc.getMap("edges") as Y.Map<Record<string, unknown>>,
  };
}

/** Whether the document has ever held a graph (an emptied graph still has `meta.format`). */
export function isInitialized(doc: Y.Doc): boolean {
  return draftMaps(doc).meta.has("format");
}

/** JSON equality that ignores object key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => sameJson(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => k in bo && sameJson(ao[k], bo[k]));
}

function plain(value: unknown): unknown {
  return value instanceof Y.AbstractType ? value.toJSON() : value;
}

function order(value: unknown): number {
  return typeof value === "number" ? value : Number.MAX_SAFE_INTEGER;
}

/** The key under which an edge is stored (see module docstring). */
export function edgeBaseKey(edge: GraphEdge): string {
  if (typeof edge.id === "string" && edge.id !== "") return edge.id;
  return `${edge.source}>${edge.target}${edge.sourceHandle != null ? "#" + edge.sourceHandle : ""}`;
}

/** Keys for a list of edges, suffixing repeats so every edge keeps its own entry. */
export function edgeKeys(edges: GraphEdge[]): string[] {
  const seen = new Set<string>();
  return edges.map((edge) => {
    const base = edgeBaseKey(edge);
    let key = base;
    for (let n = 2; seen.has(key); n++) key = `${base}~${n}`;
    seen.add(key);
    return key;
  });
}

export function nodeFromMap(id: string, map: Y.Map<unknown>): GraphNode {
  const node: Record<string, unknown> = { id };
  for (const [key, value] of map.entries()) {
    if (key !== ORDER_KEY) node[key] = plain(value);
  }
  return node as GraphNode;
}

/** The draft as `gorax/graph@1` JSON (nodes and edges in their stored order). */
export function docToGraph(doc: Y.Doc): Graph {
  const { meta, nodes, edges } = draftMaps(doc);
  const graph: Record<string, unknown> = {};
  for (const [key, value] of meta.entries()) graph[key] = plain(value);
  if (!("format" in graph)) graph.format = GRAPH_FORMAT;
  const nodeEntries = [...nodes.entries()].sort(
    ([a, am], [b, bm]) => order(am.get(ORDER_KEY)) - order(bm.get(ORDER_KEY)) || (a < b ? -1 : a > b ? 1 : 0),
  );
  graph.nodes = nodeEntries.map(([id, map]) => nodeFromMap(id, map));
  const edgeEntries = [...edges.entries()].sort(
    ([a, av], [b, bv]) => order(av[ORDER_KEY]) - order(bv[ORDER_KEY]) || (a < b ? -1 : a > b ? 1 : 0),
  );
  graph.edges = edgeEntries.map(([, value]) => {
    const { [ORDER_KEY]: _drop, ...edge } = value;
    return edge as GraphEdge;
  });
  return graph as Graph;
}

function setConfig(nodeMap: Y.Map<unknown>, config: unknown): void {
  const current = nodeMap.get("config");
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    // Not an object: keep it as it is so validation can name it instead of losing it.
    if (!sameJson(plain(current), config)) nodeMap.set("config", config);
    return;
  }
  let cfg: Y.Map<unknown>;
  if (current instanceof Y.Map) {
    cfg = current;
  } else {
    cfg = new Y.Map();
    nodeMap.set("config", cfg);
  }
  const wanted = config as Record<string, unknown>;
  for (const key of [...cfg.keys()]) if (!(key in wanted) || wanted[key] === undefined) cfg.delete(key);
  for (const [key, value] of Object.entries(wanted)) {
    if (value !== undefined && !sameJson(cfg.get(key), value)) cfg.set(key, value);
  }
}

/** Write one node's keys into its map, touching only what changed. */
export function writeNode(nodeMap: Y.Map<unknown>, node: GraphNode, index?: number): void {
  const wanted: Record<string, unknown> = { ...node };
  delete wanted.id;
  for (const key of [...nodeMap.keys()]) {
    if (key !== ORDER_KEY && (!(key in wanted) || wanted[key] === undefined)) nodeMap.delete(key);
  }
  for (const [key, value] of Object.entries(wanted)) {
    if (value === undefined) continue;
    if (key === "config") setConfig(nodeMap, value);
    else if (!sameJson(plain(nodeMap.get(key)), value)) nodeMap.set(key, value);
  }
  if (index !== undefined && nodeMap.get(ORDER_KEY) !== index) nodeMap.set(ORDER_KEY, index);
}

/**
 * Make the document hold `graph`, changing only what differs (so concurrent edits elsewhere in
 * the graph survive, and undo steps stay small). Runs in one transaction with `origin`.
 */
export function applyGraph(doc: Y.Doc, graph: Graph, origin: unknown = null): void {
  const { meta, nodes, edges } = draftMaps(doc);
  doc.transact(() => {
    const top: Record<string, unknown> = { ...graph, format: graph.format ?? GRAPH_FORMAT };
    delete top.nodes;
    delete top.edges;
    for (const key of [...meta.keys()]) if (!(key in top) || top[key] === undefined) meta.delete(key);
    for (const [key, value] of Object.entries(top)) {
      if (value !== undefined && !sameJson(plain(meta.get(key)), value)) meta.set(key, value as Json);
    }

    const wantedNodes = new Map((graph.nodes ?? []).map((n, i) => [n.id, { node: n, index: i }]));
    for (const id of [...nodes.keys()]) if (!wantedNodes.has(id)) nodes.delete(id);
    for (const [id, { node, index }] of wantedNodes) {
      let map = nodes.get(id);
      if (!(map instanceof Y.Map)) {
        map = new Y.Map();
        nodes.set(id, map);
      }
      writeNode(map, node, index);
    }

    const list = graph.edges ?? [];
    const keys = edgeKeys(list);
    const wantedEdges = new Map(keys.map((k, i) => [k, { ...list[i], [ORDER_KEY]: i }]));
    for (const key of [...edges.keys()]) if (!wantedEdges.has(key)) edges.delete(key);
    for (const [key, value] of wantedEdges) {
      if (!sameJson(edges.get(key), value)) edges.set(key, value);
    }
  }, origin);
}

/** The next free order index for a new node or edge. */
export function nextOrder(map: Y.Map<unknown>): number {
  let max = -1;
  for (const value of map.values()) {
    const i = value instanceof Y.Map ? value.get(ORDER_KEY) : (value as Record<string, unknown>)?.[ORDER_KEY];
    if (typeof i === "number" && i > max) max = i;
  }
  return max + 1;
}

/** A node id not yet used in the draft, derived from a type slug (`http.request` -> `request_2`). */
export function freshNodeId(taken: Iterable<string>, type: string): string {
  const used = new Set(taken);
  let base = (type.split(".").pop() ?? "node").toLowerCase().replace(/[^a-z0-9_]/g, "_");
  if (!/^[a-z]/.test(base)) base = "n_" + base;
  base = base.slice(0, 56);
  if (!used.has(base)) return base;
  for (let n = 2; ; n++) if (!used.has(`${base}_${n}`)) return `${base}_${n}`;
}

/** Add a node in the draft. */
export function addNode(doc: Y.Doc, node: GraphNode, origin: unknown = null): void {
  const { nodes } = draftMaps(doc);
  doc.transact(() => {
    const map = new Y.Map<unknown>();
    nodes.set(node.id, map);
    writeNode(map, node, nextOrder(nodes as Y.Map<unknown>));
  }, origin);
}

/** Add an edge unless the same connection exists; returns its key (or null when it existed). */
export function addEdge(doc: Y.Doc, edge: GraphEdge, origin: unknown = null): string | null {
  const { edges } = draftMaps(doc);
  const key = edgeBaseKey(edge);
  if (edges.has(key)) return null;
  doc.transact(() => edges.set(key, { ...edge, [ORDER_KEY]: nextOrder(edges as Y.Map<unknown>) }), origin);
  return key;
}

/** Delete nodes (and every edge touching them) and edges by key. */
export function removeElements(doc: Y.Doc, nodeIds: string[], edgeKeysToDrop: string[], origin: unknown = null): void {
  const { nodes, edges } = draftMaps(doc);
  const gone = new Set(nodeIds);
  doc.transact(() => {
    for (const id of nodeIds) nodes.delete(id);
    for (const [key, edge] of [...edges.entries()]) {
      if (edgeKeysToDrop.includes(key) || gone.has(edge.source as string) || gone.has(edge.target as string)) {
        edges.delete(key);
      }
    }
    // Loop bodies lose their parent with it rather than pointing at a missing node.
    for (const map of nodes.values()) if (gone.has(map.get("parentId") as string)) map.delete("parentId");
  }, origin);
}

/** Set one key of a node (`config` fields go through `setNodeConfigField`). */
export function setNodeField(doc: Y.Doc, id: string, key: string, value: unknown, origin: unknown = null): void {
  const map = draftMaps(doc).nodes.get(id);
  if (!map) return;
  doc.transact(() => {
    if (value === undefined || value === "") map.delete(key);
    else map.set(key, value);
  }, origin);
}

/** Set (or with `undefined`, clear) one top-level config field of a node. */
export function setNodeConfigField(doc: Y.Doc, id: string, field: string, value: unknown, origin: unknown = null): void {
  const map = draftMaps(doc).nodes.get(id);
  if (!map) return;
  doc.transact(() => {
    let cfg = map.get("config");
    if (!(cfg instanceof Y.Map)) {
      const prev = cfg && typeof cfg === "object" && !Array.isArray(cfg) ? (cfg as Record<string, unknown>) : {};
      cfg = new Y.Map(Object.entries(prev));
      map.set("config", cfg);
    }
    const c = cfg as Y.Map<unknown>;
    if (value === undefined) c.delete(field);
    else if (!sameJson(c.get(field), value)) c.set(field, value);
  }, origin);
}

/** Rename a node id everywhere it is referenced by structure (edges, loop bodies). */
export function renameNode(doc: Y.Doc, from: string, to: string, origin: unknown = null): boolean {
  const { nodes, edges } = draftMaps(doc);
  if (!nodes.has(from) || nodes.has(to)) return false;
  doc.transact(() => {
    const node = nodeFromMap(from, nodes.get(from)!);
    const index = nodes.get(from)!.get(ORDER_KEY) as number | undefined;
    nodes.delete(from);
    const map = new Y.Map<unknown>();
    nodes.set(to, map);
    writeNode(map, { ...node, id: to }, index);
    for (const [key, edge] of [...edges.entries()]) {
      if (edge.source !== from && edge.target !== from) continue;
      const next: Record<string, unknown> = { ...edge, source: edge.source === from ? to : edge.source, target: edge.target === from ? to : edge.target };
      edges.delete(key);
      edges.set(typeof next.id === "string" && next.id ? key : edgeBaseKey(next as unknown as GraphEdge), next);
    }
    for (const m of nodes.values()) if (m.get("parentId") === from) m.set("parentId", to);
  }, origin);
  return true;
}
