import { useState } from "react";
import { api } from "../api/client";
import { ErrorBox, Loading, useAsync } from "./common";

export interface TelemetryStatusBody {
  tracing: boolean;
  service_name?: string | null;
  sentry: boolean;
}

/** A run's trace id, with a button that copies it (to look the trace up in the tracing backend). */
export function TraceId({ traceId }: { traceId: string }) {
  const [copied, setCopied] = useState(false);
  const copy = () => {
    void navigator.clipboard?.writeText(traceId).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  };
  return (
    <span className="trace-id">
      <code data-testid="trace-id">{traceId}</code>{" "}
      <button type="button" onClick={copy} aria-label="Copy trace id">
        {copied ? "Copied" : "Copy"}
      </button>
    </span>
  );
}

/** Whether this installation exports traces and reports errors (the operator's OTEL_* and SENTRY_DSN). */
export function TelemetryStatus() {
  const { data, error, loading } = useAsync(() => api<TelemetryStatusBody>("/ops/telemetry"), []);
  return (
    <div className="card" aria-labelledby="telemetry-h">
      <h2 id="telemetry-h">Traces and error tracking</h2>
      {loading && !data && <Loading />}
      <ErrorBox error={error} />
      {data && (
        <dl className="kv inline">
          <dt>Traces (OpenTelemetry)</dt>
          <dd data-testid="telemetry-tracing">
            {data.tracing ? `exported as ${data.service_name ?? "gorax-api"}` : "off (set OTEL_EXPORTER_OTLP_ENDPOINT)"}
          </dd>
          <dt>Error tracking (Sentry)</dt>
          <dd data-testid="telemetry-sentry">{data.sentry ? "on" : "off (set SENTRY_DSN)"}</dd>
        </dl>
      )}
    </div>
  );
}
