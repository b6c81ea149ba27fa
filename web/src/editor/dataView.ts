/**
 * Pure helpers behind the data panel and the canvas overlays: the CEL path of a value in a
 * node's output, JSON types and sizes, the table view of a list of objects, search, and each
 * node's last status, duration and item count from a run's step records.
 */
import type { Step } from "../api/types";

export type PathPart = string | number;

/** The value the runtime writes in place of a secret (blocks/redact.py `MASK`). */
export const MASK = "***";

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CEL_RESERVED = new Set(["true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"]);

/** A path as CEL: `steps.fetch.body.items[0]["content-type"]`. */
export function celPath(root: PathPart[], path: PathPart[]): string {
  let out = "";
  for (const part of [...root, ...path]) {
    if (typeof part === "number") out += `[${part}]`;
    else if (IDENT.test(part) && !CEL_RESERVED.has(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

/** Where a node's output is in CEL scope. */
export function stepRoot(nodeId: string): PathPart[] {
  return ["steps", nodeId];
}

export type JsonKind = "null" | "boolean" | "number" | "string" | "list" | "map" | "masked";

export function kindOf(value: unknown): JsonKind {
  if (value === null || value === undefined) return "null";
  if (value === MASK) return "masked";
  if (Array.isArray(value)) return "list";
  if (typeof value === "object") return "map";
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return "number";
  return "string";
}

/** Bytes of the value as JSON (UTF-8). */
export function jsonBytes(value: unknown): number {
  const text = JSON.stringify(value ?? null) ?? "null";
  return new TextEncoder().encode(text).length;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A short description: `list · 3 items · 120 B`, `map · 2 keys`, `string · 12 chars`. */
export function describe(value: unknown): string {
  const kind = kindOf(value);
  if (kind === "list") return `list · ${(value as unknown[]).length} items`;
  if (kind === "map") return `map · ${Object.keys(value as object).length} keys`;
  if (kind === "string") return `string · ${(value as string).length} chars`;
  return kind;
}

/** Columns and rows when `value` is a non-empty list of objects (maps); null otherwise. */
export function tableOf(value: unknown): { columns: string[]; rows: Record<string, unknown>[] } | null {
  if (!Array.isArray(value) || value.length === 0) return null;
  if (!value.every((r) => r !== null && typeof r === "object" && !Array.isArray(r))) return null;
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const row of value as Record<string, unknown>[]) for (const k of Object.keys(row)) if (!seen.has(k)) (seen.add(k), columns.push(k));
  return { columns, rows: value as Record<string, unknown>[] };
}

/** The first list of objects in a value (the value itself, or a field of it, one level down). */
export function firstTable(value: unknown): { path: PathPart[]; table: NonNullable<ReturnType<typeof tableOf>> } | null {
  const own = tableOf(value);
  if (own) return { path: [], table: own };
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      const t = tableOf(v);
      if (t) return { path: [k], table: t };
    }
  }
  return null;
}

/** Paths (as `a.b[0]` keys) whose key or scalar value contains `query`, and their ancestors. */
export function matchingPaths(value: unknown, query: string): Set<string> {
  const found = new Set<string>();
  const needle = query.trim().toLowerCase();
  if (!needle) return found;
  const visit = (v: unknown, path: PathPart[]): boolean => {
    let hit = false;
    if (v !== null && typeof v === "object") {
      const entries: [PathPart, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
      for (const [k, child] of entries) {
        const keyHit = typeof k === "string" && k.toLowerCase().includes(needle);
        const childHit = visit(child, [...path, k]);
        if (keyHit) found.add(pathKey([...path, k]));
        hit = hit || keyHit || childHit;
      }
    } else if (v !== undefined && String(v).toLowerCase().includes(needle)) {
      found.add(pathKey(path));
      hit = true;
    }
    if (hit) found.add(pathKey(path));
    return hit;
  };
  visit(value, []);
  return found;
}

export function pathKey(path: PathPart[]): string {
  return JSON.stringify(path);
}

export interface NodeOverlay {
  status: string;
  durationMs: number | null;
  /** Items out: the output list's length, or the number of records (loop iterations). */
  items: number | null;
}

/** Each node's last status, total duration and item count in a run. */
export function overlaysOf(steps: Step[]): Record<string, NodeOverlay> {
  const by = new Map<string, Step[]>();
  for (const s of steps) by.set(s.node_id, [...(by.get(s.node_id) ?? []), s]);
  const out: Record<string, NodeOverlay> = {};
  for (const [id, records] of by) {
    const last = records[records.length - 1];
    const total = records.reduce<number | null>((sum, r) => (r.duration_ms == null ? sum : (sum ?? 0) + r.duration_ms), null);
    const top = records.filter((r) => !(r.iteration?.length));
    const main = top[top.length - 1] ?? last;
    const items = Array.isArray(main.output) ? main.output.length : records.length > 1 ? records.length : null;
    out[id] = { status: main.status, durationMs: total, items };
  }
  return out;
}

/** The record shown for a node: its last top-level one (a loop body's last iteration otherwise). */
export function stepFor(steps: Step[], nodeId: string): Step | null {
  const mine = steps.filter((s) => s.node_id === nodeId);
  const top = mine.filter((s) => !(s.iteration?.length));
  return top[top.length - 1] ?? mine[mine.length - 1] ?? null;
}

export function formatDuration(ms: number | null): string {
  if (ms == null) return "";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
