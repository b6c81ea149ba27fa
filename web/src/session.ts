/** Who is signed in, in which tenant, with which role. */
import { create } from "zustand";
import { api, setTenant } from "./api/client";
import type { Me, Role } from "./api/types";

/** What a password sign-in answers instead of a session when a second step is needed. */
export interface MfaChallenge {
  mfa_required: true;
  step: "verify" | "enroll";
  challenge: string;
  expires_in: number;
  required_by: string[];
  /** Set here (not by the API): the sign-in accepted an invitation, so open the tenant joined. */
  joined?: boolean;
}

type SignedIn = { tenants: { id: string }[] } | MfaChallenge;

interface SessionState {
  me: Me | null;
  loading: boolean;
  /** The pending MFA step of a sign-in (see components/MfaSignIn.tsx), or null. */
  mfa: MfaChallenge | null;
  /** Finish a sign-in once its session exists (after the MFA step). */
  signedIn: (tenants: { id: string }[], last?: boolean) => Promise<void>;
  cancelMfa: () => void;
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
  mfa: null,
  async signedIn(tenants, last = false) {
    if (tenants.length) setTenant(tenants[last ? tenants.length - 1 : 0].id);
    set({ mfa: null });
    await get().load();
  },
  cancelMfa() {
    set({ mfa: null });
  },
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
    const res = await api<SignedIn>("/auth/login", { body: { email, password } });
    if ("mfa_required" in res) set({ mfa: res });
    else await get().signedIn(res.tenants);
  },
  async acceptInvitation(token, password, name) {
    // Joins the inviting tenant and signs in, registering the account if the address has none.
    const res = await api<SignedIn>("/auth/invitations/accept", { body: { token, password, name } });
    if ("mfa_required" in res) set({ mfa: { ...res, joined: true } });
    else await get().signedIn(res.tenants, true);
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
