/** "Sign in with SSO": an organisation (tenant slug) or a work e-mail address -> the provider. */
import { useState, type FormEvent } from "react";
import { api } from "../api/client";
import { ErrorBox, useAction } from "../components/common";

const REASONS: Record<string, string> = {
  state: "The sign-in expired or was started in another browser. Try again.",
  domain: "Your e-mail domain is not allowed to sign in to this organisation.",
  email_unverified: "Your identity provider has not verified your e-mail address.",
  no_account: "You have no account in this organisation; ask an admin to invite you.",
  not_member: "You are not a member of this organisation; ask an admin to invite you.",
  no_role: "Your groups give you no role in this organisation.",
  inactive: "Your account is disabled.",
  id_token: "The identity provider's answer could not be verified.",
  provider_denied: "The sign-in was cancelled at the identity provider.",
  provider_unreachable: "The identity provider could not be reached.",
  provider_error: "The identity provider answered with an error.",
  token_exchange: "The identity provider refused the sign-in.",
  not_configured: "This organisation has no single sign-on.",
  unknown_tenant: "No such organisation.",
  configuration: "Single sign-on is misconfigured; ask an admin.",
  no_email: "The identity provider sent no e-mail address.",
};

function ssoError(): string | null {
  const code = new URLSearchParams(window.location.search).get("sso_error");
  return code ? (REASONS[code] ?? `Single sign-on failed (${code}).`) : null;
}

export function SsoSignIn() {
  const [who, setWho] = useState("");
  const [run, busy, error] = useAction();
  const [refused] = useState(ssoError);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    run(async () => {
      const value = who.trim();
      let start = `/api/v1/auth/sso/${encodeURIComponent(value.toLowerCase())}/start`;
      if (value.includes("@")) {
        start = (await api<{ start_url: string }>("/auth/sso/discover", { query: { email: value } })).start_url;
      }
      window.location.assign(start);
    });
  };
  return (
    <form onSubmit={submit} aria-labelledby="sso-h" className="sso">
      <h2 id="sso-h">Sign in with SSO</h2>
      {refused && (
        <div className="error-box" role="alert">
          {refused}
        </div>
      )}
      <label>
        Organisation or work e-mail
        <input value={who} onChange={(e) => setWho(e.target.value)} placeholder="acme or you@acme.com" required />
      </label>
      <ErrorBox error={error} />
      <button type="submit" disabled={busy}>
        Continue with SSO
      </button>
    </form>
  );
}
