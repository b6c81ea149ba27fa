import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { api, type Page } from "../api/client";
import type { Workflow } from "../api/types";
import { emptyGraph, type Graph } from "../graph/types";
import { ErrorBox, Loading, Modal, Status, useAction, useAsync, when } from "../components/common";
import { can, useSession } from "../session";
import { ImportN8n } from "./ImportN8n";

export function WorkflowList() {
  const me = useSession((s) => s.me);
  const navigate = useNavigate();
  const [q, setQ] = useState("");
  const [status, setStatus] = useState("");
  const [creating, setCreating] = useState(false);
  const [importingN8n, setImportingN8n] = useState(false);
  const search = useRef<HTMLInputElement>(null);
  const { data, error, loading } = useAsync(() => api<Page<Workflow>>("/workflows", { query: { q, status, limit: 100 } }), [q, status]);
  const [run, busy, actionError] = useAction();
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
  const importFile = (file: File) =>
    run(async () => {
      const graph = JSON.parse(await file.text()) as Graph;
      const wf = await api<Workflow>("/workflows/import", { body: graph });
      navigate(`/workflows/${wf.id}`);
    });
  return (
    <section aria-labelledby="wf-h">
      <header className="page-head">
        <h1 id="wf-h">Workflows</h1>
        <input ref={search} type="search" placeholder="Search (/)" aria-label="Search workflows" value={q} onChange={(e) => setQ(e.target.value)} />
        <select aria-label="Status" value={status} onChange={(e) => setStatus(e.target.value)}>
          <option value="">Any status</option>
          <option value="draft">Draft</option>
          <option value="active">Active</option>
          <option value="paused">Paused</option>
          <option value="archived">Archived</option>
        </select>
        {can(me, "edit") && (
          <>
            <label className="button">
              Import JSON
              <input type="file" accept="application/json,.json" hidden onChange={(e) => e.target.files?.[0] && importFile(e.target.files[0])} />
            </label>
            <button onClick={() => setImportingN8n(true)}>Import from n8n</button>
            <button className="primary" onClick={() => setCreating(true)}>
              New workflow
            </button>
          </>
        )}
      </header>
      <ErrorBox error={error || actionError} />
      {loading && !data && <Loading />}
      {busy && <Loading />}
      {data && (
        <table className="table" aria-label="Workflows">
          <thead>
            <tr>
              <th>Name</th>
              <th>Status</th>
              <th>Version</th>
              <th>Last run</th>
              <th>Owner</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {data.items.map((w) => (
              <tr key={w.id}>
                <td>
                  <Link to={`/workflows/${w.id}`}>{w.name}</Link>
                  {w.tags?.map((t) => (
                    <span key={t} className="tag">
                      {t}
                    </span>
                  ))}
                  {w.description && <div className="muted small">{w.description}</div>}
                </td>
                <td>
                  <Status value={w.status} />
                </td>
                <td>{w.version ?? "—"}</td>
                <td>
                  {w.last_run ? (
                    <Link to={`/runs/${w.last_run.id ?? w.last_run.execution_id}`}>
                      <Status value={w.last_run.status} /> {when(w.last_run.started_at)}
                    </Link>
                  ) : (
                    "—"
                  )}
                </td>
                <td>{w.created_by ?? "—"}</td>
                <td>{when(w.updated_at)}</td>
              </tr>
            ))}
            {data.items.length === 0 && (
              <tr>
                <td colSpan={6} className="muted">
                  No workflows yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {importingN8n && <ImportN8n onClose={() => setImportingN8n(false)} onOpen={(id) => navigate(`/workflows/${id}`)} />}
      {creating && <CreateWorkflow onClose={() => setCreating(false)} onCreated={(id) => navigate(`/workflows/${id}`)} />}
    </section>
  );
}

function CreateWorkflow({ onClose, onCreated }: { onClose: () => void; onCreated: (id: string) => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [run, busy, error] = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    run(async () => {
      const wf = await api<Workflow>("/workflows", { body: { name, description: description || undefined, graph: { ...emptyGraph(name), description: description || undefined } } });
      onCreated(wf.id);
    });
  };
  return (
    <Modal title="New workflow" onClose={onClose}>
      <form onSubmit={submit} className="form">
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label>
          Description
          <textarea value={description} onChange={(e) => setDescription(e.target.value)} rows={2} />
        </label>
        <ErrorBox error={error} />
        <button className="primary" type="submit" disabled={busy}>
          Create
        </button>
      </form>
    </Modal>
  );
}
