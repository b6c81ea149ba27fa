/**
 * A JSON value as a tree (types, sizes, search, copy a path as CEL) or, for a list of objects,
 * as a table. Masked values (`***`) are shown as masked; nothing here can unmask them.
 */
import { memo, useMemo, useState } from "react";
import { celPath, describe, firstTable, kindOf, matchingPaths, pathKey, type PathPart } from "./dataView";

export interface JsonViewProps {
  value: unknown;
  /** Where the value is in CEL scope (`["steps", "fetch"]`); null: it has no CEL path. */
  root: PathPart[] | null;
  /** Called with the CEL path copied. */
  onCopy?: (path: string) => void;
  label: string;
}

async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard permission (an insecure origin): the panel still shows what was copied.
  }
}

export function JsonView({ value, root, onCopy, label }: JsonViewProps) {
  const [query, setQuery] = useState("");
  const table = useMemo(() => firstTable(value), [value]);
  const [mode, setMode] = useState<"tree" | "table">("tree");
  const hits = useMemo(() => matchingPaths(value, query), [value, query]);
  const copy = (path: PathPart[]) => {
    if (!root) return;
    const text = celPath(root, path);
    void copyText(text);
    onCopy?.(text);
  };
  return (
    <div className="json-view" data-testid={`json-${label}`}>
      <div className="json-toolbar">
        <input type="search" placeholder="Search keys and values" aria-label={`Search ${label}`} value={query} onChange={(e) => setQuery(e.target.value)} />
        {table && (
          <div className="seg" role="group" aria-label={`${label} view`}>
            <button type="button" aria-pressed={mode === "tree"} onClick={() => setMode("tree")}>
              Tree
            </button>
            <button type="button" aria-pressed={mode === "table"} onClick={() => setMode("table")}>
              Table
            </button>
          </div>
        )}
      </div>
      {mode === "table" && table ? (
        <JsonTable rows={table.table.rows} columns={table.table.columns} path={table.path} onCopy={root ? copy : undefined} query={query} />
      ) : (
        <ul className="json-tree" role="tree" aria-label={label}>
          <TreeNode name={label} value={value} path={[]} depth={0} hits={query.trim() ? hits : null} onCopy={root ? copy : undefined} />
        </ul>
      )}
    </div>
  );
}

const TreeNode = memo(function TreeNode({ name, value, path, depth, hits, onCopy }: { name: string; value: unknown; path: PathPart[]; depth: number; hits: Set<string> | null; onCopy?: (path: PathPart[]) => void }) {
  const kind = kindOf(value);
  const branch = kind === "list" || kind === "map";
  const [open, setOpen] = useState(depth < 2);
  if (hits && !hits.has(pathKey(path))) return null;
  const expanded = branch && (open || !!hits);
  const entries: [PathPart, unknown][] = kind === "list" ? (value as unknown[]).map((v, i) => [i, v]) : kind === "map" ? Object.entries(value as object) : [];
  const shown = entries.slice(0, 200);
  return (
    <li role="treeitem" aria-expanded={branch ? expanded : undefined} data-path={pathKey(path)}>
      <div className="json-row">
        {branch ? (
          <button type="button" className="json-toggle" aria-label={`${expanded ? "Collapse" : "Expand"} ${name}`} onClick={() => setOpen(!expanded)}>
            {expanded ? "▾" : "▸"}
          </button>
        ) : (
          <span className="json-toggle" />
        )}
        <span className="json-key">{name}</span>
        {!branch && <Scalar value={value} />}
        <span className={`json-type kind-${kind}`} title={describe(value)}>
          {describe(value)}
        </span>
        {onCopy && path.length > 0 && (
          <button type="button" className="json-copy" title="Copy the path as a CEL expression" aria-label={`Copy path of ${name}`} onClick={() => onCopy(path)}>
            ⧉
          </button>
        )}
      </div>
      {expanded && entries.length > 0 && (
        <ul role="group">
          {shown.map(([k, v]) => (
            <TreeNode key={String(k)} name={typeof k === "number" ? `[${k}]` : k} value={v} path={[...path, k]} depth={depth + 1} hits={hits} onCopy={onCopy} />
          ))}
          {entries.length > shown.length && <li className="muted small">… {entries.length - shown.length} more</li>}
        </ul>
      )}
    </li>
  );
});

function Scalar({ value }: { value: unknown }) {
  const kind = kindOf(value);
  if (kind === "masked") return <span className="json-value masked" title="A secret: masked when the run stored it">{String(value)}</span>;
  const text = kind === "string" ? JSON.stringify(value) : String(value ?? "null");
  return <span className={`json-value kind-${kind}`}>{text.length > 300 ? text.slice(0, 300) + "…" : text}</span>;
}

function JsonTable({ rows, columns, path, onCopy, query }: { rows: Record<string, unknown>[]; columns: string[]; path: PathPart[]; onCopy?: (path: PathPart[]) => void; query: string }) {
  const needle = query.trim().toLowerCase();
  const shown = rows
    .map((r, i) => [i, r] as const)
    .filter(([, r]) => !needle || JSON.stringify(r).toLowerCase().includes(needle))
    .slice(0, 500);
  return (
    <div className="json-table-wrap">
      <table className="json-table" data-testid="json-table">
        <thead>
          <tr>
            <th>#</th>
            {columns.map((c) => (
              <th key={c}>
                {c}
                {onCopy && (
                  <button type="button" className="json-copy" title="Copy the column as a CEL expression" aria-label={`Copy path of column ${c}`} onClick={() => onCopy([...path, 0, c])}>
                    ⧉
                  </button>
                )}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.map(([i, r]) => (
            <tr key={i}>
              <td className="muted">{i}</td>
              {columns.map((c) => (
                <td key={c}>{c in r ? <Scalar value={typeof r[c] === "object" && r[c] !== null ? JSON.stringify(r[c]) : r[c]} /> : ""}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <div className="muted small">
        {rows.length} rows · {columns.length} columns
      </div>
    </div>
  );
}
