import { describe, expect, it } from "vitest";
import golden from "./handles.golden.json";
import { configHandles, hasInput, outputHandles } from "./handles";
import type { NodeTypeInfo } from "./types";

const info = (outputs: string[], extra: Partial<NodeTypeInfo> = {}): NodeTypeInfo => ({ type: "demo.t", version: 1, display_name: "T", category: "demo", description: "", outputs, credential_types: [], expression_fields: [], config_schema: {}, ...extra });

describe("configHandles (shared golden fixture, also run by pytest)", () => {
  for (const c of golden) {
    it(c.name, () => {
      expect(configHandles({ id: "n", type: c.type, config: c.config }, info(c.info.outputs, c.info))).toEqual(c.expected);
    });
  }
});

describe("outputHandles", () => {
  it("adds error when errors are routed", () => {
    expect(outputHandles({ id: "x", type: "demo.a", on_error: "route" }, info([]))).toEqual(["", "error"]);
    expect(outputHandles({ id: "x", type: "demo.b", on_error: "route" }, info(["true", "false"]))).toEqual(["true", "false", "error"]);
  });
  it("knows triggers take no input, from the catalogue", () => {
    expect(hasInput({ id: "t", type: "demo.start" }, info([], { is_trigger: true, category: "trigger" }))).toBe(false);
    expect(hasInput({ id: "x", type: "demo.step" }, info([]))).toBe(true);
  });
});
