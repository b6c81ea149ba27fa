import { useState, type FormEvent } from "react";
import { api } from "../api/client";
import { ErrorBox, Modal, useAction } from "../components/common";

interface Finding {
  node_id?: string;
  n8n_name?: string;
  n8n_type?: string;
  gorax_type?: string;
  reason?: string;
  path?: string;
  expression?: string;
  message?: string;
}

interface Credential {
  name: string;
  type: string;
  n8n_type: string;
  n8n_name: string;
  nodes: string[];
}

export interface ImportReport {
  workflow_name: string;
  summary: Record<string, number>;
  mapped: Finding[];
  placeholders: Finding[];
  expressions: Finding[];
  credentials: Credential[];
  notes: Finding[];
  skipped: Finding[];
}

interface ImportAnswer {
  workflow_id: string;
  name: string;
  report: ImportReport;
}

/** "Import from n8n": paste or upload an n8n workflow JSON, see what was mapped, open the draft. */
export function ImportN8n({ onClose, onOpen }: { onClose: () => void; onOpen: (id: string) => void }) {
  const [text, setText] = useState("");
  const [name, setName] = useState("");
  const [parseError, setParseError] = useState<string | null>(null);
  const [answer, setAnswer] = useState<ImportAnswer | null>(null);
  const [run, busy, error] = useAction();
  const upload = async (file: File) => {
    setText(await file.text());
    setParseError(null);
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (err) {
      setParseError(`This is not valid JSON: ${(err as Error).message}`);
      return;
    }
    setParseError(null);
    run(async () => {
      setAnswer(await api<ImportAnswer>("/imports/n8n", { body: document, query: { name: name.trim() || undefined } }));
    });
  };
  return (
    <Modal title="Import from n8n" onClose={onClose} wide>
      {!answer ? (
        <form onSubmit={submit} className="form">
          <p className="muted small">
            Paste the JSON of an n8n workflow (in n8n: Download, or copy the nodes), or upload the file. Nodes without a Gorax equivalent become placeholders
            you replace before publishing.
          </p>
          <label>
            n8n workflow JSON
            <textarea value={text} onChange={(e) => setText(e.target.value)} rows={12} spellCheck={false} required data-testid="n8n-json" />
          </label>
          <label>
            Upload n8n JSON file
            <input type="file" accept="application/json,.json" onChange={(e) => e.target.files?.[0] && upload(e.target.files[0])} />
          </label>
          <label>
            Name (optional)
            <input value={name} onChange={(e) => setName(e.target.value)} placeholder="the n8n workflow's name" />
          </label>
          {parseError && (
            <div className="error-box" role="alert">
              {parseError}
            </div>
          )}
          <ErrorBox error={error} />
          <button className="primary" type="submit" disabled={busy || !text.trim()}>
            Import
          </button>
        </form>
      ) : (
        <ImportReportView answer={answer} onOpen={() => onOpen(answer.workflow_id)} />
      )}
    </Modal>
  );
}

function ImportReportView({ answer, onOpen }: { answer: ImportAnswer; onOpen: () => void }) {
  const r = answer.report;
  const s = r.summary;
  return (
    <div className="import-report" aria-label="Import report">
      <p role="status">
        Imported <strong>{answer.name}</strong> as a draft: {s.mapped} of {s.nodes} nodes mapped, {s.placeholders} placeholders, {s.expressions_not_translated}{" "}
        expressions not translated, {s.credentials_needed} credentials needed.
      </p>
      {r.placeholders.length > 0 && (
        <ReportTable
          label="Placeholders"
          head={["Node", "n8n type", "Why"]}
          rows={r.placeholders.map((p) => [p.node_id, p.n8n_type, p.reason])}
        />
      )}
      {r.expressions.length > 0 && (
        <ReportTable
          label="Expressions not translated"
          head={["Node", "Field", "Expression", "Why"]}
          rows={r.expressions.map((x) => [x.node_id, x.path, x.expression, x.reason])}
        />
      )}
      {r.credentials.length > 0 && (
        <ReportTable
          label="Credentials needed"
          head={["Create credential", "Of type", "n8n credential", "Used by"]}
          rows={r.credentials.map((c) => [c.name, c.type, `${c.n8n_name} (${c.n8n_type})`, c.nodes.join(", ")])}
        />
      )}
      {r.notes.length > 0 && <ReportTable label="Notes" head={["Node", "Note"]} rows={r.notes.map((n) => [n.node_id, n.message])} />}
      {r.mapped.length > 0 && (
        <ReportTable label="Mapped nodes" head={["Node", "n8n type", "Gorax type"]} rows={r.mapped.map((m) => [m.node_id, m.n8n_type, m.gorax_type])} />
      )}
      {r.skipped.length > 0 && (
        <ReportTable label="Skipped" head={["n8n node", "Type", "Why"]} rows={r.skipped.map((k) => [k.n8n_name, k.n8n_type, k.reason])} />
      )}
      <button className="primary" onClick={onOpen}>
        Open draft
      </button>
    </div>
  );
}

function ReportTable({ label, head, rows }: { label: string; head: string[]; rows: Array<Array<string | undefined>> }) {
  return (
    <section>
      <h3>{label}</h3>
      <table className="table" aria-label={label}>
        <thead>
          <tr>
            {head.map((h) => (
              <th key={h}>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={i}>
              {row.map((cell, j) => (
                <td key={j}>{cell ?? "—"}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
