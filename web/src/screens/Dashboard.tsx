import { useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { api } from "../api/client";
import type { Analytics } from "../api/types";
import { RunsChart, Ring } from "../components/charts";
import { CostByWorkflow } from "../components/Costs";
import { PendingInvitations } from "../components/Invitations";
import { duration, ErrorBox, Loading, when } from "../components/common";

const RANGES = { "24h": { ms: 86400e3, interval: "hour" }, "7d": { ms: 7 * 86400e3, interval: "day" }, "30d": { ms: 30 * 86400e3, interval: "day" } } as const;

import { useAsync } from "../components/common";

export function Dashboard() {
  const [range, setRange] = useState<keyof typeof RANGES>("7d");
  // One time span per choice of range, shared by the run numbers and the cost per workflow.
  const span = useMemo(() => ({ since: new Date(Date.now() - RANGES[range].ms).toISOString(), until: new Date().toISOString() }), [range]);
  const { data, error, loading } = useAsync(
    () => api<Analytics>("/analytics/executions", { query: { ...span, interval: RANGES[range].interval } }),
    [span],
  );
  return (
    <section aria-labelledby="dash-h">
      <header className="page-head">
        <h1 id="dash-h">Dashboard</h1>
        <div role="group" aria-label="Time range" className="segmented">
          {(Object.keys(RANGES) as (keyof typeof RANGES)[]).map((k) => (
            <button key={k} aria-pressed={range === k} onClick={() => setRange(k)}>
              {k}
            </button>
          ))}
        </div>
      </header>
      <PendingInvitations />
      <ErrorBox error={error} />
      {loading && !data && <Loading />}
      {data && (
        <>
          <div className="cards">
            <div className="card">
              <h2>Runs over time</h2>
              <RunsChart buckets={data.buckets} />
              <div className="legend small">
                <span className="sw bar-ok" /> completed <span className="sw bar-fail" /> failed <span className="sw bar-other" /> other
              </div>
            </div>
            <div className="card narrow">
              <h2>Success rate</h2>
              <Ring value={data.success_rate} label="Success rate" />
              <dl className="kv">
                <dt>Runs</dt>
                <dd>{data.buckets.reduce((s, b) => s + b.total, 0)}</dd>
                <dt>p50 duration</dt>
                <dd>{duration(data.p50_ms)}</dd>
                <dt>p95 duration</dt>
                <dd>{duration(data.p95_ms)}</dd>
              </dl>
            </div>
          </div>
          <CostByWorkflow since={span.since} until={span.until} />
          <div className="card">
            <h2>Recent failures</h2>
            {data.recent_failures.length === 0 ? (
              <p className="muted">No failures in this range.</p>
            ) : (
              <table className="table">
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Workflow</th>
                    <th>Failing node</th>
                    <th>Error</th>
                  </tr>
                </thead>
                <tbody>
                  {data.recent_failures.map((f) => (
                    <tr key={f.execution_id}>
                      <td>
                        <Link to={`/runs/${f.execution_id}`}>{when(f.at)}</Link>
                      </td>
                      <td>
                        <Link to={`/workflows/${f.workflow_id}`}>{f.workflow_name ?? f.workflow_id}</Link>
                      </td>
                      <td>
                        <code>{f.node_id ?? "—"}</code>
                      </td>
                      <td className="clip">{typeof f.error === "string" ? f.error : JSON.stringify(f.error)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </div>
        </>
      )}
    </section>
  );
}
