/** Multi-factor authentication: the code step of signing in, the account's TOTP factor and
 * recovery codes, and a tenant's MFA policy (admins). Secrets are shown once, never stored here. */
import { useState, type FormEvent } from "react";
import { api } from "../api/client";
import type { Role } from "../api/types";
import { useSession, type MfaChallenge } from "../session";
import { ErrorBox, Loading, useAction, useAsync, when } from "./common";

interface Enrolment {
  secret: string;
  otpauth_uri: string;
  qr_svg: string;
}

interface SignedIn {
  tenants: { id: string }[];
  recovery_codes?: string[];
}

interface MfaStatus {
  totp_enabled: boolean;
  totp_pending: boolean;
  confirmed_at: string | null;
  recovery_codes_left: number;
  required_by: string[];
}

interface Policy {
  mode: "off" | "all" | "roles";
  roles: Role[];
  updated_at: string | null;
  updated_by: string | null;
  members_without_mfa: number;
}

function CodeInput({ value, onChange, label = "Code", recovery = false }: { value: string; onChange: (v: string) => void; label?: string; recovery?: boolean }) {
  return (
    <label>
      {label}
      <input
        name="code"
        inputMode={recovery ? "text" : "numeric"}
        autoComplete="one-time-code"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        maxLength={32}
        required
        autoFocus
      />
    </label>
  );
}

/** The QR code and secret of a new TOTP enrolment, then a code to confirm it. */
function TotpSetup({ enrolment, onConfirm, busy }: { enrolment: Enrolment; onConfirm: (code: string) => void; busy: boolean }) {
  const [code, setCode] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onConfirm(code.trim());
  };
  return (
    <form onSubmit={submit} aria-label="Confirm authenticator" className="form">
      <p className="muted">Scan the QR code with an authenticator app, or type the secret into it, then enter the 6-digit code it shows.</p>
      <img src={enrolment.qr_svg} alt="QR code for the authenticator app" width={200} height={200} />
      <label>
        Secret
        <input readOnly value={enrolment.secret} data-testid="totp-secret" className="code" onFocus={(e) => e.target.select()} />
      </label>
      <CodeInput value={code} onChange={setCode} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? "Checking…" : "Confirm"}
      </button>
    </form>
  );
}

/** Recovery codes, shown once. */
function RecoveryCodesView({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  return (
    <div aria-label="Recovery codes" role="region">
      <h2>Recovery codes</h2>
      <p className="muted">Keep these somewhere safe: each one signs you in once without the app. They are shown only now.</p>
      <ul className="code" data-testid="recovery-codes">
        {codes.map((c) => (
          <li key={c}>{c}</li>
        ))}
      </ul>
      <button className="primary" onClick={onDone}>
        I have saved them
      </button>
    </div>
  );
}

/** The second step of signing in: a code, or setting up TOTP when a tenant requires it. */
export function MfaSignIn({ challenge }: { challenge: MfaChallenge }) {
  const { signedIn, cancelMfa } = useSession();
  const [code, setCode] = useState("");
  const [enrolment, setEnrolment] = useState<Enrolment | null>(null);
  const [done, setDone] = useState<SignedIn | null>(null);
  const [run, busy, error] = useAction();
  const body = { challenge: challenge.challenge };

  if (done?.recovery_codes) {
    return (
      <div className="form signin-panel">
        <RecoveryCodesView codes={done.recovery_codes} onDone={() => signedIn(done.tenants, challenge.joined)} />
      </div>
    );
  }
  if (challenge.step === "enroll") {
    return (
      <div className="form signin-panel" aria-label="Set up two-factor authentication" role="region">
        <h1>Set up two-factor authentication</h1>
        <p className="muted">{challenge.required_by.join(", ")} requires a second factor to sign in.</p>
        <ErrorBox error={error} />
        {enrolment ? (
          <TotpSetup enrolment={enrolment} busy={busy} onConfirm={(c) => run(() => api<SignedIn>("/auth/mfa/enroll/confirm", { body: { ...body, code: c } }).then(setDone))} />
        ) : (
          <button className="primary" disabled={busy} onClick={() => run(() => api<Enrolment>("/auth/mfa/enroll", { body }).then(setEnrolment))}>
            Set up an authenticator app
          </button>
        )}
        <button type="button" className="link" onClick={cancelMfa}>
          Back to sign-in
        </button>
      </div>
    );
  }
  const submit = (e: FormEvent) => {
    e.preventDefault();
    run(() => api<SignedIn>("/auth/mfa/verify", { body: { ...body, code: code.trim() } }).then((res) => signedIn(res.tenants, challenge.joined)));
  };
  return (
    <form onSubmit={submit} aria-label="Two-factor code">
      <h1>Gorax</h1>
      <p className="muted">Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>
      <CodeInput value={code} onChange={setCode} recovery />
      <ErrorBox error={error} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? "Checking…" : "Verify"}
      </button>
      <button type="button" className="link" onClick={cancelMfa}>
        Back to sign-in
      </button>
    </form>
  );
}

function CodeAction({ label, danger, onSubmit, busy }: { label: string; danger?: boolean; onSubmit: (code: string) => Promise<void>; busy: boolean }) {
  const [code, setCode] = useState("");
  return (
    <form
      className="row"
      aria-label={label}
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit(code.trim()).then(() => setCode(""));
      }}
    >
      <input aria-label={`Code to ${label.toLowerCase()}`} placeholder="code" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} maxLength={32} required />
      <button type="submit" className={danger ? "danger" : ""} disabled={busy}>
        {label}
      </button>
    </form>
  );
}

/** The signed-in user's own two-factor settings. */
export function AccountSecurity() {
  const status = useAsync(() => api<MfaStatus>("/auth/mfa"), []);
  const [enrolment, setEnrolment] = useState<Enrolment | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [run, busy, error] = useAction();
  const s = status.data;
  return (
    <section aria-labelledby="security-h">
      <header className="page-head">
        <h1 id="security-h">Security</h1>
      </header>
      <div className="card">
        <h2>Two-factor authentication</h2>
        <ErrorBox error={status.error || error} />
        {status.loading && !s && <Loading />}
        {codes ? (
          <RecoveryCodesView codes={codes} onDone={() => setCodes(null)} />
        ) : enrolment ? (
          <TotpSetup
            enrolment={enrolment}
            busy={busy}
            onConfirm={(code) =>
              run(async () => {
                const res = await api<{ recovery_codes: string[] }>("/auth/mfa/totp/confirm", { body: { code } });
                setEnrolment(null);
                setCodes(res.recovery_codes);
                status.reload();
              })
            }
          />
        ) : s?.totp_enabled ? (
          <>
            <p data-testid="mfa-state">
              On since {when(s.confirmed_at)} · {s.recovery_codes_left} recovery codes left
              {s.required_by.length > 0 && <span className="muted"> · required by {s.required_by.join(", ")}</span>}
            </p>
            <p className="muted">New recovery codes (a code from the app):</p>
            <CodeAction label="New recovery codes" busy={busy} onSubmit={(code) => run(() => api<{ recovery_codes: string[] }>("/auth/mfa/totp/recovery-codes", { body: { code } }).then((r) => setCodes(r.recovery_codes)).then(status.reload))} />
            {s.required_by.length === 0 && (
              <>
                <p className="muted">Turn off (a code from the app or a recovery code):</p>
                <CodeAction label="Turn off" danger busy={busy} onSubmit={(code) => run(() => api("/auth/mfa/totp", { method: "DELETE", body: { code } }).then(status.reload))} />
              </>
            )}
          </>
        ) : (
          s && (
            <>
              <p data-testid="mfa-state">
                Off{s.required_by.length > 0 && <span> · required by {s.required_by.join(", ")} from your next sign-in</span>}
              </p>
              <button className="primary" disabled={busy} onClick={() => run(() => api<Enrolment>("/auth/mfa/totp/enroll", { method: "POST" }).then(setEnrolment))}>
                Set up an authenticator app
              </button>
            </>
          )
        )}
      </div>
    </section>
  );
}

const ROLES: Role[] = ["admin", "editor", "operator", "viewer"];

/** The tenant's MFA policy (admins). */
export function MfaPolicy() {
  const policy = useAsync(() => api<Policy>("/tenant/mfa-policy"), []);
  const [run, busy, error] = useAction();
  const [draft, setDraft] = useState<{ mode: Policy["mode"]; roles: Role[] } | null>(null);
  const current = draft ?? (policy.data ? { mode: policy.data.mode, roles: policy.data.roles } : null);
  const save = (e: FormEvent) => {
    e.preventDefault();
    if (!current) return;
    const body = { mode: current.mode, roles: current.mode === "roles" ? current.roles : [] };
    run(() => api<Policy>("/tenant/mfa-policy", { method: "PUT", body }).then((p) => { policy.setData(p); setDraft(null); }));
  };
  return (
    <div className="card">
      <h2>Two-factor authentication</h2>
      <ErrorBox error={policy.error || error} />
      {!current ? (
        <Loading />
      ) : (
        <form onSubmit={save} aria-label="MFA policy" className="form">
          <label>
            Required of
            <select aria-label="MFA required of" value={current.mode} onChange={(e) => setDraft({ ...current, mode: e.target.value as Policy["mode"] })}>
              <option value="off">nobody</option>
              <option value="all">every member</option>
              <option value="roles">members with these roles</option>
            </select>
          </label>
          {current.mode === "roles" && (
            <div className="row" role="group" aria-label="Roles that need MFA">
              {ROLES.map((r) => (
                <label key={r} className="row">
                  <input type="checkbox" checked={current.roles.includes(r)} onChange={(e) => setDraft({ ...current, roles: e.target.checked ? [...current.roles, r] : current.roles.filter((x) => x !== r) })} />
                  {r}
                </label>
              ))}
            </div>
          )}
          {policy.data && policy.data.mode !== "off" && <p className="muted small">{policy.data.members_without_mfa} member(s) it applies to have not set up MFA yet: they will be asked to at their next sign-in.</p>}
          <div className="row">
            <button type="submit" className="primary" disabled={busy || !draft}>
              Save policy
            </button>
          </div>
        </form>
      )}
    </div>
  );
}
