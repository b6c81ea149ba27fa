import { describe, expect, it } from "vitest";
import { ancestorsOf, applySuggestion, contextAt, suggest, type AssistData } from "./expressionAssist";

const graph = {
  nodes: [{ id: "start", type: "t" }, { id: "fetch", type: "t" }, { id: "loop", type: "t" }, { id: "body", type: "t", parentId: "loop" }, { id: "side", type: "t" }, { id: "end", type: "t" }],
  edges: [
    { source: "start", target: "fetch" },
    { source: "fetch", target: "loop" },
    { source: "start", target: "side" },
    { source: "loop", target: "end" },
  ],
};

describe("ancestorsOf", () => {
  it("lists upstream nodes only, in graph order, a loop body seeing its loop's", () => {
    expect(ancestorsOf(graph, "end")).toEqual(["start", "fetch", "loop"]);
    expect(ancestorsOf(graph, "body")).toEqual(["start", "fetch", "loop"]);
    expect(ancestorsOf(graph, "start")).toEqual([]);
  });
});

describe("contextAt", () => {
  it("finds the name being typed and the path before it", () => {
    expect(contextAt("steps.fe", 8, false)).toEqual({ path: ["steps"], partial: "fe", start: 6 });
    expect(contextAt("size(steps.fetch.", 17, false)).toEqual({ path: ["steps", "fetch"], partial: "", start: 17 });
    expect(contextAt("tr", 2, false)).toEqual({ path: [], partial: "tr", start: 0 });
    expect(contextAt("x == 'steps.", 12, false)).toBeNull(); // inside a string
    expect(contextAt("a[0].", 5, false)).toBeNull();
  });
  it("only inside an open template in a template field", () => {
    expect(contextAt("Hello steps.", 12, true)).toBeNull();
    expect(contextAt("Hello {{ steps.", 15, true)).toEqual({ path: ["steps"], partial: "", start: 15 });
    expect(contextAt("{{ a }} steps.", 14, true)).toBeNull();
  });
});

describe("suggest", () => {
  const data: AssistData = {
    upstream: [
      { id: "fetch", output: { status: 200, body: { items: [1] } }, schema: null },
      { id: "check", output: undefined, schema: { type: "object", properties: { result: { type: "boolean" } } } },
    ],
    trigger: { name: "Ada" },
  };
  it("offers scope roots, upstream ids, then fields from the run or the schema", () => {
    expect(suggest({ path: [], partial: "st", start: 0 }, data).map((s) => s.label)).toEqual(["steps"]);
    expect(suggest({ path: ["steps"], partial: "", start: 0 }, data).map((s) => s.label)).toEqual(["fetch", "check"]);
    expect(suggest({ path: ["steps", "fetch"], partial: "", start: 0 }, data)).toEqual([
      { label: "status", detail: "number" },
      { label: "body", detail: "map" },
    ]);
    expect(suggest({ path: ["steps", "fetch", "body"], partial: "it", start: 0 }, data)).toEqual([{ label: "items", detail: "list(1)" }]);
    expect(suggest({ path: ["steps", "check"], partial: "", start: 0 }, data)).toEqual([{ label: "result", detail: "boolean" }]);
    expect(suggest({ path: ["trigger"], partial: "", start: 0 }, data).map((s) => s.label)).toEqual(["name"]);
    expect(suggest({ path: ["steps", "ghost"], partial: "", start: 0 }, data)).toEqual([]);
    // A name typed out in full needs no list.
    expect(suggest({ path: ["steps"], partial: "fetch", start: 0 }, data)).toEqual([]);
  });
  it("puts the choice in place of the partial name", () => {
    const ctx = contextAt("size(steps.fe) > 0", 13, false)!;
    expect(applySuggestion("size(steps.fe) > 0", ctx, 13, "fetch")).toEqual({ text: "size(steps.fetch) > 0", caret: 16 });
  });
});
