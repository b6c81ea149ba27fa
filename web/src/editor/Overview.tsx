/**
 * A large graph seen from far away: below OVERVIEW_ZOOM every node is a box and every edge a line
 * on one <canvas>, redrawn at most once a frame when the view or the graph changes, instead of
 * thousands of DOM nodes whose text could not be read anyway. Zooming in brings the real nodes
 * back (only those on screen are drawn). The canvas sits under React Flow's pane and takes no
 * input, so panning and zooming work as usual.
 */
import { useEffect, useRef } from "react";
import { Panel, useReactFlow, useStoreApi, type Edge, type InternalNode, type ReactFlowState } from "@xyflow/react";
import { NODE_SIZE, useEditor, type FlowNode } from "./store";

/** Below this zoom a large graph is drawn as an overview. */
export const OVERVIEW_ZOOM = 0.3;
/** Graphs with fewer nodes are always drawn as DOM nodes. */
export const OVERVIEW_MIN_NODES = 300;

export const STATUS_COLORS: Record<string, string> = { completed: "#2f9e44", failed: "#e03131", running: "#1c7ed6", skipped: "#adb5bd" };
const CATEGORY_COLORS: Record<string, string> = { trigger: "#7048e8", control: "#f08c00" };

/** The colour a node is shown in from afar: run status, then problems, then its category. */
export function nodeColor(data: FlowNode["data"], selected?: boolean): string {
  if (selected) return "#4263eb";
  return STATUS_COLORS[data.runStatus ?? ""] ?? (data.errors.length ? "#f59f00" : (CATEGORY_COLORS[data.info?.category ?? ""] ?? "#868e96"));
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

function box(node: InternalNode<FlowNode>): Box {
  const { x, y } = node.internals.positionAbsolute;
  return { x, y, w: node.measured?.width ?? node.initialWidth ?? NODE_SIZE.width, h: node.measured?.height ?? node.initialHeight ?? NODE_SIZE.height };
}

/**
 * Draw the nodes and edges of `state` that intersect the view onto `canvas`; returns how many
 * nodes were drawn.
 */
export function drawOverview(canvas: HTMLCanvasElement, state: Pick<ReactFlowState<FlowNode, Edge>, "transform" | "nodeLookup" | "width" | "height">, edges: Edge[]): number {
  const [tx, ty, k] = state.transform;
  const dpr = globalThis.devicePixelRatio || 1;
  const w = Math.round(state.width * dpr);
  const h = Math.round(state.height * dpr);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext("2d");
  if (!ctx) return 0;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.setTransform(dpr * k, 0, 0, dpr * k, dpr * tx, dpr * ty);
  const x0 = -tx / k;
  const y0 = -ty / k;
  const x1 = x0 + state.width / k;
  const y1 = y0 + state.height / k;

  const boxes = new Map<string, Box>();
  const byColor = new Map<string, Box[]>();
  for (const [id, node] of state.nodeLookup) {
    const b = box(node);
    boxes.set(id, b);
    if (b.x + b.w < x0 || b.x > x1 || b.y + b.h < y0 || b.y > y1) continue;
    const color = nodeColor(node.data, node.selected);
    const list = byColor.get(color);
    if (list) list.push(b);
    else byColor.set(color, [b]);
  }

  ctx.beginPath();
  for (const e of edges) {
    const s = boxes.get(e.source);
    const t = boxes.get(e.target);
    if (!s || !t) continue;
    const sx = s.x + s.w / 2;
    const sy = s.y + s.h;
    const ex = t.x + t.w / 2;
    const ey = t.y;
    if (Math.max(sx, ex) < x0 || Math.min(sx, ex) > x1 || Math.max(sy, ey) < y0 || Math.min(sy, ey) > y1) continue;
    ctx.moveTo(sx, sy);
    ctx.lineTo(ex, ey);
  }
  ctx.lineWidth = 1 / k;
  ctx.strokeStyle = "#adb5bd";
  ctx.stroke();

  let drawn = 0;
  for (const [color, list] of byColor) {
    ctx.beginPath();
    for (const b of list) ctx.rect(b.x, b.y, b.w, b.h);
    ctx.fillStyle = color;
    ctx.fill();
    drawn += list.length;
  }
  return drawn;
}

/** The overview canvas; `data-drawn` says how many nodes the last frame drew. */
export function Overview() {
  const store = useStoreApi<FlowNode, Edge>();
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    let frame = 0;
    let last: unknown[] = [];
    const paint = () => {
      frame = 0;
      const state = store.getState();
      const canvas = ref.current;
      // The edges are the editor's (React Flow gets none while the overview is shown).
      const { edges } = useEditor.getState();
      // nodeLookup changes in place; the user's node list is replaced whenever a node changes.
      const inputs = [state.transform, state.nodes, edges, state.width, state.height];
      if (!canvas || inputs.every((v, i) => v === last[i])) return;
      last = inputs;
      canvas.dataset.drawn = String(drawOverview(canvas, state, edges));
    };
    paint();
    const schedule = () => {
      if (!frame) frame = requestAnimationFrame(paint);
    };
    const unsubscribe = [store.subscribe(schedule), useEditor.subscribe(schedule)];
    return () => {
      for (const u of unsubscribe) u();
      cancelAnimationFrame(frame);
    };
  }, [store]);
  return <canvas ref={ref} className="overview" data-testid="overview" aria-hidden="true" />;
}

const MINI = { width: 200, height: 150, margin: 8 };

/** The transform that fits every node of `nodeLookup` into a `width` x `height` canvas. */
export function fitTransform(nodeLookup: Map<string, InternalNode<FlowNode>>, width: number, height: number, margin = 0): [number, number, number] {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const node of nodeLookup.values()) {
    const b = box(node);
    x0 = Math.min(x0, b.x);
    y0 = Math.min(y0, b.y);
    x1 = Math.max(x1, b.x + b.w);
    y1 = Math.max(y1, b.y + b.h);
  }
  if (!Number.isFinite(x0)) return [0, 0, 1];
  const k = Math.min((width - 2 * margin) / Math.max(1, x1 - x0), (height - 2 * margin) / Math.max(1, y1 - y0));
  return [(width - (x1 - x0) * k) / 2 - x0 * k, (height - (y1 - y0) * k) / 2 - y0 * k, k];
}

/**
 * The minimap of a large graph: the same drawing at a fixed scale with the view as a rectangle
 * (React Flow's minimap keeps one SVG element and one store subscription per node). A click
 * centres the view there.
 */
export function MiniOverview() {
  const store = useStoreApi<FlowNode, Edge>();
  const flow = useReactFlow<FlowNode, Edge>();
  const ref = useRef<HTMLCanvasElement>(null);
  const fit = useRef<[number, number, number]>([0, 0, 1]);
  useEffect(() => {
    let frame = 0;
    let last: unknown[] = [];
    const paint = () => {
      frame = 0;
      const state = store.getState();
      const canvas = ref.current;
      const inputs = [state.transform, state.nodes, state.width, state.height];
      if (!canvas || inputs.every((v, i) => v === last[i])) return;
      if (state.nodes !== last[1]) fit.current = fitTransform(state.nodeLookup, MINI.width, MINI.height, MINI.margin);
      last = inputs;
      canvas.dataset.drawn = String(drawOverview(canvas, { transform: fit.current, nodeLookup: state.nodeLookup, width: MINI.width, height: MINI.height }, []));
      const ctx = canvas.getContext("2d");
      const [tx, ty, k] = state.transform;
      if (!ctx || !k) return;
      ctx.strokeStyle = "#4263eb";
      ctx.lineWidth = 2 / fit.current[2];
      ctx.strokeRect(-tx / k, -ty / k, state.width / k, state.height / k);
    };
    paint();
    const schedule = () => {
      if (!frame) frame = requestAnimationFrame(paint);
    };
    const unsubscribe = store.subscribe(schedule);
    return () => {
      unsubscribe();
      cancelAnimationFrame(frame);
    };
  }, [store]);
  const onClick = (e: React.MouseEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    const [tx, ty, k] = fit.current;
    flow.setCenter((e.clientX - r.left - tx) / k, (e.clientY - r.top - ty) / k, { zoom: flow.getZoom() });
  };
  return (
    <Panel position="bottom-right">
      <canvas ref={ref} className="mini-overview" data-testid="mini-overview" role="img" aria-label="Minimap" style={{ width: MINI.width, height: MINI.height }} onClick={onClick} />
    </Panel>
  );
}
