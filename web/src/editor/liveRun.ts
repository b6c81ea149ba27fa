/** Live node states of a run from `WS /api/v1/executions/{id}/events`, with polling as a fallback. */
import { api, wsUrl } from "../api/client";
import type { ExecutionDetail } from "../api/types";

export interface NodeEvent {
  node_id?: string;
  status?: string;
  at?: string;
  attempt?: number;
  error?: unknown;
  type?: string;
}

const FINAL = new Set(["completed", "failed", "cancelled", "crashed", "timed_out"]);

/**
 * Call `onEvent` for each node state change and `onEnd` with the run's final status.
 * Returns a function that stops listening.
 */
export function subscribeExecution(id: string, onEvent: (e: NodeEvent) => void, onEnd: (status: string) => void): () => void {
  let closed = false;
  let ended = false;
  let poll: ReturnType<typeof setInterval> | null = null;
  const finish = (status: string) => {
    if (ended) return;
    ended = true;
    onEnd(status);
    stop();
  };
  const startPolling = () => {
    if (poll || closed) return;
    poll = setInterval(async () => {
      try {
        const run = await api<ExecutionDetail>(`/executions/${id}`);
        for (const s of run.steps ?? []) onEvent({ node_id: s.node_id, status: s.status, attempt: s.attempts, error: s.error });
        if (FINAL.has(run.status)) finish(run.status);
      } catch {
        /* keep polling: the run may not be visible yet */
      }
    }, 1000);
  };
  const ws = new WebSocket(wsUrl(`/executions/${encodeURIComponent(id)}/events`));
  ws.onmessage = (msg) => {
    let e: NodeEvent;
    try {
      e = JSON.parse(String(msg.data));
    } catch {
      return;
    }
    if (e.type === "run") {
      if (e.status && FINAL.has(e.status)) finish(e.status);
      else onEvent(e);
    } else onEvent(e);
  };
  ws.onerror = () => startPolling();
  ws.onclose = () => {
    if (!ended) startPolling();
  };
  function stop() {
    closed = true;
    if (poll) clearInterval(poll);
    if (ws.readyState <= WebSocket.OPEN) ws.close();
  }
  return () => {
    ended = true;
    stop();
  };
}
