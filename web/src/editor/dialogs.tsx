/** Publish and run dialogs, and the draft push/validate calls they share with the toolbar. */
import { useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { api, ApiError } from "../api/client";
import type { Workflow } from "../api/types";
import { ErrorBox, Modal, useAction } from "../components/common";
import type { Graph, GraphError, JsonSchema, NodeTypeInfo } from "../graph/types";
import { SchemaForm } from "./SchemaForm";

/**
 * Make sure the API holds this draft before validating, publishing or running. The API reads the
 * same collaborative document, so this is usually a no-op write; it also covers an API that keeps
 * its own copy.
 */
export async function pushDraft(workflowId: string, graph: Graph): Promise<void> {
  const res = await api<Response>(`/workflows/${workflowId}`, { raw: true });
  const current = (await res.json()) as Workflow;
  const etag = res.headers.get("ETag") ?? current.etag;
  if (JSON.stringify(current.graph) === JSON.stringify(graph)) return;
  await api(`/workflows/${workflowId}`, { method: "PUT", body: { graph, name: current.name }, headers: etag ? { "If-Match": etag } : {} });
}

/** Server validation; returns the errors (empty when valid). */
export async function validateDraft(workflowId: string, graph: Graph): Promise<GraphError[]> {
  try {
    const res = await api<{ valid: boolean; errors: GraphError[] }>(`/workflows/${workflowId}/validate`, { body: { graph } });
    return res.valid ? [] : res.errors ?? [];
  } catch (e) {
    if (e instanceof ApiError && e.errors.length) return e.errors as unknown as GraphError[];
    throw e;
  }
}

export function PublishDialog({ workflowId, graph, onClose, onErrors, onPublished }: { workflowId: string; graph: Graph; onClose: () => void; onErrors: (e: GraphError[]) => void; onPublished: (version: number) => void }) {
  const [message, setMessage] = useState("");
  const [run, busy, error] = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    run(async () => {
      try {
        await pushDraft(workflowId, graph);
        const res = await api<Record<string, unknown>>(`/workflows/${workflowId}/publish`, { body: { message } });
        onErrors([]);
        onPublished(Number(res.version ?? res.number ?? 0));
      } catch (err) {
        if (err instanceof ApiError && err.errors.length) onErrors(err.errors as unknown as GraphError[]);
        throw err;
      }
    });
  };
  return (
    <Modal title="Publish a version" onClose={onClose}>
      <form onSubmit={submit} className="form">
        <label>
          What changed?
          <textarea value={message} onChange={(e) => setMessage(e.target.value)} rows={3} placeholder="e.g. page on-call only for production" />
        </label>
        <ErrorBox error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Publishing…" : "Publish"}
        </button>
      </form>
    </Modal>
  );
}

/** The input schema of the graph's default trigger (the one a manual run fires), if any. */
export function triggerInputSchema(graph: Graph, catalogue: NodeTypeInfo[]): JsonSchema | null {
  const fires = new Set(catalogue.filter((c) => c.fires_by_default).map((c) => c.type));
  const trigger = graph.nodes.find((n) => fires.has(n.type));
  const schema = trigger?.config?.input_schema;
  return schema && typeof schema === "object" ? (schema as JsonSchema) : null;
}

export function RunDialog({ workflowId, graph, catalogue, onClose, onStarted }: { workflowId: string; graph: Graph; catalogue: NodeTypeInfo[]; onClose: () => void; onStarted: (executionId: string) => void }) {
  const schema = triggerInputSchema(graph, catalogue);
  const structured = !!schema?.properties && Object.keys(schema.properties).length > 0;
  const [input, setInput] = useState<Record<string, unknown>>({});
  const [raw, setRaw] = useState("{}");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    let value: unknown = input;
    if (!structured) {
      try {
        value = raw.trim() ? JSON.parse(raw) : {};
      } catch (err) {
        return setError(new Error(`Input is not JSON: ${(err as Error).message}`));
      }
    }
    setBusy(true);
    try {
      const res = await api<{ execution_id: string }>(`/workflows/${workflowId}/execute`, { body: { input: value } });
      onStarted(res.execution_id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal title="Run the published version" onClose={onClose}>
      <form onSubmit={submit} className="form" aria-label="Run input">
        {structured ? (
          <SchemaForm schema={schema!} value={input} onFieldChange={(name, v) => setInput((cur) => { const next = { ...cur, [name]: v }; if (v === undefined) delete next[name]; return next; })} />
        ) : (
          <label>
            Input (JSON)
            <textarea className="code" rows={6} value={raw} onChange={(e) => setRaw(e.target.value)} />
          </label>
        )}
        <p className="muted small">Runs the latest published version. Publish first to run your latest changes.</p>
        <ErrorBox error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Starting…" : "Run"}
        </button>
      </form>
    </Modal>
  );
}

export function RunBanner({ executionId, status, onClose }: { executionId: string; status: string; onClose: () => void }) {
  return (
    <div className={`run-banner status-${status}`} role="status" data-testid="run-banner" data-status={status}>
      Run <Link to={`/runs/${executionId}`}>{executionId.slice(0, 8)}</Link>: <strong>{status}</strong>
      <button className="link" onClick={onClose}>
        Clear
      </button>
    </div>
  );
}
