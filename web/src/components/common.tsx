/** Small shared pieces: error display, async loading, modal dialogs, status badges, times. */
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { ApiError } from "../api/client";

export function ErrorBox({ error, onClose }: { error: unknown; onClose?: () => void }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : null;
  const message = e ? e.message : error instanceof Error ? error.message : String(error);
  return (
    <div className="error-box" role="alert">
      <div>
        <strong>{e ? e.code : "Error"}</strong>: {message}
      </div>
      {e && e.errors.length > 0 && (
        <ul>
          {e.errors.map((x, i) => (
            <li key={i}>
              {[x.node_id && `node ${x.node_id}`, x.edge_id && `edge ${x.edge_id}`, x.field && `field ${x.field}`, x.path && `at ${Array.isArray(x.path) ? x.path.join(".") : x.path}`]
                .filter(Boolean)
                .join(", ")}
              {": "}
              {String(x.message)}
            </li>
          ))}
        </ul>
      )}
      {e && !e.errors.length && e.body.details && Object.keys(e.body.details).length > 0 && <pre className="details">{JSON.stringify(e.body.details, null, 2)}</pre>}
      {e?.body.request_id && <div className="muted small">request {e.body.request_id}</div>}
      {onClose && (
        <button className="link" onClick={onClose} aria-label="Dismiss error">
          Dismiss
        </button>
      )}
    </div>
  );
}

/** Load data with a function; re-runs when `deps` change. */
export function useAsync<T>(fn: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void; setData: (d: T) => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    fn().then(
      (d) => {
        if (live) {
          setData(d);
          setError(null);
          setLoading(false);
        }
      },
      (e) => {
        if (live) {
          setError(e);
          setLoading(false);
        }
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload, setData };
}

/** Run an action, keeping its error and busy flag. */
export function useAction(): [(fn: () => Promise<unknown>) => Promise<void>, boolean, unknown, (e: unknown) => void] {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }, []);
  return [run, busy, error, setError];
}

export function Modal({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>("input, textarea, select, button:not(.modal-close)");
    first?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") onClose();
    };
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("keydown", onKey);
      prev?.focus();
    };
  }, [onClose]);
  return (
    <div className="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className={"modal" + (wide ? " wide" : "")} role="dialog" aria-modal="true" aria-label={title} ref={ref}>
        <header>
          <h2>{title}</h2>
          <button className="modal-close icon" onClick={onClose} aria-label="Close">
            ×
          </button>
        </header>
        {children}
      </div>
    </div>
  );
}

export function Status({ value }: { value: string | null | undefined }) {
  const v = (value ?? "unknown").toLowerCase();
  return <span className={`status status-${v}`}>{v}</span>;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function duration(ms: number | null | undefined): string {
  if (ms == null) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} m ${Math.round((ms % 60_000) / 1000)} s`;
}

export function Json({ value }: { value: unknown }) {
  if (value === undefined) return <span className="muted">—</span>;
  return <pre className="json">{JSON.stringify(value, null, 2)}</pre>;
}

export function Loading() {
  return (
    <div className="muted" role="status">
      Loading…
    </div>
  );
}
