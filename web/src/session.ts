/** Who is signed in, in which tenant, with which role. */
import { create } from "zustand";
import { api, setTenant } from "./api/client";
import type { Me, Role } from "./api/types";

interface SessionState {
  me: Me | null;
  loading: boolean;
  load: () => Promise<void>;
  login: (email: string, password: string) => Promise<void>;
  acceptInvitation: (token: string, password: string, name: string) => Promise<void>;
  logout: () => Promise<void>;
  switchTenant: (id: string) => Promise<void>;
  clear: () => void;
}

export const useSession = create<SessionState>((set, get) => ({
  me: null,
  loading: true,
  async load() {
    // After an SSO sign-in the API lands here with the tenant in the fragment (never sent anywhere).
    const sso = /^#sso_tenant=([\w-]+)$/.exec(window.location.hash);
    if (sso) {
      setTenant(sso[1]);
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    try {
      const me = await api<Me>("/auth/me");
      set({ me, loading: false });
    } catch {
      set({ me: null, loading: false });
    }
  },
  async login(email, password) {
    const res = await api<{ tenants: { id: string }[] }>("/auth/login", { body: { email, password } });
    if (res.tenants?.length) setTenant(res.tenants[0].id);
    await get().load();
  },
  async acceptInvitation(token, password, name) {
    // Joins the inviting tenant and signs in, registering the account if the address has none.
    const res = await api<{ tenants: { id: string }[] }>("/auth/invitations/accept", { body: { token, password, name } });
    if (res.tenants?.length) setTenant(res.tenants[res.tenants.length - 1].id);
    await get().load();
  },
  async logout() {
    try {
      await api("/auth/logout", { method: "POST" });
    } finally {
      setTenant(null);
      set({ me: null });
    }
  },
  async switchTenant(id) {
    setTenant(id);
    await get().load();
  },
  clear() {
    set({ me: null });
  },
}));

const RANK: Record<Role, number> = { viewer: 0, operator: 1, editor: 2, admin: 3 };

/** Whether the signed-in role is at least `role`. Operators run but do not edit. */
export function can(me: Me | null, action: "edit" | "run" | "admin"): boolean {
  if (!me) return false;
  if (action === "admin") return me.role === "admin";
  if (action === "edit") return RANK[me.role] >= RANK.editor;
  return RANK[me.role] >= RANK.operator;
}
