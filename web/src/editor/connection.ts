/**
 * The editor's connection to the collaboration server as the user needs to know it: which of
 * their edits the server holds, when to replace a socket, and what the toolbar badge says.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import * as syncProtocol from "y-protocols/sync";
import { messageSync, type WebsocketProvider } from "y-websocket";
import type * as Y from "yjs";

/**
 * Close codes of the API's collaboration server that retrying cannot fix (not signed in, not
 * allowed, no such workflow, document too large). Its other codes, a rate limit (4429) among
 * them, are worth retrying, though y-websocket by default gives up on every 44xx code.
 */
export const REFUSED_FOR_GOOD = new Set([4401, 4403, 4404, 4413]);

/** The provider's `shouldReconnect`: retry unless the server refused for good. */
export function shouldReconnect(event: CloseEvent): boolean {
  return !REFUSED_FOR_GOOD.has(event.code);
}

/** How long a probe may go unanswered before the socket is taken for dead and replaced. */
export const PROBE_TIMEOUT_MS = 10_000;
/** How long an edit may wait for its confirmation on a live socket before the badge shows it. */
export const SLOW_AFTER_MS = 1_000;

export interface DeliveryOptions {
  probeTimeoutMs?: number;
  slowAfterMs?: number;
}

/**
 * Counts this tab's document updates and confirms them only when the server has applied them.
 *
 * y-websocket writes each update to the socket and forgets it: an update written to a socket
 * whose network is gone is never delivered, and the protocol has no acknowledgement. What it does
 * give: the server answers every sync step 1 with a step 2 and handles one connection's messages
 * in order (pycrdt-websocket, like y-websocket's server, applies an update before reading the
 * next message). So once k of our step 1s on a socket are answered, the first k were handled, and
 * with them every update sent before them. After local edits we send such a probe, one at a time.
 *
 * On a new socket the updates the server missed travel in the step 2 that answers the server's
 * step 1 (its state vector), so probes start only after that; the step 1 the provider sends on
 * opening is answered too, and confirms nothing.
 */
export class Delivery {
  /** Local updates made in this tab so far. */
  private made = 0;
  /** How many of them the server is known to have applied. */
  private confirmed = 0;
  /** Per sync step 1 sent on the current socket and not answered yet, in order: how many local
   * updates its answer confirms (null: none, the provider's own step 1 on opening). */
  private awaiting: (number | null)[] = [];
  /** The socket the counts above belong to. */
  private socket: WebSocket | null = null;
  /** Our sync step 2 has been sent on `socket`: a probe sent now covers every local update. */
  private handshaken = false;
  private probeScheduled = false;
  private probeTimer: ReturnType<typeof setTimeout> | undefined;
  private slowTimer: ReturnType<typeof setTimeout> | undefined;
  private listeners = new Set<() => void>();
  private readonly probeTimeoutMs: number;
  private readonly slowAfterMs: number;
  private readonly detach: () => void;
  /** Edits have waited longer than `slowAfterMs` for their confirmation. */
  slow = false;

  constructor(
    private readonly provider: WebsocketProvider,
    private readonly doc: Y.Doc,
    options: DeliveryOptions = {},
  ) {
    this.probeTimeoutMs = options.probeTimeoutMs ?? PROBE_TIMEOUT_MS;
    this.slowAfterMs = options.slowAfterMs ?? SLOW_AFTER_MS;
    const handlers = provider.messageHandlers;
    const readSync = handlers[messageSync];
    handlers[messageSync] = (encoder, decoder, p, emitSynced, messageType) => {
      const syncType = decoding.peekVarUint(decoder);
      readSync(encoder, decoder, p, emitSynced, messageType);
      if (syncType === syncProtocol.messageYjsSyncStep1) this.serverStateReceived();
      else if (syncType === syncProtocol.messageYjsSyncStep2) this.answered();
    };
    const onStatus = ({ status }: { status: string }) => status === "connected" && this.opened();
    const onClose = () => this.closed();
    const onUpdate = (_update: Uint8Array, origin: unknown) => origin !== provider && this.localUpdate();
    provider.on("status", onStatus);
    provider.on("connection-close", onClose);
    doc.on("update", onUpdate);
    this.detach = () => {
      handlers[messageSync] = readSync;
      provider.off("status", onStatus);
      provider.off("connection-close", onClose);
      doc.off("update", onUpdate);
    };
  }

  /** Local updates the server has not confirmed yet (kept in this tab until it has). */
  get pending(): number {
    return this.made - this.confirmed;
  }

  /** Call `listener` whenever `pending` or `slow` may have changed; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Drop the current socket and connect again now (its network may be gone unnoticed). */
  reconnect(): void {
    // A server that refused us for good stopped the provider; only the user may restart it.
    if (!this.provider.shouldConnect) return;
    this.provider.disconnect();
    this.provider.connect();
  }

  destroy(): void {
    this.detach();
    clearTimeout(this.probeTimer);
    clearTimeout(this.slowTimer);
    this.listeners.clear();
  }

  private opened(): void {
    // Emitted as the socket opens, just before the provider sends its own step 1.
    this.socket = this.provider.ws;
    this.awaiting = [null];
    this.handshaken = false;
  }

  private closed(): void {
    // Whatever was written to this socket and not confirmed is not known to have arrived.
    this.socket = null;
    this.awaiting = [];
    this.handshaken = false;
    clearTimeout(this.probeTimer);
  }

  private serverStateReceived(): void {
    // The provider sends our step 2 once this handler returns; probe right after it.
    const socket = this.provider.ws;
    queueMicrotask(() => {
      if (socket === null || socket !== this.socket) return;
      this.handshaken = true;
      this.probeIfNeeded();
    });
  }

  private answered(): void {
    const covered = this.awaiting.shift();
    if (covered === undefined) return; // not an answer of ours (the server sent it unasked)
    if (covered !== null) {
      clearTimeout(this.probeTimer);
      if (covered > this.confirmed) this.confirmed = covered;
      if (this.pending === 0) this.setSlow(false);
      this.emit();
    }
    this.probeIfNeeded();
  }

  private localUpdate(): void {
    this.made++;
    if (this.pending === 1) {
      clearTimeout(this.slowTimer);
      this.slowTimer = setTimeout(() => this.pending > 0 && this.setSlow(true), this.slowAfterMs);
    }
    this.emit();
    // After the provider's own update listener has written the update (and any more made in
    // this task), so one probe covers them all.
    if (!this.probeScheduled) {
      this.probeScheduled = true;
      queueMicrotask(() => {
        this.probeScheduled = false;
        this.probeIfNeeded();
      });
    }
  }

  private probeIfNeeded(): void {
    const ws = this.provider.ws;
    if (this.pending === 0 || !this.handshaken || ws === null || ws !== this.socket || ws.readyState !== ws.OPEN) return;
    if (this.awaiting.some((covered) => covered !== null)) return; // one probe at a time
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, messageSync);
    syncProtocol.writeSyncStep1(encoder, this.doc);
    ws.send(encoding.toUint8Array(encoder));
    this.awaiting.push(this.made);
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => ws === this.provider.ws && this.reconnect(), this.probeTimeoutMs);
  }

  private setSlow(slow: boolean): void {
    if (!slow) clearTimeout(this.slowTimer);
    if (this.slow === slow) return;
    this.slow = slow;
    this.emit();
  }

  private emit(): void {
    for (const listener of this.listeners) listener();
  }
}

export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "offline" | "disconnected";

/** What the badge is made from. */
export interface ConnectionFacts {
  /** The browser says it has a network (`navigator.onLine`). */
  online: boolean;
  /** The socket is open and the server's document has been received on it. */
  connected: boolean;
  /** It has been connected before (so a retry is a reconnection). */
  everSynced: boolean;
  /** Why the server refused the connection for good, if it did (the provider stopped). */
  refused: string | null;
  pending: number;
  slow: boolean;
}

export interface ConnectionView {
  status: ConnectionStatus;
  pending: number;
  label: string;
  title: string;
}

/** The badge: the connection's state, and the edits the server has not confirmed when they matter. */
export function describeConnection(facts: ConnectionFacts): ConnectionView {
  const status: ConnectionStatus = facts.refused
    ? "disconnected"
    : !facts.online
      ? "offline"
      : !facts.connected
        ? facts.everSynced
          ? "reconnecting"
          : "connecting"
        : "connected";
  // On a live connection an edit is confirmed within a round trip; say so only when it is not.
  const showPending = facts.pending > 0 && (status !== "connected" || facts.slow);
  const label = showPending ? `${status} · ${facts.pending} pending` : status;
  const why = facts.refused ? `The server closed the connection: ${facts.refused}. ` : "";
  const title =
    facts.pending > 0
      ? `${why}${facts.pending} local change${facts.pending === 1 ? "" : "s"} not yet confirmed by the server: kept in this tab and sent when the connection is back; closing the tab now loses ${facts.pending === 1 ? "it" : "them"}.`
      : `${why}Every change is on the server.`;
  return { status, pending: facts.pending, label, title };
}
