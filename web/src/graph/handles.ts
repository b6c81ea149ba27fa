/**
 * The output handles a node offers, computed from the node type's catalogue entry the same way
 * the server does (`NodeType.handles_for` and `handles_at` in translator/nodetypes.py); the rule
 * is pinned by the shared fixture `handles.golden.json`, run by pytest and vitest.
 */
import type { GraphNode, NodeTypeInfo } from "./types";

/** A value as a handle name (null: it cannot name one). */
export function handleText(value: unknown): string | null {
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : null;
  if (typeof value === "string") return value;
  return null;
}

/** The handle names at `path` in `config` (`cases.*`, `options.*.value`); `*` is each key of a map or item of a list. */
export function handlesAt(config: Record<string, unknown>, path: string, fallback: string[] = []): string[] {
  const [root, ...rest] = path.split(".");
  if (!(root in config)) return fallback;
  let values: unknown[] = [config[root]];
  for (const part of rest) {
    const found: unknown[] = [];
    for (const value of values) {
      if (part === "*") {
        if (Array.isArray(value)) found.push(...value);
        else if (value && typeof value === "object") found.push(...Object.keys(value));
      } else if (value && typeof value === "object" && !Array.isArray(value) && part in value) {
        found.push((value as Record<string, unknown>)[part]);
      }
    }
    values = found;
  }
  const names = values.map(handleText).filter((h): h is string => h !== null);
  return [...new Set(names)];
}

/** The handles the node type offers with this config (before error routing). */
export function configHandles(node: GraphNode, info: NodeTypeInfo | undefined): string[] {
  const config = (node.config ?? {}) as Record<string, unknown>;
  const computed = info?.handles_from ? handlesAt(config, info.handles_from, info.handles_default ?? []) : [];
  return [...new Set([...computed, ...(info?.outputs ?? [])])];
}

/**
 * Named output handles of `node` (empty: one unnamed main output). `error` is added when the
 * node routes its errors.
 */
export function outputHandles(node: GraphNode, info: NodeTypeInfo | undefined): string[] {
  const handles = configHandles(node, info);
  if (node.on_error === "route" && !handles.includes("error")) {
    return handles.length ? [...handles, "error"] : ["", "error"];
  }
  return handles;
}

/** Whether a node takes incoming edges (triggers do not). */
export function hasInput(_node: GraphNode, info: NodeTypeInfo | undefined): boolean {
  return !(info?.is_trigger ?? info?.category === "trigger");
}
