import { useEffect, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { api, type Page } from "../api/client";
import type { Execution, ExecutionDetail, Step } from "../api/types";
import { Gantt } from "../components/charts";
import { duration, ErrorBox, Json, Loading, Status, useAction, useAsync, when } from "../components/common";
import { can, useSession } from "../session";
import { subscribeExecution } from "../editor/liveRun";
import { RunCost } from "../components/Costs";
import { RunLogs } from "../components/RunLogs";
import { TraceId } from "../components/Telemetry";

const STATUSES = ["", "running", "completed", "failed", "cancelled", "crashed", "paused", "pending", "timed_out"];

export function RunList() {
  const [params, setParams] = useSearchParams();
  const workflowId = params.get("workflow_id") ?? "";
  const status = params.get("status") ?? "";
  const [cursor, setCursor] = useState<string | null>(null);
  const { data, error, loading, reload } = useAsync(() => api<Page<Execution>>("/executions", { query: { workflow_id: workflowId, status, limit: 50, cursor } }), [workflowId, status, cursor]);
  return (
    <section aria-labelledby="runs-h">
      <header className="page-head">
        <h1 id="runs-h">Runs</h1>
        <select aria-label="Status" value={status} onChange={(e) => setParams((p) => (e.target.value ? p.set("status", e.target.value) : p.delete("status"), p))}>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s || "Any status"}
            </option>
          ))}
        </select>
        <button onClick={reload}>Refresh</button>
      </header>
      <ErrorBox error={error} />
      {loading && !data && <Loading />}
      {data && (
        <>
          <table className="table" aria-label="Runs">
            <thead>
              <tr>
                <th>Started</th>
                <th>Workflow</th>
                <th>Version</th>
                <th>Status</th>
                <th>Duration</th>
                <th>Trigger</th>
                <th>Error</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link to={`/runs/${r.id}`}>{when(r.started_at)}</Link>
                  </td>
                  <td>
                    <Link to={`/workflows/${r.workflow_id}`}>{r.workflow_name ?? r.workflow_id}</Link>
                  </td>
                  <td>{r.version ?? "—"}</td>
                  <td>
                    <Status value={r.status} />
                  </td>
                  <td>{duration(r.duration_ms)}</td>
                  <td>{r.trigger_type ?? "—"}</td>
                  <td className="clip">{r.error ? (typeof r.error === "string" ? r.error : JSON.stringify(r.error)) : ""}</td>
                </tr>
              ))}
              {data.items.length === 0 && (
                <tr>
                  <td colSpan={7} className="muted">
                    No runs.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          {data.next_cursor && <button onClick={() => setCursor(data.next_cursor)}>Older runs</button>}
        </>
      )}
    </section>
  );
}

export function RunView() {
  const { id = "" } = useParams();
  const me = useSession((s) => s.me);
  const { data, error, loading, reload } = useAsync(() => api<ExecutionDetail>(`/executions/${id}`), [id]);
  const [open, setOpen] = useState<string | null>(null);
  const [act, busy, actionError] = useAction();
  const live = data && ["running", "pending", "paused"].includes(data.status);
  useEffect(() => {
    if (!live) return;
    // Live updates re-read the run (steps carry inputs and outputs the events do not).
    return subscribeExecution(id, () => reload(), () => reload());
  }, [id, live, reload]);
  if (loading && !data) return <Loading />;
  if (!data) return <ErrorBox error={error} />;
  return (
    <section aria-labelledby="run-h">
      <header className="page-head">
        <h1 id="run-h">
          Run of <Link to={`/workflows/${data.workflow_id}`}>{data.workflow_name ?? data.workflow_id}</Link>
        </h1>
        <Status value={data.status} />
        {can(me, "run") && live && (
          <button onClick={() => act(() => api(`/executions/${id}/cancel`, { method: "POST" }).then(reload))} disabled={busy}>
            Cancel
          </button>
        )}
        {can(me, "run") && !live && (
          <button onClick={() => act(() => api(`/executions/${id}/retry`, { method: "POST" }).then(reload))} disabled={busy}>
            Retry
          </button>
        )}
        {data.prefect_url && (
          <a href={data.prefect_url} target="_blank" rel="noreferrer">
            Open in Prefect
          </a>
        )}
      </header>
      <ErrorBox error={error || actionError} />
      <dl className="kv inline">
        <dt>Started</dt>
        <dd>{when(data.started_at)}</dd>
        <dt>Ended</dt>
        <dd>{when(data.ended_at)}</dd>
        <dt>Duration</dt>
        <dd>{duration(data.duration_ms)}</dd>
        <dt>Version</dt>
        <dd>{data.version ?? "—"}</dd>
        <dt>Trigger</dt>
        <dd>{data.trigger_type ?? "—"}</dd>
        {data.trace_id && (
          <>
            <dt>Trace</dt>
            <dd>
              <TraceId traceId={data.trace_id} />
            </dd>
          </>
        )}
      </dl>
      {data.error != null && <ErrorBox error={typeof data.error === "string" ? data.error : JSON.stringify(data.error)} />}
      <RunCost executionId={id} />
      <div className="card">
        <h2>Timeline</h2>
        <Gantt steps={data.steps} />
      </div>
      <div className="card">
        <h2>Logs</h2>
        <RunLogs executionId={id} />
      </div>
      <div className="card">
        <h2>Steps</h2>
        <table className="table" aria-label="Steps">
          <thead>
            <tr>
              <th>Node</th>
              <th>Type</th>
              <th>Status</th>
              <th>Attempts</th>
              <th>Duration</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {data.steps.map((s: Step) => (
              <StepRow key={s.node_id} step={s} open={open === s.node_id} onToggle={() => setOpen(open === s.node_id ? null : s.node_id)} />
            ))}
          </tbody>
        </table>
      </div>
      <div className="cards">
        <div className="card">
          <h2>Input</h2>
          <Json value={data.input} />
        </div>
        <div className="card">
          <h2>Output</h2>
          <Json value={data.output} />
        </div>
      </div>
    </section>
  );
}

function StepRow({ step, open, onToggle }: { step: Step; open: boolean; onToggle: () => void }) {
  return (
    <>
      <tr className={step.error ? "row-error" : undefined}>
        <td>
          <code>{step.node_id}</code> {step.name && step.name !== step.node_id && <span className="muted">{step.name}</span>}
        </td>
        <td>{step.type ?? "—"}</td>
        <td>
          <Status value={step.status} />
        </td>
        <td>{step.attempts ?? "—"}</td>
        <td>{duration(step.duration_ms)}</td>
        <td>
          <button className="link" aria-expanded={open} onClick={onToggle}>
            {open ? "Hide" : "Details"}
          </button>
        </td>
      </tr>
      {open && (
        <tr>
          <td colSpan={6}>
            <div className="cards">
              <div>
                <h3>Input</h3>
                <Json value={step.input} />
              </div>
              <div>
                <h3>Output</h3>
                <Json value={step.output} />
              </div>
              {step.error != null && (
                <div>
                  <h3>Error</h3>
                  <Json value={step.error} />
                </div>
              )}
            </div>
            {(step.attempt_history?.length ?? 0) > 1 && (
              <table className="attempts" aria-label={`Attempts of ${step.node_id}`}>
                <thead>
                  <tr>
                    <th>Attempt</th>
                    <th>Status</th>
                    <th>Duration</th>
                    <th>Error</th>
                  </tr>
                </thead>
                <tbody>
                  {step.attempt_history!.map((a) => (
                    <tr key={a.attempt}>
                      <td>{a.attempt}</td>
                      <td>
                        <Status value={a.status} />
                      </td>
                      <td>{duration(a.duration_ms)}</td>
                      <td>{a.error ?? "—"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </td>
        </tr>
      )}
    </>
  );
}
