/** The signed-in user's pending invitations, each accepted with one click. */
import { api, type Page } from "../api/client";
import type { OpenInvitation } from "../api/types";
import { useSession } from "../session";
import { ErrorBox, useAction, useAsync, when } from "./common";

export function PendingInvitations() {
  const list = useAsync(() => api<Page<OpenInvitation>>("/auth/invitations"), []);
  const load = useSession((s) => s.load);
  const [act, busy, error] = useAction();
  if (!list.data?.items.length) return null;
  return (
    <div className="card" aria-label="Your invitations">
      <h2>Invitations</h2>
      <ErrorBox error={error} />
      <ul>
        {list.data.items.map((i) => (
          <li key={i.id}>
            {i.tenant.name} invites you as {i.role} (until {when(i.expires_at)}){" "}
            <button disabled={busy} onClick={() => act(() => api(`/auth/invitations/${i.id}/accept`, { method: "POST" }).then(() => { list.reload(); return load(); }))}>
              Accept
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}
