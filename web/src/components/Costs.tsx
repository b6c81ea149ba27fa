/** LLM tokens and cost: per workflow over a time range (dashboard), and of one run (run page). */
import { Link } from "react-router-dom";
import { api } from "../api/client";
import { ErrorBox, useAsync } from "./common";

export interface CostUsage {
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
  llm_calls: number;
  tool_calls: number;
  unpriced_tokens: number;
  models: string[];
}

export interface WorkflowCost extends CostUsage {
  workflow_id: string | null;
  workflow_name: string | null;
  runs: number;
  llm_runs: number;
}

export interface CostReport {
  runs: number;
  llm_runs: number;
  truncated: boolean;
  total: CostUsage;
  workflows: WorkflowCost[];
  top_runs: (CostUsage & { execution_id: string; workflow_id: string | null; workflow_name: string | null; started_at: string | null })[];
}

export interface RunCostData extends CostUsage {
  execution_id: string;
  steps: (CostUsage & { node_id: string; name: string; type: string })[];
}

export function usd(value: number): string {
  if (value === 0) return "$0";
  if (value < 0.01) return `$${value.toFixed(6)}`;
  return `$${value.toFixed(2)}`;
}

const tokens = (u: CostUsage) => (u.tokens_in + u.tokens_out).toLocaleString();

/** Cost per workflow as bars and a table (workflows that used a model only). */
export function CostByWorkflow({ since, until }: { since: string; until: string }) {
  const { data, error } = useAsync(() => api<CostReport>("/analytics/costs", { query: { since, until } }), [since, until]);
  const used = (data?.workflows ?? []).filter((w) => w.llm_runs > 0);
  const top = Math.max(...used.map((w) => w.cost_usd), 0);
  return (
    <div className="card" aria-labelledby="cost-h">
      <h2 id="cost-h">LLM cost per workflow</h2>
      <ErrorBox error={error} />
      {data && (
        <p className="muted small" role="status">
          {usd(data.total.cost_usd)} for {data.total.tokens_in.toLocaleString()} tokens in and {data.total.tokens_out.toLocaleString()} out over{" "}
          {data.llm_runs} of {data.runs} runs (test runs left out){data.truncated ? "; only the newest runs were read" : ""}.
        </p>
      )}
      {data && used.length === 0 && <p className="muted">No model was used in this range.</p>}
      {used.length > 0 && (
        <table className="table" aria-label="Cost per workflow">
          <thead>
            <tr>
              <th>Workflow</th>
              <th>Cost</th>
              <th />
              <th>Tokens</th>
              <th>LLM runs</th>
              <th>Cost per run</th>
            </tr>
          </thead>
          <tbody>
            {used.map((w) => (
              <tr key={w.workflow_id ?? "none"}>
                <td>{w.workflow_id ? <Link to={`/workflows/${w.workflow_id}`}>{w.workflow_name ?? w.workflow_id}</Link> : "—"}</td>
                <td>{usd(w.cost_usd)}</td>
                <td style={{ width: "30%" }}>
                  <svg width="100%" height="10" role="img" aria-label={`${usd(w.cost_usd)} of ${usd(top)}`}>
                    <rect className="bar-ok" x="0" y="0" height="10" width={`${top > 0 ? Math.max(1, (w.cost_usd / top) * 100) : 0}%`} />
                  </svg>
                </td>
                <td>{tokens(w)}{w.unpriced_tokens > 0 && <span className="muted small"> ({w.unpriced_tokens.toLocaleString()} unpriced)</span>}</td>
                <td>{w.llm_runs}</td>
                <td>{usd(w.cost_usd / Math.max(1, w.llm_runs))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** One run's cost, in total and per step (nothing when the run used no model). */
export function RunCost({ executionId }: { executionId: string }) {
  const { data, error } = useAsync(() => api<RunCostData>(`/analytics/executions/${executionId}/cost`), [executionId]);
  if (error) return <ErrorBox error={error} />;
  if (!data || data.steps.length === 0) return null;
  return (
    <div className="card" aria-labelledby="run-cost-h">
      <h2 id="run-cost-h">LLM cost</h2>
      <p data-testid="run-cost">
        <strong>{usd(data.cost_usd)}</strong> · {data.tokens_in.toLocaleString()} tokens in · {data.tokens_out.toLocaleString()} out · {data.llm_calls} model calls
        {data.tool_calls > 0 ? ` · ${data.tool_calls} tool calls` : ""}
      </p>
      <table className="table">
        <thead>
          <tr>
            <th>Node</th>
            <th>Model</th>
            <th>Tokens</th>
            <th>Cost</th>
          </tr>
        </thead>
        <tbody>
          {data.steps.map((s, i) => (
            <tr key={`${s.name}-${i}`}>
              <td>
                <code>{s.name}</code>
              </td>
              <td>{s.models.join(", ") || "—"}</td>
              <td>{tokens(s)}</td>
              <td>{s.unpriced_tokens > 0 ? "unpriced" : usd(s.cost_usd)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
