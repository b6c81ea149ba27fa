"""Request ids, structured JSON logs and Prometheus metrics for the API."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Histogram

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gorax_request_id", default=None
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current request id."""

    _SKIP = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in self._SKIP and key != "request_id":
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send the ``gorax`` loggers to stderr as JSON lines (idempotent)."""
    logger = logging.getLogger("gorax")
    logger.setLevel(level.upper())
    if not any(getattr(h, "_gorax_json", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._gorax_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False


class Metrics:
    """Request counters and latency histograms, in a registry owned by one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gorax_http_requests_total", "HTTP requests by route and status",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "gorax_http_request_duration_seconds", "HTTP request latency by route",
            ["method", "route"], registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
