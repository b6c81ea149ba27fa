/** A node on the canvas: name, type, status, errors, and labelled output handles. */
import { memo } from "react";
import { Handle, Position, type NodeProps } from "@xyflow/react";
import type { FlowNode } from "./store";
import { NodeIcon } from "./icons";
import { helpText } from "./NodeHelp";
import { RunOverlay } from "./RunOverlay";
import { usePins } from "./testloop";

function GoraxNodeView({ id, data, selected }: NodeProps<FlowNode>) {
  const { node, info, handles, input, errors, runStatus, attempt, remote } = data;
  const cls = ["gx-node", `cat-${info?.category ?? "unknown"}`, runStatus ? `run-${runStatus}` : "", errors.length ? "has-errors" : "", selected ? "selected" : "", node.disabled ? "disabled" : ""].filter(Boolean).join(" ");
  const outs = handles.length ? handles : [""];
  const pinned = usePins((s) => id in s.pins);
  return (
    <div
      className={cls}
      data-testid={`node-${id}`}
      data-status={runStatus ?? ""}
      style={remote.length ? { boxShadow: `0 0 0 3px ${remote[0].color}` } : undefined}
      title={errors.length ? errors.join("\n") : info ? helpText(info) : `unknown node type ${node.type}`}
    >
      {input && <Handle type="target" position={Position.Top} aria-label={`${id} input`} />}
      <div className="gx-title">
        <span className="gx-head">
          <NodeIcon name={info?.icon} />
          <span className="gx-name">{node.name ?? node.id}</span>
        </span>
        {pinned && <span className="gx-pin" data-testid={`pin-${id}`} title="Output pinned: test runs use it instead of running the node">pinned</span>}
        {runStatus && (
          <span className={`status status-${runStatus}`}>
            {runStatus}
            {attempt && attempt > 1 ? ` #${attempt}` : ""}
          </span>
        )}
      </div>
      <div className="gx-type">
        {info?.display_name ?? node.type} <span className="muted">· {node.id}</span>
        {!info && <span className="badge badge-unknown" data-testid={`node-unknown-${id}`}>unknown type</span>}
        {info?.deprecated && <span className="badge badge-deprecated" data-testid={`node-deprecated-${id}`}>deprecated</span>}
      </div>
      <RunOverlay id={id} />
      {errors.length > 0 && (
        <div className="gx-errors" role="note" data-testid={`node-errors-${id}`}>
          ⚠ {errors[0]}
          {errors.length > 1 ? ` (+${errors.length - 1})` : ""}
        </div>
      )}
      {remote.length > 0 && (
        <div className="gx-remote" aria-label="Selected by">
          {remote.map((r) => r.name).join(", ")}
        </div>
      )}
      <div className="gx-handles">
        {outs.map((h, i) => (
          <span key={h || "main"} className={"gx-handle-label" + (h === "error" ? " error" : "")} style={{ left: `${((i + 0.5) / outs.length) * 100}%` }}>
            {h}
            <Handle type="source" id={h || undefined} position={Position.Bottom} className={h === "error" ? "handle-error" : undefined} aria-label={`${id} output ${h || "main"}`} data-handle={h || "main"} />
          </span>
        ))}
      </div>
    </div>
  );
}

export const GoraxNode = memo(GoraxNodeView);
export const nodeTypes = { gorax: GoraxNode };
