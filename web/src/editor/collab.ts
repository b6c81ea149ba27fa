/**
 * One open draft: the Yjs document synced with the API's collaboration server, presence through
 * awareness, and an undo manager that only undoes this user's own edits.
 */
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import { API, currentTenant } from "../api/client";
import { applyGraph, draftMaps, isInitialized } from "../graph/ydoc";
import type { Graph } from "../graph/types";
import { Delivery, describeConnection, REFUSED_FOR_GOOD, shouldReconnect, type ConnectionView } from "./connection";

/** The transaction origin of this browser's own edits (what the undo manager tracks). */
export const LOCAL = { origin: "local-user" };

const COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990", "#800000"];

export interface Presence {
  clientId: number;
  name: string;
  color: string;
  cursor?: { x: number; y: number } | null;
  selected?: string[];
}

export class DraftSession {
  readonly doc = new Y.Doc();
  readonly provider: WebsocketProvider;
  readonly undo: Y.UndoManager;
  readonly color: string;
  /** Which local edits the server is known to hold. */
  readonly delivery: Delivery;
  synced = false;
  /** The document has been received from the server at least once. */
  everSynced = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly workflowId: string,
    readonly user: { id: string; name: string },
    options: { token?: string } = {},
  ) {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const base = `${proto}//${location.host}${API}/workflows/${encodeURIComponent(workflowId)}`;
    this.provider = new WebsocketProvider(base, "collab", this.doc, {
      params: { ...(options.token ? { token: options.token } : {}), ...(currentTenant() ? { tenant: currentTenant()! } : {}) },
      disableBc: true,
      maxBackoffTime: 4000,
      shouldReconnect,
    });
    const { meta, nodes, edges } = draftMaps(this.doc);
    this.undo = new Y.UndoManager([meta, nodes, edges], { trackedOrigins: new Set([LOCAL]), captureTimeout: 400 });
    this.color = COLORS[Math.abs(hash(user.id)) % COLORS.length];
    this.provider.awareness.setLocalStateField("user", { id: user.id, name: user.name, color: this.color });
    this.delivery = new Delivery(this.provider, this.doc);
    this.provider.on("sync", (synced: boolean) => {
      this.synced = synced;
      this.everSynced ||= synced;
      this.changed();
    });
    this.provider.on("status", this.changed);
    this.provider.on("connection-close", (event: CloseEvent | null) => {
      // Refusals that retrying cannot fix stopped the reconnect loop (see shouldReconnect).
      if (event && REFUSED_FOR_GOOD.has(event.code)) this.closedReason = event.reason || `closed (${event.code})`;
      this.changed();
    });
    this.delivery.onChange(this.changed);
    window.addEventListener("online", this.backOnline);
    window.addEventListener("offline", this.changed);
    window.addEventListener("beforeunload", this.warnIfUnsent);
  }

  /** The connection as the badge shows it. */
  connection(): ConnectionView {
    return describeConnection({
      online: navigator.onLine,
      connected: this.provider.wsconnected && this.synced,
      everSynced: this.everSynced,
      refused: this.closedReason,
      pending: this.delivery.pending,
      slow: this.delivery.slow,
    });
  }

  /** Call `listener` whenever `connection()` may have changed; returns the unsubscribe. */
  onConnectionChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private changed = (): void => {
    for (const listener of this.listeners) listener();
  };

  private backOnline = (): void => {
    // A socket that lived through the outage may be dead without knowing it (writes vanish until
    // a timeout): start afresh, so the server's state vector is exchanged and missed edits sent.
    this.delivery.reconnect();
    this.changed();
  };

  private warnIfUnsent = (event: BeforeUnloadEvent): void => {
    if (this.delivery.pending === 0) return;
    event.preventDefault();
    event.returnValue = true; // browsers that predate preventDefault() here
  };

  /** Why the server refused this connection for good (auth, not found, too large), if it did. */
  closedReason: string | null = null;

  /** Fill an empty document from the stored graph (idempotent: two clients seeding converge). */
  seedIfEmpty(graph: Graph | null | undefined): void {
    if (!graph || isInitialized(this.doc)) return;
    applyGraph(this.doc, graph, { origin: "seed" });
  }

  setCursor(cursor: { x: number; y: number } | null): void {
    this.provider.awareness.setLocalStateField("cursor", cursor);
  }

  setSelected(ids: string[]): void {
    this.provider.awareness.setLocalStateField("selected", ids);
  }

  /** Everyone else in the document. */
  others(): Presence[] {
    const out: Presence[] = [];
    this.provider.awareness.getStates().forEach((state, clientId) => {
      if (clientId === this.doc.clientID || !state.user) return;
      out.push({ clientId, name: state.user.name, color: state.user.color, cursor: state.cursor, selected: state.selected });
    });
    return out;
  }

  destroy(): void {
    window.removeEventListener("online", this.backOnline);
    window.removeEventListener("offline", this.changed);
    window.removeEventListener("beforeunload", this.warnIfUnsent);
    this.listeners.clear();
    this.delivery.destroy();
    this.undo.destroy();
    this.provider.destroy();
    this.doc.destroy();
  }
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}
