/**
 * A form rendered from a JSON Schema (pydantic's `model_json_schema()` output): one control per
 * top-level property, expression fields checked as CEL while typing, JSON for nested values.
 */
import { useContext, useEffect, useId, useState } from "react";
import { checkCel, checkTemplate } from "../graph/cel";
import type { Json, JsonSchema } from "../graph/types";
import { ExpressionInput, ExpressionScope } from "./ExpressionInput";

/** Resolve `$ref` and unwrap `anyOf: [X, null]` (pydantic's Optional). */
export function resolve(schema: JsonSchema, root: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  let s = schema;
  let nullable = false;
  for (let guard = 0; guard < 10; guard++) {
    if (s.$ref) {
      const name = s.$ref.split("/").pop()!;
      const target = (root.$defs ?? (root as Record<string, unknown>).definitions as Record<string, JsonSchema> | undefined)?.[name];
      s = { ...target, ...s, $ref: undefined, title: s.title ?? target?.title, description: s.description ?? target?.description };
      continue;
    }
    const alts = s.anyOf ?? s.oneOf;
    if (alts) {
      const rest = alts.filter((a) => a.type !== "null");
      if (rest.length < alts.length) nullable = true;
      if (rest.length === 1) {
        s = { ...rest[0], title: s.title ?? rest[0].title, description: s.description ?? rest[0].description, default: s.default ?? rest[0].default };
        continue;
      }
    }
    break;
  }
  return { schema: s, nullable };
}

function kind(s: JsonSchema): string {
  if (s.enum) return "enum";
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
  if (t === "string" || t === "number" || t === "integer" || t === "boolean") return t;
  if (s.anyOf || s.oneOf) {
    const ts = (s.anyOf ?? s.oneOf)!.map((a) => a.type);
    if (ts.every((x) => x === "string" || x === "null")) return "string";
  }
  return "json";
}

/** Default config for a new node: every default and an empty value for required strings. */
export function defaultsFor(root: JsonSchema): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [name, raw] of Object.entries(root.properties ?? {})) {
    const { schema } = resolve(raw, root);
    if (raw.default !== undefined) out[name] = raw.default as Json;
    else if (schema.default !== undefined) out[name] = schema.default as Json;
    else if (root.required?.includes(name)) {
      const k = kind(schema);
      if (k === "string") out[name] = "";
      else if (k === "enum" && schema.enum?.length) out[name] = schema.enum[0];
    }
  }
  return out;
}

export interface FieldProps {
  name: string;
  schema: JsonSchema;
  root: JsonSchema;
  value: unknown;
  required: boolean;
  expression: boolean;
  errors: string[];
  readOnly: boolean;
  onChange: (value: unknown) => void;
}

function problemOf(value: unknown, expression: boolean): string | null {
  const texts: string[] = [];
  const visit = (v: unknown) => {
    if (typeof v === "string") texts.push(v);
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === "object") Object.values(v).forEach(visit);
  };
  visit(value);
  for (const t of texts) {
    const p = expression ? (t.trim() ? checkCel(t) : null) : checkTemplate(t);
    if (p) return `${expression ? "CEL" : "Template"}: ${p.message} at ${p.offset}`;
  }
  return null;
}

export function Field({ name, schema: raw, root, value, required, expression, errors, readOnly, onChange }: FieldProps) {
  const id = useId();
  const scope = useContext(ExpressionScope);
  const { schema } = resolve(raw, root);
  const k = kind(schema);
  const label = schema.title ?? raw.title ?? name;
  const syntax = value !== undefined ? problemOf(value, expression) : null;
  const all = [...(syntax ? [syntax] : []), ...errors];
  const describedBy = `${id}-help`;
  const common = {
    id,
    "aria-invalid": all.length > 0 || undefined,
    "aria-describedby": describedBy,
    disabled: readOnly,
    "data-field": name,
  };
  let control;
  if (k === "boolean") {
    control = <input type="checkbox" {...common} checked={value === true} onChange={(e) => onChange(e.target.checked)} />;
  } else if (k === "enum") {
    control = (
      <select {...common} value={value === undefined ? "" : JSON.stringify(value)} onChange={(e) => onChange(e.target.value === "" ? undefined : JSON.parse(e.target.value))}>
        {!required && <option value="">(default)</option>}
        {schema.enum!.map((o) => (
          <option key={JSON.stringify(o)} value={JSON.stringify(o)}>
            {String(o)}
          </option>
        ))}
      </select>
    );
  } else if (k === "number" || k === "integer") {
    control = (
      <TextLike
        {...common}
        value={value === undefined || value === null ? "" : typeof value === "string" ? value : String(value)}
        onCommit={(t) => {
          if (t.trim() === "") return onChange(undefined);
          const n = Number(t);
          // A template may stand in for a number; keep it as text for the server to check.
          onChange(Number.isFinite(n) && !t.includes("{{") ? n : t);
        }}
      />
    );
  } else if (k === "string") {
    const long = expression || /text|body|prompt|template|message|query|expression|condition/.test(name);
    const text = typeof value === "string" ? value : value == null ? "" : JSON.stringify(value);
    const commit = (t: string) => onChange(t === "" && !required ? undefined : t);
    // In a node's config: autocomplete and a live preview (ExpressionInput.tsx).
    control = scope ? <ExpressionInput {...common} multiline={long} className={expression ? "code" : undefined} value={text} onCommit={commit} template={!expression} field={name} /> : <TextLike {...common} multiline={long} className={expression ? "code" : undefined} value={text} onCommit={commit} />;
  } else {
    control = <JsonField {...common} value={value} onChange={onChange} />;
  }
  return (
    <div className={"field" + (all.length ? " invalid" : "")} data-testid={`field-${name}`}>
      <label htmlFor={id}>
        {label}
        {required && <span aria-hidden="true"> *</span>}
        {expression && <span className="badge">CEL</span>}
      </label>
      {control}
      <div id={describedBy} className="help">
        {all.map((e, i) => (
          <div key={i} className="field-error" role="alert">
            {e}
          </div>
        ))}
        {schema.description && <div className="muted small">{schema.description}</div>}
      </div>
    </div>
  );
}

/** A text input that keeps its own text while focused, so remote edits do not move the caret. */
function TextLike({ value, onCommit, multiline, ...rest }: { value: string; onCommit: (t: string) => void; multiline?: boolean; [k: string]: unknown }) {
  const [text, setText] = useState(value);
  const [focused, setFocused] = useState(false);
  useEffect(() => {
    if (!focused) setText(value);
  }, [value, focused]);
  const props = {
    ...rest,
    value: text,
    onFocus: () => setFocused(true),
    onBlur: () => {
      setFocused(false);
      if (text !== value) onCommit(text);
    },
    onChange: (e: { target: { value: string } }) => {
      setText(e.target.value);
      onCommit(e.target.value);
    },
  };
  return multiline ? <textarea rows={3} {...props} /> : <input type="text" {...props} />;
}

function sameJson(text: string, shown: string): boolean {
  if (text.trim() === "" || shown === "") return text.trim() === shown;
  try {
    return JSON.stringify(JSON.parse(text), null, 2) === shown;
  } catch {
    return false;
  }
}

function JsonField({ value, onChange, ...rest }: { value: unknown; onChange: (v: unknown) => void; [k: string]: unknown }) {
  const shown = value === undefined ? "" : JSON.stringify(value, null, 2);
  const [text, setText] = useState(shown);
  const [error, setError] = useState<string | null>(null);
  const [focused, setFocused] = useState(false);
  useEffect(() => {
    // Leaving the field keeps the user's own layout of the same value; a different value
    // (a remote edit, an undo) replaces the text.
    if (!focused && !sameJson(text, shown)) {
      setText(shown);
      setError(null);
    }
  }, [shown, focused]);
  return (
    <>
      <textarea
        {...rest}
        className="code"
        rows={Math.min(10, Math.max(2, text.split("\n").length))}
        value={text}
        onFocus={() => setFocused(true)}
        onBlur={() => setFocused(false)}
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim() === "") {
            setError(null);
            return onChange(undefined);
          }
          try {
            onChange(JSON.parse(e.target.value));
            setError(null);
          } catch (err) {
            setError(`JSON: ${(err as Error).message}`);
          }
        }}
      />
      {error && (
        <div className="field-error" role="alert">
          {error}
        </div>
      )}
    </>
  );
}

/** The whole form for an object schema. */
export function SchemaForm({
  schema,
  value,
  onFieldChange,
  expressionFields = [],
  fieldErrors = {},
  readOnly = false,
}: {
  schema: JsonSchema;
  value: Record<string, unknown>;
  onFieldChange: (name: string, value: unknown) => void;
  expressionFields?: string[];
  fieldErrors?: Record<string, string[]>;
  readOnly?: boolean;
}) {
  const props = Object.entries(schema.properties ?? {});
  const known = new Set(props.map(([n]) => n));
  const extra = Object.keys(value).filter((k) => !known.has(k));
  return (
    <div className="schema-form">
      {props.map(([name, s]) => (
        <Field
          key={name}
          name={name}
          schema={s}
          root={schema}
          value={value[name]}
          required={schema.required?.includes(name) ?? false}
          expression={expressionFields.includes(name)}
          errors={fieldErrors[name] ?? []}
          readOnly={readOnly}
          onChange={(v) => onFieldChange(name, v)}
        />
      ))}
      {extra.map((name) => (
        <Field key={name} name={name} schema={{ title: `${name} (not in schema)` }} root={schema} value={value[name]} required={false} expression={false} errors={fieldErrors[name] ?? []} readOnly={readOnly} onChange={(v) => onFieldChange(name, v)} />
      ))}
      {props.length === 0 && extra.length === 0 && <p className="muted small">No settings.</p>}
    </div>
  );
}
