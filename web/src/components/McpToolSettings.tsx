/** The workflow setting "offer the published version as a tool of the tenant's MCP server", kept by the API. */
import { useEffect, useState } from "react";
import { useParams } from "react-router-dom";
import { api } from "../api/client";
import { ErrorBox, useAction, useAsync } from "./common";

interface McpTool {
  workflow_id: string;
  enabled: boolean;
  name: string;
  description: string;
  published: boolean;
}

export function McpToolSettings({ readOnly }: { readOnly: boolean }) {
  const { id } = useParams();
  const current = useAsync(() => api<McpTool>(`/workflows/${id}/mcp-tool`), [id]);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [act, busy, error] = useAction();
  const data = current.data;
  useEffect(() => {
    if (data) {
      setName(data.name);
      setDescription(data.description);
    }
  }, [data]);
  if (!id) return null;
  // The box switches with the stored name and description; "Save tool" stores the edited ones.
  const save = (body: { enabled: boolean; name: string; description: string }) =>
    act(async () => {
      const next = await api<McpTool>(`/workflows/${id}/mcp-tool`, { method: "PUT", body });
      current.setData(next);
    });
  const changed = !!data && (name !== data.name || description !== data.description);
  return (
    <fieldset className="field" aria-label="MCP tool">
      <label className="check">
        <input
          id="wf-mcp-enabled"
          type="checkbox"
          checked={data?.enabled ?? false}
          disabled={readOnly || busy || !data}
          onChange={(e) => data && save({ enabled: e.target.checked, name: data.name, description: data.description })}
        />{" "}
        Offer as an MCP tool
      </label>
      {data?.enabled && (
        <>
          <label htmlFor="wf-mcp-name">Tool name</label>
          <input id="wf-mcp-name" value={name} disabled={readOnly || busy} onChange={(e) => setName(e.target.value)} />
          <label htmlFor="wf-mcp-desc">Tool description</label>
          <textarea id="wf-mcp-desc" rows={2} value={description} disabled={readOnly || busy} onChange={(e) => setDescription(e.target.value)} />
          {changed && (
            <button type="button" onClick={() => save({ enabled: true, name, description })} disabled={readOnly || busy}>
              Save tool
            </button>
          )}
          <p className="muted small" role="status">
            {data.published
              ? `MCP clients with an API key of this tenant see the tool "${data.name}" at /mcp.`
              : "Publish the workflow: only a published version is offered."}
          </p>
        </>
      )}
      <ErrorBox error={error || current.error} />
    </fieldset>
  );
}
