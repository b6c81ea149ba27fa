/** The app shell: sign-in gate, navigation, routes, global shortcuts. */
import { useEffect, useState } from "react";
import { BrowserRouter, NavLink, Navigate, Route, Routes, useNavigate } from "react-router-dom";
import { onUnauthorized } from "./api/client";
import { Loading, Modal } from "./components/common";
import { can, useSession } from "./session";
import { SignIn } from "./screens/SignIn";
import { Dashboard } from "./screens/Dashboard";
import { Operations } from "./screens/Operations";
import { WorkflowList } from "./screens/Workflows";
import { RunList, RunView } from "./screens/Runs";
import { Inbox } from "./screens/Inbox";
import { Credentials } from "./screens/Credentials";
import { Webhooks } from "./screens/Webhooks";
import { DeadLetters } from "./screens/DeadLetters";
import { Admin } from "./screens/Admin";
import { Templates } from "./screens/Templates";
import { Alerts } from "./screens/Alerts";
import { EditorScreen } from "./editor/EditorScreen";
import { AccountSecurity } from "./components/Mfa";

const SHORTCUTS: [string, string][] = [
  ["g d / g w / g r / g i", "Go to dashboard / workflows / runs / inbox"],
  ["?", "This help"],
  ["Ctrl+S", "Validate the draft (editor)"],
  ["Ctrl+Z / Ctrl+Shift+Z", "Undo / redo your own edits"],
  ["Ctrl+C / Ctrl+V / Ctrl+D", "Copy / paste / duplicate selected nodes"],
  ["Delete / Backspace", "Delete selected nodes and edges"],
  ["Ctrl+A", "Select all nodes"],
  ["Shift+L", "Auto-layout"],
  ["Ctrl+Enter", "Run (editor)"],
  ["Ctrl+Shift+P", "Publish (editor)"],
  ["/", "Focus the palette search (editor) or list search"],
];

function isTyping(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  return !!t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
}

function Shell() {
  const { me, logout, switchTenant } = useSession();
  const navigate = useNavigate();
  const [help, setHelp] = useState(false);
  useEffect(() => {
    let prefix = false;
    const onKey = (e: KeyboardEvent) => {
      if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (prefix) {
        prefix = false;
        const to = { d: "/", w: "/workflows", r: "/runs", i: "/inbox" }[e.key];
        if (to) navigate(to);
        return;
      }
      if (e.key === "g") prefix = true;
      else if (e.key === "?") setHelp(true);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [navigate]);
  if (!me) return null;
  return (
    <div className="shell">
      <a href="#main" className="skip">
        Skip to content
      </a>
      <nav className="sidebar" aria-label="Main">
        <div className="brand">Gorax</div>
        <NavLink to="/" end>
          Dashboard
        </NavLink>
        <NavLink to="/workflows">Workflows</NavLink>
        <NavLink to="/templates">Templates</NavLink>
        <NavLink to="/runs">Runs</NavLink>
        <NavLink to="/operations">Operations</NavLink>
        <NavLink to="/inbox">Inbox</NavLink>
        <NavLink to="/credentials">Credentials</NavLink>
        <NavLink to="/webhooks">Webhooks</NavLink>
        {can(me, "run") && <NavLink to="/alerts">Alerts</NavLink>}
        <NavLink to="/dead-letters">Dead letters</NavLink>
        {can(me, "admin") && <NavLink to="/admin">Members &amp; keys</NavLink>}
        <NavLink to="/security">Security</NavLink>
        <div className="spacer" />
        {me.tenants.length > 1 && (
          <label className="small">
            Tenant
            <select value={me.tenant.id} onChange={(e) => switchTenant(e.target.value)}>
              {me.tenants.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.name}
                </option>
              ))}
            </select>
          </label>
        )}
        <div className="whoami small" data-testid="whoami">
          {me.user.name || me.user.email}
          <br />
          <span className="muted">
            {me.tenant.name} · {me.role}
          </span>
        </div>
        <button className="link" onClick={() => setHelp(true)}>
          Shortcuts (?)
        </button>
        <button className="link" onClick={() => logout()}>
          Sign out
        </button>
      </nav>
      <main id="main" tabIndex={-1}>
        <Routes>
          <Route path="/" element={<Dashboard />} />
          <Route path="/workflows" element={<WorkflowList />} />
          <Route path="/workflows/:id" element={<EditorScreen />} />
          <Route path="/templates" element={<Templates />} />
          <Route path="/runs" element={<RunList />} />
          <Route path="/operations" element={<Operations />} />
          <Route path="/runs/:id" element={<RunView />} />
          <Route path="/inbox" element={<Inbox />} />
          <Route path="/credentials" element={<Credentials />} />
          <Route path="/webhooks" element={<Webhooks />} />
          <Route path="/alerts" element={<Alerts />} />
          <Route path="/dead-letters" element={<DeadLetters />} />
          <Route path="/admin" element={<Admin />} />
          <Route path="/security" element={<AccountSecurity />} />
          <Route path="*" element={<Navigate to="/" />} />
        </Routes>
      </main>
      {help && (
        <Modal title="Keyboard shortcuts" onClose={() => setHelp(false)}>
          <table className="table">
            <tbody>
              {SHORTCUTS.map(([k, v]) => (
                <tr key={k}>
                  <td>
                    <kbd>{k}</kbd>
                  </td>
                  <td>{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Modal>
      )}
    </div>
  );
}

export function App() {
  const { me, loading, load, clear } = useSession();
  useEffect(() => {
    load();
    return onUnauthorized(clear);
  }, [load, clear]);
  if (loading) return <Loading />;
  return <BrowserRouter>{me ? <Shell /> : <SignIn />}</BrowserRouter>;
}
