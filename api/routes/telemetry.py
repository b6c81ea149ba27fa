"""``/api/v1/ops/telemetry``: whether this API process exports traces and reports errors."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth.deps import Requires
from api.auth.permissions import Permission
from flows import tracing

router = APIRouter(prefix="/ops", tags=["ops"])


class TelemetryStatus(BaseModel):
    """What the operator configured (no endpoint, header or DSN is shown)."""

    tracing: bool = Field(description="Traces are exported (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER).")
    service_name: str | None = Field(default=None, description="The service name spans carry (OTEL_SERVICE_NAME).")
    sentry: bool = Field(description="Errors are reported to Sentry (SENTRY_DSN).")


@router.get("/telemetry", response_model=TelemetryStatus)
async def telemetry_status(_: object = Requires(Permission.AUTHENTICATED)) -> TelemetryStatus:
    """Whether traces and error tracking are on in this API process (the web app's run page shows a
    run's trace id only then)."""
    on = tracing.tracing_enabled()
    return TelemetryStatus(
        tracing=on,
        service_name=tracing.service_name() if on else None,
        sentry=tracing.sentry_enabled(),
    )
