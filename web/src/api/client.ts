/** The Gorax API client: cookie session, CSRF header on mutations, the API's error body as an error. */

export const API = "/api/v1";

export interface ApiErrorBody {
  code: string;
  message: string;
  details?: Record<string, unknown> | null;
  request_id?: string | null;
}

/** An error answer of the API, carrying its code, message, details and request id. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(body.message);
  }
  get code(): string {
    return this.body.code;
  }
  /** `details.errors` of a VALIDATION_ERROR, when present. */
  get errors(): Array<Record<string, unknown>> {
    const errs = this.body.details?.errors;
    return Array.isArray(errs) ? (errs as Array<Record<string, unknown>>) : [];
  }
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
  total: number | null;
}

export function readCookie(name: string): string | null {
  const m = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return m ? decodeURIComponent(m.slice(name.length + 1)) : null;
}

let tenantId: string | null = localStorage.getItem("gorax.tenant");

export function setTenant(id: string | null): void {
  tenantId = id;
  if (id) localStorage.setItem("gorax.tenant", id);
  else localStorage.removeItem("gorax.tenant");
}

export function currentTenant(): string | null {
  return tenantId;
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();
/** Called when the session is gone (a 401), so the app can show sign-in. */
export function onUnauthorized(fn: Listener): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean | undefined | null>;
  /** Return the Response instead of parsing JSON (for ETag and downloads). */
  raw?: boolean;
}

function qs(query: RequestOptions["query"]): string {
  if (!query) return "";
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  const s = p.toString();
  return s ? "?" + s : "";
}

/** Call the API; throws ApiError with the API's error body on any non-2xx answer. */
export async function api<T = unknown>(path: string, options: RequestOptions = {}): Promise<T> {
  const method = (options.method ?? (options.body !== undefined ? "POST" : "GET")).toUpperCase();
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") {
    const csrf = readCookie("gorax_csrf");
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  if (tenantId) headers["X-Tenant-ID"] = tenantId;
  let res: Response;
  try {
    res = await fetch(API + path + qs(options.query), {
      method,
      headers,
      credentials: "same-origin",
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
    });
  } catch (err) {
    throw new ApiError(0, { code: "NETWORK_ERROR", message: `Cannot reach the Gorax API: ${(err as Error).message}` });
  }
  if (!res.ok) {
    let body: ApiErrorBody;
    try {
      const json = await res.json();
      body = json?.error ?? { code: `HTTP_${res.status}`, message: JSON.stringify(json) };
    } catch {
      body = { code: `HTTP_${res.status}`, message: res.statusText || `HTTP ${res.status}` };
    }
    body.request_id ??= res.headers.get("X-Request-ID");
    // A refused sign-in step (password, MFA code) is not a lost session.
    if (res.status === 401 && !path.startsWith("/auth/login") && !path.startsWith("/auth/mfa/")) unauthorizedListeners.forEach((fn) => fn());
    throw new ApiError(res.status, body);
  }
  if (options.raw) return res as unknown as T;
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** A WebSocket URL on the API's host for `path` (under /api/v1). */
export function wsUrl(path: string): string {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  // Browsers cannot set headers on a WebSocket: the tenant travels as a query parameter.
  const tenant = tenantId ? `?tenant=${encodeURIComponent(tenantId)}` : "";
  return `${proto}//${location.host}${API}${path}${tenant}`;
}
