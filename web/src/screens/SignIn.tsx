import { useState, type FormEvent } from "react";
import { ErrorBox, useAction } from "../components/common";
import { MfaSignIn } from "../components/Mfa";
import { useSession } from "../session";
import { SsoSignIn } from "./SignInSso";

export function SignIn() {
  const [invited, setInvited] = useState(false);
  const mfa = useSession((s) => s.mfa);
  if (mfa) return <main className="signin"><MfaSignIn challenge={mfa} /></main>;
  return (
    <main className="signin">
      {invited ? <AcceptInvitation onBack={() => setInvited(false)} /> : <SignInForm onInvited={() => setInvited(true)} />}
      {!invited && <SsoSignIn />}
    </main>
  );
}

function SignInForm({ onInvited }: { onInvited: () => void }) {
  const login = useSession((s) => s.login);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [run, busy, error] = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    run(() => login(email, password));
  };
  return (
    <form onSubmit={submit} aria-label="Sign in">
      <h1>Gorax</h1>
      <p className="muted">Sign in to build and run workflows.</p>
      <label>
        Email
        <input type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} required autoFocus />
      </label>
      <label>
        Password
        <input type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
      </label>
      <ErrorBox error={error} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
      <button type="button" className="link" onClick={onInvited}>
        I have an invitation
      </button>
    </form>
  );
}

function AcceptInvitation({ onBack }: { onBack: () => void }) {
  const accept = useSession((s) => s.acceptInvitation);
  const [token, setToken] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [run, busy, error] = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    run(() => accept(token.trim(), password, name));
  };
  return (
    <form onSubmit={submit} aria-label="Accept an invitation">
      <h1>Gorax</h1>
      <p className="muted">Accept an invitation: with your password if you have an account, or choose one (10 characters at least) to create it.</p>
      <label>
        Invitation token
        <input value={token} onChange={(e) => setToken(e.target.value)} required autoFocus />
      </label>
      <label>
        Your name (new accounts)
        <input autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <label>
        Password
        <input type="password" autoComplete="current-password" minLength={10} value={password} onChange={(e) => setPassword(e.target.value)} required />
      </label>
      <ErrorBox error={error} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? "Joining…" : "Accept and sign in"}
      </button>
      <button type="button" className="link" onClick={onBack}>
        Back to sign-in
      </button>
    </form>
  );
}
