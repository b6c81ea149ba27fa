import { describe, expect, it } from "vitest";
import type { Step } from "../api/types";
import { celPath, describe as describeValue, firstTable, jsonBytes, kindOf, matchingPaths, overlaysOf, pathKey, stepFor, tableOf } from "./dataView";

describe("celPath", () => {
  it("writes identifiers with dots, indexes and other keys in brackets", () => {
    expect(celPath(["steps", "fetch"], ["body", "items", 0, "sku"])).toBe("steps.fetch.body.items[0].sku");
    expect(celPath(["steps", "fetch"], ["headers", "content-type"])).toBe('steps.fetch.headers["content-type"]');
    expect(celPath(["steps", "x"], ["in", "2nd", 'say "hi"'])).toBe('steps.x["in"]["2nd"]["say \\"hi\\""]');
    expect(celPath(["steps", "x"], [])).toBe("steps.x");
  });
});

describe("types and sizes", () => {
  it("names JSON kinds, the mask included", () => {
    expect([null, true, 1, "a", [], {}, "***"].map(kindOf)).toEqual(["null", "boolean", "number", "string", "list", "map", "masked"]);
    expect(describeValue([1, 2, 3])).toBe("list · 3 items");
    expect(describeValue({ a: 1 })).toBe("map · 1 keys");
    expect(describeValue("héllo")).toBe("string · 5 chars");
    expect(jsonBytes({ a: "é" })).toBe(10);
  });
});

describe("tables", () => {
  it("takes the union of the objects' keys as columns", () => {
    expect(tableOf([{ a: 1 }, { b: 2, a: 3 }])).toEqual({ columns: ["a", "b"], rows: [{ a: 1 }, { b: 2, a: 3 }] });
    expect(tableOf([1, 2])).toBeNull();
    expect(tableOf([])).toBeNull();
    expect(tableOf([{ a: 1 }, [1]])).toBeNull();
  });
  it("finds a list of objects one field down", () => {
    expect(firstTable({ n: 1, items: [{ sku: "a" }] })?.path).toEqual(["items"]);
    expect(firstTable({ n: 1 })).toBeNull();
  });
});

describe("search", () => {
  it("keeps matching keys and values and their ancestors", () => {
    const hits = matchingPaths({ a: { sku: "x" }, b: [{ name: "widget" }], c: 3 }, "widg");
    expect(hits.has(pathKey(["b", 0, "name"]))).toBe(true);
    expect(hits.has(pathKey(["b", 0]))).toBe(true);
    expect(hits.has(pathKey(["b"]))).toBe(true);
    expect(hits.has(pathKey([]))).toBe(true);
    expect(hits.has(pathKey(["a"]))).toBe(false);
    expect(matchingPaths({ sku: 1 }, "SKU").has(pathKey(["sku"]))).toBe(true);
    expect(matchingPaths({ a: 1 }, " ").size).toBe(0);
  });
});

describe("overlays", () => {
  const step = (node_id: string, extra: Partial<Step>): Step => ({ node_id, status: "completed", duration_ms: 10, ...extra });
  it("gives each node its status, total duration and item count", () => {
    const steps = [
      step("fetch", { output: [1, 2, 3], duration_ms: 120 }),
      step("each", { output: { n: 1 }, iteration: [0], duration_ms: 5 }),
      step("each", { output: { n: 2 }, iteration: [1], duration_ms: 7 }),
      step("bad", { status: "failed", duration_ms: null, output: null }),
    ];
    expect(overlaysOf(steps)).toEqual({
      fetch: { status: "completed", durationMs: 120, items: 3 },
      each: { status: "completed", durationMs: 12, items: 2 },
      bad: { status: "failed", durationMs: null, items: null },
    });
    expect(stepFor(steps, "each")?.output).toEqual({ n: 2 });
    expect(stepFor(steps, "nope")).toBeNull();
  });
});
