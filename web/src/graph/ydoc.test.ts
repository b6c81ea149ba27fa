import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { addEdge, addNode, applyGraph, docToGraph, edgeKeys, freshNodeId, isInitialized, removeElements, renameNode, setNodeConfigField } from "./ydoc";
import type { Graph } from "./types";

const examplesDir = join(__dirname, "../../../tests/examples");
const examples: [string, Graph][] = (() => {
  try {
    return readdirSync(examplesDir)
      .filter((f) => f.endsWith(".json"))
      .map((f) => [f, JSON.parse(readFileSync(join(examplesDir, f), "utf8")) as Graph]);
  } catch {
    return [];
  }
})();

const sample: Graph = {
  format: "gorax/graph@1",
  name: "sample",
  description: "all the fields",
  settings: { timeout_seconds: 3600, max_parallel: 16 },
  x_extra: { kept: true },
  nodes: [
    { id: "hook", type: "trigger.webhook", position: { x: 0, y: 0 }, config: { signature: { scheme: "hmac-sha256", secret: "s" } } },
    { id: "ok", type: "control.condition", version: 1, position: { x: 0, y: 150 }, config: { expression: "trigger.body.ok" }, on_error: "route", disabled: false },
    { id: "a", type: "http.request", name: "A", parentId: "ok", config: { method: "GET", url: "{{ env.U }}", headers: { x: "1" } }, retry: { attempts: 3, backoff: "exponential" }, timeout_seconds: 30, custom: [1, 2] },
    { id: "bare", type: "data.transform" },
    { id: "odd", type: "data.transform", config: ["not", "an", "object"] as never },
  ],
  edges: [
    { id: "e1", source: "hook", target: "ok" },
    { source: "ok", sourceHandle: "true", target: "a" },
    { source: "ok", sourceHandle: "true", target: "a" },
    { source: "ok", target: "bare", label: "extra key" },
  ],
};

function roundTrip(graph: Graph): Graph {
  const doc = new Y.Doc();
  applyGraph(doc, graph);
  // Through an update, as another client would receive it.
  const other = new Y.Doc();
  Y.applyUpdate(other, Y.encodeStateAsUpdate(doc));
  return docToGraph(other);
}

describe("graph <-> Y.Doc", () => {
  it("round-trips every field, in order", () => {
    expect(roundTrip(sample)).toEqual(sample);
  });

  it.each(examples)("round-trips example %s", (_name, graph) => {
    expect(roundTrip(graph)).toEqual(graph);
  });

  it("has examples to check", () => {
    expect(examples.length).toBeGreaterThan(0);
  });

  it("applies only the difference", () => {
    const doc = new Y.Doc();
    applyGraph(doc, sample);
    const updates: Uint8Array[] = [];
    doc.on("update", (u: Uint8Array) => updates.push(u));
    applyGraph(doc, sample);
    expect(updates).toHaveLength(0);
    const changed = structuredClone(sample);
    changed.nodes[2].config!.url = "https://x";
    changed.nodes.splice(3, 1);
    changed.edges.pop();
    applyGraph(doc, changed);
    expect(updates).toHaveLength(1);
    expect(docToGraph(doc)).toEqual(changed);
  });

  it("merges concurrent edits of different config fields of one node", () => {
    const a = new Y.Doc();
    applyGraph(a, sample);
    const b = new Y.Doc();
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
    setNodeConfigField(a, "a", "method", "POST");
    setNodeConfigField(b, "a", "url", "https://b");
    Y.applyUpdate(a, Y.encodeStateAsUpdate(b));
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
    expect(docToGraph(a)).toEqual(docToGraph(b));
    const node = docToGraph(a).nodes.find((n) => n.id === "a")!;
    expect(node.config).toMatchObject({ method: "POST", url: "https://b" });
  });

  it("converges when two clients seed the same graph at once", () => {
    const a = new Y.Doc();
    const b = new Y.Doc();
    applyGraph(a, sample);
    applyGraph(b, sample);
    Y.applyUpdate(a, Y.encodeStateAsUpdate(b));
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
    expect(docToGraph(a)).toEqual(sample);
    expect(docToGraph(b)).toEqual(sample);
  });

  it("edits nodes and edges", () => {
    const doc = new Y.Doc();
    expect(isInitialized(doc)).toBe(false);
    applyGraph(doc, { format: "gorax/graph@1", nodes: [], edges: [] });
    expect(isInitialized(doc)).toBe(true);
    addNode(doc, { id: "t", type: "trigger.manual", position: { x: 0, y: 0 }, config: {} });
    addNode(doc, { id: "x", type: "data.transform", position: { x: 0, y: 100 }, config: {} });
    expect(addEdge(doc, { source: "t", target: "x" })).toBe("t>x");
    expect(addEdge(doc, { source: "t", target: "x" })).toBeNull();
    expect(renameNode(doc, "x", "y")).toBe(true);
    let g = docToGraph(doc);
    expect(g.nodes.map((n) => n.id)).toEqual(["t", "y"]);
    expect(g.edges).toEqual([{ source: "t", target: "y" }]);
    removeElements(doc, ["t"], []);
    g = docToGraph(doc);
    expect(g.nodes.map((n) => n.id)).toEqual(["y"]);
    expect(g.edges).toEqual([]);
  });

  it("keys edges without ids apart", () => {
    expect(edgeKeys([{ source: "a", target: "b" }, { source: "a", target: "b" }, { id: "e", source: "a", target: "b" }, { source: "a", target: "b", sourceHandle: "true" }])).toEqual([
      "a>b",
      "a>b~2",
      "e",
      "a>b#true",
    ]);
  });

  it("makes fresh node ids", () => {
    expect(freshNodeId([], "http.request")).toBe("request");
    expect(freshNodeId(["request", "request_2"], "http.request")).toBe("request_3");
    expect(freshNodeId([], "x.2fa")).toBe("n_2fa");
  });
});
