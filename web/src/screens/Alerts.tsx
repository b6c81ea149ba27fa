/** Alerts: the tenant's alert rules (when, for which workflows, where to), a form to add one,
 * "Send test", and the history of alerts sent, held back by the cool-down, or failed. */
import { useState, type FormEvent } from "react";
import { api, type Page } from "../api/client";
import type { Workflow } from "../api/types";
import { ErrorBox, Loading, Status, useAction, useAsync, when } from "../components/common";

export interface AlertRule {
  id: string;
  name: string;
  kind: "failure" | "long_running" | "failure_burst" | "webhook_failures";
  threshold: number | null;
  window_minutes: number | null;
  seconds: number | null;
  workflow_id: string | null;
  channel: Record<string, unknown> & { type: string };
  cooldown_minutes: number;
  enabled: boolean;
  last_sent_at: string | null;
}

export interface AlertEvent {
  id: string;
  rule_id: string | null;
  at: string;
  status: string;
  subject: string;
  runs: { id: string; workflow_name?: string | null; status?: string; error?: string | null }[];
  error: string | null;
  test: boolean;
}

const KINDS: Record<AlertRule["kind"], string> = {
  failure: "A run fails",
  failure_burst: "N failures in M minutes",
  long_running: "A run takes longer than N seconds",
  webhook_failures: "N failed webhook deliveries in M minutes",
};

/** Kinds counted over a window: N (threshold) within M minutes. */
const COUNTED: AlertRule["kind"][] = ["failure_burst", "webhook_failures"];

function condition(rule: AlertRule): string {
  if (rule.kind === "failure_burst") return `${rule.threshold} failures in ${rule.window_minutes} min`;
  if (rule.kind === "long_running") return `running longer than ${rule.seconds} s`;
  if (rule.kind === "webhook_failures") return `${rule.threshold} failed webhook deliveries in ${rule.window_minutes} min`;
  return "a run fails";
}

function destination(channel: AlertRule["channel"]): string {
  if (channel.type === "slack") return `Slack ${String(channel.channel)} (${String(channel.credential)})`;
  if (channel.type === "email") return `E-mail ${(channel.to as string[]).join(", ")}`;
  return `Webhook ${String(channel.url)}`;
}

export function Alerts() {
  const rules = useAsync(() => api<Page<AlertRule>>("/alert-rules"), []);
  const workflows = useAsync(() => api<Page<Workflow>>("/workflows", { query: { limit: 200 } }), []);
  const history = useAsync(() => api<Page<AlertEvent>>("/alerts"), []);
  const [act, busy, actionError] = useAction();
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<AlertRule | null>(null);
  const names = new Map((workflows.data?.items ?? []).map((w) => [w.id, w.name]));
  const ruleName = new Map((rules.data?.items ?? []).map((r) => [r.id, r.name]));
  return (
    <section aria-labelledby="alerts-h">
      <header className="page-head">
        <h1 id="alerts-h">Alerts</h1>
        <button
          onClick={() => {
            setEditing(null);
            setAdding(!adding);
          }}
          aria-expanded={adding}
        >
          New rule
        </button>
      </header>
      <ErrorBox error={rules.error || actionError} />
      {(adding || editing) && (
        <RuleForm
          key={editing?.id ?? "new"}
          rule={editing}
          workflows={workflows.data?.items ?? []}
          onCancel={() => {
            setAdding(false);
            setEditing(null);
          }}
          onSaved={() => {
            setAdding(false);
            setEditing(null);
            rules.reload();
          }}
        />
      )}
      {rules.loading && !rules.data && <Loading />}
      <table className="table" aria-label="Alert rules">
        <thead>
          <tr>
            <th>Rule</th>
            <th>When</th>
            <th>Workflows</th>
            <th>Send to</th>
            <th>Cool-down</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rules.data?.items.map((r) => (
            <tr key={r.id}>
              <td>
                {r.name}
                {!r.enabled && <span className="muted small"> (off)</span>}
              </td>
              <td>{condition(r)}</td>
              <td>{r.workflow_id ? names.get(r.workflow_id) ?? r.workflow_id : "All workflows"}</td>
              <td className="clip">{destination(r.channel)}</td>
              <td>{r.cooldown_minutes} min</td>
              <td>
                <button disabled={busy} onClick={() => act(() => api(`/alert-rules/${r.id}/test`, { method: "POST" }).then(history.reload))}>
                  Send test
                </button>
                <button
                  disabled={busy}
                  onClick={() => {
                    setAdding(false);
                    setEditing(r);
                  }}
                >
                  Edit
                </button>
                <button
                  disabled={busy}
                  onClick={() => confirm(`Delete the rule "${r.name}"?`) && act(() => api(`/alert-rules/${r.id}`, { method: "DELETE" }).then(rules.reload))}
                >
                  Delete
                </button>
              </td>
            </tr>
          ))}
          {rules.data?.items.length === 0 && (
            <tr>
              <td colSpan={6} className="muted">
                No alert rules yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <h2>History</h2>
      <ErrorBox error={history.error} />
      <table className="table" aria-label="Alert history">
        <thead>
          <tr>
            <th>When</th>
            <th>Rule</th>
            <th>Status</th>
            <th>Alert</th>
            <th>Runs</th>
          </tr>
        </thead>
        <tbody>
          {history.data?.items.map((e) => (
            <tr key={e.id}>
              <td>{when(e.at)}</td>
              <td>{(e.rule_id && ruleName.get(e.rule_id)) ?? e.rule_id}</td>
              <td>
                <Status value={e.status} />
                {e.test && <span className="muted small"> test</span>}
              </td>
              <td className="clip">
                {e.subject}
                {e.error && <div className="small field-error">{e.error}</div>}
              </td>
              <td>{e.runs.length}</td>
            </tr>
          ))}
          {history.data?.items.length === 0 && (
            <tr>
              <td colSpan={5} className="muted">
                No alerts yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}

/** The channel's address as the form's one text field shows it. */
function targetOf(channel: AlertRule["channel"]): string {
  if (channel.type === "slack") return String(channel.channel ?? "");
  if (channel.type === "email") return ((channel.to as string[] | undefined) ?? []).join(", ");
  return String(channel.url ?? "");
}

/** Adds a rule (POST) or, given ``rule``, edits it (PUT replaces the rule and its automation). */
function RuleForm({
  rule,
  workflows,
  onSaved,
  onCancel,
}: {
  rule: AlertRule | null;
  workflows: Workflow[];
  onSaved: () => void;
  onCancel: () => void;
}) {
  const [name, setName] = useState(rule?.name ?? "");
  const [kind, setKind] = useState<AlertRule["kind"]>(rule?.kind ?? "failure");
  const [threshold, setThreshold] = useState(rule?.threshold ?? 3);
  const [windowMinutes, setWindowMinutes] = useState(rule?.window_minutes ?? 10);
  const [seconds, setSeconds] = useState(rule?.seconds ?? 600);
  const [workflowId, setWorkflowId] = useState(rule?.workflow_id ?? "");
  const [type, setType] = useState(rule?.channel.type ?? "webhook");
  const [credential, setCredential] = useState(String(rule?.channel.credential ?? ""));
  const [target, setTarget] = useState(rule ? targetOf(rule.channel) : "");
  const [cooldown, setCooldown] = useState(rule?.cooldown_minutes ?? 15);
  const [enabled, setEnabled] = useState(rule?.enabled ?? true);
  const counted = COUNTED.includes(kind);
  const [act, busy, error] = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const channel =
      type === "slack"
        ? { type, credential, channel: target }
        : type === "email"
          ? { type, credential, to: target.split(",").map((s) => s.trim()).filter(Boolean) }
          : { type, url: target };
    const body = {
      name,
      kind,
      threshold: counted ? threshold : null,
      window_minutes: counted ? windowMinutes : null,
      seconds: kind === "long_running" ? seconds : null,
      workflow_id: workflowId || null,
      channel,
      cooldown_minutes: cooldown,
      enabled,
    };
    const save = () => (rule ? api(`/alert-rules/${rule.id}`, { method: "PUT", body }) : api("/alert-rules", { body }));
    void act(() => save().then(onSaved));
  };
  return (
    <form className="card" aria-label={rule ? "Edit alert rule" : "New alert rule"} onSubmit={submit}>
      <ErrorBox error={error} />
      <div className="field">
        <label htmlFor="ar-name">Name</label>
        <input id="ar-name" required value={name} onChange={(e) => setName(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="ar-kind">When</label>
        <select id="ar-kind" value={kind} onChange={(e) => setKind(e.target.value as AlertRule["kind"])}>
          {Object.entries(KINDS).map(([k, label]) => (
            <option key={k} value={k}>
              {label}
            </option>
          ))}
        </select>
      </div>
      {counted && (
        <div className="row">
          <div className="field">
            <label htmlFor="ar-threshold">{kind === "webhook_failures" ? "Failed deliveries (N)" : "Failures (N)"}</label>
            <input id="ar-threshold" type="number" min={1} value={threshold} onChange={(e) => setThreshold(Number(e.target.value))} />
          </div>
          <div className="field">
            <label htmlFor="ar-window">Within minutes (M)</label>
            <input id="ar-window" type="number" min={1} value={windowMinutes} onChange={(e) => setWindowMinutes(Number(e.target.value))} />
          </div>
        </div>
      )}
      {kind === "long_running" && (
        <div className="field">
          <label htmlFor="ar-seconds">Longer than seconds</label>
          <input id="ar-seconds" type="number" min={10} value={seconds} onChange={(e) => setSeconds(Number(e.target.value))} />
        </div>
      )}
      <div className="field">
        <label htmlFor="ar-scope">Workflows</label>
        <select id="ar-scope" value={workflowId} onChange={(e) => setWorkflowId(e.target.value)}>
          <option value="">All workflows</option>
          {workflows.map((w) => (
            <option key={w.id} value={w.id}>
              {w.name}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="ar-channel">Send to</label>
        <select id="ar-channel" value={type} onChange={(e) => setType(e.target.value)}>
          <option value="webhook">Webhook</option>
          <option value="slack">Slack</option>
          <option value="email">E-mail</option>
        </select>
      </div>
      {type !== "webhook" && (
        <div className="field">
          <label htmlFor="ar-credential">{type === "slack" ? "Slack credential" : "SMTP credential"}</label>
          <input id="ar-credential" required value={credential} onChange={(e) => setCredential(e.target.value)} />
        </div>
      )}
      <div className="field">
        <label htmlFor="ar-target">{type === "slack" ? "Slack channel" : type === "email" ? "Addresses (comma-separated)" : "Webhook URL"}</label>
        <input id="ar-target" required value={target} onChange={(e) => setTarget(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="ar-cooldown">Cool-down minutes</label>
        <input id="ar-cooldown" type="number" min={0} value={cooldown} onChange={(e) => setCooldown(Number(e.target.value))} />
      </div>
      <div className="field">
        <label>
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Enabled
        </label>
      </div>
      <button type="submit" disabled={busy}>
        Save rule
      </button>
      <button type="button" onClick={onCancel}>
        Cancel
      </button>
    </form>
  );
}
