/** The workflow setting "on failure run workflow X" (its error workflow), kept by the API. */
import { useParams } from "react-router-dom";
import { api, type Page } from "../api/client";
import type { Workflow } from "../api/types";
import { ErrorBox, useAction, useAsync } from "./common";

interface ErrorWorkflow {
  workflow_id: string;
  on_failure_workflow_id: string | null;
}

export function ErrorWorkflowPicker({ readOnly }: { readOnly: boolean }) {
  const { id } = useParams();
  const current = useAsync(() => api<ErrorWorkflow>(`/workflows/${id}/error-workflow`), [id]);
  const workflows = useAsync(() => api<Page<Workflow>>("/workflows", { query: { limit: 200 } }), []);
  const [act, busy, error] = useAction();
  if (!id) return null;
  return (
    <div className="field">
      <label htmlFor="wf-on-failure">On failure run workflow</label>
      <select
        id="wf-on-failure"
        disabled={readOnly || busy || !current.data}
        value={current.data?.on_failure_workflow_id ?? ""}
        onChange={(e) =>
          act(async () => {
            const next = await api<ErrorWorkflow>(`/workflows/${id}/error-workflow`, {
              method: "PUT",
              body: { on_failure_workflow_id: e.target.value || null },
            });
            current.setData(next);
          })
        }
      >
        <option value="">None</option>
        {workflows.data?.items
          .filter((w) => w.id !== id)
          .map((w) => (
            <option key={w.id} value={w.id}>
              {w.name}
            </option>
          ))}
      </select>
      <p className="muted small">Its run gets the failed run's workflow, run id, failed node, error and input as its trigger.</p>
      <ErrorBox error={error || current.error} />
    </div>
  );
}
