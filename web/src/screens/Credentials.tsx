import { useState, type FormEvent } from "react";
import { useSearchParams } from "react-router-dom";
import { api, type Page } from "../api/client";
import type { Credential, CredentialConnection, CredentialType } from "../api/types";
import { ErrorBox, Loading, Modal, useAction, useAsync, when } from "../components/common";
import { can, useSession } from "../session";

interface FieldSpec {
  name: string;
  title: string;
  secret: boolean;
  required: boolean;
  description?: string;
  options?: string[];
  initial?: string;
}

const STATUS_LABEL: Record<CredentialConnection["status"], string> = {
  connected: "connected",
  needs_reconnection: "needs reconnection",
  not_connected: "not connected",
};

/** Where the provider sends the browser back: the URL to register with the OAuth application. */
const CALLBACK_URL = `${window.location.origin}/api/v1/oauth/callback`;

const CALLBACK_REASON: Record<string, string> = {
  denied: "the provider did not grant access",
  expired: "the connect flow took too long; press Connect again",
  browser_mismatch: "the flow was finished in another browser; press Connect again",
  unknown_state: "this connect flow is unknown or already used; press Connect again",
  exchange_failed: "the provider refused the code exchange (see the audit log)",
};

function slugOf(t: CredentialType): string {
  return String(t.type ?? t.slug ?? t.name ?? "");
}

/** The fields of a credential type, whatever shape of schema the API sends. */
export function fieldsOf(t: CredentialType | undefined): FieldSpec[] {
  if (!t) return [];
  const schema = (t.schema ?? t.fields_schema ?? t.config_schema ?? {}) as CredentialType["schema"] & Record<string, unknown>;
  const props = schema?.properties ?? {};
  const secretNames = new Set<string>([...((t.secret_fields as string[]) ?? []), ...((schema?.secret_fields as string[]) ?? [])]);
  // readOnly fields (an OAuth connection's tokens and status) are set by the server, not typed in.
  return Object.entries(props)
    .filter(([, p]) => !p.readOnly)
    .map(([name, p]) => ({
      name,
      title: p.title ?? name,
      description: p.description,
      secret: secretNames.has(name) || p.format === "password" || !!p.writeOnly || !!p.secret,
      required: schema?.required?.includes(name) ?? false,
      options: Array.isArray(p.enum) ? p.enum.map(String) : undefined,
      initial: typeof p.default === "string" ? p.default : undefined,
    }));
}

/** Connect (authorization code), Reconnect, or Test connection (client credentials) of an OAuth credential. */
function ConnectionCell({ credential, canEdit, onChanged }: { credential: Credential; canEdit: boolean; onChanged: () => void }) {
  const connection = credential.connection;
  const [run, busy, error] = useAction();
  if (!connection) return null;
  const label = STATUS_LABEL[connection.status] ?? connection.status;
  const connect = () =>
    run(async () => {
      const started = await api<{ authorization_url: string }>(`/credentials/${encodeURIComponent(credential.name)}/oauth/connect`, { method: "POST" });
      window.location.assign(started.authorization_url);
    });
  const test = () =>
    run(async () => {
      await api(`/credentials/${encodeURIComponent(credential.name)}/oauth/test`, { method: "POST" });
      onChanged();
    });
  return (
    <div>
      <span className={`badge status-${connection.status}`} data-testid={`status-${credential.name}`} title={connection.status_reason ?? undefined}>
        {label}
      </span>
      {connection.status === "needs_reconnection" && connection.status_reason && <div className="muted small">{connection.status_reason}</div>}
      {canEdit &&
        (connection.grant === "client_credentials" ? (
          <button onClick={test} disabled={busy}>
            Test connection
          </button>
        ) : (
          <button onClick={connect} disabled={busy}>
            {connection.status === "not_connected" ? "Connect" : "Reconnect"}
          </button>
        ))}
      <ErrorBox error={error} />
    </div>
  );
}

export function Credentials() {
  const me = useSession((s) => s.me);
  const list = useAsync(() => api<Page<Credential>>("/credentials"), []);
  const types = useAsync(() => api<CredentialType[] | Page<CredentialType>>("/credential-types").then((r) => (Array.isArray(r) ? r : r.items)), []);
  const [editing, setEditing] = useState<Credential | "new" | null>(null);
  const [act, , actionError] = useAction();
  const canEdit = can(me, "edit");
  const [params] = useSearchParams();
  const returned = params.get("oauth");
  const returnedName = params.get("credential");
  const returnedReason = params.get("reason") ?? "";
  return (
    <section aria-labelledby="cred-h">
      <header className="page-head">
        <h1 id="cred-h">Credentials</h1>
        {canEdit && (
          <button className="primary" onClick={() => setEditing("new")}>
            New credential
          </button>
        )}
      </header>
      <p className="muted small">Values are encrypted and never shown again. Replace a value to rotate it.</p>
      {returned === "connected" && (
        <p className="notice" role="status">
          Credential <code>{returnedName}</code> is connected.
        </p>
      )}
      {returned === "error" && (
        <p className="error-box" role="alert">
          Connecting {returnedName ? <code>{returnedName}</code> : "the credential"} failed: {CALLBACK_REASON[returnedReason] ?? returnedReason}.
        </p>
      )}
      <ErrorBox error={list.error || types.error || actionError} />
      {list.loading && !list.data && <Loading />}
      {list.data && (
        <table className="table" aria-label="Credentials">
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th>Fields</th>
              <th>Connection</th>
              <th>Updated</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((c) => (
              <tr key={c.id}>
                <td>
                  <code>{c.name}</code>
                </td>
                <td>{c.type}</td>
                <td>{c.fields?.join(", ")}</td>
                <td>
                  <ConnectionCell credential={c} canEdit={canEdit} onChanged={list.reload} />
                </td>
                <td>{when(c.updated_at)}</td>
                <td>
                  {canEdit && (
                    <>
                      <button onClick={() => setEditing(c)}>Replace values</button>{" "}
                      <button className="danger" onClick={() => confirm(`Delete credential ${c.name}?`) && act(() => api(`/credentials/${c.id}`, { method: "DELETE" }).then(list.reload))}>
                        Delete
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
            {list.data.items.length === 0 && (
              <tr>
                <td colSpan={6} className="muted">
                  No credentials yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {editing && (
        <CredentialForm
          credential={editing === "new" ? null : editing}
          types={types.data ?? []}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            list.reload();
          }}
        />
      )}
    </section>
  );
}

function CredentialForm({ credential, types, onClose, onSaved }: { credential: Credential | null; types: CredentialType[]; onClose: () => void; onSaved: () => void }) {
  const [name, setName] = useState(credential?.name ?? "");
  const [type, setType] = useState(credential?.type ?? (types[0] ? slugOf(types[0]) : ""));
  const [values, setValues] = useState<Record<string, string>>({});
  const [run, busy, error] = useAction();
  const spec = types.find((t) => slugOf(t) === type);
  const fields = fieldsOf(spec);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const clean = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== ""));
    run(async () => {
      if (credential) await api(`/credentials/${credential.id}`, { method: "PUT", body: { values: clean } });
      else await api("/credentials", { body: { name, type, values: clean } });
      onSaved();
    });
  };
  return (
    <Modal title={credential ? `Replace values of ${credential.name}` : "New credential"} onClose={onClose}>
      <form onSubmit={submit} className="form" autoComplete="off">
        {!credential && (
          <>
            <label>
              Name
              <input value={name} onChange={(e) => setName(e.target.value)} required pattern="[a-z][a-z0-9_]*" title="lowercase letters, digits and _" />
            </label>
            <label>
              Type
              <select value={type} onChange={(e) => setType(e.target.value)}>
                {types.map((t) => (
                  <option key={slugOf(t)} value={slugOf(t)}>
                    {String(t.name ?? slugOf(t))}
                  </option>
                ))}
              </select>
            </label>
          </>
        )}
        {fields.map((f) => (
          <label key={f.name}>
            {f.title}
            {f.required && " *"}
            {f.options ? (
              <select value={values[f.name] ?? (credential ? "" : (f.initial ?? ""))} onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}>
                {credential && <option value="">(keep)</option>}
                {f.options.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            ) : (
              <input type={f.secret ? "password" : "text"} autoComplete="new-password" value={values[f.name] ?? ""} onChange={(e) => setValues({ ...values, [f.name]: e.target.value })} required={f.required && !credential} />
            )}
            {f.description && <span className="muted small">{f.description}</span>}
          </label>
        ))}
        {fields.some((f) => f.name === "authorize_url") && (
          <p className="muted small">
            Register this redirect URL with the provider's OAuth application: <code>{CALLBACK_URL}</code>
          </p>
        )}
        {fields.length === 0 && <p className="muted small">This type declares no fields.</p>}
        <ErrorBox error={error} />
        <button className="primary" type="submit" disabled={busy}>
          Save
        </button>
      </form>
    </Modal>
  );
}
