import { describe, expect, it } from "vitest";
import { chooseAll, chooseTool, isChosen, listRequest, mcpSources } from "./mcpTools";

const CONFIG = {
  credential: "llm",
  tools: [
    { kind: "node", type: "x.y", name: "n" },
    { kind: "mcp", server: { url: "http://127.0.0.1:9/mcp" }, credential: "desk", prefix: "d_" },
    { kind: "mcp", server: { stdio: "local" }, tools: ["b"] },
    { kind: "mcp", server: {} },
    "not a source",
  ],
};

describe("mcpSources", () => {
  it("finds the MCP sources that name a server, with their position", () => {
    expect(mcpSources(CONFIG)).toEqual([
      { index: 1, server: { url: "http://127.0.0.1:9/mcp" }, credential: "desk", tools: undefined },
      { index: 2, server: { stdio: "local" }, credential: undefined, tools: ["b"] },
    ]);
    expect(mcpSources({})).toEqual([]);
    expect(mcpSources(undefined)).toEqual([]);
    expect(mcpSources({ tools: "x" })).toEqual([]);
  });

  it("builds the route's request from the server and credential only", () => {
    const [a, b] = mcpSources(CONFIG);
    expect(listRequest(a)).toEqual({ server: { url: "http://127.0.0.1:9/mcp" }, credential: "desk" });
    expect(listRequest(b)).toEqual({ server: { stdio: "local" } });
  });
});

describe("choosing tools", () => {
  it("treats no list as every tool chosen", () => {
    expect(isChosen(undefined, "a")).toBe(true);
    expect(isChosen(["b"], "a")).toBe(false);
    expect(isChosen(["b"], "b")).toBe(true);
  });

  it("unchecking from all writes the others in the server's order", () => {
    const next = chooseTool(CONFIG.tools, 1, ["a", "b", "c"], "b", false);
    expect(next[1]).toEqual({ ...CONFIG.tools[1], tools: ["a", "c"] });
    expect(next[0]).toBe(CONFIG.tools[0]);
    expect(CONFIG.tools[1]).not.toHaveProperty("tools");
  });

  it("checking adds in the server's order and keeps names the server no longer lists", () => {
    const tools = [{ kind: "mcp", server: { url: "u" }, tools: ["gone", "c"] }];
    expect((chooseTool(tools, 0, ["a", "b", "c"], "a", true)[0] as { tools: string[] }).tools).toEqual(["a", "c", "gone"]);
    expect((chooseTool(tools, 0, ["a", "b", "c"], "c", false)[0] as { tools: string[] }).tools).toEqual(["gone"]);
  });

  it("back to all removes the list; a wrong index is refused", () => {
    expect(chooseAll(CONFIG.tools, 2)[2]).toEqual({ kind: "mcp", server: { stdio: "local" } });
    expect(() => chooseTool(CONFIG.tools, 4, [], "a", true)).toThrow("tools[4] is not an MCP source");
  });
});
