/** The `gorax/graph@1` JSON shape (see shared GRAPH_FORMAT.md). Unknown keys are kept as they are. */

export const GRAPH_FORMAT = "gorax/graph@1";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface Position {
  x: number;
  y: number;
}

export interface RetryPolicy {
  attempts?: number;
  delay_seconds?: number;
  backoff?: "fixed" | "exponential";
  max_delay_seconds?: number;
  jitter?: number;
}

export interface GraphNode {
  id: string;
  type: string;
  version?: number;
  name?: string;
  position?: Position;
  parentId?: string;
  config?: JsonObject;
  retry?: RetryPolicy;
  timeout_seconds?: number;
  on_error?: "fail" | "continue" | "route";
  disabled?: boolean;
  [key: string]: unknown;
}

export interface GraphEdge {
  id?: string;
  source: string;
  target: string;
  sourceHandle?: string;
  [key: string]: unknown;
}

export interface Graph {
  format: string;
  name?: string;
  description?: string;
  settings?: JsonObject;
  nodes: GraphNode[];
  edges: GraphEdge[];
  [key: string]: unknown;
}

/** One entry of `GET /api/v1/node-types`. */
export interface NodeTypeInfo {
  type: string;
  version: number;
  display_name: string;
  category: string;
  description: string;
  outputs: string[];
  /** Handles computed from the config: a path where `*` is each key of a map or item of a list. */
  handles_from?: string | null;
  /** The computed handles when the config lacks the path's first field. */
  handles_default?: string[];
  join?: "all" | "any";
  /** Nodes may sit inside it (a loop body). */
  has_body?: boolean;
  is_trigger?: boolean;
  /** The trigger that fires when a run names none (its config may hold the run's input schema). */
  fires_by_default?: boolean;
  credential_types: string[];
  expression_fields: string[];
  config_schema: JsonSchema;
  /** A name from the editor's icon set (editor/icons.tsx); null: the generic box. */
  icon?: string | null;
  /** A short example config. */
  example?: JsonObject | null;
  /** Why the type should no longer be used (null: it is current). */
  deprecated?: string | null;
  /** JSON Schema of the node's output, when the type declares one. */
  output_schema?: JsonSchema | null;
}

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: Json[];
  const?: Json;
  default?: Json;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  minimum?: number;
  maximum?: number;
  format?: string;
  [key: string]: unknown;
}

/** A validation error as the API reports it (`details.errors[]`). */
export interface GraphError {
  node_id?: string | null;
  edge_id?: string | null;
  field?: string | null;
  path?: string | (string | number)[] | null;
  code?: string;
  message: string;
}

export function emptyGraph(name = "untitled"): Graph {
  return { format: GRAPH_FORMAT, name, nodes: [], edges: [] };
}
