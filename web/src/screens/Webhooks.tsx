import { useState } from "react";
import { Link } from "react-router-dom";
import { api, type Page } from "../api/client";
import type { Webhook, WebhookEvent } from "../api/types";
import { ErrorBox, Loading, Status, useAction, useAsync, when } from "../components/common";
import { can, useSession } from "../session";

export function Webhooks() {
  const me = useSession((s) => s.me);
  const list = useAsync(() => api<Page<Webhook>>("/webhooks"), []);
  const [open, setOpen] = useState<string | null>(null);
  const [act, busy, actionError] = useAction();
  const [secret, setSecret] = useState<{ id: string; value: string } | null>(null);
  const absolute = (url: string) => (url.startsWith("http") ? url : location.origin + url);
  return (
    <section aria-labelledby="wh-h">
      <header className="page-head">
        <h1 id="wh-h">Webhooks</h1>
      </header>
      <ErrorBox error={list.error || actionError} />
      {list.loading && !list.data && <Loading />}
      {list.data?.items.length === 0 && <p className="muted">Publish a workflow with a webhook trigger to get a URL.</p>}
      {list.data?.items.map((w) => (
        <div key={w.id} className="card">
          <div className="row">
            <div className="grow">
              <code className="url">{absolute(w.url)}</code>{" "}
              <button className="link" onClick={() => navigator.clipboard?.writeText(absolute(w.url))}>
                Copy
              </button>
              <div className="small muted">
                {w.workflow_id && <Link to={`/workflows/${w.workflow_id}`}>{w.workflow_name ?? w.workflow_id}</Link>} · node <code>{String(w.node_id ?? "")}</code> · signature {w.scheme ?? "none"}
                {w.active === false && " · inactive"}
              </div>
            </div>
            {can(me, "edit") && (
              <>
                <button
                  disabled={busy}
                  title="Give the webhook a new URL; the old one stops working at once"
                  onClick={() =>
                    confirm("Rotate the URL? Senders must switch to the new one.") &&
                    act(async () => {
                      const next = await api<Webhook>(`/webhooks/${w.id}/rotate`, { method: "POST" });
                      setSecret({ id: w.id, value: absolute(next.url) });
                      list.reload();
                    })
                  }
                >
                  Rotate URL
                </button>
                <button disabled={busy} onClick={() => act(() => api(`/webhooks/${w.id}/test`, { method: "POST" }))}>
                  Send test
                </button>
              </>
            )}
            <button aria-expanded={open === w.id} onClick={() => setOpen(open === w.id ? null : w.id)}>
              Deliveries
            </button>
          </div>
          {secret?.id === w.id && (
            <p className="notice" role="status">
              New URL: <code>{secret.value}</code>
            </p>
          )}
          {open === w.id && <Deliveries webhook={w} canReplay={can(me, "run")} />}
        </div>
      ))}
    </section>
  );
}

function Deliveries({ webhook, canReplay }: { webhook: Webhook; canReplay: boolean }) {
  const { data, error, loading, reload } = useAsync(() => api<Page<WebhookEvent>>(`/webhooks/${webhook.id}/events`), [webhook.id]);
  const [act, busy, actionError] = useAction();
  if (loading && !data) return <Loading />;
  return (
    <>
      <ErrorBox error={error || actionError} />
      <table className="table" aria-label="Deliveries">
        <thead>
          <tr>
            <th>Received</th>
            <th>Status</th>
            <th>Run</th>
            <th>Reason</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {data?.items.map((d) => (
            <tr key={d.id}>
              <td>{when(d.received_at as string)}</td>
              <td>
                <Status value={d.status} />
              </td>
              <td>{d.run_id || d.execution_id ? <Link to={`/runs/${String(d.run_id ?? d.execution_id)}`}>run</Link> : "—"}</td>
              <td className="clip">{String(d.reason ?? (d.error ? JSON.stringify(d.error) : ""))}</td>
              <td>
                {canReplay && (
                  <button disabled={busy} onClick={() => act(() => api(`/webhooks/${webhook.id}/events/${d.id}/replay`, { method: "POST" }).then(reload))}>
                    Replay
                  </button>
                )}
              </td>
            </tr>
          ))}
          {data?.items.length === 0 && (
            <tr>
              <td colSpan={5} className="muted">
                No deliveries yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </>
  );
}
