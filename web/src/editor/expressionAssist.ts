/**
 * Autocomplete for expressions and templates: the scope's names, the node's upstream node ids
 * (graph ancestors only, as validation allows) and the fields of their outputs, learnt from the
 * last run's data or the node type's declared output schema.
 */
import type { Graph, JsonSchema } from "../graph/types";

export const SCOPE_ROOTS = ["trigger", "steps", "env", "loop", "workflow", "run"];

/** Every node with a path to `nodeId` (a body node also sees what its loop sees). */
export function ancestorsOf(graph: Pick<Graph, "nodes" | "edges">, nodeId: string): string[] {
  const incoming = new Map<string, string[]>();
  for (const e of graph.edges) incoming.set(e.target, [...(incoming.get(e.target) ?? []), e.source]);
  const parent = new Map(graph.nodes.map((n) => [n.id, n.parentId]));
  const seen = new Set<string>();
  const todo = [nodeId];
  while (todo.length) {
    const id = todo.pop()!;
    const sources = [...(incoming.get(id) ?? [])];
    const p = parent.get(id);
    if (p) sources.push(p);
    for (const s of sources) if (!seen.has(s)) (seen.add(s), todo.push(s));
  }
  seen.delete(nodeId);
  const order = new Map(graph.nodes.map((n, i) => [n.id, i]));
  return [...seen].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
}

export interface CompletionContext {
  /** The dotted names before the one being typed (`["steps", "fetch"]`). */
  path: string[];
  /** What is typed of the current name. */
  partial: string;
  /** Offset where `partial` starts. */
  start: number;
}

/** The name being typed at `caret`, or null (in a string, outside `{{ }}` in a template...). */
export function contextAt(text: string, caret: number, template: boolean): CompletionContext | null {
  const before = text.slice(0, caret);
  let from = 0;
  if (template) {
    const open = before.lastIndexOf("{{");
    if (open < 0 || before.lastIndexOf("}}") > open) return null;
    from = open + 2;
  }
  const segment = before.slice(from);
  // Inside a string literal: no names there.
  const quotes = (segment.match(/(?<!\\)["']/g) ?? []).length;
  if (quotes % 2 === 1) return null;
  const m = /(^|[^A-Za-z0-9_.\]])((?:[A-Za-z_][A-Za-z0-9_]*\.)*)([A-Za-z_][A-Za-z0-9_]*)?$/.exec(segment);
  if (!m) return null;
  const chain = m[2] ? m[2].slice(0, -1).split(".") : [];
  const partial = m[3] ?? "";
  if (!chain.length && !partial) return null;
  return { path: chain, partial, start: caret - partial.length };
}

export interface Suggestion {
  label: string;
  detail: string;
}

export interface AssistData {
  /** Upstream node ids with their last output (undefined: not in the run) and declared schema. */
  upstream: { id: string; label?: string; output?: unknown; schema?: JsonSchema | null }[];
  trigger?: unknown;
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return `list(${v.length})`;
  if (typeof v === "object") return "map";
  return typeof v;
}

function keysOfValue(value: unknown, path: string[]): Suggestion[] | null {
  let v = value;
  for (const p of path) {
    if (v && typeof v === "object" && !Array.isArray(v) && p in (v as object)) v = (v as Record<string, unknown>)[p];
    else return null;
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) return null;
  return Object.entries(v as Record<string, unknown>).map(([k, x]) => ({ label: k, detail: typeName(x) }));
}

function keysOfSchema(schema: JsonSchema | null | undefined, path: string[]): Suggestion[] | null {
  let s = schema;
  for (const p of path) s = s?.properties?.[p];
  if (!s?.properties) return null;
  return Object.entries(s.properties).map(([k, x]) => ({ label: k, detail: (Array.isArray(x.type) ? x.type.join("|") : x.type) ?? x.description ?? "" }));
}

/** Suggestions for the context, filtered by what is typed, best first. */
export function suggest(ctx: CompletionContext, data: AssistData): Suggestion[] {
  const [root, ...rest] = ctx.path;
  let all: Suggestion[] = [];
  if (!root) all = SCOPE_ROOTS.map((r) => ({ label: r, detail: "scope" }));
  else if (root === "steps" && rest.length === 0) all = data.upstream.map((u) => ({ label: u.id, detail: u.label && u.label !== u.id ? u.label : "node" }));
  else if (root === "steps") {
    const node = data.upstream.find((u) => u.id === rest[0]);
    if (node) all = (node.output !== undefined ? keysOfValue(node.output, rest.slice(1)) : null) ?? keysOfSchema(node.schema, rest.slice(1)) ?? [];
  } else if (root === "trigger") all = keysOfValue(data.trigger, rest) ?? [];
  const needle = ctx.partial.toLowerCase();
  const starts = all.filter((s) => s.label.toLowerCase().startsWith(needle));
  const contains = all.filter((s) => !s.label.toLowerCase().startsWith(needle) && s.label.toLowerCase().includes(needle));
  const out = [...starts, ...contains];
  // Nothing left to offer once the name is typed out in full.
  return out.length === 1 && out[0].label === ctx.partial ? [] : out.slice(0, 50);
}

/** The text with the suggestion in place of the partial name, and the caret after it. */
export function applySuggestion(text: string, ctx: CompletionContext, caret: number, label: string): { text: string; caret: number } {
  const next = text.slice(0, ctx.start) + label + text.slice(caret);
  return { text: next, caret: ctx.start + label.length };
}
