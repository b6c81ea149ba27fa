import { useState, type FormEvent } from "react";
import { api, type Page } from "../api/client";
import type { ApiKey, Invitation, Member, Role } from "../api/types";
import { ErrorBox, Loading, useAction, useAsync, when } from "../components/common";
import { MfaPolicy } from "../components/Mfa";
import { RetentionSettings } from "../components/Retention";
import { Usage } from "../components/Usage";
import { SsoSettings } from "./AdminSso";
import { TelemetryStatus } from "../components/Telemetry";

const ROLES: Role[] = ["admin", "editor", "operator", "viewer"];

export function Admin() {
  return (
    <section aria-labelledby="admin-h">
      <header className="page-head">
        <h1 id="admin-h">Members &amp; API keys</h1>
      </header>
      <Members />
      <ApiKeys />
      <MfaPolicy />
      <SsoSettings />
      <RetentionSettings />
      <TelemetryStatus />
      <Usage />
    </section>
  );
}

function Members() {
  const list = useAsync(() => api<Page<Member>>("/members"), []);
  const [act, busy, error] = useAction();
  const uid = (m: Member) => m.user_id ?? m.id;
  return (
    <div className="card">
      <h2>Members</h2>
      <ErrorBox error={list.error || error} />
      {list.loading && !list.data && <Loading />}
      <table className="table" aria-label="Members">
        <thead>
          <tr>
            <th>Email</th>
            <th>Name</th>
            <th>Role</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.data?.items.map((m) => (
            <tr key={uid(m)}>
              <td>{m.email}</td>
              <td>{m.name ?? ""}</td>
              <td>
                <select aria-label={`Role of ${m.email}`} value={m.role} disabled={busy} onChange={(e) => act(() => api(`/members/${uid(m)}`, { method: "PATCH", body: { role: e.target.value } }).then(list.reload))}>
                  {ROLES.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </td>
              <td>
                <button className="danger" disabled={busy} onClick={() => confirm(`Remove ${m.email}?`) && act(() => api(`/members/${uid(m)}`, { method: "DELETE" }).then(list.reload))}>
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Invitations />
    </div>
  );
}

/** Members join by invitation: the invitee accepts with the token, or after signing in. */
function Invitations() {
  const list = useAsync(() => api<Page<Invitation>>("/members/invitations"), []);
  const [act, busy, error] = useAction();
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("editor");
  const [created, setCreated] = useState<Invitation | null>(null);
  const invite = (e: FormEvent) => {
    e.preventDefault();
    act(async () => {
      setCreated(await api<Invitation>("/members/invitations", { body: { email, role } }));
      setEmail("");
      list.reload();
    });
  };
  return (
    <>
      <h3>Invitations</h3>
      <ErrorBox error={list.error || error} />
      {created && (
        <p className="notice" role="status">
          Invited {created.email}. Give them this token (shown once); they accept it when signing in: <code>{created.token}</code>
        </p>
      )}
      {!!list.data?.items.length && (
        <table className="table" aria-label="Pending invitations">
          <thead>
            <tr>
              <th>Email</th>
              <th>Role</th>
              <th>Expires</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((i) => (
              <tr key={i.id}>
                <td>{i.email}</td>
                <td>{i.role}</td>
                <td>{when(i.expires_at)}</td>
                <td>
                  <button className="danger" disabled={busy} onClick={() => confirm(`Revoke the invitation of ${i.email}?`) && act(() => api(`/members/invitations/${i.id}`, { method: "DELETE" }).then(list.reload))}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form onSubmit={invite} className="row">
        <input type="email" placeholder="email" aria-label="Invitee email" value={email} onChange={(e) => setEmail(e.target.value)} required />
        <select aria-label="Invitee role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {ROLES.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
        <button type="submit" disabled={busy}>
          Invite
        </button>
      </form>
    </>
  );
}

function ApiKeys() {
  const list = useAsync(() => api<Page<ApiKey>>("/api-keys"), []);
  const [act, busy, error] = useAction();
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("operator");
  const [expires, setExpires] = useState("");
  const [shown, setShown] = useState<string | null>(null);
  const create = (e: FormEvent) => {
    e.preventDefault();
    act(async () => {
      const res = await api<ApiKey>("/api-keys", { body: { name, role, expires_at: expires ? new Date(expires).toISOString() : undefined } });
      setShown(res.key ?? null);
      setName("");
      list.reload();
    });
  };
  return (
    <div className="card">
      <h2>API keys</h2>
      <ErrorBox error={list.error || error} />
      {shown && (
        <p className="notice" role="status">
          New key (copy it now, it is not shown again): <code>{shown}</code>
        </p>
      )}
      <table className="table" aria-label="API keys">
        <thead>
          <tr>
            <th>Name</th>
            <th>Prefix</th>
            <th>Role</th>
            <th>Created</th>
            <th>Expires</th>
            <th>Last used</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.data?.items.map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td>
                <code>gx_{k.prefix}_…</code>
              </td>
              <td>{k.role}</td>
              <td>{when(k.created_at)}</td>
              <td>{when(k.expires_at)}</td>
              <td>{when(k.last_used_at)}</td>
              <td>
                <button className="danger" disabled={busy} onClick={() => confirm(`Revoke ${k.name}?`) && act(() => api(`/api-keys/${k.id}`, { method: "DELETE" }).then(list.reload))}>
                  Revoke
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form onSubmit={create} className="row">
        <input placeholder="key name" aria-label="Key name" value={name} onChange={(e) => setName(e.target.value)} required />
        <select aria-label="Key role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {ROLES.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
        <label className="small">
          Expires
          <input type="date" value={expires} onChange={(e) => setExpires(e.target.value)} />
        </label>
        <button type="submit" disabled={busy}>
          Create key
        </button>
      </form>
    </div>
  );
}
