/**
 * The selected node's input and output in a run of the workflow (the newest, or one picked from
 * the run list), beside its settings: JSON tree or table, search, copy a path as CEL.
 */
import { useState } from "react";
import type { GraphNode } from "../graph/types";
import { ErrorBox } from "../components/common";
import { formatDuration, overlaysOf, stepFor, stepRoot } from "./dataView";
import { JsonView } from "./JsonTree";
import { useRunData } from "./runData";

function when(iso?: string | null): string {
  return iso ? new Date(iso).toLocaleString() : "not started";
}

export function DataPanel({ node }: { node: GraphNode }) {
  const { runs, executionId, steps, loading, error, select, loadRuns } = useRunData();
  const [copied, setCopied] = useState<string | null>(null);
  const step = stepFor(steps, node.id);
  const overlay = step ? overlaysOf(steps.filter((s) => s.node_id === node.id))[node.id] : null;
  return (
    <section className="data-panel" aria-label={`Data of ${node.id}`} data-testid="data-panel">
      <div className="data-head">
        <h3>Data</h3>
        <select aria-label="Run" value={executionId ?? ""} onChange={(e) => void select(e.target.value || null)} disabled={!runs.length}>
          {!runs.length && <option value="">no runs yet</option>}
          {runs.map((r) => (
            <option key={r.id} value={r.id}>
              {r.status} · {when(r.started_at)}
            </option>
          ))}
        </select>
        <button type="button" className="small" onClick={() => void loadRuns()} title="List the newest runs">
          ↻
        </button>
      </div>
      <ErrorBox error={error} />
      {!runs.length && !executionId && <p className="muted small">Run the workflow to see what each node received and produced.</p>}
      {executionId && loading && <p className="muted small">Loading the run…</p>}
      {executionId && !loading && !step && <p className="muted small" data-testid="data-not-run">This node did not run in this run.</p>}
      {step && !loading && (
        <>
          <p className="data-summary small" data-testid="data-summary">
            <span className={`status status-${step.status}`}>{step.status}</span>
            {overlay?.durationMs != null && <span> · {formatDuration(overlay.durationMs)}</span>}
            {overlay?.items != null && <span> · {overlay.items} items</span>}
            {(step.attempts ?? 1) > 1 && <span> · {step.attempts} attempts</span>}
          </p>
          {step.error != null && (
            <pre className="data-error" role="note">
              {typeof step.error === "object" && step.error && "message" in step.error ? String((step.error as { message: unknown }).message) : JSON.stringify(step.error)}
            </pre>
          )}
          <details open>
            <summary>Input</summary>
            <JsonView value={step.input} root={null} label="input" />
          </details>
          <details open>
            <summary>Output</summary>
            <JsonView value={step.output} root={stepRoot(node.id)} label="output" onCopy={setCopied} />
          </details>
          {copied && (
            <div className="small copied" role="status" data-testid="copied">
              Copied <code>{copied}</code>
            </div>
          )}
        </>
      )}
    </section>
  );
}
