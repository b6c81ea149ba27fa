/** The template gallery: search, category chips, cards, a read-only preview, "Use this template". */
import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useLocation, useNavigate } from "react-router-dom";
import { Background, Controls, ReactFlow, ReactFlowProvider, type Edge } from "@xyflow/react";
import { api } from "../api/client";
import { ErrorBox, Loading, Modal, useAction, useAsync } from "../components/common";
import { nodeTypes } from "../editor/GoraxNode";
import type { FlowNode } from "../editor/store";
import { hasInput, outputHandles } from "../graph/handles";
import type { Graph, GraphNode, NodeTypeInfo } from "../graph/types";
import { can, useSession } from "../session";

export interface TemplateSummary {
  id: string;
  title: string;
  description: string;
  category: string;
  tags: string[];
  node_count: number;
  node_types: string[];
  trigger_type: string | null;
  credentials: string[];
}

interface CredentialNeed {
  name: string;
  types: string[];
  nodes: string[];
}

interface TemplateDetail extends TemplateSummary {
  author: string;
  license: string;
  graph: Graph;
  trigger_node: string | null;
  sample_trigger: unknown;
  credentials_needed: CredentialNeed[];
  variables: string[];
}

interface TemplateList {
  items: TemplateSummary[];
  total: number;
  categories: { id: string; label: string; count: number }[];
}

/** What `POST /templates/{id}/use` answers; the editor shows it as a checklist. */
export interface TemplateUsed {
  workflow_id: string;
  name: string;
  template_id: string;
  credentials: (CredentialNeed & { present: boolean; found_type: string | null })[];
  variables: { name: string; present: boolean }[];
}

/** A short mark per integration family (the part of the type before its first dot). */
const FAMILY_MARK: Record<string, string> = { trigger: "⚡", control: "◇", data: "{}", code: "JS", http: "↗", slack: "#", github: "GH", jira: "J", pagerduty: "PD", llm: "AI", email: "✉", db: "DB", aws: "AWS", human: "✋" };

function family(type: string): string {
  return type.split(".")[0];
}

function newest(catalogue: NodeTypeInfo[], type: string): NodeTypeInfo | undefined {
  return catalogue.filter((c) => c.type === type).sort((a, b) => b.version - a.version)[0];
}

function NodeIcons({ types, catalogue }: { types: string[]; catalogue: NodeTypeInfo[] }) {
  const families = [...new Set(types.map(family))];
  return (
    <div className="tpl-icons" aria-label="Node types">
      {families.map((f) => {
        const names = types.filter((t) => family(t) === f).map((t) => newest(catalogue, t)?.display_name ?? t);
        return (
          <span key={f} className={`tpl-icon fam-${f}`} title={names.join(", ")} data-family={f}>
            {FAMILY_MARK[f] ?? f.slice(0, 2).toUpperCase()}
          </span>
        );
      })}
    </div>
  );
}

/** The template's graph on the editor's canvas nodes, read-only. */
function GraphPreview({ graph, catalogue }: { graph: Graph; catalogue: NodeTypeInfo[] }) {
  const { nodes, edges } = useMemo(() => {
    const ids = new Set(graph.nodes.map((n) => n.id));
    const ordered = [...graph.nodes].sort((a, b) => Number(!!a.parentId) - Number(!!b.parentId));
    const kids = (id: string) => graph.nodes.filter((n) => n.parentId === id);
    const nodes: FlowNode[] = ordered.map((n: GraphNode) => {
      const info = catalogue.filter((c) => c.type === n.type && (n.version == null || c.version === n.version)).sort((a, b) => b.version - a.version)[0];
      const body = kids(n.id);
      const isLoop = !!info?.has_body || body.length > 0;
      return {
        id: n.id,
        type: "gorax",
        position: { x: n.position?.x ?? 0, y: n.position?.y ?? 0 },
        parentId: n.parentId && ids.has(n.parentId) ? n.parentId : undefined,
        data: { node: n, info, handles: outputHandles(n, info), input: hasInput(n, info), errors: [], remote: [] },
        style: isLoop ? { width: Math.max(300, ...body.map((k) => (k.position?.x ?? 0) + 240)), height: Math.max(180, ...body.map((k) => (k.position?.y ?? 0) + 110)) } : undefined,
        className: isLoop ? "loop-group" : undefined,
        draggable: false,
        connectable: false,
        selectable: false,
      };
    });
    const edges: Edge[] = graph.edges.map((e, i) => ({ id: e.id ?? `e${i}`, source: e.source, target: e.target, sourceHandle: e.sourceHandle ?? null, label: e.sourceHandle, type: "smoothstep" }));
    return { nodes, edges };
  }, [graph, catalogue]);
  return (
    <div className="tpl-preview" data-testid="template-preview">
      <ReactFlowProvider>
        <ReactFlow<FlowNode, Edge> nodes={nodes} edges={edges} nodeTypes={nodeTypes} nodesDraggable={false} nodesConnectable={false} elementsSelectable={false} edgesFocusable={false} deleteKeyCode={null} fitView fitViewOptions={{ padding: 0.15, maxZoom: 1 }} minZoom={0.05} proOptions={{ hideAttribution: true }}>
          <Background gap={15} size={1} />
          <Controls showInteractive={false} />
        </ReactFlow>
      </ReactFlowProvider>
    </div>
  );
}

function Preview({ id, catalogue, canUse, onClose }: { id: string; catalogue: NodeTypeInfo[]; canUse: boolean; onClose: () => void }) {
  const navigate = useNavigate();
  const { data, error } = useAsync(() => api<TemplateDetail>(`/templates/${encodeURIComponent(id)}`), [id]);
  const [name, setName] = useState("");
  const [run, busy, actionError] = useAction();
  const use = () =>
    run(async () => {
      const used = await api<TemplateUsed>(`/templates/${encodeURIComponent(id)}/use`, { body: name.trim() ? { name: name.trim() } : {} });
      navigate(`/workflows/${used.workflow_id}`, { state: { templateUsed: used } });
    });
  return (
    <Modal title={data?.title ?? "Template"} onClose={onClose} wide>
      <ErrorBox error={error || actionError} />
      {!data && !error && <Loading />}
      {data && (
        <div className="tpl-detail" data-testid={`template-detail-${data.id}`}>
          <p>{data.description}</p>
          <GraphPreview graph={data.graph} catalogue={catalogue} />
          <div className="tpl-needs">
            <div>
              <strong>Credentials it needs</strong>
              <ul data-testid="template-credentials">
                {data.credentials_needed.map((c) => (
                  <li key={c.name}>
                    <code>{c.name}</code> <span className="muted small">{c.types.join(" or ") || "any type"}</span>
                  </li>
                ))}
                {data.credentials_needed.length === 0 && <li className="muted">none</li>}
              </ul>
            </div>
            {data.variables.length > 0 && (
              <div>
                <strong>Variables</strong>
                <ul>
                  {data.variables.map((v) => (
                    <li key={v}>
                      <code>env.{v}</code>
                    </li>
                  ))}
                </ul>
              </div>
            )}
            <div>
              <strong>Sample trigger</strong>
              <pre className="details small">{JSON.stringify(data.sample_trigger, null, 2)}</pre>
            </div>
          </div>
          <p className="muted small">
            {data.author} · {data.license}
          </p>
          {canUse && (
            <form
              className="form tpl-use"
              onSubmit={(e) => {
                e.preventDefault();
                use();
              }}
            >
              <label>
                Workflow name
                <input value={name} placeholder={data.title} onChange={(e) => setName(e.target.value)} aria-label="Workflow name" />
              </label>
              <button className="primary" type="submit" disabled={busy}>
                Use this template
              </button>
            </form>
          )}
        </div>
      )}
    </Modal>
  );
}

export function Templates() {
  const me = useSession((s) => s.me);
  const [q, setQ] = useState("");
  const [category, setCategory] = useState("");
  const [open, setOpen] = useState<string | null>(null);
  const search = useRef<HTMLInputElement>(null);
  const list = useAsync(() => api<TemplateList>("/templates", { query: { q, category } }), [q, category]);
  const types = useAsync(() => api<NodeTypeInfo[] | { items: NodeTypeInfo[] }>("/node-types").then((r) => (Array.isArray(r) ? r : r.items)), []);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "/" && document.activeElement?.tagName !== "INPUT") {
        e.preventDefault();
        search.current?.focus();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  const catalogue = types.data ?? [];
  const total = list.data?.categories.reduce((n, c) => n + c.count, 0) ?? 0;
  return (
    <section aria-labelledby="tpl-h">
      <header className="page-head">
        <h1 id="tpl-h">Templates</h1>
        <input ref={search} type="search" placeholder="Search templates (/)" aria-label="Search templates" value={q} onChange={(e) => setQ(e.target.value)} />
      </header>
      <div className="tpl-chips" role="group" aria-label="Categories">
        <button className={"chip" + (category === "" ? " active" : "")} aria-pressed={category === ""} onClick={() => setCategory("")}>
          All <span className="muted">{total}</span>
        </button>
        {list.data?.categories.map((c) => (
          <button key={c.id} className={"chip" + (category === c.id ? " active" : "")} aria-pressed={category === c.id} data-testid={`category-${c.id}`} onClick={() => setCategory(category === c.id ? "" : c.id)}>
            {c.label} <span className="muted">{c.count}</span>
          </button>
        ))}
      </div>
      <ErrorBox error={list.error || types.error} />
      {list.loading && !list.data && <Loading />}
      {list.data && (
        <div className="tpl-grid" aria-label="Templates">
          {list.data.items.map((t) => (
            <article key={t.id} className="card tpl-card" data-testid={`template-${t.id}`}>
              <h2>
                <button className="link" onClick={() => setOpen(t.id)}>
                  {t.title}
                </button>
              </h2>
              <p className="small">{t.description}</p>
              <NodeIcons types={t.node_types} catalogue={catalogue} />
              <div className="muted small">
                {t.node_count} nodes · {list.data!.categories.find((c) => c.id === t.category)?.label ?? t.category}
              </div>
              <div>
                {t.tags.map((tag) => (
                  <span key={tag} className="tag">
                    {tag}
                  </span>
                ))}
              </div>
              <button onClick={() => setOpen(t.id)}>Preview</button>
            </article>
          ))}
          {list.data.items.length === 0 && <p className="muted">No template matches.</p>}
        </div>
      )}
      {open && <Preview id={open} catalogue={catalogue} canUse={can(me, "edit")} onClose={() => setOpen(null)} />}
    </section>
  );
}

/** In the editor, right after "Use this template": the credentials and variables the draft needs. */
export function TemplateChecklist() {
  const location = useLocation();
  const used = (location.state as { templateUsed?: TemplateUsed } | null)?.templateUsed;
  const [hidden, setHidden] = useState(false);
  if (!used || hidden) return null;
  const missing = used.credentials.filter((c) => !c.present).length + used.variables.filter((v) => !v.present).length;
  return (
    <div className="tpl-checklist" role="region" aria-label="Template checklist" data-testid="template-checklist">
      <strong>
        Created from a template. {missing ? `${missing} thing(s) to set up before it can run:` : "Everything it needs is set up."}
      </strong>
      <ul>
        {used.credentials.map((c) => (
          <li key={c.name} data-testid={`needs-${c.name}`} data-present={c.present}>
            {c.present ? "✓" : "✗"} credential <code>{c.name}</code> <span className="muted small">({c.types.join(" or ") || "any type"}; used by {c.nodes.join(", ")})</span>
            {!c.present && c.found_type && <span className="small"> — yours is a {c.found_type}</span>}
          </li>
        ))}
        {used.variables.map((v) => (
          <li key={v.name} data-testid={`needs-env-${v.name}`} data-present={v.present}>
            {v.present ? "✓" : "✗"} variable <code>env.{v.name}</code>
          </li>
        ))}
      </ul>
      {missing > 0 && <Link to="/credentials">Set up credentials</Link>}{" "}
      <button className="link" onClick={() => setHidden(true)}>
        Dismiss
      </button>
    </div>
  );
}
