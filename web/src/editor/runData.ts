/**
 * The data of one past run of the open workflow: its step records by node and each node's
 * overlay (last status, duration, item count). One fetch per run picked, never per node: the
 * canvas nodes read their overlay from the map keyed by node id.
 */
import { create } from "zustand";
import { api } from "../api/client";
import type { Execution, Step } from "../api/types";
import { overlaysOf, type NodeOverlay } from "./dataView";

interface RunDataState {
  workflowId: string | null;
  /** The run shown (null: none picked; the newest is picked when the runs are listed). */
  executionId: string | null;
  runs: Execution[];
  steps: Step[];
  trigger: unknown;
  overlay: Record<string, NodeOverlay>;
  loading: boolean;
  error: unknown;
  attach: (workflowId: string) => void;
  /** List the workflow's recent runs; pick the newest when nothing is picked. */
  loadRuns: () => Promise<void>;
  select: (executionId: string | null) => Promise<void>;
}

const EMPTY = { executionId: null, runs: [], steps: [], trigger: undefined, overlay: {}, loading: false, error: null };

export const useRunData = create<RunDataState>((set, get) => ({
  workflowId: null,
  ...EMPTY,
  attach(workflowId) {
    set({ workflowId, ...EMPTY });
  },
  async loadRuns() {
    const wf = get().workflowId;
    if (!wf) return;
    try {
      const page = await api<{ items: Execution[] }>("/executions", { query: { workflow_id: wf, limit: 20 } });
      if (get().workflowId !== wf) return;
      set({ runs: page.items });
      if (!get().executionId && page.items.length) await get().select(page.items[0].id);
    } catch (error) {
      set({ error });
    }
  },
  async select(executionId) {
    if (!executionId) return set({ executionId: null, steps: [], trigger: undefined, overlay: {} });
    const wf = get().workflowId;
    set({ executionId, loading: true, error: null });
    try {
      const run = await api<Execution & { steps: Step[]; input?: unknown }>(`/executions/${encodeURIComponent(executionId)}`);
      if (get().executionId !== executionId || get().workflowId !== wf) return;
      const runs = get().runs.some((r) => r.id === run.id) ? get().runs : [run, ...get().runs];
      set({ steps: run.steps ?? [], trigger: run.input, overlay: overlaysOf(run.steps ?? []), runs, loading: false });
    } catch (error) {
      if (get().executionId === executionId) set({ error, loading: false });
    }
  },
}));
