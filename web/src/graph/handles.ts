/** The output handles a node offers, mirroring each node type's `handles_for(config)` on the server. */
import type { GraphNode, NodeTypeInfo } from "./types";

function caseKeys(cases: unknown): string[] {
  if (Array.isArray(cases)) {
    return cases
      .map((c) => (c && typeof c === "object" ? ((c as Record<string, unknown>).key ?? (c as Record<string, unknown>).value ?? (c as Record<string, unknown>).name) : c))
      .filter((k): k is string | number => typeof k === "string" || typeof k === "number")
      .map(String);
  }
  if (cases && typeof cases === "object") return Object.keys(cases);
  return [];
}

/**
 * Named output handles of `node` (empty: one unnamed main output). `error` is added when the
 * node routes its errors.
 */
export function outputHandles(node: GraphNode, info: NodeTypeInfo | undefined): string[] {
  const config = (node.config ?? {}) as Record<string, unknown>;
  let handles: string[];
  if (node.type === "control.switch") {
    handles = [...caseKeys(config.cases), "default"];
  } else if (node.type === "human.approval") {
    handles = caseKeys(config.options);
    if (!handles.length) handles = info?.outputs ?? [];
  } else {
    handles = info?.outputs ?? [];
  }
  handles = [...new Set(handles)];
  if (node.on_error === "route" && !handles.includes("error")) {
    return handles.length ? [...handles, "error"] : ["", "error"];
  }
  return handles;
}

/** Whether a node takes incoming edges (triggers do not). */
export function hasInput(node: GraphNode, info: NodeTypeInfo | undefined): boolean {
  return !(info?.category === "trigger" || node.type.startsWith("trigger."));
}
