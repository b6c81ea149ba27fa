/** A node type's help in the properties panel: icon, name, description, example; unknown or deprecated types say so. */
import type { NodeTypeInfo } from "../graph/types";
import { NodeIcon } from "./icons";

/** The palette's and the canvas's tooltip: the description and the example config. */
export function helpText(info: NodeTypeInfo): string {
  const parts = [info.description];
  if (info.deprecated) parts.unshift(`Deprecated: ${info.deprecated}`);
  if (info.example) parts.push(`Example: ${JSON.stringify(info.example)}`);
  return parts.join("\n\n");
}

export function NodeHelp({ type, info }: { type: string; info?: NodeTypeInfo }) {
  if (!info) {
    return (
      <div className="node-help">
        <h2>
          <NodeIcon name={null} /> {type}
        </h2>
        <p className="badge badge-unknown" data-testid="help-unknown">
          Unknown node type: no installed plugin provides {type}. The draft keeps it, but it cannot be published or run.
        </p>
      </div>
    );
  }
  return (
    <div className="node-help">
      <h2>
        <NodeIcon name={info.icon} /> {info.display_name}
      </h2>
      {info.deprecated && (
        <p className="badge badge-deprecated" data-testid="help-deprecated">
          Deprecated: {info.deprecated}
        </p>
      )}
      <p className="muted small">{info.description}</p>
      {info.example && (
        <details className="node-example">
          <summary>Example</summary>
          <pre className="code small">{JSON.stringify(info.example, null, 2)}</pre>
        </details>
      )}
    </div>
  );
}
