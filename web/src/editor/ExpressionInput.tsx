/**
 * An expression (bare CEL) or template field with autocomplete of the scope, the node's upstream
 * node ids and their output fields, and a live preview of its value against a past run (the
 * server evaluates it: `POST /workflows/{id}/expressions/preview`). Syntax is checked locally
 * first (graph/cel.ts), so a typo never costs a request.
 */
import { createContext, useContext, useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import { api } from "../api/client";
import { checkCel, checkTemplate } from "../graph/cel";
import { stepFor } from "./dataView";
import { ancestorsOf, applySuggestion, contextAt, suggest, type AssistData, type CompletionContext } from "./expressionAssist";
import { useRunData } from "./runData";
import { useEditor } from "./store";

/** The node whose config the fields below belong to (no scope: plain text fields). */
export const ExpressionScope = createContext<{ workflowId: string; nodeId: string } | null>(null);

export interface Preview {
  ok: boolean;
  value?: unknown;
  type?: string | null;
  error?: { message: string; code: string; position?: number | null } | null;
  execution_id?: string | null;
}

const DEBOUNCE_MS = 300;

function useAssistData(nodeId: string): AssistData {
  const graph = useEditor((s) => s.graph);
  const catalogue = useEditor((s) => s.catalogue);
  const steps = useRunData((s) => s.steps);
  const trigger = useRunData((s) => s.trigger);
  return useMemo(() => {
    if (!graph) return { upstream: [], trigger };
    const byId = new Map(graph.nodes.map((n) => [n.id, n]));
    const upstream = ancestorsOf(graph, nodeId).map((id) => {
      const n = byId.get(id);
      const info = catalogue.find((c) => c.type === n?.type && (n?.version == null || c.version === n.version));
      const step = stepFor(steps, id);
      return { id, label: n?.name, output: step ? step.output : undefined, schema: info?.output_schema };
    });
    return { upstream, trigger };
  }, [graph, catalogue, steps, trigger, nodeId]);
}

export function ExpressionInput({
  value,
  onCommit,
  template,
  multiline,
  field,
  ...rest
}: {
  value: string;
  onCommit: (t: string) => void;
  template: boolean;
  multiline?: boolean;
  field: string;
  [k: string]: unknown;
}) {
  const scope = useContext(ExpressionScope)!;
  const executionId = useRunData((s) => s.executionId);
  const data = useAssistData(scope.nodeId);
  const [text, setText] = useState(value);
  const [focused, setFocused] = useState(false);
  const [ctx, setCtx] = useState<CompletionContext | null>(null);
  const [caret, setCaret] = useState(0);
  const [active, setActive] = useState(0);
  const [dismissed, setDismissed] = useState(false);
  const [preview, setPreview] = useState<Preview | null>(null);
  const ref = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  useEffect(() => {
    if (!focused) setText(value);
  }, [value, focused]);

  const suggestions = useMemo(() => (ctx && focused && !dismissed ? suggest(ctx, data) : []), [ctx, focused, dismissed, data]);
  const listId = `${String(rest.id ?? field)}-suggestions`;

  // Live preview: local syntax first, then the server (debounced, the last answer wins).
  const syntax = text.trim() ? (template ? checkTemplate(text) : checkCel(text)) : null;
  const previewable = !!text.trim() && !syntax && (!template || text.includes("{{"));
  useEffect(() => {
    if (!previewable) return setPreview(null);
    let stale = false;
    const timer = setTimeout(async () => {
      try {
        const body = { [template ? "template" : "expression"]: text, node_id: scope.nodeId, field, ...(executionId ? { execution_id: executionId } : {}) };
        const answer = await api<Preview>(`/workflows/${scope.workflowId}/expressions/preview`, { body });
        if (!stale) setPreview(answer);
      } catch (e) {
        if (!stale) setPreview({ ok: false, error: { message: (e as Error).message, code: "request" } });
      }
    }, DEBOUNCE_MS);
    return () => {
      stale = true;
      clearTimeout(timer);
    };
  }, [text, previewable, template, scope.nodeId, scope.workflowId, field, executionId]);

  const track = (t: string, at: number) => {
    setCaret(at);
    const next = contextAt(t, at, template);
    setCtx(next);
    setActive(0);
  };
  const accept = (label: string) => {
    if (!ctx) return;
    const next = applySuggestion(text, ctx, caret, label);
    setText(next.text);
    onCommit(next.text);
    track(next.text, next.caret);
    requestAnimationFrame(() => ref.current?.setSelectionRange(next.caret, next.caret));
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (!suggestions.length) return;
    if (e.key === "ArrowDown") (e.preventDefault(), setActive((a) => (a + 1) % suggestions.length));
    else if (e.key === "ArrowUp") (e.preventDefault(), setActive((a) => (a - 1 + suggestions.length) % suggestions.length));
    else if (e.key === "Enter" || e.key === "Tab") (e.preventDefault(), accept(suggestions[Math.min(active, suggestions.length - 1)].label));
    else if (e.key === "Escape") (e.preventDefault(), setDismissed(true));
  };
  const props = {
    ...rest,
    ref,
    value: text,
    role: "combobox",
    "aria-autocomplete": "list" as const,
    "aria-expanded": suggestions.length > 0,
    "aria-controls": listId,
    onFocus: () => setFocused(true),
    onBlur: () => {
      setFocused(false);
      setCtx(null);
      if (text !== value) onCommit(text);
    },
    onChange: (e: { target: { value: string; selectionStart: number | null } }) => {
      setText(e.target.value);
      setDismissed(false);
      track(e.target.value, e.target.selectionStart ?? e.target.value.length);
      onCommit(e.target.value);
    },
    onKeyDown,
    onKeyUp: (e: KeyboardEvent) => {
      if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End") track(text, ref.current?.selectionStart ?? text.length);
    },
    onClick: () => track(text, ref.current?.selectionStart ?? text.length),
  };
  return (
    <div className="expr-input">
      {multiline ? <textarea rows={3} {...props} /> : <input type="text" {...props} />}
      {suggestions.length > 0 && (
        <ul className="expr-suggestions" role="listbox" id={listId} data-testid={`suggestions-${field}`}>
          {suggestions.map((s, i) => (
            <li
              key={s.label}
              role="option"
              aria-selected={i === active}
              className={i === active ? "active" : undefined}
              onMouseDown={(e) => {
                e.preventDefault(); // keep the focus (and the caret) in the field
                accept(s.label);
              }}
            >
              <code>{s.label}</code> <span className="muted small">{s.detail}</span>
            </li>
          ))}
        </ul>
      )}
      {syntax && (
        <div className="expr-preview syntax small" data-testid={`syntax-${field}`}>
          <code>{text.slice(0, syntax.offset)}</code>
          <span className="expr-caret" aria-hidden="true">
            ▲
          </span>{" "}
          syntax error at {syntax.offset}: {syntax.message}
        </div>
      )}
      {previewable && preview && (
        <div className={`expr-preview small ${preview.ok ? "ok" : "bad"}`} data-testid={`preview-${field}`} aria-live="polite">
          {preview.ok ? (
            <>
              <span className="muted">= </span>
              <code className="expr-value">{JSON.stringify(preview.value)?.slice(0, 500)}</code> <span className="muted">({preview.type})</span>
            </>
          ) : (
            <span>
              {preview.error?.message}
              {preview.error?.position != null ? ` (at ${preview.error.position})` : ""}
            </span>
          )}
        </div>
      )}
    </div>
  );
}
