import { useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api, type Page } from "../api/client";
import type { HumanTask } from "../api/types";
import { ErrorBox, Json, Loading, Status, useAction, useAsync, when } from "../components/common";

export function Inbox() {
  const [params] = useSearchParams();
  // An e-mailed link lands on /inbox?task=<id>: show that task whatever its state.
  const only = params.get("task");
  const [status, setStatus] = useState(only ? "" : "open");
  const { data, error, loading, reload } = useAsync(
    () => (only ? api<HumanTask>(`/human-tasks/${only}`).then((t) => ({ items: [t], next_cursor: null, total: 1 }) as Page<HumanTask>) : api<Page<HumanTask>>("/human-tasks", { query: { status } })),
    [status, only],
  );
  useEffect(() => {
    if (only) document.getElementById(`task-${only}`)?.focus();
  }, [only, data]);
  const [act, busy, actionError] = useAction();
  const [comments, setComments] = useState<Record<string, string>>({});
  return (
    <section aria-labelledby="inbox-h">
      <header className="page-head">
        <h1 id="inbox-h">Inbox</h1>
        <select aria-label="Status" value={status} onChange={(e) => setStatus(e.target.value)}>
          <option value="open">Waiting for a decision</option>
          <option value="decided">Decided</option>
          <option value="expired">Expired</option>
          <option value="">All</option>
        </select>
        <button onClick={reload}>Refresh</button>
      </header>
      <ErrorBox error={error || actionError} />
      {loading && !data && <Loading />}
      {data?.items.length === 0 && <p className="muted">Nothing waits for you.</p>}
      <ul className="tasks">
        {data?.items.map((t) => (
          <li key={t.id} id={`task-${t.id}`} tabIndex={-1} className="card">
            <h2>{t.title ?? "Approval"}</h2>
            {t.description && <p>{t.description}</p>}
            {t.data != null && typeof t.data === "object" && Object.keys(t.data).length > 0 ? <Json value={t.data} /> : null}
            <div className="small muted">
              {t.workflow_id && <Link to={`/workflows/${t.workflow_id}`}>{t.workflow_name ?? "workflow"}</Link>} · node <code>{String(t.node_name ?? t.node_id)}</code> ·{" "}
              {t.execution_id && <Link to={`/runs/${t.execution_id}`}>run</Link>} · {when(t.created_at)} · <Status value={t.status} />
              {t.decision && (
                <>
                  {" "}
                  · decided <strong>{t.decision}</strong> by {t.decided_by}
                </>
              )}
            </div>
            {(t.status === "open" || t.status === "pending") && (
              <div className="decide">
                <label>
                  Comment
                  <input value={comments[t.id] ?? ""} onChange={(e) => setComments({ ...comments, [t.id]: e.target.value })} />
                </label>
                {(t.options ?? [
                  { label: "Approve", value: "approved" },
                  { label: "Reject", value: "rejected" },
                ]).map((o) => (
                  <button key={o.value} disabled={busy} onClick={() => act(() => api(`/human-tasks/${t.id}/decide`, { body: { value: o.value, comment: comments[t.id] ?? "" } }).then(reload))}>
                    {o.label}
                  </button>
                ))}
              </div>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
