"""Traces (OpenTelemetry) and error tracking (Sentry) of every Gorax process.

**Traces** are off unless the standard OpenTelemetry variables ask for them
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_TRACES_EXPORTER``);
then :func:`configure_tracing` installs the SDK's tracer provider with the OTLP/HTTP exporter, which
reads the rest of the ``OTEL_*`` variables itself (headers, timeout, service name, resource
attributes, sampler, batch delays). Prefect's own run telemetry then makes a span of every flow run
and task run (a node is one task run) under the trace context in the run's ``__OTEL_TRACEPARENT``
label: the API sets that label when it starts a run inside a request, and the worker sets it from
a webhook delivery's ``trigger.traceparent`` (deliveries become runs through Prefect events).
Gorax adds its own attributes (``gorax.*``: tenant, workflow, version, run, node; ids only,
never a config value) and a client span for each outbound call, whose ``traceparent`` goes out
with HTTP requests.

**Errors** go to Sentry when ``SENTRY_DSN`` is set (:func:`configure_sentry`): unhandled API
errors and failed nodes, with registered secrets masked and secret headers and fields dropped
before an event leaves the process.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from blocks.redact import mask

log = logging.getLogger("gorax.tracing")

#: The run label Prefect's run telemetry takes a flow run's parent trace context from
#: (``prefect.telemetry.run_telemetry.LABELS_TRACEPARENT_KEY``; named here so that loading the
#: node types, which use this module, does not load Prefect).
TRACEPARENT_LABEL = "__OTEL_TRACEPARENT"
#: The ``trigger`` field a webhook delivery carries its trace context in (when tracing is on).
TRIGGER_TRACEPARENT = "traceparent"

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")

tracer = trace.get_tracer("gorax")

_provider: Any = None
_sentry_on = False


# -- Configuration ----------------------------------------------------------------------------


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces (an OTLP endpoint, or an exporter other
    than ``none``)."""
    env = os.environ if environ is None else environ
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(exporter or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def tracing_enabled() -> bool:
    """Whether this process exports traces."""
    return _provider is not None


def service_name() -> str | None:
    """The service name this process's spans carry, or None when it exports no traces."""
    if _provider is None:
        return None
    return str(_provider.resource.attributes.get("service.name", "")) or None


def configure_tracing(service_name: str) -> bool:
    """Install the tracer provider when the environment asks for traces (idempotent); returns
    whether traces are exported. ``service_name`` unless ``OTEL_SERVICE_NAME`` names one."""
    global _provider
    if _provider is not None:
        return True
    if not tracing_requested():
        return False
    # Imported only when traces are on: the SDK and its exporter stay out of a process without.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415 - only when on
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415 - only when on
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415 - only when on
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415 - only when on
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporters = [e.strip() for e in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",") if e.strip()]
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol != "http/protobuf":
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL %r is not supported: traces are sent as http/protobuf", protocol)
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    for name in exporters:
        exporter: SpanExporter
        if name == "otlp":
            exporter = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            log.warning("OTEL_TRACES_EXPORTER %r is not supported (otlp, console, none): ignored", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("traces are exported", extra={"exporters": exporters, "service": resource.attributes.get(SERVICE_NAME)})
    return True


def flush_traces(timeout_millis: int = 5000) -> None:
    """Send the spans this process still holds (before it exits, or for a test to read them)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)


# -- Trace context -----------------------------------------------------------------------------


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (None when there is no recording trace)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def run_labels() -> dict[str, Any]:
    """Flow-run labels that put a run started now under the current span (empty when none)."""
    traceparent = current_traceparent()
    return {TRACEPARENT_LABEL: traceparent} if traceparent else {}


def trace_id_of(traceparent: Any) -> str | None:
    """The trace id (32 hex digits) in a ``traceparent`` value, if it is one."""
    match = _TRACEPARENT.match(str(traceparent or "").strip().lower())
    return match.group(1) if match else None


def valid_traceparent(value: Any) -> str | None:
    """``value`` when it is a W3C traceparent, else None."""
    return str(value).strip().lower() if trace_id_of(value) else None


def current_ids() -> tuple[str, str] | None:
    """The current span's trace id and span id in hex, when there is a valid one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context (``traceparent``, ``tracestate``) to outgoing headers."""
    propagate.inject(headers)


def extract(headers: Mapping[str, str]) -> Any:
    """The trace context incoming headers carry (an empty context when none)."""
    return propagate.extract(headers)


def set_attributes(attributes: Mapping[str, Any]) -> None:
    """Set ``attributes`` (None values left out) on the current span."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})


def run_attributes(*, tenant_id: Any, workflow_id: Any, version: Any, run_id: Any) -> dict[str, Any]:
    """The ``gorax.*`` attributes of a run (ids, as text; a version as a number)."""
    return {
        "gorax.tenant_id": str(tenant_id) if tenant_id else None,
        "gorax.workflow_id": str(workflow_id) if workflow_id else None,
        "gorax.version": int(version) if isinstance(version, int) else None,
        "gorax.run_id": str(run_id) if run_id else None,
    }


@contextmanager
def client_span(name: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
    """A client span around one outbound call (HTTP, LLM, database, AWS).

    Exceptions mark it failed with their type only: an error message may quote a URL or a
    statement that holds a secret.
    """
    with tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes={k: v for k, v in attributes.items() if v is not None},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute("error.type", type(exc).__name__)
            raise


# -- Error tracking (Sentry) -------------------------------------------------------------------

#: Headers and fields whose values never go to Sentry (lower-case names; fields match inside).
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-gorax-worker-token"}
)
_SECRET_FIELD = re.compile(
    r"pass(word|wd)?|secret|token|api[-_]?key|credential|private[-_]?key|auth|session|cookie|dsn"
)
FILTERED = "[Filtered]"


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: FILTERED
            if isinstance(k, str) and (k.lower() in SECRET_HEADERS or _SECRET_FIELD.search(k.lower()))
            else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        # Header lists: [name, value] pairs.
        if len(value) == 2 and isinstance(value[0], str) and value[0].lower() in SECRET_HEADERS:
            return [value[0], FILTERED]
        return [_scrub(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub(list(value)))
    return value


def scrub_event(event: dict[str, Any], _hint: Any = None) -> dict[str, Any]:
    """An event without secrets: registered secrets masked everywhere, secret headers, cookies
    and fields (password, token, secret, key...) replaced."""
    return mask(_scrub(event))  # type: ignore[no-any-return]


def configure_sentry(component: str) -> bool:
    """Send errors to Sentry when ``SENTRY_DSN`` is set (idempotent); returns whether they are.

    ``SENTRY_ENVIRONMENT`` and ``SENTRY_RELEASE`` are read by the SDK. No performance tracing
    (traces are OpenTelemetry's), no local variables, no personal data, no framework or client
    patching (so no Sentry headers on outbound requests); log records are breadcrumbs, not events
    (errors are reported where they are handled).
    """
    global _sentry_on
    if _sentry_on:
        return True
    dsn = os.environ.get("SENTRY_DSN", "").strip()
    if not dsn:
        return False
    import sentry_sdk  # noqa: PLC0415 - only when SENTRY_DSN is set
    from sentry_sdk.integrations.logging import LoggingIntegration  # noqa: PLC0415 - only when SENTRY_DSN is set

    sentry_sdk.init(
        dsn=dsn,
        before_send=scrub_event,  # type: ignore[arg-type]
        before_breadcrumb=lambda crumb, _hint: scrub_event(crumb),
        send_default_pii=False,
        include_local_variables=False,
        traces_sample_rate=None,
        trace_propagation_targets=[],
        auto_session_tracking=False,
        send_client_reports=False,
        # No framework or client patching (FastAPI, httpx, boto3...): errors are reported
        # where Gorax handles them, and nothing is added to a node's outbound requests.
        auto_enabling_integrations=False,
        integrations=[LoggingIntegration(level=logging.INFO, event_level=None)],
    )
    # On the global scope: runs execute on the worker's engine thread, outside this context.
    sentry_sdk.get_global_scope().set_tag("gorax.component", component)
    _sentry_on = True
    log.info("errors are reported to Sentry", extra={"component": component})
    return True


def sentry_enabled() -> bool:
    """Whether this process reports errors to Sentry."""
    return _sentry_on


def report_exception(exc: BaseException, tags: Mapping[str, Any] | None = None) -> None:
    """Report an unhandled error to Sentry (nothing when it is off)."""
    if not _sentry_on:
        return
    import sentry_sdk  # noqa: PLC0415 - loaded by configure_sentry already

    with sentry_sdk.new_scope() as scope:
        for key, value in (tags or {}).items():
            if value is not None:
                scope.set_tag(key, str(value))
        _tag_trace(scope)
        sentry_sdk.capture_exception(exc)


def report_failure(message: str, tags: Mapping[str, Any] | None = None) -> None:
    """Report a failure that is not an exception here (a node that failed) to Sentry."""
    if not _sentry_on:
        return
    import sentry_sdk  # noqa: PLC0415 - loaded by configure_sentry already

    with sentry_sdk.new_scope() as scope:
        for key, value in (tags or {}).items():
            if value is not None:
                scope.set_tag(key, str(value))
        _tag_trace(scope)
        sentry_sdk.capture_message(message, level="error")


def _tag_trace(scope: Any) -> None:
    ids = current_ids()
    if ids is not None:
        scope.set_tag("trace_id", ids[0])


def shut_down() -> None:
    """Send what is held, then stop exporting traces and reporting errors in this process (a
    process that ends, or a test that configured them)."""
    global _provider, _sentry_on
    if _provider is not None:
        _provider.shutdown()
        _provider = None
    if _sentry_on:
        import sentry_sdk  # noqa: PLC0415 - loaded by configure_sentry already

        sentry_sdk.get_client().close(timeout=2)
        # No client at all, not ``sentry_sdk.init()``: a bare init turns on every auto-enabling
        # integration, which patches FastAPI, Starlette and httpx for the rest of the process
        # (its FastAPI patch reads request bodies, which hangs ``/mcp``, whose SDK reads them).
        sentry_sdk.get_global_scope().set_client(None)
        _sentry_on = False


def flush_errors(timeout: float = 5.0) -> None:
    """Send the events this process still holds."""
    if _sentry_on:
        import sentry_sdk  # noqa: PLC0415 - loaded by configure_sentry already

        sentry_sdk.flush(timeout)
