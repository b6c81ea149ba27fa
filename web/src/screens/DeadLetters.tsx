/** Dead letters: webhook deliveries and scheduled runs that could not become a run. Filter,
 * open one in a drawer (reason, payload, decision), replay or discard one or a selection. */
import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { api, type Page } from "../api/client";
import { ErrorBox, Json, Loading, Status, useAction, useAsync, when } from "../components/common";
import { can, useSession } from "../session";

export interface DeadLetter {
  id: string;
  source: "webhook" | "schedule";
  reference: string;
  workflow_id: string;
  node_id: string | null;
  webhook_id: string | null;
  delivery_id: string | null;
  flow_run_id: string | null;
  reason: string;
  attempts: number;
  first_seen_at: string;
  last_seen_at: string;
  status: "open" | "replayed" | "discarded";
  decided_by: string | null;
  decided_at: string | null;
  note: string | null;
  replay_delivery_id: string | null;
  replay_run_id: string | null;
  payload?: unknown;
}

interface DeadLetterPage extends Page<DeadLetter> {
  counts: Record<string, number>;
}

interface Decision {
  id: string;
  ok: boolean;
  status: string | null;
  error: string | null;
}

interface BulkResult {
  action: string;
  done: number;
  failed: number;
  results: Decision[];
}

export function DeadLetters() {
  const me = useSession((s) => s.me);
  const mayDecide = can(me, "run");
  const [status, setStatus] = useState("open");
  const [source, setSource] = useState("");
  const [workflow, setWorkflow] = useState("");
  const query = new URLSearchParams();
  if (status) query.set("status", status);
  if (source) query.set("source", source);
  if (workflow.trim()) query.set("workflow_id", workflow.trim());
  const list = useAsync(() => api<DeadLetterPage>(`/dead-letters?${query.toString()}`), [status, source, workflow]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [open, setOpen] = useState<string | null>(null);
  const [reason, setReason] = useState("");
  const [outcome, setOutcome] = useState<BulkResult | null>(null);
  const [act, busy, actionError] = useAction();
  useEffect(() => setSelected(new Set()), [status, source, workflow]);

  const items = list.data?.items ?? [];
  const openIds = items.filter((d) => d.status === "open").map((d) => d.id);
  const allSelected = openIds.length > 0 && openIds.every((id) => selected.has(id));
  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  const bulk = (action: "replay" | "discard") =>
    act(async () => {
      const result = await api<BulkResult>("/dead-letters/bulk", {
        method: "POST",
        body: { action, ids: [...selected], ...(action === "discard" ? { reason } : {}) },
      });
      setOutcome(result);
      setSelected(new Set());
      list.reload();
    });
  const counts = list.data?.counts ?? {};
  return (
    <section aria-labelledby="dl-h">
      <header className="page-head">
        <h1 id="dl-h">Dead letters</h1>
        <span className="muted small" data-testid="dl-counts">
          {counts.open ?? 0} open · {counts.replayed ?? 0} replayed · {counts.discarded ?? 0} discarded
        </span>
      </header>
      <p className="muted small">
        Webhook deliveries and scheduled runs that could not become a run, with the reason. Replay one once its cause is fixed, or discard it with a reason.
      </p>
      <div className="row" role="group" aria-label="Filters">
        <label>
          Status{" "}
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">any</option>
            <option value="open">open</option>
            <option value="replayed">replayed</option>
            <option value="discarded">discarded</option>
          </select>
        </label>
        <label>
          Source{" "}
          <select value={source} onChange={(e) => setSource(e.target.value)}>
            <option value="">any</option>
            <option value="webhook">webhook</option>
            <option value="schedule">schedule</option>
          </select>
        </label>
        <label>
          Workflow id <input value={workflow} onChange={(e) => setWorkflow(e.target.value)} placeholder="all workflows" />
        </label>
      </div>
      {mayDecide && selected.size > 0 && (
        <div className="toolbar" role="group" aria-label="Bulk actions">
          <strong>{selected.size} selected</strong>
          <button disabled={busy} onClick={() => bulk("replay")}>
            Replay selected
          </button>
          <input aria-label="Discard reason" placeholder="Why discard them?" value={reason} onChange={(e) => setReason(e.target.value)} />
          <button disabled={busy || !reason.trim()} onClick={() => bulk("discard")}>
            Discard selected
          </button>
        </div>
      )}
      <ErrorBox error={list.error || actionError} />
      {outcome && (
        <div className={outcome.failed ? "error-box" : "notice"} role="status" data-testid="dl-outcome">
          {outcome.action}: {outcome.done} done, {outcome.failed} failed
          {outcome.failed > 0 && (
            <ul>
              {outcome.results
                .filter((r) => !r.ok)
                .map((r) => (
                  <li key={r.id}>
                    <code>{r.id.slice(0, 8)}</code> {r.error}
                  </li>
                ))}
            </ul>
          )}
        </div>
      )}
      {list.loading && !list.data && <Loading />}
      <table className="table" aria-label="Dead letters">
        <thead>
          <tr>
            <th>
              {mayDecide && (
                <input
                  type="checkbox"
                  aria-label="Select all open"
                  checked={allSelected}
                  onChange={() => setSelected(allSelected ? new Set() : new Set(openIds))}
                />
              )}
            </th>
            <th>Last seen</th>
            <th>Source</th>
            <th>Workflow</th>
            <th>Reason</th>
            <th>Attempts</th>
            <th>Status</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {items.map((d) => (
            <tr key={d.id} data-testid="dl-row">
              <td>
                {mayDecide && d.status === "open" && (
                  <input type="checkbox" aria-label={`Select ${d.reference}`} checked={selected.has(d.id)} onChange={() => toggle(d.id)} />
                )}
              </td>
              <td>{when(d.last_seen_at)}</td>
              <td>{d.source}</td>
              <td>
                <Link to={`/workflows/${d.workflow_id}`}>{d.workflow_id.slice(0, 8)}</Link>
              </td>
              <td className="clip">{d.reason}</td>
              <td>{d.attempts}</td>
              <td>
                <Status value={d.status} />
              </td>
              <td>
                <button onClick={() => setOpen(d.id)} aria-label={`Details of ${d.reference}`}>
                  Details
                </button>
              </td>
            </tr>
          ))}
          {list.data && items.length === 0 && (
            <tr>
              <td colSpan={8} className="muted">
                No dead letters{status ? ` ${status}` : ""}.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {list.data?.next_cursor && <p className="muted small">Showing the first {items.length} of {list.data.total}.</p>}
      {open && (
        <Drawer
          id={open}
          mayDecide={mayDecide}
          onClose={() => setOpen(null)}
          onDecided={() => {
            list.reload();
          }}
        />
      )}
    </section>
  );
}

function Drawer({ id, mayDecide, onClose, onDecided }: { id: string; mayDecide: boolean; onClose: () => void; onDecided: () => void }) {
  const detail = useAsync(() => api<DeadLetter>(`/dead-letters/${id}`), [id]);
  const [act, busy, actionError] = useAction();
  const [note, setNote] = useState("");
  const d = detail.data;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  const decide = (path: string, body?: unknown) =>
    act(async () => {
      await api(`/dead-letters/${id}/${path}`, { method: "POST", body });
      detail.reload();
      onDecided();
    });
  return (
    <aside className="dl-drawer" role="dialog" aria-label="Dead letter">
      <header className="row">
        <h2 className="grow">Dead letter</h2>
        <button className="icon" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </header>
      <ErrorBox error={detail.error || actionError} />
      {!d && <Loading />}
      {d && (
        <>
          <dl className="dl-facts">
            <dt>Status</dt>
            <dd>
              <Status value={d.status} />
            </dd>
            <dt>Reason</dt>
            <dd data-testid="dl-reason">{d.reason}</dd>
            <dt>Of</dt>
            <dd>
              <code>{d.reference}</code>
            </dd>
            <dt>Workflow</dt>
            <dd>
              <Link to={`/workflows/${d.workflow_id}`}>{d.workflow_id}</Link>
              {d.node_id && (
                <>
                  {" "}
                  · node <code>{d.node_id}</code>
                </>
              )}
            </dd>
            <dt>Attempts</dt>
            <dd>{d.attempts}</dd>
            <dt>First seen</dt>
            <dd>{when(d.first_seen_at)}</dd>
            <dt>Last seen</dt>
            <dd>{when(d.last_seen_at)}</dd>
            {d.decided_at && (
              <>
                <dt>Decided</dt>
                <dd>
                  {when(d.decided_at)} by {d.decided_by}
                  {d.note && <> — {d.note}</>}
                </dd>
              </>
            )}
            {(d.replay_delivery_id || d.replay_run_id) && (
              <>
                <dt>Replay</dt>
                <dd>
                  {d.replay_run_id ? <Link to={`/runs/${d.replay_run_id}`}>run {d.replay_run_id.slice(0, 8)}</Link> : <>delivery {d.replay_delivery_id?.slice(0, 8)} queued, run pending</>}
                </dd>
              </>
            )}
          </dl>
          <h3>Payload</h3>
          <Json value={d.payload} />
          {mayDecide && d.status === "open" && (
            <div className="row">
              <button disabled={busy} onClick={() => decide("replay")}>
                Replay
              </button>
              <input aria-label="Reason to discard" placeholder="Why discard it?" value={note} onChange={(e) => setNote(e.target.value)} />
              <button disabled={busy || !note.trim()} onClick={() => decide("discard", { reason: note })}>
                Discard
              </button>
            </div>
          )}
        </>
      )}
    </aside>
  );
}
