import { describe, expect, it } from "vitest";
import { layeredLayout, layoutInWorker } from "./layout";
import type { Graph } from "./types";

describe("layeredLayout", () => {
  it("puts each node one layer below its deepest parent", () => {
    const g: Graph = {
      format: "gorax/graph@1",
      nodes: ["t", "a", "b", "m", "body"].map((id) => ({ id, type: "x" })).map((n) => (n.id === "body" ? { ...n, parentId: "a" } : n)),
      edges: [
        { source: "t", target: "a" },
        { source: "t", target: "m" },
        { source: "a", target: "b" },
        { source: "b", target: "m" },
      ],
    };
    const pos = layeredLayout(g, { layerGap: 100, nodeGap: 200 });
    expect(pos.t.y).toBe(0);
    expect(pos.a.y).toBe(100);
    expect(pos.b.y).toBe(200);
    expect(pos.m.y).toBe(300);
    expect(pos.body).toBeUndefined();
  });

  it("places cycles after the rest instead of looping", () => {
    const g: Graph = { format: "gorax/graph@1", nodes: [{ id: "a", type: "x" }, { id: "b", type: "x" }], edges: [{ source: "a", target: "b" }, { source: "b", target: "a" }] };
    const pos = layeredLayout(g);
    expect(Object.keys(pos).sort()).toEqual(["a", "b"]);
  });

  it("spreads siblings apart", () => {
    const g: Graph = { format: "gorax/graph@1", nodes: [{ id: "t", type: "x" }, { id: "a", type: "x" }, { id: "b", type: "x" }], edges: [{ source: "t", target: "a" }, { source: "t", target: "b" }] };
    const pos = layeredLayout(g, { nodeGap: 200 });
    expect(Math.abs(pos.a.x - pos.b.x)).toBe(200);
  });
});

describe("layoutInWorker", () => {
  it("gives the same positions as layeredLayout (here without workers: in place)", async () => {
    const nodes = Array.from({ length: 3000 }, (_, i) => ({ id: `n${i}`, type: "x" }));
    const g: Graph = { format: "gorax/graph@1", nodes, edges: nodes.slice(1).map((n, i) => ({ source: `n${i}`, target: n.id })) };
    const pos = await layoutInWorker(g);
    expect(pos).toEqual(layeredLayout(g));
    expect(pos.n2999).toEqual({ x: 0, y: 2999 * 150 });
  });
});
