/** Response shapes of the Gorax API (see the API contract). */
import type { Graph } from "../graph/types";

export type Role = "admin" | "editor" | "operator" | "viewer";

export interface User {
  id: string;
  email: string;
  name?: string | null;
}

export interface TenantRef {
  id: string;
  slug: string;
  name: string;
  role?: Role;
}

export interface Me {
  user: User;
  tenant: TenantRef;
  role: Role;
  tenants: TenantRef[];
}

export interface Workflow {
  id: string;
  name: string;
  description?: string | null;
  tags?: string[];
  status: string;
  graph: Graph;
  version: number | null;
  created_by?: string | null;
  created_at?: string;
  updated_at?: string;
  etag?: string;
  last_run?: { id?: string; execution_id?: string; status?: string; started_at?: string } | null;
}

export interface Execution {
  id: string;
  workflow_id: string;
  workflow_name?: string;
  version?: number | null;
  status: string;
  started_at?: string | null;
  ended_at?: string | null;
  duration_ms?: number | null;
  trigger_type?: string | null;
  error?: unknown;
}

export interface StepAttempt {
  attempt: number;
  status: string;
  error?: string | null;
  started_at?: string | null;
  duration_ms?: number | null;
}

export interface Step {
  node_id: string;
  name?: string;
  type?: string;
  status: string;
  attempts?: number;
  started_at?: string | null;
  ended_at?: string | null;
  duration_ms?: number | null;
  /** Loop indexes, outermost first (empty outside loops). */
  iteration?: number[];
  input?: unknown;
  output?: unknown;
  error?: unknown;
  attempt_history?: StepAttempt[];
}

export interface ExecutionDetail extends Execution {
  input?: unknown;
  output?: unknown;
  steps: Step[];
  prefect_url?: string | null;
  /** OpenTelemetry trace id of the run's spans (null when traces were off). */
  trace_id?: string | null;
}

export interface Analytics {
  buckets: { start: string; total: number; completed: number; failed: number }[];
  success_rate: number | null;
  p50_ms: number | null;
  p95_ms: number | null;
  failures_by_workflow?: Array<Record<string, unknown>>;
  failures_by_node?: Array<Record<string, unknown>>;
  recent_failures: { execution_id: string; workflow_id: string; workflow_name?: string; node_id?: string | null; error?: unknown; at: string }[];
}

export interface HumanTask {
  id: string;
  workflow_id?: string;
  workflow_name?: string;
  execution_id?: string;
  node_id?: string;
  title?: string;
  description?: string;
  status: string;
  options?: { label: string; value: string }[];
  assignees?: string[];
  created_at?: string;
  decided_by?: string | null;
  decision?: string | null;
  [key: string]: unknown;
}

export interface Credential {
  id: string;
  name: string;
  type: string;
  created_at?: string;
  updated_at?: string;
  fields?: string[];
  /** An OAuth 2.0 connection's state (never a token); null for other types. */
  connection?: CredentialConnection | null;
}

export interface CredentialConnection {
  provider?: string;
  grant?: "authorization_code" | "client_credentials";
  status: "not_connected" | "connected" | "needs_reconnection";
  status_reason?: string | null;
  expires_at?: string | null;
  scopes?: string | null;
}

export interface CredentialType {
  type?: string;
  slug?: string;
  name?: string;
  schema?: { properties?: Record<string, { type?: string; title?: string; description?: string; format?: string; writeOnly?: boolean; readOnly?: boolean; secret?: boolean; enum?: string[]; default?: unknown }>; required?: string[]; secret_fields?: string[] };
  fields?: Record<string, unknown>;
  secret_fields?: string[];
  [key: string]: unknown;
}

export interface Webhook {
  id: string;
  url: string;
  scheme?: string | null;
  workflow_id?: string;
  workflow_name?: string;
  node_id?: string;
  secret?: string;
  [key: string]: unknown;
}

export interface WebhookEvent {
  id: string;
  received_at?: string;
  status?: string;
  execution_id?: string | null;
  error?: unknown;
  [key: string]: unknown;
}

export interface Member {
  user_id?: string;
  id?: string;
  email: string;
  name?: string | null;
  role: Role;
}

/** An invitation as a tenant's admins see it (`token` only in the answer that creates it). */
export interface Invitation {
  id: string;
  email: string;
  role: Role;
  invited_by?: string | null;
  created_at: string;
  expires_at: string;
  token?: string;
}

/** A pending invitation of the signed-in user. */
export interface OpenInvitation {
  id: string;
  tenant: { id: string; slug: string; name: string };
  role: Role;
  created_at: string;
  expires_at: string;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  created_at?: string;
  expires_at?: string | null;
  last_used_at?: string | null;
  key?: string;
}
