import { describe, expect, it } from "vitest";
import { layeredLayout } from "./layout";
import { outputHandles, hasInput } from "./handles";
import type { Graph, NodeTypeInfo } from "./types";

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

describe("outputHandles", () => {
  const info = (outputs: string[], category = "control"): NodeTypeInfo => ({ type: "t", version: 1, display_name: "T", category, description: "", outputs, credential_types: [], expression_fields: [], config_schema: {} });

  it("uses the catalogue outputs", () => {
    expect(outputHandles({ id: "c", type: "control.condition" }, info(["true", "false"]))).toEqual(["true", "false"]);
  });
  it("derives switch cases and default", () => {
    expect(outputHandles({ id: "s", type: "control.switch", config: { cases: [{ key: "a", expression: "x" }, { key: "b", expression: "y" }] } }, info([]))).toEqual(["a", "b", "default"]);
    expect(outputHandles({ id: "s", type: "control.switch", config: { cases: { hi: "x" } } }, info([]))).toEqual(["hi", "default"]);
  });
  it("derives approval options", () => {
    expect(outputHandles({ id: "h", type: "human.approval", config: { options: [{ label: "Yes", value: "approved" }, { label: "No", value: "rejected" }] } }, info([]))).toEqual(["approved", "rejected"]);
  });
  it("adds error when errors are routed", () => {
    expect(outputHandles({ id: "x", type: "http.request", on_error: "route" }, info([]))).toEqual(["", "error"]);
    expect(outputHandles({ id: "x", type: "control.condition", on_error: "route" }, info(["true", "false"]))).toEqual(["true", "false", "error"]);
  });
  it("knows triggers take no input", () => {
    expect(hasInput({ id: "t", type: "trigger.manual" }, info([], "trigger"))).toBe(false);
    expect(hasInput({ id: "x", type: "http.request" }, info([]))).toBe(true);
  });
});
