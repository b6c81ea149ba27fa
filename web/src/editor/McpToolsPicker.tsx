/**
 * "List tools" for each MCP tool source of a node's config: asks the API (`POST /mcp/tools`) for
 * the server's tools now and writes the ones ticked into that source's `tools` list in the draft.
 */
import { api } from "../api/client";
import { ErrorBox, useAction } from "../components/common";
import { useState } from "react";
import { chooseAll, chooseTool, isChosen, listRequest, mcpSources, type McpSource } from "./mcpTools";

interface ListedTool {
  name: string;
  description: string;
}

export function McpToolsPicker({
  config,
  readOnly,
  onToolsChange,
}: {
  config: Record<string, unknown>;
  readOnly: boolean;
  /** Writes the config's whole new `tools` list (the form's own path into the draft). */
  onToolsChange: (tools: unknown[]) => void;
}) {
  const sources = mcpSources(config);
  if (sources.length === 0) return null;
  const all = config.tools as unknown[];
  return (
    <div className="mcp-tools">
      {sources.map((s) => (
        <SourceTools
          // A changed server or credential starts a fresh list.
          key={`${s.index}:${s.server.url ?? ""}:${s.server.stdio ?? ""}:${s.credential ?? ""}`}
          source={s}
          readOnly={readOnly}
          onChoose={(name, on, listed) => onToolsChange(chooseTool(all, s.index, listed, name, on))}
          onAll={() => onToolsChange(chooseAll(all, s.index))}
        />
      ))}
    </div>
  );
}

function SourceTools({
  source,
  readOnly,
  onChoose,
  onAll,
}: {
  source: McpSource;
  readOnly: boolean;
  onChoose: (name: string, on: boolean, listed: string[]) => void;
  onAll: () => void;
}) {
  const [listed, setListed] = useState<ListedTool[] | null>(null);
  const [act, busy, error] = useAction();
  const where = source.server.url ?? `stdio:${source.server.stdio}`;
  const list = () =>
    act(async () => {
      setListed(null);
      const r = await api<{ tools: ListedTool[] }>("/mcp/tools", { method: "POST", body: listRequest(source) });
      setListed(r.tools);
    });
  const names = listed?.map((t) => t.name) ?? [];
  return (
    <fieldset className="field" aria-label={`MCP tools of tools[${source.index}]`} data-testid={`mcp-source-${source.index}`}>
      <legend>
        tools[{source.index}]: <span className="code">{where}</span>
      </legend>
      <div className="row">
        <button type="button" onClick={list} disabled={busy || readOnly} title={readOnly ? "Listing needs edit permission" : undefined}>
          {busy ? "Listing…" : "List tools"}
        </button>
        {source.tools !== undefined && (
          <button type="button" onClick={onAll} disabled={readOnly}>
            Allow all tools
          </button>
        )}
        <ErrorBox error={error} />
      </div>
      <p className="muted small">{source.tools === undefined ? "All of the server's tools (none chosen)." : `Chosen: ${source.tools.length ? source.tools.join(", ") : "none"}.`}</p>
      {listed && listed.length === 0 && <p className="muted small">The server offers no tools.</p>}
      {listed && listed.length > 0 && (
        <ul className="plain">
          {listed.map((t) => (
            <li key={t.name}>
              <label className="check">
                <input type="checkbox" checked={isChosen(source.tools, t.name)} disabled={readOnly} onChange={(e) => onChoose(t.name, e.target.checked, names)} /> <strong>{t.name}</strong>
              </label>
              {t.description && <div className="muted small">{t.description}</div>}
            </li>
          ))}
        </ul>
      )}
    </fieldset>
  );
}
