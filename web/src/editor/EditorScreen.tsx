/** The workflow editor: toolbar, palette, canvas and properties around one collaborative draft. */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useParams } from "react-router-dom";
import { ReactFlowProvider, useReactFlow } from "@xyflow/react";
import { api } from "../api/client";
import type { Workflow } from "../api/types";
import { ErrorBox, Loading, useAsync } from "../components/common";
import { layoutInWorker } from "../graph/layout";
import type { Graph, GraphNode, NodeTypeInfo } from "../graph/types";
import { addEdge, addNode, applyGraph, docToGraph, draftMaps, freshNodeId } from "../graph/ydoc";
import { can, useSession } from "../session";
import { TemplateChecklist } from "../screens/Templates";
import { Canvas, FIT_VIEW } from "./Canvas";
import { DraftSession, LOCAL } from "./collab";
import { PublishDialog, RunBanner, RunDialog, validateDraft } from "./dialogs";
import { subscribeExecution } from "./liveRun";
import { RunLogs } from "../components/RunLogs";
import { Palette } from "./Palette";
import { Properties } from "./Properties";
import { defaultsFor } from "./SchemaForm";
import { useEditor } from "./store";
import { useRunData } from "./runData";
import { RunNodeButton } from "./RunNodeButton";
import { TestsPanel } from "./TestsPanel";
import { useFollowPins } from "./testloop";

export function EditorScreen() {
  const { id = "" } = useParams();
  const me = useSession((s) => s.me)!;
  const wf = useAsync(() => api<Workflow>(`/workflows/${id}`), [id]);
  const types = useAsync(() => api<NodeTypeInfo[] | { items: NodeTypeInfo[] }>("/node-types").then((r) => (Array.isArray(r) ? r : r.items)), []);
  if (wf.error) return <ErrorBox error={wf.error} />;
  if (!wf.data || !types.data) return <Loading />;
  return (
    <ReactFlowProvider>
      <Editor key={id} workflow={wf.data} catalogue={types.data} readOnly={!can(me, "edit")} user={{ id: me.user.id, name: me.user.name || me.user.email }} />
    </ReactFlowProvider>
  );
}

/** Whether edits reach the server: connected, offline, reconnecting, and how many are pending. */
function ConnectionBadge({ session }: { session: DraftSession }) {
  const [view, setView] = useState(() => session.connection());
  useEffect(() => {
    // Its own component: the counts change with every edit, the editor around it need not render.
    const update = () => setView((old) => {
      const now = session.connection();
      return now.label === old.label && now.title === old.title && now.pending === old.pending ? old : now;
    });
    update();
    return session.onConnectionChange(update);
  }, [session]);
  return (
    <span className={`conn conn-${view.status}`} role="status" data-testid="connection" data-state={view.status} data-pending={view.pending} title={view.title}>
      {view.label}
    </span>
  );
}

function isTyping(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  return !!t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
}

let clipboard: Graph | null = null;

function Editor({ workflow, catalogue, readOnly, user }: { workflow: Workflow; catalogue: NodeTypeInfo[]; readOnly: boolean; user: { id: string; name: string } }) {
  const store = useEditor();
  const { session, graph, presence, serverErrors } = store;
  const flow = useReactFlow();
  const [selectedIds, setSelectedIds] = useState<string[]>([]);
  const [dialog, setDialog] = useState<"publish" | "run" | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [run, setRun] = useState<{ id: string; status: string } | null>(null);
  const [canUndo, setCanUndo] = useState([false, false]);
  const [testsOpen, setTestsOpen] = useState(false);
  useFollowPins(session?.doc);
  const fileInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    const s = new DraftSession(workflow.id, user);
    const st = useEditor.getState();
    st.attach(s, readOnly);
    st.setCatalogue(catalogue);
    // The newest run's data for the data panel and the canvas overlays.
    useRunData.getState().attach(workflow.id);
    void useRunData.getState().loadRuns();
    let frame = 0;
    let presenceFrame = 0;
    const schedule = () => {
      if (!frame) frame = requestAnimationFrame(() => ((frame = 0), useEditor.getState().refresh()));
    };
    const schedulePresence = () => {
      if (!presenceFrame) presenceFrame = requestAnimationFrame(() => ((presenceFrame = 0), useEditor.getState().refreshPresence()));
    };
    s.doc.on("update", schedule);
    s.provider.awareness.on("change", schedulePresence);
    s.provider.on("sync", (synced: boolean) => {
      if (synced && !readOnly) s.seedIfEmpty(workflow.graph);
      if (synced) {
        schedule();
        setTimeout(() => flow.fitView(FIT_VIEW), 50);
      }
    });
    s.provider.on("connection-close", (ev: CloseEvent | null) => {
      if (ev && ev.code >= 4000) setError(new Error(`Collaboration connection closed: ${ev.reason || ev.code}`));
    });
    const onStack = () => setCanUndo([s.undo.undoStack.length > 0, s.undo.redoStack.length > 0]);
    s.undo.on("stack-item-added", onStack);
    s.undo.on("stack-item-popped", onStack);
    return () => {
      cancelAnimationFrame(frame);
      cancelAnimationFrame(presenceFrame);
      s.destroy();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [workflow.id]);

  const selectedNode: GraphNode | null = useMemo(() => (selectedIds.length === 1 ? graph?.nodes.find((n) => n.id === selectedIds[0]) ?? null : null), [graph, selectedIds]);

  const addAt = useCallback(
    (info: NodeTypeInfo, position: { x: number; y: number }, parentId?: string) => {
      if (!session || readOnly) return;
      const taken = draftMaps(session.doc).nodes.keys();
      const node: GraphNode = { id: freshNodeId(taken, info.type), type: info.type, position: { x: Math.round(position.x / 15) * 15, y: Math.round(position.y / 15) * 15 }, config: defaultsFor(info.config_schema), ...(parentId ? { parentId } : {}) };
      addNode(session.doc, node, LOCAL);
    },
    [session, readOnly],
  );

  const addCentered = (info: NodeTypeInfo) => {
    const rect = document.querySelector(".canvas")?.getBoundingClientRect();
    const center = rect ? flow.screenToFlowPosition({ x: rect.x + rect.width / 2, y: rect.y + rect.height / 2 }) : { x: 0, y: 0 };
    addAt(info, center);
  };

  const autoLayout = useCallback(() => {
    if (!session || readOnly) return;
    layoutInWorker(docToGraph(session.doc)).then(
      (pos) => {
        const nodes = draftMaps(session.doc).nodes;
        session.doc.transact(() => {
          for (const [id, p] of Object.entries(pos)) nodes.get(id)?.set("position", p);
        }, LOCAL);
        setTimeout(() => flow.fitView(FIT_VIEW), 50);
      },
      (e) => setError(e),
    );
  }, [session, readOnly, flow]);

  const copy = useCallback(() => {
    if (!session) return;
    const g = docToGraph(session.doc);
    const ids = new Set(useEditor.getState().selectedIds());
    if (!ids.size) return;
    clipboard = { ...g, nodes: g.nodes.filter((n) => ids.has(n.id)), edges: g.edges.filter((e) => ids.has(e.source) && ids.has(e.target)) };
    navigator.clipboard?.writeText(JSON.stringify(clipboard, null, 2)).catch(() => undefined);
    setNotice(`Copied ${ids.size} node(s)`);
  }, [session]);

  const paste = useCallback(() => {
    if (!session || readOnly || !clipboard) return;
    const doc = session.doc;
    const taken = new Set(draftMaps(doc).nodes.keys());
    const rename = new Map<string, string>();
    doc.transact(() => {
      for (const n of clipboard!.nodes) {
        const id = freshNodeId(taken, n.id);
        taken.add(id);
        rename.set(n.id, id);
      }
      for (const n of clipboard!.nodes) {
        const parentId = n.parentId && rename.has(n.parentId) ? rename.get(n.parentId) : n.parentId && taken.has(n.parentId) ? n.parentId : undefined;
        addNode(doc, { ...n, id: rename.get(n.id)!, parentId, position: { x: (n.position?.x ?? 0) + (parentId && rename.has(n.parentId!) ? 0 : 45), y: (n.position?.y ?? 0) + (parentId && rename.has(n.parentId!) ? 0 : 45) } }, LOCAL);
      }
      for (const e of clipboard!.edges) addEdge(doc, { ...e, id: undefined, source: rename.get(e.source)!, target: rename.get(e.target)! }, LOCAL);
    }, LOCAL);
    // Select what was pasted so it can be moved or deleted at once.
    setTimeout(() => useEditor.setState((s) => ({ nodes: s.nodes.map((n) => ({ ...n, selected: [...rename.values()].includes(n.id) })) })), 30);
  }, [session, readOnly]);

  const validate = useCallback(async () => {
    if (!session) return;
    setError(null);
    try {
      const errors = await validateDraft(workflow.id, docToGraph(session.doc));
      useEditor.getState().setServerErrors(errors);
      setNotice(errors.length ? `${errors.length} problem(s) found` : "The draft is valid");
    } catch (e) {
      setError(e);
    }
  }, [session, workflow.id]);

  const startRun = useCallback((executionId: string) => {
    setDialog(null);
    useEditor.getState().clearRun();
    setRun({ id: executionId, status: "running" });
    subscribeExecution(
      executionId,
      (e) => e.node_id && e.status && useEditor.getState().setRunState(e.node_id, { status: e.status, attempt: e.attempt, error: e.error }),
      (status) => {
        setRun({ id: executionId, status });
        void useRunData.getState().select(executionId).then(() => useRunData.getState().loadRuns());
      },
    );
  }, []);

  const exportJson = () => {
    if (!session) return;
    const blob = new Blob([JSON.stringify(docToGraph(session.doc), null, 2) + "\n"], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${(graph?.name || workflow.name).replace(/[^A-Za-z0-9_.-]+/g, "-")}.json`;
    a.click();
    URL.revokeObjectURL(a.href);
  };

  /** The published version as a Prefect flow file and the CEL helper it imports (docs/eject.md). */
  const ejectPython = async () => {
    setError(null);
    try {
      for (const file of ["flow", "helper"]) {
        const res = await api<Response>(`/workflows/${workflow.id}/eject`, { query: { file }, raw: true, headers: { Accept: "text/x-python" } });
        const named = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") ?? "");
        const a = document.createElement("a");
        a.href = URL.createObjectURL(new Blob([await res.text()], { type: "text/x-python" }));
        a.download = named ? named[1] : `${file}.py`;
        a.click();
        URL.revokeObjectURL(a.href);
      }
      setNotice("Ejected the published version: the flow file and gorax_cel.py (keep them side by side)");
    } catch (e) {
      setError(e);
    }
  };

  const importJson = async (file: File) => {
    if (!session) return;
    try {
      const g = JSON.parse(await file.text()) as Graph;
      if (!g || !Array.isArray(g.nodes) || !Array.isArray(g.edges)) throw new Error(`${file.name} is not a gorax/graph@1 file (needs "nodes" and "edges" lists)`);
      applyGraph(session.doc, g, LOCAL);
      setNotice(`Imported ${g.nodes.length} nodes from ${file.name}`);
      setTimeout(() => flow.fitView(FIT_VIEW), 50);
    } catch (e) {
      setError(e);
    }
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!session || isTyping(e) || dialog) return;
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && key === "z" && !readOnly) {
        e.preventDefault();
        if (e.shiftKey) session.undo.redo();
        else session.undo.undo();
      } else if (mod && key === "y" && !readOnly) {
        e.preventDefault();
        session.undo.redo();
      } else if (mod && key === "c") copy();
      else if (mod && key === "v") paste();
      else if (mod && key === "d") {
        e.preventDefault();
        copy();
        paste();
      } else if (mod && key === "a") {
        e.preventDefault();
        useEditor.setState((s) => ({ nodes: s.nodes.map((n) => ({ ...n, selected: true })) }));
      } else if (mod && key === "s") {
        e.preventDefault();
        validate();
      } else if (mod && e.key === "Enter" && !readOnly) setDialog("run");
      else if (mod && e.shiftKey && key === "p" && !readOnly) {
        e.preventDefault();
        setDialog("publish");
      } else if (!mod && e.shiftKey && key === "l") autoLayout();
      else if (!mod && e.key === "/") {
        e.preventDefault();
        document.getElementById("palette-search")?.focus();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [session, readOnly, dialog, copy, paste, validate, autoLayout]);

  const onSelection = useCallback((ids: string[]) => {
    setSelectedIds(ids);
  }, []);

  if (!session || !graph) return <Loading />;
  return (
    <div className="editor">
      <div className="toolbar" role="toolbar" aria-label="Editor">
        <h1 className="wf-title">{graph.name || workflow.name}</h1>
        <ConnectionBadge session={session} />
        {readOnly && <span className="badge">read-only</span>}
        <div className="presence" aria-label="People here">
          {presence.map((p) => (
            <span key={p.clientId} className="avatar" style={{ background: p.color }} title={p.name}>
              {p.name.slice(0, 1).toUpperCase()}
            </span>
          ))}
        </div>
        <div className="spacer" />
        <button onClick={() => session.undo.undo()} disabled={readOnly || !canUndo[0]} title="Undo (Ctrl+Z)">
          Undo
        </button>
        <button onClick={() => session.undo.redo()} disabled={readOnly || !canUndo[1]} title="Redo (Ctrl+Shift+Z)">
          Redo
        </button>
        <button onClick={autoLayout} disabled={readOnly} title="Auto-layout (Shift+L)">
          Layout
        </button>
        <button onClick={() => fileInput.current?.click()} disabled={readOnly}>
          Import
        </button>
        <input ref={fileInput} type="file" accept=".json,application/json" hidden onChange={(e) => e.target.files?.[0] && importJson(e.target.files[0])} />
        <button onClick={exportJson}>Export</button>
        <button onClick={ejectPython} title="Download the published version as a Prefect flow file">
          Eject to Python
        </button>
        <button onClick={() => setTestsOpen((o) => !o)} aria-pressed={testsOpen}>
          Tests
        </button>
        <button onClick={validate} title="Validate (Ctrl+S)">
          Validate
        </button>
        <button onClick={() => setDialog("publish")} disabled={readOnly} title="Publish (Ctrl+Shift+P)">
          Publish
        </button>
        <button className="primary" onClick={() => setDialog("run")} disabled={!can(useSession.getState().me, "run")} title="Run (Ctrl+Enter)">
          Run
        </button>
      </div>
      <ErrorBox error={error} onClose={() => setError(null)} />
      <TemplateChecklist />
      {notice && (
        <div className="notice" role="status" onAnimationEnd={() => setNotice(null)}>
          {notice}
        </div>
      )}
      {serverErrors.length > 0 && (
        <div className="problems" role="alert" data-testid="problems">
          {serverErrors.length} problem(s):{" "}
          {serverErrors.slice(0, 4).map((e, i) => (
            <span key={i}>
              {e.node_id && <code>{e.node_id}</code>} {e.message}
              {"; "}
            </span>
          ))}
        </div>
      )}
      {run && <RunBanner executionId={run.id} status={run.status} onClose={() => (setRun(null), useEditor.getState().clearRun())} />}
      <div className="editor-body">
        <Palette catalogue={catalogue} onAdd={addCentered} disabled={readOnly} />
        <Canvas onDropType={addAt} onSelection={onSelection} />
        <div className="side-column">
          <Properties selected={selectedNode} />
          {selectedNode && <RunNodeButton key={selectedNode.id} workflowId={workflow.id} node={selectedNode} />}
        </div>
      </div>
      {testsOpen && <TestsPanel workflowId={workflow.id} onClose={() => setTestsOpen(false)} />}
      {run && (
        <div className="run-logs-dock" aria-label="Run logs panel">
          <RunLogs key={run.id} executionId={run.id} compact />
        </div>
      )}
      {dialog === "publish" && (
        <PublishDialog
          workflowId={workflow.id}
          graph={docToGraph(session.doc)}
          onClose={() => setDialog(null)}
          onErrors={(errs) => useEditor.getState().setServerErrors(errs)}
          onPublished={(v) => {
            setDialog(null);
            setNotice(`Published version ${v}`);
          }}
        />
      )}
      {dialog === "run" && <RunDialog workflowId={workflow.id} graph={docToGraph(session.doc)} catalogue={catalogue} onClose={() => setDialog(null)} onStarted={startRun} />}
    </div>
  );
}
