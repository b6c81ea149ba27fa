import { useState, type FormEvent } from "react";
import { ErrorBox, useAction } from "../components/common";
import { useSession } from "../session";

export function SignIn() {
  const login = useSession((s) => s.login);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [run, busy, error] = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    run(() => login(email, password));
  };
  return (
    <main className="signin">
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
      </form>
    </main>
  );
}
