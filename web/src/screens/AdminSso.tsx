/** Admin: the tenant's single sign-on (OpenID Connect) settings. The client secret is write-only. */
import { useEffect, useState, type FormEvent } from "react";
import { api, ApiError } from "../api/client";
import type { Role } from "../api/types";
import { ErrorBox, useAction, when } from "../components/common";

interface SsoConfig {
  enabled: boolean;
  discovery_url: string;
  client_id: string;
  client_secret_set: boolean;
  scopes: string;
  allowed_domains: string[];
  role_claim: string;
  role_mapping: Record<string, Role>;
  default_role: Role | null;
  jit_enabled: boolean;
  sso_only: boolean;
  updated_at: string;
  start_url: string;
  callback_url: string;
}

const ROLES: Role[] = ["admin", "editor", "operator", "viewer"];

/** "group=role" lines <-> the mapping object. */
function mappingText(m: Record<string, string>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");
}
function parseMapping(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (!t) continue;
    const i = t.lastIndexOf("=");
    out[i > 0 ? t.slice(0, i).trim() : t] = i > 0 ? t.slice(i + 1).trim() : "";
  }
  return out;
}

export function SsoSettings() {
  const [config, setConfig] = useState<SsoConfig | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [act, busy, error, setError] = useAction();
  const [saved, setSaved] = useState(false);
  const [form, setForm] = useState({
    enabled: true,
    discovery_url: "",
    client_id: "",
    client_secret: "",
    scopes: "openid email profile",
    allowed_domains: "",
    role_claim: "groups",
    role_mapping: "",
    default_role: "viewer" as Role | "",
    jit_enabled: true,
    sso_only: false,
  });

  const fill = (c: SsoConfig) => {
    setConfig(c);
    setForm({
      enabled: c.enabled,
      discovery_url: c.discovery_url,
      client_id: c.client_id,
      client_secret: "",
      scopes: c.scopes,
      allowed_domains: c.allowed_domains.join(", "),
      role_claim: c.role_claim,
      role_mapping: mappingText(c.role_mapping),
      default_role: c.default_role ?? "",
      jit_enabled: c.jit_enabled,
      sso_only: c.sso_only,
    });
  };

  useEffect(() => {
    api<SsoConfig>("/tenants/current/sso")
      .then(fill, (e) => {
        if (!(e instanceof ApiError && e.status === 404)) setError(e);
      })
      .finally(() => setLoaded(true));
  }, [setError]);

  const save = (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    const body: Record<string, unknown> = {
      enabled: form.enabled,
      discovery_url: form.discovery_url.trim(),
      client_id: form.client_id.trim(),
      scopes: form.scopes,
      allowed_domains: form.allowed_domains.split(/[\s,]+/).filter(Boolean),
      role_claim: form.role_claim.trim(),
      role_mapping: parseMapping(form.role_mapping),
      default_role: form.default_role || null,
      jit_enabled: form.jit_enabled,
      sso_only: form.sso_only,
    };
    if (form.client_secret) body.client_secret = form.client_secret;
    act(async () => {
      fill(await api<SsoConfig>("/tenants/current/sso", { method: "PUT", body }));
      setSaved(true);
    });
  };
  const remove = () =>
    confirm("Remove single sign-on? Members sign in with passwords again.") &&
    act(async () => {
      await api("/tenants/current/sso", { method: "DELETE" });
      setConfig(null);
    });

  const set = (k: keyof typeof form) => (e: { target: { value: string; checked?: boolean; type?: string } }) =>
    setForm((f) => ({ ...f, [k]: e.target.type === "checkbox" ? Boolean(e.target.checked) : e.target.value }));

  return (
    <div className="card">
      <h2>Single sign-on (OIDC)</h2>
      {loaded && !config && <p className="muted">Not configured: members sign in with passwords.</p>}
      {config && (
        <p className="muted">
          Redirect URI to register at your provider: <code>{config.callback_url}</code>. Sign-in link: <code>{config.start_url}</code>. Updated {when(config.updated_at)}.
        </p>
      )}
      <form onSubmit={save} aria-label="Single sign-on settings" className="stack">
        <label>
          Discovery URL
          <input type="url" value={form.discovery_url} onChange={set("discovery_url")} placeholder="https://idp.example.com/.well-known/openid-configuration" required />
        </label>
        <label>
          Client ID
          <input value={form.client_id} onChange={set("client_id")} required />
        </label>
        <label>
          Client secret
          <input type="password" autoComplete="new-password" value={form.client_secret} onChange={set("client_secret")} placeholder={config?.client_secret_set ? "stored (leave empty to keep)" : ""} required={!config} />
        </label>
        <label>
          Scopes
          <input value={form.scopes} onChange={set("scopes")} />
        </label>
        <label>
          Allowed e-mail domains
          <input value={form.allowed_domains} onChange={set("allowed_domains")} placeholder="example.com, example.org (empty: any)" />
        </label>
        <label>
          Role claim
          <input value={form.role_claim} onChange={set("role_claim")} />
        </label>
        <label>
          Role mapping (one claim value=role a line)
          <textarea rows={3} value={form.role_mapping} onChange={set("role_mapping")} placeholder={"gorax-admins=admin\ngorax-editors=editor"} />
        </label>
        <label>
          Default role
          <select value={form.default_role} onChange={set("default_role")}>
            <option value="">none: refuse the sign-in</option>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={form.enabled} onChange={set("enabled")} /> Enabled
        </label>
        <label className="check">
          <input type="checkbox" checked={form.jit_enabled} onChange={set("jit_enabled")} /> Create users on first sign-in
        </label>
        <label className="check">
          <input type="checkbox" checked={form.sso_only} onChange={set("sso_only")} /> SSO only (refuse password sign-in)
        </label>
        <ErrorBox error={error} />
        {saved && <p role="status">Saved.</p>}
        <div className="row">
          <button type="submit" className="primary" disabled={busy}>
            Save SSO settings
          </button>
          {config && (
            <button type="button" className="danger" disabled={busy} onClick={remove}>
              Remove SSO
            </button>
          )}
        </div>
      </form>
    </div>
  );
}
