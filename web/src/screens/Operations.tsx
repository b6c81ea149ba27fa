/** The operations page: run rate, durations, queue and workers, webhook intake, error budgets; refreshed every 30 s. */
import { useEffect, useState } from "react";
import { api } from "../api/client";
import { duration, ErrorBox, Loading, useAction, useAsync, when } from "../components/common";
import { BudgetGauges, DurationBars, MinuteLines } from "../components/opsCharts";
import { can, useSession } from "../session";

interface OpsDashboard {
  generated_at: string;
  window: string;
  truncated: boolean;
  runs_per_minute: { start: string; total: number; completed: number; failed: number; other: number }[];
  runs_last_hour: number;
  success_rate: number | null;
  workflows: { workflow_id: string | null; workflow_name: string | null; total: number; completed: number; failed: number; success_rate: number | null; p50_ms: number | null; p95_ms: number | null }[];
  error_budgets: { workflow_id: string; workflow_name: string; target: number; window_days: number; runs: number; failed: number; remaining: number; consumed: number; burn_rate: number | null; burn_rate_1h: number | null; state: string }[];
  slo_candidates: { workflow_id: string; workflow_name: string }[];
  queues: {
    pool: string;
    name: string;
    exists: boolean;
    paused: boolean;
    last_polled: string | null;
    scheduled: number;
    late: number;
    pending: number;
    workers: { name: string; status: string; last_heartbeat: string | null; healthy: boolean }[];
  }[];
  webhooks: { per_minute: { start: string; accepted: number; rejected: number; ignored: number }[]; total: number; accepted: number; rejected: number; ignored: number; failure_rate: number | null };
}

const WINDOWS = ["1h", "24h", "7d", "30d"] as const;
const REFRESH_MS = 30_000;
const pct = (v: number | null | undefined) => (v == null ? "—" : `${(v * 100).toFixed(1)}%`);

function SloForm({ data, onSaved }: { data: OpsDashboard; onSaved: () => void }) {
  const [workflowId, setWorkflowId] = useState("");
  const [target, setTarget] = useState("99");
  const [days, setDays] = useState("30");
  const [saved, setSaved] = useState<string | null>(null);
  const [run, busy, error, setError] = useAction();
  const choose = (id: string) => {
    setWorkflowId(id);
    setSaved(null);
    const current = data.error_budgets.find((b) => b.workflow_id === id);
    if (current) {
      setTarget(String(+(current.target * 100).toFixed(3)));
      setDays(String(current.window_days));
    }
  };
  const save = (e: React.FormEvent) => {
    e.preventDefault();
    void run(async () => {
      await api(`/workflows/${workflowId}/slo`, { method: "PUT", body: { target: Number(target) / 100, window_days: Number(days) } });
      const name = data.slo_candidates.find((c) => c.workflow_id === workflowId)?.workflow_name ?? workflowId;
      setSaved(`SLO of ${name} saved.`);
      onSaved();
    });
  };
  return (
    <form className="inline-form" onSubmit={save} aria-label="Set an SLO">
      <label>
        Workflow{" "}
        <select value={workflowId} onChange={(e) => choose(e.target.value)} required>
          <option value="">Choose…</option>
          {data.slo_candidates.map((c) => (
            <option key={c.workflow_id} value={c.workflow_id}>
              {c.workflow_name}
            </option>
          ))}
        </select>
      </label>{" "}
      <label>
        Target success rate (%){" "}
        <input type="number" min="1" max="99.999" step="0.001" value={target} onChange={(e) => setTarget(e.target.value)} required style={{ width: 90 }} />
      </label>{" "}
      <label>
        Window (days){" "}
        <input type="number" min="1" max="90" step="1" value={days} onChange={(e) => setDays(e.target.value)} required style={{ width: 70 }} />
      </label>{" "}
      <button className="primary" disabled={busy || !workflowId}>
        Save SLO
      </button>
      {saved && (
        <span role="status" className="small">
          {" "}
          {saved}
        </span>
      )}
      <ErrorBox error={error} onClose={() => setError(null)} />
    </form>
  );
}

export function Operations() {
  const { me } = useSession();
  const [range, setRange] = useState<(typeof WINDOWS)[number]>("24h");
  const [auto, setAuto] = useState(true);
  const { data, error, loading, reload } = useAsync(() => api<OpsDashboard>("/ops/dashboard", { query: { window: range } }), [range]);
  useEffect(() => {
    if (!auto) return;
    const timer = setInterval(reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [auto, reload]);
  const starts = data?.runs_per_minute.map((m) => m.start) ?? [];
  return (
    <section aria-labelledby="ops-h">
      <header className="page-head">
        <h1 id="ops-h">Operations</h1>
        <div role="group" aria-label="Window" className="segmented">
          {WINDOWS.map((k) => (
            <button key={k} aria-pressed={range === k} onClick={() => setRange(k)}>
              {k}
            </button>
          ))}
        </div>
        <label className="small">
          <input type="checkbox" checked={auto} onChange={(e) => setAuto(e.target.checked)} /> Auto-refresh (30 s)
        </label>
      </header>
      <ErrorBox error={error} />
      {loading && !data && <Loading />}
      {data && (
        <>
          <p className="small muted" data-testid="ops-updated">
            Updated {when(data.generated_at)}
            {data.truncated && " · more runs exist than were read"}
          </p>
          <div className="cards">
            <div className="card">
              <h2>Runs per minute (last hour)</h2>
              <MinuteLines
                label="Runs per minute"
                starts={starts}
                lines={[
                  { className: "line-total", label: "All runs", values: data.runs_per_minute.map((m) => m.total) },
                  { className: "line-failed", label: "Failed", values: data.runs_per_minute.map((m) => m.failed) },
                ]}
              />
              <div className="legend small">
                <span className="sw bar-ok" style={{ background: "var(--run)" }} /> all runs ({data.runs_last_hour}) <span className="sw bar-fail" /> failed
              </div>
            </div>
            <div className="card narrow">
              <h2>Success rate ({range})</h2>
              <p className="big" data-testid="ops-success-rate">
                {pct(data.success_rate)}
              </p>
            </div>
          </div>
          <div className="card">
            <h2>Duration per workflow ({range})</h2>
            {data.workflows.length === 0 ? (
              <p className="muted">No runs in this window.</p>
            ) : (
              <>
                <DurationBars rows={data.workflows.map((w) => ({ id: w.workflow_id ?? "-", name: w.workflow_name ?? w.workflow_id ?? "?", p50: w.p50_ms, p95: w.p95_ms }))} />
                <div className="legend small">
                  <span className="sw bar-p50" /> p50 <span className="sw bar-p95" /> p95
                </div>
              </>
            )}
          </div>
          <div className="card">
            <h2>Error budgets</h2>
            {data.error_budgets.length === 0 ? (
              <p className="muted">No workflow has an SLO yet.</p>
            ) : (
              <>
                <BudgetGauges rows={data.error_budgets.map((b) => ({ id: b.workflow_id, name: b.workflow_name, target: b.target, windowDays: b.window_days, remaining: b.remaining, burnRate: b.burn_rate, state: b.state }))} />
                <table className="table small" aria-label="Error budget figures">
                  <thead>
                    <tr>
                      <th>Workflow</th>
                      <th>SLO</th>
                      <th>Runs</th>
                      <th>Failed</th>
                      <th>Budget used</th>
                      <th>Burn rate (window / 1 h)</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.error_budgets.map((b) => (
                      <tr key={b.workflow_id}>
                        <td>{b.workflow_name}</td>
                        <td>
                          {pct(b.target)} / {b.window_days} d
                        </td>
                        <td>{b.runs}</td>
                        <td>{b.failed}</td>
                        <td>{pct(b.consumed)}</td>
                        <td>
                          {b.burn_rate == null ? "—" : b.burn_rate.toFixed(2)} / {b.burn_rate_1h == null ? "—" : b.burn_rate_1h.toFixed(2)}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </>
            )}
            {can(me, "admin") && <SloForm data={data} onSaved={reload} />}
          </div>
          <div className="card">
            <h2>Webhook intake per minute (last hour)</h2>
            <MinuteLines
              label="Webhook intake per minute"
              starts={data.webhooks.per_minute.map((m) => m.start)}
              lines={[
                { className: "line-accepted", label: "Accepted", values: data.webhooks.per_minute.map((m) => m.accepted) },
                { className: "line-rejected", label: "Rejected", values: data.webhooks.per_minute.map((m) => m.rejected) },
                { className: "line-ignored", label: "Filtered or duplicate", values: data.webhooks.per_minute.map((m) => m.ignored) },
              ]}
            />
            <p className="small">
              In {range}: {data.webhooks.total} deliveries, {data.webhooks.accepted} accepted, {data.webhooks.rejected} rejected, {data.webhooks.ignored} filtered or duplicate (failure rate {pct(data.webhooks.failure_rate)}).
            </p>
          </div>
          <div className="card">
            <h2>Work queue and workers</h2>
            <table className="table" aria-label="Work queues">
              <thead>
                <tr>
                  <th>Queue</th>
                  <th>Scheduled</th>
                  <th>Late</th>
                  <th>Pending</th>
                  <th>Last polled</th>
                  <th>Workers</th>
                </tr>
              </thead>
              <tbody>
                {data.queues.map((q) => (
                  <tr key={`${q.pool}/${q.name}`}>
                    <td>
                      <span className={`dot ${!q.exists ? "idle" : q.paused ? "unhealthy" : "healthy"}`} aria-hidden="true" />
                      {q.pool} / {q.name}
                      {q.paused && " (paused)"}
                      {!q.exists && <span className="muted"> (not created yet)</span>}
                    </td>
                    <td>{q.scheduled}</td>
                    <td>{q.late}</td>
                    <td>{q.pending}</td>
                    <td>{when(q.last_polled)}</td>
                    <td>
                      {q.workers.length === 0 && <span className="muted">no worker</span>}
                      <ul className="plain">
                        {q.workers.map((w) => (
                          <li key={w.name} data-worker={w.name} data-healthy={w.healthy}>
                            <span className={`dot ${w.healthy ? "healthy" : "unhealthy"}`} aria-label={w.healthy ? "healthy" : "stale"} />
                            {w.name} <span className="muted small">{w.status}, heartbeat {when(w.last_heartbeat)}</span>
                          </li>
                        ))}
                      </ul>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div className="card">
            <h2>Per workflow ({range})</h2>
            <table className="table small">
              <thead>
                <tr>
                  <th>Workflow</th>
                  <th>Runs</th>
                  <th>Success rate</th>
                  <th>p50</th>
                  <th>p95</th>
                </tr>
              </thead>
              <tbody>
                {data.workflows.map((w) => (
                  <tr key={w.workflow_id ?? "-"}>
                    <td>{w.workflow_name ?? w.workflow_id}</td>
                    <td>{w.total}</td>
                    <td>{pct(w.success_rate)}</td>
                    <td>{duration(w.p50_ms)}</td>
                    <td>{duration(w.p95_ms)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
