/**
 * A run's log lines, live: `WS /api/v1/executions/{id}/logs/stream` sends the backlog, then each
 * line as the run goes, then `{type: "end"}`. The level and search filters are applied by the API
 * (changing one reconnects and replays); if the socket cannot be used the lines are read once
 * from `GET /executions/{id}/logs`.
 */
import { useEffect, useRef, useState } from "react";
import { api, wsUrl, type Page } from "../api/client";
import "./RunLogs.css";

export interface LogLine {
  id: string;
  ts: string;
  level: "debug" | "info" | "warning" | "error" | "critical";
  node_id: string | null;
  logger: string;
  message: string;
}

const LEVELS = ["debug", "info", "warning", "error"] as const;
/** Lines kept on screen; older ones are dropped from the top. */
const MAX_LINES = 5000;

/** The stream's address with the filters (after the tenant parameter `wsUrl` may add). */
export function streamUrl(id: string, filters: { level: string; q: string; node: string | null }): string {
  const base = wsUrl(`/executions/${encodeURIComponent(id)}/logs/stream`);
  const params = new URLSearchParams();
  if (filters.level) params.set("level", filters.level);
  if (filters.q) params.set("q", filters.q);
  if (filters.node) params.set("node", filters.node);
  const extra = params.toString();
  return extra ? `${base}${base.includes("?") ? "&" : "?"}${extra}` : base;
}

function time(ts: string): string {
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? ts : d.toLocaleTimeString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

export function RunLogs({ executionId, compact }: { executionId: string; compact?: boolean }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [level, setLevel] = useState<string>("");
  const [search, setSearch] = useState("");
  const [q, setQ] = useState("");
  const [node, setNode] = useState<string | null>(null);
  const [state, setState] = useState<"connecting" | "live" | "ended" | "offline">("connecting");
  const [paused, setPaused] = useState(false);
  const box = useRef<HTMLDivElement>(null);

  // The search box is applied after a short pause in typing.
  useEffect(() => {
    const t = setTimeout(() => setQ(search.trim()), 300);
    return () => clearTimeout(t);
  }, [search]);

  useEffect(() => {
    setLines([]);
    setState("connecting");
    let ended = false;
    let stopped = false;
    const add = (more: LogLine[]) => setLines((prev) => [...prev, ...more].slice(-MAX_LINES));
    const readOnce = async () => {
      let cursor: string | null = null;
      const all: LogLine[] = [];
      try {
        do {
          const page: Page<LogLine> = await api<Page<LogLine>>(`/executions/${encodeURIComponent(executionId)}/logs`, {
            query: { level, q, node, limit: 500, cursor },
          });
          all.push(...page.items);
          cursor = page.next_cursor;
        } while (cursor && !stopped);
        if (!stopped) {
          setLines(all.slice(-MAX_LINES));
          setState("offline");
        }
      } catch {
        if (!stopped) setState("offline");
      }
    };
    const ws = new WebSocket(streamUrl(executionId, { level, q, node }));
    ws.onopen = () => setState("live");
    ws.onmessage = (msg) => {
      let m: { type?: string } & Partial<LogLine>;
      try {
        m = JSON.parse(String(msg.data));
      } catch {
        return;
      }
      if (m.type === "line") add([m as LogLine]);
      else if (m.type === "end") {
        ended = true;
        setState("ended");
      }
    };
    ws.onclose = () => {
      if (!ended && !stopped) void readOnce();
    };
    return () => {
      stopped = true;
      if (ws.readyState <= WebSocket.OPEN) ws.close();
    };
  }, [executionId, level, q, node]);

  // Follow the newest line unless paused.
  useEffect(() => {
    if (!paused && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines, paused]);

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
    if (!atBottom && !paused) setPaused(true);
  };

  return (
    <div className={`run-logs${compact ? " compact" : ""}`} data-testid="run-logs" data-state={state}>
      <div className="run-logs-bar" role="toolbar" aria-label="Log filters">
        <label>
          Level{" "}
          <select aria-label="Log level" value={level} onChange={(e) => setLevel(e.target.value)}>
            <option value="">all</option>
            {LEVELS.filter((l) => l !== "debug").map((l) => (
              <option key={l} value={l}>
                {l} and above
              </option>
            ))}
          </select>
        </label>
        <input type="search" aria-label="Search logs" placeholder="Search logs" value={search} onChange={(e) => setSearch(e.target.value)} maxLength={200} />
        {node && (
          <button className="badge node-filter" onClick={() => setNode(null)} title="Show every node">
            node {node} ×
          </button>
        )}
        <span className="spacer" />
        <span className="muted" aria-live="polite">
          {state === "live" ? "live" : state === "ended" ? "run ended" : state === "offline" ? "not live" : "connecting…"} · {lines.length} lines
        </span>
        <button onClick={() => setPaused(!paused)} aria-pressed={paused} title="Follow the newest line">
          {paused ? "Resume scrolling" : "Pause scrolling"}
        </button>
      </div>
      <div className="run-logs-lines" ref={box} onScroll={onScroll} role="log" aria-label="Run logs">
        {lines.map((l) => (
          <div key={l.id} className={`log-line level-${l.level}`} data-level={l.level} data-node={l.node_id ?? ""}>
            <time dateTime={l.ts}>{time(l.ts)}</time>
            <span className="log-level">{l.level.toUpperCase()}</span>
            {l.node_id ? (
              <button className="badge node-badge" onClick={() => setNode(l.node_id)} title={`Only ${l.node_id}'s lines`}>
                {l.node_id}
              </button>
            ) : (
              <span className="badge run-badge">run</span>
            )}
            <span className="log-message">{l.message}</span>
          </div>
        ))}
        {lines.length === 0 && <div className="muted">{state === "connecting" ? "Connecting…" : "No log lines yet."}</div>}
      </div>
    </div>
  );
}
