/**
 * Editor state: React Flow nodes and edges derived from the Yjs draft, plus what is local to this
 * browser (selection, measured sizes, validation errors, live run states, the catalogue).
 */
import { applyEdgeChanges, applyNodeChanges, Position, type Edge, type EdgeChange, type Node, type NodeChange, type NodeHandle } from "@xyflow/react";
import { create } from "zustand";
import type * as Y from "yjs";
import { checkCel, checkTemplate } from "../graph/cel";
import { outputHandles, hasInput } from "../graph/handles";
import type { Graph, GraphError, GraphNode, NodeTypeInfo } from "../graph/types";
import { docToGraph } from "../graph/ydoc";
import { LOCAL, type DraftSession, type Presence } from "./collab";

export interface NodeData extends Record<string, unknown> {
  node: GraphNode;
  info?: NodeTypeInfo;
  handles: string[];
  input: boolean;
  errors: string[];
  runStatus?: string;
  attempt?: number;
  remote: { name: string; color: string }[];
}

export type FlowNode = Node<NodeData, "gorax">;

/** A node's size before the browser has measured it (`.gx-node` in styles.css). */
export const NODE_SIZE = { width: 200, height: 56, errorLine: 16 };

/**
 * Where a node's handles will be, before the node has been drawn: with these (and an initial
 * size) React Flow can leave off-screen nodes undrawn from the start and still route the edges
 * that reach them. Once a node is drawn its measured handles take over.
 */
export function estimatedHandles(handles: string[], input: boolean, width: number, height: number): NodeHandle[] {
  const outs = handles.length ? handles : [""];
  const out: NodeHandle[] = outs.map((h, i) => ({ id: h || null, type: "source", position: Position.Bottom, x: ((i + 0.5) / outs.length) * width - 3, y: height - 3, width: 6, height: 6 }));
  if (input) out.push({ id: null, type: "target", position: Position.Top, x: width / 2 - 3, y: -3, width: 6, height: 6 });
  return out;
}

/** Errors the client finds itself: CEL syntax in expression fields and templates. */
export function localErrors(node: GraphNode, info?: NodeTypeInfo): GraphError[] {
  const out: GraphError[] = [];
  const patterns = (info?.expression_fields ?? []).map((f) => f.split("."));
  // `*` stands for one map key (a list index is a literal value, not an expression).
  const isBare = (path: string[]) => patterns.some((p) => p.length === path.length && p.every((seg, i) => seg === path[i] || (seg === "*" && !/^\d+$/.test(path[i]))));
  const visit = (value: unknown, path: string[]) => {
    if (typeof value === "string") {
      const problem = isBare(path) ? checkCel(value) : checkTemplate(value);
      if (problem) out.push({ node_id: node.id, field: path[0], path: ["config", ...path], code: "cel_syntax", message: `${problem.message} (at ${problem.offset})` });
    } else if (Array.isArray(value)) value.forEach((v, i) => visit(v, [...path, String(i)]));
    else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) visit(v, [...path, k]);
  };
  visit(node.config ?? {}, []);
  if (!info) out.push({ node_id: node.id, field: "type", code: "unknown_type", message: `unknown node type ${node.type}` });
  return out;
}

/** The top-level config field an error refers to, or "" for the node itself. */
export function errorField(e: GraphError): string {
  const path = Array.isArray(e.path) ? e.path.map(String) : typeof e.path === "string" ? e.path.split(/[./]/).filter(Boolean) : [];
  if (path[0] === "config" || path[0] === "nodes") {
    const i = path[0] === "nodes" ? path.indexOf("config") : 0;
    if (i >= 0 && path[i + 1]) return path[i + 1];
  }
  if (e.field) return String(e.field).replace(/^config\./, "").split(".")[0];
  return path[0] ?? "";
}

interface EditorState {
  session: DraftSession | null;
  readOnly: boolean;
  catalogue: NodeTypeInfo[];
  graph: Graph | null;
  nodes: FlowNode[];
  edges: Edge[];
  serverErrors: GraphError[];
  runStates: Record<string, { status: string; attempt?: number; error?: unknown }>;
  presence: Presence[];
  connection: string;
  attach: (session: DraftSession, readOnly: boolean) => void;
  setCatalogue: (c: NodeTypeInfo[]) => void;
  setServerErrors: (e: GraphError[]) => void;
  setRunState: (nodeId: string, state: { status: string; attempt?: number; error?: unknown } | null) => void;
  clearRun: () => void;
  refresh: () => void;
  refreshPresence: () => void;
  onNodesChange: (changes: NodeChange<FlowNode>[]) => void;
  onEdgesChange: (changes: EdgeChange[]) => void;
  selectedIds: () => string[];
}

const signatures = new Map<string, string>();
let lastSelections = "";

function infoFor(catalogue: NodeTypeInfo[], node: GraphNode): NodeTypeInfo | undefined {
  const matches = catalogue.filter((c) => c.type === node.type);
  if (node.version != null) return matches.find((c) => c.version === node.version);
  return matches.sort((a, b) => b.version - a.version)[0];
}

export const useEditor = create<EditorState>((set, get) => ({
  session: null,
  readOnly: true,
  catalogue: [],
  graph: null,
  nodes: [],
  edges: [],
  serverErrors: [],
  runStates: {},
  presence: [],
  connection: "connecting",
  attach(session, readOnly) {
    signatures.clear();
    lastSelections = "";
    set({ session, readOnly, graph: null, nodes: [], edges: [], serverErrors: [], runStates: {}, presence: [] });
  },
  setCatalogue(catalogue) {
    set({ catalogue });
    get().refresh();
  },
  setServerErrors(serverErrors) {
    set({ serverErrors });
    get().refresh();
  },
  setRunState(nodeId, state) {
    const runStates = { ...get().runStates };
    if (state) runStates[nodeId] = state;
    else delete runStates[nodeId];
    set({ runStates });
    get().refresh();
  },
  clearRun() {
    set({ runStates: {} });
    get().refresh();
  },
  /** Rebuild the flow from the document, keeping local state (selection, sizes) of each node. */
  refresh() {
    const { session, catalogue, serverErrors, runStates, nodes: prevNodes, edges: prevEdges } = get();
    if (!session) return;
    const graph = docToGraph(session.doc);
    const presence = session.others();
    const prev = new Map(prevNodes.map((n) => [n.id, n]));
    const prevEdge = new Map(prevEdges.map((e) => [e.id, e]));
    const ids = new Set(graph.nodes.map((n) => n.id));
    const remoteSel = new Map<string, { name: string; color: string }[]>();
    for (const p of presence) for (const id of p.selected ?? []) remoteSel.set(id, [...(remoteSel.get(id) ?? []), { name: p.name, color: p.color }]);
    const errorsBy = new Map<string, string[]>();
    for (const e of serverErrors) if (e.node_id) errorsBy.set(e.node_id, [...(errorsBy.get(e.node_id) ?? []), e.message]);

    // React Flow wants parents before their children.
    const loopChildren = new Map<string, GraphNode[]>();
    for (const n of graph.nodes) if (n.parentId && ids.has(n.parentId)) loopChildren.set(n.parentId, [...(loopChildren.get(n.parentId) ?? []), n]);
    const ordered = [...graph.nodes].sort((a, b) => Number(!!a.parentId && ids.has(a.parentId)) - Number(!!b.parentId && ids.has(b.parentId)));

    const nodes: FlowNode[] = ordered.map((n) => {
      const info = infoFor(catalogue, n);
      const old = prev.get(n.id);
      const local = localErrors(n, info).map((e) => e.message);
      const errors = [...(errorsBy.get(n.id) ?? []), ...local];
      const run = runStates[n.id];
      const data: NodeData = { node: n, info, handles: outputHandles(n, info), input: hasInput(n, info), errors, runStatus: run?.status, attempt: run?.attempt, remote: remoteSel.get(n.id) ?? [] };
      const kids = loopChildren.get(n.id);
      let style: FlowNode["style"] | undefined;
      const isLoop = !!info?.has_body || !!kids?.length;
      if (isLoop) {
        // A loop is a frame its body nodes sit in (and can be dropped into).
        const w = Math.max(300, ...(kids ?? []).map((k) => (k.position?.x ?? 0) + 240));
        const h = Math.max(180, ...(kids ?? []).map((k) => (k.position?.y ?? 0) + 110));
        style = { width: w, height: h };
      }
      const position = old?.dragging ? old.position : { x: n.position?.x ?? 0, y: n.position?.y ?? 0 };
      // Unchanged nodes keep their object, so React Flow re-renders only what changed.
      const sig = JSON.stringify([n, info?.type, info?.version, errors, run, data.remote, style, get().readOnly]);
      if (old && signatures.get(n.id) === sig && !old.dragging) return old;
      signatures.set(n.id, sig);
      const width = style?.width ? Number(style.width) : NODE_SIZE.width;
      const height = style?.height ? Number(style.height) : NODE_SIZE.height + (errors.length ? NODE_SIZE.errorLine : 0);
      const next: FlowNode = {
        ...(old ?? {}),
        initialWidth: width,
        initialHeight: height,
        // Measured nodes use the handles React Flow found in the page.
        handles: old?.measured ? undefined : estimatedHandles(data.handles, data.input, width, height),
        id: n.id,
        type: "gorax",
        position,
        data,
        parentId: n.parentId && ids.has(n.parentId) ? n.parentId : undefined,
        extent: undefined,
        style,
        className: isLoop ? "loop-group" : undefined,
        draggable: !get().readOnly,
        connectable: !get().readOnly,
      };
      return next;
    });
    for (const id of signatures.keys()) if (!ids.has(id)) signatures.delete(id);
    const edges: Edge[] = [];
    const keys = [...session.doc.getMap("edges").keys()];
    const byKey = session.doc.getMap<Record<string, unknown>>("edges");
    for (const key of keys) {
      const e = byKey.get(key)!;
      const handle = (e.sourceHandle as string | undefined) ?? undefined;
      const old = prevEdge.get(key);
      const bad = serverErrors.some((x) => x.edge_id === key || (x.edge_id && x.edge_id === e.id));
      const className = [handle === "error" ? "edge-error-route" : "", bad ? "edge-invalid" : ""].join(" ").trim() || undefined;
      const animated = runStates[String(e.source)]?.status === "running";
      if (old && old.source === e.source && old.target === e.target && (old.sourceHandle ?? undefined) === handle && old.className === className && !!old.animated === animated && old.deletable === !get().readOnly) {
        edges.push(old);
        continue;
      }
      edges.push({
        ...(old ?? {}),
        id: key,
        source: String(e.source),
        target: String(e.target),
        sourceHandle: handle ?? null,
        label: handle,
        className,
        animated,
        deletable: !get().readOnly,
      });
    }
    set({ graph, nodes, edges, presence });
  },
  /** Awareness changed: update who is here; rebuild nodes only if remote selections moved. */
  refreshPresence() {
    const { session } = get();
    if (!session) return;
    const presence = session.others();
    const selections = JSON.stringify(presence.map((p) => [p.clientId, p.name, p.color, p.selected ?? []]));
    if (selections !== lastSelections) {
      lastSelections = selections;
      get().refresh();
    } else if (JSON.stringify(presence) !== JSON.stringify(get().presence)) set({ presence });
  },
  onNodesChange(changes) {
    const { session, readOnly } = get();
    const allowed = readOnly ? changes.filter((c) => c.type === "select" || c.type === "dimensions") : changes;
    let nodes = applyNodeChanges(allowed, get().nodes);
    // A node drawn and measured for the first time: its real handles replace the estimate.
    const measured = new Set(allowed.flatMap((c) => (c.type === "dimensions" ? [c.id] : [])));
    if (measured.size) nodes = nodes.map((n) => (measured.has(n.id) && n.handles ? { ...n, handles: undefined } : n));
    set({ nodes });
    if (!session || readOnly) {
      if (changes.some((c) => c.type === "select")) session?.setSelected(nodes.filter((n) => n.selected).map((n) => n.id));
      return;
    }
    const ended = changes.filter((c) => c.type === "position" && !c.dragging && c.position);
    if (ended.length) {
      const map = session.doc.getMap("nodes");
      session.doc.transact(() => {
        for (const c of ended) {
          if (c.type !== "position" || !c.position) continue;
          const m = map.get(c.id) as Y.Map<unknown> | undefined;
          m?.set("position", { x: Math.round(c.position.x), y: Math.round(c.position.y) });
        }
      }, LOCAL);
    }
    if (changes.some((c) => c.type === "select")) session.setSelected(nodes.filter((n) => n.selected).map((n) => n.id));
  },
  onEdgesChange(changes) {
    const allowed = get().readOnly ? changes.filter((c) => c.type === "select") : changes.filter((c) => c.type !== "remove");
    set({ edges: applyEdgeChanges(allowed, get().edges) });
  },
  selectedIds() {
    return get()
      .nodes.filter((n) => n.selected)
      .map((n) => n.id);
  },
}));

