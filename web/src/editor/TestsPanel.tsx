/** The workflow's tests: write them (input, mocks, CEL assertions), run them, see each assertion pass or fail. */
import { useState } from "react";
import { ErrorBox } from "../components/common";
import { LOCAL } from "./collab";
import { useEditor } from "./store";
import { runTests, useTests, writeTests, type CaseResult, type WorkflowTest } from "./testloop";

const TEST_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

interface Draft {
  id: string;
  name: string;
  input: string;
  mocks: string;
  assertions: string;
}

function toDraft(t: WorkflowTest): Draft {
  return {
    id: t.id,
    name: t.name ?? "",
    input: JSON.stringify(t.input ?? {}, null, 2),
    mocks: JSON.stringify(t.mocks ?? {}, null, 2),
    assertions: t.assertions.map((a) => a.expr).join("\n"),
  };
}

function fromDraft(d: Draft): WorkflowTest {
  if (!TEST_ID.test(d.id)) throw new Error(`test id "${d.id}": letters, digits, _ . - (max 63)`);
  const parse = (text: string, what: string) => {
    try {
      return text.trim() ? JSON.parse(text) : undefined;
    } catch (e) {
      throw new Error(`test ${d.id}: ${what} is not JSON: ${(e as Error).message}`);
    }
  };
  const mocks = parse(d.mocks, "mocks");
  return {
    id: d.id,
    ...(d.name ? { name: d.name } : {}),
    input: parse(d.input, "input") ?? null,
    ...(mocks && Object.keys(mocks).length ? { mocks } : {}),
    assertions: d.assertions
      .split("\n")
      .map((s) => s.trim())
      .filter(Boolean)
      .map((expr) => ({ expr })),
  };
}

function show(v: unknown): string {
  return JSON.stringify(v) ?? "null";
}

export function TestsPanel({ workflowId, onClose }: { workflowId: string; onClose: () => void }) {
  const session = useEditor((s) => s.session)!;
  const readOnly = useEditor((s) => s.readOnly);
  const tests = useTests(session.doc);
  const [editing, setEditing] = useState<{ index: number; draft: Draft } | null>(null);
  const [results, setResults] = useState<Record<string, CaseResult>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const save = () => {
    if (!editing) return;
    try {
      const test = fromDraft(editing.draft);
      const next = [...tests];
      if (next.some((t, i) => t.id === test.id && i !== editing.index)) throw new Error(`a test ${test.id} exists`);
      if (editing.index < 0) next.push(test);
      else next[editing.index] = test;
      writeTests(session.doc, next, LOCAL);
      setEditing(null);
      setError(null);
    } catch (e) {
      setError(e);
    }
  };
  const remove = (index: number) => writeTests(session.doc, tests.filter((_, i) => i !== index), LOCAL);
  const runAll = async () => {
    setBusy(true);
    setError(null);
    try {
      const report = await runTests(workflowId, session.doc);
      setResults(Object.fromEntries(report.tests.map((t) => [t.id, t])));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="tests-dock" aria-label="Tests panel">
      <div className="row">
        <h3>Tests</h3>
        <div className="spacer" />
        <button className="primary" onClick={runAll} disabled={busy || readOnly || tests.length === 0}>
          {busy ? "Running tests…" : "Run tests"}
        </button>
        {!readOnly && (
          <button onClick={() => setEditing({ index: -1, draft: { id: `test_${tests.length + 1}`, name: "", input: "{}", mocks: "{}", assertions: "" } })}>
            New test
          </button>
        )}
        <button onClick={onClose} aria-label="Close tests">
          ×
        </button>
      </div>
      <ErrorBox error={error} onClose={() => setError(null)} />
      {tests.length === 0 && !editing && <p className="muted">No tests yet: a test is an input, mocked nodes and assertions in CEL over steps, trigger and result.</p>}
      <ul className="tests-list">
        {tests.map((t, i) => {
          const r = results[t.id];
          return (
            <li key={t.id} data-testid={`test-${t.id}`} data-result={r ? (r.passed ? "pass" : "fail") : ""}>
              <div className="row">
                <strong>{r ? (r.passed ? "✔ " : "✘ ") : ""}{t.name || t.id}</strong>
                {r && <span className={`status status-${r.passed ? "completed" : "failed"}`}>{r.passed ? "pass" : "fail"}</span>}
                <div className="spacer" />
                {!readOnly && <button onClick={() => setEditing({ index: i, draft: toDraft(t) })}>Edit</button>}
                {!readOnly && <button onClick={() => remove(i)}>Delete</button>}
              </div>
              {r && (
                <ul className="assertions">
                  {r.assertions.map((a, j) => (
                    <li key={j} data-testid={`assertion-${t.id}-${j}`} data-passed={String(a.passed)} className={a.passed ? "ok" : "bad"}>
                      {a.passed ? "✔" : "✘"} <code>{a.expr}</code>
                      {!a.passed && (a.actual !== null || a.expected !== null) && (
                        <div className="diff">
                          <div className="diff-del">expected {show(a.expected)}</div>
                          <div className="diff-add">actual {show(a.actual)}</div>
                        </div>
                      )}
                      {a.error && <div className="muted">{a.error}</div>}
                    </li>
                  ))}
                  {r.error && !r.passed && <li className="muted">run {r.status}: {r.error}</li>}
                </ul>
              )}
            </li>
          );
        })}
      </ul>
      {editing && (
        <div className="form test-editor" aria-label="Edit test">
          <label>
            Test id
            <input value={editing.draft.id} onChange={(e) => setEditing({ ...editing, draft: { ...editing.draft, id: e.target.value } })} />
          </label>
          <label>
            Name
            <input value={editing.draft.name} onChange={(e) => setEditing({ ...editing, draft: { ...editing.draft, name: e.target.value } })} />
          </label>
          <label>
            Trigger input (JSON)
            <textarea rows={3} value={editing.draft.input} onChange={(e) => setEditing({ ...editing, draft: { ...editing.draft, input: e.target.value } })} />
          </label>
          <label>
            Mocks (JSON: node id → {"{"}"output": …{"}"} or {"{"}"error": "…"{"}"})
            <textarea rows={3} value={editing.draft.mocks} onChange={(e) => setEditing({ ...editing, draft: { ...editing.draft, mocks: e.target.value } })} />
          </label>
          <label>
            Assertions (CEL, one per line)
            <textarea rows={4} value={editing.draft.assertions} onChange={(e) => setEditing({ ...editing, draft: { ...editing.draft, assertions: e.target.value } })} placeholder="steps.shape.n == 4" />
          </label>
          <div className="row">
            <button className="primary" onClick={save}>
              Save test
            </button>
            <button onClick={() => setEditing(null)}>Cancel</button>
          </div>
        </div>
      )}
    </section>
  );
}
