/**
 * The draft's test loop in the editor: pins (the document's top-level `pins` map, written through
 * the API so they are checked against what the node returns), test runs of the draft, and the
 * workflow's tests (the graph's `tests` list, kept in `meta.tests` of the document).
 */
import { useEffect, useState } from "react";
import * as Y from "yjs";
import { create } from "zustand";
import { api } from "../api/client";
import { docToGraph, draftMaps } from "../graph/ydoc";
import { pushDraft } from "./dialogs";

export interface Pin {
  output: unknown;
  source: "run" | "manual";
  run_id?: string;
  pinned_by?: string | null;
  pinned_at?: string;
}

export interface TestStep {
  node_id: string;
  status: string;
  output: unknown;
  error: { message?: string } | null;
  iteration: number[];
}

export interface TestRun {
  execution_id: string;
  status: string;
  node_id: string | null;
  mode: string;
  output: unknown;
  error: string | null;
  fixtures: string[];
  last_run: string | null;
  /** The run whose trigger input this one was given (none was sent). */
  trigger_from?: string | null;
  steps: TestStep[];
}

export interface WorkflowTest {
  id: string;
  name?: string;
  input?: unknown;
  mocks?: Record<string, { output?: unknown; error?: string }>;
  assertions: Array<{ name?: string; expr: string }>;
}

export interface AssertionResult {
  name: string;
  expr: string;
  passed: boolean;
  actual: unknown;
  expected: unknown;
  error: string | null;
}

export interface CaseResult {
  id: string;
  name: string;
  passed: boolean;
  status: string;
  execution_id: string | null;
  assertions: AssertionResult[];
  error: string | null;
  duration_ms: number | null;
}

/** Pins of the open draft by node id (the canvas badge reads it). */
export const usePins = create<{ pins: Record<string, Pin>; set: (pins: Record<string, Pin>) => void }>((set) => ({
  pins: {},
  set: (pins) => set({ pins }),
}));

/** Keep `usePins` in step with the document's `pins` map while the editor is open. */
export function useFollowPins(doc: Y.Doc | null | undefined): void {
  useEffect(() => {
    if (!doc) return;
    const map = doc.getMap("pins");
    const update = () => usePins.getState().set(map.toJSON() as Record<string, Pin>);
    update();
    map.observe(update);
    return () => {
      map.unobserve(update);
      usePins.getState().set({});
    };
  }, [doc]);
}

/** Outputs of the last test run started from this editor, by node id. */
export const useLastTestRun = create<{ run: TestRun | null; set: (run: TestRun | null) => void }>((set) => ({
  run: null,
  set: (run) => set({ run }),
}));

export async function pinOutput(workflowId: string, nodeId: string, body: { output?: unknown; source: "run" | "manual"; run_id?: string }): Promise<Pin> {
  return api<Pin>(`/workflows/${workflowId}/pins/${nodeId}`, { method: "PUT", body });
}

export async function unpin(workflowId: string, nodeId: string): Promise<void> {
  await api(`/workflows/${workflowId}/pins/${nodeId}`, { method: "DELETE" });
}

/** Start a test run of the draft (the API first holds what this editor has) and wait for it. */
export async function startTestRun(workflowId: string, doc: Y.Doc, body: { node_id?: string; mode: "node" | "until" | "all"; input?: unknown }): Promise<TestRun> {
  await pushDraft(workflowId, docToGraph(doc));
  return api<TestRun>(`/workflows/${workflowId}/test-runs`, { body: { ...body, wait: true } });
}

export async function runTests(workflowId: string, doc: Y.Doc, ids?: string[]): Promise<{ passed: boolean; total: number; failed: number; tests: CaseResult[] }> {
  await pushDraft(workflowId, docToGraph(doc));
  return api(`/workflows/${workflowId}/tests/run`, { body: ids ? { ids } : {} });
}

/** The draft's tests, live. */
export function useTests(doc: Y.Doc): WorkflowTest[] {
  const read = () => {
    const value = draftMaps(doc).meta.get("tests");
    return Array.isArray(value) ? (value as WorkflowTest[]) : [];
  };
  const [tests, setTests] = useState<WorkflowTest[]>(read);
  useEffect(() => {
    const meta = draftMaps(doc).meta;
    const update = () => setTests(read());
    meta.observe(update);
    return () => meta.unobserve(update);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [doc]);
  return tests;
}

/** Replace the draft's tests (one transaction, undoable like any edit). */
export function writeTests(doc: Y.Doc, tests: WorkflowTest[], origin: unknown): void {
  doc.transact(() => {
    const meta = draftMaps(doc).meta;
    if (tests.length) meta.set("tests", tests);
    else meta.delete("tests");
  }, origin);
}
