"""Request ids, structured JSON logs and Prometheus metrics for the API."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry.semconv.attributes.http_attributes import HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE
from opentelemetry.semconv.attributes.url_attributes import URL_PATH, URL_SCHEME
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Histogram

from blocks.redact import mask, redactor
from flows import tracing
from flows.logcap import cap_text, install_line_cap, line_cap

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("gorax_request_id", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current request id (and trace and span ids when a
    trace is being recorded), at most ``max_bytes`` long."""

    _SKIP = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
    _KEEP = ("ts", "level", "logger", "request_id")

    def __init__(self, max_bytes: int = 0) -> None:
        super().__init__()
        self.max_bytes = max_bytes

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        ids = tracing.current_ids()
        if ids is not None:
            payload["trace_id"], payload["span_id"] = ids
        for key, value in record.__dict__.items():
            if key not in self._SKIP and key != "request_id":
                payload[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc"] = record.exc_text
        # Registered secrets never reach the log, whatever carried them (an exception's text, an extra).
        if redactor.active:
            payload = mask(json.loads(json.dumps(payload, default=str)))
        line = json.dumps(payload, default=str)
        if self.max_bytes and len(line) > self.max_bytes:  # ASCII JSON: characters are bytes
            line = self._fit(payload)
        return line

    def _fit(self, payload: dict[str, object]) -> str:
        """The line with its long values cut to fair shares of the room, still one JSON object."""
        values = {
            k: v if isinstance(v, str) or k in self._KEEP else json.dumps(v, default=str) for k, v in payload.items()
        }
        texts = {k: str(v) for k, v in values.items() if k not in self._KEEP}
        sizes = {k: len(json.dumps(text)) for k, text in texts.items()}
        fixed = len(json.dumps({k: values[k] for k in self._KEEP if k in values})) + sum(
            len(json.dumps(k)) + 2 for k in texts
        )
        room = self.max_bytes - fixed
        for _ in range(4):
            for key, share in _shares(sizes, room).items():
                # Escapes make a text's JSON longer than the text: cut in proportion.
                values[key] = cap_text(texts[key], max(0, share - 48) * len(texts[key]) // sizes[key])
            line = json.dumps(values, default=str)
            if len(line) <= self.max_bytes:
                return line
            room -= len(line) - self.max_bytes
        return json.dumps(
            {k: values[k] for k in self._KEEP if k in values}
            | {"msg": cap_text(str(payload["msg"]), self.max_bytes // 8)},
            default=str,
        )


def _shares(sizes: dict[str, int], room: int) -> dict[str, int]:
    """The values that must be cut, each with its share of ``room``: values smaller than an even
    share keep their size, the rest split what is left evenly."""
    left = dict(sizes)
    while left:
        share = max(room, 0) // len(left)
        fitting = {k: size for k, size in left.items() if size <= share}
        if not fitting:
            return {k: share for k in left}
        for key, size in fitting.items():
            room -= size
            del left[key]
    return {}


def configure_logging(level: str = "INFO", max_line_bytes: int | None = None) -> None:
    """Send the ``gorax`` loggers to stderr as JSON lines and cap every log line of the process
    at ``max_line_bytes`` (idempotent; 0: no cap; None: the cap stays as it is)."""
    if max_line_bytes is not None:
        install_line_cap(max_line_bytes)
    logger = logging.getLogger("gorax")
    logger.setLevel(level.upper())
    handler = next((h for h in logger.handlers if getattr(h, "_gorax_json", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._gorax_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    handler.setFormatter(JsonFormatter(line_cap()))


class Metrics:
    """Request counters and latency histograms, in a registry owned by one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gorax_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gorax_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


@contextmanager
def server_span(scope: Mapping[str, Any]) -> Iterator[Any]:
    """The span of one HTTP request, under the trace context its ``traceparent`` header carries
    (None when traces are off)."""
    if not tracing.tracing_enabled():
        yield None
        return
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers") or ()}
    method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
    with tracing.tracer.start_as_current_span(
        method,
        context=tracing.extract(headers),
        kind=SpanKind.SERVER,
        attributes={HTTP_REQUEST_METHOD: method, URL_PATH: _span_path(scope), URL_SCHEME: scope.get("scheme")},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def _span_path(scope: Mapping[str, Any]) -> str:
    # A webhook's URL token is its credential: a span shows the route, never the token.
    path = str(scope.get("path", ""))
    return "/webhook/{token}" if path.startswith("/webhook/") else path


def end_server_span(span: Any, *, route: str, status: int, tenant_id: str | None) -> None:
    """Name a request's span after its route and record the status and tenant."""
    if span is None or not span.is_recording():
        return
    method = span.attributes.get(HTTP_REQUEST_METHOD, "") if hasattr(span, "attributes") else ""
    span.update_name(f"{method} {route}".strip())
    span.set_attribute(HTTP_ROUTE, route)
    span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status)
    if tenant_id:
        span.set_attribute("gorax.tenant_id", str(tenant_id))
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
