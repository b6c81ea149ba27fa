import { afterEach, describe, expect, it } from "vitest";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import * as syncProtocol from "y-protocols/sync";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { Delivery, describeConnection, shouldReconnect, type ConnectionFacts } from "./connection";

/**
 * A collaboration server that behaves as pycrdt-websocket does (the API's server): it sends its
 * sync step 1 on connecting, handles each connection's messages in order, answers a step 1 with a
 * step 2, and sends every change of its document to every connection. Sockets reach it through
 * a network the test can break: a silent socket stays open while what is sent on it is lost.
 */
class Server {
  readonly doc = new Y.Doc();
  readonly sockets: FakeSocket[] = [];
  /** New connections fail while the network is down; open ones go silent. */
  down = false;
  /** While a message is being handled in the browser: the server's map when it sent it. */
  stateWhenSent: string | null = null;

  state(): string {
    return JSON.stringify(this.doc.getMap("m").toJSON());
  }

  constructor() {
    this.doc.on("update", (update: Uint8Array) => {
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, 0);
      syncProtocol.writeUpdate(encoder, update);
      const message = encoding.toUint8Array(encoder);
      for (const socket of this.sockets) socket.deliver(message);
    });
  }

  /** The WebSocket class a provider uses to reach this server. */
  socketClass(): typeof WebSocket {
    const server = this;
    return class extends FakeSocket {
      constructor(url: string) {
        super(server, url);
      }
    } as unknown as typeof WebSocket;
  }

  /** The server's state vector, sent first on every connection (as pycrdt's room does). */
  greet(socket: FakeSocket): void {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 0);
    syncProtocol.writeSyncStep1(encoder, this.doc);
    socket.deliver(encoding.toUint8Array(encoder));
  }

  handle(socket: FakeSocket, data: Uint8Array): void {
    const decoder = decoding.createDecoder(data);
    if (decoding.readVarUint(decoder) !== 0) return; // awareness: not needed here
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 0);
    syncProtocol.readSyncMessage(decoder, encoder, this.doc, socket);
    if (encoding.length(encoder) > 1) socket.deliver(encoding.toUint8Array(encoder));
  }

  /** Cut every open connection (as a router resets them after an outage). */
  resetAll(): void {
    for (const socket of [...this.sockets]) socket.drop();
  }
}

class FakeSocket {
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;
  binaryType = "arraybuffer";
  readyState = 0;
  /** Open, but nothing sent either way arrives (its network died unnoticed). */
  silent = false;
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: ArrayBuffer }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(
    private readonly server: Server,
    readonly url: string,
  ) {
    setTimeout(() => {
      if (server.down) return this.drop();
      this.readyState = this.OPEN;
      server.sockets.push(this);
      this.onopen?.();
      server.greet(this);
    }, 1);
  }

  /** A message from the server to the browser, after a network hop. */
  deliver(data: Uint8Array): void {
    if (this.silent || this.server.down) return;
    const copy = data.slice().buffer;
    const state = this.server.state();
    setTimeout(() => {
      if (this.readyState !== this.OPEN || this.silent) return;
      this.server.stateWhenSent = state;
      try {
        this.onmessage?.({ data: copy });
      } finally {
        this.server.stateWhenSent = null;
      }
    }, 1);
  }

  send(data: Uint8Array): void {
    if (this.readyState !== this.OPEN) throw new Error("send on a socket that is not open");
    if (this.silent || this.server.down) return; // written to the socket, lost on the way
    const copy = data.slice();
    setTimeout(() => this.readyState === this.OPEN && this.server.handle(this, copy), 1);
  }

  close(): void {
    this.leave();
  }

  /** The connection ends from the server's side (1006: it was cut). */
  drop(code = 1006, reason = ""): void {
    const wasOpen = this.readyState !== this.CLOSED;
    this.leave();
    if (wasOpen) setTimeout(() => this.onclose?.({ code, reason }), 1);
  }

  private leave(): void {
    this.readyState = this.CLOSED;
    const at = this.server.sockets.indexOf(this);
    if (at >= 0) this.server.sockets.splice(at, 1);
  }
}

const open: { provider: WebsocketProvider; delivery: Delivery; doc: Y.Doc }[] = [];

afterEach(() => {
  for (const o of open.splice(0)) {
    o.delivery.destroy();
    o.provider.destroy();
  }
});

function client(server: Server, options: { probeTimeoutMs?: number; slowAfterMs?: number } = {}) {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider("ws://collab.test", "room", doc, {
    WebSocketPolyfill: server.socketClass(),
    disableBc: true,
    maxBackoffTime: 50,
    shouldReconnect,
  });
  const delivery = new Delivery(provider, doc, options);
  const c = { provider, delivery, doc };
  open.push(c);
  return c;
}

async function until(what: string, done: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Record every time the count of pending edits drops to 0 on a message the server sent before it
 * had them all (the message proves nothing then, even if the server has them by now).
 */
function neverConfirmEarly(c: ReturnType<typeof client>, server: Server): string[] {
  const violations: string[] = [];
  c.delivery.onChange(() => {
    const mine = JSON.stringify(c.doc.getMap("m").toJSON());
    const theirs = server.stateWhenSent ?? server.state();
    if (c.delivery.pending === 0 && mine !== theirs) violations.push(`pending 0 on a message sent when the server had ${theirs}, this tab ${mine}`);
  });
  return violations;
}

describe("Delivery", () => {
  it("counts a local edit pending until the server has applied it", async () => {
    const server = new Server();
    const c = client(server);
    const violations = neverConfirmEarly(c, server);
    await until("synced", () => c.provider.synced);
    c.doc.getMap("m").set("a", 1);
    expect(c.delivery.pending).toBe(1);
    await until("confirmed", () => c.delivery.pending === 0);
    expect(server.doc.getMap("m").get("a")).toBe(1);
    expect(violations).toEqual([]);
  });

  it("does not count what other people change", async () => {
    const server = new Server();
    const a = client(server);
    const b = client(server);
    await until("both synced", () => a.provider.synced && b.provider.synced);
    b.doc.getMap("m").set("from-b", true);
    await until("a has b's edit", () => a.doc.getMap("m").get("from-b") === true);
    expect(a.delivery.pending).toBe(0);
  });

  it("keeps edits written to a socket that dies pending until a new connection delivers them", async () => {
    const server = new Server();
    const c = client(server);
    const violations = neverConfirmEarly(c, server);
    await until("synced", () => c.provider.synced);
    c.doc.getMap("m").set("gone", 1);
    await until("confirmed", () => c.delivery.pending === 0);

    // The network dies; the socket stays open, so the provider writes the edits to it.
    server.down = true;
    c.doc.getMap("m").set("a", 1);
    c.doc.getMap("m").delete("gone"); // only a deletion: no new item, the state vector stays
    expect(c.provider.wsconnected).toBe(true);
    expect(c.delivery.pending).toBe(2);
    await sleep(30);
    expect(c.delivery.pending).toBe(2);
    expect(server.doc.getMap("m").toJSON()).toEqual({ gone: 1 });

    // The connection is reset and the network comes back: the provider reconnects and syncs.
    server.resetAll();
    server.down = false;
    await until("confirmed after reconnecting", () => c.delivery.pending === 0);
    expect(server.doc.getMap("m").toJSON()).toEqual({ a: 1 });
    expect(violations).toEqual([]);
  });

  it("replaces a socket whose probe goes unanswered", async () => {
    const server = new Server();
    const c = client(server, { probeTimeoutMs: 40 });
    const violations = neverConfirmEarly(c, server);
    await until("synced", () => c.provider.synced);
    const first = server.sockets[0];
    first.silent = true; // this connection died unnoticed; a new one would work
    c.doc.getMap("m").set("a", 1);
    await until("confirmed on a new socket", () => c.delivery.pending === 0);
    expect(server.sockets).not.toContain(first);
    expect(server.doc.getMap("m").get("a")).toBe(1);
    expect(violations).toEqual([]);
  });

  it("says an edit is slow only when its confirmation takes long", async () => {
    const server = new Server();
    const c = client(server, { slowAfterMs: 20 });
    await until("synced", () => c.provider.synced);
    c.doc.getMap("m").set("quick", 1);
    await until("confirmed", () => c.delivery.pending === 0);
    await sleep(40);
    expect(c.delivery.slow).toBe(false);
    server.sockets[0].silent = true;
    c.doc.getMap("m").set("stuck", 1);
    expect(c.delivery.slow).toBe(false);
    await until("slow", () => c.delivery.slow);
  });

  it("reconnect() leaves a provider the server refused for good alone", async () => {
    const server = new Server();
    const c = client(server);
    await until("synced", () => c.provider.synced);
    c.provider.disconnect();
    c.delivery.reconnect();
    await sleep(20);
    expect(c.provider.ws).toBeNull();
    expect(c.provider.shouldConnect).toBe(false);
  });
});

describe("shouldReconnect", () => {
  it("retries after a rate limit and stops after a refusal for good", async () => {
    const server = new Server();
    const c = client(server);
    await until("synced", () => c.provider.synced);
    server.sockets[0].drop(4429, "more than 60 updates a second");
    await until("reconnected after the rate limit", () => server.sockets.length === 1 && c.provider.synced);
    server.sockets[0].drop(4403, "workflow:read is required");
    await until("given up", () => !c.provider.shouldConnect);
    await sleep(150);
    expect(server.sockets).toEqual([]);
  });
});

describe("describeConnection", () => {
  const base: ConnectionFacts = { online: true, connected: true, everSynced: true, refused: null, pending: 0, slow: false };

  it.each([
    [{}, "connected", "connected"],
    [{ pending: 2 }, "connected", "connected"],
    [{ pending: 2, slow: true }, "connected", "connected · 2 pending"],
    [{ online: false, connected: true, pending: 1 }, "offline", "offline · 1 pending"],
    [{ online: false, pending: 0 }, "offline", "offline"],
    [{ connected: false, pending: 3 }, "reconnecting", "reconnecting · 3 pending"],
    [{ connected: false, everSynced: false }, "connecting", "connecting"],
    [{ connected: false, refused: "the document is too large", pending: 1 }, "disconnected", "disconnected · 1 pending"],
  ] as [Partial<ConnectionFacts>, string, string][])("%o is %s", (facts, status, label) => {
    const view = describeConnection({ ...base, ...facts });
    expect(view.status).toBe(status);
    expect(view.label).toBe(label);
  });

  it("explains pending edits and a refusal in the title", () => {
    expect(describeConnection({ ...base, pending: 1 }).title).toMatch(/1 local change not yet confirmed.*closing the tab now loses it/);
    expect(describeConnection({ ...base, connected: false, refused: "too large" }).title).toMatch(/^The server closed the connection: too large\./);
  });
});
