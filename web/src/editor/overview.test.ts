import { describe, expect, it, vi } from "vitest";
import type { Edge, InternalNode } from "@xyflow/react";
import type { FlowNode } from "./store";

// The editor's store reaches the API client, which reads the chosen tenant from localStorage.
vi.stubGlobal("localStorage", { getItem: () => null, setItem: () => undefined, removeItem: () => undefined });
const { drawOverview, fitTransform, nodeColor } = await import("./Overview");
const { estimatedHandles } = await import("./store");

/** A 2D context that records what was drawn. */
function recorder() {
  const calls: { op: string; args: unknown[]; fillStyle?: string }[] = [];
  const ctx: Record<string, unknown> = { fillStyle: "", strokeStyle: "", lineWidth: 1 };
  for (const op of ["setTransform", "clearRect", "beginPath", "moveTo", "lineTo", "stroke", "rect", "fill"]) {
    ctx[op] = (...args: unknown[]) => calls.push({ op, args, fillStyle: ctx.fillStyle as string });
  }
  const canvas = { width: 0, height: 0, getContext: () => ctx } as unknown as HTMLCanvasElement;
  return { canvas, calls };
}

function node(id: string, x: number, y: number, extra: Partial<FlowNode["data"]> = {}): InternalNode<FlowNode> {
  return {
    id,
    type: "gorax",
    position: { x, y },
    data: { node: { id, type: "data.transform" }, handles: [], input: true, errors: [], remote: [], ...extra },
    measured: { width: 200, height: 60 },
    internals: { positionAbsolute: { x, y }, z: 0, userNode: {} as FlowNode },
  } as InternalNode<FlowNode>;
}

describe("drawOverview", () => {
  it("draws the nodes and edges in view and nothing else", () => {
    const { canvas, calls } = recorder();
    const nodeLookup = new Map([
      ["a", node("a", 0, 0)],
      ["b", node("b", 0, 200, { runStatus: "failed" })],
      ["far", node("far", 50_000, 50_000)],
    ]);
    const edges: Edge[] = [
      { id: "ab", source: "a", target: "b" },
      { id: "bfar", source: "b", target: "far" }, // leaves the view but starts in it: drawn
      { id: "gone", source: "a", target: "missing" },
    ];
    // 1000x800 px at zoom 0.5: flow x -100..1900, y -100..1500.
    const drawn = drawOverview(canvas, { transform: [50, 50, 0.5], nodeLookup, width: 1000, height: 800 } as never, edges);
    expect(drawn).toBe(2);
    expect(canvas.width).toBe(1000);
    const rects = calls.filter((c) => c.op === "rect").map((c) => c.args);
    expect(rects).toEqual([
      [0, 0, 200, 60],
      [0, 200, 200, 60],
    ]);
    // Failed nodes are filled in the run colour, the others in their own.
    const fills = calls.filter((c) => c.op === "fill").map((c) => c.fillStyle);
    expect(fills).toContain(nodeColor(nodeLookup.get("b")!.data));
    expect(fills).toHaveLength(2);
    const lines = calls.filter((c) => c.op === "moveTo").map((c) => c.args);
    expect(lines).toEqual([
      [100, 60],
      [100, 260],
    ]);
  });

  it("draws nothing when the view is elsewhere", () => {
    const { canvas, calls } = recorder();
    const nodeLookup = new Map([["a", node("a", 0, 0)]]);
    const drawn = drawOverview(canvas, { transform: [-100_000, -100_000, 1], nodeLookup, width: 800, height: 600 } as never, []);
    expect(drawn).toBe(0);
    expect(calls.some((c) => c.op === "rect")).toBe(false);
  });
});

describe("estimatedHandles", () => {
  it("spreads the outputs along the bottom and puts the input on top", () => {
    const hs = estimatedHandles(["true", "false"], true, 200, 60);
    expect(hs).toEqual([
      { id: "true", type: "source", position: "bottom", x: 47, y: 57, width: 6, height: 6 },
      { id: "false", type: "source", position: "bottom", x: 147, y: 57, width: 6, height: 6 },
      { id: null, type: "target", position: "top", x: 97, y: -3, width: 6, height: 6 },
    ]);
  });

  it("gives a trigger one unnamed output and no input", () => {
    expect(estimatedHandles([], false, 200, 60)).toEqual([{ id: null, type: "source", position: "bottom", x: 97, y: 57, width: 6, height: 6 }]);
  });
});

describe("fitTransform", () => {
  it("fits every node into the minimap, centred", () => {
    const nodeLookup = new Map([
      ["a", node("a", 0, 0)],
      ["b", node("b", 1800, 540)],
    ]);
    // The graph is 2000 x 600: the width decides the scale.
    const [tx, ty, k] = fitTransform(nodeLookup, 200, 150);
    expect(k).toBeCloseTo(0.1);
    expect(tx).toBeCloseTo(0);
    expect(ty).toBeCloseTo((150 - 60) / 2);
  });

  it("leaves an empty graph at scale 1", () => {
    expect(fitTransform(new Map(), 200, 150)).toEqual([0, 0, 1]);
  });
});
