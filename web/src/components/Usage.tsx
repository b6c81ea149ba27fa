import { api } from "../api/client";
import { ErrorBox, Loading, useAsync, when } from "./common";

/** One quota of the tenant as GET /tenant/usage answers it. */
export interface QuotaUsage {
  name: string;
  unit: string;
  limit: number;
  unlimited: boolean;
  source: "default" | "tenant";
  used: number;
  resets_at: string | null;
}

const LABELS: Record<string, string> = {
  runs_per_month: "Runs this month",
  concurrent_runs: "Runs at once",
  webhook_requests_per_minute: "Webhook requests this minute",
  storage_bytes: "Storage",
  agent_tokens_per_month: "Agent tokens this month",
  agent_cost_usd_per_month: "Agent cost this month",
  agent_tool_calls_per_month: "Agent tool calls this month",
};

function amount(value: number, unit: string): string {
  if (unit === "USD") return `$${value.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 4 })}`;
  if (unit !== "bytes") return value.toLocaleString();
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = value;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** The share of a limit used, 0..1 (0 when unlimited). */
export function share(q: QuotaUsage): number {
  return q.unlimited || q.limit <= 0 ? 0 : Math.min(1, q.used / q.limit);
}

/** The tenant's quotas with a bar each: what is used, the limit, when it resets. Operators set
 * the limits (`gorax quotas set`); admins see them here. */
export function Usage() {
  const usage = useAsync(() => api<{ tenant_id: string; items: QuotaUsage[] }>("/tenant/usage"), []);
  return (
    <div className="card">
      <h2>Usage</h2>
      <ErrorBox error={usage.error} />
      {usage.loading && !usage.data && <Loading />}
      <table className="table" aria-label="Usage">
        <thead>
          <tr>
            <th>Quota</th>
            <th>Used</th>
            <th style={{ width: "40%" }} />
            <th>Resets</th>
          </tr>
        </thead>
        <tbody>
          {usage.data?.items.map((q) => {
            const full = share(q) >= 1;
            return (
              <tr key={q.name} data-testid={`quota-${q.name}`}>
                <td>
                  {LABELS[q.name] ?? q.name}
                  {q.source === "tenant" && <span className="muted"> (set for this tenant)</span>}
                </td>
                <td>
                  {amount(q.used, q.unit)} of {q.unlimited ? "unlimited" : amount(q.limit, q.unit)}
                </td>
                <td>
                  <div
                    role="meter"
                    aria-label={LABELS[q.name] ?? q.name}
                    aria-valuemin={0}
                    aria-valuemax={q.unlimited ? 0 : q.limit}
                    aria-valuenow={q.used}
                    style={{ background: "#e9ecef", borderRadius: 4, height: 10 }}
                  >
                    <div className={full ? "bar-fail" : "bar-ok"} style={{ width: `${Math.round(share(q) * 100)}%`, height: 10, borderRadius: 4 }} />
                  </div>
                </td>
                <td>{q.resets_at ? when(q.resets_at) : ""}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
