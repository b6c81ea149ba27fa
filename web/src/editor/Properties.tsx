/** The properties panel: the selected node's settings, or the workflow's when nothing is selected. */
import { useState } from "react";
import type { GraphError, GraphNode, JsonSchema, NodeTypeInfo } from "../graph/types";
import { draftMaps, renameNode, setNodeConfigField, setNodeField } from "../graph/ydoc";
import { LOCAL } from "./collab";
import { SchemaForm } from "./SchemaForm";
import { ErrorWorkflowPicker } from "../components/ErrorWorkflowPicker";
import { DataPanel } from "./DataPanel";
import { ExpressionScope } from "./ExpressionInput";
import { NodeHelp } from "./NodeHelp";
import { McpToolSettings } from "../components/McpToolSettings";
import { McpToolsPicker } from "./McpToolsPicker";
import { errorField, localErrors, useEditor } from "./store";

const NODE_ID = /^[a-z][a-z0-9_]{0,62}$/;

const RETRY_SCHEMA: JsonSchema = {
  type: "object",
  properties: {
    attempts: { type: "integer", title: "Retry attempts", minimum: 0, maximum: 10 },
    delay_seconds: { type: "number", title: "Delay (s)" },
    backoff: { enum: ["fixed", "exponential"], title: "Backoff" },
    max_delay_seconds: { type: "number", title: "Max delay (s)" },
    jitter: { type: "number", title: "Jitter (0-1)" },
  },
};

const SETTINGS_SCHEMA: JsonSchema = {
  type: "object",
  properties: {
    timeout_seconds: { type: "integer", title: "Run timeout (s)" },
    max_parallel: { type: "integer", title: "Max parallel nodes" },
  },
};

export function Properties({ selected }: { selected: GraphNode | null }) {
  const { session, readOnly, catalogue, serverErrors, graph } = useEditor();
  if (!session || !graph) return <aside className="properties" />;
  if (!selected) return <WorkflowSettings />;
  const info = catalogue.find((c) => c.type === selected.type && (selected.version == null || c.version === selected.version));
  return <NodeProperties key={selected.id} node={selected} info={info} serverErrors={serverErrors.filter((e) => e.node_id === selected.id)} readOnly={readOnly} />;
}

function NodeProperties({ node, info, serverErrors, readOnly }: { node: GraphNode; info?: NodeTypeInfo; serverErrors: GraphError[]; readOnly: boolean }) {
  const session = useEditor((s) => s.session)!;
  const doc = session.doc;
  const [idText, setIdText] = useState(node.id);
  const [idError, setIdError] = useState<string | null>(null);
  const fieldErrors: Record<string, string[]> = {};
  const nodeLevel: string[] = [];
  for (const e of serverErrors) {
    const f = errorField(e);
    const inConfig = !!info?.config_schema.properties?.[f] || (node.config && f in node.config);
    if (f && inConfig) (fieldErrors[f] ??= []).push(e.message);
    else nodeLevel.push(e.message);
  }
  if (!info) nodeLevel.push(...localErrors(node, info).filter((e) => e.code === "unknown_type").map((e) => e.message));
  const set = (key: string, value: unknown) => setNodeField(doc, node.id, key, value, LOCAL);
  const commitId = () => {
    if (idText === node.id) return;
    if (!NODE_ID.test(idText)) return setIdError("lowercase letter first, then lowercase letters, digits or _ (max 63)");
    if (draftMaps(doc).nodes.has(idText)) return setIdError(`a node ${idText} exists`);
    setIdError(null);
    renameNode(doc, node.id, idText, LOCAL);
  };
  return (
    <aside className="properties" aria-label={`Properties of ${node.id}`}>
      <NodeHelp type={node.type} info={info} />
      {nodeLevel.map((m, i) => (
        <div key={i} className="field-error" role="alert">
          {m}
        </div>
      ))}
      <div className="field">
        <label htmlFor="node-id">Id</label>
        <input id="node-id" value={idText} disabled={readOnly} onChange={(e) => setIdText(e.target.value)} onBlur={commitId} onKeyDown={(e) => e.key === "Enter" && commitId()} aria-invalid={!!idError || undefined} />
        {idError && <div className="field-error">{idError}</div>}
      </div>
      <div className="field">
        <label htmlFor="node-name">Name</label>
        <input id="node-name" value={node.name ?? ""} placeholder={node.id} disabled={readOnly} onChange={(e) => set("name", e.target.value || undefined)} />
      </div>
      <h3>Settings</h3>
      <ExpressionScope.Provider value={{ workflowId: session.workflowId, nodeId: node.id }}>
      <SchemaForm
        schema={info?.config_schema ?? { type: "object", properties: {} }}
        value={(node.config ?? {}) as Record<string, unknown>}
        expressionFields={info?.expression_fields ?? []}
        fieldErrors={fieldErrors}
        readOnly={readOnly}
        onFieldChange={(name, value) => setNodeConfigField(doc, node.id, name, value, LOCAL)}
      />
      </ExpressionScope.Provider>
      <McpToolsPicker config={(node.config ?? {}) as Record<string, unknown>} readOnly={readOnly} onToolsChange={(tools) => setNodeConfigField(doc, node.id, "tools", tools, LOCAL)} />
      <DataPanel node={node} />
      <details>
        <summary>Errors, retries and timeout</summary>
        <div className="field">
          <label htmlFor="node-onerror">On error</label>
          <select id="node-onerror" value={node.on_error ?? "fail"} disabled={readOnly} onChange={(e) => set("on_error", e.target.value === "fail" ? undefined : e.target.value)}>
            <option value="fail">fail the run</option>
            <option value="continue">continue with the error as output</option>
            <option value="route">route to the error handle</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="node-timeout">Timeout (s)</label>
          <input id="node-timeout" type="number" min={0} value={node.timeout_seconds ?? ""} disabled={readOnly} onChange={(e) => set("timeout_seconds", e.target.value === "" ? undefined : Number(e.target.value))} />
        </div>
        <SchemaForm
          schema={RETRY_SCHEMA}
          value={(node.retry ?? {}) as Record<string, unknown>}
          readOnly={readOnly}
          onFieldChange={(name, value) => {
            const retry = { ...(node.retry ?? {}), [name]: value } as Record<string, unknown>;
            if (value === undefined) delete retry[name];
            set("retry", Object.keys(retry).length ? retry : undefined);
          }}
        />
        <div className="field">
          <label>
            <input type="checkbox" checked={!!node.disabled} disabled={readOnly} onChange={(e) => set("disabled", e.target.checked || undefined)} /> Disabled (pass input through)
          </label>
        </div>
      </details>
    </aside>
  );
}

function WorkflowSettings() {
  const { session, graph, readOnly, serverErrors } = useEditor();
  if (!session || !graph) return null;
  const meta = draftMaps(session.doc).meta;
  const setMeta = (key: string, value: unknown) =>
    session.doc.transact(() => {
      if (value === undefined || value === "") meta.delete(key);
      else meta.set(key, value);
    }, LOCAL);
  const general = serverErrors.filter((e) => !e.node_id);
  return (
    <aside className="properties" aria-label="Workflow settings">
      <h2>Workflow</h2>
      {general.map((e, i) => (
        <div key={i} className="field-error" role="alert">
          {e.edge_id ? `edge ${e.edge_id}: ` : ""}
          {e.message}
        </div>
      ))}
      <div className="field">
        <label htmlFor="wf-name">Name</label>
        <input id="wf-name" value={graph.name ?? ""} disabled={readOnly} onChange={(e) => setMeta("name", e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="wf-desc">Description</label>
        <textarea id="wf-desc" rows={3} value={graph.description ?? ""} disabled={readOnly} onChange={(e) => setMeta("description", e.target.value)} />
      </div>
      <SchemaForm
        schema={SETTINGS_SCHEMA}
        value={(graph.settings ?? {}) as Record<string, unknown>}
        readOnly={readOnly}
        onFieldChange={(name, value) => {
          const settings = { ...(graph.settings ?? {}), [name]: value } as Record<string, unknown>;
          if (value === undefined) delete settings[name];
          setMeta("settings", Object.keys(settings).length ? settings : undefined);
        }}
      />
      <ErrorWorkflowPicker readOnly={readOnly} />
      <McpToolSettings readOnly={readOnly} />
      <p className="muted small">
        {graph.nodes.length} nodes · {graph.edges.length} edges. Select a node to edit it.
      </p>
    </aside>
  );
}
