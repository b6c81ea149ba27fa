/** The selected node's test loop: run it alone or up to it, see its output, pin or unpin it. */
import { useState } from "react";
import { ErrorBox } from "../components/common";
import type { GraphNode } from "../graph/types";
import { useRunData } from "./runData";
import { useEditor } from "./store";
import { pinOutput, startTestRun, unpin, useLastTestRun, usePins, type TestRun } from "./testloop";

function show(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? "null";
}

/** Mark each node of a finished test run on the canvas with its status. */
function paint(run: TestRun): void {
  const st = useEditor.getState();
  st.clearRun();
  for (const step of run.steps) if (!step.iteration?.length) st.setRunState(step.node_id, { status: step.status, error: step.error ?? undefined });
}

export function RunNodeButton({ workflowId, node }: { workflowId: string; node: GraphNode }) {
  const session = useEditor((s) => s.session)!;
  const readOnly = useEditor((s) => s.readOnly);
  const pin = usePins((s) => s.pins[node.id]);
  const last = useLastTestRun((s) => s.run);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [manual, setManual] = useState<string | null>(null);
  // The trigger input a test run gets; null: the newest run's (the API's default).
  const [triggerInput, setTriggerInput] = useState<string | null>(null);
  const pickedTrigger = useRunData((s) => s.trigger); // the data panel's run: a starting point
  const step = last?.steps.find((s) => s.node_id === node.id && !s.iteration?.length);

  const go = async (label: string, action: () => Promise<void>) => {
    setBusy(label);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  const run = (mode: "node" | "until") =>
    go(mode === "node" ? "Running…" : "Running up to here…", async () => {
      let input: { input?: unknown } = {};
      if (triggerInput !== null) {
        try {
          input = { input: triggerInput.trim() ? JSON.parse(triggerInput) : null };
        } catch (e) {
          throw new Error(`Trigger input is not JSON: ${(e as Error).message}`);
        }
      }
      const result = await startTestRun(workflowId, session.doc, { node_id: node.id, mode, ...input });
      useLastTestRun.getState().set(result);
      paint(result);
    });

  return (
    <section className="testloop-node" aria-label={`Test ${node.id}`}>
      <h3>Test this node</h3>
      <div className="row">
        <button className="primary" onClick={() => run("node")} disabled={readOnly || !!busy} title="Run this node alone: upstream outputs come from pins, else the last run">
          Run node
        </button>
        <button onClick={() => run("until")} disabled={readOnly || !!busy} title="Run this node and every node leading to it">
          Run up to here
        </button>
      </div>
      {triggerInput === null ? (
        !readOnly && (
          <button onClick={() => setTriggerInput(show(pickedTrigger ?? {}))} title="Without one, a test run gets the trigger input of the workflow's newest run">
            Set trigger input…
          </button>
        )
      ) : (
        <div className="form">
          <label>
            Trigger input (JSON)
            <textarea aria-label="Trigger input" rows={4} value={triggerInput} onChange={(e) => setTriggerInput(e.target.value)} />
          </label>
          <button onClick={() => setTriggerInput(null)}>Use the newest run's input</button>
        </div>
      )}
      {busy && <div className="muted" role="status">{busy}</div>}
      <ErrorBox error={error} onClose={() => setError(null)} />
      {step && (
        <div data-testid="node-output" data-status={step.status}>
          <div className="muted">
            Output ({step.status}) of test run <code>{last!.execution_id.slice(0, 8)}</code>
            {last!.trigger_from && (
              <span data-testid="trigger-from">
                {" "}(trigger input of run <code>{last!.trigger_from.slice(0, 8)}</code>)
              </span>
            )}
          </div>
          <pre className="output">{step.error ? `error: ${step.error.message}` : show(step.output)}</pre>
          {!step.error && !readOnly && (
            <button onClick={() => go("Pinning…", async () => void (await pinOutput(workflowId, node.id, { source: "run", run_id: last!.execution_id })))}>
              Pin this output
            </button>
          )}
        </div>
      )}
      {pin ? (
        <div data-testid="pinned-output">
          <div className="muted">
            Pinned ({pin.source}){pin.pinned_by ? ` by ${pin.pinned_by}` : ""}: test runs use this instead of running the node
          </div>
          <pre className="output">{show(pin.output)}</pre>
          {!readOnly && <button onClick={() => go("Unpinning…", () => unpin(workflowId, node.id))}>Unpin</button>}
        </div>
      ) : (
        !readOnly &&
        (manual === null ? (
          <button onClick={() => setManual(show(step?.output ?? {}))}>Pin by hand…</button>
        ) : (
          <div className="form">
            <label>
              Output to pin (JSON)
              <textarea aria-label="Output to pin" rows={5} value={manual} onChange={(e) => setManual(e.target.value)} />
            </label>
            <div className="row">
              <button
                className="primary"
                onClick={() =>
                  go("Pinning…", async () => {
                    await pinOutput(workflowId, node.id, { source: "manual", output: JSON.parse(manual) });
                    setManual(null);
                  })
                }
              >
                Pin
              </button>
              <button onClick={() => setManual(null)}>Cancel</button>
            </div>
          </div>
        ))
      )}
    </section>
  );
}
