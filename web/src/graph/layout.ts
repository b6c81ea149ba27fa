/** Auto-layout: layers by longest path from the triggers, nodes spread evenly inside each layer. */
import type { Graph, Position } from "./types";

export interface LayoutOptions {
  layerGap?: number;
  nodeGap?: number;
}

/**
 * Positions for the top-level nodes of `graph` (loop bodies keep their positions relative to
 * their loop). Cycles are invalid graphs; their nodes are placed after the acyclic part.
 */
export function layeredLayout(graph: Graph, options: LayoutOptions = {}): Record<string, Position> {
  const layerGap = options.layerGap ?? 150;
  const nodeGap = options.nodeGap ?? 240;
  const top = graph.nodes.filter((n) => !n.parentId).map((n) => n.id);
  const topSet = new Set(top);
  const incoming = new Map<string, string[]>(top.map((id) => [id, []]));
  const outgoing = new Map<string, string[]>(top.map((id) => [id, []]));
  for (const e of graph.edges) {
    if (topSet.has(e.source) && topSet.has(e.target) && e.source !== e.target) {
      outgoing.get(e.source)!.push(e.target);
      incoming.get(e.target)!.push(e.source);
    }
  }
  // Kahn's algorithm; depth = longest path from a source.
  const depth = new Map<string, number>();
  const remaining = new Map(top.map((id) => [id, incoming.get(id)!.length]));
  const queue = top.filter((id) => remaining.get(id) === 0);
  for (const id of queue) depth.set(id, 0);
  for (let head = 0; head < queue.length; head++) {
    const id = queue[head];
    for (const next of outgoing.get(id)!) {
      depth.set(next, Math.max(depth.get(next) ?? 0, depth.get(id)! + 1));
      remaining.set(next, remaining.get(next)! - 1);
      if (remaining.get(next) === 0) queue.push(next);
    }
  }
  let maxDepth = -1;
  for (const d of depth.values()) if (d > maxDepth) maxDepth = d;
  for (const id of top) if (!depth.has(id)) depth.set(id, maxDepth + 1);

  const layers = new Map<number, string[]>();
  for (const id of top) {
    const d = depth.get(id)!;
    if (!layers.has(d)) layers.set(d, []);
    layers.get(d)!.push(id);
  }
  // Order each layer by the mean x-order of its parents to reduce crossings.
  const xOrder = new Map<string, number>();
  const positions: Record<string, Position> = {};
  for (const d of [...layers.keys()].sort((a, b) => a - b)) {
    const ids = layers.get(d)!;
    const score = (id: string) => {
      const ps = incoming.get(id)!.filter((p) => xOrder.has(p));
      return ps.length ? ps.reduce((s, p) => s + xOrder.get(p)!, 0) / ps.length : 0;
    };
    ids.sort((a, b) => score(a) - score(b));
    ids.forEach((id, i) => {
      xOrder.set(id, i - (ids.length - 1) / 2);
      positions[id] = { x: Math.round((i - (ids.length - 1) / 2) * nodeGap), y: d * layerGap };
    });
  }
  return positions;
}

/** A layout request to the worker (layout.worker.ts). */
export interface LayoutRequest {
  id: number;
  graph: Graph;
  options?: LayoutOptions;
}

type LayoutReply = { id: number; positions: Record<string, Position> } | { id: number; error: string };

let worker: Worker | null = null;
let nextRequest = 0;
const pending = new Map<number, { resolve: (p: Record<string, Position>) => void; reject: (e: Error) => void }>();

function layoutWorker(): Worker | null {
  if (worker || typeof Worker === "undefined") return worker;
  worker = new Worker(new URL("./layout.worker.ts", import.meta.url), { type: "module" });
  worker.onmessage = (event: MessageEvent<LayoutReply>) => {
    const reply = event.data;
    const waiting = pending.get(reply.id);
    pending.delete(reply.id);
    if (!waiting) return;
    if ("error" in reply) waiting.reject(new Error(`auto-layout failed: ${reply.error}`));
    else waiting.resolve(reply.positions);
  };
  worker.onerror = (event) => {
    for (const waiting of pending.values()) waiting.reject(new Error(`auto-layout failed: ${event.message}`));
    pending.clear();
    worker?.terminate();
    worker = null;
  };
  return worker;
}

/**
 * `layeredLayout` in a Web Worker, so laying out thousands of nodes leaves the editor responsive
 * (where there are no workers, as in unit tests, it runs here).
 */
export function layoutInWorker(graph: Graph, options: LayoutOptions = {}): Promise<Record<string, Position>> {
  const w = layoutWorker();
  if (!w) return Promise.resolve(layeredLayout(graph, options));
  const id = nextRequest++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.postMessage({ id, graph, options } satisfies LayoutRequest);
  });
}
