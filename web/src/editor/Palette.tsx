/** The node palette from `GET /node-types`: search, categories, drag onto the canvas (or Enter). */
import { useMemo, useState } from "react";
import type { NodeTypeInfo } from "../graph/types";
import { NodeIcon } from "./icons";
import { helpText } from "./NodeHelp";

export const DRAG_TYPE = "application/x-gorax-node";

export function Palette({ catalogue, onAdd, disabled }: { catalogue: NodeTypeInfo[]; onAdd: (info: NodeTypeInfo) => void; disabled: boolean }) {
  const [q, setQ] = useState("");
  const groups = useMemo(() => {
    const newest = new Map<string, NodeTypeInfo>();
    for (const c of catalogue) if (!newest.has(c.type) || newest.get(c.type)!.version < c.version) newest.set(c.type, c);
    const needle = q.trim().toLowerCase();
    const list = [...newest.values()].filter((c) => !needle || `${c.display_name} ${c.type} ${c.description} ${c.category}`.toLowerCase().includes(needle));
    const by = new Map<string, NodeTypeInfo[]>();
    for (const c of list.sort((a, b) => a.display_name.localeCompare(b.display_name))) by.set(c.category, [...(by.get(c.category) ?? []), c]);
    return [...by.entries()].sort(([a], [b]) => (a === "trigger" ? -1 : b === "trigger" ? 1 : a.localeCompare(b)));
  }, [catalogue, q]);
  return (
    <aside className="palette" aria-label="Node palette">
      <input id="palette-search" type="search" placeholder="Search nodes (/)" aria-label="Search nodes" value={q} onChange={(e) => setQ(e.target.value)} />
      {groups.map(([category, items]) => (
        <details key={category} open>
          <summary>{category}</summary>
          <ul>
            {items.map((c) => (
              <li
                key={c.type}
                className="palette-item"
                data-testid={`palette-${c.type}`}
                draggable={!disabled}
                tabIndex={0}
                role="button"
                aria-disabled={disabled}
                title={helpText(c)}
                data-icon={c.icon ?? "box"}
                onDragStart={(e) => {
                  e.dataTransfer.setData(DRAG_TYPE, c.type);
                  e.dataTransfer.effectAllowed = "copy";
                }}
                onKeyDown={(e) => {
                  if ((e.key === "Enter" || e.key === " ") && !disabled) {
                    e.preventDefault();
                    onAdd(c);
                  }
                }}
                onDoubleClick={() => !disabled && onAdd(c)}
              >
                <strong>
                  <NodeIcon name={c.icon} /> {c.display_name}
                  {c.deprecated && <span className="badge badge-deprecated">deprecated</span>}
                </strong>
                <span className="muted small">{c.type}</span>
              </li>
            ))}
          </ul>
        </details>
      ))}
      {groups.length === 0 && <p className="muted small">No node type matches.</p>}
    </aside>
  );
}
