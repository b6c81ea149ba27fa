/** Retention (admins): how long the tenant keeps executions, step data, webhook deliveries and
 * audit events, within the operator's bounds; run the job now and read its latest reports. */
import { useState, type FormEvent } from "react";
import { api } from "../api/client";
import { ErrorBox, Loading, useAction, useAsync, when } from "./common";

interface Field {
  value: number;
  chosen: number | null;
  default: number;
  minimum: number;
  maximum: number | null;
}

const FIELDS = [
  ["execution_days", "Executions (days)"],
  ["executions_per_workflow", "Executions kept per workflow"],
  ["step_data_days", "Step inputs and outputs (days)"],
  ["delivery_days", "Webhook deliveries (days)"],
  ["deliveries_per_webhook", "Deliveries kept per webhook"],
  ["audit_days", "Audit log (days)"],
] as const;

type Name = (typeof FIELDS)[number][0];

type Policy = Record<Name, Field> & { audit_anchor_seq: number | null; updated_at: string | null; updated_by: string | null };

interface Report {
  id: string;
  trigger: string;
  status: string;
  started_at: string;
  deleted: { executions: number; step_records: number; webhook_deliveries: number; audit_events: number };
  batches: number;
  error: string | null;
}

export function RetentionSettings() {
  const policy = useAsync(() => api<Policy>("/retention/policy"), []);
  const reports = useAsync(() => api<Report[]>("/retention/runs", { query: { limit: 5 } }), []);
  const [run, busy, error] = useAction();
  const [draft, setDraft] = useState<Partial<Record<Name, string>>>({});
  const save = (e: FormEvent) => {
    e.preventDefault();
    const body: Partial<Record<Name, number | null>> = {};
    for (const [name, text] of Object.entries(draft) as [Name, string][]) body[name] = text.trim() === "" ? null : Number(text);
    run(() => api<Policy>("/retention/policy", { method: "PUT", body }).then((p) => { policy.setData(p); setDraft({}); }));
  };
  const runNow = () => run(() => api<Report>("/retention/runs", { method: "POST" }).then(() => reports.reload()));
  return (
    <div className="card">
      <h2>Retention</h2>
      <ErrorBox error={policy.error || reports.error || error} />
      {!policy.data ? (
        <Loading />
      ) : (
        <form onSubmit={save} aria-label="Retention policy" className="form">
          {FIELDS.map(([name, label]) => {
            const f = policy.data![name];
            return (
              <label key={name}>
                {label}
                <input
                  name={name}
                  type="number"
                  min={f.minimum}
                  max={f.maximum ?? undefined}
                  placeholder={`default ${f.default}`}
                  value={draft[name] ?? (f.chosen == null ? "" : String(f.chosen))}
                  onChange={(e) => setDraft({ ...draft, [name]: e.target.value })}
                />
                <span className="muted small">
                  applies: {f.value} · allowed {f.minimum}–{f.maximum ?? "∞"}
                </span>
              </label>
            );
          })}
          {policy.data.audit_anchor_seq != null && <p className="muted small">Audit events up to #{policy.data.audit_anchor_seq} were pruned; the chain is verified from there.</p>}
          <div className="row">
            <button type="submit" className="primary" disabled={busy || Object.keys(draft).length === 0}>
              Save retention
            </button>
            <button type="button" onClick={runNow} disabled={busy}>
              {busy ? "Working…" : "Run now"}
            </button>
          </div>
        </form>
      )}
      {reports.data && reports.data.length > 0 && (
        <table aria-label="Retention runs">
          <thead>
            <tr><th>When</th><th>Trigger</th><th>Status</th><th>Executions</th><th>Step records</th><th>Deliveries</th><th>Audit events</th><th>Batches</th></tr>
          </thead>
          <tbody>
            {reports.data.map((r) => (
              <tr key={r.id} title={r.error ?? undefined}>
                <td>{when(r.started_at)}</td><td>{r.trigger}</td><td>{r.status}</td>
                <td>{r.deleted.executions}</td><td>{r.deleted.step_records}</td><td>{r.deleted.webhook_deliveries}</td><td>{r.deleted.audit_events}</td><td>{r.batches}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
