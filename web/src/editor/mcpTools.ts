/** The MCP tool sources of a node's config (`tools: [{kind: "mcp", server, credential?, tools?}]`) and the choice of their tools. */

export interface McpServer {
  url?: string;
  stdio?: string;
}

export interface McpSource {
  /** Position in the config's `tools` list. */
  index: number;
  server: McpServer;
  credential?: string;
  /** The chosen tool names; undefined: all of the server's tools. */
  tools?: string[];
}

/** The request body of `POST /mcp/tools` for a source: only the server and credential the route accepts. */
export function listRequest(source: McpSource): { server: McpServer; credential?: string } {
  const server: McpServer = source.server.url != null ? { url: source.server.url } : { stdio: source.server.stdio };
  return source.credential ? { server, credential: source.credential } : { server };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

/** The MCP sources in `config.tools` that name a server (url or stdio). */
export function mcpSources(config: Record<string, unknown> | undefined): McpSource[] {
  const tools = config?.tools;
  if (!Array.isArray(tools)) return [];
  const out: McpSource[] = [];
  tools.forEach((t, index) => {
    if (!isObject(t) || t.kind !== "mcp" || !isObject(t.server)) return;
    const url = typeof t.server.url === "string" && t.server.url ? t.server.url : undefined;
    const stdio = typeof t.server.stdio === "string" && t.server.stdio ? t.server.stdio : undefined;
    if (!url && !stdio) return;
    out.push({
      index,
      server: url ? { url } : { stdio },
      credential: typeof t.credential === "string" && t.credential ? t.credential : undefined,
      tools: Array.isArray(t.tools) ? t.tools.filter((n): n is string => typeof n === "string") : undefined,
    });
  });
  return out;
}

/** Whether a tool is chosen: every tool is when the source names none. */
export function isChosen(chosen: string[] | undefined, name: string): boolean {
  return chosen === undefined || chosen.includes(name);
}

/**
 * The config's new `tools` list with one tool of source `index` chosen or not. `listed` is the
 * server's tool names in its order: the chosen names keep that order, followed by any chosen
 * names the server no longer lists (kept, so the server's validation names them).
 */
export function chooseTool(configTools: unknown[], index: number, listed: string[], name: string, on: boolean): unknown[] {
  const source = configTools[index];
  if (!isObject(source)) throw new Error(`tools[${index}] is not an MCP source`);
  const before = Array.isArray(source.tools) ? source.tools.filter((n): n is string => typeof n === "string") : listed;
  const set = new Set(before);
  if (on) set.add(name);
  else set.delete(name);
  const chosen = [...listed.filter((n) => set.has(n)), ...before.filter((n) => set.has(n) && !listed.includes(n))];
  const next = [...configTools];
  next[index] = { ...source, tools: chosen };
  return next;
}

/** The config's new `tools` list with source `index` back to all of its server's tools. */
export function chooseAll(configTools: unknown[], index: number): unknown[] {
  const source = configTools[index];
  if (!isObject(source)) throw new Error(`tools[${index}] is not an MCP source`);
  const rest = { ...source };
  delete rest.tools;
  const next = [...configTools];
  next[index] = rest;
  return next;
}
